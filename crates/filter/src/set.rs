//! Many filters over one event, with one scan of it.

use crate::delimited::{self, Key, Memo, Token};
use crate::json::paths::Paths;
use crate::json::scan::{Extracted, Kind};
use crate::json::Selector;
use crate::{Pattern, PatternError};
use std::borrow::Cow;
use std::collections::HashMap;

/// A field a metric value or a dimension reads from a matching event: `$.json.selector`
/// or `$name` of a space-delimited pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Json(Selector),
    Delimited(Box<str>),
}

impl Field {
    pub fn parse(text: &str) -> Result<Field, PatternError> {
        if text.starts_with("$.") || text.starts_with("$[") {
            Selector::parse(text).map(Field::Json)
        } else if let Some(name) = text
            .strip_prefix('$')
            .filter(|n| !n.is_empty() && n.chars().all(crate::delimited::is_name_char))
        {
            Ok(Field::Delimited(name.into()))
        } else {
            Err(PatternError {
                column: 1,
                message: format!(
                    "\"{text}\" is not a field reference such as $.eventName or $status_code"
                ),
            })
        }
    }
}

/// A pattern and the fields read from the events it matches.
#[derive(Debug, Clone)]
pub struct Filter {
    pub pattern: Pattern,
    pub fields: Vec<Field>,
}

impl Filter {
    pub fn new(pattern: Pattern) -> Filter {
        Filter {
            pattern,
            fields: Vec::new(),
        }
    }
}

/// Filters compiled for evaluation together.
#[derive(Debug)]
pub struct FilterSet {
    filters: Vec<Filter>,
    paths: Paths,
    /// Per filter: the slot of each of its pattern's selectors.
    pattern_slots: Vec<Vec<usize>>,
    /// Per filter, per field: the slot of a JSON field.
    field_slots: Vec<Vec<Option<usize>>>,
    any_json: bool,
    any_delimited: bool,
}

/// Per-event working memory, reused across events so evaluation does not allocate.
#[derive(Debug, Default)]
pub struct Scratch {
    extracted: Extracted,
    is_json: bool,
    tokens: Vec<Token>,
    memo: Memo,
    matched: Vec<bool>,
}

impl FilterSet {
    pub fn new(filters: Vec<Filter>) -> FilterSet {
        // Filters that read the same selector share its slot: one record per value.
        let mut selectors: Vec<&Selector> = Vec::new();
        let mut slot_of: HashMap<&Selector, usize> = HashMap::new();
        let mut slot = |selector| {
            *slot_of.entry(selector).or_insert_with(|| {
                selectors.push(selector);
                selectors.len() - 1
            })
        };
        let mut pattern_slots = Vec::new();
        let mut field_slots = Vec::new();
        for filter in &filters {
            pattern_slots.push(match &filter.pattern {
                Pattern::Json(json) => json.selectors.iter().map(&mut slot).collect(),
                _ => Vec::new(),
            });
            field_slots.push(
                filter
                    .fields
                    .iter()
                    .map(|field| match field {
                        Field::Json(selector) => Some(slot(selector)),
                        Field::Delimited(_) => None,
                    })
                    .collect(),
            );
        }
        let paths = Paths::new(selectors);
        let any_json = filters.iter().any(|f| {
            matches!(f.pattern, Pattern::Json(_))
                || f.fields.iter().any(|x| matches!(x, Field::Json(_)))
        });
        let any_delimited = filters
            .iter()
            .any(|f| matches!(f.pattern, Pattern::Delimited(_)));
        FilterSet {
            filters,
            paths,
            pattern_slots,
            field_slots,
            any_json,
            any_delimited,
        }
    }

    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// Evaluates every filter on `message`; read the outcome with [`is_match`](Self::is_match).
    pub fn evaluate(&self, message: &str, scratch: &mut Scratch) {
        let bytes = message.as_bytes();
        scratch.is_json = self.any_json && scratch.extracted.scan(&self.paths, bytes);
        if self.any_delimited {
            delimited::tokenize(bytes, &mut scratch.tokens);
        }
        scratch.matched.clear();
        for (i, filter) in self.filters.iter().enumerate() {
            let matched = match &filter.pattern {
                Pattern::Everything => true,
                Pattern::Terms(terms) => terms.matches(bytes),
                Pattern::Json(json) => {
                    scratch.is_json
                        && json.matches(bytes, &scratch.extracted, &self.pattern_slots[i])
                }
                Pattern::Delimited(pattern) => {
                    pattern.matches(bytes, &scratch.tokens, &mut scratch.memo)
                }
            };
            scratch.matched.push(matched);
        }
    }

    pub fn is_match(&self, scratch: &Scratch, filter: usize) -> bool {
        scratch.matched.get(filter).copied().unwrap_or(false)
    }

    /// The text of field `field` of filter `filter` in the last evaluated event: for a JSON
    /// field the first scalar it reaches in the event, for a space-delimited field its value
    /// in a match.
    pub fn field<'m>(
        &self,
        filter: usize,
        field: usize,
        message: &'m str,
        scratch: &mut Scratch,
    ) -> Option<Cow<'m, [u8]>> {
        let bytes = message.as_bytes();
        match &self.filters[filter].fields[field] {
            Field::Json(_) => {
                let slot = self.field_slots[filter][field]?;
                if !scratch.is_json {
                    return None;
                }
                // Values come last first, so the last scalar is the event's first.
                scratch
                    .extracted
                    .values(slot)
                    .filter(|v| !matches!(v.kind, Kind::Null | Kind::Container))
                    .last()
                    .map(|v| v.text(bytes))
            }
            Field::Delimited(name) => {
                let Pattern::Delimited(pattern) = &self.filters[filter].pattern else {
                    return None;
                };
                if !pattern.matches(bytes, &scratch.tokens, &mut scratch.memo) {
                    return None;
                }
                pattern
                    .named(name, bytes, &scratch.memo.found)
                    .map(Cow::Borrowed)
            }
        }
    }

    /// The values a space-delimited filter extracted from the last evaluated event, keyed
    /// as `TestMetricFilter` shows them (`$ip`, `$1`, …); empty for other dialects.
    pub fn extracted_values(
        &self,
        filter: usize,
        message: &str,
        scratch: &mut Scratch,
    ) -> Vec<(String, String)> {
        let Pattern::Delimited(pattern) = &self.filters[filter].pattern else {
            return Vec::new();
        };
        let bytes = message.as_bytes();
        if !pattern.matches(bytes, &scratch.tokens, &mut scratch.memo) {
            return Vec::new();
        }
        pattern
            .extracted(bytes, &scratch.tokens, &scratch.memo.found)
            .into_iter()
            .map(|(key, value)| {
                let key = match key {
                    Key::Name(name) => format!("${name}"),
                    Key::Position(n) => format!("${n}"),
                };
                (key, String::from_utf8_lossy(value).into_owned())
            })
            .collect()
    }
}
