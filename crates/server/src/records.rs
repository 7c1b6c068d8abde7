//! Validation of CloudTrail records sent by other producers (the bulk endpoint, import).
//! Each record is accepted or refused on its own, with an error code from the set AWS uses
//! for per-event failures (`FieldNotFound`, `InvalidData`, `InvalidRecipient`).

use std::borrow::Cow;

use cairn_core::index::attributes_of;
use cairn_core::summary::Parts;
use cairn_core::timefmt::parse_event_time;
use cairn_core::{Category, IndexFields};
use cairn_store::Event;
use serde::Deserialize;
use serde_json::value::RawValue;

/// CloudTrail caps an event at 256 KB.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;
/// How deep arrays and objects may nest in a record: readers of stored records parse them,
/// and parsers stop at some depth (`serde_json` at 128).
pub const MAX_DEPTH: usize = 100;

/// Why one record was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// What the checks need to know about the call.
pub struct Policy<'a> {
    /// Accounts whose records the caller may write (always including its own).
    pub may_write_for: &'a dyn Fn(&str) -> bool,
    /// Oldest and newest acceptable eventTime, epoch seconds.
    pub oldest: i64,
    pub newest: i64,
}

const EVENT_TYPES: &[&str] = &[
    "AwsApiCall",
    "AwsServiceEvent",
    "AwsConsoleAction",
    "AwsConsoleSignIn",
    "AwsCloudTrailInsight",
    "AwsVpceEvent",
    "ActivityLog",
];

/// The fields the checks look at, each left unparsed until needed; everything else in the
/// record is skipped without building a tree.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape<'a> {
    #[serde(borrow)]
    event_version: Option<&'a RawValue>,
    #[serde(borrow)]
    event_time: Option<&'a RawValue>,
    #[serde(rename = "eventID", borrow)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    aws_region: Option<&'a RawValue>,
    #[serde(borrow)]
    event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    event_category: Option<&'a RawValue>,
    #[serde(borrow)]
    event_source: Option<&'a RawValue>,
    #[serde(borrow)]
    event_name: Option<&'a RawValue>,
    #[serde(borrow)]
    user_identity: Option<&'a RawValue>,
    #[serde(borrow)]
    insight_details: Option<&'a RawValue>,
    #[serde(rename = "sourceIPAddress", borrow)]
    source_ip_address: Option<&'a RawValue>,
    #[serde(borrow)]
    user_agent: Option<&'a RawValue>,
    #[serde(borrow)]
    error_code: Option<&'a RawValue>,
    #[serde(borrow)]
    error_message: Option<&'a RawValue>,
    #[serde(rename = "requestID", borrow)]
    request_id: Option<&'a RawValue>,
    #[serde(rename = "sharedEventID", borrow)]
    shared_event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    vpc_endpoint_id: Option<&'a RawValue>,
    #[serde(borrow)]
    request_parameters: Option<&'a RawValue>,
    #[serde(borrow)]
    response_elements: Option<&'a RawValue>,
    #[serde(borrow)]
    read_only: Option<&'a RawValue>,
    #[serde(borrow)]
    management_event: Option<&'a RawValue>,
    #[serde(borrow)]
    resources: Option<&'a RawValue>,
    #[serde(borrow)]
    recipient_account_id: Option<&'a RawValue>,
    #[serde(borrow)]
    session_credential_from_console: Option<&'a RawValue>,
}

/// The JSON type of an unparsed value, from its first byte.
fn kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn string<'a>(
    raw: Option<&'a RawValue>,
    field: &str,
    required: bool,
) -> Result<Option<Cow<'a, str>>, Refusal> {
    match raw {
        None if required => Err(refuse(
            "FieldNotFound",
            format!("The record has no {field}."),
        )),
        None => Ok(None),
        Some(raw) if kind(raw) == "a string" => {
            let text = raw.get();
            // The value was checked as JSON when the record was parsed: a string without
            // escapes is its own text between the quotes.
            if !text.contains('\\') {
                return Ok(Some(Cow::Borrowed(&text[1..text.len() - 1])));
            }
            serde_json::from_str::<Cow<'a, str>>(text)
                .map(Some)
                .map_err(|e| refuse("InvalidData", format!("{field}: {e}.")))
        }
        Some(raw) => Err(refuse(
            "InvalidData",
            format!("{field} must be a string, not {}.", kind(raw)),
        )),
    }
}

fn typed(raw: Option<&RawValue>, field: &str, allowed: &[&str]) -> Result<(), Refusal> {
    match raw {
        Some(raw) if !allowed.contains(&kind(raw)) => Err(refuse(
            "InvalidData",
            format!(
                "{field} must be {}, not {}.",
                allowed.join(" or "),
                kind(raw)
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks one record (its JSON text as sent) and returns it as stored: its indexed fields
/// and its text without whitespace.
pub fn check(text: &str, policy: &Policy<'_>) -> Result<Event, Refusal> {
    if text.len() > MAX_RECORD_BYTES {
        return Err(refuse(
            "InvalidData",
            format!(
                "The record is {} bytes; CloudTrail records are at most {MAX_RECORD_BYTES} bytes.",
                text.len()
            ),
        ));
    }
    if !text.trim_start().starts_with('{') {
        return Err(refuse("InvalidData", "A record must be a JSON object."));
    }
    let record = cairn_core::json::minify_nesting_at_most(text, MAX_DEPTH).ok_or_else(|| {
        refuse(
            "InvalidData",
            format!("The record nests arrays and objects more than {MAX_DEPTH} levels deep."),
        )
    })?;
    let r: Shape<'_> = serde_json::from_str(text)
        .map_err(|e| refuse("InvalidData", format!("The record is not valid: {e}.")))?;

    let version = string(r.event_version, "eventVersion", true)?.unwrap_or_default();
    let well_formed = version.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    });
    if !well_formed {
        return Err(refuse(
            "InvalidData",
            format!("eventVersion {version:?} is not <major>.<minor>."),
        ));
    }
    let event_id = string(r.event_id, "eventID", true)?.unwrap_or_default();
    if event_id.is_empty() || event_id.len() > 256 {
        return Err(refuse(
            "InvalidData",
            "eventID must be 1 to 256 characters.",
        ));
    }
    let time_text = string(r.event_time, "eventTime", true)?.unwrap_or_default();
    let time = parse_event_time(&time_text).ok_or_else(|| {
        refuse(
            "InvalidData",
            format!("eventTime {time_text:?} is not YYYY-MM-DDTHH:MM:SSZ."),
        )
    })?;
    if time < policy.oldest {
        return Err(refuse(
            "InvalidData",
            format!("eventTime {time_text} is older than the event history's retention window."),
        ));
    }
    if time > policy.newest {
        return Err(refuse(
            "InvalidData",
            format!("eventTime {time_text} is more than a day in the future."),
        ));
    }
    if string(r.aws_region, "awsRegion", true)?.is_some_and(|s| s.is_empty()) {
        return Err(refuse("InvalidData", "awsRegion must not be empty."));
    }

    let event_type = string(r.event_type, "eventType", true)?.unwrap_or_default();
    if !EVENT_TYPES.contains(&event_type.as_ref()) {
        return Err(refuse(
            "InvalidData",
            format!("eventType {event_type:?} is not a CloudTrail event type."),
        ));
    }
    typed(r.management_event, "managementEvent", &["a boolean"])?;
    let management = r.management_event.map(|raw| raw.get() == "true");
    let category = string(r.event_category, "eventCategory", false)?;
    check_category(&event_type, category.as_deref(), management)?;

    if event_type == "AwsCloudTrailInsight" {
        match r.insight_details {
            None => {
                return Err(refuse(
                    "FieldNotFound",
                    "An Insights record has no insightDetails.",
                ))
            }
            Some(raw) => typed(Some(raw), "insightDetails", &["an object"])?,
        }
    } else {
        string(r.event_source, "eventSource", true)?;
        string(r.event_name, "eventName", true)?;
        match r.user_identity {
            None => return Err(refuse("FieldNotFound", "The record has no userIdentity.")),
            Some(raw) => typed(Some(raw), "userIdentity", &["an object"])?,
        }
    }
    for (raw, field) in [
        (r.source_ip_address, "sourceIPAddress"),
        (r.user_agent, "userAgent"),
        (r.error_code, "errorCode"),
        (r.error_message, "errorMessage"),
        (r.request_id, "requestID"),
        (r.shared_event_id, "sharedEventID"),
        (r.vpc_endpoint_id, "vpcEndpointId"),
    ] {
        typed(raw, field, &["a string"])?;
    }
    typed(
        r.request_parameters,
        "requestParameters",
        &["an object", "null"],
    )?;
    typed(
        r.response_elements,
        "responseElements",
        &["an object", "null"],
    )?;
    typed(r.read_only, "readOnly", &["a boolean"])?;
    if let Some(raw) = r.resources {
        let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
            refuse(
                "InvalidData",
                format!("resources must be an array of objects, not {}.", kind(raw)),
            )
        })?;
        if items.iter().any(|item| kind(item) != "an object") {
            return Err(refuse(
                "InvalidData",
                "resources must be an array of objects.",
            ));
        }
    }

    let account = match string(r.recipient_account_id, "recipientAccountId", false)? {
        Some(account) => account.into_owned(),
        // Records before eventVersion 1.02 name only the caller's account.
        None => r
            .user_identity
            .and_then(cairn_core::index::identity_account)
            .map(Cow::into_owned)
            .ok_or_else(|| refuse("FieldNotFound", "The record has no recipientAccountId."))?,
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse(
            "InvalidData",
            format!("recipientAccountId {account:?} is not a 12-digit account id."),
        ));
    }
    if !(policy.may_write_for)(&account) {
        return Err(refuse(
            "InvalidRecipient",
            format!("The caller may not write records for account {account}."),
        ));
    }
    let region = string(r.aws_region, "awsRegion", true)?.unwrap_or_default();
    let event_name = string(r.event_name, "eventName", false)?;
    let event_source = string(r.event_source, "eventSource", false)?;
    let category = Category::of(category.as_deref(), r.insight_details.is_some(), management);
    let read_only = r.read_only.map(|raw| raw.get() == "true");
    // Read from this parse, so that the journal's consumers need not parse the record.
    let summary = Parts {
        category,
        read_only,
        time,
        account: &account,
        region: &region,
        event_type: Some(&event_type),
        event_source: event_source.as_deref(),
        event_name: event_name.as_deref(),
        error_code: string(r.error_code, "errorCode", false)?.as_deref(),
        user_agent: string(r.user_agent, "userAgent", false)?.as_deref(),
        vpc_endpoint_id: string(r.vpc_endpoint_id, "vpcEndpointId", false)?.as_deref(),
        session_credential_from_console: r.session_credential_from_console,
        user_identity: r.user_identity,
        resources: r.resources,
        insight_details: r.insight_details,
    }
    .encode();
    let fields = IndexFields {
        event_id: event_id.into_owned(),
        time,
        account,
        region: region.into_owned(),
        category,
        attributes: attributes_of(
            event_name.as_deref(),
            event_source.as_deref(),
            read_only,
            r.user_identity,
            r.resources,
        ),
    };
    Ok(Event {
        fields,
        record,
        summary,
    })
}

/// eventCategory, eventType and managementEvent must tell the same story.
fn check_category(
    event_type: &str,
    category: Option<&str>,
    management: Option<bool>,
) -> Result<(), Refusal> {
    let bad = |why: &str| Err(refuse("InvalidData", why.to_owned()));
    match category {
        None => Ok(()),
        Some("Management") => {
            if !matches!(
                event_type,
                "AwsApiCall" | "AwsServiceEvent" | "AwsConsoleAction" | "AwsConsoleSignIn"
            ) {
                return bad(&format!(
                    "eventType {event_type} cannot be a Management event."
                ));
            }
            if management == Some(false) {
                return bad("managementEvent is false on a Management event.");
            }
            Ok(())
        }
        Some("Data") => {
            if !matches!(event_type, "AwsApiCall" | "AwsServiceEvent") {
                return bad(&format!("eventType {event_type} cannot be a Data event."));
            }
            if management == Some(true) {
                return bad("managementEvent is true on a Data event.");
            }
            Ok(())
        }
        Some("Insight") if event_type == "AwsCloudTrailInsight" => Ok(()),
        Some("Insight") => bad("Only AwsCloudTrailInsight records are Insight events."),
        Some("NetworkActivity") if event_type == "AwsVpceEvent" => Ok(()),
        Some("NetworkActivity") => bad("Only AwsVpceEvent records are NetworkActivity events."),
        Some("ActivityAuditLog") if event_type == "ActivityLog" => Ok(()),
        Some("ActivityAuditLog") => bad("Only ActivityLog records are ActivityAuditLog events."),
        Some(other) => bad(&format!(
            "eventCategory {other:?} is not a CloudTrail event category."
        )),
    }
    .and_then(|()| {
        if event_type == "AwsCloudTrailInsight" && category.is_some_and(|c| c != "Insight") {
            return bad("An AwsCloudTrailInsight record must have eventCategory Insight.");
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"eventVersion":"1.10","userIdentity":{"type":"IAMUser","accountId":"111122223333"},"eventTime":"2026-11-20T10:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"opaque-region-9x","sourceIPAddress":"1.2.3.4","requestParameters":{},"responseElements":null,"eventID":"e1","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#;

    fn check_with(text: &str) -> Result<IndexFields, Refusal> {
        let allow = |a: &str| a == "111122223333";
        let policy = Policy {
            may_write_for: &allow,
            oldest: 1_700_000_000,
            newest: 1_900_000_000,
        };
        check(text, &policy).map(|event| event.fields)
    }

    fn code(text: &str) -> &'static str {
        check_with(text).err().map(|r| r.code).unwrap_or("ok")
    }

    /// The summary built from the check's parse is the one read from the stored record.
    fn assert_summary_as_read(text: &str) {
        let allow = |_: &str| true;
        let policy = Policy {
            may_write_for: &allow,
            oldest: 0,
            newest: i64::MAX,
        };
        let event = check(text, &policy).unwrap();
        let read = cairn_core::summary::read(&event.record).unwrap();
        assert_eq!(
            cairn_core::summary::Summary::decode(&event.summary),
            cairn_core::summary::Summary::decode(&read),
            "{text}"
        );
        assert_eq!(event.summary, read);
    }

    #[test]
    fn the_summary_is_read_in_the_same_parse() {
        assert_summary_as_read(GOOD);
        let escaped = GOOD
            .replace(
                r#""eventName":"RunInstances""#,
                r#""eventName":"Run\u0049nstances","errorCode":"Access\"Denied","userAgent":"cli \\ 2","vpcEndpointId":"vpce-1","sessionCredentialFromConsole":{ "a" : [1, 2] }"#,
            )
            .replace(
                r#""accountId":"111122223333"}"#,
                r#""accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/\u00e9"},"resources":[{"type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b"},{"ARN":"x"}]"#,
            );
        assert_ne!(escaped, GOOD);
        assert_summary_as_read(&escaped);
    }

    #[test]
    fn a_good_record_gives_the_same_fields_as_extraction() {
        let fields = check_with(GOOD).unwrap();
        assert_eq!(fields.account, "111122223333");
        assert_eq!(fields, IndexFields::extract(GOOD.as_bytes()).unwrap());
    }

    #[test]
    fn a_record_named_by_its_callers_account_reads_back_the_same() {
        // Found by fuzzing: a userIdentity repeating a member once made the check take the
        // account from it while the history's reading found none.
        let old_style = GOOD
            .replace(r#""recipientAccountId":"111122223333","#, "")
            .replace(
                r#""accountId":"111122223333""#,
                r#""accessKeyId":"A","accountId":"111122223333","accessKeyId":"B""#,
            );
        let fields = check_with(&old_style).unwrap();
        assert_eq!(fields.account, "111122223333");
        assert_eq!(fields, IndexFields::extract(old_style.as_bytes()).unwrap());
    }

    #[test]
    fn refusals_follow_the_rules() {
        let cases = [
            (GOOD.replace(r#""eventID":"e1","#, ""), "FieldNotFound"),
            (
                GOOD.replace(
                    r#""eventTime":"2026-11-20T10:00:00Z""#,
                    r#""eventTime":"yesterday""#,
                ),
                "InvalidData",
            ),
            (GOOD.replace("2026-11-20", "2020-01-01"), "InvalidData"),
            (
                GOOD.replace(r#""readOnly":false"#, r#""readOnly":"no""#),
                "InvalidData",
            ),
            (
                GOOD.replace(
                    r#""eventCategory":"Management""#,
                    r#""eventCategory":"Data""#,
                ),
                "InvalidData",
            ),
            (
                GOOD.replace(
                    r#""eventType":"AwsApiCall""#,
                    r#""eventType":"AwsVpceEvent""#,
                ),
                "InvalidData",
            ),
            (
                GOOD.replace(r#""eventType":"AwsApiCall""#, r#""eventType":"Bogus""#),
                "InvalidData",
            ),
            (
                GOOD.replace(
                    r#""recipientAccountId":"111122223333""#,
                    r#""recipientAccountId":"444455556666""#,
                ),
                "InvalidRecipient",
            ),
            (
                GOOD.replace(
                    r#""userIdentity":{"type":"IAMUser","accountId":"111122223333"},"#,
                    "",
                ),
                "FieldNotFound",
            ),
            (
                GOOD.replace(r#""eventVersion":"1.10""#, r#""eventVersion":"one""#),
                "InvalidData",
            ),
            ("[1]".to_owned(), "InvalidData"),
        ];
        for (text, want) in cases {
            assert_eq!(code(&text), want, "{text}");
        }
        let huge = GOOD.replace(
            r#""requestParameters":{}"#,
            &format!(
                r#""requestParameters":{{"x":"{}"}}"#,
                "a".repeat(MAX_RECORD_BYTES)
            ),
        );
        assert_eq!(code(&huge), "InvalidData");
    }

    #[test]
    fn every_shared_aws_record_passes() {
        let Some(records) = cairn_core::testdata::shared_aws_records() else {
            return;
        };
        let allow = |_: &str| true;
        let policy = Policy {
            may_write_for: &allow,
            oldest: 0,
            newest: i64::MAX,
        };
        for (path, record) in &records {
            check(record.get(), &policy).unwrap_or_else(|r| panic!("{}: {r:?}", path.display()));
            assert_summary_as_read(record.get());
        }
        assert!(records.len() >= 300, "{}", records.len());
    }
}
