//! One load thread: the event loop over its share of the connections, until
//! the end of the run. The loop (schedule, sweeps, the end) is the same on
//! every engine; waiting and moving bytes is the engine's ([`Driver`]).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::conn::Conn;
use super::engine::{Engine, Io};
use super::epoll_io::EpollDriver;
use super::schedule::Schedule;
use super::stats::{new_histogram, Counters, LagHistograms, ThreadStats};
use super::uring_io::UringDriver;

/// Timeouts and connect retries are checked this often (or four times per
/// timeout, if that is shorter).
const SWEEP_NS: u64 = 10_000_000;
/// Connections opened together at the start; the next burst goes out at the
/// next sweep.
const OPEN_BURST: usize = 512;

/// What every thread shares, read-only: the run as decided before it starts.
#[derive(Debug)]
pub struct Plan {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// `pipeline` copies of the encoded request, back to back, so that any
    /// number of requests up to the depth is one contiguous write.
    pub requests: Vec<u8>,
    /// Bytes of one request.
    pub request_len: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Whether the method is HEAD (responses carry no body).
    pub head_request: bool,
    /// The run's time origin; every time below is ns after it.
    pub base: Instant,
    /// Start of the recorded window (end of the warmup).
    pub record_from_ns: u64,
    /// End of the run.
    pub end_ns: u64,
    /// Per-request timeout.
    pub timeout_ns: u64,
    /// Set to end the run early.
    pub cancel: Option<Arc<AtomicBool>>,
    /// `-n`: requests the recorded window may still send, all threads
    /// together; `None` without a count.
    pub budget: Option<AtomicU64>,
    /// When the last request of the budget was taken (ns after the start;
    /// `u64::MAX` until then): open-loop slots due after it went unsent for
    /// want of budget, not of pipeline room, and are not counted as such.
    pub budget_spent_ns: AtomicU64,
}

impl Plan {
    /// Whether the run was cancelled.
    pub fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    }

    /// Takes up to `wanted` requests from the budget (all of them without
    /// one) at `now`; returns how many may be sent.
    pub fn claim(&self, wanted: usize, now: u64) -> usize {
        let Some(budget) = &self.budget else {
            return wanted;
        };
        let mut left = budget.load(Ordering::Relaxed);
        loop {
            let take = left.min(wanted as u64);
            if take == 0 {
                return 0;
            }
            match budget.compare_exchange_weak(
                left,
                left - take,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if take == left {
                        self.budget_spent_ns.fetch_min(now, Ordering::Relaxed);
                    }
                    return take as usize;
                }
                Err(now) => left = now,
            }
        }
    }

    /// Whether a budget was given and is spent.
    pub fn budget_spent(&self) -> bool {
        self.budget
            .as_ref()
            .is_some_and(|b| b.load(Ordering::Relaxed) == 0)
    }
}

/// A thread's mutable context, lent to its connections.
pub struct Ctx<'a, I> {
    /// The shared plan.
    pub plan: &'a Plan,
    /// The thread's I/O engine: its sockets.
    pub io: I,
    /// Open loop: the thread's schedule.
    pub schedule: Option<Schedule>,
    /// Counters.
    pub counters: Counters,
    /// Latency (corrected in open loop).
    pub latency: Histogram<u64>,
    /// Open loop: latency from the actual send.
    pub uncorrected: Option<Histogram<u64>>,
    /// Requests in flight on all of the thread's connections.
    pub outstanding: usize,
    /// Open loop: the client's lag, and the latency without it.
    pub lag: Option<LagHistograms>,
}

impl<I> Ctx<'_, I> {
    /// Nanoseconds since the run's start (a vDSO clock read, no syscall).
    #[inline]
    pub fn now(&self) -> u64 {
        self.plan.base.elapsed().as_nanos() as u64
    }
}

/// An engine's event loop: the sockets ([`Driver::Io`], lent to the slots
/// through [`Ctx`]) and the waiting.
pub trait Driver<'a>: Sized {
    /// The sockets' side, which the slots call.
    type Io: Io;

    /// A driver for `connections` slots running `plan`; `open_loop` says
    /// whether it will be asked to wake for schedule slots.
    fn new(plan: &'a Plan, connections: usize, open_loop: bool) -> io::Result<(Self, Self::Io)>;

    /// Sends what the slots queued, waits for events until `wake` (ns after
    /// the start) or, in open loop, the next schedule slot `due`, and hands
    /// what happened to the slots. Hands nothing over once the run's end
    /// has passed.
    fn wait(
        &mut self,
        ctx: &mut Ctx<'a, Self::Io>,
        conns: &mut [Conn],
        now: u64,
        wake: u64,
        due: Option<u64>,
    ) -> io::Result<()>;

    /// Once every slot is finished (closed): waits for the engine's
    /// operations still under way to end.
    fn finish(&mut self, ctx: &mut Ctx<'a, Self::Io>);
}

/// Runs `connections` connections on `engine` until the end of the plan;
/// `rate` is this thread's share of the open-loop rate and `offset_ns` when
/// its schedule starts.
pub fn run(
    plan: &Plan,
    engine: Engine,
    connections: usize,
    rate: Option<f64>,
    offset_ns: f64,
) -> io::Result<ThreadStats> {
    match engine {
        Engine::Epoll => run_on::<EpollDriver>(plan, connections, rate, offset_ns),
        Engine::Uring => run_on::<UringDriver>(plan, connections, rate, offset_ns),
    }
}

fn run_on<'a, D: Driver<'a>>(
    plan: &'a Plan,
    connections: usize,
    rate: Option<f64>,
    offset_ns: f64,
) -> io::Result<ThreadStats> {
    let (mut driver, io) = D::new(plan, connections, rate.is_some())?;
    let mut ctx = Ctx {
        plan,
        io,
        schedule: rate.map(|r| Schedule::new(r, connections, offset_ns)),
        counters: Counters::default(),
        latency: new_histogram(),
        uncorrected: rate.map(|_| new_histogram()),
        outstanding: 0,
        lag: rate.map(|_| LagHistograms::new()),
    };
    let mut conns: Vec<Conn> = (0..connections)
        .map(|i| Conn::new(i, plan.pipeline, plan.head_request))
        .collect();
    let now = ctx.now();
    let sweep_every = SWEEP_NS.min(plan.timeout_ns / 4).max(1_000_000);
    // Open the connections in bursts, one per sweep: thousands of SYNs at
    // once overflow the server's listen queue, and a dropped SYN is only
    // sent again a second later, which would starve those connections for
    // no fault of the server.
    for (i, conn) in conns.iter_mut().enumerate() {
        match (i / OPEN_BURST) as u64 {
            0 => conn.connect(&mut ctx, now),
            burst => conn.connect_at(now + burst * sweep_every),
        }
    }
    let mut next_sweep = now + sweep_every;
    let mut cursor = 0u64;
    let mut ended_ns;
    loop {
        let now = ctx.now();
        ended_ns = now;
        // With -n, the thread is done once the budget is spent and every
        // request it sent has its answer.
        if now >= plan.end_ns || plan.cancelled() || (ctx.outstanding == 0 && plan.budget_spent()) {
            break;
        }
        let mut due = None;
        if let Some(schedule) = ctx.schedule {
            while schedule.slot_time(cursor) <= now {
                conns[schedule.owner(cursor)].fill(&mut ctx, now);
                cursor += 1;
            }
            due = Some(schedule.slot_time(cursor)).filter(|&due| due < plan.end_ns);
        }
        if now >= next_sweep {
            for conn in &mut conns {
                conn.sweep(&mut ctx, now);
            }
            next_sweep = now + sweep_every;
        }
        let wake = next_sweep.min(plan.end_ns);
        driver.wait(&mut ctx, &mut conns, now, wake, due)?;
    }
    let ended_ns = ended_ns.min(plan.end_ns);
    let mut per_connection = Vec::with_capacity(connections);
    let stop_ns = ended_ns.min(plan.budget_spent_ns.load(Ordering::Relaxed));
    for conn in &mut conns {
        conn.finish(&mut ctx, stop_ns);
        per_connection.push(conn.completed());
    }
    driver.finish(&mut ctx);
    Ok(ThreadStats {
        counters: ctx.counters,
        latency: ctx.latency,
        uncorrected: ctx.uncorrected,
        lag: ctx.lag,
        per_connection,
        ended_ns,
    })
}
