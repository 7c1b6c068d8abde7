//! Insights events to a webhook, as EventBridge delivers them: each event in EventBridge's
//! envelope with detail-type `AWS Insight via CloudTrail`, so rules and receivers written
//! for EventBridge take them as they are.
//!
//! A consumer of the journal with its own cursor picks out the Insights events and queues
//! them in its state file before the cursor moves past them; the queue is POSTed in order,
//! each event until the webhook takes it (any 2xx), so delivery is at least once and the
//! envelope's `id` (derived from the event) lets a receiver drop a repeat. A webhook that is
//! down holds only the queue, never the journal.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_store::journal::JournalReader;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::app::App;
use crate::tasks::{self, AtStop};

const POLL: Duration = Duration::from_secs(1);
/// The most record bytes one read takes from the journal.
const PASS_BUDGET: usize = 32 << 20;
/// The cursor, rewritten at most every `SAVE_EVERY` while only it moves.
const STATE_FILE: &str = "webhook.json";
/// The queue, rewritten only when it changes (and before the cursor moves past what it
/// gained).
const QUEUE_FILE: &str = "webhook-queue.json";
const SAVE_EVERY: Duration = Duration::from_secs(2);
/// Events queued beyond this are dropped, oldest first, and logged: a webhook down for
/// long must not fill the disk. Insights are rare; this is weeks of them.
const MAX_QUEUED: usize = 10_000;
const DETAIL_TYPE: &str = "AWS Insight via CloudTrail";

#[derive(Default, Serialize, Deserialize)]
struct Saved {
    /// Every Insights event below this journal position is queued or sent.
    cursor: u64,
}

struct State {
    cursor: u64,
    /// Envelopes not yet taken by the webhook, oldest first.
    queue: VecDeque<String>,
    /// When the cursor was last saved.
    saved_at: Instant,
}

pub struct Webhook {
    url: String,
    dir: PathBuf,
    state: Mutex<State>,
    /// The cursor in the state file: the journal is kept from here.
    saved_cursor: AtomicU64,
    reader: Mutex<Option<JournalReader>>,
}

impl Webhook {
    /// Opens the state in `<data_dir>/insights` when a webhook is configured (a new one
    /// starts at journal position `start`). Without one the state is removed: the journal
    /// is not kept for it, so a webhook configured again starts from then.
    pub fn open(
        data_dir: &Path,
        start: u64,
        url: Option<String>,
    ) -> std::io::Result<Option<Webhook>> {
        let dir = data_dir.join("insights");
        let Some(url) = url else {
            tasks::remove_state(&dir.join(STATE_FILE))?;
            tasks::remove_state(&dir.join(QUEUE_FILE))?;
            return Ok(None);
        };
        let saved = tasks::load_state(&dir.join(STATE_FILE), || Saved { cursor: start })?;
        let queue = tasks::read_state(&dir.join(QUEUE_FILE))?.unwrap_or_default();
        Ok(Some(Webhook {
            url,
            dir,
            saved_cursor: AtomicU64::new(saved.cursor),
            state: Mutex::new(State {
                cursor: saved.cursor,
                queue,
                saved_at: Instant::now(),
            }),
            reader: Mutex::new(None),
        }))
    }

    /// The journal position below which nothing is needed any more.
    pub fn saved_cursor(&self) -> u64 {
        self.saved_cursor.load(Ordering::Acquire)
    }

    /// Every second until `stop` fires: queues new Insights events, then posts the queue.
    /// At stop the last events are queued, not posted (a slow webhook must not hold up
    /// shutdown); they go after the next start.
    pub async fn run(app: Arc<App>, stop: tokio::sync::watch::Receiver<bool>) {
        if app.insights_webhook.is_none() {
            return;
        }
        let read: fn(&App) -> Result<bool, String> =
            |app| app.insights_webhook.as_ref().expect("checked").read(app);
        const WHAT: &str = "queueing Insights events for the webhook";
        let webhook = app.insights_webhook.as_ref().expect("checked");
        tasks::every(POLL, stop, AtStop::Quit, || async {
            tasks::drain(&app, WHAT, read).await;
            webhook.post(&app).await;
        })
        .await;
        tasks::drain(&app, WHAT, read).await;
        let mut state = webhook.state.lock().expect("webhook lock");
        if let Err(error) = webhook.save_cursor(&app, &mut state) {
            tracing::error!(%error);
        }
    }

    /// Queues the Insights events the journal holds beyond the cursor (up to the budget).
    /// Returns whether more of the journal waits.
    fn read(&self, app: &App) -> Result<bool, String> {
        let until = app.store.committed_seq();
        let mut state = self.state.lock().expect("webhook lock");
        let mut to = state.cursor;
        let mut found = Vec::new();
        if until > state.cursor {
            let mut reader = self.reader.lock().expect("webhook reader lock");
            to = tasks::read_journal(
                app,
                &mut reader,
                state.cursor,
                until,
                PASS_BUDGET,
                |_, record| found.extend(envelope(record)),
            )?;
        }
        if !found.is_empty() {
            state.queue.extend(found);
            let excess = state.queue.len().saturating_sub(MAX_QUEUED);
            if excess > 0 {
                tracing::error!(
                    dropped = excess,
                    "the Insights webhook has not taken events for long; the oldest are dropped"
                );
                state.queue.drain(..excess);
            }
            self.save_queue(&state)?;
        }
        state.cursor = to;
        let moved = to != self.saved_cursor();
        if moved && state.saved_at.elapsed() >= SAVE_EVERY {
            self.save_cursor(app, &mut state)?;
        }
        Ok(to < until)
    }

    fn save_queue(&self, state: &State) -> Result<(), String> {
        tasks::write_state(&self.dir.join(QUEUE_FILE), &state.queue)
            .map_err(|e| format!("saving the Insights webhook queue: {e}"))
    }

    /// Writes the cursor (the queue holds everything below it by then), and lets the
    /// journal below it go.
    fn save_cursor(&self, app: &App, state: &mut State) -> Result<(), String> {
        let saved = Saved {
            cursor: state.cursor,
        };
        tasks::write_state(&self.dir.join(STATE_FILE), &saved)
            .map_err(|e| format!("saving the Insights webhook cursor: {e}"))?;
        self.saved_cursor.store(state.cursor, Ordering::Release);
        state.saved_at = Instant::now();
        app.release_journal();
        Ok(())
    }

    /// Posts the queue in order until it is empty or the webhook refuses one; then saves
    /// what is left once (an event taken just before a crash may go twice).
    async fn post(&self, app: &App) {
        let mut taken = 0;
        loop {
            let Some(body) = self
                .state
                .lock()
                .expect("webhook lock")
                .queue
                .front()
                .cloned()
            else {
                break;
            };
            if let Err(error) = app.post_json(&self.url, body).await {
                tracing::warn!(%error, webhook = %self.url, "Insights event not delivered; will retry");
                break;
            }
            self.state.lock().expect("webhook lock").queue.pop_front();
            taken += 1;
        }
        if taken > 0 {
            let state = self.state.lock().expect("webhook lock");
            if let Err(error) = self.save_queue(&state) {
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
}
