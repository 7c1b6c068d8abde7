//! The detector's state as bytes, so that a restart goes on from where it stopped instead
//! of learning a day afresh: a format number, a CRC-32 of the body, and the body in
//! postcard (compact, and exact for the floats the bands and callers hold).

/// The body's layout; a snapshot of another layout is refused.
pub const FORMAT: u32 = 1;
const HEADER: usize = 8;

/// Frames `body` with the format and its checksum.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The body of a framed snapshot, once its format and checksum check out.
pub fn unframe(bytes: &[u8]) -> Result<&[u8], String> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
    };
    let (Some(format), Some(crc)) = (word(0), word(4)) else {
        return Err("too short".into());
    };
    if format != FORMAT {
        return Err(format!("format {format}, this build reads {FORMAT}"));
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
        let framed = frame(b"body");
        assert_eq!(unframe(&framed), Ok(&b"body"[..]));
        let mut flipped = framed.clone();
        flipped[HEADER + 1] ^= 1;
        assert_eq!(unframe(&flipped), Err("checksum mismatch".into()));
        let mut other = framed.clone();
        other[0] = 9;
        assert!(unframe(&other).unwrap_err().starts_with("format 9"));
        assert!(unframe(&framed[..5]).is_err());
    }
}
