//! The value side of a comparison: `"quoted"`, bare words, numbers, `*` wildcards and
//! `%regex%`, shared by JSON and space-delimited patterns.

use crate::cursor::Cursor;
use crate::error::PatternError;
use crate::regex::{self, Regex};
use memchr::memmem;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    /// Parses an operator at the cursor; `None` if there is none.
    pub(crate) fn parse(cursor: &mut Cursor) -> Option<Op> {
        // Two-character operators first, so `>=` is not read as `>`.
        for (token, op) in [
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ] {
            if cursor.eat(token) {
                return Some(op);
            }
        }
        None
    }
}

/// What a value is compared with.
#[derive(Debug, Clone)]
pub enum Literal {
    /// `*` or `"*"`: any value at all.
    Any,
    /// Exact text.
    Text(Box<[u8]>),
    /// An unquoted number: compared numerically with numbers and numeric text.
    Number(f64),
    /// Text with `*` wildcards.
    Glob(Glob),
    Regex(Regex),
}

impl Literal {
    /// Parses a literal at the cursor. `stop` lists the characters that end a bare word in
    /// the dialect being parsed, besides whitespace.
    pub(crate) fn parse(cursor: &mut Cursor, stop: &str) -> Result<Literal, PatternError> {
        let start = cursor.pos();
        match cursor.peek() {
            Some('"') => {
                let text = quoted(cursor)?;
                Ok(Literal::from_text(text.as_bytes()))
            }
            Some('%') => Ok(Literal::Regex(regex::parse(cursor)?)),
            _ => {
                let word = cursor.take_while(|c| !c.is_whitespace() && !stop.contains(c));
                if word.is_empty() {
                    return Err(cursor.error(format!("expected a value, found {}", cursor.found())));
                }
                if let Some(bad) = word.find(|c: char| !is_bare_char(c)) {
                    return Err(cursor.error_at(
                        start + bad,
                        format!(
                            "\"{}\" cannot appear in an unquoted value; put the value in double quotes",
                            &word[bad..].chars().next().unwrap_or(' ')
                        ),
                    ));
                }
                match parse_number(word) {
                    Some(n) => Ok(Literal::Number(n)),
                    None => Ok(Literal::from_text(word.as_bytes())),
                }
            }
        }
    }

    fn from_text(text: &[u8]) -> Literal {
        if text == b"*" {
            Literal::Any
        } else if text.contains(&b'*') {
            Literal::Glob(Glob::new(text))
        } else {
            Literal::Text(text.into())
        }
    }

    pub(crate) fn is_regex(&self) -> bool {
        matches!(self, Literal::Regex(_))
    }

    /// `value <op> self`, for a scalar value given as text. Ordering operators need a
    /// number on both sides.
    pub(crate) fn compare(&self, op: Op, value: &[u8]) -> bool {
        match op {
            Op::Eq => self.equals(value),
            Op::Ne => !self.equals(value),
            Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                let Literal::Number(bound) = *self else {
                    return false;
                };
                let Some(n) = number_of(value) else {
                    return false;
                };
                match op {
                    Op::Gt => n > bound,
                    Op::Ge => n >= bound,
                    Op::Lt => n < bound,
                    _ => n <= bound,
                }
            }
        }
    }

    fn equals(&self, value: &[u8]) -> bool {
        match self {
            Literal::Any => true,
            Literal::Text(text) => value == &text[..],
            Literal::Number(n) => number_of(value) == Some(*n),
            Literal::Glob(glob) => glob.matches(value),
            Literal::Regex(regex) => regex.is_match(value),
        }
    }
}

/// Characters an unquoted value may hold: words, numbers and `*` wildcards.
fn is_bare_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-+*".contains(c)
}

/// Reads a double-quoted string at the cursor; `\"` and `\\` escape.
pub(crate) fn quoted(cursor: &mut Cursor) -> Result<String, PatternError> {
    let open = cursor.pos();
    cursor.bump();
    let mut text = String::new();
    loop {
        match cursor.bump() {
            None => return Err(cursor.error_at(open, "a quoted value is never closed")),
            Some('"') => return Ok(text),
            Some('\\') if matches!(cursor.peek(), Some('"' | '\\')) => {
                text.extend(cursor.bump());
            }
            Some(c) => text.push(c),
        }
    }
}

/// A JSON-style number: optional sign, digits, optional fraction and exponent.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut i = usize::from(matches!(bytes.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    text.parse().ok()
}

fn number_of(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok().and_then(parse_number)
}

/// Text with `*` wildcards: the pieces between stars must appear in order, the first at
/// the start unless the glob starts with `*`, the last at the end unless it ends with `*`.
#[derive(Debug, Clone)]
pub struct Glob {
    pieces: Vec<memmem::Finder<'static>>,
}

impl Glob {
    fn new(text: &[u8]) -> Glob {
        Glob {
            pieces: text
                .split(|&b| b == b'*')
                .map(|piece| memmem::Finder::new(piece).into_owned())
                .collect(),
        }
    }

    pub(crate) fn matches(&self, mut text: &[u8]) -> bool {
        // `new` splits on at least one star, so there are at least two pieces.
        let (first, rest) = self.pieces.split_first().expect("a glob has a star");
        let (last, middle) = rest.split_last().expect("a glob has a star");
        let Some(after_first) = text.strip_prefix(first.needle()) else {
            return false;
        };
        text = after_first;
        for piece in middle {
            match piece.find(text) {
                Some(at) => text = &text[at + piece.needle().len()..],
                None => return false,
            }
        }
        text.ends_with(last.needle())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_anchor_unless_starred() {
        let glob = |g: &str, t: &str| Glob::new(g.as_bytes()).matches(t.as_bytes());
        assert!(glob("AccessDenied*", "AccessDeniedException"));
        assert!(!glob("AccessDenied*", "xAccessDenied"));
        assert!(glob(
            "*UnauthorizedOperation",
            "Client.UnauthorizedOperation"
        ));
        assert!(!glob("*UnauthorizedOperation", "UnauthorizedOperationX"));
        assert!(glob("*.html*", "GET /index.html HTTP/1.0"));
        assert!(glob("123.123.*", "123.123.1.1"));
        assert!(!glob("123.123.*", "111.111.111.111"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("a**b", "ab"));
    }

    #[test]
    fn numbers_follow_json_grammar_with_a_sign() {
        assert_eq!(parse_number("75"), Some(75.0));
        assert_eq!(parse_number("-1.5e3"), Some(-1500.0));
        assert_eq!(parse_number("+2"), Some(2.0));
        assert_eq!(parse_number("1e-3"), Some(0.001));
        for bad in [
            "", "-", "1.", ".5", "1e", "0x10", "1_000", "inf", "NaN", "4*",
        ] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }
}
