//! Metadata: small, rarely changed documents (channels today; trails, selectors and tags
//! next), kept as one JSON file replaced atomically on every change.
//!
//! Keys are `/`-separated paths such as `channels/<account>/<region>/<id>`, so one prefix
//! scan lists an account's channels in a region.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::fsutil;

const FILE: &str = "meta.json";
const VERSION: u32 = 1;

#[derive(Default, Serialize, Deserialize)]
struct Document {
    version: u32,
    entries: BTreeMap<String, Value>,
}

pub struct MetaStore {
    path: PathBuf,
    document: Mutex<Document>,
    /// Counts committed updates, so readers can tell whether anything changed.
    generation: AtomicU64,
}

/// The entries whose keys start with `prefix`, in key order.
pub fn under<'a>(
    entries: &'a BTreeMap<String, Value>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Value)> {
    entries
        .range(prefix.to_owned()..)
        .take_while(move |(k, _)| k.starts_with(prefix))
}

/// One change inside a [`MetaStore::update`].
pub enum Change {
    Put(String, Value),
    Delete(String),
}

impl MetaStore {
    pub fn open(dir: &Path) -> Result<MetaStore> {
        fsutil::create_dir(dir)?;
        let path = dir.join(FILE);
        let document = match fsutil::read_json::<Document>(&path)? {
            Some(document) if document.version != VERSION => {
                return Err(StoreError::corrupt(format!(
                    "{}: unknown version {}",
                    path.display(),
                    document.version
                )));
            }
            Some(document) => document,
            None => Document {
                version: VERSION,
                ..Document::default()
            },
        };
        Ok(MetaStore {
            path,
            document: Mutex::new(document),
            generation: AtomicU64::new(0),
        })
    }

    /// Changes with every committed update (and not otherwise) while the store is open.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.document
            .lock()
            .expect("meta lock")
            .entries
            .get(key)
            .cloned()
    }

    /// Runs `read` over the current entries under the lock: a view no update interleaves
    /// with.
    pub fn read<T>(&self, read: impl FnOnce(&BTreeMap<String, Value>) -> T) -> T {
        read(&self.document.lock().expect("meta lock").entries)
    }

    /// Every (key, value) whose key starts with `prefix`, in key order.
    pub fn scan(&self, prefix: &str) -> Vec<(String, Value)> {
        let document = self.document.lock().expect("meta lock");
        under(&document.entries, prefix)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Reads the current entries, decides on changes, and makes them durable together.
    /// `decide` runs under the lock, so a check and the change it allows cannot be raced.
    pub fn update<T, E: From<StoreError>>(
        &self,
        decide: impl FnOnce(&BTreeMap<String, Value>) -> std::result::Result<(Vec<Change>, T), E>,
    ) -> std::result::Result<T, E> {
        let mut document = self.document.lock().expect("meta lock");
        let (changes, outcome) = decide(&document.entries)?;
        if changes.is_empty() {
            return Ok(outcome);
        }
        let mut next = Document {
            version: VERSION,
            entries: document.entries.clone(),
        };
        for change in changes {
            match change {
                Change::Put(key, value) => {
                    next.entries.insert(key, value);
                }
                Change::Delete(key) => {
                    next.entries.remove(&key);
                }
            }
        }
        let bytes = serde_json::to_vec_pretty(&next).expect("metadata serializes");
        fsutil::write_atomic(&self.path, &bytes)?;
        *document = next;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_durable_and_scans_follow_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(dir.path()).unwrap();
        meta.update(|_| {
            Ok::<_, StoreError>((
                vec![
                    Change::Put("channels/1/us-east-1/a".into(), serde_json::json!({"n": 1})),
                    Change::Put("channels/1/us-east-1/b".into(), serde_json::json!({"n": 2})),
                    Change::Put("channels/1/us-west-2/c".into(), serde_json::json!({"n": 3})),
                ],
                (),
            ))
        })
        .unwrap();
        meta.update(|entries| {
            assert!(entries.contains_key("channels/1/us-east-1/a"));
            Ok::<_, StoreError>((vec![Change::Delete("channels/1/us-east-1/a".into())], ()))
        })
        .unwrap();
        drop(meta);
        let meta = MetaStore::open(dir.path()).unwrap();
        let keys: Vec<String> = meta
            .scan("channels/1/us-east-1/")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec!["channels/1/us-east-1/b".to_owned()]);
        assert_eq!(
            meta.get("channels/1/us-west-2/c"),
            Some(serde_json::json!({"n": 3}))
        );
    }

    #[test]
    fn a_refused_update_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(dir.path()).unwrap();
        let refused: std::result::Result<(), StoreError> =
            meta.update(|_| Err(StoreError::corrupt("no")));
        assert!(refused.is_err());
        assert!(meta.scan("").is_empty());
        assert!(!dir.path().join(FILE).exists());
    }
}
