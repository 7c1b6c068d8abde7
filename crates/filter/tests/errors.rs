//! Patterns AWS rejects: each gives an error naming the column of the offending text.

use cairn_filter::Pattern;

#[test]
fn rejected_patterns_point_at_the_problem() {
    // (pattern, column, part of the message)
    let table: &[(&str, usize, &str)] = &[
        ("{ $.eventName = }", 17, "expected a value"),
        (
            "{ $.eventName }",
            15,
            "expected =, !=, <, <=, >, >=, IS or NOT EXISTS",
        ),
        ("{ eventName = x }", 3, "expected a selector"),
        ("{ $.eventName = x", 18, "closing }"),
        ("{ $.eventName = x } extra", 21, "after the closing }"),
        ("{ ($.a = 1 }", 12, "\")\""),
        ("{ $.a IS NOT NULL }", 10, "expected NULL, TRUE or FALSE"),
        ("{ $.a EXISTS }", 7, "expected =, !="),
        ("{ $.a NOT NULL }", 11, "expected EXISTS"),
        ("{ $.a > \"5\" }", 9, "compare with a number"),
        ("{ $.a > abc }", 9, "compare with a number"),
        ("{ $. = 1 }", 4, "expected a field name"),
        ("{ $ = 1 }", 3, "a selector needs a field"),
        ("{ $.a[x] = 1 }", 6, "array index"),
        ("{ $.a[0 = 1 }", 8, "expected \"]\""),
        ("{ $.*[*] = 1 }", 3, "at most one wildcard"),
        ("{ $.a = x:y }", 10, "cannot appear in an unquoted value"),
        ("{ $.a = \"open }", 9, "never closed"),
        ("{ $.a = %ab(c)% }", 12, "\"(\" is not allowed"),
        ("{ $.a = %something!% }", 19, "\"!\" is not allowed"),
        ("{ $.a = %abc }", 9, "never closed"),
        ("{ $.a = %% }", 9, "must not be empty"),
        ("{ $.a = %a[% }", 9, "invalid regex"),
        ("{ $.a = %\\q% }", 11, "not an escape"),
        (
            "{ $.a = %a% || $.b = %b% || $.c = %c% }",
            35,
            "at most 2 regexes",
        ),
        (
            "{ $.* = 1 || $.* = 2 || $.* = 3 || $.* = 4 }",
            36,
            "at most 3 wildcard",
        ),
        ("{ $[0] = 1 }", 4, "a selector starts with \"$.\""),
        ("[a, b", 6, "expected \",\" or \"]\""),
        ("[a = ]", 6, "expected a value"),
        ("[=5]", 2, "needs a field name"),
        ("[a = 1 || b = 2]", 11, "must all name \"a\""),
        ("[a > x]", 6, "compare with a number"),
        ("[a] b", 5, "after the closing ]"),
        ("[a b]", 4, "expected a field name, a comparison"),
        ("ERROR:", 6, "Invalid character(s) in term 'ERROR:'"),
        ("\"open", 1, "never closed"),
        ("\"a\"b", 4, "expected a space"),
        ("?", 2, "expected a term"),
        ("%a% %b% %c%", 9, "at most 2 regexes"),
        ("{ $.a € }", 7, "expected =, !="),
        ("{ $.a IS€ }", 9, "expected NULL, TRUE or FALSE"),
        ("{ $.a = %é% }", 10, "ASCII characters only"),
    ];
    for &(pattern, column, message) in table {
        let error = Pattern::parse(pattern)
            .err()
            .unwrap_or_else(|| panic!("{pattern:?} should be rejected"));
        assert!(
            error.message.contains(message),
            "{pattern:?}: {:?} should contain {message:?}",
            error.message
        );
        assert_eq!(error.column, column, "{pattern:?}: {error}");
    }
}

#[test]
fn columns_count_characters_not_bytes() {
    let error = Pattern::parse("{ $.a = \"é\" && $.b ! }").unwrap_err();
    assert_eq!(error.column, 20, "{error}");
}

#[test]
fn accepted_forms() {
    for pattern in [
        "",
        "   ",
        "{$.a=1}",
        "{ $.a = 1e-3 }",
        "{ $.a >= -1.5E+2 }",
        "{ $.a = +7 }",
        "{ $.a = 12* }",
        "{ $.a = * }",
        "{ $.a = \"*\" }",
        "{ $.a = \"say \\\"hi\\\"\" }",
        "{ $.a[*].b = 1 }",
        "{ $.['x.y'].z IS TRUE }",
        "{ $.a IS FALSE || ($.b NOT EXISTS && ($.c = 1)) }",
        "{ $.a = %^starting|^shutting down% }",
        "{ $.a = %\\x28\\d{2,}\\x29% }",
        "[]",
        "[...]",
        "[a, , c,]",
        "[w1=ERROR || w1=%WARN%, w2]",
        "[a = 1 && a != 2 || a = 5, ...]",
        "- \"Exiting\"",
        "-ERROR",
        "?\"a b\" ?c",
        "ERROR_1 v1.2-beta",
    ] {
        if let Err(e) = Pattern::parse(pattern) {
            panic!("{pattern:?}: {e}");
        }
    }
}
