//! PutEventSelectors, GetEventSelectors, PutInsightSelectors, GetInsightSelectors.

use cairn_core::selectors::{AdvancedEventSelector, EventSelector, Selectors};
use serde::Deserialize;
use serde_json::{json, Value};

use super::trails::{change_trail, find, Stamp};
use super::{Call, Outcome};
use crate::api::ApiError;
use crate::trails::{InsightSelector, Trail};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutEventInput {
    pub trail_name: Option<String>,
    pub event_selectors: Option<Vec<EventSelector>>,
    pub advanced_event_selectors: Option<Vec<AdvancedEventSelector>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetInput {
    pub trail_name: Option<String>,
    pub event_data_store: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutInsightInput {
    pub trail_name: Option<String>,
    pub insight_selectors: Option<Vec<InsightSelector>>,
    pub event_data_store: Option<String>,
    pub insights_destination: Option<String>,
}

fn invalid_selectors(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidEventSelectorsException", message)
}

fn event_selectors_response(trail: &Trail) -> Value {
    let mut out = json!({ "TrailARN": trail.arn() });
    match &trail.selectors {
        Selectors::Basic(list) => out["EventSelectors"] = json!(list),
        Selectors::Advanced(list) => out["AdvancedEventSelectors"] = json!(list),
    }
    out
}

pub async fn put_event_selectors(
    call: &Call<'_>,
    input: PutEventInput,
) -> Result<Outcome, ApiError> {
    let selectors = match (input.event_selectors, input.advanced_event_selectors) {
        (Some(_), Some(_)) => {
            return Err(ApiError::client(
                "InvalidParameterCombinationException",
                "Give EventSelectors or AdvancedEventSelectors, not both.",
            ))
        }
        (None, None) => {
            return Err(invalid_selectors(
                "Give EventSelectors or AdvancedEventSelectors.",
            ))
        }
        (Some(basic), None) => Selectors::Basic(basic),
        (None, Some(advanced)) => Selectors::Advanced(advanced),
    };
    selectors.validate().map_err(invalid_selectors)?;
    change_trail(
        call,
        input.trail_name.as_deref(),
        Stamp::None,
        |trail, _| {
            trail.custom_selectors = selectors != Selectors::default();
            trail.selectors = selectors;
            Ok(event_selectors_response(trail))
        },
    )
}

fn reject_event_data_store(given: Option<&str>) -> Result<(), ApiError> {
    if given.is_some() {
        return Err(ApiError::client(
            "InvalidParameterCombinationException",
            "Cairn keeps no event data stores; name a trail with TrailName.",
        ));
    }
    Ok(())
}

pub async fn get_event_selectors(call: &Call<'_>, input: GetInput) -> Result<Outcome, ApiError> {
    reject_event_data_store(input.event_data_store.as_deref())?;
    let trail = find(call, input.trail_name.as_deref())?;
    Ok(Outcome::of(event_selectors_response(&trail)))
}

const INSIGHT_TYPES: [&str; 2] = ["ApiCallRateInsight", "ApiErrorRateInsight"];

fn invalid_insights(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidInsightSelectorsException", message)
}

/// Checks Insights selectors against the trail they are for: known types, each once, and
/// the events each needs being logged.
fn check_insight_selectors(list: &[InsightSelector], trail: &Trail) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::new();
    for selector in list {
        let kind = selector.insight_type.as_str();
        if !INSIGHT_TYPES.contains(&kind) {
            return Err(invalid_insights(format!(
                "InsightType {kind:?} is not valid; use ApiCallRateInsight or ApiErrorRateInsight."
            )));
        }
        if !seen.insert(kind) {
            return Err(invalid_insights(format!(
                "InsightType {kind} is given twice."
            )));
        }
        let categories = selector
            .event_categories
            .clone()
            .unwrap_or_else(|| vec!["Management".to_owned()]);
        if categories.is_empty() {
            return Err(invalid_insights(
                "EventCategories, when given, names Management, Data or both.",
            ));
        }
        for category in &categories {
            let logged = match (category.as_str(), kind) {
                ("Management", "ApiCallRateInsight") => trail.selectors.logs_management(false),
                ("Management", _) => {
                    trail.selectors.logs_management(false) || trail.selectors.logs_management(true)
                }
                ("Data", _) => trail.selectors.logs_data(),
                (other, _) => {
                    return Err(invalid_insights(format!(
                        "EventCategories value {other:?} is not valid; use Management or Data."
                    )))
                }
            };
            if !logged {
                let needs = match (category.as_str(), kind) {
                    ("Management", "ApiCallRateInsight") => "write management events",
                    ("Management", _) => "management events",
                    _ => "data events",
                };
                return Err(invalid_insights(format!(
                    "{kind} on {category} events needs the trail to log {needs}; change its event selectors first."
                )));
            }
        }
    }
    Ok(())
}

pub async fn put_insight_selectors(
    call: &Call<'_>,
    input: PutInsightInput,
) -> Result<Outcome, ApiError> {
    reject_event_data_store(input.event_data_store.as_deref())?;
    if input.insights_destination.is_some() {
        return Err(ApiError::client(
            "InvalidParameterCombinationException",
            "InsightsDestination applies to event data stores, not trails.",
        ));
    }
    let list = input
        .insight_selectors
        .ok_or_else(|| invalid_insights("InsightSelectors is required."))?;
    change_trail(
        call,
        input.trail_name.as_deref(),
        Stamp::None,
        |trail, _| {
            check_insight_selectors(&list, trail)?;
            trail.insight_selectors = list;
            Ok(json!({"TrailARN": trail.arn(), "InsightSelectors": trail.insight_selectors}))
        },
    )
}

pub async fn get_insight_selectors(call: &Call<'_>, input: GetInput) -> Result<Outcome, ApiError> {
    reject_event_data_store(input.event_data_store.as_deref())?;
    let trail = find(call, input.trail_name.as_deref())?;
    if trail.insight_selectors.is_empty() {
        return Err(ApiError::client(
            "InsightNotEnabledException",
            format!(
                "Trail {} does not have Insights enabled. Edit the trail settings to enable Insights, and then try the operation again.",
                trail.arn()
            ),
        ));
    }
    Ok(Outcome::of(json!({
        "TrailARN": trail.arn(),
        "InsightSelectors": trail.insight_selectors,
    })))
}
