//! What distinguishes the models: v1's one-at-a-time service, v2's thread per
//! connection and its cap, v3's fixed thread count, bounded queue and
//! SO_REUSEPORT acceptors, v4's and v5's fixed reactors (and v6's fixed
//! worker threads) that no single client can block, and v5 holding 10,000
//! idle connections on one reactor.

#[macro_use]
mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use servelab::http::Limits;
use servelab::models::{Model, ServerConfig};
use servelab::route::{Routes, Work};
use servelab::{fd_limit, procfs};

/// Keep-alive `GET /` closing the connection after its response.
const GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// The exact 503 a model sends to a connection it cannot take.
fn service_unavailable() -> String {
    plain_response(503, "Service Unavailable", None, Some("close"))
}

/// One `GET /` on a new connection that never panics: the status, or `None`
/// when the connection was refused, reset or closed first. For polling
/// until a server has capacity again.
fn try_get(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    stream.write_all(GET_CLOSE).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let status = response.get(9..12)?;
    std::str::from_utf8(status).ok()?.parse().ok()
}

/// Sockets listening on 127.0.0.1:`port`, from /proc/net/tcp (state 0A is
/// LISTEN; addresses are hex, the IPv4 address in host byte order).
fn listening_sockets(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A")
        })
        .count()
}

// ---------------------------------------------------------------------------
// v1 sequential

/// The seed's promise: one silent client cannot hold v1 forever. While the
/// first client idles, a second waits unserved; once the first one's idle
/// timeout closes it, the second is answered.
#[test]
fn v1_second_client_is_served_after_first_idles_out() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = start_with(Model::Sequential, config_with(limits));
    let mut first = server.connect();
    // Before the request, so a sound lower bound on the first one's idle end.
    let first_idle_since = Instant::now();
    assert_eq!(first.request(GET).status, 200);

    let mut second = server.connect();
    second.send(GET);
    second.assert_silent(Duration::from_millis(150));
    let r = second.read_response();
    assert_eq!(r.masked(), OK_RESPONSE);
    assert!(first_idle_since.elapsed() >= Duration::from_millis(450));
    // v1 closed the first connection before accepting the second, so its FIN
    // is already here: a non-blocking read sees EOF, not "would block".
    first.stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match first.stream.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("first connection not closed before the second was served: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// v2 threaded

/// 2,000 keep-alive connections open at once, each served twice. Connections
/// are made in batches of 200 (each answered before the next batch) so the
/// listen backlog is never what limits the test.
#[test]
fn v2_survives_2000_concurrent_keep_alive_connections() {
    const CONNECTIONS: usize = 2_000;
    const BATCH: usize = 200;
    // Client and server descriptors share this process: 4,000 plus slack.
    let limit = fd_limit::raise_to(None);
    assert!(
        limit >= 2 * CONNECTIONS as u64 + 100,
        "RLIMIT_NOFILE hard limit {limit} is too low for this test; raise it (ulimit -Hn)"
    );
    let limits = Limits {
        idle_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let server = start_with(Model::Threaded, config_with(limits));
    let mut clients: Vec<Client> = Vec::with_capacity(CONNECTIONS);
    while clients.len() < CONNECTIONS {
        let batch_start = clients.len();
        clients.extend((0..BATCH).map(|_| server.connect()));
        for c in &mut clients[batch_start..] {
            c.send(GET);
        }
        for c in &mut clients[batch_start..] {
            assert_eq!(c.read_response().status, 200);
        }
    }
    // All 2,000 are open now; each completes a second request.
    for c in &mut clients {
        c.send(GET);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.read_response();
        assert_eq!(r.status, 200, "connection {i}");
        assert_eq!(r.header("Connection"), None, "connection {i}");
    }
}

/// At max_connections the next connection gets exactly a 503 with
/// `Connection: close` and is closed; once a slot frees, service resumes.
#[test]
fn v2_over_max_connections_gets_503_then_recovers() {
    over_max_connections_gets_503_then_recovers(Model::Threaded);
}

fn over_max_connections_gets_503_then_recovers(model: Model) {
    let config = ServerConfig {
        max_connections: 4,
        ..config()
    };
    let server = start_with(model, config);
    // Each answered once, so each surely has its thread running.
    let mut held: Vec<Client> = (0..4).map(|_| server.connect()).collect();
    for c in &mut held {
        assert_eq!(c.request(GET).status, 200);
    }
    let mut fifth = server.connect();
    assert_eq!(fifth.read_response().masked(), service_unavailable());
    fifth.assert_closed();
    // A client that sends its request at once (as real ones do) still reads
    // the 503: the server closing with the request unread may reset the
    // connection, but only after the response was delivered.
    let mut eager = server.connect();
    eager.send(GET);
    assert_eq!(eager.read_response().status, 503);

    held.pop();
    let recovered = poll(IO_TIMEOUT, || {
        (try_get(server.addr()) == Some(200)).then_some(())
    });
    assert!(recovered.is_some(), "no connection served after one closed");
    for c in &mut held {
        c.assert_open();
    }
}

// ---------------------------------------------------------------------------
// v3 pool

/// The thread count is acceptors + pool size + the main thread, before load,
/// with 500 connections waiting and after all of them were answered (the
/// client still holding the 500 sockets).
#[test]
fn v3_thread_count_is_fixed_under_500_connections() {
    const CONNECTIONS: usize = 500;
    fd_limit::raise_to(None);
    let flags = ["--acceptors", "2", "--pool-size", "8"];
    let server = ServeProcess::start(Model::Pool, &flags);
    let expected = 2 + 8 + 1;
    assert_eq!(
        procfs::status(server.pid(), "Threads").unwrap(),
        expected,
        "before load"
    );

    let mut clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::connect(server.addr))
        .collect();
    for c in &mut clients {
        c.send(GET_CLOSE);
    }
    assert_eq!(
        procfs::status(server.pid(), "Threads").unwrap(),
        expected,
        "under load"
    );
    for c in &mut clients {
        assert_eq!(c.read_response().status, 200);
    }
    assert_eq!(
        procfs::status(server.pid(), "Threads").unwrap(),
        expected,
        "with 500 answered connections open"
    );
}

/// With both workers held by keep-alive connections, a third connection's
/// request waits unanswered; when the first client leaves, it is answered.
#[test]
fn v3_third_client_waits_for_a_free_worker() {
    let config = ServerConfig {
        acceptors: 1,
        pool_size: 2,
        limits: Limits {
            // Long enough that neither holder idles out during the test:
            // the order of events, not a timer, must free the worker.
            idle_timeout: Duration::from_secs(3),
            ..Limits::default()
        },
        ..config()
    };
    let server = start_with(Model::Pool, config);
    let mut first = server.connect();
    let mut second = server.connect();
    assert_eq!(first.request(GET).status, 200);
    assert_eq!(second.request(GET).status, 200);

    let mut third = server.connect();
    third.send(GET);
    third.assert_silent(Duration::from_millis(200));
    // Both workers are still serving their clients.
    assert_eq!(first.request(GET).status, 200);
    assert_eq!(second.request(GET).status, 200);
    third.assert_silent(Duration::from_millis(50));

    drop(first);
    assert_eq!(third.read_response().masked(), OK_RESPONSE);
    second.assert_open();
    third.assert_open();
}

/// With one worker held and the queue (1) full, a further connection gets
/// 503 at once instead of hanging; the queued one is served later.
#[test]
fn v3_full_queue_gets_503() {
    let config = ServerConfig {
        acceptors: 1,
        pool_size: 1,
        queue: 1,
        ..config()
    };
    let server = start_with(Model::Pool, config);
    let mut holder = server.connect();
    assert_eq!(holder.request(GET).status, 200);
    // One acceptor takes connections in order: the queued one is accepted
    // (and queued) before the third.
    let mut queued = server.connect();
    let mut third = server.connect();
    assert_eq!(third.read_response().masked(), service_unavailable());
    third.assert_closed();

    queued.send(GET);
    queued.assert_silent(Duration::from_millis(100));
    drop(holder);
    assert_eq!(queued.read_response().status, 200);
}

/// A connection still queued for a worker when shutdown begins has its
/// request answered too: the worker held by an idle connection frees up when
/// the grace period closes that one, then serves the queued request with
/// `Connection: close`; shutdown completes soon after the grace period.
#[test]
fn v3_shutdown_answers_a_queued_connection() {
    let config = ServerConfig {
        acceptors: 1,
        pool_size: 1,
        queue: 4,
        ..config()
    };
    let grace = config.shutdown_grace;
    let server = start_with(Model::Pool, config);
    let mut served = server.connect();
    assert_eq!(served.request(GET).status, 200);
    let mut queued = server.connect();
    queued.send(GET);
    queued.assert_silent(Duration::from_millis(100));
    let since = Instant::now();
    assert!(server.shutdown());
    let took = since.elapsed();
    assert!(took < grace + Duration::from_secs(1), "{took:?}");
    served.assert_closed();
    let r = queued.read_response();
    assert_eq!(r.status, 200, "{}", r.masked());
    assert_eq!(r.header("Connection"), Some("close"));
    queued.assert_closed();
}

/// With 4 acceptors, 4 sockets listen on the one port (SO_REUSEPORT), and
/// 200 concurrent connections spread over them are all answered.
#[test]
fn v3_acceptors_share_the_port() {
    let config = ServerConfig {
        acceptors: 4,
        pool_size: 16,
        // Room for every connection: this test is about the acceptors, not
        // the 503 on a full queue (tested above).
        queue: 200,
        ..config()
    };
    listeners_share_the_port(Model::Pool, config);
}

fn listeners_share_the_port(model: Model, config: ServerConfig) {
    const CONNECTIONS: usize = 200;
    let server = start_with(model, config);
    assert_eq!(listening_sockets(server.addr().port()), 4);

    let mut clients: Vec<Client> = (0..CONNECTIONS).map(|_| server.connect()).collect();
    for c in &mut clients {
        c.send(GET_CLOSE);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        // Each read is bounded by IO_TIMEOUT: a connection stuck in some
        // acceptor's queue fails the test instead of hanging it.
        let r = c.read_response();
        assert_eq!(r.status, 200, "connection {i}");
        c.assert_closed();
    }
}

/// v1 listens on exactly one socket (no SO_REUSEPORT sharing), as do v2
/// and v6 (whatever its number of worker threads).
#[test]
fn v1_v2_and_v6_listen_on_one_socket() {
    for model in [Model::Sequential, Model::Threaded, Model::Tokio] {
        let server = start(model);
        assert_eq!(listening_sockets(server.addr().port()), 1, "{model:?}");
    }
}

// ---------------------------------------------------------------------------
// v4 event, v5 uring and v6 tokio (v5's tests print why and pass where
// io_uring cannot be used)

per_reactor!(
    over_max_connections_gets_503_then_recovers,
    thread_count_is_fixed_under_500_connections,
    client_that_does_not_read_blocks_nobody,
    parked_requests_hold_no_thread,
    shutdown_waits_for_parked_requests,
    clients_gone_while_parked_cost_nothing,
);

/// A server on one reactor whose handler parks every request for `wait`.
fn parking(model: Model, wait: Duration) -> TestServer {
    let config = ServerConfig {
        reactors: 1,
        routes: Routes {
            work: Work::Await(wait.into()),
            ..Routes::default()
        },
        ..config()
    };
    start_with(model, config)
}

/// One reactor, 50 connections whose requests each wait 100 ms without
/// holding the thread: all are answered about 100 ms later, not one after
/// another (5 s); pipelined requests behind a parked one come in order.
fn parked_requests_hold_no_thread(model: Model) {
    const CONNECTIONS: usize = 50;
    const WAIT: Duration = Duration::from_millis(100);
    let server = parking(model, WAIT);
    let mut clients: Vec<Client> = (0..CONNECTIONS).map(|_| server.connect()).collect();
    let start = Instant::now();
    for c in &mut clients {
        c.send(GET);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.read_response().status, 200, "connection {i}");
    }
    let took = start.elapsed();
    assert!(took >= WAIT, "answered before the wait was over ({took:?})");
    assert!(
        took < WAIT * CONNECTIONS as u32 / 4,
        "{CONNECTIONS} parked requests took {took:?}: the waits were not overlapped"
    );
    let mut pipelined = server.connect();
    pipelined.send(&[GET, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n", GET].concat());
    let statuses: Vec<u16> = (0..3).map(|_| pipelined.read_response().status).collect();
    assert_eq!(statuses, [200, 404, 200]);
}

/// A request parked when the shutdown begins is the server's to finish:
/// answered when its wait is over (past the grace period), with
/// `Connection: close`, and the shutdown completes. The wait is long
/// beside the 50 ms before the shutdown: on a busy CI machine 400 ms once
/// passed before the shutdown began, and the request was answered first.
fn shutdown_waits_for_parked_requests(model: Model) {
    let config = ServerConfig {
        reactors: 1,
        shutdown_grace: Duration::from_millis(50),
        routes: Routes {
            work: Work::Await(Duration::from_millis(1500).into()),
            ..Routes::default()
        },
        ..config()
    };
    let server = start_with(model, config);
    let mut client = server.connect();
    client.send(GET);
    std::thread::sleep(Duration::from_millis(50));
    let stopping = std::thread::spawn(move || server.shutdown());
    let response = client.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Connection"), Some("close"));
    client.assert_closed();
    assert!(stopping.join().unwrap(), "the shutdown did not complete");
}

/// Clients that close while their requests are parked: the connections go
/// (their completions find nothing), and the server serves on.
fn clients_gone_while_parked_cost_nothing(model: Model) {
    let server = parking(model, Duration::from_millis(100));
    for _ in 0..20 {
        let mut c = server.connect();
        c.send(GET);
        drop(c);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut after = server.connect();
    assert_eq!(after.request(GET).status, 200);
    assert!(server.shutdown(), "connections were left behind");
}

/// With 4 reactors, 4 sockets listen on the one port and 200 concurrent
/// connections spread over them are all answered. v4 and v5 only: v6 has
/// one listener whatever its worker count (tokio's workers share its
/// accepted connections by stealing tasks; see `v1_v2_and_v6_listen_on_one_socket`).
#[test]
fn v4_reactors_share_the_port() {
    reactors_share_the_port(Model::Event);
}

#[test]
fn v5_reactors_share_the_port() {
    if !skip_unavailable(Model::Uring, "v5_reactors_share_the_port") {
        reactors_share_the_port(Model::Uring);
    }
}

fn reactors_share_the_port(model: Model) {
    let config = ServerConfig {
        reactors: 4,
        ..config()
    };
    listeners_share_the_port(model, config);
}

/// The thread count is the reactors + the main thread, whatever the number
/// of connections (io_uring starts no worker threads for sockets); v6 has
/// one more, the thread that owns tokio's runtime and waits for its end
/// (its workers are the `--reactors`; the runtime starts no blocking-pool
/// thread, since nothing calls `spawn_blocking`).
fn thread_count_is_fixed_under_500_connections(model: Model) {
    const CONNECTIONS: usize = 500;
    fd_limit::raise_to(None);
    let server = ServeProcess::start(model, &["--reactors", "2"]);
    let expected = 2 + 1 + u64::from(model == Model::Tokio);
    assert_eq!(
        procfs::status(server.pid(), "Threads").unwrap(),
        expected,
        "before load"
    );
    let mut clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::connect(server.addr))
        .collect();
    for c in &mut clients {
        assert_eq!(c.request(GET).status, 200);
    }
    assert_eq!(
        procfs::status(server.pid(), "Threads").unwrap(),
        expected,
        "with 500 connections open"
    );
}

/// One reactor, and a client that pipelines far more requests than the
/// socket buffers hold (about 12 MB of responses) without reading any: the
/// reactor stops reading that client (back-pressure) instead of blocking on
/// it, so another client is answered meanwhile; then every one of the stuck
/// client's responses arrives, in order, none lost.
fn client_that_does_not_read_blocks_nobody(model: Model) {
    const REQUESTS: usize = 100_000;
    let config = ServerConfig {
        reactors: 1,
        ..config()
    };
    let server = start_with(model, config);
    let mut stuck = server.connect();
    let mut writer = stuck.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let batch = [GET; 100].concat();
        for _ in 0..REQUESTS / 100 {
            writer.write_all(&batch).unwrap();
        }
    });
    // Give the flood time to fill every buffer on the way.
    std::thread::sleep(Duration::from_millis(200));
    let mut other = server.connect();
    assert_eq!(other.request(GET).status, 200, "second client answered");

    for i in 0..REQUESTS {
        assert_eq!(stuck.read_response().status, 200, "response {i}");
    }
    sender.join().unwrap();
    stuck.assert_open();
}

// ---------------------------------------------------------------------------
// v5 uring (each test prints why and passes where io_uring cannot be used,
// or fails with SERVELAB_REQUIRE_ALL set)

/// 10,000 idle connections held open at once on one ring (a child process,
/// so that client and server each hold 10,000 descriptors), then every one
/// of them sends a request at the same moment (far more than the ring's
/// receive buffers: some recvs run dry and are re-armed) and is answered.
#[test]
fn v5_holds_10000_idle_connections_on_one_reactor_and_answers_all() {
    const CONNECTIONS: usize = 10_000;
    let test = "v5_holds_10000_idle_connections_on_one_reactor_and_answers_all";
    if skip_unavailable(Model::Uring, test) {
        return;
    }
    if skip_below_fd_limit(test, CONNECTIONS as u64 + 200) {
        return;
    }
    let flags = [
        "--reactors",
        "1",
        "--max-connections",
        "20000",
        "--backlog",
        "4096",
        "--idle-timeout",
        "60s",
    ];
    let server = ServeProcess::start(Model::Uring, &flags);
    let rss_before = procfs::status(server.pid(), "VmRSS").unwrap() * 1024;
    let mut clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::connect(server.addr))
        .collect();
    // All accepted: the server holds a descriptor for each.
    let accepted = poll(Duration::from_secs(10), || {
        (procfs::fds(server.pid()).map_or(0, |fds| fds.len()) >= CONNECTIONS).then_some(())
    });
    assert!(accepted.is_some(), "not all connections were accepted");
    say(&format!(
        "{test}: RSS grew {} bytes per idle connection",
        (procfs::status(server.pid(), "VmRSS").unwrap() * 1024).saturating_sub(rss_before)
            / CONNECTIONS as u64
    ));
    for c in &mut clients {
        c.send(GET);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.read_response();
        assert_eq!(r.status, 200, "connection {i}");
        assert_eq!(r.header("Connection"), None, "connection {i}");
    }
}
