"""The CloudWatch Logs API: log groups, retention, metric filters and TestMetricFilter
through boto3 and the AWS CLI, checked against the logs model shipped with botocore."""

import json

import botocore.session

from conftest import USERS, all_records, error_of
from test_log_delivery import ROOT_USAGE as CIS_ROOT

MODEL = botocore.session.get_session().get_service_model("logs")

def modeled(operation, error):
    names = {s.name for s in MODEL.operation_model(operation).error_shapes}
    assert error["Code"] in names, (operation, error)
    return error


def fits(operation, out):
    shape = MODEL.operation_model(operation).output_shape
    members = set(shape.members) if shape else set()
    assert set(out) - {"ResponseMetadata"} <= members, (operation, out)
    return out


def test_log_groups_and_retention(cairn):
    logs = cairn.client(service="logs")
    logs.create_log_group(logGroupName="CloudTrail/audit")
    logs.create_log_group(logGroupName="app/web")
    err = modeled("CreateLogGroup", error_of(logs.create_log_group, logGroupName="app/web"))
    assert err["Code"] == "ResourceAlreadyExistsException"
    err = modeled("CreateLogGroup", error_of(logs.create_log_group, logGroupName="bad name!"))
    assert err["Code"] == "InvalidParameterException" and "[\\.\\-_/#A-Za-z0-9]+" in err["Message"]

    groups = fits("DescribeLogGroups", logs.describe_log_groups())["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["CloudTrail/audit", "app/web"]
    web = groups[1]
    assert web["retentionInDays"] == 30
    assert web["arn"] == f"arn:aws:logs:us-east-1:{USERS['alice']['account']}:log-group:app/web:*"
    assert web["metricFilterCount"] == 0
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="app")["logGroups"]] == ["app/web"]

    logs.put_retention_policy(logGroupName="app/web", retentionInDays=365)
    assert logs.describe_log_groups(logGroupNamePrefix="app")["logGroups"][0]["retentionInDays"] == 365
    err = modeled("PutRetentionPolicy", error_of(logs.put_retention_policy, logGroupName="app/web", retentionInDays=2))
    assert err["Code"] == "InvalidParameterException" and "enum value set" in err["Message"]
    logs.delete_retention_policy(logGroupName="app/web")
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix="app")["logGroups"][0]

    # Pagination, and another account or region sees none of it.
    for i in range(5):
        logs.create_log_group(logGroupName=f"many/{i}")
    pages = list(logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="many/", PaginationConfig={"PageSize": 2}))
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == [f"many/{i}" for i in range(5)]
    assert len(pages) == 3
    assert cairn.client("bob", service="logs").describe_log_groups()["logGroups"] == []
    assert cairn.client(region="eu-west-1", service="logs").describe_log_groups()["logGroups"] == []

    logs.delete_log_group(logGroupName="app/web")
    err = modeled("DeleteLogGroup", error_of(logs.delete_log_group, logGroupName="app/web"))
    assert err["Code"] == "ResourceNotFoundException"
    err = modeled("PutRetentionPolicy", error_of(logs.put_retention_policy, logGroupName="app/web", retentionInDays=1))
    assert err["Code"] == "ResourceNotFoundException"

    # Each call is in the event history as a CloudWatch Logs event.
    records = [r for r in all_records(cairn.client()) if r["eventSource"] == "logs.amazonaws.com"]
    names = [r["eventName"] for r in records]
    assert "CreateLogGroup" in names and "DeleteLogGroup" in names and "DescribeLogGroups" in names
    failed = {r["errorCode"] for r in records if r["eventName"] == "CreateLogGroup" and r.get("errorCode")}
    assert failed == {"ResourceAlreadyExistsException", "InvalidParameterException"}


def test_metric_filters(cairn):
    logs = cairn.client(service="logs")
    logs.create_log_group(logGroupName="trail")
    put = dict(
        logGroupName="trail",
        filterName="RootAccountUsage",
        filterPattern=CIS_ROOT,
        metricTransformations=[{"metricName": "RootAccountUsage", "metricNamespace": "CISBenchmark", "metricValue": "1"}],
    )
    logs.put_metric_filter(**put)
    logs.put_metric_filter(**dict(
        put,
        filterName="Latency",
        filterPattern="{ $.latency = * }",
        metricTransformations=[{"metricName": "Latency", "metricNamespace": "App", "metricValue": "$.latency",
                                "unit": "Milliseconds", "dimensions": {"op": "$.requestType"}}],
    ))
    filters = fits("DescribeMetricFilters", logs.describe_metric_filters(logGroupName="trail"))["metricFilters"]
    assert [f["filterName"] for f in filters] == ["Latency", "RootAccountUsage"]
    root = filters[1]
    assert root["filterPattern"] == CIS_ROOT and root["logGroupName"] == "trail"
    assert root["metricTransformations"] == put["metricTransformations"]
    assert filters[0]["metricTransformations"][0]["dimensions"] == {"op": "$.requestType"}
    assert logs.describe_log_groups()["logGroups"][0]["metricFilterCount"] == 2
    by_metric = logs.describe_metric_filters(metricName="Latency", metricNamespace="App")["metricFilters"]
    assert [f["filterName"] for f in by_metric] == ["Latency"]
    assert logs.describe_metric_filters(logGroupName="trail", filterNamePrefix="Root")["metricFilters"][0]["filterName"] == "RootAccountUsage"

    # Putting the same name again replaces the filter.
    logs.put_metric_filter(**dict(put, filterPattern="{ $.eventName = ConsoleLogin }"))
    assert logs.describe_metric_filters(logGroupName="trail", filterNamePrefix="Root")["metricFilters"][0]["filterPattern"] == "{ $.eventName = ConsoleLogin }"

    bad = [
        (dict(put, filterPattern="{ $.eventName = }"), "InvalidParameterException", "Invalid metric filter pattern"),
        (dict(put, filterPattern="{ $.a = %x(y)% }"), "InvalidParameterException", "column 11"),
        (dict(put, logGroupName="missing"), "ResourceNotFoundException", "log group does not exist"),
        (dict(put, filterName="a:b"), "InvalidParameterException", "[^:*]*"),
        (dict(put, metricTransformations=[dict(put["metricTransformations"][0], metricName="a$b")]), "InvalidParameterException", "[^:*$]*"),
        (dict(put, metricTransformations=[dict(put["metricTransformations"][0], metricValue="lots")]), "InvalidParameterException", "metricValue"),
        (dict(put, filterPattern="[ip, user]", metricTransformations=[dict(put["metricTransformations"][0], metricValue="$bytes")]),
         "InvalidParameterException", "no such field"),
        (dict(put, metricTransformations=[dict(put["metricTransformations"][0], unit="Parsecs")]), "InvalidParameterException", "enum value set"),
        (dict(put, filterPattern="ERROR", metricTransformations=[dict(put["metricTransformations"][0], dimensions={"a": "$.b"})]),
         "InvalidParameterException", "does not support dimensions"),
        (dict(put, metricTransformations=[dict(put["metricTransformations"][0], dimensions={"a": "$.b"}, defaultValue=0)]),
         "InvalidParameterException", "default value"),
        (dict(put, metricTransformations=[put["metricTransformations"][0]] * 2), "InvalidParameterException", "length equal to 1"),
        (dict(put, filterPattern="x" * 1025), "InvalidParameterException", "less than or equal to 1024"),
    ]
    for kwargs, code, text in bad:
        err = modeled("PutMetricFilter", error_of(logs.put_metric_filter, **kwargs))
        assert err["Code"] == code and text in err["Message"], (kwargs, err)

    # At most five filters with regexes in a group.
    for i in range(5):
        logs.put_metric_filter(**dict(put, filterName=f"re{i}", filterPattern=f"%err{i}%"))
    err = modeled("PutMetricFilter", error_of(logs.put_metric_filter, **dict(put, filterName="re5", filterPattern="%x%")))
    assert err["Code"] == "LimitExceededException"

    logs.delete_metric_filter(logGroupName="trail", filterName="Latency")
    err = modeled("DeleteMetricFilter", error_of(logs.delete_metric_filter, logGroupName="trail", filterName="Latency"))
    assert err["Code"] == "ResourceNotFoundException"
    err = modeled("DescribeMetricFilters", error_of(logs.describe_metric_filters, logGroupName="missing"))
    assert err["Code"] == "ResourceNotFoundException"


def test_test_metric_filter(cairn):
    logs = cairn.client(service="logs")
    root_call = json.dumps({"userIdentity": {"type": "Root"}, "eventType": "AwsApiCall", "eventName": "ListBuckets"})
    by_service = json.dumps({"userIdentity": {"type": "Root", "invokedBy": "support.amazonaws.com"}, "eventType": "AwsApiCall"})
    out = fits("TestMetricFilter", logs.test_metric_filter(filterPattern=CIS_ROOT, logEventMessages=[by_service, root_call, "not json"]))
    assert out["matches"] == [{"eventNumber": 2, "eventMessage": root_call, "extractedValues": {}}]

    line = '127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534'
    out = logs.test_metric_filter(
        filterPattern="[ip, user, username, timestamp, request =*.html*, status_code = 4*, bytes]",
        logEventMessages=[line, "too short"],
    )
    assert out["matches"] == [{
        "eventNumber": 1,
        "eventMessage": line,
        "extractedValues": {"$ip": "127.0.0.1", "$user": "Prod", "$username": "frank",
                            "$timestamp": "10/Oct/2000:13:25:15 -0700", "$request": "GET /index.html HTTP/1.0",
                            "$status_code": "404", "$bytes": "1534"},
    }]
    err = modeled("TestMetricFilter", error_of(logs.test_metric_filter, filterPattern="{ $.a IS NOT NULL }", logEventMessages=["x"]))
    assert err["Code"] == "InvalidParameterException"
    assert err["Message"].startswith("Invalid metric filter pattern: expected NULL, TRUE or FALSE after IS")
    assert "column 10" in err["Message"]
    err = modeled("TestMetricFilter", error_of(logs.test_metric_filter, filterPattern="ERROR", logEventMessages=["x"] * 51))
    assert err["Code"] == "InvalidParameterException"


def test_the_aws_cli_tests_and_puts_metric_filters(cairn):
    def aws(*args):
        return cairn.aws("logs", *args)

    rc, out, err = aws("test-metric-filter", "--filter-pattern", "ERROR -ARGUMENTS",
                       "--log-event-messages", "[ERROR 400] BAD REQUEST", "[ERROR 419] MISSING ARGUMENTS", "[INFO] OK")
    assert rc == 0, err
    assert [m["eventNumber"] for m in json.loads(out)["matches"]] == [1]
    assert aws("create-log-group", "--log-group-name", "cli-group")[0] == 0
    rc, _, err = aws("put-metric-filter", "--log-group-name", "cli-group", "--filter-name", "errors",
                     "--filter-pattern", "ERROR",
                     "--metric-transformations", "metricName=Errors,metricNamespace=App,metricValue=1,defaultValue=0")
    assert rc == 0, err
    rc, out, _ = aws("describe-metric-filters", "--log-group-name", "cli-group")
    transformation = json.loads(out)["metricFilters"][0]["metricTransformations"][0]
    assert transformation == {"metricName": "Errors", "metricNamespace": "App", "metricValue": "1", "defaultValue": 0.0}
    rc, _, err = aws("put-metric-filter", "--log-group-name", "cli-group", "--filter-name", "bad",
                     "--filter-pattern", "{ $.x = }",
                     "--metric-transformations", "metricName=Errors,metricNamespace=App,metricValue=1")
    assert rc != 0 and "InvalidParameterException" in err and "Invalid metric filter pattern" in err
