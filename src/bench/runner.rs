//! Runs one cell: starts a server as a pinned child process, applies the
//! point's load (the load generator, with the hostile clients of `slow` and
//! `noise`; or the idle connections), reads the server's /proc figures
//! around the recorded window, and stops the server with SIGTERM. It
//! measures; `analysis.rs` judges.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::child::{ChildServer, Ready};
use crate::load::{open_idle, run_load, HostileClients, LoadConfig, LoadSummary, SLOWLORIS_SETUP};
use crate::models::Model;
use crate::units::utc_now;
use crate::{cpus, fd_limit, procfs};

use super::capacity::{self, Probe};
use super::given::{self, missing_base, Given};
use super::progress::Progress;
use super::results::{
    CapacityRecord, CellResult, Outcome, ProcSample, ServerUsage, ShutdownRecord,
};
use super::scenarios::{Drive, LongRequests, Plan, PlannedCell, Point, CAPACITY_PRECISION};

/// How long a server may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server may take to exit after SIGTERM: servelab's default
/// `--shutdown-timeout` (5 s) and a second of grace.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(6);
/// Descriptors the bench needs besides its connections.
const FD_MARGIN: u64 = 64;
/// A server that failed to start this many times in a row is not tried again.
pub const START_ATTEMPTS: usize = 2;
/// Where servelab's servers listen: a port they choose and print.
const ANY_PORT: &str = "127.0.0.1:0";
/// The request each idle connection completes before it goes idle.
const IDLE_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: servelab-bench\r\n\r\n";

/// A server the bench measures.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Name in tables: the model's name, or the `NAME` of `--server`.
    pub name: String,
    /// How to start it.
    pub kind: ServerKind,
}

/// How a server is started.
#[derive(Clone, Debug)]
pub enum ServerKind {
    /// `servelab serve --model M` (this executable).
    Model(Model),
    /// `sh -c CMD`, `{port}` replaced by a free port.
    External {
        /// The shell command.
        command: String,
    },
    /// `servelab responder` (this executable): the machine's floor.
    Responder,
}

/// Which CPUs the server children and the load run on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pinning {
    /// CPUs of the server (`None`: unpinned).
    pub server: Option<Vec<usize>>,
    /// CPUs of the bench and its load threads (`None`: unpinned).
    pub client: Option<Vec<usize>>,
}

/// A server of the bench as a child process ([`ChildServer`]), with what
/// the bench reads of it.
pub struct ServerProcess {
    /// The process, and where it listens.
    pub child: ChildServer,
    /// The command line, for the report.
    pub command: Vec<String>,
    /// An external server may start processes: they are measured with it.
    tree: bool,
    /// Whether dying of the SIGTERM is a clean stop (no handler for it).
    dies_of_sigterm: bool,
}

impl ServerProcess {
    /// Starts `spec` (a model with the point's `--work`, `--slow-work` and
    /// `--body`) pinned to `server_cpus`, and waits until it prints its
    /// listening line (an external server: accepts a connection). Err is the
    /// reason, for the report.
    pub fn start(
        spec: &ServerSpec,
        point: &Point,
        server_cpus: Option<&[usize]>,
    ) -> Result<ServerProcess, String> {
        let handler = [
            ("--work", point.work),
            ("--slow-work", point.long.map(|long| long.work)),
            ("--body", point.body),
        ];
        let handler = handler.into_iter().filter_map(|(flag, v)| Some([flag, v?]));
        // argv[0] is the program's name in the report; servelab's path is
        // this executable's.
        let (argv, port): (Vec<String>, _) = match &spec.kind {
            ServerKind::External { command } => {
                let free = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
                let port = free
                    .map_err(|e| format!("cannot find a free port: {e}"))?
                    .port();
                let line = command.replace("{port}", &port.to_string());
                (vec!["sh".into(), "-c".into(), line], Some(port))
            }
            ServerKind::Model(m) => {
                let argv = ["servelab", "serve", "--model", m.name(), "--addr", ANY_PORT];
                let argv = argv.into_iter().chain(handler.flatten());
                (argv.map(String::from).collect(), None)
            }
            ServerKind::Responder => {
                let argv = ["servelab", "responder", "--addr", ANY_PORT];
                (argv.map(String::from).to_vec(), None)
            }
        };
        let program = match port {
            Some(_) => PathBuf::from("sh"),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find the servelab executable: {e}"))?,
        };
        let mut command = Command::new(program);
        command.args(&argv[1..]);
        let mask = server_cpus.map(cpus::mask);
        // SAFETY: only async-signal-safe system calls run between fork and
        // exec: affinity and the open-files limit.
        unsafe {
            command.pre_exec(move || {
                if let Some(mask) = &mask {
                    let _ = cpus::pin(mask);
                }
                fd_limit::raise_to(None);
                Ok(())
            });
        }
        let ready = match port {
            Some(port) => Ready::Accepts(SocketAddr::from(([127, 0, 0, 1], port))),
            None => Ready::ListeningLine,
        };
        let child = ChildServer::start(command, &argv.join(" "), ready, READY_TIMEOUT)?;
        Ok(ServerProcess {
            child,
            command: argv,
            tree: port.is_some(),
            dies_of_sigterm: !matches!(spec.kind, ServerKind::Model(_)),
        })
    }

    /// Reads the server's /proc figures (its whole process tree).
    pub fn sample(&self) -> ProcSample {
        let pid = self.child.pid();
        match self.tree {
            true => ProcSample::of(&procfs::tree(pid)),
            false => ProcSample::of(&[pid]),
        }
    }

    /// SIGTERM, then SIGKILL after [`EXIT_TIMEOUT`], and how it went.
    pub fn stop(self) -> ShutdownRecord {
        let external = self.dies_of_sigterm;
        let stopped = self
            .child
            .stop(EXIT_TIMEOUT, |status| stopped_cleanly(status, external));
        ShutdownRecord {
            clean: stopped.note.is_none(),
            exit_code: stopped.status.and_then(|s| s.code()),
            // No status: it was killed.
            signal: stopped.status.map_or(Some(libc::SIGKILL), |s| s.signal()),
            waited_s: stopped.waited.as_secs_f64(),
            note: stopped.note,
        }
    }
}

/// Whether a server that ended after the bench's SIGTERM stopped cleanly:
/// with status 0, or (an `external` one, without a handler) of the signal.
pub fn stopped_cleanly(status: ExitStatus, external: bool) -> bool {
    status.success() || (external && status.signal() == Some(libc::SIGTERM))
}

/// What a cell needs besides its plan.
pub struct CellContext<'a> {
    /// The servers.
    pub servers: &'a [ServerSpec],
    /// CPUs of the server children.
    pub server_cpus: Option<&'a [usize]>,
    /// Load threads per run.
    pub load_threads: usize,
    /// The open-files limit in force.
    pub fd_limit: u64,
    /// Set when the bench is interrupted.
    pub interrupted: &'a AtomicBool,
}

/// A cell's result, and why its server failed to start if it did.
pub type Ran = (CellResult, Option<String>);

/// Runs one planned cell, `given` what the cells before it measured.
pub fn run_cell(cell: &PlannedCell, ctx: &CellContext<'_>, given: &Given) -> Ran {
    let spec = &ctx.servers[cell.server];
    let point = cell.point();
    let started = Instant::now();
    let mut result = CellResult::planned(cell, &spec.name, utc_now());
    let needs = point.drive.connections() as u64 + FD_MARGIN;
    let handler = point.work.is_some() || point.body.is_some() || point.long.is_some();
    let open = matches!(point.drive, Drive::Open { .. } | Drive::Capacity { .. });
    let base = given.base_rps.filter(|rps| open && *rps > 0.0);
    let unrunnable = if needs > ctx.fd_limit {
        let limit = ctx.fd_limit;
        let reason = format!(
            "needs {needs} open files; the limit is {limit} (raise the hard limit: ulimit -Hn)"
        );
        Some(Outcome::Skipped { reason })
    } else if handler && !matches!(spec.kind, ServerKind::Model(_)) {
        let reason = "--work, --slow-work and --body are options of servelab serve; an external server has no such handler".to_string();
        Some(Outcome::Skipped { reason })
    } else if open && base.is_none() {
        let reason = missing_base(cell.scenario.id).to_string();
        Some(Outcome::Failed { reason })
    } else {
        None
    };
    if let Some(outcome) = unrunnable {
        result.outcome = outcome;
        return (result, None);
    }
    let rate = match point.drive {
        Drive::Open { fraction, .. } => base.map(|b| b * fraction),
        _ => None,
    };
    let cpus = match (ctx.server_cpus, point.cpus) {
        (Some(all), Some(k)) => Some(&all[..k.min(all.len())]),
        (all, _) => all,
    };
    let mut server = match ServerProcess::start(spec, point, cpus) {
        Ok(server) => server,
        Err(reason) => {
            let failed = format!("the server {reason}");
            result.outcome = Outcome::Failed { reason: failed };
            return (result, Some(reason));
        }
    };
    result.config.server_command = server.command.clone();
    result.config.rate = rate;
    let empty = server.sample();
    let measured = match (point.drive, base, given.target) {
        (Drive::Idle { connections }, ..) => {
            measure_idle(&server, connections, cell, ctx, &mut result)
        }
        (Drive::Capacity { .. }, Some(ceiling), Some(target)) => {
            measure_capacity(&server, cell, ctx, ceiling, target, &mut result)
        }
        (Drive::Capacity { .. }, ..) => Err("no p99 target was given".to_string()),
        _ => measure_load(&server, cell, ctx, rate, &mut result),
    };
    match measured {
        Ok(((begin, own_begin), (loaded, own_end))) => {
            let responses = result.load.as_ref().map_or(0, |l| l.responses);
            let cpu_s = loaded.cpu_s - begin.cpu_s;
            result.server_usage = Some(ServerUsage::new(empty, cpu_s, loaded, responses));
            result.client_cpu_s = Some(own_end - own_begin);
            if let Some(why) = server.child.exited("during the run") {
                let reason = format!("the server {why}");
                result.outcome = Outcome::Failed { reason };
            } else if ctx.interrupted.load(Ordering::Relaxed) {
                result.outcome = Outcome::Interrupted;
            }
        }
        Err(reason) => result.outcome = Outcome::Failed { reason },
    }
    result.shutdown = Some(server.stop());
    result.elapsed_s = started.elapsed().as_secs_f64();
    (result, None)
}

/// Runs the cells of `plan` in order with `run` until the end or an
/// interrupt; a server that failed to start [`START_ATTEMPTS`] times in a
/// row is not tried again, and its cells are failed with the reason.
pub fn run_plan(
    plan: &Plan,
    servers: &[&str],
    run: &mut dyn FnMut(&PlannedCell, &str, &Given) -> Ran,
    interrupted: &AtomicBool,
    progress: &mut Progress,
) -> Vec<CellResult> {
    let mut cells: Vec<CellResult> = Vec::with_capacity(plan.cells.len());
    // Per server: its failed starts in a row, and why the last one failed.
    let mut start_failures: Vec<(usize, String)> = vec![(0, String::new()); servers.len()];
    for cell in &plan.cells {
        if interrupted.load(Ordering::Relaxed) {
            break;
        }
        let name = servers[cell.server];
        progress.start(cell, name);
        let (failures, last) = &mut start_failures[cell.server];
        let result = if *failures >= START_ATTEMPTS {
            let reason = format!("not started: it failed to start {failures} times ({last})");
            let planned = CellResult::planned(cell, name, utc_now());
            CellResult {
                outcome: Outcome::Failed { reason },
                ..planned
            }
        } else {
            let (result, start_failure) = run(cell, name, &given::given(&cells, cell, name));
            match start_failure {
                Some(reason) => {
                    *failures += 1;
                    if *failures == START_ATTEMPTS {
                        progress.note(&format!("{name} failed to start: {reason}"));
                    }
                    *last = reason;
                }
                None => *failures = 0,
            }
            result
        };
        progress.done(cell.estimate());
        cells.push(result);
    }
    cells
}

/// The server's figures and the bench's own CPU seconds, read together.
type Mark = (ProcSample, f64);

/// What was read at the start and at the end of the recorded window.
type Window = (Mark, Mark);

fn mark(server: &ServerProcess) -> Mark {
    (server.sample(), procfs::own_cpu_seconds())
}

/// The configuration of the load generator for a point.
fn load_config(
    addr: SocketAddr,
    cell: &PlannedCell,
    ctx: &CellContext<'_>,
    rate: Option<f64>,
) -> Result<LoadConfig, String> {
    let mut config =
        LoadConfig::new(&format!("http://{addr}/")).map_err(|e| format!("load: {e}"))?;
    config.threads = ctx.load_threads;
    config.warmup = cell.warmup;
    config.duration = cell.duration;
    config.rate = rate;
    config.connections = cell.point().drive.connections();
    config.mix = cell.point().long.map(LongRequests::mix);
    match cell.point().drive {
        Drive::Closed { pipeline, .. } => config.pipeline = pipeline,
        Drive::Slow {
            connections,
            slow,
            interval,
        } => {
            config.connections = connections;
            config.slowloris = Some(HostileClients {
                clients: slow,
                interval,
            });
        }
        Drive::Noise {
            connections,
            noisy,
            interval,
        } => {
            config.connections = connections;
            config.malformed = Some(HostileClients {
                clients: noisy,
                interval,
            });
        }
        Drive::Churn { .. } => config
            .header("Connection: close")
            .map_err(|e| e.to_string())?,
        Drive::Idle { .. } => unreachable!("idle points open their own connections"),
        Drive::Open { .. } | Drive::Capacity { .. } => {}
    }
    Ok(config)
}

fn measure_load(
    server: &ServerProcess,
    cell: &PlannedCell,
    ctx: &CellContext<'_>,
    rate: Option<f64>,
    result: &mut CellResult,
) -> Result<Window, String> {
    let mut config = load_config(server.child.addr, cell, ctx, rate)?;
    let cancel = Arc::new(AtomicBool::new(false));
    config.cancel = Some(Arc::clone(&cancel));
    // The load starts after its slowloris connections have had their time
    // to connect.
    let setup = match config.slowloris {
        Some(_) => SLOWLORIS_SETUP,
        None => Duration::ZERO,
    };
    let start = Instant::now() + setup;
    let (report, begin, end) = thread::scope(|scope| {
        let load = scope.spawn(|| run_load(&config));
        let begin_at = start + cell.warmup;
        wait_until(begin_at, &load, ctx.interrupted, &cancel);
        let begin = mark(server);
        wait_until(begin_at + cell.duration, &load, ctx.interrupted, &cancel);
        let end = mark(server);
        let report = load
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the load thread panicked").into()));
        (report, begin, end)
    });
    let mut report = report.map_err(|e| format!("the load could not run: {e}"))?;
    // The hostile clients' outcomes have fields of their own in the cell,
    // not in its load summary: results.json holds them once, where it did
    // before the load generator ran them.
    result.slow = report.slowloris.take();
    result.noise = report.malformed.take();
    result.histogram = Some(crate::load::encode_histogram(&report.histogram));
    result.load = Some(LoadSummary::of(&report));
    Ok((begin, end))
}

/// Sleeps until `at`, the load's end, or an interrupt (which cancels the load).
fn wait_until<T>(
    at: Instant,
    load: &thread::ScopedJoinHandle<'_, T>,
    interrupted: &AtomicBool,
    cancel: &AtomicBool,
) {
    loop {
        if interrupted.load(Ordering::Relaxed) {
            cancel.store(true, Ordering::Relaxed);
            return;
        }
        let now = Instant::now();
        if now >= at || load.is_finished() {
            return;
        }
        thread::sleep((at - now).min(Duration::from_millis(10)));
    }
}

/// A `capacity` search on one running server, a warm-up and a window per
/// probe. The load summary kept is the probe at the capacity, without its
/// histograms (the probes are many and short); CPU time covers them all.
fn measure_capacity(
    server: &ServerProcess,
    cell: &PlannedCell,
    ctx: &CellContext<'_>,
    ceiling: f64,
    target: super::given::Target,
    result: &mut CellResult,
) -> Result<Window, String> {
    let plan = capacity::Plan {
        target: target.target,
        ceiling,
        probes: cell.probes.max(1),
        precision: CAPACITY_PRECISION,
    };
    let begin = mark(server);
    let mut summaries: Vec<LoadSummary> = Vec::new();
    let mut error = None;
    let found = capacity::search(plan, |rate| {
        let mut probe = Probe {
            rate,
            p99: None,
            answered: 0.0,
        };
        if error.is_some() || ctx.interrupted.load(Ordering::Relaxed) {
            return probe;
        }
        let report = load_config(server.child.addr, cell, ctx, Some(rate)).and_then(|config| {
            run_load(&config).map_err(|e| format!("the load could not run: {e}"))
        });
        match report {
            Ok(report) => {
                let summary = LoadSummary::of(&report);
                let window = summary.elapsed_s.max(f64::MIN_POSITIVE);
                let answered = summary.responses_2xx_3xx as f64 / (rate * window);
                let p99 = summary.latency_us.map(|l| l.p99 / 1e6);
                probe.p99 = p99.map(Duration::from_secs_f64);
                probe.answered = answered.min(1.0);
                summaries.push(summary);
            }
            Err(e) => error = Some(e),
        }
        probe
    });
    if let Some(e) = error {
        return Err(e);
    }
    let end = mark(server);
    let at = found.capacity;
    let probe_at = summaries
        .into_iter()
        .find(|s| at.is_some_and(|r| s.rate_target == Some(r)));
    result.load = probe_at.map(|s| LoadSummary {
        histogram: None,
        histogram_uncorrected: None,
        histogram_client_lag: None,
        histogram_minus_lag: None,
        per_connection: Vec::new(),
        ..s
    });
    result.config.rate = at;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    result.capacity = Some(CapacityRecord {
        target_us: us(target.target),
        nominal_target_us: us(target.nominal),
        floor_p99_us: target.floor_p99.map(us),
        ceiling,
        found,
    });
    Ok((begin, end))
}

fn measure_idle(
    server: &ServerProcess,
    connections: usize,
    cell: &PlannedCell,
    ctx: &CellContext<'_>,
    result: &mut CellResult,
) -> Result<Window, String> {
    let begin = mark(server);
    let idle = open_idle(
        server.child.addr,
        connections,
        IDLE_REQUEST,
        cell.duration,
        ctx.interrupted,
    )
    .map_err(|e| format!("cannot open the idle connections: {e}"))?;
    let end = mark(server);
    result.idle = Some(idle.outcome.clone());
    drop(idle);
    Ok((begin, end))
}
