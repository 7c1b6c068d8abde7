//! One pass over a JSON log event that validates it and records the values the automaton
//! asks for, without building a tree and without allocating once its buffers have grown.
//!
//! Values nobody selected are skipped: strings by jumping to the next quote or backslash,
//! containers with an explicit stack (so deep nesting cannot overflow the call stack).
//! Recorded values are byte ranges of the event, unescaped only when compared.

use super::paths::{Paths, State};
use std::borrow::Cow;

/// The JSON type of a recorded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string; `escaped` if its raw text holds a backslash escape.
    String {
        escaped: bool,
    },
    Number,
    True,
    False,
    Null,
    /// An object or an array: selectors that reach one never match.
    Container,
}

/// A value recorded for a slot. For strings the range excludes the quotes.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    pub kind: Kind,
    start: u32,
    end: u32,
    /// The next value of the same slot, or `NONE`.
    next: u32,
}

const NONE: u32 = u32::MAX;

impl Found {
    /// The value as text: strings unescaped, numbers as written, `true`/`false`.
    pub fn text<'m>(&self, message: &'m [u8]) -> Cow<'m, [u8]> {
        let raw = &message[self.start as usize..self.end as usize];
        match self.kind {
            Kind::String { escaped: true } => Cow::Owned(unescape(raw)),
            _ => Cow::Borrowed(raw),
        }
    }
}

/// The values found in one event, by slot. Reused from event to event.
#[derive(Debug, Default)]
pub struct Extracted {
    found: Vec<Found>,
    first: Vec<u32>,
    stack: Vec<u8>,
    key: Vec<u8>,
}

impl Extracted {
    /// Scans `message`. Returns false, with nothing recorded, if it is not a JSON object
    /// (or is 4 GiB or more, which no log event is).
    pub fn scan(&mut self, paths: &Paths, message: &[u8]) -> bool {
        self.found.clear();
        self.first.clear();
        self.first.resize(paths.slots, NONE);
        if u32::try_from(message.len()).is_err() {
            return false;
        }
        let mut scan = Scan {
            s: message,
            i: 0,
            paths,
            out: self,
        };
        scan.ws();
        let valid = scan.peek() == Some(b'{') && scan.value(0).is_ok() && {
            scan.ws();
            scan.i == message.len()
        };
        if !valid {
            self.found.clear();
            self.first.fill(NONE);
        }
        valid
    }

    /// The values recorded for `slot`, the last in the event first.
    pub fn values(&self, slot: usize) -> impl Iterator<Item = &Found> {
        let mut at = self.first.get(slot).copied().unwrap_or(NONE);
        std::iter::from_fn(move || {
            let found = self.found.get(at as usize)?;
            at = found.next;
            Some(found)
        })
    }

    fn record(&mut self, slot: u16, kind: Kind, start: usize, end: usize) {
        let slot = usize::from(slot);
        // Offsets fit in u32: `scan` refuses messages of 4 GiB or more.
        let index = u32::try_from(self.found.len()).expect("fewer than 2^32 values");
        self.found.push(Found {
            kind,
            start: start as u32,
            end: end as u32,
            next: self.first[slot],
        });
        self.first[slot] = index;
    }
}

/// Invalid JSON.
struct Invalid;

type Step = Result<(), Invalid>;

struct Scan<'a> {
    s: &'a [u8],
    i: usize,
    paths: &'a Paths,
    out: &'a mut Extracted,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Step {
        if self.peek() == Some(byte) {
            self.i += 1;
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// A value in automaton state `state`: descend where selectors continue, record it for
    /// the slots that end here.
    fn value(&mut self, state: u32) -> Step {
        let paths = self.paths;
        let state = &paths.states[state as usize];
        let start = self.i;
        let kind = match self.peek() {
            Some(b'{') if state.descends_objects() => {
                self.object(state)?;
                Kind::Container
            }
            Some(b'[') if state.descends_arrays() => {
                self.array(state)?;
                Kind::Container
            }
            _ => self.skip_value()?,
        };
        let (start, end) = match kind {
            Kind::String { .. } => (start + 1, self.i - 1),
            _ => (start, self.i),
        };
        for &slot in &state.slots {
            self.out.record(slot, kind, start, end);
        }
        Ok(())
    }

    fn object(&mut self, state: &State) -> Step {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(Invalid);
            }
            let key_start = self.i + 1;
            let escaped = self.string()?;
            let s = self.s;
            let raw_key = &s[key_start..self.i - 1];
            let target = if escaped {
                self.out.key = unescape(raw_key);
                state.key(&self.out.key)
            } else {
                state.key(raw_key)
            };
            self.ws();
            self.expect(b':')?;
            self.ws();
            match target {
                Some(next) => self.value(next)?,
                None => {
                    self.skip_value()?;
                }
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Invalid),
            }
        }
    }

    fn array(&mut self, state: &State) -> Step {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        let mut index = 0u32;
        loop {
            self.ws();
            match state.index(index) {
                Some(next) => self.value(next)?,
                None => {
                    self.skip_value()?;
                }
            }
            index = index.saturating_add(1);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Invalid),
            }
        }
    }

    /// Skips any value, checking that it is valid JSON, and says what it was.
    fn skip_value(&mut self) -> Result<Kind, Invalid> {
        match self.peek().ok_or(Invalid)? {
            b'"' => Ok(Kind::String {
                escaped: self.string()?,
            }),
            b'{' | b'[' => self.skip_container().map(|()| Kind::Container),
            b't' => self.literal(b"true", Kind::True),
            b'f' => self.literal(b"false", Kind::False),
            b'n' => self.literal(b"null", Kind::Null),
            b'-' | b'0'..=b'9' => self.number().map(|()| Kind::Number),
            _ => Err(Invalid),
        }
    }

    fn literal(&mut self, word: &[u8], kind: Kind) -> Result<Kind, Invalid> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(kind)
        } else {
            Err(Invalid)
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, within the range of an f64 as
    /// common JSON parsers require.
    fn number(&mut self) -> Step {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let integer = self.i;
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Invalid),
        }
        let long = self.i - integer > 300;
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.require_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.require_digits()?;
            return self.finite(start);
        }
        if long {
            return self.finite(start);
        }
        Ok(())
    }

    /// Only numbers with an exponent or hundreds of digits can overflow, so only they are
    /// converted.
    fn finite(&self, start: usize) -> Step {
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| Invalid)?;
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(()),
            _ => Err(Invalid),
        }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn require_digits(&mut self) -> Step {
        let start = self.i;
        self.digits();
        if self.i > start {
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// Skips a string at its opening quote; returns whether it holds escapes.
    fn string(&mut self) -> Result<bool, Invalid> {
        self.i += 1;
        let mut escaped = false;
        loop {
            self.i += special_byte(&self.s[self.i..]).ok_or(Invalid)?;
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(escaped);
                }
                b'\\' => self.i += 1,
                _ => return Err(Invalid), // a control character, which JSON must escape
            }
            escaped = true;
            match self.peek().ok_or(Invalid)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                b'u' => {
                    let hex = self.s.get(self.i + 1..self.i + 5).ok_or(Invalid)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(Invalid);
                    }
                    self.i += 5;
                }
                _ => return Err(Invalid),
            }
        }
    }

    /// Skips an object or array nobody selected from, with an explicit stack.
    fn skip_container(&mut self) -> Step {
        let mut stack = std::mem::take(&mut self.out.stack);
        stack.clear();
        let result = self.skip_container_with(&mut stack);
        self.out.stack = stack;
        result
    }

    fn skip_container_with(&mut self, stack: &mut Vec<u8>) -> Step {
        // Invariant at the top of the loop: the cursor is where a value must start.
        loop {
            self.ws();
            match self.peek().ok_or(Invalid)? {
                open @ (b'{' | b'[') => {
                    self.i += 1;
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        stack.push(close);
                        if close == b'}' {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                _ => {
                    self.skip_value()?;
                }
            }
            // A value just ended: a comma continues its container, a bracket closes it.
            loop {
                let Some(&close) = stack.last() else {
                    return Ok(());
                };
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if close == b'}' {
                            self.member_key()?;
                        }
                        break;
                    }
                    Some(b) if b == close => {
                        self.i += 1;
                        stack.pop();
                    }
                    _ => return Err(Invalid),
                }
            }
        }
    }

    /// `"key" :` inside an object being skipped.
    fn member_key(&mut self) -> Step {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(Invalid);
        }
        self.string()?;
        self.ws();
        self.expect(b':')
    }
}

/// The offset of the first byte that ends a run of plain string text: a quote, a
/// backslash or a control character.
///
/// Most strings in an event are short (keys, names, ids), so rather than a vector search
/// with its set-up cost this tests eight bytes at a time in a `u64`: `v - 0x01…01` borrows
/// into the top bit of a byte exactly where the byte was zero, and the first flagged byte
/// is exact (later ones may be false alarms from the borrow, but only the first is used).
fn special_byte(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        let flagged = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (v.wrapping_sub(ONES * 0x20) & !v);
        let flagged = flagged & HIGH;
        if flagged != 0 {
            return Some(offset + (flagged.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|at| offset + at)
}

/// The contents of a JSON string whose escapes the scan has already checked.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let code = raw[i + 1];
        i += 2;
        let byte = match code {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut unit = hex4(&raw[i..i + 4]);
                i += 4;
                // A high surrogate followed by an escaped low one makes one character.
                if (0xD800..0xDC00).contains(&unit)
                    && raw.get(i..i + 2) == Some(b"\\u")
                    && raw.len() >= i + 6
                {
                    let low = hex4(&raw[i + 2..i + 6]);
                    if (0xDC00..0xE000).contains(&low) {
                        unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        i += 6;
                    }
                }
                let c = char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER);
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            other => other,
        };
        out.push(byte);
    }
    out
}

fn hex4(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, &d| {
        n * 16 + (d as char).to_digit(16).expect("checked by the scan")
    })
}
