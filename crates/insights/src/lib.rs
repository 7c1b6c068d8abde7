//! CloudTrail Insights for Cairn: unusual API call volume and error rates.
//!
//! The [`Detector`] counts each account's and region's calls per API and minute: write
//! management calls make an `ApiCallRateInsight` series, failed calls one
//! `ApiErrorRateInsight` series per error code. Each minute's counts are compared with a
//! band learned from the same time of day on the days before (scaled by how busy the same
//! weekday was a week ago), at four window lengths so that sharp spikes are seen in a
//! minute and slow or thin ones within a quarter of an hour. A series leaves its band to
//! open an Insight and must stay inside it for a quarter of an hour to close it, so one
//! incident gives one Start/End pair.
//!
//! The crate does no I/O and reads no clock, so the server's journal and scans of log
//! files can drive the same code and get the same Insights; today [`quality`] drives it
//! with labelled synthetic traffic to score it.

mod attribution;
mod detector;
mod history;
pub mod quality;
mod record;
mod scopes;
mod series;
pub mod snapshot;
pub mod source;
pub mod trace;

pub use detector::{Call, Detector, MinuteCount, Params, Subject};
pub use history::SCALES;
pub use record::{Attribution, Insight, InsightKind, State};
pub use scopes::Scopes;
