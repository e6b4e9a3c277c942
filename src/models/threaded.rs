//! v2, thread-per-connection: the main thread accepts; each connection gets a
//! new detached OS thread that serves it (keep-alive included) and exits.
//!
//! Threads get a small explicit stack instead of the 2 MiB default, and past
//! `max_connections` open connections a new one is answered 503 and closed,
//! so that load cannot exhaust threads or memory.

use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use super::{bind, reject, serve_connection, LiveCount, Shared};
use crate::http::Status;

pub(super) fn start(shared: &Arc<Shared>) -> io::Result<Vec<Arc<TcpListener>>> {
    let config = &shared.config;
    let listener = Arc::new(bind(config.addr, false, config.backlog)?);
    let live = LiveCount::enter(shared);
    let (shared, accepting) = (Arc::clone(shared), Arc::clone(&listener));
    thread::Builder::new()
        .name("v2-acceptor".into())
        .spawn(move || {
            let _live = live;
            accept_loop(&shared, &accepting);
        })?;
    Ok(vec![listener])
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
        let live = LiveCount::enter(shared);
        let shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("v2-conn".into())
            .stack_size(config.thread_stack)
            .spawn(move || {
                let (_live, _slot) = (live, slot);
                serve_connection(stream, &shared);
            });
        // If the kernel refuses another thread, the closure (and with it the
        // connection, its slot and its live count) is dropped: closed at once.
        drop(spawned);
    }
}

/// One of the `max_connections` slots, released when the thread ends.
struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
