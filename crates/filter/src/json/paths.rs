//! Every selector of every filter, merged into one automaton so that a single pass over an
//! event finds all the values any filter needs.
//!
//! Selectors first form a trie of steps. Wildcards make it nondeterministic (`$.a.b` and
//! `$.*.c` both go through key `a`), so the trie is turned into a deterministic automaton by
//! the subset construction: each state is a set of trie nodes, and each transition names
//! one key or index, or "any other". A state lists the slots (selector numbers) whose
//! values end there. Wildcards are few (AWS allows three per pattern), so the automaton
//! stays about as small as the trie.

use super::selector::{Selector, Step};
use std::collections::{BTreeSet, HashMap};

/// The automaton. State 0 is the top of the event.
#[derive(Debug, Default)]
pub struct Paths {
    pub(crate) states: Vec<State>,
    /// How many slots the selectors fill.
    pub(crate) slots: usize,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    keys: Vec<(Box<[u8]>, u32)>,
    other_key: Option<u32>,
    indexes: Vec<(u32, u32)>,
    other_index: Option<u32>,
    pub slots: Vec<u16>,
}

impl State {
    pub fn descends_objects(&self) -> bool {
        !self.keys.is_empty() || self.other_key.is_some()
    }

    pub fn descends_arrays(&self) -> bool {
        !self.indexes.is_empty() || self.other_index.is_some()
    }

    pub fn key(&self, key: &[u8]) -> Option<u32> {
        self.keys
            .iter()
            .find(|(k, _)| &k[..] == key)
            .map(|&(_, state)| state)
            .or(self.other_key)
    }

    pub fn index(&self, index: u32) -> Option<u32> {
        self.indexes
            .iter()
            .find(|&&(i, _)| i == index)
            .map(|&(_, state)| state)
            .or(self.other_index)
    }
}

#[derive(Default)]
struct TrieNode {
    children: Vec<(Step, usize)>,
    slots: Vec<u16>,
}

impl Paths {
    /// Builds the automaton; selector `i` fills slot `i`.
    pub fn new<'s>(selectors: impl IntoIterator<Item = &'s Selector>) -> Paths {
        let mut trie = vec![TrieNode::default()];
        let mut count = 0;
        for (slot, selector) in selectors.into_iter().enumerate() {
            count = slot + 1;
            let mut node = 0;
            for step in &selector.steps {
                node = match trie[node].children.iter().find(|(s, _)| s == step) {
                    Some(&(_, child)) => child,
                    None => {
                        trie.push(TrieNode::default());
                        let child = trie.len() - 1;
                        trie[node].children.push((step.clone(), child));
                        child
                    }
                };
            }
            let slot = u16::try_from(slot).expect("fewer than 65536 selectors");
            trie[node].slots.push(slot);
        }
        let mut paths = determinize(&trie);
        paths.slots = count;
        paths
    }
}

fn determinize(trie: &[TrieNode]) -> Paths {
    let mut paths = Paths::default();
    let mut ids: HashMap<BTreeSet<usize>, u32> = HashMap::new();
    let mut pending: Vec<BTreeSet<usize>> = Vec::new();
    let mut intern = |set: BTreeSet<usize>, paths: &mut Paths, pending: &mut Vec<_>| -> u32 {
        *ids.entry(set.clone()).or_insert_with(|| {
            paths.states.push(State::default());
            pending.push(set);
            u32::try_from(paths.states.len() - 1).expect("a small automaton")
        })
    };
    intern(BTreeSet::from([0]), &mut paths, &mut pending);
    let mut next = 0;
    while next < pending.len() {
        let set = pending[next].clone();
        let children = || set.iter().flat_map(|&n| trie[n].children.iter());
        let any_key: BTreeSet<usize> = children()
            .filter(|(s, _)| *s == Step::AnyKey)
            .map(|&(_, c)| c)
            .collect();
        let any_index: BTreeSet<usize> = children()
            .filter(|(s, _)| *s == Step::AnyIndex)
            .map(|&(_, c)| c)
            .collect();
        let named: BTreeSet<&Step> = children()
            .map(|(s, _)| s)
            .filter(|s| matches!(s, Step::Key(_) | Step::Index(_)))
            .collect();
        let mut state = State {
            slots: set
                .iter()
                .flat_map(|&n| trie[n].slots.iter().copied())
                .collect(),
            ..State::default()
        };
        for step in named {
            let mut target: BTreeSet<usize> = children()
                .filter(|(s, _)| s == step)
                .map(|&(_, c)| c)
                .collect();
            match step {
                Step::Key(key) => {
                    target.extend(&any_key);
                    let id = intern(target, &mut paths, &mut pending);
                    state.keys.push((key.as_bytes().into(), id));
                }
                Step::Index(index) => {
                    target.extend(&any_index);
                    let id = intern(target, &mut paths, &mut pending);
                    state.indexes.push((*index, id));
                }
                Step::AnyKey | Step::AnyIndex => unreachable!("filtered out above"),
            }
        }
        if !any_key.is_empty() {
            state.other_key = Some(intern(any_key, &mut paths, &mut pending));
        }
        if !any_index.is_empty() {
            state.other_index = Some(intern(any_index, &mut paths, &mut pending));
        }
        paths.states[next] = state;
        next += 1;
    }
    paths
}
