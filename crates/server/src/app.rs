//! The HTTP front: read a bounded body, authenticate, dispatch, record the call, answer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::Response;
use cairn_core::{Identity, IdentityKind};
use cairn_store::Store;
use serde_json::Value;

use crate::api::{self, ApiError, CLOUDTRAIL_OPERATIONS, CLOUDTRAIL_TARGET};
use crate::audit::{lower_camel, Recorder};
use crate::authz;
use crate::config::{Credential, Settings};
use crate::ops::{self, Call};
use crate::sigv4::{self, AuthError, SignedRequest};
use crate::token::TokenKey;

pub struct App {
    pub settings: Settings,
    /// The ceiling on request bodies in memory.
    pub admission: crate::admission::Admission,
    pub store: Arc<Store>,
    pub meta: cairn_store::MetaStore,
    pub tokens: TokenKey,
    pub ingestion: crate::ops::channels::IngestionTracker,
    pub buckets: crate::buckets::Buckets,
    pub delivery: crate::delivery::Delivery,
    /// Trails' events in log groups, and the metrics their filters make.
    pub log_groups: crate::loggroups::LogGroups,
    /// Live Insights detection.
    pub insights: crate::insights::Insights,
    /// Insights events to a webhook, when one is configured.
    pub insights_webhook: Option<crate::insights::webhook::Webhook>,
    /// Digest signing keys.
    pub keys: crate::keys::Keys,
    /// The HTTP client for delivery notifications.
    pub webhooks: reqwest::Client,
}

impl App {
    /// How far every consumer of the journal (delivery, log groups, Insights) has durably
    /// come: trails' logging periods and journal segments below it are no longer needed.
    pub fn journal_floor(&self) -> u64 {
        self.delivery
            .cursor()
            .min(self.log_groups.saved_cursor())
            .min(self.insights.saved_cursor())
    }

    /// POSTs a JSON `body` to a webhook; an answer other than 2xx is an error.
    pub async fn post_json(&self, url: &str, body: String) -> reqwest::Result<()> {
        self.webhooks
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?
            .error_for_status()
            .map(drop)
    }

    /// Lets the store remove journal segments below the floor.
    pub fn release_journal(&self) {
        self.store.retain_from(self.journal_floor());
    }

    fn credential(&self, access_key_id: &str) -> Option<&Credential> {
        self.settings
            .credentials
            .iter()
            .find(|c| c.access_key_id == access_key_id)
    }
}

/// Epoch seconds with millisecond precision, for statuses.
pub fn now_precise() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Who called, as established by SigV4.
struct Caller<'a> {
    credential: &'a Credential,
    identity: Identity,
    region: String,
    service: String,
}

fn identity_of(credential: &Credential) -> Identity {
    // A stable, IAM-looking principal id derived from the account and user.
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!(
        "{}/{}",
        credential.account_id, credential.user_name
    ));
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let suffix: String = digest
        .iter()
        .take(17)
        .map(|b| char::from(alphabet[usize::from(*b) % 32]))
        .collect();
    if credential.root {
        Identity {
            kind: IdentityKind::Root,
            account_id: credential.account_id.clone(),
            user_name: None,
            principal_id: credential.account_id.clone(),
            access_key_id: credential.access_key_id.clone(),
        }
    } else {
        Identity {
            kind: IdentityKind::IamUser,
            account_id: credential.account_id.clone(),
            user_name: Some(credential.user_name.clone()),
            principal_id: format!("AIDA{suffix}"),
            access_key_id: credential.access_key_id.clone(),
        }
    }
}

/// A request whose headers passed SigV4's checks; its signature waits for the body.
struct Signed<'a> {
    auth: sigv4::Authorization,
    credential: &'a Credential,
    /// The request as signed, still without its body.
    request: SignedRequest<'a>,
}

/// What SigV4 lets us check before the body: a parsable Authorization header, a known key,
/// a valid region and a current, well-formed date. A caller failing these takes no share
/// of the memory ceiling.
fn authenticate_headers<'a>(
    app: &'a App,
    parts: &'a axum::http::request::Parts,
    now: i64,
) -> Result<Signed<'a>, ApiError> {
    let header = parts
        .headers
        .get("authorization")
        .ok_or_else(|| auth_error(AuthError::Missing))?
        .to_str()
        .map_err(|_| {
            ApiError::forbidden(
                "IncompleteSignatureException",
                "The Authorization header is not valid text.",
            )
        })?;
    let auth = sigv4::parse_authorization(header).map_err(auth_error)?;
    let credential = app
        .credential(&auth.access_key_id)
        .ok_or_else(|| auth_error(AuthError::UnknownKey))?;
    if !crate::config::valid_region(&auth.region) {
        return Err(ApiError::forbidden(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid region, not '{}'.",
                auth.region
            ),
        ));
    }
    let request = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: parts
            .headers
            .iter()
            .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
            .collect(),
        body: &[],
    };
    sigv4::check_date(&request, &auth, now).map_err(auth_error)?;
    Ok(Signed {
        auth,
        credential,
        request,
    })
}

/// Verifies the signature over the whole request, body included.
fn authenticate<'a>(signed: Signed<'a>, body: &[u8], now: i64) -> Result<Caller<'a>, ApiError> {
    let Signed {
        auth,
        credential,
        request,
    } = signed;
    let request = SignedRequest { body, ..request };
    sigv4::verify(&request, &auth, &credential.secret_access_key, now).map_err(auth_error)?;
    Ok(Caller {
        credential,
        identity: identity_of(credential),
        region: auth.region,
        service: auth.service,
    })
}

fn auth_error(error: AuthError) -> ApiError {
    match error {
        AuthError::Missing => ApiError::forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        AuthError::Malformed(m) => ApiError::forbidden("IncompleteSignatureException", m),
        AuthError::UnknownKey => ApiError::forbidden(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        AuthError::Invalid(m) => ApiError::forbidden("InvalidSignatureException", m),
    }
}

fn json_response(status: StatusCode, body: Vec<u8>, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

fn error_response(error: &ApiError, request_id: &str) -> Response {
    let mut response = json_response(error.status, error.body(), request_id);
    if let Ok(code) = HeaderValue::from_str(error.code) {
        response.headers_mut().insert("x-amzn-errortype", code);
    }
    response
}

/// A handler's JSON response with 200, or its error in AWS's shape.
fn respond(result: Result<Value, ApiError>, request_id: &str) -> Response {
    match result {
        Ok(response) => {
            let body = serde_json::to_vec(&response).expect("responses serialize");
            json_response(StatusCode::OK, body, request_id)
        }
        Err(error) => error_response(&error, request_id),
    }
}

/// `/metrics` for Prometheus. Prometheus does not sign requests, so it is open unless a
/// bearer token is configured: it shows accounts, log group names, metric names, counts,
/// and dimension values, which come from events.
fn metrics_response(app: &App, headers: &HeaderMap) -> Response {
    if let Some(token) = &app.settings.metrics_token {
        use subtle::ConstantTimeEq;
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            let mut response = Response::new(Body::from("a bearer token is required\n"));
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer realm=\"cairn\""),
            );
            return response;
        }
    }
    let mut body = String::new();
    app.log_groups.metrics.encode_families(&mut body);
    app.insights.usage.encode_families(&mut body);
    prometheus_client::encoding::text::encode_eof(&mut body).expect("writing to a string");
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Answers a request refused before its body was read, once the body has been read and
/// dropped (none of it kept): the caller is not left writing into a connection nobody reads,
/// and can retry on it. A body that does not arrive within `timeout` closes the connection.
async fn drained(mut response: Response, mut body: Body, timeout: std::time::Duration) -> Response {
    use http_body_util::BodyExt;
    let drain = async { while let Some(Ok(_)) = body.frame().await {} };
    if tokio::time::timeout(timeout, drain).await.is_err() {
        response
            .headers_mut()
            .insert("connection", HeaderValue::from_static("close"));
    }
    response
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get("content-length")?.to_str().ok()?.parse().ok()
}

/// An authenticated request, with what its record needs besides the call itself.
struct Incoming<'a> {
    app: &'a App,
    caller: Caller<'a>,
    peer: SocketAddr,
    user_agent: Option<&'a str>,
    request_id: &'a str,
    now: i64,
}

impl Incoming<'_> {
    /// How a call to `operation` of `event_source` is recorded.
    fn recorder<'s>(
        &'s self,
        event_source: &'s str,
        operation: &'s str,
        parameters: Value,
    ) -> Recorder<'s> {
        Recorder {
            store: &self.app.store,
            identity: &self.caller.identity,
            region: &self.caller.region,
            event_source,
            operation,
            read_only: api::is_read_only(operation),
            request_parameters: parameters,
            source_ip: self.peer.ip().to_string(),
            user_agent: self.user_agent,
            request_id: self.request_id,
            now: self.now,
        }
    }

    /// For the data endpoints: unless the caller's policy allows `request`, the refusal
    /// (recorded first) to answer with. The JSON operations record a refusal with the rest
    /// of their outcomes.
    async fn authorize(
        &self,
        request: impl FnOnce() -> authz::Request,
        event_source: &str,
        operation: &str,
        parameters: impl FnOnce() -> Value,
    ) -> Result<(), Response> {
        let Err(error) = authz::authorize(self.caller.credential, request, StatusCode::FORBIDDEN)
        else {
            return Ok(());
        };
        let recorder = self.recorder(event_source, operation, parameters());
        let answer = match recorder.record(Err(&error)).await {
            Ok(()) => error,
            Err(failed_to_record) => failed_to_record,
        };
        Err(error_response(&answer, self.request_id))
    }
}

pub async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    if parts.uri.path() == "/metrics" && parts.method == axum::http::Method::GET {
        return metrics_response(&app, &parts.headers);
    }
    let limit = app.settings.max_body_bytes;
    let too_large = || ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "RequestEntityTooLargeException",
        message: format!("The request body is larger than the limit of {limit} bytes."),
    };
    let declared = content_length(&parts.headers);
    if declared.is_some_and(|len| len > limit) {
        return error_response(&too_large(), &request_id);
    }
    let timeout = std::time::Duration::from_secs(app.settings.body_timeout_secs);
    let now = now();
    let signed = match authenticate_headers(&app, &parts, now) {
        Ok(signed) => signed,
        Err(error) => return drained(error_response(&error, &request_id), body, timeout).await,
    };
    // Held until the answer is ready: bodies in memory stay under the ceiling.
    let Some(_admitted) = app.admission.admit(declared.unwrap_or(limit)) else {
        let rest = matches!(parts.uri.path(), "/PutAuditEvents" | "/records");
        let throttled = ApiError {
            status: if rest {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::BAD_REQUEST
            },
            code: "ThrottlingException",
            message: "Rate exceeded".into(),
        };
        return drained(error_response(&throttled, &request_id), body, timeout).await;
    };
    // A caller that stops sending its body gives its share back at the timeout.
    let body = match tokio::time::timeout(timeout, to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return error_response(&too_large(), &request_id),
        Err(_) => {
            let late = ApiError {
                status: StatusCode::REQUEST_TIMEOUT,
                code: "RequestTimeoutException",
                message: format!(
                    "The request body did not arrive within {} seconds.",
                    timeout.as_secs()
                ),
            };
            return error_response(&late, &request_id);
        }
    };

    let caller = match authenticate(signed, &body, now) {
        Ok(caller) => caller,
        Err(error) => return error_response(&error, &request_id),
    };
    let incoming = Incoming {
        app: &app,
        caller,
        peer,
        user_agent: parts
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok()),
        request_id: &request_id,
        now,
    };
    let caller = &incoming.caller;

    if parts.uri.path() == "/PutAuditEvents" {
        if caller.service != "cloudtrail-data" || parts.method != axum::http::Method::POST {
            let error = ApiError::forbidden(
                "InvalidSignatureException",
                "PutAuditEvents takes a POST signed for the service 'cloudtrail-data'.",
            );
            return error_response(&error, &request_id);
        }
        let query = parts.uri.query().unwrap_or("");
        let channel = crate::audit_events::query_param(query, "channelArn");
        let request = || authz::put_audit_events(channel.as_deref());
        let parameters = || serde_json::json!({ "channelArn": channel });
        let source = "cloudtrail-data.amazonaws.com";
        if let Err(refused) = incoming
            .authorize(request, source, "PutAuditEvents", parameters)
            .await
        {
            return refused;
        }
        let result = crate::audit_events::put_audit_events(
            &app,
            &caller.identity.account_id,
            &caller.region,
            channel.as_deref(),
            query,
            &body,
            now,
        )
        .await;
        return respond(result, &request_id);
    }
    if parts.uri.path() == "/records" {
        if caller.service != "cloudtrail" || parts.method != axum::http::Method::POST {
            let error = ApiError::client(
                "UnknownOperationException",
                "The bulk endpoint takes a POST signed for the service 'cloudtrail'.",
            );
            return error_response(&error, &request_id);
        }
        let source = "cloudtrail.amazonaws.com";
        if let Err(refused) = incoming
            .authorize(authz::put_records, source, "PutRecords", || Value::Null)
            .await
        {
            return refused;
        }
        let result = crate::bulk::put_records(&app, caller.credential, body, now).await;
        return respond(result, &request_id);
    }

    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // (service prefix, SigV4 service name, event source, operations served)
    let (service, operation) = match api::parse_target(target) {
        Some((CLOUDTRAIL_TARGET, op)) => (
            (
                "cloudtrail",
                "cloudtrail.amazonaws.com",
                CLOUDTRAIL_OPERATIONS,
            ),
            op.to_owned(),
        ),
        Some((ops::logs::TARGET, op)) => (
            ("logs", "logs.amazonaws.com", ops::logs::OPERATIONS),
            op.to_owned(),
        ),
        _ => {
            let error = ApiError::client(
                "UnknownOperationException",
                format!("X-Amz-Target {target:?} does not name an operation Cairn serves."),
            );
            return error_response(&error, &request_id);
        }
    };
    let (signing_name, event_source, served) = service;
    if caller.service != signing_name {
        let error = ApiError::forbidden(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: '{signing_name}'. (It is scoped to '{}'.)", caller.service),
        );
        return error_response(&error, &request_id);
    }
    if !served.contains(&operation.as_str()) {
        return error_response(&ApiError::unknown_operation(&operation), &request_id);
    }

    let input: Result<Value, ApiError> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(Default::default()))
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(_) => Err(ApiError::serialization(
                "The request body must be a JSON object.",
            )),
            Err(e) => Err(ApiError::serialization(format!(
                "The request body is not valid JSON: {e}"
            ))),
        }
    };
    let parameters = match &input {
        Ok(Value::Object(m)) if !m.is_empty() => lower_camel(&Value::Object(m.clone())),
        _ => Value::Null,
    };
    let recorder = incoming.recorder(event_source, &operation, parameters);
    let call = Call {
        app: &app,
        identity: &caller.identity,
        region: &caller.region,
        now,
        recorder: &recorder,
    };
    let (account, region) = (&caller.identity.account_id, &caller.region);
    let result = match input {
        Ok(body) => {
            let request = || {
                if signing_name == "logs" {
                    authz::logs(&operation, &body, account, region)
                } else {
                    authz::cloudtrail(&operation, &body, account, region)
                }
            };
            match authz::authorize(caller.credential, request, StatusCode::BAD_REQUEST) {
                Err(refused) => Err(refused),
                Ok(()) if signing_name == "logs" => {
                    ops::logs::dispatch(call, &operation, &body).await
                }
                Ok(()) => ops::dispatch(call, &operation, &body).await,
            }
        }
        Err(error) => Err(error),
    };

    // No action without its audit record: the call is answered only once its record is
    // durable. Changes record themselves inside their metadata update.
    let recorded = match &result {
        Ok(outcome) if outcome.recorded => Ok(()),
        other => {
            recorder
                .record(other.as_ref().map(|outcome| &outcome.response))
                .await
        }
    };
    if let Err(error) = recorded {
        return error_response(&error, &request_id);
    }
    respond(result.map(|outcome| outcome.response), &request_id)
}
