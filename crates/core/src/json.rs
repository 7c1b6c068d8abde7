//! JSON text helpers that keep a record exactly as its producer wrote it.

/// Removes whitespace outside strings. Unlike a parse and re-serialize, this keeps every
/// number's spelling, key order and duplicate keys as they were.
pub fn minify(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut pos = 0;
    while pos < bytes.len() {
        let b = bytes[pos];
        if b == b'"' {
            // Copy the whole string, jumping from one quote or backslash to the next.
            let start = pos;
            pos += 1;
            loop {
                let next = bytes
                    .get(pos..)
                    .and_then(|rest| memchr::memchr2(b'"', b'\\', rest));
                let Some(at) = next else {
                    pos = bytes.len(); // an unterminated string runs to the end
                    break;
                };
                pos += at + 1;
                if bytes[pos - 1] == b'"' {
                    break;
                }
                pos += 1; // the escaped character
            }
            let end = pos.min(bytes.len());
            out.extend_from_slice(&bytes[start..end]);
            pos = end;
        } else {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                out.push(b);
            }
            pos += 1;
        }
    }
    // Only ASCII whitespace outside strings was removed, so the text is still UTF-8.
    String::from_utf8(out).expect("removing ASCII whitespace keeps UTF-8 valid")
}

#[cfg(test)]
mod tests {
    use super::minify;

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
