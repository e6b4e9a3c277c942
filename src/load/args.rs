//! `servelab load` flags, wrk-familiar, and their translation into a
//! [`LoadConfig`].

use std::path::PathBuf;
use std::time::Duration;

use crate::units::{parse_duration, positive_duration};

use super::config::LoadConfig;
use super::engine::Engine;
use super::error::LoadError;
use super::hostile::{HostileClients, MALFORMED_INTERVAL, SLOWLORIS_INTERVAL};
use super::mix::Mix;

/// Drives an HTTP/1.1 server with load and reports what happened, hiding
/// nothing: errors by kind, requests never answered, starved connections.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Targets must resolve to loopback (127.0.0.0/8 or ::1) unless --allow-remote. \
Without --rate the load is closed loop, like wrk: each connection sends again as soon \
as its responses are in, and latency is measured from the send. With --rate it is open \
loop, like wrk2: latency is measured from each request's intended send time, so a \
stalled server shows up in the percentiles. Requests still in flight at the end are \
reported as unanswered (up to connections x pipeline of them is the normal tail). \
Counts (-c, -n, -R, --idle) take k (x1000) and M (x1,000,000): -c 1k. \
Ctrl-C prints the report of what was measured so far, marked interrupted, and exits 130."
)]
pub struct LoadArgs {
    /// Target URL, http only, e.g. http://127.0.0.1:9002/ or http://[::1]:9002/
    pub url: String,
    /// Connections to keep open.
    #[arg(short = 'c', long, default_value = "100", value_parser = at_least_one)]
    pub connections: u64,
    /// Load threads, each running its own event loop over its share of the
    /// connections; more threads than connections are clamped to the
    /// connection count, with a note.
    #[arg(short = 't', long, default_value_t = 1, value_parser = at_least_one)]
    pub threads: u64,
    /// Recorded duration, e.g. 10s, 500ms, 1m; with -n, the time limit
    /// [default: 10s; with -n: 1m].
    #[arg(short = 'd', long, visible_short_alias = 'z', value_parser = positive_duration)]
    pub duration: Option<Duration>,
    /// Send N requests in all (as oha and hey do) instead of running for a
    /// duration: the run ends once each has its response (or timed out, or
    /// was lost with its connection), or at the time limit (-d).
    #[arg(short = 'n', long, value_name = "N", value_parser = at_least_one)]
    pub requests: Option<u64>,
    /// Extra request header "Name: value" (repeatable); a Host header here
    /// replaces the one taken from the URL.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// Request body, sent with its Content-Length [default: no body].
    #[arg(short = 'b', long, value_name = "TEXT", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body read from FILE, sent with its Content-Length.
    #[arg(short = 'D', long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Time a request may wait for its response before it counts as a
    /// timeout and its connection is replaced.
    #[arg(long, default_value = "2s", value_parser = positive_duration)]
    pub timeout: Duration,
    /// Requests in flight per connection, written together in one write
    /// (at most 1024).
    #[arg(long, default_value_t = 1, value_parser = pipeline_depth)]
    pub pipeline: u64,
    /// Open loop: send this many requests/s in total, spread evenly over the
    /// connections, and measure latency from the intended send times
    /// (coordinated-omission correction; -R as in wrk2) [default: closed loop].
    #[arg(short = 'R', long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Two kinds of request: send SHARE of the requests to PATH instead of
    /// the URL's path (same method, headers, body and host), e.g. /slow:1%;
    /// SHARE a percentage above 0 and below 100, up to 4 decimals. Which
    /// request goes where is an even, deterministic pattern (each thread
    /// sends every n requests' share to within one); the report gives each
    /// path's counts and latency apart [default: one kind, the URL's].
    #[arg(long, value_name = "PATH:SHARE%")]
    pub mix: Option<Mix>,
    /// Also hold N idle keep-alive connections (at most 1M) beside the load (wrk cannot):
    /// each completes one request (the load's, answered within --timeout)
    /// before the load starts, then stays open sending nothing until the
    /// run ends; the report counts them. What many waiting clients cost a
    /// server, and whether it still serves the busy ones: e.g. --idle 10k.
    #[arg(long, value_name = "N", default_value = "0", value_parser = parse_count)]
    pub idle: u64,
    /// N slowloris connections (at most 1M) beside the load, opened before
    /// it starts: each sends one byte of a request head that never ends
    /// every --slowloris-interval, until the run ends; the report says how
    /// many the server closed (408 past its header deadline) and how long it
    /// held them [default: none].
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub slowloris: Option<u64>,
    /// Time between two bytes of one slowloris connection [default: 500ms].
    #[arg(long, value_name = "INTERVAL", requires = "slowloris", value_parser = positive_duration)]
    pub slowloris_interval: Option<Duration>,
    /// N clients (at most 1024, each a thread) beside the load, each sending
    /// a malformed request on a new connection every --malformed-interval
    /// until the run ends (a bad request line, Content-Length with
    /// Transfer-Encoding, a 16 KiB header, in turn); the report says, per
    /// kind, how many got a 4xx and a closed connection, as they should
    /// [default: none].
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub malformed: Option<u64>,
    /// Time between two malformed requests of one client [default: 10ms].
    #[arg(long, value_name = "INTERVAL", requires = "malformed", value_parser = positive_duration)]
    pub malformed_interval: Option<Duration>,
    /// Load applied before the recorded duration, not recorded; the unit is
    /// required (2s, 500ms: a time, not a count of runs).
    #[arg(long, default_value = "0s", value_parser = warmup_duration)]
    pub warmup: Duration,
    /// Accepted for wrk's command lines and ignored: the latency
    /// distribution is always reported.
    #[arg(long)]
    pub latency: bool,
    /// wrk's Lua script: refused (exit 2). Use --pipeline N for pipelined
    /// requests, -m/--method for the method, -H for headers and -b/--body or
    /// -D for a body.
    #[arg(short = 's', long, value_name = "SCRIPT")]
    pub script: Option<String>,
    /// I/O engine: uring (one io_uring per thread, batched sends, multishot
    /// recv into a buffer ring) or epoll [default: uring where the kernel
    /// allows it, else epoll; stderr says which ran and why].
    #[arg(long, value_enum, env = "SERVELAB_LOAD_ENGINE")]
    pub engine: Option<Engine>,
    /// Print the full result as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Allow a target that resolves outside loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

/// The time limit of a `-n` run when `-d` does not give one.
pub const REQUESTS_TIME_LIMIT: Duration = Duration::from_secs(60);
/// The recorded duration when neither `-d` nor `-n` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

impl LoadArgs {
    /// The configuration these flags describe.
    pub fn config(&self) -> Result<LoadConfig, LoadError> {
        if let Some(script) = &self.script {
            return Err(LoadError::InvalidConfig(format!(
                "-s {script:?}: wrk's Lua scripts are not supported; their usual jobs are flags \
                 here: --pipeline N (requests written together), -m/--method METHOD, \
                 -H \"Name: value\", -b/--body TEXT or -D FILE (a body with its Content-Length)"
            )));
        }
        let mut config = LoadConfig::new(&self.url)?;
        config.connections = usize::try_from(self.connections).unwrap_or(usize::MAX);
        config.threads = usize::try_from(self.threads).unwrap_or(usize::MAX);
        config.requests = self.requests;
        config.duration = match (self.duration, self.requests) {
            (Some(d), _) => d,
            (None, Some(_)) => REQUESTS_TIME_LIMIT,
            (None, None) => DEFAULT_DURATION,
        };
        config.warmup = self.warmup;
        config.timeout = self.timeout;
        config.pipeline = self.pipeline as usize;
        config.rate = self.rate;
        config.mix = self.mix.clone();
        config.idle = usize::try_from(self.idle).unwrap_or(usize::MAX);
        let hostile = |clients: Option<u64>, interval: Option<Duration>, default| {
            clients.map(|n| HostileClients {
                clients: usize::try_from(n).unwrap_or(usize::MAX),
                interval: interval.unwrap_or(default),
            })
        };
        config.slowloris = hostile(self.slowloris, self.slowloris_interval, SLOWLORIS_INTERVAL);
        config.malformed = hostile(self.malformed, self.malformed_interval, MALFORMED_INTERVAL);
        config.method = self.method.clone();
        config.allow_remote = self.allow_remote;
        config.engine = self.engine;
        for header in &self.headers {
            config.header(header)?;
        }
        if let Some(text) = &self.body {
            config.body = Some(text.as_bytes().to_vec());
        }
        if let Some(path) = &self.body_file {
            let bytes = std::fs::read(path).map_err(|e| {
                LoadError::InvalidConfig(format!("-D {}: cannot read it: {e}", path.display()))
            })?;
            config.body = Some(bytes);
        }
        config.validate()?;
        Ok(config)
    }
}

/// A count: digits, optionally with `k` (x1000) or `M` (x1,000,000) as
/// wrk takes them (`-c 1k`); a fraction only where the result is whole
/// (`1.5k`).
pub fn parse_count(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a count: expected e.g. 100, 10k or 1M");
    let text = text.trim();
    let (number, scale) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1_000.0),
        Some((i, 'm' | 'M')) => (&text[..i], 1_000_000.0),
        _ => return text.parse::<u64>().map_err(|_| bad()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let value = number.parse::<f64>().map_err(|_| bad())? * scale;
    if value.fract() != 0.0 || value >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(value as u64)
}

fn at_least_one(text: &str) -> Result<u64, String> {
    match parse_count(text)? {
        0 => Err("must be at least 1".to_string()),
        n => Ok(n),
    }
}

fn pipeline_depth(text: &str) -> Result<u64, String> {
    match at_least_one(text)? {
        n if n > 1024 => Err("must be at most 1024".to_string()),
        n => Ok(n),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.char_indices().last() {
        Some((i, 'k' | 'K')) => (&trimmed[..i], 1e3),
        Some((i, 'm' | 'M')) => (&trimmed[..i], 1e6),
        _ => (trimmed, 1.0),
    };
    let rate = number.parse::<f64>().map_err(|_| {
        format!("invalid rate {text:?}: expected requests per second, e.g. 2000 or 10k")
    })? * scale;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!(
            "invalid rate {text:?}: must be more than 0 requests per second"
        ));
    }
    Ok(rate)
}

/// `--warmup`: a duration with its unit. A bare number is refused (but 0):
/// hyperfine's `--warmup 3` means three runs, and a load generator that read
/// it as three seconds would do something else than asked without a word.
fn warmup_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        if trimmed.bytes().all(|b| b == b'0' || b == b'.') {
            return Ok(Duration::ZERO);
        }
        return Err(format!(
            "{text:?} has no unit: --warmup is a time, e.g. {trimmed}s or 500ms (not a count \
             of runs, as in hyperfine)"
        ));
    }
    parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_k_and_m() {
        assert_eq!(parse_count("100"), Ok(100));
        assert_eq!(parse_count("1k"), Ok(1000));
        assert_eq!(parse_count("10K"), Ok(10_000));
        assert_eq!(parse_count("1.5k"), Ok(1500));
        assert_eq!(parse_count("2M"), Ok(2_000_000));
        for bad in ["", "k", "1.5", "1.0005k", "-1k", "1x", "1 k", "1e3"] {
            assert!(parse_count(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rate("10k"), Ok(10_000.0));
        assert_eq!(parse_rate("2.5k"), Ok(2500.0));
        assert!(parse_rate("k").is_err());
    }

    #[test]
    fn warmup_needs_a_unit() {
        assert_eq!(warmup_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(warmup_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(warmup_duration("0"), Ok(Duration::ZERO));
        let e = warmup_duration("3").unwrap_err();
        assert!(e.contains("no unit") && e.contains("3s"), "{e}");
        assert!(warmup_duration("1.5").is_err());
    }
}
