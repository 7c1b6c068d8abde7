//! Recording Cairn's own API calls as CloudTrail events.
//!
//! No action without its audit record: a read is answered only once its record is durable;
//! a change is recorded inside the metadata transaction that makes it, before the change is
//! written, so a failure to record leaves nothing changed.

use cairn_core::{ApiCall, ApiCallRecord, Identity, RecordResource};
use cairn_store::{Event, Store};
use serde_json::Value;

use crate::api::ApiError;

/// Everything about a call that its record needs, besides the outcome.
pub struct Recorder<'a> {
    pub store: &'a Store,
    pub identity: &'a Identity,
    pub region: &'a str,
    /// The service the call went to: `cloudtrail.amazonaws.com` or `logs.amazonaws.com`.
    pub event_source: &'a str,
    pub operation: &'a str,
    pub read_only: bool,
    pub request_parameters: Value,
    pub source_ip: String,
    pub user_agent: Option<&'a str>,
    pub request_id: &'a str,
    pub now: i64,
}

/// AWS records request and response members in lowerCamelCase.
pub fn lower_camel(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let key = chars
                        .next()
                        .map(|c| c.to_lowercase().chain(chars).collect())
                        .unwrap_or_default();
                    (key, lower_camel(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(lower_camel).collect()),
        other => other.clone(),
    }
}

/// CloudTrail records a refusal by authorization as `AccessDenied`, whatever error code
/// the API answered with.
fn recorded_code(code: &str) -> &str {
    match code {
        "AccessDeniedException" => "AccessDenied",
        other => other,
    }
}

impl Recorder<'_> {
    fn event(
        &self,
        outcome: Result<&Value, &ApiError>,
        resources: Vec<RecordResource>,
    ) -> Result<Event, ApiError> {
        let response_elements = match outcome {
            Ok(response) if !self.read_only => lower_camel(response),
            _ => Value::Null,
        };
        let record = ApiCallRecord::new(ApiCall {
            identity: self.identity,
            event_time: self.now,
            event_source: self.event_source,
            event_name: self.operation,
            region: self.region,
            source_ip: &self.source_ip,
            user_agent: self.user_agent,
            error: outcome
                .err()
                .map(|e| (recorded_code(e.code), e.message.as_str())),
            request_parameters: &self.request_parameters,
            response_elements: &response_elements,
            request_id: self.request_id,
            read_only: self.read_only,
            resources,
        })
        .to_json();
        Event::from_record(record).map_err(|e| ApiError::internal(format!("audit record: {e}")))
    }

    /// Records the call and waits until the record is durable.
    pub async fn record(&self, outcome: Result<&Value, &ApiError>) -> Result<(), ApiError> {
        let event = self.event(outcome, Vec::new())?;
        store_events(self.store, vec![event]).await.map(drop)
    }

    /// The same, for code that holds a lock and must not yield (inside a metadata update).
    /// Returns the record's journal position, which orders the change among events.
    pub fn record_blocking(
        &self,
        response: &Value,
        resources: Vec<RecordResource>,
    ) -> Result<u64, ApiError> {
        let event = self.event(Ok(response), resources)?;
        let appended = self
            .store
            .append_blocking(vec![event])
            .map_err(ApiError::from)?;
        appended
            .stored
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| ApiError::internal("the audit record was not stored"))
    }
}

/// Appends events and waits until they are durable.
pub async fn store_events(
    store: &Store,
    events: Vec<Event>,
) -> Result<cairn_store::Appended, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.append(events, Box::new(move |result| drop(tx.send(result))));
    match rx.await {
        Ok(result) => result.map_err(ApiError::from),
        Err(_) => Err(cairn_store::StoreError::closed().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_members_are_recorded_in_lower_camel_case() {
        let input = serde_json::json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "X"}], "MaxResults": 5});
        assert_eq!(
            lower_camel(&input),
            serde_json::json!({"lookupAttributes": [{"attributeKey": "EventName", "attributeValue": "X"}], "maxResults": 5})
        );
    }
}
