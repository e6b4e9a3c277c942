//! The clients the load generator does not cover: idle keep-alive
//! connections, slowloris connections, and malformed requests. Each is
//! bounded in time and reports counts.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use serde::{Deserialize, Serialize};

use crate::load::ResponseParser;

use super::spread::Spread;

/// The request idle connections complete before they go idle.
const IDLE_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: servelab-bench\r\n\r\n";
/// Read buffer of a bench client connection.
const BUF: usize = 4096;
/// Idle connections opening or awaiting their answer at once.
const IDLE_PENDING: usize = 512;

/// What the idle connections achieved.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdleOutcome {
    /// Connections asked for.
    pub connections: u64,
    /// Connections whose connect completed.
    pub connected: u64,
    /// Connections that failed to connect or were closed or reset.
    pub failed: u64,
    /// Requests answered with 2xx/3xx.
    pub answered: u64,
    /// Responses with another status, by code (`503` past a model's cap).
    pub status: BTreeMap<String, u64>,
    /// Seconds from the first connect until the wait ended.
    pub waited_s: f64,
}

/// Idle keep-alive connections, held open until dropped.
pub struct IdleConnections {
    _streams: Vec<MioStream>,
    /// What they achieved.
    pub outcome: IdleOutcome,
}

/// One idle connection: its stream until it fails, and its answer.
struct Slot {
    stream: Option<MioStream>,
    sent: bool,
    done: bool,
    parser: ResponseParser,
    buf: Vec<u8>,
}

/// Opens `n` connections to `addr`, sends one request on each and waits
/// until every one is answered, `wait` has passed or `cancel` is set; they
/// stay open (idle) until the result is dropped.
pub fn idle(
    addr: SocketAddr,
    n: usize,
    wait: Duration,
    cancel: &AtomicBool,
) -> io::Result<IdleConnections> {
    let start = Instant::now();
    let deadline = start + wait;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut outcome = IdleOutcome {
        connections: n as u64,
        ..IdleOutcome::default()
    };
    let mut slots: Vec<Slot> = (0..n)
        .map(|_| Slot {
            stream: None,
            sent: false,
            done: false,
            parser: ResponseParser::new(false, BUF),
            buf: Vec::new(),
        })
        .collect();
    let (mut opened, mut pending) = (0, 0);
    let mut chunk = [0u8; BUF];
    while !cancel.load(Ordering::Relaxed) {
        // At most IDLE_PENDING connections are opening or waiting for their
        // answer at once: a burst of thousands of SYNs would overflow the
        // listen queue, and a dropped SYN is only sent again a second later.
        while pending < IDLE_PENDING && opened < n {
            let interest = Interest::READABLE | Interest::WRITABLE;
            match MioStream::connect(addr) {
                Ok(mut stream) => {
                    poll.registry()
                        .register(&mut stream, Token(opened), interest)?;
                    slots[opened].stream = Some(stream);
                    pending += 1;
                }
                Err(_) => {
                    slots[opened].done = true;
                    outcome.failed += 1;
                }
            }
            opened += 1;
        }
        let now = Instant::now();
        if pending == 0 || now >= deadline {
            break;
        }
        match poll.poll(
            &mut events,
            Some((deadline - now).min(Duration::from_millis(20))),
        ) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            polled => polled?,
        }
        for event in events.iter() {
            let slot = &mut slots[event.token().0];
            if slot.done {
                continue;
            }
            let Some(stream) = slot.stream.as_mut() else {
                continue;
            };
            // `Some(status)` once through; `Some(None)` when it failed.
            let mut finished = None;
            if !slot.sent && event.is_writable() {
                match stream.peer_addr() {
                    Ok(_) => match stream.write(IDLE_REQUEST) {
                        Ok(n) if n == IDLE_REQUEST.len() => slot.sent = true,
                        Ok(_) | Err(_) => finished = Some(None),
                    },
                    Err(e) if e.kind() == ErrorKind::NotConnected && !event.is_error() => {}
                    Err(_) => finished = Some(None),
                }
            }
            if finished.is_none() && slot.sent && (event.is_readable() || event.is_read_closed()) {
                finished = read_answer(stream, &mut slot.parser, &mut slot.buf, &mut chunk);
            }
            let Some(status) = finished else { continue };
            slot.done = true;
            pending -= 1;
            slot.buf = Vec::new();
            match status {
                Some(code) if (200..400).contains(&code) => outcome.answered += 1,
                Some(code) => *outcome.status.entry(code.to_string()).or_default() += 1,
                None => {
                    outcome.failed += 1;
                    slot.stream = None;
                }
            }
        }
    }
    let streams: Vec<MioStream> = slots.into_iter().filter_map(|s| s.stream).collect();
    outcome.connected = streams.iter().filter(|s| s.peer_addr().is_ok()).count() as u64;
    outcome.waited_s = start.elapsed().as_secs_f64();
    Ok(IdleConnections {
        _streams: streams,
        outcome,
    })
}

/// Reads an idle connection's answer: `Some(status)` once it is through.
fn read_answer(
    stream: &mut MioStream,
    parser: &mut ResponseParser,
    buf: &mut Vec<u8>,
    chunk: &mut [u8],
) -> Option<Option<u16>> {
    loop {
        match stream.read(chunk) {
            Ok(0) => return Some(parser.on_eof().map(|c| c.status)),
            Ok(got) => {
                buf.extend_from_slice(&chunk[..got]);
                match parser.advance(buf) {
                    Ok(step) if step.completed.is_some() => {
                        return Some(step.completed.map(|c| c.status))
                    }
                    Ok(step) => drop(buf.drain(..step.consumed)),
                    Err(_) => return Some(None),
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Some(None),
        }
    }
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

/// Slowloris connections running on a thread of their own.
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
            .name("bench-slowloris".into())
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
    let held = Spread::of(&held);
    out.held_median_s = held.map_or(0.0, |s| s.median);
    out.held_max_s = held.map_or(0.0, |s| s.max);
    out
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

/// The malformed requests of the `noise` scenario, sent in turn.
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

/// What the noisy connections saw, per kind of malformed request.
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

/// How long a noisy connection waits for the answer and the close.
const NOISE_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Noisy connections on threads of their own, counting into one outcome.
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
        let threads = (0..n)
            .map(|i| {
                let (stop, outcome) = (Arc::clone(&stop), Arc::clone(&outcome));
                thread::Builder::new()
                    .name(format!("bench-noise-{i}"))
                    .spawn(move || noisy(addr, i, interval, &stop, &outcome))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Noise {
            stop,
            outcome,
            threads,
        })
    }

    /// Stops the threads and returns what they saw.
    pub fn finish(self) -> NoiseOutcome {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().for_each(|t| drop(t.join()));
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *outcome)
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
}
