//! The history manifest: which runs are live, per day, and how far into the journal they
//! reach. It is replaced atomically, so the runs and the cursor always agree.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use cairn_core::timefmt::{day_label, parse_day_label};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::fsutil;

const FILE: &str = "MANIFEST";
const VERSION: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub version: u32,
    /// Every journal event up to this sequence number is in the listed runs (or does not
    /// belong in the history).
    pub history_seq: u64,
    pub next_run_id: u64,
    #[serde(with = "day_map")]
    pub days: BTreeMap<i64, Vec<u64>>,
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(FILE);
        match crate::fsutil::read_json::<Manifest>(&path)? {
            Some(manifest) if manifest.version != VERSION => Err(StoreError::corrupt(format!(
                "{}: unknown version {}",
                path.display(),
                manifest.version
            ))),
            Some(manifest) => Ok(manifest),
            None => Ok(Manifest {
                version: VERSION,
                next_run_id: 1,
                ..Manifest::default()
            }),
        }
    }

    pub fn take_run_id(&mut self) -> u64 {
        let id = self.next_run_id;
        self.next_run_id += 1;
        id
    }

    pub fn commit(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("manifest serializes");
        fsutil::write_atomic(&dir.join(FILE), &bytes)
    }

    /// Deletes run files and day directories the manifest does not name: the remains of
    /// a flush or compaction that crashed before its commit, or of an expiry that crashed
    /// after it.
    pub fn remove_unlisted(&self, dir: &Path) -> Result<()> {
        let entries = fs::read_dir(dir).map_err(|e| StoreError::io(dir.display(), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(day) = parse_day_label(&name) else {
                continue;
            };
            let Some(live) = self.days.get(&day) else {
                fs::remove_dir_all(entry.path())
                    .map_err(|e| StoreError::io(entry.path().display(), e))?;
                continue;
            };
            for file in fs::read_dir(entry.path())
                .map_err(|e| StoreError::io(entry.path().display(), e))?
                .flatten()
            {
                let file_name = file.file_name().to_string_lossy().into_owned();
                let id = file_name
                    .strip_suffix(".run")
                    .and_then(|s| s.parse::<u64>().ok());
                if id.is_none_or(|id| !live.contains(&id)) {
                    tracing::info!(file = %file.path().display(), "removing a run the manifest does not name");
                    fs::remove_file(file.path())
                        .map_err(|e| StoreError::io(file.path().display(), e))?;
                }
            }
        }
        Ok(())
    }
}

/// Days are stored as `YYYYMMDD` labels so the manifest reads well.
mod day_map {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        days: &BTreeMap<i64, Vec<u64>>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let labelled: BTreeMap<String, &Vec<u64>> =
            days.iter().map(|(d, ids)| (day_label(*d), ids)).collect();
        labelled.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<BTreeMap<i64, Vec<u64>>, D::Error> {
        let labelled = BTreeMap::<String, Vec<u64>>::deserialize(d)?;
        labelled
            .into_iter()
            .map(|(label, ids)| {
                parse_day_label(&label)
                    .map(|day| (day, ids))
                    .ok_or_else(|| serde::de::Error::custom(format!("bad day {label:?}")))
            })
            .collect()
    }
}
