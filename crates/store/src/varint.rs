//! LEB128 unsigned varints, used for delta-encoded posting lists.

pub fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads one varint at `*pos`, advancing it; `None` on truncated or overlong input.
pub fn get(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_refuses_truncation() {
        let values = [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX];
        let mut out = Vec::new();
        for v in values {
            super::put(&mut out, v);
        }
        let mut pos = 0;
        for v in values {
            assert_eq!(super::get(&out, &mut pos), Some(v));
        }
        assert_eq!(super::get(&out, &mut pos), None);
        let mut pos = 0;
        assert_eq!(super::get(&[0x80, 0x80], &mut pos), None);
    }
}
