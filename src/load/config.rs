//! What a load run does: the library-facing configuration.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::engine::Engine;
use super::error::LoadError;
use super::hostile::HostileClients;
use super::mix::Mix;
use super::request::{check_method, encode, parse_header};
use super::target::Target;

/// The largest request body sent.
pub const MAX_BODY: usize = 16 << 20;
/// The most bytes of pipelined requests prepared for one write.
pub const MAX_WRITE: usize = 64 << 20;
/// The most slowloris connections (`--slowloris`): each holds a descriptor
/// and a few dozen bytes of state.
pub const MAX_SLOWLORIS: usize = 1_000_000;
/// The most connections (`-c`) and idle connections (`--idle`): each holds
/// a descriptor and its slot's state, allocated before the run; past this
/// the allocation, not the server, would be what fails.
pub const MAX_CONNECTIONS: usize = 1_000_000;
/// The most malformed-request clients (`--malformed`): each is a thread.
pub const MAX_MALFORMED: usize = 1024;

/// Everything [`super::run_load`] needs. Build one with [`LoadConfig::new`]
/// and change the public fields; [`LoadConfig::validate`] runs before a load.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The URL to load.
    pub target: Target,
    /// Request method (default `GET`).
    pub method: String,
    /// Request body, sent with its `Content-Length` (default none).
    pub body: Option<Vec<u8>>,
    /// Extra request headers, `(name, value)`; a `Host` here replaces the URL's.
    pub headers: Vec<(String, String)>,
    /// Connections kept open (default 100).
    pub connections: usize,
    /// Load threads, each with its own event loop (default 1). More threads
    /// than connections are clamped to the connection count.
    pub threads: usize,
    /// The recorded part of the run (default 10 s); with `requests`, its
    /// time limit.
    pub duration: Duration,
    /// Send this many requests in the recorded window, then end the run once
    /// each has its answer (a response, a timeout, or lost with its
    /// connection); `None` runs for `duration`.
    pub requests: Option<u64>,
    /// Load applied before recording starts (default 0).
    pub warmup: Duration,
    /// How long a request may wait for its response (default 2 s).
    pub timeout: Duration,
    /// Requests in flight per connection, written together (default 1).
    pub pipeline: usize,
    /// Open loop at this many requests/s over all connections; `None` is
    /// closed loop (each connection sends as soon as its responses arrive).
    pub rate: Option<f64>,
    /// A second kind of request: a share of the requests go to its path
    /// instead of the target's (same method, headers, body and host), and
    /// each kind's latency is reported apart (default none: one kind).
    pub mix: Option<Mix>,
    /// Idle keep-alive connections held beside the load: each completes one
    /// request before the load starts, then sends nothing until the end.
    pub idle: usize,
    /// Slowloris connections beside the load (default none): opened before
    /// it, each sending one byte of a request head that never ends every
    /// `interval`, closed when the load ends.
    pub slowloris: Option<HostileClients>,
    /// Malformed-request clients beside the load (default none): each sends
    /// a malformed request on a new connection every `interval`, the kinds
    /// of [`super::MALFORMED`] in turn, until the load ends.
    pub malformed: Option<HostileClients>,
    /// The I/O engine; `None` (the default) is io_uring where this kernel
    /// allows it, else epoll ([`Engine::choose`]).
    pub engine: Option<Engine>,
    /// Allow a target outside loopback.
    pub allow_remote: bool,
    /// Ends the run early when set (checked at least every 10 ms): what was
    /// recorded until then is reported, over the time it ran, and the report
    /// says it was interrupted.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl LoadConfig {
    /// The defaults (those of `servelab load`) aimed at `url`.
    pub fn new(url: &str) -> Result<LoadConfig, LoadError> {
        Ok(LoadConfig {
            target: Target::parse(url)?,
            method: "GET".to_string(),
            body: None,
            headers: Vec::new(),
            connections: 100,
            threads: 1,
            duration: Duration::from_secs(10),
            requests: None,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(2),
            pipeline: 1,
            rate: None,
            mix: None,
            idle: 0,
            slowloris: None,
            malformed: None,
            engine: None,
            allow_remote: false,
            cancel: None,
        })
    }

    /// Adds a `Name: value` header, checked.
    pub fn header(&mut self, text: &str) -> Result<(), LoadError> {
        self.headers.push(parse_header(text)?);
        Ok(())
    }

    /// Checks every setting; the error names the flag to fix.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |why: &str| Err(LoadError::InvalidConfig(why.to_string()));
        if self.connections == 0 {
            return bad("connections (-c) must be at least 1");
        }
        for (flag, n) in [
            ("connections (-c)", self.connections),
            ("--idle", self.idle),
        ] {
            if n > MAX_CONNECTIONS {
                return bad(&format!("{flag} {n}: at most {MAX_CONNECTIONS}"));
            }
        }
        if self.threads == 0 {
            return bad("threads (-t) must be at least 1");
        }
        if self.pipeline == 0 {
            return bad("--pipeline must be at least 1");
        }
        if self.duration.is_zero() {
            return bad("duration (-d) must be longer than 0");
        }
        if self.timeout.is_zero() {
            return bad("--timeout must be longer than 0");
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return bad("--rate must be a positive number of requests per second");
            }
        }
        if self.requests == Some(0) {
            return bad("requests (-n) must be at least 1");
        }
        check_method(&self.method)?;
        for (name, value) in &self.headers {
            parse_header(&format!("{name}: {value}"))?;
        }
        if let Some(body) = &self.body {
            if body.len() > MAX_BODY {
                return bad(&format!(
                    "the body is {} bytes: at most {MAX_BODY} (16 MiB) are sent",
                    body.len()
                ));
            }
            if let Some((name, _)) = self.headers.iter().find(|(n, _)| {
                n.eq_ignore_ascii_case("content-length")
                    || n.eq_ignore_ascii_case("transfer-encoding")
            }) {
                return Err(LoadError::InvalidConfig(format!(
                    "-H {name}: with a body (-b/-D) servelab sends its Content-Length itself"
                )));
            }
        }
        if let Some(mix) = &self.mix {
            mix.check().map_err(LoadError::InvalidConfig)?;
            if mix.path == self.target.path {
                return bad(&format!(
                    "--mix {mix}: {} is the URL's own path already; the mix names a second one",
                    mix.path
                ));
            }
        }
        for (flag, clients, most) in [
            ("--slowloris", self.slowloris, MAX_SLOWLORIS),
            ("--malformed", self.malformed, MAX_MALFORMED),
        ] {
            match clients {
                Some(c) if c.clients == 0 => return bad(&format!("{flag} must be at least 1")),
                Some(c) if c.clients > most => {
                    return bad(&format!("{flag} {}: at most {most}", c.clients))
                }
                Some(c) if c.interval.is_zero() => {
                    return bad(&format!("{flag}-interval must be longer than 0"))
                }
                _ => {}
            }
        }
        for request in self.encode_requests() {
            if request.len().saturating_mul(self.pipeline) > MAX_WRITE {
                return bad(&format!(
                    "--pipeline {} requests of {} bytes are more than {MAX_WRITE} bytes (64 MiB) \
                     to write at once",
                    self.pipeline,
                    request.len()
                ));
            }
        }
        Ok(())
    }

    /// Each kind's request, encoded: the target's, then with a mix the
    /// mix's (the same but for the path).
    pub(super) fn encode_requests(&self) -> Vec<Vec<u8>> {
        let body = self.body.as_deref();
        let mut requests = vec![encode(&self.method, &self.target, &self.headers, body)];
        if let Some(mix) = &self.mix {
            let target = Target {
                path: mix.path.clone(),
                ..self.target.clone()
            };
            requests.push(encode(&self.method, &target, &self.headers, body));
        }
        requests
    }

    /// The thread count actually used: at most one thread per connection.
    pub fn effective_threads(&self) -> usize {
        self.threads.min(self.connections).max(1)
    }
}
