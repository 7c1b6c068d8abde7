//! Crash-safe file replacement: write a temporary file, fsync it, rename it over the
//! target, fsync the directory. A crash leaves either the old file or the new one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o666)
}

/// [`write_atomic`] with the new file created with `mode` (before the umask), so a
/// private file is never readable by others, not even while it is being written.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| StoreError::io(tmp.display(), e))?;
    file.write_all(bytes)
        .map_err(|e| StoreError::io(tmp.display(), e))?;
    file.sync_all()
        .map_err(|e| StoreError::io(tmp.display(), e))?;
    fs::rename(&tmp, path).map_err(|e| StoreError::io(path.display(), e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// A file's bytes, or `None` when there is no such file.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path.display(), e)),
    }
}

/// A JSON file's value, or `None` when there is no such file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    read_optional(path)?
        .map(|bytes| serde_json::from_slice(&bytes))
        .transpose()
        .map_err(|e| StoreError::corrupt(format!("{}: {e}", path.display())))
}

/// The per-day files in `dir` named `<day label><suffix>` (`2026-11-20.log`), oldest
/// first; none when `dir` does not exist.
pub fn day_files(dir: &Path, suffix: &str) -> Result<Vec<(i64, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir.display(), e)),
    };
    let mut days = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir.display(), e))?;
        let name = entry.file_name();
        let day = name
            .to_str()
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(cairn_core::timefmt::parse_day_label);
        if let Some(day) = day {
            days.push((day, entry.path()));
        }
    }
    days.sort();
    Ok(days)
}

/// Writes `value` as JSON with [`write_atomic`].
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &serde_json::to_vec(value).expect("state serializes"))
}

/// Cuts a file to `len` bytes and makes that durable (a torn tail goes).
pub fn cut(path: &Path, len: u64) -> Result<()> {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io(path.display(), e))?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::io(path.display(), e))
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir.display(), e))
}

pub fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir.display(), e))
}
