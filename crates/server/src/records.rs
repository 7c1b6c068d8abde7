//! Validation of CloudTrail records sent by other producers (the bulk endpoint, import).
//! Each record is accepted or refused on its own, with an error code from the set AWS uses
//! for per-event failures (`FieldNotFound`, `InvalidData`, `InvalidRecipient`).

use cairn_core::timefmt::parse_event_time;
use serde_json::{Map, Value};

/// CloudTrail caps an event at 256 KB.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

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

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string<'a>(
    record: &'a Map<String, Value>,
    field: &str,
    required: bool,
) -> Result<Option<&'a str>, Refusal> {
    match record.get(field) {
        None if required => Err(refuse(
            "FieldNotFound",
            format!("The record has no {field}."),
        )),
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(refuse(
            "InvalidData",
            format!("{field} must be a string, not {}.", kind(other)),
        )),
    }
}

fn typed(
    record: &Map<String, Value>,
    field: &str,
    ok: fn(&Value) -> bool,
    want: &str,
) -> Result<(), Refusal> {
    match record.get(field) {
        Some(value) if !ok(value) => Err(refuse(
            "InvalidData",
            format!("{field} must be {want}, not {}.", kind(value)),
        )),
        _ => Ok(()),
    }
}

/// Checks one record (its JSON text as sent) and returns the account it belongs to.
pub fn check(text: &str, policy: &Policy<'_>) -> Result<String, Refusal> {
    if text.len() > MAX_RECORD_BYTES {
        return Err(refuse(
            "InvalidData",
            format!(
                "The record is {} bytes; CloudTrail records are at most {MAX_RECORD_BYTES} bytes.",
                text.len()
            ),
        ));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| refuse("InvalidData", format!("The record is not JSON: {e}.")))?;
    let Value::Object(record) = &value else {
        return Err(refuse(
            "InvalidData",
            format!("A record must be a JSON object, not {}.", kind(&value)),
        ));
    };

    let version = string(record, "eventVersion", true)?.unwrap_or_default();
    let well_formed = version.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && (a.to_owned() + b).bytes().all(|c| c.is_ascii_digit())
    });
    if !well_formed {
        return Err(refuse(
            "InvalidData",
            format!("eventVersion {version:?} is not <major>.<minor>."),
        ));
    }
    let event_id = string(record, "eventID", true)?.unwrap_or_default();
    if event_id.is_empty() || event_id.len() > 256 {
        return Err(refuse(
            "InvalidData",
            "eventID must be 1 to 256 characters.",
        ));
    }
    let time_text = string(record, "eventTime", true)?.unwrap_or_default();
    let time = parse_event_time(time_text).ok_or_else(|| {
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
    if string(record, "awsRegion", true)?.is_some_and(str::is_empty) {
        return Err(refuse("InvalidData", "awsRegion must not be empty."));
    }

    let event_type = string(record, "eventType", true)?.unwrap_or_default();
    if !EVENT_TYPES.contains(&event_type) {
        return Err(refuse(
            "InvalidData",
            format!("eventType {event_type:?} is not a CloudTrail event type."),
        ));
    }
    let category = string(record, "eventCategory", false)?;
    check_category(event_type, category, record.get("managementEvent"))?;

    if event_type == "AwsCloudTrailInsight" {
        typed(record, "insightDetails", Value::is_object, "an object")?;
        if !record.contains_key("insightDetails") {
            return Err(refuse(
                "FieldNotFound",
                "An Insights record has no insightDetails.",
            ));
        }
    } else {
        string(record, "eventSource", true)?;
        string(record, "eventName", true)?;
        match record.get("userIdentity") {
            None => return Err(refuse("FieldNotFound", "The record has no userIdentity.")),
            Some(Value::Object(_)) => {}
            Some(other) => {
                return Err(refuse(
                    "InvalidData",
                    format!("userIdentity must be an object, not {}.", kind(other)),
                ))
            }
        }
    }
    for field in [
        "sourceIPAddress",
        "userAgent",
        "errorCode",
        "errorMessage",
        "requestID",
        "sharedEventID",
        "vpcEndpointId",
    ] {
        string(record, field, false)?;
    }
    let object_or_null = |v: &Value| v.is_object() || v.is_null();
    typed(
        record,
        "requestParameters",
        object_or_null,
        "an object or null",
    )?;
    typed(
        record,
        "responseElements",
        object_or_null,
        "an object or null",
    )?;
    typed(record, "readOnly", Value::is_boolean, "a boolean")?;
    typed(record, "managementEvent", Value::is_boolean, "a boolean")?;
    let resources_ok = |v: &Value| {
        v.as_array()
            .is_some_and(|items| items.iter().all(Value::is_object))
    };
    typed(record, "resources", resources_ok, "an array of objects")?;

    let account = match string(record, "recipientAccountId", false)? {
        Some(account) => account.to_owned(),
        // Records before eventVersion 1.02 name only the caller's account.
        None => record
            .get("userIdentity")
            .and_then(|u| u.get("accountId"))
            .and_then(Value::as_str)
            .map(str::to_owned)
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
    Ok(account)
}

/// eventCategory, eventType and managementEvent must tell the same story.
fn check_category(
    event_type: &str,
    category: Option<&str>,
    management: Option<&Value>,
) -> Result<(), Refusal> {
    let management = management.and_then(Value::as_bool);
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

    fn check_with(text: &str) -> Result<String, Refusal> {
        let allow = |a: &str| a == "111122223333";
        let policy = Policy {
            may_write_for: &allow,
            oldest: 1_700_000_000,
            newest: 1_900_000_000,
        };
        check(text, &policy)
    }

    fn code(text: &str) -> &'static str {
        check_with(text).err().map(|r| r.code).unwrap_or("ok")
    }

    #[test]
    fn a_good_record_names_its_account() {
        assert_eq!(check_with(GOOD), Ok("111122223333".to_owned()));
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
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/stratus-red-team-detonation-logs");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let allow = |_: &str| true;
        let policy = Policy {
            may_write_for: &allow,
            oldest: 0,
            newest: i64::MAX,
        };
        let mut count = 0;
        for entry in entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        {
            let records: Vec<Box<serde_json::value::RawValue>> =
                serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
            for record in records {
                check(record.get(), &policy)
                    .unwrap_or_else(|r| panic!("{}: {r:?}", entry.path().display()));
                count += 1;
            }
        }
        assert!(count >= 300, "{count}");
    }
}
