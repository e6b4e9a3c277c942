//! The concurrency models, and what they share: the server configuration, the
//! listening sockets, accepting (with a back-off when descriptors run out),
//! the blocking per-connection loop of v1-v3, connection accounting and
//! graceful shutdown.
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

mod deadlines;
mod event;
mod pool;
mod sequential;
mod slots;
mod threaded;
mod uring;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

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
}

impl Model {
    /// Every model, in version order.
    pub const ALL: [Model; 5] = [
        Model::Sequential,
        Model::Threaded,
        Model::Pool,
        Model::Event,
        Model::Uring,
    ];

    /// The seed's port for this model (9001 for v1, ...).
    pub fn default_port(self) -> u16 {
        match self {
            Model::Sequential => 9001,
            Model::Threaded => 9002,
            Model::Pool => 9003,
            Model::Event => 9004,
            Model::Uring => 9005,
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
    /// v2, v4 and v5: open connections past which new ones get 503.
    pub max_connections: usize,
    /// v2: stack size of each connection thread, in bytes.
    pub thread_stack: usize,
    /// v3: acceptor threads, each with its own SO_REUSEPORT socket; 0 = one per CPU.
    pub acceptors: usize,
    /// v3: worker threads serving connections.
    pub pool_size: usize,
    /// v3: accepted connections waiting for a worker, past which new ones get 503.
    pub queue: usize,
    /// v4 and v5: reactor threads, each with its own SO_REUSEPORT socket; 0 = one per CPU.
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

/// Binds `count` listening sockets (0 = one per CPU this process may run on)
/// to one address with SO_REUSEPORT, so the kernel spreads new connections
/// over them. All are bound before any thread starts; the first fixes the
/// port when port 0 was asked for.
pub(crate) fn bind_shared_port(
    config: &ServerConfig,
    count: usize,
) -> io::Result<Vec<Arc<TcpListener>>> {
    let count = match count {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let first = bind(config.addr, true, config.backlog)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![Arc::new(first)];
    for _ in 1..count {
        listeners.push(Arc::new(bind(addr, true, config.backlog)?));
    }
    Ok(listeners)
}

/// The time a reactor (v4, v5) hands the core: read once per loop iteration,
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
        IterationClock {
            now: Now::read(),
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

/// Serves one connection to its end on the calling thread: the loop of v1-v3.
///
/// ```text
/// loop {
///     write all output (waiting for room at most until the deadline)
///     finished? -> leave the loop
///     shutdown began? -> keep-alive off; an idle connection's deadline is at
///                        most the end of the grace period
///     read, blocking (SO_RCVTIMEO) for most of the time left to the deadline
///     if that timed out: wait for input precisely until the deadline (ppoll)
///     Conn::commit_read, or Conn::on_timeout once the deadline has passed
/// }
/// linger (FIN, then drain briefly) if the core asks for it
/// ```
///
/// A keep-alive connection in steady state makes one read and one write per
/// request (or per pipelined batch): the read timeout is a constant then, so
/// it is set once. It is a constant fraction of the deadline because the
/// kernel's timer wheel may fire a socket timeout up to an eighth of it late
/// (256 ms for a 5 s timeout at 250 Hz); the precise rest of the wait, an
/// hrtimer, only runs on a connection that is about to time out.
pub(crate) fn serve_connection(stream: TcpStream, shared: &Shared) {
    let registration = shared.connections.register(&stream);
    let limits = shared.config.limits;
    let steady_wait = coarse_part(limits.idle_timeout);
    let _ = stream.set_nodelay(true);
    let mut read_timeout = None;
    let mut conn = Conn::new(shared.config.routes, limits, Now::read());
    loop {
        if !write_output(&stream, &mut conn) {
            return; // peer gone, or it stopped reading for an idle timeout
        }
        if conn.is_finished() {
            break;
        }
        let grace_end = shared.shutdown_begun().map(|clock| clock.grace_end);
        if grace_end.is_some() {
            conn.disable_keep_alive();
        }
        registration.set_awaiting_request(conn.phase() == Phase::Idle);
        let deadline = deadline_of(&conn, grace_end);
        let left = deadline.saturating_duration_since(Instant::now());
        // Idle (between requests) and Body deadlines run from the latest
        // progress, just made: in steady state `left` is nearly a whole idle
        // timeout and the constant coarse wait fits in it.
        let coarse = if left >= steady_wait + steady_wait / 4 {
            steady_wait
        } else {
            coarse_part(left)
        };
        let mut read = Err(io::ErrorKind::TimedOut.into());
        if coarse >= MIN_SOCKET_TIMEOUT {
            if read_timeout != Some(coarse) {
                let _ = stream.set_read_timeout(Some(coarse));
                read_timeout = Some(coarse);
            }
            read = (&stream).read(conn.read_buf());
        }
        if read.as_ref().is_err_and(is_timeout) {
            if !wait_ready(&stream, libc::POLLIN, deadline) {
                conn.on_timeout(Now::read());
                continue;
            }
            read = recv_now(&stream, conn.read_buf());
        }
        match read {
            Ok(n) => {
                if shared.shutdown_begun().is_some() {
                    // Shutdown may have begun while this thread was blocked.
                    conn.disable_keep_alive();
                }
                conn.commit_read(n, Now::read());
            }
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    if conn.needs_linger() {
        linger(&stream);
    }
}

/// Shortest SO_RCVTIMEO worth setting; nearer the deadline, the precise wait
/// does it all.
const MIN_SOCKET_TIMEOUT: Duration = Duration::from_millis(20);

/// The part of a wait spent blocked in a read with SO_RCVTIMEO: three
/// quarters, so that a timer wheel an eighth late still wakes before the
/// deadline.
fn coarse_part(wait: Duration) -> Duration {
    wait - wait / 4
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Writes all of `conn`'s output to the blocking `stream`. Each write is
/// made without blocking (MSG_DONTWAIT); when the socket is full, the wait
/// for room ends at the connection's deadline, which only write progress
/// moves: a client that stops reading its responses is cut one idle timeout
/// after the last progress, however the kernel's buffers drain. Returns
/// false when the connection must be dropped at once (peer gone, or stalled).
///
/// Progress is stamped with the time of the write (a vDSO clock read, no
/// syscall), not of the read that produced the output: the idle time of a
/// connection then counts from its last response's write, whatever the
/// handler's work or the scheduler delayed in between.
fn write_output<H: Handler>(stream: &TcpStream, conn: &mut Conn<H>) -> bool {
    let socket = SockRef::from(stream);
    while !conn.output().is_empty() {
        match socket.send_with_flags(conn.output(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
            Ok(0) => return false,
            Ok(n) => conn.consume_output(n, Now::read()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !wait_ready(stream, libc::POLLOUT, conn.deadline()) {
                    conn.on_timeout(Now::read());
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Reads what has arrived without blocking.
fn recv_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: recv(2) writes at most `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Waits until `stream` is ready for `events` (POLLIN or POLLOUT) or
/// `deadline` passes, precisely (ppoll's high-resolution timer). True when
/// ready, or failed: the next read or write says how.
fn wait_ready(stream: &TcpStream, events: libc::c_short, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        let mut fd = libc::pollfd {
            fd: stream.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: ppoll(2) on one valid pollfd and a timespec, both locals
        // that outlive the call; no signal mask is passed.
        match unsafe { libc::ppoll(&mut fd, 1, &timeout, std::ptr::null()) } {
            0 => return false,
            n if n > 0 => return true,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return true,
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

/// Sends FIN, then lingers ([`Linger`]) on a blocking socket.
fn linger(mut stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(LINGER_TIME));
    let mut linger = Linger::begin(Instant::now());
    let mut sink = [0u8; 4096];
    while Instant::now() < linger.until {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 && linger.drained(n) => {}
            _ => break,
        }
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

/// The open connections of the blocking models, so that shutdown can reach
/// a thread blocked in a read.
#[derive(Default)]
pub(crate) struct Connections {
    inner: Mutex<ConnectionSet>,
}

#[derive(Default)]
struct ConnectionSet {
    slots: Vec<Option<Registered>>,
    free: Vec<usize>,
}

struct Registered {
    fd: RawFd,
    /// Whether its thread is (about to be) blocked waiting for a next request.
    awaiting_request: Arc<AtomicBool>,
}

/// Keeps a connection registered while alive; deregisters on drop, which
/// must happen before its socket is closed (so a stale fd is never shut down).
pub(crate) struct Registration<'a> {
    set: &'a Connections,
    slot: usize,
    awaiting_request: Arc<AtomicBool>,
}

impl Registration<'_> {
    /// Says whether the connection's thread now waits for a next request
    /// (nothing of one has arrived, all output written). A plain store: the
    /// flag is read only when a shutdown's grace period ends.
    #[inline]
    pub(crate) fn set_awaiting_request(&self, awaiting: bool) {
        self.awaiting_request.store(awaiting, Ordering::Relaxed);
    }
}

impl Connections {
    /// Registers `stream` (one allocation per connection, none per request).
    pub(crate) fn register(&self, stream: &impl AsRawFd) -> Registration<'_> {
        let awaiting_request = Arc::new(AtomicBool::new(true));
        let entry = Registered {
            fd: stream.as_raw_fd(),
            awaiting_request: Arc::clone(&awaiting_request),
        };
        let mut set = self.inner.lock().unwrap();
        let slot = match set.free.pop() {
            Some(slot) => {
                set.slots[slot] = Some(entry);
                slot
            }
            None => {
                set.slots.push(Some(entry));
                set.slots.len() - 1
            }
        };
        Registration {
            set: self,
            slot,
            awaiting_request,
        }
    }

    /// The grace period is over: shuts down the read side of every
    /// connection whose thread waits for a next request, so its blocked read
    /// returns EOF and the connection closes. Connections in the middle of a
    /// request are left to finish it.
    fn end_waits_for_requests(&self) {
        let set = self.inner.lock().unwrap();
        for entry in set.slots.iter().flatten() {
            if entry.awaiting_request.load(Ordering::Relaxed) {
                shutdown_raw(entry.fd, libc::SHUT_RD);
            }
        }
    }

    /// The shutdown timeout has passed: shuts down both directions of every
    /// connection still open, so that its thread's blocked read or write
    /// fails and the thread ends.
    fn cut_all(&self) {
        let set = self.inner.lock().unwrap();
        for entry in set.slots.iter().flatten() {
            shutdown_raw(entry.fd, libc::SHUT_RDWR);
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut set = self.set.inner.lock().unwrap();
        set.slots[self.slot] = None;
        set.free.push(self.slot);
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
