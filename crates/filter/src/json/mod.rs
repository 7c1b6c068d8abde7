//! JSON patterns: `{ <test> && (<test> || <test>) }`.
//!
//! A test names a selector and either compares its value (`= != > >= < <=`) or checks it
//! (`IS NULL`, `IS TRUE`, `IS FALSE`, `NOT EXISTS`). `&&` binds tighter than `||`.
//!
//! What a test means, decided once here:
//! - a selector that reaches no value fails every test except `NOT EXISTS`;
//! - a selector that reaches an object or array fails every test, `NOT EXISTS` included;
//! - with a wildcard, a test holds when it holds for any value the selector reaches;
//! - a quoted literal or a bare word compares as text; strings compare by their unescaped
//!   contents, numbers by their text as written (`"123"` matches `123`, `"123.0"` does not);
//! - a bare number compares numerically with numbers and with strings that hold a number;
//! - `null` is never equal or unequal to anything: only `IS NULL` sees it.

pub mod paths;
pub mod scan;
pub mod selector;
#[cfg(test)]
mod tests;

use crate::cursor::Cursor;
use crate::error::PatternError;
use crate::literal::{Literal, Op};
use scan::{Extracted, Kind};
pub use selector::{Selector, Step};

/// At most this many wildcards in one pattern (AWS's limit).
const MAX_WILDCARDS: usize = 3;

/// A parsed `{ … }` pattern. Its tests refer to selectors by index into `selectors`.
#[derive(Debug, Clone)]
pub struct JsonPattern {
    pub selectors: Vec<Selector>,
    pub expr: Expr,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Test { selector: usize, check: Check },
}

#[derive(Debug, Clone)]
pub enum Check {
    Compare(Op, Literal),
    IsNull,
    IsTrue,
    IsFalse,
    NotExists,
}

impl JsonPattern {
    /// Parses a pattern that starts at the cursor with `{`.
    pub(crate) fn parse(cursor: &mut Cursor) -> Result<JsonPattern, PatternError> {
        let mut parser = Parser {
            cursor,
            selectors: Vec::new(),
            regexes: 0,
            wildcards: 0,
        };
        parser.cursor.bump();
        let expr = parser.or()?;
        parser.cursor.skip_ws();
        if !parser.cursor.eat("}") {
            return Err(parser.cursor.error(format!(
                "expected &&, || or the closing }}, found {}",
                parser.cursor.found()
            )));
        }
        parser.cursor.skip_ws();
        if !parser.cursor.at_end() {
            return Err(parser.cursor.error(format!(
                "unexpected {} after the closing }}",
                parser.cursor.found()
            )));
        }
        Ok(JsonPattern {
            selectors: parser.selectors,
            expr,
        })
    }

    /// Whether the event's extracted values satisfy the pattern; `slots[i]` is the slot the
    /// scan filled for selector `i`.
    pub(crate) fn matches(&self, message: &[u8], extracted: &Extracted, slots: &[usize]) -> bool {
        self.expr.holds(message, extracted, slots)
    }
}

impl Expr {
    pub(crate) fn uses_regex(&self) -> bool {
        match self {
            Expr::Or(all) | Expr::And(all) => all.iter().any(Expr::uses_regex),
            Expr::Test { check, .. } => {
                matches!(check, Check::Compare(_, literal) if literal.is_regex())
            }
        }
    }

    fn holds(&self, message: &[u8], extracted: &Extracted, slots: &[usize]) -> bool {
        match self {
            Expr::Or(alternatives) => alternatives
                .iter()
                .any(|e| e.holds(message, extracted, slots)),
            Expr::And(all) => all.iter().all(|e| e.holds(message, extracted, slots)),
            Expr::Test { selector, check } => {
                let mut values = extracted.values(slots[*selector]);
                match check {
                    Check::NotExists => values.next().is_none(),
                    Check::IsNull => values.any(|v| v.kind == Kind::Null),
                    Check::IsTrue => values.any(|v| v.kind == Kind::True),
                    Check::IsFalse => values.any(|v| v.kind == Kind::False),
                    Check::Compare(op, literal) => values.any(|v| {
                        let text = match v.kind {
                            Kind::Null | Kind::Container => return false,
                            _ => v.text(message),
                        };
                        literal.compare(*op, &text)
                    }),
                }
            }
        }
    }
}

struct Parser<'c, 'p> {
    cursor: &'c mut Cursor<'p>,
    selectors: Vec<Selector>,
    regexes: usize,
    wildcards: usize,
}

impl Parser<'_, '_> {
    fn or(&mut self) -> Result<Expr, PatternError> {
        self.joined("||", Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, PatternError> {
        self.joined("&&", Self::unary, Expr::And)
    }

    /// `operand (joiner operand)*`; one operand stands alone.
    fn joined(
        &mut self,
        joiner: &str,
        operand: fn(&mut Self) -> Result<Expr, PatternError>,
        join: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, PatternError> {
        let mut operands = vec![operand(self)?];
        loop {
            self.cursor.skip_ws();
            if !self.cursor.eat(joiner) {
                break;
            }
            operands.push(operand(self)?);
        }
        Ok(if operands.len() == 1 {
            operands.pop().expect("one operand")
        } else {
            join(operands)
        })
    }

    fn unary(&mut self) -> Result<Expr, PatternError> {
        self.cursor.skip_ws();
        if self.cursor.eat("(") {
            let inner = self.or()?;
            self.cursor.skip_ws();
            if !self.cursor.eat(")") {
                return Err(self.cursor.error(format!(
                    "expected &&, || or \")\", found {}",
                    self.cursor.found()
                )));
            }
            return Ok(inner);
        }
        self.test()
    }

    fn test(&mut self) -> Result<Expr, PatternError> {
        let selector_at = self.cursor.pos();
        let selector = Selector::parse_at(self.cursor)?;
        if selector.has_wildcard() {
            self.wildcards += 1;
        }
        if self.wildcards > MAX_WILDCARDS {
            return Err(self.cursor.error_at(
                selector_at,
                format!("a pattern may use at most {MAX_WILDCARDS} wildcard selectors"),
            ));
        }
        self.cursor.skip_ws();
        let check_at = self.cursor.pos();
        let check = if self.keyword("IS") {
            if self.keyword("NULL") {
                Check::IsNull
            } else if self.keyword("TRUE") {
                Check::IsTrue
            } else if self.keyword("FALSE") {
                Check::IsFalse
            } else {
                return Err(self.cursor.error(format!(
                    "expected NULL, TRUE or FALSE after IS, found {}",
                    self.cursor.found()
                )));
            }
        } else if self.keyword("NOT") {
            if !self.keyword("EXISTS") {
                return Err(self.cursor.error(format!(
                    "expected EXISTS after NOT, found {}",
                    self.cursor.found()
                )));
            }
            Check::NotExists
        } else if let Some(op) = Op::parse(self.cursor) {
            self.cursor.skip_ws();
            let literal_at = self.cursor.pos();
            let literal = Literal::parse(self.cursor, "(){}&|")?;
            let ordering = !matches!(op, Op::Eq | Op::Ne);
            if ordering && !matches!(literal, Literal::Number(_)) {
                return Err(self
                    .cursor
                    .error_at(literal_at, "<, <=, > and >= compare with a number"));
            }
            if literal.is_regex() {
                self.regexes += 1;
                if self.regexes > crate::MAX_REGEXES {
                    return Err(self.cursor.error_at(
                        literal_at,
                        format!("a pattern may hold at most {} regexes", crate::MAX_REGEXES),
                    ));
                }
            }
            Check::Compare(op, literal)
        } else {
            return Err(self.cursor.error_at(
                check_at,
                format!(
                    "expected =, !=, <, <=, >, >=, IS or NOT EXISTS after {selector}, found {}",
                    self.cursor.found()
                ),
            ));
        };
        let index = match self.selectors.iter().position(|s| *s == selector) {
            Some(index) => index,
            None => {
                self.selectors.push(selector);
                self.selectors.len() - 1
            }
        };
        Ok(Expr::Test {
            selector: index,
            check,
        })
    }

    /// Consumes an upper-case keyword followed by whitespace or punctuation.
    fn keyword(&mut self, word: &str) -> bool {
        self.cursor.skip_ws();
        let whole_word = self.cursor.rest().strip_prefix(word).is_some_and(|after| {
            after
                .chars()
                .next()
                .is_none_or(|c| !c.is_ascii_alphanumeric())
        });
        whole_word && self.cursor.eat(word)
    }
}
