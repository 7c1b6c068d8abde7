//! The naming rules CreateTrail and UpdateTrail enforce, with AWS's messages.

use crate::api::ApiError;

fn invalid_name(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidTrailNameException", message)
}

/// Trail names: 3–128 of `[A-Za-z0-9._-]`, starting and ending with a letter or digit, no
/// two of `._-` in a row, not an IP address.
pub fn check_trail_name(name: &str) -> Result<(), ApiError> {
    let len = name.chars().count();
    if len < 3 {
        return Err(invalid_name(format!("Trail name too short. Minimum allowed length: 3 characters. Specified name length: {len} characters.")));
    }
    if len > 128 {
        return Err(invalid_name(format!("Trail name too long. Maximum allowed length: 128 characters. Specified name length: {len} characters.")));
    }
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() {
        return Err(invalid_name(
            "Trail name must starts with a letter or number.",
        ));
    }
    if !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err(invalid_name(
            "Trail name must ends with a letter or number.",
        ));
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
    {
        return Err(invalid_name("Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, periods (.), hyphens (-), and underscores (_)."));
    }
    if bytes
        .windows(2)
        .any(|w| b"._-".contains(&w[0]) && b"._-".contains(&w[1]))
    {
        return Err(invalid_name("Trail name cannot have adjacent periods (.), hyphens (-) or underscores (_), as in my-_namespace or my--namespace."));
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(invalid_name(
            "Trail name cannot be formatted as an IP address, such as 192.168.5.4.",
        ));
    }
    Ok(())
}

/// S3 bucket names: 3–63 of lowercase letters, digits, `.` and `-`; labels start and end
/// with a letter or digit; not an IP address.
pub fn check_bucket_name(bucket: &str) -> Result<(), String> {
    let fail = |why: &str| Err(format!("Bucket name {bucket:?} is not valid: {why}."));
    if !(3..=63).contains(&bucket.len()) {
        return fail("it must be 3 to 63 characters long");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return fail("it may hold only lowercase letters, digits, periods and hyphens");
    }
    for label in bucket.split('.') {
        let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
        if !ends_ok(label.as_bytes().first()) || !ends_ok(label.as_bytes().last()) {
            return fail("each period-separated label must start and end with a letter or digit");
        }
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return fail("it must not be formatted as an IP address");
    }
    Ok(())
}

pub fn check_bucket(bucket: &str) -> Result<(), ApiError> {
    check_bucket_name(bucket).map_err(|m| ApiError::client("InvalidS3BucketNameException", m))
}

/// S3 key prefixes: at most 200 characters, no empty or relative path segment, no
/// control characters.
pub fn check_prefix(prefix: &str) -> Result<(), ApiError> {
    let bad = prefix.len() > 200
        || prefix.starts_with('/')
        || prefix.chars().any(char::is_control)
        // One trailing slash is allowed; no other segment may be empty.
        || prefix
            .strip_suffix('/')
            .unwrap_or(prefix)
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(ApiError::client(
            "InvalidS3PrefixException",
            format!("The S3 key prefix {prefix:?} is not valid: at most 200 characters, no leading slash, no empty, '.' or '..' segments."),
        ));
    }
    Ok(())
}

/// An SNS topic given by name (1–256 of `[A-Za-z0-9_-]`) or ARN; returns (name, ARN).
pub fn sns_topic(topic: &str, region: &str, account: &str) -> Result<(String, String), ApiError> {
    let name_ok = |n: &str| {
        (1..=256).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let invalid = || {
        ApiError::client(
            "InvalidSnsTopicNameException",
            format!("SNS topic name {topic:?} is not valid: 1 to 256 letters, digits, hyphens and underscores, or a topic ARN."),
        )
    };
    if let Some(rest) = topic.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5 || parts[1] != "sns" || !name_ok(parts[4]) {
            return Err(invalid());
        }
        return Ok((parts[4].to_owned(), topic.to_owned()));
    }
    if !name_ok(topic) {
        return Err(invalid());
    }
    Ok((
        topic.to_owned(),
        format!("arn:aws:sns:{region}:{account}:{topic}"),
    ))
}

/// A KMS key id, alias or ARN; responses always carry a full key ARN.
pub fn kms_key_arn(key: &str, region: &str, account: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::client(
            "InvalidKmsKeyIdException",
            format!("KMS key {key:?} is not a key id, key ARN, alias name or alias ARN."),
        )
    };
    if key.is_empty() || key.len() > 2048 || key.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    if key.starts_with("arn:") {
        let parts: Vec<&str> = key.splitn(6, ':').collect();
        if parts.len() != 6
            || parts[2] != "kms"
            || !(parts[5].starts_with("key/") || parts[5].starts_with("alias/"))
        {
            return Err(invalid());
        }
        return Ok(key.to_owned());
    }
    if key.starts_with("alias/") {
        return Ok(format!("arn:aws:kms:{region}:{account}:{key}"));
    }
    if key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Ok(format!("arn:aws:kms:{region}:{account}:key/{key}"));
    }
    Err(invalid())
}

/// `arn:aws:logs:<region>:<account>:log-group:<name>:*`.
pub fn check_log_group_arn(arn: &str) -> Result<(), ApiError> {
    if crate::loggroups::parse_group_arn(arn).is_none() {
        return Err(ApiError::client(
            "InvalidCloudWatchLogsLogGroupArnException",
            format!("{arn:?} is not a log group ARN such as arn:aws:logs:us-east-1:123456789012:log-group:my-group:*."),
        ));
    }
    Ok(())
}

/// `arn:aws:iam::<account>:role/<name>`.
pub fn check_role_arn(arn: &str) -> Result<(), ApiError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "iam"
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|r| !r.is_empty());
    if !ok {
        return Err(ApiError::client(
            "InvalidCloudWatchLogsRoleArnException",
            format!(
                "{arn:?} is not an IAM role ARN such as arn:aws:iam::123456789012:role/my-role."
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trail_names_follow_aws_rules() {
        for good in ["abc", "My.Trail_1-x", &"a".repeat(128)] {
            assert!(check_trail_name(good).is_ok(), "{good}");
        }
        let cases = [
            ("ab", "too short"),
            (&"a".repeat(129) as &str, "too long"),
            ("-abc", "starts"),
            ("abc_", "ends"),
            ("a b c", "can only contain"),
            ("my-_ns", "adjacent"),
            ("my--ns", "adjacent"),
            ("192.168.5.4", "IP address"),
        ];
        for (name, why) in cases {
            let error = check_trail_name(name).unwrap_err();
            assert_eq!(error.code, "InvalidTrailNameException");
            assert!(error.message.contains(why), "{name}: {}", error.message);
        }
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my.bucket-1", "a1b"] {
            assert!(check_bucket_name(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "My-bucket",
            "my_bucket",
            "bucket-",
            "a..b",
            "a-.b",
            "a.-b",
            "10.0.0.1",
            &"a".repeat(64),
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_topics_and_keys() {
        assert!(check_prefix("logs/prod").is_ok());
        assert!(check_prefix("logs/").is_ok());
        for bad in ["/x", "a//b", "a/../b", &"p".repeat(201)] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
        assert_eq!(
            sns_topic("t-1", "us-east-1", "111122223333").unwrap().1,
            "arn:aws:sns:us-east-1:111122223333:t-1"
        );
        assert_eq!(
            sns_topic("arn:aws:sns:eu-west-1:111122223333:t", "us-east-1", "1")
                .unwrap()
                .0,
            "t"
        );
        assert!(sns_topic("bad topic", "r", "a").is_err());
        assert_eq!(
            kms_key_arn("alias/k", "us-east-1", "111122223333").unwrap(),
            "arn:aws:kms:us-east-1:111122223333:alias/k"
        );
        assert!(kms_key_arn("arn:aws:s3:::x", "r", "a").is_err());
        assert!(check_log_group_arn("arn:aws:logs:us-east-1:111122223333:log-group:g:*").is_ok());
        assert!(check_log_group_arn("arn:aws:logs:us-east-1:111122223333:g").is_err());
        assert!(check_role_arn("arn:aws:iam::111122223333:role/r").is_ok());
        assert!(check_role_arn("arn:aws:iam::111122223333:user/r").is_err());
    }
}
