//! `cloudtrail-data:PutAuditEvents` (REST-JSON, `POST /PutAuditEvents?channelArn=…`, SigV4
//! service `cloudtrail-data`): events from other services, through a channel. Each
//! `eventData` is checked against AWS's schema and limits and stored as CloudTrail stores
//! it, an `ActivityAuditLog` record wrapping the reporter's `eventData`.
//!
//! The stored eventID is derived from the channel and the event's `UID`, so a producer that
//! retries a call does not store its events twice.

use base64::Engine;
use cairn_core::index::attributes_of;
use cairn_core::json::minify;
use cairn_core::summary::Parts;
use cairn_core::timefmt::{format_event_time, parse_event_time};
use cairn_core::{Category, IndexFields, LookupKey};
use cairn_store::Event;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

use crate::api::ApiError;
use crate::app::App;
use crate::audit::store_events;
use crate::ops::channels::channel_key;

/// Events per call and bytes per call, as on AWS.
pub const MAX_EVENTS: usize = 100;
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(rename = "auditEvents", borrow)]
    audit_events: Option<Vec<AuditEvent<'a>>>,
}

#[derive(Deserialize)]
struct AuditEvent<'a> {
    id: Option<String>,
    #[serde(rename = "eventData", borrow)]
    event_data: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "eventDataChecksum")]
    event_data_checksum: Option<String>,
}

struct Failure {
    code: &'static str,
    message: String,
}

fn fail(code: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// A query parameter, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| crate::sigv4::decode(v))
}

/// A JSON object's members in order, repeats kept, values unparsed.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// What a valid eventData gives.
struct Checked {
    time: i64,
    uid: String,
    /// The lookup attributes the history indexes it by.
    attributes: Vec<(LookupKey, String)>,
    /// The eventData object, minified.
    text: String,
}

/// Checks one eventData against the schema. Only the fields it checks are decoded; the
/// rest are measured as they were written.
fn check_event_data(text: &str, owner: &str) -> Result<Checked, Failure> {
    // The stored record holds eventData one level down.
    let max_depth = crate::records::MAX_DEPTH - 1;
    if cairn_core::json::nests_deeper_than(text, max_depth) {
        return Err(fail(
            "InvalidData",
            format!("eventData nests arrays and objects more than {max_depth} levels deep."),
        ));
    }
    // Read as sent (minifying first would join `1 2` into `12`); minified only to store.
    let Ok(Members(members)) = serde_json::from_str(text) else {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => fail("InvalidData", "eventData must be a JSON object."),
            Err(e) => fail("InvalidData", format!("eventData is not JSON: {e}")),
        });
    };
    let mut data: HashMap<String, &RawValue> = HashMap::with_capacity(members.len());
    for (name, value) in members {
        // The history re-reads these fields from the stored record; a repeated one would
        // be read differently there.
        if data.contains_key(&name) {
            return Err(fail("InvalidData", format!("eventData has {name} twice.")));
        }
        data.insert(name, value);
    }
    let text_field = |name: &str, max: usize, required: bool| -> Result<Option<String>, Failure> {
        let Some(raw) = data.get(name) else {
            if required {
                return Err(fail("FieldNotFound", format!("eventData has no {name}.")));
            }
            return Ok(None);
        };
        match serde_json::from_str::<Option<String>>(raw.get()) {
            Ok(Some(s)) if s.len() > max => Err(fail(
                "FieldTooLong",
                format!("{name} is {} characters; the limit is {max}.", s.len()),
            )),
            Ok(s) => Ok(s),
            Err(_) => Err(fail("InvalidData", format!("{name} must be a string."))),
        }
    };
    text_field("version", 256, true)?;
    let event_source = text_field("eventSource", 1024, true)?;
    let event_name = text_field("eventName", 1024, true)?;
    let uid = text_field("UID", 1024, true)?.unwrap_or_default();
    text_field("userAgent", 1024, false)?;
    text_field("errorCode", 256, false)?;
    text_field("errorMessage", 256, false)?;
    let identity = data
        .get("userIdentity")
        .ok_or_else(|| fail("FieldNotFound", "eventData has no userIdentity."))?;
    match serde_json::from_str::<Value>(identity.get()) {
        Ok(Value::Object(identity)) => {
            for (field, max) in [("type", 128), ("principalId", 1024)] {
                match identity.get(field) {
                    None => {
                        return Err(fail(
                            "FieldNotFound",
                            format!("userIdentity has no {field}."),
                        ))
                    }
                    Some(Value::String(s)) if s.len() > max => {
                        return Err(fail(
                            "FieldTooLong",
                            format!("userIdentity.{field} is longer than {max}."),
                        ))
                    }
                    Some(Value::String(_)) => {}
                    Some(_) => {
                        return Err(fail(
                            "InvalidData",
                            format!("userIdentity.{field} must be a string."),
                        ))
                    }
                }
            }
            if identity
                .get("details")
                .is_some_and(|d| !d.is_object() && !d.is_null())
            {
                return Err(fail(
                    "InvalidData",
                    "userIdentity.details must be an object.",
                ));
            }
        }
        _ => return Err(fail("InvalidData", "userIdentity must be an object.")),
    }
    let time_text = text_field("eventTime", 64, true)?.unwrap_or_default();
    let with_zone = if time_text.ends_with('Z') {
        time_text.clone()
    } else {
        format!("{time_text}Z")
    };
    let time = parse_event_time(&with_zone).ok_or_else(|| {
        fail(
            "InvalidData",
            format!("eventTime {time_text:?} is not yyyy-MM-ddTHH:mm:ss."),
        )
    })?;
    let recipient = text_field("recipientAccountId", 12, true)?.unwrap_or_default();
    if recipient != owner {
        return Err(fail(
            "InvalidRecipient",
            format!("recipientAccountId must be the channel owner's account, {owner}."),
        ));
    }
    if let Some(ip) = text_field("sourceIPAddress", 64, false)? {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(fail(
                "InvalidData",
                format!("sourceIPAddress {ip:?} is not an IPv4 or IPv6 address."),
            ));
        }
    }
    for (name, max) in [
        ("requestParameters", 100 * 1024),
        ("responseElements", 100 * 1024),
        ("additionalEventData", 28 * 1024),
    ] {
        if let Some(raw) = data.get(name).map(|v| v.get()) {
            if !raw.starts_with('{') && raw != "null" {
                return Err(fail("InvalidData", format!("{name} must be an object.")));
            }
            // Measured without the whitespace the stored record drops.
            let size = if raw.len() > max {
                minify(raw).len()
            } else {
                raw.len()
            };
            if size > max {
                return Err(fail(
                    "FieldTooLong",
                    format!("{name} is {size} bytes; the limit is {max}."),
                ));
            }
        }
    }
    let attributes = attributes_of(
        event_name.as_deref(),
        event_source.as_deref(),
        None,
        Some(identity),
        None,
    );
    Ok(Checked {
        time,
        uid,
        attributes,
        text: minify(text),
    })
}

/// A stable eventID for (channel, UID).
fn event_id(channel: &str, uid: &str) -> String {
    cairn_core::record::stable_event_id(&format!("{channel}\n{uid}"))
}

/// The stored record, in CloudTrail's field order; eventData is written as it came.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditRecord<'a> {
    event_version: &'a str,
    event_category: &'a str,
    event_type: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    event_time: String,
    aws_region: &'a str,
    recipient_account_id: &'a str,
    metadata: Metadata<'a>,
    event_data: &'a RawValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    ingestion_time: String,
    #[serde(rename = "channelARN")]
    channel_arn: &'a str,
}

/// The `ActivityAuditLog` record CloudTrail stores for a checked eventData, with the
/// fields the history indexes it by.
fn audit_record(
    checked: Checked,
    channel_arn: &str,
    account: &str,
    region: &str,
    now: i64,
) -> Result<Event, ApiError> {
    let event_id = event_id(channel_arn, &checked.uid);
    let data =
        RawValue::from_string(checked.text).map_err(|e| ApiError::internal(e.to_string()))?;
    let record = AuditRecord {
        event_version: cairn_core::EVENT_VERSION,
        event_category: "ActivityAuditLog",
        event_type: "ActivityLog",
        event_id: &event_id,
        event_time: format_event_time(checked.time),
        aws_region: region,
        recipient_account_id: account,
        metadata: Metadata {
            ingestion_time: format_event_time(now),
            channel_arn,
        },
        event_data: &data,
    };
    let bytes = serde_json::to_vec(&record).expect("records serialize");
    // Built from what the check decoded, rather than by parsing the record again; the
    // tests hold them equal to what the history and the journal's consumers would read
    // from the record.
    // The record's top level has none of the fields routing and Insights read but these.
    let summary = Parts {
        category: Category::Activity,
        read_only: None,
        time: checked.time,
        account,
        region,
        event_type: Some("ActivityLog"),
        event_source: None,
        event_name: None,
        error_code: None,
        user_agent: None,
        vpc_endpoint_id: None,
        session_credential_from_console: None,
        user_identity: None,
        resources: None,
        insight_details: None,
    }
    .encode();
    let fields = IndexFields {
        event_id,
        time: checked.time,
        account: account.to_owned(),
        region: region.to_owned(),
        category: Category::Activity,
        attributes: checked.attributes,
    };
    Ok(Event {
        fields,
        record: bytes,
        summary,
    })
}

/// Records a PutAuditEvents call's events into the channel `channel_arn` (its query's
/// `channelArn`, decoded).
pub async fn put_audit_events(
    app: &App,
    account: &str,
    region: &str,
    channel_arn: Option<&str>,
    query: &str,
    body: &[u8],
    now: i64,
) -> Result<Value, ApiError> {
    let channel_arn = channel_arn
        .filter(|a| a.starts_with("arn:"))
        .ok_or_else(|| {
            ApiError::client("InvalidChannelARN", "channelArn must be a channel ARN.")
        })?;
    if let Some(external) = query_param(query, "externalId") {
        let ok = (2..=1224).contains(&external.len())
            && external
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b));
        if !ok {
            return Err(ApiError::validation(
                "externalId must be 2 to 1224 characters of letters, digits and _+=,.@:/-.",
            ));
        }
    }
    let owner = channel_arn.split(':').nth(4).unwrap_or_default();
    if owner != account {
        return Err(ApiError::client(
            "ChannelInsufficientPermission",
            "The caller's account must own the channel.",
        ));
    }
    let key = channel_key(Some(channel_arn), account, region).map_err(|_| {
        ApiError::client(
            "InvalidChannelARN",
            format!("{channel_arn} is not a channel ARN of this region."),
        )
    })?;
    if app.meta.get(&key).is_none() {
        return Err(ApiError::client(
            "ChannelNotFound",
            format!("Channel {channel_arn} was not found."),
        ));
    }
    if body.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::validation(format!(
            "The request is {} bytes; the limit is {MAX_REQUEST_BYTES}.",
            body.len()
        )));
    }
    let body: Body<'_> = serde_json::from_slice(body)
        .map_err(|e| ApiError::serialization(format!("The body is not valid: {e}")))?;
    let events = body
        .audit_events
        .ok_or_else(|| ApiError::validation("auditEvents is required."))?;
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(ApiError::validation(format!(
            "auditEvents must hold 1 to {MAX_EVENTS} events."
        )));
    }
    let mut ids = std::collections::HashSet::new();
    for event in &events {
        let id = event.id.as_deref().unwrap_or_default();
        if id.is_empty()
            || id.len() > 128
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ApiError::validation(format!(
                "id {id:?} must be 1 to 128 letters, digits, - and _."
            )));
        }
        if !ids.insert(id) {
            return Err(ApiError::client(
                "DuplicatedAuditEventId",
                format!("Two audit events have the id {id}."),
            ));
        }
    }

    let mut failed = Vec::new();
    let mut accepted = Vec::new(); // (id, eventID, Event)
    for event in &events {
        let id = event.id.clone().unwrap_or_default();
        let data = event.event_data.as_deref().unwrap_or_default();
        if let Some(checksum) = &event.event_data_checksum {
            let actual =
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data.as_bytes()));
            if *checksum != actual {
                failed.push(json!({"id": id, "errorCode": "InvalidChecksum", "errorMessage": "eventDataChecksum is not the base64 SHA-256 of eventData."}));
                continue;
            }
        }
        let checked = match check_event_data(data, account) {
            Ok(checked) => checked,
            Err(f) => {
                failed.push(json!({"id": id, "errorCode": f.code, "errorMessage": f.message}));
                continue;
            }
        };
        let event = audit_record(checked, channel_arn, account, region, now)?;
        accepted.push((id, event.fields.event_id.clone(), event));
    }

    let (meta, events): (Vec<(String, String)>, Vec<Event>) = accepted
        .into_iter()
        .map(|(id, event_id, event)| ((id, event_id), event))
        .unzip();
    if !events.is_empty() {
        store_events(&app.store, events).await?;
    }
    let successful: Vec<Value> = meta
        .iter()
        .map(|(id, event_id)| json!({"id": id, "eventID": event_id}))
        .collect();
    app.ingestion.note(
        &key,
        now,
        meta.last().map(|(_, e)| e.as_str()),
        meta.last().map(|(_, e)| e.as_str()),
        failed.last().and_then(|f| f["errorCode"].as_str()),
    );
    Ok(json!({"successful": successful, "failed": failed}))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = r#"{"version":"1.0","userIdentity":{"type":"CustomUser","principalId":"alice"},"eventSource":"app.example.com","eventName":"Login","eventTime":"2026-11-20T10:00:00","UID":"u-1","recipientAccountId":"111122223333","sourceIPAddress":"192.0.2.1"}"#;

    fn code(text: &str) -> &'static str {
        check_event_data(text, "111122223333")
            .err()
            .map(|f| f.code)
            .unwrap_or("ok")
    }

    #[test]
    fn event_data_follows_the_schema() {
        assert_eq!(code(DATA), "ok");
        assert_eq!(code(&DATA.replace(r#""UID":"u-1","#, "")), "FieldNotFound");
        assert_eq!(
            code(&DATA.replace("111122223333", "444455556666")),
            "InvalidRecipient"
        );
        assert_eq!(code(&DATA.replace("192.0.2.1", "not-an-ip")), "InvalidData");
        assert_eq!(
            code(&DATA.replace("2026-11-20T10:00:00", "yesterday")),
            "InvalidData"
        );
        assert_eq!(
            code(&DATA.replace(r#""errorCode""#, "x").replace(
                r#""UID":"u-1""#,
                &format!(r#""UID":"u-1","errorCode":"{}""#, "e".repeat(257))
            )),
            "FieldTooLong"
        );
        assert_eq!(code("[1]"), "InvalidData");
        // Whitespace is not removed before the check: `1 2` is not `12`.
        assert_eq!(
            code(&DATA.replace(r#""u-1""#, r#""u-1","n":1 2"#)),
            "InvalidData"
        );
        assert_eq!(
            code(&DATA.replace(r#""UID""#, r#""eventName":"Other","UID""#)),
            "InvalidData"
        );
    }

    #[test]
    fn the_indexed_fields_and_summary_are_those_read_from_the_record() {
        let with_details = DATA.replace(
            r#""principalId":"alice"}"#,
            r#""principalId":"alice","details":{"arn":"arn:aws:iam::111122223333:user/alice","userName":"al\u0069ce"}}"#,
        );
        let spaced = DATA.replace(',', " ,\n ").replace("Login", r#"Log\"in"#);
        let no_name = DATA.replace(r#""eventName":"Login""#, r#""eventName":null"#);
        for text in [DATA, &with_details, &spaced, &no_name] {
            let Ok(checked) = check_event_data(text, "111122223333") else {
                panic!("{text} is refused");
            };
            let Ok(event) = audit_record(checked, "arn:c", "111122223333", "eu-west-1", 0) else {
                panic!("{text} gives no record");
            };
            assert_eq!(
                IndexFields::extract(&event.record).expect("indexable"),
                event.fields,
                "{text}"
            );
            assert_eq!(
                cairn_core::summary::read(&event.record).unwrap(),
                event.summary,
                "{text}"
            );
        }
    }

    #[test]
    fn event_ids_are_stable_per_channel_and_uid() {
        assert_eq!(event_id("arn:c", "u-1"), event_id("arn:c", "u-1"));
        assert_ne!(event_id("arn:c", "u-1"), event_id("arn:c", "u-2"));
        assert_eq!(event_id("arn:c", "u-1").len(), 36);
    }
}
