//! A position in the pattern text, with the few lexing steps every dialect shares.

use crate::error::PatternError;

pub(crate) struct Cursor<'p> {
    text: &'p str,
    pos: usize,
}

impl<'p> Cursor<'p> {
    pub fn new(text: &'p str) -> Self {
        Cursor { text, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The text from byte offset `from` up to the cursor.
    pub fn since(&self, from: usize) -> &'p str {
        &self.text[from..self.pos]
    }

    pub fn rest(&self) -> &'p str {
        &self.text[self.pos..]
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.text.len()
    }

    pub fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    /// Consumes `token` if the text continues with it.
    pub fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// Consumes and returns the longest run of characters satisfying `keep`.
    pub fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'p str {
        let rest = self.rest();
        let len = rest.find(|c| !keep(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// An error at the cursor.
    pub fn error(&self, message: impl Into<String>) -> PatternError {
        self.error_at(self.pos, message)
    }

    /// An error at byte offset `at` of the pattern.
    pub fn error_at(&self, at: usize, message: impl Into<String>) -> PatternError {
        PatternError {
            column: self.text[..at].chars().count() + 1,
            message: message.into(),
        }
    }

    /// What the user wrote at the cursor, for messages: the next word or symbol.
    pub fn found(&self) -> String {
        let rest = self.rest();
        if rest.is_empty() {
            return "the end of the pattern".to_string();
        }
        let word: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(24)
            .collect();
        format!("\"{word}\"")
    }
}
