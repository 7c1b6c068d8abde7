//! A Bloom filter over a run's (account, eventID) hashes, kept in memory so that checking
//! an incoming event for a duplicate costs no read for the runs that cannot hold it.

/// Bits per key: with 7 probes, about a 1% false-positive rate.
const BITS_PER_KEY: usize = 10;
const PROBES: u64 = 7;

pub(crate) struct Bloom {
    words: Vec<u64>,
}

impl Bloom {
    pub fn build(hashes: &[u64]) -> Bloom {
        let bits = (hashes.len() * BITS_PER_KEY).max(64);
        let mut bloom = Bloom {
            words: vec![0; bits.div_ceil(64)],
        };
        for &h in hashes {
            for bit in bloom.probes(h) {
                bloom.words[bit / 64] |= 1 << (bit % 64);
            }
        }
        bloom
    }

    fn probes(&self, h: u64) -> impl Iterator<Item = usize> {
        let bits = (self.words.len() * 64) as u64;
        // Double hashing: the second hash is derived from the first's high half.
        let step = h.rotate_left(32) | 1;
        (0..PROBES).map(move |i| (h.wrapping_add(i.wrapping_mul(step)) % bits) as usize)
    }

    pub fn may_contain(&self, h: u64) -> bool {
        self.probes(h)
            .all(|bit| self.words[bit / 64] & (1 << (bit % 64)) != 0)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Bloom> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
            return None;
        }
        let words = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Some(Bloom { words })
    }

    pub fn memory_bytes(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let keys: Vec<u64> = (0..10_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let bloom = Bloom::from_bytes(&Bloom::build(&keys).to_bytes()).unwrap();
        assert!(keys.iter().all(|k| bloom.may_contain(*k)));
        let false_positives = (10_000..110_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .filter(|k| bloom.may_contain(*k))
            .count();
        assert!(false_positives < 2_000, "{false_positives} of 100000");
    }
}
