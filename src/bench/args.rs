//! `servelab bench` flags and their checks. Everything a user can get wrong
//! is refused here, with the valid choices named and exit code 2, before
//! any server starts.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValuesParser;

use crate::cpus;
use crate::models::Model;
use crate::units::{parse_duration, positive_duration};

use super::scenarios::ScenarioId;
use super::targets;

/// Benchmarks every concurrency model (and any `--server`) through the
/// scenarios and writes REPORT.md, results.json and SVG charts.
#[derive(Debug, clap::Args)]
#[command(
    // A flag given twice takes its last value, so that a script's defaults
    // can be overridden by flags passed after them.
    args_override_self = true,
    // `servelab bench compare OLD NEW` takes none of the bench's flags.
    args_conflicts_with_subcommands = true,
    after_help = "Default: every model of serve --model and every scenario, in at most \
5 minutes on a 2-core machine; --quick in at most 60 s. The planned time is printed before \
anything runs. Servers run pinned to half the CPUs and the load to the other half (unpinned on \
one CPU). Ctrl-C stops the servers and writes what was measured, marked incomplete."
)]
pub struct BenchArgs {
    /// `compare`; none: run the bench.
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Short windows and one run: every scenario in at most 60 s.
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,
    /// The seed's 10 s windows (seed and slow; 5 s for the others) and 3-5
    /// runs, for a publishable report.
    #[arg(long)]
    pub full: bool,
    /// Models to bench, comma-separated [default: all of them].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub models: Vec<Model>,
    /// Scenarios to run, comma-separated [default: all of them].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub scenarios: Vec<ScenarioId>,
    /// Directory for REPORT.md, results.json, results.csv and the charts.
    #[arg(long, default_value = "bench-report", value_name = "DIR")]
    pub out: PathBuf,
    /// Runs of every point, overriding the profile's [default: quick 1,
    /// default 1-3 per scenario, full 3-5].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: Option<u32>,
    /// Recorded window of every point, overriding the profile (idle: the
    /// longest wait for the answers).
    #[arg(long, value_parser = positive_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Warm-up before every window, overriding the profile.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub warmup: Option<Duration>,
    /// Another server as an extra row in every scenario: NAME=CMD, where CMD
    /// is a shell command with {port} in it (repeatable).
    #[arg(long = "server", value_parser = parse_server, value_name = "NAME=CMD")]
    pub servers: Vec<(String, String)>,
    /// CPUs of the servers, e.g. 0 or 0-1,4 [default: the first half].
    #[arg(long, value_parser = parse_cpu_list, value_name = "LIST")]
    pub server_cpus: Option<CpuList>,
    /// CPUs of the load generator [default: the other half].
    #[arg(long, value_parser = parse_cpu_list, value_name = "LIST")]
    pub client_cpus: Option<CpuList>,
    /// Add to every table with server CPU per request a column with each
    /// run's figure over this server's in the same run (a model or a
    /// --server name of this run).
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// Check a named set of targets against the results and print them as
    /// a table (floor-vs-reactors: v4, v5 and v6 against scripts/floor.c;
    /// seed-claims: the seed's ratio claims about v1-v3).
    #[arg(long, value_name = "SET",
          value_parser = PossibleValuesParser::new(targets::SETS.iter().map(|s| s.name)))]
    pub check: Option<String>,
    /// Print the plan (cells and planned time) and exit without running it.
    #[arg(long)]
    pub dry_run: bool,
    /// Run nothing: re-render REPORT.md, the charts, results.json (and the
    /// README block) from a saved results.json (--baseline and --check, when
    /// given, replace its own).
    #[arg(long, value_name = "RESULTS_JSON", conflicts_with_all = [
        "quick", "full", "models", "scenarios", "runs", "duration", "warmup",
        "servers", "server_cpus", "client_cpus", "dry_run"])]
    pub from: Option<PathBuf>,
    /// After the run, rewrite the marked block of this README (default
    /// README.md) with the summary table and a chart under docs/bench/.
    #[arg(long, value_name = "README", num_args = 0..=1, default_missing_value = "README.md")]
    pub update_readme: Option<PathBuf>,
    /// With --update-readme: rewrite the block marked bench:begin:NAME /
    /// bench:end:NAME instead of the main one (its chart goes to
    /// docs/bench/NAME-throughput.svg).
    #[arg(long, value_name = "NAME", requires = "update_readme",
          value_parser = parse_block_name)]
    pub readme_block: Option<String>,
    /// Also write REPORT.md to FILE (besides --out).
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,
    /// Also write results.json to FILE (besides --out).
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,
    /// Also write results.csv to FILE (besides --out): one row per scenario,
    /// point and server with the headline figures' median, min and max.
    #[arg(long, value_name = "FILE")]
    pub export_csv: Option<PathBuf>,
}

/// Subcommands of `servelab bench`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Compare two saved results.json: what differs between the runs, and
    /// the ratio NEW/OLD of the headline figures (req/s, conn/s, p99,
    /// server CPU/req, RSS/conn) of every point and server both have.
    Compare(CompareArgs),
}

/// `servelab bench compare` flags.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The earlier run's results.json (the denominator).
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The later run's results.json (the numerator).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Print the comparison as JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl BenchArgs {
    /// The `--export-*` flags given: the report's file and where it goes.
    pub fn exports(&self) -> super::export::Exports {
        use super::export::{csv, json, markdown};
        [
            (markdown::FILE, &self.export_markdown),
            (json::FILE, &self.export_json),
            (csv::FILE, &self.export_csv),
        ]
        .into_iter()
        .filter_map(|(file, path)| Some((file, path.clone()?)))
        .collect()
    }
}

/// Whether `text` is a name: letters, digits and the characters of `also`.
fn is_name(text: &str, also: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || also.contains(c);
    !text.is_empty() && text.chars().all(ok)
}

fn parse_block_name(text: &str) -> Result<String, String> {
    let why = || format!("{text:?}: a block name is letters, digits, '-' or '_'");
    is_name(text, "-_")
        .then(|| text.to_string())
        .ok_or_else(why)
}

/// Parses `NAME=CMD`: a name of letters, digits, `-`, `_` or `.` that is not
/// a model's, and a command with `{port}` in it.
pub fn parse_server(text: &str) -> Result<(String, String), String> {
    let usage =
        "expected NAME=CMD, e.g. nginx='nginx -c /tmp/nginx.conf -g \"daemon off;\" # {port}'";
    let (name, command) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: {usage}"))?;
    let name = name.trim();
    if !is_name(name, "-_.") {
        return Err(format!(
            "{name:?}: a server name is letters, digits, '-', '_' or '.' ({usage})"
        ));
    }
    if Model::ALL.iter().any(|m| m.name() == name) {
        return Err(format!(
            "{name:?} is a model's name; call the external server something else"
        ));
    }
    if !command.contains("{port}") {
        return Err(format!(
            "the command of {name:?} has no {{port}}: the bench chooses the port and puts it there"
        ));
    }
    Ok((name.to_string(), command.trim().to_string()))
}

/// A list of CPUs, as `--server-cpus` and `--client-cpus` take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

fn parse_cpu_list(text: &str) -> Result<CpuList, String> {
    cpus::parse(text).map(CpuList)
}
