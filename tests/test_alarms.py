"""Alarms over metric filters, and the CIS pack enabled with one setting: firing and
resolved notifications in Alertmanager's webhook shape, one per alarm and series, retried
until the webhook takes them."""

import http.server
import json
import subprocess
import threading

from conftest import ACCOUNT_A, BIN, free_port, serve, trails_config, wait_for
from test_bulk import record
from test_delivery import ROOT_IDENTITY, marked, send
from test_log_delivery import EC2_CALLS, ROLE, group_arn, put_counter

CIS_GROUP = "CloudTrail/CISMonitoring"


class Webhook:
    """Collects POSTed JSON bodies; refuses the first one, as a receiver that is down."""

    def __init__(self):
        self.bodies = []
        self.refused = 0
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.refused == 0:
                    hook.refused += 1
                    self.send_response(503)
                else:
                    hook.bodies.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def alerts(self, status=None):
        out = [(b["status"], b["alerts"][0]) for b in self.bodies]
        return [a for s, a in out if status is None or s == status]

    def names(self, status):
        return sorted(a["labels"]["alertname"] for a in self.alerts(status))


def test_cis_pack_and_alarms_notify_alertmanager_receivers(workdir):
    hook = Webhook()
    tail = (f'[alerting]\nwebhook = "{hook.url}"\n[cis]\nenabled = true\nperiod_secs = 2\n'
            '[[alarms]]\nname = "Ec2BurstEuWest1"\nnamespace = "Audit"\nmetric_name = "Ec2Calls"\n'
            'dimensions = { Region = "eu-west-1" }\nperiod_secs = 2\nthreshold = 3\n')
    cairn = serve(workdir, lambda d: trails_config(d, tail=tail))
    try:
        ct, logs = cairn.client(), cairn.client(service="logs")
        # The one setting gives the CIS group its 15 filters on creation.
        logs.create_log_group(logGroupName=CIS_GROUP)
        filters = logs.describe_metric_filters(logGroupName=CIS_GROUP)["metricFilters"]
        assert len(filters) == 15
        assert {f["metricTransformations"][0]["metricNamespace"] for f in filters} == {"CISBenchmark"}
        put_counter(logs, CIS_GROUP, "ec2", EC2_CALLS, "Ec2Calls", "Audit", {"Region": "$.awsRegion"})
        ct.create_trail(Name="cis", S3BucketName="trail-bucket", IsMultiRegionTrail=True,
                        CloudWatchLogsLogGroupArn=group_arn(CIS_GROUP), CloudWatchLogsRoleArn=ROLE)
        ct.start_logging(Name="cis")

        denied = record(ACCOUNT_A, errorCode="AccessDenied", errorMessage="User is not authorized", eventSource="s3.amazonaws.com")
        quiet = record(ACCOUNT_A, eventSource="s3.amazonaws.com", eventName="GetBucketAcl", readOnly=True)
        send(cairn, "alice", [marked(userIdentity=ROOT_IDENTITY, source="s3.amazonaws.com"), denied, quiet])
        send(cairn, "alice", [marked(region="eu-west-1") for _ in range(3)] + [marked(region="us-east-1") for _ in range(3)])

        # The trail's own StartLogging is a CloudTrail configuration change (CIS 4.5).
        wanted = ["CloudTrailConfigurationChanges", "Ec2BurstEuWest1", "RootAccountUsage", "UnauthorizedAPICalls"]
        wait_for(lambda: hook.names("firing") == wanted, timeout=30, interval=0.2)
        assert hook.refused == 1, "the first notification was refused and sent again"
        alert = next(a for a in hook.alerts("firing") if a["labels"]["alertname"] == "RootAccountUsage")
        assert alert["labels"]["account"] == ACCOUNT_A and alert["labels"]["log_group"] == CIS_GROUP
        assert alert["endsAt"] == "0001-01-01T00:00:00Z" and alert["startsAt"].endswith("Z")
        assert alert["annotations"]["summary"].startswith("CISBenchmark RootAccountUsage: Sum 1")
        body = next(b for b in hook.bodies if b["alerts"][0] == alert)
        assert body["version"] == "4" and body["receiver"] == "cairn" and body["groupLabels"] == {"alertname": "RootAccountUsage"}
        burst = next(a for a in hook.alerts("firing") if a["labels"]["alertname"] == "Ec2BurstEuWest1")
        assert burst["labels"]["Region"] == "eu-west-1"

        # Two seconds without more: each resolves, once.
        wait_for(lambda: hook.names("resolved") == wanted, timeout=30, interval=0.2)
        resolved = next(a for a in hook.alerts("resolved") if a["labels"]["alertname"] == "RootAccountUsage")
        assert resolved["startsAt"] == alert["startsAt"] and resolved["endsAt"] >= resolved["startsAt"]
        assert len(hook.bodies) == 2 * len(wanted)
    finally:
        cairn.stop()
        hook.server.shutdown()


def test_alarm_settings_are_checked(workdir):
    bad = '[[alarms]]\nname = "x"\nnamespace = "n"\nmetric_name = "m"\nthreshold = 1\n'
    config = workdir / "bad.toml"
    config.write_text(trails_config(workdir / "data", tail=bad))
    out = subprocess.run([BIN, "serve", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "alarms[0].webhook" in out.stderr


def test_a_firing_alarm_resolves_after_a_restart(workdir):
    """An alarm firing when the server restarts is neither fired again nor forgotten: its
    resolved notification comes when its period passes."""
    hook = Webhook()
    tail = (f'[alerting]\nwebhook = "{hook.url}"\n'
            '[[alarms]]\nname = "Ec2Any"\nnamespace = "Audit"\nmetric_name = "Ec2Calls"\n'
            'period_secs = 8\nthreshold = 1\n')
    cairn = serve(workdir, lambda d: trails_config(d, tail=tail))
    try:
        ct, logs = cairn.client(), cairn.client(service="logs")
        logs.create_log_group(logGroupName="watched")
        put_counter(logs, "watched", "ec2", EC2_CALLS, "Ec2Calls", "Audit")
        ct.create_trail(Name="watched", S3BucketName="trail-bucket", IsMultiRegionTrail=True,
                        CloudWatchLogsLogGroupArn=group_arn("watched"), CloudWatchLogsRoleArn=ROLE)
        ct.start_logging(Name="watched")
        send(cairn, "alice", [marked()])
        wait_for(lambda: hook.names("firing") == ["Ec2Any"], timeout=20, interval=0.1)
        cairn.stop()
        cairn.start()
        assert hook.names("resolved") == [], "still firing through the restart"
        wait_for(lambda: hook.names("resolved") == ["Ec2Any"], timeout=20, interval=0.2)
        [fired] = hook.alerts("firing")
        [resolved] = hook.alerts("resolved")
        assert resolved["startsAt"] == fired["startsAt"]
        assert len(hook.bodies) == 2, "fired once, resolved once"
    finally:
        cairn.stop()
        hook.server.shutdown()
