//! AddTags, RemoveTags and ListTags, for trails and channels.

use std::collections::BTreeMap;

use cairn_store::Change;
use serde::Deserialize;
use serde_json::{json, Value};

use super::channels::channel_key;
use super::trails::viewer;
use super::{Call, Outcome};
use crate::api::ApiError;
use crate::tags::{self, Tag};
use crate::trails::{shadow_error, Access, Trail};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeInput {
    pub resource_id: Option<String>,
    pub tags_list: Option<Vec<Tag>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    pub resource_id_list: Option<Vec<String>>,
    pub next_token: Option<String>,
}

/// ARNs per ListTags call.
const MAX_LIST: usize = 20;

/// A taggable resource, found: where it is kept, its document, and how the caller sees it.
struct Found {
    key: String,
    document: Value,
    kind: Kind,
}

enum Kind {
    Trail(Box<Trail>, Access),
    Channel,
}

fn find(
    call: &Call<'_>,
    entries: &BTreeMap<String, Value>,
    resource: &str,
) -> Result<Found, ApiError> {
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "cloudtrail" {
        return Err(ApiError::client(
            "CloudTrailARNInvalidException",
            format!("{resource} is not a CloudTrail resource ARN."),
        ));
    }
    let kind = parts[5].split('/').next().unwrap_or_default();
    match kind {
        "trail" => {
            // The tagging operations report a missing trail as a missing resource.
            let (trail, access) =
                viewer(call)
                    .find(entries, Some(resource))
                    .map_err(|e| match e.code {
                        "TrailNotFoundException" => ApiError::client(
                            "ResourceNotFoundException",
                            format!("Resource {resource} was not found."),
                        ),
                        _ => e,
                    })?;
            Ok(Found {
                key: trail.key(),
                document: trail.to_value(),
                kind: Kind::Trail(Box::new(trail), access),
            })
        }
        "channel" => {
            let key = channel_key(Some(resource), &call.identity.account_id, call.region)?;
            let document = entries.get(&key).cloned().ok_or_else(|| {
                ApiError::client(
                    "ChannelNotFoundException",
                    format!("Channel {resource} was not found."),
                )
            })?;
            Ok(Found {
                key,
                document,
                kind: Kind::Channel,
            })
        }
        "eventdatastore" | "dashboard" => Err(ApiError::client(
            "ResourceNotFoundException",
            format!("{resource} was not found: Cairn keeps no {kind}s."),
        )),
        _ => Err(ApiError::client(
            "ResourceTypeNotSupportedException",
            format!(
                "{resource}: only trails, event data stores, dashboards and channels carry tags."
            ),
        )),
    }
}

impl Found {
    fn tags(&self) -> Vec<Tag> {
        match &self.kind {
            Kind::Trail(trail, _) => trail.tags.clone(),
            Kind::Channel => {
                serde_json::from_value(self.document["Tags"].clone()).unwrap_or_default()
            }
        }
    }

    fn with_tags(mut self, tags: Vec<Tag>) -> Value {
        match &mut self.kind {
            Kind::Trail(trail, _) => {
                trail.tags = tags;
                trail.to_value()
            }
            Kind::Channel => {
                self.document["Tags"] = json!(tags);
                self.document
            }
        }
    }
}

async fn change(
    call: &Call<'_>,
    input: ChangeInput,
    edit: fn(&mut Vec<Tag>, &[Tag]) -> Result<(), ApiError>,
) -> Result<Outcome, ApiError> {
    let resource = input
        .resource_id
        .ok_or_else(|| ApiError::client("ResourceNotFoundException", "ResourceId is required."))?;
    let given = input.tags_list.unwrap_or_default();
    let response = json!({});
    tokio::task::block_in_place(|| {
        call.app.meta.update(|entries| {
            let found = find(call, entries, &resource)?;
            if let Kind::Trail(trail, Access::Shadow) = &found.kind {
                return Err(if trail.account == call.identity.account_id {
                    // As AWS answers a trail ARN of another region here.
                    ApiError::client(
                        "CloudTrailARNInvalidException",
                        format!(
                            "Region in ARN is wrong, you can only access resources in region {}.",
                            call.region
                        ),
                    )
                } else {
                    shadow_error(trail, &call.identity.account_id)
                });
            }
            let mut tags = found.tags();
            edit(&mut tags, &given)?;
            call.recorder.record_blocking(&response, Vec::new())?;
            let key = found.key.clone();
            Ok::<_, ApiError>((vec![Change::Put(key, found.with_tags(tags))], ()))
        })
    })?;
    Ok(Outcome::recorded(response))
}

pub async fn add(call: &Call<'_>, input: ChangeInput) -> Result<Outcome, ApiError> {
    change(call, input, tags::add).await
}

pub async fn remove(call: &Call<'_>, input: ChangeInput) -> Result<Outcome, ApiError> {
    change(call, input, tags::remove).await
}

pub async fn list(call: &Call<'_>, input: ListInput) -> Result<Outcome, ApiError> {
    if input.next_token.is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::client(
            "InvalidTokenException",
            "This NextToken was not issued by ListTags.",
        ));
    }
    let resources = input.resource_id_list.unwrap_or_default();
    if resources.is_empty() || resources.len() > MAX_LIST {
        return Err(ApiError::client(
            "InvalidParameterException",
            format!("ResourceIdList names 1 to {MAX_LIST} resources."),
        ));
    }
    let list = call.app.meta.read(|entries| {
        resources
            .iter()
            .map(|resource| {
                let found = find(call, entries, resource)?;
                Ok(json!({"ResourceId": resource, "TagsList": found.tags()}))
            })
            .collect::<Result<Vec<Value>, ApiError>>()
    })?;
    Ok(Outcome::of(json!({ "ResourceTagList": list })))
}
