//! `servelab load` flags, wrk-familiar, and their translation into a
//! [`LoadConfig`].

use std::time::Duration;

use crate::units::{parse_duration, positive_duration};

use super::config::LoadConfig;
use super::error::LoadError;

/// Drives an HTTP/1.1 server with load and reports what happened, hiding
/// nothing: errors by kind, requests never answered, starved connections.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Targets must resolve to loopback (127.0.0.0/8 or ::1) unless --allow-remote. \
Without --rate the load is closed loop, like wrk: each connection sends again as soon \
as its responses are in, and latency is measured from the send. With --rate it is open \
loop, like wrk2: latency is measured from each request's intended send time, so a \
stalled server shows up in the percentiles. Requests still in flight at the end are \
reported as unanswered (up to connections x pipeline of them is the normal tail)."
)]
pub struct LoadArgs {
    /// Target URL, http only, e.g. http://127.0.0.1:9002/
    pub url: String,
    /// Connections to keep open.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = at_least_one)]
    pub connections: u64,
    /// Load threads, each running its own event loop over its share of the
    /// connections; more threads than connections are clamped to the
    /// connection count, with a note.
    #[arg(short = 't', long, default_value_t = 1, value_parser = at_least_one)]
    pub threads: u64,
    /// Recorded duration, e.g. 10s, 500ms, 1m.
    #[arg(short = 'd', long, default_value = "10s", value_parser = positive_duration)]
    pub duration: Duration,
    /// Extra request header "Name: value" (repeatable); a Host header here
    /// replaces the one taken from the URL.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Request method (no body is sent).
    #[arg(long, default_value = "GET")]
    pub method: String,
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
    /// (coordinated-omission correction) [default: closed loop].
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Load applied before the recorded duration, not recorded.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Print the full result as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Allow a target that resolves outside loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

impl LoadArgs {
    /// The configuration these flags describe.
    pub fn config(&self) -> Result<LoadConfig, LoadError> {
        let mut config = LoadConfig::new(&self.url)?;
        config.connections = usize::try_from(self.connections).unwrap_or(usize::MAX);
        config.threads = usize::try_from(self.threads).unwrap_or(usize::MAX);
        config.duration = self.duration;
        config.warmup = self.warmup;
        config.timeout = self.timeout;
        config.pipeline = self.pipeline as usize;
        config.rate = self.rate;
        config.method = self.method.clone();
        config.allow_remote = self.allow_remote;
        for header in &self.headers {
            config.header(header)?;
        }
        config.validate()?;
        Ok(config)
    }
}

fn at_least_one(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

fn pipeline_depth(text: &str) -> Result<u64, String> {
    match at_least_one(text)? {
        n if n > 1024 => Err("must be at most 1024".to_string()),
        n => Ok(n),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid rate {text:?}: expected requests per second, e.g. 2000"))?;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!(
            "invalid rate {text:?}: must be more than 0 requests per second"
        ));
    }
    Ok(rate)
}
