//! Each CIS monitoring control against events it must count and events it must not.

use cairn_filter::cis::CONTROLS;
use cairn_filter::{Filter, FilterSet, Pattern, Scratch};

/// A CloudTrail record from an IAM user; `extra` is spliced in as further top-level fields.
fn event(source: &str, name: &str, extra: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.11","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"}},"eventTime":"2026-11-21T10:00:00Z","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2.15.30","requestParameters":null,"responseElements":null,"eventID":"5d2c9b7a-3e4f-4a1b-8c6d-7e8f9a0b1c2d","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"{extra}}}"#
    )
}

fn root(source: &str, name: &str, extra: &str) -> String {
    event(source, name, extra).replace(r#""type":"IAMUser""#, r#""type":"Root""#)
}

fn sign_in(mfa: &str, result: &str, extra: &str) -> String {
    event("signin.amazonaws.com", "ConsoleLogin", extra)
        .replace(r#""eventType":"AwsApiCall""#, r#""eventType":"AwsConsoleSignIn""#)
        .replace(
            r#""responseElements":null"#,
            &format!(
                r#""responseElements":{{"ConsoleLogin":"{result}"}},"additionalEventData":{{"MFAUsed":"{mfa}"}}"#
            ),
        )
}

/// (control id, events it counts, events it does not)
fn cases() -> Vec<(&'static str, Vec<String>, Vec<String>)> {
    let ec2 = |name: &str| event("ec2.amazonaws.com", name, "");
    let iam = |name: &str| event("iam.amazonaws.com", name, "");
    vec![
        (
            "4.1",
            vec![
                ec2(r#"RunInstances","errorCode":"Client.UnauthorizedOperation"#),
                event(
                    "s3.amazonaws.com",
                    "GetObject",
                    r#","errorCode":"AccessDenied""#,
                ),
                event(
                    "kms.amazonaws.com",
                    "Decrypt",
                    r#","errorCode":"AccessDeniedException""#,
                ),
            ],
            vec![
                ec2("RunInstances"),
                ec2(r#"RunInstances","errorCode":"Client.InvalidAMIID.NotFound"#),
            ],
        ),
        (
            "4.2",
            vec![sign_in("No", "Success", "")],
            vec![
                sign_in("Yes", "Success", ""),
                sign_in(
                    "No",
                    "Failure",
                    r#","errorMessage":"Failed authentication""#,
                ),
                sign_in("No", "Success", "").replace(r#""type":"IAMUser""#, r#""type":"Root""#),
            ],
        ),
        (
            "4.3",
            vec![root("s3.amazonaws.com", "ListBuckets", "")],
            vec![
                event("s3.amazonaws.com", "ListBuckets", ""),
                root("s3.amazonaws.com", "ListBuckets", "").replace(
                    r#""type":"Root","#,
                    r#""type":"Root","invokedBy":"support.amazonaws.com","#,
                ),
                root("s3.amazonaws.com", "ListBuckets", "")
                    .replace("AwsApiCall", "AwsServiceEvent"),
            ],
        ),
        (
            "4.4",
            [
                "PutRolePolicy",
                "AttachUserPolicy",
                "DeletePolicyVersion",
                "DetachGroupPolicy",
            ]
            .iter()
            .map(|n| iam(n))
            .collect(),
            vec![
                iam("GetPolicy"),
                iam("ListAttachedRolePolicies"),
                iam("CreateUser"),
            ],
        ),
        (
            "4.5",
            [
                "CreateTrail",
                "UpdateTrail",
                "DeleteTrail",
                "StartLogging",
                "StopLogging",
            ]
            .iter()
            .map(|n| event("cloudtrail.amazonaws.com", n, ""))
            .collect(),
            vec![event("cloudtrail.amazonaws.com", "DescribeTrails", "")],
        ),
        (
            "4.6",
            vec![sign_in(
                "No",
                "Failure",
                r#","errorMessage":"Failed authentication""#,
            )],
            vec![sign_in("No", "Success", "")],
        ),
        (
            "4.7",
            vec![
                event("kms.amazonaws.com", "DisableKey", ""),
                event("kms.amazonaws.com", "ScheduleKeyDeletion", ""),
            ],
            vec![
                event("kms.amazonaws.com", "EnableKey", ""),
                event("other.amazonaws.com", "DisableKey", ""),
            ],
        ),
        (
            "4.8",
            [
                "PutBucketPolicy",
                "PutBucketAcl",
                "DeleteBucketCors",
                "PutBucketReplication",
            ]
            .iter()
            .map(|n| event("s3.amazonaws.com", n, ""))
            .collect(),
            vec![
                event("s3.amazonaws.com", "GetBucketPolicy", ""),
                event("ec2.amazonaws.com", "PutBucketPolicy", ""),
            ],
        ),
        (
            "4.9",
            vec![
                event("config.amazonaws.com", "StopConfigurationRecorder", ""),
                event("config.amazonaws.com", "PutDeliveryChannel", ""),
            ],
            vec![event(
                "config.amazonaws.com",
                "DescribeConfigurationRecorders",
                "",
            )],
        ),
        (
            "4.10",
            vec![
                ec2("AuthorizeSecurityGroupIngress"),
                ec2("DeleteSecurityGroup"),
            ],
            vec![ec2("DescribeSecurityGroups")],
        ),
        (
            "4.11",
            vec![
                ec2("CreateNetworkAclEntry"),
                ec2("ReplaceNetworkAclAssociation"),
            ],
            vec![ec2("DescribeNetworkAcls")],
        ),
        (
            "4.12",
            vec![ec2("AttachInternetGateway"), ec2("DeleteCustomerGateway")],
            vec![ec2("DescribeInternetGateways")],
        ),
        (
            "4.13",
            vec![ec2("CreateRoute"), ec2("DisassociateRouteTable")],
            vec![ec2("DescribeRouteTables")],
        ),
        (
            "4.14",
            vec![
                ec2("CreateVpc"),
                ec2("ModifyVpcAttribute"),
                ec2("AcceptVpcPeeringConnection"),
            ],
            vec![ec2("DescribeVpcs")],
        ),
        (
            "4.15",
            vec![
                event("organizations.amazonaws.com", "CreateAccount", ""),
                event("organizations.amazonaws.com", "LeaveOrganization", ""),
            ],
            vec![
                event("organizations.amazonaws.com", "DescribeOrganization", ""),
                event("iam.amazonaws.com", "CreateAccount", ""),
            ],
        ),
    ]
}

#[test]
fn every_control_counts_its_events_and_only_those() {
    let set = FilterSet::new(
        CONTROLS
            .iter()
            .map(|c| {
                Filter::new(Pattern::parse(c.pattern).unwrap_or_else(|e| panic!("{}: {e}", c.id)))
            })
            .collect(),
    );
    let cases = cases();
    assert_eq!(cases.len(), CONTROLS.len(), "one case per control");
    let mut scratch = Scratch::default();
    for (id, counted, ignored) in &cases {
        let index = CONTROLS
            .iter()
            .position(|c| c.id == *id)
            .expect("a known control");
        for event in counted {
            set.evaluate(event, &mut scratch);
            assert!(set.is_match(&scratch, index), "{id} should count {event}");
        }
        for event in ignored {
            set.evaluate(event, &mut scratch);
            assert!(
                !set.is_match(&scratch, index),
                "{id} should not count {event}"
            );
        }
    }
}
