"""Writes the seed inputs each fuzz target starts from (corpus/<target>/seed-*).

One request per operation of the CloudTrail and CloudWatch Logs APIs, built from the
botocore service models with every member filled in; records, eventData, patterns,
Authorization headers and digests in the shapes Cairn receives them. The fuzzer keeps
what it learns from them in the same directories.
"""

import gzip
import hashlib
import json
import pathlib

import botocore.session

HERE = pathlib.Path(__file__).parent
ACCOUNT = "111111111111"
TIME = "2026-11-20T10:00:00Z"


def write(target, name, data):
    out = HERE / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (out / f"seed-{name}").write_bytes(data)


def sample(model, shape, depth=0):
    """A value of `shape` with each member filled in, plausible where the model says how."""
    kind = shape.type_name
    if kind == "structure":
        if depth > 4:
            return {}
        return {name: sample(model, member, depth + 1) for name, member in shape.members.items()}
    if kind == "list":
        return [sample(model, shape.member, depth + 1)]
    if kind == "map":
        return {"key": sample(model, shape.value, depth + 1)}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        name = shape.name.lower()
        if "arn" in name:
            return f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/fuzz-trail"
        if "pattern" in name:
            return '{ $.eventName = "ConsoleLogin" && $.errorCode = "Failed" }'
        if "bucket" in name:
            return "fuzz-bucket"
        return "fuzz-trail"
    if kind in ("integer", "long"):
        return 5
    if kind in ("float", "double"):
        return 1.0
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return 1795000000
    if kind == "blob":
        return "ZnV6eg=="
    return None


def api_seeds():
    session = botocore.session.get_session()
    for service, prefix in (("cloudtrail", "CloudTrail_20131101"), ("logs", "Logs_20140328")):
        model = session.get_service_model(service)
        for name in model.operation_names:
            operation = model.operation_model(name)
            body = sample(model, operation.input_shape) if operation.input_shape else {}
            write("api", f"{service}-{name}", f"{prefix}.{name}\n{json.dumps(body)}")
            write("api", f"{service}-{name}-empty", f"{prefix}.{name}\n{{}}")


# Calls that succeed, so that the fuzzer starts from (and the service holds) real trails,
# selectors, tags, log groups and filters.
GOOD_CALLS = [
    ("CloudTrail_20131101.CreateTrail", {
        "Name": "fuzz-trail", "S3BucketName": "fuzz-bucket", "S3KeyPrefix": "logs",
        "IsMultiRegionTrail": True, "IncludeGlobalServiceEvents": True, "EnableLogFileValidation": True,
        "TagsList": [{"Key": "team", "Value": "fuzz"}]}),
    ("CloudTrail_20131101.StartLogging", {"Name": "fuzz-trail"}),
    ("CloudTrail_20131101.PutEventSelectors", {"TrailName": "fuzz-trail", "AdvancedEventSelectors": [
        {"Name": "writes", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::bucket/"], "NotEndsWith": [".tmp"]},
            {"Field": "readOnly", "Equals": ["false"]}]}]}),
    ("CloudTrail_20131101.PutEventSelectors", {"TrailName": "fuzz-trail", "EventSelectors": [
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True, "ExcludeManagementEventSources": [],
         "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket/"]}]}]}),
    ("CloudTrail_20131101.PutInsightSelectors", {"TrailName": "fuzz-trail", "InsightSelectors": [
        {"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]}),
    ("CloudTrail_20131101.AddTags", {"ResourceId": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/fuzz-trail",
                                     "TagsList": [{"Key": "k", "Value": "v"}]}),
    ("CloudTrail_20131101.GetTrailStatus", {"Name": "fuzz-trail"}),
    ("CloudTrail_20131101.DescribeTrails", {"trailNameList": ["fuzz-trail"], "includeShadowTrails": True}),
    ("CloudTrail_20131101.LookupEvents", {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "CreateTrail"}],
                                          "StartTime": 1790000000, "EndTime": 1900000000, "MaxResults": 2}),
    ("CloudTrail_20131101.ListPublicKeys", {"StartTime": 1790000000}),
    ("CloudTrail_20131101.ListInsightsMetricData", {"EventSource": "ec2.amazonaws.com", "EventName": "RunInstances",
                                                   "InsightType": "ApiCallRateInsight", "DataType": "FillWithZeros",
                                                   "Period": 3600}),
    ("Logs_20140328.CreateLogGroup", {"logGroupName": "fuzz-group", "tags": {"team": "fuzz"}}),
    ("Logs_20140328.PutRetentionPolicy", {"logGroupName": "fuzz-group", "retentionInDays": 7}),
    ("Logs_20140328.PutMetricFilter", {"logGroupName": "fuzz-group", "filterName": "root-use",
                                       "filterPattern": '{ $.userIdentity.type = "Root" && $.eventType != "AwsServiceEvent" }',
                                       "metricTransformations": [{"metricName": "RootUse", "metricNamespace": "CIS",
                                                                  "metricValue": "1",
                                                                  "dimensions": {"Source": "$.eventSource"}}]}),
    ("CloudTrail_20131101.UpdateTrail", {
        "Name": "fuzz-trail", "CloudWatchLogsLogGroupArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:fuzz-group:*",
        "CloudWatchLogsRoleArn": f"arn:aws:iam::{ACCOUNT}:role/cloudtrail-to-logs"}),
    ("Logs_20140328.TestMetricFilter", {"filterPattern": "[ip, user, status = 4*]",
                                        "logEventMessages": ["1.2.3.4 bob 404", "x y 200"]}),
    ("Logs_20140328.FilterLogEvents", {"logGroupName": "fuzz-group", "filterPattern": "?ERROR ?Failed",
                                       "startTime": 0, "limit": 10, "interleaved": True}),
    ("Logs_20140328.GetLogEvents", {"logGroupName": "fuzz-group",
                                    "logStreamName": f"{ACCOUNT}_CloudTrail_us-east-1", "startFromHead": True}),
]


def good_call_seeds():
    for i, (target, body) in enumerate(GOOD_CALLS):
        write("api", f"good-{i:02}-{target.split('.')[1]}", f"{target}\n{json.dumps(body)}")


def record(n, **fields):
    out = {
        "eventVersion": "1.11",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAFUZZ",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/fuzz",
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAFUZZ",
            "userName": "fuzz",
        },
        "eventTime": TIME,
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"instanceType": "t3.micro", "tags": [{"key": "a.b", "value": "\u00e9\\n"}]},
        "responseElements": None,
        "requestID": f"req-{n}",
        "eventID": f"00000000-0000-4000-8000-{n:012d}",
        "readOnly": False,
        "resources": [{"ARN": f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-1", "accountId": ACCOUNT, "type": "AWS::EC2::Instance"}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    out.update(fields)
    return out


def record_seeds():
    records = [
        record(1),
        record(2, errorCode="AccessDenied", errorMessage="no", readOnly=True, eventName="DescribeInstances"),
        record(3, eventType="AwsServiceEvent", eventCategory="Data", managementEvent=False,
               serviceEventDetails={"x": [1, 2.5e3, None, True]}),
    ]
    body = json.dumps({"Records": records})
    write("bulk_records", "three", body)
    write("bulk_records", "empty", '{"Records":[]}')
    write("log_file", "log-file-gz", gzip.compress(body.encode(), mtime=0))
    write("log_file", "array", json.dumps(records))
    write("log_file", "ndjson", "\n".join(json.dumps(r) for r in records) + "\n")


def audit_event_seeds():
    event_data = {
        "version": "1.0",
        "userIdentity": {"type": "CustomUser", "principalId": "fuzz", "details": {"a": 1}},
        "userAgent": "fuzz-agent",
        "eventSource": "fuzz.example.com",
        "eventName": "DoThing",
        "eventTime": TIME,
        "UID": "uid-1",
        "requestParameters": {"k": "v"},
        "responseElements": {"ok": True},
        "errorCode": None,
        "errorMessage": None,
        "sourceIPAddress": "198.51.100.1",
        "recipientAccountId": ACCOUNT,
        "additionalEventData": {"n": 1},
    }
    text = json.dumps(event_data)
    events = [
        {"id": "one", "eventData": text},
        {"id": "two", "eventData": text.replace("uid-1", "uid-2"),
         "eventDataChecksum": hashlib.sha256(text.replace("uid-1", "uid-2").encode()).hexdigest()},
    ]
    write("put_audit_events", "two", json.dumps({"auditEvents": events}))


def pattern_seeds():
    patterns = [
        '{ ($.eventName = "ConsoleLogin") && ($.errorCode = "Failed*") }',
        '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }',
        '{ $.requestParameters.ipPermissions.items[0].fromPort >= 22 || $.latency < -1.5e+3 }',
        '{ $.flag IS TRUE && $.none IS NULL && $.[\'a.b\'][2][0] = 3 }',
        '{ $.eventName = %^Delete[A-Z]+$% }',
        'ERROR -timeout ?"retrying now" %[0-9]+ s%',
        '[ip, user, username, timestamp, request = "GET*", status_code = 2*, bytes > 1000]',
        '[..., status_code != 404, size]',
        '{ $.* = "x" }',
    ]
    for i, p in enumerate(patterns):
        write("filter_pattern", f"pattern-{i}", p)
    write("filter_pattern", "with-message", '{ $.a = 1 }\n{"a": 1}')


def sigv4_seeds():
    header = ("AWS4-HMAC-SHA256 Credential=AKIAFUZZ/20261120/us-east-1/cloudtrail/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "ab" * 32)
    write("sigv4", "json", f"{header}\n\ncontent-type:application/x-amz-json-1.1\nhost:localhost\n"
          f"x-amz-date:20261120T100000Z\nx-amz-target:CloudTrail_20131101.ListTrails\n\n{{}}")
    write("sigv4", "query", f"{header.replace('cloudtrail/', 'cloudtrail-data/')}\n"
          "channelArn=arn%3Aaws%3Acloudtrail%3Aus-east-1%3A111111111111%3Achannel%2Fx&externalId=a%20b\n"
          "host:localhost\nx-amz-date:20261120T100000Z\n\n{\"auditEvents\":[]}")
    write("sigv4", "date", "20261120T100000Z")


def digest_seeds():
    digest = {
        "awsAccountId": ACCOUNT,
        "digestStartTime": "2026-11-20T09:00:00Z",
        "digestEndTime": "2026-11-20T10:00:00Z",
        "digestS3Bucket": "fuzz-bucket",
        "digestS3Object": f"logs/AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/11/20/"
                          f"{ACCOUNT}_CloudTrail-Digest_us-east-1_main_us-east-1_20261120T100000Z.json.gz",
        "digestPublicKeyFingerprint": "0" * 32,
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": "2026-11-20T09:59:00Z",
        "oldestEventTime": "2026-11-20T09:01:00Z",
        "previousDigestS3Bucket": "fuzz-bucket",
        "previousDigestS3Object": "logs/x.json.gz",
        "previousDigestHashValue": "aa" * 32,
        "previousDigestHashAlgorithm": "SHA-256",
        "previousDigestSignature": "bb" * 256,
        "logFiles": [{
            "s3Bucket": "fuzz-bucket",
            "s3Object": f"logs/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/20/x.json.gz",
            "hashValue": "cc" * 32,
            "hashAlgorithm": "SHA-256",
            "newestEventTime": "2026-11-20T09:59:00Z",
            "oldestEventTime": "2026-11-20T09:01:00Z",
        }],
    }
    write("digest", "chained", json.dumps(digest))
    write("digest", "keys", digest["digestS3Object"] + "\n" + digest["previousDigestS3Object"])
    digest.update(previousDigestSignature=None, previousDigestS3Bucket=None, previousDigestS3Object=None, logFiles=[])
    write("digest", "first", json.dumps(digest))


if __name__ == "__main__":
    api_seeds()
    good_call_seeds()
    record_seeds()
    audit_event_seeds()
    pattern_seeds()
    sigv4_seeds()
    digest_seeds()
