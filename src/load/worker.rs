//! One load thread: an edge-triggered epoll loop (mio) over its share of the
//! connections, until the end of the run.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::conn::Conn;
use super::plan::{Ctx, Plan};
use super::schedule::Schedule;
use super::stats::{new_histogram, Counters, LagHistograms, ThreadStats};
use super::timer::Timer;

/// The timer's token: past any connection index.
const TIMER: Token = Token(usize::MAX);
/// Timeouts and connect retries are checked this often (or four times per
/// timeout, if that is shorter).
const SWEEP_NS: u64 = 10_000_000;
/// Connections opened together at the start; the next burst goes out at the
/// next sweep.
const OPEN_BURST: usize = 512;

/// Runs `connections` connections until the end of the plan; `rate` is this
/// thread's share of the open-loop rate and `offset_ns` when its schedule starts.
pub fn run(
    plan: &Plan,
    connections: usize,
    rate: Option<f64>,
    offset_ns: f64,
) -> io::Result<ThreadStats> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(connections.clamp(16, 1024));
    let timer = match rate {
        Some(_) => {
            let timer = Timer::new()?;
            poll.registry().register(
                &mut SourceFd(&timer.as_raw_fd()),
                TIMER,
                Interest::READABLE,
            )?;
            Some(timer)
        }
        None => None,
    };
    // A second handle on the same epoll instance, so that connections can
    // (re)register while the loop holds `poll` for waiting.
    let registry = poll.registry().try_clone()?;
    let mut ctx = Ctx {
        plan,
        registry: &registry,
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
    let mut armed_for = u64::MAX;
    let mut ended_ns;
    loop {
        let now = ctx.now();
        ended_ns = now;
        // With -n, the thread is done once the budget is spent and every
        // request it sent has its answer.
        if now >= plan.end_ns || plan.cancelled() || (ctx.outstanding == 0 && plan.budget_spent()) {
            break;
        }
        if let (Some(schedule), Some(timer)) = (ctx.schedule, &timer) {
            while schedule.slot_time(cursor) <= now {
                conns[schedule.owner(cursor)].fill(&mut ctx, now);
                cursor += 1;
            }
            let due = schedule.slot_time(cursor);
            if due < plan.end_ns && due != armed_for {
                timer.arm_in(due - now)?;
                armed_for = due;
            }
        }
        if now >= next_sweep {
            for conn in &mut conns {
                conn.sweep(&mut ctx, now);
            }
            next_sweep = now + sweep_every;
        }
        let wake = next_sweep.min(plan.end_ns);
        match poll.poll(
            &mut events,
            Some(Duration::from_nanos(wake.saturating_sub(now))),
        ) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let now = ctx.now();
        if now >= plan.end_ns {
            ended_ns = now;
            break;
        }
        for event in events.iter() {
            match event.token() {
                TIMER => {
                    if let Some(timer) = &timer {
                        timer.clear();
                    }
                }
                Token(i) => conns[i].on_event(&mut ctx, event, now),
            }
        }
    }
    let ended_ns = ended_ns.min(plan.end_ns);
    let mut per_connection = Vec::with_capacity(connections);
    let stop_ns = ended_ns.min(plan.budget_spent_ns.load(Ordering::Relaxed));
    for conn in &mut conns {
        conn.finish(&mut ctx, stop_ns);
        per_connection.push(conn.completed());
    }
    Ok(ThreadStats {
        counters: ctx.counters,
        latency: ctx.latency,
        uncorrected: ctx.uncorrected,
        lag: ctx.lag,
        per_connection,
        ended_ns,
    })
}
