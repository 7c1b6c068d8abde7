//! Trail event selectors, basic and advanced: their validation (as PutEventSelectors does
//! it for trails) and which events they select.

use serde::{Deserialize, Serialize};

use crate::route::RouteFields;
use crate::Category;

/// Basic selectors per trail.
pub const MAX_BASIC_SELECTORS: usize = 5;
/// Data-resource values per trail, across its basic selectors.
pub const MAX_DATA_RESOURCE_VALUES: usize = 250;
/// Condition values per trail, across its advanced selectors.
pub const MAX_CONDITION_VALUES: usize = 500;
/// Management event sources a selector may leave out.
pub const EXCLUDABLE_SOURCES: [&str; 2] = ["kms.amazonaws.com", "rdsdata.amazonaws.com"];
const DATA_RESOURCE_TYPES: [&str; 3] = [
    "AWS::S3::Object",
    "AWS::Lambda::Function",
    "AWS::DynamoDB::Table",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadWriteType {
    ReadOnly,
    WriteOnly,
    All,
    /// Any other value: kept so that validation can refuse it with the right error.
    #[serde(other)]
    Invalid,
}

impl ReadWriteType {
    fn admits(self, read_only: Option<bool>) -> bool {
        match self {
            ReadWriteType::All => true,
            // An event that does not say counts as a write, as most such events are.
            ReadWriteType::ReadOnly => read_only == Some(true),
            ReadWriteType::WriteOnly => read_only != Some(true),
            ReadWriteType::Invalid => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataResource {
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventSelector {
    #[serde(default = "all")]
    pub read_write_type: ReadWriteType,
    #[serde(default = "yes")]
    pub include_management_events: bool,
    #[serde(default)]
    pub data_resources: Vec<DataResource>,
    #[serde(default)]
    pub exclude_management_event_sources: Vec<String>,
}

fn all() -> ReadWriteType {
    ReadWriteType::All
}

fn yes() -> bool {
    true
}

impl Default for EventSelector {
    /// What a trail without selectors logs: every management event, no data events.
    fn default() -> Self {
        EventSelector {
            read_write_type: ReadWriteType::All,
            include_management_events: true,
            data_resources: Vec::new(),
            exclude_management_event_sources: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FieldSelector {
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_with: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_starts_with: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_ends_with: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AdvancedEventSelector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub field_selectors: Vec<FieldSelector>,
}

/// A trail's selectors: one form or the other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Selectors {
    Basic(Vec<EventSelector>),
    Advanced(Vec<AdvancedEventSelector>),
}

impl Default for Selectors {
    fn default() -> Self {
        Selectors::Basic(vec![EventSelector::default()])
    }
}

impl Selectors {
    /// Whether these selectors select the event.
    pub fn selects(&self, event: &RouteFields) -> bool {
        match self {
            Selectors::Basic(selectors) => selectors.iter().any(|s| s.selects(event)),
            Selectors::Advanced(selectors) => selectors.iter().any(|s| s.selects(event)),
        }
    }

    /// Whether the trail logs management events of this kind (for Insights' requirements).
    pub fn logs_management(&self, read_only: bool) -> bool {
        let probe = RouteFields {
            account: String::new(),
            region: String::new(),
            category: Category::Management,
            event_source: String::new(),
            event_name: String::new(),
            event_type: String::new(),
            read_only: Some(read_only),
            resources: Vec::new(),
            user_arn: None,
            session_credential_from_console: None,
            error_code: None,
            vpc_endpoint_id: None,
            event_time: 0,
            insight_type: None,
        };
        self.selects(&probe)
    }

    /// Whether any selector asks for data events.
    pub fn logs_data(&self) -> bool {
        match self {
            Selectors::Basic(selectors) => selectors.iter().any(|s| !s.data_resources.is_empty()),
            Selectors::Advanced(selectors) => selectors
                .iter()
                .any(|s| s.category().as_deref() == Some("Data")),
        }
    }
}

fn is_management(category: Category) -> bool {
    // Events reported through PutAuditEvents travel with management events.
    matches!(category, Category::Management | Category::Activity)
}

impl EventSelector {
    fn selects(&self, event: &RouteFields) -> bool {
        if !self.read_write_type.admits(event.read_only) {
            return false;
        }
        if is_management(event.category) {
            return self.include_management_events
                && !self
                    .exclude_management_event_sources
                    .contains(&event.event_source);
        }
        if event.category != Category::Data {
            return false;
        }
        self.data_resources.iter().any(|resource| {
            let kind = resource.kind.as_deref().unwrap_or_default();
            event.resources.iter().filter(|r| r.kind == kind).any(|r| {
                resource
                    .values
                    .iter()
                    .any(|v| data_value_matches(kind, v, &r.arn))
            })
        })
    }

    fn validate(&self) -> Result<usize, String> {
        if self.read_write_type == ReadWriteType::Invalid {
            return Err(
                "ReadWriteType is invalid: valid values are ReadOnly, WriteOnly and All.".into(),
            );
        }
        for source in &self.exclude_management_event_sources {
            if !EXCLUDABLE_SOURCES.contains(&source.as_str()) {
                return Err(format!(
                    "Value {source} for parameter ExcludeManagementEventSources is invalid. Valid values are {}.",
                    EXCLUDABLE_SOURCES.join(", ")
                ));
            }
        }
        let mut counted = 0;
        for resource in &self.data_resources {
            let kind = resource.kind.as_deref().unwrap_or_default();
            if !DATA_RESOURCE_TYPES.contains(&kind) {
                return Err(format!(
                    "Value {kind} for parameter DataResources.Type is invalid. Valid values are {}.",
                    DATA_RESOURCE_TYPES.join(", ")
                ));
            }
            for value in &resource.values {
                let service = kind.split("::").nth(1).unwrap_or_default().to_lowercase();
                let all = format!("arn:aws:{service}");
                if !value.starts_with(&all) {
                    return Err(format!(
                        "Value {value} for parameter DataResources.Values is invalid: it must be an ARN of type {kind}, or {all} for all resources."
                    ));
                }
                if !is_all_resources(kind, value) {
                    counted += 1;
                }
            }
        }
        Ok(counted)
    }
}

/// `arn:aws:s3` (or `arn:aws:s3:::`), `arn:aws:lambda`, `arn:aws:dynamodb`: every resource.
fn is_all_resources(kind: &str, value: &str) -> bool {
    match kind {
        "AWS::S3::Object" => value == "arn:aws:s3" || value == "arn:aws:s3:::",
        "AWS::Lambda::Function" => value == "arn:aws:lambda",
        "AWS::DynamoDB::Table" => value == "arn:aws:dynamodb",
        _ => false,
    }
}

fn data_value_matches(kind: &str, value: &str, arn: &str) -> bool {
    if is_all_resources(kind, value) {
        return true;
    }
    match kind {
        // S3 values are prefixes: a bucket (`arn:aws:s3:::b/`) or a key prefix in it.
        "AWS::S3::Object" => arn.starts_with(value),
        _ => arn == value,
    }
}

/// Fields a trail's advanced selectors may use, per event category.
const MANAGEMENT_FIELDS: [&str; 3] = ["eventCategory", "readOnly", "eventSource"];
const DATA_FIELDS: [&str; 10] = [
    "eventCategory",
    "resources.type",
    "resources.ARN",
    "eventName",
    "eventSource",
    "eventType",
    "readOnly",
    "sessionCredentialFromConsole",
    "userIdentity.arn",
    "errorCode",
];
const NETWORK_FIELDS: [&str; 6] = [
    "eventCategory",
    "eventSource",
    "eventName",
    "errorCode",
    "vpcEndpointId",
    "userIdentity.arn",
];
const EQUALS_ONLY: [&str; 3] = ["eventCategory", "readOnly", "resources.type"];

impl FieldSelector {
    fn operators(&self) -> [(&'static str, Option<&Vec<String>>); 6] {
        [
            ("Equals", self.equals.as_ref()),
            ("StartsWith", self.starts_with.as_ref()),
            ("EndsWith", self.ends_with.as_ref()),
            ("NotEquals", self.not_equals.as_ref()),
            ("NotStartsWith", self.not_starts_with.as_ref()),
            ("NotEndsWith", self.not_ends_with.as_ref()),
        ]
    }

    fn value_count(&self) -> usize {
        self.operators()
            .iter()
            .filter_map(|(_, v)| v.map(Vec::len))
            .sum()
    }

    /// Whether one value of the field satisfies this condition.
    fn admits(&self, value: &str) -> bool {
        let any = |list: Option<&Vec<String>>, test: &dyn Fn(&str) -> bool| {
            list.is_some_and(|l| l.iter().any(|v| test(v)))
        };
        let positive =
            self.equals.is_some() || self.starts_with.is_some() || self.ends_with.is_some();
        let included = !positive
            || any(self.equals.as_ref(), &|v| value == v)
            || any(self.starts_with.as_ref(), &|v| value.starts_with(v))
            || any(self.ends_with.as_ref(), &|v| value.ends_with(v));
        let excluded = any(self.not_equals.as_ref(), &|v| value == v)
            || any(self.not_starts_with.as_ref(), &|v| value.starts_with(v))
            || any(self.not_ends_with.as_ref(), &|v| value.ends_with(v));
        included && !excluded
    }

    /// Whether the event satisfies this condition. A field with several values (the
    /// resources) is satisfied by any one of them; a field the event lacks satisfies only
    /// purely negative conditions.
    /// `resource_type` is the selector's `resources.type`: `resources.ARN` looks only at
    /// resources of that type (an S3 object event also names its bucket).
    fn selects(&self, event: &RouteFields, resource_type: Option<&str>) -> bool {
        let values: Vec<&str> = match self.field.as_str() {
            "eventCategory" => vec![category_name(event.category)],
            "eventSource" => vec![event.event_source.as_str()],
            "eventName" => vec![event.event_name.as_str()],
            "eventType" => vec![event.event_type.as_str()],
            "readOnly" => match event.read_only {
                Some(true) => vec!["true"],
                Some(false) => vec!["false"],
                None => vec![],
            },
            "resources.type" => event.resources.iter().map(|r| r.kind.as_str()).collect(),
            "resources.ARN" => event
                .resources
                .iter()
                .filter(|r| resource_type.is_none_or(|t| r.kind == t))
                .map(|r| r.arn.as_str())
                .collect(),
            "userIdentity.arn" => event.user_arn.as_deref().into_iter().collect(),
            "sessionCredentialFromConsole" => event
                .session_credential_from_console
                .as_deref()
                .into_iter()
                .collect(),
            "errorCode" => event.error_code.as_deref().into_iter().collect(),
            "vpcEndpointId" => event.vpc_endpoint_id.as_deref().into_iter().collect(),
            _ => vec![],
        };
        if values.is_empty() {
            let positive =
                self.equals.is_some() || self.starts_with.is_some() || self.ends_with.is_some();
            return !positive;
        }
        values.into_iter().any(|v| self.admits(v))
    }
}

fn category_name(category: Category) -> &'static str {
    match category {
        Category::Management | Category::Activity => "Management",
        Category::Data => "Data",
        Category::Insight => "Insight",
        Category::NetworkActivity => "NetworkActivity",
        Category::Other => "",
    }
}

impl AdvancedEventSelector {
    /// The single `eventCategory` this selector's `Equals` names, if it names one.
    fn category(&self) -> Option<String> {
        let field = self
            .field_selectors
            .iter()
            .find(|f| f.field == "eventCategory")?;
        match field.equals.as_deref() {
            Some([one]) => Some(one.clone()),
            _ => None,
        }
    }

    fn selects(&self, event: &RouteFields) -> bool {
        let resource_type = self
            .field_selectors
            .iter()
            .find(|f| f.field == "resources.type")
            .and_then(|f| f.equals.as_ref()?.first())
            .map(String::as_str);
        self.field_selectors
            .iter()
            .all(|f| f.selects(event, resource_type))
    }

    fn validate(&self) -> Result<usize, String> {
        if self.name.as_ref().is_some_and(|n| n.len() > 1000) {
            return Err("Selector names are at most 1000 characters.".into());
        }
        if self.field_selectors.is_empty() {
            return Err("Each advanced event selector needs at least one field selector.".into());
        }
        let category = self.category().ok_or_else(|| {
            "Each advanced event selector must have a field selector for eventCategory with Equals set to one value: Management, Data or NetworkActivity.".to_owned()
        })?;
        let allowed: &[&str] = match category.as_str() {
            "Management" => &MANAGEMENT_FIELDS,
            "Data" => &DATA_FIELDS,
            "NetworkActivity" => &NETWORK_FIELDS,
            other => {
                return Err(format!(
                    "Invalid value {other} for eventCategory. Valid values for trails are Management, Data and NetworkActivity."
                ))
            }
        };
        let mut seen = std::collections::HashSet::new();
        let mut values = 0;
        for field in &self.field_selectors {
            if !allowed.contains(&field.field.as_str()) {
                return Err(format!(
                    "Field {} is not supported for {category} events on trails.",
                    field.field
                ));
            }
            if !seen.insert(field.field.as_str()) {
                return Err(format!(
                    "Field {} appears more than once in one advanced event selector.",
                    field.field
                ));
            }
            let used: Vec<(&str, &Vec<String>)> = field
                .operators()
                .into_iter()
                .filter_map(|(op, v)| v.map(|v| (op, v)))
                .collect();
            if used.is_empty() {
                return Err(format!("Field {} has no operator.", field.field));
            }
            for (op, list) in &used {
                if list.is_empty() || list.iter().any(|v| v.is_empty() || v.len() > 2048) {
                    return Err(format!(
                        "Operator {op} of field {} needs 1 or more values of 1 to 2048 characters.",
                        field.field
                    ));
                }
                if *op != "Equals" && EQUALS_ONLY.contains(&field.field.as_str()) {
                    return Err(format!(
                        "Field {} supports only the Equals operator.",
                        field.field
                    ));
                }
            }
            match field.field.as_str() {
                "readOnly" => {
                    let ok = field
                        .equals
                        .as_deref()
                        .is_some_and(|v| v.len() == 1 && (v[0] == "true" || v[0] == "false"));
                    if !ok {
                        return Err("readOnly accepts Equals with one value, true or false.".into());
                    }
                }
                "resources.type" if field.equals.as_ref().is_none_or(|v| v.len() != 1) => {
                    return Err(
                        "resources.type accepts Equals with exactly one resource type.".into(),
                    );
                }
                "eventSource" if category == "Management" => {
                    let ok = field.equals.is_none()
                        && field.starts_with.is_none()
                        && field.ends_with.is_none()
                        && field.not_starts_with.is_none()
                        && field.not_ends_with.is_none()
                        && field.not_equals.as_ref().is_some_and(|v| {
                            v.iter().all(|s| EXCLUDABLE_SOURCES.contains(&s.as_str()))
                        });
                    if !ok {
                        return Err(format!(
                            "For management events, eventSource accepts only NotEquals with {}.",
                            EXCLUDABLE_SOURCES.join(" or ")
                        ));
                    }
                }
                _ => {}
            }
            values += field.value_count();
        }
        if category == "Data" && !seen.contains("resources.type") {
            return Err("Data event selectors need a resources.type field selector.".into());
        }
        if category == "NetworkActivity" && !seen.contains("eventSource") {
            return Err(
                "Network activity event selectors need an eventSource field selector.".into(),
            );
        }
        Ok(values)
    }
}

impl Selectors {
    /// Checks selectors as PutEventSelectors does for a trail; the message is for
    /// `InvalidEventSelectorsException`.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Selectors::Basic(selectors) => {
                if selectors.is_empty() || selectors.len() > MAX_BASIC_SELECTORS {
                    return Err(format!(
                        "A trail has 1 to {MAX_BASIC_SELECTORS} event selectors; {} were given.",
                        selectors.len()
                    ));
                }
                let mut values = 0;
                for selector in selectors {
                    values += selector.validate()?;
                }
                if values > MAX_DATA_RESOURCE_VALUES {
                    return Err(format!(
                        "A trail has at most {MAX_DATA_RESOURCE_VALUES} data resource values in all its event selectors; {values} were given."
                    ));
                }
            }
            Selectors::Advanced(selectors) => {
                if selectors.is_empty() || selectors.len() > MAX_CONDITION_VALUES {
                    return Err(format!(
                        "A trail has 1 to {MAX_CONDITION_VALUES} advanced event selectors."
                    ));
                }
                let mut values = 0;
                for selector in selectors {
                    values += selector.validate()?;
                }
                if values > MAX_CONDITION_VALUES {
                    return Err(format!(
                        "A trail has at most {MAX_CONDITION_VALUES} conditions in all its advanced event selectors; {values} were given."
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Resource;

    fn event(category: Category, source: &str, read_only: Option<bool>) -> RouteFields {
        RouteFields {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            category,
            event_source: source.into(),
            event_name: "GetObject".into(),
            event_type: "AwsApiCall".into(),
            read_only,
            resources: Vec::new(),
            user_arn: None,
            session_credential_from_console: None,
            error_code: None,
            vpc_endpoint_id: None,
            event_time: 0,
            insight_type: None,
        }
    }

    fn s3_object(key: &str) -> RouteFields {
        let mut e = event(Category::Data, "s3.amazonaws.com", Some(true));
        e.resources = vec![
            Resource {
                kind: "AWS::S3::Object".into(),
                arn: format!("arn:aws:s3:::{key}"),
            },
            Resource {
                kind: "AWS::S3::Bucket".into(),
                arn: "arn:aws:s3:::bucket".into(),
            },
        ];
        e
    }

    fn basic(json: &str) -> Selectors {
        Selectors::Basic(serde_json::from_str(json).unwrap())
    }

    fn advanced(json: &str) -> Selectors {
        Selectors::Advanced(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn the_default_logs_every_management_event_and_no_data_event() {
        let s = Selectors::default();
        assert!(s.selects(&event(
            Category::Management,
            "ec2.amazonaws.com",
            Some(true)
        )));
        assert!(s.selects(&event(Category::Management, "ec2.amazonaws.com", None)));
        assert!(s.selects(&event(Category::Activity, "my.app", None)));
        assert!(!s.selects(&s3_object("bucket/key")));
        assert!(!s.selects(&event(Category::Insight, "ec2.amazonaws.com", None)));
    }

    #[test]
    fn read_write_type_and_excluded_sources_filter_management_events() {
        let s = basic(
            r#"[{"ReadWriteType":"WriteOnly","ExcludeManagementEventSources":["kms.amazonaws.com"]}]"#,
        );
        assert!(s.validate().is_ok());
        assert!(s.selects(&event(
            Category::Management,
            "ec2.amazonaws.com",
            Some(false)
        )));
        assert!(!s.selects(&event(
            Category::Management,
            "ec2.amazonaws.com",
            Some(true)
        )));
        assert!(!s.selects(&event(
            Category::Management,
            "kms.amazonaws.com",
            Some(false)
        )));
        assert!(s.logs_management(false) && !s.logs_management(true));
    }

    #[test]
    fn s3_values_are_prefixes_and_lambda_values_exact() {
        let s = basic(
            r#"[{"IncludeManagementEvents":false,"DataResources":[
                {"Type":"AWS::S3::Object","Values":["arn:aws:s3:::bucket/logs/"]},
                {"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-east-1:111122223333:function:f"]}]}]"#,
        );
        assert!(s.validate().is_ok());
        assert!(s.selects(&s3_object("bucket/logs/a")));
        assert!(!s.selects(&s3_object("bucket/other")));
        assert!(!s.selects(&event(Category::Management, "ec2.amazonaws.com", None)));
        let mut lambda = event(Category::Data, "lambda.amazonaws.com", Some(false));
        lambda.resources = vec![Resource {
            kind: "AWS::Lambda::Function".into(),
            arn: "arn:aws:lambda:us-east-1:111122223333:function:f".into(),
        }];
        assert!(s.selects(&lambda));
        lambda.resources[0].arn.push('2');
        assert!(!s.selects(&lambda));
        let all =
            basic(r#"[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]"#);
        assert!(all.selects(&s3_object("any/thing")));
        assert!(all.logs_data());
    }

    #[test]
    fn basic_limits_are_enforced() {
        assert!(basic(r#"[{"ReadWriteType":"read-only"}]"#)
            .validate()
            .is_err());
        assert!(basic("[]").validate().is_err());
        let six = format!("[{}]", ["{}"; 6].join(","));
        assert!(basic(&six).validate().is_err());
        let values: Vec<String> = (0..251)
            .map(|i| format!("\"arn:aws:s3:::b{i}/\""))
            .collect();
        let many = format!(
            r#"[{{"DataResources":[{{"Type":"AWS::S3::Object","Values":[{}]}}]}}]"#,
            values.join(",")
        );
        assert!(basic(&many).validate().unwrap_err().contains("250"));
        assert!(basic(
            r#"[{"DataResources":[{"Type":"AWS::SQS::Queue","Values":["arn:aws:sqs"]}]}]"#
        )
        .validate()
        .is_err());
        assert!(
            basic(r#"[{"ExcludeManagementEventSources":["ec2.amazonaws.com"]}]"#)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn advanced_conditions_combine_with_and_and_selectors_with_or() {
        let s = advanced(
            r#"[{"Name":"writes","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]},
                {"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},
                  {"Field":"resources.ARN","StartsWith":["arn:aws:s3:::bucket/logs/"]},{"Field":"eventName","NotEquals":["DeleteObject"]}]}]"#,
        );
        assert_eq!(s.validate(), Ok(()));
        assert!(s.selects(&event(
            Category::Management,
            "ec2.amazonaws.com",
            Some(false)
        )));
        assert!(!s.selects(&event(
            Category::Management,
            "ec2.amazonaws.com",
            Some(true)
        )));
        assert!(s.selects(&s3_object("bucket/logs/x")));
        assert!(!s.selects(&s3_object("bucket/else")));
        let mut delete = s3_object("bucket/logs/x");
        delete.event_name = "DeleteObject".into();
        assert!(!s.selects(&delete));
        assert!(s.logs_data());
    }

    #[test]
    fn advanced_validation_follows_the_trail_rules() {
        let bad = [
            r#"[{"FieldSelectors":[{"Field":"readOnly","Equals":["true"]}]}]"#,
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Insight"]}]}]"#,
            r#"[{"FieldSelectors":[{"Field":"eventCategory","StartsWith":["Man"]}]}]"#,
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]}]}]"#,
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventName","Equals":["X"]}]}]"#,
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","NotEquals":["ec2.amazonaws.com"]}]}]"#,
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["yes"]}]}]"#,
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"eventName"}]}]"#,
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"eventName","Equals":[]}]}]"#,
        ];
        for json in bad {
            assert!(advanced(json).validate().is_err(), "{json}");
        }
        let values: Vec<String> = (0..500).map(|i| format!("\"E{i}\"")).collect();
        let many = format!(
            r#"[{{"FieldSelectors":[{{"Field":"eventCategory","Equals":["Data"]}},{{"Field":"resources.type","Equals":["AWS::S3::Object"]}},{{"Field":"eventName","Equals":[{}]}}]}}]"#,
            values.join(",")
        );
        assert!(advanced(&many).validate().unwrap_err().contains("500"));
    }

    #[test]
    fn missing_fields_satisfy_only_negative_conditions() {
        let s = advanced(
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},
                {"Field":"userIdentity.arn","NotStartsWith":["arn:aws:iam::111122223333:role/"]}]}]"#,
        );
        assert!(s.selects(&s3_object("b/k")));
        let t = advanced(
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},
                {"Field":"userIdentity.arn","EndsWith":["/admin"]}]}]"#,
        );
        assert!(!t.selects(&s3_object("b/k")));
    }
}
