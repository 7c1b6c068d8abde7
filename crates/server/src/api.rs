//! AWS JSON 1.1: the operation named by `X-Amz-Target`, and the one place that turns a
//! failure into AWS's error shape `{"__type": …, "Message": …}` with its HTTP status.

use axum::http::StatusCode;

/// The `X-Amz-Target` prefix of CloudTrail's API.
pub const CLOUDTRAIL_TARGET: &str = "CloudTrail_20131101";
const CLOUDTRAIL_NAMESPACE: &str = "com.amazonaws.cloudtrail.v20131101.";

/// Every operation in CloudTrail's API (2013-11-01), so that a call to one Cairn does not
/// implement yet is recorded under its real name and answered `UnknownOperationException`.
pub const CLOUDTRAIL_OPERATIONS: &[&str] = &[
    "AddTags",
    "CancelQuery",
    "CreateChannel",
    "CreateDashboard",
    "CreateEventDataStore",
    "CreateTrail",
    "DeleteChannel",
    "DeleteDashboard",
    "DeleteEventDataStore",
    "DeleteResourcePolicy",
    "DeleteTrail",
    "DeregisterOrganizationDelegatedAdmin",
    "DescribeQuery",
    "DescribeTrails",
    "DisableFederation",
    "EnableFederation",
    "GenerateQuery",
    "GetChannel",
    "GetDashboard",
    "GetEventConfiguration",
    "GetEventDataStore",
    "GetEventSelectors",
    "GetImport",
    "GetInsightSelectors",
    "GetQueryResults",
    "GetResourcePolicy",
    "GetTrail",
    "GetTrailStatus",
    "ListChannels",
    "ListDashboards",
    "ListEventDataStores",
    "ListImportFailures",
    "ListImports",
    "ListInsightsData",
    "ListInsightsMetricData",
    "ListPublicKeys",
    "ListQueries",
    "ListTags",
    "ListTrails",
    "LookupEvents",
    "PutEventConfiguration",
    "PutEventSelectors",
    "PutInsightSelectors",
    "PutResourcePolicy",
    "RegisterOrganizationDelegatedAdmin",
    "RemoveTags",
    "RestoreEventDataStore",
    "SearchSampleQueries",
    "StartDashboardRefresh",
    "StartEventDataStoreIngestion",
    "StartImport",
    "StartLogging",
    "StartQuery",
    "StopEventDataStoreIngestion",
    "StopImport",
    "StopLogging",
    "UpdateChannel",
    "UpdateDashboard",
    "UpdateEventDataStore",
    "UpdateTrail",
];

/// Read-only operations: recorded with `readOnly: true` and no `responseElements`.
pub fn is_read_only(operation: &str) -> bool {
    [
        "Describe", "Filter", "Get", "List", "Lookup", "Search", "Test",
    ]
    .iter()
    .any(|p| operation.starts_with(p))
}

/// Splits `X-Amz-Target` into (service prefix, operation). Both the full
/// `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.Op` form and the short
/// `CloudTrail_20131101.Op` form are accepted, as AWS accepts both.
pub fn parse_target(target: &str) -> Option<(&str, &str)> {
    let target = target.strip_prefix(CLOUDTRAIL_NAMESPACE).unwrap_or(target);
    target
        .split_once('.')
        .filter(|(prefix, op)| !prefix.is_empty() && !op.is_empty())
}

/// The SigV4 service name a JSON 1.1 call to `target` is signed for.
pub fn signing_name(target: &str) -> &'static str {
    match parse_target(target) {
        Some((crate::ops::logs::TARGET, _)) => "logs",
        _ => "cloudtrail",
    }
}

/// A failed request, as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    /// A modeled client error: CloudTrail's exceptions are all HTTP 400.
    pub fn client(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code,
            message: message.into(),
        }
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::client("ValidationException", message)
    }

    pub fn unknown_operation(operation: &str) -> Self {
        Self::client(
            "UnknownOperationException",
            format!("Cairn does not implement the operation {operation} yet."),
        )
    }

    /// The store could not make the audit record durable: nothing was done.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "ServiceUnavailableException",
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalFailure",
            message: message.into(),
        }
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "__type": self.code, "Message": self.message }))
            .expect("error body serializes")
    }
}

impl From<cairn_store::StoreError> for ApiError {
    fn from(error: cairn_store::StoreError) -> Self {
        use cairn_store::StoreErrorKind::*;
        match error.kind {
            DiskFull => ApiError::unavailable("Cairn cannot store events right now: its disk is full. Nothing was recorded; retry when space is freed."),
            Closed => ApiError::unavailable("Cairn is shutting down; retry shortly."),
            Io | Corrupt => {
                tracing::error!(%error, "storage error");
                ApiError::internal("Cairn could not read or write its storage; the server log has details.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_in_both_forms() {
        assert_eq!(
            parse_target("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"),
            Some(("CloudTrail_20131101", "LookupEvents"))
        );
        assert_eq!(
            parse_target("CloudTrail_20131101.LookupEvents"),
            Some(("CloudTrail_20131101", "LookupEvents"))
        );
        assert_eq!(parse_target("LookupEvents"), None);
        assert_eq!(parse_target("CloudTrail_20131101."), None);
    }

    #[test]
    fn operation_list_matches_the_botocore_model() {
        // The model ships with botocore; skip quietly where Python is absent.
        let Ok(out) = std::process::Command::new("python3")
            .args(["-c", "import botocore.session as s; print('\\n'.join(s.get_session().get_service_model('cloudtrail').operation_names))"])
            .output()
        else {
            eprintln!("skipped: no python3");
            return;
        };
        if !out.status.success() {
            eprintln!("skipped: no botocore");
            return;
        }
        let model: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        for op in &model {
            assert!(
                CLOUDTRAIL_OPERATIONS.contains(&op.as_str()),
                "{op} is in the model but not in Cairn's list"
            );
        }
        assert_eq!(model.len(), CLOUDTRAIL_OPERATIONS.len());
    }

    #[test]
    fn error_body_has_aws_shape() {
        let body = ApiError::client("TrailNotFoundException", "Unknown trail").body();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"Message":"Unknown trail","__type":"TrailNotFoundException"}"#
        );
    }
}
