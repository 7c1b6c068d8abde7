//! Authorization: the IAM action a request asks for, the resources it acts on, and whether
//! the caller's policy allows it. Authentication (SigV4) has already established who
//! calls; this decides what they may do. Everything stays inside the caller's account
//! whatever a policy says: the operations only ever see that account's resources.

use axum::http::StatusCode;
use serde_json::Value;

use crate::api::ApiError;
use crate::config::Credential;
use crate::policy::Decision;

/// What one request asks to do, as (action, resource) pairs that must all be allowed:
/// `cloudtrail:CreateTrail` on `arn:aws:cloudtrail:us-east-1:111122223333:trail/prod`. An
/// action that acts on no one resource is asked for on `*`.
pub struct Request {
    pub checks: Vec<(String, String)>,
}

impl Request {
    fn new(action: String, resources: Vec<String>) -> Request {
        Request {
            checks: resources.into_iter().map(|r| (action.clone(), r)).collect(),
        }
    }

    fn also(mut self, action: &str, resource: String) -> Request {
        self.checks.push((action.to_owned(), resource));
        self
    }
}

/// Refuses the request unless the caller may make it: users without a policy (root among
/// them: the configuration gives root none) may do everything in their account; other
/// users what their policy allows. The request is built only for a user with a policy.
/// The error has the status the operation's protocol gives it (400 for JSON 1.1, 403 for
/// REST).
pub fn authorize(
    credential: &Credential,
    request: impl FnOnce() -> Request,
    status: StatusCode,
) -> Result<(), ApiError> {
    let Some(policy) = &credential.policy else {
        return Ok(());
    };
    for (action, resource) in &request().checks {
        let because = match policy.decide(action, resource) {
            Decision::Allow => continue,
            Decision::ImplicitDeny => {
                format!("because no identity-based policy allows the {action} action")
            }
            Decision::ExplicitDeny => "with an explicit deny in an identity-based policy".into(),
        };
        return Err(ApiError {
            status,
            code: "AccessDeniedException",
            message: format!(
                "User: arn:aws:iam::{}:user/{} is not authorized to perform: {action} on resource: {resource} {because}",
                credential.account_id, credential.user_name
            ),
        });
    }
    Ok(())
}

/// The request of a CloudTrail operation (`CreateTrail`) with its JSON input.
pub fn cloudtrail(operation: &str, input: &Value, account: &str, region: &str) -> Request {
    let text = |name: &str| input.get(name).and_then(Value::as_str);
    let trail = |name: Option<&str>| match name {
        Some(name) if name.starts_with("arn:") => canonical(name),
        Some(name) => crate::trails::arn(account, region, name),
        None => "*".to_owned(),
    };
    let channel = |name: Option<&str>| match name {
        Some(name) if name.starts_with("arn:") => canonical(name),
        Some(id) => crate::ops::channels::arn(account, region, id),
        None => "*".to_owned(),
    };
    let has = |name: &str| input.get(name).is_some_and(|v| !v.is_null());
    let action = format!("cloudtrail:{operation}");
    let resources = match operation {
        // Tags given at creation also need AddTags, as on AWS.
        "CreateTrail" if has("TagsList") => {
            return Request::new(action, vec![trail(text("Name"))])
                .also("cloudtrail:AddTags", trail(text("Name")))
        }
        "CreateChannel" => {
            let channels = format!("arn:aws:cloudtrail:{region}:{account}:channel/*");
            let mut resources = vec![channels.clone()];
            resources.extend(destinations(input));
            let request = Request::new(action, resources);
            return if has("Tags") {
                request.also("cloudtrail:AddTags", channels)
            } else {
                request
            };
        }
        // AWS authorizes this as LookupEvents, and ListInsightsData on a trail it names.
        "ListInsightsMetricData" => {
            let request = Request::new("cloudtrail:LookupEvents".into(), vec!["*".into()]);
            return match text("TrailName") {
                Some(name) => request.also("cloudtrail:ListInsightsData", trail(Some(name))),
                None => request,
            };
        }
        "CreateTrail" | "UpdateTrail" | "DeleteTrail" | "GetTrail" | "GetTrailStatus"
        | "StartLogging" | "StopLogging" => vec![trail(text("Name"))],
        "PutEventSelectors" | "GetEventSelectors" => vec![trail(text("TrailName"))],
        "PutInsightSelectors" | "GetInsightSelectors" => match text("EventDataStore") {
            Some(store) if text("TrailName").is_none() => vec![store.to_owned()],
            _ => vec![trail(text("TrailName"))],
        },
        "AddTags" | "RemoveTags" => vec![text("ResourceId").map_or("*".into(), canonical)],
        "ListTags" => match input.get("ResourceIdList").and_then(Value::as_array) {
            Some(ids) if !ids.is_empty() => ids
                .iter()
                .map(|id| id.as_str().map_or("*".into(), canonical))
                .collect(),
            _ => vec!["*".to_owned()],
        },
        // New destinations need the same permission as at creation.
        "UpdateChannel" => {
            let mut resources = vec![channel(text("Channel"))];
            resources.extend(destinations(input));
            resources
        }
        "GetChannel" | "DeleteChannel" => vec![channel(text("Channel"))],
        _ => vec!["*".to_owned()],
    };
    Request::new(action, resources)
}

/// The event data stores a new channel names as destinations.
fn destinations(input: &Value) -> Vec<String> {
    input
        .get("Destinations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| d.get("Type").and_then(Value::as_str) == Some("EVENT_DATA_STORE"))
        .filter_map(|d| d.get("Location").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The request of a CloudWatch Logs operation with its JSON input.
pub fn logs(operation: &str, input: &Value, account: &str, region: &str) -> Request {
    let text = |name: &str| input.get(name).and_then(Value::as_str);
    let group_arn = |name: &str| crate::loggroups::group_arn(account, region, name);
    // A group named by ARN is authorized as that ARN, without the `:*` some callers add.
    let group = match (text("logGroupName"), text("logGroupIdentifier")) {
        (Some(name), _) => Some(group_arn(name)),
        (None, Some(arn)) if arn.starts_with("arn:") => Some(canonical(arn)),
        (None, Some(name)) => Some(group_arn(name)),
        (None, None) => None,
    };
    let resource = match operation {
        "DescribeLogGroups" | "TestMetricFilter" => "*".to_owned(),
        "GetLogEvents" => match (&group, text("logStreamName")) {
            (Some(group), Some(stream)) => format!("{group}:log-stream:{stream}"),
            (Some(group), None) => group.clone(),
            (None, _) => "*".to_owned(),
        },
        _ => group.unwrap_or_else(|| "*".to_owned()),
    };
    Request::new(format!("logs:{operation}"), vec![resource])
}

/// `cloudtrail-data:PutAuditEvents` into the channel the query names.
pub fn put_audit_events(channel_arn: Option<&str>) -> Request {
    Request::new(
        "cloudtrail-data:PutAuditEvents".into(),
        vec![channel_arn.map_or("*".into(), canonical)],
    )
}

/// A resource ARN in the one spelling policies are written against: a log group without
/// the `:*` some callers add, so that naming a resource another way cannot step around a
/// statement about it. (Trail and channel ARNs have one spelling the operations accept.)
/// ARNs the operations would refuse stay as given; those requests fail whatever their
/// policy says.
fn canonical(arn: &str) -> String {
    match crate::loggroups::parse_group_arn(arn) {
        Some((region, account, name)) => crate::loggroups::group_arn(account, region, name),
        None => arn.to_owned(),
    }
}

/// Records sent to the bulk endpoint (Cairn's own action; `cloudtrail:*` includes it).
pub fn put_records() -> Request {
    Request::new("cloudtrail:PutRecords".into(), vec!["*".into()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use serde_json::json;
    use std::sync::Arc;

    const A: &str = "111122223333";
    const R: &str = "eu-west-1";

    fn user(policy: Option<&str>) -> Credential {
        Credential {
            account_id: A.into(),
            user_name: "alice".into(),
            root: false,
            access_key_id: "AKIAALICE0000000".into(),
            secret_access_key: "secret-secret-secret".into(),
            write_records_for: Vec::new(),
            policy: policy.map(|p| Arc::new(Policy::parse(p).expect("a valid policy"))),
        }
    }

    #[test]
    fn requests_name_the_resources_they_act_on() {
        let pairs = |request: Request| request.checks;
        let pair = |a: &str, r: &str| (a.to_owned(), r.to_owned());
        assert_eq!(
            pairs(cloudtrail("StopLogging", &json!({"Name": "prod"}), A, R)),
            [pair(
                "cloudtrail:StopLogging",
                "arn:aws:cloudtrail:eu-west-1:111122223333:trail/prod"
            )]
        );
        assert_eq!(
            pairs(cloudtrail(
                "CreateChannel",
                &json!({"Destinations": [{"Type": "EVENT_DATA_STORE", "Location": "arn:eds"}], "Tags": []}),
                A,
                R
            )),
            [
                pair(
                    "cloudtrail:CreateChannel",
                    "arn:aws:cloudtrail:eu-west-1:111122223333:channel/*"
                ),
                pair("cloudtrail:CreateChannel", "arn:eds"),
                pair(
                    "cloudtrail:AddTags",
                    "arn:aws:cloudtrail:eu-west-1:111122223333:channel/*"
                ),
            ]
        );
        assert_eq!(
            pairs(cloudtrail("ListInsightsMetricData", &json!({}), A, R)),
            [pair("cloudtrail:LookupEvents", "*")]
        );
        let tags = cloudtrail(
            "ListTags",
            &json!({"ResourceIdList": ["arn:x:1", "arn:x:2"]}),
            A,
            R,
        );
        assert_eq!(
            pairs(tags),
            [
                pair("cloudtrail:ListTags", "arn:x:1"),
                pair("cloudtrail:ListTags", "arn:x:2")
            ]
        );
        let group = logs(
            "FilterLogEvents",
            &json!({"logGroupIdentifier": "arn:aws:logs:eu-west-1:111122223333:log-group:app:*"}),
            A,
            R,
        );
        assert_eq!(
            pairs(group),
            [pair(
                "logs:FilterLogEvents",
                "arn:aws:logs:eu-west-1:111122223333:log-group:app"
            )]
        );
        let stream = logs(
            "GetLogEvents",
            &json!({"logGroupName": "app", "logStreamName": "s"}),
            A,
            R,
        );
        assert_eq!(
            pairs(stream),
            [pair(
                "logs:GetLogEvents",
                "arn:aws:logs:eu-west-1:111122223333:log-group:app:log-stream:s"
            )]
        );
    }

    #[test]
    fn denials_say_who_what_where_and_why() {
        let reader = user(Some(
            r#"{"Statement":[{"Effect":"Allow","Action":["cloudtrail:Get*","cloudtrail:LookupEvents"],"Resource":"*"},
                             {"Effect":"Deny","Action":"cloudtrail:GetTrail","Resource":"arn:aws:cloudtrail:*:*:trail/secret"}]}"#,
        ));
        assert!(authorize(
            &reader,
            || cloudtrail("LookupEvents", &json!({}), A, R),
            StatusCode::BAD_REQUEST
        )
        .is_ok());
        let error = authorize(
            &reader,
            || cloudtrail("DeleteTrail", &json!({"Name": "prod"}), A, R),
            StatusCode::BAD_REQUEST,
        )
        .expect_err("refused");
        assert_eq!(error.code, "AccessDeniedException");
        assert_eq!(
            error.message,
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: cloudtrail:DeleteTrail on resource: arn:aws:cloudtrail:eu-west-1:111122223333:trail/prod because no identity-based policy allows the cloudtrail:DeleteTrail action"
        );
        let error = authorize(
            &reader,
            || cloudtrail("GetTrail", &json!({"Name": "secret"}), A, R),
            StatusCode::BAD_REQUEST,
        )
        .expect_err("refused");
        assert!(error
            .message
            .ends_with("with an explicit deny in an identity-based policy"));
        assert!(authorize(&user(None), put_records, StatusCode::FORBIDDEN).is_ok());
    }
}
