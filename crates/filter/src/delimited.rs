//! Space-delimited patterns: `[ip, user, ..., status_code = 4* || status_code = 5*, bytes > 1000]`.
//!
//! A log line splits on spaces and tabs into fields; text inside `[...]` or `"..."` is one
//! field, and the brackets or quotes are not part of its value. Pattern fields pair with
//! line fields in order. `...` stands for any number of fields (it takes as many as it can
//! and still lets the rest match). The last pattern field takes whatever the line has left,
//! as written (brackets and quotes included when it spans several fields), so `[w1=ERROR,
//! w2]` matches any line that starts with `ERROR`. A line with too few fields never matches.
//! Named fields are extracted as `$name`, unnamed ones and those `...` covers as `$<n>`, the
//! field's 1-based position in the line.

use crate::cursor::Cursor;
use crate::error::PatternError;
use crate::literal::{Literal, Op};

#[derive(Debug, Clone)]
pub struct DelimitedPattern {
    fields: Vec<Field>,
}

/// What a match leaves behind, reused from line to line.
#[derive(Debug, Default)]
pub struct Memo {
    pub(crate) found: Vec<(usize, usize)>,
    /// Per `...` field: the lowest line field where it has already tried to end; every end
    /// from there on failed. Whether the rest of a pattern matches from a given line field
    /// does not depend on how it got there, so no end is tried twice, and matching stays
    /// linear in fields × line fields however many `...` a pattern holds.
    tried_from: Vec<usize>,
}

struct Walk<'w> {
    pattern: &'w DelimitedPattern,
    line: &'w [u8],
    tokens: &'w [Token],
    memo: &'w mut Memo,
}

impl Walk<'_> {
    fn from(&mut self, field: usize, token: usize) -> bool {
        let fields = &self.pattern.fields;
        let tokens = self.tokens;
        let Some(current) = fields.get(field) else {
            return token == tokens.len();
        };
        let last = field + 1 == fields.len();
        match current {
            Field::Ellipsis => {
                if last {
                    self.memo.found.push((token, tokens.len()));
                    return true;
                }
                // Take as many fields as possible, then fewer; skip the ends that failed
                // before.
                let untried = self.memo.tried_from[field].min(tokens.len() + 1);
                for end in (token..untried).rev() {
                    self.memo.found.push((token, end));
                    if self.from(field + 1, end) {
                        return true;
                    }
                    self.memo.found.pop();
                }
                self.memo.tried_from[field] = self.memo.tried_from[field].min(token);
                false
            }
            Field::Plain { condition, .. } => {
                let Some(first) = tokens.get(token) else {
                    return false;
                };
                let (range, next) = if last && token + 1 < tokens.len() {
                    let end = tokens[tokens.len() - 1].outer.1;
                    ((first.outer.0, end), tokens.len())
                } else {
                    (first.inner, token + 1)
                };
                if condition
                    .as_ref()
                    .is_some_and(|c| !c.holds(&self.line[range.0..range.1]))
                {
                    return false;
                }
                self.memo.found.push(range);
                if self.from(field + 1, next) {
                    return true;
                }
                self.memo.found.pop();
                false
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Field {
    Ellipsis,
    Plain {
        name: Option<Box<str>>,
        condition: Option<Condition>,
    },
}

/// Comparisons on one field joined by `&&` and `||` (`&&` binds tighter).
#[derive(Debug, Clone)]
enum Condition {
    Any(Vec<Condition>),
    All(Vec<Condition>),
    Compare(Op, Literal),
}

impl Condition {
    fn uses_regex(&self) -> bool {
        match self {
            Condition::Any(c) | Condition::All(c) => c.iter().any(Condition::uses_regex),
            Condition::Compare(_, literal) => literal.is_regex(),
        }
    }

    fn holds(&self, value: &[u8]) -> bool {
        match self {
            Condition::Any(c) => c.iter().any(|c| c.holds(value)),
            Condition::All(c) => c.iter().all(|c| c.holds(value)),
            Condition::Compare(op, literal) => literal.compare(*op, value),
        }
    }
}

/// One field of a log line: `outer` spans it as written, `inner` without its brackets or
/// quotes.
#[derive(Debug, Clone, Copy)]
pub struct Token {
    outer: (usize, usize),
    inner: (usize, usize),
}

/// Splits a line into fields.
pub fn tokenize(line: &[u8], tokens: &mut Vec<Token>) {
    tokens.clear();
    let mut i = 0;
    loop {
        while matches!(line.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        let Some(&first) = line.get(i) else {
            return;
        };
        let close = match first {
            b'"' => Some(b'"'),
            b'[' => Some(b']'),
            _ => None,
        };
        let start = i;
        let token = match close.and_then(|c| memchr::memchr(c, &line[i + 1..])) {
            Some(len) => {
                i += len + 2;
                Token {
                    outer: (start, i),
                    inner: (start + 1, i - 1),
                }
            }
            None => {
                while line.get(i).is_some_and(|b| !matches!(b, b' ' | b'\t')) {
                    i += 1;
                }
                Token {
                    outer: (start, i),
                    inner: (start, i),
                }
            }
        };
        tokens.push(token);
    }
}

/// Where an extracted value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key<'p> {
    Name(&'p str),
    Position(usize),
}

impl DelimitedPattern {
    pub(crate) fn parse(cursor: &mut Cursor) -> Result<DelimitedPattern, PatternError> {
        cursor.bump();
        let mut fields = Vec::new();
        let mut regexes = 0;
        loop {
            cursor.skip_ws();
            if fields.is_empty() && cursor.eat("]") {
                // `[]`: every field, unnamed.
                fields.push(Field::Ellipsis);
                break;
            }
            if cursor.eat("...") {
                fields.push(Field::Ellipsis);
            } else {
                fields.push(field(cursor, &mut regexes)?);
            }
            cursor.skip_ws();
            if cursor.eat("]") {
                break;
            }
            if !cursor.eat(",") {
                return Err(cursor.error(format!(
                    "expected \",\" or \"]\" after a field, found {}",
                    cursor.found()
                )));
            }
        }
        cursor.skip_ws();
        if !cursor.at_end() {
            return Err(cursor.error(format!("unexpected {} after the closing ]", cursor.found())));
        }
        Ok(DelimitedPattern { fields })
    }

    /// Whether the line's fields satisfy the pattern. On a match, `found` holds each pattern
    /// field's line range, in pattern order (for `...`, a range of tokens).
    pub(crate) fn matches(&self, line: &[u8], tokens: &[Token], memo: &mut Memo) -> bool {
        memo.found.clear();
        memo.tried_from.clear();
        memo.tried_from.resize(self.fields.len(), usize::MAX);
        Walk {
            pattern: self,
            line,
            tokens,
            memo,
        }
        .from(0, 0)
    }

    /// The values a match extracted, as `TestMetricFilter` reports them: `found` is what
    /// [`matches`](Self::matches) left. `...` ranges there are token ranges.
    pub(crate) fn extracted<'p, 'l>(
        &'p self,
        line: &'l [u8],
        tokens: &[Token],
        found: &[(usize, usize)],
    ) -> Vec<(Key<'p>, &'l [u8])> {
        let mut values = Vec::new();
        let mut position = 0;
        for (field, &(start, end)) in self.fields.iter().zip(found) {
            match field {
                Field::Ellipsis => {
                    for token in &tokens[start..end] {
                        position += 1;
                        values.push((Key::Position(position), &line[token.inner.0..token.inner.1]));
                    }
                }
                Field::Plain { name, .. } => {
                    position += 1;
                    let key = match name {
                        Some(name) => Key::Name(name),
                        None => Key::Position(position),
                    };
                    values.push((key, &line[start..end]));
                }
            }
        }
        values
    }

    pub(crate) fn uses_regex(&self) -> bool {
        self.fields
            .iter()
            .any(|f| matches!(f, Field::Plain { condition: Some(c), .. } if c.uses_regex()))
    }

    /// Whether a field of the pattern is called `name`.
    pub fn has_name(&self, name: &str) -> bool {
        self.fields
            .iter()
            .any(|f| matches!(f, Field::Plain { name: Some(n), .. } if &**n == name))
    }

    /// The range a named field matched, for metric values and dimensions.
    pub(crate) fn named<'l>(
        &self,
        name: &str,
        line: &'l [u8],
        found: &[(usize, usize)],
    ) -> Option<&'l [u8]> {
        self.fields
            .iter()
            .zip(found)
            .find(|(field, _)| matches!(field, Field::Plain { name: Some(n), .. } if &**n == name))
            .map(|(_, &(start, end))| &line[start..end])
    }
}

/// A character of a space-delimited field's name (also of `$name` in a metric filter).
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// One pattern field: `name`, `name <op> value [&& / || name <op> value]…`, or nothing.
fn field(cursor: &mut Cursor, regexes: &mut usize) -> Result<Field, PatternError> {
    let name = cursor.take_while(is_name_char);
    cursor.skip_ws();
    let mut alternatives = Vec::new();
    let mut all = Vec::new();
    loop {
        let op_at = cursor.pos();
        let Some(op) = Op::parse(cursor) else {
            if all.is_empty() {
                if !matches!(cursor.peek(), Some(',' | ']') | None) {
                    return Err(cursor.error(format!(
                        "expected a field name, a comparison, \",\" or \"]\", found {}",
                        cursor.found()
                    )));
                }
                break;
            }
            return Err(cursor.error(format!(
                "expected a comparison such as {name}=value, found {}",
                cursor.found()
            )));
        };
        if name.is_empty() {
            return Err(cursor.error_at(op_at, "a comparison needs a field name before it"));
        }
        cursor.skip_ws();
        let literal_at = cursor.pos();
        let literal = Literal::parse(cursor, ",]&|")?;
        if !matches!(op, Op::Eq | Op::Ne) && !matches!(literal, Literal::Number(_)) {
            return Err(cursor.error_at(literal_at, "<, <=, > and >= compare with a number"));
        }
        if literal.is_regex() {
            *regexes += 1;
            if *regexes > crate::MAX_REGEXES {
                return Err(cursor.error_at(
                    literal_at,
                    format!("a pattern may hold at most {} regexes", crate::MAX_REGEXES),
                ));
            }
        }
        all.push(Condition::Compare(op, literal));
        cursor.skip_ws();
        let joined_or = if cursor.eat("||") {
            true
        } else if cursor.eat("&&") {
            false
        } else {
            break;
        };
        if joined_or {
            alternatives.push(group(std::mem::take(&mut all)));
        }
        cursor.skip_ws();
        let again_at = cursor.pos();
        let again = cursor.take_while(is_name_char);
        if again != name {
            return Err(cursor.error_at(
                again_at,
                format!("conditions joined in one field must all name \"{name}\""),
            ));
        }
        cursor.skip_ws();
    }
    let condition = if all.is_empty() && alternatives.is_empty() {
        None
    } else {
        alternatives.push(group(all));
        Some(if alternatives.len() == 1 {
            alternatives.pop().expect("one alternative")
        } else {
            Condition::Any(alternatives)
        })
    };
    Ok(Field::Plain {
        name: (!name.is_empty()).then(|| name.into()),
        condition,
    })
}

fn group(mut all: Vec<Condition>) -> Condition {
    if all.len() == 1 {
        all.pop().expect("one condition")
    } else {
        Condition::All(all)
    }
}
