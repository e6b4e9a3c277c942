//! v2, thread-per-connection: one acceptor thread accepts; each connection
//! gets a new detached OS thread that serves it (keep-alive included) and
//! exits.
//!
//! ```text
//! acceptor: loop {
//!     accept                   (once shutdown began: what the shutdown drained
//!                              from its listen queue, then none; out of
//!                              descriptors: pause, retry)
//!     past max_connections  -> 503 + close
//!     otherwise             -> spawn a thread: serve_connection, then exit
//! }
//! ```
//!
//! Threads get a small explicit stack instead of the 2 MiB default, and past
//! `max_connections` open connections a new one is answered 503 and closed,
//! so that load cannot exhaust threads or memory.

use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{reject, serve_connection, spawn, start_single_acceptor, Shared};
use crate::http::Status;

pub(super) fn start(shared: &Arc<Shared>) -> io::Result<Vec<Arc<TcpListener>>> {
    start_single_acceptor(shared, "v2-acceptor", accept_loop)
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    // Counted here, not inside the new thread, so that a burst of accepts
    // cannot overshoot the cap before the threads start.
    let open = Arc::new(AtomicUsize::new(0));
    let config = &shared.config;
    while let Some(stream) = shared.accept(listener) {
        if open.load(Ordering::Acquire) >= config.max_connections {
            reject(stream, Status::ServiceUnavailable);
            continue;
        }
        open.fetch_add(1, Ordering::AcqRel);
        let slot = OpenSlot(Arc::clone(&open));
        let stack = Some(config.thread_stack);
        // If the kernel refuses another thread, the closure (and with it the
        // connection and its slot) is dropped: the connection closes at once.
        let _ = spawn(shared, "v2-conn".into(), stack, move |shared| {
            serve_connection(stream, shared);
            drop(slot);
        });
    }
}

/// One of the `max_connections` slots, released when the thread ends.
struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
