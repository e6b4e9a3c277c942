//! Hostile clients beside the load (`--slowloris`, `--malformed`): slowloris
//! connections that trickle a request head that never ends, and clients
//! that send malformed requests, each on a new connection. They show what a
//! server does under slow clients and hostile input while the load measures
//! what that costs the normal clients. Each runs on threads of its own until
//! it is finished (or dropped), and reports counts.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long slowloris connections are given to connect before the load
/// starts, so that the load runs beside all of them from its first request.
pub const SLOWLORIS_SETUP: Duration = Duration::from_millis(100);
/// `--slowloris-interval`'s default: time between two bytes of a slowloris
/// connection.
pub const SLOWLORIS_INTERVAL: Duration = Duration::from_millis(500);
/// `--malformed-interval`'s default: time between two malformed requests of
/// one malformed client.
pub const MALFORMED_INTERVAL: Duration = Duration::from_millis(10);

/// How many hostile clients of one kind, and how often each acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostileClients {
    /// Clients (slowloris connections, or malformed-request senders).
    pub clients: usize,
    /// Time between two bytes (slowloris) or two requests (malformed) of one
    /// client.
    pub interval: Duration,
}

/// What the slowloris connections saw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlowOutcome {
    /// Slow connections asked for.
    pub connections: u64,
    /// Connections that connected.
    pub connected: u64,
    /// Connections the server closed (or answered) before the end.
    pub closed_by_server: u64,
    /// Responses they got, by status code (`408` past the header deadline).
    pub status: BTreeMap<String, u64>,
    /// Median time a slow connection was held open (so far, if still), seconds.
    pub held_median_s: f64,
    /// Longest time one was held, seconds.
    pub held_max_s: f64,
    /// Bytes sent by all of them together.
    pub bytes_sent: u64,
}

/// What a slowloris connection trickles: a request head that never ends.
const SLOW_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: servelab-bench\r\nX-Slow: ";

/// Slowloris connections running on a thread of their own. Dropped without
/// [`Slowloris::finish`], they close within a few milliseconds.
pub struct Slowloris {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<SlowOutcome>>,
}

impl Slowloris {
    /// Opens `n` connections, each sending a header byte every `interval`.
    pub fn start(addr: SocketAddr, n: usize, interval: Duration) -> io::Result<Slowloris> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("load-slowloris".into())
            .spawn(move || slowloris(addr, n, interval, &flag))?;
        Ok(Slowloris {
            stop,
            thread: Some(thread),
        })
    }

    /// Closes the connections and returns what they saw.
    pub fn finish(mut self) -> SlowOutcome {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Slowloris {
    /// A run that fails halfway must not leave the connections trickling.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn slowloris(addr: SocketAddr, n: usize, interval: Duration, stop: &AtomicBool) -> SlowOutcome {
    struct Slow {
        stream: Option<TcpStream>,
        opened: Instant,
        held: Option<Duration>,
        sent: usize,
    }
    let mut out = SlowOutcome {
        connections: n as u64,
        ..SlowOutcome::default()
    };
    let mut conns: Vec<Slow> = Vec::with_capacity(n);
    for _ in 0..n {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .ok();
        out.connected += u64::from(stream.is_some());
        conns.push(Slow {
            stream,
            opened: Instant::now(),
            held: None,
            sent: 0,
        });
    }
    let mut buf = [0u8; 512];
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            next += interval;
            for c in conns.iter_mut() {
                let Some(stream) = c.stream.as_mut() else {
                    continue;
                };
                let byte = SLOW_HEAD.get(c.sent).copied().unwrap_or(b'a');
                let mut closed = match stream.write(&[byte]) {
                    Ok(1) => {
                        c.sent += 1;
                        out.bytes_sent += 1;
                        None
                    }
                    Ok(_) => None,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                    Err(_) => Some(None),
                };
                if closed.is_none() {
                    closed = match stream.read(&mut buf) {
                        Ok(0) => Some(None),
                        Ok(got) => Some(status_of(&buf[..got])),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                        Err(_) => Some(None),
                    };
                }
                if let Some(status) = closed {
                    if let Some(code) = status {
                        *out.status.entry(code.to_string()).or_default() += 1;
                    }
                    out.closed_by_server += 1;
                    c.held = Some(c.opened.elapsed());
                    c.stream = None;
                }
            }
        }
        thread::sleep(Duration::from_millis(5).min(interval));
    }
    let held: Vec<f64> = conns
        .iter()
        .filter(|c| c.held.is_some() || c.stream.is_some())
        .map(|c| c.held.unwrap_or_else(|| c.opened.elapsed()).as_secs_f64())
        .collect();
    (out.held_median_s, out.held_max_s) = median_max(held);
    out
}

/// The median and the largest of `values` (the finite ones); zeros when
/// there are none.
pub(super) fn median_max(mut values: Vec<f64>) -> (f64, f64) {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => (0.0, 0.0),
        n if n % 2 == 1 => (values[n / 2], values[n - 1]),
        n => ((values[n / 2 - 1] + values[n / 2]) / 2.0, values[n - 1]),
    }
}

/// A kind of malformed request, and the status servelab answers it with.
#[derive(Clone, Copy, Debug)]
pub struct Malformed {
    /// Name in reports.
    pub name: &'static str,
    /// The status servelab answers it with.
    pub expected: u16,
    /// Builds the request.
    pub bytes: fn() -> Vec<u8>,
}

/// The malformed requests `--malformed` sends, in turn.
pub const MALFORMED: [Malformed; 3] = [
    Malformed {
        name: "bad request line",
        expected: 400,
        bytes: || b"GET /\x01 HTTP/1.1\r\nHost: servelab-bench\r\n\r\n".to_vec(),
    },
    Malformed {
        name: "Content-Length with Transfer-Encoding",
        expected: 400,
        bytes: || {
            b"POST / HTTP/1.1\r\nHost: servelab-bench\r\nContent-Length: 5\r\n\
              Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec()
        },
    },
    Malformed {
        name: "oversized header",
        expected: 431,
        bytes: || {
            let mut r = b"GET / HTTP/1.1\r\nHost: servelab-bench\r\nX-Big: ".to_vec();
            r.resize(r.len() + 16 * 1024, b'a');
            r.extend_from_slice(b"\r\n\r\n");
            r
        },
    },
];

/// How one kind of malformed request was treated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MalformedCount {
    /// The kind ([`Malformed::name`]).
    pub kind: String,
    /// The status servelab gives it.
    pub expected: u16,
    /// Sent.
    pub sent: u64,
    /// Answered with a 4xx, then the connection closed: what should happen.
    pub rejected_and_closed: u64,
    /// Of those, with exactly the expected status.
    pub expected_status: u64,
    /// Answered with a 4xx but the connection stayed open.
    pub left_open: u64,
    /// Answered with a status outside 4xx.
    pub wrong_status: u64,
    /// Not answered at all (closed, reset or silent until the timeout).
    pub no_answer: u64,
    /// Every status received, by code.
    pub status: BTreeMap<String, u64>,
}

/// What the malformed clients saw, per kind of malformed request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NoiseOutcome {
    /// Per kind, in [`MALFORMED`] order.
    pub kinds: Vec<MalformedCount>,
}

impl NoiseOutcome {
    /// Malformed requests sent.
    pub fn sent(&self) -> u64 {
        self.kinds.iter().map(|k| k.sent).sum()
    }

    /// Those answered with a 4xx and a close.
    pub fn rejected_and_closed(&self) -> u64 {
        self.kinds.iter().map(|k| k.rejected_and_closed).sum()
    }
}

/// How long a malformed request's connection waits for the answer and the
/// close.
const NOISE_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Malformed-request clients on threads of their own, counting into one
/// outcome. Dropped without [`Noise::finish`], they stop after the request
/// each is sending.
pub struct Noise {
    stop: Arc<AtomicBool>,
    outcome: Arc<Mutex<NoiseOutcome>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Noise {
    /// Starts `n` threads, each sending a malformed request every `interval`.
    pub fn start(addr: SocketAddr, n: usize, interval: Duration) -> io::Result<Noise> {
        let stop = Arc::new(AtomicBool::new(false));
        let kinds = MALFORMED.iter().map(|m| MalformedCount {
            kind: m.name.to_string(),
            expected: m.expected,
            ..MalformedCount::default()
        });
        let outcome = Arc::new(Mutex::new(NoiseOutcome {
            kinds: kinds.collect(),
        }));
        let mut noise = Noise {
            stop,
            outcome,
            threads: Vec::with_capacity(n),
        };
        for i in 0..n {
            let (stop, outcome) = (Arc::clone(&noise.stop), Arc::clone(&noise.outcome));
            // On an error the threads already started stop when `noise` drops.
            let thread = thread::Builder::new()
                .name(format!("load-malformed-{i}"))
                .spawn(move || noisy(addr, i, interval, &stop, &outcome))?;
            noise.threads.push(thread);
        }
        Ok(noise)
    }

    /// Stops the threads and returns what they saw.
    pub fn finish(mut self) -> NoiseOutcome {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut self.threads)
            .into_iter()
            .for_each(|t| drop(t.join()));
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *outcome)
    }
}

impl Drop for Noise {
    /// A run that fails halfway must not leave the clients sending.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn noisy(
    addr: SocketAddr,
    index: usize,
    interval: Duration,
    stop: &AtomicBool,
    outcome: &Mutex<NoiseOutcome>,
) {
    let requests: Vec<Vec<u8>> = MALFORMED.iter().map(|m| (m.bytes)()).collect();
    let mut next = Instant::now();
    for kind in (index..).map(|turn| turn % MALFORMED.len()) {
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(20)),
            );
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        next += interval;
        let (status, closed) = send_malformed(addr, &requests[kind]);
        let mut outcome = outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let count = &mut outcome.kinds[kind];
        count.sent += 1;
        let Some(code) = status else {
            count.no_answer += 1;
            continue;
        };
        *count.status.entry(code.to_string()).or_default() += 1;
        match ((400..500).contains(&code), closed) {
            (true, true) => {
                count.rejected_and_closed += 1;
                count.expected_status += u64::from(code == MALFORMED[kind].expected);
            }
            (true, false) => count.left_open += 1,
            (false, _) => count.wrong_status += 1,
        }
    }
}

/// Sends one malformed request: the answer's status, and whether the server closed.
fn send_malformed(addr: SocketAddr, request: &[u8]) -> (Option<u16>, bool) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, NOISE_READ_TIMEOUT) else {
        return (None, false);
    };
    let _ = stream.set_read_timeout(Some(NOISE_READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(NOISE_READ_TIMEOUT));
    // The server may answer and close before it has read everything: a
    // failed write is not the end, the answer may be waiting.
    let _ = stream.write_all(request);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + NOISE_READ_TIMEOUT;
    let closed = loop {
        if Instant::now() >= deadline {
            break false;
        }
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => {
                if got.len() < 4096 {
                    got.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset after the answer still ends the connection.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break !got.is_empty(),
            Err(_) => break false,
        }
    };
    (status_of(&got), closed)
}

/// The status code of a response that starts `bytes`.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_codes() {
        assert_eq!(status_of(b"HTTP/1.1 431 Request Header"), Some(431));
        assert_eq!(status_of(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(status_of(b"HTTP/1.1 4"), None);
        assert_eq!(status_of(b"garbage"), None);
    }

    #[test]
    fn median_and_max_of_hold_times() {
        assert_eq!(median_max(Vec::new()), (0.0, 0.0));
        assert_eq!(median_max(vec![3.0, 1.0, 2.0]), (2.0, 3.0));
        assert_eq!(median_max(vec![4.0, 1.0, 2.0, 3.0]), (2.5, 4.0));
        assert_eq!(median_max(vec![f64::NAN, 1.0]), (1.0, 1.0));
    }
}
