//! What an idle keep-alive connection costs a reactor model (v4, v5) or v6
//! (tokio, a task per connection) in memory: the growth of the server's resident set over thousands of
//! connections that each completed one request, per connection.
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
//! 1.2 KiB measured, held to [`TOKIO_BOUND`]. Resident memory does not depend on timing, so the test holds on a
//! loaded machine; it waits for the figure to settle before reading it.

mod common;

use std::time::Duration;

use common::*;
use servelab::models::Model;

/// Idle connections measured: enough that fixed costs (the ring, the first
/// chunk of the table) are spread thin, few enough to take a second.
const CONNECTIONS: usize = 3_000;
/// Connections opened, then sent their request, then read, at a time: the
/// burst a reactor answers in one go and must hold buffers for.
const BURST: usize = 500;
/// The most resident bytes one idle connection may add (v4, v5).
const BOUND: u64 = 1024;
/// The same for v6: what tokio allocates per connection, with some room.
const TOKIO_BOUND: u64 = 1536;

fn idle_connections_cost_little(model: Model) {
    let test = format!("idle connections on --model {}", model.name());
    let limit = raise_fd_limit();
    // The tests of this binary may run at once, each holding its clients.
    let needed = 3 * CONNECTIONS as u64 + 200;
    if limit < needed {
        say(&format!(
            "skipped {test}: RLIMIT_NOFILE hard limit {limit} is below {needed} (raise it: ulimit -Hn)"
        ));
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
    let bound = match model {
        Model::Tokio => TOKIO_BOUND,
        _ => BOUND,
    };
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
    let mut last = status_kib(pid, "VmRSS");
    poll(Duration::from_secs(2), || {
        std::thread::sleep(Duration::from_millis(50));
        let now = status_kib(pid, "VmRSS");
        let settled = now == last;
        last = now;
        settled.then_some(())
    });
    last
}

#[test]
fn event_idle_connections_cost_under_1_kib() {
    idle_connections_cost_little(Model::Event);
}

#[test]
fn uring_idle_connections_cost_under_1_kib() {
    let model = Model::Uring;
    if !skip_unavailable(model, "uring_idle_connections_cost_under_1_kib") {
        idle_connections_cost_little(model);
    }
}

#[test]
fn tokio_idle_connections_cost_under_1_5_kib() {
    idle_connections_cost_little(Model::Tokio);
}
