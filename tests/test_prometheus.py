"""A real Prometheus server scrapes /metrics with a bearer token: metric filters' counters
arrive with their labels (dimension values escaped), and the scrape itself is healthy."""

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import ACCOUNT_A, free_port, serve, trails_config, wait_for
from test_bulk import record
from test_delivery import ROOT_IDENTITY, marked, send
from test_log_delivery import EC2_CALLS, ROLE, ROOT_USAGE, group_arn, put_counter


def query(port, expr):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture
def token_cairn(workdir):
    """A server whose /metrics requires a bearer token (in `workdir/metrics.token`)."""
    token = workdir / "metrics.token"
    token.write_text("s3cret-scrape-token\n")
    os.chmod(token, 0o600)
    server = serve(workdir, lambda d: trails_config(d, tail=f'[metrics]\nbearer_token_file = "{token}"\n'))
    yield server
    server.stop()


def test_prometheus_scrapes_metric_filter_counters(token_cairn, workdir):
    binary = shutil.which("prometheus")
    assert binary, "the test command installs Debian's prometheus package"
    trails_cairn = token_cairn
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(trails_cairn.endpoint + "/metrics", timeout=10)
    assert refused.value.code == 401
    ct, logs = trails_cairn.client(), trails_cairn.client(service="logs")
    logs.create_log_group(logGroupName="CloudTrail/metrics")
    put_counter(logs, "CloudTrail/metrics", "root", ROOT_USAGE, "RootAccountUsage", "CISBenchmark", default=0)
    put_counter(logs, "CloudTrail/metrics", "agents", EC2_CALLS, "CallsByAgent", "Audit", {"UserAgent": "$.userAgent"})
    ct.create_trail(Name="scraped", S3BucketName="trail-bucket", CloudWatchLogsLogGroupArn=group_arn("CloudTrail/metrics"),
                    CloudWatchLogsRoleArn=ROLE)
    ct.start_logging(Name="scraped")

    port = free_port()
    target = trails_cairn.endpoint.removeprefix("http://")
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        f"scrape_configs:\n  - job_name: cairn\n    authorization:\n      credentials_file: {workdir / 'metrics.token'}\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    prometheus = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        def up():
            try:
                result = query(port, 'up{job="cairn"}')
            except OSError:
                return None
            return result and result[0]["value"][1] == "1"
        wait_for(up, timeout=60, interval=0.5)

        odd_agent = 'agent "quoted" \\ slash'
        send(trails_cairn, "alice", [marked(userIdentity=ROOT_IDENTITY, source="s3.amazonaws.com") for _ in range(2)])
        send(trails_cairn, "alice", [record(ACCOUNT_A, userAgent=odd_agent) for _ in range(3)])

        def scraped(expr, value):
            result = query(port, expr)
            return result if result and float(result[0]["value"][1]) == value else None

        root_series = wait_for(lambda: scraped('cairn_log_metric_total{metric_name="RootAccountUsage"}', 2), timeout=30)
        labels = root_series[0]["metric"]
        assert labels["account"] == ACCOUNT_A and labels["region"] == "us-east-1"
        assert labels["log_group"] == "CloudTrail/metrics" and labels["namespace"] == "CISBenchmark"
        agent = wait_for(lambda: scraped('cairn_log_metric_total{metric_name="CallsByAgent"}', 3), timeout=30)
        assert agent[0]["metric"]["UserAgent"] == odd_agent
        assert float(query(port, 'up{job="cairn"}')[0]["value"][1]) == 1
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
