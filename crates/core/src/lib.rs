//! Cairn's event model: CloudTrail records, the identities that make API calls, and the
//! fields the event history indexes. This crate does no I/O, so every format rule here is
//! testable in isolation and shared by the server, the store and the command-line tools.

pub mod digest;
pub mod identity;
pub mod index;
pub mod json;
pub mod layout;
pub mod logfile;
pub mod record;
pub mod route;
pub mod selectors;
pub mod summary;
#[cfg(any(test, feature = "testdata"))]
pub mod testdata;
pub mod timefmt;

pub use identity::{Identity, IdentityKind};
pub use index::{Category, IndexError, IndexFields, LookupKey, View};
pub use record::{ApiCall, ApiCallRecord, RecordResource, EVENT_VERSION};
