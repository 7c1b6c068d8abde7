//! The CIS AWS Foundations Benchmark monitoring controls (section 4 of v1.4 onwards, the
//! `CloudWatch.1`–`CloudWatch.14` controls of AWS Security Hub) as metric filters over
//! CloudTrail records.
//!
//! The patterns are the ones the benchmark publishes, unchanged, so an auditor can compare
//! them line by line. Every control counts matching events (metric value 1) in one
//! namespace.

/// The namespace every control's metric is published in.
pub const NAMESPACE: &str = "CISBenchmark";

/// One monitoring control.
#[derive(Debug, Clone, Copy)]
pub struct Control {
    /// The benchmark's recommendation number.
    pub id: &'static str,
    pub title: &'static str,
    /// The metric (and the filter's name) in [`NAMESPACE`].
    pub metric: &'static str,
    pub pattern: &'static str,
}

pub const CONTROLS: [Control; 15] = [
    Control {
        id: "4.1",
        title: "Unauthorized API calls",
        metric: "UnauthorizedAPICalls",
        pattern: r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }"#,
    },
    Control {
        id: "4.2",
        title: "Management console sign-in without MFA",
        metric: "ConsoleSignInWithoutMFA",
        pattern: r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
    },
    Control {
        id: "4.3",
        title: "Usage of the root account",
        metric: "RootAccountUsage",
        pattern: r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#,
    },
    Control {
        id: "4.4",
        title: "IAM policy changes",
        metric: "IAMPolicyChanges",
        pattern: "{ ($.eventName = DeleteGroupPolicy) || ($.eventName = DeleteRolePolicy) || ($.eventName = DeleteUserPolicy) || ($.eventName = PutGroupPolicy) || ($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || ($.eventName = CreatePolicy) || ($.eventName = DeletePolicy) || ($.eventName = CreatePolicyVersion) || ($.eventName = DeletePolicyVersion) || ($.eventName = AttachRolePolicy) || ($.eventName = DetachRolePolicy) || ($.eventName = AttachUserPolicy) || ($.eventName = DetachUserPolicy) || ($.eventName = AttachGroupPolicy) || ($.eventName = DetachGroupPolicy) }",
    },
    Control {
        id: "4.5",
        title: "CloudTrail configuration changes",
        metric: "CloudTrailConfigurationChanges",
        pattern: "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }",
    },
    Control {
        id: "4.6",
        title: "Management console authentication failures",
        metric: "ConsoleAuthenticationFailures",
        pattern: r#"{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }"#,
    },
    Control {
        id: "4.7",
        title: "Disabling or scheduled deletion of customer-managed keys",
        metric: "DisableOrDeleteCMK",
        pattern: "{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || ($.eventName = ScheduleKeyDeletion)) }",
    },
    Control {
        id: "4.8",
        title: "S3 bucket policy changes",
        metric: "S3BucketPolicyChanges",
        pattern: "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }",
    },
    Control {
        id: "4.9",
        title: "AWS Config configuration changes",
        metric: "AWSConfigChanges",
        pattern: "{ ($.eventSource = config.amazonaws.com) && (($.eventName = StopConfigurationRecorder) || ($.eventName = DeleteDeliveryChannel) || ($.eventName = PutDeliveryChannel) || ($.eventName = PutConfigurationRecorder)) }",
    },
    Control {
        id: "4.10",
        title: "Security group changes",
        metric: "SecurityGroupChanges",
        pattern: "{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }",
    },
    Control {
        id: "4.11",
        title: "Network access control list changes",
        metric: "NACLChanges",
        pattern: "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || ($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }",
    },
    Control {
        id: "4.12",
        title: "Network gateway changes",
        metric: "NetworkGatewayChanges",
        pattern: "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || ($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || ($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }",
    },
    Control {
        id: "4.13",
        title: "Route table changes",
        metric: "RouteTableChanges",
        pattern: "{ ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }",
    },
    Control {
        id: "4.14",
        title: "VPC changes",
        metric: "VPCChanges",
        pattern: "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }",
    },
    Control {
        id: "4.15",
        title: "AWS Organizations changes",
        metric: "OrganizationsChanges",
        pattern: r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
    },
];
