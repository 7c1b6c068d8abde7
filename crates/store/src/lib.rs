//! Cairn's storage: a durable, group-committed event journal and the 90-day event
//! history that answers LookupEvents.
//!
//! Every event takes one path: [`Store::append`] hands it to a single writer thread that
//! frames concurrent callers' events into one journal write, fsyncs it, makes the events
//! visible to the history, and only then acknowledges them. The history keeps recent
//! events in memory and writes them, per UTC day, into immutable compressed *runs*; a
//! manifest names the live runs and how far into the journal they reach, so a restart
//! replays exactly the journal tail the runs do not hold. The on-disk formats and the
//! crash analysis are in `ARCHITECTURE.md` at the repository root.

mod error;
pub mod fsutil;
pub mod history;
mod history_only;
pub mod journal;
pub mod logs;
pub mod meta;
mod store;
mod varint;

pub use error::{StoreError, StoreErrorKind};
pub use history::{Cursor, Hit, LookupQuery};
pub use meta::{Change, MetaStore};
pub use store::{Appended, Event, Store, StoreOptions, StoreStats};
