//! Metric filters as Prometheus metrics.
//!
//! Each log group's metric filters are compiled into one [`FilterSet`], so an event is
//! scanned once for all of them. A match adds the filter's metric value to a counter
//! labelled with the account, region, log group, namespace, metric name, unit (when set)
//! and the filter's dimensions; `/metrics` serves every counter in the OpenMetrics text
//! format. A CloudWatch metric is a sum per period; its Prometheus counterpart is the
//! running sum, from which `increase(…[5m])` gives the same figure.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use cairn_filter::{Field, Filter, FilterSet, Pattern, Scratch};
use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::Value;

use super::alarms::Alarms;
use super::GroupInfo;

/// A label value, escaped as the text format requires (the crate writes values as
/// given, and dimension values come from events).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct LabelText(pub String);

impl EncodeLabelValue for LabelText {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

pub type Labels = Vec<(String, LabelText)>;

/// At most this many dimension combinations per filter (AWS disables a filter at 1000
/// in an hour); further combinations are not counted.
const MAX_SERIES_PER_FILTER: usize = 1000;

/// Labels Cairn sets itself; a dimension of the same name is prefixed.
const RESERVED: [&str; 6] = [
    "account",
    "region",
    "log_group",
    "namespace",
    "metric_name",
    "unit",
];

/// A dimension name as a Prometheus label name.
pub fn label_name(dimension: &str) -> String {
    let mut name: String = dimension
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit())
        || name.starts_with("__")
        || RESERVED.contains(&name.as_str())
    {
        name.insert_str(0, "dimension_");
    }
    name
}

enum MetricValue {
    Number(f64),
    /// Index into the filter's fields.
    Field(usize),
}

/// One metric filter's transformation, ready to apply.
struct Rule {
    base: Labels,
    value: MetricValue,
    /// (label name, index into the filter's fields).
    dimensions: Vec<(String, usize)>,
    /// A filter with a default value (and so no dimensions) shows 0 before its first
    /// match, so that rate() and increase() see it from the start.
    zero_at_start: bool,
    series: Mutex<HashSet<Labels>>,
}

/// A group's filters, compiled; `source` is what they were compiled from.
struct Compiled {
    source: Value,
    /// The group's own labels, for its event count.
    group_labels: Labels,
    set: FilterSet,
    rules: Vec<Rule>,
}

pub struct Metrics {
    registry: Registry,
    values: Family<Labels, Counter<f64, AtomicU64>>,
    delivered: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    compiled: Mutex<HashMap<String, Arc<Compiled>>>,
    /// The alarms watching these metrics.
    pub alarms: Alarms,
}

impl Metrics {
    pub fn new(alarms: Alarms) -> Self {
        let mut registry = Registry::default();
        let values = Family::<Labels, Counter<f64, AtomicU64>>::default();
        let delivered = Family::<Labels, Counter>::default();
        let dropped = Family::<Labels, Counter>::default();
        registry.register(
            "cairn_log_metric",
            "Sum of the values metric filters emitted, by account, region, log group, namespace, metric name and dimensions",
            values.clone(),
        );
        registry.register(
            "cairn_log_events",
            "Events trails delivered to log groups",
            delivered.clone(),
        );
        registry.register(
            "cairn_log_events_dropped",
            "Events not sent to a trail's log group because they are larger than 256 KB",
            dropped.clone(),
        );
        Metrics {
            registry,
            values,
            delivered,
            dropped,
            compiled: Mutex::new(HashMap::new()),
            alarms,
        }
    }
}

fn text(s: &str) -> LabelText {
    LabelText(s.to_owned())
}

fn group_labels(group: &GroupInfo) -> Labels {
    vec![
        ("account".into(), text(&group.account)),
        ("region".into(), text(&group.region)),
        ("log_group".into(), text(&group.name)),
    ]
}

/// Compiles a group's stored metric filters. Stored filters were checked when they were
/// put, so one that no longer parses is skipped.
fn compile(group: &GroupInfo) -> Compiled {
    let mut filters = Vec::new();
    let mut rules = Vec::new();
    for stored in group.filters.as_array().into_iter().flatten() {
        let Some(pattern) = stored["filterPattern"]
            .as_str()
            .and_then(|p| Pattern::parse(p).ok())
        else {
            continue;
        };
        let t = &stored["metricTransformations"][0];
        let mut filter = Filter::new(pattern);
        let value_text = t["metricValue"].as_str().unwrap_or("1");
        let value = match Field::parse(value_text) {
            Ok(field) if value_text.starts_with('$') => {
                filter.fields.push(field);
                MetricValue::Field(filter.fields.len() - 1)
            }
            _ => MetricValue::Number(value_text.parse().unwrap_or(1.0)),
        };
        let mut dimensions = Vec::new();
        for (name, field) in t["dimensions"].as_object().into_iter().flatten() {
            if let Some(field) = field.as_str().and_then(|f| Field::parse(f).ok()) {
                filter.fields.push(field);
                dimensions.push((label_name(name), filter.fields.len() - 1));
            }
        }
        dimensions.sort();
        // Two dimensions may map to one label name ("a.b", "a_b"); a scrape with a label
        // twice in a series is refused whole, so later ones get a suffix.
        let mut taken: Vec<String> = RESERVED.iter().map(|r| r.to_string()).collect();
        for (name, _) in &mut dimensions {
            while taken.contains(name) {
                name.push('_');
            }
            taken.push(name.clone());
        }
        let mut base = group_labels(group);
        base.push((
            "namespace".into(),
            text(t["metricNamespace"].as_str().unwrap_or_default()),
        ));
        base.push((
            "metric_name".into(),
            text(t["metricName"].as_str().unwrap_or_default()),
        ));
        if let Some(unit) = t["unit"].as_str().filter(|u| *u != "None") {
            base.push(("unit".into(), text(unit)));
        }
        filters.push(filter);
        rules.push(Rule {
            base,
            value,
            zero_at_start: !t["defaultValue"].is_null() && dimensions.is_empty(),
            dimensions,
            series: Mutex::new(HashSet::new()),
        });
    }
    Compiled {
        source: group.filters.clone(),
        group_labels: group_labels(group),
        set: FilterSet::new(filters),
        rules,
    }
}

impl Metrics {
    /// The group's compiled filters, compiled again when they changed. A filter that is
    /// still there keeps its series; series of filters that were deleted are removed.
    fn compiled(&self, group: &GroupInfo) -> Arc<Compiled> {
        let mut cache = self.compiled.lock().expect("metrics lock");
        if let Some(compiled) = cache.get(&group.id).filter(|c| c.source == group.filters) {
            return compiled.clone();
        }
        let compiled = Arc::new(compile(group));
        for rule in compiled.rules.iter().filter(|r| r.zero_at_start) {
            drop(self.values.get_or_create(&rule.base));
            rule.series
                .lock()
                .expect("series lock")
                .insert(rule.base.clone());
        }
        if let Some(old) = cache.insert(group.id.clone(), compiled.clone()) {
            for rule in &compiled.rules {
                if let Some(same) = old.rules.iter().find(|r| r.base == rule.base) {
                    let carried = std::mem::take(&mut *same.series.lock().expect("series lock"));
                    rule.series.lock().expect("series lock").extend(carried);
                }
            }
            self.forget(&old, Some(&compiled));
        }
        compiled
    }

    /// Removes the series of `old`'s rules that `new` does not have (all of them, and the
    /// group's event count, when the group is gone).
    fn forget(&self, old: &Compiled, new: Option<&Compiled>) {
        if new.is_none() {
            self.delivered.remove(&old.group_labels);
        }
        for rule in &old.rules {
            let kept = new.is_some_and(|n| n.rules.iter().any(|r| r.base == rule.base));
            if !kept {
                for labels in rule.series.lock().expect("series lock").iter() {
                    self.values.remove(labels);
                }
            }
        }
    }

    /// Compiles the groups' filters (those that changed) and forgets deleted groups, so
    /// that `/metrics` shows every filter's series from the start.
    pub fn sync(&self, groups: &[GroupInfo]) {
        for group in groups {
            self.compiled(group);
        }
        let live: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        self.retain_groups(&live);
    }

    /// Drops what is kept for a deleted group.
    pub fn forget_group(&self, id: &str) {
        let old = self.compiled.lock().expect("metrics lock").remove(id);
        if let Some(old) = old {
            self.forget(&old, None);
        }
    }

    /// Drops what is kept for groups not in `live` (deleted log groups).
    pub fn retain_groups(&self, live: &[&str]) {
        let mut cache = self.compiled.lock().expect("metrics lock");
        let gone: Vec<String> = cache
            .keys()
            .filter(|id| !live.contains(&id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(old) = cache.remove(&id) {
                self.forget(&old, None);
            }
        }
    }

    /// Counts `messages`, delivered to `group`, into its metric filters' metrics.
    pub fn observe<'m>(&self, group: &GroupInfo, messages: impl ExactSizeIterator<Item = &'m str>) {
        let compiled = self.compiled(group);
        self.delivered
            .get_or_create(&compiled.group_labels)
            .inc_by(messages.len() as u64);
        if compiled.rules.is_empty() {
            return;
        }
        let set = &compiled.set;
        let mut scratch = Scratch::default();
        let now = crate::app::now();
        for message in messages {
            set.evaluate(message, &mut scratch);
            for (index, rule) in compiled.rules.iter().enumerate() {
                if set.is_match(&scratch, index) {
                    self.emit(set, index, rule, message, &mut scratch, now);
                }
            }
        }
    }

    /// Adds one matching event's value to its series. An event whose value is not a
    /// number, or that lacks a dimension, adds nothing (as on CloudWatch); nor does a
    /// negative value, which a counter cannot take.
    fn emit(
        &self,
        set: &FilterSet,
        index: usize,
        rule: &Rule,
        message: &str,
        scratch: &mut Scratch,
        now: i64,
    ) {
        let value = match rule.value {
            MetricValue::Number(v) => v,
            MetricValue::Field(field) => {
                let Some(v) = set
                    .field(index, field, message, scratch)
                    .and_then(|t| std::str::from_utf8(&t).ok()?.trim().parse::<f64>().ok())
                else {
                    return;
                };
                v
            }
        };
        if !(value.is_finite() && value >= 0.0) {
            return;
        }
        let mut labels = rule.base.clone();
        for (name, field) in &rule.dimensions {
            let Some(v) = set.field(index, *field, message, scratch) else {
                return;
            };
            labels.push((
                name.clone(),
                LabelText(String::from_utf8_lossy(&v).into_owned()),
            ));
        }
        {
            let mut series = rule.series.lock().expect("series lock");
            if !series.contains(&labels) {
                if series.len() >= MAX_SERIES_PER_FILTER {
                    return;
                }
                series.insert(labels.clone());
            }
        }
        self.values.get_or_create(&labels).inc_by(value);
        self.alarms.observe(&labels, value, now);
    }

    /// Counts an event too large for a trail's log group.
    pub fn dropped(&self, trail_arn: &str) {
        self.dropped
            .get_or_create(&vec![("trail".into(), text(trail_arn))])
            .inc();
    }

    /// Every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        self.encode_families(&mut out);
        prometheus_client::encoding::text::encode_eof(&mut out).expect("writing to a string");
        out
    }

    /// Writes the metrics in the OpenMetrics text format, without the closing `# EOF`.
    pub fn encode_families(&self, out: &mut String) {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
            .expect("writing to a string");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(filters: Value) -> GroupInfo {
        GroupInfo {
            id: "g1".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            name: "trail/logs".into(),
            retention_days: None,
            filters,
        }
    }

    fn filter(pattern: &str, transformation: Value) -> Value {
        json!({"filterName": "f", "filterPattern": pattern, "metricTransformations": [transformation]})
    }

    #[test]
    fn matches_add_values_under_their_labels() {
        let metrics = Metrics::new(Alarms::new(Vec::new(), String::new()));
        let g = group(json!([
            filter(
                r#"{ $.errorCode = "AccessDenied" }"#,
                json!({"metricName": "Denied", "metricNamespace": "CIS", "metricValue": "1", "defaultValue": 0})
            ),
            filter(
                r#"{ $.bytes > 0 }"#,
                json!({"metricName": "Bytes", "metricNamespace": "App", "metricValue": "$.bytes",
                       "unit": "Bytes", "dimensions": {"Event Name": "$.eventName"}})
            ),
        ]));
        let events = [
            r#"{"errorCode":"AccessDenied","eventName":"GetObject","bytes":10}"#,
            r#"{"eventName":"PutObject","bytes":5.5}"#,
            r#"{"eventName":"Put\"Object","bytes":1}"#,
            r#"{"eventName":"GetObject","bytes":"n/a"}"#,
        ];
        metrics.observe(&g, events.iter().copied());
        let text = metrics.encode();
        let denied = r#"cairn_log_metric_total{account="111122223333",region="us-east-1",log_group="trail/logs",namespace="CIS",metric_name="Denied"} 1.0"#;
        assert!(text.contains(denied), "{text}");
        let bytes = |name: &str, v: &str| {
            format!(
                r#"cairn_log_metric_total{{account="111122223333",region="us-east-1",log_group="trail/logs",namespace="App",metric_name="Bytes",unit="Bytes",Event_Name="{name}"}} {v}"#
            )
        };
        assert!(text.contains(&bytes("GetObject", "10.0")), "{text}");
        assert!(text.contains(&bytes("PutObject", "5.5")), "{text}");
        assert!(
            text.contains(&bytes("Put\\\"Object", "1.0")),
            "escaped: {text}"
        );
        assert!(text.contains(r#"cairn_log_events_total{account="111122223333",region="us-east-1",log_group="trail/logs"} 4"#), "{text}");
    }

    #[test]
    fn default_values_show_zero_and_deleted_filters_disappear() {
        let metrics = Metrics::new(Alarms::new(Vec::new(), String::new()));
        let with_default = json!([filter(
            "ERROR",
            json!({"metricName": "Errors", "metricNamespace": "App", "metricValue": "1", "defaultValue": 0})
        )]);
        metrics.observe(&group(with_default), ["all good"].into_iter());
        assert!(
            metrics.encode().contains(r#"metric_name="Errors"} 0.0"#),
            "{}",
            metrics.encode()
        );
        metrics.observe(&group(json!([])), ["ERROR"].into_iter());
        assert!(!metrics.encode().contains("Errors"));
        metrics.retain_groups(&[]);
        assert!(metrics.compiled.lock().unwrap().is_empty());
    }

    #[test]
    fn dimension_names_become_valid_distinct_labels() {
        assert_eq!(label_name("EventName"), "EventName");
        assert_eq!(label_name("event.name"), "event_name");
        assert_eq!(label_name("region"), "dimension_region");
        assert_eq!(label_name("1st"), "dimension_1st");
        let metrics = Metrics::new(Alarms::new(Vec::new(), String::new()));
        let g = group(json!([filter(
            "{ $.a = * }",
            json!({"metricName": "M", "metricNamespace": "N", "metricValue": "1",
                   "dimensions": {"a.b": "$.a", "a_b": "$.a", "region": "$.a", "dimension_region": "$.a"}})
        )]));
        metrics.observe(&g, [r#"{"a":"x"}"#].into_iter());
        let text = metrics.encode();
        let line = text
            .lines()
            .find(|l| l.contains("metric_name=\"M\""))
            .unwrap();
        for label in ["a_b=", "a_b_=", "dimension_region=", "dimension_region_="] {
            assert_eq!(
                line.matches(&format!(",{label}")).count(),
                1,
                "{label} in {line}"
            );
        }
    }
}
