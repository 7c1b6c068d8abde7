//! Selectors: `$.a.b`, `$.arr[0]`, `$.coords[0][1]`, `$.['dotted.key']`, `$.*`, `$.arr[*]`.

use crate::cursor::Cursor;
use crate::error::PatternError;
use std::fmt;

/// One step from a JSON value to one of its children.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    Key(Box<str>),
    Index(u32),
    /// `.*`: every member of an object.
    AnyKey,
    /// `[*]`: every element of an array.
    AnyIndex,
}

/// A path from the top of a JSON log event to the values a test looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector {
    pub steps: Vec<Step>,
}

impl Selector {
    /// Parses a selector such as `$.eventName`.
    pub fn parse(text: &str) -> Result<Selector, PatternError> {
        let mut cursor = Cursor::new(text);
        let selector = Selector::parse_at(&mut cursor)?;
        if !cursor.at_end() {
            return Err(cursor.error(format!("unexpected {} after the selector", cursor.found())));
        }
        Ok(selector)
    }

    pub(crate) fn parse_at(cursor: &mut Cursor) -> Result<Selector, PatternError> {
        let start = cursor.pos();
        if !cursor.eat("$") {
            return Err(cursor.error(format!(
                "expected a selector such as $.eventName, found {}",
                cursor.found()
            )));
        }
        let mut steps = Vec::new();
        loop {
            let at = cursor.pos();
            if cursor.eat(".") {
                if cursor.eat("*") {
                    steps.push(Step::AnyKey);
                } else if cursor.peek() == Some('[') {
                    steps.push(bracket(cursor)?);
                } else {
                    let name = cursor.take_while(is_name_char);
                    if name.is_empty() {
                        return Err(cursor.error_at(
                            at,
                            "expected a field name after \".\" (letters, digits, - and _; use $.['name'] for others)",
                        ));
                    }
                    steps.push(Step::Key(name.into()));
                }
            } else if cursor.peek() == Some('[') {
                if steps.is_empty() {
                    return Err(cursor.error(
                        "a selector starts with \"$.\"; write $.['name'] for a quoted field name",
                    ));
                }
                steps.push(bracket(cursor)?);
            } else {
                break;
            }
        }
        if steps.is_empty() {
            return Err(cursor.error_at(
                start,
                "a selector needs a field after \"$\", as in $.eventName",
            ));
        }
        let wildcards = steps
            .iter()
            .filter(|s| matches!(s, Step::AnyKey | Step::AnyIndex))
            .count();
        if wildcards > 1 {
            return Err(cursor.error_at(start, "a selector may hold at most one wildcard"));
        }
        Ok(Selector { steps })
    }

    pub(crate) fn has_wildcard(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::AnyKey | Step::AnyIndex))
    }
}

/// `[0]`, `[*]` or `['key']` at the cursor.
fn bracket(cursor: &mut Cursor) -> Result<Step, PatternError> {
    let open = cursor.pos();
    cursor.bump();
    let step = if cursor.eat("*") {
        Step::AnyIndex
    } else if cursor.eat("'") {
        let key = cursor.take_while(|c| c != '\'');
        if !cursor.eat("'") {
            return Err(cursor.error_at(open, "a quoted field name is never closed"));
        }
        Step::Key(key.into())
    } else {
        let digits = cursor.take_while(|c| c.is_ascii_digit());
        let index = digits.parse().map_err(|_| {
            cursor.error_at(
                open,
                "expected an array index, * or a quoted field name in [ ]",
            )
        })?;
        Step::Index(index)
    };
    if !cursor.eat("]") {
        return Err(cursor.error(format!("expected \"]\", found {}", cursor.found())));
    }
    Ok(step)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for step in &self.steps {
            match step {
                Step::Key(key) if key.chars().all(is_name_char) => write!(f, ".{key}")?,
                Step::Key(key) => write!(f, ".['{key}']")?,
                Step::Index(i) => write!(f, "[{i}]")?,
                Step::AnyKey => f.write_str(".*")?,
                Step::AnyIndex => f.write_str("[*]")?,
            }
        }
        Ok(())
    }
}
