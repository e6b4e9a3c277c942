//! Buffers that belong to a reactor, not to its connections.
//!
//! An event-driven model serves thousands of connections from one thread, and
//! most of them are idle most of the time. A [`BufferPool`] lets such a model
//! lend a connection its input and output buffers only while bytes are
//! pending ([`crate::http::Conn::lend`]) and take them back as soon as nothing
//! is ([`crate::http::Conn::reclaim`]): an idle keep-alive connection then
//! holds no buffer at all, and the pool grows to the number of connections
//! busy at the same moment, not to the number open.
//!
//! Buffers are reused, never freed while the pool lives, so the steady state
//! allocates nothing. They come back at whatever size they grew to (an
//! input buffer for a long head, an output buffer for a batch of pipelined
//! responses) and are handed out again most recently returned first,
//! whatever their size: a connection that needs more than the buffer it got
//! grows it, and the buffer keeps that size. Each buffer grows a few times
//! in its life at most (doubling, up to the largest head or batch the
//! traffic has), so the allocations stop once the pool has seen the
//! traffic's mix; the pool's memory is then its peak count of buffers times
//! the sizes that traffic needed. A model that serves one connection per thread (v1-v3)
//! does not need a pool: a connection that is never lent anything allocates
//! its own pair on first use and keeps it.

/// Size of a fresh input buffer. A buffer grows (doubling) only while a
/// single request head needs more, up to [`crate::http::Limits::max_head_bytes`].
pub const INPUT_BUFFER: usize = 4096;
/// Initial capacity of a fresh output buffer: any one response servelab
/// sends (about 100 bytes for `200 OK`, at most about 200 for an error with
/// `Connection: close`) fits. A batch of pipelined responses grows the buffer
/// it was written into, and the buffer goes back to the pool grown.
///
/// Small, because v5 holds a connection's output buffer until its send has
/// completed: a burst of N connections answered in one loop iteration holds
/// N of them at once, and the pool keeps that many.
pub const OUTPUT_BUFFER: usize = 256;

/// Input and output buffers waiting to be lent.
#[derive(Debug, Default)]
pub struct BufferPool {
    input: Vec<Vec<u8>>,
    output: Vec<Vec<u8>>,
    created: usize,
}

impl BufferPool {
    /// An empty pool; buffers are created as connections need them.
    pub fn new() -> Self {
        BufferPool::default()
    }

    /// An input buffer: a reused one, or a new [`INPUT_BUFFER`]-byte one.
    /// Its length is its usable size (the bytes are initialised once, when
    /// created, so that reading into it needs no unsafe code).
    pub(crate) fn take_input(&mut self) -> Vec<u8> {
        self.input.pop().unwrap_or_else(|| {
            self.created += 1;
            vec![0; INPUT_BUFFER]
        })
    }

    /// An empty output buffer with some capacity.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        self.output.pop().unwrap_or_else(|| {
            self.created += 1;
            Vec::with_capacity(OUTPUT_BUFFER)
        })
    }

    /// Takes an input buffer back; its contents are garbage from now on.
    pub(crate) fn put_input(&mut self, buffer: Vec<u8>) {
        self.input.push(buffer);
    }

    /// Takes an output buffer back, emptied; one grown past
    /// [`crate::http::MAX_PENDING_OUTPUT`] (a large body: `--body`) is freed
    /// instead, so that the pool's memory follows the batches of small
    /// responses it serves, not the largest body it ever sent.
    pub(crate) fn put_output(&mut self, mut buffer: Vec<u8>) {
        if buffer.capacity() > super::limits::MAX_PENDING_OUTPUT {
            return;
        }
        buffer.clear();
        self.output.push(buffer);
    }

    /// Buffers now in the pool, not lent to any connection.
    pub fn available(&self) -> usize {
        self.input.len() + self.output.len()
    }

    /// Buffers this pool has created in its life: its peak, since nothing
    /// is freed.
    pub fn created(&self) -> usize {
        self.created
    }
}
