//! Alarms: threshold rules over metric filters' metrics, set in the configuration, that
//! POST firing and resolved notifications to a webhook in Alertmanager's webhook shape
//! (version 4), so Alertmanager receivers, and anything that reads them, take them as is.
//!
//! As a CloudWatch alarm with the Sum statistic: every evaluation sums the metric over each
//! of the last `evaluation_periods` periods (ending now); the alarm fires when every one
//! of them breaches the threshold and resolves when one does not. A metric with dimensions
//! has one alarm instance per combination of dimension values, as Prometheus alerts have
//! one per label set, from the series' first value on; after that, a period without data
//! sums to 0. Every change of state is owed to the webhook, in order, until it takes it.
//!
//! Each instance's state, its recent values and what it owes are saved (`logs/alarms.json`):
//! after any second that changed a state or what is owed, at most every ten seconds when
//! only values came, and at shutdown. So a restart neither fires an alarm again nor forgets
//! to resolve one; values counted in the seconds before a crash may be lost.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_core::timefmt::format_event_time;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::metrics::{label_name, LabelText, Labels};
use crate::app::App;
use crate::config::{check_http_url, invalid, ConfigError};

/// `[alerting]`: where alarms send their notifications unless an alarm says otherwise.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// A URL taking Alertmanager's webhook JSON (an Alertmanager-compatible receiver).
    pub webhook: Option<String>,
}

/// `[[alarms]]`: one threshold rule.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmConfig {
    /// The alert's name (`alertname`).
    pub name: String,
    pub namespace: String,
    pub metric_name: String,
    /// Dimension values the metric must have (all of them); others may differ.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Only this account's metric (default: every account's, each alarmed on its own).
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// Seconds per period, 1 to 86400. Default 300.
    #[serde(default = "default_period")]
    pub period_secs: i64,
    /// Consecutive breaching periods that fire the alarm, 1 to 100. Default 1.
    #[serde(default = "default_evaluation_periods")]
    pub evaluation_periods: i64,
    pub threshold: f64,
    /// One of CloudWatch's: GreaterThanOrEqualToThreshold (default), GreaterThanThreshold,
    /// LessThanThreshold, LessThanOrEqualToThreshold.
    #[serde(default = "default_comparison")]
    pub comparison: String,
    /// Overrides `alerting.webhook`.
    #[serde(default)]
    pub webhook: Option<String>,
}

fn default_period() -> i64 {
    300
}
fn default_evaluation_periods() -> i64 {
    1
}
fn default_comparison() -> String {
    "GreaterThanOrEqualToThreshold".into()
}

/// `[cis]`: the CIS AWS Foundations monitoring pack.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CisConfig {
    /// Turns the pack on: a log group named `log_group` gets the 15 CIS metric filters,
    /// and each has an alarm (Sum ≥ 1 over `period_secs`) notifying `alerting.webhook`.
    pub enabled: bool,
    /// Default `CloudTrail/CISMonitoring`.
    pub log_group: String,
    /// Default 300, as the benchmark's alarms.
    pub period_secs: i64,
}

impl Default for CisConfig {
    fn default() -> Self {
        CisConfig {
            enabled: false,
            log_group: "CloudTrail/CISMonitoring".into(),
            period_secs: 300,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Comparison {
    GreaterOrEqual,
    Greater,
    Less,
    LessOrEqual,
}

impl Comparison {
    fn parse(text: &str) -> Option<Comparison> {
        Some(match text {
            "GreaterThanOrEqualToThreshold" => Comparison::GreaterOrEqual,
            "GreaterThanThreshold" => Comparison::Greater,
            "LessThanThreshold" => Comparison::Less,
            "LessThanOrEqualToThreshold" => Comparison::LessOrEqual,
            _ => return None,
        })
    }

    fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterOrEqual => value >= threshold,
            Comparison::Greater => value > threshold,
            Comparison::Less => value < threshold,
            Comparison::LessOrEqual => value <= threshold,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Comparison::GreaterOrEqual => ">=",
            Comparison::Greater => ">",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
        }
    }
}

/// An alarm, checked and ready to evaluate.
#[derive(Clone, Debug)]
pub struct AlarmRule {
    pub name: String,
    pub namespace: String,
    pub metric_name: String,
    /// (label name, value) pairs the series must carry.
    pub dimensions: Vec<(String, String)>,
    pub account: Option<String>,
    pub region: Option<String>,
    /// Only this log group's metric (the CIS pack's alarms watch the pack's group).
    pub log_group: Option<String>,
    pub period: i64,
    pub evaluation_periods: i64,
    pub threshold: f64,
    pub comparison: Comparison,
    pub webhook: String,
}

/// Checks the configured alarms (and the CIS pack's, when enabled).
pub fn resolve(
    alerting: &AlertingConfig,
    alarms: &[AlarmConfig],
    cis: &CisConfig,
) -> Result<Vec<AlarmRule>, ConfigError> {
    if let Some(url) = &alerting.webhook {
        check_http_url("alerting.webhook", url)?;
    }
    let mut all: Vec<(String, AlarmConfig, Option<String>)> = alarms
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("alarms[{i}]"), a.clone(), None))
        .collect();
    if cis.enabled {
        // Their period is checked with every alarm's, as `cis.period_secs`.
        for control in cairn_filter::cis::CONTROLS {
            let alarm = AlarmConfig {
                name: control.metric.into(),
                namespace: cairn_filter::cis::NAMESPACE.into(),
                metric_name: control.metric.into(),
                dimensions: BTreeMap::new(),
                account: None,
                region: None,
                period_secs: cis.period_secs,
                evaluation_periods: 1,
                threshold: 1.0,
                comparison: default_comparison(),
                webhook: None,
            };
            all.push(("cis".into(), alarm, Some(cis.log_group.clone())));
        }
    }
    let mut names = std::collections::HashSet::new();
    let mut rules = Vec::new();
    for (setting, a, log_group) in all {
        if a.name.is_empty() || !names.insert(a.name.clone()) {
            return Err(invalid(
                format!("{setting}.name"),
                format!("{:?} is empty or used twice", a.name),
            ));
        }
        let comparison = Comparison::parse(&a.comparison).ok_or_else(|| {
            invalid(
                format!("{setting}.comparison"),
                "must be GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold or LessThanOrEqualToThreshold",
            )
        })?;
        if !(1..=86_400).contains(&a.period_secs) {
            return Err(invalid(
                format!("{setting}.period_secs"),
                "must be between 1 and 86400",
            ));
        }
        if !(1..=100).contains(&a.evaluation_periods) {
            return Err(invalid(
                format!("{setting}.evaluation_periods"),
                "must be between 1 and 100",
            ));
        }
        if !a.threshold.is_finite() {
            return Err(invalid(format!("{setting}.threshold"), "must be a number"));
        }
        let webhook = a
            .webhook
            .clone()
            .or_else(|| alerting.webhook.clone())
            .ok_or_else(|| {
                invalid(
                    format!("{setting}.webhook"),
                    "no webhook: set it here or in [alerting] webhook",
                )
            })?;
        check_http_url(format!("{setting}.webhook"), &webhook)?;
        rules.push(AlarmRule {
            name: a.name,
            namespace: a.namespace,
            metric_name: a.metric_name,
            dimensions: a
                .dimensions
                .iter()
                .map(|(k, v)| (label_name(k), v.clone()))
                .collect(),
            account: a.account,
            region: a.region,
            log_group,
            period: a.period_secs,
            evaluation_periods: a.evaluation_periods,
            threshold: a.threshold,
            comparison,
            webhook,
        });
    }
    Ok(rules)
}

fn label<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.0.as_str())
}

impl AlarmRule {
    fn watches(&self, labels: &Labels) -> bool {
        label(labels, "namespace") == Some(&self.namespace)
            && label(labels, "metric_name") == Some(&self.metric_name)
            && self
                .account
                .as_deref()
                .is_none_or(|a| label(labels, "account") == Some(a))
            && self
                .region
                .as_deref()
                .is_none_or(|r| label(labels, "region") == Some(r))
            && self
                .log_group
                .as_deref()
                .is_none_or(|g| label(labels, "log_group") == Some(g))
            && self
                .dimensions
                .iter()
                .all(|(n, v)| label(labels, n) == Some(v))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ok,
    Alarm,
}

/// One alarm on one series.
struct Instance {
    /// (second, sum of the values in it), oldest first.
    points: VecDeque<(i64, f64)>,
    state: State,
    /// Notifications of state changes the webhook has not taken yet, oldest first.
    owed: VecDeque<(State, Value)>,
    /// When the alarm last fired.
    fired_at: i64,
    resolved_at: i64,
    /// The latest period's sum when the state last changed.
    value: f64,
}

/// A notification to send.
pub struct Notification {
    pub webhook: String,
    pub body: Value,
    key: (usize, Labels),
    state: State,
}

pub struct Alarms {
    rules: Vec<AlarmRule>,
    instances: Mutex<HashMap<(usize, Labels), Instance>>,
    external_url: String,
    /// Where the instances are saved, if anywhere.
    state_file: Option<PathBuf>,
    /// Whether a state or what is owed changed since the instances were saved.
    changed: AtomicBool,
    /// Whether values came or went since the instances were saved.
    valued: AtomicBool,
    saved_at: Mutex<std::time::Instant>,
}

/// How often the instances are saved while only their values change.
const SAVE_VALUES_EVERY: Duration = Duration::from_secs(10);

/// An instance as saved: by its rule's name (rules are numbered by the configuration,
/// which may change between runs) and its labels.
#[derive(Serialize, Deserialize)]
struct SavedInstance {
    rule: String,
    labels: Vec<(String, String)>,
    firing: bool,
    points: Vec<(i64, f64)>,
    /// (firing, body) of each notification owed.
    owed: Vec<(bool, Value)>,
    fired_at: i64,
    resolved_at: i64,
    value: f64,
}

impl Alarms {
    pub fn new(rules: Vec<AlarmRule>, external_url: String) -> Alarms {
        Alarms {
            rules,
            instances: Mutex::new(HashMap::new()),
            external_url,
            state_file: None,
            changed: AtomicBool::new(false),
            valued: AtomicBool::new(false),
            saved_at: Mutex::new(std::time::Instant::now()),
        }
    }

    /// These alarms, saved in `path` and restored from it: instances of rules that are no
    /// longer configured, or no longer watch their labels, are dropped. A file that cannot
    /// be read back is left for a fresh start, and the log says so.
    pub fn with_state(mut self, path: PathBuf) -> Alarms {
        let saved: Vec<SavedInstance> = match crate::tasks::read_state(&path) {
            Ok(saved) => saved.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%error, "alarms start afresh: their saved state cannot be read");
                Vec::new()
            }
        };
        let instances = self.instances.get_mut().expect("alarms lock");
        for saved in saved {
            let Some(index) = self.rules.iter().position(|r| r.name == saved.rule) else {
                continue;
            };
            let labels: Labels = saved
                .labels
                .into_iter()
                .map(|(name, value)| (name, LabelText(value)))
                .collect();
            if !self.rules[index].watches(&labels) {
                continue;
            }
            let state = |firing: bool| if firing { State::Alarm } else { State::Ok };
            let instance = Instance {
                points: saved.points.into(),
                state: state(saved.firing),
                owed: saved
                    .owed
                    .into_iter()
                    .map(|(f, body)| (state(f), body))
                    .collect(),
                fired_at: saved.fired_at,
                resolved_at: saved.resolved_at,
                value: saved.value,
            };
            instances.insert((index, labels), instance);
        }
        self.state_file = Some(path);
        self
    }

    /// Saves the instances when a state or what is owed changed, or when values did and
    /// a while has passed (or `now`).
    pub fn save(&self, now: bool) -> std::io::Result<()> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let mut saved_at = self.saved_at.lock().expect("alarms save lock");
        let values_due = now || saved_at.elapsed() >= SAVE_VALUES_EVERY;
        let valued = values_due && self.valued.swap(false, Ordering::AcqRel);
        if !self.changed.swap(false, Ordering::AcqRel) && !valued {
            return Ok(());
        }
        *saved_at = std::time::Instant::now();
        let saved: Vec<SavedInstance> = {
            let instances = self.instances.lock().expect("alarms lock");
            instances
                .iter()
                .map(|((index, labels), instance)| SavedInstance {
                    rule: self.rules[*index].name.clone(),
                    labels: labels
                        .iter()
                        .map(|(n, v)| (n.clone(), v.0.clone()))
                        .collect(),
                    firing: instance.state == State::Alarm,
                    points: instance.points.iter().copied().collect(),
                    owed: instance
                        .owed
                        .iter()
                        .map(|(s, body)| (*s == State::Alarm, body.clone()))
                        .collect(),
                    fired_at: instance.fired_at,
                    resolved_at: instance.resolved_at,
                    value: instance.value,
                })
                .collect()
        };
        crate::tasks::write_state(path, &saved).map_err(|error| {
            // Saved again next time.
            self.changed.store(true, Ordering::Release);
            std::io::Error::other(error)
        })
    }

    /// Notes a value added to the series `labels` at `now` (epoch seconds).
    pub fn observe(&self, labels: &Labels, value: f64, now: i64) {
        if self.rules.is_empty() {
            return;
        }
        let mut instances = self.instances.lock().expect("alarms lock");
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.watches(labels) {
                continue;
            }
            let instance = instances
                .entry((index, labels.clone()))
                .or_insert_with(|| Instance {
                    points: VecDeque::new(),
                    state: State::Ok,
                    owed: VecDeque::new(),
                    fired_at: 0,
                    resolved_at: 0,
                    value: 0.0,
                });
            match instance.points.back_mut() {
                Some((second, sum)) if *second == now => *sum += value,
                _ => instance.points.push_back((now, value)),
            }
            self.valued.store(true, Ordering::Release);
        }
    }

    /// Evaluates every alarm at `now`; returns the notifications the webhooks are owed.
    pub fn evaluate(&self, now: i64) -> Vec<Notification> {
        let mut instances = self.instances.lock().expect("alarms lock");
        let mut out = Vec::new();
        for ((index, labels), instance) in instances.iter_mut() {
            let rule = &self.rules[*index];
            let oldest = now - rule.period * rule.evaluation_periods;
            while instance.points.front().is_some_and(|(t, _)| *t <= oldest) {
                instance.points.pop_front();
                self.valued.store(true, Ordering::Release);
            }
            // Period k covers (now - (k+1)·period, now - k·period].
            let sums: Vec<f64> = (0..rule.evaluation_periods)
                .map(|k| {
                    let (from, to) = (now - (k + 1) * rule.period, now - k * rule.period);
                    instance
                        .points
                        .iter()
                        .filter(|(t, _)| *t > from && *t <= to)
                        .map(|(_, v)| v)
                        .sum()
                })
                .collect();
            let breaching = sums
                .iter()
                .all(|s| rule.comparison.breaches(*s, rule.threshold));
            let state = if breaching { State::Alarm } else { State::Ok };
            if state != instance.state {
                instance.state = state;
                instance.value = sums[0];
                match state {
                    State::Alarm => instance.fired_at = now,
                    State::Ok => instance.resolved_at = now,
                }
                let body = self.payload(rule, labels, instance);
                instance.owed.push_back((state, body));
                self.changed.store(true, Ordering::Release);
            }
            if let Some((state, body)) = instance.owed.front() {
                out.push(Notification {
                    webhook: rule.webhook.clone(),
                    body: body.clone(),
                    key: (*index, labels.clone()),
                    state: *state,
                });
            }
        }
        out
    }

    /// Records that a webhook took a notification: the next one owed goes next.
    pub fn sent(&self, notification: &Notification) {
        let mut instances = self.instances.lock().expect("alarms lock");
        if let Some(instance) = instances.get_mut(&notification.key) {
            if instance
                .owed
                .front()
                .is_some_and(|(s, _)| *s == notification.state)
            {
                instance.owed.pop_front();
                self.changed.store(true, Ordering::Release);
            }
        }
    }

    /// Alertmanager's webhook body (version 4) for one alert.
    fn payload(&self, rule: &AlarmRule, labels: &Labels, instance: &Instance) -> Value {
        let firing = instance.state == State::Alarm;
        let status = if firing { "firing" } else { "resolved" };
        let mut alert_labels = Map::new();
        alert_labels.insert("alertname".into(), json!(rule.name));
        for (name, LabelText(value)) in labels {
            alert_labels.insert(name.clone(), json!(value));
        }
        let summary = format!(
            "{} {}: Sum {} {} {} over {} s{}",
            rule.namespace,
            rule.metric_name,
            instance.value,
            rule.comparison.symbol(),
            rule.threshold,
            rule.period,
            if rule.evaluation_periods > 1 {
                format!(" for {} periods", rule.evaluation_periods)
            } else {
                String::new()
            }
        );
        let annotations = json!({ "summary": summary });
        let fingerprint = {
            use sha2::{Digest, Sha256};
            let text = serde_json::to_string(&alert_labels).expect("labels serialize");
            hex::encode(&Sha256::digest(text)[..8])
        };
        let alert = json!({
            "status": status,
            "labels": alert_labels,
            "annotations": annotations,
            "startsAt": format_event_time(instance.fired_at),
            "endsAt": if firing { "0001-01-01T00:00:00Z".to_owned() } else { format_event_time(instance.resolved_at) },
            "generatorURL": format!("{}/metrics", self.external_url),
            "fingerprint": fingerprint,
        });
        json!({
            "version": "4",
            "groupKey": format!("{{}}:{{alertname={:?}}}", rule.name),
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "cairn",
            "groupLabels": { "alertname": rule.name },
            "commonLabels": alert["labels"],
            "commonAnnotations": annotations,
            "externalURL": self.external_url,
            "alerts": [alert],
        })
    }

    /// Evaluates every second and posts what is owed until `stop` fires; a webhook that
    /// fails is tried again at the next evaluation.
    pub async fn run(app: Arc<App>, stop: tokio::sync::watch::Receiver<bool>) {
        if app.log_groups.metrics.alarms.rules.is_empty() {
            return;
        }
        let period = Duration::from_secs(1);
        crate::tasks::every(period, stop, crate::tasks::AtStop::Quit, || notify(&app)).await;
    }
}

/// Evaluates the rules and POSTs each notification due; one not taken is sent again at
/// the next evaluation. Then saves what changed.
async fn notify(app: &App) {
    let alarms = &app.log_groups.metrics.alarms;
    for notification in alarms.evaluate(crate::app::now()) {
        let sent = app
            .post_json(&notification.webhook, notification.body.to_string())
            .await;
        match sent {
            Ok(_) => alarms.sent(&notification),
            Err(error) => {
                tracing::warn!(%error, webhook = %notification.webhook, "alarm notification not delivered; will retry")
            }
        }
    }
    if let Err(error) = alarms.save(false) {
        tracing::error!(%error, "saving the alarms' state failed; will retry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(period: i64, evaluation_periods: i64, comparison: Comparison) -> AlarmRule {
        AlarmRule {
            name: "RootUse".into(),
            namespace: "CIS".into(),
            metric_name: "Root".into(),
            dimensions: vec![],
            account: Some("111122223333".into()),
            region: None,
            log_group: None,
            period,
            evaluation_periods,
            threshold: 1.0,
            comparison,
            webhook: "http://127.0.0.1:1/hook".into(),
        }
    }

    fn labels(account: &str) -> Labels {
        ["account", "region", "log_group", "namespace", "metric_name"]
            .iter()
            .zip([account, "us-east-1", "g", "CIS", "Root"])
            .map(|(n, v)| (n.to_string(), LabelText(v.to_owned())))
            .collect()
    }

    #[test]
    fn fires_once_then_resolves_when_the_period_passes() {
        let alarms = Alarms::new(
            vec![rule(60, 1, Comparison::GreaterOrEqual)],
            "http://x".into(),
        );
        alarms.observe(&labels("111122223333"), 1.0, 1000);
        alarms.observe(&labels("444455556666"), 5.0, 1000); // another account: not watched
        let fired = alarms.evaluate(1001);
        assert_eq!(fired.len(), 1);
        let body = &fired[0].body;
        assert_eq!(body["status"], "firing");
        assert_eq!(body["version"], "4");
        assert_eq!(body["alerts"][0]["labels"]["alertname"], "RootUse");
        assert_eq!(body["alerts"][0]["labels"]["account"], "111122223333");
        assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        // Owed until a webhook takes it, then quiet while the state holds.
        assert_eq!(alarms.evaluate(1002).len(), 1);
        alarms.sent(&fired[0]);
        assert!(alarms.evaluate(1030).is_empty());
        let resolved = alarms.evaluate(1060);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].body["status"], "resolved");
        assert_eq!(
            resolved[0].body["alerts"][0]["startsAt"],
            format_event_time(1001)
        );
        assert_eq!(
            resolved[0].body["alerts"][0]["endsAt"],
            format_event_time(1060)
        );
    }

    #[test]
    fn a_change_the_webhook_missed_is_still_sent_in_order() {
        let alarms = Alarms::new(
            vec![rule(10, 1, Comparison::GreaterOrEqual)],
            "http://x".into(),
        );
        alarms.observe(&labels("111122223333"), 1.0, 1000);
        assert_eq!(alarms.evaluate(1001)[0].body["status"], "firing");
        // The webhook is down while the alarm fires and resolves.
        let owed = alarms.evaluate(1020);
        assert_eq!(owed[0].body["status"], "firing");
        alarms.sent(&owed[0]);
        let next = alarms.evaluate(1021);
        assert_eq!(next[0].body["status"], "resolved");
        alarms.sent(&next[0]);
        assert!(alarms.evaluate(1022).is_empty());
    }

    #[test]
    fn a_restart_remembers_a_firing_alarm_and_what_it_owes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alarms.json");
        let rules = || vec![rule(60, 1, Comparison::GreaterOrEqual)];
        let alarms = Alarms::new(rules(), "http://x".into()).with_state(path.clone());
        alarms.observe(&labels("111122223333"), 1.0, 1000);
        let fired = alarms.evaluate(1001);
        alarms.sent(&fired[0]);
        alarms.save(true).unwrap();
        // After a restart, still firing (not fired again), and resolved when the period
        // passes.
        let restarted = Alarms::new(rules(), "http://x".into()).with_state(path.clone());
        assert!(restarted.evaluate(1030).is_empty(), "not fired twice");
        let resolved = restarted.evaluate(1061);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].body["status"], "resolved");
        assert_eq!(
            resolved[0].body["alerts"][0]["startsAt"],
            format_event_time(1001)
        );
        // Not taken before the next restart: still owed after it.
        restarted.save(true).unwrap();
        let again = Alarms::new(rules(), "http://x".into()).with_state(path.clone());
        assert_eq!(again.evaluate(1062)[0].body["status"], "resolved");
        // A rule no longer configured leaves nothing behind.
        let renamed = AlarmRule {
            name: "Other".into(),
            ..rule(60, 1, Comparison::GreaterOrEqual)
        };
        let other = Alarms::new(vec![renamed], "http://x".into()).with_state(path);
        assert!(other.evaluate(1063).is_empty());
    }

    #[test]
    fn every_evaluation_period_must_breach() {
        let alarms = Alarms::new(
            vec![rule(10, 2, Comparison::GreaterOrEqual)],
            "http://x".into(),
        );
        let l = labels("111122223333");
        alarms.observe(&l, 1.0, 1005);
        assert!(
            alarms.evaluate(1010).is_empty(),
            "one period breached, the one before did not"
        );
        alarms.observe(&l, 1.0, 1015);
        assert_eq!(alarms.evaluate(1020)[0].body["status"], "firing");
    }

    #[test]
    fn configuration_is_checked_and_cis_adds_fifteen_alarms() {
        let alerting = AlertingConfig {
            webhook: Some("http://127.0.0.1:9093/hook".into()),
        };
        let cis = CisConfig {
            enabled: true,
            ..CisConfig::default()
        };
        let rules = resolve(&alerting, &[], &cis).unwrap();
        assert_eq!(rules.len(), 15);
        assert!(rules
            .iter()
            .all(|r| r.namespace == "CISBenchmark" && r.period == 300 && r.threshold == 1.0));
        let bad = AlarmConfig {
            name: "x".into(),
            namespace: "n".into(),
            metric_name: "m".into(),
            dimensions: BTreeMap::new(),
            account: None,
            region: None,
            period_secs: 60,
            evaluation_periods: 1,
            threshold: 1.0,
            comparison: "Bigger".into(),
            webhook: None,
        };
        let error =
            resolve(&alerting, std::slice::from_ref(&bad), &CisConfig::default()).unwrap_err();
        assert!(
            error.to_string().contains("alarms[0].comparison"),
            "{error}"
        );
        let no_hook = resolve(
            &AlertingConfig::default(),
            &[AlarmConfig {
                comparison: default_comparison(),
                ..bad
            }],
            &CisConfig::default(),
        );
        assert!(no_hook.unwrap_err().to_string().contains("webhook"));
    }
}
