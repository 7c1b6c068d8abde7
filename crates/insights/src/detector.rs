//! The detector: calls in, Insights events out. Calls are counted per minute (a minute
//! stays open for late arrivals for `reorder_minutes`), then every series steps through
//! each closed minute, active or not, so quiet minutes count as the zeros they are.

use std::collections::BTreeMap;

// Seeded per map, and several times faster than SipHash on the short keys each call looks
// up (its API, identity and user agent, and the minute's counters).
use foldhash::{HashMap, HashMapExt};

use serde::{Deserialize, Serialize};

use crate::attribution::{Attribute, Tally};
use crate::history::MINUTES_PER_DAY;
use crate::record::{Attribution, Insight, InsightKind, State};
use crate::series::{Change, Open, Series, Thresholds};
use crate::trace::{Point, Trace, Watch};

/// One API call, as much of it as Insights reads.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub event_source: &'a str,
    pub event_name: &'a str,
    /// Epoch seconds.
    pub time: i64,
    pub read_only: bool,
    pub error_code: Option<&'a str>,
    pub identity_arn: &'a str,
    pub user_agent: &'a str,
}

#[derive(Clone, Debug)]
pub struct Params {
    pub thresholds: Thresholds,
    /// Minutes an account and region are observed before their first Insight can open.
    pub learning_minutes: i64,
    /// Minutes a minute stays open for calls that arrive out of order.
    pub reorder_minutes: i64,
    /// Whether closed minutes' counts are kept for [`Detector::take_counts`].
    pub keep_counts: bool,
    /// Series whose every minute is kept for [`Detector::take_traces`].
    pub watch: Option<Watch>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            thresholds: Thresholds::default(),
            learning_minutes: MINUTES_PER_DAY,
            reorder_minutes: 2,
            keep_counts: false,
            watch: None,
        }
    }
}

/// Minutes without calls after which the past is all zeros (the history holds a week and
/// three hours; a day more for margin).
const SILENCE_FORGOTTEN: i64 = 8 * MINUTES_PER_DAY;

/// Entries shown per attribution list, as AWS does.
const TOP: usize = 5;
/// The errorCode attribution's value for calls that did not fail.
const NO_ERROR: &str = "null";

/// Writes the key an API is found by: account, region, event source and name.
fn api_key(key: &mut String, parts: [&str; 4]) {
    key.clear();
    for part in parts {
        key.push_str(part);
        key.push('\n');
    }
}

#[derive(Serialize, Deserialize)]
struct Api {
    account: u32,
    region: u32,
    /// Index of the API's account and region in `Detector::since`.
    scope: usize,
    source: u32,
    name: u32,
    calls: Option<usize>,
    errors: Vec<(u32, usize)>,
}

#[derive(Serialize, Deserialize)]
struct SeriesInfo {
    api: usize,
    /// The error code of an error-rate series.
    error: Option<u32>,
}

#[derive(Default, Serialize, Deserialize)]
struct Minute {
    counts: HashMap<usize, u32>,
    callers: HashMap<(usize, Attribute, u32), u32>,
}

impl Minute {
    /// Counts `weight` calls on `series`, and on each of the callers' attribute values.
    fn add(&mut self, series: usize, callers: &[(Attribute, u32)], weight: u32) {
        *self.counts.entry(series).or_default() += weight;
        for &(attribute, value) in callers {
            *self.callers.entry((series, attribute, value)).or_default() += weight;
        }
    }
}

/// One series: an account and region's API, and the error code of an
/// `ApiErrorRateInsight` series (none for `ApiCallRateInsight`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subject {
    pub account: String,
    pub region: String,
    pub event_source: String,
    pub event_name: String,
    pub error_code: Option<String>,
}

/// What a series counted in one closed minute (only minutes with calls are given).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MinuteCount {
    pub subject: Subject,
    /// Epoch minute.
    pub minute: i64,
    pub count: u32,
}

/// A snapshot holds every field but the parameters (the configuration's), the lookups
/// rebuilt from what they index, scratch space, and Insights not yet taken.
#[derive(Default, Serialize, Deserialize)]
pub struct Detector {
    #[serde(skip)]
    params: Params,
    strings: Vec<Box<str>>,
    #[serde(skip)]
    string_ids: HashMap<Box<str>, u32>,
    apis: Vec<Api>,
    #[serde(skip)]
    api_ids: HashMap<Box<str>, usize>,
    #[serde(skip)]
    key: String,
    series: Vec<Series>,
    info: Vec<SeriesInfo>,
    /// Per (account, region), its index into `since`: the first minute observed.
    scopes: HashMap<(u32, u32), usize>,
    since: Vec<i64>,
    /// The interned `NO_ERROR`.
    no_error: u32,
    /// Per series, this minute's count while a minute closes.
    #[serde(skip)]
    counts: Vec<u32>,
    closed: Option<i64>,
    /// The last closed minute that had calls.
    last_calls: i64,
    pending: BTreeMap<i64, Minute>,
    #[serde(skip)]
    out: Vec<Insight>,
    /// Closed minutes' counts not yet taken: (series, minute, count).
    #[serde(skip)]
    counted: Vec<(usize, i64, u32)>,
    /// Per watched series, its minutes not yet taken.
    #[serde(skip)]
    traced: BTreeMap<usize, Vec<Point>>,
    late: u64,
}

impl Detector {
    pub fn new(params: Params) -> Self {
        let mut detector = Detector {
            params,
            ..Default::default()
        };
        detector.no_error = detector.intern(NO_ERROR);
        detector
    }

    /// A detector read from a snapshot, with `params`: checks that every index points
    /// inside what it indexes (so a damaged snapshot is refused, not a panic later) and
    /// rebuilds the lookups.
    pub(crate) fn restored(mut self, params: Params) -> Result<Self, String> {
        let strings = self.strings.len();
        let string = |id: u32| (id as usize) < strings;
        let series = self.series.len();
        let apis_ok = self.apis.iter().all(|api| {
            [api.account, api.region, api.source, api.name]
                .into_iter()
                .all(string)
                && api.scope < self.since.len()
                && api.calls.is_none_or(|s| s < series)
                && api
                    .errors
                    .iter()
                    .all(|&(code, s)| string(code) && s < series)
        });
        let info_ok = self.info.len() == series
            && self
                .info
                .iter()
                .all(|i| i.api < self.apis.len() && i.error.is_none_or(string));
        let pending_ok = self.pending.values().all(|minute| {
            minute.counts.keys().all(|&s| s < series)
                && minute
                    .callers
                    .keys()
                    .all(|&(s, _, value)| s < series && string(value))
        });
        let series_ok = self.series.iter().all(|s| {
            let open = s.open.iter().flat_map(|open| open.tallies());
            s.is_whole()
                && s.usual.iter().chain(open).all(|t| t.values().all(string))
                && s.minute_callers.iter().all(|&(_, value, _)| string(value))
        });
        let scopes_ok = self.scopes.values().all(|&i| i < self.since.len());
        if !(apis_ok && info_ok && pending_ok && series_ok && scopes_ok && string(self.no_error)) {
            return Err("an index points outside the detector's tables".into());
        }
        self.params = params;
        self.string_ids = (0u32..)
            .zip(&self.strings)
            .map(|(id, text)| (text.clone(), id))
            .collect();
        let mut api_ids = HashMap::with_capacity(self.apis.len());
        let mut key = String::new();
        for (index, api) in self.apis.iter().enumerate() {
            let name = |id: u32| &*self.strings[id as usize];
            let parts = [api.account, api.region, api.source, api.name].map(name);
            api_key(&mut key, parts);
            api_ids.insert(key.as_str().into(), index);
        }
        self.api_ids = api_ids;
        for series in 0..self.series.len() {
            self.watch_if_asked(series);
        }
        Ok(self)
    }

    /// Counts `weight` calls like `call`. A call for a minute already closed is counted as
    /// late and otherwise ignored: then this returns false.
    pub fn observe(&mut self, call: &Call, weight: u32) -> bool {
        let minute = call.time.div_euclid(60);
        match self.closed {
            Some(closed) if minute <= closed => {
                self.late += u64::from(weight);
                return false;
            }
            None => {
                self.closed = Some(minute - 1);
                self.last_calls = minute - 1;
            }
            Some(_) => {}
        }
        self.close_through(minute - self.params.reorder_minutes - 1);
        let api = self.api(call, minute);
        let error = call.error_code.map(|code| self.intern(code));
        if call.read_only && error.is_none() {
            return true; // a read that succeeded feeds no series
        }
        let callers = [
            (Attribute::UserIdentityArn, self.intern(call.identity_arn)),
            (Attribute::UserAgent, self.intern(call.user_agent)),
        ];
        let calls = (!call.read_only).then(|| self.call_series(api));
        let errors = error.map(|code| self.error_series(api, code));
        let slot = self.pending.entry(minute).or_default();
        if let Some(series) = calls {
            let error = (Attribute::ErrorCode, error.unwrap_or(self.no_error));
            slot.add(series, &[callers[0], callers[1], error], weight);
        }
        if let Some(series) = errors {
            slot.add(series, &callers, weight);
        }
        true
    }

    /// Closes every minute up to and including `minute`.
    pub fn close_through(&mut self, minute: i64) {
        let Some(mut closed) = self.closed else {
            return;
        };
        while closed < minute {
            // After more than a week without calls every series holds only zeros: skip to
            // the next minute with calls instead of stepping through the silence (a gap in
            // scanned logs, or a call stamped years ahead), and learn afresh from there.
            let next = self.pending.keys().next().copied().unwrap_or(minute);
            if closed - self.last_calls >= SILENCE_FORGOTTEN && next > closed + 1 {
                closed = next.min(minute) - 1;
                for since in &mut self.since {
                    *since = closed + 1;
                }
            }
            closed += 1;
            self.close(closed);
        }
        self.closed = Some(closed);
    }

    /// Closes every minute that has calls waiting.
    pub fn flush(&mut self) {
        if let Some(&last) = self.pending.keys().next_back() {
            self.close_through(last);
        }
    }

    /// The Insights events decided so far, in order.
    pub fn take(&mut self) -> Vec<Insight> {
        std::mem::take(&mut self.out)
    }

    /// The counts of the minutes closed so far, in order of minute.
    pub fn take_counts(&mut self) -> Vec<MinuteCount> {
        let counted = std::mem::take(&mut self.counted);
        counted
            .into_iter()
            .map(|(series, minute, count)| MinuteCount {
                subject: self.subject(series),
                minute,
                count,
            })
            .collect()
    }

    /// The watched series' minutes closed so far (see [`Params::watch`]), by series.
    pub fn take_traces(&mut self) -> Vec<Trace> {
        let watched: Vec<usize> = self.traced.keys().copied().collect();
        watched
            .into_iter()
            .map(|series| Trace {
                subject: self.subject(series),
                points: std::mem::take(self.traced.get_mut(&series).expect("watched")),
            })
            .collect()
    }

    fn subject(&self, series: usize) -> Subject {
        let name = |id: u32| self.strings[id as usize].to_string();
        let info = &self.info[series];
        let api = &self.apis[info.api];
        Subject {
            account: name(api.account),
            region: name(api.region),
            event_source: name(api.source),
            event_name: name(api.name),
            error_code: info.error.map(name),
        }
    }

    /// Starts tracing `series` if the parameters watch it.
    fn watch_if_asked(&mut self, series: usize) {
        if let Some(watch) = &self.params.watch {
            if watch.matches(&self.subject(series)) {
                self.traced.entry(series).or_default();
            }
        }
    }

    /// Calls that arrived after their minute had closed.
    pub fn late(&self) -> u64 {
        self.late
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Bytes held, roughly: every series' history and callers, and the names.
    pub fn bytes(&self) -> usize {
        let series: usize = self.series.iter().map(Series::bytes).sum();
        let names: usize = self.strings.iter().map(|s| 2 * s.len() + 48).sum();
        let apis = self.api_ids.keys().map(|k| k.len() + 64).sum::<usize>();
        series + names + apis
    }

    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.string_ids.get(text) {
            return id;
        }
        let id = u32::try_from(self.strings.len()).expect("fewer than 2^32 names");
        self.strings.push(text.into());
        self.string_ids.insert(text.into(), id);
        id
    }

    /// The API of `call`, added (with its account and region) if it is new.
    fn api(&mut self, call: &Call, minute: i64) -> usize {
        let parts = [
            call.account,
            call.region,
            call.event_source,
            call.event_name,
        ];
        api_key(&mut self.key, parts);
        if let Some(&api) = self.api_ids.get(self.key.as_str()) {
            return api;
        }
        let (account, region) = (self.intern(call.account), self.intern(call.region));
        let scope = *self.scopes.entry((account, region)).or_insert_with(|| {
            self.since.push(minute);
            self.since.len() - 1
        });
        let api = Api {
            account,
            region,
            scope,
            source: self.intern(call.event_source),
            name: self.intern(call.event_name),
            calls: None,
            errors: Vec::new(),
        };
        self.apis.push(api);
        self.api_ids
            .insert(self.key.as_str().into(), self.apis.len() - 1);
        self.apis.len() - 1
    }

    fn add_series(&mut self, api: usize, error: Option<u32>) -> usize {
        self.series.push(Series::default());
        self.info.push(SeriesInfo { api, error });
        let series = self.series.len() - 1;
        self.watch_if_asked(series);
        series
    }

    fn call_series(&mut self, api: usize) -> usize {
        if let Some(series) = self.apis[api].calls {
            return series;
        }
        let series = self.add_series(api, None);
        self.apis[api].calls = Some(series);
        series
    }

    fn error_series(&mut self, api: usize, code: u32) -> usize {
        if let Some(&(_, series)) = self.apis[api].errors.iter().find(|(c, _)| *c == code) {
            return series;
        }
        let series = self.add_series(api, Some(code));
        self.apis[api].errors.push((code, series));
        series
    }

    fn close(&mut self, t: i64) {
        let minute = self.pending.remove(&t).unwrap_or_default();
        if !minute.counts.is_empty() {
            self.last_calls = t;
        }
        for ((series, attribute, value), n) in minute.callers {
            self.series[series]
                .minute_callers
                .push((attribute, value, n));
        }
        self.counts.resize(self.series.len(), 0);
        for (&series, &count) in &minute.counts {
            self.counts[series] = count;
            if self.params.keep_counts {
                self.counted.push((series, t, count));
            }
        }
        for index in 0..self.series.len() {
            let since = self.since[self.apis[self.info[index].api].scope];
            let eligible = t - since >= self.params.learning_minutes;
            let count = std::mem::take(&mut self.counts[index]);
            let change =
                self.series[index].step(t, count, since, eligible, &self.params.thresholds);
            if let Some(points) = self.traced.get_mut(&index) {
                points.push(self.series[index].point(t, count));
            }
            let insight = match change {
                None => continue,
                Some(Change::Started) => {
                    let open = self.series[index].open.as_ref().expect("just opened");
                    self.insight(index, open, State::Start, t)
                }
                Some(Change::Ended(open)) => self.insight(index, &open, State::End, t),
            };
            self.out.push(insight);
        }
    }

    /// The Start or End event of `open`, decided when minute `decided_at` closed. A Start
    /// covers the first minute; an End the whole Insight.
    fn insight(&self, index: usize, open: &Open, state: State, decided_at: i64) -> Insight {
        let (time, duration) = match state {
            State::Start => (open.start, 1),
            State::End => (open.end(), open.end() - open.start),
        };
        let info = &self.info[index];
        let api = &self.apis[info.api];
        let series = &self.series[index];
        let name = |id: u32| self.strings[id as usize].to_string();
        let kind = match info.error {
            None => InsightKind::ApiCallRate,
            Some(code) => InsightKind::ApiErrorRate {
                error_code: name(code),
            },
        };
        let attributes: &[Attribute] = match info.error {
            None => &Attribute::ALL,
            Some(_) => &Attribute::ALL[..2],
        };
        let averaged = |tally: &Tally, minutes: f64| -> Vec<(String, f64)> {
            if minutes <= 0.0 {
                return Vec::new();
            }
            tally
                .top(TOP)
                .into_iter()
                .map(|(value, count)| (name(value), count / minutes))
                .collect()
        };
        let attributions = attributes
            .iter()
            .map(|&attribute| Attribution {
                attribute: attribute.name(),
                insight: averaged(&open.callers[attribute.index()], duration as f64),
                baseline: averaged(&series.usual[attribute.index()], series.usual_minutes),
            })
            .collect();
        Insight {
            account: name(api.account),
            region: name(api.region),
            event_source: name(api.source),
            event_name: name(api.name),
            kind,
            state,
            time: time * 60,
            started: open.start * 60,
            baseline_average: open.band.baseline_average(),
            insight_average: open.total as f64 / duration as f64,
            insight_duration: duration,
            baseline_duration: open.band.baseline_minutes,
            attributions,
            decided_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(time: i64, error: Option<&str>) -> Call<'_> {
        Call {
            account: "111111111111",
            region: "us-east-1",
            event_source: "ec2.amazonaws.com",
            event_name: "TerminateInstances",
            time,
            read_only: false,
            error_code: error,
            identity_arn: "arn:aws:iam::111111111111:role/app",
            user_agent: "aws-cli/2.15",
        }
    }

    /// Two days of 3 calls a minute, then a burst of 60 a minute for ten minutes.
    fn burst_after_two_days(detector: &mut Detector) {
        let day = MINUTES_PER_DAY;
        for minute in 0..2 * day + 60 {
            let burst = (2 * day + 20..2 * day + 30).contains(&minute);
            detector.observe(&call(minute * 60, None), if burst { 60 } else { 3 });
        }
        detector.flush();
    }

    #[test]
    fn a_burst_opens_and_closes_one_insight() {
        let mut detector = Detector::new(Params::default());
        burst_after_two_days(&mut detector);
        let insights = detector.take();
        assert_eq!(insights.len(), 2, "{insights:#?}");
        let (start, end) = (&insights[0], &insights[1]);
        assert_eq!(start.state, State::Start);
        assert_eq!(start.time, (2 * MINUTES_PER_DAY + 20) * 60);
        assert_eq!(start.insight_average, 60.0);
        assert_eq!(start.kind, InsightKind::ApiCallRate);
        assert_eq!(end.state, State::End);
        assert_eq!(end.time, (2 * MINUTES_PER_DAY + 30) * 60);
        assert_eq!(end.insight_duration, 10);
        assert_eq!(end.insight_average, 60.0);
        assert_eq!(start.shared_event_id(), end.shared_event_id());
        assert!((start.baseline_average - 3.0).abs() < 0.01);
        assert_eq!(start.baseline_duration, MINUTES_PER_DAY);
        let identities = &end.attributions[0];
        assert_eq!(identities.attribute, "userIdentityArn");
        assert_eq!(identities.insight[0].1, 60.0);
        let errors = &end.attributions[2];
        assert_eq!(errors.insight[0].0, "null");
    }

    #[test]
    fn a_watched_series_shows_each_minute_against_its_limits() {
        let watch = Watch {
            event_source: "ec2.amazonaws.com".into(),
            event_name: "TerminateInstances".into(),
            ..Watch::default()
        };
        let params = Params {
            watch: Some(watch.clone()),
            ..Params::default()
        };
        let mut detector = Detector::new(params);
        burst_after_two_days(&mut detector);
        let traces = detector.take_traces();
        assert_eq!(traces.len(), 1);
        let points = &traces[0].points;
        let day = MINUTES_PER_DAY;
        let minutes: Vec<i64> = points.iter().map(|p| p.minute).collect();
        assert_eq!(minutes, (0..2 * day + 60).collect::<Vec<_>>());
        assert!(
            points[..day as usize].iter().all(|p| p.limit.is_none()),
            "learning"
        );
        let before = &points[(2 * day + 19) as usize];
        let burst = &points[(2 * day + 20) as usize];
        let limit = before.limit.expect("learned");
        assert!(limit[0] > 3.0 && limit[0] < 60.0, "{limit:?}");
        assert_eq!((before.count, before.sums[1], before.open), (3, 15, false));
        assert_eq!(before.usual[0], 3.0);
        assert_eq!((burst.count, burst.sums[0], burst.open), (60, 60, true));
        let after = &points[(2 * day + 59) as usize];
        assert!(!after.open, "the Insight ended");
        assert!(detector.take_traces()[0].points.is_empty(), "taken once");

        let elsewhere = Params {
            watch: Some(Watch {
                errors: true,
                ..watch
            }),
            ..Params::default()
        };
        let mut detector = Detector::new(elsewhere);
        burst_after_two_days(&mut detector);
        assert!(detector.take_traces().is_empty(), "no error series");
    }

    #[test]
    fn nothing_opens_while_the_scope_learns() {
        // The burst that opens an Insight after two days (above) opens none while the
        // account and region are still within their learning minutes.
        let params = Params {
            learning_minutes: 3 * MINUTES_PER_DAY,
            ..Params::default()
        };
        let mut detector = Detector::new(params);
        burst_after_two_days(&mut detector);
        assert!(detector.take().is_empty());
    }

    #[test]
    fn a_wall_of_errors_opens_an_error_rate_insight() {
        let mut detector = Detector::new(Params::default());
        let day = MINUTES_PER_DAY;
        for minute in 0..2 * day + 60 {
            detector.observe(&call(minute * 60, None), 3);
            if (2 * day..2 * day + 10).contains(&minute) {
                // Failed reads: no call-rate series, only the error's.
                let denied = Call {
                    read_only: true,
                    ..call(minute * 60 + 5, Some("AccessDenied"))
                };
                detector.observe(&denied, 30);
            }
        }
        detector.flush();
        let insights = detector.take();
        assert_eq!(insights.len(), 2, "{insights:#?}");
        let errors = &insights;
        assert_eq!(
            errors[0].kind,
            InsightKind::ApiErrorRate {
                error_code: "AccessDenied".into()
            }
        );
        assert_eq!(errors[1].attributions.len(), 2, "no errorCode attribution");
    }

    #[test]
    fn a_call_years_ahead_skips_the_silence_and_learns_afresh() {
        let mut detector = Detector::new(Params::default());
        for minute in 0..2 * MINUTES_PER_DAY {
            detector.observe(&call(minute * 60, None), 3);
        }
        let years = 3 * 365 * MINUTES_PER_DAY;
        detector.observe(&call(years * 60, None), 500);
        detector.observe(&call((years + 10) * 60, None), 500);
        detector.flush();
        assert!(
            detector.take().is_empty(),
            "nothing learned yet after the gap"
        );
    }

    #[test]
    fn closed_minutes_give_their_counts_per_series_once() {
        let params = Params {
            keep_counts: true,
            ..Params::default()
        };
        let mut detector = Detector::new(params);
        detector.observe(&call(600, None), 2);
        detector.observe(&call(610, Some("Throttling")), 1);
        assert!(detector.take_counts().is_empty());
        // Minute 10 closes once a call is more than the reorder window past it.
        detector.observe(&call(13 * 60, None), 4);
        let mut counts = detector.take_counts();
        counts.sort();
        let count = |error: Option<&str>, minute: i64, count: u32| MinuteCount {
            subject: Subject {
                account: "111111111111".into(),
                region: "us-east-1".into(),
                event_source: "ec2.amazonaws.com".into(),
                event_name: "TerminateInstances".into(),
                error_code: error.map(Into::into),
            },
            minute,
            count,
        };
        // A failed write counts on the call rate and on its error's series.
        assert_eq!(
            counts,
            vec![count(None, 10, 3), count(Some("Throttling"), 10, 1)]
        );
        detector.flush();
        assert_eq!(
            detector.take_counts(),
            vec![count(None, 13, 4)],
            "quiet minutes give nothing"
        );
        assert!(detector.take_counts().is_empty());
        let mut quiet = Detector::new(Params::default());
        quiet.observe(&call(600, None), 2);
        quiet.flush();
        assert!(
            quiet.take_counts().is_empty(),
            "only when asked to keep them"
        );
    }

    #[test]
    fn calls_out_of_order_within_the_reorder_window_count() {
        let mut detector = Detector::new(Params::default());
        detector.observe(&call(600, None), 1);
        detector.observe(&call(720, None), 1);
        detector.observe(&call(659, None), 1);
        assert_eq!(detector.late(), 0);
        detector.observe(&call(60 * 60, None), 1);
        detector.observe(&call(720, None), 1);
        detector.observe(&call(599, None), 1);
        assert_eq!(detector.late(), 2);
    }
}
