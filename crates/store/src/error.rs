//! The store's one error type. It is cloneable because one failed group commit answers
//! every caller whose events were in it.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The disk is full: nothing was written, and writing resumes when space returns.
    DiskFull,
    /// Any other I/O failure.
    Io,
    /// A stored file failed its checksum or framing; the message names the file and offset.
    Corrupt,
    /// The store is shutting down.
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    pub fn corrupt(message: impl Into<String>) -> Self {
        StoreError {
            kind: StoreErrorKind::Corrupt,
            message: message.into(),
        }
    }

    pub fn closed() -> Self {
        StoreError {
            kind: StoreErrorKind::Closed,
            message: "the store is shutting down".into(),
        }
    }

    /// Wraps an I/O error with what was being done, keeping a full disk recognisable.
    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        let kind =
            if err.kind() == std::io::ErrorKind::StorageFull || err.raw_os_error() == Some(28) {
                StoreErrorKind::DiskFull
            } else {
                StoreErrorKind::Io
            };
        StoreError {
            kind,
            message: format!("{context}: {err}"),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

pub type Result<T> = std::result::Result<T, StoreError>;
