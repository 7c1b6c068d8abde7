//! Who made the calls: the usual callers of a series (a decaying top list) and the callers
//! during an Insight, by user identity, user agent and error code.

use serde::{Deserialize, Serialize};

/// The attributes an Insight is attributed by, in AWS's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Attribute {
    UserIdentityArn,
    UserAgent,
    ErrorCode,
}

impl Attribute {
    pub const ALL: [Attribute; 3] = [
        Attribute::UserIdentityArn,
        Attribute::UserAgent,
        Attribute::ErrorCode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attribute::UserIdentityArn => "userIdentityArn",
            Attribute::UserAgent => "userAgent",
            Attribute::ErrorCode => "errorCode",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Values (interned ids) with counts, keeping only the largest `cap`: a new value takes the
/// place of the smallest when it is larger.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    entries: Vec<(u32, f64)>,
}

impl Tally {
    pub fn add(&mut self, value: u32, count: f64, cap: usize) {
        if let Some(entry) = self.entries.iter_mut().find(|(v, _)| *v == value) {
            entry.1 += count;
            return;
        }
        if self.entries.len() < cap {
            self.entries.push((value, count));
            return;
        }
        if let Some(smallest) = self
            .entries
            .iter_mut()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|(_, c)| *c < count)
        {
            *smallest = (value, count);
        }
    }

    pub fn scale(&mut self, factor: f64) {
        for entry in &mut self.entries {
            entry.1 *= factor;
        }
        self.entries.retain(|(_, c)| *c >= 0.01);
    }

    /// Every entry, leaving the tally empty (and its buffer kept).
    pub fn drain(&mut self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.entries.drain(..)
    }

    /// The `n` largest, largest first (ties by value id, so the order is stable).
    pub fn top(&self, n: usize) -> Vec<(u32, f64)> {
        let mut sorted = self.entries.clone();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        sorted.truncate(n);
        sorted
    }

    /// The values held, in no order.
    pub fn values(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|&(value, _)| value)
    }

    pub fn bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(u32, f64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_values_stay() {
        let mut t = Tally::default();
        t.add(1, 5.0, 2);
        t.add(2, 1.0, 2);
        t.add(3, 3.0, 2); // takes 2's place
        t.add(4, 0.5, 2); // too small to enter
        t.add(1, 1.0, 2);
        assert_eq!(t.top(5), vec![(1, 6.0), (3, 3.0)]);
        t.scale(0.5);
        assert_eq!(t.top(1), vec![(1, 3.0)]);
    }
}
