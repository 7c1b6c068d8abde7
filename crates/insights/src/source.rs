//! Reading a call from a CloudTrail record: the part of a record Insights looks at. Only
//! management API calls (`AwsApiCall` in the Management category) feed the detector.

use std::borrow::Cow;

use cairn_core::summary::Summary;
use cairn_core::Category;
use serde::Deserialize;

use crate::detector::Call;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw<'a> {
    #[serde(borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_category: Option<Cow<'a, str>>,
    management_event: Option<bool>,
    insight_details: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_time: Option<Cow<'a, str>>,
    read_only: Option<serde_json::Value>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_identity: Option<Identity<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
}

/// A management API call read from a record; borrows the record where it can.
pub struct ReadCall<'a> {
    account: Cow<'a, str>,
    region: Cow<'a, str>,
    event_source: Cow<'a, str>,
    event_name: Cow<'a, str>,
    time: i64,
    read_only: bool,
    error_code: Option<Cow<'a, str>>,
    identity_arn: Cow<'a, str>,
    user_agent: Cow<'a, str>,
}

/// Why a record does not feed the detector.
#[derive(Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not JSON, or a field of the wrong type.
    Unreadable,
    /// Not a management API call (a data event, an Insights event, a sign-in...).
    NotAnApiCall,
    /// No account, region, source, name or readable eventTime.
    Incomplete,
}

#[derive(Deserialize)]
struct LogFile<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<Raw<'a>>,
}

/// The calls of a log file's `{"Records":[…]}`, read in one pass; `None` when the text is
/// not such a file (or a record in it has a field of the wrong type).
pub fn parse_log_file(text: &str) -> Option<Vec<Result<ReadCall<'_>, Skip>>> {
    let file: LogFile<'_> = serde_json::from_str(text).ok()?;
    Some(file.records.into_iter().map(ReadCall::from_raw).collect())
}

impl<'a> ReadCall<'a> {
    pub fn parse(record: &'a [u8]) -> Result<ReadCall<'a>, Skip> {
        let raw: Raw<'a> = serde_json::from_slice(record).map_err(|_| Skip::Unreadable)?;
        ReadCall::from_raw(raw)
    }

    fn from_raw(raw: Raw<'a>) -> Result<ReadCall<'a>, Skip> {
        let category = Category::of(
            raw.event_category.as_deref(),
            raw.insight_details.is_some(),
            raw.management_event,
        );
        if category != Category::Management || raw.event_type.as_deref() != Some("AwsApiCall") {
            return Err(Skip::NotAnApiCall);
        }
        let identity_account = raw
            .user_identity
            .as_ref()
            .and_then(|u| u.account_id.clone());
        let time = raw
            .event_time
            .as_deref()
            .and_then(cairn_core::timefmt::parse_event_time);
        let (Some(account), Some(region), Some(event_source), Some(event_name), Some(time)) = (
            raw.recipient_account_id.or(identity_account),
            raw.aws_region,
            raw.event_source,
            raw.event_name,
            time,
        ) else {
            return Err(Skip::Incomplete);
        };
        let read_only = cairn_core::route::flag(raw.read_only.as_ref()).unwrap_or(false);
        Ok(ReadCall {
            account,
            region,
            event_source,
            event_name,
            time,
            read_only,
            error_code: raw.error_code.filter(|c| !c.is_empty()),
            identity_arn: raw
                .user_identity
                .and_then(|u| u.arn)
                .unwrap_or(Cow::Borrowed("")),
            user_agent: raw.user_agent.unwrap_or(Cow::Borrowed("")),
        })
    }

    /// The call in a record's summary (see [`cairn_core::summary`]), as [`ReadCall::parse`]
    /// reads it from the record.
    pub fn of_summary(bytes: &'a [u8]) -> Result<ReadCall<'a>, Skip> {
        let s = Summary::decode(bytes).ok_or(Skip::Unreadable)?;
        if s.category != Category::Management || s.event_type != Some("AwsApiCall") {
            return Err(Skip::NotAnApiCall);
        }
        let (Some(event_source), Some(event_name)) = (s.event_source, s.event_name) else {
            return Err(Skip::Incomplete);
        };
        // A summary is of a stored record, which always has its account, region and time.
        Ok(ReadCall {
            account: Cow::Borrowed(s.account),
            region: Cow::Borrowed(s.region),
            event_source: Cow::Borrowed(event_source),
            event_name: Cow::Borrowed(event_name),
            time: s.time,
            read_only: s.read_only.unwrap_or(false),
            error_code: s.error_code.filter(|c| !c.is_empty()).map(Cow::Borrowed),
            identity_arn: Cow::Borrowed(s.user_arn.unwrap_or_default()),
            user_agent: Cow::Borrowed(s.user_agent.unwrap_or_default()),
        })
    }

    pub fn call(&self) -> Call<'_> {
        Call {
            account: &self.account,
            region: &self.region,
            event_source: &self.event_source,
            event_name: &self.event_name,
            time: self.time,
            read_only: self.read_only,
            error_code: self.error_code.as_deref(),
            identity_arn: &self.identity_arn,
            user_agent: &self.user_agent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_management_call_is_read_and_other_records_are_skipped() {
        let record = br#"{"eventVersion":"1.11","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/Ops/alice","accountId":"111122223333"},"eventTime":"2026-03-02T10:15:42Z","eventSource":"ec2.amazonaws.com","eventName":"TerminateInstances","awsRegion":"eu-west-1","userAgent":"aws-cli/2.15","errorCode":"Client.UnauthorizedOperation","requestParameters":{"instancesSet":{"items":[{"instanceId":"i-1"}]}},"readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#;
        let read = ReadCall::parse(record).unwrap();
        let call = read.call();
        assert_eq!(
            (
                call.account,
                call.region,
                call.event_source,
                call.event_name
            ),
            (
                "111122223333",
                "eu-west-1",
                "ec2.amazonaws.com",
                "TerminateInstances"
            )
        );
        assert_eq!(call.time, 1_772_446_542);
        assert!(!call.read_only);
        assert_eq!(call.error_code, Some("Client.UnauthorizedOperation"));
        assert_eq!(
            call.identity_arn,
            "arn:aws:sts::111122223333:assumed-role/Ops/alice"
        );
        assert_eq!(call.user_agent, "aws-cli/2.15");

        let data = br#"{"eventType":"AwsApiCall","eventCategory":"Data","recipientAccountId":"1","awsRegion":"r","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":"2026-03-02T10:15:42Z"}"#;
        assert_eq!(ReadCall::parse(data).err(), Some(Skip::NotAnApiCall));
        let insight = br#"{"eventType":"AwsCloudTrailInsight","eventCategory":"Insight","recipientAccountId":"1","awsRegion":"r","eventTime":"2026-03-02T10:15:00Z","insightDetails":{}}"#;
        assert_eq!(ReadCall::parse(insight).err(), Some(Skip::NotAnApiCall));
        let undated = br#"{"eventType":"AwsApiCall","recipientAccountId":"1","awsRegion":"r","eventSource":"s","eventName":"n","eventTime":"yesterday"}"#;
        assert_eq!(ReadCall::parse(undated).err(), Some(Skip::Incomplete));
        assert_eq!(ReadCall::parse(b"{").err(), Some(Skip::Unreadable));

        let file = format!(
            r#"{{"Records":[{},{}]}}"#,
            std::str::from_utf8(record).unwrap(),
            std::str::from_utf8(data).unwrap()
        );
        let calls = parse_log_file(&file).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].as_ref().unwrap().call().event_name,
            "TerminateInstances"
        );
        assert_eq!(calls[1].as_ref().err(), Some(&Skip::NotAnApiCall));
        assert!(parse_log_file(r#"[{"eventType":"AwsApiCall"}]"#).is_none());

        for record in [&record[..], data, insight] {
            assert_same_from_summary(record);
        }
    }

    /// The call read from the record's summary is the one read from the record.
    fn assert_same_from_summary(record: &[u8]) {
        let summary = cairn_core::summary::read(record).unwrap();
        let from_record = ReadCall::parse(record).map(|r| format!("{:?}", r.call()));
        let from_summary = ReadCall::of_summary(&summary).map(|r| format!("{:?}", r.call()));
        assert_eq!(
            from_record,
            from_summary,
            "{}",
            String::from_utf8_lossy(record)
        );
    }

    #[test]
    fn every_shared_aws_record_reads_the_same_from_its_summary() {
        let Some(records) = cairn_core::testdata::shared_aws_records() else {
            return;
        };
        for (_, record) in &records {
            assert_same_from_summary(record.get().as_bytes());
        }
        assert!(records.len() > 100, "only {} shared records", records.len());
    }
}
