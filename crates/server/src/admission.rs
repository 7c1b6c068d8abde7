//! Backpressure: a ceiling on the request bodies held in memory at once.
//!
//! Every request is admitted for its declared length (or the largest allowed body, when it
//! declares none) before its body is read, and holds that share until it is answered.
//! When callers send faster than events can be made durable, answers slow, shares stay
//! taken, and further requests are refused with `ThrottlingException` (their bodies read
//! and dropped), which AWS SDKs retry with backoff. Memory stays bounded however many
//! callers there are, and nothing refused was acknowledged.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Shares are counted in KiB so that a semaphore's `u32` covers terabytes.
const UNIT: usize = 1024;

pub struct Admission {
    shares: Arc<Semaphore>,
    capacity: u32,
}

/// A request's share; given back when dropped.
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(max_inflight_bytes: usize) -> Admission {
        let capacity = u32::try_from(max_inflight_bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
        Admission {
            shares: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// Takes a share for a body of `bytes`, or `None` when the bodies already in memory
    /// leave no room for it. A body larger than the ceiling takes all of it.
    pub fn admit(&self, bytes: usize) -> Option<Admitted> {
        let units = u32::try_from(bytes.div_ceil(UNIT).max(1))
            .unwrap_or(u32::MAX)
            .min(self.capacity);
        let permit = self.shares.clone().try_acquire_many_owned(units).ok()?;
        Some(Admitted { _permit: permit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_refused_past_the_ceiling_and_come_back() {
        let admission = Admission::new(10 * UNIT);
        let first = admission.admit(6 * UNIT).expect("room");
        let second = admission.admit(4 * UNIT).expect("room");
        assert!(admission.admit(1).is_none());
        drop(first);
        let third = admission.admit(5 * UNIT).expect("room again");
        assert!(admission.admit(2 * UNIT).is_none());
        drop((second, third));
        // A body larger than the ceiling still fits alone.
        assert!(admission.admit(50 * UNIT).is_some());
    }
}
