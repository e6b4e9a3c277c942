//! v5, io_uring thread-per-core: N reactor threads, each with its own
//! SO_REUSEPORT listening socket, its own io_uring and its own connections.
//! Nothing is shared between reactors on the request path (the connection cap
//! is counted on accept and close only).
//!
//! ```text
//! loop {
//!     shutdown began -> stop accepting; take in what the shutdown drained from
//!                       this reactor's listen queue; keep-alive off on every
//!                       connection
//!     shutting down, no accept in flight, no connection left -> hand over the
//!                       last closes, return
//!     accepting and no accept armed, or its pause over -> arm the multishot
//!                       accept (it drains the queue first)
//!     io_uring_enter(submit everything queued below; wait for a completion
//!                    or until the earliest deadline)
//!     accepted       -> a new connection, its multishot recv armed;
//!                       past the cap: 503 + close
//!     accept failed  -> out of descriptors or memory: pause accepting
//!     received bytes -> from a provided buffer into Conn, through buffers lent
//!                       from the pool (the ring's buffer goes back at once);
//!                       held while output is unsent or a request is parked
//!     ring ran dry   -> the ring grows; the recv is re-armed
//!     sent n bytes   -> Conn::consume_output
//!     deadline due   -> Conn::on_timeout (408 or close; an idle connection
//!                       after the shutdown's grace period; a parked request's
//!                       reply, then the bytes held behind it); a stalled send: drop
//!     shutdown timed out -> every connection's socket shut down, then closed
//!     every connection touched above -> its step, queued for the next
//!                       enter: send the output, re-arm or cancel the recv,
//!                       linger, close
//! }
//! ```
//!
//! The kernel does the waiting and the copying: one multishot accept per
//! listener, one multishot recv per connection, reading into a ring of
//! buffers the reactor owns, and every send of an iteration goes out with the
//! one `io_uring_enter` that also waits. The bytes are copied into buffers
//! the reactor lends the connection's `Conn` from its [`BufferPool`] only
//! while bytes are pending, so an idle connection holds no buffer at all.
//! Deadlines live in a heap ordered by time ([`Deadlines`], shared with v4).
//!
//! Back-pressure: the core is only given bytes while none of its output is
//! unsent, as in v4. Bytes that arrive meanwhile are held (copied out of the
//! ring, so that a client that does not read cannot hold the ring's buffers),
//! and past [`HOLD_LIMIT`] the connection's recv is cancelled until the client
//! reads again. A send that makes no progress for the idle timeout drops the
//! connection.
//!
//! Memory the kernel uses belongs to the reactor until the operation's last
//! completion: a connection's output is not touched while a send points into
//! it, its socket is closed (with an io_uring close) only once its recv and
//! send have completed, and a reactor that ends with operations still in
//! flight leaks their memory rather than free it under the kernel.

pub(crate) mod buf_ring;
pub(crate) mod ring;

pub use ring::availability;

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use io_uring::squeue::{Entry, Flags};
use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, CompletionQueue, SubmissionQueue, Submitter};
use socket2::SockRef;

use self::buf_ring::BufRing;
use super::deadlines::Deadlines;
use super::reactor::{next_wake, Accepting, Stage};
use super::slots::Slots;
use super::{
    bind_shared_port, deadline_of, reject, request_waiting, shutdown_raw, spawn, start_threads,
    AcceptError, IterationClock, Linger, Shared, ShutdownClock, ACCEPT_BACKOFF,
};
use crate::http::{BufferPool, Conn, Now, Status};
use crate::route::Routes;

/// Most receive buffers per reactor. Only connections with bytes arriving
/// hold one, and only until the iteration has copied them out; past this
/// many arrivals in one iteration the rest get ENOBUFS and are re-armed.
const BUFFER_COUNT: u16 = 256;
/// Receive buffers a reactor starts with; the ring doubles each time it
/// runs dry, up to [`BUFFER_COUNT`], since every buffer in it gets used in
/// turn (see [`BufRing`]): its memory follows the most arrivals one
/// iteration has seen.
const BUFFER_INITIAL: u16 = 64;
/// Bytes per receive buffer: a request of a usual size, or a pipelined batch
/// of 16 small ones, fits; a larger read arrives in several completions.
const BUFFER_SIZE: u32 = 1024;
const BUFFER_GROUP: u16 = 0;
/// Bytes held for a connection whose client is not reading its responses,
/// past which its recv is cancelled (back-pressure).
const HOLD_LIMIT: usize = 16 * 1024;
/// Held buffers kept for reuse once their connection drained them.
const SPARE_HELD: usize = 64;

pub(super) fn start(shared: &Arc<Shared>) -> io::Result<Vec<Arc<TcpListener>>> {
    availability().map_err(|why| io::Error::new(io::ErrorKind::Unsupported, why))?;
    let config = &shared.config;
    let listeners = bind_shared_port(config, config.reactors)?;
    let open = Arc::new(AtomicUsize::new(0));
    start_threads(shared, listeners, |listeners| {
        let (ready, started) = mpsc::channel();
        let mut outcome = Ok(());
        for (i, listener) in listeners.iter().enumerate() {
            // Accepted sockets inherit TCP_NODELAY: no setsockopt per connection.
            let spawned = SockRef::from(&**listener)
                .set_tcp_nodelay(true)
                .and_then(|()| {
                    let (listener, open, ready) =
                        (Arc::clone(listener), Arc::clone(&open), ready.clone());
                    spawn(shared, format!("v5-ring-{i}"), None, move |shared| {
                        run(shared, &listener, &open, ready)
                    })
                });
            if let Err(e) = spawned {
                outcome = Err(e);
                break;
            }
        }
        drop(ready);
        // Every reactor that started reports whether its ring is set up (or
        // hangs up without a word, if its thread died).
        for report in started.iter().take(listeners.len()) {
            if let (Ok(()), Err(e)) = (&outcome, report) {
                outcome = Err(e);
            }
        }
        outcome
    })
}

/// One reactor thread: sets up its ring and buffer ring, reports, serves.
fn run(
    shared: &Shared,
    listener: &TcpListener,
    open: &AtomicUsize,
    ready: mpsc::Sender<io::Result<()>>,
) {
    // Declared before the ring, so that it is dropped after it.
    let mut buffers = match BufRing::new(BUFFER_COUNT, BUFFER_SIZE, BUFFER_INITIAL) {
        Ok(buffers) => buffers,
        Err(e) => return drop(ready.send(Err(e))),
    };
    let mut ring = match ring::new_ring(ring::SQ_ENTRIES) {
        Ok(ring) => ring,
        Err(e) => return drop(ready.send(Err(e))),
    };
    let quiet = match ring.params().is_feature_skip_cqe_on_success() {
        true => Flags::SKIP_SUCCESS,
        false => Flags::empty(),
    };
    let (mut submitter, sq, cq) = ring.split();
    // Optional: saves a descriptor lookup per io_uring_enter (Linux 5.18+).
    let _ = submitter.register_ring_fd();
    // SAFETY: `buffers` outlives the ring (declared before it); the reactor
    // leaks it rather than drop it while a recv may still write into it.
    if let Err(e) = unsafe { buffers.register(&submitter, BUFFER_GROUP) } {
        return drop(ready.send(Err(e)));
    }
    let _ = ready.send(Ok(()));
    drop(ready);
    Reactor {
        shared,
        open,
        listener,
        submitter,
        sq,
        cq,
        quiet,
        buffers: &mut buffers,
        overflow: Vec::new(),
        clients: Slots::new(),
        touched: Vec::new(),
        deadlines: Deadlines::new(),
        pool: BufferPool::new(),
        spare_held: Vec::new(),
        accepting: Accepting::Open,
        accept_armed: false,
        shutdown: None,
        cut: false,
        clock: IterationClock::new(&shared.config.routes),
    }
    .run();
}

struct Reactor<'r> {
    shared: &'r Shared,
    /// Connections open across all reactors, against `max_connections`.
    open: &'r AtomicUsize,
    listener: &'r TcpListener,
    submitter: Submitter<'r>,
    sq: SubmissionQueue<'r>,
    cq: CompletionQueue<'r>,
    /// SKIP_SUCCESS where supported, for cancels and closes.
    quiet: Flags,
    buffers: &'r mut BufRing,
    /// Entries queued while the submission queue was full, submitted first.
    overflow: Vec<Entry>,
    /// The connections, at the slot numbers their operations carry.
    clients: Slots<Slot<'r>>,
    /// Connections to step at the end of this iteration.
    touched: Vec<u32>,
    /// Each connection's next deadline, armed no later than it.
    deadlines: Deadlines,
    /// Input and output buffers, lent to a connection only while it has
    /// bytes pending: an idle connection holds none.
    pool: BufferPool,
    spare_held: Vec<Held>,
    accepting: Accepting,
    /// Whether the listener's multishot accept is in flight.
    accept_armed: bool,
    /// Set when this reactor saw the shutdown begin.
    shutdown: Option<ShutdownClock>,
    /// Whether the shutdown timeout has cut every connection.
    cut: bool,
    /// The time: read once per iteration, after the wait, and again after
    /// each handler call when handlers spend time (`--work`).
    clock: IterationClock,
}

impl Reactor<'_> {
    fn run(mut self) {
        loop {
            if self.shutdown.is_none() {
                if let Some(clock) = self.shared.shutdown_begun() {
                    self.begin_shutdown(clock);
                }
            }
            self.keep_accepting();
            if self.shutdown.is_some() && !self.accept_armed && self.clients.in_use() == 0 {
                // The last closes are still queued: hand them over (a
                // socket's close runs inline, within the enter).
                self.flush_overflow();
                self.sq.sync();
                let _ = self.submitter.submit();
                return;
            }
            if let Err(e) = self.submit_and_wait() {
                eprintln!("servelab: v5 reactor stopped: io_uring_enter failed: {e}");
                return;
            }
            self.clock.tick();
            while let Some(cqe) = self.cq.next() {
                self.complete(cqe.user_data(), cqe.result(), cqe.flags());
            }
            self.expire_deadlines();
            if !self.cut
                && self
                    .shutdown
                    .is_some_and(|c| self.clock.now.instant >= c.hard_end)
            {
                self.cut_all();
            }
            while let Some(slot) = self.touched.pop() {
                self.step(slot);
            }
        }
    }

    fn keep_accepting(&mut self) {
        let due = match self.accepting {
            Accepting::Open => !self.accept_armed,
            Accepting::PausedUntil(_) => self.accepting.resume_if_over(self.clock.now.instant),
            Accepting::Stopped => false,
        };
        if !due || self.shutdown.is_some() || self.shared.stops_accepting() {
            return;
        }
        let accept = opcode::AcceptMulti::new(Fd(self.listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(user_data(Op::Accept, 0, 0));
        // SAFETY: an accept points to no memory of ours.
        unsafe { self.push(accept) };
        // Arming drains the backlog first: connections queued during a
        // back-off are accepted at once.
        self.accept_armed = true;
    }

    /// Handles one completion; the connections it concerns are stepped
    /// once all completions of the iteration are in.
    fn complete(&mut self, user_data: u64, res: i32, flags: u32) {
        match decode(user_data) {
            (Some(Op::Accept), _, _) => self.accepted(res, flags),
            (Some(Op::Recv), slot, generation) => self.received(slot, generation, res, flags),
            (Some(Op::Send), slot, generation) => self.sent(slot, generation, res),
            (Some(Op::Cleanup) | None, _, _) => {}
        }
    }

    fn accepted(&mut self, res: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.accept_armed = false;
        }
        if res >= 0 {
            // SAFETY: a descriptor the kernel just created for us alone.
            self.admit(unsafe { OwnedFd::from_raw_fd(res) });
            return;
        }
        if self.shutdown.is_some() || self.shared.stops_accepting() || -res == libc::ECANCELED {
            return; // the shutdown, seen at the top of the next iteration
        }
        match AcceptError::of(&io::Error::from_raw_os_error(-res)) {
            AcceptError::Transient | AcceptError::Empty => {}
            // EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything else that would
            // fail again at once: pause, then re-arm and drain the backlog.
            AcceptError::Exhausted => {
                if self.accept_armed {
                    self.cancel(user_data(Op::Accept, 0, 0));
                    self.accept_armed = false;
                }
                self.accepting = Accepting::PausedUntil(self.clock.now.instant + ACCEPT_BACKOFF);
            }
        }
    }

    /// Takes an accepted connection in. One that arrives once shutdown has
    /// begun (drained from the listen queue, or accepted before the accept
    /// was cancelled) is served with keep-alive off, like those already
    /// open. Past the connection cap, or once the shutdown timeout has cut
    /// everything, it is answered 503.
    fn admit(&mut self, fd: OwnedFd) {
        let config = &self.shared.config;
        if self.cut || self.open.load(Ordering::Relaxed) >= config.max_connections {
            reject(TcpStream::from(fd), Status::ServiceUnavailable);
            return;
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        let mut conn = Conn::new(&config.routes, config.limits, self.clock.now);
        if self.shutdown.is_some() {
            conn.disable_keep_alive();
        }
        let client = Client {
            fd,
            conn,
            stage: Stage::Open,
            recv: Recv::Off,
            sending: Sending::Idle,
            peer_closed: false,
            held: None,
            touched: false,
        };
        let slot = self.clients.claim();
        self.clients[slot].client = Some(client);
        self.touch(slot);
    }

    fn received(&mut self, slot: u32, generation: u32, res: i32, flags: u32) {
        let buffer = cqueue::buffer_select(flags);
        if let Some(client) = client_mut(&mut self.clients, slot, generation) {
            if !cqueue::more(flags) {
                client.recv = Recv::Off;
            }
            match (res, buffer) {
                (n, Some(id)) if n > 0 => {
                    // SAFETY: the buffer id and length of this completion,
                    // given back just below and not before.
                    let bytes = unsafe { self.buffers.received(id, n as usize) };
                    client.take_bytes(bytes, self.clock.now, &mut self.spare_held, &mut self.pool);
                    self.clock.after_handlers();
                }
                (0, _) => client.peer_closed = true,
                // The ring ran dry: the recv ended and is re-armed once this
                // iteration has given its buffers back, to a larger ring.
                (e, _) if e == -libc::ENOBUFS => {
                    self.buffers.grow();
                }
                (e, _) if e == -libc::ECANCELED => {}
                // ECONNRESET and the like: nothing more will come or go.
                _ => {
                    client.peer_closed = true;
                    client.stage = Stage::Closing;
                }
            }
            self.touch(slot);
        }
        if let (Some(id), true) = (buffer, res > 0) {
            self.buffers.give_back(id);
        }
    }

    fn sent(&mut self, slot: u32, generation: u32, res: i32) {
        let now = self.clock.now;
        let Some(client) = client_mut(&mut self.clients, slot, generation) else {
            return;
        };
        client.sending = Sending::Idle;
        if client.stage == Stage::Open {
            match (res, client.quiet_conn()) {
                (n, Some(conn)) if n > 0 => conn.consume_output(n as usize, now),
                // EPIPE, ECONNRESET: the peer is gone.
                _ => client.stage = Stage::Closing,
            }
        }
        self.touch(slot);
    }

    /// Touches every connection whose armed deadline has come; `step`
    /// then acts on its actual deadline (or arms it again, later).
    fn expire_deadlines(&mut self) {
        while let Some(slot) = self.deadlines.pop_due(self.clock.now.instant) {
            self.touch(slot);
        }
    }

    fn touch(&mut self, slot: u32) {
        if let Some(client) = self.clients[slot].client.as_mut() {
            if !client.touched {
                client.touched = true;
                self.touched.push(slot);
            }
        }
    }

    /// The whole exchange of one connection, after its completions or its
    /// deadline: feed the core what was held, send what it produced, time
    /// it out, linger, keep its recv armed or cancel it, close it, and file
    /// its next deadline.
    fn step(&mut self, slot: u32) {
        let now = self.clock.now;
        let generation = self.clients[slot].generation;
        let Some(client) = self.clients[slot].client.as_mut() else {
            return;
        };
        client.touched = false;
        let grace_end = self.shutdown.map(|clock| clock.grace_end);
        let due = client
            .deadline(grace_end)
            .is_some_and(|at| at <= now.instant)
            && !(grace_end.is_some() && client.request_waiting());
        let mut send = None;
        match client.stage {
            Stage::Open => match client.quiet_conn() {
                Some(conn) => {
                    if due {
                        conn.lend(&mut self.pool);
                        conn.on_timeout(now); // 408, or close
                    }
                    client.feed_held(now, &mut self.spare_held, &mut self.pool);
                    self.clock.after_handlers();
                    // No send in flight and everything fed: the buffers not
                    // needed now go back to the pool (the output stays
                    // while unsent: the send below points into it).
                    client.conn.reclaim(&mut self.pool);
                    let conn = &client.conn;
                    if !conn.output().is_empty() {
                        send = Some((conn.output().as_ptr(), conn.output().len()));
                    } else if conn.is_finished() {
                        client.stage = match conn.needs_linger() && !client.peer_closed {
                            true => {
                                shutdown_raw(client.fd.as_raw_fd(), libc::SHUT_WR);
                                Stage::Lingering(Linger::begin(now.instant))
                            }
                            false => Stage::Closing,
                        };
                    }
                }
                // A send is in flight: a deadline now means it has made no
                // progress for the idle timeout. What it was owed is dropped.
                None if due => client.stage = Stage::Closing,
                None => {}
            },
            Stage::Lingering(_) if due || client.peer_closed => client.stage = Stage::Closing,
            _ => {}
        }
        if client.stage == Stage::Closing {
            if let Some(held) = client.held.take() {
                spare(&mut self.spare_held, held);
            }
        }
        let want_recv = match client.stage {
            Stage::Open => {
                let held = client.held.as_ref().map_or(0, |held| held.len());
                !client.conn.is_closing() && !client.peer_closed && held < HOLD_LIMIT
            }
            Stage::Lingering(_) => !client.peer_closed,
            Stage::Closing => false,
        };
        let fd = Fd(client.fd.as_raw_fd());
        let mut entries: [Option<Entry>; 3] = [None, None, None];
        if let Some((output, len)) = send {
            client.sending = Sending::InFlight;
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            let send = opcode::Send::new(fd, output, len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(user_data(Op::Send, slot, generation));
            entries[0] = Some(send);
        }
        match (want_recv, client.recv) {
            (true, Recv::Off) => {
                client.recv = Recv::Armed;
                let recv = opcode::RecvMulti::new(fd, BUFFER_GROUP)
                    .build()
                    .user_data(user_data(Op::Recv, slot, generation));
                entries[1] = Some(recv);
            }
            (false, Recv::Armed) => {
                client.recv = Recv::Cancelling;
                entries[1] = Some(cancel(user_data(Op::Recv, slot, generation), self.quiet));
            }
            _ => {}
        }
        if client.stage == Stage::Closing && client.sending == Sending::InFlight {
            client.sending = Sending::Cancelling;
            entries[2] = Some(cancel(user_data(Op::Send, slot, generation), self.quiet));
        }
        let finished = client.stage == Stage::Closing
            && client.recv == Recv::Off
            && client.sending == Sending::Idle;
        if !finished {
            if let Some(at) = client.deadline(grace_end) {
                self.deadlines.arm_by(slot, at);
            }
        }
        for entry in entries.into_iter().flatten() {
            // SAFETY: a send points into this connection's output, which is
            // not touched until the send's completion (`quiet_conn`) and
            // whose heap buffer does not move when the `Client` does; a recv
            // writes into the reactor's buffer ring, which outlives it;
            // cancels point to no memory.
            unsafe { self.push(entry) };
        }
        if finished {
            self.close(slot);
        }
    }

    /// Closes a connection none of whose operations is in flight.
    fn close(&mut self, slot: u32) {
        let entry = &mut self.clients[slot];
        let Some(client) = entry.client.take() else {
            return;
        };
        entry.generation = (entry.generation + 1) & GENERATION_MASK;
        self.clients.release(slot);
        self.deadlines.cancel(slot);
        self.open.fetch_sub(1, Ordering::Relaxed);
        let Client { fd, conn, held, .. } = client;
        conn.release(&mut self.pool);
        if let Some(held) = held {
            spare(&mut self.spare_held, held);
        }
        let close = opcode::Close::new(Fd(fd.into_raw_fd()))
            .build()
            .flags(self.quiet)
            .user_data(user_data(Op::Cleanup, slot, 0));
        // SAFETY: a close points to no memory; the descriptor is no longer
        // owned by anything else.
        unsafe { self.push(close) };
    }

    fn cancel(&mut self, target: u64) {
        let entry = cancel(target, self.quiet);
        // SAFETY: a cancel points to no memory.
        unsafe { self.push(entry) };
    }

    /// Shutdown begins: accept no more, take in the connections the
    /// shutdown drained from this reactor's listen queue, and turn
    /// keep-alive off everywhere: each connection answers what it has
    /// buffered or receives within the grace period (the last response
    /// saying `Connection: close`), and one with nothing in progress closes
    /// when the grace period ends ([`deadline_of`]).
    fn begin_shutdown(&mut self, clock: ShutdownClock) {
        self.shutdown = Some(clock);
        self.accepting = Accepting::Stopped;
        if self.accept_armed {
            self.cancel(user_data(Op::Accept, 0, 0));
        }
        for stream in self.shared.take_drained(self.listener) {
            self.admit(OwnedFd::from(stream));
        }
        for slot in self.clients.indices() {
            if let Some(client) = self.clients[slot].client.as_mut() {
                // Sets a flag only: safe while a send points into the output.
                client.conn.disable_keep_alive();
                self.touch(slot);
            }
        }
        // Before the next wait, so that it already counts the grace period.
        while let Some(slot) = self.touched.pop() {
            self.step(slot);
        }
    }

    /// The shutdown timeout: every connection still open is cut. Shutting
    /// its socket down ends its recv and send at once, and the connection
    /// then closes the usual way, once they have completed.
    fn cut_all(&mut self) {
        self.cut = true;
        for slot in self.clients.indices() {
            if let Some(client) = self.clients[slot].client.as_mut() {
                shutdown_raw(client.fd.as_raw_fd(), libc::SHUT_RDWR);
                client.stage = Stage::Closing;
                self.touch(slot);
            }
        }
    }

    /// The one `io_uring_enter` of an iteration: submits everything queued
    /// and waits for a completion, or until the earliest deadline.
    fn submit_and_wait(&mut self) -> io::Result<()> {
        self.buffers.publish();
        self.flush_overflow();
        self.sq.sync();
        self.cq.sync();
        let hard_end = self.shutdown.filter(|_| !self.cut).map(|c| c.hard_end);
        let wake_at = next_wake(self.deadlines.next(), self.accepting, hard_end);
        let waited = match wake_at {
            Some(at) => {
                let timeout = Timespec::from(at.saturating_duration_since(Instant::now()));
                let args = SubmitArgs::new().timespec(&timeout);
                self.submitter.submit_with_args(1, &args)
            }
            None => self.submitter.submit_and_wait(1),
        };
        self.sq.sync();
        self.cq.sync();
        match waited {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                // Timed out, interrupted, or completions backed up: go on
                // and reap what there is; anything unsubmitted stays queued.
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// Queues `entry` for the next enter.
    ///
    /// # Safety
    ///
    /// Whatever `entry` points to must stay valid until its last completion.
    unsafe fn push(&mut self, entry: Entry) {
        // SAFETY: passed on from the caller.
        if !self.overflow.is_empty() || unsafe { self.sq.push(&entry) }.is_err() {
            self.overflow.push(entry);
        }
    }

    /// Moves entries queued while the submission queue was full into it,
    /// submitting early as often as it fills.
    fn flush_overflow(&mut self) {
        let mut queued = 0;
        while queued < self.overflow.len() {
            // SAFETY: each entry's memory was vouched for when it was queued.
            match unsafe { self.sq.push(&self.overflow[queued]) } {
                Ok(()) => queued += 1,
                Err(_) => {
                    self.sq.sync();
                    if self.submitter.submit().is_err() {
                        break; // retried next iteration
                    }
                    self.sq.sync();
                }
            }
        }
        self.overflow.drain(..queued);
    }
}

impl Drop for Reactor<'_> {
    /// A reactor that ends with operations in flight (its ring failed, or
    /// the reactor panicked: a handler's panic is caught in the core) cannot
    /// wait for them: it leaks the memory they may still read or write,
    /// rather than free it under the kernel.
    fn drop(&mut self) {
        if self.clients.in_use() > 0 {
            self.buffers.leak();
            std::mem::forget(std::mem::take(&mut self.clients));
        }
    }
}

/// A connection's multishot recv.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Recv {
    Off,
    Armed,
    Cancelling,
}

/// A connection's send, which points into its `Conn`'s output while not idle.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sending {
    Idle,
    InFlight,
    Cancelling,
}

/// One connection owned by a reactor; its handler is the server's routes.
struct Client<'r> {
    fd: OwnedFd,
    /// The protocol state. Mutated only through [`Client::quiet_conn`], so
    /// never while a send points into its output.
    conn: Conn<&'r Routes>,
    stage: Stage,
    recv: Recv,
    sending: Sending,
    /// The peer's FIN (or a reset) has been read.
    peer_closed: bool,
    /// Bytes received while the core could not take them, oldest first;
    /// `None` while there are none.
    held: Option<Held>,
    /// Whether it is on the reactor's to-step list.
    touched: bool,
}

impl<'r> Client<'r> {
    /// The core, while no send points into its output: only then may it be
    /// fed, time out or have output consumed (any of which may move or
    /// clear the output buffer).
    fn quiet_conn(&mut self) -> Option<&mut Conn<&'r Routes>> {
        (self.sending == Sending::Idle).then_some(&mut self.conn)
    }

    /// Bytes that arrived: straight into the core when it may take them (no
    /// output pending, nothing held before them), else held; after an
    /// error response, or while lingering, discarded.
    fn take_bytes(
        &mut self,
        bytes: &[u8],
        now: Now,
        spare_held: &mut Vec<Held>,
        pool: &mut BufferPool,
    ) {
        match self.stage {
            Stage::Open if self.conn.is_closing() => {}
            Stage::Open => {
                let fed = match self.held {
                    None => self
                        .quiet_conn()
                        .map_or(0, |conn| feed(conn, bytes, now, pool)),
                    Some(_) => 0,
                };
                if fed < bytes.len() {
                    let held = self
                        .held
                        .get_or_insert_with(|| spare_held.pop().unwrap_or_default());
                    held.extend_from_slice(&bytes[fed..]);
                }
            }
            Stage::Lingering(ref mut linger) => {
                if !linger.drained(bytes.len()) {
                    self.stage = Stage::Closing;
                }
            }
            Stage::Closing => {}
        }
    }

    /// Gives the core the held bytes it may take now, then the peer's EOF
    /// once nothing is held before it.
    fn feed_held(&mut self, now: Now, spare_held: &mut Vec<Held>, pool: &mut BufferPool) {
        if self.sending != Sending::Idle {
            return;
        }
        if let Some(held) = self.held.as_mut() {
            // Not through `quiet_conn`, to borrow `held` alongside; the
            // send state was checked above.
            let fed = feed(&mut self.conn, held, now, pool);
            held.drain(..fed);
            // Once the core reads no more, what is still held never will be.
            if held.is_empty() || self.conn.is_closing() {
                if let Some(held) = self.held.take() {
                    spare(spare_held, held);
                }
            }
        }
        if self.held.is_none() && self.peer_closed {
            self.conn.commit_read(0, now);
        }
    }

    /// Whether it is idle, its recv armed (or about to be), and yet its next request has
    /// arrived (the recv has not completed yet: the reactor was busy, or
    /// the connection was just drained from the listen queue): at the end
    /// of a shutdown's grace period it is not closed over that request,
    /// which the recv delivers at the next enter.
    fn request_waiting(&self) -> bool {
        self.stage == Stage::Open
            && self.held.is_none()
            && !self.peer_closed
            && request_waiting(&self.conn, self.fd.as_raw_fd())
    }

    /// When this connection must next be looked at without any I/O;
    /// `grace_end` is the end of a shutdown's grace period, once begun.
    fn deadline(&self, grace_end: Option<Instant>) -> Option<Instant> {
        match self.stage {
            Stage::Open => Some(deadline_of(&self.conn, grace_end)),
            Stage::Lingering(linger) => Some(linger.until),
            Stage::Closing => None,
        }
    }
}

/// A connection's entry in the reactor's table: its generation outlives
/// the connection, so that the next one in the slot gets a new one.
#[derive(Default)]
struct Slot<'r> {
    generation: u32,
    client: Option<Client<'r>>,
}

/// The live client in `slot`, if it is still the connection of `generation`.
fn client_mut<'c, 'r>(
    clients: &'c mut Slots<Slot<'r>>,
    slot: u32,
    generation: u32,
) -> Option<&'c mut Client<'r>> {
    let entry = clients.get_mut(slot)?;
    match entry.generation == generation {
        true => entry.client.as_mut(),
        false => None,
    }
}

fn cancel(target: u64, quiet: Flags) -> Entry {
    opcode::AsyncCancel::new(target)
        .build()
        .flags(quiet)
        .user_data(user_data(Op::Cleanup, 0, 0))
}

/// Gives `bytes` to the core while it has no output pending (v4's rule: a
/// client's responses are not allowed to pile up) and no request parked
/// (what follows it waits for its reply); returns how many it took.
/// Every received byte reaches the core here, never while a send is in
/// flight, into buffers lent from the reactor's `pool`.
fn feed(conn: &mut Conn<&Routes>, bytes: &[u8], now: Now, pool: &mut BufferPool) -> usize {
    conn.lend(pool);
    let mut fed = 0;
    while fed < bytes.len() && !conn.is_closing() && conn.output().is_empty() && !conn.is_awaiting()
    {
        let room = conn.read_buf();
        let n = room.len().min(bytes.len() - fed);
        room[..n].copy_from_slice(&bytes[fed..fed + n]);
        conn.commit_read(n, now);
        fed += n;
    }
    // The input buffer goes back at once unless a partial request is in it,
    // so that a burst of connections served in one iteration shares one;
    // the output stays lent until its send has completed.
    conn.reclaim(pool);
    fed
}

/// A held buffer, boxed: a connection that holds nothing (nearly every
/// one) spends 8 bytes on it rather than a `Vec`'s 24.
type Held = Box<Vec<u8>>;

fn spare(spare_held: &mut Vec<Held>, mut held: Held) {
    if spare_held.len() < SPARE_HELD {
        held.clear();
        spare_held.push(held);
    }
}

/// What a completion is about: the top byte of its user_data. Below it, 24
/// bits of the connection slot's generation and 32 bits of its index, so that
/// a completion can never be taken for one of a later connection in the slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Accept = 1,
    Recv = 2,
    Send = 3,
    /// Cancels and closes: their completions need nothing done.
    Cleanup = 4,
}

const GENERATION_MASK: u32 = (1 << 24) - 1;

fn user_data(op: Op, slot: u32, generation: u32) -> u64 {
    (op as u64) << 56 | u64::from(generation & GENERATION_MASK) << 32 | u64::from(slot)
}

fn decode(user_data: u64) -> (Option<Op>, u32, u32) {
    let op = match user_data >> 56 {
        1 => Some(Op::Accept),
        2 => Some(Op::Recv),
        3 => Some(Op::Send),
        4 => Some(Op::Cleanup),
        _ => None,
    };
    let generation = (user_data >> 32) as u32 & GENERATION_MASK;
    (op, user_data as u32, generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips_and_keeps_generations_apart() {
        let encoded = user_data(Op::Send, 123_456, 0xAB_CDEF);
        assert_eq!(decode(encoded), (Some(Op::Send), 123_456, 0xAB_CDEF));
        let wrapped = user_data(Op::Recv, u32::MAX, GENERATION_MASK + 5);
        assert_eq!(decode(wrapped), (Some(Op::Recv), u32::MAX, 4));
        assert_eq!(decode(0).0, None);
    }

    /// What an idle connection costs its reactor is its table entry (its
    /// buffers are lent only while bytes are pending): the protocol state
    /// and little more.
    #[test]
    fn a_table_entry_is_its_conn_and_little_more() {
        let conn = size_of::<Conn<&Routes>>();
        let entry = size_of::<Slot>();
        assert!(entry <= conn + 48, "entry {entry} B, its Conn {conn} B");
    }
}
