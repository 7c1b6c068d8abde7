//! Trail delivery: every interval, the events recorded since the last delivery are routed
//! to the trails that were logging when each was recorded, packed into gzip log files and
//! written to the trails' buckets.
//!
//! Exactly once, from at-least-once work: a delivery is first decided as a *plan* (the
//! journal range, the delivery time, the trails as they were) and the plan is saved before
//! anything is uploaded. The files' keys and bytes are a pure function of the plan, so
//! after a crash the plan is built again and the same objects are written again. Once every
//! file of a plan is either in its bucket or, if its bucket cannot be reached, saved in the
//! local spool, the cursor moves past the range. Spooled files are retried every interval
//! until their bucket takes them, each trail on its own.
//!
//! Digests follow the same rule: a digest is built, signed and saved in the spool together
//! with its chain's new state, then uploaded like a spooled log file.

pub mod build;
pub mod digests;
mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_store::Change;
use serde_json::Value;

use crate::app::App;
use crate::tasks::JournalEvent;
use crate::trails::{self, Trail};
use build::{LogFile, PlannedTrail, Range};
use digests::{Chain, DigestEntry, Fate, Generation};
pub use state::{Attempts, RegionStatus};
use state::{Plan, SpoolEntry, State};

/// A log file in its bucket, with what it adds to its trail's digest.
struct Digested {
    trail_arn: String,
    region: String,
    bucket: String,
    key: String,
    entry: DigestEntry,
}

impl Digested {
    fn new(trail_arn: &str, region: &str, bucket: &str, key: &str, entry: &DigestEntry) -> Self {
        Digested {
            trail_arn: trail_arn.to_owned(),
            region: region.to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            entry: entry.clone(),
        }
    }
}

/// The outcome of one upload, for the trail's status.
struct Attempted<'a> {
    trail_arn: &'a str,
    region: &'a str,
    digest: bool,
    error: Option<&'a str>,
}

/// The most record bytes one plan reads from the journal; a longer backlog is delivered
/// in several plans.
const PLAN_BUDGET: usize = 256 << 20;

pub struct Delivery {
    dir: PathBuf,
    state: Mutex<State>,
    /// Files of the pending plan already built (so that a retry does not build them again).
    built: Mutex<Option<(u64, Vec<LogFile>)>>,
    pub interval: Duration,
    max_file_bytes: usize,
}

impl Delivery {
    /// Loads the delivery state from `<data_dir>/delivery`; a new one starts at `start`.
    pub fn open(
        data_dir: &std::path::Path,
        start: u64,
        interval: Duration,
        max_file_bytes: usize,
    ) -> std::io::Result<Delivery> {
        let dir = data_dir.join("delivery");
        let state = State::load_or_create(&dir, start)?;
        Ok(Delivery {
            dir,
            state: Mutex::new(state),
            built: Mutex::new(None),
            interval,
            max_file_bytes,
        })
    }

    /// The journal position below which every event has been delivered (or spooled).
    pub fn cursor(&self) -> u64 {
        self.state.lock().expect("delivery lock").cursor
    }

    /// GetTrailStatus's delivery fields for a trail in a region.
    pub fn status(&self, trail_arn: &str, region: &str) -> RegionStatus {
        self.state
            .lock()
            .expect("delivery lock")
            .status
            .get(&state::status_key(trail_arn, region))
            .cloned()
            .unwrap_or_default()
    }

    /// Delivers every interval until `stop` fires, then once more, so that everything
    /// recorded before shutdown is written.
    pub async fn run(app: Arc<App>, stop: tokio::sync::watch::Receiver<bool>) {
        let interval = app.delivery.interval;
        crate::tasks::every(interval, stop, crate::tasks::AtStop::Finish, || {
            app.delivery.pass(&app)
        })
        .await;
    }

    /// One delivery: the spool first, then what is new in the journal, then the digests
    /// that are due.
    pub async fn pass(&self, app: &Arc<App>) {
        let failing = self.retry_spool(app).await;
        loop {
            match self.deliver_next(app, &failing).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(error) => {
                    tracing::error!(%error, "delivery failed; it will be retried");
                    break;
                }
            }
        }
        let rolled = {
            let app = app.clone();
            tokio::task::spawn_blocking(move || app.delivery.roll_digests(&app)).await
        };
        match rolled.map_err(|e| e.to_string()).and_then(|made| made) {
            Ok(true) => {
                self.retry_spool(app).await;
            }
            Ok(false) => {}
            Err(error) => tracing::error!(%error, "digests failed; they will be retried"),
        }
        self.retire_trails(app);
    }

    /// Plans (or resumes) one delivery and carries it out; files for a bucket in
    /// `failing` go straight to the spool. Returns whether more of the journal waits.
    async fn deliver_next(&self, app: &Arc<App>, failing: &Failing) -> Result<bool, String> {
        let plan = self.state.lock().expect("delivery lock").pending.clone();
        // After a resumed plan, what came after it waits; a new plan waits only if it was
        // cut short. (Events arriving meanwhile go in the next pass, not in a file of
        // their own.)
        let (plan, files, more) = match plan {
            Some(plan) => {
                let files = self.files_of(app, &plan).await?;
                (plan, files, true)
            }
            None => match self.new_plan(app).await? {
                Some(planned) => planned,
                None => return Ok(false),
            },
        };
        self.upload(app, &plan, files, failing).await?;
        Ok(more)
    }

    /// The files of a saved plan: kept from when it was made, or built again.
    async fn files_of(&self, app: &Arc<App>, plan: &Plan) -> Result<Vec<LogFile>, String> {
        if let Some((from, files)) = self.built.lock().expect("built lock").as_ref() {
            if *from == plan.from {
                return Ok(files.clone());
            }
        }
        let (range, files) =
            read_and_build(app, plan.from, plan.to, plan, self.max_file_bytes).await?;
        if range.to != plan.to {
            return Err(format!(
                "the journal range {}..{} of a saved delivery plan could not be read again",
                plan.from, plan.to
            ));
        }
        Ok(files)
    }

    /// Decides the next delivery: the trails as they are and the journal up to what is
    /// durable, read under the metadata lock so no trail change below that position is
    /// missed. Saves the plan before returning it, with whether the journal's end was
    /// beyond the plan's budget.
    async fn new_plan(&self, app: &Arc<App>) -> Result<Option<(Plan, Vec<LogFile>, bool)>, String> {
        let cursor = self.cursor();
        let (trails, until) = app.meta.read(|entries| {
            (
                planned_trails(entries, &app.settings),
                app.store.committed_seq(),
            )
        });
        if until <= cursor {
            return Ok(None);
        }
        let wanted = trails.iter().any(|t| t.trail.logging_since(cursor));
        if !wanted {
            // No trail is logging: nothing in the range is delivered anywhere.
            self.commit(app, cursor, until, &[], Vec::new(), Vec::new())?;
            return Ok(None);
        }
        let mut plan = Plan {
            from: cursor,
            to: until,
            time: crate::app::now(),
            trails,
        };
        let (range, files) = read_and_build(app, cursor, until, &plan, self.max_file_bytes).await?;
        plan.to = range.to;
        {
            let mut state = self.state.lock().expect("delivery lock");
            state.pending = Some(plan.clone());
            state
                .save(&self.dir)
                .map_err(|e| format!("saving the delivery plan: {e}"))?;
        }
        *self.built.lock().expect("built lock") = Some((plan.from, files.clone()));
        Ok(Some((plan, files, range.to < until)))
    }

    /// Writes a plan's files; those whose bucket fails, or failed earlier in this pass, go
    /// to the spool. Then the cursor moves past the plan's range.
    async fn upload(
        &self,
        app: &Arc<App>,
        plan: &Plan,
        files: Vec<LogFile>,
        failing: &Failing,
    ) -> Result<(), String> {
        let results = put_all(app, &files, failing).await;
        let attempt = crate::app::now_precise();
        let mut spooled = Vec::new();
        let mut outcomes = Vec::new();
        let mut digested = Vec::new();
        for (file, result) in files.iter().zip(results) {
            match result {
                Ok(()) => {
                    if let Some(entry) = &file.digest {
                        digested.push(Digested::new(
                            &file.trail_arn,
                            &file.region,
                            &file.bucket,
                            &file.key,
                            entry,
                        ));
                    }
                    outcomes.push((file, None));
                }
                Err(error) => {
                    tracing::warn!(bucket = %file.bucket, key = %file.key, %error, "log file not delivered; spooled for retry");
                    let name = state::spool_name(&file.key);
                    state::write_spool_file(&self.dir, &name, &file.gzip)
                        .map_err(|e| format!("spooling {}: {e}", file.key))?;
                    spooled.push(SpoolEntry {
                        trail_arn: file.trail_arn.clone(),
                        region: file.region.clone(),
                        bucket: file.bucket.clone(),
                        key: file.key.clone(),
                        file: name,
                        digest: file.digest.clone(),
                        signature: None,
                    });
                    outcomes.push((file, Some(error.code)));
                }
            }
        }
        let report: Vec<Attempted> = outcomes
            .iter()
            .map(|(f, error)| Attempted {
                trail_arn: &f.trail_arn,
                region: &f.region,
                digest: false,
                error: *error,
            })
            .collect();
        self.note(&report, attempt);
        self.commit(app, plan.from, plan.to, &[], spooled, digested)?;
        notify(app, &outcomes).await;
        Ok(())
    }

    /// Records upload outcomes in the trails' statuses.
    fn note(&self, outcomes: &[Attempted], attempt: f64) {
        let mut state = self.state.lock().expect("delivery lock");
        for outcome in outcomes {
            let status = state
                .status
                .entry(state::status_key(outcome.trail_arn, outcome.region))
                .or_default();
            let attempts = if outcome.digest {
                &mut status.digest
            } else {
                &mut status.delivery
            };
            attempts.record(attempt, outcome.error);
        }
    }

    /// Moves the cursor past `from..to`, adds `spooled` to the spool and drops `sent`
    /// from it, lists the `digested` log files in their digest chains, clears the pending
    /// plan, and saves the state; then lets the journal go.
    fn commit(
        &self,
        app: &App,
        from: u64,
        to: u64,
        sent: &[String],
        spooled: Vec<SpoolEntry>,
        digested: Vec<Digested>,
    ) -> Result<(), String> {
        {
            let mut state = self.state.lock().expect("delivery lock");
            if state.cursor == from {
                state.cursor = to;
            }
            state.pending = None;
            state.spool.retain(|e| !sent.contains(&e.file));
            state.spool.extend(spooled);
            let now = crate::app::now();
            for file in digested {
                state
                    .start_chain(
                        &file.trail_arn,
                        &file.entry.account,
                        &file.region,
                        file.entry.generation,
                        now,
                    )
                    .add(&file.bucket, &file.key, &file.entry);
            }
            state
                .save(&self.dir)
                .map_err(|e| format!("saving the delivery state: {e}"))?;
        }
        *self.built.lock().expect("built lock") = None;
        for name in sent {
            state::remove_spool_file(&self.dir, name);
        }
        app.release_journal();
        Ok(())
    }

    /// Tries the spooled files again; returns the buckets that failed.
    async fn retry_spool(&self, app: &Arc<App>) -> Failing {
        let mut failing = Failing::new();
        let entries = self.state.lock().expect("delivery lock").spool.clone();
        if entries.is_empty() {
            return failing;
        }
        let mut sent = Vec::new();
        let mut report = Vec::new();
        let mut digested = Vec::new();
        let attempt = crate::app::now_precise();
        // One failure per bucket per pass is enough: an unreachable or throttling endpoint
        // must not be asked once per spooled file.
        for entry in &entries {
            if failing.contains_key(&entry.bucket) {
                continue;
            }
            let bytes = match state::read_spool_file(&self.dir, &entry.file) {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::error!(file = %entry.file, %error, "spooled log file cannot be read");
                    continue;
                }
            };
            let mut metadata = crate::buckets::Metadata::new();
            if let Some(signature) = &entry.signature {
                metadata.insert("signature".into(), signature.clone());
                metadata.insert(
                    "signature-algorithm".into(),
                    cairn_core::digest::SIGNATURE_ALGORITHM.into(),
                );
            }
            let put = app
                .buckets
                .put_with_metadata(&entry.bucket, &entry.key, bytes, metadata)
                .await;
            let error = match put {
                Ok(()) => {
                    sent.push(entry.file.clone());
                    if let Some(digest) = &entry.digest {
                        digested.push(Digested::new(
                            &entry.trail_arn,
                            &entry.region,
                            &entry.bucket,
                            &entry.key,
                            digest,
                        ));
                    }
                    None
                }
                Err(error) => {
                    failing.insert(entry.bucket.clone(), error.code);
                    Some(error.code)
                }
            };
            report.push(Attempted {
                trail_arn: &entry.trail_arn,
                region: &entry.region,
                digest: entry.signature.is_some(),
                error,
            });
        }
        self.note(&report, attempt);
        if !sent.is_empty() {
            let cursor = self.cursor();
            if let Err(error) = self.commit(app, cursor, cursor, &sent, Vec::new(), digested) {
                tracing::error!(%error, "could not save the delivery state after a spool retry");
            }
            tracing::debug!(files = sent.len(), "spooled files delivered");
        }
        failing
    }

    /// Closes the digest periods that are over and the chains that ended, and starts a
    /// chain for each validated trail that is logging and has none. Each digest is signed
    /// and saved in the spool with its chain's new state. Returns whether any was made.
    fn roll_digests(&self, app: &App) -> Result<bool, String> {
        let now = crate::app::now();
        let period = app.settings.digests.period_secs;
        let cursor = self.cursor();
        let (live, retired): (Vec<Trail>, Vec<Trail>) = app.meta.read(|entries| {
            let retired = retired(entries).into_iter().map(|(_, t)| t);
            (trails::all(entries), retired.collect())
        });
        let by_arn = |trails: &[Trail], arn: &str| trails.iter().position(|t| t.arn() == arn);
        let mut state = self.state.lock().expect("delivery lock");
        let mut made = 0;
        // The state is saved only when this pass changed it.
        let mut changed = false;
        let mut result = Ok(());
        let ids: Vec<String> = state.chains.keys().cloned().collect();
        for id in ids {
            let chain = &state.chains[&id];
            let live_trail = by_arn(&live, &chain.trail_arn).map(|i| &live[i]);
            let retired_trail = by_arn(&retired, &chain.trail_arn).map(|i| &retired[i]);
            let (end, last) =
                match digests::fate(chain, live_trail, retired_trail, cursor, now, period) {
                    Fate::Wait => continue,
                    Fate::Period { end } => (end, false),
                    Fate::Final { end } => (end, true),
                };
            let Some(trail) = live_trail.or(retired_trail) else {
                tracing::warn!(chain = %id, "a digest chain outlived its trail; it ends without a final digest");
                state.chains.remove(&id);
                changed = true;
                continue;
            };
            let chain = state.chains.get_mut(&id).expect("listed above");
            changed = true;
            match self.emit(app, chain, trail, end, now) {
                Ok(entry) => {
                    state.spool.push(entry);
                    made += 1;
                    if last {
                        state.chains.remove(&id);
                        state.last_ends.insert(id.clone(), end);
                    }
                }
                Err(error) => {
                    // This chain is retried next pass; the others go on.
                    let region = state.chains[&id].region.clone();
                    state
                        .status
                        .entry(state::status_key(&trail.arn(), &region))
                        .or_default()
                        .digest
                        .record(crate::app::now_precise(), Some("InternalError"));
                    result = Err(error);
                }
            }
        }
        let chains = state.chains.len();
        for trail in live.iter().filter(|t| t.is_logging()) {
            let Some(generation) = Generation::of(trail) else {
                continue;
            };
            state.start_chain(
                &trail.arn(),
                &trail.account,
                &trail.home_region,
                generation,
                now,
            );
        }
        if changed || state.chains.len() != chains {
            state
                .save(&self.dir)
                .map_err(|e| format!("saving the digest chains: {e}"))?;
        }
        result.map(|()| made > 0)
    }

    /// Builds and signs the digest closing `chain`'s period at `end`, and writes it to the
    /// spool; returns its spool entry.
    fn emit(
        &self,
        app: &App,
        chain: &mut Chain,
        trail: &Trail,
        end: i64,
        now: i64,
    ) -> Result<SpoolEntry, String> {
        let signer = app.keys.signer(&app.meta, &chain.region, now)?;
        let organization = trail.organization(&app.settings).map(|o| o.id.as_str());
        let target = digests::Target {
            trail,
            organization,
        };
        let before = chain.clone();
        let digest = digests::close(chain, &target, end, &signer)?;
        let name = state::spool_name(&digest.key);
        let gzip = build::compress(&digest.json);
        if let Err(error) = state::write_spool_file(&self.dir, &name, &gzip) {
            *chain = before;
            return Err(format!("spooling digest {}: {error}", digest.key));
        }
        Ok(SpoolEntry {
            trail_arn: chain.trail_arn.clone(),
            region: chain.region.clone(),
            bucket: digest.bucket,
            key: digest.key,
            file: name,
            digest: None,
            signature: Some(digest.signature),
        })
    }

    /// Forgets deleted trails once everything they received has been delivered, spooled
    /// files and final digests included.
    fn retire_trails(&self, app: &App) {
        // Log groups read the trail too.
        let cursor = app.journal_floor();
        let busy: std::collections::HashSet<String> = {
            let state = self.state.lock().expect("delivery lock");
            let spooled = state.spool.iter().map(|e| e.trail_arn.clone());
            spooled
                .chain(state.chains.values().map(|c| c.trail_arn.clone()))
                .collect()
        };
        let done: Vec<String> = app.meta.read(|entries| {
            retired(entries)
                .into_iter()
                .filter(|(_, t)| !busy.contains(&t.arn()) && !t.logging_since(cursor))
                .map(|(key, _)| key)
                .collect()
        });
        if done.is_empty() {
            return;
        }
        let result = app.meta.update(|_| {
            Ok::<_, cairn_store::StoreError>((done.into_iter().map(Change::Delete).collect(), ()))
        });
        if let Err(error) = result {
            tracing::warn!(%error, "could not forget retired trails; will retry");
        }
    }
}

/// Deleted trails that delivery is still working on, with their metadata keys.
fn retired(entries: &BTreeMap<String, Value>) -> Vec<(String, Trail)> {
    cairn_store::meta::under(entries, "retired/")
        .filter_map(|(k, v)| Some((k.clone(), Trail::from_value(v).ok()?)))
        .collect()
}

/// Every trail that may receive events (live and retired), as a plan records them.
pub(crate) fn planned_trails(
    entries: &BTreeMap<String, Value>,
    settings: &crate::config::Settings,
) -> Vec<PlannedTrail> {
    trails::all(entries)
        .into_iter()
        .chain(retired(entries).into_iter().map(|(_, t)| t))
        .filter(|t| !t.logging.is_empty())
        .map(|trail| {
            let organization = trail.organization(settings);
            PlannedTrail {
                organization_id: organization.map(|o| o.id.clone()),
                members: organization.map(|o| o.accounts.clone()).unwrap_or_default(),
                trail,
            }
        })
        .collect()
}

/// Reads `from..until` of the journal (up to the plan budget) and builds its files.
async fn read_and_build(
    app: &Arc<App>,
    from: u64,
    until: u64,
    plan: &Plan,
    max_file_bytes: usize,
) -> Result<(Range, Vec<LogFile>), String> {
    let app = app.clone();
    let trails = plan.trails.clone();
    let time = plan.time;
    tokio::task::spawn_blocking(move || {
        let mut reader = app.store.journal_reader(from);
        let mut events = Vec::new();
        let to = reader
            .read(until, PLAN_BUDGET, |seq, entry| {
                events.push(JournalEvent::new(seq, entry))
            })
            .map_err(|e| e.to_string())?;
        let range = Range { from, to, events };
        let files = build::build(&range, &trails, time, max_file_bytes);
        Ok((range, files))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Buckets that failed in this delivery pass, with the error they answered.
type Failing = BTreeMap<String, &'static str>;

/// Uploads files, several at a time; a file for a bucket in `failing` fails at once.
async fn put_all(
    app: &Arc<App>,
    files: &[LogFile],
    failing: &Failing,
) -> Vec<Result<(), crate::buckets::BucketError>> {
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let tasks: Vec<_> = files
        .iter()
        .map(|file| {
            let app = app.clone();
            let limit = limit.clone();
            let failed = failing.get(&file.bucket).copied();
            let (bucket, key, bytes) = (file.bucket.clone(), file.key.clone(), file.gzip.clone());
            tokio::spawn(async move {
                if let Some(code) = failed {
                    return Err(crate::buckets::BucketError {
                        code,
                        message: format!(
                            "bucket {bucket} failed earlier in this pass; not asked again"
                        ),
                    });
                }
                let _permit = limit.acquire().await;
                app.buckets.put(&bucket, &key, bytes.to_vec()).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap_or_else(|e| {
            Err(crate::buckets::BucketError {
                code: "InternalError",
                message: e.to_string(),
            })
        }));
    }
    results
}

/// Posts CloudTrail's SNS message body (`{"s3Bucket", "s3ObjectKey": [...]}`) to the
/// webhook configured for each trail's topic: one message per trail and region, listing
/// the files just delivered.
async fn notify(app: &Arc<App>, outcomes: &[(&LogFile, Option<&str>)]) {
    let mut messages: BTreeMap<(&str, &str), (String, &str, Vec<&str>)> = BTreeMap::new();
    for (file, error) in outcomes {
        let Some((name, arn)) = &file.topic else {
            continue;
        };
        if error.is_some() {
            continue;
        }
        let settings = &app.settings.notifications;
        let Some(url) = settings.get(arn).or_else(|| settings.get(name)) else {
            continue;
        };
        messages
            .entry((file.trail_arn.as_str(), file.region.as_str()))
            .or_insert_with(|| (url.clone(), file.bucket.as_str(), Vec::new()))
            .2
            .push(file.key.as_str());
    }
    for ((arn, region), (url, bucket, keys)) in messages {
        let body = serde_json::json!({ "s3Bucket": bucket, "s3ObjectKey": keys });
        let attempt = crate::app::now_precise();
        let sent = app.post_json(&url, body.to_string()).await;
        let error = sent.err().map(|error| {
            tracing::warn!(%url, %error, "delivery notification failed");
            if error.is_status() {
                "WebhookRejected"
            } else {
                "WebhookUnreachable"
            }
        });
        let mut state = app.delivery.state.lock().expect("delivery lock");
        state
            .status
            .entry(state::status_key(arn, region))
            .or_default()
            .notification
            .record(attempt, error);
    }
}
