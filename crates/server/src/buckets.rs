//! Buckets: where trails write their files. By default a bucket `B` is the directory
//! `<data_dir>/buckets/B` (it exists when the directory does); with an `[s3]` section every
//! bucket lives on that S3-compatible endpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, ObjectStoreExt, PutOptions, PutPayload,
    RetryConfig,
};

use crate::config::S3Settings;

/// An object's user metadata (S3's `x-amz-meta-*`), by name without the prefix.
pub type Metadata = BTreeMap<String, String>;

/// Why a bucket operation failed. `code` is the S3 error code GetTrailStatus reports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BucketError {
    pub code: &'static str,
    pub message: String,
}

impl BucketError {
    fn no_such_bucket(bucket: &str) -> Self {
        BucketError {
            code: "NoSuchBucket",
            message: format!("bucket {bucket} does not exist"),
        }
    }

    fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        BucketError {
            code: "InternalError",
            message: format!("{what}: {e}"),
        }
    }
}

pub struct Buckets {
    backend: Backend,
}

enum Backend {
    Local(PathBuf),
    S3 {
        settings: S3Settings,
        clients: Mutex<HashMap<String, Arc<AmazonS3>>>,
    },
}

/// Keys are `/`-separated; no segment may be empty, `.` or `..` (a local bucket must not
/// be escaped).
fn check_key(key: &str) -> Result<(), BucketError> {
    let bad = key.is_empty()
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        || key.contains('\0');
    if bad {
        return Err(BucketError {
            code: "InvalidKey",
            message: format!("{key:?} is not a valid object key"),
        });
    }
    Ok(())
}

impl Buckets {
    pub fn local(root: PathBuf) -> Buckets {
        Buckets {
            backend: Backend::Local(root),
        }
    }

    pub fn s3(settings: S3Settings) -> Buckets {
        Buckets {
            backend: Backend::S3 {
                settings,
                clients: Mutex::new(HashMap::new()),
            },
        }
    }

    /// Creates a local bucket (its directory). On S3, buckets are created there.
    pub fn create_local(&self, bucket: &str) -> Result<(), BucketError> {
        match &self.backend {
            Backend::Local(root) => {
                let dir = root.join(bucket);
                std::fs::create_dir_all(&dir).map_err(|e| BucketError::io(dir.display(), e))
            }
            Backend::S3 { .. } => Err(BucketError {
                code: "NotSupported",
                message: "buckets on an S3 endpoint are created there".into(),
            }),
        }
    }

    fn client(&self, bucket: &str) -> Result<Arc<AmazonS3>, BucketError> {
        let Backend::S3 { settings, clients } = &self.backend else {
            unreachable!("client() is only called for the S3 backend")
        };
        let mut clients = clients.lock().expect("clients lock");
        if let Some(client) = clients.get(bucket) {
            return Ok(client.clone());
        }
        // Retry little here: delivery has its own retry loop and must notice an outage.
        let retry = RetryConfig {
            max_retries: 1,
            retry_timeout: Duration::from_secs(5),
            ..RetryConfig::default()
        };
        let client = AmazonS3Builder::new()
            .with_endpoint(&settings.endpoint)
            .with_region(&settings.region)
            .with_bucket_name(bucket)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key)
            .with_virtual_hosted_style_request(settings.virtual_hosted_style)
            .with_allow_http(true)
            .with_retry(retry)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(true)
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_timeout(Duration::from_secs(60)),
            )
            .build()
            .map_err(|e| BucketError {
                code: "InvalidConfiguration",
                message: e.to_string(),
            })?;
        let client = Arc::new(client);
        clients.insert(bucket.to_owned(), client.clone());
        Ok(client)
    }

    pub async fn exists(&self, bucket: &str) -> Result<bool, BucketError> {
        match &self.backend {
            Backend::Local(root) => Ok(root.join(bucket).is_dir()),
            Backend::S3 { .. } => {
                let client = self.client(bucket)?;
                let probe = object_store::path::Path::from("AWSLogs");
                match client.list_with_delimiter(Some(&probe)).await {
                    Ok(_) => Ok(true),
                    Err(e) => match s3_error(bucket, e) {
                        e if e.code == "NoSuchBucket" => Ok(false),
                        e => Err(e),
                    },
                }
            }
        }
    }

    /// Writes an object; once this returns, the object is durable and readable.
    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), BucketError> {
        self.put_with_metadata(bucket, key, bytes, Metadata::new())
            .await
    }

    /// Writes an object with user metadata. On S3 the metadata travels as `x-amz-meta-*`;
    /// in a local bucket it is kept beside the object, in `.<name>.metadata.json`.
    pub async fn put_with_metadata(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        metadata: Metadata,
    ) -> Result<(), BucketError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(root) => {
                let dir = root.join(bucket);
                let key = key.to_owned();
                tokio::task::spawn_blocking(move || {
                    if !metadata.is_empty() {
                        let json = serde_json::to_vec(&metadata).expect("metadata serializes");
                        put_local(&dir, &metadata_key(&key), &json)?;
                    }
                    put_local(&dir, &key, &bytes)
                })
                .await
                .map_err(|e| BucketError::io("writing an object", std::io::Error::other(e)))?
            }
            Backend::S3 { .. } => {
                let client = self.client(bucket)?;
                let path = object_store::path::Path::from(key);
                let mut attributes = Attributes::new();
                for (name, value) in metadata {
                    attributes.insert(Attribute::Metadata(name.into()), value.into());
                }
                let options = PutOptions {
                    attributes,
                    ..PutOptions::default()
                };
                client
                    .put_opts(&path, PutPayload::from(bytes), options)
                    .await
                    .map(drop)
                    .map_err(|e| s3_error(bucket, e))
            }
        }
    }

    /// Every key in the bucket that starts with `prefix` (a `/`-separated folder path).
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, BucketError> {
        match &self.backend {
            Backend::Local(root) => {
                let dir = root.join(bucket);
                if !dir.is_dir() {
                    return Err(BucketError::no_such_bucket(bucket));
                }
                let mut keys = Vec::new();
                let mut stack = vec![dir.join(prefix.trim_end_matches('/'))];
                while let Some(at) = stack.pop() {
                    let Ok(entries) = std::fs::read_dir(&at) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let path = entry.path();
                        let hidden = entry.file_name().to_string_lossy().starts_with('.');
                        if path.is_dir() {
                            stack.push(path);
                        } else if let (false, Ok(key)) = (hidden, path.strip_prefix(&dir)) {
                            keys.push(key.to_string_lossy().into_owned());
                        }
                    }
                }
                keys.sort();
                Ok(keys)
            }
            Backend::S3 { .. } => {
                use futures_util::TryStreamExt;
                let client = self.client(bucket)?;
                let prefix = object_store::path::Path::from(prefix);
                let objects: Vec<object_store::ObjectMeta> = client
                    .list(Some(&prefix))
                    .try_collect()
                    .await
                    .map_err(|e| s3_error(bucket, e))?;
                Ok(objects
                    .into_iter()
                    .map(|o| o.location.to_string())
                    .collect())
            }
        }
    }

    /// Reads an object; `None` when there is none.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, BucketError> {
        Ok(self
            .get_with_metadata(bucket, key)
            .await?
            .map(|(bytes, _)| bytes))
    }

    /// Reads an object and its user metadata; `None` when there is no object.
    pub async fn get_with_metadata(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(Vec<u8>, Metadata)>, BucketError> {
        check_key(key)?;
        match &self.backend {
            Backend::Local(root) => {
                let dir = root.join(bucket);
                if !dir.is_dir() {
                    return Err(BucketError::no_such_bucket(bucket));
                }
                let bytes = match std::fs::read(dir.join(key)) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(BucketError::io(key, e)),
                };
                let metadata = match std::fs::read(dir.join(metadata_key(key))) {
                    Ok(json) => serde_json::from_slice(&json).unwrap_or_default(),
                    Err(_) => Metadata::new(),
                };
                Ok(Some((bytes, metadata)))
            }
            Backend::S3 { .. } => {
                let client = self.client(bucket)?;
                let path = object_store::path::Path::from(key);
                match client.get(&path).await {
                    Ok(result) => {
                        let metadata = result
                            .attributes
                            .iter()
                            .filter_map(|(attribute, value)| match attribute {
                                Attribute::Metadata(name) => {
                                    Some((name.to_string(), value.to_string()))
                                }
                                _ => None,
                            })
                            .collect();
                        let bytes = result.bytes().await.map_err(|e| s3_error(bucket, e))?;
                        Ok(Some((bytes.to_vec(), metadata)))
                    }
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(s3_error(bucket, e)),
                }
            }
        }
    }
}

/// Where a local bucket keeps an object's metadata: a hidden file beside it.
pub fn metadata_key(key: &str) -> String {
    match key.rsplit_once('/') {
        Some((folder, name)) => format!("{folder}/.{name}.metadata.json"),
        None => format!(".{key}.metadata.json"),
    }
}

/// Writes `dir/key` so that it appears whole or not at all, and survives a crash once this
/// returns: a temporary file, fsync, rename, fsync of the directory.
fn put_local(dir: &Path, key: &str, bytes: &[u8]) -> Result<(), BucketError> {
    use std::io::Write;
    if !dir.is_dir() {
        return Err(BucketError::no_such_bucket(
            &dir.file_name().unwrap_or_default().to_string_lossy(),
        ));
    }
    let path = dir.join(key);
    let parent = path.parent().expect("a key has a parent directory");
    create_dirs_durably(dir, parent)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = parent.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(|e| BucketError::io(tmp.display(), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| BucketError::io(tmp.display(), e))?;
    std::fs::rename(&tmp, &path).map_err(|e| BucketError::io(path.display(), e))?;
    sync_dir(parent)
}

/// Creates the directories from `base` down to `dir`, syncing each new entry's parent.
fn create_dirs_durably(base: &Path, dir: &Path) -> Result<(), BucketError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().expect("below the bucket");
    if parent != base {
        create_dirs_durably(base, parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(BucketError::io(dir.display(), e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), BucketError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BucketError::io(dir.display(), e))
}

/// The S3 error codes a status reports as S3 answered them.
const S3_CODES: &[&str] = &[
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InternalError",
    "SlowDown",
    "ServiceUnavailable",
    "RequestTimeout",
];

/// Maps an object_store error to the S3 error code behind it.
fn s3_error(bucket: &str, error: object_store::Error) -> BucketError {
    let message = error.to_string();
    // An error answer's body (which object_store keeps in the message) names its code.
    let answered = S3_CODES
        .iter()
        .find(|code| message.contains(&format!("<Code>{code}</Code>")));
    let code = if let Some(code) = answered {
        code
    } else if message.contains("NoSuchBucket") {
        "NoSuchBucket"
    } else if message.contains("AccessDenied") || message.contains("403") {
        "AccessDenied"
    } else if message.contains("InvalidAccessKeyId") {
        "InvalidAccessKeyId"
    } else if message.contains("SignatureDoesNotMatch") {
        "SignatureDoesNotMatch"
    } else {
        // Connection refused, timeouts and 5xx answers: the endpoint is not there.
        "ServiceUnavailable"
    };
    BucketError {
        code,
        message: format!("bucket {bucket}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(body: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: format!("Server returned non-2xx status code: 503: {body}").into(),
        }
    }

    #[test]
    fn a_status_names_the_code_s3_answered() {
        let slow = answered("<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>");
        assert_eq!(s3_error("b", slow).code, "SlowDown");
        let internal = answered("<Error><Code>InternalError</Code></Error>");
        assert_eq!(s3_error("b", internal).code, "InternalError");
        // No answer, or one without a code: the endpoint is not there.
        assert_eq!(s3_error("b", answered("")).code, "ServiceUnavailable");
        let unknown = answered("<Error><Code>Teapot</Code></Error>");
        assert_eq!(s3_error("b", unknown).code, "ServiceUnavailable");
    }

    #[tokio::test]
    async fn local_buckets_are_directories() {
        let dir = tempfile::tempdir().unwrap();
        let buckets = Buckets::local(dir.path().to_owned());
        assert!(!buckets.exists("logs").await.unwrap());
        let missing = buckets.put("logs", "a/b.json.gz", b"x".to_vec()).await;
        assert_eq!(missing.unwrap_err().code, "NoSuchBucket");
        buckets.create_local("logs").unwrap();
        assert!(buckets.exists("logs").await.unwrap());
        buckets
            .put("logs", "AWSLogs/1/CloudTrail/r/f.json.gz", b"one".to_vec())
            .await
            .unwrap();
        buckets
            .put("logs", "AWSLogs/1/CloudTrail/r/f.json.gz", b"two".to_vec())
            .await
            .unwrap();
        assert_eq!(
            buckets
                .get("logs", "AWSLogs/1/CloudTrail/r/f.json.gz")
                .await
                .unwrap(),
            Some(b"two".to_vec())
        );
        assert_eq!(buckets.get("logs", "AWSLogs/none").await.unwrap(), None);
        for bad in ["../escape", "a//b", "", "a/./b"] {
            assert_eq!(
                buckets.put("logs", bad, Vec::new()).await.unwrap_err().code,
                "InvalidKey"
            );
        }
        // No temporary file is left behind, and listing finds the object.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("logs/AWSLogs/1/CloudTrail/r"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["f.json.gz".to_owned()]);
        assert_eq!(
            buckets.list("logs", "AWSLogs/").await.unwrap(),
            vec!["AWSLogs/1/CloudTrail/r/f.json.gz".to_owned()]
        );
        assert!(buckets.list("logs", "Other/").await.unwrap().is_empty());

        // Metadata is kept beside the object, out of listings.
        let signed = Metadata::from([("signature".to_owned(), "ab12".to_owned())]);
        buckets
            .put_with_metadata("logs", "AWSLogs/1/d.json.gz", b"d".to_vec(), signed.clone())
            .await
            .unwrap();
        let (bytes, metadata) = buckets
            .get_with_metadata("logs", "AWSLogs/1/d.json.gz")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((bytes, metadata), (b"d".to_vec(), signed));
        assert_eq!(buckets.list("logs", "AWSLogs/").await.unwrap().len(), 2);
        let (_, none) = buckets
            .get_with_metadata("logs", "AWSLogs/1/CloudTrail/r/f.json.gz")
            .await
            .unwrap()
            .unwrap();
        assert!(none.is_empty());
    }
}
