//! v1, sequential: one thread; `accept()` -> serve the whole connection (every
//! keep-alive request) -> `accept()` again. No synchronisation at all.
//!
//! While one connection is served, every other client waits in the listen
//! queue: the idle and header-read deadlines are what stop one silent client
//! from holding the server forever.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use super::{bind, serve_connection, LiveCount, Shared};

pub(super) fn start(shared: &Arc<Shared>) -> io::Result<Vec<Arc<TcpListener>>> {
    let config = &shared.config;
    let listener = Arc::new(bind(config.addr, false, config.backlog)?);
    let live = LiveCount::enter(shared);
    let (shared, accepting) = (Arc::clone(shared), Arc::clone(&listener));
    thread::Builder::new()
        .name("v1-sequential".into())
        .spawn(move || {
            let _live = live;
            while let Some(stream) = shared.accept(&accepting) {
                serve_connection(stream, &shared);
            }
        })?;
    Ok(vec![listener])
}
