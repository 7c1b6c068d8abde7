//! Trails: what a trail is, where it is kept, who sees it from where, and how a `Name`
//! parameter (a name or an ARN) finds it.
//!
//! A trail lives under `trails/<account>/<home region>/<name>` in the metadata store. It is
//! seen from its home region; a multi-region trail also from every other region (a shadow
//! trail); an organization trail also from its organization's member accounts (a shadow
//! they cannot change). A deleted trail moves to `retired/…` until delivery has written
//! everything it received before its deletion.

pub mod names;

use std::collections::BTreeMap;

use cairn_core::selectors::Selectors;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::ApiError;
use crate::config::{Organization, Settings};
use crate::tags::Tag;

/// Trails per account and region; a multi-region trail counts in every region.
pub const MAX_TRAILS_PER_REGION: usize = 5;

/// A span of journal positions in which a trail was logging: from the StartLogging record
/// (inclusive) to the StopLogging or DeleteTrail record (inclusive), open while logging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start_seq: u64,
    pub start_time: i64,
    pub stop_seq: Option<u64>,
    pub stop_time: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InsightSelector {
    pub insight_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_categories: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trail {
    pub name: String,
    pub account: String,
    pub home_region: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub sns_topic_name: Option<String>,
    pub sns_topic_arn: Option<String>,
    pub include_global: bool,
    pub multi_region: bool,
    pub validation: bool,
    pub log_group_arn: Option<String>,
    pub role_arn: Option<String>,
    pub kms_key_arn: Option<String>,
    pub organization: bool,
    pub selectors: Selectors,
    pub custom_selectors: bool,
    pub insight_selectors: Vec<InsightSelector>,
    pub tags: Vec<Tag>,
    /// Logging periods, oldest first; periods delivery has finished are pruned.
    pub logging: Vec<Period>,
    /// When logging last stopped, kept after its period is pruned.
    pub last_stop_time: Option<i64>,
    /// Counts the times validation was switched on: each starts a new digest chain.
    #[serde(default)]
    pub validation_epoch: u64,
}

/// How the caller sees a trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The caller's own trail, in its home region: every operation.
    Home,
    /// A multi-region trail from another region, or an organization trail from a member
    /// account: reads only.
    Shadow,
}

pub fn key(account: &str, region: &str, name: &str) -> String {
    format!("trails/{account}/{region}/{name}")
}

pub fn arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:trail/{name}")
}

impl Trail {
    /// A new trail as CreateTrail starts it: management events only, not logging.
    pub fn new(account: &str, home_region: &str, name: &str, bucket: &str) -> Trail {
        Trail {
            name: name.to_owned(),
            account: account.to_owned(),
            home_region: home_region.to_owned(),
            bucket: bucket.to_owned(),
            prefix: None,
            sns_topic_name: None,
            sns_topic_arn: None,
            include_global: true,
            multi_region: false,
            validation: false,
            log_group_arn: None,
            role_arn: None,
            kms_key_arn: None,
            organization: false,
            selectors: Selectors::default(),
            custom_selectors: false,
            insight_selectors: Vec::new(),
            tags: Vec::new(),
            logging: Vec::new(),
            last_stop_time: None,
            validation_epoch: 0,
        }
    }

    pub fn arn(&self) -> String {
        arn(&self.account, &self.home_region, &self.name)
    }

    pub fn key(&self) -> String {
        key(&self.account, &self.home_region, &self.name)
    }

    pub fn from_value(value: &Value) -> Result<Trail, ApiError> {
        Trail::deserialize(value).map_err(|e| ApiError::internal(format!("stored trail: {e}")))
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("trails serialize")
    }

    pub fn is_logging(&self) -> bool {
        self.logging.last().is_some_and(|p| p.stop_seq.is_none())
    }

    /// Whether the trail logs at or after journal position `seq` (a period not closed
    /// before it).
    pub fn logging_since(&self, seq: u64) -> bool {
        self.logging
            .iter()
            .any(|p| p.stop_seq.is_none_or(|stop| stop >= seq))
    }

    /// Whether the trail was logging at journal position `seq`.
    pub fn logging_at(&self, seq: u64) -> bool {
        self.logging
            .iter()
            .any(|p| p.start_seq <= seq && p.stop_seq.is_none_or(|stop| seq <= stop))
    }

    /// Whether the trail asked for Insights of `insight_type` on management events.
    pub fn wants_insights(&self, insight_type: &str) -> bool {
        self.insight_selectors.iter().any(|s| {
            s.insight_type == insight_type
                && s.event_categories
                    .as_ref()
                    .is_none_or(|c| c.iter().any(|c| c == "Management"))
        })
    }

    /// How `account` sees this trail from `region`, if at all.
    pub fn access(&self, account: &str, region: &str, settings: &Settings) -> Option<Access> {
        let in_region = self.home_region == region || self.multi_region;
        if self.account == account {
            return match (self.home_region == region, self.multi_region) {
                (true, _) => Some(Access::Home),
                (false, true) => Some(Access::Shadow),
                (false, false) => None,
            };
        }
        (in_region && self.is_member(account, settings)).then_some(Access::Shadow)
    }

    /// The organization whose events this trail receives: set for an organization trail
    /// whose account manages an organization.
    pub fn organization<'a>(&self, settings: &'a Settings) -> Option<&'a Organization> {
        settings
            .organization_of(&self.account)
            .filter(|org| self.organization && org.management_account == self.account)
    }

    /// Whether `account` is another member of this organization trail's organization.
    pub fn is_member(&self, account: &str, settings: &Settings) -> bool {
        self.organization(settings)
            .is_some_and(|org| org.accounts.iter().any(|a| a == account))
    }

    /// The trail as CreateTrail and UpdateTrail return it.
    pub fn summary(&self) -> Value {
        let mut out = json!({
            "Name": self.name,
            "S3BucketName": self.bucket,
            "IncludeGlobalServiceEvents": self.include_global,
            "IsMultiRegionTrail": self.multi_region,
            "TrailARN": self.arn(),
            "LogFileValidationEnabled": self.validation,
            "IsOrganizationTrail": self.organization,
        });
        let optional = [
            ("S3KeyPrefix", &self.prefix),
            ("SnsTopicName", &self.sns_topic_name),
            ("SnsTopicARN", &self.sns_topic_arn),
            ("CloudWatchLogsLogGroupArn", &self.log_group_arn),
            ("CloudWatchLogsRoleArn", &self.role_arn),
            ("KmsKeyId", &self.kms_key_arn),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                out[field] = json!(value);
            }
        }
        out
    }

    /// The trail as DescribeTrails and GetTrail return it.
    pub fn description(&self) -> Value {
        let mut out = self.summary();
        out["HomeRegion"] = json!(self.home_region);
        out["HasCustomEventSelectors"] = json!(self.custom_selectors);
        out["HasInsightSelectors"] = json!(!self.insight_selectors.is_empty());
        out
    }
}

/// Every trail in the metadata, live ones only.
pub fn all(entries: &BTreeMap<String, Value>) -> Vec<Trail> {
    cairn_store::meta::under(entries, "trails/")
        .filter_map(|(_, v)| Trail::deserialize(v).ok())
        .collect()
}

/// The trails `account` sees from `region`, with how it sees each.
pub fn visible(
    entries: &BTreeMap<String, Value>,
    account: &str,
    region: &str,
    settings: &Settings,
) -> Vec<(Trail, Access)> {
    all(entries)
        .into_iter()
        .filter_map(|t| t.access(account, region, settings).map(|a| (t, a)))
        .collect()
}

/// A parsed trail ARN: (region, account, name).
pub fn parse_arn(value: &str) -> Result<(String, String, String), ApiError> {
    let invalid = || {
        ApiError::client(
            "CloudTrailARNInvalidException",
            format!("{value} is not a valid trail ARN. A trail ARN looks like arn:aws:cloudtrail:us-east-2:123456789012:trail/MyTrail."),
        )
    };
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "cloudtrail" {
        return Err(invalid());
    }
    let name = parts[5].strip_prefix("trail/").ok_or_else(invalid)?;
    let account_ok = parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit());
    if !account_ok || !crate::config::valid_region(parts[3]) {
        return Err(invalid());
    }
    names::check_trail_name(name)?;
    Ok((parts[3].to_owned(), parts[4].to_owned(), name.to_owned()))
}

/// Who is asking, and from where.
pub struct Viewer<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub settings: &'a Settings,
}

impl Viewer<'_> {
    pub fn not_found(&self, name_or_arn: &str) -> ApiError {
        let arn = if name_or_arn.starts_with("arn:") {
            name_or_arn.to_owned()
        } else {
            arn(self.account, self.region, name_or_arn)
        };
        ApiError::client(
            "TrailNotFoundException",
            format!("Unknown trail: {arn} for the user: {}", self.account),
        )
    }

    /// Finds the trail a `Name`/`TrailName` parameter names. A plain name means the
    /// caller's trail homed in this region; an ARN may name a shadow trail.
    pub fn find(
        &self,
        entries: &BTreeMap<String, Value>,
        name_or_arn: Option<&str>,
    ) -> Result<(Trail, Access), ApiError> {
        let given = name_or_arn.ok_or_else(|| {
            ApiError::client(
                "TrailNotProvidedException",
                "A trail name or ARN is required.",
            )
        })?;
        let key = if given.starts_with("arn:") {
            let (region, account, name) = parse_arn(given)?;
            key(&account, &region, &name)
        } else {
            names::check_trail_name(given)?;
            key(self.account, self.region, given)
        };
        let trail = entries
            .get(&key)
            .map(Trail::from_value)
            .transpose()?
            .ok_or_else(|| self.not_found(given))?;
        let access = trail
            .access(self.account, self.region, self.settings)
            .ok_or_else(|| self.not_found(given))?;
        Ok((trail, access))
    }

    /// Finds a trail the caller may change: its own, from its home region.
    pub fn find_to_change(
        &self,
        entries: &BTreeMap<String, Value>,
        name_or_arn: Option<&str>,
    ) -> Result<Trail, ApiError> {
        let (trail, access) = match self.find(entries, name_or_arn) {
            // A plain name that is the caller's multi-region trail homed elsewhere: say
            // where to go rather than that it does not exist.
            Err(e) if e.code == "TrailNotFoundException" => {
                let name = name_or_arn.unwrap_or_default();
                let elsewhere = all(entries)
                    .into_iter()
                    .find(|t| t.account == self.account && t.name == name && t.multi_region);
                return Err(match elsewhere {
                    Some(trail) if !name.starts_with("arn:") => shadow_error(&trail, self.account),
                    _ => e,
                });
            }
            other => other?,
        };
        if access == Access::Shadow {
            return Err(shadow_error(&trail, self.account));
        }
        Ok(trail)
    }
}

/// Why a shadow trail cannot be changed from here.
pub fn shadow_error(trail: &Trail, account: &str) -> ApiError {
    if trail.account != account {
        ApiError::client(
            "NotOrganizationMasterAccountException",
            format!(
                "The organization trail {} can be changed only by the organization's management account, {}.",
                trail.arn(),
                trail.account
            ),
        )
    } else {
        ApiError::client(
            "InvalidHomeRegionException",
            format!(
                "The trail {} can be changed only from its home region, {}.",
                trail.arn(),
                trail.home_region
            ),
        )
    }
}

fn already_exists(trail: &Trail) -> ApiError {
    ApiError::client(
        "TrailAlreadyExistsException",
        format!(
            "Trail {} already exists for customer: {}",
            trail.name, trail.account
        ),
    )
}

/// Checks that a new trail may be created: its name is free, and its regions have room.
pub fn check_new(entries: &BTreeMap<String, Value>, candidate: &Trail) -> Result<(), ApiError> {
    if entries.contains_key(&candidate.key()) {
        return Err(already_exists(candidate));
    }
    check_room(entries, candidate)
}

/// Checks the per-region trail limit and name clashes for `candidate` (a new trail, or
/// an existing one changing its multi-region setting). `entries` may still hold the
/// candidate's old version, which is not counted.
pub fn check_room(entries: &BTreeMap<String, Value>, candidate: &Trail) -> Result<(), ApiError> {
    let own: Vec<Trail> = all(entries)
        .into_iter()
        .filter(|t| t.account == candidate.account && t.key() != candidate.key())
        .collect();
    let clash = own.iter().any(|t| {
        t.name == candidate.name
            && (t.home_region == candidate.home_region || t.multi_region || candidate.multi_region)
    });
    if clash {
        return Err(already_exists(candidate));
    }
    // The regions the candidate occupies: its home, or, if multi-region, every region
    // where the account has trails (a region without any has room).
    let mut regions: Vec<&str> = vec![candidate.home_region.as_str()];
    if candidate.multi_region {
        regions.extend(own.iter().map(|t| t.home_region.as_str()));
    }
    for region in regions {
        let count = own
            .iter()
            .filter(|t| t.home_region == region || t.multi_region)
            .count();
        if count >= MAX_TRAILS_PER_REGION {
            return Err(ApiError::client(
                "MaximumNumberOfTrailsExceededException",
                format!(
                    "User: {} already has {MAX_TRAILS_PER_REGION} trails in {region}.",
                    candidate.account
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail(account: &str, region: &str, name: &str, multi: bool) -> Trail {
        Trail {
            multi_region: multi,
            ..Trail::new(account, region, name, "b")
        }
    }

    fn entries(trails: &[Trail]) -> BTreeMap<String, Value> {
        trails.iter().map(|t| (t.key(), t.to_value())).collect()
    }

    #[test]
    fn logging_periods_include_their_bounds() {
        let mut t = trail("111122223333", "us-east-1", "t1", false);
        t.logging = vec![
            Period {
                start_seq: 10,
                start_time: 0,
                stop_seq: Some(20),
                stop_time: Some(1),
            },
            Period {
                start_seq: 30,
                start_time: 2,
                stop_seq: None,
                stop_time: None,
            },
        ];
        assert!(!t.logging_at(9));
        assert!(t.logging_at(10) && t.logging_at(20));
        assert!(!t.logging_at(25));
        assert!(t.logging_at(30) && t.logging_at(1_000));
        assert!(t.is_logging());
    }

    #[test]
    fn multi_region_trails_count_in_every_region() {
        let a = "111122223333";
        let mut existing: Vec<Trail> = (0..4)
            .map(|i| trail(a, "us-east-1", &format!("t{i}"), false))
            .collect();
        existing.push(trail(a, "eu-west-1", "global", true));
        let e = entries(&existing);
        let error = check_room(&e, &trail(a, "us-east-1", "t9", false)).unwrap_err();
        assert_eq!(error.code, "MaximumNumberOfTrailsExceededException");
        assert_eq!(
            error.message,
            format!("User: {a} already has 5 trails in us-east-1.")
        );
        assert!(check_room(&e, &trail(a, "us-west-2", "t9", false)).is_ok());
        // A new multi-region trail needs room everywhere the account has trails.
        assert!(check_room(&e, &trail(a, "us-west-2", "t9", true)).is_err());
        // Names clash with multi-region trails from any region.
        let clash = check_room(&e, &trail(a, "us-west-2", "global", false)).unwrap_err();
        assert_eq!(clash.code, "TrailAlreadyExistsException");
        // Another account has its own room.
        assert!(check_room(&e, &trail("444455556666", "us-east-1", "t0", false)).is_ok());
    }

    #[test]
    fn arns_are_checked() {
        assert_eq!(
            parse_arn("arn:aws:cloudtrail:us-east-2:111122223333:trail/my-trail").unwrap(),
            ("us-east-2".into(), "111122223333".into(), "my-trail".into())
        );
        for bad in [
            "arn:aws:cloudtrail:us-east-2:111122223333:channel/x",
            "arn:aws:s3:::bucket",
            "arn:aws:cloudtrail:us-east-2:1111:trail/my-trail",
        ] {
            assert_eq!(
                parse_arn(bad).unwrap_err().code,
                "CloudTrailARNInvalidException"
            );
        }
    }
}
