//! Runs a load: checks, resolves, probes, starts the threads, merges.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::fd_limit;

use super::config::LoadConfig;
use super::engine::Engine;
use super::error::LoadError;
use super::hostile::{Noise, Slowloris, SLOWLORIS_SETUP};
use super::idle::open_idle;
use super::mix::Mixer;
use super::plan::{Plan, PlanMix};
use super::report::{Fairness, KindReport, LatencySummary, LoadReport};
use super::stats::{new_histogram, Counters, KindStats, LagHistograms, ThreadStats};
use super::worker::{self, Share};

/// How long the opening probe waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the load described by `config` and reports what happened.
///
/// Refuses (without sending anything) an invalid configuration, a host that
/// does not resolve or resolves outside loopback (unless
/// [`LoadConfig::allow_remote`]), and a target where not one connection can be
/// opened. Failures during the run are counted in the report, not returned.
pub fn run_load(config: &LoadConfig) -> Result<LoadReport, LoadError> {
    config.validate()?;
    let addrs = config.target.resolve(config.allow_remote)?;
    let addr = probe(&addrs)?;
    let (engine, engine_reason) = Engine::choose(config.engine)?;
    let threads = config.effective_threads();
    let mut notes = Vec::new();
    if threads < config.threads {
        notes.push(format!(
            "{} threads for {} connections: using {threads} (a thread needs a connection)",
            config.threads, config.connections
        ));
    }
    // Each slowloris connection holds a descriptor; each malformed client
    // one at a time.
    let hostile_fds = [config.slowloris, config.malformed]
        .iter()
        .flatten()
        .map(|h| h.clients as u64)
        .sum::<u64>();
    if let Some(note) = raise_fd_limit((config.connections + config.idle) as u64 + hostile_fds + 64)
    {
        notes.push(note);
    }
    if let Some(n) = config.requests.filter(|&n| n < config.connections as u64) {
        notes.push(format!(
            "-n {n} is less than -c {}: at most {n} connections can complete a request",
            config.connections
        ));
    }
    let kinds = config.encode_requests();
    // Each kind's `pipeline` copies, one kind after the other: any run of
    // one kind up to the depth is one contiguous write.
    let requests: Vec<u8> = kinds
        .iter()
        .flat_map(|r| r.repeat(config.pipeline))
        .collect();
    let mix = config.mix.as_ref().map(|_| PlanMix {
        offset: kinds[0].len() * config.pipeline,
        request_len: kinds[1].len(),
    });
    // The idle connections first, answered, so that the load runs beside them.
    let idle = match config.idle {
        0 => None,
        n => {
            let never = AtomicBool::new(false);
            let cancel = config.cancel.as_deref().unwrap_or(&never);
            Some(open_idle(addr, n, &kinds[0], config.timeout, cancel)?)
        }
    };
    // From here on, an early return drops them, which stops them.
    let hostile = Hostile::start(config, addr)?;
    let started_at = std::time::SystemTime::now() + config.warmup;
    let plan = Plan {
        addr,
        requests,
        request_len: kinds[0].len(),
        mix,
        pipeline: config.pipeline,
        head_request: config.method.eq_ignore_ascii_case("HEAD"),
        base: Instant::now(),
        record_from_ns: nanos(config.warmup),
        end_ns: nanos(config.warmup) + nanos(config.duration),
        timeout_ns: nanos(config.timeout),
        cancel: config.cancel.clone(),
        budget: config.requests.map(AtomicU64::new),
        budget_spent_ns: AtomicU64::new(u64::MAX),
    };
    let shares: Vec<usize> = (0..threads)
        .map(|i| config.connections / threads + usize::from(i < config.connections % threads))
        .collect();
    let results: Vec<std::io::Result<ThreadStats>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .enumerate()
            .map(|(i, &share)| {
                let rate = config
                    .rate
                    .map(|r| r * share as f64 / config.connections as f64);
                let share = Share {
                    connections: share,
                    rate,
                    offset_ns: config.rate.map_or(0.0, |r| i as f64 * 1e9 / r),
                    mixer: config
                        .mix
                        .as_ref()
                        .map(|mix| Mixer::new(mix.share_ppm, i, threads)),
                };
                let plan = &plan;
                std::thread::Builder::new()
                    .name(format!("load-{i}"))
                    .spawn_scoped(scope, move || worker::run(plan, engine, share))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a load thread panicked"))),
                Err(e) => Err(e),
            })
            .collect()
    });
    // They stop with the load, whichever way it ended (its duration, its
    // request count, or cancelled).
    let slowloris = hostile.slowloris.map(Slowloris::finish);
    let malformed = hostile.malformed.map(Noise::finish);
    let mut counters = Counters::default();
    let mut latency = new_histogram();
    let mut uncorrected = config.rate.map(|_| new_histogram());
    let mut lag = config.rate.map(|_| LagHistograms::new());
    let mut kinds: Vec<KindStats> = match config.mix {
        Some(_) => vec![KindStats::new(), KindStats::new()],
        None => Vec::new(),
    };
    let mut per_connection = Vec::with_capacity(config.connections);
    let mut ended_ns = 0;
    for result in results {
        let stats = result?;
        ended_ns = ended_ns.max(stats.ended_ns);
        for (all, one) in kinds.iter_mut().zip(&stats.kinds) {
            all.add(one)
                .map_err(|e| std::io::Error::other(format!("merging histograms: {e:?}")))?;
        }
        counters.merge(&stats.counters);
        latency
            .add(&stats.latency)
            .map_err(|e| std::io::Error::other(format!("merging histograms: {e:?}")))?;
        if let (Some(all), Some(one)) = (&mut uncorrected, &stats.uncorrected) {
            all.add(one)
                .map_err(|e| std::io::Error::other(format!("merging histograms: {e:?}")))?;
        }
        if let (Some(all), Some(one)) = (&mut lag, &stats.lag) {
            all.add(one)
                .map_err(|e| std::io::Error::other(format!("merging histograms: {e:?}")))?;
        }
        per_connection.extend(stats.per_connection);
    }
    let summary = LatencySummary::of(&latency);
    let interrupted = config
        .cancel
        .as_ref()
        .is_some_and(|flag| flag.load(Ordering::Relaxed));
    Ok(LoadReport {
        url: config.target.url.clone(),
        addr,
        method: config.method.clone(),
        headers: config.headers.clone(),
        connections: config.connections,
        threads,
        pipeline: config.pipeline,
        started_at,
        duration: config.duration,
        elapsed: Duration::from_nanos(ended_ns.saturating_sub(plan.record_from_ns)),
        requests: config.requests,
        interrupted,
        warmup: config.warmup,
        timeout: config.timeout,
        rate: config.rate,
        engine,
        engine_reason,
        notes,
        counters,
        latency: summary,
        latency_uncorrected: match &uncorrected {
            Some(h) => LatencySummary::of(h),
            None => summary,
        },
        histogram: latency,
        histogram_uncorrected: uncorrected,
        lag,
        kinds: match &config.mix {
            Some(mix) => {
                let paths = [
                    (config.target.path.clone(), mix.main_share_ppm()),
                    (mix.path.clone(), mix.share_ppm),
                ];
                paths
                    .into_iter()
                    .zip(kinds)
                    .map(|((path, share_ppm), stats)| KindReport::of(path, share_ppm, stats))
                    .collect()
            }
            None => Vec::new(),
        },
        fairness: Fairness::of(&per_connection),
        per_connection,
        idle: idle.map(|held| held.outcome.clone()),
        slowloris,
        malformed,
    })
}

/// The hostile clients of a run ([`LoadConfig::slowloris`],
/// [`LoadConfig::malformed`]), running beside its load.
struct Hostile {
    slowloris: Option<Slowloris>,
    malformed: Option<Noise>,
}

impl Hostile {
    /// Starts them against `addr`: the slowloris connections first, given
    /// [`SLOWLORIS_SETUP`] to connect (or until the run is cancelled) so
    /// that the load runs beside all of them from its start, then the
    /// malformed clients.
    fn start(config: &LoadConfig, addr: SocketAddr) -> Result<Hostile, LoadError> {
        fn context(what: &'static str) -> impl Fn(std::io::Error) -> LoadError {
            move |e| {
                LoadError::Io(std::io::Error::new(
                    e.kind(),
                    format!("cannot start the {what}: {e}"),
                ))
            }
        }
        let slowloris = match config.slowloris {
            Some(s) => {
                let started = Slowloris::start(addr, s.clients, s.interval)
                    .map_err(context("slowloris connections"))?;
                let ready = Instant::now() + SLOWLORIS_SETUP;
                let cancelled = || {
                    config
                        .cancel
                        .as_deref()
                        .is_some_and(|flag: &AtomicBool| flag.load(Ordering::Relaxed))
                };
                while !cancelled() && Instant::now() < ready {
                    std::thread::sleep(
                        ready
                            .saturating_duration_since(Instant::now())
                            .min(Duration::from_millis(10)),
                    );
                }
                Some(started)
            }
            None => None,
        };
        let malformed = match config.malformed {
            Some(m) => Some(
                Noise::start(addr, m.clients, m.interval)
                    .map_err(context("malformed-request clients"))?,
            ),
            None => None,
        };
        Ok(Hostile {
            slowloris,
            malformed,
        })
    }
}

/// Opens (and closes) one connection to the first address that accepts, so
/// that a target nobody listens on fails at once with a clear message instead
/// of a run full of connect errors.
fn probe(addrs: &[SocketAddr]) -> Result<SocketAddr, LoadError> {
    let mut last = String::new();
    for &addr in addrs {
        match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
            Ok(_) => return Ok(addr),
            Err(e) => last = e.to_string(),
        }
    }
    Err(LoadError::Connect {
        addrs: addrs.to_vec(),
        why: last,
    })
}

/// Raises the soft open-files limit towards `wanted` (one descriptor per
/// connection plus a margin); says so when the hard limit stops it short,
/// since connections past it would fail with "too many open files".
fn raise_fd_limit(wanted: u64) -> Option<String> {
    let reached = fd_limit::raise_to(Some(wanted));
    (reached < wanted).then(|| {
        format!(
            "the open-files limit is {reached}: connections past it will fail to connect \
             (raise it with ulimit -n)"
        )
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 4)
}
