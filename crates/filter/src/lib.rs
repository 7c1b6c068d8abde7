//! The CloudWatch Logs filter-pattern language, as metric filters, `FilterLogEvents` and
//! `TestMetricFilter` use it.
//!
//! A pattern is one of three dialects, told apart by its first character:
//! - `{ $.eventName = "ConsoleLogin" && $.errorMessage = "Failed authentication" }`: a
//!   JSON pattern ([`json`]), for JSON log events such as CloudTrail records;
//! - `[ip, user, ..., status_code = 4*, bytes > 1000]`: a space-delimited pattern
//!   ([`delimited`]), for log lines made of fields;
//! - `ERROR -ARGUMENTS "exact phrase" ?optional %regex%`: terms ([`terms`]), for any text.
//!
//! An empty pattern matches every event. Matching is case-sensitive.
//!
//! [`FilterSet`] evaluates many filters over one event with a single pass: the selectors
//! of every JSON pattern (and of the fields metric values and dimensions read) are merged
//! into one automaton, so an event is scanned once however many filters look at it.

pub mod cis;
mod cursor;
pub mod delimited;
mod error;
pub mod json;
mod literal;
mod regex;
mod set;
pub mod terms;

pub use error::PatternError;
pub use json::Selector;
pub use set::{Field, Filter, FilterSet, Scratch};

use cursor::Cursor;
use delimited::DelimitedPattern;
use json::JsonPattern;
use terms::TermPattern;

/// At most this many `%regex%` values in one pattern (AWS's limit).
const MAX_REGEXES: usize = 2;

/// A parsed filter pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// The empty pattern: every event.
    Everything,
    Terms(TermPattern),
    Json(JsonPattern),
    Delimited(DelimitedPattern),
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let mut cursor = Cursor::new(text);
        cursor.skip_ws();
        match cursor.peek() {
            None => Ok(Pattern::Everything),
            Some('{') => JsonPattern::parse(&mut cursor).map(Pattern::Json),
            Some('[') => DelimitedPattern::parse(&mut cursor).map(Pattern::Delimited),
            Some(_) => TermPattern::parse(&mut cursor).map(Pattern::Terms),
        }
    }

    /// Whether the pattern holds a `%regex%` (AWS allows five such filters per log group).
    pub fn uses_regex(&self) -> bool {
        match self {
            Pattern::Everything => false,
            Pattern::Terms(terms) => terms.uses_regex(),
            Pattern::Json(json) => json.expr.uses_regex(),
            Pattern::Delimited(delimited) => delimited.uses_regex(),
        }
    }

    /// Whether metric dimensions can read fields of the events it matches: only JSON and
    /// space-delimited patterns have fields.
    pub fn has_fields(&self) -> bool {
        matches!(self, Pattern::Json(_) | Pattern::Delimited(_))
    }

    /// Whether the pattern matches one event. To test many events or many patterns, build a
    /// [`FilterSet`] once and reuse a [`Scratch`].
    pub fn matches(&self, message: &str) -> bool {
        let set = FilterSet::new(vec![Filter::new(self.clone())]);
        let mut scratch = Scratch::default();
        set.evaluate(message, &mut scratch);
        set.is_match(&scratch, 0)
    }
}
