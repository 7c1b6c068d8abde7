//! The fields of a record that decide which trails receive it.

use serde::Deserialize;
use std::borrow::Cow;

use crate::summary::Summary;
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
        let summary = crate::summary::read(record)?;
        RouteFields::of_summary(&summary)
    }

    /// The routing fields of a record from its summary (see [`crate::summary`]).
    pub fn of_summary(bytes: &[u8]) -> Result<RouteFields, String> {
        let s = Summary::decode(bytes).ok_or("the record's summary is damaged")?;
        let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
        // An Insights event is routed by the API it is about (for the global-service
        // rule) and its type; a details object of another shape routes as having neither.
        let event_source = match s.category {
            Category::Insight => s.insight_source.or(s.event_source),
            _ => s.event_source,
        };
        Ok(RouteFields {
            account: s.account.to_owned(),
            region: s.region.to_owned(),
            category: s.category,
            event_source: text(event_source),
            event_name: text(s.event_name),
            event_type: text(s.event_type),
            read_only: s.read_only,
            resources: s
                .resources()
                .map(|(kind, arn)| Resource {
                    kind: kind.to_owned(),
                    arn: arn.to_owned(),
                })
                .collect(),
            user_arn: s.user_arn.map(str::to_owned),
            session_credential_from_console: s.session_credential_from_console.map(str::to_owned),
            error_code: s.error_code.map(str::to_owned),
            vpc_endpoint_id: s.vpc_endpoint_id.map(str::to_owned),
            event_time: s.time,
            insight_type: s.insight_type.map(str::to_owned),
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
