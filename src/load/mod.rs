//! `servelab load`: a load generator as cheap as wrk that hides nothing.
//!
//! Each load thread runs its own event loop over its share of the
//! connections, on one of two I/O engines ([`Engine`]): io_uring (one ring
//! per thread, batched sends, multishot recv into a provided buffer ring;
//! the default where the kernel allows it) or an edge-triggered epoll loop
//! ([`mio`]). The connection slots' logic (framing, accounting, schedule)
//! is the same on both. Requests are encoded once; responses are framed (status
//! line, `Content-Length`, chunked, or end of stream) without buffering
//! bodies; latencies go into a preallocated HdrHistogram per thread, merged at
//! the end. Nothing is allocated per request.
//!
//! Beside the load, hostile clients may run ([`LoadConfig::slowloris`],
//! [`LoadConfig::malformed`]): slowloris connections and malformed
//! requests, to show what the server does under slow clients and hostile
//! input, and what that costs the load.
//!
//! The library entry point is [`run_load`]; the CLI is [`run`].

mod args;
mod codec;
mod config;
mod conn;
mod driver;
mod engine;
mod epoll_io;
mod error;
mod hostile;
mod human;
mod idle;
mod json;
mod merge;
mod merge_cmd;
mod mix;
mod plan;
mod report;
mod request;
mod response;
mod runner;
mod schedule;
mod stats;
mod target;
mod uring_io;
mod worker;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use crate::signal::Interrupts;

pub use args::LoadArgs;
pub use codec::{decode_histogram, encode_histogram};
pub use config::LoadConfig;
pub use engine::Engine;
pub use error::LoadError;
pub use hostile::{
    HostileClients, Malformed, MalformedCount, Noise, NoiseOutcome, SlowOutcome, Slowloris,
    MALFORMED, MALFORMED_INTERVAL, SLOWLORIS_INTERVAL, SLOWLORIS_SETUP,
};
pub use idle::{open_idle, IdleConnections, IdleOutcome};
pub use json::{Errors, FairnessJson, KindJson, LatencyUs, LoadSummary, LAG_WARN_SHARE, SCHEMA};
pub use merge::{merge, Merged};
pub use merge_cmd::{run_merge, MergeArgs};
pub use mix::Mix;
pub use report::{Fairness, KindReport, LatencySummary, LoadReport};
pub use response::{Completed, FramingError, ResponseParser, Step};
pub use runner::run_load;
pub use stats::{new_histogram, Counters, KindStats, LagHistograms};
pub use target::Target;

/// Runs `servelab load`: the report on stdout (text, or JSON with `--json`),
/// notes and errors on stderr. Exits 2 on bad input, 1 when the run could
/// not start for another reason. The first SIGINT (Ctrl-C) or SIGTERM ends
/// the run early: the report of what was measured until then is printed,
/// marked interrupted, and the exit status is 130 (143 for SIGTERM), as wrk
/// and oha do; a second one ends the process at once.
pub fn run(args: LoadArgs) -> ExitCode {
    let mut config = match args.config() {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    let interrupts = match Interrupts::catch() {
        Ok(interrupts) => interrupts,
        Err(e) => return fail(&LoadError::Io(e)),
    };
    config.cancel = Some(Arc::clone(interrupts.flag()));
    let report = match run_load(&config) {
        Ok(report) => report,
        Err(e) => return fail(&e),
    };
    eprintln!(
        "servelab load: engine: {} ({})",
        report.engine, report.engine_reason
    );
    for note in &report.notes {
        eprintln!("servelab load: note: {note}");
    }
    let text = if args.json {
        // The text report prints it among the figures; JSON, on stderr.
        if let Some(warning) = human::client_lag_warning(&json::LoadSummary::of(&report)) {
            eprintln!("servelab load: warning: {warning}");
        }
        json::render(&report) + "\n"
    } else {
        human::render(&report)
    };
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    match (interrupts.received(), written) {
        (Some(signal), _) => ExitCode::from(signal.exit_status()),
        (None, Ok(())) => ExitCode::SUCCESS,
        (None, Err(_)) => ExitCode::FAILURE,
    }
}

/// Renders a report as the JSON object `--json` prints.
pub fn report_json(report: &LoadReport) -> String {
    json::render(report)
}

/// Renders a report as the text `servelab load` prints.
pub fn report_text(report: &LoadReport) -> String {
    human::render(report)
}

/// Exit status 2 for bad input ([`LoadError::is_usage`]), 1 otherwise.
fn fail(e: &LoadError) -> ExitCode {
    eprintln!("servelab load: {e}");
    if e.is_usage() {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}
