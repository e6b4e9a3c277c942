//! The black-box suite every model must pass: the same bytes over a real
//! socket, the same bytes back. Each function takes the model and runs once
//! per model (see `per_model!` at the bottom).

#[macro_use]
mod common;

use common::*;
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

/// `Expect: 100-continue` with the body withheld: the interim response comes
/// first, then, once the body is sent, the final one.
fn expect_100_continue(model: Model) {
    let server = start(model);
    let mut c = server.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let interim = c.read_response();
    assert_eq!(interim.raw, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"hello");
    let r = c.read_response();
    assert_eq!(
        r.masked(),
        plain_response(405, "Method Not Allowed", Some("GET, HEAD"), None)
    );
    c.assert_open();
}

per_model!(
    get_root_exact_bytes,
    unknown_path_is_404_and_kept_open,
    post_root_is_405_with_allow_and_kept_open,
    head_root_has_no_body,
    query_is_ignored_for_routing,
    absolute_form_target_is_routed_by_path,
    options_star_is_405,
    request_one_byte_at_a_time,
    three_pipelined_gets_in_order,
    pipelined_post_with_body_then_get,
    pipelined_chunked_post_then_get,
    expect_100_continue,
);
