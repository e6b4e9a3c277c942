//! The concurrency models, and what they share: the server configuration, the
//! listening sockets, accepting (with a back-off when descriptors run out),
//! thread accounting, writing a connection's output, lingering and graceful
//! shutdown. The blocking per-connection loop of v1-v3 is in `blocking.rs`.
//!
//! A model only moves bytes between sockets and [`crate::http::Conn`].
//!
//! Graceful shutdown ([`Server::shutdown`]), the same in every model:
//! listeners stop accepting at once; every open connection has keep-alive
//! disabled ([`Conn::disable_keep_alive`]), so it answers the requests it has
//! buffered or receives during [`ServerConfig::shutdown_grace`], the last
//! response saying `Connection: close`; a connection with nothing in
//! progress is closed when the grace period ends; one still receiving a
//! request may finish it; at [`ServerConfig::shutdown_timeout`] whatever is
//! left is cut.

mod blocking;
mod deadlines;
mod event;
mod pool;
mod sequential;
mod slots;
mod threaded;
mod tokio;
mod uring;

pub(crate) use blocking::{serve_connection, Connections};

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::http::{encode_rejection, Conn, Limits, Now, Phase, Status};
use crate::route::{Handler, Routes, Work};

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
    /// stops accepting, lets every connection finish what it has or receives
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
        // Every listener is shut before the clock is published: a
        // connection answered `Connection: close` because of the shutdown
        // may reconnect at once, and that connection must be refused, not
        // queued on a listener still open and then reset with its request.
        shared.accepting_stopped.store(true, Ordering::SeqCst);
        for listener in &self.listeners {
            // Stops accepting (connections still in the listen queue are
            // reset) and wakes whoever waits on the listener: a thread
            // blocked in accept() gets EINVAL, a reactor an event.
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
    pub(crate) connections: Connections,
    pub(crate) threads: LiveCount,
}

impl Shared {
    fn new(config: ServerConfig) -> Self {
        Shared {
            config,
            accepting_stopped: AtomicBool::new(false),
            shutdown: OnceLock::new(),
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

    /// Accepts the next connection; `None` once the server is stopping.
    /// Transient errors are retried; when descriptors (or kernel memory) run
    /// out, accepting pauses for [`ACCEPT_BACKOFF`] and then resumes with
    /// what waits in the listen queue.
    pub(crate) fn accept(&self, listener: &TcpListener) -> Option<TcpStream> {
        loop {
            if self.stops_accepting() {
                return None;
            }
            match listener.accept() {
                Ok((stream, _)) => return Some(stream),
                Err(e) => match AcceptError::of(&e) {
                    AcceptError::Transient | AcceptError::Empty => {}
                    AcceptError::Exhausted if self.stops_accepting() => return None,
                    AcceptError::Exhausted => std::thread::sleep(ACCEPT_BACKOFF),
                },
            }
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
            slow_handlers: routes.work != Work::None,
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
