"""AWS JSON 1.1 and SigV4 at the wire: error shapes, status codes, request ids, limits."""

import datetime
import json

import botocore.exceptions
import pytest

from conftest import USERS
from sigv4_client import send, signed_request

LOOKUP = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"


def call(cairn, body=b"{}", user="alice", target=LOOKUP, **kw):
    u = USERS[user]
    return send(signed_request(cairn.endpoint, u["key"], u["secret"], body, target=target, **kw))


def error(status_headers_body):
    status, headers, body = status_headers_body
    return status, json.loads(body)["__type"], json.loads(body)["Message"]


def test_every_response_carries_a_request_id(cairn):
    status, headers, body = call(cairn)
    assert status == 200
    assert headers["x-amzn-RequestId"]
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    status, headers, _ = call(cairn, target="CloudTrail_20131101.NoSuchThing")
    assert status == 400 and headers["x-amzn-RequestId"]


def test_short_target_form_is_accepted(cairn):
    assert call(cairn, target="CloudTrail_20131101.LookupEvents")[0] == 200


def test_unbuilt_and_unknown_operations(cairn):
    client = cairn.client()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.list_event_data_stores()
    assert e.value.response["Error"]["Code"] == "UnknownOperationException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    status, code, _ = error(call(cairn, target="CloudTrail_20131101.Frobnicate"))
    assert (status, code) == (400, "UnknownOperationException")
    status, code, _ = error(call(cairn, target="Other_2020.LookupEvents"))
    assert (status, code) == (400, "UnknownOperationException")


def test_malformed_bodies(cairn):
    assert error(call(cairn, body=b"{not json"))[:2] == (400, "SerializationException")
    assert error(call(cairn, body=b"[1,2]"))[:2] == (400, "SerializationException")
    assert error(call(cairn, body=b'{"MaxResults": "ten"}'))[:2] == (400, "SerializationException")
    assert error(call(cairn, body=b'{"LookupAttributes": {"a": 1}}'))[:2] == (400, "SerializationException")


def test_oversized_bodies_are_refused_unread(cairn):
    """The declared length alone is refused: the server answers before the body is sent."""
    import http.client
    import urllib.parse
    host = urllib.parse.urlparse(cairn.endpoint).netloc
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.putrequest("POST", "/")
    conn.putheader("X-Amz-Target", LOOKUP)
    conn.putheader("Content-Length", str(64 << 20))
    conn.endheaders()
    response = conn.getresponse()
    body = json.loads(response.read())
    assert response.status == 413
    assert body["__type"] == "RequestEntityTooLargeException"
    assert "1048576" in body["Message"]


def test_bodies_larger_than_declared_are_cut_off(cairn):
    # Chunked bodies have no declared length: the limit applies while reading. (Signed, so
    # that the headers pass the checks made before any of the body is read.)
    import http.client
    import urllib.parse
    host = urllib.parse.urlparse(cairn.endpoint).netloc
    conn = http.client.HTTPConnection(host, timeout=10)
    u = USERS["alice"]
    headers = dict(signed_request(cairn.endpoint, u["key"], u["secret"], b"x" * 65536 * 32, target=LOOKUP).header_items())
    chunks = (b"x" * 65536 for _ in range(32))
    try:
        conn.request("POST", "/", body=chunks, headers=headers, encode_chunked=True)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading at the limit and answered before the body ended
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["__type"] == "RequestEntityTooLargeException"


def test_unknown_key_is_unrecognized(cairn):
    status, code, _ = error(send(signed_request(cairn.endpoint, "AKIANOBODY0000000000", "x" * 40, b"{}", target=LOOKUP)))
    assert (status, code) == (403, "UnrecognizedClientException")


def test_wrong_secret_is_an_invalid_signature(cairn):
    u = USERS["alice"]
    status, code, message = error(send(signed_request(cairn.endpoint, u["key"], "wrong" * 8, b"{}", target=LOOKUP)))
    assert (status, code) == (403, "InvalidSignatureException")
    assert "does not match" in message


def test_tampered_body_is_an_invalid_signature(cairn):
    u = USERS["alice"]
    request = signed_request(cairn.endpoint, u["key"], u["secret"], b'{"MaxResults": 5}', target=LOOKUP)
    request.data = b'{"MaxResults": 6}'
    assert error(send(request))[:2] == (403, "InvalidSignatureException")


@pytest.mark.parametrize("minutes", [-16, 16])
def test_requests_dated_more_than_15_minutes_off_are_refused(cairn, minutes):
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
    status, code, message = error(call(cairn, when=when))
    assert (status, code) == (403, "InvalidSignatureException")
    assert "Signature expired" in message or "not yet current" in message


def test_requests_within_the_skew_are_accepted(cairn):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=14)
    assert call(cairn, when=when)[0] == 200


def test_missing_authentication(cairn):
    import urllib.request
    request = urllib.request.Request(cairn.endpoint + "/", data=b"{}", headers={"X-Amz-Target": LOOKUP}, method="POST")
    status, code, _ = error(send(request))
    assert (status, code) == (403, "MissingAuthenticationTokenException")


def test_credentials_scoped_to_another_service_are_refused(cairn):
    status, code, message = error(call(cairn, service="s3"))
    assert (status, code) == (403, "InvalidSignatureException")
    assert "cloudtrail" in message


def test_unauthenticated_requests_are_not_recorded(cairn):
    call(cairn, user="alice", body=b"{}", when=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
    events = cairn.client().lookup_events()["Events"]
    for e in events:
        assert json.loads(e["CloudTrailEvent"]).get("errorCode") != "InvalidSignatureException"
