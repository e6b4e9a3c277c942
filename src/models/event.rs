//! v4, event-driven thread-per-core: N reactor threads, each with its own
//! SO_REUSEPORT listening socket and its own epoll loop (mio) over the
//! connections it accepted. No thread ever blocks on one client; a reactor
//! owns its connections outright, so nothing is shared between reactors but
//! the connection cap.
//!
//! ```text
//! loop {
//!     epoll_wait(timeout = next timer sweep)
//!     listener readable   -> accept until EAGAIN; past the cap: 503 + close
//!     connection readable -> read, Conn::commit_read, write what it produced
//!     connection writable -> write what is left, then read again
//!     every tick          -> close or 408 the connections past their deadline
//! }
//! ```
//!
//! A connection whose client does not read its responses stops being read
//! (its output is not allowed to grow while it waits): back-pressure instead of
//! buffering without bound.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::{bind_shared_port, reject, spawn, Registration, Shared, LINGER_TIME};
use crate::http::{BufferPool, Conn, Now, Status};
use crate::route::Routes;

const LISTENER: Token = Token(usize::MAX);
/// Events taken per epoll_wait.
const EVENT_BATCH: usize = 256;
/// Bounds of the timer sweep interval (a quarter of the shortest deadline).
const MIN_TICK: Duration = Duration::from_millis(5);
const MAX_TICK: Duration = Duration::from_secs(1);

pub(super) fn start(shared: &Arc<Shared>) -> io::Result<Vec<Arc<TcpListener>>> {
    let config = &shared.config;
    let listeners = bind_shared_port(config, config.reactors)?;
    let open = Arc::new(AtomicUsize::new(0));
    for (i, listener) in listeners.iter().enumerate() {
        listener.set_nonblocking(true)?;
        let poll = Poll::new()?;
        poll.registry().register(
            &mut SourceFd(&listener.as_raw_fd()),
            LISTENER,
            Interest::READABLE,
        )?;
        let (listener, open) = (Arc::clone(listener), Arc::clone(&open));
        spawn(shared, format!("v4-reactor-{i}"), None, move |shared| {
            Reactor::new(shared, poll, &open).run(&listener)
        })?;
    }
    Ok(listeners)
}

/// One connection owned by a reactor.
struct Client<'a> {
    stream: TcpStream,
    conn: Conn<Routes>,
    /// Whether WRITABLE interest is registered (only while output is stuck).
    waiting_to_write: bool,
    /// Set once the last response is written after an error: input is drained
    /// until EOF or this time, so that closing does not become an RST.
    draining_until: Option<Instant>,
    _registration: Registration<'a>,
}

struct Reactor<'a> {
    shared: &'a Shared,
    poll: Poll,
    /// Connections open across all reactors, against `max_connections`.
    open: &'a AtomicUsize,
    clients: Vec<Option<Client<'a>>>,
    free: Vec<usize>,
    /// Buffers lent to connections only while they have bytes pending.
    buffers: BufferPool,
    accepting: bool,
    tick: Duration,
}

impl<'a> Reactor<'a> {
    fn new(shared: &'a Shared, poll: Poll, open: &'a AtomicUsize) -> Self {
        let limits = &shared.config.limits;
        let shortest = limits.idle_timeout.min(limits.header_read_timeout);
        Reactor {
            shared,
            poll,
            open,
            clients: Vec::new(),
            free: Vec::new(),
            buffers: BufferPool::new(),
            accepting: true,
            tick: (shortest / 4).clamp(MIN_TICK, MAX_TICK),
        }
    }

    fn run(mut self, listener: &TcpListener) {
        let mut events = Events::with_capacity(EVENT_BATCH);
        let mut next_sweep = Instant::now() + self.tick;
        while self.accepting || self.clients.len() > self.free.len() {
            let wait = next_sweep.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(listener),
                    Token(slot) => self.serve(slot, event.is_read_closed()),
                }
            }
            if Instant::now() >= next_sweep {
                self.sweep_deadlines();
                next_sweep = Instant::now() + self.tick;
            }
        }
    }

    fn accept_all(&mut self, listener: &TcpListener) {
        loop {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(_) if self.shared.is_stopping() => {
                    // Shutdown woke us through the listener: stop accepting.
                    let fd = listener.as_raw_fd();
                    let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                    self.accepting = false;
                    return;
                }
                // EAGAIN, or fd exhaustion: the next connection wakes us again.
                Err(_) => return,
            };
            if self.open.load(Ordering::Relaxed) >= self.shared.config.max_connections {
                reject(stream, Status::ServiceUnavailable);
                continue;
            }
            let _ = stream.set_nodelay(true);
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut stream = TcpStream::from_std(stream);
            let Some(registration) = self.shared.connections.register(&stream) else {
                continue; // stopping
            };
            let slot = self.free.pop().unwrap_or(self.clients.len());
            if self
                .poll
                .registry()
                .register(&mut stream, Token(slot), Interest::READABLE)
                .is_err()
            {
                continue;
            }
            let client = Client {
                stream,
                conn: Conn::new(
                    self.shared.config.routes,
                    self.shared.config.limits,
                    Now::read(),
                ),
                waiting_to_write: false,
                draining_until: None,
                _registration: registration,
            };
            if slot == self.clients.len() {
                self.clients.push(Some(client));
            } else {
                self.clients[slot] = Some(client);
            }
            self.open.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Moves bytes for one connection that epoll reported ready;
    /// `peer_closed` is whether the event says the peer's FIN has arrived.
    fn serve(&mut self, slot: usize, peer_closed: bool) {
        let Some(client) = self.clients.get_mut(slot).and_then(Option::as_mut) else {
            return; // closed earlier in this batch
        };
        let keep = match client.draining_until {
            Some(_) => drain(client),
            None => {
                client.conn.lend(&mut self.buffers);
                let keep = exchange(client, self.poll.registry(), Token(slot), peer_closed);
                client.conn.reclaim(&mut self.buffers);
                keep
            }
        };
        if !keep {
            self.close(slot);
        }
    }

    fn sweep_deadlines(&mut self) {
        let now = Now::read();
        for slot in 0..self.clients.len() {
            let Some(client) = self.clients[slot].as_mut() else {
                continue;
            };
            let keep = match client.draining_until {
                Some(until) => now.instant < until,
                None if now.instant >= client.conn.deadline() => {
                    client.conn.lend(&mut self.buffers);
                    client.conn.on_timeout(now);
                    let keep = exchange(client, self.poll.registry(), Token(slot), false);
                    client.conn.reclaim(&mut self.buffers);
                    keep
                }
                None => true,
            };
            if !keep {
                self.close(slot);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut client) = self.clients[slot].take() {
            let _ = self.poll.registry().deregister(&mut client.stream);
            client.conn.release(&mut self.buffers);
            self.free.push(slot);
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Writes pending output, then reads and answers until the socket has no more
/// input or the client stops reading. Returns false when the connection is done.
fn exchange(
    client: &mut Client<'_>,
    registry: &mio::Registry,
    token: Token,
    peer_closed: bool,
) -> bool {
    let mut socket_drained = false;
    let now = Now::read();
    loop {
        if !flush(client, now) {
            return false;
        }
        if !client.conn.output().is_empty() {
            // The client is not reading: wait for WRITABLE, read nothing more.
            if !client.waiting_to_write {
                client.waiting_to_write = true;
                let both = Interest::READABLE | Interest::WRITABLE;
                return registry.reregister(&mut client.stream, token, both).is_ok();
            }
            return true;
        }
        if client.waiting_to_write {
            client.waiting_to_write = false;
            if registry
                .reregister(&mut client.stream, token, Interest::READABLE)
                .is_err()
            {
                return false;
            }
        }
        if client.conn.is_finished() {
            if !client.conn.needs_linger() {
                return false;
            }
            let _ = client.stream.shutdown(Shutdown::Write);
            client.draining_until = Some(Instant::now() + LINGER_TIME);
            return drain(client);
        }
        if socket_drained {
            // The last read came back short: the socket was empty, and epoll
            // reports the next bytes (or FIN) as a new edge. Skip the read
            // that would only say EAGAIN.
            return true;
        }
        let buf = client.conn.read_buf();
        let room = buf.len();
        match client.stream.read(buf) {
            Ok(n) => {
                // A FIN that arrived before this event is behind the data
                // and raises no new edge: then read on until EOF.
                socket_drained = n > 0 && n < room && !peer_closed;
                client.conn.commit_read(n, now);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Writes as much pending output as the socket takes; false on a dead peer.
fn flush(client: &mut Client<'_>, now: Now) -> bool {
    while !client.conn.output().is_empty() {
        match client.stream.write(client.conn.output()) {
            Ok(0) => return false,
            Ok(n) => client.conn.consume_output(n, now),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Discards input after the final response; false once the peer closed.
fn drain(client: &mut Client<'_>) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match client.stream.read(&mut sink) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
