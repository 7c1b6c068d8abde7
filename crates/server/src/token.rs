//! Pagination tokens: a position in the newest-first order plus a fingerprint of the
//! query it belongs to, authenticated with a per-installation key so that a forged,
//! altered or mismatched token is refused rather than silently misread.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use cairn_store::Cursor;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const BODY_LEN: usize = 1 + 8 + 8 + 8;

pub struct TokenKey([u8; 32]);

impl TokenKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        TokenKey(bytes)
    }

    /// Loads the key from `path`, creating it (mode 0600) on first use.
    pub fn load_or_create(path: &std::path::Path) -> std::io::Result<TokenKey> {
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() == 32 => {
                Ok(TokenKey(bytes.try_into().expect("length checked")))
            }
            Ok(_) => Err(std::io::Error::other(format!(
                "{} is not a 32-byte key",
                path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                crate::config::write_private(path, &key)?;
                Ok(TokenKey(key))
            }
            Err(e) => Err(e),
        }
    }

    fn mac(&self, body: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(body);
        mac.finalize().into_bytes()[..MAC_LEN]
            .try_into()
            .expect("truncated to MAC_LEN")
    }

    /// A token resuming after `cursor` for the query whose parameters are `fingerprint`.
    pub fn issue(&self, cursor: Cursor, fingerprint: &[u8]) -> String {
        let mut body = Vec::with_capacity(BODY_LEN + MAC_LEN);
        body.push(VERSION);
        body.extend_from_slice(&cursor.time.to_be_bytes());
        body.extend_from_slice(&cursor.seq.to_be_bytes());
        body.extend_from_slice(&query_hash(fingerprint));
        let mac = self.mac(&body);
        body.extend_from_slice(&mac);
        hex::encode(body)
    }

    /// The cursor in `token`, if it is genuine and was issued for this query.
    pub fn open(&self, token: &str, fingerprint: &[u8]) -> Option<Cursor> {
        let bytes = hex::decode(token).ok()?;
        if bytes.len() != BODY_LEN + MAC_LEN || bytes[0] != VERSION {
            return None;
        }
        let (body, mac) = bytes.split_at(BODY_LEN);
        if !bool::from(self.mac(body).ct_eq(mac)) || body[17..25] != query_hash(fingerprint) {
            return None;
        }
        Some(Cursor {
            time: i64::from_be_bytes(body[1..9].try_into().ok()?),
            seq: u64::from_be_bytes(body[9..17].try_into().ok()?),
        })
    }
}

fn query_hash(fingerprint: &[u8]) -> [u8; 8] {
    Sha256::digest(fingerprint)[..8]
        .try_into()
        .expect("8 of 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let key = TokenKey::new([7; 32]);
        let cursor = Cursor {
            time: 1_700_000_000,
            seq: 42,
        };
        let token = key.issue(cursor, b"query-a");
        assert_eq!(key.open(&token, b"query-a"), Some(cursor));
        assert_eq!(key.open(&token, b"query-b"), None, "another query's token");
        let mut altered = token.clone().into_bytes();
        altered[20] = if altered[20] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            key.open(std::str::from_utf8(&altered).unwrap(), b"query-a"),
            None
        );
        assert_eq!(key.open("not hex", b"query-a"), None);
        assert_eq!(
            TokenKey::new([8; 32]).open(&token, b"query-a"),
            None,
            "another installation's token"
        );
    }
}
