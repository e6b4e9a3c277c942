//! What an idle keep-alive connection costs a reactor model (v4, v5) or v6
//! (tokio, a task per connection) in memory: the growth of the server's
//! resident set over thousands of connections that each completed one
//! request, per connection; what a connection whose request its handler
//! parked (`--work await`) costs over an idle one; and that a client
//! pipelining requests for large bodies costs a few bodies, not one each.
//!
//! An idle connection holds no buffer in these models (the reactor lends
//! them only while bytes are pending), so what is left is its table entry,
//! its deadline and its share of what the reactor keeps for bursts (the
//! buffer pool at its peak, v5's receive buffer ring). The bound is
//! generous: about twice what these models take, and a quarter of what v5
//! took while each connection's buffers were 4 KiB and its ring a fixed
//! 1 MiB.
//!
//! v6 (tokio) holds no buffer for an idle connection either, but tokio
//! allocates each connection a task (its future, about 500 bytes: the
//! `Conn`, the socket, the timer, in a cell tokio aligns to 128 bytes, 640
//! bytes in all) and an I/O registration (aligned to 64 bytes): about
//! 1.2 KiB measured, held to [`TOKIO_BOUND`]. Resident memory does not
//! depend on timing, so the tests hold on a loaded machine; they wait for
//! the figure to settle before reading it.

mod common;

use std::time::Duration;

use common::*;
use servelab::models::Model;
use servelab::procfs;

/// Idle connections measured: enough that fixed costs (the ring, the first
/// chunk of the table) are spread thin, few enough to take a second.
const CONNECTIONS: usize = 3_000;
/// Connections opened, then sent their request, then read, at a time: the
/// burst a reactor answers in one go and must hold buffers for.
const BURST: usize = 500;
/// The most resident bytes one idle connection may add (v4, v5), and one
/// parked request over an idle connection (every model that parks).
const BOUND: u64 = 1024;
/// The most one idle connection may add in v6: what tokio allocates per
/// connection, with some room.
const TOKIO_BOUND: u64 = 1536;
/// Client descriptors the tests of this binary may hold at once.
const FDS_NEEDED: u64 = 4 * CONNECTIONS as u64 + 200;

/// Idle connections on one reactor (worker) cost at most `bound` each.
fn idle_connections_cost_under(model: Model, bound: u64) {
    let test = format!("idle connections on --model {}", model.name());
    // The tests of this binary may run at once, each holding its clients.
    if skip_below_fd_limit(&test, FDS_NEEDED) {
        return;
    }
    // One reactor, holding every connection; no idle timeout on a slow machine.
    let flags = ["--reactors", "1", "--idle-timeout", "60s"];
    let server = ServeProcess::start(model, &flags);
    let pid = server.pid();
    // What a server allocates once it has served at all (its first pooled
    // buffers, its clock, its thread's allocator arena) is not per connection.
    let mut first = Client::connect(server.addr);
    assert_eq!(first.request(GET).status, 200);
    let before = settled_rss_kib(pid);

    let mut idle: Vec<Client> = Vec::with_capacity(CONNECTIONS);
    while idle.len() < CONNECTIONS {
        let mut burst: Vec<Client> = (0..BURST).map(|_| Client::connect(server.addr)).collect();
        for c in &mut burst {
            c.send(GET);
        }
        for c in &mut burst {
            assert_eq!(c.read_response().status, 200);
        }
        idle.extend(burst);
    }
    let after = settled_rss_kib(pid);
    let per_connection = after.saturating_sub(before) * 1024 / CONNECTIONS as u64;
    say(&format!(
        "{test}: RSS {before} KiB -> {after} KiB over {CONNECTIONS} idle connections: \
         {per_connection} B each (bound {bound} B)"
    ));
    assert!(
        per_connection < bound,
        "an idle connection costs {per_connection} B of RSS, over the bound of {bound} B"
    );
    // They are idle, not gone: the oldest and the newest still answer.
    let newest = idle.len() - 1;
    for c in [&mut first, &mut idle[0]] {
        assert_eq!(c.request(GET).status, 200);
    }
    assert_eq!(idle[newest].request(GET).status, 200);
}

/// The resident set of `pid` once two readings 50 ms apart agree (or after
/// 2 s): the server has answered everything, but may still be returning
/// buffers of sends that just completed.
fn settled_rss_kib(pid: u32) -> u64 {
    let mut last = procfs::status(pid, "VmRSS").unwrap();
    poll(Duration::from_secs(2), || {
        std::thread::sleep(Duration::from_millis(50));
        let now = procfs::status(pid, "VmRSS").unwrap();
        let settled = now == last;
        last = now;
        settled.then_some(())
    });
    last
}

/// Thousands of connections open at once, then each sends a request that
/// the handler parks for a second (`--work await:1s`): the RSS growth while
/// they are all parked, per connection, over the server with those
/// connections idle. A parked request holds no buffer (its head is parsed
/// and its reply not yet due), so this is its table entry's wait state.
fn parked_connections_cost_under_1_kib(model: Model) {
    let test = format!(
        "parked_connections_cost_under_1_kib on --model {}",
        model.name()
    );
    if skip_below_fd_limit(&test, FDS_NEEDED) {
        return;
    }
    let flags = [
        "--reactors",
        "1",
        "--idle-timeout",
        "60s",
        "--work",
        "await:1s",
    ];
    let server = ServeProcess::start(model, &flags);
    let pid = server.pid();
    let mut first = Client::connect(server.addr);
    assert_eq!(first.request(GET).status, 200);
    let mut clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::connect(server.addr))
        .collect();
    // Every connection accepted and idle.
    let accepted = poll(Duration::from_secs(10), || {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        (fds >= CONNECTIONS).then_some(())
    });
    assert!(accepted.is_some(), "not all connections were accepted");
    let idle = settled_rss_kib(pid);
    let sent_at = std::time::Instant::now();
    for c in &mut clients {
        c.send(GET);
    }
    // Read while every request is still parked (each waits a second).
    std::thread::sleep(Duration::from_millis(200));
    let parked = procfs::status(pid, "VmRSS").unwrap();
    let read_within = sent_at.elapsed();
    let per_connection = parked.saturating_sub(idle) * 1024 / CONNECTIONS as u64;
    say(&format!(
        "{test}: RSS {idle} KiB idle -> {parked} KiB with {CONNECTIONS} requests parked \
         (read {read_within:?} after sending): {per_connection} B more each (bound {BOUND} B)"
    ));
    assert!(
        read_within < Duration::from_millis(900),
        "too slow to read while every request is parked ({read_within:?})"
    );
    assert!(
        per_connection < BOUND,
        "a parked request costs {per_connection} B of RSS, over the bound of {BOUND} B"
    );
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.read_response().status, 200, "connection {i}");
    }
}

#[test]
fn event_parked_connections_cost_under_1_kib() {
    parked_connections_cost_under_1_kib(Model::Event);
}

#[test]
fn uring_parked_connections_cost_under_1_kib() {
    let model = Model::Uring;
    if !skip_unavailable(model, "uring_parked_connections_cost_under_1_kib") {
        parked_connections_cost_under_1_kib(model);
    }
}

#[test]
fn tokio_parked_connections_cost_under_1_kib() {
    parked_connections_cost_under_1_kib(Model::Tokio);
}

#[test]
fn event_idle_connections_cost_under_1_kib() {
    idle_connections_cost_under(Model::Event, BOUND);
}

#[test]
fn uring_idle_connections_cost_under_1_kib() {
    let model = Model::Uring;
    if !skip_unavailable(model, "uring_idle_connections_cost_under_1_kib") {
        idle_connections_cost_under(model, BOUND);
    }
}

#[test]
fn tokio_idle_connections_cost_under_1_5_kib() {
    idle_connections_cost_under(Model::Tokio, TOKIO_BOUND);
}

/// A client pipelines 100 requests for a 1 MiB body and reads nothing for a
/// while: the server answers the next buffered request only as the output
/// before it is written (`http::MAX_PENDING_OUTPUT`), so its memory grows by
/// a few bodies, not by one per request buffered (all 100 heads fit in one
/// read: 100 MiB of responses); then every response arrives, in order.
#[test]
fn a_client_pipelining_for_large_bodies_costs_a_few_bodies() {
    const REQUESTS: usize = 100;
    const BODY: u64 = 1024 * 1024;
    for model in Model::ALL {
        let test = "a_client_pipelining_for_large_bodies_costs_a_few_bodies";
        if skip_unavailable(model, test) {
            continue;
        }
        let server = ServeProcess::start(model, &["--body", "1m", "--reactors", "1"]);
        let pid = server.pid();
        let mut first = Client::connect(server.addr);
        assert_eq!(first.request(GET).status, 200);
        let before = settled_rss_kib(pid);
        let mut client = Client::connect(server.addr);
        client.send(&GET.repeat(REQUESTS));
        std::thread::sleep(Duration::from_millis(300));
        let held = settled_rss_kib(pid);
        let grown = held.saturating_sub(before) * 1024;
        say(&format!(
            "{test} on --model {}: RSS {before} KiB -> {held} KiB with {REQUESTS} requests \
             for 1 MiB buffered: {:.1} bodies",
            model.name(),
            grown as f64 / BODY as f64
        ));
        assert!(
            grown < 16 * BODY,
            "--model {}: {grown} bytes held for one client's buffered requests",
            model.name()
        );
        for i in 0..REQUESTS {
            let response = client.read_response();
            assert_eq!(response.status, 200, "response {i}");
            assert!(response.raw.len() as u64 > BODY, "response {i}");
        }
    }
}
