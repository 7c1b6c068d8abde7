//! Saved state as bytes (the detector's, so that a restart goes on from where it stopped
//! instead of learning a day afresh; the server's Insights metrics): a format number, a
//! CRC-32 of the body, and the body, in postcard (compact, and exact for the floats the
//! bands and callers hold).

const HEADER: usize = 8;

/// Frames `body`, of layout `format`, with the format and its checksum.
pub fn frame(format: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&format.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The body of framed state, once its format is `expected` and its checksum checks out.
pub fn unframe(expected: u32, bytes: &[u8]) -> Result<&[u8], String> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
    };
    let (Some(format), Some(crc)) = (word(0), word(4)) else {
        return Err("too short".into());
    };
    if format != expected {
        return Err(format!("format {format}, this build reads {expected}"));
    }
    let body = &bytes[HEADER..];
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(body)
}

/// Serde for arrays longer than serde's 32 elements, as sequences.
pub mod array {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(a: &[u32; N], s: S) -> Result<S::Ok, S::Error> {
        a.as_slice().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u32; N], D::Error> {
        let items = Vec::<u32>::deserialize(d)?;
        let len = items.len();
        items
            .try_into()
            .map_err(|_| D::Error::invalid_length(len, &"the array's length"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_or_format_is_refused() {
        let framed = frame(1, b"body");
        assert_eq!(unframe(1, &framed), Ok(&b"body"[..]));
        let mut flipped = framed.clone();
        flipped[HEADER + 1] ^= 1;
        assert_eq!(unframe(1, &flipped), Err("checksum mismatch".into()));
        let mut other = framed.clone();
        other[0] = 9;
        assert!(unframe(1, &other).unwrap_err().starts_with("format 9"));
        assert!(unframe(1, &framed[..5]).is_err());
    }
}
