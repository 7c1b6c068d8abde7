"""Trails sending events to log groups: streams per account and region, reading them back
with GetLogEvents, FilterLogEvents and DescribeLogStreams (boto3 and the AWS CLI), metric
filters counted at /metrics, group deletion, and exactly-once across crashes."""

import hashlib
import json
import time
import urllib.request

from conftest import ACCOUNT_A, ACCOUNT_B, ORG_ID, error_of, wait_for
from test_delivery import MARK, ROOT_IDENTITY, arrived, marked, send, write_through_crashes

ROLE = f"arn:aws:iam::{ACCOUNT_A}:role/CloudTrail_CloudWatchLogs_Role"
EC2_CALLS = '{ $.eventSource = "ec2.amazonaws.com" }'
ROOT_USAGE = '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }'


def group_arn(name, account=ACCOUNT_A, region="us-east-1"):
    return f"arn:aws:logs:{region}:{account}:log-group:{name}:*"


def filtered(logs, group, **kw):
    """Every event FilterLogEvents finds, through boto3's paginator."""
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group, **kw)
    return [e for page in pages for e in page["events"]]


def marked_ids(events):
    out = []
    for e in events:
        r = json.loads(e["message"])
        if r.get("userAgent") == MARK:
            out.append(r["eventID"])
    return out


def metrics(cairn):
    with urllib.request.urlopen(cairn.endpoint + "/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        return response.read().decode()


def sample(text, **labels):
    """The value of the cairn_log_metric_total series with exactly these labels' values."""
    for line in text.splitlines():
        if not line.startswith("cairn_log_metric_total{"):
            continue
        body, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in body for k, v in labels.items()):
            return float(value)
    return None


def put_counter(logs, group, name, pattern, metric, namespace, dimensions=None, default=None):
    """A metric filter counting 1 per matching event."""
    transformation = {"metricName": metric, "metricNamespace": namespace, "metricValue": "1"}
    if dimensions:
        transformation["dimensions"] = dimensions
    if default is not None:
        transformation["defaultValue"] = default
    logs.put_metric_filter(logGroupName=group, filterName=name, filterPattern=pattern,
                           metricTransformations=[transformation])


def test_trail_events_reach_log_group_streams_and_metrics(trails_cairn):
    ct, logs = trails_cairn.client(), trails_cairn.client(service="logs")
    err = error_of(ct.create_trail, Name="no-group", S3BucketName="trail-bucket",
                   CloudWatchLogsLogGroupArn=group_arn("missing"), CloudWatchLogsRoleArn=ROLE)
    assert err["Code"] == "InvalidCloudWatchLogsLogGroupArnException"

    logs.create_log_group(logGroupName="CloudTrail/audit")
    put_counter(logs, "CloudTrail/audit", "root", ROOT_USAGE, "RootAccountUsageCount", "CISBenchmark", default=0)
    put_counter(logs, "CloudTrail/audit", "by-region", EC2_CALLS, "Ec2Calls", "Audit", {"Region": "$.awsRegion"})
    ct.create_trail(Name="to-logs", S3BucketName="trail-bucket", IsMultiRegionTrail=True,
                    CloudWatchLogsLogGroupArn=group_arn("CloudTrail/audit"), CloudWatchLogsRoleArn=ROLE)
    ct.start_logging(Name="to-logs")
    # Before any event: the default value's series is there (from the next pass), at 0.
    wait_for(lambda: sample(metrics(trails_cairn), metric_name="RootAccountUsageCount") == 0.0, timeout=5)

    east = [marked() for _ in range(5)]
    west = [marked(region="eu-west-1") for _ in range(7)]
    root = marked(userIdentity=ROOT_IDENTITY, source="s3.amazonaws.com")
    send(trails_cairn, "alice", east + west + [root])
    sent = [r["eventID"] for r in east + west + [root]]

    got = wait_for(lambda: (ids := marked_ids(filtered(logs, "CloudTrail/audit"))) and len(ids) >= len(sent) and ids, timeout=20)
    assert sorted(got) == sorted(sent), "each event once"

    streams = logs.describe_log_streams(logGroupName="CloudTrail/audit")["logStreams"]
    names = [s["logStreamName"] for s in streams]
    assert f"{ACCOUNT_A}_CloudTrail_eu-west-1" in names and f"{ACCOUNT_A}_CloudTrail_us-east-1" in names
    assert names == sorted(names)
    eu = next(s for s in streams if s["logStreamName"].endswith("eu-west-1"))
    assert eu["arn"] == f"arn:aws:logs:us-east-1:{ACCOUNT_A}:log-group:CloudTrail/audit:log-stream:{ACCOUNT_A}_CloudTrail_eu-west-1"
    assert eu["firstEventTimestamp"] <= eu["lastEventTimestamp"] <= eu["lastIngestionTime"] + 1000

    # GetLogEvents, two at a time from the head, until the forward token repeats.
    stream = f"{ACCOUNT_A}_CloudTrail_eu-west-1"
    seen, token, pages = [], None, 0
    while True:
        kw = {"nextToken": token} if token else {"startFromHead": True}
        page = logs.get_log_events(logGroupName="CloudTrail/audit", logStreamName=stream, limit=2, **kw)
        pages += 1
        seen += page["events"]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert sorted(marked_ids(seen)) == sorted(r["eventID"] for r in west)
    assert [e["timestamp"] for e in seen] == sorted(e["timestamp"] for e in seen)
    assert pages >= 4
    # From the tail (the default), and back again with the backward token.
    tail = logs.get_log_events(logGroupName="CloudTrail/audit", logStreamName=stream, limit=3)
    assert tail["events"] == seen[-3:]
    back = logs.get_log_events(logGroupName="CloudTrail/audit", logStreamName=stream, limit=3, nextToken=tail["nextBackwardToken"])
    assert back["events"] == seen[-6:-3]
    err = error_of(logs.get_log_events, logGroupName="CloudTrail/audit", logStreamName="nope")
    assert err["Code"] == "ResourceNotFoundException"
    err = error_of(logs.get_log_events, logGroupName="CloudTrail/audit", logStreamName=stream, nextToken="f/forged")
    assert err["Code"] == "InvalidParameterException"

    # FilterLogEvents: patterns, streams, time windows, and the AWS CLI's own paging.
    found = filtered(logs, "CloudTrail/audit", filterPattern=ROOT_USAGE)
    assert [json.loads(e["message"])["eventID"] for e in found] == [root["eventID"]]
    assert found[0]["logStreamName"] == f"{ACCOUNT_A}_CloudTrail_us-east-1"
    west_only = filtered(logs, "CloudTrail/audit", logStreamNamePrefix=f"{ACCOUNT_A}_CloudTrail_eu")
    assert sorted(marked_ids(west_only)) == sorted(r["eventID"] for r in west)
    assert filtered(logs, "CloudTrail/audit", startTime=int(time.time() + 3600) * 1000) == []
    status, out, stderr = trails_cairn.aws("logs", "filter-log-events", "--log-group-name", "CloudTrail/audit",
                                           "--filter-pattern", '{ $.awsRegion = "eu-west-1" }', "--page-size", "3")
    assert status == 0, stderr
    assert sorted(marked_ids(json.loads(out)["events"])) == sorted(r["eventID"] for r in west)
    err = error_of(logs.filter_log_events, logGroupName="CloudTrail/audit", filterPattern="{ $.x = }")
    assert err["Code"] == "InvalidParameterException" and "column" in err["Message"]

    # Metrics: the root filter counted once; EC2 calls per region.
    def counted():
        text = metrics(trails_cairn)
        return sample(text, metric_name="RootAccountUsageCount") == 1.0 and text
    text = wait_for(counted, timeout=10)
    assert sample(text, metric_name="Ec2Calls", Region="eu-west-1") == 7.0
    assert sample(text, metric_name="Ec2Calls", Region="us-east-1") == 5.0
    status = ct.get_trail_status(Name="to-logs")
    assert status["LatestCloudWatchLogsDeliveryTime"].timestamp() > time.time() - 60
    assert "LatestCloudWatchLogsDeliveryError" not in status

    # Another account sees none of it.
    bob_logs = trails_cairn.client("bob", service="logs")
    err = error_of(bob_logs.filter_log_events, logGroupName="CloudTrail/audit")
    assert err["Code"] == "ResourceNotFoundException"
    err = error_of(bob_logs.get_log_events, logGroupIdentifier=group_arn("CloudTrail/audit"), logStreamName=stream)
    assert err["Code"] == "ResourceNotFoundException"


def test_organization_trails_name_streams_by_organization_and_account(trails_cairn):
    ct, logs = trails_cairn.client(), trails_cairn.client(service="logs")
    logs.create_log_group(logGroupName="org/audit")
    ct.create_trail(Name="org", S3BucketName="trail-bucket", IsOrganizationTrail=True, IsMultiRegionTrail=True,
                    CloudWatchLogsLogGroupArn=group_arn("org/audit"), CloudWatchLogsRoleArn=ROLE)
    ct.start_logging(Name="org")
    mine, theirs = marked(), marked(account=ACCOUNT_B, region="us-west-2")
    send(trails_cairn, "alice", [mine])
    send(trails_cairn, "bob", [theirs])
    stream = f"{ORG_ID}_{ACCOUNT_B}_CloudTrail_us-west-2"
    events = wait_for(lambda: marked_ids(filtered(logs, "org/audit", logStreamNames=[stream])), timeout=20)
    assert events == [theirs["eventID"]]
    names = {s["logStreamName"] for s in logs.describe_log_streams(logGroupName="org/audit")["logStreams"]}
    assert f"{ORG_ID}_{ACCOUNT_A}_CloudTrail_us-east-1" in names


def test_a_deleted_group_is_reported_and_its_events_are_gone(trails_cairn):
    ct, logs = trails_cairn.client(), trails_cairn.client(service="logs")
    logs.create_log_group(logGroupName="short-lived")
    ct.create_trail(Name="short", S3BucketName="trail-bucket", CloudWatchLogsLogGroupArn=group_arn("short-lived"),
                    CloudWatchLogsRoleArn=ROLE)
    ct.start_logging(Name="short")
    first = marked()
    send(trails_cairn, "alice", [first])
    wait_for(lambda: marked_ids(filtered(logs, "short-lived")), timeout=20)
    logs.delete_log_group(logGroupName="short-lived")
    send(trails_cairn, "alice", [marked()])
    status = wait_for(lambda: (s := ct.get_trail_status(Name="short")).get("LatestCloudWatchLogsDeliveryError") and s, timeout=20)
    assert status["LatestCloudWatchLogsDeliveryError"] == "ResourceNotFoundException"
    # A group made again under the same name starts empty, and delivery resumes.
    logs.create_log_group(logGroupName="short-lived")
    later = marked()
    send(trails_cairn, "alice", [later])
    assert wait_for(lambda: marked_ids(filtered(logs, "short-lived")), timeout=20) == [later["eventID"]]
    wait_for(lambda: "LatestCloudWatchLogsDeliveryError" not in ct.get_trail_status(Name="short"), timeout=20)


def test_log_groups_get_each_event_exactly_once_across_crashes(trails_cairn):
    ct, logs = trails_cairn.client(), trails_cairn.client(service="logs")
    logs.create_log_group(logGroupName="crash-proof")
    ct.create_trail(Name="crash-proof", S3BucketName="trail-bucket", IsMultiRegionTrail=True,
                    CloudWatchLogsLogGroupArn=group_arn("crash-proof"), CloudWatchLogsRoleArn=ROLE)
    ct.start_logging(Name="crash-proof")
    acknowledged, attempted = write_through_crashes(trails_cairn, 3, lambda r: 0.7 + 0.3 * r)
    assert len(acknowledged) > 300
    logs = trails_cairn.client(service="logs")
    got = arrived(lambda: marked_ids(filtered(logs, "crash-proof")), acknowledged)
    assert len(got) == len(set(got)), "an event reached the log group twice"
    assert set(got) <= set(attempted)


def group_dir(cairn, logs, name):
    """Where a group's files are: named by its account, region, name and creation time."""
    [group] = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    key = f"{ACCOUNT_A}\nus-east-1\n{name}\n{group['creationTime']}"
    return cairn.data_dir / "logs" / "groups" / hashlib.sha256(key.encode()).hexdigest()[:32]


def test_a_group_that_cannot_be_written_falls_behind_alone(trails_cairn):
    """A group whose files cannot be written does not hold up the others: they get new
    events at once, its trail reports the failure, and once its files can be written again
    it catches up, each event once."""
    ct, logs = trails_cairn.client(), trails_cairn.client(service="logs")
    # The failing group's trail routes first, so the healthy one comes after it.
    for name in ("a-sick", "b-well"):
        logs.create_log_group(logGroupName=name)
        ct.create_trail(Name=name, S3BucketName="trail-bucket", CloudWatchLogsLogGroupArn=group_arn(name),
                        CloudWatchLogsRoleArn=ROLE)
        ct.start_logging(Name=name)
    first = marked()
    send(trails_cairn, "alice", [first])
    for name in ("a-sick", "b-well"):
        wait_for(lambda: marked_ids(filtered(logs, name)), timeout=20)

    # The sick group's directory becomes a plain file (with the server down: it keeps its
    # files open).
    sick = group_dir(trails_cairn, logs, "a-sick")
    assert sick.is_dir()
    trails_cairn.stop()
    aside = trails_cairn.data_dir / "aside"  # outside the groups' directory, which is swept
    sick.rename(aside)
    sick.write_text("not a directory")
    trails_cairn.start()
    ct, logs = trails_cairn.client(), trails_cairn.client(service="logs")
    during = [marked() for _ in range(5)]
    send(trails_cairn, "alice", during)
    expected = [first["eventID"]] + [r["eventID"] for r in during]
    assert sorted(wait_for(lambda: len(got := marked_ids(filtered(logs, "b-well"))) == 6 and got,
                           timeout=20)) == sorted(expected)
    status = wait_for(lambda: (s := ct.get_trail_status(Name="a-sick")).get("LatestCloudWatchLogsDeliveryError")
                      and s, timeout=20)
    assert status["LatestCloudWatchLogsDeliveryError"] == "InternalFailure"
    assert "LatestCloudWatchLogsDeliveryError" not in ct.get_trail_status(Name="b-well")

    # A restart while the group is behind keeps what it still needs.
    trails_cairn.stop()
    trails_cairn.start()
    ct, logs = trails_cairn.client(), trails_cairn.client(service="logs")
    more = marked()
    send(trails_cairn, "alice", [more])
    expected.append(more["eventID"])
    wait_for(lambda: more["eventID"] in marked_ids(filtered(logs, "b-well")), timeout=20)

    # Writable again: the sick group catches up by itself, each event once.
    sick.unlink()
    aside.rename(sick)
    after = marked()
    send(trails_cairn, "alice", [after])
    expected.append(after["eventID"])
    got = arrived(lambda: marked_ids(filtered(logs, "a-sick")), expected)
    assert sorted(got) == sorted(expected), "each event once"
    wait_for(lambda: "LatestCloudWatchLogsDeliveryError" not in ct.get_trail_status(Name="a-sick"), timeout=20)
    assert sorted(marked_ids(filtered(logs, "b-well"))) == sorted(expected)
