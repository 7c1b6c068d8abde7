//! What the fuzz targets share: a Cairn service running in-process on a scratch data
//! directory, called with requests signed as a real client signs them, and the rule every
//! answer must keep.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{Request, StatusCode};
use cairn_server::app::App;
use cairn_server::config::{AccountConfig, UserConfig};
use cairn_server::sigv4::{self, SignedRequest};
use cairn_server::Config;
use http_body_util::BodyExt;

pub const ACCOUNT: &str = "111111111111";
const ACCESS_KEY: &str = "AKIAFUZZER0000000001";
const SECRET: &str = "fuzzer-secret-key-0000000000000000000001";
pub const REGION: &str = "us-east-1";

/// A service with one account and user, a local bucket, and a channel for PutAuditEvents.
pub struct Served {
    runtime: tokio::runtime::Runtime,
    app: Arc<App>,
    /// PutAuditEvents' query string, naming the channel.
    pub audit_query: String,
}

/// Where scratch directories go: memory where there is some, so that every fsync is cheap.
fn scratch_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// A scratch directory, removed when dropped.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(scratch_root()).expect("a temporary directory")
}

/// The served data directory of this process. libFuzzer ends the process without running
/// destructors, so each run removes those its predecessors left instead.
fn served_dir() -> PathBuf {
    const PREFIX: &str = "cairn-fuzz-";
    let root = scratch_root();
    for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(PREFIX));
        if pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = root.join(format!("{PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the data directory");
    dir
}

/// The service, started on first use and kept for the whole fuzzing run.
pub fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(Served::start)
}

impl Served {
    fn start() -> Served {
        let user = UserConfig {
            name: "fuzzer".into(),
            root: false,
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: Some(SECRET.into()),
            secret_access_key_file: None,
            policy: None,
            policy_file: None,
        };
        let settings = Config {
            data_dir: served_dir(),
            listen: "127.0.0.1:0".into(),
            buckets: vec!["fuzz-bucket".into()],
            accounts: vec![AccountConfig {
                id: ACCOUNT.into(),
                users: vec![user],
                write_records_for: Vec::new(),
            }],
            ..Config::default()
        }
        .settle()
        .expect("the fuzz config is valid");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let server = runtime
            .block_on(cairn_server::Server::start(settings))
            .expect("the service starts");
        let app = server.app();
        // Its background work (delivery, log groups, Insights) runs as in production and
        // lets the journal be released.
        runtime.spawn(server.run(std::future::pending()));
        let mut served = Served {
            runtime,
            app,
            audit_query: String::new(),
        };
        let create = serde_json::json!({
            "Name": "fuzz",
            "Source": "Custom",
            "Destinations": [{
                "Type": "EVENT_DATA_STORE",
                "Location": format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:eventdatastore/fuzz"),
            }],
        });
        let (status, body) = served.call(
            "CloudTrail_20131101.CreateChannel",
            create.to_string().as_bytes(),
        );
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let channel: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let arn = channel["ChannelArn"].as_str().expect("a channel ARN");
        served.audit_query = format!("channelArn={}", sigv4::encode(arn));
        served
    }

    /// Calls a JSON 1.1 operation (`X-Amz-Target`) with `body`.
    pub fn call(&self, target: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
        let service = cairn_server::api::signing_name(target);
        self.send(service, "/", "", Some(target), body)
    }

    /// Sends a signed POST of `body` to `path?query`, signed for `service`.
    pub fn send(
        &self,
        service: &str,
        path: &str,
        query: &str,
        target: Option<&str>,
        body: &[u8],
    ) -> (StatusCode, Vec<u8>) {
        let now = cairn_server::app::now();
        let amz_date = cairn_core::timefmt::format_compact(now);
        let mut headers = vec![
            ("host", "localhost".to_owned()),
            ("content-type", "application/x-amz-json-1.1".to_owned()),
            ("x-amz-date", amz_date.clone()),
        ];
        if let Some(target) = target {
            headers.push(("x-amz-target", target.to_owned()));
        }
        let signed = SignedRequest {
            method: "POST",
            path,
            query,
            headers: headers.iter().map(|(n, v)| (*n, v.as_str())).collect(),
            body,
        };
        let authorization =
            sigv4::authorization_header(&signed, ACCESS_KEY, SECRET, REGION, service, &amz_date);
        let uri = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let mut request = Request::post(uri).header("authorization", authorization);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(Body::from(body.to_vec()))
            .expect("a well-formed request");
        let app = self.app.clone();
        self.runtime.block_on(async move {
            let peer = "127.0.0.1:1".parse().expect("an address");
            let response = cairn_server::app::handle(State(app), ConnectInfo(peer), request).await;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("the body is in memory")
                .to_bytes()
                .to_vec();
            (status, body)
        })
    }
}

/// The rule for every answer, whatever was asked: never a server error, and a body in
/// AWS's shape — a JSON object, with `__type` and a message when the call failed.
pub fn assert_well_formed(status: StatusCode, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    assert!(
        !status.is_server_error(),
        "answered {status} with a server error: {text}"
    );
    let value: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("answered {status} with a body that is not JSON ({e}): {text}"));
    assert!(value.is_object(), "answered {status} with {text}");
    if !status.is_success() {
        assert!(
            value["__type"].is_string(),
            "an error without __type: {text}"
        );
        let message = value.get("Message").or_else(|| value.get("message"));
        assert!(
            message.is_some_and(serde_json::Value::is_string),
            "an error without a message: {text}"
        );
    }
}
