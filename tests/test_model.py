"""Cairn's LookupEvents against AWS's own machine-readable model shipped with botocore."""

import json

import botocore.exceptions
import botocore.session
import pytest

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
    client = cairn.client("alice")
    client.lookup_events(MaxResults=1)
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
