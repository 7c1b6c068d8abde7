//! JSON text helpers that keep a record exactly as its producer wrote it.

/// Removes whitespace outside strings. Unlike a parse and re-serialize, this keeps every
/// number's spelling, key order and duplicate keys as they were.
pub fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
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
}
