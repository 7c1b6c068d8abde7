//! The bulk endpoint: `POST /records` with the body of a CloudTrail log file,
//! `{"Records":[…]}`, signed with SigV4 for the service `cloudtrail`. Each record is
//! checked on its own; the valid ones are stored in one group commit.
//!
//! Response (HTTP 200 whenever the body itself was readable):
//! `{"successful":[{"index":0,"eventID":"…"},{"index":2,"eventID":"…","duplicate":true}],
//!   "failed":[{"index":1,"eventID":"…","errorCode":"InvalidData","errorMessage":"…"}]}`
//! A duplicate (an eventID this account already holds) is acknowledged, not stored twice.

use cairn_store::Event;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::api::ApiError;
use crate::app::App;
use crate::audit::store_events;
use crate::config::Credential;
use crate::records::{self, Policy};

/// Records in one request at most.
pub const MAX_RECORDS: usize = 10_000;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
}

enum Outcome {
    Valid {
        event_id: String,
        event: Event,
    },
    Refused {
        event_id: Option<String>,
        code: &'static str,
        message: String,
    },
}

fn examine(raw: &RawValue, policy: &Policy<'_>) -> Outcome {
    match records::check(raw.get(), policy) {
        Ok(event) => Outcome::Valid {
            event_id: event.fields.event_id.clone(),
            event,
        },
        Err(refusal) => Outcome::Refused {
            event_id: serde_json::from_str::<Value>(raw.get())
                .ok()
                .and_then(|v| v.get("eventID").and_then(Value::as_str).map(str::to_owned)),
            code: refusal.code,
            message: refusal.message,
        },
    }
}

pub async fn put_records(
    app: &App,
    credential: &Credential,
    body: axum::body::Bytes,
    now: i64,
) -> Result<Value, ApiError> {
    let retention = i64::from(app.settings.retention_days) * 86_400;
    let allowed = credential.write_records_for.clone();
    let own = credential.account_id.clone();
    // Checking a batch is CPU work done right here: with one worker thread per core, a
    // hop to another thread only adds cost (and cold allocator caches).
    let outcomes = (move || -> Result<Vec<Outcome>, ApiError> {
        let body: Body<'_> = serde_json::from_slice(&body).map_err(|e| {
            ApiError::serialization(format!("The body must be {{\"Records\":[…]}}: {e}"))
        })?;
        let records = body
            .records
            .ok_or_else(|| ApiError::validation("The body has no Records array."))?;
        if records.len() > MAX_RECORDS {
            return Err(ApiError::validation(format!(
                "{} records in one request; the limit is {MAX_RECORDS}.",
                records.len()
            )));
        }
        let may_write_for =
            |account: &str| account == own || allowed.iter().any(|a| a == "*" || a == account);
        let policy = Policy {
            may_write_for: &may_write_for,
            oldest: now - retention,
            newest: now + 86_400,
        };
        Ok(records
            .into_iter()
            .map(|raw| examine(raw, &policy))
            .collect())
    })()?;

    let mut events = Vec::new();
    let mut positions = Vec::new();
    let mut failed = Vec::new();
    let mut ids = Vec::new();
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Outcome::Valid { event_id, event } => {
                positions.push(index);
                ids.push(event_id);
                events.push(event);
            }
            Outcome::Refused {
                event_id,
                code,
                message,
            } => {
                let mut entry = json!({"index": index, "errorCode": code, "errorMessage": message});
                if let Some(id) = event_id {
                    entry["eventID"] = json!(id);
                }
                failed.push(entry);
            }
        }
    }
    let stored = if events.is_empty() {
        Vec::new()
    } else {
        store_events(&app.store, events).await?.stored
    };
    let successful: Vec<Value> = positions
        .into_iter()
        .zip(ids)
        .zip(stored)
        .map(|((index, id), seq)| {
            let mut entry = json!({"index": index, "eventID": id});
            if seq.is_none() {
                entry["duplicate"] = json!(true);
            }
            entry
        })
        .collect();
    Ok(json!({"successful": successful, "failed": failed}))
}
