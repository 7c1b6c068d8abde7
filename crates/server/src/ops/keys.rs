//! ListPublicKeys: the public keys that verify digest signatures in the caller's region.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Call, Outcome};
use crate::api::ApiError;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPublicKeysInput {
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub next_token: Option<String>,
}

/// Every key of the region whose validity window meets `[StartTime, EndTime]`; both
/// default to now, which gives the keys that sign at present.
pub async fn list(call: &Call<'_>, input: ListPublicKeysInput) -> Result<Outcome, ApiError> {
    if input.next_token.is_some() {
        // Every answer is one page, so no token was ever handed out.
        return Err(ApiError::client(
            "InvalidTokenException",
            "The NextToken is not valid.",
        ));
    }
    let now = call.now as f64;
    let start = input.start_time.unwrap_or(now);
    let end = input.end_time.unwrap_or(now);
    if start > end {
        return Err(ApiError::client(
            "InvalidTimeRangeException",
            "StartTime must be before or equal to EndTime.",
        ));
    }
    let keys: Vec<Value> = crate::keys::public_keys(&call.app.meta, call.region)
        .iter()
        .filter(|k| (k.start as f64) <= end && start <= k.end as f64)
        .map(|k| k.to_json())
        .collect();
    Ok(Outcome::of(json!({ "PublicKeyList": keys })))
}
