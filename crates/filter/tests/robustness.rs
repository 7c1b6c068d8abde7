//! Any text, as a pattern or as an event, gives an answer: never a panic.

use cairn_filter::Pattern;
use proptest::prelude::*;

const EVENTS: [&str; 4] = [
    r#"{"eventName":"ConsoleLogin","a":[1,{"b":null}],"n":-1.5e3}"#,
    r#"127.0.0.1 - [10/Oct/2000:13:25:15 -0700] "GET /x" 200"#,
    "",
    "{\"unterminated",
];

proptest! {
    #[test]
    fn patterns_made_of_syntax_never_panic(
        pieces in prop::collection::vec(prop::sample::select(vec![
            "{", "}", "[", "]", "(", ")", "$", ".", "*", "[*]", "['k.k']", "$.a", "$.a[0]", "=",
            "!=", ">", ">=", "<", "&&", "||", "IS", "NULL", "TRUE", "NOT", "EXISTS", "\"",
            "\"q\"", "%", "%a.b%", "%[0-9]{1,}%", "\\", "-", "?", "...", ",", " ", "1e3", "-2",
            "4*", "x", "é", "\\x41",
        ]), 0..16),
    ) {
        let text: String = pieces.concat();
        if let Ok(pattern) = Pattern::parse(&text) {
            for event in EVENTS {
                pattern.matches(event);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,64}", event in ".{0,64}") {
        if let Ok(pattern) = Pattern::parse(&text) {
            pattern.matches(&event);
        }
    }
}
