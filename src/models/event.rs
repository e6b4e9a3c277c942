//! v4, event-driven thread-per-core: N reactor threads, each with its own
//! SO_REUSEPORT listening socket and its own epoll loop (mio) over the
//! connections it accepted. No thread ever blocks on one client; a reactor
//! owns its connections outright, so nothing is shared between reactors but
//! the connection cap.
//!
//! ```text
//! while accepting, or connections are left {
//!     epoll_wait(timeout = earliest deadline, end of an accept pause, or of
//!                shutdown; under 10 ms away, a timerfd in the set times it
//!                instead, to the microsecond)
//!     shutdown began      -> stop accepting; take in what the shutdown drained
//!                            from this reactor's listen queue; keep-alive off on
//!                            every connection
//!     listener readable   -> accept until EAGAIN; past the cap: 503 + close;
//!                            out of descriptors: pause accepting
//!     connection readable -> its step: lend it buffers from the pool, read, Conn::commit_read,
//!                            write what it produced, take back the buffers it no
//!                            longer needs; once it is finished: close, or linger
//!                            (FIN, then drain until EOF or the linger time)
//!     connection writable -> the same, starting with what is left to write
//!     pause over          -> accept again, draining the queue
//!     deadlines due       -> 408 or close (an idle connection once the grace
//!                            period is over), or a parked request's reply
//!                            (then read on); or re-arm at the connection's
//!                            later deadline
//!     shutdown timed out  -> return: the connections still open are dropped
//! }
//! ```
//!
//! Deadlines live in a heap ordered by time ([`Deadlines`]), armed no later
//! than each connection's deadline and re-checked when they come due, so
//! every timeout fires on time without a timer syscall per request. A
//! connection whose client does not read its responses stops being read
//! (its output is not allowed to grow while it waits): back-pressure instead
//! of buffering without bound. A request its handler parks
//! ([`crate::http::Answer::Later`]) holds no thread and no buffer: the
//! connection stops being read, and its entry in the deadline heap, armed at
//! the end of the wait, wakes it.

use std::io::{self, Read};
use std::net::{Shutdown, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::deadlines::Deadlines;
use super::reactor::{next_wake, Accepting, Stage};
use super::slots::Slots;
use super::wake_timer::{WakeTimer, PRECISE_BELOW};
use super::{
    bind_shared_port, deadline_of, reject, request_waiting, spawn, start_threads, AcceptError,
    IterationClock, Linger, Shared, ShutdownClock, ACCEPT_BACKOFF,
};
use crate::http::{BufferPool, Conn, Now, Status};
use crate::route::Routes;

const LISTENER: Token = Token(usize::MAX);
/// The reactor's [`WakeTimer`].
const WAKE: Token = Token(usize::MAX - 1);
/// Events taken per epoll_wait.
const EVENT_BATCH: usize = 256;

pub(super) fn start(shared: &Arc<Shared>) -> io::Result<Vec<Arc<TcpListener>>> {
    let config = &shared.config;
    let listeners = bind_shared_port(config, config.reactors)?;
    let open = Arc::new(AtomicUsize::new(0));
    start_threads(shared, listeners, |listeners| {
        for (i, listener) in listeners.iter().enumerate() {
            listener.set_nonblocking(true)?;
            let poll = Poll::new()?;
            poll.registry().register(
                &mut SourceFd(&listener.as_raw_fd()),
                LISTENER,
                Interest::READABLE,
            )?;
            let timer = WakeTimer::new()?;
            poll.registry().register(
                &mut SourceFd(&timer.as_raw_fd()),
                WAKE,
                Interest::READABLE,
            )?;
            let (listener, open) = (Arc::clone(listener), Arc::clone(&open));
            spawn(shared, format!("v4-reactor-{i}"), None, move |shared| {
                Reactor::new(shared, poll, timer, &open).run(&listener)
            })?;
        }
        Ok(())
    })
}

/// Why a connection is looked at.
#[derive(Clone, Copy)]
enum Step {
    /// epoll reported it ready; whether the peer's FIN has arrived.
    Ready { peer_closed: bool },
    /// Its deadline passed.
    TimedOut,
}

/// One connection owned by a reactor; its handler is the server's routes.
struct Client<'a> {
    stream: TcpStream,
    conn: Conn<&'a Routes>,
    /// Whether WRITABLE interest is registered (only while output is stuck).
    waiting_to_write: bool,
    /// Open, or lingering once the last response is written on a
    /// connection whose peer may still be sending ([`Conn::needs_linger`]:
    /// after an error, or with input left unread). v4 closes a connection
    /// at once, so never holds one at [`Stage::Closing`].
    stage: Stage,
}

impl Client<'_> {
    /// When the reactor must next look at this connection unprompted.
    #[inline]
    fn deadline(&self, grace_end: Option<Instant>) -> Instant {
        match self.stage {
            Stage::Lingering(linger) => linger.until,
            Stage::Open | Stage::Closing => deadline_of(&self.conn, grace_end),
        }
    }
}

struct Reactor<'a> {
    shared: &'a Shared,
    poll: Poll,
    /// Connections open across all reactors, against `max_connections`.
    open: &'a AtomicUsize,
    /// The connections, at the slot numbers their tokens carry.
    clients: Slots<Option<Client<'a>>>,
    /// Buffers lent to connections only while they have bytes pending.
    buffers: BufferPool,
    deadlines: Deadlines,
    /// Times the next wake when it is nearer than epoll's milliseconds allow.
    timer: WakeTimer,
    accepting: Accepting,
    /// Set when this reactor saw the shutdown begin.
    shutdown: Option<ShutdownClock>,
    /// The time, read once per loop iteration (and after slow handlers).
    clock: IterationClock,
}

impl<'a> Reactor<'a> {
    fn new(shared: &'a Shared, poll: Poll, timer: WakeTimer, open: &'a AtomicUsize) -> Self {
        Reactor {
            shared,
            poll,
            open,
            clients: Slots::new(),
            buffers: BufferPool::new(),
            deadlines: Deadlines::new(),
            timer,
            accepting: Accepting::Open,
            shutdown: None,
            clock: IterationClock::new(&shared.config.routes),
        }
    }

    fn run(mut self, listener: &TcpListener) {
        let mut events = Events::with_capacity(EVENT_BATCH);
        while self.accepting != Accepting::Stopped || self.clients.in_use() > 0 {
            let hard_end = self.shutdown.map(|clock| clock.hard_end);
            let wait = next_wake(self.deadlines.next(), self.accepting, hard_end)
                .map(|at| at.saturating_duration_since(self.clock.now.instant));
            // A near wake (a parked request's) is timed by the timerfd:
            // epoll's timeout, in whole milliseconds, would be late.
            let timeout = match wait {
                Some(near) if !near.is_zero() && near < PRECISE_BELOW => {
                    self.timer.arm(near);
                    None
                }
                other => {
                    self.timer.disarm();
                    other
                }
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            self.clock.tick();
            if self.shutdown.is_none() {
                if let Some(clock) = self.shared.shutdown_begun() {
                    self.begin_shutdown(listener, clock);
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER if self.accepting == Accepting::Open => self.accept_all(listener),
                    LISTENER => {} // paused: drained when the pause ends
                    WAKE => self.timer.fired(),
                    Token(slot) => {
                        let peer_closed = event.is_read_closed();
                        self.step(slot as u32, Step::Ready { peer_closed });
                    }
                }
            }
            // Read again: deadlines are due by the time the events took.
            self.clock.tick();
            let now = self.clock.now.instant;
            if self.accepting.resume_if_over(now) {
                self.accept_all(listener);
            }
            self.expire_deadlines(now);
            if self.shutdown.is_some_and(|clock| now >= clock.hard_end) {
                return; // the shutdown timeout: the remaining clients drop
            }
        }
    }

    /// Stops accepting, takes in the connections the shutdown drained from
    /// this reactor's listen queue, and turns keep-alive off everywhere:
    /// each connection answers what it has buffered or receives in the
    /// grace period, then closes; one with nothing in progress closes when
    /// the grace period ends.
    fn begin_shutdown(&mut self, listener: &TcpListener, clock: ShutdownClock) {
        self.shutdown = Some(clock);
        self.accepting = Accepting::Stopped;
        let fd = listener.as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        for stream in self.shared.take_drained(listener) {
            self.admit(stream);
        }
        for slot in self.clients.indices() {
            if let Some(client) = self.clients[slot].as_mut() {
                client.conn.disable_keep_alive();
                self.arm(slot);
            }
        }
    }

    fn grace_end(&self) -> Option<Instant> {
        self.shutdown.map(|clock| clock.grace_end)
    }

    fn accept_all(&mut self, listener: &TcpListener) {
        loop {
            match listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) => match AcceptError::of(&e) {
                    AcceptError::Transient => continue,
                    AcceptError::Empty => return,
                    AcceptError::Exhausted => {
                        let until = Instant::now() + ACCEPT_BACKOFF;
                        self.accepting = Accepting::PausedUntil(until);
                        return;
                    }
                },
            }
        }
    }

    /// Takes an accepted connection into the loop, or answers 503 past the
    /// connection cap.
    fn admit(&mut self, stream: std::net::TcpStream) {
        if self.open.load(Ordering::Relaxed) >= self.shared.config.max_connections {
            reject(stream, Status::ServiceUnavailable);
            return;
        }
        let _ = stream.set_nodelay(true);
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let mut stream = TcpStream::from_std(stream);
        let slot = self.clients.claim();
        if self
            .poll
            .registry()
            .register(&mut stream, Token(slot as usize), Interest::READABLE)
            .is_err()
        {
            self.clients.release(slot);
            return;
        }
        let config = &self.shared.config;
        let client = Client {
            stream,
            conn: Conn::new(&config.routes, config.limits, self.clock.now),
            waiting_to_write: false,
            stage: Stage::Open,
        };
        self.clients[slot] = Some(client);
        self.open.fetch_add(1, Ordering::Relaxed);
        self.arm(slot);
    }

    /// One step of one connection, with its buffers lent for the step: an
    /// exchange when epoll reported it ready, a timeout when its deadline
    /// passed (a lingering connection is closed then). Then its deadline is
    /// re-armed, or it is closed.
    fn step(&mut self, slot: u32, step: Step) {
        let Some(client) = self.clients.get_mut(slot).and_then(Option::as_mut) else {
            return; // closed earlier in this batch
        };
        let keep = match (client.stage, step) {
            (Stage::Lingering(_), Step::Ready { .. }) => drain(client),
            (Stage::Lingering(_), Step::TimedOut) | (Stage::Closing, _) => false,
            (Stage::Open, _) => {
                client.conn.lend(&mut self.buffers);
                let peer_closed = match step {
                    Step::Ready { peer_closed } => peer_closed,
                    // Idle at the grace period's end, but its next request
                    // has arrived (its event is not handled yet): read it
                    // rather than close over it.
                    Step::TimedOut
                        if self.shutdown.is_some()
                            && request_waiting(&client.conn, client.stream.as_raw_fd()) =>
                    {
                        false
                    }
                    Step::TimedOut => {
                        client.conn.on_timeout(self.clock.now);
                        false
                    }
                };
                let token = Token(slot as usize);
                let registry = self.poll.registry();
                let keep = exchange(client, registry, token, peer_closed, &mut self.clock);
                client.conn.reclaim(&mut self.buffers);
                keep
            }
        };
        if keep {
            self.arm(slot);
        } else {
            self.close(slot);
        }
    }

    /// Makes `slot`'s deadline entry come due no later than its connection's
    /// deadline; in steady state one comparison, no heap operation.
    #[inline]
    fn arm(&mut self, slot: u32) {
        if let Some(client) = self.clients[slot].as_ref() {
            let at = client.deadline(self.grace_end());
            self.deadlines.arm_by(slot, at);
        }
    }

    /// Handles every deadline entry that has come due: a connection whose
    /// deadline really passed is timed out (408, or closed); one whose
    /// deadline moved later since it was armed is re-armed there.
    fn expire_deadlines(&mut self, now: Instant) {
        let grace_end = self.grace_end();
        while let Some(slot) = self.deadlines.pop_due(now) {
            let Some(client) = self.clients[slot].as_mut() else {
                continue;
            };
            let due = client.deadline(grace_end);
            if due > now {
                self.deadlines.set(slot, due);
                continue;
            }
            self.step(slot, Step::TimedOut);
        }
    }

    fn close(&mut self, slot: u32) {
        if let Some(mut client) = self.clients[slot].take() {
            let _ = self.poll.registry().deregister(&mut client.stream);
            client.conn.release(&mut self.buffers);
            self.deadlines.cancel(slot);
            self.clients.release(slot);
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
    clock: &mut IterationClock,
) -> bool {
    let mut socket_drained = false;
    loop {
        if !flush(client, clock.now) {
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
            client.stage = Stage::Lingering(Linger::begin(clock.now.instant));
            return drain(client);
        }
        if client.conn.is_awaiting() {
            // Parked: the next requests wait in the socket until the
            // deadline heap wakes the connection (its deadline is the end of
            // the wait), then this loop reads them.
            return true;
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
                client.conn.commit_read(n, clock.now);
                clock.after_handlers();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Writes as much pending output as the socket takes; false on a dead peer.
/// Progress is stamped with the loop iteration's time, re-read after slow
/// handlers ([`IterationClock`]): a long exchange must not date its last
/// write back to its start.
fn flush(client: &mut Client<'_>, now: Now) -> bool {
    super::flush(&client.stream, &mut client.conn, now)
}

/// Discards input after the final response; false once the peer closed or
/// [`super::LINGER_BYTES`] were dropped.
fn drain(client: &mut Client<'_>) -> bool {
    match &mut client.stage {
        Stage::Lingering(linger) => super::drain(&client.stream, linger),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an idle connection costs its reactor is its table entry (its
    /// buffers are lent only while bytes are pending): the protocol state
    /// and little more (mio's stream carries a registry check in debug
    /// builds, 16 bytes of the bound; a lingering close's state 24).
    #[test]
    fn a_table_entry_is_its_conn_and_little_more() {
        let conn = size_of::<Conn<&Routes>>();
        let entry = size_of::<Option<Client<'_>>>();
        assert!(entry <= conn + 48, "entry {entry} B, its Conn {conn} B");
    }
}
