"""Channels on the CloudTrail API, and PutAuditEvents on cloudtrail-data, through boto3 and
the AWS CLI."""

import base64
import hashlib
import json
import os
import subprocess

import botocore.exceptions
import pytest

from conftest import ACCOUNT_A, ACCOUNT_B, USERS, lookup_all

EDS = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_A}:eventdatastore/00000000-0000-0000-0000-000000000001"


def code(fn, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"]


def create(client, name="app-events"):
    return client.create_channel(Name=name, Source="Custom",
                                 Destinations=[{"Type": "EVENT_DATA_STORE", "Location": EDS}],
                                 Tags=[{"Key": "team", "Value": "platform"}])


def event_data(uid, **changes):
    data = {"version": "1.0", "userIdentity": {"type": "CustomUser", "principalId": "alice", "details": {"team": "a"}},
            "eventSource": "app.example.com", "eventName": "Login", "eventTime": "2026-11-20T10:00:00",
            "UID": uid, "recipientAccountId": ACCOUNT_A, "sourceIPAddress": "192.0.2.1",
            "requestParameters": {"remember": True}, "additionalEventData": {"mfa": "yes"}}
    data.update(changes)
    return json.dumps(data)


def test_channel_lifecycle(cairn):
    client = cairn.client("alice")
    created = create(client)
    arn = created["ChannelArn"]
    assert arn.startswith(f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_A}:channel/")
    assert created["Tags"] == [{"Key": "team", "Value": "platform"}]
    got = client.get_channel(Channel=arn)
    assert got["Name"] == "app-events" and got["Source"] == "Custom"
    assert got["Destinations"] == [{"Type": "EVENT_DATA_STORE", "Location": EDS}]
    assert client.get_channel(Channel=arn.split("/")[-1])["ChannelArn"] == arn
    assert [c["ChannelArn"] for c in client.list_channels()["Channels"]] == [arn]
    assert code(create, client=client) == "ChannelAlreadyExistsException"
    updated = client.update_channel(Channel=arn, Name="renamed")
    assert updated["Name"] == "renamed"
    client.delete_channel(Channel=arn)
    assert code(client.get_channel, Channel=arn) == "ChannelNotFoundException"
    assert code(client.delete_channel, Channel=arn) == "ChannelNotFoundException"
    # Each change is in the event history, with its response.
    names = [e["EventName"] for e in lookup_all(client, LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "false"}])]
    assert {"CreateChannel", "UpdateChannel", "DeleteChannel"} <= set(names)
    record = json.loads(next(e for e in lookup_all(client) if e["EventName"] == "CreateChannel"
                             and "errorCode" not in json.loads(e["CloudTrailEvent"]))["CloudTrailEvent"])
    assert record["responseElements"]["channelArn"] == arn


def test_channel_errors(cairn):
    client = cairn.client("alice")
    assert code(client.create_channel, Name="x" * 3, Source="Custom",
                Destinations=[{"Type": "EVENT_DATA_STORE", "Location": "arn:aws:cloudtrail:us-east-1:999999999999:eventdatastore/x"}]) \
        == "EventDataStoreARNInvalidException"
    assert code(client.get_channel, Channel="arn:aws:cloudtrail:us-east-1:111111111111:trail/nope") == "ChannelARNInvalidException"
    assert code(client.get_channel, Channel="bad channel!") == "ChannelARNInvalidException"
    for n in range(25):
        create(client, name=f"ch-{n:02d}")
    assert code(create, client=client, name="one-too-many") == "ChannelMaxLimitExceededException"
    page = client.list_channels(MaxResults=10)
    assert len(page["Channels"]) == 10 and page["NextToken"]
    rest = client.list_channels(MaxResults=20, NextToken=page["NextToken"])
    assert len(rest["Channels"]) == 15 and "NextToken" not in rest


def test_channels_are_confined_to_their_account_and_region(cairn):
    arn = create(cairn.client("alice"))["ChannelArn"]
    assert code(cairn.client("bob").get_channel, Channel=arn) == "ChannelNotFoundException"
    assert code(cairn.client("alice", region="eu-west-1").get_channel, Channel=arn) == "ChannelNotFoundException"
    assert cairn.client("bob").list_channels()["Channels"] == []


def test_put_audit_events_records_each_event(cairn):
    arn = create(cairn.client("alice"))["ChannelArn"]
    data = cairn.client("alice", service="cloudtrail-data")
    good = event_data("u-1")
    result = data.put_audit_events(channelArn=arn, auditEvents=[
        {"id": "one", "eventData": good, "eventDataChecksum": base64.b64encode(hashlib.sha256(good.encode()).digest()).decode()},
        {"id": "two", "eventData": event_data("u-2"), "eventDataChecksum": "bm90LXRoZS1zdW0="},
        {"id": "three", "eventData": event_data("u-3", recipientAccountId=ACCOUNT_B)},
        {"id": "four", "eventData": json.dumps({"version": "1.0"})},
    ])
    assert [s["id"] for s in result["successful"]] == ["one"]
    assert {f["id"]: f["errorCode"] for f in result["failed"]} == {
        "two": "InvalidChecksum", "three": "InvalidRecipient", "four": "FieldNotFound"}
    event_id = result["successful"][0]["eventID"]

    found = cairn.client("alice").lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": event_id}])["Events"]
    assert len(found) == 1
    record = json.loads(found[0]["CloudTrailEvent"])
    assert record["eventCategory"] == "ActivityAuditLog" and record["eventType"] == "ActivityLog"
    assert record["eventData"] == json.loads(good)
    assert record["metadata"]["channelARN"] == arn
    assert record["recipientAccountId"] == ACCOUNT_A and record["awsRegion"] == "us-east-1"
    assert found[0]["EventName"] == "Login" and found[0]["EventSource"] == "app.example.com"
    assert found[0]["Username"] == "alice"

    # A retried call stores nothing twice.
    again = data.put_audit_events(channelArn=arn, auditEvents=[{"id": "one", "eventData": good}])
    assert again["successful"][0]["eventID"] == event_id
    assert len(cairn.client("alice").lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": event_id}])["Events"]) == 1
    status = cairn.client("alice").get_channel(Channel=arn)["IngestionStatus"]
    assert status["LatestIngestionSuccessEventID"] == event_id


def test_put_audit_events_request_errors(cairn):
    arn = create(cairn.client("alice"))["ChannelArn"]
    data = cairn.client("alice", service="cloudtrail-data")
    one = [{"id": "a", "eventData": event_data("u")}]
    assert code(data.put_audit_events, channelArn="not-an-arn", auditEvents=one) == "InvalidChannelARN"
    assert code(data.put_audit_events, channelArn=arn.replace(arn.split("/")[-1], "0" * 36), auditEvents=one) == "ChannelNotFound"
    assert code(cairn.client("bob", service="cloudtrail-data").put_audit_events, channelArn=arn, auditEvents=one) \
        == "ChannelInsufficientPermission"
    assert code(data.put_audit_events, channelArn=arn, auditEvents=one + one) == "DuplicatedAuditEventId"


def test_aws_cli_put_audit_events(cairn):
    arn = create(cairn.client("alice"))["ChannelArn"]
    u = USERS["alice"]
    env = dict(os.environ, AWS_ACCESS_KEY_ID=u["key"], AWS_SECRET_ACCESS_KEY=u["secret"], AWS_DEFAULT_REGION="us-east-1")
    events = json.dumps([{"id": "cli-1", "eventData": event_data("cli-uid")}])
    out = subprocess.run(["aws", "--endpoint-url", cairn.endpoint, "cloudtrail-data", "put-audit-events",
                          "--channel-arn", arn, "--external-id", "ext-1", "--audit-events", events],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["successful"][0]["id"] == "cli-1"
