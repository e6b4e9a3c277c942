//! One load thread: the event loop over its share of the connections, until
//! the end of the run. The loop (schedule, sweeps, the end) is the same on
//! every engine; waiting and moving bytes is the engine's ([`Driver`]).

use std::io;
use std::sync::atomic::Ordering;

use super::conn::Conn;
use super::driver::Driver;
use super::engine::Engine;
use super::epoll_io::EpollDriver;
use super::mix::Mixer;
use super::plan::{Ctx, Plan};
use super::schedule::Schedule;
use super::stats::{new_histogram, Counters, KindStats, LagHistograms, ThreadStats};
use super::uring_io::UringDriver;

/// Timeouts and connect retries are checked this often (or four times per
/// timeout, if that is shorter).
const SWEEP_NS: u64 = 10_000_000;
/// Connections opened together at the start; the next burst goes out at the
/// next sweep.
const OPEN_BURST: usize = 512;

/// What one load thread is given beyond the plan.
#[derive(Clone, Copy, Debug)]
pub struct Share {
    /// Its connections.
    pub connections: usize,
    /// Open loop: its share of the rate.
    pub rate: Option<f64>,
    /// Open loop: when its schedule starts (ns after the run's start).
    pub offset_ns: f64,
    /// With a mix: its choice of kinds (each thread starts its own at a
    /// point of its own, see [`Mixer::new`]).
    pub mixer: Option<Mixer>,
}

/// Runs a thread's `share` of the connections on `engine` until the end of
/// the plan.
pub fn run(plan: &Plan, engine: Engine, share: Share) -> io::Result<ThreadStats> {
    match engine {
        Engine::Epoll => run_on::<EpollDriver>(plan, share),
        Engine::Uring => run_on::<UringDriver>(plan, share),
    }
}

fn run_on<'a, D: Driver<'a>>(plan: &'a Plan, share: Share) -> io::Result<ThreadStats> {
    let Share {
        connections,
        rate,
        offset_ns,
        mixer,
    } = share;
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
        mixer,
        kinds: match mixer {
            Some(_) => vec![KindStats::new(), KindStats::new()],
            None => Vec::new(),
        },
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
        kinds: ctx.kinds,
        per_connection,
        ended_ns,
    })
}
