//! The concurrency models, and what they share: the server configuration, the
//! listening sockets, the blocking per-connection loop of v1-v3, connection
//! accounting and graceful shutdown.
//!
//! A model only moves bytes between sockets and [`crate::http::Conn`].

mod event;
mod pool;
mod sequential;
mod threaded;
mod uring;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

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

    /// Stops the server: no new connections; idle keep-alive connections are
    /// closed; responses to requests already received are written; then waits
    /// up to [`ServerConfig::shutdown_timeout`] for every thread to finish.
    /// Returns whether all of them did.
    pub fn shutdown(self) -> bool {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for listener in &self.listeners {
            // Wakes a thread blocked in accept() (Linux answers it EINVAL).
            shutdown_raw(listener.as_raw_fd(), libc::SHUT_RD);
        }
        self.shared.connections.stop_reading_all();
        self.shared
            .threads
            .wait_all(self.shared.config.shutdown_timeout)
    }
}

/// State shared by a server's threads. No global mutable state anywhere.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    stopping: AtomicBool,
    pub(crate) connections: Connections,
    pub(crate) threads: LiveCount,
}

impl Shared {
    fn new(config: ServerConfig) -> Self {
        Shared {
            config,
            stopping: AtomicBool::new(false),
            connections: Connections::default(),
            threads: LiveCount::default(),
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Accepts the next connection; `None` once the server is stopping.
    /// Transient accept errors (aborted connections, fd exhaustion) are waited
    /// out rather than ending the accept loop.
    pub(crate) fn accept(&self, listener: &TcpListener) -> Option<TcpStream> {
        loop {
            if self.is_stopping() {
                return None;
            }
            match listener.accept() {
                Ok((stream, _)) => return Some(stream),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(_) if self.is_stopping() => return None,
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
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

/// Serves one connection to its end on the calling thread: the loop of v1-v3.
///
/// Reads block with SO_RCVTIMEO set to whatever deadline the connection's
/// phase calls for; the timeout is only changed when that deadline changes
/// kind, so a keep-alive connection in steady state makes no extra syscalls.
pub(crate) fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let Some(_registration) = shared.connections.register(&stream) else {
        return; // shutting down
    };
    let limits = shared.config.limits;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(limits.idle_timeout));
    let mut read_timeout = None;
    // One clock read per socket read; writes follow at once and reuse it.
    let mut now = Now::read();
    let mut conn = Conn::new(shared.config.routes, limits, now);
    loop {
        while !conn.output().is_empty() {
            match stream.write(conn.output()) {
                Ok(0) => return,
                Ok(n) => conn.consume_output(n, now),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return, // peer gone or write timeout
            }
        }
        if conn.is_finished() {
            break;
        }
        let wait = match conn.phase() {
            Phase::Head => conn.deadline().saturating_duration_since(Instant::now()),
            Phase::Idle | Phase::Body => limits.idle_timeout,
        };
        if wait.is_zero() {
            conn.on_timeout(Now::read());
            continue;
        }
        if read_timeout != Some(wait) {
            let _ = stream.set_read_timeout(Some(wait));
            read_timeout = Some(wait);
        }
        match stream.read(conn.read_buf()) {
            Ok(n) => {
                now = Now::read();
                conn.commit_read(n, now);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                conn.on_timeout(Now::read())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    if conn.needs_linger() {
        linger(&mut stream);
    }
}

/// Most bytes and time spent draining a peer's unread input before closing.
pub(crate) const LINGER_BYTES: usize = 256 * 1024;
pub(crate) const LINGER_TIME: Duration = Duration::from_millis(500);

/// Sends FIN, then reads and discards what the peer still sends (bounded),
/// so that closing does not turn into an RST that destroys our last response.
fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(LINGER_TIME));
    let until = Instant::now() + LINGER_TIME;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES && Instant::now() < until {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
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

/// The open connections of a server, so that shutdown can reach them.
#[derive(Default)]
pub(crate) struct Connections {
    inner: Mutex<ConnectionSet>,
}

#[derive(Default)]
struct ConnectionSet {
    stopping: bool,
    slots: Vec<Option<RawFd>>,
    free: Vec<usize>,
}

/// Keeps a connection registered while alive; deregisters on drop, which
/// must happen before its socket is closed (so a stale fd is never shut down).
pub(crate) struct Registration<'a> {
    set: &'a Connections,
    slot: usize,
}

impl Connections {
    /// Registers `stream`; `None` when the server is stopping.
    pub(crate) fn register(&self, stream: &impl AsRawFd) -> Option<Registration<'_>> {
        let mut set = self.inner.lock().unwrap();
        if set.stopping {
            return None;
        }
        let fd = Some(stream.as_raw_fd());
        let slot = match set.free.pop() {
            Some(slot) => {
                set.slots[slot] = fd;
                slot
            }
            None => {
                set.slots.push(fd);
                set.slots.len() - 1
            }
        };
        Some(Registration { set: self, slot })
    }

    /// Refuses new registrations and shuts down the read side of every open
    /// connection: a blocked read returns EOF, responses already owed are
    /// still written, then the connection closes.
    fn stop_reading_all(&self) {
        let mut set = self.inner.lock().unwrap();
        set.stopping = true;
        for fd in set.slots.iter().flatten() {
            shutdown_raw(*fd, libc::SHUT_RD);
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

    fn wait_all(&self, timeout: Duration) -> bool {
        let count = self.count.lock().unwrap();
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
