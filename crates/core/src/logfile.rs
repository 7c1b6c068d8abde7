//! The contents of one file of CloudTrail records: a log file's `{"Records":[…]}` as AWS
//! delivers it, a JSON array of records, or NDJSON lines; gzip-compressed or not.

use std::io::Read;

use serde_json::value::RawValue;

/// Why a file's bytes are not CloudTrail records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(String);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

/// Text from a file's bytes, gunzipped when they are gzip.
pub fn text_of(bytes: Vec<u8>) -> Result<String, FormatError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .map_err(|e| FormatError(format!("not gzip-compressed text: {e}")))?;
        Ok(text)
    } else {
        String::from_utf8(bytes).map_err(|e| FormatError(format!("not UTF-8 text: {e}")))
    }
}

#[derive(serde::Deserialize)]
struct LogFile<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

/// The records of one file: a log file's `Records`, a JSON array, or NDJSON lines.
pub fn records_of(text: &str) -> Result<Vec<&RawValue>, FormatError> {
    let not_json = |e: serde_json::Error| FormatError(e.to_string());
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(text).map_err(not_json);
    }
    if let Ok(file) = serde_json::from_str::<LogFile<'_>>(text) {
        return Ok(file.records);
    }
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str::<&RawValue>(line).map_err(not_json))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(text: &str) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn texts(records: Vec<&RawValue>) -> Vec<&str> {
        records.into_iter().map(RawValue::get).collect()
    }

    #[test]
    fn each_shape_of_file_gives_its_records() {
        let log = text_of(gzip(r#"{"Records":[{"a":1},{"b":2}]}"#)).unwrap();
        assert_eq!(
            texts(records_of(&log).unwrap()),
            [r#"{"a":1}"#, r#"{"b":2}"#]
        );
        assert_eq!(texts(records_of(r#" [{"a":1}]"#).unwrap()), [r#"{"a":1}"#]);
        assert_eq!(
            texts(records_of("{\"a\":1}\n\n{\"b\":2}\n").unwrap()),
            [r#"{"a":1}"#, r#"{"b":2}"#]
        );
    }

    #[test]
    fn what_is_not_records_is_an_error() {
        assert!(text_of(vec![0xff, 0xfe]).is_err());
        assert!(text_of(vec![0x1f, 0x8b, 0]).is_err());
        assert!(records_of("{\"Records\":[1,").is_err());
        assert!(records_of("[1,").is_err());
    }
}
