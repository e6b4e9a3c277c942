//! Idle keep-alive connections: each completes one request, then sits
//! open doing nothing until it is dropped. What an idle connection costs a
//! server (memory, threads, descriptors) and whether a server still serves
//! its busy clients while thousands of others wait is read with them; wrk
//! and oha cannot hold a connection without loading it.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use serde::{Deserialize, Serialize};

use super::response::ResponseParser;

/// Read buffer of an idle connection, for its one response.
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

/// Opens `n` connections to `addr`, sends `request` on each and waits
/// until every one is answered, `wait` has passed or `cancel` is set; they
/// stay open (idle) until the result is dropped.
pub fn open_idle(
    addr: SocketAddr,
    n: usize,
    request: &[u8],
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
                    Ok(_) => match stream.write(request) {
                        Ok(n) if n == request.len() => slot.sent = true,
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
