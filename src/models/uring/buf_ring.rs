//! A provided buffer ring (Linux 5.19+): receive buffers that belong to the
//! reactor, not to a connection. The kernel takes one only when bytes arrive
//! for some multishot recv of the group, and says in the completion which one
//! it filled; the reactor copies the bytes out and gives the buffer back.
//!
//! One anonymous mapping holds the ring of buffer descriptors (page-aligned,
//! as the kernel requires) followed by the buffers themselves; pages are
//! touched only as buffers get used.
//!
//! The kernel takes buffers in ring order and each one given back goes to
//! the end, so every buffer in the ring gets used in turn: the ring costs
//! all its buffers' memory, however few are busy at once. So it starts with
//! few and [`BufRing::grow`]s (to at most its descriptor count) only when
//! the kernel found it empty: its memory follows the most bytes that arrived
//! in one loop iteration, not a fixed worst case.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::Submitter;

/// The buffers of one buffer group, and the ring that hands them to the kernel.
pub(crate) struct BufRing {
    /// Start of the mapping: the descriptor ring, then the buffers.
    memory: NonNull<u8>,
    mapped: usize,
    /// Offset of the first buffer in the mapping.
    buffers_at: usize,
    /// Descriptors in the ring: the most buffers it can hold.
    count: u16,
    /// Buffers created so far, ids `0..provided`, every one in the ring or
    /// handed out.
    provided: u16,
    size: u32,
    /// Our tail: descriptors below it are written; the kernel sees them once
    /// [`BufRing::publish`] stores it.
    tail: u16,
    published: u16,
    /// Set when operations that may write into the buffers could still be
    /// in flight at drop: the mapping is then left in place.
    leaked: bool,
}

impl BufRing {
    /// Maps room for `count` buffers (a power of two, at most 32768) of
    /// `size` bytes each, and gives the kernel the first `initial` of them.
    pub(crate) fn new(count: u16, size: u32, initial: u16) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= 1 << 15);
        assert!(0 < initial && initial <= count);
        let page = page_size();
        let ring_bytes = (usize::from(count) * size_of::<BufRingEntry>()).next_multiple_of(page);
        let mapped = ring_bytes + usize::from(count) * size as usize;
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected. The result is checked before use.
        let memory = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if memory == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut ring = BufRing {
            memory: NonNull::new(memory.cast()).expect("mmap returned null"),
            mapped,
            buffers_at: ring_bytes,
            count,
            provided: 0,
            size,
            tail: 0,
            published: 0,
            leaked: false,
        };
        ring.provide(initial);
        ring.publish();
        Ok(ring)
    }

    /// Doubles the buffers in the ring (up to its descriptor count): for
    /// when a receive found it empty (ENOBUFS). They reach the kernel at the
    /// next [`BufRing::publish`]. Returns whether it grew.
    pub(crate) fn grow(&mut self) -> bool {
        let more = self.provided.min(self.count - self.provided);
        self.provide(more);
        more > 0
    }

    /// Buffers in the ring or handed out: what its memory is, once used.
    #[cfg(test)]
    fn provided(&self) -> u16 {
        self.provided
    }

    fn provide(&mut self, more: u16) {
        let first = self.provided;
        self.provided += more;
        for id in first..self.provided {
            self.give_back(id);
        }
    }

    /// Registers the ring with `submitter` as buffer group `group`.
    ///
    /// # Safety
    ///
    /// The ring must outlive its registration: the io_uring must be dropped,
    /// or the group unregistered, before this `BufRing` is, and no operation
    /// that may still write into a buffer of the group may be in flight when
    /// it is (see `Reactor`'s `Drop`).
    pub(crate) unsafe fn register(&self, submitter: &Submitter<'_>, group: u16) -> io::Result<()> {
        // SAFETY: the descriptor ring is page-aligned, `count` entries long
        // and valid for as long as the caller guarantees.
        unsafe {
            submitter.register_buf_ring_with_flags(
                self.memory.as_ptr() as u64,
                self.count,
                group,
                0,
            )
        }
    }

    /// The bytes the kernel received into buffer `id`.
    ///
    /// # Safety
    ///
    /// `id` and `len` must come from one completion of this group (its
    /// `IORING_CQE_F_BUFFER` id and its result), and the buffer must not have
    /// been given back since: until it is, the kernel does not touch it.
    pub(crate) unsafe fn received(&self, id: u16, len: usize) -> &[u8] {
        assert!(id < self.provided && len <= self.size as usize);
        // SAFETY: in bounds (checked above); the kernel finished writing
        // these bytes before posting the completion and writes no more into
        // this buffer until it is given back (the caller's promise).
        unsafe { std::slice::from_raw_parts(self.buffer(id), len) }
    }

    /// Gives buffer `id` back to the kernel (visible at the next
    /// [`BufRing::publish`]). Call only once its bytes were used, and at most
    /// once per completion that handed it out.
    pub(crate) fn give_back(&mut self, id: u16) {
        assert!(id < self.provided);
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot` is in the descriptor ring. The kernel reads only the
        // descriptors between its head and the published tail; this one is
        // past the tail, and free, because every buffer given back was handed
        // out once (so at most `provided <= count` are ever outstanding). Only the
        // address, length and id fields are written: the last field of
        // descriptor 0 is the ring's tail, which `publish` owns.
        unsafe {
            let entry = &mut *self.descriptors().add(slot);
            entry.set_addr(self.buffer(id) as u64);
            entry.set_len(self.size);
            entry.set_bid(id);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the buffers given back since the last call visible to the
    /// kernel: one store, once per loop iteration before entering the kernel.
    pub(crate) fn publish(&mut self) {
        if self.tail == self.published {
            return;
        }
        // SAFETY: the tail field lives inside descriptor 0, inside the
        // mapping; the kernel only reads it, with an acquire load, so the
        // release store makes the descriptors written before it visible.
        unsafe {
            let tail = BufRingEntry::tail(self.descriptors()).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
        self.published = self.tail;
    }

    /// Keeps the mapping when this is dropped: for a reactor that ends with
    /// a recv possibly still in flight.
    pub(crate) fn leak(&mut self) {
        self.leaked = true;
    }

    fn descriptors(&self) -> *mut BufRingEntry {
        self.memory.as_ptr().cast()
    }

    fn buffer(&self, id: u16) -> *mut u8 {
        let offset = self.buffers_at + usize::from(id) * self.size as usize;
        // SAFETY: id < count, so the offset is inside the mapping.
        unsafe { self.memory.as_ptr().add(offset) }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.leaked {
            return;
        }
        // SAFETY: the mapping made in `new`, unmapped once; `register`'s
        // contract guarantees the kernel no longer uses it.
        unsafe {
            libc::munmap(self.memory.as_ptr().cast(), self.mapped);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ring starts with the buffers asked for and doubles up to its
    /// descriptor count; every new buffer is given to the kernel at once
    /// (written past the tail, visible at the next publish).
    #[test]
    fn grows_by_doubling_up_to_its_descriptor_count() {
        let mut ring = BufRing::new(16, 64, 3).expect("an anonymous mapping");
        assert_eq!((ring.provided(), ring.tail, ring.published), (3, 3, 3));
        assert!(ring.grow());
        assert_eq!((ring.provided(), ring.tail, ring.published), (6, 6, 3));
        ring.publish();
        assert_eq!(ring.published, 6);
        assert!(ring.grow() && ring.grow());
        assert_eq!(ring.provided(), 16, "12 would pass the descriptor count");
        assert!(!ring.grow(), "full");
        assert_eq!((ring.provided(), ring.tail), (16, 16));
        for slot in 0..16u16 {
            // SAFETY: within the descriptor ring; no kernel uses it.
            let entry = unsafe { &*ring.descriptors().add(usize::from(slot)) };
            assert_eq!((entry.bid(), entry.len()), (slot, 64));
            assert_eq!(entry.addr(), ring.buffer(slot) as u64);
        }
    }
}
