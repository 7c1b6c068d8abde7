//! The fields of a record that the event history partitions and indexes by, and the
//! LookupEvents attributes they answer.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::timefmt::parse_event_time;

/// The eight LookupEvents attribute keys, in the order AWS lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LookupKey {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
}

impl LookupKey {
    pub const ALL: [LookupKey; 8] = [
        LookupKey::EventId,
        LookupKey::EventName,
        LookupKey::ReadOnly,
        LookupKey::Username,
        LookupKey::ResourceType,
        LookupKey::ResourceName,
        LookupKey::EventSource,
        LookupKey::AccessKeyId,
    ];

    /// The attributes kept as posting lists; EventId is answered by its own hash table.
    pub const POSTED: [LookupKey; 7] = [
        LookupKey::EventName,
        LookupKey::ReadOnly,
        LookupKey::Username,
        LookupKey::ResourceType,
        LookupKey::ResourceName,
        LookupKey::EventSource,
        LookupKey::AccessKeyId,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LookupKey::EventId => "EventId",
            LookupKey::EventName => "EventName",
            LookupKey::ReadOnly => "ReadOnly",
            LookupKey::Username => "Username",
            LookupKey::ResourceType => "ResourceType",
            LookupKey::ResourceName => "ResourceName",
            LookupKey::EventSource => "EventSource",
            LookupKey::AccessKeyId => "AccessKeyId",
        }
    }

    /// Parses an `AttributeKey`; keys are case-sensitive, as in AWS.
    pub fn parse(name: &str) -> Option<LookupKey> {
        LookupKey::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A small stable number for on-disk dictionaries.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<LookupKey> {
        LookupKey::ALL.get(usize::from(code)).copied()
    }
}

/// `eventCategory`, as far as the history cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Management,
    Data,
    Insight,
    NetworkActivity,
    /// `ActivityAuditLog`: events reported through PutAuditEvents.
    Activity,
    Other,
}

/// The LookupEvents views of the history. Every stored event belongs to exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum View {
    /// What LookupEvents shows by default: management events (and events reported
    /// through PutAuditEvents).
    Management = 0,
    /// `EventCategory=insight`.
    Insight = 1,
    /// Kept for deduplication and delivery, never shown by LookupEvents (data and network
    /// activity events, as on AWS).
    Hidden = 2,
}

/// Why a record cannot be indexed.
#[derive(Debug, PartialEq, Eq)]
pub enum IndexError {
    NotJson(String),
    Missing(&'static str),
    BadEventTime(String),
}

impl std::error::Error for IndexError {}

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexError::NotJson(e) => write!(f, "record is not a JSON object: {e}"),
            IndexError::Missing(field) => write!(f, "record has no {field}"),
            IndexError::BadEventTime(t) => write!(f, "eventTime {t:?} is not YYYY-MM-DDTHH:MM:SSZ"),
        }
    }
}

/// The indexed view of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFields {
    pub event_id: String,
    /// eventTime in epoch seconds.
    pub time: i64,
    /// The account whose history holds the record: `recipientAccountId`, else the caller's.
    pub account: String,
    pub region: String,
    pub category: Category,
    /// `(key, value)` pairs for the posted attributes; an attribute may repeat (resources).
    pub attributes: Vec<(LookupKey, String)>,
}

/// Borrowed where the JSON has no escapes, owned where it has.
type Text<'a> = std::borrow::Cow<'a, str>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord<'a> {
    #[serde(rename = "eventID", borrow)]
    event_id: Option<Text<'a>>,
    #[serde(borrow)]
    event_time: Option<Text<'a>>,
    #[serde(borrow)]
    event_name: Option<Text<'a>>,
    #[serde(borrow)]
    event_source: Option<Text<'a>>,
    #[serde(borrow)]
    aws_region: Option<Text<'a>>,
    #[serde(borrow)]
    recipient_account_id: Option<Text<'a>>,
    #[serde(borrow)]
    event_category: Option<Text<'a>>,
    management_event: Option<bool>,
    read_only: Option<bool>,
    #[serde(borrow)]
    user_identity: Option<&'a RawValue>,
    #[serde(borrow)]
    resources: Option<&'a RawValue>,
    #[serde(borrow)]
    insight_details: Option<&'a RawValue>,
    /// Events reported through PutAuditEvents keep the reporter's fields here.
    #[serde(borrow)]
    event_data: Option<&'a RawValue>,
}

/// The fields of an `eventData` object that the history indexes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEventData<'a> {
    #[serde(borrow)]
    event_name: Option<Text<'a>>,
    #[serde(borrow)]
    event_source: Option<Text<'a>>,
    #[serde(borrow)]
    user_identity: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIdentity<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    user_name: Option<Text<'a>>,
    #[serde(borrow)]
    arn: Option<Text<'a>>,
    #[serde(borrow)]
    access_key_id: Option<Text<'a>>,
    #[serde(borrow)]
    invoked_by: Option<Text<'a>>,
    #[serde(borrow)]
    principal_id: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct RawResource<'a> {
    #[serde(rename = "ARN", borrow)]
    arn: Option<Text<'a>>,
    #[serde(rename = "ARNPrefix", borrow)]
    arn_prefix: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
}

impl IndexFields {
    /// Reads the indexed fields of a CloudTrail record.
    pub fn extract(record: &[u8]) -> Result<IndexFields, IndexError> {
        let raw: RawRecord<'_> =
            serde_json::from_slice(record).map_err(|e| IndexError::NotJson(e.to_string()))?;
        let event_id = raw.event_id.ok_or(IndexError::Missing("eventID"))?;
        let time_text = raw.event_time.ok_or(IndexError::Missing("eventTime"))?;
        let time = parse_event_time(&time_text)
            .ok_or_else(|| IndexError::BadEventTime(time_text.to_string()))?;
        let region = raw.aws_region.ok_or(IndexError::Missing("awsRegion"))?;
        let account = match raw.recipient_account_id {
            Some(account) => account,
            None => raw
                .user_identity
                .and_then(identity_account)
                .ok_or(IndexError::Missing("recipientAccountId"))?,
        };
        let category = Category::of(
            raw.event_category.as_deref(),
            raw.insight_details.is_some(),
            raw.management_event,
        );
        let reported = raw
            .event_data
            .and_then(|d| serde_json::from_str::<RawEventData<'_>>(d.get()).ok());
        // LookupEvents finds an Insights event by the API it is about.
        let subject = crate::route::InsightSubject::of(category, raw.insight_details);
        let attributes = match (&reported, &subject) {
            (_, Some(subject)) => attributes_of(
                subject.event_name.as_deref(),
                subject.event_source.as_deref(),
                None,
                None,
                None,
            ),
            (Some(data), None) => attributes_of(
                data.event_name.as_deref(),
                data.event_source.as_deref(),
                None,
                data.user_identity,
                None,
            ),
            (None, None) => attributes_of(
                raw.event_name.as_deref(),
                raw.event_source.as_deref(),
                raw.read_only,
                raw.user_identity,
                raw.resources,
            ),
        };

        Ok(IndexFields {
            event_id: event_id.into_owned(),
            time,
            account: account.into_owned(),
            region: region.into_owned(),
            category,
            attributes,
        })
    }

    /// Which LookupEvents view shows the record.
    pub fn view(&self) -> View {
        match self.category {
            Category::Management | Category::Activity => View::Management,
            Category::Insight => View::Insight,
            Category::Data | Category::NetworkActivity | Category::Other => View::Hidden,
        }
    }

    pub fn attribute(&self, key: LookupKey) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn matches(&self, key: LookupKey, value: &str) -> bool {
        match key {
            LookupKey::EventId => self.event_id == value,
            _ => self.attributes.iter().any(|(k, v)| *k == key && v == value),
        }
    }
}

impl Category {
    /// A record's category from its `eventCategory`, or, for records older than
    /// eventVersion 1.07 that have none, from what else it carries.
    pub fn of(
        event_category: Option<&str>,
        has_insight_details: bool,
        management_event: Option<bool>,
    ) -> Category {
        match event_category {
            Some("Management") => Category::Management,
            Some("Data") => Category::Data,
            Some("Insight") => Category::Insight,
            Some("NetworkActivity") => Category::NetworkActivity,
            Some("ActivityAuditLog") => Category::Activity,
            Some(_) => Category::Other,
            None if has_insight_details => Category::Insight,
            None if management_event == Some(false) => Category::Data,
            None => Category::Management,
        }
    }
}

#[derive(Deserialize)]
struct IdentityAccount<'a> {
    #[serde(rename = "accountId", borrow)]
    account_id: Option<Text<'a>>,
}

/// The caller's account in a record's unparsed `userIdentity`: the account a record
/// without `recipientAccountId` (before eventVersion 1.02) belongs to. Only `accountId`
/// is read, so the bulk check and the history agree on every record.
pub fn identity_account(user_identity: &RawValue) -> Option<Text<'_>> {
    serde_json::from_str::<IdentityAccount<'_>>(user_identity.get())
        .ok()?
        .account_id
}

/// The posted lookup attributes of a record, sorted and without repeats. `user_identity`
/// and `resources` are the record's unparsed values; malformed ones contribute nothing.
pub fn attributes_of(
    event_name: Option<&str>,
    event_source: Option<&str>,
    read_only: Option<bool>,
    user_identity: Option<&RawValue>,
    resources: Option<&RawValue>,
) -> Vec<(LookupKey, String)> {
    let mut attributes = Vec::with_capacity(8);
    if let Some(name) = event_name {
        attributes.push((LookupKey::EventName, name.to_owned()));
    }
    if let Some(source) = event_source {
        attributes.push((LookupKey::EventSource, source.to_owned()));
    }
    if let Some(read_only) = read_only {
        attributes.push((LookupKey::ReadOnly, read_only.to_string()));
    }
    if let Some(identity) =
        user_identity.and_then(|u| serde_json::from_str::<RawIdentity<'_>>(u.get()).ok())
    {
        if let Some(user) = lookup_username(&identity) {
            attributes.push((LookupKey::Username, user));
        }
        if let Some(key) = identity.access_key_id.as_deref().filter(|k| !k.is_empty()) {
            attributes.push((LookupKey::AccessKeyId, key.to_owned()));
        }
    }
    let resources =
        resources.and_then(|r| serde_json::from_str::<Vec<RawResource<'_>>>(r.get()).ok());
    for resource in resources.unwrap_or_default() {
        if let Some(kind) = resource.kind {
            attributes.push((LookupKey::ResourceType, kind.into_owned()));
        }
        if let Some(name) = resource.arn.or(resource.arn_prefix) {
            attributes.push((LookupKey::ResourceName, name.into_owned()));
        }
    }
    attributes.sort();
    attributes.dedup();
    attributes
}

/// AWS's Username rule for LookupEvents: the IAM user name, `root` for the root user, the
/// session name for an assumed role, the federated user's name, the invoking service.
fn lookup_username(identity: &RawIdentity<'_>) -> Option<String> {
    let after_last_slash = |arn: &str| arn.rsplit('/').next().map(str::to_owned);
    match identity.kind.as_deref() {
        Some("Root") => Some("root".to_owned()),
        Some("AssumedRole") | Some("FederatedUser") | Some("Role") => identity
            .arn
            .as_deref()
            .filter(|arn| arn.contains('/'))
            .and_then(after_last_slash)
            .or_else(|| identity.user_name.as_deref().map(str::to_owned)),
        Some("AWSService") => identity.invoked_by.as_deref().map(str::to_owned),
        _ => identity
            .user_name
            .as_deref()
            .map(str::to_owned)
            .or_else(|| {
                identity
                    .principal_id
                    .as_deref()
                    .map(|p| p.split_once(':').map_or(p, |(_, session)| session))
                    .map(str::to_owned)
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOP_LOGGING: &str = r#"{"awsRegion":"us-east-1","eventCategory":"Management",
      "eventID":"10163ed2-2253-469d-a5ee-cbc6651f8934","eventName":"StopLogging",
      "eventSource":"cloudtrail.amazonaws.com","eventTime":"2024-07-31T13:06:24Z",
      "eventType":"AwsApiCall","eventVersion":"1.10","managementEvent":true,"readOnly":false,
      "recipientAccountId":"143434273843","requestParameters":{"name":"t"},
      "resources":[{"ARN":"arn:aws:cloudtrail:us-east-1:143434273843:trail/t","accountId":"143434273843","type":"AWS::CloudTrail::Trail"}],
      "userIdentity":{"accessKeyId":"AKIAGGWFBBHBE7D3M9WI","accountId":"143434273843",
        "arn":"arn:aws:iam::143434273843:user/christophe","principalId":"AIDAOC1SYDVN0AF0FMMR",
        "type":"IAMUser","userName":"christophe"}}"#;

    #[test]
    fn extracts_every_lookup_attribute() {
        let fields = IndexFields::extract(STOP_LOGGING.as_bytes()).unwrap();
        assert_eq!(fields.event_id, "10163ed2-2253-469d-a5ee-cbc6651f8934");
        assert_eq!(fields.account, "143434273843");
        assert_eq!(fields.region, "us-east-1");
        assert_eq!(fields.category, Category::Management);
        assert_eq!(fields.attribute(LookupKey::EventName), Some("StopLogging"));
        assert_eq!(fields.attribute(LookupKey::ReadOnly), Some("false"));
        assert_eq!(fields.attribute(LookupKey::Username), Some("christophe"));
        assert_eq!(
            fields.attribute(LookupKey::AccessKeyId),
            Some("AKIAGGWFBBHBE7D3M9WI")
        );
        assert_eq!(
            fields.attribute(LookupKey::ResourceType),
            Some("AWS::CloudTrail::Trail")
        );
        assert!(fields.matches(
            LookupKey::ResourceName,
            "arn:aws:cloudtrail:us-east-1:143434273843:trail/t"
        ));
        assert!(fields.matches(LookupKey::EventId, "10163ed2-2253-469d-a5ee-cbc6651f8934"));
    }

    #[test]
    fn an_insights_event_is_found_by_the_api_it_is_about() {
        let record = br#"{"eventVersion":"1.09","eventTime":"2026-01-01T00:05:00Z","awsRegion":"us-east-1","eventID":"i-1","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333","sharedEventID":"s-1","insightDetails":{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","insightType":"ApiCallRateInsight","insightContext":{}},"eventCategory":"Insight"}"#;
        let fields = IndexFields::extract(record).unwrap();
        assert_eq!(fields.view(), View::Insight);
        assert_eq!(fields.attribute(LookupKey::EventName), Some("RunInstances"));
        assert_eq!(
            fields.attribute(LookupKey::EventSource),
            Some("ec2.amazonaws.com")
        );
    }

    #[test]
    fn username_follows_aws_rule() {
        let with_identity = |identity: &str| {
            let text = format!(
                r#"{{"eventID":"e","eventTime":"2024-07-31T13:06:24Z","awsRegion":"us-east-1","recipientAccountId":"1","userIdentity":{identity}}}"#
            );
            IndexFields::extract(text.as_bytes())
                .unwrap()
                .attribute(LookupKey::Username)
                .map(str::to_owned)
        };
        assert_eq!(
            with_identity(r#"{"type":"Root","arn":"arn:aws:iam::1:root"}"#).as_deref(),
            Some("root")
        );
        assert_eq!(
            with_identity(r#"{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/Deployer/my-session-name"}"#).as_deref(),
            Some("my-session-name")
        );
        assert_eq!(
            with_identity(r#"{"type":"AWSService","invokedBy":"ec2.amazonaws.com"}"#).as_deref(),
            Some("ec2.amazonaws.com")
        );
    }

    #[test]
    fn refuses_records_without_required_fields() {
        assert_eq!(
            IndexFields::extract(br#"{"eventTime":"2024-07-31T13:06:24Z"}"#),
            Err(IndexError::Missing("eventID"))
        );
        assert!(matches!(
            IndexFields::extract(br#"{"eventID":"e","eventTime":"yesterday","awsRegion":"r"}"#),
            Err(IndexError::BadEventTime(_))
        ));
        assert!(matches!(
            IndexFields::extract(b"[1]"),
            Err(IndexError::NotJson(_))
        ));
    }

    #[test]
    fn every_shared_aws_record_is_indexable() {
        let Some(records) = crate::testdata::shared_aws_records() else {
            return;
        };
        for (_, record) in &records {
            IndexFields::extract(record.get().as_bytes()).unwrap();
        }
        assert!(records.len() > 100, "{} records", records.len());
    }

    #[test]
    fn lookup_keys_round_trip() {
        for key in LookupKey::ALL {
            assert_eq!(LookupKey::parse(key.name()), Some(key));
            assert_eq!(LookupKey::from_code(key.code()), Some(key));
        }
        assert_eq!(LookupKey::parse("eventname"), None);
    }
}
