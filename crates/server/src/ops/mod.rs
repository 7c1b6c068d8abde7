//! CloudTrail operations: each a plain function from a typed input to a JSON output.

pub mod channels;
pub mod insights_metrics;
pub mod keys;
pub mod log_events;
pub mod logs;
pub mod lookup_events;
pub mod selectors;
pub mod tags;
pub mod trails;

use cairn_core::Identity;
use serde_json::Value;

use crate::api::ApiError;
use crate::app::App;

/// What every handler gets: who is calling, where, and when.
pub struct Call<'a> {
    pub app: &'a App,
    pub identity: &'a Identity,
    pub region: &'a str,
    pub now: i64,
    /// Records this call; changes use it inside their metadata update.
    pub recorder: &'a crate::audit::Recorder<'a>,
}

/// What a handler gives back: the response body, and whether it recorded the call.
pub struct Outcome {
    pub response: Value,
    /// The handler already recorded the call (as part of the change it made).
    pub recorded: bool,
}

impl Outcome {
    pub fn of(response: Value) -> Self {
        Outcome {
            response,
            recorded: false,
        }
    }

    pub fn recorded(response: Value) -> Self {
        Outcome {
            response,
            recorded: true,
        }
    }
}

/// A listing paged by position. The request's token gives where this page starts; the
/// answer's token, when more items follow, where the next one does. Tokens are bound to the
/// query's `fingerprint`, so a token from another listing is refused.
pub struct Listing {
    start: usize,
    limit: usize,
    fingerprint: Vec<u8>,
}

impl Listing {
    pub fn open(
        call: &Call,
        fingerprint: String,
        token: Option<&str>,
        limit: usize,
        bad_token: impl FnOnce() -> ApiError,
    ) -> Result<Listing, ApiError> {
        let fingerprint = fingerprint.into_bytes();
        let start = match token {
            None => 0,
            Some(token) => call
                .app
                .tokens
                .open(token, &fingerprint)
                .and_then(|c| usize::try_from(c.seq).ok())
                .ok_or_else(bad_token)?,
        };
        Ok(Listing {
            start,
            limit,
            fingerprint,
        })
    }

    /// This page of `items`, and the token for the next page if there is one.
    pub fn page<T>(&self, call: &Call, items: Vec<T>) -> (Vec<T>, Option<String>) {
        let total = items.len();
        let page = items
            .into_iter()
            .skip(self.start)
            .take(self.limit)
            .collect();
        let next = self.start + self.limit;
        let token = (next < total).then(|| {
            let position = cairn_store::Cursor {
                time: 0,
                seq: next as u64,
            };
            call.app.tokens.issue(position, &self.fingerprint)
        });
        (page, token)
    }
}

/// `InvalidParameterException`, the error of a bad member in the Logs and Insights
/// metrics operations.
pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidParameterException", message)
}

/// The value of a member the operation requires.
pub(crate) fn required<T>(value: Option<T>, member: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| invalid(format!("{member} is required.")))
}

/// Deserializes an operation's input, mapping type errors to `SerializationException`.
pub fn input<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    T::deserialize(body).map_err(|e| ApiError::serialization(e.to_string()))
}

/// Runs a CloudTrail operation. Blocking store work runs off the async threads.
pub async fn dispatch(call: Call<'_>, operation: &str, body: &Value) -> Result<Outcome, ApiError> {
    match operation {
        "LookupEvents" => lookup_events::handle(&call, input(body)?).await,
        "ListInsightsMetricData" => insights_metrics::handle(&call, input(body)?).await,
        "CreateChannel" => channels::create(&call, input(body)?).await,
        "GetChannel" => channels::get(&call, input(body)?).await,
        "ListChannels" => channels::list(&call, input(body)?).await,
        "UpdateChannel" => channels::update(&call, input(body)?).await,
        "DeleteChannel" => channels::delete(&call, input(body)?).await,
        "CreateTrail" => trails::create(&call, input(body)?).await,
        "UpdateTrail" => trails::update(&call, input(body)?).await,
        "DeleteTrail" => trails::delete(&call, input(body)?).await,
        "GetTrail" => trails::get(&call, input(body)?).await,
        "DescribeTrails" => trails::describe(&call, input(body)?).await,
        "ListTrails" => trails::list(&call, input(body)?).await,
        "GetTrailStatus" => trails::status(&call, input(body)?).await,
        "StartLogging" => trails::start_logging(&call, input(body)?).await,
        "StopLogging" => trails::stop_logging(&call, input(body)?).await,
        "PutEventSelectors" => selectors::put_event_selectors(&call, input(body)?).await,
        "GetEventSelectors" => selectors::get_event_selectors(&call, input(body)?).await,
        "PutInsightSelectors" => selectors::put_insight_selectors(&call, input(body)?).await,
        "GetInsightSelectors" => selectors::get_insight_selectors(&call, input(body)?).await,
        "ListPublicKeys" => keys::list(&call, input(body)?).await,
        "AddTags" => tags::add(&call, input(body)?).await,
        "RemoveTags" => tags::remove(&call, input(body)?).await,
        "ListTags" => tags::list(&call, input(body)?).await,
        other => Err(ApiError::unknown_operation(other)),
    }
}
