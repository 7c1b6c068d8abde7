//! ListInsightsMetricData: what an Insights series counted, per minute, five minutes or
//! hour, in the caller's account and region. A data point's value is the number of calls
//! the series counted in its period (write calls for `ApiCallRateInsight`, calls that
//! failed with the error code for `ApiErrorRateInsight`) while a logging trail asked for
//! Insights. As AWS keeps them, one-minute points reach back 15 days, five-minute points
//! 63 days and one-hour points 90 days.

use cairn_core::timefmt::SECONDS_PER_DAY;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{invalid, required, Call, Outcome};
use crate::api::ApiError;
use crate::insights::metrics::{Subject, KEPT_DAYS};

const MAX_RESULTS: i64 = 21_600;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub trail_name: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub insight_type: Option<String>,
    pub error_code: Option<String>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub period: Option<i64>,
    pub data_type: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// A required string member, checked against its length limit and characters.
fn member<'a>(
    value: &'a Option<String>,
    name: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<&'a str, ApiError> {
    let value = required(value.as_deref(), name)?;
    if value.is_empty() || value.len() > max || !value.chars().all(allowed) {
        return Err(invalid(format!(
            "{name} {value:?} is not valid: 1 to {max} characters of the allowed set."
        )));
    }
    Ok(value)
}

/// How long points of a period are kept, as AWS keeps them.
fn kept_secs(period: i64) -> i64 {
    match period {
        60 => 15 * SECONDS_PER_DAY,
        300 => 63 * SECONDS_PER_DAY,
        _ => KEPT_DAYS * SECONDS_PER_DAY,
    }
}

pub async fn handle(call: &Call<'_>, input: Input) -> Result<Outcome, ApiError> {
    if input.trail_name.is_some() {
        return Err(ApiError::client(
            "UnsupportedOperationException",
            "Insights on data events are not supported, so TrailName is not either; omit it for the Insights of management events.",
        ));
    }
    let source = member(&input.event_source, "EventSource", 256, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
    })?;
    if !source.ends_with(".amazonaws.com") || source.len() == ".amazonaws.com".len() {
        return Err(invalid(format!(
            "EventSource {source:?} is not valid: a service name such as ec2.amazonaws.com."
        )));
    }
    let name = member(&input.event_name, "EventName", 128, |c| {
        c.is_ascii_alphanumeric() || c == '_'
    })?;
    let insight_type = required(input.insight_type.as_deref(), "InsightType")?;
    let error_code = match (insight_type, &input.error_code) {
        ("ApiCallRateInsight", None) => None,
        ("ApiCallRateInsight", Some(_)) => {
            return Err(invalid(
                "ErrorCode is only valid with InsightType ApiErrorRateInsight.",
            ))
        }
        ("ApiErrorRateInsight", code) => Some(member(code, "ErrorCode", 128, |c| {
            c.is_alphanumeric()
                || c.is_whitespace()
                || matches!(c, '_' | '.' | ',' | '-' | ':' | '[' | ']')
        })?),
        (other, _) => {
            return Err(invalid(format!(
                "InsightType {other:?} is not valid. Valid values: ApiCallRateInsight, ApiErrorRateInsight."
            )))
        }
    };
    let period = input.period.unwrap_or(3600);
    if ![60, 300, 3600].contains(&period) {
        return Err(invalid(format!(
            "Period {period} is not valid. Valid values: 60, 300, 3600."
        )));
    }
    let fill_with_zeros = match input.data_type.as_deref().unwrap_or("NonZeroData") {
        "NonZeroData" => false,
        "FillWithZeros" => true,
        other => {
            return Err(invalid(format!(
                "DataType {other:?} is not valid. Valid values: FillWithZeros, NonZeroData."
            )))
        }
    };
    let max_results = input.max_results.unwrap_or(MAX_RESULTS);
    if !(1..=MAX_RESULTS).contains(&max_results) {
        return Err(invalid("MaxResults must be between 1 and 21600."));
    }
    if let (Some(start), Some(end)) = (input.start_time, input.end_time) {
        if start > end {
            return Err(invalid("StartTime must be before or equal to EndTime."));
        }
    }

    // Points sit on the period's grid, from StartTime (inclusive) to EndTime (exclusive),
    // within what is kept for the period.
    let start = input
        .start_time
        .map_or(i64::MIN, |t| t.ceil() as i64)
        .max(call.now - kept_secs(period));
    let end = input.end_time.map_or(call.now, |t| t.ceil() as i64);
    let fingerprint = format!(
        "insights-metrics\n{}\n{}\n{source}\n{name}\n{insight_type}\n{error_code:?}\n{period}\n{fill_with_zeros}\n{:?}\n{:?}",
        call.identity.account_id, call.region, input.start_time, input.end_time
    )
    .into_bytes();
    let mut first = start.div_euclid(period) * period;
    if first < start {
        first += period;
    }
    if let Some(token) = input.next_token.as_deref() {
        first = call
            .app
            .tokens
            .open(token, &fingerprint)
            .map(|c| c.time)
            .ok_or_else(|| {
                invalid(
                    "The NextToken is not valid, or was issued for a query with other parameters.",
                )
            })?;
    }
    let subject = Subject {
        account: call.identity.account_id.clone(),
        region: call.region.to_owned(),
        event_source: source.to_owned(),
        event_name: name.to_owned(),
        error_code: error_code.map(str::to_owned),
    };
    let counts = if first < end {
        let last_end = first + (end - first + period - 1) / period * period;
        // Up to one header and block per day, read from disk.
        tokio::task::block_in_place(|| {
            call.app
                .insights
                .metric_counts(&subject, first / 60, last_end / 60)
        })
        .map_err(|e| ApiError::internal(format!("reading Insights metrics: {e}")))?
    } else {
        Vec::new()
    };

    // Sums per period, in order, then the page.
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    let mut next = None;
    let mut counts = counts.into_iter().peekable();
    let mut t = first;
    while t < end {
        let mut sum = 0u64;
        while let Some(&(minute, count)) = counts.peek() {
            if minute * 60 >= t + period {
                break;
            }
            sum += u64::from(count);
            counts.next();
        }
        if sum > 0 || fill_with_zeros {
            if timestamps.len() as i64 == max_results {
                next = Some(t);
                break;
            }
            timestamps.push(json!(t));
            values.push(json!(sum as f64));
        }
        t += period;
    }
    let mut response = Map::new();
    response.insert("EventSource".into(), json!(source));
    response.insert("EventName".into(), json!(name));
    response.insert("InsightType".into(), json!(insight_type));
    if let Some(code) = error_code {
        response.insert("ErrorCode".into(), json!(code));
    }
    response.insert("Timestamps".into(), Value::Array(timestamps));
    response.insert("Values".into(), Value::Array(values));
    if let Some(t) = next {
        let position = cairn_store::Cursor { time: t, seq: 0 };
        response.insert(
            "NextToken".into(),
            json!(call.app.tokens.issue(position, &fingerprint)),
        );
    }
    Ok(Outcome::of(Value::Object(response)))
}
