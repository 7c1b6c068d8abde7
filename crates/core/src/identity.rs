//! The principals that call Cairn's API, and how CloudTrail writes them as `userIdentity`.

use serde::Serialize;

/// The kinds of principal that hold long-term access keys in Cairn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityKind {
    Root,
    IamUser,
}

/// An authenticated caller: an account's root or one of its IAM users, with the access
/// key that signed the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub kind: IdentityKind,
    pub account_id: String,
    /// The IAM user name; for root, the account alias when one is configured.
    pub user_name: Option<String>,
    pub principal_id: String,
    pub access_key_id: String,
}

impl Identity {
    /// The caller's ARN, as CloudTrail writes it in `userIdentity.arn`.
    pub fn arn(&self) -> String {
        match self.kind {
            IdentityKind::Root => format!("arn:aws:iam::{}:root", self.account_id),
            IdentityKind::IamUser => format!(
                "arn:aws:iam::{}:user/{}",
                self.account_id,
                self.user_name.as_deref().unwrap_or_default()
            ),
        }
    }

    /// The `userIdentity` object of a record.
    pub fn user_identity(&self) -> UserIdentity<'_> {
        UserIdentity {
            kind: match self.kind {
                IdentityKind::Root => "Root",
                IdentityKind::IamUser => "IAMUser",
            },
            principal_id: &self.principal_id,
            arn: self.arn(),
            account_id: &self.account_id,
            access_key_id: &self.access_key_id,
            user_name: self.user_name.as_deref(),
        }
    }
}

/// `userIdentity` in AWS's field order.
#[derive(Debug, Serialize)]
pub struct UserIdentity<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "principalId")]
    pub principal_id: &'a str,
    pub arn: String,
    #[serde(rename = "accountId")]
    pub account_id: &'a str,
    #[serde(rename = "accessKeyId")]
    pub access_key_id: &'a str,
    #[serde(rename = "userName", skip_serializing_if = "Option::is_none")]
    pub user_name: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_follow_iam_forms() {
        let mut id = Identity {
            kind: IdentityKind::IamUser,
            account_id: "123456789012".into(),
            user_name: Some("admin".into()),
            principal_id: "AIDAEXAMPLE".into(),
            access_key_id: "AKIAEXAMPLE".into(),
        };
        assert_eq!(id.arn(), "arn:aws:iam::123456789012:user/admin");
        id.kind = IdentityKind::Root;
        assert_eq!(id.arn(), "arn:aws:iam::123456789012:root");
    }
}
