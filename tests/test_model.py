"""Cairn's LookupEvents against AWS's own machine-readable model shipped with botocore."""

import json

import botocore.exceptions
import botocore.session
import pytest

from test_bulk import put, record

MODEL = botocore.session.get_session().get_service_model("cloudtrail")


def assert_modeled_error(operation, call, **kw):
    """`call(**kw)` fails with an error `operation` lists in the model."""
    modeled = {shape.name for shape in MODEL.operation_model(operation).error_shapes}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    assert e.value.response["Error"]["Code"] in modeled, (operation, kw, e.value.response["Error"])


def test_lookup_events_errors_are_modeled(cairn):
    client = cairn.client("alice")
    bad_calls = [
        dict(MaxResults=51),
        dict(StartTime=2, EndTime=1),
        dict(EventCategory="other"),
        dict(LookupAttributes=[{"AttributeKey": "Nope", "AttributeValue": "x"}]),
        dict(NextToken="00"),
    ]
    for kwargs in bad_calls:
        assert_modeled_error("LookupEvents", client.lookup_events, **kwargs)


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
    assert_modeled_error("CreateTrail", ct.create_trail, Name="model-trail", S3BucketName="trail-bucket")
    assert_modeled_error("CreateTrail", ct.create_trail, Name="x", S3BucketName="trail-bucket")
    assert_modeled_error("CreateTrail", ct.create_trail, Name="other", S3BucketName="no-such-bucket")
    assert_modeled_error("CreateTrail", ct.create_trail, Name="other", S3BucketName="trail-bucket",
             IsMultiRegionTrail=True, IncludeGlobalServiceEvents=False)
    assert_modeled_error("UpdateTrail", ct.update_trail, Name=missing)
    assert_modeled_error("GetTrail", ct.get_trail, Name=missing)
    assert_modeled_error("GetTrail", ct.get_trail, Name="arn:aws:cloudtrail:bad")
    assert_modeled_error("GetTrailStatus", ct.get_trail_status, Name=missing)
    assert_modeled_error("StartLogging", ct.start_logging, Name=missing)
    assert_modeled_error("StopLogging", ct.stop_logging, Name=missing)
    assert_modeled_error("DeleteTrail", ct.delete_trail, Name=missing)
    assert_modeled_error("PutEventSelectors", ct.put_event_selectors, TrailName=arn, EventSelectors=[])
    assert_modeled_error("GetEventSelectors", ct.get_event_selectors, TrailName=missing)
    assert_modeled_error("PutInsightSelectors", ct.put_insight_selectors, TrailName=arn,
             InsightSelectors=[{"InsightType": "Nope"}])
    assert_modeled_error("AddTags", ct.add_tags, ResourceId=missing, TagsList=[{"Key": "k"}])
    assert_modeled_error("AddTags", west.add_tags, ResourceId=arn, TagsList=[{"Key": "k"}])
    assert_modeled_error("RemoveTags", ct.remove_tags, ResourceId="arn:aws:s3:::bucket", TagsList=[{"Key": "k"}])
    assert_modeled_error("ListTags", ct.list_tags, ResourceIdList=[missing])
    ct.update_trail(Name=arn, IsMultiRegionTrail=True)
    assert_modeled_error("StopLogging", west.stop_logging, Name=arn)
    assert_modeled_error("DeleteTrail", west.delete_trail, Name=arn)
    output_ok("DeleteTrail", ct.delete_trail(Name=arn))


def test_list_insights_metric_data_errors_and_output_fit_the_model(cairn):
    client = cairn.client("alice")
    operation = MODEL.operation_model("ListInsightsMetricData")
    rate = dict(EventSource="ec2.amazonaws.com", EventName="RunInstances", InsightType="ApiCallRateInsight")
    for kwargs in [dict(rate, Period=120), dict(rate, ErrorCode="Throttling"), dict(rate, StartTime=2, EndTime=1),
                   dict(rate, InsightType="ApiErrorRateInsight"), dict(rate, NextToken="00"),
                   dict(rate, TrailName="t")]:
        assert_modeled_error("ListInsightsMetricData", client.list_insights_metric_data, **kwargs)
    answer = client.list_insights_metric_data(DataType="FillWithZeros", Period=3600, MaxResults=3, **rate)
    assert set(answer) - {"ResponseMetadata"} <= set(operation.output_shape.members)
    assert answer["Values"] == [0.0, 0.0, 0.0] and len(answer["Timestamps"]) == 3 and "NextToken" in answer
