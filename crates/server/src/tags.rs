//! Resource tags, as trails and channels carry them.

use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// Tags per resource.
pub const MAX_TAGS: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidTagParameterException", message)
}

/// Checks a list of tags from a request: keys 1–128 characters and unique, values at most
/// 256 characters.
pub fn check(tags: &[Tag]) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(invalid(format!(
                "Tag key {:?} is not valid: keys are 1 to 128 characters.",
                tag.key
            )));
        }
        if tag
            .value
            .as_deref()
            .is_some_and(|v| v.chars().count() > 256)
        {
            return Err(invalid(format!(
                "The value of tag {:?} is longer than 256 characters.",
                tag.key
            )));
        }
        if !seen.insert(tag.key.as_str()) {
            return Err(invalid(format!(
                "Tag key {:?} is given more than once.",
                tag.key
            )));
        }
    }
    Ok(())
}

fn limit() -> ApiError {
    ApiError::client(
        "TagsLimitExceededException",
        format!("A resource has at most {MAX_TAGS} tags."),
    )
}

/// A new resource's tags.
pub fn initial(tags: &[Tag]) -> Result<Vec<Tag>, ApiError> {
    check(tags)?;
    if tags.len() > MAX_TAGS {
        return Err(limit());
    }
    Ok(tags.to_vec())
}

/// AddTags: a given key overwrites the existing value.
pub fn add(existing: &mut Vec<Tag>, tags: &[Tag]) -> Result<(), ApiError> {
    check(tags)?;
    for tag in tags {
        match existing.iter_mut().find(|t| t.key == tag.key) {
            Some(old) => old.value = tag.value.clone(),
            None => existing.push(tag.clone()),
        }
    }
    if existing.len() > MAX_TAGS {
        return Err(limit());
    }
    Ok(())
}

/// RemoveTags: removes the given keys (a tag given with a value is removed only when the
/// value matches).
pub fn remove(existing: &mut Vec<Tag>, tags: &[Tag]) -> Result<(), ApiError> {
    check(tags)?;
    existing.retain(|t| {
        !tags
            .iter()
            .any(|r| r.key == t.key && (r.value.is_none() || r.value == t.value))
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str, value: Option<&str>) -> Tag {
        Tag {
            key: key.into(),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn add_overwrites_and_remove_matches_values() {
        let mut tags = initial(&[tag("a", Some("1")), tag("b", None)]).unwrap();
        add(&mut tags, &[tag("a", Some("2")), tag("c", Some("3"))]).unwrap();
        assert_eq!(
            tags,
            vec![tag("a", Some("2")), tag("b", None), tag("c", Some("3"))]
        );
        remove(&mut tags, &[tag("a", Some("1")), tag("b", None)]).unwrap();
        assert_eq!(tags, vec![tag("a", Some("2")), tag("c", Some("3"))]);
    }

    #[test]
    fn limits_and_bad_tags_are_refused() {
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), None)).collect();
        assert_eq!(
            initial(&many).unwrap_err().code,
            "TagsLimitExceededException"
        );
        let mut fifty: Vec<Tag> = many[..50].to_vec();
        assert_eq!(
            add(&mut fifty, &[tag("new", None)]).unwrap_err().code,
            "TagsLimitExceededException"
        );
        for bad in [
            vec![tag("", None)],
            vec![tag(&"k".repeat(129), None)],
            vec![tag("k", Some(&"v".repeat(257)))],
            vec![tag("k", None), tag("k", Some("x"))],
        ] {
            assert_eq!(
                initial(&bad).unwrap_err().code,
                "InvalidTagParameterException"
            );
        }
    }
}
