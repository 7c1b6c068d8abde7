//! The one error a pattern can produce: what is wrong, and where.

use std::fmt;

/// A filter pattern that does not parse. `column` is the 1-based character position of the
/// offending text, so a user can find it in the pattern they typed. The API puts AWS's
/// "Invalid metric filter pattern" (or "Invalid filter pattern") in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at column {})", self.message, self.column)
    }
}

impl std::error::Error for PatternError {}
