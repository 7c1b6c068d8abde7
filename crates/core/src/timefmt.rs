//! CloudTrail's time formats: `eventTime` is `YYYY-MM-DDTHH:MM:SSZ` in UTC, without fractions.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

const EVENT_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
/// `EVENT_TIME` without its `Z`, for parsing without a copy.
const EVENT_TIME_BODY: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

const COMPACT: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// Seconds in a UTC day; the event history is partitioned by it.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// Formats epoch seconds as a CloudTrail `eventTime`.
pub fn format_event_time(epoch_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .ok()
        .and_then(|t| t.format(EVENT_TIME).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses a CloudTrail `eventTime` into epoch seconds. Fractional seconds, which some
/// producers add, are accepted and dropped.
pub fn parse_event_time(text: &str) -> Option<i64> {
    // Called for every record delivered and ingested: no allocation.
    let body = text.trim().strip_suffix('Z')?;
    let base = match body.find('.') {
        Some(dot) => {
            let fraction = &body[dot + 1..];
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            &body[..dot]
        }
        None => body,
    };
    PrimitiveDateTime::parse(base, EVENT_TIME_BODY)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// Formats epoch seconds as `YYYYMMDDTHHMMSSZ`: SigV4's `X-Amz-Date`, and the date in
/// digest file names.
pub fn format_compact(epoch_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .ok()
        .and_then(|t| t.format(COMPACT).ok())
        .unwrap_or_else(|| "19700101T000000Z".to_owned())
}

/// Parses `YYYYMMDDTHHMMSSZ` into epoch seconds.
pub fn parse_compact(text: &str) -> Option<i64> {
    PrimitiveDateTime::parse(text, COMPACT)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// The UTC day number (days since 1970-01-01) of an epoch second.
pub fn day_of(epoch_seconds: i64) -> i64 {
    epoch_seconds.div_euclid(SECONDS_PER_DAY)
}

/// `YYYYMMDD` for a day number, used to name history partitions.
pub fn day_label(day: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(day * SECONDS_PER_DAY)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Parses a `YYYYMMDD` partition label back into a day number.
pub fn parse_day_label(label: &str) -> Option<i64> {
    if label.len() != 8 || !label.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let text = format!("{}-{}-{}T00:00:00Z", &label[..4], &label[4..6], &label[6..]);
    parse_event_time(&text).map(day_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_round_trips() {
        let t = parse_event_time("2025-03-04T17:22:09Z").unwrap();
        assert_eq!(t, 1_741_108_929);
        assert_eq!(format_event_time(t), "2025-03-04T17:22:09Z");
        assert_eq!(format_compact(t), "20250304T172209Z");
        assert_eq!(parse_compact("20250304T172209Z"), Some(t));
        assert_eq!(parse_compact("20250304T1722Z"), None);
    }

    #[test]
    fn fractional_seconds_are_dropped() {
        assert_eq!(
            parse_event_time("2025-03-04T17:22:09.123Z"),
            parse_event_time("2025-03-04T17:22:09Z")
        );
        assert_eq!(parse_event_time("2025-03-04T17:22:09.Z"), None);
    }

    #[test]
    fn bad_times_are_refused() {
        for bad in [
            "",
            "2025-03-04",
            "2025-13-04T00:00:00Z",
            "2025-03-04T17:22:09+01:00",
        ] {
            assert_eq!(parse_event_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn day_labels_round_trip() {
        let day = day_of(parse_event_time("2024-02-29T23:59:59Z").unwrap());
        assert_eq!(day_label(day), "20240229");
        assert_eq!(parse_day_label("20240229"), Some(day));
        assert_eq!(parse_day_label("2024022"), None);
    }
}
