//! LookupEvents: the 90-day event history of the caller's account and region.

use cairn_core::LookupKey;
use cairn_store::LookupQuery;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{Call, Outcome};
use crate::api::ApiError;

pub const DEFAULT_MAX_RESULTS: i64 = 50;
const MAX_VALUE_WEIGHT: usize = 2000;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub lookup_attributes: Option<Vec<Attribute>>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub event_category: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attribute {
    pub attribute_key: Option<String>,
    pub attribute_value: Option<String>,
}

/// The 2000-character limit counts `_`, space, `,` and newline twice.
fn value_weight(value: &str) -> usize {
    value
        .chars()
        .map(|c| {
            if matches!(c, '_' | ' ' | ',' | '\n') {
                2
            } else {
                1
            }
        })
        .sum()
}

/// Validated parameters, and the fingerprint a NextToken is bound to.
struct Params {
    attribute: Option<(LookupKey, String)>,
    insights: bool,
    start: Option<i64>,
    end: Option<i64>,
    limit: usize,
}

fn validate(input: &Input) -> Result<Params, ApiError> {
    let insights = match input.event_category.as_deref() {
        None => false,
        Some("insight") => true,
        Some(other) => {
            return Err(ApiError::client(
                "InvalidEventCategoryException",
                format!("Event category {other:?} is not valid. The only valid value is insight."),
            ))
        }
    };
    let attributes = input.lookup_attributes.as_deref().unwrap_or_default();
    if attributes.len() > 1 {
        return Err(ApiError::client(
            "InvalidLookupAttributesException",
            "LookupAttributes can contain only one attribute.",
        ));
    }
    let attribute = match attributes.first() {
        None => None,
        Some(a) => {
            let key_name = a.attribute_key.as_deref().ok_or_else(|| {
                ApiError::client(
                    "InvalidLookupAttributesException",
                    "AttributeKey is required.",
                )
            })?;
            let key = LookupKey::parse(key_name).ok_or_else(|| {
                ApiError::client(
                    "InvalidLookupAttributesException",
                    format!(
                        "AttributeKey {key_name:?} is not valid. Valid keys: EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId."
                    ),
                )
            })?;
            let value = a.attribute_value.as_deref().ok_or_else(|| {
                ApiError::client(
                    "InvalidLookupAttributesException",
                    "AttributeValue is required.",
                )
            })?;
            if value.is_empty() || value_weight(value) > MAX_VALUE_WEIGHT {
                return Err(ApiError::client(
                    "InvalidLookupAttributesException",
                    "AttributeValue must be 1 to 2000 characters long ('_', ' ', ',' and newline count as two).",
                ));
            }
            if insights
                && !matches!(
                    key,
                    LookupKey::EventId | LookupKey::EventName | LookupKey::EventSource
                )
            {
                return Err(ApiError::client(
                    "InvalidLookupAttributesException",
                    format!("AttributeKey {key_name} is not valid with EventCategory insight. Valid keys: EventId, EventName, EventSource."),
                ));
            }
            Some((key, value.to_owned()))
        }
    };
    // Event times are whole seconds: an inclusive bound rounds inward.
    let start = input.start_time.map(|t| t.ceil() as i64);
    let end = input.end_time.map(|t| t.floor() as i64);
    if let (Some(s), Some(e)) = (input.start_time, input.end_time) {
        if s > e {
            return Err(ApiError::client(
                "InvalidTimeRangeException",
                "StartTime must be before or equal to EndTime.",
            ));
        }
    }
    let max_results = input.max_results.unwrap_or(DEFAULT_MAX_RESULTS);
    if !(1..=50).contains(&max_results) {
        return Err(ApiError::client(
            "InvalidMaxResultsException",
            "MaxResults must be between 1 and 50.",
        ));
    }
    Ok(Params {
        attribute,
        insights,
        start,
        end,
        limit: max_results as usize,
    })
}

fn fingerprint(call: &Call<'_>, params: &Params) -> Vec<u8> {
    format!(
        "{}\n{}\n{:?}\n{}\n{:?}\n{:?}",
        call.identity.account_id,
        call.region,
        params.attribute,
        params.insights,
        params.start,
        params.end
    )
    .into_bytes()
}

pub async fn handle(call: &Call<'_>, input: Input) -> Result<Outcome, ApiError> {
    let params = validate(&input)?;
    let fingerprint = fingerprint(call, &params);
    let after = match input.next_token.as_deref() {
        None => None,
        Some(token) => Some(call.app.tokens.open(token, &fingerprint).ok_or_else(|| {
            ApiError::client(
                "InvalidNextTokenException",
                "The NextToken is not valid, or was issued for a query with other parameters.",
            )
        })?),
    };
    let retention_start = call.now - i64::from(call.app.settings.retention_days) * 86_400;
    let query = LookupQuery {
        account: call.identity.account_id.clone(),
        region: call.region.to_owned(),
        insights: params.insights,
        start: params.start.unwrap_or(i64::MIN).max(retention_start),
        end: params.end.unwrap_or(i64::MAX / 4),
        attribute: params.attribute.clone(),
        after,
        limit: params.limit + 1,
    };
    let store = call.app.store.clone();
    let mut hits = tokio::task::spawn_blocking(move || store.lookup(&query))
        .await
        .map_err(|_| ApiError::internal("the lookup task failed"))??;

    let next_token = if hits.len() > params.limit {
        hits.truncate(params.limit);
        hits.last()
            .map(|h| call.app.tokens.issue(h.cursor, &fingerprint))
    } else {
        None
    };
    let events: Vec<Value> = hits
        .iter()
        .map(|h| event_entry(&h.record, h.cursor.time))
        .collect();
    let mut response = Map::new();
    response.insert("Events".into(), Value::Array(events));
    if let Some(token) = next_token {
        response.insert("NextToken".into(), Value::String(token));
    }
    Ok(Outcome::of(Value::Object(response)))
}

/// One `Events[]` entry: summary fields taken from the record, and the record itself.
fn event_entry(record: &[u8], time: i64) -> Value {
    let text = String::from_utf8_lossy(record).into_owned();
    let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let fields = cairn_core::IndexFields::extract(record).ok();
    let attribute = |key| {
        fields
            .as_ref()
            .and_then(|f| f.attribute(key))
            .map(str::to_owned)
    };
    let mut entry = Map::new();
    if let Some(id) = parsed.get("eventID").and_then(Value::as_str) {
        entry.insert("EventId".into(), json!(id));
    }
    // Insights name their subject API in insightDetails; other records are indexed by
    // name and source (reported events inside their eventData).
    let (name, source) = match parsed.get("insightDetails") {
        Some(details) => (
            details.get("eventName").cloned(),
            details.get("eventSource").cloned(),
        ),
        None => (
            attribute(LookupKey::EventName).map(Value::String),
            attribute(LookupKey::EventSource).map(Value::String),
        ),
    };
    if let Some(name) = name {
        entry.insert("EventName".into(), name);
    }
    if let Some(read_only) = parsed.get("readOnly").and_then(Value::as_bool) {
        entry.insert("ReadOnly".into(), json!(read_only.to_string()));
    }
    if let Some(key) = attribute(LookupKey::AccessKeyId) {
        entry.insert("AccessKeyId".into(), json!(key));
    }
    entry.insert("EventTime".into(), json!(time));
    if let Some(source) = source {
        entry.insert("EventSource".into(), source);
    }
    if let Some(user) = attribute(LookupKey::Username) {
        entry.insert("Username".into(), json!(user));
    }
    let resources: Vec<Value> = parsed
        .get("resources")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|r| {
                    let mut out = Map::new();
                    if let Some(t) = r.get("type") {
                        out.insert("ResourceType".into(), t.clone());
                    }
                    if let Some(n) = r.get("ARN").or_else(|| r.get("ARNPrefix")) {
                        out.insert("ResourceName".into(), n.clone());
                    }
                    Value::Object(out)
                })
                .collect()
        })
        .unwrap_or_default();
    entry.insert("Resources".into(), Value::Array(resources));
    entry.insert("CloudTrailEvent".into(), Value::String(text));
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(body: Value) -> Input {
        serde_json::from_value(body).unwrap()
    }

    fn code(body: Value) -> &'static str {
        validate(&input(body)).err().map(|e| e.code).unwrap_or("ok")
    }

    #[test]
    fn validation_follows_aws() {
        assert_eq!(code(json!({})), "ok");
        assert_eq!(code(json!({"MaxResults": 0})), "InvalidMaxResultsException");
        assert_eq!(
            code(json!({"MaxResults": 51})),
            "InvalidMaxResultsException"
        );
        assert_eq!(
            code(json!({"StartTime": 10, "EndTime": 9})),
            "InvalidTimeRangeException"
        );
        assert_eq!(code(json!({"StartTime": 10, "EndTime": 10})), "ok");
        assert_eq!(
            code(json!({"EventCategory": "Management"})),
            "InvalidEventCategoryException"
        );
        assert_eq!(
            code(
                json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "a"}, {"AttributeKey": "EventName", "AttributeValue": "b"}]})
            ),
            "InvalidLookupAttributesException"
        );
        assert_eq!(
            code(
                json!({"LookupAttributes": [{"AttributeKey": "eventName", "AttributeValue": "a"}]})
            ),
            "InvalidLookupAttributesException"
        );
        assert_eq!(
            code(
                json!({"EventCategory": "insight", "LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "a"}]})
            ),
            "InvalidLookupAttributesException"
        );
        assert_eq!(
            code(
                json!({"LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": "_".repeat(1001)}]})
            ),
            "InvalidLookupAttributesException"
        );
        assert_eq!(
            code(
                json!({"LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": "_".repeat(1000)}]})
            ),
            "ok"
        );
    }

    #[test]
    fn entries_carry_summary_fields_and_the_record() {
        let record = br#"{"eventVersion":"1.11","userIdentity":{"type":"Root","arn":"arn:aws:iam::1:root","accountId":"111122223333","accessKeyId":"AKIAROOT"},"eventTime":"2024-07-31T13:06:24Z","eventSource":"cloudtrail.amazonaws.com","eventName":"CreateTrail","awsRegion":"us-east-1","eventID":"e-1","readOnly":false,"resources":[{"ARN":"arn:aws:cloudtrail:us-east-1:111122223333:trail/t","accountId":"111122223333","type":"AWS::CloudTrail::Trail"}],"recipientAccountId":"111122223333","eventCategory":"Management"}"#;
        let entry = event_entry(record, 1_722_431_184);
        assert_eq!(entry["EventId"], "e-1");
        assert_eq!(entry["EventName"], "CreateTrail");
        assert_eq!(entry["ReadOnly"], "false");
        assert_eq!(entry["AccessKeyId"], "AKIAROOT");
        assert_eq!(entry["Username"], "root");
        assert_eq!(entry["EventTime"], 1_722_431_184);
        assert_eq!(
            entry["Resources"][0]["ResourceType"],
            "AWS::CloudTrail::Trail"
        );
        assert_eq!(
            entry["CloudTrailEvent"],
            std::str::from_utf8(record).unwrap()
        );
    }
}
