//! Insights events to a webhook, as EventBridge delivers them: each event in EventBridge's
//! envelope with detail-type `AWS Insight via CloudTrail`, so rules and receivers written
//! for EventBridge take them as they are.
//!
//! Only the Insights Cairn decides go to the webhook, not Insights records that producers
//! send or that are imported: the Insights consumer queues each event it stored (see
//! [`Webhook::enqueue`]) before it saves the detector state that decided it, so a crash
//! in between decides it again and queues it again. The queue is kept in a file and POSTed
//! in order, each event until the webhook takes it (any 2xx), so delivery is at least once
//! and the envelope's `id` (derived from the event) lets a receiver drop a repeat. A
//! webhook that is down holds only the queue, never the journal.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::app::App;
use crate::tasks::{self, AtStop};

const POLL: Duration = Duration::from_secs(1);
/// The queue, rewritten whenever it changes.
const QUEUE_FILE: &str = "webhook-queue.json";
/// Where earlier versions kept a journal cursor of their own; no longer read.
const OLD_CURSOR_FILE: &str = "webhook.json";
/// Events queued beyond this are dropped, oldest first, and logged: a webhook down for
/// long must not fill the disk. Insights are rare; this is weeks of them.
const MAX_QUEUED: usize = 10_000;
const DETAIL_TYPE: &str = "AWS Insight via CloudTrail";

pub struct Webhook {
    url: String,
    dir: PathBuf,
    /// Envelopes not yet taken by the webhook, oldest first, as in the queue file.
    queue: Mutex<VecDeque<String>>,
}

impl Webhook {
    /// Opens the queue in `<data_dir>/insights` when a webhook is configured. Without one
    /// the queue is removed: a webhook configured again gets the Insights decided from then.
    pub fn open(data_dir: &Path, url: Option<String>) -> std::io::Result<Option<Webhook>> {
        let dir = data_dir.join("insights");
        tasks::remove_state(&dir.join(OLD_CURSOR_FILE))?;
        let Some(url) = url else {
            tasks::remove_state(&dir.join(QUEUE_FILE))?;
            return Ok(None);
        };
        std::fs::create_dir_all(&dir)?;
        let queue = tasks::read_state(&dir.join(QUEUE_FILE))?.unwrap_or_default();
        Ok(Some(Webhook {
            url,
            dir,
            queue: Mutex::new(queue),
        }))
    }

    /// Every second until `stop` fires, posts the queue. What is queued at stop goes after
    /// the next start (a slow webhook must not hold up shutdown).
    pub async fn run(app: Arc<App>, stop: tokio::sync::watch::Receiver<bool>) {
        let Some(webhook) = &app.insights_webhook else {
            return;
        };
        tasks::every(POLL, stop, AtStop::Quit, || webhook.post(&app)).await;
    }

    /// Adds the envelopes of Insights `records` to the queue, and saves it; when this
    /// fails, nothing was added.
    pub fn enqueue(&self, records: &[&[u8]]) -> Result<(), String> {
        let added: Vec<String> = records.iter().filter_map(|r| envelope(r)).collect();
        let mut queue = self.queue.lock().expect("webhook lock");
        let excess = (queue.len() + added.len()).saturating_sub(MAX_QUEUED);
        // The queue as it will be is saved before memory changes.
        let kept: Vec<&String> = queue.iter().chain(&added).skip(excess).collect();
        self.save_queue(&kept)?;
        if excess > 0 {
            tracing::error!(
                dropped = excess,
                "the Insights webhook has not taken events for long; the oldest are dropped"
            );
        }
        queue.extend(added);
        queue.drain(..excess);
        Ok(())
    }

    fn save_queue(&self, queue: &impl Serialize) -> Result<(), String> {
        tasks::write_state(&self.dir.join(QUEUE_FILE), queue)
            .map_err(|e| format!("saving the Insights webhook queue: {e}"))
    }

    /// Posts the queue in order until it is empty or the webhook refuses one; then saves
    /// what is left once (an event taken just before a crash may go twice).
    async fn post(&self, app: &App) {
        let mut taken = 0;
        loop {
            let Some(body) = self.queue.lock().expect("webhook lock").front().cloned() else {
                break;
            };
            if let Err(error) = app.post_json(&self.url, body.clone()).await {
                tracing::warn!(%error, webhook = %self.url, "Insights event not delivered; will retry");
                break;
            }
            let mut queue = self.queue.lock().expect("webhook lock");
            // Unless a full queue dropped it meanwhile.
            if queue.front() == Some(&body) {
                queue.pop_front();
            }
            taken += 1;
        }
        if taken > 0 {
            let queue = self.queue.lock().expect("webhook lock");
            if let Err(error) = self.save_queue(&*queue) {
                tracing::error!(%error);
            }
        }
    }
}

/// The fields of a record the envelope repeats.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields<'a> {
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow, rename = "eventID")]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    event_time: Cow<'a, str>,
    #[serde(borrow)]
    aws_region: Cow<'a, str>,
    #[serde(borrow)]
    recipient_account_id: Cow<'a, str>,
}

/// EventBridge's event, with the record as `detail` byte for byte.
#[derive(Serialize)]
struct Envelope<'a> {
    version: &'static str,
    id: String,
    #[serde(rename = "detail-type")]
    detail_type: &'static str,
    source: &'static str,
    account: &'a str,
    time: &'a str,
    region: &'a str,
    resources: [&'static str; 0],
    detail: &'a RawValue,
}

/// The envelope of a journal record, when it is an Insights event.
fn envelope(record: &[u8]) -> Option<String> {
    memchr::memmem::find(record, b"AwsCloudTrailInsight")?;
    let fields: Fields = serde_json::from_slice(record).ok()?;
    if fields.event_type != "AwsCloudTrailInsight" {
        return None;
    }
    let detail: &RawValue = serde_json::from_slice(record).ok()?;
    let envelope = Envelope {
        version: "0",
        id: cairn_core::record::stable_event_id(&format!(
            "eventbridge|{}|{}",
            fields.recipient_account_id, fields.event_id
        )),
        detail_type: DETAIL_TYPE,
        // As AWS's CloudTrail-sourced events for Insights carry it.
        source: "aws.cloudtrail",
        account: &fields.recipient_account_id,
        time: &fields.event_time,
        region: &fields.aws_region,
        resources: [],
        detail,
    };
    Some(serde_json::to_string(&envelope).expect("an envelope serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insights_record_is_wrapped_and_others_are_not() {
        let record = br#"{"eventVersion":"1.09","eventTime":"2026-11-21T10:00:00Z","awsRegion":"eu-west-1","eventID":"e1","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333","sharedEventID":"s1","insightDetails":{"state":"Start"},"eventCategory":"Insight"}"#;
        let text = envelope(record).expect("an Insights event");
        assert!(text.ends_with(&format!(
            r#""detail":{}}}"#,
            std::str::from_utf8(record).unwrap()
        )));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["detail-type"], DETAIL_TYPE);
        assert_eq!(value["source"], "aws.cloudtrail");
        assert_eq!(value["account"], "111122223333");
        assert_eq!(value["region"], "eu-west-1");
        assert_eq!(value["time"], "2026-11-21T10:00:00Z");
        assert_eq!(value["resources"], serde_json::json!([]));
        assert_eq!(envelope(record), Some(text), "the same id every time");
        let call = br#"{"eventType":"AwsApiCall","eventName":"AwsCloudTrailInsight"}"#;
        assert_eq!(envelope(call), None);
        assert_eq!(envelope(b"AwsCloudTrailInsight not json"), None);
    }

    #[test]
    fn queued_events_outlive_a_restart_and_go_with_the_webhook() {
        let dir = tempfile::tempdir().unwrap();
        let url = Some("http://127.0.0.1:9/hook".to_owned());
        let insight = br#"{"eventTime":"2026-11-21T10:00:00Z","awsRegion":"eu-west-1","eventID":"e1","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333"}"#;
        let call = br#"{"eventType":"AwsApiCall"}"#;
        let webhook = Webhook::open(dir.path(), url.clone()).unwrap().unwrap();
        webhook.enqueue(&[insight, call]).unwrap();
        let queued = |w: &Webhook| w.queue.lock().unwrap().clone();
        assert_eq!(queued(&webhook).len(), 1, "only Insights events");
        let reopened = Webhook::open(dir.path(), url.clone()).unwrap().unwrap();
        assert_eq!(queued(&reopened), queued(&webhook));
        assert!(Webhook::open(dir.path(), None).unwrap().is_none());
        let again = Webhook::open(dir.path(), url).unwrap().unwrap();
        assert!(queued(&again).is_empty(), "no webhook, no queue");
    }
}
