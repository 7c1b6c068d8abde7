"""The fault-injection suite: Cairn is SIGKILLed at random moments while callers write
through all three doors (bulk records, PutAuditEvents, its own API) and it delivers to S3,
streams to a log group and signs digests. Then everything is reconciled: each acknowledged
event is in the history once, in the trail's files once and in the log group once, and the
digest chains hold under `cairn validate-logs` and `aws cloudtrail validate-logs`.

CI kills five times. Run it long with CAIRN_FAULT_KILLS=25 (and replay a run's moments with
the CAIRN_FAULT_SEED it prints)."""

import http.client
import json
import os
import random
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import botocore.exceptions

from conftest import ACCOUNT_A, kill_during, lookup_all, s3_settings, serve, trails_config, wait_for
from test_bulk import put
from test_delivery import by_trail, marked, s3_objects
from test_digests import aws_validate, wait_until_settled
from test_log_delivery import ROLE, filtered, group_arn, marked_ids

KILLS = int(os.environ.get("CAIRN_FAULT_KILLS", "5"))
BUCKET = "faults-bucket"
TRAIL = "faults"
TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_A}:trail/{TRAIL}"
REGIONS = ("us-east-1", "eu-west-1")
AUDIT_SOURCE = "faults.example.com"
EDS = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_A}:eventdatastore/00000000-0000-0000-0000-00000000fa17"


class Ledger:
    """What the callers sent, and what Cairn acknowledged, per door."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records_sent, self.records_acked = [], []
        self.audit_acked = []  # eventIDs PutAuditEvents answered with
        self.api_acked = []  # requestIDs of answered AddTags calls
        self.errors = []  # anything but a lost connection, from any writer

    def add(self, name, items):
        with self.lock:
            getattr(self, name).extend(items)


def until_killed(write):
    """Runs a writer until the server goes away; any other failure is kept for the test."""
    def run(server, ledger, stop, *args):
        try:
            write(server, ledger, stop, *args)
        except (OSError, http.client.HTTPException, botocore.exceptions.ConnectionError,
                botocore.exceptions.HTTPClientError):
            pass
        except Exception as e:  # noqa: BLE001 - reported by the test, not lost in a thread
            ledger.add("errors", [repr(e)])
    return run


@until_killed
def write_records(server, ledger, stop):
    while not stop.is_set():
        batch = [marked(region=REGIONS[i % 2]) for i in range(25)]
        ledger.add("records_sent", [r["eventID"] for r in batch])
        status, body = put(server, "alice", {"Records": batch})
        assert status == 200 and body["failed"] == [], (status, body)
        ledger.add("records_acked", [r["eventID"] for r in batch])
        # A steady trickle: deliveries stay small enough to finish between kills.
        time.sleep(0.05)


@until_killed
def write_audit_events(server, ledger, stop, channel_arn):
    data = server.client(service="cloudtrail-data")
    while not stop.is_set():
        events = []
        for i in range(10):
            payload = {"version": "1.0", "userIdentity": {"type": "CustomUser", "principalId": "faults"},
                       "eventSource": AUDIT_SOURCE, "eventName": "Write", "UID": str(uuid.uuid4()),
                       "eventTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "recipientAccountId": ACCOUNT_A}
            events.append({"id": f"e{i}", "eventData": json.dumps(payload)})
        answer = data.put_audit_events(channelArn=channel_arn, auditEvents=events)
        assert answer["failed"] == [], answer
        ledger.add("audit_acked", [s["eventID"] for s in answer["successful"]])


@until_killed
def call_api(server, ledger, stop, trail_arn=TRAIL_ARN):
    ct = server.client()
    n = 0
    while not stop.is_set():
        n += 1
        answer = ct.add_tags(ResourceId=trail_arn, TagsList=[{"Key": "round", "Value": str(n)}])
        ledger.add("api_acked", [answer["ResponseMetadata"]["RequestId"]])


def reconcile_trail_files(s3, bucket, trail, ledger):
    """Waits until the trail's files hold every acknowledged record and stop changing, then
    checks each acknowledged record and API call is there exactly once, and nothing that
    was never sent. Returns the files: key → records."""
    def keys():
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    # While polling, each file is read once; the check reads them all afresh.
    polled = {}
    wait_for(lambda: set(ledger.records_acked) <= set(by_trail(
        s3_objects(s3, bucket, skip="/CloudTrail-Digest/", read=polled)).get(trail, [])), timeout=120, interval=1)
    wait_until_settled(keys)
    objects = s3_objects(s3, bucket, skip="/CloudTrail-Digest/")
    records = by_trail(objects).get(trail, [])
    assert len(records) == len(set(records)), "a record was delivered twice"
    assert set(ledger.records_acked) <= set(records) <= set(ledger.records_sent)
    calls = [r["requestID"] for rs in objects.values() for r in rs if r.get("eventName") == "AddTags"]
    assert len(calls) == len(set(calls)), "an API call was delivered twice"
    assert set(ledger.api_acked) <= set(calls)
    return objects


def reconcile_history(server, ledger, start, end=None):
    """Each acknowledged record (looked up in each region, which the history keeps apart)
    and API call is in the history exactly once."""
    window = dict(StartTime=start, **({"EndTime": end} if end else {}))
    history = []
    for region in REGIONS:
        history += [e["EventId"] for e in lookup_all(server.client(region=region), LookupAttributes=[
            {"AttributeKey": "EventSource", "AttributeValue": "ec2.amazonaws.com"}], **window)]
    assert len(history) == len(set(history)), "a record is twice in the history"
    assert set(ledger.records_acked) <= set(history) <= set(ledger.records_sent)
    api = [json.loads(e["CloudTrailEvent"])["requestID"] for e in lookup_all(server.client(), LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "AddTags"}], **window)]
    assert len(api) == len(set(api)), "an API call is twice in the history"
    assert set(ledger.api_acked) <= set(api)


def reconcile_log_group(server, group, ledger):
    """Each acknowledged record reached the log group exactly once."""
    streamed = marked_ids(filtered(server.client(service="logs"), group))
    assert len(streamed) == len(set(streamed)), "a record reached the log group twice"
    assert set(ledger.records_acked) <= set(streamed) <= set(ledger.records_sent)


def validate_chains(server, s3_port, trail_arn, start, end=None):
    """Both validators, Cairn's and the AWS CLI's, accept every region's digest chain."""
    for cairn_validator in (True, False):
        for region in REGIONS:
            status, out, err = aws_validate(server, s3_port, trail_arn, start, cairn=cairn_validator,
                                            region=region, end=end)
            assert status == 0, (cairn_validator, region, out[-3000:], err[-3000:])
            assert "digest files valid" in out and "INVALID" not in out, out[-3000:]


def test_random_kills_lose_and_double_nothing(workdir, moto_s3):
    seed = int(os.environ.get("CAIRN_FAULT_SEED", random.randrange(1 << 32)))
    print(f"CAIRN_FAULT_SEED={seed} CAIRN_FAULT_KILLS={KILLS}")
    moments = random.Random(seed)
    port, s3 = moto_s3
    s3.create_bucket(Bucket=BUCKET)
    server = serve(workdir, lambda d: trails_config(d, local_buckets=False, tail=s3_settings(port)))
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    try:
        ct, logs = server.client(), server.client(service="logs")
        logs.create_log_group(logGroupName=TRAIL)
        ct.create_trail(Name=TRAIL, S3BucketName=BUCKET, S3KeyPrefix=TRAIL, IsMultiRegionTrail=True,
                        EnableLogFileValidation=True, CloudWatchLogsLogGroupArn=group_arn(TRAIL),
                        CloudWatchLogsRoleArn=ROLE)
        ct.start_logging(Name=TRAIL)
        channel = ct.create_channel(Name="faults", Source="Custom",
                                    Destinations=[{"Type": "EVENT_DATA_STORE", "Location": EDS}])["ChannelArn"]

        ledger = Ledger()
        writers = [
            lambda stop: write_records(server, ledger, stop),
            lambda stop: write_records(server, ledger, stop),
            lambda stop: write_audit_events(server, ledger, stop, channel),
            lambda stop: call_api(server, ledger, stop),
        ]
        for _ in range(KILLS):
            # Anywhere in a delivery interval (1 s) or a digest period (2 s), or across both.
            kill_during(server, writers, moments.uniform(0.2, 3.0))
            server.start()
        assert ledger.errors == []
        assert len(ledger.records_acked) > 25 * KILLS, "too little was written to prove anything"
        assert ledger.audit_acked and ledger.api_acked

        # The final digest of each chain comes with StopLogging. (Each start has a new port.)
        ct = server.client()
        ct.stop_logging(Name=TRAIL)

        objects = reconcile_trail_files(s3, BUCKET, TRAIL, ledger)
        reconcile_history(server, ledger, start)
        audit = [e["EventId"] for e in lookup_all(ct, LookupAttributes=[
            {"AttributeKey": "EventSource", "AttributeValue": AUDIT_SOURCE}], StartTime=start)]
        assert len(audit) == len(set(audit)), "an audit event is twice in the history"
        assert set(ledger.audit_acked) <= set(audit)

        reconcile_log_group(server, TRAIL, ledger)
        validate_chains(server, port, TRAIL_ARN, start)
        print(f"{KILLS} kills; acknowledged {len(ledger.records_acked)} records, {len(ledger.audit_acked)} "
              f"audit events, {len(ledger.api_acked)} API calls; {len(objects)} log files; 0 lost, 0 doubled")
    finally:
        server.stop()
