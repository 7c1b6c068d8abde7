//! Where CloudTrail puts its files in a bucket:
//! `[prefix/]AWSLogs/[o-id/]<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz`.

use time::OffsetDateTime;

/// The 16 characters that keep two files of the same minute apart. Derived from what the
/// file holds, so that writing the same file again gives the same key.
pub fn unique_suffix(seed: &[u8]) -> String {
    // FNV-1a, twice with different offsets, mapped onto letters and digits.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let hash = |offset: u64| {
        seed.iter().fold(offset, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (mut a, mut b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4));
    (0..16)
        .map(|i| {
            let word = if i < 8 { &mut a } else { &mut b };
            let c = alphabet[(*word % 62) as usize];
            *word /= 62;
            char::from(c)
        })
        .collect()
}

/// Which kind of file: log files, or Insights files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    Log,
    Insight,
}

impl FileKind {
    fn folder(self) -> &'static str {
        match self {
            FileKind::Log => "CloudTrail",
            FileKind::Insight => "CloudTrail-Insight",
        }
    }
}

/// The folder every trail file sits under: `[prefix/]AWSLogs/[o-id/]`.
pub fn awslogs_root(prefix: Option<&str>, organization: Option<&str>) -> String {
    let mut key = String::with_capacity(160);
    if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
        key.push_str(prefix.trim_end_matches('/'));
        key.push('/');
    }
    key.push_str("AWSLogs/");
    if let Some(org) = organization {
        key.push_str(org);
        key.push('/');
    }
    key
}

/// Where a file delivered at `time` (epoch seconds) goes.
pub struct FileKey<'a> {
    pub prefix: Option<&'a str>,
    pub organization: Option<&'a str>,
    pub account: &'a str,
    pub region: &'a str,
    pub kind: FileKind,
    pub time: i64,
    pub unique: &'a str,
}

impl FileKey<'_> {
    pub fn render(&self) -> String {
        let t =
            OffsetDateTime::from_unix_timestamp(self.time).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (year, month, day) = (t.year(), u8::from(t.month()), t.day());
        let mut key = awslogs_root(self.prefix, self.organization);
        let folder = self.kind.folder();
        key.push_str(&format!(
            "{account}/{folder}/{region}/{year:04}/{month:02}/{day:02}/{account}_{folder}_{region}_{year:04}{month:02}{day:02}T{hour:02}{minute:02}Z_{unique}.json.gz",
            account = self.account,
            region = self.region,
            hour = t.hour(),
            minute = t.minute(),
            unique = self.unique,
        ));
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_aws_layout() {
        let key = FileKey {
            prefix: None,
            organization: None,
            account: "111122223333",
            region: "us-east-2",
            kind: FileKind::Log,
            time: 1_438_395_000, // 2015-08-01T02:10:00Z
            unique: "Mu0KsOhtH1ar15ZZ",
        };
        assert_eq!(
            key.render(),
            "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz"
        );
        let org = FileKey {
            prefix: Some("o-fxozgwu6rc"),
            organization: Some("o-fxozgwu6rc"),
            account: "123456789015",
            region: "ca-central-1",
            kind: FileKind::Insight,
            time: 1_600_838_160, // 2020-09-23T05:16:00Z
            unique: "KL5e9VCV2SS7IqzB",
        };
        assert_eq!(
            org.render(),
            "o-fxozgwu6rc/AWSLogs/o-fxozgwu6rc/123456789015/CloudTrail-Insight/ca-central-1/2020/09/23/123456789015_CloudTrail-Insight_ca-central-1_20200923T0516Z_KL5e9VCV2SS7IqzB.json.gz"
        );
    }

    #[test]
    fn suffixes_are_stable_and_distinct() {
        let a = unique_suffix(b"trail-a/1-100");
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(a, unique_suffix(b"trail-a/1-100"));
        assert_ne!(a, unique_suffix(b"trail-a/1-101"));
    }
}
