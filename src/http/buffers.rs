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
//! allocates nothing. A model that serves one connection per thread (v1-v3)
//! does not need a pool: a connection that is never lent anything allocates
//! its own pair on first use and keeps it.

/// Size of a fresh input buffer. A buffer grows (doubling) only while a
/// single request head needs more, up to [`crate::http::Limits::max_head_bytes`].
pub const INPUT_BUFFER: usize = 4096;
/// Initial capacity of a fresh output buffer; it grows to the largest batch of
/// pipelined responses a connection produced.
pub const OUTPUT_BUFFER: usize = 4096;

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

    /// Takes an output buffer back, emptied.
    pub(crate) fn put_output(&mut self, mut buffer: Vec<u8>) {
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
