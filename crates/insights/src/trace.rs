//! Traces: what the detector saw and allowed, minute by minute, for the series a person
//! asks about, so a plot can show why an Insight fired (or why none did).

use crate::detector::Subject;
use crate::history::SCALES;

/// Which series to trace. Fields left `None` match any value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Watch {
    pub account: Option<String>,
    pub region: Option<String>,
    pub event_source: String,
    pub event_name: String,
    /// `false` for the call-rate series, `true` for error-rate series.
    pub errors: bool,
    /// With `errors`: only this error code's series.
    pub error_code: Option<String>,
}

impl Watch {
    pub fn matches(&self, subject: &Subject) -> bool {
        let either =
            |wanted: &Option<String>, value: &str| wanted.as_deref().is_none_or(|w| w == value);
        subject.event_source == self.event_source
            && subject.event_name == self.event_name
            && either(&self.account, &subject.account)
            && either(&self.region, &subject.region)
            && match &subject.error_code {
                None => !self.errors,
                Some(code) => self.errors && either(&self.error_code, code),
            }
    }
}

/// One closed minute of a traced series.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Epoch minute.
    pub minute: i64,
    /// Calls counted in the minute.
    pub count: u32,
    /// Per window length ([`SCALES`]): the calls in the window ending with this minute.
    pub sums: [u64; SCALES.len()],
    /// Per window length: the largest such window seen around this time on the days
    /// before (the band's top).
    pub usual: [f64; SCALES.len()],
    /// Per window length: above this an Insight opens. `None` while the account and region
    /// are still learning, or nothing was observed at this time of day before.
    pub limit: Option<[f64; SCALES.len()]>,
    /// Whether an Insight was open after this minute.
    pub open: bool,
}

/// A traced series and its minutes, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub subject: Subject,
    pub points: Vec<Point>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(error_code: Option<&str>) -> Subject {
        Subject {
            account: "111111111111".into(),
            region: "eu-west-1".into(),
            event_source: "ec2.amazonaws.com".into(),
            event_name: "RunInstances".into(),
            error_code: error_code.map(Into::into),
        }
    }

    #[test]
    fn a_watch_matches_by_api_kind_and_what_it_names() {
        let calls = Watch {
            event_source: "ec2.amazonaws.com".into(),
            event_name: "RunInstances".into(),
            ..Watch::default()
        };
        assert!(calls.matches(&subject(None)));
        assert!(!calls.matches(&subject(Some("AccessDenied"))));
        let errors = Watch {
            errors: true,
            ..calls.clone()
        };
        assert!(errors.matches(&subject(Some("AccessDenied"))));
        assert!(!errors.matches(&subject(None)));
        let throttling = Watch {
            error_code: Some("Throttling".into()),
            ..errors
        };
        assert!(!throttling.matches(&subject(Some("AccessDenied"))));
        let elsewhere = Watch {
            region: Some("us-east-1".into()),
            ..calls.clone()
        };
        assert!(!elsewhere.matches(&subject(None)));
        let other_api = Watch {
            event_name: "StopInstances".into(),
            ..calls
        };
        assert!(!other_api.matches(&subject(None)));
    }
}
