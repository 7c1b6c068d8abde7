//! The trail control plane: CreateTrail, UpdateTrail, DeleteTrail, GetTrail,
//! DescribeTrails, ListTrails, GetTrailStatus, StartLogging, StopLogging.

use std::collections::BTreeMap;

use cairn_store::Change;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Call, Outcome};
use crate::api::ApiError;
use crate::tags::{self, Tag};
use crate::trails::{self, names, Access, Period, Trail, Viewer};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TrailSettings {
    pub name: Option<String>,
    pub s3_bucket_name: Option<String>,
    pub s3_key_prefix: Option<String>,
    pub sns_topic_name: Option<String>,
    pub include_global_service_events: Option<bool>,
    pub is_multi_region_trail: Option<bool>,
    pub enable_log_file_validation: Option<bool>,
    pub cloud_watch_logs_log_group_arn: Option<String>,
    pub cloud_watch_logs_role_arn: Option<String>,
    pub kms_key_id: Option<String>,
    pub is_organization_trail: Option<bool>,
    pub tags_list: Option<Vec<Tag>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NameInput {
    pub name: Option<String>,
}

#[derive(Deserialize)]
pub struct DescribeInput {
    #[serde(rename = "trailNameList")]
    pub trail_name_list: Option<Vec<String>>,
    #[serde(rename = "includeShadowTrails")]
    pub include_shadow_trails: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    pub next_token: Option<String>,
}

pub fn viewer<'a>(call: &'a Call<'a>) -> Viewer<'a> {
    Viewer {
        account: &call.identity.account_id,
        region: call.region,
        settings: &call.app.settings,
    }
}

/// An empty string clears an optional setting (as UpdateTrail does on AWS).
fn optional(value: Option<String>) -> Option<Option<String>> {
    value.map(|v| (!v.is_empty()).then_some(v))
}

/// Applies the settings a Create/UpdateTrail request carries to `trail`, checking each.
fn apply(trail: &mut Trail, input: &TrailSettings, call: &Call<'_>) -> Result<(), ApiError> {
    let account = &call.identity.account_id;
    if let Some(bucket) = &input.s3_bucket_name {
        names::check_bucket(bucket)?;
        trail.bucket = bucket.clone();
    }
    if let Some(prefix) = optional(input.s3_key_prefix.clone()) {
        if let Some(p) = &prefix {
            names::check_prefix(p)?;
        }
        trail.prefix = prefix;
    }
    if let Some(topic) = optional(input.sns_topic_name.clone()) {
        let (name, arn) = match topic {
            Some(t) => {
                let (name, arn) = names::sns_topic(&t, call.region, account)?;
                (Some(name), Some(arn))
            }
            None => (None, None),
        };
        trail.sns_topic_name = name;
        trail.sns_topic_arn = arn;
    }
    if let Some(kms) = optional(input.kms_key_id.clone()) {
        trail.kms_key_arn = kms
            .map(|k| names::kms_key_arn(&k, call.region, account))
            .transpose()?;
    }
    if let Some(group) = optional(input.cloud_watch_logs_log_group_arn.clone()) {
        if let Some(g) = &group {
            names::check_log_group_arn(g)?;
        }
        trail.log_group_arn = group;
    }
    if let Some(role) = optional(input.cloud_watch_logs_role_arn.clone()) {
        if let Some(r) = &role {
            names::check_role_arn(r)?;
        }
        trail.role_arn = role;
    }
    if trail.log_group_arn.is_some() != trail.role_arn.is_some() {
        return Err(ApiError::client(
            "InvalidParameterCombinationException",
            "CloudWatchLogsLogGroupArn and CloudWatchLogsRoleArn are given together.",
        ));
    }
    if let Some(validation) = input.enable_log_file_validation {
        if validation && !trail.validation {
            trail.validation_epoch += 1;
        }
        trail.validation = validation;
    }
    // Switching a trail to multi-region turns global-service events on, and switching it
    // back turns them off, unless the request says otherwise.
    if let Some(multi) = input.is_multi_region_trail {
        if multi != trail.multi_region {
            trail.include_global = multi;
        }
        trail.multi_region = multi;
    }
    if let Some(global) = input.include_global_service_events {
        trail.include_global = global;
    }
    if trail.multi_region && !trail.include_global {
        return Err(ApiError::client(
            "InvalidParameterCombinationException",
            "Multi-Region trail must include global service events.",
        ));
    }
    if let Some(organization) = input.is_organization_trail {
        if organization {
            check_management_account(call)?;
        }
        trail.organization = organization;
    }
    Ok(())
}

/// Only an organization's management account creates organization trails.
fn check_management_account(call: &Call<'_>) -> Result<(), ApiError> {
    let account = &call.identity.account_id;
    match call.app.settings.organization_of(account) {
        None => Err(ApiError::client(
            "OrganizationsNotInUseException",
            format!("Account {account} is not in an organization, so it cannot create organization trails."),
        )),
        Some(org) if &org.management_account != account => Err(ApiError::client(
            "NotOrganizationMasterAccountException",
            format!(
                "Account {account} is not the management account of organization {}; only {} can create or change its organization trails.",
                org.id, org.management_account
            ),
        )),
        Some(_) => Ok(()),
    }
}

async fn check_bucket_exists(call: &Call<'_>, bucket: &str) -> Result<(), ApiError> {
    match call.app.buckets.exists(bucket).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::client(
            "S3BucketDoesNotExistException",
            format!("S3 bucket {bucket} does not exist!"),
        )),
        Err(e) => Err(ApiError::unavailable(format!(
            "The bucket store cannot be reached ({}); try again.",
            e.code
        ))),
    }
}

/// The trail a read names (a name or ARN), as the caller sees it: its own or a shadow.
pub fn find(call: &Call<'_>, name_or_arn: Option<&str>) -> Result<Trail, ApiError> {
    let viewer = viewer(call);
    call.app
        .meta
        .read(|entries| viewer.find(entries, name_or_arn))
        .map(|(trail, _)| trail)
}

pub async fn create(call: &Call<'_>, input: TrailSettings) -> Result<Outcome, ApiError> {
    let name = input.name.clone().unwrap_or_default();
    names::check_trail_name(&name)?;
    let bucket = input.s3_bucket_name.clone().ok_or_else(|| {
        ApiError::client("InvalidS3BucketNameException", "S3BucketName is required.")
    })?;
    let mut trail = Trail::new(&call.identity.account_id, call.region, &name, &bucket);
    // A name clash or a full region is worth knowing before anything else.
    call.app
        .meta
        .read(|entries| trails::check_new(entries, &trail))?;
    apply(&mut trail, &input, call)?;
    trail.tags = tags::initial(input.tags_list.as_deref().unwrap_or_default())?;
    check_bucket_exists(call, &bucket).await?;
    let response = trail.summary();
    tokio::task::block_in_place(|| {
        call.app.meta.update(|entries| {
            trails::check_new(entries, &trail)?;
            check_log_group(entries, &trail)?;
            call.recorder.record_blocking(&response, resource(&trail))?;
            Ok::<_, ApiError>((vec![Change::Put(trail.key(), trail.to_value())], ()))
        })
    })?;
    Ok(Outcome::recorded(response))
}

/// A trail's log group must exist, in the trail's account and home region.
fn check_log_group(entries: &BTreeMap<String, Value>, trail: &Trail) -> Result<(), ApiError> {
    let Some(arn) = &trail.log_group_arn else {
        return Ok(());
    };
    if crate::loggroups::GroupInfo::of_trail(entries, trail).is_some() {
        return Ok(());
    }
    Err(ApiError::client(
        "InvalidCloudWatchLogsLogGroupArnException",
        format!(
            "The log group {arn} does not exist in account {} and region {}; create it with CreateLogGroup first.",
            trail.account, trail.home_region
        ),
    ))
}

/// The trail, as its calls' audit records name it.
fn resource(trail: &Trail) -> Vec<cairn_core::RecordResource> {
    vec![cairn_core::RecordResource {
        account_id: trail.account.clone(),
        kind: "AWS::CloudTrail::Trail".into(),
        arn: trail.arn(),
    }]
}

/// What a change does once its audit record has a journal position.
pub enum Stamp {
    None,
    StartLogging,
    StopLogging,
}

/// Finds the caller's trail named by `name`, lets `edit` change it and produce the
/// response, records the call, stamps logging changes with the record's position, and
/// stores the trail, all under the metadata lock.
pub fn change_trail(
    call: &Call<'_>,
    name: Option<&str>,
    stamp: Stamp,
    edit: impl FnOnce(&mut Trail, &BTreeMap<String, Value>) -> Result<Value, ApiError>,
) -> Result<Outcome, ApiError> {
    let viewer = viewer(call);
    let now = call.now;
    let delivered = call.app.journal_floor();
    let response = tokio::task::block_in_place(|| {
        call.app.meta.update(|entries| {
            let mut trail = viewer.find_to_change(entries, name)?;
            let response = edit(&mut trail, entries)?;
            let seq = call.recorder.record_blocking(&response, resource(&trail))?;
            match stamp {
                Stamp::None => {}
                Stamp::StartLogging if !trail.is_logging() => {
                    // Periods delivery has finished with are no longer needed.
                    trail
                        .logging
                        .retain(|p| p.stop_seq.is_none_or(|stop| stop >= delivered));
                    trail.logging.push(Period {
                        start_seq: seq,
                        start_time: now,
                        stop_seq: None,
                        stop_time: None,
                    });
                }
                Stamp::StopLogging if trail.is_logging() => {
                    stop(&mut trail, seq, now);
                }
                Stamp::StartLogging | Stamp::StopLogging => {}
            }
            let changes = vec![Change::Put(trail.key(), trail.to_value())];
            Ok::<_, ApiError>((changes, response))
        })
    })?;
    Ok(Outcome::recorded(response))
}

fn stop(trail: &mut Trail, seq: u64, now: i64) {
    if let Some(period) = trail.logging.last_mut() {
        if period.stop_seq.is_none() {
            period.stop_seq = Some(seq);
            period.stop_time = Some(now);
            trail.last_stop_time = Some(now);
        }
    }
}

pub async fn update(call: &Call<'_>, input: TrailSettings) -> Result<Outcome, ApiError> {
    if input.tags_list.is_some() {
        return Err(ApiError::serialization(
            "UpdateTrail does not take TagsList; use AddTags.",
        ));
    }
    if let Some(bucket) = &input.s3_bucket_name {
        names::check_bucket(bucket)?;
        // Existence first, without the lock: it may be a network call.
        let viewer = viewer(call);
        call.app.meta.read(|entries| {
            viewer
                .find_to_change(entries, input.name.as_deref())
                .map(drop)
        })?;
        check_bucket_exists(call, bucket).await?;
    }
    let name = input.name.clone();
    change_trail(call, name.as_deref(), Stamp::None, |trail, entries| {
        let was_multi = trail.multi_region;
        apply(trail, &input, call)?;
        if trail.multi_region && !was_multi {
            trails::check_room(entries, trail)?;
        }
        if input
            .cloud_watch_logs_log_group_arn
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            check_log_group(entries, trail)?;
        }
        Ok(trail.summary())
    })
}

pub async fn start_logging(call: &Call<'_>, input: NameInput) -> Result<Outcome, ApiError> {
    change_trail(call, input.name.as_deref(), Stamp::StartLogging, |_, _| {
        Ok(json!({}))
    })
}

pub async fn stop_logging(call: &Call<'_>, input: NameInput) -> Result<Outcome, ApiError> {
    change_trail(call, input.name.as_deref(), Stamp::StopLogging, |_, _| {
        Ok(json!({}))
    })
}

/// Where a deleted trail waits until delivery has written what it received.
pub fn retired_key(trail: &Trail, seq: u64) -> String {
    format!(
        "retired/{}/{}/{}/{seq:020}",
        trail.account, trail.home_region, trail.name
    )
}

pub async fn delete(call: &Call<'_>, input: NameInput) -> Result<Outcome, ApiError> {
    let viewer = viewer(call);
    let now = call.now;
    let response = json!({});
    tokio::task::block_in_place(|| {
        call.app.meta.update(|entries| {
            let mut trail = viewer.find_to_change(entries, input.name.as_deref())?;
            let seq = call.recorder.record_blocking(&response, resource(&trail))?;
            let mut changes = vec![Change::Delete(trail.key())];
            if !trail.logging.is_empty() {
                stop(&mut trail, seq, now);
                changes.push(Change::Put(retired_key(&trail, seq), trail.to_value()));
            }
            Ok::<_, ApiError>((changes, ()))
        })
    })?;
    Ok(Outcome::recorded(response))
}

pub async fn get(call: &Call<'_>, input: NameInput) -> Result<Outcome, ApiError> {
    let trail = find(call, input.name.as_deref())?;
    Ok(Outcome::of(json!({ "Trail": trail.description() })))
}

pub async fn describe(call: &Call<'_>, input: DescribeInput) -> Result<Outcome, ApiError> {
    let viewer = viewer(call);
    let include_shadows = input.include_shadow_trails.unwrap_or(true);
    let list = call.app.meta.read(|entries| {
        let visible = trails::visible(entries, viewer.account, viewer.region, viewer.settings);
        let wanted: Vec<Trail> = match input.trail_name_list.as_deref() {
            None | Some([]) => visible
                .into_iter()
                .filter(|(_, access)| include_shadows || *access == Access::Home)
                .map(|(t, _)| t)
                .collect(),
            Some(names) => {
                let mut out = Vec::new();
                for given in names {
                    // Plain names match only the caller's trails homed here; ARNs match
                    // any trail the caller sees. Unknown names are left out.
                    match viewer.find(entries, Some(given)) {
                        Ok((trail, access)) => {
                            let by_arn = given.starts_with("arn:");
                            let wanted = access == Access::Home || (by_arn && include_shadows);
                            if wanted && !out.contains(&trail) {
                                out.push(trail);
                            }
                        }
                        Err(e) if e.code == "TrailNotFoundException" => {}
                        Err(e) => return Err(e),
                    }
                }
                out
            }
        };
        Ok::<_, ApiError>(wanted)
    })?;
    let list: Vec<Value> = list.iter().map(Trail::description).collect();
    Ok(Outcome::of(json!({ "trailList": list })))
}

pub async fn list(call: &Call<'_>, input: ListInput) -> Result<Outcome, ApiError> {
    // Every trail a caller sees fits in one page (five per region and the organization's).
    if input.next_token.is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::client(
            "InvalidNextTokenException",
            "This NextToken was not issued by ListTrails.",
        ));
    }
    let viewer = viewer(call);
    let trails = call
        .app
        .meta
        .read(|entries| trails::visible(entries, viewer.account, viewer.region, viewer.settings));
    let list: Vec<Value> = trails
        .iter()
        .map(|(t, _)| json!({"TrailARN": t.arn(), "Name": t.name, "HomeRegion": t.home_region}))
        .collect();
    Ok(Outcome::of(json!({ "Trails": list })))
}

fn iso(time: Option<i64>) -> String {
    time.map(cairn_core::timefmt::format_event_time)
        .unwrap_or_default()
}

pub async fn status(call: &Call<'_>, input: NameInput) -> Result<Outcome, ApiError> {
    let trail = find(call, input.name.as_deref())?;
    let started = trail.logging.last().map(|p| p.start_time);
    let stopped = if trail.is_logging() {
        None
    } else {
        trail.last_stop_time
    };
    let mut out = json!({
        "IsLogging": trail.is_logging(),
        "TimeLoggingStarted": iso(started),
        "TimeLoggingStopped": iso(stopped),
    });
    if let Some(t) = started {
        out["StartLoggingTime"] = json!(t);
    }
    if let Some(t) = stopped {
        out["StopLoggingTime"] = json!(t);
    }
    let region_status = call.app.delivery.status(&trail.arn(), call.region);
    let logs_status = call.app.log_groups.status(&trail.arn());
    for more in [
        region_status.to_json(),
        crate::loggroups::status_json(&logs_status),
    ] {
        if let (Value::Object(out), Value::Object(more)) = (&mut out, more) {
            out.extend(more);
        }
    }
    Ok(Outcome::of(out))
}
