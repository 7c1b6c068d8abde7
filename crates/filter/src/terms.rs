//! Term patterns for unstructured text: `ERROR`, `"exact phrase"`, `-excluded`,
//! `?optional`, `%regex%`.
//!
//! Terms match anywhere in the message, case-sensitively (`ERROR` matches inside
//! `ERRORCODE`, as AWS documents). Plain and excluded terms must all hold; `?` terms are
//! alternatives, and are ignored when the pattern also has plain or excluded terms.

use crate::cursor::Cursor;
use crate::error::PatternError;
use crate::literal::quoted;
use crate::regex::{self, Regex};
use memchr::memmem;

#[derive(Debug, Clone)]
pub struct TermPattern {
    required: Vec<Term>,
    excluded: Vec<Term>,
    optional: Vec<Term>,
}

#[derive(Debug, Clone)]
enum Term {
    Text(Box<memmem::Finder<'static>>),
    /// A quoted phrase of nothing but spaces: AWS lets `" "` match every event.
    Blank,
    Regex(Regex),
}

impl Term {
    /// A word or phrase, found anywhere in the message.
    fn text(text: &str) -> Term {
        Term::Text(Box::new(memmem::Finder::new(text.as_bytes()).into_owned()))
    }

    fn matches(&self, message: &[u8]) -> bool {
        match self {
            Term::Text(finder) => finder.find(message).is_some(),
            Term::Blank => true,
            Term::Regex(regex) => regex.is_match(message),
        }
    }
}

impl TermPattern {
    pub(crate) fn parse(cursor: &mut Cursor) -> Result<TermPattern, PatternError> {
        let mut pattern = TermPattern {
            required: Vec::new(),
            excluded: Vec::new(),
            optional: Vec::new(),
        };
        let mut regexes = 0;
        loop {
            cursor.skip_ws();
            if cursor.at_end() {
                return Ok(pattern);
            }
            let list = if cursor.eat("-") {
                // AWS's own examples write both `-term` and `- "term"`.
                cursor.skip_ws();
                &mut pattern.excluded
            } else if cursor.eat("?") {
                &mut pattern.optional
            } else {
                &mut pattern.required
            };
            let at = cursor.pos();
            let term = match cursor.peek() {
                Some('"') => {
                    let phrase = quoted(cursor)?;
                    if phrase.bytes().all(|b| b == b' ') {
                        Term::Blank
                    } else {
                        Term::text(&phrase)
                    }
                }
                Some('%') => {
                    regexes += 1;
                    if regexes > crate::MAX_REGEXES {
                        return Err(cursor.error(format!(
                            "a pattern may hold at most {} regexes",
                            crate::MAX_REGEXES
                        )));
                    }
                    Term::Regex(regex::parse(cursor)?)
                }
                _ => {
                    let word = cursor.take_while(|c| !c.is_whitespace());
                    if word.is_empty() {
                        return Err(cursor.error("expected a term after - or ?"));
                    }
                    if let Some(bad) = word.find(|c: char| !is_term_char(c)) {
                        return Err(cursor.error_at(
                            at + bad,
                            format!(
                                "Invalid character(s) in term '{word}'; put terms with characters other than letters, digits, _, - and . in double quotes"
                            ),
                        ));
                    }
                    Term::text(word)
                }
            };
            list.push(term);
            if let Some(c) = cursor.peek().filter(|c| !c.is_whitespace()) {
                return Err(cursor.error(format!(
                    "expected a space before the next term, found \"{c}\""
                )));
            }
        }
    }

    pub(crate) fn uses_regex(&self) -> bool {
        [&self.required, &self.excluded, &self.optional]
            .iter()
            .any(|terms| terms.iter().any(|t| matches!(t, Term::Regex(_))))
    }

    pub(crate) fn matches(&self, message: &[u8]) -> bool {
        if self.required.is_empty() && self.excluded.is_empty() {
            return self.optional.is_empty() || self.optional.iter().any(|t| t.matches(message));
        }
        self.required.iter().all(|t| t.matches(message))
            && !self.excluded.iter().any(|t| t.matches(message))
    }
}

fn is_term_char(c: char) -> bool {
    c.is_alphanumeric() || "_-.".contains(c)
}
