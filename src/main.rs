//! The `servelab` command: serve | load | bench. Wiring only; the logic lives in the library.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use servelab::http::{Limits, MAX_HEADERS_CAP};
use servelab::models::{Model, Server, ServerConfig};
use servelab::route::{Routes, Work};
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
    /// Serve GET / -> 200 "OK" (other paths 404, other methods 405) with one model.
    Serve(ServeArgs),
    /// Drive an HTTP server with load and report what happened.
    Load(servelab::load::LoadArgs),
    /// Benchmark every model through the scenarios; write REPORT.md,
    /// results.json and SVG charts.
    Bench(servelab::bench::BenchArgs),
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
    /// What each request costs its handler: none, cpu:DURATION (burn CPU) or
    /// wait:DURATION (block the serving thread, as a database call would); at most 1s.
    #[arg(long, default_value = "none")]
    work: Work,
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
                ..Routes::default()
            },
            ..ServerConfig::new(addr)
        }
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
        "servelab {} listening on http://{}/",
        args.model.name(),
        server.local_addr()
    );
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
        Command::Bench(args) => servelab::bench::run(args),
    }
}
