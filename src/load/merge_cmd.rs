//! `servelab merge`: reads `servelab load --json` results, merges them
//! ([`super::merge::merge`]) and prints the sum as `load` would.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::human;
use super::json::LoadSummary;
use super::merge::merge;

/// Adds up the results of several `servelab load --json` runs (N clients
/// driving one server) into one result.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Counts, connections and errors add; the latency histograms add, and every \
latency figure is read from the sum; rates (requests/sec, transfer/sec, offered and target \
rate) are the sums of each client's rate; each kind of a --mix run merges the same way. \
The hostile clients' counts (--slowloris, --malformed) add over the results that have them; \
the longest slowloris hold is the longest of all, the median hold the median of the results' \
medians when several have them (a note says so). \
Results of different targets, requests (method, path, headers, pipeline), mixes, timeouts or \
schedules (closed loop, or the rate per client) are refused with exit status 2, as is a file \
that is not a load result. A warning says when the \
clients' recorded windows do not overlap. A merged result (--json) can be merged again."
)]
pub struct MergeArgs {
    /// Results written by `servelab load --json` (or `servelab merge --json`);
    /// `-` reads one from standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print the merged result as one JSON object, in the layout of
    /// `servelab load --json`, instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `servelab merge`: the merged report on stdout, warnings on stderr.
/// Exits 2 when an input cannot be read or merged.
pub fn run_merge(args: MergeArgs) -> ExitCode {
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let name = path.display().to_string();
        match read(path) {
            Ok(summary) => inputs.push((name, summary)),
            Err(why) => return refuse(&format!("{name}: {why}")),
        }
    }
    let merged = match merge(&inputs) {
        Ok(merged) => merged,
        Err(why) => return refuse(&why),
    };
    for warning in &merged.warnings {
        eprintln!("servelab merge: warning: {warning}");
    }
    let text = if args.json {
        serde_json::to_string(&merged.summary).expect("a load summary always serializes") + "\n"
    } else {
        human::render_summary(&merged.summary, merged.within_stdev)
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Reads and parses one result.
fn read(path: &PathBuf) -> Result<LoadSummary, String> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| format!("cannot read it: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("not a result of servelab load --json: {e}"))
}

fn refuse(why: &str) -> ExitCode {
    eprintln!("servelab merge: {why}");
    ExitCode::from(2)
}
