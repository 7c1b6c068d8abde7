"""Authorization: users' IAM policies decide what they may do, through boto3, the AWS CLI and
the data endpoints; refusals are AWS's AccessDeniedException and are recorded."""

import json
import subprocess

from conftest import ACCOUNT_A, ACCOUNT_B, BIN, USERS, config_text, error_of, lookup_all
from sigv4_client import send, signed_request
from test_bulk import put, record
from test_channels import create as create_channel, event_data

TRAIL_A = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_A}:trail"
TRAIL_B = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_B}:trail"


def denied(call, **kw):
    """The message of the AccessDeniedException a call is refused with."""
    error = error_of(call, **kw)
    assert error["Code"] == "AccessDeniedException", error
    return error["Message"]


def recorded(client, event_name):
    """The caller's account's records of `event_name`, newest first."""
    events = lookup_all(client, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": event_name}])
    return [json.loads(e["CloudTrailEvent"]) for e in events]


def test_a_read_only_user_reads_and_every_change_is_refused_and_recorded(trails_cairn):
    cairn = trails_cairn
    alice, auditor = cairn.client("alice"), cairn.client("auditor")
    alice.create_trail(Name="main", S3BucketName="trail-bucket")
    arn = create_channel(alice)["ChannelArn"]

    assert [t["Name"] for t in auditor.describe_trails()["trailList"]] == ["main"]
    assert auditor.get_trail(Name="main")["Trail"]["Name"] == "main"
    assert auditor.get_trail_status(Name="main")["IsLogging"] is False
    auditor.lookup_events(MaxResults=5)
    cairn.client("auditor", service="logs").describe_log_groups()

    message = denied(auditor.create_trail, Name="mine", S3BucketName="trail-bucket")
    assert message == (f"User: arn:aws:iam::{ACCOUNT_A}:user/auditor is not authorized to perform: "
                       f"cloudtrail:CreateTrail on resource: {TRAIL_A}/mine because no identity-based policy "
                       "allows the cloudtrail:CreateTrail action")
    denied(auditor.start_logging, Name="main")
    denied(auditor.delete_trail, Name=f"{TRAIL_A}/main")
    denied(auditor.put_event_selectors, TrailName="main", EventSelectors=[{"ReadWriteType": "All"}])
    denied(auditor.add_tags, ResourceId=f"{TRAIL_A}/main", TagsList=[{"Key": "k", "Value": "v"}])
    denied(auditor.delete_channel, Channel=arn)
    assert "logs:CreateLogGroup on resource: arn:aws:logs:us-east-1:111111111111:log-group:mine" in denied(
        cairn.client("auditor", service="logs").create_log_group, logGroupName="mine")

    data = cairn.client("auditor", service="cloudtrail-data")
    assert "cloudtrail-data:PutAuditEvents on resource: " + arn in denied(
        data.put_audit_events, channelArn=arn, auditEvents=[{"id": "1", "eventData": event_data("u-1")}])
    status, body = put(cairn, "auditor", {"Records": [record()]})
    assert status == 403 and body["__type"] == "AccessDeniedException", body
    assert "cloudtrail:PutRecords on resource: *" in body["Message"]

    # Nothing changed: the trail stays as it was, the channel and the group never were.
    assert alice.get_trail_status(Name="main")["IsLogging"] is False
    assert [t["Name"] for t in alice.describe_trails()["trailList"]] == ["main"]
    assert alice.get_channel(Channel=arn)["ChannelArn"] == arn
    assert cairn.client("alice", service="logs").describe_log_groups()["logGroups"] == []
    assert alice.list_tags(ResourceIdList=[f"{TRAIL_A}/main"])["ResourceTagList"][0].get("TagsList", []) == []

    # Each refusal is in the account's history as AccessDenied, under the auditor's name.
    for event_name in ["CreateTrail", "StartLogging", "DeleteTrail", "PutEventSelectors", "AddTags",
                       "DeleteChannel", "CreateLogGroup", "PutAuditEvents", "PutRecords"]:
        refusals = [r for r in recorded(alice, event_name) if r["userIdentity"].get("userName") == "auditor"]
        assert len(refusals) == 1, event_name
        assert refusals[0]["errorCode"] == "AccessDenied", refusals[0]
        assert "is not authorized to perform" in refusals[0]["errorMessage"]
    # The allowed reads are recorded as the successes they were.
    reads = [r for r in recorded(alice, "GetTrail") if r["userIdentity"].get("userName") == "auditor"]
    assert len(reads) == 1 and "errorCode" not in reads[0]


def test_resource_patterns_and_an_explicit_deny_decide(trails_cairn):
    cairn = trails_cairn
    operator = cairn.client("operator")
    operator.create_trail(Name="app-audit", S3BucketName="trail-bucket")
    operator.start_logging(Name="app-audit")
    operator.put_event_selectors(TrailName="app-audit", EventSelectors=[{"ReadWriteType": "WriteOnly"}])
    assert operator.get_trail_status(Name=f"{TRAIL_B}/app-audit")["IsLogging"] is True

    # Outside the app-* pattern: no statement allows it.
    assert denied(operator.create_trail, Name="db-audit", S3BucketName="trail-bucket").endswith(
        "because no identity-based policy allows the cloudtrail:CreateTrail action")
    cairn.client("bob").create_trail(Name="db-audit", S3BucketName="trail-bucket")
    denied(operator.get_trail, Name="db-audit")
    # Inside it, but the Deny statement wins over the Allow.
    for call in (operator.stop_logging, operator.delete_trail):
        assert denied(call, Name="app-audit") == (
            f"User: arn:aws:iam::{ACCOUNT_B}:user/operator is not authorized to perform: "
            f"cloudtrail:{call.__name__.title().replace('_', '')} on resource: {TRAIL_B}/app-audit "
            "with an explicit deny in an identity-based policy")
    assert operator.get_trail_status(Name="app-audit")["IsLogging"] is True

    logs = cairn.client("operator", service="logs")
    logs.create_log_group(logGroupName="app-events")
    logs.put_metric_filter(logGroupName="app-events", filterName="errors", filterPattern="ERROR",
                           metricTransformations=[{"metricName": "Errors", "metricNamespace": "App",
                                                   "metricValue": "1"}])
    denied(logs.create_log_group, logGroupName="db-events")
    denied(logs.describe_log_groups)


def test_a_policy_never_reaches_into_another_account(trails_cairn):
    cairn = trails_cairn
    alice = cairn.client("alice")
    alice.create_trail(Name="app-a", S3BucketName="trail-bucket")
    cairn.client("alice", service="logs").create_log_group(logGroupName="app-a")
    # The operator's policy allows every account's app-* trails and groups; account A's
    # stay out of reach all the same.
    operator = cairn.client("operator")
    assert error_of(operator.get_trail, Name=f"{TRAIL_A}/app-a")["Code"] == "TrailNotFoundException"
    assert error_of(operator.delete_trail, Name=f"{TRAIL_A}/app-a")["Code"] == "AccessDeniedException"
    assert error_of(operator.add_tags, ResourceId=f"{TRAIL_A}/app-a",
                    TagsList=[{"Key": "k", "Value": "v"}])["Code"] != "AccessDeniedException"
    assert operator.describe_trails()["trailList"] == []
    logs = cairn.client("operator", service="logs")
    group_a = f"arn:aws:logs:us-east-1:{ACCOUNT_A}:log-group:app-a"
    assert error_of(logs.filter_log_events, logGroupIdentifier=group_a)["Code"] == "ResourceNotFoundException"
    assert alice.list_tags(ResourceIdList=[f"{TRAIL_A}/app-a"])["ResourceTagList"][0].get("TagsList", []) == []
    assert alice.get_trail(Name="app-a")["Trail"]["Name"] == "app-a"


def test_the_aws_cli_reports_the_refusal(trails_cairn):
    code, out, err = trails_cairn.aws("cloudtrail", "create-trail", "--name", "x", "--s3-bucket-name",
                                      "trail-bucket", user="auditor")
    assert code != 0 and out == ""
    assert "An error occurred (AccessDeniedException) when calling the CreateTrail operation: User: " \
           f"arn:aws:iam::{ACCOUNT_A}:user/auditor is not authorized to perform: cloudtrail:CreateTrail" in err


def test_a_policy_that_cannot_be_evaluated_stops_start_up(workdir):
    for policy, says in [
        ('{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}',
         "Condition"),
        ('{"Statement":[{"Effect":"Allow","Action":"LookupEvents","Resource":"*"}]}', "service:Operation"),
    ]:
        config = workdir / "bad.toml"
        config.write_text(config_text(workdir / "data") + f"\n[[accounts]]\nid = \"333333333333\"\n"
                          f"[[accounts.users]]\nname = \"carol\"\naccess_key_id = \"AKIACAROL0000000001\"\n"
                          f"secret_access_key = \"carol-secret-key-00000000000000000001\"\npolicy = '{policy}'\n")
        out = subprocess.run([BIN, "serve", "--config", str(config)], capture_output=True, text=True, timeout=30)
        assert out.returncode != 0
        assert "accounts[2].users[0].policy" in out.stderr and says in out.stderr, out.stderr
        assert USERS["alice"]["secret"] not in out.stderr


def model_operations(service, version):
    """The operation names of a botocore service model."""
    import botocore.loaders
    return sorted(botocore.loaders.Loader().load_service_model(service, "service-2", version)["operations"])


def test_every_operation_of_both_apis_is_authorized(cairn):
    """The read-only auditor, with an empty input, on every operation AWS defines: what its
    policy allows gets past authorization (to a result or a validation error); everything
    else is AccessDeniedException, and nothing is ever a server error."""
    u = USERS["auditor"]
    reads = fnmatch_any(["Describe*", "Get*", "List*", "LookupEvents"])
    apis = [("cloudtrail", "CloudTrail_20131101", "2013-11-01", reads),
            ("logs", "Logs_20140328", "2014-03-28", fnmatch_any(["Describe*", "FilterLogEvents", "GetLogEvents"]))]
    refused = 0
    for service, prefix, version, allowed in apis:
        for operation in model_operations(service, version):
            status, _, body = send(signed_request(cairn.endpoint, u["key"], u["secret"], b"{}",
                                                  target=f"{prefix}.{operation}", service=service))
            code = json.loads(body).get("__type") if status != 200 else None
            assert status < 500, (operation, status, body)
            if code == "UnknownOperationException":
                continue  # not served by Cairn; refused before anything is looked at
            if allowed(operation):
                assert code != "AccessDeniedException", (operation, body)
            else:
                assert (status, code) == (400, "AccessDeniedException"), (operation, status, body)
                assert f"perform: {service}:{operation} on resource: " in json.loads(body)["Message"]
                refused += 1
    assert refused >= 35  # CloudTrail's and Logs' changes, and the reads outside the policy


def fnmatch_any(patterns):
    import fnmatch
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def test_hostile_bodies_are_refused_and_the_server_stays_up(cairn):
    u = USERS["alice"]
    deep = b'{"LookupAttributes":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, _, body = send(signed_request(cairn.endpoint, u["key"], u["secret"], deep,
                                          target="CloudTrail_20131101.LookupEvents"))
    assert (status, json.loads(body)["__type"]) == (400, "SerializationException")
    # Skipped over unparsed, a deep value would pass; it is measured and refused instead.
    deep_record = record(requestParameters={"deep": "x"})
    text = json.dumps({"Records": [deep_record]})
    text = text.replace('{"deep": "x"}', '{"d":' + "[" * 100_000 + "]" * 100_000 + "}")
    status, body = put(cairn, "alice", text.encode())
    assert status == 200 and body["successful"] == [], body
    assert [f["errorCode"] for f in body["failed"]] == ["InvalidData"]
    assert "more than 100 levels deep" in body["failed"][0]["errorMessage"]
    data = cairn.client("alice", service="cloudtrail-data")
    arn = create_channel(cairn.client("alice"))["ChannelArn"]
    deep_data = event_data("u-deep").replace('"remember": true', '"remember": ' + "[" * 100_000 + "]" * 100_000)
    result = data.put_audit_events(channelArn=arn, auditEvents=[{"id": "1", "eventData": deep_data}])
    assert [f["errorCode"] for f in result["failed"]] == ["InvalidData"], result
    assert "levels deep" in result["failed"][0]["errorMessage"]
    # Still serving, and nothing of the above was stored.
    assert cairn.client("alice").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": deep_record["eventID"]}])["Events"] == []


def other_partition(arn):
    """The same ARN in a partition Cairn does not serve."""
    return arn.replace("arn:aws:", "arn:aws-x:")


def test_a_deny_on_one_resource_holds_however_it_is_named(trails_cairn):
    cairn = trails_cairn
    alice = cairn.client("alice")
    alice.create_trail(Name="prod", S3BucketName="trail-bucket")
    alice.start_logging(Name="prod")
    channel = create_channel(alice)["ChannelArn"]
    cairn.client("alice", service="logs").create_log_group(logGroupName="secret")
    guarded = cairn.client("guarded")

    for name in ["prod", f"{TRAIL_A}/prod"]:
        denied(guarded.stop_logging, Name=name)
    denied(guarded.add_tags, ResourceId=f"{TRAIL_A}/prod", TagsList=[{"Key": "k", "Value": "v"}])
    assert error_of(guarded.stop_logging, Name=other_partition(f"{TRAIL_A}/prod"))["Code"] != "AccessDeniedException"
    assert error_of(guarded.add_tags, ResourceId=other_partition(f"{TRAIL_A}/prod"),
                    TagsList=[{"Key": "k", "Value": "v"}])["Code"] != "AccessDeniedException"
    assert alice.get_trail_status(Name="prod")["IsLogging"] is True
    assert alice.list_tags(ResourceIdList=[f"{TRAIL_A}/prod"])["ResourceTagList"][0].get("TagsList", []) == []

    for name in [channel, channel.split("/")[-1]]:
        denied(guarded.delete_channel, Channel=name)
    assert error_of(guarded.delete_channel, Channel=other_partition(channel))["Code"] != "AccessDeniedException"
    assert alice.get_channel(Channel=channel)["ChannelArn"] == channel

    logs = cairn.client("guarded", service="logs")
    group = f"arn:aws:logs:us-east-1:{ACCOUNT_A}:log-group:secret"
    denied(logs.filter_log_events, logGroupName="secret")
    for identifier in [group, group + ":*", "secret"]:
        denied(logs.filter_log_events, logGroupIdentifier=identifier)
    assert error_of(logs.filter_log_events, logGroupIdentifier=other_partition(group))["Code"] != "AccessDeniedException"

    # Everything else is allowed.
    assert guarded.get_trail(Name="prod")["Trail"]["Name"] == "prod"
    assert logs.describe_log_groups()["logGroups"][0]["logGroupName"] == "secret"
