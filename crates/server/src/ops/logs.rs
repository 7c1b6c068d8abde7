//! The CloudWatch Logs API (AWS JSON 1.1, `Logs_20140328.*`): log groups, retention, metric
//! filters and `TestMetricFilter`, so `aws logs … --endpoint-url` works against Cairn.
//!
//! A log group is one metadata entry, `loggroups/<account>/<region>/<name>`, holding its
//! metric filters (at most 100), so a filter change and its check against the group's
//! limits are one atomic update.

use cairn_filter::{Field, Filter, FilterSet, Pattern, Scratch};
use cairn_store::meta::Change;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{input, invalid, log_events, required, Call, Listing, Outcome};
use crate::api::ApiError;
use crate::loggroups::{group_key, GroupInfo};

/// The `X-Amz-Target` prefix of CloudWatch Logs.
pub const TARGET: &str = "Logs_20140328";

/// The operations Cairn serves; any other is answered `UnknownOperationException`.
pub const OPERATIONS: &[&str] = &[
    "CreateLogGroup",
    "DeleteLogGroup",
    "DescribeLogGroups",
    "PutRetentionPolicy",
    "DeleteRetentionPolicy",
    "PutMetricFilter",
    "DescribeMetricFilters",
    "DeleteMetricFilter",
    "TestMetricFilter",
    "DescribeLogStreams",
    "GetLogEvents",
    "FilterLogEvents",
];

const MAX_FILTERS_PER_GROUP: usize = 100;
/// CloudWatch Logs' largest log event.
const MAX_EVENT_BYTES: usize = 1_048_576;
const MAX_REGEX_FILTERS_PER_GROUP: usize = 5;
/// The retention periods CloudWatch Logs accepts, in days.
const RETENTION_DAYS: [i64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
/// Retention of a new group until `PutRetentionPolicy` changes it.
const DEFAULT_RETENTION_DAYS: i64 = 30;
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

pub async fn dispatch(call: Call<'_>, operation: &str, body: &Value) -> Result<Outcome, ApiError> {
    match operation {
        "CreateLogGroup" => create_log_group(&call, input(body)?),
        "DeleteLogGroup" => delete_log_group(&call, input(body)?),
        "DescribeLogGroups" => describe_log_groups(&call, input(body)?),
        "PutRetentionPolicy" => put_retention_policy(&call, input(body)?),
        "DeleteRetentionPolicy" => delete_retention_policy(&call, input(body)?),
        "PutMetricFilter" => put_metric_filter(&call, input(body)?),
        "DescribeMetricFilters" => describe_metric_filters(&call, input(body)?),
        "DeleteMetricFilter" => delete_metric_filter(&call, input(body)?),
        // Up to 50 messages of up to 1 MiB: CPU work, kept off the async threads.
        "TestMetricFilter" => tokio::task::block_in_place(|| test_metric_filter(input(body)?)),
        "DescribeLogStreams" => log_events::describe_log_streams(&call, input(body)?),
        "GetLogEvents" => log_events::get_log_events(&call, input(body)?),
        "FilterLogEvents" => log_events::filter_log_events(&call, input(body)?),
        other => Err(ApiError::unknown_operation(other)),
    }
}

/// The metadata key of the caller's group `name` (with `""`: the prefix of them all).
fn entry_key(call: &Call, name: &str) -> String {
    group_key(&call.identity.account_id, call.region, name)
}

/// AWS's wording for a member that breaks its model constraint.
pub(super) fn constraint(member: &str, value: impl std::fmt::Display, rule: &str) -> ApiError {
    invalid(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {rule}"
    ))
}

pub(super) fn group_not_found() -> ApiError {
    ApiError::client(
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
}

pub(super) fn check_group_name(name: Option<&str>) -> Result<&str, ApiError> {
    let name = required(name, "logGroupName")?;
    if name.is_empty() || name.len() > 512 {
        return Err(constraint(
            "logGroupName",
            name,
            "Member must have length between 1 and 512",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c))
    {
        return Err(constraint(
            "logGroupName",
            name,
            r"Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+",
        ));
    }
    Ok(name)
}

/// The group `name`'s entry, changed by `change` in one atomic update that also records
/// the call.
fn change_group(
    call: &Call,
    name: &str,
    change: impl FnOnce(&mut Map<String, Value>) -> Result<(), ApiError>,
) -> Result<Outcome, ApiError> {
    let key = entry_key(call, name);
    tokio::task::block_in_place(|| {
        call.app.meta.update(|entries| {
            let mut group = entries
                .get(&key)
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(group_not_found)?;
            change(&mut group)?;
            call.recorder.record_blocking(&Value::Null, Vec::new())?;
            Ok::<_, ApiError>((vec![Change::Put(key.clone(), Value::Object(group))], ()))
        })
    })?;
    Ok(Outcome::recorded(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogGroupInput {
    log_group_name: Option<String>,
    kms_key_id: Option<String>,
    tags: Option<Map<String, Value>>,
}

fn create_log_group(call: &Call, input: CreateLogGroupInput) -> Result<Outcome, ApiError> {
    let name = check_group_name(input.log_group_name.as_deref())?.to_owned();
    let key = entry_key(call, &name);
    let mut group = json!({
        "logGroupName": name,
        "creationTime": call.now * 1000,
        "retentionInDays": DEFAULT_RETENTION_DAYS,
        "metricFilters": [],
        "tags": input.tags.unwrap_or_default(),
    });
    if let Some(kms) = input.kms_key_id {
        group["kmsKeyId"] = json!(kms);
    }
    let cis = &call.app.settings.cis;
    if cis.enabled && name == cis.log_group {
        crate::loggroups::add_cis_filters(&mut group, call.now * 1000);
    }
    tokio::task::block_in_place(|| {
        call.app.meta.update(|entries| {
            if entries.contains_key(&key) {
                return Err(ApiError::client(
                    "ResourceAlreadyExistsException",
                    "The specified log group already exists",
                ));
            }
            call.recorder.record_blocking(&Value::Null, Vec::new())?;
            Ok((vec![Change::Put(key.clone(), group.clone())], ()))
        })
    })?;
    Ok(Outcome::recorded(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupInput {
    log_group_name: Option<String>,
}

fn delete_log_group(call: &Call, input: LogGroupInput) -> Result<Outcome, ApiError> {
    let name = check_group_name(input.log_group_name.as_deref())?;
    let key = entry_key(call, name);
    tokio::task::block_in_place(|| {
        let group = call.app.meta.update(|entries| {
            let group = entries
                .get(&key)
                .and_then(|g| GroupInfo::from_entry(&key, g))
                .ok_or_else(group_not_found)?;
            call.recorder.record_blocking(&Value::Null, Vec::new())?;
            Ok::<_, ApiError>((vec![Change::Delete(key.clone())], group))
        })?;
        call.app.log_groups.remove_group(&group);
        Ok::<_, ApiError>(())
    })?;
    Ok(Outcome::recorded(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsInput {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

/// The most items a Logs describe operation lists per page (the model's maximum limit).
const MAX_LISTED: i64 = 50;

/// `limit` checked against an operation's maximum, as the model gives it.
pub(super) fn check_limit(limit: Option<i64>, max: i64) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(max);
    if !(1..=max).contains(&limit) {
        return Err(constraint(
            "limit",
            limit,
            &format!("Member must have value between 1 and {max}"),
        ));
    }
    Ok(limit as usize)
}

/// A listing's page under `name`, each item described by `describe` (only the page's:
/// describing may cost I/O), with `nextToken` when more follow.
pub(super) fn paged<T>(
    call: &Call,
    query: String,
    token: Option<&str>,
    limit: Option<i64>,
    name: &str,
    items: Vec<T>,
    describe: impl FnMut(T) -> Value,
) -> Result<Value, ApiError> {
    let limit = check_limit(limit, MAX_LISTED)?;
    let listing = Listing::open(call, query, token, limit, || {
        invalid("The specified nextToken is invalid.")
    })?;
    let (page, next) = listing.page(call, items);
    let page: Vec<Value> = page.into_iter().map(describe).collect();
    let mut out = json!({ name: page });
    if let Some(token) = next {
        out["nextToken"] = json!(token);
    }
    Ok(out)
}

fn describe_log_groups(call: &Call, input: DescribeLogGroupsInput) -> Result<Outcome, ApiError> {
    if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
        return Err(invalid(
            "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive.",
        ));
    }
    let name_prefix = input.log_group_name_prefix.unwrap_or_default();
    let pattern = input.log_group_name_pattern.unwrap_or_default();
    let groups: Vec<(String, Value)> = call
        .app
        .meta
        .scan(&entry_key(call, &name_prefix))
        .into_iter()
        .filter(|(_, g)| {
            g["logGroupName"]
                .as_str()
                .is_some_and(|n| n.contains(pattern.as_str()))
        })
        .collect();
    let query = format!(
        "DescribeLogGroups\n{}\n{name_prefix}\n{pattern}",
        entry_key(call, "")
    );
    let out = paged(
        call,
        query,
        input.next_token.as_deref(),
        input.limit,
        "logGroups",
        groups,
        |(key, group)| {
            tokio::task::block_in_place(|| describe_group(&call.app.log_groups, &key, &group))
        },
    )?;
    Ok(Outcome::of(out))
}

fn describe_group(log_groups: &crate::loggroups::LogGroups, key: &str, group: &Value) -> Value {
    let info = GroupInfo::from_entry(key, group);
    let stored_bytes = info
        .as_ref()
        .and_then(|g| log_groups.store.stored_bytes(&g.id).ok())
        .unwrap_or(0);
    let name = group["logGroupName"].as_str().unwrap_or_default();
    let arn = info.map(|g| g.arn()).unwrap_or_default();
    let mut out = json!({
        "logGroupName": name,
        "creationTime": group["creationTime"],
        "metricFilterCount": group["metricFilters"].as_array().map_or(0, Vec::len),
        "arn": format!("{arn}:*"),
        "logGroupArn": arn,
        "storedBytes": stored_bytes,
        "logGroupClass": "STANDARD",
        "deletionProtectionEnabled": false,
    });
    if !group["retentionInDays"].is_null() {
        out["retentionInDays"] = group["retentionInDays"].clone();
    }
    if !group["kmsKeyId"].is_null() {
        out["kmsKeyId"] = group["kmsKeyId"].clone();
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRetentionPolicyInput {
    log_group_name: Option<String>,
    retention_in_days: Option<i64>,
}

fn put_retention_policy(call: &Call, input: PutRetentionPolicyInput) -> Result<Outcome, ApiError> {
    let name = check_group_name(input.log_group_name.as_deref())?;
    let days = required(input.retention_in_days, "retentionInDays")?;
    if !RETENTION_DAYS.contains(&days) {
        let allowed: Vec<String> = RETENTION_DAYS.iter().map(i64::to_string).collect();
        return Err(constraint(
            "retentionInDays",
            days,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ));
    }
    change_group(call, name, |group| {
        group.insert("retentionInDays".into(), json!(days));
        Ok(())
    })
}

fn delete_retention_policy(call: &Call, input: LogGroupInput) -> Result<Outcome, ApiError> {
    let name = check_group_name(input.log_group_name.as_deref())?;
    change_group(call, name, |group| {
        group.insert("retentionInDays".into(), Value::Null);
        Ok(())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutMetricFilterInput {
    log_group_name: Option<String>,
    filter_name: Option<String>,
    filter_pattern: Option<String>,
    metric_transformations: Option<Vec<MetricTransformation>>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct MetricTransformation {
    metric_name: Option<String>,
    metric_namespace: Option<String>,
    metric_value: Option<String>,
    default_value: Option<f64>,
    dimensions: Option<Map<String, Value>>,
    unit: Option<String>,
}

/// Parses a pattern with the model's length limit; errors read "Invalid {what} pattern: …".
pub(super) fn parse_pattern(pattern: &str, what: &str) -> Result<Pattern, ApiError> {
    if pattern.chars().count() > 1024 {
        return Err(constraint(
            "filterPattern",
            pattern,
            "Member must have length less than or equal to 1024",
        ));
    }
    Pattern::parse(pattern).map_err(|e| invalid(format!("Invalid {what} pattern: {e}")))
}

fn check_metric_name(member: &str, value: Option<&str>) -> Result<String, ApiError> {
    let value = required(value, member)?;
    if value.is_empty() || value.len() > 255 {
        return Err(constraint(
            member,
            value,
            "Member must have length between 1 and 255",
        ));
    }
    if value.contains([':', '*', '$']) {
        return Err(constraint(
            member,
            value,
            r"Member must satisfy regular expression pattern: [^:*$]*",
        ));
    }
    Ok(value.to_owned())
}

/// A metric value or dimension: a number, or a field of the events the pattern matches.
fn check_field(member: &str, value: &str, pattern: &Pattern) -> Result<(), ApiError> {
    if value.starts_with('$') {
        let field =
            Field::parse(value).map_err(|e| invalid(format!("Invalid {member}: {}", e.message)))?;
        let fits = match (&field, pattern) {
            (Field::Json(_), Pattern::Json(_)) => true,
            (Field::Delimited(name), Pattern::Delimited(delimited)) => delimited.has_name(name),
            _ => false,
        };
        if !fits {
            return Err(invalid(format!(
                "Invalid {member} '{value}': the filter pattern has no such field."
            )));
        }
        Ok(())
    } else if member == "metricValue" && value.parse::<f64>().is_ok_and(f64::is_finite) {
        Ok(())
    } else {
        Err(invalid(format!(
            "Invalid {member} '{value}': use a number or a field such as $.latency or $size."
        )))
    }
}

fn check_transformation(t: &MetricTransformation, pattern: &Pattern) -> Result<Value, ApiError> {
    let name = check_metric_name("metricName", t.metric_name.as_deref())?;
    let namespace = check_metric_name("metricNamespace", t.metric_namespace.as_deref())?;
    let value = required(t.metric_value.as_deref(), "metricValue")?;
    if value.is_empty() || value.len() > 100 {
        return Err(constraint(
            "metricValue",
            value,
            "Member must have length less than or equal to 100",
        ));
    }
    check_field("metricValue", value, pattern)?;
    let mut out = json!({"metricName": name, "metricNamespace": namespace, "metricValue": value});
    if let Some(dimensions) = t.dimensions.as_ref().filter(|d| !d.is_empty()) {
        if !pattern.has_fields() {
            return Err(invalid(
                "The specified filter pattern does not support dimensions",
            ));
        }
        if dimensions.len() > 3 {
            return Err(ApiError::client(
                "LimitExceededException",
                "A metric transformation has at most 3 dimensions.",
            ));
        }
        if t.default_value.is_some() {
            return Err(invalid(
                "A metric transformation with dimensions cannot have a default value.",
            ));
        }
        for (key, field) in dimensions {
            let field = field.as_str().unwrap_or_default();
            if key.is_empty() || key.len() > 255 || field.len() > 255 {
                return Err(invalid(
                    "Dimension keys and values have at most 255 characters.",
                ));
            }
            check_field("dimension", field, pattern)?;
        }
        out["dimensions"] = Value::Object(dimensions.clone());
    }
    if let Some(default) = t.default_value {
        out["defaultValue"] = json!(default);
    }
    if let Some(unit) = &t.unit {
        if !UNITS.contains(&unit.as_str()) {
            return Err(constraint(
                "metricTransformations.1.member.unit",
                unit,
                &format!("Member must satisfy enum value set: [{}]", UNITS.join(", ")),
            ));
        }
        out["unit"] = json!(unit);
    }
    Ok(out)
}

fn put_metric_filter(call: &Call, input: PutMetricFilterInput) -> Result<Outcome, ApiError> {
    let group_name = check_group_name(input.log_group_name.as_deref())?;
    let filter_name = required(input.filter_name, "filterName")?;
    if filter_name.is_empty() || filter_name.len() > 512 {
        return Err(constraint(
            "filterName",
            &filter_name,
            "Member must have length between 1 and 512",
        ));
    }
    if filter_name.contains([':', '*']) {
        return Err(constraint(
            "filterName",
            &filter_name,
            "Member must satisfy regular expression pattern: [^:*]*",
        ));
    }
    let pattern_text = required(input.filter_pattern, "filterPattern")?;
    let pattern = parse_pattern(&pattern_text, "metric filter")?;
    let transformations = input.metric_transformations.unwrap_or_default();
    let [transformation] = transformations.as_slice() else {
        return Err(constraint(
            "metricTransformations",
            transformations.len(),
            "Member must have length equal to 1",
        ));
    };
    let transformation = check_transformation(transformation, &pattern)?;
    let filter = json!({
        "filterName": filter_name,
        "filterPattern": pattern_text,
        "metricTransformations": [transformation],
        "creationTime": call.now * 1000,
        "logGroupName": group_name,
    });
    change_group(call, group_name, |group| {
        let filters = group
            .entry("metricFilters")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .ok_or_else(|| ApiError::internal("a log group's filters are not a list"))?;
        filters.retain(|f| f["filterName"] != filter_name.as_str());
        if filters.len() >= MAX_FILTERS_PER_GROUP {
            return Err(ApiError::client(
                "LimitExceededException",
                "Resource limit exceeded.",
            ));
        }
        // Stored patterns parsed before, so they parse again.
        let regex_filters = filters
            .iter()
            .filter_map(|f| f["filterPattern"].as_str())
            .filter(|p| Pattern::parse(p).is_ok_and(|p| p.uses_regex()))
            .count();
        if pattern.uses_regex() && regex_filters >= MAX_REGEX_FILTERS_PER_GROUP {
            return Err(ApiError::client(
                "LimitExceededException",
                format!("A log group has at most {MAX_REGEX_FILTERS_PER_GROUP} metric filters whose patterns use regular expressions."),
            ));
        }
        filters.push(filter);
        filters.sort_by(|a, b| a["filterName"].as_str().cmp(&b["filterName"].as_str()));
        Ok(())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeMetricFiltersInput {
    log_group_name: Option<String>,
    filter_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    metric_name: Option<String>,
    metric_namespace: Option<String>,
}

fn describe_metric_filters(
    call: &Call,
    input: DescribeMetricFiltersInput,
) -> Result<Outcome, ApiError> {
    if input.filter_name_prefix.is_some() && input.log_group_name.is_none() {
        return Err(invalid("filterNamePrefix requires logGroupName."));
    }
    if input.metric_name.is_some() != input.metric_namespace.is_some() {
        return Err(invalid(
            "metricName and metricNamespace must be given together.",
        ));
    }
    let groups = match input.log_group_name.as_deref() {
        Some(name) => {
            let name = check_group_name(Some(name))?;
            vec![call
                .app
                .meta
                .get(&entry_key(call, name))
                .ok_or_else(group_not_found)?]
        }
        None => call
            .app
            .meta
            .scan(&entry_key(call, ""))
            .into_iter()
            .map(|(_, g)| g)
            .collect(),
    };
    let name_prefix = input.filter_name_prefix.clone().unwrap_or_default();
    let query = format!(
        "DescribeMetricFilters\n{}\n{:?}\n{name_prefix}\n{:?}\n{:?}",
        entry_key(call, ""),
        input.log_group_name,
        input.metric_name,
        input.metric_namespace
    );
    let metric = input.metric_name.zip(input.metric_namespace);
    let filters: Vec<Value> = groups
        .into_iter()
        .flat_map(|mut g| match g["metricFilters"].take() {
            Value::Array(filters) => filters,
            _ => Vec::new(),
        })
        .filter(|f| {
            f["filterName"]
                .as_str()
                .is_some_and(|n| n.starts_with(&name_prefix))
        })
        .filter(|f| {
            metric.as_ref().is_none_or(|(name, namespace)| {
                f["metricTransformations"][0]["metricName"] == name.as_str()
                    && f["metricTransformations"][0]["metricNamespace"] == namespace.as_str()
            })
        })
        .collect();
    let token = input.next_token.as_deref();
    let out = paged(
        call,
        query,
        token,
        input.limit,
        "metricFilters",
        filters,
        // Only the page shown is described.
        |mut f| {
            if let Some(map) = f.as_object_mut() {
                map.insert("applyOnTransformedLogs".into(), json!(false));
            }
            f
        },
    )?;
    Ok(Outcome::of(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteMetricFilterInput {
    log_group_name: Option<String>,
    filter_name: Option<String>,
}

fn delete_metric_filter(call: &Call, input: DeleteMetricFilterInput) -> Result<Outcome, ApiError> {
    let group_name = check_group_name(input.log_group_name.as_deref())?;
    let filter_name = required(input.filter_name, "filterName")?;
    change_group(call, group_name, |group| {
        let filters = group
            .get_mut("metricFilters")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| ApiError::internal("a log group's filters are not a list"))?;
        let before = filters.len();
        filters.retain(|f| f["filterName"] != filter_name.as_str());
        if filters.len() == before {
            return Err(ApiError::client(
                "ResourceNotFoundException",
                "The specified metric filter does not exist.",
            ));
        }
        Ok(())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestMetricFilterInput {
    filter_pattern: Option<String>,
    log_event_messages: Option<Vec<String>>,
}

/// Which of up to 50 messages the pattern matches, numbered from 1, with the values a
/// space-delimited pattern extracts.
fn test_metric_filter(input: TestMetricFilterInput) -> Result<Outcome, ApiError> {
    let pattern_text = required(input.filter_pattern, "filterPattern")?;
    let messages = required(input.log_event_messages, "logEventMessages")?;
    if messages.is_empty() || messages.len() > 50 {
        return Err(constraint(
            "logEventMessages",
            messages.len(),
            "Member must have length between 1 and 50",
        ));
    }
    if let Some(long) = messages
        .iter()
        .find(|m| m.is_empty() || m.len() > MAX_EVENT_BYTES)
    {
        return Err(invalid(format!(
            "A log event message has 1 to {MAX_EVENT_BYTES} bytes; one has {}.",
            long.len()
        )));
    }
    let set = FilterSet::new(vec![Filter::new(parse_pattern(
        &pattern_text,
        "metric filter",
    )?)]);
    let mut scratch = Scratch::default();
    let mut matches = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        set.evaluate(message, &mut scratch);
        if set.is_match(&scratch, 0) {
            let extracted: Map<String, Value> = set
                .extracted_values(0, message, &mut scratch)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            matches.push(json!({
                "eventNumber": i + 1,
                "eventMessage": message,
                "extractedValues": extracted,
            }));
        }
    }
    Ok(Outcome::of(json!({ "matches": matches })))
}
