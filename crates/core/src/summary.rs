//! A record's summary: the fields the journal's consumers route and count by (routing to
//! trails and log groups, Insights), read once when the record is accepted and kept beside
//! it in the journal, so that no consumer parses the record's JSON again.
//!
//! The encoding is private to this module and versioned by its first byte:
//!
//! ```text
//! version (2) · category · readOnly (0 absent, 1 false, 2 true) · eventTime (i64 LE)
//! the fields' lengths, each a u32 LE (u32::MAX: absent), in this order:
//!   account, region, eventType, eventSource, eventName, errorCode, userIdentity.arn,
//!   userAgent, vpcEndpointId, sessionCredentialFromConsole, insight type, insight source
//! a u32 LE count of resources, then each resource's type and ARN lengths (u32 LE)
//! the text: the present fields, then each resource's type and ARN, back to back
//! ```
//!
//! The text is one run so that decoding checks its UTF-8 once: every journal consumer
//! decodes every event's summary. A summary of another version (version 1 kept each
//! length beside its text) is not decoded; [`of_entry`] reads the record instead.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::route::InsightSubject;
use crate::Category;

const VERSION: u8 = 2;
const ABSENT: u32 = u32::MAX;
/// The fixed part: version, category, readOnly and eventTime.
const HEAD: usize = 11;
/// Text fields, each with its length after the fixed part.
const FIELDS: usize = 12;

/// A decoded summary; borrows the encoded bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary<'a> {
    pub category: Category,
    pub read_only: Option<bool>,
    /// `eventTime` in epoch seconds.
    pub time: i64,
    /// The account whose event it is: `recipientAccountId`, else the caller's.
    pub account: &'a str,
    pub region: &'a str,
    pub event_type: Option<&'a str>,
    pub event_source: Option<&'a str>,
    pub event_name: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub user_arn: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub vpc_endpoint_id: Option<&'a str>,
    /// As a string, whether the record wrote it as one or not.
    pub session_credential_from_console: Option<&'a str>,
    /// An Insights event's `insightDetails.insightType` and `insightDetails.eventSource`.
    pub insight_type: Option<&'a str>,
    pub insight_source: Option<&'a str>,
    /// Each resource's type and ARN lengths.
    resource_lengths: &'a [u8],
    /// Each resource's type and ARN, back to back.
    resource_text: &'a str,
}

/// What a summary is built from: the fields the record's one parse at ingest has already
/// read, and the unparsed values it is still to read.
pub struct Parts<'a> {
    pub category: Category,
    pub read_only: Option<bool>,
    pub time: i64,
    pub account: &'a str,
    pub region: &'a str,
    pub event_type: Option<&'a str>,
    pub event_source: Option<&'a str>,
    pub event_name: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub vpc_endpoint_id: Option<&'a str>,
    pub session_credential_from_console: Option<&'a RawValue>,
    pub user_identity: Option<&'a RawValue>,
    pub resources: Option<&'a RawValue>,
    pub insight_details: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct IdentityArn<'a> {
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawResource<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "ARN")]
    arn: Option<Cow<'a, str>>,
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

impl Parts<'_> {
    /// Encodes the summary. Unparsed values of the wrong shape count as absent, as routing
    /// reads them.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(VERSION);
        out.push(category_code(self.category));
        out.push(match self.read_only {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        out.extend_from_slice(&self.time.to_le_bytes());
        let arn = self
            .user_identity
            .and_then(|u| serde_json::from_str::<IdentityArn<'_>>(u.get()).ok())
            .and_then(|u| u.arn);
        let console = self
            .session_credential_from_console
            .and_then(|v| serde_json::from_str::<serde_json::Value>(v.get()).ok())
            .map(|v| match v {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            });
        let subject = InsightSubject::of(self.category, self.insight_details);
        let (insight_type, insight_source) = match &subject {
            Some(s) => (s.insight_type.as_deref(), s.event_source.as_deref()),
            None => (None, None),
        };
        let fields: [Option<&str>; FIELDS] = [
            Some(self.account),
            Some(self.region),
            self.event_type,
            self.event_source,
            self.event_name,
            self.error_code,
            arn.as_deref(),
            self.user_agent,
            self.vpc_endpoint_id,
            console.as_deref(),
            insight_type,
            insight_source,
        ];
        let resources = self
            .resources
            .and_then(|r| serde_json::from_str::<Vec<RawResource<'_>>>(r.get()).ok())
            .unwrap_or_default();
        let resource_texts = || {
            resources
                .iter()
                .flat_map(|r| [r.kind.as_deref(), r.arn.as_deref()].map(Option::unwrap_or_default))
        };
        for field in fields {
            match field {
                Some(text) => put_len(&mut out, text.len()),
                None => out.extend_from_slice(&ABSENT.to_le_bytes()),
            }
        }
        put_len(&mut out, resources.len());
        for text in resource_texts() {
            put_len(&mut out, text.len());
        }
        for text in fields.into_iter().flatten().chain(resource_texts()) {
            out.extend_from_slice(text.as_bytes());
        }
        out
    }
}

/// The fields a summary is read from when a record comes without one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord<'a> {
    #[serde(borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_category: Option<Cow<'a, str>>,
    management_event: Option<bool>,
    #[serde(borrow)]
    event_time: Option<Cow<'a, str>>,
    read_only: Option<serde_json::Value>,
    #[serde(borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    vpc_endpoint_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    session_credential_from_console: Option<&'a RawValue>,
    #[serde(borrow)]
    user_identity: Option<&'a RawValue>,
    #[serde(borrow)]
    resources: Option<&'a RawValue>,
    #[serde(borrow)]
    insight_details: Option<&'a RawValue>,
}

/// Reads a record's summary from its JSON: for records that reach the journal without
/// one (Cairn's own events), and for journals written before summaries were kept.
pub fn read(record: &[u8]) -> Result<Vec<u8>, String> {
    let raw: RawRecord<'_> = serde_json::from_slice(record).map_err(|e| e.to_string())?;
    let category = Category::of(
        raw.event_category.as_deref(),
        raw.insight_details.is_some(),
        raw.management_event,
    );
    let identity_account = raw.user_identity.and_then(crate::index::identity_account);
    let account = raw.recipient_account_id.or(identity_account);
    Ok(Parts {
        category,
        read_only: crate::route::flag(raw.read_only.as_ref()),
        time: raw
            .event_time
            .as_deref()
            .and_then(crate::timefmt::parse_event_time)
            .unwrap_or(0),
        account: account.as_deref().unwrap_or_default(),
        region: raw.aws_region.as_deref().unwrap_or_default(),
        event_type: raw.event_type.as_deref(),
        event_source: raw.event_source.as_deref(),
        event_name: raw.event_name.as_deref(),
        error_code: raw.error_code.as_deref(),
        user_agent: raw.user_agent.as_deref(),
        vpc_endpoint_id: raw.vpc_endpoint_id.as_deref(),
        session_credential_from_console: raw.session_credential_from_console,
        user_identity: raw.user_identity,
        resources: raw.resources,
        insight_details: raw.insight_details,
    }
    .encode())
}

/// A record's summary as kept beside it (`stored`: empty when it has none, or of an
/// older version), else read from the record.
pub fn of_entry<'a>(record: &[u8], stored: &'a [u8]) -> Result<Cow<'a, [u8]>, String> {
    if stored.first() == Some(&VERSION) {
        Ok(Cow::Borrowed(stored))
    } else {
        read(record).map(Cow::Owned)
    }
}

fn category_code(category: Category) -> u8 {
    match category {
        Category::Management => 0,
        Category::Data => 1,
        Category::Insight => 2,
        Category::NetworkActivity => 3,
        Category::Activity => 4,
        Category::Other => 5,
    }
}

fn category_of(code: u8) -> Option<Category> {
    Some(match code {
        0 => Category::Management,
        1 => Category::Data,
        2 => Category::Insight,
        3 => Category::NetworkActivity,
        4 => Category::Activity,
        5 => Category::Other,
        _ => return None,
    })
}

/// Takes lengths (u32 LE) off the front of an encoding's lengths.
struct Lengths<'a> {
    bytes: &'a [u8],
}

impl Lengths<'_> {
    fn next(&mut self) -> Option<u32> {
        let (head, rest) = self.bytes.split_first_chunk::<4>()?;
        self.bytes = rest;
        Some(u32::from_le_bytes(*head))
    }
}

/// Takes texts of given lengths off the front of a run of text.
struct Texts<'a> {
    text: &'a str,
}

impl<'a> Texts<'a> {
    /// The next `len` bytes, if they are whole characters.
    fn take(&mut self, len: u32) -> Option<&'a str> {
        let (head, rest) = self.text.split_at_checked(len as usize)?;
        self.text = rest;
        Some(head)
    }

    /// The next field: absent, or the next `len` bytes.
    fn field(&mut self, len: u32) -> Option<Option<&'a str>> {
        match len {
            ABSENT => Some(None),
            len => self.take(len).map(Some),
        }
    }
}

impl<'a> Summary<'a> {
    /// Decodes a summary; `None` when the bytes are not one (of this version).
    pub fn decode(bytes: &'a [u8]) -> Option<Summary<'a>> {
        let (head, rest) = bytes.split_first_chunk::<HEAD>()?;
        if head[0] != VERSION {
            return None;
        }
        let read_only = match head[2] {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return None,
        };
        let time = i64::from_le_bytes(head[3..11].try_into().ok()?);
        let (field_lengths, rest) = rest.split_at_checked(4 * FIELDS)?;
        let (count, rest) = rest.split_first_chunk::<4>()?;
        let resource_count = u32::from_le_bytes(*count) as usize;
        let (resource_lengths, text) = rest.split_at_checked(resource_count.checked_mul(8)?)?;
        let mut lengths = Lengths {
            bytes: field_lengths,
        };
        let mut texts = Texts {
            text: std::str::from_utf8(text).ok()?,
        };
        let mut field = || texts.field(lengths.next()?);
        let summary = Summary {
            category: category_of(head[1])?,
            read_only,
            time,
            account: field()?.unwrap_or_default(),
            region: field()?.unwrap_or_default(),
            event_type: field()?,
            event_source: field()?,
            event_name: field()?,
            error_code: field()?,
            user_arn: field()?,
            user_agent: field()?,
            vpc_endpoint_id: field()?,
            session_credential_from_console: field()?,
            insight_type: field()?,
            insight_source: field()?,
            resource_lengths,
            resource_text: texts.text,
        };
        // The resources are read when asked for; check now that they are whole and use
        // up the text exactly.
        let mut rest = Texts {
            text: summary.resource_text,
        };
        let mut lengths = Lengths {
            bytes: resource_lengths,
        };
        for _ in 0..resource_count * 2 {
            rest.take(lengths.next()?)?;
        }
        rest.text.is_empty().then_some(summary)
    }

    /// The record's `resources`, as (type, ARN).
    pub fn resources(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let mut lengths = Lengths {
            bytes: self.resource_lengths,
        };
        let mut texts = Texts {
            text: self.resource_text,
        };
        std::iter::from_fn(move || {
            let kind = texts.take(lengths.next()?)?;
            let arn = texts.take(lengths.next()?)?;
            Some((kind, arn))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA_EVENT: &[u8] = br#"{"eventVersion":"1.09","recipientAccountId":"111122223333","awsRegion":"eu-west-1",
        "eventCategory":"Data","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventType":"AwsApiCall",
        "eventTime":"2026-01-01T00:00:10Z","readOnly":true,"userAgent":"aws-cli/2 \"quoted\"",
        "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a\u00e9"},
        "resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/k"},{"type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b"}],
        "sessionCredentialFromConsole":"true","errorCode":"AccessDenied","vpcEndpointId":"vpce-1"}"#;

    #[test]
    fn a_summary_reads_back_every_field() {
        let bytes = read(DATA_EVENT).unwrap();
        let s = Summary::decode(&bytes).unwrap();
        assert_eq!(s.category, Category::Data);
        assert_eq!(s.read_only, Some(true));
        assert_eq!(s.time, 1_767_225_610);
        assert_eq!((s.account, s.region), ("111122223333", "eu-west-1"));
        assert_eq!(s.event_type, Some("AwsApiCall"));
        assert_eq!(s.event_source, Some("s3.amazonaws.com"));
        assert_eq!(s.event_name, Some("GetObject"));
        assert_eq!(s.error_code, Some("AccessDenied"));
        assert_eq!(s.user_arn, Some("arn:aws:iam::111122223333:user/aé"));
        assert_eq!(s.user_agent, Some("aws-cli/2 \"quoted\""));
        assert_eq!(s.vpc_endpoint_id, Some("vpce-1"));
        assert_eq!(s.session_credential_from_console, Some("true"));
        assert_eq!((s.insight_type, s.insight_source), (None, None));
        let resources: Vec<_> = s.resources().collect();
        assert_eq!(
            resources,
            [
                ("AWS::S3::Object", "arn:aws:s3:::b/k"),
                ("AWS::S3::Bucket", "arn:aws:s3:::b")
            ]
        );
    }

    #[test]
    fn absent_fields_stay_absent_and_insights_name_their_subject() {
        let record = br#"{"eventVersion":"1.09","eventTime":"2026-01-01T00:05:00Z","awsRegion":"us-east-1","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333","insightDetails":{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","insightType":"ApiCallRateInsight","insightContext":{}},"eventCategory":"Insight","sessionCredentialFromConsole":true}"#;
        let bytes = read(record).unwrap();
        let s = Summary::decode(&bytes).unwrap();
        assert_eq!(s.category, Category::Insight);
        assert_eq!(s.read_only, None);
        assert_eq!(
            (s.event_source, s.event_name, s.error_code),
            (None, None, None)
        );
        assert_eq!((s.user_arn, s.user_agent), (None, None));
        assert_eq!(s.insight_type, Some("ApiCallRateInsight"));
        assert_eq!(s.insight_source, Some("ec2.amazonaws.com"));
        assert_eq!(s.session_credential_from_console, Some("true"));
        assert_eq!(s.resources().count(), 0);
    }

    #[test]
    fn damaged_bytes_do_not_decode() {
        let bytes = read(DATA_EVENT).unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(Summary::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut other_version = bytes.clone();
        other_version[0] = 9;
        assert_eq!(Summary::decode(&other_version), None);
        assert!(of_entry(b"{", &[]).is_err());
        assert!(matches!(of_entry(b"{", &bytes), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn a_summary_of_another_version_is_read_again_from_the_record() {
        let current = read(DATA_EVENT).unwrap();
        // Version 1 kept each length beside its text.
        let old = [
            &[1u8, 1, 2][..],
            &1_767_225_610i64.to_le_bytes(),
            &[0xff; 4],
        ]
        .concat();
        let read_again = of_entry(DATA_EVENT, &old).unwrap();
        assert!(matches!(read_again, Cow::Owned(_)));
        assert_eq!(read_again.as_ref(), current.as_slice());
        assert_eq!(Summary::decode(&old), None);
    }
}
