//! For tests: the real AWS-written CloudTrail records of the shared data set, which sits
//! beside the repository rather than inside it.

use std::path::PathBuf;

use serde_json::value::RawValue;

/// Every shared AWS record, with the file it came from; `None` (and a note on stderr) when
/// the data set is not there.
pub fn shared_aws_records() -> Option<Vec<(PathBuf, Box<RawValue>)>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/stratus-red-team-detonation-logs");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: no shared records at {}", dir.display());
        return None;
    };
    let mut records = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_some_and(|e| e == "json") {
            let file: Vec<Box<RawValue>> =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            records.extend(file.into_iter().map(|record| (path.clone(), record)));
        }
    }
    Some(records)
}
