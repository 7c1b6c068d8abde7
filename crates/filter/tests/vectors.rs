//! The documented filter-pattern examples (fact sheet §6.4, vectors 1–44), table-driven.

use cairn_filter::{Field, Filter, FilterSet, Pattern, Scratch};

const J1: &str = r#"{"eventType":"UpdateTrail","sourceIPAddress":"111.111.111.111","arrayKey":["value","another value"],"objectList":[{"name":"a","id":1},{"name":"b","id":2}],"SomeObject":null,"cluster.name":"c"}"#;

const J2: &str = r#"{"user":{"id":1,"email":"John.Stiles@example.com"},"users":[{"id":2,"email":"John.Doe@example.com"},{"id":3,"email":"Jane.Doe@example.com"}],"actions":["GET","PUT","DELETE"],"coordinates":[[0,1,2],[4,5,6],[7,8,9]]}"#;

const U: [&str; 9] = [
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[ERROR 500] INTERNAL SERVER ERROR",
    "[SUCCESS 200] AUTHORIZED REQUEST",
    "[INFO] REQUEST FAILED",
    "[WARN] UNAUTHORIZED REQUEST",
    "[ERROR] 400 BAD REQUEST",
];

const S1: &str =
    r#"127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;

const S: [&str; 4] = [
    "INFO 09/25/2014 12:00:00 GET /service/resource/67 1200",
    "INFO 09/25/2014 12:00:01 POST /service/resource/67/part/111 1310",
    "WARNING 09/25/2014 12:00:02 Invalid user request",
    "ERROR 09/25/2014 12:00:02 Failed to process request",
];

const CREATE_TRAIL: &str = r#"{"eventVersion":"1.11",
 "userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEROLEID0001:deploy-bot",
   "arn":"arn:aws:sts::111122223333:assumed-role/Deployer/deploy-bot","accountId":"111122223333",
   "accessKeyId":"ASIAEXAMPLEKEY000001",
   "sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLEROLEID0001",
       "arn":"arn:aws:iam::111122223333:role/Deployer","accountId":"111122223333","userName":"Deployer"},
     "attributes":{"creationDate":"2025-03-04T17:05:41Z","mfaAuthenticated":"false"}}},
 "eventTime":"2025-03-04T17:22:09Z","eventSource":"cloudtrail.amazonaws.com","eventName":"CreateTrail",
 "awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.23",
 "userAgent":"aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0 lang/python#3.11.8 md/command#cloudtrail.create-trail",
 "requestParameters":{"name":"audit","s3BucketName":"audit-logs-111122223333","isMultiRegionTrail":true,
   "enableLogFileValidation":true},
 "responseElements":{"name":"audit","s3BucketName":"audit-logs-111122223333","includeGlobalServiceEvents":true,
   "isMultiRegionTrail":true,"trailARN":"arn:aws:cloudtrail:eu-west-1:111122223333:trail/audit",
   "logFileValidationEnabled":true,"isOrganizationTrail":false},
 "requestID":"0b5c3f4e-8a51-4c7e-9f1d-2b7f8c6a9e10","eventID":"5d2c9b7a-3e4f-4a1b-8c6d-7e8f9a0b1c2d",
 "readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333",
 "eventCategory":"Management",
 "tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256",
   "clientProvidedHostHeader":"cloudtrail.eu-west-1.amazonaws.com"}}"#;

const FAILED_SIGN_IN: &str = r#"{"eventVersion":"1.11","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","accountId":"111122223333","userName":"alice"},
 "eventTime":"2025-03-04T08:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1",
 "sourceIPAddress":"203.0.113.7","userAgent":"Mozilla/5.0","errorMessage":"Failed authentication","requestParameters":null,
 "responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/","MobileVersion":"No","MFAUsed":"No"},
 "eventID":"...","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#;

fn matches(pattern: &str, event: &str) -> bool {
    Pattern::parse(pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"))
        .matches(event)
}

/// Asserts which of `events` the pattern matches, by index.
fn check(number: u32, pattern: &str, events: &[&str], expected: &[usize]) {
    let matched: Vec<usize> = (0..events.len())
        .filter(|&i| matches(pattern, events[i]))
        .collect();
    assert_eq!(matched, expected, "vector {number}: {pattern}");
}

/// The text of each field of a one-filter set after evaluating `event`.
fn fields(pattern: &str, fields: &[&str], event: &str) -> Vec<Option<String>> {
    let filter = Filter {
        pattern: Pattern::parse(pattern).unwrap(),
        fields: fields.iter().map(|f| Field::parse(f).unwrap()).collect(),
    };
    let set = FilterSet::new(vec![filter]);
    let mut scratch = Scratch::default();
    set.evaluate(event, &mut scratch);
    assert!(set.is_match(&scratch, 0), "{pattern} should match {event}");
    (0..fields.len())
        .map(|i| {
            set.field(0, i, event, &mut scratch)
                .map(|v| String::from_utf8(v.into_owned()).unwrap())
        })
        .collect()
}

#[test]
fn json_selectors_and_comparisons_on_j1() {
    let table: &[(u32, &str, bool)] = &[
        (1, r#"{ $.eventType = "UpdateTrail" }"#, true),
        (2, r#"{ $.sourceIPAddress != 123.123.* }"#, true),
        (3, r#"{ $.arrayKey[0] = "value" }"#, true),
        (4, r#"{ $.objectList[1].id = 2 }"#, true),
        (5, r#"{ $.SomeObject IS NULL }"#, true),
        (6, r#"{ $.SomeOtherObject NOT EXISTS }"#, true),
        (7, r#"{ $.eventType = %Trail% }"#, true),
        (8, r#"{ $.arrayKey[*] = %val.{2}% }"#, true),
        (9, r#"{ $.* = %111\.111\.111\.1[0-9]{1,2}% }"#, true),
        (10, r#"{ $.['cluster.name'] = "c" }"#, true),
        (
            11,
            r#"{ $.eventType = "*" && $.sourceIPAddress != 123.123.* }"#,
            true,
        ),
        (12, r#"{ $.arrayKey[1] = "value" }"#, false),
        (13, r#"{ $.eventType IS NULL }"#, false),
        (13, r#"{ $.eventType NOT EXISTS }"#, false),
        (14, r#"{ $.objectList[1].number = 2 }"#, false),
    ];
    for &(number, pattern, expected) in table {
        assert_eq!(matches(pattern, J1), expected, "vector {number}: {pattern}");
    }
}

#[test]
fn vector_11_dimension_reads_the_event_type() {
    let values = fields(
        r#"{ $.eventType = "*" && $.sourceIPAddress != 123.123.* }"#,
        &["$.eventType"],
        J1,
    );
    assert_eq!(values, [Some("UpdateTrail".to_string())]);
}

#[test]
fn and_binds_tighter_than_or_on_j2() {
    let table: &[(u32, &str, bool)] = &[
        (
            15,
            r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
            true,
        ),
        (
            16,
            r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nonmatch" }"#,
            true,
        ),
        (
            17,
            r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nonmatch" }"#,
            false,
        ),
        (
            18,
            r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
            false,
        ),
    ];
    for &(number, pattern, expected) in table {
        assert_eq!(matches(pattern, J2), expected, "vector {number}: {pattern}");
    }
}

#[test]
fn numeric_comparisons() {
    assert!(
        matches("{ $.bandwidth > 75 }", r#"{"bandwidth":80}"#),
        "vector 19"
    );
    assert!(
        !matches("{ $.bandwidth > 75 }", r#"{"bandwidth":75}"#),
        "vector 20"
    );
    let latency = r#"{"latency":50,"requestType":"GET"}"#;
    assert!(matches("{ $.latency = * }", latency), "vector 21");
    assert_eq!(
        fields("{ $.latency = * }", &["$.latency"], latency),
        [Some("50".to_string())],
        "vector 21 publishes 50"
    );
}

#[test]
fn unstructured_terms() {
    check(22, "ERROR", &U, &[0, 1, 2, 3, 4, 8]);
    check(23, "ERROR ARGUMENTS", &U, &[2, 3]);
    check(24, "?ERROR ?ARGUMENTS", &U, &[0, 1, 2, 3, 4, 8]);
    check(25, r#""INTERNAL SERVER ERROR""#, &U, &[4]);
    check(26, "ERROR -ARGUMENTS", &U, &[0, 1, 4, 8]);
    check(27, r#"" ""#, &U, &[0, 1, 2, 3, 4, 5, 6, 7, 8]);
    check(28, "%AUTHORIZED%", &U, &[1, 5, 7]);
    // The ? terms are ignored beside a plain term: every line with REQUEST matches.
    check(29, "?ERROR ?ARGUMENTS REQUEST", &U, &[0, 1, 5, 6, 7, 8]);
}

#[test]
fn space_delimited_fields_on_s1() {
    let table: &[(u32, &str)] = &[
        (30, "[ip, user, username, timestamp, request =*.html*, status_code = 4*, bytes]"),
        (31, "[..., request =*.html*, status_code = 4*, bytes]"),
        (32, "[ip, user, username, timestamp, request =*.html*, status_code = 404 || status_code = 410, bytes]"),
        (33, "[ip, server, username, timestamp, request, status_code, bytes > 1000]"),
        (34, r"[ip=%127\.0\.0\.[1-9]%, user, username, timestamp, request =*.html*, status_code = 4*, bytes]"),
    ];
    for &(number, pattern) in table {
        assert!(matches(pattern, S1), "vector {number}: {pattern}");
    }
}

#[test]
fn vector_30_extracts_every_field_without_brackets_or_quotes() {
    let set = FilterSet::new(vec![Filter::new(
        Pattern::parse(
            "[ip, user, username, timestamp, request =*.html*, status_code = 4*, bytes]",
        )
        .unwrap(),
    )]);
    let mut scratch = Scratch::default();
    set.evaluate(S1, &mut scratch);
    let values = set.extracted_values(0, S1, &mut scratch);
    let expected = [
        ("$ip", "127.0.0.1"),
        ("$user", "Prod"),
        ("$username", "frank"),
        ("$timestamp", "10/Oct/2000:13:25:15 -0700"),
        ("$request", "GET /index.html HTTP/1.0"),
        ("$status_code", "404"),
        ("$bytes", "1534"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(values, expected);
}

#[test]
fn vector_33_dimension_reads_a_named_field() {
    let values = fields(
        "[ip, server, username, timestamp, request, status_code, bytes > 1000]",
        &["$server"],
        S1,
    );
    assert_eq!(values, [Some("Prod".to_string())]);
}

#[test]
fn space_delimited_conditions_on_log_lines() {
    check(35, "[w1=ERROR, w2]", &S, &[3]);
    check(36, "[w1=ERROR || w1=WARNING, w2]", &S, &[2, 3]);
    check(37, "[w1!=ERROR && w1!=WARNING, w2]", &S, &[0, 1]);
    check(
        38,
        "[logLevel, date, time, method, url=%/service/resource/[0-9]+$%, response_time]",
        &S,
        &[0],
    );
    check(
        39,
        "[logLevel, date, time, method, url=%/service/resource/[0-9]+/part/[0-9]+$%, response_time]",
        &S,
        &[1],
    );
}

#[test]
fn cloudtrail_patterns() {
    let success = FAILED_SIGN_IN
        .replace(r#""errorMessage":"Failed authentication","#, "")
        .replace("Failure", "Success");
    let failed_login =
        r#"{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }"#;
    check(40, failed_login, &[FAILED_SIGN_IN, &success], &[0]);

    let root = r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#;
    let root_call = CREATE_TRAIL.replace(r#""type":"AssumedRole""#, r#""type":"Root""#);
    let root_by_service = root_call.replace(
        r#""type":"Root","#,
        r#""type":"Root","invokedBy":"cloudtrail.amazonaws.com","#,
    );
    let root_service_event = root_call.replace("AwsApiCall", "AwsServiceEvent");
    check(
        41,
        root,
        &[
            &root_call,
            CREATE_TRAIL,
            &root_by_service,
            &root_service_event,
        ],
        &[0],
    );

    let unauthorized =
        r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }"#;
    let with_error = |code: &str| {
        CREATE_TRAIL.replace(
            r#""eventType":"AwsApiCall""#,
            &format!(r#""eventType":"AwsApiCall","errorCode":"{code}""#),
        )
    };
    check(
        42,
        unauthorized,
        &[
            &with_error("Client.UnauthorizedOperation"),
            &with_error("AccessDeniedException"),
            CREATE_TRAIL,
            &with_error("ThrottlingException"),
        ],
        &[0, 1],
    );

    let security_groups = "{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }";
    let named = |name: &str| CREATE_TRAIL.replace("\"CreateTrail\"", &format!("\"{name}\""));
    let events: Vec<String> = [
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress",
        "CreateSecurityGroup",
        "DeleteSecurityGroup",
        "DescribeSecurityGroups",
    ]
    .iter()
    .map(|n| named(n))
    .collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    check(43, security_groups, &events, &[0, 1, 2, 3, 4, 5]);

    check(
        44,
        r#"{ $.eventName = "CreateTrail" }"#,
        &[CREATE_TRAIL],
        &[0],
    );
}
