//! v3, acceptors + fixed worker pool: N acceptor threads, each owning its own
//! listening socket bound to the same address with SO_REUSEPORT (the kernel
//! spreads new connections over them), hand accepted connections to one
//! fixed-size pool of workers through a bounded queue. A worker serves a
//! connection to its end, keep-alive included, then takes the next.
//!
//! ```text
//! acceptor i (its own socket): loop {
//!     accept                   (once shutdown began: what the shutdown drained
//!                              from its listen queue, then none; out of
//!                              descriptors: pause, retry)
//!     queue full            -> 503 + close
//!     otherwise             -> into the queue
//! }
//! worker j: loop {
//!     take the next connection from the queue (none once every acceptor stopped
//!     and the queue is empty)
//!     serve_connection
//! }
//! ```
//!
//! The thread count is fixed whatever the load: acceptors + pool size (+ the
//! process's main thread). The price: a worker is held by a connection for as
//! long as it stays open, so with more open keep-alive connections than
//! workers the surplus waits in the queue until a worker frees up; when the
//! queue is full, new connections are answered 503.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use super::{bind_shared_port, reject, serve_connection, spawn, start_threads, Shared};
use crate::http::Status;

pub(super) fn start(shared: &Arc<Shared>) -> io::Result<Vec<Arc<TcpListener>>> {
    let config = &shared.config;
    let listeners = bind_shared_port(config, config.acceptors)?;

    // A bounded channel preallocates its slots: no allocation per connection.
    // When every acceptor has stopped, the senders drop and the workers' recv
    // fails once the queue is drained.
    let (sender, receiver) = mpsc::sync_channel::<TcpStream>(config.queue);
    let receiver = Arc::new(Mutex::new(receiver));
    start_threads(shared, listeners, |listeners| {
        for _ in 0..config.pool_size.max(1) {
            let receiver = Arc::clone(&receiver);
            spawn(shared, "v3-worker".into(), None, move |shared| {
                while let Some(stream) = next_connection(&receiver) {
                    serve_connection(stream, shared);
                }
            })?;
        }
        for (i, listener) in listeners.iter().enumerate() {
            let (listener, sender) = (Arc::clone(listener), sender.clone());
            spawn(shared, format!("v3-acceptor-{i}"), None, move |shared| {
                accept_loop(shared, &listener, &sender)
            })?;
        }
        Ok(())
    })
}

fn accept_loop(shared: &Shared, listener: &TcpListener, queue: &SyncSender<TcpStream>) {
    while let Some(stream) = shared.accept(listener) {
        match queue.try_send(stream) {
            Ok(()) => {}
            Err(TrySendError::Full(stream)) => reject(stream, Status::ServiceUnavailable),
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

fn next_connection(queue: &Mutex<Receiver<TcpStream>>) -> Option<TcpStream> {
    queue.lock().ok()?.recv().ok()
}
