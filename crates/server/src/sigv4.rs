//! AWS Signature Version 4 verification: recompute the signature the client must have
//! made from the request as received, and compare in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far a request's date may be from the server's clock.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// What the request says about who signed it, before the key is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Why a request is not authenticated, each with AWS's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No Authorization header: `MissingAuthenticationTokenException`.
    Missing,
    /// An Authorization header that is not SigV4 or is malformed: `IncompleteSignatureException`.
    Malformed(String),
    /// Unknown access key: `UnrecognizedClientException`.
    UnknownKey,
    /// Date too far from now, or signature mismatch: `InvalidSignatureException`.
    Invalid(String),
}

/// A request as the verifier needs it.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path exactly as sent (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Header (name, value) pairs in the order received.
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    fn header_values(&self, name: &str) -> Vec<&'a str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    }
}

/// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
pub fn parse_authorization(header: &str) -> Result<Authorization, AuthError> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        AuthError::Malformed("Authorization header is not AWS4-HMAC-SHA256".into())
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing = |what: &str| {
        AuthError::Malformed(format!("Authorization header requires '{what}' parameter."))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" || scope.iter().any(|s| s.is_empty()) {
        return Err(AuthError::Malformed(format!(
            "Credential should be scoped to a valid region, not '{credential}'."
        )));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::Malformed(
            "Signature must be 64 hexadecimal characters.".into(),
        ));
    }
    Ok(Authorization {
        access_key_id: scope[0].to_owned(),
        date: scope[1].to_owned(),
        region: scope[2].to_owned(),
        service: scope[3].to_owned(),
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature: signature.to_ascii_lowercase(),
    })
}

/// Parses `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`) into epoch seconds.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    cairn_core::timefmt::parse_compact(text)
}

/// Checks a parsed authorization against the request and the caller's secret.
pub fn verify(
    request: &SignedRequest<'_>,
    auth: &Authorization,
    secret: &str,
    now: i64,
) -> Result<(), AuthError> {
    let amz_date = check_date(request, auth, now)?;
    let expected = signature(request, auth, secret, amz_date);
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(AuthError::Invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        ))
    }
}

/// The checks that need no body: `X-Amz-Date` well formed, on the credential scope's day
/// and within the allowed skew of `now`, and `host` signed. Returns `X-Amz-Date`.
pub fn check_date<'r>(
    request: &SignedRequest<'r>,
    auth: &Authorization,
    now: i64,
) -> Result<&'r str, AuthError> {
    let amz_date = request
        .header_values("x-amz-date")
        .first()
        .copied()
        .ok_or_else(|| AuthError::Malformed("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into()))?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
        AuthError::Malformed(format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ."))
    })?;
    if !amz_date.starts_with(&auth.date) {
        return Err(AuthError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            auth.date,
            &amz_date[..8.min(amz_date.len())]
        )));
    }
    let stamp = cairn_core::timefmt::format_compact;
    if signed_at < now - MAX_SKEW_SECONDS {
        return Err(AuthError::Invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            stamp(now - MAX_SKEW_SECONDS),
            stamp(now)
        )));
    }
    if signed_at > now + MAX_SKEW_SECONDS {
        return Err(AuthError::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            stamp(now + MAX_SKEW_SECONDS),
            stamp(now)
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::Malformed(
            "The host header must be signed.".into(),
        ));
    }
    Ok(amz_date)
}

/// The `Authorization` header a client sends with `request`, every one of its headers
/// signed (they must include `host` and `x-amz-date`, which is `amz_date`).
pub fn authorization_header(
    request: &SignedRequest<'_>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    amz_date: &str,
) -> String {
    let mut signed_headers: Vec<String> = request
        .headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    signed_headers.sort();
    signed_headers.dedup();
    let auth = Authorization {
        access_key_id: access_key_id.into(),
        date: amz_date.get(..8).unwrap_or(amz_date).into(),
        region: region.into(),
        service: service.into(),
        signed_headers,
        signature: String::new(),
    };
    let signature = signature(request, &auth, secret, amz_date);
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
        auth.date,
        auth.signed_headers.join(";")
    )
}

/// The hex signature for `request` as AWS computes it.
pub fn signature(
    request: &SignedRequest<'_>,
    auth: &Authorization,
    secret: &str,
    amz_date: &str,
) -> String {
    let canonical = canonical_request(request, &auth.signed_headers);
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    for part in [
        auth.region.as_bytes(),
        auth.service.as_bytes(),
        b"aws4_request",
    ] {
        key = hmac(&key, part);
    }
    hex::encode(hmac(&key, string_to_sign.as_bytes()))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn canonical_request(request: &SignedRequest<'_>, signed_headers: &[String]) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_uri(request.path));
    out.push('\n');
    out.push_str(&canonical_query(request.query));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = request
            .header_values(name)
            .iter()
            .map(|v| collapse_spaces(v))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(&hex::encode(Sha256::digest(request.body)));
    out
}

/// Non-S3 services encode the (already encoded) path once more, segment by segment.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decoding; invalid escapes are kept as they are.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const NOW: i64 = 1_440_938_160; // 2015-08-30T12:36:00Z, the test suite's date

    fn check(headers: Vec<(&str, &str)>, query: &str, authorization: &str) {
        let request = SignedRequest {
            method: "GET",
            path: "/",
            query,
            headers,
            body: b"",
        };
        let auth = parse_authorization(authorization).unwrap();
        assert_eq!(verify(&request, &auth, SECRET, NOW), Ok(()));
        let wrong = verify(&request, &auth, "not-the-secret", NOW);
        assert!(matches!(wrong, Err(AuthError::Invalid(m)) if m.contains("does not match")));
    }

    /// The header a client sends for AWS's get-vanilla vector is the one AWS publishes.
    #[test]
    fn a_client_header_is_the_one_aws_publishes() {
        let request = SignedRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: vec![
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            body: b"",
        };
        assert_eq!(
            authorization_header(&request, "AKIDEXAMPLE", SECRET, "us-east-1", "service", "20150830T123600Z"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// Vectors from AWS's published Signature Version 4 test suite.
    #[test]
    fn aws_test_suite_get_vanilla() {
        check(
            vec![("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            "",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
    }

    #[test]
    fn aws_test_suite_get_header_key_duplicate() {
        check(
            vec![
                ("Host", "example.amazonaws.com"),
                ("My-Header1", "value2"),
                ("My-Header1", "value2"),
                ("My-Header1", "value1"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            "",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        );
    }

    #[test]
    fn expired_and_future_dates_are_refused() {
        let headers = vec![
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let request = SignedRequest {
            method: "GET",
            path: "/",
            query: "",
            headers,
            body: b"",
        };
        let auth = parse_authorization("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31").unwrap();
        assert!(
            matches!(verify(&request, &auth, SECRET, NOW + 16 * 60), Err(AuthError::Invalid(m)) if m.starts_with("Signature expired"))
        );
        assert!(
            matches!(verify(&request, &auth, SECRET, NOW - 16 * 60), Err(AuthError::Invalid(m)) if m.starts_with("Signature not yet current"))
        );
        assert_eq!(verify(&request, &auth, SECRET, NOW + 14 * 60), Ok(()));
    }

    #[test]
    fn malformed_authorization_is_refused() {
        for bad in [
            "Basic abc",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/service, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ] {
            assert!(matches!(parse_authorization(bad), Err(AuthError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn query_is_canonicalized_sorted_and_encoded() {
        assert_eq!(canonical_query("b=2&a=x%20y&a=1"), "a=1&a=x%20y&b=2");
        assert_eq!(
            canonical_query("channelArn=arn:aws:x/y"),
            "channelArn=arn%3Aaws%3Ax%2Fy"
        );
        assert_eq!(canonical_uri("/a b/%2F"), "/a%20b/%252F");
    }
}
