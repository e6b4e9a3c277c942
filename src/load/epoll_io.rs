//! The epoll engine: an edge-triggered epoll loop (mio) over the thread's
//! sockets, a `read` per readable socket until it is empty and a `write`
//! per request batch; a timerfd wakes the open loop for its schedule.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::time::Duration;

use mio::event::Event;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};

use super::conn::Conn;
use super::driver::Driver;
use super::engine::Io;
use super::plan::{Ctx, Plan};
use crate::timerfd::Timer;

/// The timer's token: past any connection index.
const TIMER: Token = Token(usize::MAX);

/// The sockets, registered with the thread's epoll instance.
pub struct EpollIo<'a> {
    /// A second handle on the epoll instance, so that slots can (re)register
    /// while the loop holds the [`Poll`] for waiting.
    registry: Registry,
    requests: &'a [u8],
    streams: Vec<Option<TcpStream>>,
    /// Registered for WRITABLE too (while connecting or with a write pending).
    want_write: Vec<bool>,
}

impl EpollIo<'_> {
    /// Changes `slot`'s registration.
    fn set_want_write(&mut self, slot: usize, want: bool) -> io::Result<()> {
        if self.want_write[slot] == want {
            return Ok(());
        }
        let Some(stream) = &mut self.streams[slot] else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        self.registry.reregister(stream, Token(slot), interest)?;
        self.want_write[slot] = want;
        Ok(())
    }

    /// Whether `slot`'s nonblocking connect ended, and how: `None` while it
    /// is under way.
    fn connect_outcome(&mut self, slot: usize, event: &Event) -> Option<bool> {
        let stream = self.streams[slot].as_ref()?;
        let connected = match stream.take_error() {
            Ok(None) => match stream.peer_addr() {
                Ok(_) => true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected && !event.is_error() => {
                    return None
                }
                Err(_) => false,
            },
            _ => false,
        };
        // Connected: only readable from now on, until a write blocks.
        Some(connected && self.set_want_write(slot, false).is_ok())
    }
}

impl Io for EpollIo<'_> {
    fn connect(&mut self, slot: usize, addr: SocketAddr) -> io::Result<()> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        self.registry.register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.streams[slot] = Some(stream);
        self.want_write[slot] = true;
        Ok(())
    }

    fn send(&mut self, slot: usize, bytes: Range<usize>) -> io::Result<usize> {
        let Some(stream) = &mut self.streams[slot] else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let (mut from, to) = (bytes.start, bytes.end);
        while from < to {
            match stream.write(&self.requests[from..to]) {
                Ok(n) => from += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The rest goes when the socket is writable again.
                    self.set_want_write(slot, true)?;
                    return Ok(from - bytes.start);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.set_want_write(slot, false)?;
        Ok(from - bytes.start)
    }

    fn close(&mut self, slot: usize) {
        self.streams[slot] = None;
        self.want_write[slot] = false;
    }
}

/// The thread's epoll instance, its event buffer and (open loop) its timer.
pub struct EpollDriver {
    poll: Poll,
    events: Events,
    timer: Option<Timer>,
    armed_for: u64,
}

impl<'a> Driver<'a> for EpollDriver {
    type Io = EpollIo<'a>;

    fn new(plan: &'a Plan, connections: usize, open_loop: bool) -> io::Result<(Self, EpollIo<'a>)> {
        let poll = Poll::new()?;
        let timer = match open_loop {
            true => {
                let timer = Timer::new()?;
                poll.registry().register(
                    &mut SourceFd(&timer.as_raw_fd()),
                    TIMER,
                    Interest::READABLE,
                )?;
                Some(timer)
            }
            false => None,
        };
        let io = EpollIo {
            registry: poll.registry().try_clone()?,
            requests: &plan.requests,
            streams: (0..connections).map(|_| None).collect(),
            want_write: vec![false; connections],
        };
        let driver = EpollDriver {
            poll,
            events: Events::with_capacity(connections.clamp(16, 1024)),
            timer,
            armed_for: u64::MAX,
        };
        Ok((driver, io))
    }

    fn wait(
        &mut self,
        ctx: &mut Ctx<'a, EpollIo<'a>>,
        conns: &mut [Conn],
        now: u64,
        wake: u64,
        due: Option<u64>,
    ) -> io::Result<()> {
        if let (Some(due), Some(timer)) = (due, &self.timer) {
            if due != self.armed_for {
                timer.arm_in(due.saturating_sub(now))?;
                self.armed_for = due;
            }
        }
        match self.poll.poll(
            &mut self.events,
            Some(Duration::from_nanos(wake.saturating_sub(now))),
        ) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let now = ctx.now();
        if now >= ctx.plan.end_ns {
            return Ok(());
        }
        for event in self.events.iter() {
            match event.token() {
                TIMER => {
                    if let Some(timer) = &self.timer {
                        timer.clear();
                    }
                }
                Token(i) => on_event(&mut conns[i], ctx, event, now),
            }
        }
        Ok(())
    }

    fn finish(&mut self, _ctx: &mut Ctx<'a, EpollIo<'a>>) {}
}

/// Hands a readiness event to its slot.
fn on_event(conn: &mut Conn, ctx: &mut Ctx<'_, EpollIo<'_>>, event: &Event, now: u64) {
    let slot = conn_index(event);
    if conn.is_connecting() {
        if let Some(connected) = ctx.io.connect_outcome(slot, event) {
            conn.on_connect(ctx, connected, now);
        }
        return;
    }
    if !conn.is_open() {
        return;
    }
    if event.is_writable() && conn.is_sending() && !conn.on_sent(ctx, 0, now) {
        return;
    }
    if event.is_readable() || event.is_read_closed() || event.is_error() {
        on_readable(conn, ctx, slot, now, event.is_read_closed());
    }
}

fn conn_index(event: &Event) -> usize {
    event.token().0
}

/// Reads and frames what arrived; `peer_closed` is whether the event
/// reported the server's FIN.
fn on_readable(
    conn: &mut Conn,
    ctx: &mut Ctx<'_, EpollIo<'_>>,
    slot: usize,
    mut now: u64,
    peer_closed: bool,
) {
    loop {
        let Some(stream) = &mut ctx.io.streams[slot] else {
            return;
        };
        let space = conn.read_space();
        let room = space.len();
        let read = if room == 0 {
            Ok(usize::MAX)
        } else {
            stream.read(space)
        };
        match read {
            Ok(0) => {
                now = ctx.now();
                conn.on_eof(ctx, now);
                return;
            }
            Ok(n) => {
                now = ctx.now();
                if !conn.on_read(ctx, n.min(room), now) {
                    return;
                }
                // A short read emptied the socket: the edge-triggered
                // registration reports the next data, so skip the read
                // that would only say EAGAIN. Not when the FIN already
                // arrived: it sits behind the data and raises no new edge.
                if n < room && !peer_closed {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                conn.on_read_error(ctx, now);
                return;
            }
        }
    }
    conn.fill(ctx, now);
}
