//! Signing requests to a CloudTrail endpoint (Cairn's, or AWS's) with SigV4, for the
//! commands that call the API.

use anyhow::Context;
use cairn_server::sigv4::{self, SignedRequest};

/// An access key and its secret.
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Credentials {
    /// From `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub fn from_env() -> anyhow::Result<Credentials> {
        let get = |name: &str| {
            std::env::var(name)
                .with_context(|| format!("{name} is not set: the API needs credentials"))
        };
        Ok(Credentials {
            access_key_id: get("AWS_ACCESS_KEY_ID")?,
            secret_access_key: get("AWS_SECRET_ACCESS_KEY")?,
        })
    }
}

/// `(X-Amz-Date, Authorization)` for a POST of `body` to `host` + `path` + `?query` (as
/// sent, percent-encoded; empty for none), signed now for `service` (`cloudtrail`, `logs`,
/// `cloudtrail-data`).
pub fn authorization(
    credentials: &Credentials,
    service: &str,
    region: &str,
    host: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> (String, String) {
    let amz_date = cairn_core::timefmt::format_compact(crate::now());
    let request = SignedRequest {
        method: "POST",
        path,
        query,
        headers: vec![("host", host), ("x-amz-date", &amz_date)],
        body,
    };
    let header = sigv4::authorization_header(
        &request,
        &credentials.access_key_id,
        &credentials.secret_access_key,
        region,
        service,
        &amz_date,
    );
    (amz_date, header)
}

/// The `Host` header a request to `url` is signed with: the host, and the port if given.
pub fn host_of(url: &reqwest::Url) -> String {
    match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    }
}

/// Calls a CloudTrail operation; an AWS error answer becomes an error naming its code.
pub async fn call(
    endpoint: &str,
    region: &str,
    credentials: &Credentials,
    operation: &str,
    input: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let url: reqwest::Url = endpoint
        .parse()
        .with_context(|| format!("{endpoint:?} is not a URL"))?;
    let host = host_of(&url);
    let body = serde_json::to_vec(input)?;
    let (amz_date, authorization) =
        authorization(credentials, "cloudtrail", region, &host, "/", "", &body);
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("CloudTrail_20131101.{operation}"))
        .header("x-amz-date", amz_date)
        .header("authorization", authorization)
        .body(body)
        .send()
        .await
        .with_context(|| format!("calling {operation} at {endpoint}"))?;
    let status = response.status();
    let bytes = response.bytes().await?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!(
            "{operation} failed: {} {}",
            value["__type"].as_str().unwrap_or(status.as_str()),
            value["Message"]
                .as_str()
                .or(value["message"].as_str())
                .unwrap_or_default()
        );
    }
    Ok(value)
}
