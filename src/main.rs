//! The `servelab` command: serve | load | merge | bench. Wiring only; the logic lives in the library.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use servelab::child::listening_line;
use servelab::http::{Limits, MAX_HEADERS_CAP};
use servelab::models::{Model, Server, ServerConfig};
use servelab::route::{leak_body, Routes, Work, MAX_BODY, SEED_BODY, SLOW_PATH};
use servelab::signal::TerminationSignals;
use servelab::units::{parse_duration, parse_size};

/// One HTTP/1.1 core served by several concurrency models, and a load generator.
#[derive(Parser)]
#[command(name = "servelab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve GET / -> 200 "OK" or --body bytes (other paths 404, other methods
    /// 405; /slow as / with --slow-work) with one model.
    Serve(ServeArgs),
    /// Drive an HTTP server with load and report what happened.
    Load(servelab::load::LoadArgs),
    /// Merge the results of several `servelab load --json` runs into one.
    Merge(servelab::load::MergeArgs),
    /// Benchmark every model through the scenarios; write REPORT.md,
    /// results.json and SVG charts.
    Bench(servelab::bench::BenchArgs),
    /// The machine's floor: answer every request head with fixed bytes, no
    /// parsing (what any server's latency is measured above).
    Responder(ResponderArgs),
}

#[derive(clap::Args)]
struct ResponderArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9200")]
    addr: SocketAddr,
}

fn responder(args: ResponderArgs) -> ExitCode {
    let listener = match std::net::TcpListener::bind(args.addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("servelab responder: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    // The port chosen when --addr asks for port 0 (as the bench does).
    let addr = listener.local_addr().unwrap_or(args.addr);
    println!("{}", listening_line("responder", addr));
    match servelab::responder::run(listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("servelab responder: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Concurrency model.
    #[arg(long, value_enum, default_value = "sequential")]
    model: Model,
    /// Listen address [default: 127.0.0.1 and the model's port: 9001 sequential,
    /// 9002 threaded, 9003 pool, 9004 event, 9005 uring, 9006 tokio].
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Longest request line (bytes) before 414.
    #[arg(long, default_value = "8192", value_parser = parse_size)]
    max_request_line: u64,
    /// Largest header section (bytes) before 431.
    #[arg(long, default_value = "8192", value_parser = parse_size)]
    max_header_bytes: u64,
    /// Most header fields before 431 (at most 256).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=MAX_HEADERS_CAP as u64))]
    max_headers: u64,
    /// Largest request body (bytes) before 413.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    max_body: u64,
    /// Time a begun request head may take to arrive before 408.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: Duration,
    /// Time a keep-alive connection may sit idle (or a body read or response
    /// write may stall) before it is closed.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Listen backlog.
    #[arg(long, default_value_t = 1024)]
    backlog: i32,
    /// threaded, event, uring, tokio: open connections past which new ones get 503.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// threaded: stack size of each connection thread.
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    thread_stack: u64,
    /// pool: acceptor threads, each with its own SO_REUSEPORT socket; 0 = one per CPU
    /// this process may run on.
    #[arg(long, env = "WORKERS", default_value_t = 0)]
    acceptors: usize,
    /// pool: worker threads serving connections.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pool_size: u64,
    /// pool: accepted connections waiting for a worker, past which new ones get 503.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    queue: u64,
    /// event, uring: reactor threads, each with its own SO_REUSEPORT socket and
    /// epoll loop or io_uring; tokio: the runtime's worker threads; 0 = one
    /// per CPU this process may run on.
    #[arg(long, default_value_t = 0)]
    reactors: usize,
    /// How long SIGINT/SIGTERM waits for in-flight work before exiting anyway.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    shutdown_timeout: Duration,
    /// After SIGINT/SIGTERM, how long a connection with nothing in progress
    /// stays open for a request already on its way (answered with
    /// `Connection: close`); at most --shutdown-timeout.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// What each request costs its handler: none, cpu:TIME (burn CPU),
    /// wait:TIME (block the serving thread, as a synchronous database call
    /// would) or await:TIME (wait without holding the thread, as an
    /// asynchronous call would; v1-v3 cannot, and block). TIME is a duration
    /// (50us), exp(MEAN) (exponentially distributed: 'cpu:exp(50us)') or
    /// USUAL|RARE@SHARE% (bimodal: 'cpu:10us|1ms@1%' takes 1ms for 1% of
    /// requests, 10us for the rest); quote the last two from the shell. Each
    /// duration at most 1s, and every draw is cut to 1s; draws are seeded,
    /// so runs compare.
    #[arg(long, default_value = "none")]
    work: Work,
    /// Adds a second resource, /slow: GET or HEAD /slow is answered as / is
    /// (other methods 405), after this work instead of --work; same syntax
    /// as --work (e.g. cpu:1ms, 'wait:exp(1ms)', await:1ms). With
    /// `servelab load --mix /slow:1%`, the short requests' latency shows how
    /// long ones delay them [default: no /slow, a 404 as every other path].
    #[arg(long, value_name = "WORK")]
    slow_work: Option<Work>,
    /// Size of GET /'s body: e.g. 16k, 1m, at most 16m, of printable ASCII
    /// in 64-byte lines [default: the seed's "OK", 2 bytes].
    #[arg(long, value_parser = body_size)]
    body: Option<usize>,
}

impl ServeArgs {
    fn config(&self) -> ServerConfig {
        let addr = self
            .addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], self.model.default_port())));
        ServerConfig {
            limits: Limits {
                max_request_line: self.max_request_line as usize,
                max_header_bytes: self.max_header_bytes as usize,
                max_headers: self.max_headers as usize,
                max_body: self.max_body,
                header_read_timeout: self.header_read_timeout,
                idle_timeout: self.idle_timeout,
            },
            backlog: self.backlog,
            max_connections: self.max_connections,
            thread_stack: self.thread_stack as usize,
            acceptors: self.acceptors,
            pool_size: self.pool_size as usize,
            queue: self.queue as usize,
            reactors: self.reactors,
            shutdown_timeout: self.shutdown_timeout,
            shutdown_grace: self.shutdown_grace,
            routes: Routes {
                work: self.work,
                slow_work: self.slow_work,
                // Built once per start: leaked, as it is served until exit.
                body: self.body.map_or(SEED_BODY, leak_body),
                ..Routes::default()
            },
            ..ServerConfig::new(addr)
        }
    }
}

/// A `--body` size: at most [`MAX_BODY`].
fn body_size(text: &str) -> Result<usize, String> {
    let size = parse_size(text)?;
    match usize::try_from(size) {
        Ok(size) if size <= MAX_BODY => Ok(size),
        _ => Err(format!("at most {} MiB", MAX_BODY >> 20)),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let signals = match TerminationSignals::block() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("servelab serve: cannot block signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(why) = args.model.availability() {
        eprintln!(
            "servelab serve: --model {} cannot run here: {why}",
            args.model.name()
        );
        return ExitCode::FAILURE;
    }
    for (flag, work) in [("--work", Some(args.work)), ("--slow-work", args.slow_work)] {
        if let (Some(Work::Await(time)), false) = (work, args.model.parks_without_a_thread()) {
            eprintln!(
                "servelab serve: --model {} has no way to wait without its thread: \
                 {flag} await:{time} blocks the thread, as wait:{time} would",
                args.model.name()
            );
        }
    }
    let config = args.config();
    let server = match Server::start(args.model, config.clone()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!(
                "servelab serve: cannot start {} on {}: {e}",
                args.model.name(),
                config.addr
            );
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "{}",
        listening_line(args.model.name(), server.local_addr())
    );
    if let Some(slow) = args.slow_work {
        // After the listening line, which scripts and tests read first.
        let _ = writeln!(
            stdout,
            "servelab: GET|HEAD {SLOW_PATH} answers as / does, after --slow-work {slow} \
             (every other request: --work {})",
            args.work
        );
    }
    let _ = stdout.flush();
    let signal = signals.wait();
    eprintln!(
        "servelab: {}, shutting down (again to exit at once)",
        signal.name()
    );
    // A second signal ends the process without waiting for the shutdown.
    std::thread::spawn(move || {
        let again = signals.wait();
        eprintln!("servelab: {}, exiting now", again.name());
        std::process::exit(again.exit_status().into());
    });
    if !server.shutdown() {
        eprintln!(
            "servelab: some connections were still busy after {:?}; exiting anyway",
            config.shutdown_timeout
        );
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Load(args) => servelab::load::run(args),
        Command::Merge(args) => servelab::load::run_merge(args),
        Command::Bench(args) => servelab::bench::run(args),
        Command::Responder(args) => responder(args),
    }
}
