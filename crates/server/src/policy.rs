//! IAM-style identity policies: which actions a user may take on which resources.
//!
//! A policy is an IAM policy document (`Version`, `Statement` with `Effect`, `Action` or
//! `NotAction`, `Resource` or `NotResource`), evaluated as IAM evaluates identity
//! policies: an explicit deny wins, then an allow, and anything else is denied. Elements
//! Cairn cannot evaluate (`Condition`, `Principal`) are refused when the configuration is
//! loaded rather than ignored, so a policy never grants more than it says.

use serde::Deserialize;
use serde_json::Value;

/// A checked policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Clone, Debug, PartialEq)]
struct Statement {
    allow: bool,
    actions: Patterns,
    resources: Patterns,
}

/// `Action` (or `Resource`) patterns, or with `not`, `NotAction` (`NotResource`).
#[derive(Clone, Debug, PartialEq)]
struct Patterns {
    not: bool,
    patterns: Vec<String>,
}

/// What a policy says about one action on one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No statement allows it.
    ImplicitDeny,
    /// A statement denies it.
    ExplicitDeny,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(rename = "Version")]
    version: Option<String>,
    #[serde(rename = "Id")]
    _id: Option<String>,
    #[serde(rename = "Statement")]
    statement: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(rename = "Sid")]
    _sid: Option<String>,
    #[serde(rename = "Effect")]
    effect: String,
    #[serde(rename = "Action")]
    action: Option<Value>,
    #[serde(rename = "NotAction")]
    not_action: Option<Value>,
    #[serde(rename = "Resource")]
    resource: Option<Value>,
    #[serde(rename = "NotResource")]
    not_resource: Option<Value>,
}

impl Policy {
    /// Parses and checks an IAM policy document.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let document: Document = serde_json::from_str(text).map_err(|e| {
            format!("is not a policy document this server can evaluate: {e} (Condition and Principal are not supported)")
        })?;
        if let Some(version) = &document.version {
            if version != "2012-10-17" && version != "2008-10-17" {
                return Err(format!(
                    "has Version {version:?}; use \"2012-10-17\" or \"2008-10-17\""
                ));
            }
        }
        let raw: Vec<Value> = match document.statement {
            Value::Array(items) => items,
            single @ Value::Object(_) => vec![single],
            _ => return Err("has a Statement that is neither an object nor a list".into()),
        };
        let statements = raw
            .into_iter()
            .enumerate()
            .map(|(i, value)| {
                let raw: RawStatement = serde_json::from_value(value).map_err(|e| {
                    format!(
                        "statement {}: {e} (Condition and Principal are not supported)",
                        i + 1
                    )
                })?;
                statement(raw).map_err(|e| format!("statement {}: {e}", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if statements.is_empty() {
            return Err("has no statements".into());
        }
        Ok(Policy { statements })
    }

    /// What the policy says about `action` (`service:Operation`) on `resource` (an ARN,
    /// or `*` for actions that take no resource).
    pub fn decide(&self, action: &str, resource: &str) -> Decision {
        let applies = |s: &Statement| {
            s.actions.matches(action, |p, a| wildcard_match(p, a, true))
                && s.resources.matches(resource, resource_matches)
        };
        if self.statements.iter().any(|s| !s.allow && applies(s)) {
            Decision::ExplicitDeny
        } else if self.statements.iter().any(|s| s.allow && applies(s)) {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        }
    }
}

fn statement(raw: RawStatement) -> Result<Statement, String> {
    let allow = match raw.effect.as_str() {
        "Allow" => true,
        "Deny" => false,
        other => return Err(format!("Effect is {other:?}; use \"Allow\" or \"Deny\"")),
    };
    let actions = one_of("Action", raw.action, raw.not_action)?;
    for action in &actions.patterns {
        if action != "*"
            && !action
                .split_once(':')
                .is_some_and(|(s, o)| !s.is_empty() && !o.is_empty())
        {
            return Err(format!(
                "action {action:?} is not \"service:Operation\" (for example \"cloudtrail:LookupEvents\")"
            ));
        }
    }
    let resources = one_of("Resource", raw.resource, raw.not_resource)?;
    for resource in &resources.patterns {
        if resource != "*" && !resource.starts_with("arn:") {
            return Err(format!("resource {resource:?} is neither \"*\" nor an ARN"));
        }
    }
    Ok(Statement {
        allow,
        actions,
        resources,
    })
}

/// `Name` or `NotName`, exactly one of them, as a string or a list of strings.
fn one_of(
    name: &str,
    positive: Option<Value>,
    negative: Option<Value>,
) -> Result<Patterns, String> {
    let (not, value) = match (positive, negative) {
        (Some(v), None) => (false, v),
        (None, Some(v)) => (true, v),
        (None, None) => return Err(format!("has neither {name} nor Not{name}")),
        (Some(_), Some(_)) => return Err(format!("has both {name} and Not{name}")),
    };
    let patterns = match value {
        Value::String(s) => vec![s],
        Value::Array(items) if !items.is_empty() => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(format!("{name} lists something that is not a string")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(format!(
                "{name} must be a string or a non-empty list of strings"
            ))
        }
    };
    Ok(Patterns { not, patterns })
}

impl Patterns {
    fn matches(&self, subject: &str, matcher: impl Fn(&str, &str) -> bool) -> bool {
        self.patterns.iter().any(|p| matcher(p, subject)) != self.not
    }
}

/// A log group's ARN also answers to its `:*` form, the form AWS's own policies and
/// documentation write for log groups.
fn resource_matches(pattern: &str, resource: &str) -> bool {
    wildcard_match(pattern, resource, false)
        || (resource.contains(":log-group:")
            && !resource.ends_with(":*")
            && wildcard_match(pattern, &format!("{resource}:*"), false))
}

/// IAM's wildcards: `*` is any run of characters, `?` any one character. Actions compare
/// without regard to case, resources exactly.
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let same = |p: char, t: char| p == '?' || p == t || (ignore_case && p.eq_ignore_ascii_case(&t));
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and how much text it has taken, to backtrack to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && same(pattern[p], text[t]) {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAIL: &str = "arn:aws:cloudtrail:us-east-1:111122223333:trail/prod";

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard_match(
            "cloudtrail:*",
            "cloudtrail:CreateTrail",
            true
        ));
        assert!(wildcard_match(
            "cloudtrail:get*",
            "cloudtrail:GetTrail",
            true
        ));
        assert!(!wildcard_match(
            "cloudtrail:Get*",
            "cloudtrail:StartLogging",
            true
        ));
        assert!(wildcard_match(
            "cloudtrail:Get?rail",
            "cloudtrail:GetTrail",
            true
        ));
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match(
            "arn:aws:cloudtrail:*:*:trail/*",
            TRAIL,
            false
        ));
        assert!(!wildcard_match(
            "arn:aws:cloudtrail:*:*:trail/Prod",
            TRAIL,
            false
        ));
        assert!(wildcard_match("a*b*c", "axxbyybzzc", false));
        assert!(!wildcard_match("a*b*c", "axxbyyb", false));
        assert!(!wildcard_match("abc", "abcd", false));
    }

    #[test]
    fn a_deny_wins_over_an_allow_and_silence_denies() {
        let policy = Policy::parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Action":"cloudtrail:*","Resource":"*"}},
                {{"Effect":"Deny","Action":["cloudtrail:DeleteTrail","cloudtrail:StopLogging"],"Resource":"{TRAIL}"}}]}}"#
        ))
        .expect("a valid policy");
        assert_eq!(policy.decide("cloudtrail:GetTrail", TRAIL), Decision::Allow);
        assert_eq!(
            policy.decide("cloudtrail:DeleteTrail", TRAIL),
            Decision::ExplicitDeny
        );
        assert_eq!(
            policy.decide("cloudtrail:DeleteTrail", &TRAIL.replace("prod", "dev")),
            Decision::Allow
        );
        assert_eq!(
            policy.decide("logs:CreateLogGroup", "*"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn not_action_and_not_resource_invert_the_match() {
        let policy = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","NotAction":"cloudtrail:Delete*","NotResource":"arn:aws:cloudtrail:*:*:channel/*"}}"#,
        )
        .expect("a valid policy");
        assert_eq!(policy.decide("cloudtrail:GetTrail", TRAIL), Decision::Allow);
        assert_eq!(
            policy.decide("cloudtrail:DeleteTrail", TRAIL),
            Decision::ImplicitDeny
        );
        assert_eq!(
            policy.decide(
                "cloudtrail:GetChannel",
                "arn:aws:cloudtrail:us-east-1:111122223333:channel/c"
            ),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn a_log_group_answers_to_its_star_form() {
        let policy = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"arn:aws:logs:*:111122223333:log-group:app:*"}]}"#,
        )
        .expect("a valid policy");
        let group = "arn:aws:logs:us-east-1:111122223333:log-group:app";
        assert_eq!(
            policy.decide("logs:PutMetricFilter", group),
            Decision::Allow
        );
        assert_eq!(
            policy.decide("logs:PutMetricFilter", &format!("{group}-other")),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn what_cannot_be_evaluated_is_refused() {
        for (text, says) in [
            (r#"{"Statement":[]}"#, "no statements"),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}"#,
                "Condition",
            ),
            (
                r#"{"Statement":[{"Effect":"Permit","Action":"*","Resource":"*"}]}"#,
                "Effect",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                "neither Action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}]}"#,
                "both",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"LookupEvents","Resource":"*"}]}"#,
                "service:Operation",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"trail/x"}]}"#,
                "ARN",
            ),
            (r#"{"Version":"2020-01-01","Statement":[]}"#, "Version"),
            ("not json", "not a policy"),
        ] {
            let error = Policy::parse(text).err().unwrap_or_default();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
