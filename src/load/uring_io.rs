//! The io_uring engine: one ring per load thread, shared with nothing.
//!
//! ```text
//! loop {                                   (the loop in worker.rs)
//!     schedule slots due, sweeps   -> sends and connects queued
//!     io_uring_enter(submit everything queued; wait for one completion, or
//!                    until the next sweep or schedule slot)
//!     reap every completion there is:
//!         connected      -> the connection's multishot recv armed, its
//!                           requests queued
//!         received bytes -> from a provided buffer into the slot's framing
//!                           (the buffer goes back at once); the answered
//!                           slot's next requests queued
//!         ring ran dry   -> the buffer ring grows, the recv is re-armed
//!         sent n bytes   -> the rest queued, or what fell due meanwhile
//! }
//! ```
//!
//! A connection costs the kernel one multishot recv for its whole life:
//! bytes land in a ring of buffers the thread owns ([`BufRing`], shared with
//! the v5 server) and nothing is polled per response. The request bytes are
//! the plan's, encoded once; a send points into them. Completions carry the
//! slot, a generation and the operation in their user data, so that those
//! of a closed connection (a recv ending with the shutdown, a cancelled
//! connect) are recognised and only their buffers are taken back.
//!
//! Closing shuts the socket down at once (which ends its recv) but closes
//! the descriptor only after the next submission, so that no operation
//! queued for it can land on a new socket that reused the number.

use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::squeue::Entry;
use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, IoUring};
use socket2::SockAddr;

use super::conn::Conn;
use super::driver::Driver;
use super::engine::Io;
use super::plan::{Ctx, Plan};
use crate::models::uring::buf_ring::BufRing;
use crate::models::uring::ring::{new_ring, SQ_ENTRIES};
use crate::timerfd::drop_timer_slack;

/// Most receive buffers per thread: past this many arrivals in one loop
/// iteration, recvs get ENOBUFS and are re-armed.
const BUFFER_COUNT: u16 = 1024;
/// Buffers a ring starts with; it doubles each time it runs dry.
const BUFFER_INITIAL: u16 = 64;
/// Bytes per receive buffer: a response of a usual size, or a pipelined
/// batch of 16 small ones; a larger read arrives in several completions.
const BUFFER_SIZE: u32 = 2048;
const BUFFER_GROUP: u16 = 0;
/// How long the end of a run waits for the operations of its closed
/// connections to complete before it leaks their memory instead.
const DRAIN_NS: u64 = 1_000_000_000;

/// Operations, in the low bits of a completion's user data.
const CONNECT: u64 = 0;
const RECV: u64 = 1;
const SEND: u64 = 2;
const CANCEL: u64 = 3;

/// User data: the slot (high 32 bits), its generation, the operation.
fn user_data(slot: usize, generation: u32, op: u64) -> u64 {
    ((slot as u64) << 32) | (u64::from(generation & 0x3FFF_FFFF) << 2) | op
}

fn decode(data: u64) -> (usize, u32, u64) {
    (
        (data >> 32) as usize,
        ((data >> 2) & 0x3FFF_FFFF) as u32,
        data & 3,
    )
}

/// One slot's socket.
#[derive(Clone, Copy)]
struct Socket {
    /// The descriptor; -1 without one.
    fd: RawFd,
    /// Bumped at every close: completions of an older generation are stale.
    generation: u32,
    /// A connect is in flight.
    connecting: bool,
}

/// The sockets of one thread, and the operations queued for its next enter.
pub struct UringIo<'a> {
    requests: &'a [u8],
    /// The target, where connects can point to it until they complete.
    addr: Box<SockAddr>,
    sockets: Vec<Socket>,
    queued: Vec<Entry>,
    /// Shut-down descriptors to close once the queue was submitted.
    closing: Vec<RawFd>,
    /// Operations submitted or queued whose last completion has not come.
    in_flight: usize,
}

impl UringIo<'_> {
    fn push(&mut self, entry: Entry) {
        self.in_flight += 1;
        self.queued.push(entry);
    }

    /// Whether a completion for `slot` of `generation` is about its current
    /// socket.
    fn current(&self, slot: usize, generation: u32) -> bool {
        self.sockets.get(slot).is_some_and(|s| {
            s.fd >= 0 && (s.generation & 0x3FFF_FFFF) == (generation & 0x3FFF_FFFF)
        })
    }

    fn arm_recv(&mut self, slot: usize) {
        let socket = self.sockets[slot];
        let recv = opcode::RecvMulti::new(Fd(socket.fd), BUFFER_GROUP)
            .build()
            .user_data(user_data(slot, socket.generation, RECV));
        self.push(recv);
    }

    fn close_queued(&mut self) {
        for fd in self.closing.drain(..) {
            // SAFETY: a descriptor this engine opened and closes once; every
            // operation that names it has been submitted.
            unsafe { libc::close(fd) };
        }
    }
}

impl Io for UringIo<'_> {
    fn connect(&mut self, slot: usize, addr: SocketAddr) -> io::Result<()> {
        debug_assert_eq!(SockAddr::from(addr), *self.addr);
        let family = match addr {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        };
        // SAFETY: plain syscall; the result is checked. A blocking socket:
        // io_uring waits for it by polling, never by blocking the thread.
        let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        // SAFETY: `one` is a c_int, as TCP_NODELAY takes.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: the descriptor just opened, used by nothing else.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        let socket = &mut self.sockets[slot];
        socket.fd = fd;
        socket.connecting = true;
        let connect = opcode::Connect::new(Fd(fd), self.addr.as_ptr().cast(), self.addr.len())
            .build()
            .user_data(user_data(slot, socket.generation, CONNECT));
        self.push(connect);
        Ok(())
    }

    fn send(&mut self, slot: usize, bytes: Range<usize>) -> io::Result<usize> {
        let socket = self.sockets[slot];
        if socket.fd < 0 || socket.connecting {
            return Err(io::ErrorKind::NotConnected.into());
        }
        let bytes = &self.requests[bytes];
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let send = opcode::Send::new(Fd(socket.fd), bytes.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(slot, socket.generation, SEND));
        self.push(send);
        Ok(0)
    }

    fn close(&mut self, slot: usize) {
        let socket = self.sockets[slot];
        if socket.fd < 0 {
            return;
        }
        if socket.connecting {
            let cancel = opcode::AsyncCancel::new(user_data(slot, socket.generation, CONNECT))
                .build()
                .user_data(user_data(slot, socket.generation, CANCEL));
            self.push(cancel);
        } else {
            // Ends the multishot recv (and a blocked send) of this socket.
            // SAFETY: plain syscall on a descriptor this engine owns.
            unsafe { libc::shutdown(socket.fd, libc::SHUT_RDWR) };
        }
        self.closing.push(socket.fd);
        self.sockets[slot] = Socket {
            fd: -1,
            generation: socket.generation.wrapping_add(1),
            connecting: false,
        };
    }
}

/// The thread's ring and its receive buffers.
pub struct UringDriver {
    /// Dropped before `buffers` (fields drop in order): the kernel lets go
    /// of the buffer ring with the ring.
    ring: IoUring,
    buffers: BufRing,
    /// Operations outlived the drain: leak the memory they point to.
    leak: bool,
}

impl<'a> Driver<'a> for UringDriver {
    type Io = UringIo<'a>;

    fn new(plan: &'a Plan, connections: usize, open_loop: bool) -> io::Result<(Self, UringIo<'a>)> {
        if open_loop {
            drop_timer_slack();
        }
        let buffers = BufRing::new(BUFFER_COUNT, BUFFER_SIZE, BUFFER_INITIAL)?;
        let ring = new_ring(SQ_ENTRIES)?;
        // Optional: saves a descriptor lookup per io_uring_enter (5.18+).
        let _ = ring.submitter().register_ring_fd();
        // SAFETY: `buffers` is dropped after the ring (field order), and
        // leaked instead when operations may still write into it.
        unsafe { buffers.register(&ring.submitter(), BUFFER_GROUP) }?;
        let io = UringIo {
            requests: &plan.requests,
            addr: Box::new(SockAddr::from(plan.addr)),
            sockets: vec![
                Socket {
                    fd: -1,
                    generation: 0,
                    connecting: false,
                };
                connections
            ],
            queued: Vec::with_capacity(2 * connections.min(4096)),
            closing: Vec::new(),
            in_flight: 0,
        };
        let driver = UringDriver {
            ring,
            buffers,
            leak: false,
        };
        Ok((driver, io))
    }

    fn wait(
        &mut self,
        ctx: &mut Ctx<'a, UringIo<'a>>,
        conns: &mut [Conn],
        now: u64,
        wake: u64,
        due: Option<u64>,
    ) -> io::Result<()> {
        let wake = due.map_or(wake, |due| due.min(wake));
        self.enter(&mut ctx.io, wake.saturating_sub(now))?;
        let now = ctx.now();
        if now >= ctx.plan.end_ns {
            // Past the end nothing more is counted: what completed is left
            // for `finish`, which takes back its buffers.
            return Ok(());
        }
        self.reap(ctx, conns, now);
        Ok(())
    }

    fn finish(&mut self, ctx: &mut Ctx<'a, UringIo<'a>>) {
        // Every slot is closed: what completes now is stale.
        let start = ctx.now();
        loop {
            if self.enter(&mut ctx.io, 0).is_err() {
                break;
            }
            self.reap(ctx, &mut [], start);
            if ctx.io.in_flight == 0 {
                return;
            }
            if ctx.now().saturating_sub(start) >= DRAIN_NS
                || self.enter(&mut ctx.io, 10_000_000).is_err()
            {
                break;
            }
            self.reap(ctx, &mut [], start);
            if ctx.io.in_flight == 0 {
                return;
            }
        }
        // Operations still under way may write into the buffers or read
        // the target's address: keep both mapped for good.
        self.leak = true;
        self.buffers.leak();
        std::mem::forget(std::mem::replace(
            &mut ctx.io.addr,
            Box::new(SockAddr::from(ctx.plan.addr)),
        ));
    }
}

impl UringDriver {
    /// The one `io_uring_enter` of an iteration: submits everything queued
    /// and waits up to `timeout_ns` for a completion.
    fn enter(&mut self, io: &mut UringIo<'_>, timeout_ns: u64) -> io::Result<()> {
        self.buffers.publish();
        let (submitter, mut sq, _) = self.ring.split();
        for entry in io.queued.drain(..) {
            // SAFETY: every entry points into memory that outlives its last
            // completion: the plan's requests, the boxed address, the
            // buffer ring (see `finish`).
            while unsafe { sq.push(&entry) }.is_err() {
                sq.sync();
                match submitter.submit() {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        // Completions backed up: reaped after the wait below.
                        break;
                    }
                    Err(e) => return Err(e),
                }
                sq.sync();
            }
        }
        sq.sync();
        drop(sq);
        let timeout = Timespec::from(Duration::from_nanos(timeout_ns));
        let args = SubmitArgs::new().timespec(&timeout);
        let waited = submitter.submit_with_args(1, &args);
        io.close_queued();
        match waited {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                // Timed out, interrupted, or completions backed up: go on
                // and reap what there is.
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// Hands every completion there is to its slot (none to a closed one).
    fn reap(&mut self, ctx: &mut Ctx<'_, UringIo<'_>>, conns: &mut [Conn], now: u64) {
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            let (data, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            let more = cqueue::more(flags);
            if !more {
                ctx.io.in_flight -= 1;
            }
            let (slot, generation, op) = decode(data);
            let current = ctx.io.current(slot, generation);
            match op {
                RECV => {
                    if let Some(id) = cqueue::buffer_select(flags) {
                        if current && res > 0 {
                            if let Some(conn) = conns.get_mut(slot) {
                                // SAFETY: the id and length come from this
                                // completion; the buffer goes back below.
                                let bytes = unsafe { self.buffers.received(id, res as usize) };
                                if conn.on_bytes(ctx, bytes, now) {
                                    conn.fill(ctx, now);
                                }
                            }
                        }
                        self.buffers.give_back(id);
                    }
                    if more || !ctx.io.current(slot, generation) {
                        continue;
                    }
                    let Some(conn) = conns.get_mut(slot) else {
                        continue;
                    };
                    match res {
                        0 => conn.on_eof(ctx, now),
                        e if e == -libc::ENOBUFS => {
                            self.buffers.grow();
                            ctx.io.arm_recv(slot);
                        }
                        e if e < 0 => conn.on_read_error(ctx, now),
                        // Bytes, and the multishot ended anyway: re-armed.
                        _ => ctx.io.arm_recv(slot),
                    }
                }
                SEND if current => {
                    if let Some(conn) = conns.get_mut(slot) {
                        match usize::try_from(res) {
                            Ok(n) => {
                                conn.on_sent(ctx, n, now);
                            }
                            Err(_) => conn.on_send_error(ctx, now),
                        }
                    }
                }
                CONNECT if current && ctx.io.sockets[slot].connecting => {
                    ctx.io.sockets[slot].connecting = false;
                    if let Some(conn) = conns.get_mut(slot) {
                        if res == 0 {
                            ctx.io.arm_recv(slot);
                        }
                        conn.on_connect(ctx, res == 0, now);
                    }
                }
                _ => {}
            }
        }
    }
}

impl Drop for UringDriver {
    fn drop(&mut self) {
        if self.leak {
            // The ring is torn down with the driver; the buffers stay.
            self.buffers.leak();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot, generation (30 bits, wrapping) and operation come back out
    /// of a completion's user data.
    #[test]
    fn user_data_round_trips() {
        for (slot, generation, op) in [
            (0, 0, CONNECT),
            (7, 1, RECV),
            (65_535, 0x3FFF_FFFF, SEND),
            (u32::MAX as usize, 12, CANCEL),
        ] {
            assert_eq!(
                decode(user_data(slot, generation, op)),
                (slot, generation, op)
            );
        }
        // A generation past 30 bits wraps, as `current` compares it.
        assert_eq!(decode(user_data(3, 0x4000_0001, RECV)).1, 1);
    }
}
