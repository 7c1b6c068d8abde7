"""LookupEvents and the recording of Cairn's own API calls, through boto3 and the AWS CLI."""

import json
import os
import subprocess
import threading
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT_A, ACCOUNT_B, USERS, lookup_all


def by_name(client, name, **kw):
    return lookup_all(client, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}], **kw)


def error_code(fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return e.value.response["Error"]["Code"]


def test_own_calls_are_recorded_as_cloudtrail_events(cairn):
    client = cairn.client("alice", region="eu-west-1")
    first = client.lookup_events(MaxResults=5)
    request_id = first["ResponseMetadata"]["RequestId"]
    events = by_name(client, "LookupEvents")
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    record = next(r for r in records if r["requestID"] == request_id)
    assert record["eventVersion"] == "1.11"
    assert record["eventSource"] == "cloudtrail.amazonaws.com"
    assert record["eventName"] == "LookupEvents"
    assert record["awsRegion"] == "eu-west-1"
    assert record["readOnly"] is True
    assert record["eventType"] == "AwsApiCall"
    assert record["managementEvent"] is True
    assert record["eventCategory"] == "Management"
    assert record["recipientAccountId"] == ACCOUNT_A
    assert record["sourceIPAddress"] == "127.0.0.1"
    assert record["userAgent"].startswith("Boto3/")
    assert record["requestParameters"] == {"maxResults": 5}
    assert record["responseElements"] is None
    assert "errorCode" not in record
    identity = record["userIdentity"]
    assert identity["type"] == "IAMUser"
    assert identity["userName"] == "alice"
    assert identity["accountId"] == ACCOUNT_A
    assert identity["accessKeyId"] == USERS["alice"]["key"]
    assert identity["arn"] == f"arn:aws:iam::{ACCOUNT_A}:user/alice"
    assert identity["principalId"].startswith("AIDA")
    assert len(record["eventID"]) == 36
    # The summary fields agree with the record.
    entry = next(e for e in events if json.loads(e["CloudTrailEvent"])["requestID"] == request_id)
    assert entry["EventId"] == record["eventID"]
    assert entry["EventName"] == "LookupEvents"
    assert entry["ReadOnly"] == "true"
    assert entry["Username"] == "alice"
    assert entry["AccessKeyId"] == USERS["alice"]["key"]
    assert entry["EventSource"] == "cloudtrail.amazonaws.com"
    assert entry["Resources"] == []


def test_failed_calls_are_recorded_with_their_error(cairn):
    client = cairn.client("alice")
    error_code(client.lookup_events, MaxResults=51)
    with pytest.raises(botocore.exceptions.ClientError):
        client.create_event_data_store(Name="audit-store")
    failed = [json.loads(e["CloudTrailEvent"]) for e in by_name(client, "LookupEvents")]
    assert any(r.get("errorCode") == "InvalidMaxResultsException" and r["errorMessage"] for r in failed)
    created = [json.loads(e["CloudTrailEvent"]) for e in by_name(client, "CreateEventDataStore")]
    assert len(created) == 1
    assert created[0]["readOnly"] is False
    assert created[0]["errorCode"] == "UnknownOperationException"
    assert created[0]["requestParameters"] == {"name": "audit-store"}


def test_root_calls_record_root_identity_and_username(cairn):
    root = cairn.client("root_a")
    request_id = root.lookup_events(MaxResults=1)["ResponseMetadata"]["RequestId"]
    events = lookup_all(root, LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "root"}])
    entry = next(e for e in events if json.loads(e["CloudTrailEvent"])["requestID"] == request_id)
    identity = json.loads(entry["CloudTrailEvent"])["userIdentity"]
    assert identity["type"] == "Root"
    assert identity["arn"] == f"arn:aws:iam::{ACCOUNT_A}:root"
    assert entry["Username"] == "root"


def test_each_lookup_attribute(cairn):
    client = cairn.client("alice")
    with pytest.raises(botocore.exceptions.ClientError):
        client.start_logging(Name="t")  # a write call, recorded (not built yet)
    client.lookup_events(MaxResults=1)
    everything = lookup_all(client)
    sample = next(e for e in everything if e["EventName"] == "StartLogging")

    def find(key, value):
        return lookup_all(client, LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])

    assert [e["EventId"] for e in find("EventId", sample["EventId"])] == [sample["EventId"]]
    assert {e["EventName"] for e in find("EventName", "StartLogging")} == {"StartLogging"}
    assert {e["ReadOnly"] for e in find("ReadOnly", "false")} == {"false"}
    assert "StartLogging" in {e["EventName"] for e in find("ReadOnly", "false")}
    assert {e["ReadOnly"] for e in find("ReadOnly", "true")} == {"true"}
    assert {e["Username"] for e in find("Username", "alice")} == {"alice"}
    assert {e["AccessKeyId"] for e in find("AccessKeyId", USERS["alice"]["key"])} == {USERS["alice"]["key"]}
    assert len(find("EventSource", "cloudtrail.amazonaws.com")) >= 2
    assert find("EventSource", "ec2.amazonaws.com") == []
    assert find("ResourceType", "AWS::CloudTrail::Trail") == []
    assert find("ResourceName", "arn:aws:cloudtrail:us-east-1:111111111111:trail/t") == []
    assert find("Username", "nobody") == []


def test_results_are_newest_first_within_inclusive_times(cairn):
    client = cairn.client("alice")
    for _ in range(3):
        client.lookup_events(MaxResults=1)
        time.sleep(1.1)
    events = by_name(client, "LookupEvents")
    times = [e["EventTime"].timestamp() for e in events]
    assert times == sorted(times, reverse=True)
    pivot = events[1]["EventTime"]
    inside = by_name(client, "LookupEvents", StartTime=pivot, EndTime=pivot)
    assert inside and all(e["EventTime"] == pivot for e in inside)
    assert all(e["EventTime"] >= pivot for e in by_name(client, "LookupEvents", StartTime=pivot))


def test_validation_errors(cairn):
    client = cairn.client("alice")
    assert error_code(client.lookup_events, MaxResults=51) == "InvalidMaxResultsException"
    assert error_code(client.lookup_events, StartTime=200, EndTime=100) == "InvalidTimeRangeException"
    assert error_code(client.lookup_events, EventCategory="management") == "InvalidEventCategoryException"
    two = [{"AttributeKey": "EventName", "AttributeValue": "a"}, {"AttributeKey": "Username", "AttributeValue": "b"}]
    assert error_code(client.lookup_events, LookupAttributes=two) == "InvalidLookupAttributesException"
    bad_key = [{"AttributeKey": "Colour", "AttributeValue": "a"}]
    assert error_code(client.lookup_events, LookupAttributes=bad_key) == "InvalidLookupAttributesException"
    insight_user = [{"AttributeKey": "Username", "AttributeValue": "a"}]
    assert error_code(client.lookup_events, EventCategory="insight", LookupAttributes=insight_user) == "InvalidLookupAttributesException"
    long = [{"AttributeKey": "EventName", "AttributeValue": "_" * 1001}]
    assert error_code(client.lookup_events, LookupAttributes=long) == "InvalidLookupAttributesException"
    assert error_code(client.lookup_events, NextToken="garbage") == "InvalidNextTokenException"


def test_insight_category_is_empty_without_insights(cairn):
    assert cairn.client("alice").lookup_events(EventCategory="insight")["Events"] == []


def test_max_results_defaults_to_50(cairn):
    client = cairn.client("alice")
    for _ in range(55):
        client.lookup_events(MaxResults=1)
    page = client.lookup_events()
    assert len(page["Events"]) == 50 and "NextToken" in page


def test_next_token_must_match_its_query(cairn):
    client = cairn.client("alice")
    for _ in range(4):
        client.lookup_events(MaxResults=1)
    attribute = [{"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}]
    token = client.lookup_events(MaxResults=2, LookupAttributes=attribute)["NextToken"]
    assert client.lookup_events(MaxResults=2, LookupAttributes=attribute, NextToken=token)["Events"]
    other = [{"AttributeKey": "Username", "AttributeValue": "alice"}]
    assert error_code(client.lookup_events, MaxResults=2, LookupAttributes=other, NextToken=token) == "InvalidNextTokenException"
    assert error_code(client.lookup_events, MaxResults=2, NextToken=token[:-2] + ("00" if token[-2:] != "00" else "11")) == "InvalidNextTokenException"
    # A token is bound to its account too.
    assert error_code(cairn.client("bob").lookup_events, MaxResults=2, LookupAttributes=attribute, NextToken=token) == "InvalidNextTokenException"


def test_pagination_is_exact_while_events_arrive(cairn):
    client = cairn.client("alice")
    for _ in range(30):
        client.lookup_events(MaxResults=1)
    before = {e["EventId"] for e in lookup_all(client, EndTime=time.time())}
    stop = threading.Event()

    def writer():
        w = cairn.client("alice")
        while not stop.is_set():
            w.lookup_events(MaxResults=1)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        seen, token = [], None
        while True:
            page = client.lookup_events(MaxResults=7, **({"NextToken": token} if token else {}))
            seen += [e["EventId"] for e in page["Events"]]
            token = page.get("NextToken")
            if not token:
                break
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(seen) == len(set(seen)), "no event twice"
    assert before <= set(seen), "no event that existed when paging began is skipped"


def test_accounts_and_regions_are_isolated(cairn):
    alice = cairn.client("alice", region="us-east-1")
    bob = cairn.client("bob", region="us-east-1")
    alice_west = cairn.client("alice", region="us-west-2")
    alice_id = alice.lookup_events(MaxResults=1)["ResponseMetadata"]["RequestId"]
    bob.lookup_events(MaxResults=1)
    bob_records = [json.loads(e["CloudTrailEvent"]) for e in lookup_all(bob)]
    assert bob_records and all(r["recipientAccountId"] == ACCOUNT_B for r in bob_records)
    assert all(r["requestID"] != alice_id for r in bob_records)
    # Asking for alice's event id from bob's account finds nothing.
    alice_event = next(e for e in lookup_all(alice) if json.loads(e["CloudTrailEvent"])["requestID"] == alice_id)
    assert bob.lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": alice_event["EventId"]}])["Events"] == []
    west = [json.loads(e["CloudTrailEvent"]) for e in lookup_all(alice_west)]
    assert all(r["awsRegion"] == "us-west-2" for r in west)
    assert all(r["requestID"] != alice_id for r in west)


def test_events_survive_a_graceful_restart(cairn):
    client = cairn.client("alice")
    ids = {client.lookup_events(MaxResults=1)["ResponseMetadata"]["RequestId"] for _ in range(5)}
    cairn.stop()
    cairn.start()
    recorded = {json.loads(e["CloudTrailEvent"])["requestID"] for e in lookup_all(cairn.client("alice"))}
    assert ids <= recorded


def test_aws_cli_works_against_cairn(cairn):
    u = USERS["alice"]
    env = dict(os.environ, AWS_ACCESS_KEY_ID=u["key"], AWS_SECRET_ACCESS_KEY=u["secret"], AWS_DEFAULT_REGION="us-east-1")
    cairn.client("alice").lookup_events(MaxResults=1)  # something to find
    out = subprocess.run(
        ["aws", "--endpoint-url", cairn.endpoint, "cloudtrail", "lookup-events", "--max-results", "5",
         "--lookup-attributes", "AttributeKey=Username,AttributeValue=alice"],
        env=env, capture_output=True, text=True, check=True,
    )
    events = json.loads(out.stdout)["Events"]
    assert events and all(e["Username"] == "alice" for e in events)
    bad = subprocess.run(
        ["aws", "--endpoint-url", cairn.endpoint, "cloudtrail", "lookup-events", "--start-time", "2025-01-02", "--end-time", "2025-01-01"],
        env=env, capture_output=True, text=True,
    )
    assert bad.returncode != 0 and "InvalidTimeRangeException" in bad.stderr
