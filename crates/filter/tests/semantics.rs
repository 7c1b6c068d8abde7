//! Behaviour beyond the documented vectors: how values compare, what never matches, and
//! how space-delimited fields are extracted.

use cairn_filter::{Filter, FilterSet, Pattern, Scratch};
use std::time::{Duration, Instant};

fn matches(pattern: &str, event: &str) -> bool {
    Pattern::parse(pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"))
        .matches(event)
}

#[test]
fn quoted_literals_compare_as_text_and_numbers_numerically() {
    let event = r#"{"someInt":123,"someFloat":12.0,"text":"80","word":"abc"}"#;
    assert!(matches(r#"{ $.someInt = "123" }"#, event));
    assert!(!matches(r#"{ $.someInt = "123.00" }"#, event));
    assert!(matches(r#"{ $.someInt != "123.0" }"#, event));
    assert!(matches("{ $.someInt = 123.0 }", event));
    assert!(matches("{ $.someFloat = 12 }", event));
    assert!(matches(r#"{ $.someFloat != "12" }"#, event));
    assert!(matches("{ $.someInt = 12* }", event));
    assert!(matches("{ $.someInt = *23 }", event));
    assert!(
        matches("{ $.text > 75 }", event),
        "numeric text compares as a number"
    );
    assert!(!matches("{ $.word > 75 }", event), "a word is not a number");
    assert!(!matches("{ $.word = 0 }", event));
    assert!(matches(
        "{ $.someInt >= 123 && $.someInt <= 123 && $.someInt < 1.24e2 }",
        event
    ));
}

#[test]
fn objects_arrays_nulls_and_missing_fields() {
    let event = r#"{"obj":{"a":1},"arr":[1,2],"nothing":null,"yes":true,"no":false,"empty":""}"#;
    for pattern in [
        "{ $.obj = * }",
        "{ $.obj != 1 }",
        "{ $.obj NOT EXISTS }",
        "{ $.obj IS NULL }",
        "{ $.arr = * }",
        "{ $.nothing = * }",
        "{ $.nothing != 1 }",
        "{ $.missing != 1 }",
        "{ $.missing = * }",
        "{ $.nothing NOT EXISTS }",
        "{ $.yes IS FALSE }",
        "{ $.no IS TRUE }",
        "{ $.obj.a.b = 1 }",
        "{ $.arr[2] = * }",
    ] {
        assert!(!matches(pattern, event), "{pattern} should not match");
    }
    for pattern in [
        "{ $.obj.a = 1 }",
        "{ $.arr[1] = 2 }",
        "{ $.nothing IS NULL }",
        "{ $.yes IS TRUE }",
        "{ $.no IS FALSE }",
        r#"{ $.yes = "true" }"#,
        "{ $.missing NOT EXISTS }",
        r#"{ $.empty = "*" }"#,
        r#"{ $.empty = "" }"#,
    ] {
        assert!(matches(pattern, event), "{pattern} should match");
    }
}

#[test]
fn json_patterns_need_a_json_object() {
    for event in [
        "not json",
        r#"{"a":1"#,
        r#"{"a":1} trailing"#,
        r#"{"a":01}"#,
        r#"{"a":"tab	inside"}"#,
        r#"[{"a":1}]"#,
        r#"{"a":1,}"#,
        r#"{"a":tru}"#,
        r#"{"a":"\x"}"#,
    ] {
        assert!(!matches("{ $.a NOT EXISTS || $.a = * }", event), "{event}");
    }
    assert!(matches("{ $.a = 1 }", " \n{ \"a\" : 1 }\r\n"));
}

#[test]
fn escapes_in_keys_and_values_are_decoded() {
    let event = r#"{"k\u0065y":"a\"b\\c\u00e9\ud83d\ude00","path":"\/x"}"#;
    assert!(matches(r#"{ $.key = "a\"b\\cé😀" }"#, event));
    assert!(matches(r#"{ $.path = "/x" }"#, event));
    assert!(matches(r#"{ $.key = "a\"b*" }"#, event));
}

#[test]
fn wildcards_hold_when_any_value_does() {
    let event = r#"{"a":{"x":1,"y":"two"},"list":[{"id":1},{"id":5}],"b":{"x":9}}"#;
    assert!(matches("{ $.list[*].id = 5 }", event));
    assert!(!matches("{ $.list[*].id = 3 }", event));
    assert!(matches("{ $.*.x = 9 }", event));
    assert!(matches("{ $.a.* = two }", event));
    assert!(
        matches("{ $.a.x = 1 && $.*.x = 9 }", event),
        "a named and a wildcard path through the same key"
    );
    assert!(matches("{ $.list[*].missing NOT EXISTS }", event));
    assert!(!matches("{ $.* = 1 }", event), "$.* does not descend");
}

#[test]
fn terms() {
    assert!(
        matches("ERROR", "Exiting with ERRORCODE: -1"),
        "terms match inside words"
    );
    assert!(!matches("error", "ERROR"), "matching is case-sensitive");
    assert!(matches("-ARGUMENTS", "[ERROR 400] BAD REQUEST"));
    assert!(!matches("-ARGUMENTS", "[ERROR 420] INVALID ARGUMENTS"));
    assert!(matches(r#""ERROR" - "Exiting""#, "ERROR: disk full"));
    assert!(!matches(r#""ERROR" - "Exiting""#, "ERROR: Exiting"));
    assert!(matches(
        r#""[ERROR]" Exception"#,
        "[ERROR] Unhandled exception: InvalidQueryException"
    ));
    assert!(matches("?nothing ?here", "it is here"));
    assert!(!matches("?nothing ?here", "none"));
    assert!(matches("", "anything"));
}

#[test]
fn space_delimited_extraction_keys() {
    let line = "a b c d e f 42";
    let extracted = |pattern: &str| {
        let set = FilterSet::new(vec![Filter::new(Pattern::parse(pattern).unwrap())]);
        let mut scratch = Scratch::default();
        set.evaluate(line, &mut scratch);
        assert!(set.is_match(&scratch, 0), "{pattern}");
        set.extracted_values(0, line, &mut scratch)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        extracted("[..., size]"),
        "$1=a $2=b $3=c $4=d $5=e $6=f $size=42"
    );
    assert_eq!(extracted("[]"), "$1=a $2=b $3=c $4=d $5=e $6=f $7=42");
    assert_eq!(
        extracted("[first, , ...]"),
        "$first=a $2=b $3=c $4=d $5=e $6=f $7=42"
    );
    assert_eq!(extracted("[first, rest]"), "$first=a $rest=b c d e f 42");
    assert_eq!(
        extracted("[..., x, y = 42]"),
        "$1=a $2=b $3=c $4=d $5=e $x=f $y=42"
    );
}

#[test]
fn space_delimited_field_counts() {
    assert!(!matches("[a, b, c]", "one two"), "too few fields");
    assert!(
        matches("[a, b, c]", "one two three four"),
        "the last field takes the rest"
    );
    assert!(matches("[a, ..., c = four]", "one two three four"));
    assert!(
        matches("[a, ..., c = two]", "one two"),
        "... may stand for no field"
    );
    assert!(!matches("[a = x]", ""));
    assert!(matches(r#"[q = "a b", n]"#, r#""a b" 1"#));
    assert!(matches("[a, b]", "  spaced    out  "));
}

#[test]
fn ellipses_stay_linear() {
    let many = format!("[{}, x = never]", vec!["..."; 30].join(", "));
    let cases = [
        (many.as_str(), vec!["w"; 400].join(" ")),
        ("[..., ..., x = NOPE]", vec!["a"; 200_000].join(" ")),
        (
            "[..., a, ..., a, ..., x = NOPE]",
            vec!["a"; 200_000].join(" "),
        ),
    ];
    for (pattern, line) in cases {
        let pattern = Pattern::parse(pattern).unwrap();
        let started = Instant::now();
        assert!(!pattern.matches(&line));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn fields_read_the_first_scalar_in_the_event() {
    let filter = Filter {
        pattern: Pattern::parse("{ $.a[*] = * }").unwrap(),
        fields: vec![cairn_filter::Field::parse("$.a[*]").unwrap()],
    };
    let set = FilterSet::new(vec![filter]);
    let mut scratch = Scratch::default();
    let event = r#"{"a":[{"x":1},null,7,8]}"#;
    set.evaluate(event, &mut scratch);
    assert!(set.is_match(&scratch, 0));
    assert_eq!(
        set.field(0, 0, event, &mut scratch).as_deref(),
        Some(&b"7"[..])
    );
}

#[test]
fn a_set_agrees_with_each_filter_alone() {
    let patterns = [
        r#"{ $.eventName = "ConsoleLogin" }"#,
        "{ $.userIdentity.type = Root && $.userIdentity.invokedBy NOT EXISTS }",
        "{ $.* = %^Console% }",
        "{ $.userIdentity.* = alice }",
        "{ $.eventName = ConsoleLogin && $.userIdentity.type = Root }",
        "ConsoleLogin",
        "[a, ...]",
        "",
    ];
    let events = [
        r#"{"eventName":"ConsoleLogin","userIdentity":{"type":"Root","userName":"alice"}}"#,
        r#"{"eventName":"GetUser","userIdentity":{"type":"Root","invokedBy":"x"}}"#,
        "plain text ConsoleLogin",
    ];
    let set = FilterSet::new(
        patterns
            .iter()
            .map(|p| Filter::new(Pattern::parse(p).unwrap()))
            .collect(),
    );
    let mut scratch = Scratch::default();
    for event in events {
        set.evaluate(event, &mut scratch);
        for (i, pattern) in patterns.iter().enumerate() {
            assert_eq!(
                set.is_match(&scratch, i),
                matches(pattern, event),
                "{pattern} on {event}"
            );
        }
    }
}
