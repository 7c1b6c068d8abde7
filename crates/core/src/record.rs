//! The CloudTrail record Cairn writes for an API call made to Cairn itself.

use serde::Serialize;
use serde_json::Value;

use crate::identity::{Identity, UserIdentity};
use crate::timefmt::format_event_time;

/// The record format version Cairn writes.
pub const EVENT_VERSION: &str = "1.11";

/// One `AwsApiCall` record, serialized with AWS's field order and omission rules:
/// optional fields are left out when they do not apply, `requestParameters` and
/// `responseElements` are always present (as `null` when empty).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiCallRecord<'a> {
    pub event_version: &'static str,
    pub user_identity: UserIdentity<'a>,
    pub event_time: String,
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<&'a str>,
    pub request_parameters: &'a Value,
    pub response_elements: &'a Value,
    #[serde(rename = "requestID")]
    pub request_id: &'a str,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<RecordResource>,
    pub event_type: &'static str,
    pub management_event: bool,
    pub recipient_account_id: &'a str,
    pub event_category: &'static str,
}

/// An entry of a record's `resources` array.
#[derive(Clone, Debug, Serialize)]
pub struct RecordResource {
    #[serde(rename = "accountId")]
    pub account_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "ARN")]
    pub arn: String,
}

/// What the API layer knows about a call once it has been handled.
pub struct ApiCall<'a> {
    pub identity: &'a Identity,
    pub event_time: i64,
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub region: &'a str,
    pub source_ip: &'a str,
    pub user_agent: Option<&'a str>,
    pub error: Option<(&'a str, &'a str)>,
    pub request_parameters: &'a Value,
    pub response_elements: &'a Value,
    pub request_id: &'a str,
    pub read_only: bool,
    pub resources: Vec<RecordResource>,
}

/// CloudTrail truncates userAgent, errorCode and errorMessage at 1 KB.
const TEXT_FIELD_LIMIT: usize = 1024;

fn truncate(text: &str) -> &str {
    if text.len() <= TEXT_FIELD_LIMIT {
        return text;
    }
    let mut end = TEXT_FIELD_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl<'a> ApiCallRecord<'a> {
    pub fn new(call: ApiCall<'a>) -> Self {
        ApiCallRecord {
            event_version: EVENT_VERSION,
            user_identity: call.identity.user_identity(),
            event_time: format_event_time(call.event_time),
            event_source: call.event_source,
            event_name: call.event_name,
            aws_region: call.region,
            source_ip_address: call.source_ip,
            user_agent: call.user_agent.map(truncate),
            error_code: call.error.map(|(code, _)| truncate(code)),
            error_message: call.error.map(|(_, message)| truncate(message)),
            request_parameters: call.request_parameters,
            response_elements: call.response_elements,
            request_id: call.request_id,
            event_id: uuid::Uuid::new_v4().to_string(),
            read_only: call.read_only,
            resources: call.resources,
            event_type: "AwsApiCall",
            management_event: true,
            recipient_account_id: &call.identity.account_id,
            event_category: "Management",
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record of strings, bools and JSON values serializes")
    }
}

/// An identifier shaped like a UUID (version 8: custom) derived from `seed`, for records
/// whose eventID must come out the same however often they are produced (a retried call,
/// a replayed journal, a rescan of the same logs).
pub fn stable_event_id(seed: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed.as_bytes());
    let mut bytes: [u8; 16] = digest.as_ref()[..16].try_into().expect("16 of 32 bytes");
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKind;

    #[test]
    fn record_has_aws_field_order_and_shape() {
        let identity = Identity {
            kind: IdentityKind::IamUser,
            account_id: "123456789012".into(),
            user_name: Some("admin".into()),
            principal_id: "AIDAEXAMPLE".into(),
            access_key_id: "AKIAEXAMPLE".into(),
        };
        let params = serde_json::json!({"lookupAttributes": []});
        let record = ApiCallRecord::new(ApiCall {
            identity: &identity,
            event_time: 1_741_108_929,
            event_source: "cloudtrail.amazonaws.com",
            event_name: "LookupEvents",
            region: "eu-west-1",
            source_ip: "127.0.0.1",
            user_agent: Some("aws-cli/1.45"),
            error: None,
            request_parameters: &params,
            response_elements: &Value::Null,
            request_id: "req-1",
            read_only: true,
            resources: vec![],
        });
        let text = String::from_utf8(record.to_json()).unwrap();
        let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&text)
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert!(text.starts_with(r#"{"eventVersion":"1.11","userIdentity":{"type":"IAMUser""#));
        assert!(text.contains(r#""eventTime":"2025-03-04T17:22:09Z""#));
        assert!(text.contains(r#""responseElements":null"#));
        assert!(!text.contains("errorCode"));
        assert!(keys.contains(&"recipientAccountId".to_owned()));
        assert!(text.ends_with(r#""eventCategory":"Management"}"#));
    }

    #[test]
    fn long_text_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(600);
        let cut = truncate(&long);
        assert!(cut.len() <= TEXT_FIELD_LIMIT);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
