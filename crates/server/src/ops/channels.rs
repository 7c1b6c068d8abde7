//! Channels: the ingestion points for events reported by other services through
//! `cloudtrail-data:PutAuditEvents`. Cairn records what a channel receives in its event
//! history; the channel's destinations are kept as given.

use cairn_store::meta::under;
use cairn_store::Change;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Call, Listing, Outcome};
use crate::api::ApiError;
use crate::tags::{self, Tag};

/// Channels per account and region.
pub const MAX_CHANNELS: usize = 25;

#[derive(Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Destination {
    #[serde(rename = "Type")]
    pub kind: String,
    pub location: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    pub name: Option<String>,
    pub source: Option<String>,
    pub destinations: Option<Vec<Destination>>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelInput {
    pub channel: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateInput {
    pub channel: Option<String>,
    pub destinations: Option<Vec<Destination>>,
    pub name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

fn prefix(call: &Call<'_>) -> String {
    format!("channels/{}/{}/", call.identity.account_id, call.region)
}

fn validate_name(name: Option<&str>) -> Result<&str, ApiError> {
    let name =
        name.ok_or_else(|| ApiError::client("InvalidParameterException", "Name is required."))?;
    let ok = (3..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(ApiError::client(
            "InvalidParameterException",
            "Channel names are 3 to 128 letters, digits, periods, underscores and hyphens.",
        ));
    }
    Ok(name)
}

fn validate_destinations(
    destinations: Option<&[Destination]>,
    call: &Call<'_>,
) -> Result<Value, ApiError> {
    let destinations = destinations.unwrap_or_default();
    if destinations.is_empty() || destinations.len() > 200 {
        return Err(ApiError::client(
            "InvalidParameterException",
            "Destinations must list 1 to 200 destinations.",
        ));
    }
    for d in destinations {
        match d.kind.as_str() {
            "EVENT_DATA_STORE" => {
                let parts: Vec<&str> = d.location.splitn(6, ':').collect();
                let valid = parts.len() == 6
                    && parts[0] == "arn"
                    && parts[2] == "cloudtrail"
                    && parts[4] == call.identity.account_id
                    && parts[5].strip_prefix("eventdatastore/").is_some_and(|id| !id.is_empty());
                if !valid {
                    return Err(ApiError::client(
                        "EventDataStoreARNInvalidException",
                        format!("The event data store ARN {:?} is not valid for this account.", d.location),
                    ));
                }
            }
            "AWS_SERVICE" if !d.location.is_empty() && d.location.len() <= 1024 => {}
            other => {
                return Err(ApiError::client(
                    "InvalidParameterException",
                    format!("Destination Type {other:?} with Location {:?} is not valid; Type is EVENT_DATA_STORE or AWS_SERVICE.", d.location),
                ))
            }
        }
    }
    Ok(Value::Array(
        destinations
            .iter()
            .map(|d| json!({"Type": d.kind, "Location": d.location}))
            .collect(),
    ))
}

/// `arn:aws:cloudtrail:<region>:<account>:channel/<id>`.
pub fn arn(account: &str, region: &str, id: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:channel/{id}")
}

/// Resolves a `Channel` parameter (an ARN or the channel's id) to its metadata key.
pub fn channel_key(channel: Option<&str>, account: &str, region: &str) -> Result<String, ApiError> {
    let channel = channel
        .ok_or_else(|| ApiError::client("ChannelARNInvalidException", "Channel is required."))?;
    let well_formed = (3..=256).contains(&channel.len())
        && channel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-:".contains(&b));
    if !well_formed {
        return Err(ApiError::client(
            "ChannelARNInvalidException",
            format!("{channel:?} is not a channel ARN or id."),
        ));
    }
    let id = match channel.strip_prefix("arn:") {
        None => channel,
        Some(_) => {
            let parts: Vec<&str> = channel.splitn(6, ':').collect();
            let Some(id) = parts.get(5).and_then(|r| r.strip_prefix("channel/")) else {
                return Err(ApiError::client(
                    "ChannelARNInvalidException",
                    format!("{channel} is not a channel ARN."),
                ));
            };
            if parts[1] != "aws"
                || parts[2] != "cloudtrail"
                || parts[3] != region
                || parts[4] != account
            {
                // Another region's or account's channel is not visible from here.
                return Err(not_found(channel));
            }
            id
        }
    };
    Ok(format!("channels/{account}/{region}/{id}"))
}

fn not_found(channel: &str) -> ApiError {
    ApiError::client(
        "ChannelNotFoundException",
        format!("Channel {channel} was not found."),
    )
}

fn public(channel: &Value) -> Value {
    let mut out = channel.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("Tags");
    }
    out
}

pub async fn create(call: &Call<'_>, input: CreateInput) -> Result<Outcome, ApiError> {
    let name = validate_name(input.name.as_deref())?.to_owned();
    let source = input.source.as_deref().unwrap_or_default();
    if source.is_empty() || source.len() > 256 {
        return Err(ApiError::client(
            "InvalidSourceException",
            "Source is required: Custom, or a partner's source name.",
        ));
    }
    let destinations = validate_destinations(input.destinations.as_deref(), call)?;
    let tags = tags::initial(input.tags.as_deref().unwrap_or_default())?;
    let id = uuid::Uuid::new_v4().to_string();
    let arn = arn(&call.identity.account_id, call.region, &id);
    let channel = json!({
        "ChannelArn": arn, "Name": name, "Source": source, "Destinations": destinations, "Tags": tags,
    });
    let prefix = prefix(call);
    // The change is recorded inside the update that makes it (see `audit.rs`).
    tokio::task::block_in_place(|| {
        call.app.meta.update(|entries| {
            let existing: Vec<&Value> = under(entries, &prefix).map(|(_, v)| v).collect();
            if existing.iter().any(|c| c["Name"] == name.as_str()) {
                return Err(ApiError::client(
                    "ChannelAlreadyExistsException",
                    format!("A channel named {name} already exists."),
                ));
            }
            if existing.len() >= MAX_CHANNELS {
                return Err(ApiError::client(
                    "ChannelMaxLimitExceededException",
                    format!("An account has at most {MAX_CHANNELS} channels in a region."),
                ));
            }
            call.recorder.record_blocking(&channel, Vec::new())?;
            Ok((
                vec![Change::Put(format!("{prefix}{id}"), channel.clone())],
                (),
            ))
        })
    })?;
    Ok(Outcome::recorded(channel))
}

pub async fn get(call: &Call<'_>, input: ChannelInput) -> Result<Outcome, ApiError> {
    let key = channel_key(
        input.channel.as_deref(),
        &call.identity.account_id,
        call.region,
    )?;
    let channel = call
        .app
        .meta
        .get(&key)
        .ok_or_else(|| not_found(input.channel.as_deref().unwrap_or_default()))?;
    let mut out = public(&channel);
    out["SourceConfig"] = json!({"ApplyToAllRegions": false, "AdvancedEventSelectors": []});
    out["IngestionStatus"] = call.app.ingestion.status(&key);
    Ok(Outcome::of(out))
}

pub async fn list(call: &Call<'_>, input: ListInput) -> Result<Outcome, ApiError> {
    let max = input.max_results.unwrap_or(1000);
    if !(1..=1000).contains(&max) {
        return Err(ApiError::client(
            "InvalidParameterException",
            "MaxResults must be between 1 and 1000.",
        ));
    }
    let listing = Listing::open(
        call,
        format!("ListChannels\n{}", prefix(call)),
        input.next_token.as_deref(),
        max as usize,
        || ApiError::client("InvalidNextTokenException", "The NextToken is not valid."),
    )?;
    let (page, next) = listing.page(call, call.app.meta.scan(&prefix(call)));
    let page: Vec<Value> = page
        .iter()
        .map(|(_, c)| json!({"ChannelArn": c["ChannelArn"], "Name": c["Name"]}))
        .collect();
    let mut out = json!({ "Channels": page });
    if let Some(token) = next {
        out["NextToken"] = json!(token);
    }
    Ok(Outcome::of(out))
}

pub async fn update(call: &Call<'_>, input: UpdateInput) -> Result<Outcome, ApiError> {
    let key = channel_key(
        input.channel.as_deref(),
        &call.identity.account_id,
        call.region,
    )?;
    let name = match input.name.as_deref() {
        Some(name) => Some(validate_name(Some(name))?.to_owned()),
        None => None,
    };
    let destinations = match input.destinations.as_deref() {
        Some(d) => Some(validate_destinations(Some(d), call)?),
        None => None,
    };
    let prefix = prefix(call);
    let channel_name = input.channel.clone().unwrap_or_default();
    let updated = tokio::task::block_in_place(|| {
        call.app.meta.update(|entries| {
            let mut channel = entries
                .get(&key)
                .cloned()
                .ok_or_else(|| not_found(&channel_name))?;
            if let Some(name) = &name {
                let taken =
                    under(entries, &prefix).any(|(k, c)| *k != key && c["Name"] == name.as_str());
                if taken {
                    return Err(ApiError::client(
                        "ChannelAlreadyExistsException",
                        format!("A channel named {name} already exists."),
                    ));
                }
                channel["Name"] = json!(name);
            }
            if let Some(destinations) = &destinations {
                channel["Destinations"] = destinations.clone();
            }
            let response = public(&channel);
            call.recorder.record_blocking(&response, Vec::new())?;
            Ok((vec![Change::Put(key.clone(), channel)], response))
        })
    })?;
    Ok(Outcome::recorded(updated))
}

pub async fn delete(call: &Call<'_>, input: ChannelInput) -> Result<Outcome, ApiError> {
    let key = channel_key(
        input.channel.as_deref(),
        &call.identity.account_id,
        call.region,
    )?;
    let channel_name = input.channel.clone().unwrap_or_default();
    let response = json!({});
    tokio::task::block_in_place(|| {
        call.app.meta.update(|entries| {
            if !entries.contains_key(&key) {
                return Err(not_found(&channel_name));
            }
            call.recorder.record_blocking(&response, Vec::new())?;
            Ok((vec![Change::Delete(key.clone())], ()))
        })
    })?;
    call.app.ingestion.forget(&key);
    Ok(Outcome::recorded(response))
}

/// What GetChannel reports under IngestionStatus: the latest PutAuditEvents attempt and
/// success per channel, kept in memory (it is informational, and restarts clear it).
#[derive(Default)]
pub struct IngestionTracker {
    channels: std::sync::Mutex<std::collections::HashMap<String, Value>>,
}

impl IngestionTracker {
    pub fn status(&self, key: &str) -> Value {
        self.channels
            .lock()
            .expect("ingestion lock")
            .get(key)
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    /// Notes one PutAuditEvents call: its time, the last event it stored (if any), and
    /// the error code of its last failure (if any).
    pub fn note(
        &self,
        key: &str,
        now: i64,
        stored: Option<&str>,
        attempted: Option<&str>,
        error: Option<&str>,
    ) {
        let mut channels = self.channels.lock().expect("ingestion lock");
        let status = channels.entry(key.to_owned()).or_insert_with(|| json!({}));
        status["LatestIngestionAttemptTime"] = json!(now);
        if let Some(id) = attempted {
            status["LatestIngestionAttemptEventID"] = json!(id);
        }
        if let Some(id) = stored {
            status["LatestIngestionSuccessTime"] = json!(now);
            status["LatestIngestionSuccessEventID"] = json!(id);
        }
        if let Some(code) = error {
            status["LatestIngestionErrorCode"] = json!(code);
        }
    }

    pub fn forget(&self, key: &str) {
        self.channels.lock().expect("ingestion lock").remove(key);
    }
}
