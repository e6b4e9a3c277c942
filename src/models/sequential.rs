//! v1, sequential: one thread; `accept()` -> serve the whole connection (every
//! keep-alive request) -> `accept()` again. No synchronisation between
//! connections: there is only ever one.
//!
//! ```text
//! loop {
//!     accept              (once shutdown began: what the shutdown drained from
//!                          the listen queue, then none; out of descriptors:
//!                          pause, retry)
//!     serve_connection    every request of that connection, until it closes
//! }
//! ```
//!
//! While one connection is served, every other client waits in the listen
//! queue: the idle and header-read deadlines are what stop one silent client
//! from holding the server forever. When a shutdown begins, those still
//! queued are accepted before the listener closes, and this thread answers
//! them one after another (until the shutdown timeout), instead of leaving
//! them to be reset.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use super::{serve_connection, start_single_acceptor, Shared};

pub(super) fn start(shared: &Arc<Shared>) -> io::Result<Vec<Arc<TcpListener>>> {
    start_single_acceptor(shared, "v1-sequential", accept_loop)
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    while let Some(stream) = shared.accept(listener) {
        serve_connection(stream, shared);
    }
}
