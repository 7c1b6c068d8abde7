//! One detector per account and region, each with its own clock. Calls from different
//! regions do not arrive in one time order (a scan reads a bucket region by region; a
//! producer may send a region's backlog late), so each scope closes its minutes by its own
//! calls' eventTimes, and by the wall clock only once it has been idle for a while.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::detector::{Call, Detector, Params};
use crate::record::Insight;
use crate::snapshot;

/// The layout of a snapshot's body; a snapshot of another layout is refused.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Scope {
    detector: Detector,
    /// Wall-clock seconds when the scope last observed a call (not kept in a snapshot).
    #[serde(skip)]
    last_seen: i64,
}

pub struct Scopes {
    params: Params,
    /// By `account\nregion`, which orders the scopes' Insights.
    scopes: BTreeMap<Box<str>, Scope>,
    key: String,
}

impl Scopes {
    pub fn new(params: Params) -> Self {
        Scopes {
            params,
            scopes: BTreeMap::new(),
            key: String::new(),
        }
    }

    /// Counts `weight` calls like `call`, observed at wall-clock second `wall` (for a scan,
    /// the call's own time). A late call does not make its scope busy.
    pub fn observe(&mut self, call: &Call, weight: u32, wall: i64) {
        self.key.clear();
        self.key.push_str(call.account);
        self.key.push('\n');
        self.key.push_str(call.region);
        if !self.scopes.contains_key(self.key.as_str()) {
            let scope = Scope {
                detector: Detector::new(self.params.clone()),
                last_seen: wall,
            };
            self.scopes.insert(self.key.as_str().into(), scope);
        }
        let scope = self.scopes.get_mut(self.key.as_str()).expect("added above");
        if scope.detector.observe(call, weight) {
            scope.last_seen = wall;
        }
    }

    /// Closes, in every scope that has observed nothing for `idle_secs` of wall time, the
    /// minutes up to `now` less the reordering allowance.
    pub fn close_idle(&mut self, now: i64, idle_secs: i64) {
        let through = now.div_euclid(60) - self.params.reorder_minutes - 1;
        for scope in self.scopes.values_mut() {
            if now - scope.last_seen >= idle_secs {
                scope.detector.close_through(through);
            }
        }
    }

    /// Closes every minute that has calls waiting, in every scope.
    pub fn flush(&mut self) {
        for scope in self.scopes.values_mut() {
            scope.detector.flush();
        }
    }

    /// The Insights events decided so far: per scope in order, scopes by account and region.
    pub fn take(&mut self) -> Vec<Insight> {
        self.scopes
            .values_mut()
            .flat_map(|scope| scope.detector.take())
            .collect()
    }

    /// The counts of the minutes closed so far, per scope in order of minute.
    pub fn take_counts(&mut self) -> Vec<crate::MinuteCount> {
        self.scopes
            .values_mut()
            .flat_map(|scope| scope.detector.take_counts())
            .collect()
    }

    /// The watched series' minutes closed so far, scope by scope.
    pub fn take_traces(&mut self) -> Vec<crate::trace::Trace> {
        self.scopes
            .values_mut()
            .flat_map(|scope| scope.detector.take_traces())
            .collect()
    }

    /// Every scope's state as bytes, for [`restore`](Self::restore). Insights decided but
    /// not yet taken are not in it.
    pub fn snapshot(&self) -> Vec<u8> {
        let body = postcard::to_allocvec(&self.scopes).expect("the detector serializes");
        snapshot::frame(FORMAT, &body)
    }

    /// Scopes as a [`snapshot`](Self::snapshot) left them, with `params`. Each scope
    /// counts as having seen a call at wall-clock `now`, so callers resending what they
    /// could not send while the snapshot's owner was down are not late.
    pub fn restore(params: Params, bytes: &[u8], now: i64) -> Result<Self, String> {
        let body = snapshot::unframe(FORMAT, bytes)?;
        let saved: BTreeMap<Box<str>, Scope> =
            postcard::from_bytes(body).map_err(|e| format!("undecodable: {e}"))?;
        let mut scopes = BTreeMap::new();
        for (key, scope) in saved {
            let detector = scope.detector.restored(params.clone())?;
            scopes.insert(
                key,
                Scope {
                    detector,
                    last_seen: now,
                },
            );
        }
        Ok(Scopes {
            params,
            scopes,
            key: String::new(),
        })
    }

    /// Calls that arrived after their minute had closed, over every scope.
    pub fn late(&self) -> u64 {
        self.scopes.values().map(|s| s.detector.late()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::MINUTES_PER_DAY;
    use crate::record::State;

    fn call(region: &str, minute: i64) -> Call<'_> {
        Call {
            account: "111111111111",
            region,
            event_source: "ec2.amazonaws.com",
            event_name: "RunInstances",
            time: minute * 60,
            read_only: false,
            error_code: None,
            identity_arn: "arn:aws:iam::111111111111:user/ops",
            user_agent: "cli",
        }
    }

    /// Two days of 2 calls a minute with a burst of 50 a minute for five minutes.
    fn region_days(scopes: &mut Scopes, region: &str, wall: i64) {
        for minute in 0..2 * MINUTES_PER_DAY {
            let burst = (MINUTES_PER_DAY + 600..MINUTES_PER_DAY + 605).contains(&minute);
            scopes.observe(&call(region, minute), if burst { 50 } else { 2 }, wall);
        }
    }

    #[test]
    fn regions_read_one_after_the_other_each_find_their_insight() {
        let mut scopes = Scopes::new(Params::default());
        region_days(&mut scopes, "eu-west-1", 0);
        // A region read after the first is not late for the first's clock.
        region_days(&mut scopes, "us-east-1", 0);
        scopes.flush();
        let insights = scopes.take();
        let got: Vec<(&str, State, i64)> = insights
            .iter()
            .map(|i| (i.region.as_str(), i.state, i.time / 60))
            .collect();
        let start = MINUTES_PER_DAY + 600;
        assert_eq!(
            got,
            vec![
                ("eu-west-1", State::Start, start),
                ("eu-west-1", State::End, start + 5),
                ("us-east-1", State::Start, start),
                ("us-east-1", State::End, start + 5),
            ]
        );
        assert_eq!(scopes.late(), 0);
    }

    /// Two regions' two days with a burst of calls and failures, restored from a snapshot
    /// after minute `split` when given.
    fn two_regions(split: Option<i64>) -> Vec<Insight> {
        let mut scopes = Scopes::new(Params::default());
        let mut out = Vec::new();
        for minute in 0..2 * MINUTES_PER_DAY {
            let burst = (MINUTES_PER_DAY + 600..MINUTES_PER_DAY + 605).contains(&minute);
            for region in ["eu-west-1", "us-east-1"] {
                scopes.observe(&call(region, minute), if burst { 50 } else { 2 }, 0);
                if burst {
                    let denied = Call {
                        error_code: Some("AccessDenied"),
                        ..call(region, minute)
                    };
                    scopes.observe(&denied, 40, 0);
                }
            }
            if split == Some(minute) {
                out.extend(scopes.take());
                let bytes = scopes.snapshot();
                scopes = Scopes::restore(Params::default(), &bytes, 0).expect("restores");
            }
        }
        scopes.flush();
        out.extend(scopes.take());
        // Each take lists scope by scope: order by when each was decided.
        out.sort_by_key(|i| (i.decided_at, i.region.clone(), i.kind.clone()));
        out
    }

    #[test]
    fn a_restored_snapshot_goes_on_exactly_as_if_never_stopped() {
        let whole = two_regions(None);
        assert_eq!(whole.len(), 8, "{whole:#?}");
        // Before the burst, with minutes still open inside it, with Insights open, after.
        for split in [
            600,
            MINUTES_PER_DAY + 601,
            MINUTES_PER_DAY + 610,
            2 * MINUTES_PER_DAY - 5,
        ] {
            assert_eq!(
                two_regions(Some(split)),
                whole,
                "split after minute {split}"
            );
        }
    }

    #[test]
    fn a_damaged_snapshot_is_refused() {
        let mut scopes = Scopes::new(Params::default());
        scopes.observe(&call("eu-west-1", 1), 1, 0);
        let mut bytes = scopes.snapshot();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        assert!(Scopes::restore(Params::default(), &bytes, 0).is_err());
    }

    #[test]
    fn only_idle_scopes_close_by_the_clock() {
        let mut scopes = Scopes::new(Params::default());
        let now = 110 * 60;
        scopes.observe(&call("eu-west-1", 100), 1, now - 60);
        scopes.observe(&call("us-east-1", 100), 1, now - 10);
        // eu-west-1 has been idle for a minute, us-east-1 for ten seconds.
        scopes.close_idle(now, 30);
        scopes.observe(&call("eu-west-1", 101), 1, now);
        scopes.observe(&call("us-east-1", 101), 1, now);
        assert_eq!(scopes.late(), 1);
    }
}
