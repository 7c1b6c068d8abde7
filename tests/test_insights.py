"""Live Insights: a trail with Insights selectors, a day of usual traffic sent through the
bulk endpoint, a burst of calls and of failures; the Insights events show in LookupEvents
(EventCategory=insight), in the trail's CloudTrail-Insight/ files and its log group, and
reach no trail that did not ask for them, and are there once each after a restart;
`cairn insights scan` over the same calls finds the same Insights; a webhook receives them
as EventBridge events. A crash and a restart while the Insights are open neither lose their
End nor change it."""

import base64
import gzip
import json
import os
import random
import re
import subprocess
import time
import uuid
from datetime import datetime, timezone
from xml.etree import ElementTree

from conftest import ACCOUNT_A, BIN, error_of, serve, trails_config, wait_for
from test_alarms import Webhook
from test_bulk import put, record
from test_delivery import local_objects
from test_log_delivery import ROLE, group_arn, metrics

REGION = "eu-west-1"
INTRUDER = f"arn:aws:iam::{ACCOUNT_A}:user/intruder"
INSIGHT_KEY = re.compile(
    rf"^watch/AWSLogs/{ACCOUNT_A}/CloudTrail-Insight/{REGION}/\d{{4}}/\d\d/\d\d/"
    rf"{ACCOUNT_A}_CloudTrail-Insight_{REGION}_\d{{8}}T\d{{4}}Z_[A-Za-z0-9]{{16}}\.json\.gz$"
)


def stamp(minute):
    return datetime.fromtimestamp(minute * 60 + random.randrange(60), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp_minute(minute):
    return datetime.fromtimestamp(minute * 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def call(minute, name="RunInstances", who="svc", error=None):
    r = record(eventTime=stamp(minute), awsRegion=REGION, eventName=name)
    r["userIdentity"]["arn"] = f"arn:aws:iam::{ACCOUNT_A}:user/{who}"
    if error:
        r["errorCode"] = error
        r["errorMessage"] = "You are not authorized to perform this operation."
    return r


def traffic(now_minute, burst_minute):
    """27 hours of a call every four minutes, then 40 calls and 30 failures (by the
    intruder) in the burst minute, in time order."""
    records = []
    for minute in range(now_minute - 27 * 60, now_minute):
        if minute % 4 == 0:
            records.append(call(minute))
        if minute == burst_minute:
            records += [call(minute, who="intruder") for _ in range(40)]
            records += [call(minute, name="DescribeInstances", who="intruder", error="Client.UnauthorizedOperation")
                        for _ in range(30)]
    for r in records:
        if r["eventName"] == "DescribeInstances":
            r["readOnly"] = True
    records.sort(key=lambda r: r["eventTime"])
    return records


def scan(workdir, records):
    """`cairn insights scan` over `records` as one log file in AWS's tree: (Insights, summary)."""
    tree = workdir / "logs" / "AWSLogs" / ACCOUNT_A / "CloudTrail" / REGION
    tree.mkdir(parents=True)
    with gzip.open(tree / "calls.json.gz", "wt") as f:
        json.dump({"Records": records}, f)
    out = subprocess.run([BIN, "insights", "scan", str(workdir / "logs"), "--learning-minutes", "60"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()], out.stderr


def watch_trail(ct, **extra):
    """A logging multi-region trail "watch" with both Insights types."""
    ct.create_trail(Name="watch", S3BucketName="trail-bucket", S3KeyPrefix="watch", IsMultiRegionTrail=True, **extra)
    ct.put_insight_selectors(TrailName="watch", InsightSelectors=[
        {"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}])
    ct.start_logging(Name="watch")


def insight_files(cairn, prefix):
    """The Insights files of the trail with S3KeyPrefix `prefix`: key → records."""
    return {key: records for key, records in local_objects(cairn).items()
            if key.startswith(prefix + "/") and "/CloudTrail-Insight/" in key}


def send(cairn, records):
    """Sends `records` to the bulk endpoint in the Insights region; every one is taken."""
    status, body = put(cairn, "alice", {"Records": records}, region=REGION)
    assert status == 200 and body["failed"] == [], body


def digested_keys(root):
    """Every file the trail's digests list."""
    listed = set()
    for path in root.rglob("*_CloudTrail-Digest_*.json.gz"):
        with gzip.open(path, "rt") as f:
            listed |= {entry["s3Object"] for entry in json.load(f)["logFiles"]}
    return listed


def validate_locally(workdir, cairn, keys, trail_arn, start):
    """`cairn validate-logs` on the local bucket's directory for the Insights' region, with
    the region's keys from ListPublicKeys (`keys`, a client of that region)."""
    keys_file = workdir / "keys.json"
    keys_file.write_text(json.dumps({"PublicKeyList": [
        {"Fingerprint": k["Fingerprint"], "Value": base64.b64encode(k["Value"]).decode()}
        for k in keys.list_public_keys()["PublicKeyList"]]}))
    out = subprocess.run(
        [BIN, "validate-logs", "--trail-arn", trail_arn, "--start-time", start,
         "--local", str(cairn.data_dir / "buckets" / "trail-bucket"), "--s3-bucket", "trail-bucket",
         "--s3-prefix", "watch", "--region", REGION, "--public-keys", str(keys_file), "--verbose"],
        capture_output=True, text=True, env=dict(os.environ, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY=""))
    return out.returncode, out.stdout


def test_bursts_become_insights_in_history_files_and_log_group(workdir):
    random.seed(7)
    began = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    hook = Webhook()  # refuses its first POST
    cairn = serve(workdir, lambda data: trails_config(
        data, tail=f"[insights]\nlearning_minutes = 60\nwebhook = \"{hook.url}\"\n"))
    try:
        ct, logs = cairn.client(), cairn.client(service="logs")
        # Insights events belong to the region of the calls they are about.
        history = cairn.client(region=REGION)
        logs.create_log_group(logGroupName="insights")
        watch_trail(ct, EnableLogFileValidation=True, CloudWatchLogsLogGroupArn=group_arn("insights"),
                    CloudWatchLogsRoleArn=ROLE)
        ct.create_trail(Name="plain", S3BucketName="trail-bucket", S3KeyPrefix="plain", IsMultiRegionTrail=True)
        ct.start_logging(Name="plain")

        now_minute = int(time.time()) // 60
        burst = now_minute - 45
        records = traffic(now_minute, burst)
        for i in range(0, len(records), 500):
            send(cairn, records[i:i + 500])

        def found():
            events = history.lookup_events(EventCategory="insight", MaxResults=50)["Events"]
            return len(events) >= 4 and events
        events = wait_for(found, timeout=60, interval=1)
        insights = [json.loads(e["CloudTrailEvent"]) for e in events]
        assert len(insights) == 4, insights
        by = {}
        for r in insights:
            d = r["insightDetails"]
            by[(d["insightType"], d["state"])] = r
            assert r["eventType"] == "AwsCloudTrailInsight" and r["eventCategory"] == "Insight"
            assert r["recipientAccountId"] == ACCOUNT_A and r["awsRegion"] == REGION
        calls_start = by[("ApiCallRateInsight", "Start")]
        calls_end = by[("ApiCallRateInsight", "End")]
        errors_start = by[("ApiErrorRateInsight", "Start")]
        assert calls_start["sharedEventID"] == calls_end["sharedEventID"] != errors_start["sharedEventID"]
        assert calls_start["insightDetails"]["eventName"] == "RunInstances"
        assert errors_start["insightDetails"]["eventName"] == "DescribeInstances"
        assert errors_start["insightDetails"]["errorCode"] == "Client.UnauthorizedOperation"
        started = datetime.fromtimestamp(burst * 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert calls_start["eventTime"] == errors_start["eventTime"] == started
        stats = calls_start["insightDetails"]["insightContext"]["statistics"]
        assert stats["insight"]["average"] >= 40 and stats["baseline"]["average"] < 1
        who = calls_end["insightDetails"]["insightContext"]["attributions"][0]
        assert who["attribute"] == "userIdentityArn" and who["insight"][0]["value"] == INTRUDER
        # LookupEvents names an Insights event by its subject API.
        named = history.lookup_events(EventCategory="insight", LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "DescribeInstances"}])["Events"]
        assert {e["EventId"] for e in named} == {r["eventID"] for r in insights
                                                 if r["insightDetails"]["eventName"] == "DescribeInstances"}

        # The trail that asked gets them in CloudTrail-Insight/ files; the other gets none.
        ids = {r["eventID"] for r in insights}

        def delivered():
            files = insight_files(cairn, "watch")
            got = [r["eventID"] for records in files.values() for r in records]
            return sorted(got) == sorted(ids) and files
        files = wait_for(delivered, timeout=30, interval=0.5)
        assert all(INSIGHT_KEY.match(key) for key in files), list(files)
        assert insight_files(cairn, "plain") == {}
        # Digests list the Insights files like log files, and the validator finds them intact.
        root = cairn.data_dir / "buckets" / "trail-bucket"
        wait_for(lambda: set(files) <= digested_keys(root), timeout=30, interval=0.5)
        code, report = validate_locally(workdir, cairn, history, f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_A}:trail/watch",
                                        began)
        assert code == 0, report
        for key in files:
            assert f"Log file\ts3://trail-bucket/{key}\tvalid" in report, report
        # …and in its log group, with the other events.
        messages = [json.loads(e["message"]) for e in
                    logs.filter_log_events(logGroupName="insights",
                                           filterPattern='{ $.eventCategory = "Insight" }')["events"]]
        assert sorted(m["eventID"] for m in messages) == sorted(ids)

        # The webhook gets each one in EventBridge's envelope, the refused one again.
        wait_for(lambda: len(hook.bodies) == 4, timeout=30, interval=0.3)
        by_id = {r["eventID"]: r for r in insights}
        for body in hook.bodies:
            assert body["detail-type"] == "AWS Insight via CloudTrail" and body["source"] == "aws.cloudtrail"
            assert body["account"] == ACCOUNT_A and body["region"] == REGION and body["resources"] == []
            assert body["detail"] == by_id[body["detail"]["eventID"]] and body["time"] == body["detail"]["eventTime"]
        assert hook.refused == 1 and len({b["id"] for b in hook.bodies}) == 4

        # An Insights record another producer sends reaches the history, not the webhook:
        # it only gets the Insights Cairn decided.
        foreign = dict(calls_start, eventID=str(uuid.uuid4()), sharedEventID=str(uuid.uuid4()))
        send(cairn, [foreign])
        wait_for(lambda: foreign["eventID"] in {e["EventId"] for e in history.lookup_events(
            EventCategory="insight", MaxResults=50)["Events"]}, timeout=10, interval=0.3)
        time.sleep(3)
        assert len(hook.bodies) == 4, [b["detail"]["eventID"] for b in hook.bodies]

        # `cairn insights scan` over the same calls as a log file finds the same Insights.
        scanned, summary = scan(workdir, records)
        assert sorted(r["eventID"] for r in scanned) == sorted(ids), (summary, scanned)
        assert "2 Insights" in summary and "top caller " + INTRUDER in summary, summary

        # After a restart the consumer resumes at its saved cursor: each Insight is there once.
        cairn.stop()
        cairn.start()
        time.sleep(3)
        again = cairn.client(region=REGION).lookup_events(EventCategory="insight")["Events"]
        assert sorted(e["EventId"] for e in again) == sorted(ids | {foreign["eventID"]})
        assert len(hook.bodies) == 4, "nothing posted twice"
    finally:
        cairn.stop()


def test_open_insights_survive_a_crash_and_a_restart(workdir):
    """The calls up to four minutes into the burst, then a crash (the detector is rebuilt
    from the journal) and a clean restart (it is restored from its saved state) while both
    Insights are open; the rest of the calls then close them with the Ends a scan of all
    the calls gives."""
    random.seed(8)
    cairn = serve(workdir, lambda data: trails_config(data, tail="[insights]\nlearning_minutes = 60\n"))
    try:
        watch_trail(cairn.client())
        now_minute = int(time.time()) // 60
        burst = now_minute - 45
        # A call four minutes in closes the burst's minute, so the Starts are decided
        # before the crash, whatever minute the test runs in.
        records = sorted(traffic(now_minute, burst) + [call(burst + 4)], key=lambda r: r["eventTime"])
        split = next(i for i, r in enumerate(records) if r["eventTime"] >= stamp_minute(burst + 5))
        send(cairn, records[:split])

        def states():
            """The states delivered to the trail. (Read from its files: a call in the region,
            LookupEvents included, would close the region's minutes up to its own.)"""
            files = insight_files(cairn, "watch")
            return sorted(r["insightDetails"]["state"] for records in files.values() for r in records)
        wait_for(lambda: states() == ["Start", "Start"], timeout=30, interval=0.3)

        cairn.kill()
        cairn.start()
        # Shutdown saves the detector, rebuilt from the journal by now.
        cairn.stop()
        assert (cairn.data_dir / "insights" / "detector.bin").exists()
        cairn.start()
        # A restored account and region waits for late calls (ten seconds) before the clock
        # closes its minutes, so nothing has ended yet; an End decided at once would be
        # delivered within three seconds.
        time.sleep(3)
        assert states() == ["Start", "Start"]
        send(cairn, records[split:])
        wait_for(lambda: len(states()) == 4, timeout=60, interval=0.5)
        events = cairn.client(region=REGION).lookup_events(EventCategory="insight")["Events"]
        live = sorted((json.loads(e["CloudTrailEvent"]) for e in events), key=lambda r: r["eventID"])
        scanned, summary = scan(workdir, records)
        assert live == sorted(scanned, key=lambda r: r["eventID"]), summary
    finally:
        cairn.stop()


def sample_of(text, name):
    """The value of an unlabelled series in /metrics text."""
    values = [float(line.split(" ")[1]) for line in text.splitlines() if line.startswith(name + " ")]
    assert len(values) == 1, (name, values)
    return values[0]


def minute_of(r):
    return int(datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()) // 60


def points(answer):
    return [(int(t.timestamp()), v) for t, v in zip(answer["Timestamps"], answer["Values"])]


def test_list_insights_metric_data_gives_what_each_series_counted(workdir):
    random.seed(11)
    cairn = serve(workdir, lambda data: trails_config(data, tail="[insights]\nlearning_minutes = 60\n"))
    try:
        watch_trail(cairn.client())
        now_minute = int(time.time()) // 60
        burst = now_minute - 45
        records = traffic(now_minute, burst)
        send(cairn, records)
        ct = cairn.client(region=REGION)
        wait_for(lambda: len(ct.lookup_events(EventCategory="insight")["Events"]) >= 4, timeout=60, interval=1)

        # Minutes well before now are closed: their counts are final.
        end = (burst + 10) * 60
        start = (now_minute - 27 * 60) * 60
        writes = {}
        for r in records:
            if r["eventName"] == "RunInstances" and start <= minute_of(r) * 60 < end:
                writes[minute_of(r)] = writes.get(minute_of(r), 0) + 1
        per_minute = [(m * 60, float(n)) for m, n in sorted(writes.items())]
        rate = dict(EventSource="ec2.amazonaws.com", EventName="RunInstances", InsightType="ApiCallRateInsight")
        answer = ct.list_insights_metric_data(StartTime=start, EndTime=end, Period=60, **rate)
        assert points(answer) == per_minute
        assert answer["EventName"] == "RunInstances" and "NextToken" not in answer and "ErrorCode" not in answer

        # /metrics shows what the consumer read (every event sent, and the trail's own calls)
        # and the CPU it took.
        text = metrics(cairn)
        read = sample_of(text, "cairn_insights_events_read_total")
        assert len(records) < read < len(records) + 200, read
        assert 0 < sample_of(text, "cairn_insights_cpu_seconds_total") < 60

        # One-hour points (the default period) sum their minutes; points sit on the hour,
        # from StartTime on.
        hour_end = end // 3600 * 3600
        hourly = {}
        for t, n in per_minute:
            if start <= t // 3600 * 3600 and t < hour_end:
                hourly[t // 3600 * 3600] = hourly.get(t // 3600 * 3600, 0) + n
        answer = ct.list_insights_metric_data(StartTime=start, EndTime=hour_end, **rate)
        assert points(answer) == sorted(hourly.items())

        # Failures per error code, here in five-minute points.
        errors = dict(EventSource="ec2.amazonaws.com", EventName="DescribeInstances",
                      InsightType="ApiErrorRateInsight", ErrorCode="Client.UnauthorizedOperation")
        answer = ct.list_insights_metric_data(StartTime=start, EndTime=end, Period=300, **errors)
        assert points(answer) == [(burst * 60 // 300 * 300, 30.0)]
        assert answer["ErrorCode"] == "Client.UnauthorizedOperation"

        # Zeros filled in, a page at a time.
        window = dict(StartTime=(burst - 3) * 60, EndTime=(burst + 7) * 60, Period=60, DataType="FillWithZeros")
        pages, token = [], None
        while True:
            more = {"NextToken": token} if token else {}
            answer = ct.list_insights_metric_data(MaxResults=4, **window, **rate, **more)
            pages.append(points(answer))
            token = answer.get("NextToken")
            if not token:
                break
        assert [len(p) for p in pages] == [4, 4, 2]
        filled = [p for page in pages for p in page]
        assert filled == [((burst + k) * 60, float(writes.get(burst + k, 0))) for k in range(-3, 7)]
        assert writes[burst] >= 40, "the window holds the burst, so the points above are not all zero"

        # Another account's series, another region's, and bad parameters.
        assert points(cairn.client("bob", region=REGION).list_insights_metric_data(
            StartTime=start, EndTime=end, Period=60, **rate)) == []
        assert points(cairn.client().list_insights_metric_data(StartTime=start, EndTime=end, Period=60, **rate)) == []
        for bad in [dict(rate, Period=120), dict(errors, ErrorCode=None), dict(rate, ErrorCode="Throttling"),
                    dict(rate, EventSource="ec2"), dict(rate, DataType="All")]:
            bad = {k: v for k, v in bad.items() if v is not None}
            error = error_of(ct.list_insights_metric_data, **bad)
            assert error["Code"] == "InvalidParameterException", (bad, error)
        error = error_of(ct.list_insights_metric_data, NextToken="00" * 40, **rate)
        assert error["Code"] == "InvalidParameterException"
        error = error_of(ct.list_insights_metric_data, TrailName="watch", **rate)
        assert error["Code"] == "UnsupportedOperationException"

        # The counts survive a restart: the open day from the saved state.
        cairn.stop()
        cairn.start()
        ct = cairn.client(region=REGION)
        assert points(ct.list_insights_metric_data(StartTime=start, EndTime=end, Period=60, **rate)) == per_minute
    finally:
        cairn.stop()


def test_scan_reads_logs_in_an_s3_bucket(workdir, moto_s3):
    """`cairn insights scan s3://BUCKET/PREFIX` finds in a bucket what it finds on disk."""
    port, s3 = moto_s3
    random.seed(9)
    now_minute = int(time.time()) // 60
    records = traffic(now_minute, now_minute - 45)
    local, _ = scan(workdir, records)
    assert len(local) == 4
    s3.create_bucket(Bucket="old-logs")
    body = gzip.compress(json.dumps({"Records": records}).encode())
    s3.put_object(Bucket="old-logs", Key=f"team/AWSLogs/{ACCOUNT_A}/CloudTrail/{REGION}/calls.json.gz", Body=body)
    s3.put_object(Bucket="old-logs", Key="team/README.txt", Body=b"not a log file")
    s3.put_object(Bucket="old-logs", Key="elsewhere/calls.json.gz", Body=b"outside the prefix")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")

    def scan_s3(location):
        return subprocess.run([BIN, "insights", "scan", location, "--learning-minutes", "60",
                               "--s3-endpoint-url", f"http://127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=60, env=env)
    out = scan_s3("s3://old-logs/team/")
    assert out.returncode == 0, out.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()] == local
    assert "scanned 1 files" in out.stderr, out.stderr
    missing = scan_s3("s3://no-such-bucket/")
    assert missing.returncode != 0 and "no-such-bucket" in missing.stderr, missing.stderr


def plot(workdir, *args):
    """`cairn insights plot` over the logs `scan` wrote: (exit status, SVG root or None, stderr)."""
    out_file = workdir / "plot.svg"
    out_file.unlink(missing_ok=True)
    out = subprocess.run([BIN, "insights", "plot", str(workdir / "logs"), "--learning-minutes", "60",
                          "--output", str(out_file), *args], capture_output=True, text=True, timeout=60)
    root = ElementTree.parse(out_file).getroot() if out.returncode == 0 else None
    return out.returncode, root, out.stderr


def test_plot_draws_a_series_its_limits_and_its_insights(workdir):
    """`cairn insights plot` draws the series an Insight was found on: a panel per window
    length, the Insight's window where scan put it, the burst inside it, above the limit."""
    random.seed(11)
    now_minute = int(time.time()) // 60
    burst = now_minute - 45
    records = traffic(now_minute, burst)
    scanned, _ = scan(workdir, records)
    found = {(r["insightDetails"]["eventName"], r["insightDetails"]["state"]): r["eventTime"] for r in scanned}

    code, root, stderr = plot(workdir, "--event-source", "ec2.amazonaws.com", "--event-name", "RunInstances")
    assert code == 0, stderr
    assert "1 Insights" in stderr, stderr
    svg = "{http://www.w3.org/2000/svg}"
    title = root.find(f"{svg}text").text
    assert title == f"ec2.amazonaws.com:RunInstances ApiCallRateInsight, account {ACCOUNT_A} {REGION}"
    panels = root.findall(f"{svg}g[@class='panel']")
    assert [p.get("data-window") for p in panels] == ["1", "5", "15", "30"]
    for panel in panels:
        [insight] = panel.findall(f"{svg}rect[@class='insight']")
        assert insight.get("data-start") == found[("RunInstances", "Start")]
        assert insight.get("data-end") == found[("RunInstances", "End")]
    # In the one-minute panel the highest point is the burst: inside the Insight's window
    # and above the limit line there.
    minute = panels[0]
    calls = [tuple(map(float, xy.split(","))) for xy in minute.find(f"{svg}polyline[@class='calls']").get("points").split()]
    peak_x, peak_y = min(calls, key=lambda xy: xy[1])
    insight = minute.find(f"{svg}rect[@class='insight']")
    left = float(insight.get("x"))
    assert left <= peak_x < left + float(insight.get("width"))
    limit = [tuple(map(float, xy.split(","))) for line in minute.findall(f"{svg}polyline[@class='limit']")
             for xy in line.get("points").split()]
    assert min(y for x, y in limit if abs(x - peak_x) < 0.5) > peak_y, "the burst is above its limit"
    assert minute.findall(f"{svg}rect[@class='learning']"), "the first hour is learning"

    # The failures' series, by error code.
    code, root, stderr = plot(workdir, "--event-source", "ec2.amazonaws.com", "--event-name", "DescribeInstances",
                              "--insight-type", "ApiErrorRateInsight", "--error-code", "Client.UnauthorizedOperation")
    assert code == 0, stderr
    assert "ApiErrorRateInsight (Client.UnauthorizedOperation)" in root.find(f"{svg}text").text
    assert root.find(f"{svg}g[@class='panel']/{svg}rect[@class='insight']").get("data-start") == found[("DescribeInstances", "Start")]

    # Read-only calls make no call-rate series; a series must be named exactly once.
    code, _, stderr = plot(workdir, "--event-source", "ec2.amazonaws.com", "--event-name", "DescribeInstances")
    assert code != 0 and "no write calls of ec2.amazonaws.com:DescribeInstances" in stderr, stderr
    code, _, stderr = plot(workdir, "--event-source", "ec2.amazonaws.com", "--event-name", "RunInstances",
                           "--error-code", "AccessDenied")
    assert code != 0 and "--error-code goes with --insight-type ApiErrorRateInsight" in stderr, stderr
    elsewhere = workdir / "logs" / "AWSLogs" / ACCOUNT_A / "CloudTrail" / "us-east-2"
    elsewhere.mkdir(parents=True)
    with gzip.open(elsewhere / "calls.json.gz", "wt") as f:
        json.dump({"Records": [dict(r, awsRegion="us-east-2") for r in records]}, f)
    code, _, stderr = plot(workdir, "--event-source", "ec2.amazonaws.com", "--event-name", "RunInstances")
    assert code != 0 and "2 series match" in stderr and "us-east-2" in stderr, stderr
    code, root, stderr = plot(workdir, "--event-source", "ec2.amazonaws.com", "--event-name", "RunInstances",
                              "--event-region", "us-east-2")
    assert code == 0 and root.find(f"{svg}text").text.endswith("us-east-2"), stderr
