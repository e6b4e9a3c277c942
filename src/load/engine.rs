//! The I/O engines a load thread can run on, and the one seam between them
//! and the connection slots ([`super::conn::Conn`]): a slot decides what to
//! send and frames what arrives; the engine owns the sockets and moves the
//! bytes. Two engines implement it:
//!
//! - [`Engine::Uring`] ([`super::uring_io`]): one io_uring per thread,
//!   connects, sends and a multishot recv per connection into a provided
//!   buffer ring; every send queued in a loop iteration goes out with the
//!   one `io_uring_enter` that also waits, and completions are reaped in
//!   batches.
//! - [`Engine::Epoll`] ([`super::epoll_io`]): an edge-triggered epoll loop
//!   (mio) with a `read` and a `write` per socket readiness.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;

use super::error::LoadError;
use crate::models::uring::ring::client_availability;

/// Which I/O engine the load threads use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// io_uring: batched submissions, multishot recv into a buffer ring.
    Uring,
    /// epoll (mio): readiness events, a syscall per read and per write.
    Epoll,
}

impl Engine {
    /// The name `--engine` takes.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Uring => "uring",
            Engine::Epoll => "epoll",
        }
    }

    /// Whether the io_uring engine can run on this machine: `Ok`, or why
    /// not (probed once per process).
    pub fn uring_availability() -> Result<(), String> {
        client_availability()
    }

    /// The engine a run uses when `asked` for one (or for none: io_uring
    /// where this kernel allows it, else epoll), with why in words. Asking
    /// for io_uring where it cannot run is an error that says why.
    pub fn choose(asked: Option<Engine>) -> Result<(Engine, String), LoadError> {
        match asked {
            Some(Engine::Epoll) => Ok((Engine::Epoll, "asked for with --engine".into())),
            Some(Engine::Uring) => match client_availability() {
                Ok(()) => Ok((Engine::Uring, "asked for with --engine".into())),
                Err(why) => Err(LoadError::Io(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("--engine uring cannot run here: {why}; --engine epoll can"),
                ))),
            },
            None => match client_availability() {
                Ok(()) => Ok((
                    Engine::Uring,
                    "the default where io_uring is available; --engine epoll for the other".into(),
                )),
                Err(why) => Ok((Engine::Epoll, format!("io_uring is not available: {why}"))),
            },
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a connection slot asks of its engine. Slots are numbered within
/// their thread; the engine reports back by calling the slot's `on_*`
/// methods from its event loop.
pub trait Io {
    /// Opens a socket for `slot` and starts connecting it to `addr`; the
    /// outcome comes later ([`super::conn::Conn::on_connect`]). An error
    /// here is a failed attempt.
    fn connect(&mut self, slot: usize, addr: SocketAddr) -> io::Result<()>;

    /// Sends `bytes` (a range of the plan's preencoded requests) on `slot`'s
    /// open connection. Returns how many were written now; the rest is
    /// pending, and the engine calls [`super::conn::Conn::on_sent`] when more
    /// went out (io_uring) or more may go (epoll). An error fails the
    /// connection.
    fn send(&mut self, slot: usize, bytes: Range<usize>) -> io::Result<usize>;

    /// Closes `slot`'s socket, if any; whatever the engine still learns of
    /// it is ignored.
    fn close(&mut self, slot: usize);
}
