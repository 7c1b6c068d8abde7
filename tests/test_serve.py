"""`cairn serve`: the embedded default, configuration errors, and crash safety."""

import json
import os
import random
import re
import subprocess
import threading

import botocore.exceptions

from conftest import BIN, Cairn, all_records, config_text, kill_during


def test_embedded_default_prints_working_commands(workdir):
    data = workdir / "cairn-data"
    server = Cairn(data, env={"CAIRN_LISTEN": "127.0.0.1:0", "CAIRN_DATA_DIR": str(data)}).start()
    try:
        exports = dict(re.findall(r"export (AWS_\w+)=(\S+)", server.banner))
        assert set(exports) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
        assert "123456789012" in server.banner
        command = re.search(r"^\s*(aws --endpoint-url .*lookup-events.*)$", server.banner, re.M).group(1)
        env = dict(os.environ, **exports)
        for _ in range(2):  # the first call records itself; the second sees it
            out = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, check=True)
        events = json.loads(out.stdout)["Events"]
        assert events and events[0]["EventName"] == "LookupEvents"
        assert json.loads(events[0]["CloudTrailEvent"])["recipientAccountId"] == "123456789012"
        assert oct((data / "accounts.toml").stat().st_mode & 0o777) == "0o600"
    finally:
        server.stop()
    # The same account and key on the next start.
    again = Cairn(data, env={"CAIRN_LISTEN": "127.0.0.1:0", "CAIRN_DATA_DIR": str(data)}).start()
    try:
        assert dict(re.findall(r"export (AWS_\w+)=(\S+)", again.banner)) == exports
    finally:
        again.stop()


def refuse(workdir, text):
    config = workdir / "bad.toml"
    config.write_text(text)
    out = subprocess.run([BIN, "serve", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    return out.stderr


def test_bad_config_is_refused_naming_the_setting(workdir):
    good = config_text(workdir / "data")
    assert "retention_days" in refuse(workdir, "retention_days = 0\n" + good)
    assert "colour" in refuse(workdir, 'colour = "blue"\n' + good)
    assert "accounts[0].id" in refuse(workdir, good.replace('id = "111111111111"', 'id = "12"'))
    assert "listen" in refuse(workdir, good.replace('listen = "127.0.0.1:0"', 'listen = "somewhere"'))


def test_no_acknowledged_event_is_lost_to_sigkill(workdir):
    """Kill -9 the server several times while six clients write; after every restart each
    acknowledged call's record is in the history exactly once."""
    config = workdir / "cairn.toml"
    config.write_text(config_text(workdir / "data"))
    server = Cairn(workdir / "data", config=config)
    acknowledged = []
    lock = threading.Lock()
    rng = random.Random(7)

    for round_ in range(4):
        server.start()

        def writer(stop):
            client = server.client("alice")
            while not stop.is_set():
                try:
                    r = client.lookup_events(MaxResults=1)
                except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                    return  # the server died mid-request: that call was not acknowledged
                with lock:
                    acknowledged.append(r["ResponseMetadata"]["RequestId"])

        kill_during(server, [writer] * 6, rng.uniform(0.5, 2.0))
    assert len(acknowledged) > 100

    server.start()
    try:
        client = server.client("alice")
        seen = all_records(client)
        request_ids = [r["requestID"] for r in seen]
        missing = set(acknowledged) - set(request_ids)
        assert not missing, f"{len(missing)} acknowledged events lost"
        event_ids = [r["eventID"] for r in seen]
        assert len(event_ids) == len(set(event_ids)), "an event was stored twice"
    finally:
        server.stop()
