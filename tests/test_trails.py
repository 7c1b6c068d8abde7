"""The trail control plane, through boto3 and the AWS CLI, checked against AWS's rules."""

import json

import botocore.exceptions
import pytest

from conftest import ACCOUNT_A, all_records

ARN = "arn:aws:cloudtrail:{region}:{account}:trail/{name}"


def error_of(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def test_create_returns_the_trail_and_describe_adds_home_region(trails_cairn):
    ct = trails_cairn.client()
    out = ct.create_trail(Name="main-trail", S3BucketName="trail-bucket", S3KeyPrefix="audit",
                          SnsTopicName="trail-topic", KmsKeyId="alias/trails",
                          TagsList=[{"Key": "team", "Value": "sec"}])
    arn = ARN.format(region="us-east-1", account=ACCOUNT_A, name="main-trail")
    assert out["TrailARN"] == arn
    assert out["Name"] == "main-trail" and out["S3BucketName"] == "trail-bucket" and out["S3KeyPrefix"] == "audit"
    assert out["IncludeGlobalServiceEvents"] is True and out["IsMultiRegionTrail"] is False
    assert out["LogFileValidationEnabled"] is False and out["IsOrganizationTrail"] is False
    assert out["SnsTopicName"] == "trail-topic"
    assert out["SnsTopicARN"] == f"arn:aws:sns:us-east-1:{ACCOUNT_A}:trail-topic"
    assert out["KmsKeyId"] == f"arn:aws:kms:us-east-1:{ACCOUNT_A}:alias/trails"
    assert "HomeRegion" not in out and "CloudWatchLogsLogGroupArn" not in out
    [described] = ct.describe_trails()["trailList"]
    assert described["HomeRegion"] == "us-east-1"
    assert described["HasCustomEventSelectors"] is False and described["HasInsightSelectors"] is False
    assert ct.get_trail(Name="main-trail")["Trail"] == described
    assert ct.get_trail(Name=arn)["Trail"] == described
    assert ct.list_tags(ResourceIdList=[arn])["ResourceTagList"] == [
        {"ResourceId": arn, "TagsList": [{"Key": "team", "Value": "sec"}]}]
    # The call is in the event history, naming the trail.
    [created] = [r for r in all_records(ct) if r["eventName"] == "CreateTrail"]
    assert created["requestParameters"]["name"] == "main-trail"
    assert created["resources"][0]["ARN"] == arn


@pytest.mark.parametrize("name,fragment", [
    ("ab", "Trail name too short. Minimum allowed length: 3 characters. Specified name length: 2 characters."),
    ("a" * 129, "Trail name too long."),
    ("-trail", "must starts with a letter or number"),
    ("trail_", "must ends with a letter or number"),
    ("my trail", "can only contain"),
    ("my-_trail", "adjacent"),
    ("10.0.0.1", "IP address"),
])
def test_trail_names_are_checked(trails_cairn, name, fragment):
    code, message = error_of(trails_cairn.client().create_trail, Name=name, S3BucketName="trail-bucket")
    assert code == "InvalidTrailNameException"
    assert fragment in message


def test_creation_errors_match_aws(trails_cairn):
    ct = trails_cairn.client()
    assert error_of(ct.create_trail, Name="no-bucket", S3BucketName="missing-bucket") == (
        "S3BucketDoesNotExistException", "S3 bucket missing-bucket does not exist!")
    assert error_of(ct.create_trail, Name="bad-bucket", S3BucketName="Bad_Bucket")[0] == "InvalidS3BucketNameException"
    assert error_of(ct.create_trail, Name="bad-prefix", S3BucketName="trail-bucket",
                    S3KeyPrefix="a//b")[0] == "InvalidS3PrefixException"
    assert error_of(ct.create_trail, Name="bad-topic", S3BucketName="trail-bucket",
                    SnsTopicName="no spaces")[0] == "InvalidSnsTopicNameException"
    assert error_of(ct.create_trail, Name="bad-group", S3BucketName="trail-bucket",
                    CloudWatchLogsLogGroupArn="not-an-arn",
                    CloudWatchLogsRoleArn=f"arn:aws:iam::{ACCOUNT_A}:role/r")[0] == "InvalidCloudWatchLogsLogGroupArnException"
    assert error_of(ct.create_trail, Name="multi", S3BucketName="trail-bucket", IsMultiRegionTrail=True,
                    IncludeGlobalServiceEvents=False) == (
        "InvalidParameterCombinationException", "Multi-Region trail must include global service events.")
    ct.create_trail(Name="taken", S3BucketName="trail-bucket")
    assert error_of(ct.create_trail, Name="taken", S3BucketName="trail-bucket") == (
        "TrailAlreadyExistsException", f"Trail taken already exists for customer: {ACCOUNT_A}")
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    assert error_of(ct.create_trail, Name="tagged", S3BucketName="trail-bucket",
                    TagsList=too_many)[0] == "TagsLimitExceededException"
    # Only an organization's management account creates organization trails.
    bob = trails_cairn.client("bob")
    assert error_of(bob.create_trail, Name="org", S3BucketName="trail-bucket",
                    IsOrganizationTrail=True)[0] == "NotOrganizationMasterAccountException"


def test_five_trails_per_region_and_multi_region_trails_count_everywhere(trails_cairn):
    east, west = trails_cairn.client(region="us-east-1"), trails_cairn.client(region="us-west-2")
    west.create_trail(Name="everywhere", S3BucketName="trail-bucket", IsMultiRegionTrail=True)
    for i in range(4):
        east.create_trail(Name=f"east-{i}", S3BucketName="trail-bucket")
    code, message = error_of(east.create_trail, Name="east-5", S3BucketName="trail-bucket")
    assert (code, message) == ("MaximumNumberOfTrailsExceededException",
                               f"User: {ACCOUNT_A} already has 5 trails in us-east-1.")
    # us-west-2 holds only the multi-region trail; another account has its own room.
    west.create_trail(Name="west-1", S3BucketName="trail-bucket")
    trails_cairn.client("bob").create_trail(Name="east-0", S3BucketName="trail-bucket")
    # A multi-region trail with the same name as a trail in another region clashes.
    assert error_of(west.create_trail, Name="east-0", S3BucketName="trail-bucket",
                    IsMultiRegionTrail=True)[0] == "TrailAlreadyExistsException"


def test_shadow_trails_are_seen_from_other_regions_and_changed_only_at_home(trails_cairn):
    east, west = trails_cairn.client(region="us-east-1"), trails_cairn.client(region="us-west-2")
    east.create_trail(Name="global-trail", S3BucketName="trail-bucket", IsMultiRegionTrail=True)
    east.create_trail(Name="local-trail", S3BucketName="trail-bucket")
    arn = ARN.format(region="us-east-1", account=ACCOUNT_A, name="global-trail")
    shadows = west.describe_trails()["trailList"]
    assert [(t["Name"], t["HomeRegion"], t["TrailARN"]) for t in shadows] == [("global-trail", "us-east-1", arn)]
    assert west.describe_trails(includeShadowTrails=False)["trailList"] == []
    # Names match only trails homed here; ARNs match shadows.
    assert west.describe_trails(trailNameList=["global-trail"])["trailList"] == []
    assert [t["Name"] for t in west.describe_trails(trailNameList=[arn])["trailList"]] == ["global-trail"]
    assert west.get_trail(Name=arn)["Trail"]["HomeRegion"] == "us-east-1"
    assert west.get_trail_status(Name=arn)["IsLogging"] is False
    code, message = error_of(west.get_trail, Name="local-trail")
    assert code == "TrailNotFoundException"
    assert message == f"Unknown trail: {ARN.format(region='us-west-2', account=ACCOUNT_A, name='local-trail')} for the user: {ACCOUNT_A}"
    assert error_of(west.get_trail, Name=ARN.format(region="us-east-1", account=ACCOUNT_A, name="local-trail"))[0] == "TrailNotFoundException"
    assert [t["Name"] for t in west.list_trails()["Trails"]] == ["global-trail"]
    assert sorted(t["Name"] for t in east.list_trails()["Trails"]) == ["global-trail", "local-trail"]
    for call, kw in [(west.start_logging, {"Name": arn}), (west.stop_logging, {"Name": "global-trail"}),
                     (west.delete_trail, {"Name": arn}), (west.update_trail, {"Name": arn, "S3KeyPrefix": "x"}),
                     (west.put_event_selectors, {"TrailName": arn, "EventSelectors": [{"ReadWriteType": "All"}]})]:
        code, message = error_of(call, **kw)
        assert code == "InvalidHomeRegionException", call
        assert "us-east-1" in message
    assert error_of(west.add_tags, ResourceId=arn, TagsList=[{"Key": "k"}]) == (
        "CloudTrailARNInvalidException", "Region in ARN is wrong, you can only access resources in region us-west-2.")


def test_organization_trails_are_shadows_to_members(trails_cairn):
    alice, bob = trails_cairn.client(), trails_cairn.client("bob")
    out = alice.create_trail(Name="org-trail", S3BucketName="trail-bucket", IsOrganizationTrail=True,
                             IsMultiRegionTrail=True)
    assert out["IsOrganizationTrail"] is True
    arn = out["TrailARN"]
    [seen] = bob.describe_trails()["trailList"]
    assert seen["TrailARN"] == arn and seen["IsOrganizationTrail"] is True
    assert bob.describe_trails(includeShadowTrails=False)["trailList"] == []
    assert bob.get_trail_status(Name=arn)["IsLogging"] is False
    for call, kw in [(bob.stop_logging, {"Name": arn}), (bob.delete_trail, {"Name": arn}),
                     (bob.update_trail, {"Name": arn, "S3KeyPrefix": "x"})]:
        assert error_of(call, **kw)[0] == "NotOrganizationMasterAccountException"
    # Bob cannot see Alice's ordinary trails at all.
    alice.create_trail(Name="private-trail", S3BucketName="trail-bucket")
    private = ARN.format(region="us-east-1", account=ACCOUNT_A, name="private-trail")
    assert error_of(bob.get_trail, Name=private)[0] == "TrailNotFoundException"
    assert error_of(bob.list_tags, ResourceIdList=[private])[0] == "ResourceNotFoundException"


def test_logging_starts_and_stops(trails_cairn):
    ct = trails_cairn.client()
    ct.create_trail(Name="logged", S3BucketName="trail-bucket")
    status = ct.get_trail_status(Name="logged")
    assert status["IsLogging"] is False
    assert "StartLoggingTime" not in status and status["TimeLoggingStarted"] == ""
    ct.start_logging(Name="logged")
    status = ct.get_trail_status(Name="logged")
    assert status["IsLogging"] is True and "StartLoggingTime" in status
    assert status["TimeLoggingStarted"].endswith("Z")
    ct.stop_logging(Name="logged")
    status = ct.get_trail_status(Name="logged")
    assert status["IsLogging"] is False
    assert status["StopLoggingTime"] >= status["StartLoggingTime"]
    assert error_of(ct.start_logging, Name="no-such-trail")[0] == "TrailNotFoundException"


def test_update_changes_only_what_is_sent(trails_cairn):
    ct = trails_cairn.client()
    ct.create_trail(Name="updated", S3BucketName="trail-bucket", S3KeyPrefix="first")
    out = ct.update_trail(Name="updated", S3BucketName="other-bucket", EnableLogFileValidation=True)
    assert out["S3BucketName"] == "other-bucket" and out["S3KeyPrefix"] == "first"
    assert out["LogFileValidationEnabled"] is True
    # Switching to multi-region turns global-service events on; back, off.
    out = ct.update_trail(Name="updated", IsMultiRegionTrail=True)
    assert out["IsMultiRegionTrail"] is True and out["IncludeGlobalServiceEvents"] is True
    out = ct.update_trail(Name="updated", IsMultiRegionTrail=False)
    assert out["IncludeGlobalServiceEvents"] is False
    out = ct.update_trail(Name="updated", S3KeyPrefix="")
    assert "S3KeyPrefix" not in out
    assert error_of(ct.update_trail, Name="updated", S3BucketName="missing-bucket")[0] == "S3BucketDoesNotExistException"
    assert error_of(ct.update_trail, Name="nothing-here", S3KeyPrefix="x")[0] == "TrailNotFoundException"


def test_event_selectors(trails_cairn):
    ct = trails_cairn.client()
    ct.create_trail(Name="selective", S3BucketName="trail-bucket")
    arn = ARN.format(region="us-east-1", account=ACCOUNT_A, name="selective")
    default = ct.get_event_selectors(TrailName="selective")
    assert default["TrailARN"] == arn
    assert default["EventSelectors"] == [{"ReadWriteType": "All", "IncludeManagementEvents": True,
                                          "DataResources": [], "ExcludeManagementEventSources": []}]
    basic = [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True,
              "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket/"]}],
              "ExcludeManagementEventSources": ["kms.amazonaws.com"]}]
    out = ct.put_event_selectors(TrailName="selective", EventSelectors=basic)
    assert out["EventSelectors"] == basic and "AdvancedEventSelectors" not in out
    assert ct.get_trail(Name="selective")["Trail"]["HasCustomEventSelectors"] is True
    advanced = [{"Name": "writes", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                      {"Field": "readOnly", "Equals": ["false"]}]}]
    out = ct.put_event_selectors(TrailName=arn, AdvancedEventSelectors=advanced)
    assert out["AdvancedEventSelectors"] == advanced
    got = ct.get_event_selectors(TrailName="selective")
    assert got["AdvancedEventSelectors"] == advanced and "EventSelectors" not in got
    bad = [
        {"EventSelectors": [{"ReadWriteType": "All"}] * 6},
        {"EventSelectors": [{"DataResources": [{"Type": "AWS::SQS::Queue", "Values": ["arn:aws:sqs"]}]}]},
        {"EventSelectors": [{"ExcludeManagementEventSources": ["ec2.amazonaws.com"]}]},
        {"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "readOnly", "Equals": ["true"]}]}]},
        {"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]}]},
        {"EventSelectors": [{"ReadWriteType": "read-only"}]},
    ]
    for kw in bad:
        assert error_of(ct.put_event_selectors, TrailName="selective", **kw)[0] == "InvalidEventSelectorsException", kw
    assert error_of(ct.put_event_selectors, TrailName="selective", EventSelectors=[{}],
                    AdvancedEventSelectors=advanced)[0] == "InvalidParameterCombinationException"


def test_insight_selectors(trails_cairn):
    ct = trails_cairn.client()
    ct.create_trail(Name="insightful", S3BucketName="trail-bucket")
    arn = ARN.format(region="us-east-1", account=ACCOUNT_A, name="insightful")
    code, message = error_of(ct.get_insight_selectors, TrailName="insightful")
    assert code == "InsightNotEnabledException"
    assert message == f"Trail {arn} does not have Insights enabled. Edit the trail settings to enable Insights, and then try the operation again."
    selectors = [{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]
    assert ct.put_insight_selectors(TrailName="insightful", InsightSelectors=selectors)["InsightSelectors"] == selectors
    assert ct.get_insight_selectors(TrailName="insightful")["InsightSelectors"] == selectors
    assert ct.get_trail(Name="insightful")["Trail"]["HasInsightSelectors"] is True
    # Call-rate Insights need write management events; data-event Insights need data events.
    ct.put_event_selectors(TrailName="insightful", EventSelectors=[{"ReadWriteType": "ReadOnly"}])
    for selectors in ([{"InsightType": "ApiCallRateInsight"}],
                      [{"InsightType": "ApiErrorRateInsight", "EventCategories": ["Data"]}]):
        assert error_of(ct.put_insight_selectors, TrailName="insightful",
                        InsightSelectors=selectors)[0] == "InvalidInsightSelectorsException"
    ct.put_insight_selectors(TrailName="insightful", InsightSelectors=[])
    assert error_of(ct.get_insight_selectors, TrailName="insightful")[0] == "InsightNotEnabledException"


def test_tags_on_trails_and_channels(trails_cairn):
    ct = trails_cairn.client()
    arn = ct.create_trail(Name="tagged", S3BucketName="trail-bucket")["TrailARN"]
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "a", "Value": "1"}, {"Key": "b"}])
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "a", "Value": "2"}])
    assert ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"] == [
        {"Key": "a", "Value": "2"}, {"Key": "b"}]
    ct.remove_tags(ResourceId=arn, TagsList=[{"Key": "b"}])
    assert ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"] == [{"Key": "a", "Value": "2"}]
    assert error_of(ct.add_tags, ResourceId=arn,
                    TagsList=[{"Key": f"k{i}"} for i in range(50)])[0] == "TagsLimitExceededException"
    assert error_of(ct.add_tags, ResourceId=arn,
                    TagsList=[{"Key": "d"}, {"Key": "d", "Value": "x"}])[0] == "InvalidTagParameterException"
    channel = ct.create_channel(Name="tagged-channel", Source="Custom",
                                Destinations=[{"Type": "AWS_SERVICE", "Location": "my-service"}])["ChannelArn"]
    ct.add_tags(ResourceId=channel, TagsList=[{"Key": "c", "Value": "3"}])
    listed = ct.list_tags(ResourceIdList=[arn, channel])["ResourceTagList"]
    assert [t["TagsList"] for t in listed] == [[{"Key": "a", "Value": "2"}], [{"Key": "c", "Value": "3"}]]
    assert error_of(ct.add_tags, ResourceId="not-an-arn", TagsList=[])[0] == "CloudTrailARNInvalidException"
    missing = ARN.format(region="us-east-1", account=ACCOUNT_A, name="missing")
    assert error_of(ct.list_tags, ResourceIdList=[missing])[0] == "ResourceNotFoundException"


def test_delete_trail(trails_cairn):
    ct = trails_cairn.client()
    ct.create_trail(Name="doomed", S3BucketName="trail-bucket")
    ct.start_logging(Name="doomed")
    ct.delete_trail(Name="doomed")
    assert ct.describe_trails()["trailList"] == []
    assert error_of(ct.get_trail_status, Name="doomed")[0] == "TrailNotFoundException"
    assert error_of(ct.delete_trail, Name="doomed")[0] == "TrailNotFoundException"
    # The name is free again at once.
    ct.create_trail(Name="doomed", S3BucketName="trail-bucket")


def test_trails_persist_across_restarts(trails_cairn):
    ct = trails_cairn.client()
    ct.create_trail(Name="durable", S3BucketName="trail-bucket", IsMultiRegionTrail=True)
    ct.start_logging(Name="durable")
    trails_cairn.stop()
    trails_cairn.start()
    ct = trails_cairn.client()
    assert ct.get_trail_status(Name="durable")["IsLogging"] is True
    assert ct.get_trail(Name="durable")["Trail"]["IsMultiRegionTrail"] is True


def test_the_aws_cli_manages_trails(trails_cairn):
    def aws(*args):
        return trails_cairn.aws("cloudtrail", *args)

    rc, out, err = aws("create-trail", "--name", "cli-trail", "--s3-bucket-name", "trail-bucket", "--is-multi-region-trail")
    assert rc == 0, err
    assert json.loads(out)["IsMultiRegionTrail"] is True
    assert aws("start-logging", "--name", "cli-trail")[0] == 0
    rc, out, _ = aws("get-trail-status", "--name", "cli-trail")
    assert json.loads(out)["IsLogging"] is True
    rc, out, _ = aws("describe-trails", "--trail-name-list", "cli-trail")
    assert [t["Name"] for t in json.loads(out)["trailList"]] == ["cli-trail"]
    rc, _, err = aws("create-trail", "--name", "cli-trail", "--s3-bucket-name", "trail-bucket")
    assert rc != 0 and "TrailAlreadyExistsException" in err
