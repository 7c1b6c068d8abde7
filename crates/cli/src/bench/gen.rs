//! Realistic CloudTrail records for the benchmarks, and the small measuring helpers they
//! share.

use cairn_core::timefmt::format_event_time;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const ACCOUNTS: [&str; 3] = ["123456789012", "111122223333", "444455556666"];
pub const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

/// (eventSource, eventName, readOnly, resource type)
pub const CALLS: &[(&str, &str, bool, &str)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", true, ""),
    (
        "ec2.amazonaws.com",
        "RunInstances",
        false,
        "AWS::EC2::Instance",
    ),
    (
        "ec2.amazonaws.com",
        "TerminateInstances",
        false,
        "AWS::EC2::Instance",
    ),
    (
        "ec2.amazonaws.com",
        "AuthorizeSecurityGroupIngress",
        false,
        "AWS::EC2::SecurityGroup",
    ),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", true, ""),
    ("s3.amazonaws.com", "ListBuckets", true, ""),
    ("s3.amazonaws.com", "CreateBucket", false, "AWS::S3::Bucket"),
    (
        "s3.amazonaws.com",
        "PutBucketPolicy",
        false,
        "AWS::S3::Bucket",
    ),
    ("s3.amazonaws.com", "GetBucketAcl", true, "AWS::S3::Bucket"),
    ("iam.amazonaws.com", "GetUser", true, ""),
    ("iam.amazonaws.com", "CreateRole", false, "AWS::IAM::Role"),
    (
        "iam.amazonaws.com",
        "AttachRolePolicy",
        false,
        "AWS::IAM::Role",
    ),
    ("iam.amazonaws.com", "ListRoles", true, ""),
    ("sts.amazonaws.com", "AssumeRole", true, "AWS::IAM::Role"),
    ("sts.amazonaws.com", "GetCallerIdentity", true, ""),
    ("kms.amazonaws.com", "Decrypt", true, "AWS::KMS::Key"),
    (
        "kms.amazonaws.com",
        "GenerateDataKey",
        true,
        "AWS::KMS::Key",
    ),
    ("lambda.amazonaws.com", "ListFunctions20150331", true, ""),
    (
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        false,
        "AWS::Lambda::Function",
    ),
    ("cloudtrail.amazonaws.com", "LookupEvents", true, ""),
    ("cloudtrail.amazonaws.com", "DescribeTrails", true, ""),
    (
        "cloudtrail.amazonaws.com",
        "StopLogging",
        false,
        "AWS::CloudTrail::Trail",
    ),
    ("rds.amazonaws.com", "DescribeDBInstances", true, ""),
    (
        "secretsmanager.amazonaws.com",
        "GetSecretValue",
        true,
        "AWS::SecretsManager::Secret",
    ),
    ("ssm.amazonaws.com", "GetParameter", true, ""),
    (
        "logs.amazonaws.com",
        "CreateLogStream",
        false,
        "AWS::Logs::LogGroup",
    ),
];

const AGENTS: [&str; 5] = [
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0-1014-aws md/arch#x86_64 lang/python#3.11.8 md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.210-201.852.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/",
    "console.amazonaws.com",
    "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1",
];

pub struct Generator {
    rng: StdRng,
    pub users: Vec<(String, String, String)>, // (kind, name, access key)
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut users = Vec::new();
        for i in 0..40 {
            let kind = match i % 5 {
                0 => "Root",
                1 | 2 => "IAMUser",
                _ => "AssumedRole",
            };
            let name = match kind {
                "Root" => "root".to_owned(),
                "IAMUser" => format!("user-{i:02}"),
                _ => format!("session-{i:02}"),
            };
            let key: String = (0..16)
                .map(|_| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[rng.random_range(0..32)]))
                .collect();
            let prefix = if kind == "AssumedRole" {
                "ASIA"
            } else {
                "AKIA"
            };
            users.push((kind.to_owned(), name, format!("{prefix}{key}")));
        }
        Generator { rng, users }
    }

    pub fn uuid(&mut self) -> String {
        let v: u128 = self.rng.random();
        let h = format!("{v:032x}");
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    /// One record of roughly 1.2-1.8 KB.
    pub fn record(&mut self, time: i64, account: &str, region: &str) -> Vec<u8> {
        let (source, name, read_only, resource_type) = CALLS[self.rng.random_range(0..CALLS.len())];
        let (kind, user, key) = self.users[self.rng.random_range(0..self.users.len())].clone();
        let identity = match kind.as_str() {
            "Root" => format!(
                r#"{{"type":"Root","principalId":"{account}","arn":"arn:aws:iam::{account}:root","accountId":"{account}","accessKeyId":"{key}"}}"#
            ),
            "IAMUser" => format!(
                r#"{{"type":"IAMUser","principalId":"AIDA{}","arn":"arn:aws:iam::{account}:user/{user}","accountId":"{account}","accessKeyId":"{key}","userName":"{user}"}}"#,
                &key[4..]
            ),
            _ => format!(
                r#"{{"type":"AssumedRole","principalId":"AROA{k}:{user}","arn":"arn:aws:sts::{account}:assumed-role/Deployer/{user}","accountId":"{account}","accessKeyId":"{key}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{k}","arn":"arn:aws:iam::{account}:role/Deployer","accountId":"{account}","userName":"Deployer"}},"attributes":{{"creationDate":"{c}","mfaAuthenticated":"false"}}}}}}"#,
                k = &key[4..],
                c = format_event_time(time - 600)
            ),
        };
        let resource_id = self.rng.random_range(0..5000u32);
        let (params, resources) = if resource_type.is_empty() {
            (r#"{"maxResults":100,"filterSet":{"items":[{"name":"instance-state-name","valueSet":{"items":[{"value":"running"}]}}]}}"#.to_owned(), String::new())
        } else {
            let arn = match resource_type {
                "AWS::S3::Bucket" => format!("arn:aws:s3:::bucket-{resource_id}"),
                "AWS::IAM::Role" => format!("arn:aws:iam::{account}:role/role-{resource_id}"),
                "AWS::EC2::Instance" => {
                    format!("arn:aws:ec2:{region}:{account}:instance/i-{resource_id:017x}")
                }
                _ => format!(
                    "arn:aws:{}:{region}:{account}:resource/r-{resource_id}",
                    source.split('.').next().unwrap_or("x")
                ),
            };
            (
                format!(
                    r#"{{"resourceArn":"{arn}","description":"managed by automation","tags":[{{"key":"team","value":"platform"}},{{"key":"env","value":"prod"}}]}}"#
                ),
                format!(
                    r#","resources":[{{"accountId":"{account}","type":"{resource_type}","ARN":"{arn}"}}]"#
                ),
            )
        };
        let error = if self.rng.random_range(0..100) < 6 {
            r#","errorCode":"AccessDenied","errorMessage":"User is not authorized to perform this operation because no identity-based policy allows the action""#
        } else {
            ""
        };
        let response = if read_only || !error.is_empty() {
            "null".to_owned()
        } else {
            format!(r#"{{"requestId":"{}","return":true}}"#, self.uuid())
        };
        let agent = AGENTS[self.rng.random_range(0..AGENTS.len())];
        let ip = format!(
            "203.0.{}.{}",
            self.rng.random_range(0..4),
            self.rng.random_range(1..255)
        );
        format!(
            r#"{{"eventVersion":"1.11","userIdentity":{identity},"eventTime":"{t}","eventSource":"{source}","eventName":"{name}","awsRegion":"{region}","sourceIPAddress":"{ip}","userAgent":"{agent}"{error},"requestParameters":{params},"responseElements":{response},"requestID":"{rid}","eventID":"{eid}","readOnly":{read_only}{resources},"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{account}","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{host}.{region}.amazonaws.com"}}}}"#,
            t = format_event_time(time),
            rid = self.uuid(),
            eid = self.uuid(),
            host = source.split('.').next().unwrap_or("x"),
        )
        .into_bytes()
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Peak resident memory (VmHWM) of this process, or of `pid`, in MB.
pub fn peak_rss_mb(pid: Option<u32>) -> f64 {
    let path = pid.map_or("/proc/self/status".to_owned(), |p| {
        format!("/proc/{p}/status")
    });
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The directory a benchmark works in: the one given, or a temporary one removed at the end.
pub enum WorkDir {
    Given(std::path::PathBuf),
    Temporary(tempfile::TempDir),
}

impl WorkDir {
    pub fn new(given: Option<std::path::PathBuf>) -> std::io::Result<WorkDir> {
        Ok(match given {
            Some(dir) => WorkDir::Given(dir),
            None => WorkDir::Temporary(tempfile::tempdir()?),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        match self {
            WorkDir::Given(dir) => dir,
            WorkDir::Temporary(dir) => dir.path(),
        }
    }
}
