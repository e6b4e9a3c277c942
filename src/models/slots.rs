//! The connection table of a reactor (v4, v5): entries at stable indices
//! that never move, so that the table costs what it holds.
//!
//! A `Vec` that grows by doubling copies itself into a new block each time,
//! and the old block's pages stay resident (freed to malloc, not to the
//! kernel): a table of 10,000 connections of a few hundred bytes each would
//! cost about twice what it holds. [`Slots`] instead allocates fixed-size
//! chunks of [`CHUNK`] entries as it needs them and never moves or frees one
//! while it lives, so its footprint is the peak number of slots in use,
//! rounded up to a chunk. An index is split into chunk and offset with a
//! shift and a mask.
//!
//! Entries outlive their occupants: a vacant entry keeps whatever the model
//! left in it (v4 an empty `Option`, v5 its slot's generation beside one),
//! and is handed out again by [`Slots::claim`], the most recently released
//! first (its memory is the likeliest to be in cache).

use std::ops::{Index, IndexMut};

/// log2 of the entries per chunk.
const CHUNK_BITS: u32 = 6;
/// Entries per chunk: 64 connections' worth (about 20 KiB for a v4 or v5
/// connection), small enough that a reactor with few connections wastes
/// little, large enough that the chunk list stays short.
const CHUNK: usize = 1 << CHUNK_BITS;
const OFFSET_MASK: u32 = CHUNK as u32 - 1;

/// Entries of type `T` at stable `u32` indices, with a free list.
pub(crate) struct Slots<T> {
    chunks: Vec<Box<[T; CHUNK]>>,
    /// Vacant indices, the most recently released last.
    free: Vec<u32>,
    /// Claimed and not released.
    in_use: usize,
}

impl<T: Default> Slots<T> {
    /// An empty table: no chunk is allocated until the first claim.
    pub(crate) fn new() -> Self {
        Slots {
            chunks: Vec::new(),
            free: Vec::new(),
            in_use: 0,
        }
    }

    /// Claims a vacant entry and returns its index: the most recently
    /// released one, or one of a new chunk of `T::default()` entries. The
    /// entry holds whatever was left in it.
    pub(crate) fn claim(&mut self) -> u32 {
        if self.free.is_empty() {
            self.add_chunk();
        }
        let index = self
            .free
            .pop()
            .expect("a chunk of vacant entries was just added");
        self.in_use += 1;
        index
    }

    /// Makes `index` vacant again, to be handed out by a later
    /// [`Slots::claim`]; its entry is left as it is. Release each claimed
    /// index once.
    pub(crate) fn release(&mut self, index: u32) {
        debug_assert!(
            (index as usize) < self.len(),
            "index {index} was never claimed"
        );
        self.free.push(index);
        self.in_use -= 1;
    }

    /// Entries claimed and not released.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    /// Entries allocated (claimed or vacant): every index below it is valid.
    pub(crate) fn len(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    /// Every allocated index, claimed or vacant: for a pass over the table
    /// that may mutate it (a range holds no borrow of it).
    pub(crate) fn indices(&self) -> std::ops::Range<u32> {
        0..self.len() as u32
    }

    /// The entry at `index`, if allocated.
    #[inline]
    pub(crate) fn get(&self, index: u32) -> Option<&T> {
        let chunk = self.chunks.get((index >> CHUNK_BITS) as usize)?;
        Some(&chunk[(index & OFFSET_MASK) as usize])
    }

    /// The entry at `index`, if allocated.
    #[inline]
    pub(crate) fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        let chunk = self.chunks.get_mut((index >> CHUNK_BITS) as usize)?;
        Some(&mut chunk[(index & OFFSET_MASK) as usize])
    }

    fn add_chunk(&mut self) {
        let first = u32::try_from(self.len()).expect("at most 2^32 slots");
        let entries: Box<[T]> = (0..CHUNK).map(|_| T::default()).collect();
        let chunk: Box<[T; CHUNK]> = entries.try_into().ok().expect("CHUNK entries");
        self.chunks.push(chunk);
        // Pushed in reverse, so that the lowest index is claimed first.
        self.free.extend((first..first + CHUNK as u32).rev());
    }
}

impl<T: Default> Default for Slots<T> {
    fn default() -> Self {
        Slots::new()
    }
}

impl<T: Default> Index<u32> for Slots<T> {
    type Output = T;

    /// The entry at `index`; panics if it was never allocated.
    #[inline]
    fn index(&self, index: u32) -> &T {
        self.get(index).expect("slot index out of range")
    }
}

impl<T: Default> IndexMut<u32> for Slots<T> {
    /// The entry at `index`; panics if it was never allocated.
    #[inline]
    fn index_mut(&mut self, index: u32) -> &mut T {
        self.get_mut(index).expect("slot index out of range")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn claims_the_lowest_new_index_first_and_reuses_the_last_released() {
        let mut slots: Slots<Option<u64>> = Slots::new();
        assert_eq!((slots.len(), slots.in_use()), (0, 0), "nothing allocated");
        let first: Vec<u32> = (0..3).map(|_| slots.claim()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        assert_eq!((slots.len(), slots.in_use()), (CHUNK, 3));
        slots.release(1);
        slots.release(0);
        assert_eq!(slots.in_use(), 1);
        assert_eq!(slots.claim(), 0, "the most recently released first");
        assert_eq!(slots.claim(), 1);
        assert_eq!(slots.claim(), 3, "then new ones, in order");
    }

    #[test]
    fn entries_keep_their_value_and_address_as_the_table_grows() {
        let mut slots: Slots<Option<u64>> = Slots::new();
        let a = slots.claim();
        slots[a] = Some(7);
        let address: *const Option<u64> = &slots[a];
        for _ in 0..10 * CHUNK {
            let i = slots.claim();
            slots[i] = Some(u64::from(i));
        }
        assert_eq!(slots.len(), 11 * CHUNK, "one chunk at a time");
        assert!(std::ptr::eq(address, &slots[a]), "the entry did not move");
        assert_eq!(slots[a], Some(7));
        assert_eq!(slots[5 * CHUNK as u32 + 3], Some(5 * CHUNK as u64 + 3));
        // A released entry keeps its value until the model changes it.
        slots.release(a);
        assert_eq!(slots[a], Some(7));
    }

    #[test]
    fn indices_past_the_table_are_none() {
        let mut slots: Slots<u8> = Slots::new();
        assert!(slots.get(0).is_none());
        slots.claim();
        assert!(slots.get(CHUNK as u32 - 1).is_some());
        assert!(slots.get(CHUNK as u32).is_none());
        assert!(slots.get_mut(u32::MAX).is_none());
    }

    proptest! {
        /// Any sequence of claims and releases hands out each index to one
        /// holder at a time, counts what is in use, and allocates no more
        /// chunks than the peak in use needs.
        #[test]
        fn agrees_with_a_set_of_claimed_indices(
            ops in prop::collection::vec(any::<Option<prop::sample::Index>>(), 0..400),
        ) {
            let mut slots: Slots<Option<u32>> = Slots::new();
            let mut claimed: BTreeSet<u32> = BTreeSet::new();
            let mut peak = 0;
            for op in ops {
                match op {
                    // A release of one of the claimed indices.
                    Some(which) if !claimed.is_empty() => {
                        let index = *claimed.iter().nth(which.index(claimed.len())).unwrap();
                        prop_assert_eq!(slots[index].take(), Some(index));
                        slots.release(index);
                        claimed.remove(&index);
                    }
                    _ => {
                        let index = slots.claim();
                        prop_assert!(claimed.insert(index), "index {} handed out twice", index);
                        prop_assert_eq!(slots[index].replace(index), None);
                    }
                }
                peak = peak.max(claimed.len());
                prop_assert_eq!(slots.in_use(), claimed.len());
                prop_assert_eq!(slots.len(), peak.div_ceil(CHUNK) * CHUNK);
            }
        }
    }
}
