//! The scanner against a model: `serde_json` parses the event into a tree, a few lines walk
//! the tree along each selector, and both must find the same values. Arbitrary edits of
//! valid JSON must be accepted or rejected exactly as `serde_json` does.

use super::paths::Paths;
use super::scan::{Extracted, Kind};
use super::selector::{Selector, Step};
use proptest::prelude::*;
use serde_json::Value;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-c\"\\\\/é\\n\\u{1F600} ]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("a.b".to_string()),
        Just("é\"".to_string()),
    ]
}

fn selector() -> impl Strategy<Value = Selector> {
    let step = prop_oneof![
        key().prop_map(|k| Step::Key(k.into())),
        (0u32..3).prop_map(Step::Index),
        Just(Step::AnyKey),
        Just(Step::AnyIndex),
    ];
    (key(), prop::collection::vec(step, 0..3)).prop_map(|(first, rest)| {
        let mut steps = vec![Step::Key(first.into())];
        let mut wildcard = false;
        for step in rest {
            let is_wildcard = matches!(step, Step::AnyKey | Step::AnyIndex);
            if !(is_wildcard && wildcard) {
                wildcard |= is_wildcard;
                steps.push(step);
            }
        }
        Selector { steps }
    })
}

/// The model: what a selector reaches in a parsed tree, as (kind, text).
fn reach<'v>(value: &'v Value, steps: &[Step], out: &mut Vec<&'v Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(value);
        return;
    };
    match (step, value) {
        (Step::Key(k), Value::Object(map)) => {
            if let Some(v) = map.get(&**k) {
                reach(v, rest, out);
            }
        }
        (Step::Index(i), Value::Array(items)) => {
            if let Some(v) = items.get(*i as usize) {
                reach(v, rest, out);
            }
        }
        (Step::AnyKey, Value::Object(map)) => map.values().for_each(|v| reach(v, rest, out)),
        (Step::AnyIndex, Value::Array(items)) => items.iter().for_each(|v| reach(v, rest, out)),
        _ => {}
    }
}

fn describe(value: &Value) -> (String, Vec<u8>) {
    match value {
        Value::Null => ("null".into(), Vec::new()),
        Value::Bool(b) => ("bool".into(), b.to_string().into_bytes()),
        Value::Number(n) => ("number".into(), n.to_string().into_bytes()),
        Value::String(s) => ("string".into(), s.clone().into_bytes()),
        Value::Array(_) | Value::Object(_) => ("container".into(), Vec::new()),
    }
}

fn describe_found(kind: Kind, text: Vec<u8>) -> (String, Vec<u8>) {
    match kind {
        Kind::Null => ("null".into(), Vec::new()),
        Kind::True | Kind::False => ("bool".into(), text),
        Kind::Number => ("number".into(), text),
        Kind::String { .. } => ("string".into(), text),
        Kind::Container => ("container".into(), Vec::new()),
    }
}

proptest! {
    #[test]
    fn scanner_finds_what_the_tree_holds(
        fields in prop::collection::btree_map(key(), json_value(), 0..5),
        selectors in prop::collection::vec(selector(), 1..6),
        pretty in any::<bool>(),
    ) {
        let document = Value::Object(fields.into_iter().collect());
        let text = if pretty {
            serde_json::to_string_pretty(&document).unwrap()
        } else {
            serde_json::to_string(&document).unwrap()
        };
        let paths = Paths::new(&selectors);
        let mut extracted = Extracted::default();
        prop_assert!(extracted.scan(&paths, text.as_bytes()));
        for (slot, selector) in selectors.iter().enumerate() {
            let mut expected = Vec::new();
            reach(&document, &selector.steps, &mut expected);
            let mut expected: Vec<_> = expected.into_iter().map(describe).collect();
            let mut found: Vec<_> = extracted
                .values(slot)
                .map(|f| describe_found(f.kind, f.text(text.as_bytes()).into_owned()))
                .collect();
            expected.sort();
            found.sort();
            prop_assert_eq!(found, expected, "{} in {}", selector, text);
        }
    }

    #[test]
    fn scanner_accepts_exactly_what_serde_json_accepts(
        document in json_value(),
        edit_at in any::<prop::sample::Index>(),
        edit in prop_oneof![
            Just(None),
            prop::sample::select(&b"{}[]\",:\\0-e.tn \x01"[..]).prop_map(Some),
        ],
        delete in any::<bool>(),
    ) {
        let mut text = serde_json::to_string(&serde_json::json!({ "d": document })).unwrap().into_bytes();
        let at = edit_at.index(text.len());
        if delete {
            text.remove(at);
        }
        if let Some(byte) = edit {
            text.insert(at, byte);
        }
        // An edit that cuts a character in two is not a case: proptest draws another.
        let text = String::from_utf8(text);
        prop_assume!(text.is_ok());
        let text = text.unwrap();
        let model = matches!(serde_json::from_str::<Value>(&text), Ok(Value::Object(_)));
        let paths = Paths::new(&[Selector { steps: vec![Step::Key("d".into())] }]);
        let mut extracted = Extracted::default();
        prop_assert_eq!(extracted.scan(&paths, text.as_bytes()), model, "{}", text);
    }
}

#[test]
fn deep_nesting_is_skipped_without_recursion() {
    let deep = format!("{{\"x\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let paths = Paths::new(&[Selector {
        steps: vec![Step::Key("y".into())],
    }]);
    assert!(Extracted::default().scan(&paths, deep.as_bytes()));
}
