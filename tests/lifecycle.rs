//! A server's life under stress, in every model: it recovers by itself when
//! it runs out of file descriptors, and a graceful shutdown (SIGTERM or
//! [`servelab::models::Server::shutdown`]) loses no request that a client
//! sent in time.
//!
//! `cargo test --test lifecycle -- --nocapture` prints the drills' figures.

#[macro_use]
mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use servelab::load::{run_load, LoadConfig};
use servelab::models::{Model, ServerConfig};
use servelab::route::Work;
use servelab::{fd_limit, procfs};

/// `GET /` that closes its connection after the response.
const GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------
// Running out of file descriptors

/// The open-file limit the server runs under in the exhaustion drill.
const FD_LIMIT: u64 = 64;
/// Connections that queue up while the server has no descriptor left.
const QUEUED: usize = 20;
/// How long the drill watches the exhausted server.
const EXHAUSTED_FOR: Duration = Duration::from_secs(1);

/// The server runs out of descriptors (EMFILE on accept), connections queue
/// up in the listen backlog with their requests, then descriptors free up:
/// every queued request is answered within a second, without any new
/// connection arriving to wake the server, and while it waited the server
/// used next to no CPU (it backed off instead of spinning).
///
/// v2-v4 are exhausted by connections held open (and freed by closing them);
/// v1 holds one connection at a time, so its limit is lowered under it
/// (prlimit) and raised again instead: the same EMFILE on the same accept.
///
/// A thread blocked in accept() has already taken the descriptor its next
/// connection gets (the kernel allocates it first), invisibly to
/// /proc/PID/fd; with several v3 acceptors, which of them still holds one
/// would depend on how SO_REUSEPORT hashes the held connections, so v3
/// runs with one acceptor here and exhausts exactly.
fn queued_connections_are_served_once_descriptors_free_up(model: Model) {
    // Held connections must not idle out, however slow a busy machine
    // makes the drill.
    let flags = ["--idle-timeout", "60s", "--acceptors", "1"];
    let server = ServeProcess::start_with_fd_limit(model, &flags, FD_LIMIT);
    let pid = server.pid();
    let in_use = procfs::fds(pid).unwrap();
    let mut held = Vec::new();
    let mut queued = Vec::new();
    if is_sequential(model) {
        let lowest_free = (0..).find(|fd| !in_use.contains(fd)).unwrap();
        set_fd_soft_limit(pid, lowest_free.into());
        // If its thread is already blocked in accept(), that call took its
        // descriptor before the limit dropped: one more connection gets
        // through. If not, this one is the first to queue.
        let mut probe = Client::connect(server.addr);
        probe.send(GET_CLOSE);
        if !answered_within(&mut probe, Duration::from_millis(300)) {
            queued.push(probe);
        }
    } else {
        let free = (0..FD_LIMIT as u32)
            .filter(|fd| !in_use.contains(fd))
            .count();
        for _ in 0..free {
            let mut c = Client::connect(server.addr);
            assert_eq!(c.request(GET).status, 200);
            held.push(c);
        }
        let in_use = procfs::fds(pid).unwrap();
        assert!(
            (0..FD_LIMIT as u32).all(|fd| in_use.contains(&fd)),
            "the server still has descriptors free: {in_use:?}"
        );
    }

    while queued.len() < QUEUED {
        let mut c = Client::connect(server.addr);
        c.send(GET_CLOSE);
        queued.push(c);
    }
    let cpu_before = procfs::cpu_seconds(pid).unwrap();
    let watch_started = Instant::now();
    std::thread::sleep(EXHAUSTED_FOR);
    let cpu = Duration::from_secs_f64(procfs::cpu_seconds(pid).unwrap() - cpu_before);
    let watched = watch_started.elapsed();
    for (i, c) in queued.iter_mut().enumerate() {
        assert_no_bytes_yet(c, i);
    }

    let freed_at = Instant::now();
    if is_sequential(model) {
        set_fd_soft_limit(pid, FD_LIMIT);
    } else {
        held.clear();
    }
    for (i, c) in queued.iter_mut().enumerate() {
        let r = c.read_response();
        assert_eq!(r.status, 200, "queued connection {i}: {}", r.masked());
    }
    let recovered_in = freed_at.elapsed();
    eprintln!(
        "{model:?} EMFILE drill: {QUEUED} queued requests answered {:.1} ms after descriptors \
         freed up; server CPU while exhausted {:.1} ms in {:.0} ms ({:.2}%)",
        ms(recovered_in),
        ms(cpu),
        ms(watched),
        100.0 * cpu.as_secs_f64() / watched.as_secs_f64()
    );
    assert!(
        recovered_in < Duration::from_secs(1),
        "queued requests answered only after {recovered_in:?}"
    );
    assert!(
        cpu < watched / 10,
        "the exhausted server used {cpu:?} of CPU in {watched:?}: spinning"
    );
}

/// Whether a response to `c` begins to arrive within `wait`.
fn answered_within(c: &mut Client, wait: Duration) -> bool {
    c.stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    let answered = matches!(c.stream.peek(&mut byte), Ok(n) if n > 0);
    c.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    answered
}

/// Nothing has arrived on `c` yet (the server has not accepted it).
fn assert_no_bytes_yet(c: &mut Client, i: usize) {
    c.stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let result = c.stream.read(&mut byte);
    c.stream.set_nonblocking(false).unwrap();
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!(
            "queued connection {i} was served while the server had no descriptor free \
             ({other:?}): the drill did not exhaust it"
        ),
    }
}

// ---------------------------------------------------------------------------
// SIGTERM under load

/// Closed-loop load on 50 connections (the crate's load generator) and
/// SIGTERM in the middle of it: no request is lost (each gets its response,
/// the last with `Connection: close`), no response is cut, and the server
/// exits 0 well within its shutdown timeout; the clients' reconnections
/// after it are refused.
///
/// v1 serves one connection at a time: its other 49 wait in the listen
/// queue with their first request sent. The shutdown accepts them before
/// the listener closes, and v1 answers them one after another, instead of
/// resetting them (before it did, this drill counted 49 aborted requests).
fn sigterm_under_load_loses_no_request(model: Model) {
    const CONNECTIONS: usize = 50;
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
    fd_limit::raise_to(None);
    let mut server = ServeProcess::start(model, &["--shutdown-timeout", "3s"]);
    let mut config = LoadConfig::new(&format!("http://{}/", server.addr)).unwrap();
    config.connections = CONNECTIONS;
    config.duration = Duration::from_secs(2);
    // No request may be given up on while the shutdown is under way.
    config.timeout = Duration::from_secs(10);
    let load = std::thread::spawn(move || run_load(&config));
    std::thread::sleep(Duration::from_millis(800));
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(SHUTDOWN_TIMEOUT + Duration::from_secs(2))
        .expect("servelab did not exit after SIGTERM");
    let exited_after = signalled.elapsed();
    let report = load.join().unwrap().expect("the load ran");
    let c = &report.counters;
    let never_served = report.per_connection.iter().filter(|&&n| n == 0).count() as u64;
    eprintln!(
        "{model:?} SIGTERM drill: exit {:?} {:.1} ms after SIGTERM; {} responses, {} aborted, \
         {} read errors, {} unparsable, {} timeouts, {} connect errors (refused after the \
         shutdown), {} of {CONNECTIONS} connections never served",
        status.code(),
        ms(exited_after),
        c.responses,
        c.aborted,
        c.read_errors,
        c.parse_errors,
        c.timeouts,
        c.connect_errors,
        never_served,
    );
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        exited_after < SHUTDOWN_TIMEOUT,
        "exit took {exited_after:?}"
    );
    assert!(c.responses > 0, "nothing was served");
    assert_eq!(c.parse_errors, 0, "a response was cut or malformed");
    assert_eq!(c.timeouts, 0);
    assert_eq!(
        (c.aborted, c.read_errors),
        (0, 0),
        "requests lost (aborted, read errors); {never_served} connections never served"
    );
    assert_eq!(never_served, 0, "connections reset unserved");
}

// ---------------------------------------------------------------------------
// Graceful shutdown, step by step (in-process)

/// The grace period of these tests.
const GRACE: Duration = Duration::from_millis(400);

fn graceful_config() -> ServerConfig {
    ServerConfig {
        shutdown_grace: GRACE,
        shutdown_timeout: Duration::from_secs(3),
        ..config()
    }
}

/// Shuts `server` down on another thread (shutdown blocks until done);
/// the handle returns what shutdown returned and how long it took.
fn shut_down_in_background(server: TestServer) -> std::thread::JoinHandle<(bool, Duration)> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let clean = server.shutdown();
        (clean, started.elapsed())
    })
}

/// A keep-alive connection idle when shutdown begins is not closed at once:
/// a request it sends within the grace period is answered with
/// `Connection: close`, and then it closes. Another idle connection that
/// sends nothing is closed when the grace period ends, not before.
fn idle_connection_is_served_during_the_grace_period(model: Model) {
    let server = start_with(model, graceful_config());
    let mut c = server.connect();
    assert_eq!(c.request(GET).status, 200);
    // v1 holds one connection at a time: no second one to watch.
    let mut silent = (!is_sequential(model)).then(|| {
        let mut s = server.connect();
        assert_eq!(s.request(GET).status, 200);
        s
    });
    let began = Instant::now();
    let shutdown = shut_down_in_background(server);
    std::thread::sleep(GRACE / 4);
    let r = c.request(GET);
    assert_eq!(r.status, 200, "{}", r.masked());
    assert_eq!(r.header("Connection"), Some("close"), "{}", r.masked());
    c.assert_closed();
    if let Some(s) = silent.as_mut() {
        s.assert_closed();
        let closed_after = began.elapsed();
        assert!(
            closed_after + Duration::from_millis(20) >= GRACE,
            "idle connection closed {closed_after:?} into a {GRACE:?} grace period"
        );
    }
    let (clean, took) = shutdown.join().unwrap();
    assert!(clean, "shutdown timed out");
    assert!(took < GRACE + Duration::from_secs(1), "{took:?}");
}

/// Requests pipelined during the grace period are all answered, in order,
/// and only the last response says `Connection: close`.
fn pipelined_requests_in_the_grace_period_are_all_answered(model: Model) {
    let server = start_with(model, graceful_config());
    let mut c = server.connect();
    assert_eq!(c.request(GET).status, 200);
    let shutdown = shut_down_in_background(server);
    std::thread::sleep(GRACE / 4);
    c.send(&[GET, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n", GET].concat());
    let statuses: Vec<(u16, Option<String>)> = (0..3)
        .map(|_| {
            let r = c.read_response();
            (r.status, r.header("Connection").map(str::to_string))
        })
        .collect();
    assert_eq!(
        statuses,
        vec![(200, None), (404, None), (200, Some("close".into()))]
    );
    c.assert_closed();
    assert!(shutdown.join().unwrap().0);
}

/// A request whose head began arriving within the grace period and ends
/// after it is still answered (with `Connection: close`): only connections
/// with nothing in progress close when the grace period ends.
fn request_begun_in_the_grace_period_is_finished(model: Model) {
    let server = start_with(model, graceful_config());
    let mut c = server.connect();
    assert_eq!(c.request(GET).status, 200);
    let began = Instant::now();
    let shutdown = shut_down_in_background(server);
    std::thread::sleep(GRACE / 4);
    c.send(b"GET / HTTP/1.1\r\n");
    std::thread::sleep((GRACE + GRACE / 2).saturating_sub(began.elapsed()));
    c.send(b"Host: t\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.masked());
    assert_eq!(r.header("Connection"), Some("close"));
    c.assert_closed();
    assert!(shutdown.join().unwrap().0);
}

/// The listener stops accepting at once: a new connection is refused while
/// an open one is still in its grace period.
fn no_new_connection_during_shutdown(model: Model) {
    let server = start_with(model, graceful_config());
    let addr = server.addr();
    let mut c = server.connect();
    assert_eq!(c.request(GET).status, 200);
    let shutdown = shut_down_in_background(server);
    // Refused, not failed for another reason (out of ports or descriptors
    // on a busy machine), which would say nothing about the server.
    let refused = poll(GRACE / 2, || {
        let connected = std::net::TcpStream::connect(addr);
        connected
            .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
            .then_some(())
    });
    assert!(refused.is_some(), "still accepting during the grace period");
    assert_eq!(c.request(GET).header("Connection"), Some("close"));
    assert!(shutdown.join().unwrap().0);
}

// ---------------------------------------------------------------------------
// Shutdown with connections in the listen queue

/// Clients whose connections the kernel had completed when shutdown began
/// (each sent its request) are clients that were told yes: the ones still
/// in the listen queue are accepted before the listener closes and
/// answered, with `Connection: close`, instead of being reset.
///
/// 50 clients connect and send `GET /` each, and the shutdown begins as
/// soon as the last has sent (in-process, [`servelab::models::Server::shutdown`]).
/// One acceptor or reactor, and a handler that waits 20 ms on every
/// request, so that the server is busy while they connect: v1 serves at
/// most the first and at least 49 wait in its listen queue; v4 and v5 hold
/// their one reactor in a handler while most of them queue; v2 and v3
/// accept at once, but their acceptor rarely keeps up with the connects.
/// Every client must get one complete `200` and then the server's close,
/// never a reset (before the queue was drained, up to 49 or 50 of them were
/// reset in each model).
fn connections_queued_at_shutdown_are_answered(model: Model) {
    const CLIENTS: usize = 50;
    fd_limit::raise_to(None);
    let mut config = ServerConfig {
        acceptors: 1,
        reactors: 1,
        shutdown_timeout: Duration::from_secs(5),
        ..graceful_config()
    };
    config.routes.work = Work::Wait(Duration::from_millis(20).into());
    let server = start_with(model, config);
    let addr = server.addr();
    let streams: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream.write_all(GET).expect("write request");
            stream
        })
        .collect();
    let shutdown = shut_down_in_background(server);
    let readers: Vec<_> = streams
        .into_iter()
        .map(|stream| std::thread::spawn(move || read_until_end(stream)))
        .collect();
    let outcomes: Vec<Ending> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let (clean, took) = shutdown.join().unwrap();

    let mut answered = 0;
    let mut with_close = 0;
    let mut failures = Vec::new();
    for (i, ending) in outcomes.iter().enumerate() {
        let (responses, incomplete) = responses_in(&ending.raw);
        answered += usize::from(responses.iter().any(|&(status, _)| status == 200));
        with_close += usize::from(responses.last().is_some_and(|&(_, close)| close));
        if responses.len() != 1 || responses[0].0 != 200 || incomplete || ending.error.is_some() {
            failures.push(format!(
                "client {i}: {responses:?}{}, ended by {:?}",
                if incomplete {
                    " and a cut response"
                } else {
                    ""
                },
                ending
                    .error
                    .as_ref()
                    .map_or("the server's close".into(), |e| e.to_string())
            ));
        }
    }
    eprintln!(
        "{model:?} listen-queue drill: {CLIENTS} clients, {answered} answered 200 \
         ({with_close} with Connection: close), {} aborted; shutdown took {:.1} ms",
        failures.len(),
        ms(took)
    );
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients were not answered:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(clean, "shutdown timed out after {took:?}");
    if is_sequential(model) {
        // The first client's connection was open; every other one was in
        // the queue and can only have been answered after the shutdown began.
        assert!(
            with_close >= CLIENTS - 1,
            "{with_close} said Connection: close"
        );
    }
}

/// How a client's connection ended: every byte the server sent, and the
/// error that ended the read (a reset), if it was not a clean close.
struct Ending {
    raw: Vec<u8>,
    error: Option<io::Error>,
}

fn read_until_end(mut stream: TcpStream) -> Ending {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ending { raw, error: None },
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Ending {
                    raw,
                    error: Some(e),
                }
            }
        }
    }
}

/// The responses in `raw`, each as its status and whether it says
/// `Connection: close`; and whether bytes follow that are no whole response.
fn responses_in(mut raw: &[u8]) -> (Vec<(u16, bool)>, bool) {
    let mut responses = Vec::new();
    while !raw.is_empty() {
        let Some(end) = find(raw, b"\r\n\r\n") else {
            return (responses, true);
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let field = |name: &str| {
            head.split("\r\n").skip(1).find_map(|line| {
                let (n, v) = line.split_once(": ")?;
                n.eq_ignore_ascii_case(name).then(|| v.to_string())
            })
        };
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let length: usize = field("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let close = field("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if raw.len() < end + 4 + length {
            return (responses, true);
        }
        responses.push((status, close));
        raw = &raw[end + 4 + length..];
    }
    (responses, false)
}

per_model!(
    queued_connections_are_served_once_descriptors_free_up,
    sigterm_under_load_loses_no_request,
    idle_connection_is_served_during_the_grace_period,
    pipelined_requests_in_the_grace_period_are_all_answered,
    request_begun_in_the_grace_period_is_finished,
    no_new_connection_during_shutdown,
    connections_queued_at_shutdown_are_answered,
);
