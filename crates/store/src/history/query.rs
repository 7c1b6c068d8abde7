//! A LookupEvents query as the store sees it, and the candidates sources return.

use cairn_core::{IndexFields, LookupKey, View};

/// A position in the history's newest-first order: events strictly older than it come next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub time: i64,
    pub seq: u64,
}

#[derive(Clone, Debug)]
pub struct LookupQuery {
    pub account: String,
    pub region: String,
    /// Insights events instead of management events.
    pub insights: bool,
    /// Inclusive bounds, epoch seconds.
    pub start: i64,
    pub end: i64,
    pub attribute: Option<(LookupKey, String)>,
    /// Resume after this position (exclusive).
    pub after: Option<Cursor>,
    /// How many events to return at most.
    pub limit: usize,
}

/// One event found by a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub cursor: Cursor,
    pub record: Vec<u8>,
}

/// Which memtable or run a candidate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// An in-memory event; the candidate carries its record.
    Memory,
    /// The n-th run of the lookup's run list.
    Run(usize),
}

#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub time: i64,
    pub seq: u64,
    pub source: Source,
    pub ord: u32,
    pub record: Option<Vec<u8>>,
}

impl Candidate {
    pub fn key(&self) -> Cursor {
        Cursor {
            time: self.time,
            seq: self.seq,
        }
    }
}

/// Group kind stored in runs: each LookupEvents view is kept apart.
pub(crate) fn kind_of(fields: &IndexFields) -> u8 {
    fields.view() as u8
}

impl LookupQuery {
    pub(crate) fn kind(&self) -> u8 {
        if self.insights {
            View::Insight as u8
        } else {
            View::Management as u8
        }
    }

    /// Whether the event is before the cursor in newest-first order.
    pub(crate) fn after_cursor(&self, time: i64, seq: u64) -> bool {
        self.after.is_none_or(|c| Cursor { time, seq } < c)
    }

    /// The full test, used where there is no index (the memtable).
    pub(crate) fn admits(&self, fields: &IndexFields, seq: u64) -> bool {
        fields.time >= self.start
            && fields.time <= self.end
            && kind_of(fields) == self.kind()
            && fields.account == self.account
            && fields.region == self.region
            && self.after_cursor(fields.time, seq)
            && self
                .attribute
                .as_ref()
                .is_none_or(|(key, value)| fields.matches(*key, value))
    }
}
