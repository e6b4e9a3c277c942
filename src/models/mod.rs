//! The concurrency models, and what they share: the server configuration, the
//! listening sockets, accepting (with a back-off when descriptors run out),
//! thread accounting, writing a connection's output, lingering and graceful
//! shutdown. The blocking per-connection loop of v1-v3 is in `blocking.rs`.
//!
//! A model only moves bytes between sockets and [`crate::http::Conn`].
//!
//! Graceful shutdown ([`Server::shutdown`]), the same in every model:
//! listeners stop accepting at once, but what each one's listen queue
//! already holds (connections the kernel completed, requests possibly sent:
//! clients that were told yes) is accepted first ([`drain_listen_queue`])
//! and handed to the listener's own acceptor or reactor, to be served like
//! the connections already open; every connection has keep-alive
//! disabled ([`Conn::disable_keep_alive`]), so it answers the requests it has
//! buffered or receives during [`ServerConfig::shutdown_grace`], the last
//! response saying `Connection: close`; a connection with nothing in
//! progress is closed when the grace period ends, but not over a request
//! that has already arrived unread (the blocking loop's last wait polls the
//! socket, the reactors ask [`input_waiting`]): a drained connection served
//! late, or a reactor busy past the grace period, still answers it; one
//! still receiving a request may finish it; at
//! [`ServerConfig::shutdown_timeout`] whatever is left is cut.

mod blocking;
mod deadlines;
mod event;
mod pool;
mod reactor;
mod sequential;
mod slots;
mod threaded;
mod tokio;
pub(crate) mod uring;
mod wake_timer;

pub(crate) use blocking::{serve_connection, Connections};

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::http::Handler;
use crate::http::{encode_rejection, Conn, Limits, Now, Phase, Status};
use crate::route::Routes;

/// The concurrency models servelab can serve with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Model {
    /// v1: one thread accepts a connection and serves it to the end.
    Sequential,
    /// v2: one new detached OS thread per connection.
    Threaded,
    /// v3: SO_REUSEPORT acceptor threads feeding a fixed worker pool.
    Pool,
    /// v4: one epoll reactor per core, each with its own SO_REUSEPORT socket.
    Event,
    /// v5: one io_uring reactor per core, each with its own SO_REUSEPORT socket (Linux 6.0+).
    Uring,
    /// v6: tokio's multi-threaded work-stealing runtime, one task per connection.
    Tokio,
}

impl Model {
    /// Every model, in version order.
    pub const ALL: [Model; 6] = [
        Model::Sequential,
        Model::Threaded,
        Model::Pool,
        Model::Event,
        Model::Uring,
        Model::Tokio,
    ];

    /// The seed's port for this model (9001 for v1, ...).
    pub fn default_port(self) -> u16 {
        match self {
            Model::Sequential => 9001,
            Model::Threaded => 9002,
            Model::Pool => 9003,
            Model::Event => 9004,
            Model::Uring => 9005,
            Model::Tokio => 9006,
        }
    }

    /// Whether a request its handler parks ([`crate::http::Answer::Later`],
    /// `--work await`) waits without holding a thread. The blocking models
    /// have no way to: they wait on the connection's thread, as for
    /// `--work wait`.
    pub fn parks_without_a_thread(self) -> bool {
        match self {
            Model::Sequential | Model::Threaded | Model::Pool => false,
            Model::Event | Model::Uring | Model::Tokio => true,
        }
    }

    /// The model's short name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Model::Sequential => "sequential",
            Model::Threaded => "threaded",
            Model::Pool => "pool",
            Model::Event => "event",
            Model::Uring => "uring",
            Model::Tokio => "tokio",
        }
    }

    /// Its own source, built into the binary (so that the bench's
    /// complexity column needs no source tree): its file or folder under
    /// `src/models/`, and the text of each of its files.
    pub fn source(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Model::Sequential => ("src/models/sequential.rs", &[include_str!("sequential.rs")]),
            Model::Threaded => ("src/models/threaded.rs", &[include_str!("threaded.rs")]),
            Model::Pool => ("src/models/pool.rs", &[include_str!("pool.rs")]),
            Model::Event => ("src/models/event.rs", &[include_str!("event.rs")]),
            Model::Uring => (
                "src/models/uring/",
                &[
                    include_str!("uring/mod.rs"),
                    include_str!("uring/ring.rs"),
                    include_str!("uring/buf_ring.rs"),
                ],
            ),
            Model::Tokio => ("src/models/tokio.rs", &[include_str!("tokio.rs")]),
        }
    }

    /// Whether this model can run on this machine, or why not (a sentence
    /// naming the cause). Only v5 can be unavailable: it needs io_uring
    /// (Linux 6.0+), which an old kernel, `kernel.io_uring_disabled` or a
    /// seccomp filter can deny. Checked once per process.
    pub fn availability(self) -> Result<(), String> {
        match self {
            Model::Uring => uring::availability(),
            _ => Ok(()),
        }
    }
}

/// Everything a server needs to know; the CLI flags map onto these fields.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Protocol limits and deadlines.
    pub limits: Limits,
    /// Listen backlog.
    pub backlog: i32,
    /// v2, v4, v5 and v6: open connections past which new ones get 503.
    pub max_connections: usize,
    /// v2: stack size of each connection thread, in bytes.
    pub thread_stack: usize,
    /// v3: acceptor threads, each with its own SO_REUSEPORT socket; 0 = one per CPU.
    pub acceptors: usize,
    /// v3: worker threads serving connections.
    pub pool_size: usize,
    /// v3: accepted connections waiting for a worker, past which new ones get 503.
    pub queue: usize,
    /// v4 and v5: reactor threads, each with its own SO_REUSEPORT socket;
    /// v6: the runtime's worker threads. 0 = one per CPU.
    pub reactors: usize,
    /// How long shutdown waits for in-flight work before giving up on it.
    pub shutdown_timeout: Duration,
    /// How long, once shutdown has begun, an open connection with nothing in
    /// progress stays open for a request that may already be on its way
    /// (answered with `Connection: close`). At most `shutdown_timeout`.
    pub shutdown_grace: Duration,
    /// The handler every connection serves (the seed's routes, plus any work).
    pub routes: Routes,
}

impl ServerConfig {
    /// The defaults, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        ServerConfig {
            addr,
            limits: Limits::default(),
            backlog: 1024,
            max_connections: 10_000,
            thread_stack: 64 * 1024,
            acceptors: 0,
            pool_size: 256,
            queue: 1024,
            reactors: 0,
            shutdown_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(1),
            routes: Routes::default(),
        }
    }
}

/// A running server. Dropping it without [`Server::shutdown`] leaves it running
/// until the process exits.
pub struct Server {
    local_addr: SocketAddr,
    listeners: Vec<Arc<TcpListener>>,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds and starts serving with `model`.
    pub fn start(model: Model, config: ServerConfig) -> io::Result<Server> {
        let shared = Arc::new(Shared::new(config));
        let listeners = match model {
            Model::Sequential => sequential::start(&shared)?,
            Model::Threaded => threaded::start(&shared)?,
            Model::Pool => pool::start(&shared)?,
            Model::Event => event::start(&shared)?,
            Model::Uring => uring::start(&shared)?,
            Model::Tokio => tokio::start(&shared)?,
        };
        Ok(Server {
            local_addr: listeners[0].local_addr()?,
            listeners,
            shared,
        })
    }

    /// The address actually bound (the port is resolved when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Shuts the server down gracefully (see the module documentation):
    /// stops accepting once the listen queues are drained (their connections
    /// are served too), lets every connection finish what it has or receives
    /// within [`ServerConfig::shutdown_grace`], and waits up to
    /// [`ServerConfig::shutdown_timeout`] for every thread to finish. Returns
    /// whether all of them did; connections left at the timeout are cut.
    pub fn shutdown(self) -> bool {
        let shared = &self.shared;
        let config = &shared.config;
        let began = Instant::now();
        let clock = ShutdownClock {
            grace_end: began + config.shutdown_grace.min(config.shutdown_timeout),
            hard_end: began + config.shutdown_timeout,
        };
        // Every listener is drained and shut before the clock is published:
        // a connection answered `Connection: close` because of the shutdown
        // may reconnect at once, and that connection must be refused, not
        // queued on a listener still open and then reset with its request.
        shared.accepting_stopped.store(true, Ordering::SeqCst);
        for listener in &self.listeners {
            // Each SO_REUSEPORT socket has a queue of its own. What it
            // holds is accepted here, whatever its acceptor is busy with
            // (v1 may be serving a connection for the whole grace period),
            // and handed to that acceptor ([`Shared::take_drained`]).
            let streams = drain_listen_queue(listener, config.backlog);
            if !streams.is_empty() {
                let mut drained = shared.drained.lock().unwrap();
                drained.push((listener.as_raw_fd(), streams));
            }
            // Stops accepting and wakes whoever waits on the listener: a
            // thread blocked in accept() gets EINVAL, a reactor an event. A
            // connection completed since the drain found the queue empty
            // (microseconds ago) is reset.
            shutdown_raw(listener.as_raw_fd(), libc::SHUT_RD);
        }
        let _ = shared.shutdown.set(clock);
        if shared.threads.wait_until(clock.grace_end) {
            return true;
        }
        // A thread blocked waiting for a next request since before shutdown
        // began cannot see the grace period end: end its wait with EOF.
        shared.connections.end_waits_for_requests();
        if shared.threads.wait_until(clock.hard_end) {
            return true;
        }
        shared.connections.cut_all();
        false
    }
}

/// The deadlines of a graceful shutdown, fixed when it begins.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShutdownClock {
    /// Connections with nothing in progress are closed from here on.
    pub(crate) grace_end: Instant,
    /// Everything still open is cut.
    pub(crate) hard_end: Instant,
}

/// State shared by a server's threads. No global mutable state anywhere.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    /// Set when shutdown begins, before the listeners are shut.
    accepting_stopped: AtomicBool,
    /// Set once, when shutdown begins, after the listeners are shut.
    shutdown: OnceLock<ShutdownClock>,
    /// What shutdown accepted from each listener's queue (by the listener's
    /// descriptor), until its acceptor or reactor takes it; complete once
    /// the clock is set.
    drained: Mutex<Vec<(RawFd, VecDeque<TcpStream>)>>,
    pub(crate) connections: Connections,
    pub(crate) threads: LiveCount,
}

impl Shared {
    fn new(config: ServerConfig) -> Self {
        Shared {
            config,
            accepting_stopped: AtomicBool::new(false),
            shutdown: OnceLock::new(),
            drained: Mutex::new(Vec::new()),
            connections: Connections::default(),
            threads: LiveCount::default(),
        }
    }

    /// Whether the server accepts no more connections: set first when a
    /// shutdown begins, then the listeners are shut, then the clock is set.
    #[inline]
    pub(crate) fn stops_accepting(&self) -> bool {
        self.accepting_stopped.load(Ordering::Relaxed)
    }

    /// The shutdown's deadlines once a shutdown has begun, `None` before
    /// (one atomic load). The shutting thread stops accepting, shuts every
    /// listener, then sets the clock; a thread that sees the first step
    /// yields the few syscalls until the last, so that no connection is told
    /// `Connection: close` while a listener could still queue the client's
    /// reconnect (to reset it a moment later, request and all).
    #[inline]
    pub(crate) fn shutdown_begun(&self) -> Option<ShutdownClock> {
        if !self.stops_accepting() {
            return None;
        }
        loop {
            if let Some(clock) = self.shutdown.get() {
                return Some(*clock);
            }
            std::thread::yield_now();
        }
    }

    /// Begins a shutdown with no grace period and no time for anything: for
    /// a server whose start failed half-way, to stop the threads it started.
    pub(crate) fn stop_now(&self) {
        self.accepting_stopped.store(true, Ordering::SeqCst);
        let now = Instant::now();
        let _ = self.shutdown.set(ShutdownClock {
            grace_end: now,
            hard_end: now,
        });
    }

    /// Accepts the next connection. Once the server is stopping: the next
    /// of those the shutdown drained from this listener's queue, then
    /// `None`. Transient errors are retried; when descriptors (or kernel
    /// memory) run out, accepting pauses for [`ACCEPT_BACKOFF`] and then
    /// resumes with what waits in the listen queue.
    pub(crate) fn accept(&self, listener: &TcpListener) -> Option<TcpStream> {
        loop {
            if self.stops_accepting() {
                return self.next_drained(listener);
            }
            match listener.accept() {
                Ok((stream, _)) => return Some(stream),
                Err(e) => match AcceptError::of(&e) {
                    AcceptError::Transient | AcceptError::Empty => {}
                    AcceptError::Exhausted if self.stops_accepting() => {
                        return self.next_drained(listener)
                    }
                    AcceptError::Exhausted => std::thread::sleep(ACCEPT_BACKOFF),
                },
            }
        }
    }

    /// The next connection the shutdown drained from `listener`'s queue,
    /// for a thread that serves what it accepts one at a time. None once
    /// they are all taken, or once the shutdown timeout has passed (the
    /// rest are closed then: there is no time left to serve them).
    fn next_drained(&self, listener: &TcpListener) -> Option<TcpStream> {
        let clock = self.shutdown_begun()?;
        let fd = listener.as_raw_fd();
        let mut drained = self.drained.lock().unwrap();
        let at = drained.iter().position(|(of, _)| *of == fd)?;
        let next = drained[at].1.pop_front();
        if next.is_none() || Instant::now() >= clock.hard_end {
            drained.swap_remove(at);
            return None;
        }
        next
    }

    /// Every connection the shutdown drained from `listener`'s queue, for
    /// a reactor to take into its loop; call once shutdown has begun
    /// ([`Shared::shutdown_begun`]), when the drain is complete.
    pub(crate) fn take_drained(&self, listener: &TcpListener) -> VecDeque<TcpStream> {
        let fd = listener.as_raw_fd();
        let mut drained = self.drained.lock().unwrap();
        match drained.iter().position(|(of, _)| *of == fd) {
            Some(at) => drained.swap_remove(at).1,
            None => VecDeque::new(),
        }
    }
}

/// How long a listener is left alone after accept() failed for lack of
/// descriptors (EMFILE, ENFILE) or kernel memory: long enough that an
/// exhausted server does not spin, short enough that the listen queue is
/// drained soon after descriptors free up (nginx waits 500 ms).
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a failed accept() means for the accepting loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AcceptError {
    /// Interrupted, or a connection that died in the queue: accept again.
    Transient,
    /// Nothing waiting (EAGAIN on a non-blocking listener).
    Empty,
    /// Out of descriptors or memory, or the listener was shut down: back
    /// off for [`ACCEPT_BACKOFF`] (or stop, when the server is stopping).
    Exhausted,
}

impl AcceptError {
    /// What the error of a failed accept() means for the accepting loop.
    pub(crate) fn of(e: &io::Error) -> AcceptError {
        match e.kind() {
            io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => AcceptError::Transient,
            io::ErrorKind::WouldBlock => AcceptError::Empty,
            _ => AcceptError::Exhausted,
        }
    }
}

/// Spawns a named server thread that shutdown waits for. `stack` overrides the
/// default stack size. On error (the kernel refused a thread) `body` is dropped.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    name: String,
    stack: Option<usize>,
    body: impl FnOnce(&Arc<Shared>) + Send + 'static,
) -> io::Result<()> {
    // Counted before the spawn so that shutdown cannot miss a starting thread.
    let live = LiveCount::enter(shared);
    let mut builder = std::thread::Builder::new().name(name);
    if let Some(bytes) = stack {
        builder = builder.stack_size(bytes);
    }
    builder.spawn(move || {
        let shared = Arc::clone(&live.0);
        body(&shared);
        drop(live);
    })?;
    Ok(())
}

/// Starts a model's threads over its bound `listeners` with `start`. If
/// that fails half-way, the threads it did start are stopped (a shutdown
/// with no grace period, every listener shut) before the error is returned:
/// a failed start leaves nothing accepting on the port.
pub(crate) fn start_threads(
    shared: &Shared,
    listeners: Vec<Arc<TcpListener>>,
    start: impl FnOnce(&[Arc<TcpListener>]) -> io::Result<()>,
) -> io::Result<Vec<Arc<TcpListener>>> {
    match start(&listeners) {
        Ok(()) => Ok(listeners),
        Err(e) => {
            shared.stop_now();
            for listener in &listeners {
                shutdown_raw(listener.as_raw_fd(), libc::SHUT_RD);
            }
            Err(e)
        }
    }
}

/// Accepts, without blocking, what waits in `listener`'s queue until it is
/// empty (at most `most`: a queue that refills as fast as it is drained
/// stops there): the connections the kernel completed before a shutdown
/// closes the listener, which closing would reset. The listener stays
/// non-blocking: it is about to be shut.
pub(crate) fn drain_listen_queue(listener: &TcpListener, most: i32) -> VecDeque<TcpStream> {
    let most = usize::try_from(most).unwrap_or(0).max(1);
    let mut drained = VecDeque::new();
    if listener.set_nonblocking(true).is_err() {
        return drained;
    }
    while drained.len() < most {
        match listener.accept() {
            Ok((stream, _)) => drained.push_back(stream),
            Err(e) => match AcceptError::of(&e) {
                AcceptError::Transient => {}
                AcceptError::Empty | AcceptError::Exhausted => break,
            },
        }
    }
    drained
}

/// Binds one listener and runs `accept_loop` over it on a thread named `name`:
/// the start of every model with a single accepting thread.
pub(crate) fn start_single_acceptor(
    shared: &Arc<Shared>,
    name: &str,
    accept_loop: fn(&Arc<Shared>, &TcpListener),
) -> io::Result<Vec<Arc<TcpListener>>> {
    let config = &shared.config;
    let listener = Arc::new(bind(config.addr, false, config.backlog)?);
    let accepting = Arc::clone(&listener);
    spawn(shared, name.into(), None, move |shared| {
        accept_loop(shared, &accepting)
    })?;
    Ok(vec![listener])
}

/// Binds a listening socket. `reuse_port` sets SO_REUSEPORT so that several
/// sockets can share the address and the kernel spreads connections over them.
pub(crate) fn bind(addr: SocketAddr, reuse_port: bool, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// `count` threads, where 0 means one per CPU this process may run on.
pub(crate) fn per_cpu(count: usize) -> usize {
    match count {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Binds `count` listening sockets (0 = one per CPU this process may run on)
/// to one address with SO_REUSEPORT, so the kernel spreads new connections
/// over them. All are bound before any thread starts; the first fixes the
/// port when port 0 was asked for.
pub(crate) fn bind_shared_port(
    config: &ServerConfig,
    count: usize,
) -> io::Result<Vec<Arc<TcpListener>>> {
    let count = per_cpu(count);
    let first = bind(config.addr, true, config.backlog)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![Arc::new(first)];
    for _ in 1..count {
        listeners.push(Arc::new(bind(addr, true, config.backlog)?));
    }
    Ok(listeners)
}

/// The time a reactor (v4, v5) or a connection task (v6) hands the core: read once per loop iteration,
/// since a clock read (two vDSO calls, monotonic and wall) is a measurable
/// share of what a request costs, and read again after handler calls when
/// handlers spend time (`--work`), so that a slow handler does not date the
/// write progress and deadlines after it back to the start of the iteration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IterationClock {
    /// The time now, as of the last read.
    pub(crate) now: Now,
    slow_handlers: bool,
}

impl IterationClock {
    /// A clock for a server whose handlers do `routes.work`.
    pub(crate) fn new(routes: &Routes) -> Self {
        IterationClock::at(Now::read(), routes)
    }

    /// The same, with the time just read.
    pub(crate) fn at(now: Now, routes: &Routes) -> Self {
        IterationClock {
            now,
            slow_handlers: routes.work.holds_thread(),
        }
    }

    /// Reads the clocks: once per loop iteration, after the wait.
    #[inline]
    pub(crate) fn tick(&mut self) {
        self.now = Now::read();
    }

    /// After the core ran handlers: reads the clocks again if handlers
    /// spend time.
    #[inline]
    pub(crate) fn after_handlers(&mut self) {
        if self.slow_handlers {
            self.now = Now::read();
        }
    }
}

/// When a model must next call [`Conn::on_timeout`]: at the connection's
/// own deadline and, once a graceful shutdown has begun, at the end of its
/// grace period if the connection has nothing in progress (idle, all output
/// written), which `on_timeout` then closes.
#[inline]
pub(crate) fn deadline_of<H: Handler>(conn: &Conn<H>, grace_end: Option<Instant>) -> Instant {
    let own = conn.deadline();
    match grace_end {
        Some(end) if conn.phase() == Phase::Idle && conn.output().is_empty() => own.min(end),
        _ => own,
    }
}

/// Writes as much of `conn`'s pending output as the non-blocking `stream`
/// takes, recording the progress at `now`; false on a dead peer. True with
/// output left means the socket is full (EAGAIN).
pub(crate) fn flush<H: Handler>(mut stream: impl Write, conn: &mut Conn<H>, now: Now) -> bool {
    while !conn.output().is_empty() {
        match stream.write(conn.output()) {
            Ok(0) => return false,
            Ok(n) => conn.consume_output(n, now),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Reads and drops what the non-blocking `stream` holds, during a lingering
/// close: true once it is empty (EAGAIN), false once the peer closed,
/// [`LINGER_BYTES`] were dropped or the socket failed (close now).
pub(crate) fn drain(mut stream: impl Read, linger: &mut Linger) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return false,
            Ok(n) => {
                if !linger.drained(n) {
                    return false; // LINGER_BYTES dropped: close now
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Most bytes drained from a peer's unread input before closing.
pub(crate) const LINGER_BYTES: usize = 256 * 1024;
/// Most time spent draining a peer's unread input before closing.
pub(crate) const LINGER_TIME: Duration = Duration::from_millis(500);

/// A lingering close under way: after FIN, what the peer still sends is read
/// and dropped until EOF, [`LINGER_TIME`] or [`LINGER_BYTES`], whichever
/// comes first, so that closing does not turn into an RST that destroys the
/// last response before the client has read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Linger {
    /// When the lingering ends at the latest.
    pub(crate) until: Instant,
    /// Bytes dropped so far.
    drained: u32,
}

impl Linger {
    /// A lingering close that begins `now` (our FIN just sent).
    pub(crate) fn begin(now: Instant) -> Linger {
        Linger {
            until: now + LINGER_TIME,
            drained: 0,
        }
    }

    /// Counts `n` more bytes dropped; false once [`LINGER_BYTES`] are.
    pub(crate) fn drained(&mut self, n: usize) -> bool {
        let total = (self.drained as usize).saturating_add(n).min(LINGER_BYTES);
        self.drained = total as u32;
        total < LINGER_BYTES
    }
}

/// Answers `status` (503) with `Connection: close` in one non-blocking write
/// and closes: what a model does when it cannot afford another connection.
/// The request that may already have arrived is read and dropped first, so
/// that closing with unread input does not reset the connection under the
/// response; one that arrives later can still cause that reset.
pub(crate) fn reject(stream: TcpStream, status: Status) {
    let mut response = Vec::with_capacity(192);
    encode_rejection(&mut response, status, Now::read().unix_secs);
    if stream.set_nonblocking(true).is_ok() {
        let _ = (&stream).write(&response);
        let _ = stream.shutdown(Shutdown::Write);
        // Bounded: the accept path must not be held by a client that streams.
        let mut sink = [0u8; 4096];
        for _ in 0..4 {
            if !matches!((&stream).read(&mut sink), Ok(n) if n > 0) {
                break;
            }
        }
    }
}

/// Reads what has arrived on socket `fd` without blocking (a blocking
/// model's precise last wait; v6's read of a request tokio has not reported).
pub(crate) fn recv_now(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: recv(2) writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Whether `conn` is idle (no request begun, nothing to write, not
/// closing) while its next request waits unread on socket `fd`: what a
/// reactor asks at the end of a shutdown's grace period, to read and answer
/// that request rather than close over it (which would reset it).
pub(crate) fn request_waiting<H: Handler>(conn: &Conn<H>, fd: RawFd) -> bool {
    conn.phase() == Phase::Idle
        && conn.output().is_empty()
        && !conn.is_closing()
        && input_waiting(fd)
}

/// Whether bytes from the peer wait unread on socket `fd` (a one-byte peek
/// that does not block). A reactor asks before it closes a connection idle
/// at the end of a shutdown's grace period: the request may have arrived
/// while the reactor was busy (a connection drained from the listen queue
/// has usually sent it long before), and closing over unread input would
/// reset the connection instead of answering it. The blocking models need
/// no such question: their last wait polls the socket.
fn input_waiting(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv(2) writes at most one byte into `byte`, a local.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0
}

fn shutdown_raw(fd: RawFd, how: libc::c_int) {
    // SAFETY: shutdown(2) on a descriptor we own; no memory is involved.
    unsafe {
        libc::shutdown(fd, how);
    }
}

/// Counts a server's live threads so that shutdown can wait for them with a
/// deadline (a JoinHandle cannot be joined with a timeout).
#[derive(Default)]
pub(crate) struct LiveCount {
    count: Mutex<usize>,
    changed: Condvar,
}

/// Held by a thread for its whole life.
struct LiveGuard(Arc<Shared>);

impl LiveCount {
    /// Counts one more thread until the returned guard drops.
    fn enter(shared: &Arc<Shared>) -> LiveGuard {
        *shared.threads.count.lock().unwrap() += 1;
        LiveGuard(Arc::clone(shared))
    }

    /// Waits until every thread has finished or `deadline` has passed;
    /// returns whether all finished.
    fn wait_until(&self, deadline: Instant) -> bool {
        let count = self.count.lock().unwrap();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (count, _) = self
            .changed
            .wait_timeout_while(count, timeout, |n| *n > 0)
            .unwrap();
        *count == 0
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let threads = &self.0.threads;
        *threads.count.lock().unwrap() -= 1;
        threads.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Model::source`] is each model's whole source: a folder model's
    /// list names every file of the folder (one added there must be added
    /// to the list), and each text is the file's.
    #[test]
    fn a_models_source_is_all_of_its_files() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for model in Model::ALL {
            let (place, texts) = model.source();
            let mut on_disk: Vec<String> = match place.strip_suffix('/') {
                Some(folder) => std::fs::read_dir(root.join(folder))
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                    .map(|p| std::fs::read_to_string(p).unwrap())
                    .collect(),
                None => vec![std::fs::read_to_string(root.join(place)).unwrap()],
            };
            let mut built: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
            on_disk.sort();
            built.sort();
            assert!(on_disk == built, "{place}: the built-in source differs");
        }
    }
}
