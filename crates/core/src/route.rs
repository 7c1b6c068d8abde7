//! The fields of a record that decide which trails receive it.

use serde::Deserialize;
use std::borrow::Cow;

use crate::Category;

/// One `resources` entry of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub kind: String,
    pub arn: String,
}

/// What routing looks at: where the event happened, what it was, and on what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteFields {
    pub account: String,
    pub region: String,
    pub category: Category,
    pub event_source: String,
    pub event_name: String,
    pub event_type: String,
    /// `None` when the record does not say.
    pub read_only: Option<bool>,
    pub resources: Vec<Resource>,
    pub user_arn: Option<String>,
    pub session_credential_from_console: Option<String>,
    pub error_code: Option<String>,
    pub vpc_endpoint_id: Option<String>,
    /// `eventTime` in epoch seconds; 0 when missing or unreadable.
    pub event_time: i64,
    /// An Insights event's `insightDetails.insightType`.
    pub insight_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw<'a> {
    #[serde(borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_type: Option<Cow<'a, str>>,
    read_only: Option<serde_json::Value>,
    management_event: Option<bool>,
    insight_details: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    user_identity: Option<RawIdentity<'a>>,
    #[serde(default)]
    resources: Option<Vec<RawResource<'a>>>,
    session_credential_from_console: Option<serde_json::Value>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    vpc_endpoint_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_time: Option<Cow<'a, str>>,
}

/// What routing and the history read of an Insights event's `insightDetails`: its type
/// and the API it is about.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InsightSubject<'a> {
    #[serde(borrow)]
    pub insight_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_name: Option<Cow<'a, str>>,
}

impl<'a> InsightSubject<'a> {
    /// The subject of an event of `category` with `details`: `None` unless it is an
    /// Insights event whose details are an object of this shape.
    pub(crate) fn of(
        category: Category,
        details: Option<&'a serde_json::value::RawValue>,
    ) -> Option<InsightSubject<'a>> {
        let details = details.filter(|_| category == Category::Insight)?;
        serde_json::from_str(details.get()).ok()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIdentity<'a> {
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawResource<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "ARN")]
    arn: Option<Cow<'a, str>>,
}

fn text(value: Option<Cow<'_, str>>) -> String {
    value.map(Cow::into_owned).unwrap_or_default()
}

/// `true`/`false`, whether written as a JSON boolean or a string.
pub fn flag(value: Option<&serde_json::Value>) -> Option<bool> {
    match value? {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl RouteFields {
    /// Reads the routing fields of a stored record.
    pub fn extract(record: &[u8]) -> Result<RouteFields, String> {
        let raw: Raw<'_> = serde_json::from_slice(record).map_err(|e| e.to_string())?;
        let category = Category::of(
            raw.event_category.as_deref(),
            raw.insight_details.is_some(),
            raw.management_event,
        );
        // An Insights event is routed by the API it is about (for the global-service
        // rule) and its type; a details object of another shape routes as having neither.
        let details = InsightSubject::of(category, raw.insight_details);
        let (insight_type, insight_source) = match details {
            Some(d) => (d.insight_type.map(Cow::into_owned), d.event_source),
            None => (None, None),
        };
        let identity_account = raw
            .user_identity
            .as_ref()
            .and_then(|u| u.account_id.clone());
        Ok(RouteFields {
            account: text(raw.recipient_account_id.or(identity_account)),
            region: text(raw.aws_region),
            category,
            event_source: text(insight_source.or(raw.event_source)),
            event_name: text(raw.event_name),
            event_type: text(raw.event_type),
            read_only: flag(raw.read_only.as_ref()),
            resources: raw
                .resources
                .unwrap_or_default()
                .into_iter()
                .map(|r| Resource {
                    kind: text(r.kind),
                    arn: text(r.arn),
                })
                .collect(),
            user_arn: raw.user_identity.and_then(|u| u.arn).map(Cow::into_owned),
            session_credential_from_console: raw.session_credential_from_console.map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }),
            error_code: raw.error_code.map(Cow::into_owned),
            vpc_endpoint_id: raw.vpc_endpoint_id.map(Cow::into_owned),
            event_time: raw
                .event_time
                .as_deref()
                .and_then(crate::timefmt::parse_event_time)
                .unwrap_or(0),
            insight_type,
        })
    }

    /// Global-service events (IAM, STS's global endpoint, CloudFront) reach only trails
    /// that include them. They are recorded in us-east-1.
    pub fn is_global_service(&self) -> bool {
        is_global_service(&self.event_source, &self.region)
    }
}

/// Whether an event of `event_source` recorded in `region` is a global-service event.
pub fn is_global_service(event_source: &str, region: &str) -> bool {
    matches!(
        event_source,
        "iam.amazonaws.com" | "cloudfront.amazonaws.com" | "sts.amazonaws.com"
    ) && region == "us-east-1"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_routing_needs() {
        let record = br#"{"eventVersion":"1.09","recipientAccountId":"111122223333","awsRegion":"eu-west-1",
            "eventCategory":"Data","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventType":"AwsApiCall",
            "readOnly":true,"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a"},
            "resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/k"},{"type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b"}],
            "sessionCredentialFromConsole":"true","errorCode":"AccessDenied"}"#;
        let f = RouteFields::extract(record).unwrap();
        assert_eq!(f.account, "111122223333");
        assert_eq!(f.region, "eu-west-1");
        assert_eq!(f.category, Category::Data);
        assert_eq!(f.read_only, Some(true));
        assert_eq!(f.resources.len(), 2);
        assert_eq!(f.resources[0].arn, "arn:aws:s3:::b/k");
        assert_eq!(
            f.user_arn.as_deref(),
            Some("arn:aws:iam::111122223333:user/a")
        );
        assert_eq!(f.session_credential_from_console.as_deref(), Some("true"));
        assert_eq!(f.error_code.as_deref(), Some("AccessDenied"));
        assert!(!f.is_global_service());
        assert_eq!(f.event_time, 0);
    }

    #[test]
    fn account_falls_back_to_the_caller_and_old_records_have_a_category() {
        let record = br#"{"awsRegion":"us-east-1","eventSource":"iam.amazonaws.com","eventName":"CreateUser","eventTime":"2026-01-01T00:00:10Z",
            "userIdentity":{"accountId":"444455556666"}}"#;
        let f = RouteFields::extract(record).unwrap();
        assert_eq!(f.account, "444455556666");
        assert_eq!(f.category, Category::Management);
        assert_eq!(f.read_only, None);
        assert!(f.is_global_service());
        assert_eq!(f.event_time, 1_767_225_610);
        assert_eq!(f.insight_type, None);
    }

    #[test]
    fn an_insights_event_names_its_type() {
        let record = br#"{"eventVersion":"1.09","eventTime":"2026-01-01T00:05:00Z","awsRegion":"us-east-1","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333","insightDetails":{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","insightType":"ApiCallRateInsight","insightContext":{}},"eventCategory":"Insight"}"#;
        let f = RouteFields::extract(record).unwrap();
        assert_eq!(f.category, Category::Insight);
        assert_eq!(f.insight_type.as_deref(), Some("ApiCallRateInsight"));
        assert_eq!(f.event_source, "ec2.amazonaws.com");
        // Details of another shape do not make a record unroutable.
        let odd = br#"{"eventType":"AwsApiCall","awsRegion":"us-east-1","eventSource":"ec2.amazonaws.com","insightDetails":"x","eventCategory":"Management"}"#;
        let f = RouteFields::extract(odd).unwrap();
        assert_eq!((f.category, f.insight_type), (Category::Management, None));
    }
}
