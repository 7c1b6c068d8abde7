//! Digest signing keys. Each region has its own RSA-2048 key pair, made on first need and
//! replaced on a schedule. The private half is PKCS#8 in
//! `<data_dir>/keys/<region>/<fingerprint>.p8` (mode 0600, directory 0700) and goes
//! nowhere else: not into logs, responses or error messages. The public half and its
//! validity window are in the metadata store under `keys/<region>/…`, where
//! `ListPublicKeys` finds them.
//!
//! A key is valid for the rotation period from its creation; its successor is made one
//! thirtieth of a period before it expires (a day, for the default 30 days), so windows
//! overlap and every digest is signed inside its key's window.

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use cairn_store::{Change, MetaStore, StoreError};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "keys/";

/// A public key as `ListPublicKeys` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub fingerprint: String,
    /// DER-encoded PKCS#1 `RSAPublicKey`.
    #[serde(with = "base64_bytes")]
    pub der: Vec<u8>,
    /// Validity window, epoch seconds.
    pub start: i64,
    pub end: i64,
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

impl PublicKey {
    /// `ListPublicKeys`'s entry.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "Value": base64::engine::general_purpose::STANDARD.encode(&self.der),
            "ValidityStartTime": self.start,
            "ValidityEndTime": self.end,
            "Fingerprint": self.fingerprint,
        })
    }
}

/// A key pair that signs digests. Deliberately not `Debug`.
pub struct Signer {
    public: PublicKey,
    pair: KeyPair,
}

impl Signer {
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The SHA256withRSA signature of `message`, as lowercase hex.
    pub fn sign(&self, message: &[u8]) -> Result<String, String> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
            .map_err(|_| format!("signing with key {} failed", self.public.fingerprint))?;
        Ok(hex::encode(signature))
    }
}

pub struct Keys {
    dir: PathBuf,
    rotation: i64,
    /// Loaded signers by fingerprint; the lock also keeps two callers from both making a
    /// region's next key.
    loaded: Mutex<HashMap<String, Arc<Signer>>>,
}

impl Keys {
    pub fn new(data_dir: &Path, rotation_secs: i64) -> Keys {
        Keys {
            dir: data_dir.join("keys"),
            rotation: rotation_secs.max(1),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// How long before a key expires its successor takes over.
    fn overlap(&self) -> i64 {
        self.rotation / 30
    }

    /// The key that signs in `region` at `now`: the region's newest key while it is not
    /// due for rotation, else a new one.
    pub fn signer(&self, meta: &MetaStore, region: &str, now: i64) -> Result<Arc<Signer>, String> {
        // Regions name directories and metadata keys here; records may carry any text.
        if !crate::config::valid_region(region) {
            return Err(format!("no signing key can be made for region {region:?}"));
        }
        let mut loaded = self.loaded.lock().expect("keys lock");
        let current = public_keys(meta, region)
            .into_iter()
            .rev()
            .find(|k| k.start <= now && now < k.end - self.overlap());
        if let Some(key) = current {
            if let Some(signer) = loaded.get(&key.fingerprint) {
                return Ok(signer.clone());
            }
            let signer = Arc::new(self.load(region, key)?);
            loaded.insert(signer.public.fingerprint.clone(), signer.clone());
            return Ok(signer);
        }
        let signer = Arc::new(self.create(meta, region, now)?);
        loaded.insert(signer.public.fingerprint.clone(), signer.clone());
        Ok(signer)
    }

    fn key_path(&self, region: &str, fingerprint: &str) -> PathBuf {
        self.dir.join(region).join(format!("{fingerprint}.p8"))
    }

    fn load(&self, region: &str, public: PublicKey) -> Result<Signer, String> {
        let path = self.key_path(region, &public.fingerprint);
        let pkcs8 = std::fs::read(&path).map_err(|e| {
            format!(
                "the private key of {} ({region}) cannot be read: {e}",
                public.fingerprint
            )
        })?;
        let pair = KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| format!("the private key of {} is damaged", public.fingerprint))?;
        if pair.public_key().as_ref() != public.der.as_slice() {
            return Err(format!(
                "the private key file of {} does not match its public key",
                public.fingerprint
            ));
        }
        Ok(Signer { public, pair })
    }

    /// Makes a key pair, writes its private half durably, then publishes its public half.
    fn create(&self, meta: &MetaStore, region: &str, now: i64) -> Result<Signer, String> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| "generating an RSA key pair failed".to_owned())?;
        let der = pair.public_key().as_ref().to_vec();
        let public = PublicKey {
            fingerprint: cairn_core::digest::fingerprint(&der),
            der,
            start: now,
            end: now + self.rotation,
        };
        let pkcs8 = pair
            .as_der()
            .map_err(|_| "encoding the private key failed".to_owned())?;
        let dir = self.dir.join(region);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        write_private(&self.key_path(region, &public.fingerprint), pkcs8.as_ref())?;
        let entry = format!(
            "{PREFIX}{region}/{:012}-{}",
            public.start, public.fingerprint
        );
        let value = serde_json::to_value(&public).expect("public keys serialize");
        meta.update(|_| Ok::<_, StoreError>((vec![Change::Put(entry, value)], ())))
            .map_err(|e| format!("recording the new public key: {e}"))?;
        tracing::info!(%region, fingerprint = %public.fingerprint, "made a new digest signing key");
        Ok(Signer { public, pair })
    }
}

/// Writes a private key readable by its owner only, durably.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    cairn_store::fsutil::write_atomic_mode(path, bytes, 0o600).map_err(|e| e.to_string())
}

/// A region's public keys, oldest first.
pub fn public_keys(meta: &MetaStore, region: &str) -> Vec<PublicKey> {
    meta.scan(&format!("{PREFIX}{region}/"))
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_value(v).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_once_rotate_with_overlap_and_sign_verifiably() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(&dir.path().join("meta")).unwrap();
        let day = 86_400;
        let keys = Keys::new(dir.path(), 30 * day);
        let first = keys.signer(&meta, "us-east-1", 1_000).unwrap();
        let again = keys.signer(&meta, "us-east-1", 1_000 + 28 * day).unwrap();
        assert_eq!(first.public().fingerprint, again.public().fingerprint);
        assert_eq!(first.public().der.len(), 270);
        // A day before expiry the successor signs; the windows overlap by that day.
        let next = keys.signer(&meta, "us-east-1", 1_000 + 29 * day).unwrap();
        assert_ne!(first.public().fingerprint, next.public().fingerprint);
        assert!(next.public().start < first.public().end);
        assert_eq!(public_keys(&meta, "us-east-1").len(), 2);
        assert!(public_keys(&meta, "eu-west-1").is_empty());
        // A region from a record that would escape its directory gets no key.
        assert!(keys.signer(&meta, "us-east-1/x", 1_000).is_err());
        assert!(keys.signer(&meta, "../up", 1_000).is_err());

        // The private key is private, and a fresh process signs with the same key.
        let path = keys.key_path("us-east-1", &first.public().fingerprint);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let reopened = Keys::new(dir.path(), 30 * day);
        let loaded = reopened
            .signer(&meta, "us-east-1", 1_000 + 29 * day)
            .unwrap();
        assert_eq!(loaded.public().fingerprint, next.public().fingerprint);

        let signature = loaded.sign(b"to sign").unwrap();
        let raw = hex::decode(&signature).unwrap();
        assert!(cairn_core::digest::verify(
            &loaded.public().der,
            b"to sign",
            &raw
        ));
        assert!(!cairn_core::digest::verify(
            &first.public().der,
            b"to sign",
            &raw
        ));
        assert!(!cairn_core::digest::verify(
            &loaded.public().der,
            b"to sigN",
            &raw
        ));
    }

    use std::os::unix::fs::PermissionsExt;
}
