//! Insights events as AWS writes them: `AwsCloudTrailInsight` records, a Start and an End
//! sharing one `sharedEventID`.

use cairn_core::record::stable_event_id;
use cairn_core::timefmt::format_event_time;
use serde::Serialize;

/// The version AWS writes on Insights records.
pub const INSIGHT_EVENT_VERSION: &str = "1.09";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InsightKind {
    ApiCallRate,
    ApiErrorRate { error_code: String },
}

impl InsightKind {
    pub fn name(&self) -> &'static str {
        match self {
            InsightKind::ApiCallRate => "ApiCallRateInsight",
            InsightKind::ApiErrorRate { .. } => "ApiErrorRateInsight",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Start,
    End,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Start => "Start",
            State::End => "End",
        }
    }
}

/// The top callers for one attribute, during the Insight and in the baseline, each with
/// its average calls per minute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribution {
    pub attribute: &'static str,
    pub insight: Vec<(String, f64)>,
    pub baseline: Vec<(String, f64)>,
}

/// One Insights event.
#[derive(Clone, Debug, PartialEq)]
pub struct Insight {
    pub account: String,
    pub region: String,
    pub event_source: String,
    pub event_name: String,
    pub kind: InsightKind,
    pub state: State,
    /// Epoch seconds of the minute the unusual activity started (Start) or ended (End).
    pub time: i64,
    /// Epoch seconds of the start, on both events.
    pub started: i64,
    pub baseline_average: f64,
    /// Start: the rate in the first minute. End: the average over the whole Insight.
    pub insight_average: f64,
    pub insight_duration: i64,
    pub baseline_duration: i64,
    pub attributions: Vec<Attribution>,
    /// The minute whose close produced this event (for measuring detection delay).
    pub decided_at: i64,
}

impl Insight {
    /// The Insight's identity, the same on Start and End and on every replay.
    pub fn shared_event_id(&self) -> String {
        let error = match &self.kind {
            InsightKind::ApiCallRate => "",
            InsightKind::ApiErrorRate { error_code } => error_code,
        };
        stable_event_id(&format!(
            "insight\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.account,
            self.region,
            self.event_source,
            self.event_name,
            self.kind.name(),
            error,
            self.started
        ))
    }

    /// The record in a trail's `CloudTrail-Insight/` files, as JSON with AWS's field order.
    pub fn record(&self) -> String {
        let shared_event_id = self.shared_event_id();
        let record = Record {
            event_version: INSIGHT_EVENT_VERSION,
            event_time: format_event_time(self.time),
            aws_region: &self.region,
            event_id: event_id(&shared_event_id, self.state),
            event_type: "AwsCloudTrailInsight",
            recipient_account_id: &self.account,
            shared_event_id,
            insight_details: Details {
                state: self.state.name(),
                event_source: &self.event_source,
                event_name: &self.event_name,
                insight_type: self.kind.name(),
                error_code: match &self.kind {
                    InsightKind::ApiCallRate => None,
                    InsightKind::ApiErrorRate { error_code } => Some(error_code),
                },
                source_event_category: "Management",
                insight_context: Context {
                    statistics: Statistics {
                        baseline: Average {
                            average: round(self.baseline_average),
                        },
                        insight: Average {
                            average: round(self.insight_average),
                        },
                        insight_duration: self.insight_duration,
                        baseline_duration: self.baseline_duration,
                    },
                    attributions: self
                        .attributions
                        .iter()
                        .map(|a| AttributionRecord {
                            attribute: a.attribute,
                            insight: values(&a.insight),
                            baseline: values(&a.baseline),
                        })
                        .collect(),
                },
            },
            event_category: "Insight",
        };
        serde_json::to_string(&record).expect("an Insights record serializes")
    }
}

fn event_id(shared_event_id: &str, state: State) -> String {
    stable_event_id(&format!("{shared_event_id}\n{}", state.name()))
}

// The record's shape, field by field in the order AWS writes them.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    event_version: &'static str,
    event_time: String,
    aws_region: &'a str,
    #[serde(rename = "eventID")]
    event_id: String,
    event_type: &'static str,
    recipient_account_id: &'a str,
    #[serde(rename = "sharedEventID")]
    shared_event_id: String,
    insight_details: Details<'a>,
    event_category: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Details<'a> {
    state: &'static str,
    event_source: &'a str,
    event_name: &'a str,
    insight_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    source_event_category: &'static str,
    insight_context: Context<'a>,
}

#[derive(Serialize)]
struct Context<'a> {
    statistics: Statistics,
    attributions: Vec<AttributionRecord<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Statistics {
    baseline: Average,
    insight: Average,
    insight_duration: i64,
    baseline_duration: i64,
}

#[derive(Serialize)]
struct Average {
    average: f64,
}

#[derive(Serialize)]
struct AttributionRecord<'a> {
    attribute: &'static str,
    insight: Vec<Valued<'a>>,
    baseline: Vec<Valued<'a>>,
}

#[derive(Serialize)]
struct Valued<'a> {
    value: &'a str,
    average: f64,
}

fn values(list: &[(String, f64)]) -> Vec<Valued<'_>> {
    list.iter()
        .map(|(value, average)| Valued {
            value,
            average: round(*average),
        })
        .collect()
}

/// Averages with more digits than anyone reads make files larger and diffs noisier.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parsed(insight: &Insight) -> Value {
        serde_json::from_str(&insight.record()).unwrap()
    }

    fn sample(state: State) -> Insight {
        Insight {
            account: "888888888888".into(),
            region: "us-east-1".into(),
            event_source: "cloudtrail.amazonaws.com".into(),
            event_name: "DescribeQuery".into(),
            kind: InsightKind::ApiErrorRate {
                error_code: "QueryIdNotFoundException".into(),
            },
            state,
            time: 1_733_935_920,
            started: 1_733_935_920,
            baseline_average: 0.0,
            insight_average: 1.2,
            insight_duration: 5,
            baseline_duration: 11092,
            attributions: vec![Attribution {
                attribute: "userIdentityArn",
                insight: vec![("arn:aws:sts::888888888888:assumed-role/Admin".into(), 1.2)],
                baseline: vec![],
            }],
            decided_at: 0,
        }
    }

    #[test]
    fn the_record_has_aws_fields_and_no_caller_fields() {
        let record = parsed(&sample(State::Start));
        assert_eq!(record["eventType"], "AwsCloudTrailInsight");
        assert_eq!(record["eventCategory"], "Insight");
        assert_eq!(record["eventTime"], "2024-12-11T16:52:00Z");
        let details = &record["insightDetails"];
        assert_eq!(details["state"], "Start");
        assert_eq!(details["insightType"], "ApiErrorRateInsight");
        assert_eq!(details["errorCode"], "QueryIdNotFoundException");
        assert_eq!(details["sourceEventCategory"], "Management");
        let stats = &details["insightContext"]["statistics"];
        assert_eq!(stats["insight"]["average"], 1.2);
        assert_eq!(stats["baselineDuration"], 11092);
        let attributions = &details["insightContext"]["attributions"][0];
        assert_eq!(attributions["attribute"], "userIdentityArn");
        assert_eq!(attributions["baseline"], json!([]));
        for absent in ["eventName", "eventSource", "userIdentity", "userAgent"] {
            assert!(record.get(absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn start_and_end_share_an_id_and_differ_in_event_id() {
        let start = parsed(&sample(State::Start));
        let mut end = sample(State::End);
        end.time += 300;
        let end = parsed(&end);
        assert_eq!(start["sharedEventID"], end["sharedEventID"]);
        assert_ne!(start["eventID"], end["eventID"]);
        assert_eq!(parsed(&sample(State::Start)), start, "ids are stable");
    }
}
