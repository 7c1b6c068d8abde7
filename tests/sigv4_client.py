"""A minimal SigV4 signer for hand-made requests (expired dates, wrong scopes, raw bodies).
Normal traffic in the tests goes through botocore's own signer."""

import datetime
import hashlib
import hmac
import urllib.parse
import urllib.request


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_request(endpoint, key, secret, body, *, target, region="us-east-1", service="cloudtrail",
                   when=None, extra_headers=None, path="/", query=""):
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    host = urllib.parse.urlparse(endpoint).netloc
    body = body if isinstance(body, bytes) else body.encode()
    headers = {"host": host, "x-amz-date": amz_date, "x-amz-target": target,
               "content-type": "application/x-amz-json-1.1"}
    headers.update(extra_headers or {})
    signed = sorted(headers)
    canonical = "\n".join([
        "POST", path, query,
        "".join(f"{h}:{headers[h].strip()}\n" for h in signed),
        ";".join(signed),
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, "aws4_request"):
        k = _hmac(k, part)
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                                f"SignedHeaders={';'.join(signed)}, Signature={signature}")
    url = endpoint + path + (("?" + query) if query else "")
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


def send(request):
    """Returns (status, headers, body bytes) without raising on HTTP errors."""
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
