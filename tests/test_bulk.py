"""The bulk endpoint: full CloudTrail records from other producers, over SigV4."""

import json
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCOUNT_A, ACCOUNT_B, USERS, Cairn, lookup_all

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "stratus-red-team-detonation-logs"


def post_records(endpoint, key, secret, body, region="us-east-1"):
    """Signs with botocore's own SigV4 signer, as the README's example does."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = AWSRequest(method="POST", url=endpoint + "/records", data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key, secret), "cloudtrail", region).add_auth(request)
    prepared = urllib.request.Request(request.url, data=data, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def put(cairn, user, body, region="us-east-1"):
    u = USERS[user]
    return post_records(cairn.endpoint, u["key"], u["secret"], body, region)


def record(account=ACCOUNT_A, **changes):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = {
        "eventVersion": "1.11",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{account}:user/svc",
                         "accountId": account, "accessKeyId": "AKIAEXAMPLEKEY00001", "userName": "svc"},
        "eventTime": now, "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7", "userAgent": "producer/1.0", "requestParameters": {"instanceType": "t3.micro"},
        "responseElements": None, "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()), "readOnly": False,
        "resources": [{"accountId": account, "type": "AWS::EC2::Instance", "ARN": f"arn:aws:ec2:us-east-1:{account}:instance/i-1"}],
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account, "eventCategory": "Management",
    }
    r.update(changes)
    return r


def test_records_are_stored_and_found(cairn):
    records = [record() for _ in range(5)]
    status, body = put(cairn, "alice", {"Records": records})
    assert status == 200
    assert body["failed"] == []
    assert [s["index"] for s in body["successful"]] == list(range(5))
    assert all("duplicate" not in s for s in body["successful"])
    client = cairn.client("alice")
    for r in records:
        found = client.lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": r["eventID"]}])["Events"]
        assert len(found) == 1
        assert json.loads(found[0]["CloudTrailEvent"]) == r
        assert found[0]["Username"] == "svc"
        assert found[0]["Resources"] == [{"ResourceType": "AWS::EC2::Instance", "ResourceName": r["resources"][0]["ARN"]}]


def test_each_record_is_judged_on_its_own(cairn):
    good = record()
    no_id = record()
    del no_id["eventID"]
    bad_time = record(eventTime="last tuesday")
    too_old = record(eventTime="2001-01-01T00:00:00Z")
    inconsistent = record(eventCategory="Data")
    not_mine = record(account=ACCOUNT_B)
    huge = record(requestParameters={"blob": "x" * (256 * 1024)})
    status, body = put(cairn, "alice", {"Records": [good, no_id, bad_time, too_old, inconsistent, not_mine, huge]})
    assert status == 200
    assert [s["index"] for s in body["successful"]] == [0]
    failures = {f["index"]: f["errorCode"] for f in body["failed"]}
    assert failures == {1: "FieldNotFound", 2: "InvalidData", 3: "InvalidData", 4: "InvalidData",
                        5: "InvalidRecipient", 6: "InvalidData"}
    assert all(f["errorMessage"] for f in body["failed"])
    assert next(f for f in body["failed"] if f["index"] == 5)["eventID"] == not_mine["eventID"]


def test_an_event_id_is_accepted_once_and_stored_once(cairn):
    r = record()
    assert "duplicate" not in put(cairn, "alice", {"Records": [r]})[1]["successful"][0]
    again = put(cairn, "alice", {"Records": [r, r]})[1]
    assert [s.get("duplicate") for s in again["successful"]] == [True, True]
    found = lookup_all(cairn.client("alice"), LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": r["eventID"]}])
    assert len(found) == 1


def test_request_level_errors(cairn):
    assert put(cairn, "alice", b"{not json")[1]["__type"] == "SerializationException"
    status, body = put(cairn, "alice", {"Events": []})
    assert (status, body["__type"]) == (400, "ValidationException")
    status, body = put(cairn, "alice", {"Records": [{}] * 10001})
    assert (status, body["__type"]) == (400, "ValidationException")
    assert "10000" in body["Message"]


def test_bad_signatures_are_refused(cairn):
    status, body = post_records(cairn.endpoint, USERS["alice"]["key"], "wrong" * 8, {"Records": [record()]})
    assert (status, body["__type"]) == (403, "InvalidSignatureException")


@pytest.fixture
def importer(workdir):
    """A server with a 10-year history, an account per account in the shared data set,
    and a user allowed to write records for any account."""
    records = []
    for path in sorted(SHARED.glob("*.json")):
        records += json.loads(path.read_text())
    if not records:
        pytest.skip("the shared data set is not beside the repository")
    accounts = sorted({r["recipientAccountId"] for r in records})
    lines = [f'data_dir = "{workdir / "data"}"', 'listen = "127.0.0.1:0"', "retention_days = 3650",
             "max_body_bytes = 8388608",
             f'[[accounts]]\nid = "{ACCOUNT_A}"\nwrite_records_for = ["*"]',
             '[[accounts.users]]\nname = "importer"\naccess_key_id = "AKIAIMPORTER0000001"\nsecret_access_key = "importer-secret-000000000000000001"']
    for n, account in enumerate(accounts):
        lines.append(f'[[accounts]]\nid = "{account}"\n[[accounts.users]]\nname = "reader"\n'
                     f'access_key_id = "AKIAREADER{n:09d}"\nsecret_access_key = "reader-secret-{n:024d}"')
    config = workdir / "cairn.toml"
    config.write_text("\n".join(lines))
    server = Cairn(workdir / "data", config=config).start()
    yield server, records, {a: (f"AKIAREADER{n:09d}", f"reader-secret-{n:024d}") for n, a in enumerate(accounts)}
    server.stop()


def test_real_aws_records_come_back_exactly(importer):
    import boto3
    import botocore.config
    server, records, readers = importer
    status, body = post_records(server.endpoint, "AKIAIMPORTER0000001", "importer-secret-000000000000000001",
                                {"Records": records})
    assert status == 200 and body["failed"] == [], body["failed"][:3]
    assert len(body["successful"]) == len(records) >= 300
    for r in records:
        key, secret = readers[r["recipientAccountId"]]
        client = boto3.client("cloudtrail", endpoint_url=server.endpoint, region_name=r["awsRegion"],
                              aws_access_key_id=key, aws_secret_access_key=secret,
                              config=botocore.config.Config(retries={"max_attempts": 0}))
        found = client.lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": r["eventID"]}])["Events"]
        if r.get("eventCategory") == "Data":
            assert found == [], "data events are not in the event history"
            continue
        assert len(found) == 1, r["eventID"]
        assert json.loads(found[0]["CloudTrailEvent"]) == r
        assert found[0]["EventName"] == r["eventName"]
        assert found[0]["EventSource"] == r["eventSource"]
