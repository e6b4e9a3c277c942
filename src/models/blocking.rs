//! The blocking connection loop of v1-v3, and the registry through which a
//! graceful shutdown reaches a thread blocked in a read.
//!
//! A blocking model gives each connection a thread of its own (for as long
//! as the connection lasts) and runs [`serve_connection`] on it: the thread
//! blocks in `read` and `write`, with deadlines kept by socket timeouts and
//! `ppoll`. What the reactor models do with one event loop over many
//! connections, this does with one thread per connection.

use std::io::{self, Read};

use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::SockRef;

use super::{deadline_of, recv_now, shutdown_raw, Linger, Shared, LINGER_TIME};
use crate::http::Handler;
use crate::http::{Conn, Now, Phase};

/// Serves one connection to its end on the calling thread: the loop of v1-v3.
///
/// ```text
/// loop {
///     write all output (waiting for room at most until the deadline)
///     finished? -> leave the loop
///     a request parked by its handler? -> sleep until its wait is over,
///                        Conn::on_timeout answers it
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
        if conn.is_awaiting() {
            // A thread per connection has no way to wait but on itself:
            // a parked request (`--work await`) is waited for here, as
            // `wait` would be.
            std::thread::sleep(conn.deadline().saturating_duration_since(Instant::now()));
            conn.on_timeout(Now::read());
            continue;
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
            read = recv_now(stream.as_raw_fd(), conn.read_buf());
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
    pub(crate) fn end_waits_for_requests(&self) {
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
    pub(crate) fn cut_all(&self) {
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
