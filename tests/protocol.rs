//! The black-box suite every model must pass: the same bytes over a real
//! socket, the same bytes back. Each function takes the model and runs once
//! per model (see `per_model!` at the bottom).

#[macro_use]
mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use servelab::http::{render_date, Limits};
use servelab::models::Model;

// ---------------------------------------------------------------------------
// Routing and exact bytes

/// `GET /` is answered with exactly the seed's bytes and nothing after them:
/// the client half-closes, so everything the server sends before its close is
/// the response.
fn get_root_exact_bytes(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(GET);
    c.finish_writing();
    assert_eq!(mask_date(&c.read_until_close()), OK_RESPONSE);
}

/// The Date value is the current time, not just well-formed (the second may
/// tick between the server's clock read and ours).
fn date_header_is_current(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let before = unix_now();
    let r = c.request(GET);
    let after = unix_now();
    let date = r.header("Date").expect("Date header");
    assert!(
        (before..=after).any(|t| date.as_bytes() == render_date(t)),
        "Date {date:?} is not between {before} and {after}"
    );
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn unknown_path_is_404_and_kept_open(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let r = c.request(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.masked(), plain_response(404, "Not Found", None, None));
    c.assert_open();
}

fn post_root_is_405_with_allow_and_kept_open(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let r = c.request(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        r.masked(),
        plain_response(405, "Method Not Allowed", Some("GET, HEAD"), None)
    );
    c.assert_open();
}

/// HEAD gets the GET head (with `Content-Length: 2`) and no body: the next
/// pipelined response must start right after the head.
fn head_root_has_no_body(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    c.finish_writing();
    let head = OK_RESPONSE.strip_suffix("OK").unwrap();
    assert_eq!(
        mask_date(&c.read_until_close()),
        format!("{head}{OK_RESPONSE}")
    );
}

fn query_is_ignored_for_routing(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let r = c.request(b"GET /?a=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.masked(), OK_RESPONSE);
    let r = c.request(b"GET /x?a=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 404);
}

fn absolute_form_target_is_routed_by_path(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let r = c.request(b"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.masked(), OK_RESPONSE);
    let r = c.request(b"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 404);
}

fn options_star_is_405(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let r = c.request(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        r.masked(),
        plain_response(405, "Method Not Allowed", Some("GET, HEAD"), None)
    );
    c.assert_open();
}

// ---------------------------------------------------------------------------
// Large bodies (`serve --body`)

/// A server whose `GET /` answers `size` bytes.
fn start_with_body(model: Model, size: usize) -> (TestServer, &'static [u8]) {
    let body = servelab::route::leak_body(size);
    let config = servelab::models::ServerConfig {
        routes: servelab::route::Routes {
            body,
            ..Default::default()
        },
        ..config()
    };
    (start_with(model, config), body)
}

/// 16 KiB and 1 MiB bodies (the latter far over a socket's buffers, so the
/// server's writes are partial and it must wait for the client) arrive whole
/// and in order: `GET /` twice pipelined in one write with a HEAD between
/// them, then a 404, read only after a pause so that the server's output
/// backs up first. HEAD declares the body's length and sends none of it.
fn large_bodies_arrive_complete_and_in_order(model: Model) {
    for size in [16 << 10, 1 << 20] {
        let (server, body) = start_with_body(model, size);
        let mut c = server.connect();
        c.send(
            b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\
              HEAD / HTTP/1.1\r\nHost: t\r\n\r\n\
              GET / HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /x HTTP/1.1\r\nHost: t\r\n\r\n",
        );
        std::thread::sleep(Duration::from_millis(100));
        let length = size.to_string();
        for i in 0..2 {
            let r = c.read_response();
            assert_eq!(r.status, 200, "{size} bytes, GET {i}");
            assert_eq!(r.header("Content-Length"), Some(length.as_str()));
            assert!(r.body == body, "{size} bytes, GET {i}: the body differs");
            if i == 0 {
                let head = c.read_head_response();
                assert_eq!(head.status, 200);
                assert_eq!(head.header("Content-Length"), Some(length.as_str()));
                assert!(head.body.is_empty());
            }
        }
        assert_eq!(c.read_response().status, 404);
        c.assert_open();
        drop(c); // v1 serves one connection at a time
                 // A HEAD alone: its head is all that comes before the close.
        let mut c = server.connect();
        c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let rest = c.read_until_close();
        let text = String::from_utf8(rest).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
        assert!(text.contains(&format!("\r\nContent-Length: {size}\r\n")));
        assert!(text.ends_with("\r\n\r\n"), "HEAD sent a body: {text:?}");
    }
}

/// Several clients fetching a 1 MiB body at once, each reading slowly at
/// first, all get it whole: a connection whose output is backed up holds up
/// no other (the reactors' loops, v3's pool).
fn large_bodies_to_concurrent_clients(model: Model) {
    const CLIENTS: usize = 3;
    const ROUNDS: usize = 3;
    let (server, body) = start_with_body(model, 1 << 20);
    let addr = server.addr();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    // v1 serves one connection at a time: close each.
                    let mut c = Client::connect(addr);
                    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                    std::thread::sleep(Duration::from_millis(20));
                    let r = c.read_response();
                    assert_eq!(r.status, 200, "round {round}");
                    assert!(r.body == body, "round {round}: the body differs");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client lost its body");
    }
}

// ---------------------------------------------------------------------------
// Incremental and pipelined input

/// A request dribbled one byte per write (TCP_NODELAY, so one segment each)
/// is reassembled into exactly one response.
fn request_one_byte_at_a_time(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    for b in GET {
        c.send(std::slice::from_ref(b));
    }
    c.finish_writing();
    assert_eq!(mask_date(&c.read_until_close()), OK_RESPONSE);
}

/// Three requests in one write are answered in order; distinct statuses show
/// the order.
fn three_pipelined_gets_in_order(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /a HTTP/1.1\r\nHost: t\r\n\r\n\
          GET / HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let statuses: Vec<u16> = (0..3).map(|_| c.read_response().status).collect();
    assert_eq!(statuses, [200, 404, 200]);
    c.assert_open();
}

/// The body of a pipelined POST is skipped exactly by its Content-Length, so
/// the GET after it is parsed from the right byte.
fn pipelined_post_with_body_then_get(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 14\r\n\r\nGET /x HTTP/1.\
          GET / HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    assert_eq!(c.read_response().masked(), OK_RESPONSE);
    c.assert_open();
}

/// A chunked body with a chunk extension and a trailer is consumed to its
/// end, and the pipelined GET after it is answered.
fn pipelined_chunked_post_then_get(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          4;name=value\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n\
          GET / HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(c.read_response().status, 405);
    assert_eq!(c.read_response().masked(), OK_RESPONSE);
    c.assert_open();
}

/// Empty lines between pipelined requests are skipped (RFC 9112 §2.2), and
/// HEAD drops the body of a 404 too.
fn pipelined_with_empty_lines_and_head_404(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(b"\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n\r\n\r\nHEAD /x HTTP/1.1\r\nHost: t\r\n\r\n");
    c.send(GET);
    c.finish_writing();
    let not_found = plain_response(404, "Not Found", None, None);
    let head = not_found.strip_suffix("Not Found").unwrap();
    assert_eq!(
        mask_date(&c.read_until_close()),
        format!("{not_found}{head}{OK_RESPONSE}")
    );
}

/// A body larger than one read buffer, sent in several writes, is drained
/// exactly; the next request on the connection is answered.
fn large_body_across_reads_then_get(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let body_len = 100_000;
    c.send(format!("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: {body_len}\r\n\r\n").as_bytes());
    let chunk = [b'z'; 10_000];
    for _ in 0..body_len / chunk.len() {
        c.send(&chunk);
    }
    assert_eq!(c.read_response().status, 404);
    c.assert_open();
}

/// Responses already owed are sent before the error that ends the
/// connection, in order.
fn valid_requests_then_error_in_one_write(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/9.9\r\n\r\n");
    assert_eq!(c.read_response().masked(), OK_RESPONSE);
    assert_eq!(c.read_response().status, 404);
    let r = c.read_response();
    assert_eq!(r.status, 505);
    assert_eq!(r.header("Connection"), Some("close"));
    c.assert_closed();
}

/// Many pipelined requests, written by one thread while another reads, all
/// answered in order: the output batching never reorders or drops one.
fn many_pipelined_requests_with_concurrent_reader(model: Model) {
    const N: usize = 2_000;
    let server = start(model);
    let mut c = server.connect();
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut all = Vec::new();
        for i in 0..N {
            let path = if i % 3 == 1 { "/x" } else { "/" };
            all.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        }
        // Several writes of odd sizes, so requests straddle reads.
        for piece in all.chunks(1_337) {
            writer.write_all(piece).unwrap();
        }
    });
    for i in 0..N {
        let expected = if i % 3 == 1 { 404 } else { 200 };
        assert_eq!(c.read_response().status, expected, "response {i}");
    }
    sender.join().unwrap();
    c.assert_open();
}

/// `Expect: 100-continue` when the head alone decides the response (RFC 9110
/// §10.1.1): the final response comes at once, without a `100 Continue`
/// inviting a body the server would only discard, and says
/// `Connection: close`; the body is never read.
fn expect_100_continue_gets_the_final_response_at_once_with_close(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let r = c.read_response();
    assert_eq!(
        r.masked(),
        plain_response(405, "Method Not Allowed", Some("GET, HEAD"), Some("close"))
    );
    c.assert_closed();
}

/// A client that declares a body and waits for the answer before sending it
/// gets the answer: the response is decided by the head and sent at once.
/// The body is then read and discarded, and the connection stays usable.
fn declared_body_is_answered_before_it_is_sent(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n");
    let r = c.read_response();
    assert_eq!(
        r.masked(),
        plain_response(405, "Method Not Allowed", Some("GET, HEAD"), None)
    );
    c.send(b"hello");
    c.assert_open();
}

/// Pipelined order holds with early responses: a request whose bytes follow
/// an unfinished body is not answered until that body is complete, and then
/// it gets exactly its own response.
fn pipelined_request_waits_for_the_body_before_it(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\nGET ");
    assert_eq!(c.read_response().status, 404);
    c.assert_silent(Duration::from_millis(100));
    // "/ H\r\n" completes the body, then a whole request follows.
    c.send(b"/ H\r\n");
    c.send(b"\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response().masked(), OK_RESPONSE);
    c.assert_open();
}

/// A declared body longer than `MAX_DISCARD` is not worth reading: the
/// response says `Connection: close` and the server closes after it (the
/// client may stop sending as soon as it reads that).
fn declared_body_over_max_discard_is_answered_with_close(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let n = servelab::http::MAX_DISCARD + 1;
    c.send(format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {n}\r\n\r\n").as_bytes());
    let r = c.read_response();
    assert_eq!(
        r.masked(),
        plain_response(405, "Method Not Allowed", Some("GET, HEAD"), Some("close"))
    );
    c.assert_closed();
}

// ---------------------------------------------------------------------------
// Errors: the status, `Connection: close`, and the server closing the
// connection (the rest of the stream cannot be trusted).

/// Limits small enough that the limit tests send little data.
fn small_limits() -> Limits {
    Limits {
        max_request_line: 64,
        max_header_bytes: 128,
        max_headers: 4,
        max_body: 1024,
        ..Limits::default()
    }
}

/// Sends `request` to a fresh server with `limits` and asserts the exact
/// error response for `code`, with `Connection: close`, then the close.
fn assert_rejected(model: Model, limits: Limits, request: &[u8], code: u16, reason: &str) {
    let server = start_with(model, config_with(limits));
    let mut c = server.connect();
    c.send(request);
    let r = c.read_response();
    assert_eq!(
        r.masked(),
        plain_response(code, reason, None, Some("close")),
        "request {:?}",
        String::from_utf8_lossy(request)
    );
    c.assert_closed();
}

fn content_length_with_transfer_encoding_is_400(model: Model) {
    let req = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\
                Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_rejected(model, small_limits(), req, 400, "Bad Request");
}

fn differing_content_lengths_are_400(model: Model) {
    let req = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
    assert_rejected(model, small_limits(), req, 400, "Bad Request");
}

/// The response to a chunked request goes out at head time; a body that
/// then breaks the chunked framing ends the connection with nothing more
/// (a 400 now would be taken for the answer to the next request).
fn bad_chunk_size_closes_after_the_response(model: Model) {
    let req = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    assert_answered_then_closed(model, small_limits(), req, 405);
}

/// Sends `request` and expects one response with `code` (not saying
/// `Connection: close`: it was sent before the body went wrong), then the
/// close, with nothing after it even for a further request.
fn assert_answered_then_closed(model: Model, limits: Limits, request: &[u8], code: u16) {
    let server = start_with(model, config_with(limits));
    let mut c = server.connect();
    c.send(request);
    let r = c.read_response();
    assert_eq!(r.status, code, "{}", r.masked());
    assert_eq!(r.header("Connection"), None);
    let _ = c.stream.write_all(GET); // the server reads no more requests
    c.assert_closed();
}

fn long_request_line_is_414(model: Model) {
    let req = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(64));
    assert_rejected(model, small_limits(), req.as_bytes(), 414, "URI Too Long");
}

fn request_line_at_the_limit_is_served(model: Model) {
    // 64 bytes exactly: "GET /" + 50 + " HTTP/1.1" (9) = 64.
    let line = format!("GET /{} HTTP/1.1", "a".repeat(50));
    assert_eq!(line.len(), 64);
    let server = start_with(model, config_with(small_limits()));
    let mut c = server.connect();
    let r = c.request(format!("{line}\r\nHost: t\r\n\r\n").as_bytes());
    assert_eq!(r.status, 404);
    c.assert_open();
}

fn large_header_section_is_431(model: Model) {
    let req = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(150)
    );
    let reason = "Request Header Fields Too Large";
    assert_rejected(model, small_limits(), req.as_bytes(), 431, reason);
}

fn too_many_header_fields_is_431(model: Model) {
    let req = b"GET / HTTP/1.1\r\nHost: t\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    let reason = "Request Header Fields Too Large";
    assert_rejected(model, small_limits(), req, 431, reason);
}

/// With `Expect: 100-continue`, a declared body over the limit is refused
/// at once: no `100 Continue` invites the client to send it.
fn expect_continue_over_limit_is_413_without_continue(model: Model) {
    let req = b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2000\r\n\r\n";
    assert_rejected(model, small_limits(), req, 413, "Content Too Large");
}

/// Only the head is sent: the declared length alone must be refused, without
/// the server waiting for a body it will not accept.
fn declared_body_over_limit_is_413(model: Model) {
    let req = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n";
    assert_rejected(model, small_limits(), req, 413, "Content Too Large");
}

/// A chunked body is discarded up to `--max-body` (and `MAX_DISCARD`); one
/// that decodes past it ends the connection after the response sent at
/// head time.
fn chunked_body_over_limit_closes_after_the_response(model: Model) {
    let req = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n801\r\n";
    assert_answered_then_closed(model, small_limits(), req, 405);
}

fn unknown_transfer_coding_is_501(model: Model) {
    let req = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n";
    assert_rejected(model, small_limits(), req, 501, "Not Implemented");
}

fn http2_request_line_is_505(model: Model) {
    let req = b"GET / HTTP/2.0\r\nHost: t\r\n\r\n";
    assert_rejected(
        model,
        small_limits(),
        req,
        505,
        "HTTP Version Not Supported",
    );
}

fn http11_without_host_is_400(model: Model) {
    let req = b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n";
    assert_rejected(model, small_limits(), req, 400, "Bad Request");
}

fn space_before_colon_is_400(model: Model) {
    let req = b"GET / HTTP/1.1\r\nHost : t\r\n\r\n";
    assert_rejected(model, small_limits(), req, 400, "Bad Request");
}

/// After an error the server lingers: it drains what the client still
/// sends, but at most 256 KiB (or 500 ms), then closes. A client that keeps
/// writing as fast as loopback allows must therefore see its writes fail
/// after the 256 KiB plus what the two sockets' buffers hold (a few MiB),
/// long before the hundreds of MiB half a second of draining would take.
fn lingering_close_drains_at_most_256_kib(model: Model) {
    const BOUND: usize = 64 * 1024 * 1024;
    let server = start(model);
    let mut c = server.connect();
    let r = c.request(b"GET / HTTP/1.1\r\nHost : t\r\n\r\n");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("Connection"), Some("close"));
    let chunk = [b'x'; 64 * 1024];
    let mut written = 0;
    let ended = loop {
        match c.stream.write(&chunk) {
            Ok(n) => written += n,
            Err(e) => break e,
        }
        assert!(
            written < BOUND,
            "the server was still reading after {written} bytes of lingering"
        );
    };
    assert!(
        matches!(
            ended.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{ended:?} after {written} bytes"
    );
}

fn obs_fold_is_400(model: Model) {
    let req = b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  continued\r\n\r\n";
    assert_rejected(model, small_limits(), req, 400, "Bad Request");
}

fn bare_cr_is_400(model: Model) {
    let req = b"GET / HTTP/1.1\r\nHost: t\rX: 1\r\n\r\n";
    assert_rejected(model, small_limits(), req, 400, "Bad Request");
}

fn control_character_in_header_value_is_400(model: Model) {
    let req = b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n";
    assert_rejected(model, small_limits(), req, 400, "Bad Request");
}

/// Broken framing is found before routing: `POST /` would be 405, but a
/// request whose length cannot be trusted is 400.
fn post_with_broken_framing_is_400_not_405(model: Model) {
    let req = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n";
    assert_rejected(model, small_limits(), req, 400, "Bad Request");
}

/// The defaults: an 8 KiB request line is fine, one byte more is 414.
fn default_limits_request_line(model: Model) {
    let limit = Limits::default().max_request_line;
    assert_eq!(limit, 8 * 1024);
    let target = |len: usize| format!("/{}", "a".repeat(len - "GET  HTTP/1.1".len() - 1));
    let server = start(model);
    let mut c = server.connect();
    let ok = format!("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", target(limit));
    assert_eq!(ok.find('\r'), Some(limit));
    assert_eq!(c.request(ok.as_bytes()).status, 404);
    drop(c);
    let over = format!("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", target(limit + 1));
    assert_rejected(
        model,
        Limits::default(),
        over.as_bytes(),
        414,
        "URI Too Long",
    );
}

/// Exactly max_headers fields are accepted (one more is 431, above).
fn header_count_at_the_limit_is_served(model: Model) {
    let server = start_with(model, config_with(small_limits()));
    let mut c = server.connect();
    let r = c.request(b"GET / HTTP/1.1\r\nHost: t\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    assert_eq!(r.status, 200);
    c.assert_open();
}

/// The defaults: a header section over 8 KiB is 431.
fn default_limits_header_section(model: Model) {
    let req = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(8 * 1024)
    );
    let reason = "Request Header Fields Too Large";
    assert_rejected(model, Limits::default(), req.as_bytes(), 431, reason);
}

/// The defaults, both at once: an 8,192-byte request line and an 8,192-byte
/// header section (its final CRLF included) make the largest head accepted.
fn head_exactly_at_both_default_limits_is_served(model: Model) {
    let limits = Limits::default();
    let line = format!("GET /{} HTTP/1.1", "a".repeat(limits.max_request_line - 14));
    assert_eq!(line.len(), limits.max_request_line);
    let filler = limits.max_header_bytes - "Host: t\r\nX: \r\n\r\n".len();
    let headers = format!("Host: t\r\nX: {}\r\n\r\n", "v".repeat(filler));
    assert_eq!(headers.len(), limits.max_header_bytes);
    let server = start(model);
    let mut c = server.connect();
    let r = c.request(format!("{line}\r\n{headers}").as_bytes());
    assert_eq!(r.status, 404);
    c.assert_open();
    drop(c);
    // One byte more in the header section is 431.
    let over = format!("{line}\r\n{}", headers.replacen("X: ", "X: v", 1));
    let reason = "Request Header Fields Too Large";
    assert_rejected(model, limits, over.as_bytes(), 431, reason);
}

// ---------------------------------------------------------------------------
// Keep-alive rules

fn http11_keeps_alive_by_default(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    for _ in 0..3 {
        assert_eq!(c.request(GET).masked(), OK_RESPONSE);
    }
}

fn connection_close_is_honoured(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let r = c.request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.masked(), plain_response(200, "OK", None, Some("close")));
    c.assert_closed();
}

fn http10_closes_by_default(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let r = c.request(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_ne!(r.header("Connection"), Some("keep-alive"));
    c.assert_closed();
}

fn http10_keep_alive_is_honoured(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    let req = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let r = c.request(req);
    assert_eq!(
        r.masked(),
        plain_response(200, "OK", None, Some("keep-alive"))
    );
    let r = c.request(req);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("keep-alive"));
}

// ---------------------------------------------------------------------------
// Timeouts, with short configured values. Lower bounds show the deadline was
// waited for; upper bounds are loose and only tell one deadline from another.

/// `limits` with the two deadlines set.
fn deadlines(header_read_ms: u64, idle_ms: u64) -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(header_read_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        ..Limits::default()
    }
}

/// Asserts `elapsed` is at least `at_least` (less 10% for timer rounding)
/// and below `below`.
fn assert_waited(elapsed: Duration, at_least: Duration, below: Duration) {
    assert!(
        elapsed >= at_least * 9 / 10 && elapsed < below,
        "took {elapsed:?}, expected about {at_least:?} and under {below:?}"
    );
}

/// After a response, a silent keep-alive connection is closed once
/// idle_timeout passes, with no bytes (an idle close is not a 408).
fn idle_keep_alive_connection_is_closed(model: Model) {
    let idle = Duration::from_millis(200);
    let server = start_with(model, config_with(deadlines(5_000, 200)));
    let mut c = server.connect();
    // Taken before the request: the server's idle period starts after it,
    // so this is a sound lower bound however late this thread wakes up.
    let since = Instant::now();
    assert_eq!(c.request(GET).status, 200);
    c.assert_closed();
    assert_waited(since.elapsed(), idle, Duration::from_secs(4));
}

/// A connection that never sends a byte is idle too.
fn silent_new_connection_is_closed(model: Model) {
    let server = start_with(model, config_with(deadlines(5_000, 200)));
    let since = Instant::now();
    let mut c = server.connect();
    c.assert_closed();
    assert_waited(
        since.elapsed(),
        Duration::from_millis(200),
        Duration::from_secs(4),
    );
}

/// A begun head that stops arriving is answered 408 with `Connection: close`
/// after header_read_timeout (well before the idle timeout), then closed.
fn partial_head_gets_408(model: Model) {
    answered_408_after(model, deadlines(200, 5_000), b"GET / HTTP/1.1\r\nHo");
}

/// Sends `bytes` and expects exactly a 408 with `Connection: close` no
/// sooner than the shorter of the two deadlines, then the close.
fn answered_408_after(model: Model, limits: Limits, bytes: &[u8]) {
    let shortest = limits.header_read_timeout.min(limits.idle_timeout);
    let server = start_with(model, config_with(limits));
    let mut c = server.connect();
    let since = Instant::now();
    c.send(bytes);
    let r = c.read_response();
    assert_waited(since.elapsed(), shortest, Duration::from_secs(4));
    assert_eq!(
        r.masked(),
        plain_response(408, "Request Timeout", None, Some("close"))
    );
    c.assert_closed();
}

/// A slowloris client sending one header byte every 50 ms does not extend
/// the header deadline: it still gets 408 at header_read_timeout.
fn slowloris_is_cut_off_at_header_read_timeout(model: Model) {
    let server = start_with(model, config_with(deadlines(300, 5_000)));
    let mut c = server.connect();
    let since = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let mut stream = c.stream.try_clone().unwrap();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            // Bounded: 200 bytes at 50 ms is 10 s, far past any deadline here.
            for _ in 0..200 {
                if stop.load(Ordering::Relaxed) || stream.write_all(b"a").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let r = c.read_response();
    let elapsed = since.elapsed();
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    assert_waited(elapsed, Duration::from_millis(300), Duration::from_secs(4));
    assert_eq!(r.status, 408);
    assert_eq!(r.header("Connection"), Some("close"));
    c.assert_closed();
}

/// A body that stops arriving is given up on once idle_timeout passes
/// without progress: its response went out at head time, so the connection
/// is just closed (a 408 would answer a request that was answered already).
fn stalled_body_is_closed_after_idle_timeout(model: Model) {
    let server = start_with(model, config_with(deadlines(5_000, 200)));
    let mut c = server.connect();
    let since = Instant::now();
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf");
    assert_eq!(c.read_response().status, 405);
    c.assert_closed();
    assert_waited(
        since.elapsed(),
        Duration::from_millis(200),
        Duration::from_secs(4),
    );
}

/// The header deadline runs from the first byte of a head, not from the
/// start of the idle period before it: a keep-alive connection that idles
/// longer than header_read_timeout and then sends a head in two pieces is
/// served, not answered 408.
fn header_deadline_starts_with_the_head_not_the_idle_period(model: Model) {
    let server = start_with(model, config_with(deadlines(200, 5_000)));
    let mut c = server.connect();
    assert_eq!(c.request(GET).status, 200);
    std::thread::sleep(Duration::from_millis(300));
    c.send(b"GET / HTTP/1.1\r\n");
    // Let the first piece be read on its own before the rest arrives.
    std::thread::sleep(Duration::from_millis(30));
    c.send(b"Host: t\r\n\r\n");
    assert_eq!(c.read_response().masked(), OK_RESPONSE);
}

// ---------------------------------------------------------------------------
// Graceful shutdown in-process

/// With an idle keep-alive connection open, shutdown returns true well
/// within shutdown_timeout, the client sees EOF, and the port is closed.
fn shutdown_closes_idle_keep_alive_connections(model: Model) {
    let server = start(model); // shutdown_timeout 3 s
    let addr = server.addr();
    let mut c = server.connect();
    assert_eq!(c.request(GET).status, 200);
    let since = Instant::now();
    assert!(server.shutdown(), "some thread did not finish");
    assert!(
        since.elapsed() < Duration::from_secs(1),
        "{:?}",
        since.elapsed()
    );
    c.assert_closed();
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
}

/// A request the server has received when shutdown begins is still
/// answered before the connection closes. The connection has already been
/// served once, so it is surely registered with a thread (not queued).
fn shutdown_still_answers_received_request(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    assert_eq!(c.request(GET).status, 200);
    c.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    // Loopback delivers into the server's receive queue within the write;
    // the pause only makes that certain on a loaded machine.
    std::thread::sleep(Duration::from_millis(20));
    assert!(server.shutdown());
    assert_eq!(c.read_response().status, 404);
    c.assert_closed();
}

// ---------------------------------------------------------------------------
// Faults

/// The path on which the test handler panics.
const PANIC_PATH: &str = "/panic";

/// Keeps the injected panics' messages (one per panicking request, printed by
/// the server threads, which the test harness does not capture) out of the
/// test output; every other panic still reaches the default hook.
fn quiet_injected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.payload().downcast_ref::<String>();
            if !message.is_some_and(|m| m.starts_with("injected fault")) {
                default(info);
            }
        }));
    });
}

/// A handler that panics costs its request and its connection, not the
/// thread, worker or reactor that ran it: the panicking request gets exactly
/// `500` with `Connection: close` and a close, clients loading the server
/// meanwhile lose nothing, and afterwards every serving thread still serves
/// (v1: its one thread; v3: all `pool_size` workers at once; v4: new
/// connections on its reactors).
fn panicking_handler_costs_one_request_not_a_thread(model: Model) {
    const LOADERS: usize = 3; // v3 has 4 workers: one is left for the panics
    const MIN_REQUESTS: usize = 100;
    const MAX_REQUESTS: usize = 50_000; // the bound if the panics never end
    const PANICS: usize = 8;
    quiet_injected_panics();
    let config = servelab::models::ServerConfig {
        routes: servelab::route::Routes {
            panic_path: Some(PANIC_PATH),
            ..Default::default()
        },
        ..config()
    };
    let pool_size = config.pool_size;
    let server = start_with(model, config);
    let addr = server.addr();
    // The loaders are all under way before the first panic and go on until
    // the last one is answered, so every panic happens under load.
    let started = Arc::new(std::sync::Barrier::new(LOADERS + 1));
    let panics_done = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = (0..LOADERS)
        .map(|_| {
            let (started, panics_done) = (Arc::clone(&started), Arc::clone(&panics_done));
            std::thread::spawn(move || {
                // v1 serves one connection at a time: a kept-alive loader
                // would hold it, so there each request has its own.
                let mut kept = (!is_sequential(model)).then(|| Client::connect(addr));
                for i in 0..MAX_REQUESTS {
                    match kept.as_mut() {
                        Some(c) => assert_eq!(c.request(GET).masked(), OK_RESPONSE, "request {i}"),
                        None => {
                            let mut c = Client::connect(addr);
                            let r = c
                                .request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                            assert_eq!(r.status, 200, "request {i}");
                        }
                    }
                    if i == 0 {
                        started.wait();
                    }
                    if i >= MIN_REQUESTS && panics_done.load(Ordering::Relaxed) {
                        return i + 1;
                    }
                }
                panic!("the panicking requests did not finish");
            })
        })
        .collect();
    started.wait();
    let internal_error = plain_response(500, "Internal Server Error", None, Some("close"));
    for _ in 0..PANICS {
        let mut c = server.connect();
        let r = c.request(format!("GET {PANIC_PATH} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert_eq!(r.masked(), internal_error);
        c.assert_closed();
    }
    panics_done.store(true, Ordering::Relaxed);
    for loader in loaders {
        let served = loader.join().expect("a loading client lost a request");
        assert!(served > MIN_REQUESTS);
    }
    let survivors = if is_sequential(model) { 1 } else { pool_size };
    let mut held: Vec<Client> = (0..survivors).map(|_| server.connect()).collect();
    for c in &mut held {
        c.assert_open();
    }
}

per_model!(
    lingering_close_drains_at_most_256_kib,
    get_root_exact_bytes,
    date_header_is_current,
    unknown_path_is_404_and_kept_open,
    post_root_is_405_with_allow_and_kept_open,
    head_root_has_no_body,
    query_is_ignored_for_routing,
    absolute_form_target_is_routed_by_path,
    options_star_is_405,
    large_bodies_arrive_complete_and_in_order,
    large_bodies_to_concurrent_clients,
    request_one_byte_at_a_time,
    three_pipelined_gets_in_order,
    pipelined_post_with_body_then_get,
    pipelined_chunked_post_then_get,
    expect_100_continue_gets_the_final_response_at_once_with_close,
    declared_body_is_answered_before_it_is_sent,
    pipelined_request_waits_for_the_body_before_it,
    declared_body_over_max_discard_is_answered_with_close,
    pipelined_with_empty_lines_and_head_404,
    large_body_across_reads_then_get,
    valid_requests_then_error_in_one_write,
    expect_continue_over_limit_is_413_without_continue,
    stalled_body_is_closed_after_idle_timeout,
    content_length_with_transfer_encoding_is_400,
    differing_content_lengths_are_400,
    bad_chunk_size_closes_after_the_response,
    long_request_line_is_414,
    request_line_at_the_limit_is_served,
    large_header_section_is_431,
    too_many_header_fields_is_431,
    declared_body_over_limit_is_413,
    chunked_body_over_limit_closes_after_the_response,
    unknown_transfer_coding_is_501,
    http2_request_line_is_505,
    http11_without_host_is_400,
    space_before_colon_is_400,
    obs_fold_is_400,
    bare_cr_is_400,
    control_character_in_header_value_is_400,
    post_with_broken_framing_is_400_not_405,
    default_limits_request_line,
    default_limits_header_section,
    head_exactly_at_both_default_limits_is_served,
    header_count_at_the_limit_is_served,
    many_pipelined_requests_with_concurrent_reader,
    http11_keeps_alive_by_default,
    connection_close_is_honoured,
    http10_closes_by_default,
    http10_keep_alive_is_honoured,
    idle_keep_alive_connection_is_closed,
    silent_new_connection_is_closed,
    partial_head_gets_408,
    slowloris_is_cut_off_at_header_read_timeout,
    header_deadline_starts_with_the_head_not_the_idle_period,
    shutdown_closes_idle_keep_alive_connections,
    shutdown_still_answers_received_request,
    panicking_handler_costs_one_request_not_a_thread,
);

/// The Date check behind every exact-bytes comparison rejects what is not a
/// 29-byte IMF-fixdate (else a broken Date would be masked away unseen).
#[test]
fn date_mask_rejects_malformed_dates() {
    assert!(is_imf_fixdate(b"Sun, 06 Nov 1994 08:49:37 GMT"));
    for bad in [
        &b"Sun, 06 Nov 1994 08:49:37 UTC"[..],
        b"Sunday, 06-Nov-94 08:49:37 GMT",
        b"Sun, 6 Nov 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1994 24:49:37 GMT",
        b"Sun, 00 Nov 1994 08:49:37 GMT",
        b"Xyz, 06 Nov 1994 08:49:37 GMT",
    ] {
        assert!(!is_imf_fixdate(bad), "{:?}", String::from_utf8_lossy(bad));
    }
    let good = b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n";
    assert_eq!(mask_date(good), "HTTP/1.1 200 OK\r\nDate: <date>\r\n\r\n");
    for bad in [
        &b"HTTP/1.1 200 OK\r\nDate: yesterday\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMTX\r\n\r\n",
    ] {
        assert!(std::panic::catch_unwind(|| mask_date(bad)).is_err());
    }
}
