"""Cairn's LookupEvents against AWS's own machine-readable model shipped with botocore."""

import json

import botocore.exceptions
import botocore.session
import pytest

from test_bulk import put, record

MODEL = botocore.session.get_session().get_service_model("cloudtrail")


def test_lookup_events_errors_are_modeled(cairn):
    client = cairn.client("alice")
    modeled = {shape.name for shape in MODEL.operation_model("LookupEvents").error_shapes}
    bad_calls = [
        dict(MaxResults=51),
        dict(StartTime=2, EndTime=1),
        dict(EventCategory="other"),
        dict(LookupAttributes=[{"AttributeKey": "Nope", "AttributeValue": "x"}]),
        dict(NextToken="00"),
    ]
    for kwargs in bad_calls:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client.lookup_events(**kwargs)
        assert e.value.response["Error"]["Code"] in modeled, kwargs


def test_lookup_events_output_fits_the_model(cairn):
    status, _ = put(cairn, "alice", {"Records": [record()]})  # one with resources
    assert status == 200
    client = cairn.client("alice")
    raw = client.lookup_events(MaxResults=5)
    event_shape = MODEL.shape_for("Event")
    resource_shape = MODEL.shape_for("Resource")
    output_members = set(MODEL.operation_model("LookupEvents").output_shape.members)
    assert set(raw) - {"ResponseMetadata"} <= output_members
    for event in raw["Events"]:
        assert set(event) <= set(event_shape.members)
        for resource in event["Resources"]:
            assert set(resource) <= set(resource_shape.members)
        json.loads(event["CloudTrailEvent"])
    assert any(event["Resources"] for event in raw["Events"]), "a Resource was checked"


def test_trail_operations_fit_the_model(trails_cairn):
    """Every output member is modeled; every error a bad call gets is one the operation lists."""
    ct = trails_cairn.client("alice")

    def output_ok(operation, out):
        members = MODEL.operation_model(operation).output_shape.members
        assert set(out) - {"ResponseMetadata"} <= set(members), operation
        return out

    def error_ok(operation, call, **kw):
        modeled = {s.name for s in MODEL.operation_model(operation).error_shapes}
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(**kw)
        assert e.value.response["Error"]["Code"] in modeled, (operation, kw, e.value.response["Error"])

    created = output_ok("CreateTrail", ct.create_trail(Name="model-trail", S3BucketName="trail-bucket",
                                                       TagsList=[{"Key": "k", "Value": "v"}]))
    arn = created["TrailARN"]
    trail_members = set(MODEL.shape_for("Trail").members)
    for t in output_ok("DescribeTrails", ct.describe_trails())["trailList"]:
        assert set(t) <= trail_members
    assert set(output_ok("GetTrail", ct.get_trail(Name=arn))["Trail"]) <= trail_members
    output_ok("UpdateTrail", ct.update_trail(Name=arn, S3KeyPrefix="p"))
    output_ok("StartLogging", ct.start_logging(Name=arn))
    output_ok("GetTrailStatus", ct.get_trail_status(Name=arn))
    output_ok("ListTrails", ct.list_trails())
    output_ok("GetEventSelectors", ct.get_event_selectors(TrailName=arn))
    output_ok("PutEventSelectors", ct.put_event_selectors(TrailName=arn, EventSelectors=[{"ReadWriteType": "All"}]))
    output_ok("PutInsightSelectors", ct.put_insight_selectors(
        TrailName=arn, InsightSelectors=[{"InsightType": "ApiCallRateInsight"}]))
    output_ok("GetInsightSelectors", ct.get_insight_selectors(TrailName=arn))
    output_ok("ListTags", ct.list_tags(ResourceIdList=[arn]))
    output_ok("StopLogging", ct.stop_logging(Name=arn))

    west = trails_cairn.client("alice", region="us-west-2")
    missing = arn.replace("model-trail", "missing-trail")
    error_ok("CreateTrail", ct.create_trail, Name="model-trail", S3BucketName="trail-bucket")
    error_ok("CreateTrail", ct.create_trail, Name="x", S3BucketName="trail-bucket")
    error_ok("CreateTrail", ct.create_trail, Name="other", S3BucketName="no-such-bucket")
    error_ok("CreateTrail", ct.create_trail, Name="other", S3BucketName="trail-bucket",
             IsMultiRegionTrail=True, IncludeGlobalServiceEvents=False)
    error_ok("UpdateTrail", ct.update_trail, Name=missing)
    error_ok("GetTrail", ct.get_trail, Name=missing)
    error_ok("GetTrail", ct.get_trail, Name="arn:aws:cloudtrail:bad")
    error_ok("GetTrailStatus", ct.get_trail_status, Name=missing)
    error_ok("StartLogging", ct.start_logging, Name=missing)
    error_ok("StopLogging", ct.stop_logging, Name=missing)
    error_ok("DeleteTrail", ct.delete_trail, Name=missing)
    error_ok("PutEventSelectors", ct.put_event_selectors, TrailName=arn, EventSelectors=[])
    error_ok("GetEventSelectors", ct.get_event_selectors, TrailName=missing)
    error_ok("PutInsightSelectors", ct.put_insight_selectors, TrailName=arn,
             InsightSelectors=[{"InsightType": "Nope"}])
    error_ok("AddTags", ct.add_tags, ResourceId=missing, TagsList=[{"Key": "k"}])
    error_ok("AddTags", west.add_tags, ResourceId=arn, TagsList=[{"Key": "k"}])
    error_ok("RemoveTags", ct.remove_tags, ResourceId="arn:aws:s3:::bucket", TagsList=[{"Key": "k"}])
    error_ok("ListTags", ct.list_tags, ResourceIdList=[missing])
    ct.update_trail(Name=arn, IsMultiRegionTrail=True)
    error_ok("StopLogging", west.stop_logging, Name=arn)
    error_ok("DeleteTrail", west.delete_trail, Name=arn)
    output_ok("DeleteTrail", ct.delete_trail(Name=arn))


def test_list_insights_metric_data_errors_and_output_fit_the_model(cairn):
    client = cairn.client("alice")
    operation = MODEL.operation_model("ListInsightsMetricData")
    modeled = {shape.name for shape in operation.error_shapes}
    rate = dict(EventSource="ec2.amazonaws.com", EventName="RunInstances", InsightType="ApiCallRateInsight")
    for kwargs in [dict(rate, Period=120), dict(rate, ErrorCode="Throttling"), dict(rate, StartTime=2, EndTime=1),
                   dict(rate, InsightType="ApiErrorRateInsight"), dict(rate, NextToken="00"),
                   dict(rate, TrailName="t")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client.list_insights_metric_data(**kwargs)
        assert e.value.response["Error"]["Code"] in modeled, kwargs
    answer = client.list_insights_metric_data(DataType="FillWithZeros", Period=3600, MaxResults=3, **rate)
    assert set(answer) - {"ResponseMetadata"} <= set(operation.output_shape.members)
    assert answer["Values"] == [0.0, 0.0, 0.0] and len(answer["Timestamps"]) == 3 and "NextToken" in answer
