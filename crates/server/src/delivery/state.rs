//! What delivery keeps on disk: its cursor, the pending plan, the spool of files whose
//! bucket could not take them yet (digests wait there too until their first upload), the
//! digest chains, and each trail's delivery status per region. One JSON file
//! (`delivery/state.json`), replaced atomically; spooled files beside it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::build::PlannedTrail;
use super::digests::{chain_id, Chain, DigestEntry, Generation};

const VERSION: u32 = 1;
const FILE: &str = "state.json";
const SPOOL: &str = "spool";

/// A delivery decided and saved before any of it is uploaded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub from: u64,
    pub to: u64,
    /// The delivery time: it names the files.
    pub time: i64,
    pub trails: Vec<PlannedTrail>,
}

/// A file waiting in the spool for its bucket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpoolEntry {
    pub trail_arn: String,
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub file: String,
    /// A log file of a validated trail: what it adds to the digest once delivered.
    #[serde(default)]
    pub digest: Option<DigestEntry>,
    /// A digest file: its signature, written as the object's user metadata.
    #[serde(default)]
    pub signature: Option<String>,
}

/// The outcome of the latest attempts at one kind of work (delivery, notification).
/// Times are epoch seconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Attempts {
    pub latest_time: Option<f64>,
    pub latest_error: Option<String>,
    pub latest_attempt_time: Option<f64>,
    pub latest_attempt_succeeded: Option<f64>,
}

impl Attempts {
    /// Notes an attempt at `time`: its success, or its error code (kept until a success).
    pub fn record(&mut self, time: f64, error: Option<&str>) {
        self.latest_attempt_time = Some(time);
        match error {
            None => {
                self.latest_time = Some(time);
                self.latest_attempt_succeeded = Some(time);
                self.latest_error = None;
            }
            Some(code) => self.latest_error = Some(code.to_owned()),
        }
    }

    /// GetTrailStatus's fields for this work, named `Latest<what>…`.
    fn write(&self, what: &str, out: &mut serde_json::Map<String, Value>) {
        let field = |suffix: &str| format!("Latest{what}{suffix}");
        out.insert(field("AttemptTime"), json!(iso(self.latest_attempt_time)));
        out.insert(
            field("AttemptSucceeded"),
            json!(iso(self.latest_attempt_succeeded)),
        );
        self.write_outcome(what, out);
    }

    /// Only `Latest<what>Time` and `Latest<what>Error`, when known: the fields digests
    /// and CloudWatch Logs delivery have.
    pub fn write_outcome(&self, what: &str, out: &mut serde_json::Map<String, Value>) {
        if let Some(t) = self.latest_time {
            out.insert(format!("Latest{what}Time"), json!(t));
        }
        if let Some(e) = &self.latest_error {
            out.insert(format!("Latest{what}Error"), json!(e));
        }
    }
}

/// GetTrailStatus's delivery fields, per trail and region.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "StoredStatus")]
pub struct RegionStatus {
    pub delivery: Attempts,
    pub notification: Attempts,
    pub digest: Attempts,
}

/// A status as stored: the current form, or the flat fields of state files written
/// before digests, which still load.
#[derive(Deserialize)]
struct StoredStatus {
    delivery: Option<Attempts>,
    notification: Option<Attempts>,
    #[serde(default)]
    digest: Attempts,
    #[serde(flatten)]
    flat: FlatStatus,
}

#[derive(Deserialize)]
struct FlatStatus {
    latest_delivery_time: Option<f64>,
    latest_delivery_error: Option<String>,
    latest_delivery_attempt_time: Option<f64>,
    latest_delivery_attempt_succeeded: Option<f64>,
    latest_notification_time: Option<f64>,
    latest_notification_error: Option<String>,
    latest_notification_attempt_time: Option<f64>,
    latest_notification_attempt_succeeded: Option<f64>,
}

impl From<StoredStatus> for RegionStatus {
    fn from(stored: StoredStatus) -> Self {
        let f = stored.flat;
        RegionStatus {
            delivery: stored.delivery.unwrap_or(Attempts {
                latest_time: f.latest_delivery_time,
                latest_error: f.latest_delivery_error,
                latest_attempt_time: f.latest_delivery_attempt_time,
                latest_attempt_succeeded: f.latest_delivery_attempt_succeeded,
            }),
            notification: stored.notification.unwrap_or(Attempts {
                latest_time: f.latest_notification_time,
                latest_error: f.latest_notification_error,
                latest_attempt_time: f.latest_notification_attempt_time,
                latest_attempt_succeeded: f.latest_notification_attempt_succeeded,
            }),
            digest: stored.digest,
        }
    }
}

/// ISO-8601 for the deprecated string fields; empty when unknown, as AWS returns them.
pub fn iso(time: Option<f64>) -> String {
    time.map(|t| cairn_core::timefmt::format_event_time(t as i64))
        .unwrap_or_default()
}

impl RegionStatus {
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        self.delivery.write("Delivery", &mut out);
        self.notification.write("Notification", &mut out);
        self.digest.write_outcome("DigestDelivery", &mut out);
        Value::Object(out)
    }
}

pub fn status_key(trail_arn: &str, region: &str) -> String {
    format!("{trail_arn}|{region}")
}

#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    version: u32,
    /// Every event below this journal position has been delivered or spooled.
    pub cursor: u64,
    pub pending: Option<Plan>,
    pub spool: Vec<SpoolEntry>,
    pub status: BTreeMap<String, RegionStatus>,
    /// Digest chains by `digests::chain_id`.
    #[serde(default)]
    pub chains: BTreeMap<String, Chain>,
    /// When each ended chain's final digest ended: its successor starts no earlier, so
    /// chains never overlap and digest names never repeat.
    #[serde(default)]
    pub last_ends: BTreeMap<String, i64>,
}

impl State {
    pub fn load_or_create(dir: &Path, start: u64) -> std::io::Result<State> {
        std::fs::create_dir_all(dir.join(SPOOL))?;
        let path = dir.join(FILE);
        let state = match crate::tasks::read_state::<State>(&path)? {
            Some(state) if state.version != VERSION => {
                return Err(std::io::Error::other(format!(
                    "{}: unknown version {}",
                    path.display(),
                    state.version
                )));
            }
            Some(state) => state,
            None => {
                let state = State {
                    version: VERSION,
                    cursor: start,
                    pending: None,
                    spool: Vec::new(),
                    status: BTreeMap::new(),
                    chains: BTreeMap::new(),
                    last_ends: BTreeMap::new(),
                };
                state.save(dir)?;
                state
            }
        };
        // Spool files the state does not name were written by a delivery that did not
        // commit; its plan is still pending and writes them again.
        for entry in std::fs::read_dir(dir.join(SPOOL))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !state.spool.iter().any(|e| e.file == name) {
                remove_spool_file(dir, &name);
            }
        }
        Ok(state)
    }

    /// The chain for (trail, account, region), started now (or when its predecessor
    /// ended, if later) when there is none.
    pub fn start_chain(
        &mut self,
        trail_arn: &str,
        account: &str,
        region: &str,
        generation: Generation,
        now: i64,
    ) -> &mut Chain {
        let id = chain_id(trail_arn, account, region);
        let start = self.last_ends.get(&id).map_or(now, |end| now.max(*end));
        self.chains
            .entry(id)
            .or_insert_with(|| Chain::new(trail_arn, account, region, generation, start))
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        cairn_store::fsutil::write_json(&dir.join(FILE), self).map_err(std::io::Error::other)
    }
}

/// The spool file name for an object key: its last path segment is unique already.
pub fn spool_name(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).to_owned()
}

pub fn write_spool_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    cairn_store::fsutil::write_atomic(&dir.join(SPOOL).join(name), bytes)
        .map_err(std::io::Error::other)
}

pub fn read_spool_file(dir: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(dir.join(SPOOL).join(name))
}

pub fn remove_spool_file(dir: &Path, name: &str) {
    if let Err(error) = std::fs::remove_file(dir.join(SPOOL).join(name)) {
        tracing::warn!(%name, %error, "could not remove a spooled file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_the_flat_form_still_load() {
        let flat = r#"{"latest_delivery_time":5.0,"latest_delivery_error":null,
            "latest_delivery_attempt_time":5.0,"latest_delivery_attempt_succeeded":5.0,
            "latest_notification_time":null,"latest_notification_error":"NotFound",
            "latest_notification_attempt_time":6.0,"latest_notification_attempt_succeeded":null}"#;
        let status: RegionStatus = serde_json::from_str(flat).unwrap();
        assert_eq!(status.delivery.latest_time, Some(5.0));
        assert_eq!(
            status.notification.latest_error.as_deref(),
            Some("NotFound")
        );
        assert_eq!(status.digest.latest_time, None);
        let again: RegionStatus =
            serde_json::from_str(&serde_json::to_string(&status).unwrap()).unwrap();
        assert_eq!(again.delivery.latest_time, Some(5.0));
        assert_eq!(again.notification.latest_attempt_time, Some(6.0));
    }
}
