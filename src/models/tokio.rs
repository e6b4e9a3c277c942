//! v6, tokio: the multi-threaded work-stealing runtime of the `tokio` crate,
//! one task per connection, over tokio's own `TcpListener` and `TcpStream`.
//! The runtime has `--reactors` worker threads (one per CPU by default); a
//! task runs on whichever worker polls it, and an idle worker steals tasks
//! from a busy one.
//!
//! ```text
//! acceptor task: loop {
//!     accept              -> past the cap: 503 + close; otherwise spawn a
//!                            connection task (onto this worker's queue)
//!     out of descriptors  -> sleep 100 ms, accept again
//!     listener shut       -> shutdown began: take in what it drained from the
//!                            listen queue, wake every connection task, end
//! }
//! connection task: loop {
//!     shutdown began      -> keep-alive off (an idle connection's deadline
//!                            becomes the end of the grace period)
//!     step, with buffers lent from this worker's pool: write the output; read
//!                            while reads_now and the socket has bytes,
//!                            Conn::commit_read; the deadline passed:
//!                            Conn::on_timeout (408 or close), write that
//!     finished            -> close, or linger (FIN, then drain until EOF or
//!                            the linger time)
//!     wait for: readable (reads_now) or writable (output pending), the
//!               timer (armed no later than the deadline), a parked
//!               request's timerfd (armed at the end of its wait), the shutdown
//! }
//! runtime thread: block on the acceptor task; once it ended, wait until every
//!     connection task has ended or the shutdown timed out, then drop the
//!     runtime (the tasks left are dropped: their sockets close)
//! ```
//!
//! One listening socket, not one per worker as in v4 and v5: tokio accepts
//! on whichever worker finds the listener ready and queues the new task on
//! that worker, and a worker with nothing to do steals from the others, so
//! the runtime spreads connections by itself. Per-worker SO_REUSEPORT
//! listeners would still save the accept path its one shared wake-up, but
//! they could not keep a connection on the worker that accepted it (tasks
//! migrate), which is what makes them pay off in v4 and v5.
//!
//! The hot path is kept to what v4 does: readiness is awaited
//! (`poll_read_ready`, `poll_write_ready`), then the socket is read and
//! written directly through `try_io`, with no `AsyncRead` buffering in
//! between. A read that comes back short (the socket had less than the
//! buffer holds) clears tokio's readiness as `EAGAIN` would, so no read is
//! spent only to learn that the socket is empty (a FIN stays reported: tokio
//! keeps the closed state). The deadline is one `tokio::time::Sleep` per
//! task, re-armed only when the deadline moves earlier or when it fires
//! (the deadline is checked on every wake, and the timer wakes the task if
//! nothing else does): in steady state no timer operation per request.
//! The time handed to the core is shared by the tasks a worker runs: read
//! after each wait for events and at most every 32 wakes ([`now`]), as v4
//! reads it once per loop iteration.
//!
//! Buffers: [`BufferPool`] is per thread, so each worker has its own
//! (a thread-local); a task borrows it for one synchronous step, between two
//! awaits, so lending and reclaiming happen on the same worker. A connection
//! that keeps a buffer across an await (a partial head, output the client
//! has not read) gives it back to the pool of whichever worker runs it then.
//!
//! What tokio allocates: a task per connection (spawned at accept, freed when
//! the connection ends) and its I/O registration; nothing per request.
//!
//! Parking (a request answered later): [`reads_now`] decides whether a
//! connection reads; while it does not, the task waits for nothing but its
//! deadline, where `Conn::on_timeout` is called.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::pin::{pin, Pin};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use socket2::SockRef;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::time::Sleep;

use super::slots::Slots;
use super::{
    bind, deadline_of, drain, flush, per_cpu, recv_now, reject, request_waiting, spawn,
    start_threads, AcceptError, IterationClock, Linger, Shared, ACCEPT_BACKOFF,
};
use crate::http::Handler;
use crate::http::{BufferPool, Conn, Now, Status};
use crate::route::Routes;
use crate::timerfd::Timer;

pub(super) fn start(shared: &Arc<Shared>) -> io::Result<Vec<Arc<std::net::TcpListener>>> {
    let config = &shared.config;
    let listener = Arc::new(bind(config.addr, false, config.backlog)?);
    start_threads(shared, vec![listener], |listeners| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(per_cpu(config.reactors))
            .thread_name("v6-worker")
            .on_thread_unpark(forget_time)
            .enable_io()
            .enable_time()
            .build()?;
        // Its own descriptor of the one socket: shutting the server's
        // listener down (SHUT_RD) wakes the acceptor task.
        let accepting = listeners[0].try_clone()?;
        accepting.set_nonblocking(true)?;
        let accepting = {
            let _context = runtime.enter();
            TcpListener::from_std(accepting)?
        };
        let tasks = Arc::new(Tasks {
            shared: Arc::clone(shared),
            open: Mutex::new(Slots::new()),
            closed: Condvar::new(),
        });
        let server_listener = Arc::clone(&listeners[0]);
        spawn(shared, "v6-runtime".into(), None, move |_| {
            run(runtime, accepting, server_listener, tasks)
        })
    })
}

/// The runtime thread: the acceptor runs as a task on the workers; this
/// thread waits for it to end (the shutdown), then for the connections.
fn run(
    runtime: Runtime,
    listener: TcpListener,
    server_listener: Arc<std::net::TcpListener>,
    tasks: Arc<Tasks>,
) {
    let acceptor = runtime.spawn(accept_loop(listener, server_listener, Arc::clone(&tasks)));
    let _ = runtime.block_on(acceptor);
    let hard_end = tasks
        .shared
        .shutdown_begun()
        .map_or_else(Instant::now, |clock| clock.hard_end);
    tasks.wait_until_closed(hard_end);
    // The shutdown timeout: what is still open is dropped with its task.
    runtime.shutdown_timeout(hard_end.saturating_duration_since(Instant::now()));
}

/// What the tasks share: the server, and the open connections (counted
/// against the cap) with each one's task waker, for the shutdown to wake.
struct Tasks {
    shared: Arc<Shared>,
    open: Mutex<Slots<Option<Waker>>>,
    /// Signalled when the last connection closes once a shutdown has begun.
    closed: Condvar,
}

impl Tasks {
    /// A slot for a new connection, or `None` at the cap.
    fn admit(&self) -> Option<u32> {
        let mut open = self.open.lock().unwrap();
        (open.in_use() < self.shared.config.max_connections).then(|| open.claim())
    }

    /// Records how to wake the task serving `slot`.
    fn register(&self, slot: u32, waker: Waker) {
        self.open.lock().unwrap()[slot] = Some(waker);
    }

    fn release(&self, slot: u32) {
        let mut open = self.open.lock().unwrap();
        open[slot] = None;
        open.release(slot);
        if open.in_use() == 0 && self.shared.stops_accepting() {
            self.closed.notify_all();
        }
    }

    /// Wakes every connection task, so that each sees the shutdown.
    fn wake_all(&self) {
        let open = self.open.lock().unwrap();
        for slot in 0..open.len() as u32 {
            if let Some(Some(waker)) = open.get(slot) {
                waker.wake_by_ref();
            }
        }
    }

    /// Waits until no connection is open or `deadline` has passed.
    fn wait_until_closed(&self, deadline: Instant) {
        let open = self.open.lock().unwrap();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let _ = self
            .closed
            .wait_timeout_while(open, timeout, |open| open.in_use() > 0);
    }
}

/// A connection's slot, released when its task ends (or is dropped).
struct Open {
    tasks: Arc<Tasks>,
    slot: u32,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.tasks.release(self.slot);
    }
}

/// Accepts until the shutdown, then takes in what the shutdown drained from
/// the listen queue (`server_listener` is the socket it drained: the
/// acceptor's own descriptor is a clone of it).
async fn accept_loop(
    listener: TcpListener,
    server_listener: Arc<std::net::TcpListener>,
    tasks: Arc<Tasks>,
) {
    let shared = &*tasks.shared;
    while !shared.stops_accepting() {
        match listener.accept().await {
            Ok((stream, _)) => admit(stream, &tasks),
            Err(e) => match AcceptError::of(&e) {
                AcceptError::Transient | AcceptError::Empty => {}
                AcceptError::Exhausted if shared.stops_accepting() => break,
                AcceptError::Exhausted => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
    // Once the shutdown's clock is set (the drain is complete then), the
    // drained connections are served, keep-alive off, and every connection
    // task wakes to it.
    let _ = shared.shutdown_begun();
    for stream in shared.take_drained(&server_listener) {
        let admitted = stream
            .set_nonblocking(true)
            .and_then(|()| TcpStream::from_std(stream));
        if let Ok(stream) = admitted {
            admit(stream, &tasks);
        }
    }
    tasks.wake_all();
}

fn admit(stream: TcpStream, tasks: &Arc<Tasks>) {
    let Some(slot) = tasks.admit() else {
        if let Ok(stream) = stream.into_std() {
            reject(stream, Status::ServiceUnavailable);
        }
        return;
    };
    let _ = stream.set_nodelay(true);
    let tasks = Arc::clone(tasks);
    tokio::spawn(serve(stream, Open { tasks, slot }));
}

thread_local! {
    /// This worker's buffers, lent to a connection for one step.
    static BUFFERS: RefCell<BufferPool> = RefCell::new(BufferPool::new());
    /// This worker's time, and how many wakes it has served since it was
    /// read (see [`now`]).
    static CLOCK: Cell<Option<(Now, u32)>> = const { Cell::new(None) };
}

/// The most task wakes on one worker that share a reading of the clock.
const CLOCK_SHARED_BY: u32 = 32;

/// The time a task hands the core when it wakes: read again when `fresh`
/// is asked (its timer fired, or handlers spend time), and otherwise at most
/// once every [`CLOCK_SHARED_BY`] wakes on this worker and after each time
/// the worker waited for events ([`forget_time`]): as v4 reads it once per
/// loop iteration, not once per connection (a clock read is two vDSO calls,
/// a measurable share of a request).
fn now(fresh: bool) -> Now {
    CLOCK.with(|clock| match clock.get() {
        Some((now, uses)) if !fresh && uses < CLOCK_SHARED_BY => {
            clock.set(Some((now, uses + 1)));
            now
        }
        _ => {
            let now = Now::read();
            clock.set(Some((now, 1)));
            now
        }
    })
}

/// Makes the next [`now`] on this worker read the clock: the worker has
/// just waited for events.
fn forget_time() {
    CLOCK.with(|clock| clock.set(None));
}

/// Whether the connection reads more input now: not while output it
/// produced is unsent (back-pressure), nor while a request is parked
/// (what follows it waits in the socket until it is answered).
#[inline]
fn reads_now<H: Handler>(conn: &Conn<H>) -> bool {
    conn.output().is_empty() && !conn.is_awaiting()
}

/// Arms the connection's precise timer (made on first use) to fire at
/// `due`; false when it cannot be had (then tokio's timer serves, late by up
/// to a millisecond).
fn arm_park(park: &mut Option<Box<AsyncFd<Timer>>>, due: Instant, now: Instant) -> bool {
    if park.is_none() {
        *park = Timer::new().ok().and_then(|timer| {
            // SAFETY: the timer owns its descriptor, which stays open and
            // the same for as long as the AsyncFd holds the timer.
            unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) }
                .ok()
                .map(Box::new)
        });
    }
    let after = due.saturating_duration_since(now).as_nanos() as u64;
    park.as_ref()
        .is_some_and(|park| park.get_ref().arm_in(after).is_ok())
}

/// What a connection waits for after a step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Read,
    Write,
    /// Neither (it does not read now, and has nothing to write): its
    /// deadline or the shutdown.
    Nothing,
}

/// What a step leaves the connection to do.
enum Next {
    Wait(Want),
    Close,
    Linger,
}

/// Why a waiting connection woke.
#[derive(PartialEq, Eq)]
enum Woke {
    /// Its socket is ready, or the timer fired: step again.
    Step,
    /// The shutdown began.
    Shutdown,
    /// The runtime is going away.
    Failed,
}

/// Serves one connection. What lives across its awaits is what an idle
/// connection costs: the connection, its socket, its timer and its slot;
/// the rest is derived again at each wake.
async fn serve(stream: TcpStream, open: Open) {
    let waker = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
    open.tasks.register(open.slot, waker);
    // Armed at the connection's deadline by its first step.
    let mut timer = pin!(tokio::time::sleep(Duration::MAX));
    // Whether the timer holds this task's waker: from a poll until it fires.
    let mut timer_wakes = false;
    // A parked request's wake: tokio's timer has millisecond resolution
    // (a 1 ms wait would last up to 2), so the end of a handler's wait is
    // timed by a timerfd in tokio's reactor instead, made at the
    // connection's first park and kept (one descriptor, one registration
    // and one allocation per connection that parks; a settime per request).
    // Boxed: a connection that never parks spends 8 bytes on it.
    let mut park: Option<Box<AsyncFd<Timer>>> = None;
    let lingering = {
        let shared = &*open.tasks.shared;
        let (routes, limits) = (&shared.config.routes, shared.config.limits);
        let mut conn = Conn::new(routes, limits, Now::read());
        let lingering = loop {
            let woke = {
                let shared = &*open.tasks.shared;
                let routes = &shared.config.routes;
                // The clock is read afresh when a wait may be over (the
                // connection's timer fired, or a parked request's).
                let fresh = timer.is_elapsed() || conn.is_awaiting() || routes.work.holds_thread();
                let mut clock = IterationClock::at(now(fresh), routes);
                let grace_end = shared.shutdown_begun().map(|shutdown| {
                    conn.disable_keep_alive();
                    shutdown.grace_end
                });
                let next = BUFFERS.with_borrow_mut(|pool| {
                    conn.lend(pool);
                    let next = step(&stream, &mut conn, &mut clock, grace_end);
                    conn.reclaim(pool);
                    next
                });
                let want = match next {
                    Next::Wait(want) => want,
                    Next::Close => break false,
                    Next::Linger => break true,
                };
                let due = deadline_of(&conn, grace_end);
                let parked = conn.is_awaiting() && arm_park(&mut park, due, clock.now.instant);
                let fired = timer.is_elapsed();
                if fired || (!parked && due < timer.deadline().into_std()) {
                    timer_wakes &= !fired;
                    timer.as_mut().reset(due.into());
                }
                // Until it has seen the shutdown begin, the task watches for it.
                let watch = grace_end.is_none().then_some(shared);
                let park = park.as_deref().filter(|_| parked);
                wait(&stream, want, timer.as_mut(), &mut timer_wakes, park, watch)
            }
            .await;
            if woke == Woke::Failed {
                break false;
            }
        };
        BUFFERS.with_borrow_mut(|pool| conn.release(pool));
        lingering
    };
    if lingering {
        linger(&stream, timer).await;
    }
}

/// One step of a connection: write what is pending, read and answer while
/// there is input and it reads, and time it out if its deadline passed.
fn step(
    stream: &TcpStream,
    conn: &mut Conn<&Routes>,
    clock: &mut IterationClock,
    grace_end: Option<Instant>,
) -> Next {
    let next = exchange(stream, conn, clock);
    if matches!(next, Next::Wait(_)) && deadline_of(conn, grace_end) <= clock.now.instant {
        if grace_end.is_some() && request_waiting(conn, stream.as_raw_fd()) {
            // Idle at the grace period's end, but its next request has
            // arrived while the worker was busy (tokio has not reported it
            // yet, so `exchange` did not read it): read it now rather than
            // close over it.
            let n = recv_now(stream.as_raw_fd(), conn.read_buf()).unwrap_or(0);
            if n > 0 {
                conn.commit_read(n, clock.now);
                clock.after_handlers();
                return exchange(stream, conn, clock);
            }
        }
        conn.on_timeout(clock.now);
        return exchange(stream, conn, clock);
    }
    next
}

/// Writes pending output, then reads and answers until the socket has no
/// more input or the connection stops reading.
fn exchange(stream: &TcpStream, conn: &mut Conn<&Routes>, clock: &mut IterationClock) -> Next {
    loop {
        if !write(stream, conn, clock) {
            return Next::Close;
        }
        if !conn.output().is_empty() {
            return Next::Wait(Want::Write);
        }
        if conn.is_finished() {
            return if conn.needs_linger() {
                Next::Linger
            } else {
                Next::Close
            };
        }
        if !reads_now(conn) {
            return Next::Wait(Want::Nothing);
        }
        match read(stream, conn) {
            Ok(n) => {
                conn.commit_read(n, clock.now);
                clock.after_handlers();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait(Want::Read),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Next::Close,
        }
    }
}

/// Reads into the connection's buffer. A short read (the socket held less
/// than the buffer takes) clears tokio's read readiness as `EAGAIN` would,
/// so that the next read waits for the next bytes instead of asking the
/// kernel only to hear that there are none.
fn read(stream: &TcpStream, conn: &mut Conn<&Routes>) -> io::Result<usize> {
    let mut short = None;
    let result = stream.try_io(Interest::READABLE, || {
        let buf = conn.read_buf();
        let n = (&*SockRef::from(stream)).read(buf)?;
        if n > 0 && n < buf.len() {
            short = Some(n);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    short.map_or(result, Ok)
}

/// Writes as much output as the socket takes (clearing tokio's write
/// readiness when it takes less); false on a dead peer.
fn write(stream: &TcpStream, conn: &mut Conn<&Routes>, clock: &IterationClock) -> bool {
    if conn.output().is_empty() {
        return true;
    }
    let written = stream.try_io(Interest::WRITABLE, || {
        if !flush(&*SockRef::from(stream), conn, clock.now) {
            return Ok(false);
        }
        match conn.output().is_empty() {
            true => Ok(true),
            false => Err(io::ErrorKind::WouldBlock.into()),
        }
    });
    match written {
        Ok(alive) => alive,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

/// Waits until the socket is ready for `want`, the timer fires, or (if
/// `shutdown` is given) the server begins to shut down. The timer is polled
/// only while it does not hold the task's waker (`timer_wakes`): once it
/// does, it keeps it across re-arming until it fires, so that a request
/// costs no timer operation at all.
fn wait<'a>(
    stream: &'a TcpStream,
    want: Want,
    mut timer: Pin<&'a mut Sleep>,
    timer_wakes: &'a mut bool,
    park: Option<&'a AsyncFd<Timer>>,
    shutdown: Option<&'a Shared>,
) -> impl Future<Output = Woke> + 'a {
    poll_fn(move |cx| {
        if shutdown.is_some_and(Shared::stops_accepting) {
            return Poll::Ready(Woke::Shutdown);
        }
        if let Some(park) = park {
            if let Poll::Ready(ready) = park.poll_read_ready(cx) {
                if let Ok(mut guard) = ready {
                    guard.get_inner().clear();
                    guard.clear_ready();
                }
                return Poll::Ready(Woke::Step);
            }
        }
        let ready = match want {
            Want::Read => stream.poll_read_ready(cx),
            Want::Write => stream.poll_write_ready(cx),
            Want::Nothing => Poll::Pending,
        };
        match ready {
            Poll::Ready(Ok(())) => Poll::Ready(Woke::Step),
            Poll::Ready(Err(_)) => Poll::Ready(Woke::Failed),
            // Holding the waker, it woke the task if it fired.
            Poll::Pending if *timer_wakes => match timer.is_elapsed() {
                true => Poll::Ready(Woke::Step),
                false => Poll::Pending,
            },
            Poll::Pending => {
                let fired = timer.as_mut().poll(cx).map(|()| Woke::Step);
                *timer_wakes = fired.is_pending();
                fired
            }
        }
    })
}

/// A lingering close: FIN, then what the peer still sends is dropped until
/// it closes, [`super::LINGER_TIME`] passes or [`super::LINGER_BYTES`] were
/// dropped.
async fn linger(stream: &TcpStream, mut timer: Pin<&mut Sleep>) {
    let _ = SockRef::from(stream).shutdown(Shutdown::Write);
    let mut linger = Linger::begin(Instant::now());
    timer.as_mut().reset(linger.until.into());
    loop {
        let drained = stream.try_io(Interest::READABLE, || {
            match drain(&*SockRef::from(stream), &mut linger) {
                true => Err(io::ErrorKind::WouldBlock.into()),
                false => Ok(()),
            }
        });
        if !matches!(&drained, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            return;
        }
        let mut timer_wakes = false;
        if timer.is_elapsed()
            || wait(
                stream,
                Want::Read,
                timer.as_mut(),
                &mut timer_wakes,
                None,
                None,
            )
            .await
                != Woke::Step
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ServerConfig;

    /// What an idle connection costs is its task (tokio's header and
    /// trailer around this future, in a cell aligned to 128 bytes) and its
    /// I/O registration: the future must stay its Conn, its socket, its
    /// timer, its parked-request timer's box and little more (its buffers
    /// are lent only while bytes are pending).
    #[test]
    fn a_task_is_its_conn_its_socket_its_timer_and_little_more() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let stream = TcpStream::connect(addr).await.unwrap();
            let tasks = Arc::new(Tasks {
                shared: Arc::new(Shared::new(ServerConfig::new(addr))),
                open: Mutex::new(Slots::new()),
                closed: Condvar::new(),
            });
            let slot = tasks.admit().unwrap();
            let task = serve(stream, Open { tasks, slot });
            let parts = size_of::<Conn<&Routes>>()
                + size_of::<TcpStream>()
                + size_of::<Sleep>()
                + size_of::<Option<Box<AsyncFd<Timer>>>>();
            let size = size_of_val(&task);
            // The rest: the future's state, the loop's flags and the
            // references the wait future holds across its await (about
            // 136 B): a buffer held inline would be kilobytes.
            assert!(size <= parts + 160, "task {size} B, its parts {parts} B");
        });
    }
}
