//! JSON text helpers that keep a record exactly as its producer wrote it.

/// Removes whitespace outside strings. Unlike a parse and re-serialize, this keeps every
/// number's spelling, key order and duplicate keys as they were.
pub fn minify(text: &str) -> String {
    let bytes = minify_nesting_at_most(text, usize::MAX).expect("no text nests past usize::MAX");
    // Only ASCII whitespace outside strings was removed, so the text is still UTF-8.
    String::from_utf8(bytes).expect("removing ASCII whitespace keeps UTF-8 valid")
}

/// `minify`, as bytes, for text that must not nest arrays and objects more than `max`
/// levels deep (see `nests_deeper_than`): None when it does. One pass does both.
pub fn minify_nesting_at_most(text: &str, max: usize) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    // Bytes from `kept` on are copied in one piece when whitespace (or the end) is found.
    let mut kept = 0;
    let (mut pos, mut depth) = (0, 0usize);
    while pos < bytes.len() {
        match bytes[pos] {
            b'"' => {
                pos = string_end(bytes, pos);
                continue;
            }
            b' ' | b'\n' | b'\r' | b'\t' => {
                out.extend_from_slice(&bytes[kept..pos]);
                kept = pos + 1;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return None;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        pos += 1;
    }
    out.extend_from_slice(&bytes[kept..]);
    Some(out)
}

/// Where the string that opens at `start` (a quote) ends: just past its closing quote, or
/// at the end of the text if it never closes. Jumps from one quote or backslash to the next.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut pos = start + 1;
    loop {
        let Some(at) = bytes
            .get(pos..)
            .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
        else {
            return bytes.len();
        };
        pos += at + 1;
        if bytes[pos - 1] == b'"' {
            return pos;
        }
        pos += 1; // the escaped character
    }
}

/// Whether JSON text nests arrays and objects more than `max` levels deep. Skipping a value
/// without parsing it has no depth limit, but reading it later does (`serde_json` stops at
/// 128 levels), so records are held to a limit when they arrive.
pub fn nests_deeper_than(text: &str, max: usize) -> bool {
    let bytes = text.as_bytes();
    // Text with no more openers than the limit cannot nest past it; most records stop here.
    if memchr::memchr2_iter(b'{', b'[', bytes).count() <= max {
        return false;
    }
    minify_nesting_at_most(text, max).is_none()
}

#[cfg(test)]
mod tests {
    use super::{minify, minify_nesting_at_most, nests_deeper_than};

    #[test]
    fn measures_nesting_outside_strings() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!nests_deeper_than(&nested(100), 100));
        assert!(nests_deeper_than(&nested(101), 100));
        let wide = format!("[{}]", vec!["{}"; 500].join(","));
        assert!(!nests_deeper_than(&wide, 100));
        let quoted = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(300), "{".repeat(300));
        assert!(!nests_deeper_than(&quoted, 100));
        assert!(nests_deeper_than(
            &format!("{{\"a\":{}}}", nested(150)),
            100
        ));
        // Minifying measures the same way.
        for (text, deeper) in [
            (nested(100), false),
            (nested(101), true),
            (wide, false),
            (quoted, false),
        ] {
            assert_eq!(
                minify_nesting_at_most(&text, 100).is_none(),
                deeper,
                "{text}"
            );
        }
    }

    #[test]
    fn keeps_strings_and_numbers_exactly() {
        let text = "{ \"a b\" : [ 1.50 , 2e3, -0 ],\n \"q\\\" x\": \"tab\\t \\\\\" , \"n\": null }";
        assert_eq!(
            minify(text),
            "{\"a b\":[1.50,2e3,-0],\"q\\\" x\":\"tab\\t \\\\\",\"n\":null}"
        );
        let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            parsed,
            serde_json::from_str::<serde_json::Value>(&minify(text)).unwrap()
        );
    }

    #[test]
    fn survives_truncated_input() {
        // An unterminated string is kept to the end, as written.
        for (text, kept) in [
            ("\"abc", "\"abc"),
            ("\"ab\\", "\"ab\\"),
            ("{\"a\": \"x\\\"", "{\"a\":\"x\\\""),
        ] {
            assert_eq!(minify(text), kept);
        }
    }
}
