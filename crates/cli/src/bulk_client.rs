//! Sending CloudTrail records to a running `cairn serve`'s bulk endpoint (`POST /records`,
//! a log file's `{"Records":[…]}` signed with SigV4), for `cairn import --endpoint-url`.
//! Requests the server throttles, or that find it unreachable, are sent again with backoff.

use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::api_client::{authorization, Credentials};

/// At most this many records, and about this many bytes, per request (the server takes up
/// to 10,000 records and 8 MiB by default).
const RECORDS_PER_REQUEST: usize = 1000;
const BYTES_PER_REQUEST: usize = 4 << 20;
/// Backoff between tries of a request the server throttled or did not answer.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const TRIES: u32 = 30;
/// The region requests are signed for: the records carry their own.
const SIGNING_REGION: &str = "us-east-1";

pub struct BulkClient {
    url: reqwest::Url,
    host: String,
    credentials: Credentials,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// What the server did with the records sent.
#[derive(Default)]
pub struct Sent {
    pub stored: u64,
    pub duplicates: u64,
    /// (error code, message naming the record) of each record refused.
    pub refused: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Answer {
    successful: Vec<Success>,
    failed: Vec<Failure>,
}

#[derive(Deserialize)]
struct Success {
    #[serde(default)]
    duplicate: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Failure {
    #[serde(rename = "eventID", default)]
    event_id: Option<String>,
    error_code: String,
    error_message: String,
}

impl BulkClient {
    /// A client of the server at `endpoint` (`http://127.0.0.1:9450`), signing with
    /// `credentials`.
    pub fn new(endpoint: &str, credentials: Credentials) -> anyhow::Result<BulkClient> {
        let url: reqwest::Url = format!("{}/records", endpoint.trim_end_matches('/'))
            .parse()
            .with_context(|| format!("{endpoint:?} is not a URL"))?;
        Ok(BulkClient {
            host: crate::api_client::host_of(&url),
            url,
            credentials,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    /// Sends `records` (each a JSON object's text), in requests of a bounded size.
    pub fn send(&self, records: &[&[u8]]) -> anyhow::Result<Sent> {
        let mut sent = Sent::default();
        let mut start = 0;
        while start < records.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < records.len()
                && end - start < RECORDS_PER_REQUEST
                && (end == start || bytes + records[end].len() < BYTES_PER_REQUEST)
            {
                bytes += records[end].len() + 1;
                end += 1;
            }
            self.send_one(&records[start..end], &mut sent)?;
            start = end;
        }
        Ok(sent)
    }

    fn send_one(&self, records: &[&[u8]], sent: &mut Sent) -> anyhow::Result<()> {
        let mut body = Vec::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 16);
        body.extend_from_slice(br#"{"Records":["#);
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(record);
        }
        body.extend_from_slice(b"]}");
        let answer = self.runtime.block_on(self.post(&body))?;
        for success in answer.successful {
            if success.duplicate {
                sent.duplicates += 1;
            } else {
                sent.stored += 1;
            }
        }
        for failure in answer.failed {
            let which = failure.event_id.unwrap_or_else(|| "a record".to_owned());
            let message = format!("{which}: {}", failure.error_message);
            sent.refused.push((failure.error_code, message));
        }
        Ok(())
    }

    /// POSTs one body until the server answers it, backing off while it throttles or
    /// cannot be reached; an error answer other than those ends the import.
    async fn post(&self, body: &[u8]) -> anyhow::Result<Answer> {
        let mut backoff = FIRST_BACKOFF;
        let mut last_problem = String::new();
        for _ in 0..TRIES {
            let (amz_date, authorization) = authorization(
                &self.credentials,
                "cloudtrail",
                SIGNING_REGION,
                &self.host,
                "/records",
                "",
                body,
            );
            let response = self
                .client
                .post(self.url.clone())
                .header("content-type", "application/json")
                .header("x-amz-date", amz_date)
                .header("authorization", authorization)
                .body(body.to_vec())
                .send()
                .await;
            match response {
                Ok(response) if response.status().is_success() => {
                    let bytes = response.bytes().await?;
                    return serde_json::from_slice(&bytes)
                        .context("the server's answer is not a bulk endpoint's");
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status != reqwest::StatusCode::TOO_MANY_REQUESTS
                        && status != reqwest::StatusCode::SERVICE_UNAVAILABLE
                    {
                        bail!("the server refused the records: {status} {text}");
                    }
                    last_problem = format!("{status} {text}");
                }
                Err(error) => last_problem = error.to_string(),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        bail!("the server did not take the records after {TRIES} tries: {last_problem}")
    }
}
