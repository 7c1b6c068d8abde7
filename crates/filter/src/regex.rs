//! `%…%` regular expressions in AWS's restricted syntax.
//!
//! AWS allows alphanumerics, spaces, the symbols `: _ # = @ / ; , -`, the operators
//! `^ $ ? [ ] { } | \ * + .` and the classes `\d \D \s \S \w \W \xhh`; no groups, no
//! other symbols, no multi-byte characters. A regex matches anywhere in the value unless
//! anchored. What passes this check is translated to the `regex` crate's syntax and compiled
//! for bytes, ASCII-only, so `\w` and `\d` mean what they mean in AWS.

use crate::cursor::Cursor;
use crate::error::PatternError;

const SYMBOLS: &str = ":_#=@/;,- ";
const OPERATORS: &str = "^$?[]{}|*+.";
const CLASSES: &str = "dDsSwW";

/// A compiled `%…%` value.
#[derive(Debug, Clone)]
pub struct Regex {
    compiled: regex::bytes::Regex,
}

impl Regex {
    pub fn is_match(&self, text: &[u8]) -> bool {
        self.compiled.is_match(text)
    }
}

/// Parses `%…%` at the cursor, which must be on the opening `%`.
pub(crate) fn parse(cursor: &mut Cursor) -> Result<Regex, PatternError> {
    let open = cursor.pos();
    cursor.bump();
    let body_start = cursor.pos();
    let mut translated = String::new();
    loop {
        let at = cursor.pos();
        match cursor.bump() {
            None => return Err(cursor.error_at(open, "a regex opened with % is never closed")),
            Some('%') => break,
            Some('\\') => {
                let escaped_at = cursor.pos();
                match cursor.bump() {
                    Some(c) if CLASSES.contains(c) => {
                        translated.push('\\');
                        translated.push(c);
                    }
                    Some('x') => {
                        let hex = cursor.take_while(|c| c.is_ascii_hexdigit());
                        if hex.len() < 2 {
                            return Err(
                                cursor.error_at(at, "\\x must be followed by two hex digits")
                            );
                        }
                        // Only two digits belong to the escape; give the rest back as text.
                        translated.push_str("\\x");
                        translated.push_str(&hex[..2]);
                        translated.push_str(&hex[2..]);
                    }
                    Some(c) if c == '\\' || SYMBOLS.contains(c) || OPERATORS.contains(c) => {
                        translated.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
                    }
                    Some(c) => {
                        return Err(cursor.error_at(
                            escaped_at,
                            format!("\"\\{c}\" is not an escape filter-pattern regexes support"),
                        ))
                    }
                    None => {
                        return Err(cursor.error_at(open, "a regex opened with % is never closed"))
                    }
                }
            }
            // None of the symbols is special to the `regex` crate outside a class, and `-`
            // inside one makes a range, as in AWS's syntax.
            Some(c)
                if c.is_ascii_alphanumeric() || OPERATORS.contains(c) || SYMBOLS.contains(c) =>
            {
                translated.push(c)
            }
            Some(c) if c.is_ascii() => {
                return Err(cursor.error_at(
                    at,
                    format!(
                        "\"{c}\" is not allowed in a filter-pattern regex; write it as \\x{:02x}",
                        c as u32
                    ),
                ))
            }
            Some(c) => {
                return Err(cursor.error_at(
                    at,
                    format!("\"{c}\": filter-pattern regexes hold ASCII characters only"),
                ))
            }
        }
    }
    let source = cursor.since(body_start);
    let source = &source[..source.len() - 1];
    if source.is_empty() {
        return Err(cursor.error_at(open, "a regex must not be empty"));
    }
    let compiled = regex::bytes::RegexBuilder::new(&translated)
        .unicode(false)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            cursor.error_at(
                open,
                format!("invalid regex %{source}%: {}", first_line(&e)),
            )
        })?;
    Ok(Regex { compiled })
}

fn first_line(error: &regex::Error) -> String {
    match error {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find(|line| line.starts_with("error:"))
            .unwrap_or("syntax error")
            .trim_start_matches("error: ")
            .to_string(),
        regex::Error::CompiledTooBig(_) => "the regex is too large".to_string(),
        _ => "the regex cannot be compiled".to_string(),
    }
}
