//! Deadlines ordered by time, for a model that owns many connections on one
//! thread (v4, v5): which connection's deadline comes first, how long to
//! wait for it, and which have passed.
//!
//! An indexed binary min-heap keyed by connection slot: each slot has at most
//! one entry, so moving or cancelling a slot's deadline is O(log n) and the
//! heap never holds more entries than there are connections. Nothing is
//! allocated once the slot numbers have grown to the most connections open
//! at once, and nothing here makes a syscall.
//!
//! A model arms a slot *no later than* its connection's true deadline
//! ([`Deadlines::arm_by`]) and, when the entry comes due, compares it with
//! the connection's deadline then: fire, or re-arm later
//! ([`Deadlines::set`]). A keep-alive connection whose deadline moves later
//! with every request then costs one comparison per request and one heap
//! operation per timeout period, and no deadline ever fires late.

use std::time::Instant;

/// No entry for this slot.
const UNARMED: u32 = u32::MAX;

/// One armed deadline: 24 bytes. (Nanoseconds from an epoch would take 16,
/// but converting every deadline armed, once per request, costs more CPU
/// than the 8 bytes per connection are worth.)
#[derive(Clone, Copy, Debug)]
struct Entry {
    at: Instant,
    slot: u32,
}

/// The armed deadlines of a set of slots (connection indices).
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    /// A binary min-heap on `at`.
    heap: Vec<Entry>,
    /// Per slot: the index of its entry in `heap`, or [`UNARMED`].
    position: Vec<u32>,
}

impl Deadlines {
    /// No deadlines.
    pub(crate) fn new() -> Self {
        Deadlines::default()
    }

    /// Slots armed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// When `slot` comes due, if armed.
    #[inline]
    pub(crate) fn get(&self, slot: u32) -> Option<Instant> {
        match self.position.get(slot as usize) {
            Some(&i) if i != UNARMED => Some(self.heap[i as usize].at),
            _ => None,
        }
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.first().map(|e| e.at)
    }

    /// Arms `slot` at `at`, replacing any deadline it had.
    pub(crate) fn set(&mut self, slot: u32, at: Instant) {
        match self.get(slot) {
            None => self.insert(slot, at),
            Some(old) => {
                let i = self.position[slot as usize] as usize;
                self.heap[i].at = at;
                if at < old {
                    self.sift_up(i);
                } else {
                    self.sift_down(i);
                }
            }
        }
    }

    /// Makes `slot` come due no later than `at`: arms it if unarmed, moves
    /// it earlier if armed later, and leaves an earlier entry alone (the
    /// caller re-checks when that one comes due).
    #[inline]
    pub(crate) fn arm_by(&mut self, slot: u32, at: Instant) {
        match self.get(slot) {
            Some(armed) if armed <= at => {}
            _ => self.set(slot, at),
        }
    }

    /// Disarms `slot` (a closed connection).
    pub(crate) fn cancel(&mut self, slot: u32) {
        if self.get(slot).is_some() {
            let i = self.position[slot as usize] as usize;
            self.remove_at(i);
        }
    }

    /// Disarms and returns a slot whose deadline is at or before `now`,
    /// earliest first; `None` when none has passed.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<u32> {
        let first = *self.heap.first()?;
        if first.at > now {
            return None;
        }
        self.remove_at(0);
        Some(first.slot)
    }

    fn insert(&mut self, slot: u32, at: Instant) {
        if slot as usize >= self.position.len() {
            self.position.resize(slot as usize + 1, UNARMED);
        }
        self.heap.push(Entry { at, slot });
        let i = self.heap.len() - 1;
        self.position[slot as usize] = i as u32;
        self.sift_up(i);
    }

    fn remove_at(&mut self, i: usize) {
        let removed = self.heap.swap_remove(i);
        self.position[removed.slot as usize] = UNARMED;
        if i < self.heap.len() {
            // The entry moved here from the end may belong above or below.
            let moved = self.heap[i].slot as usize;
            self.position[moved] = i as u32;
            self.sift_up(i);
            self.sift_down(self.position[moved] as usize);
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent].at <= self.heap[i].at {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (left, right) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if left < self.heap.len() && self.heap[left].at < self.heap[least].at {
                least = left;
            }
            if right < self.heap.len() && self.heap[right].at < self.heap[least].at {
                least = right;
            }
            if least == i {
                break;
            }
            self.swap(i, least);
            i = least;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.position[self.heap[a].slot as usize] = a as u32;
        self.position[self.heap[b].slot as usize] = b as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t = Instant::now();
        let mut d = Deadlines::new();
        d.set(3, ms(t, 30));
        d.set(1, ms(t, 10));
        d.set(7, ms(t, 20));
        assert_eq!(d.next(), Some(ms(t, 10)));
        assert_eq!(d.pop_due(ms(t, 9)), None);
        assert_eq!(d.pop_due(ms(t, 25)), Some(1));
        assert_eq!(d.pop_due(ms(t, 25)), Some(7));
        assert_eq!(d.pop_due(ms(t, 25)), None);
        assert_eq!(d.get(3), Some(ms(t, 30)));
        assert_eq!(d.get(1), None);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn arm_by_only_moves_a_deadline_earlier() {
        let t = Instant::now();
        let mut d = Deadlines::new();
        d.arm_by(0, ms(t, 50));
        d.arm_by(0, ms(t, 80));
        assert_eq!(
            d.get(0),
            Some(ms(t, 50)),
            "a later deadline waits for the re-check"
        );
        d.arm_by(0, ms(t, 20));
        assert_eq!(d.get(0), Some(ms(t, 20)));
        d.set(0, ms(t, 90));
        assert_eq!(d.get(0), Some(ms(t, 90)));
        assert_eq!(d.len(), 1, "one entry per slot");
    }

    #[test]
    fn cancelled_slots_never_come_due() {
        let t = Instant::now();
        let mut d = Deadlines::new();
        for slot in 0..5 {
            d.set(slot, ms(t, slot as u64));
        }
        d.cancel(0);
        d.cancel(3);
        d.cancel(3);
        d.cancel(99);
        let due: Vec<u32> = std::iter::from_fn(|| d.pop_due(ms(t, 100))).collect();
        assert_eq!(due, vec![1, 2, 4]);
        assert_eq!(d.next(), None);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Set(u32, u64),
        ArmBy(u32, u64),
        Cancel(u32),
        PopDue(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..16u32, 0..100u64).prop_map(|(s, t)| Op::Set(s, t)),
            (0..16u32, 0..100u64).prop_map(|(s, t)| Op::ArmBy(s, t)),
            (0..16u32).prop_map(Op::Cancel),
            (0..100u64).prop_map(Op::PopDue),
        ]
    }

    proptest! {
        /// Any sequence of operations agrees with a plain map of slot to
        /// deadline: the same deadlines armed, the earliest reported, and
        /// due slots popped in deadline order.
        #[test]
        fn agrees_with_a_plain_map(ops in prop::collection::vec(op(), 0..200)) {
            let t = Instant::now();
            let mut d = Deadlines::new();
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Set(s, at) => {
                        d.set(s, ms(t, at));
                        model.insert(s, at);
                    }
                    Op::ArmBy(s, at) => {
                        d.arm_by(s, ms(t, at));
                        let e = model.entry(s).or_insert(at);
                        *e = (*e).min(at);
                    }
                    Op::Cancel(s) => {
                        d.cancel(s);
                        model.remove(&s);
                    }
                    Op::PopDue(now) => {
                        let popped = d.pop_due(ms(t, now));
                        let earliest = model.values().min().copied();
                        match popped {
                            Some(s) => {
                                let at = model.remove(&s);
                                prop_assert!(at.is_some_and(|at| at <= now));
                                prop_assert_eq!(at, earliest);
                            }
                            None => prop_assert!(earliest.is_none_or(|at| at > now)),
                        }
                    }
                }
                prop_assert_eq!(d.len(), model.len());
                prop_assert_eq!(d.next(), model.values().min().map(|&at| ms(t, at)));
                for (&s, &at) in &model {
                    prop_assert_eq!(d.get(s), Some(ms(t, at)));
                }
            }
        }
    }
}
