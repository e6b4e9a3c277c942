//! Hostile requests, written from the requirements of RFC 9112 (message
//! syntax and framing) and RFC 9110 (semantics), each with the statuses it
//! must get and what must become of the connection after them. Every model
//! runs the whole table (`per_model!`, one test per category).
//!
//! Each row is sent on a fresh connection. After its expected responses the
//! connection must either be closed (with nothing more sent, even when a
//! further request is written) or be in step: a following `GET /` gets
//! exactly its own response and nothing else. So no row can leave the
//! stream desynchronised without failing.
//!
//! The coverage by category prints with
//! `cargo test --test hostile coverage -- --nocapture`.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use common::*;
use servelab::http::{Limits, MAX_DISCARD};
use servelab::models::{Model, ServerConfig};

/// The families of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    /// Transfer-Encoding alone, with Content-Length, and obfuscated.
    TransferEncoding,
    /// Content-Length values: signs, spaces, hex, overflow, lists.
    ContentLength,
    /// The chunked framing: sizes, line endings, extensions, trailers.
    Chunked,
    /// Methods, request targets, versions.
    RequestLine,
    /// Field lines: colons, whitespace, control and high bytes, limits.
    FieldSyntax,
    /// Host presence and grammar, and absolute-form authorities.
    Host,
    /// Bytes after a body: they parse as the next request, and only then.
    Smuggling,
    /// Early responses: bodies not waited for, Expect, the drain limit.
    EarlyResponse,
}

/// What must become of the connection after the expected responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum After {
    /// Kept open and in step: a following request gets its own response.
    Open,
    /// The last response says `Connection: close`; then the server closes.
    Close,
    /// The server closes with nothing more after responses that did not
    /// announce it: they went out at head time, before the body broke.
    Cut,
}

/// One hostile request.
struct Case {
    category: Category,
    /// What it tries, in a few words.
    name: &'static str,
    /// The requirement it checks.
    rfc: &'static str,
    request: Vec<u8>,
    /// The statuses of the responses, in order.
    expect: &'static [u16],
    after: After,
}

// ---------------------------------------------------------------------------
// Request builders

/// `POST /` with `fields` (CRLF-separated lines, may be empty) and `body`.
fn post(fields: &[u8], body: &[u8]) -> Vec<u8> {
    let mut r = b"POST / HTTP/1.1\r\nHost: t\r\n".to_vec();
    if !fields.is_empty() {
        r.extend_from_slice(fields);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

/// `POST /` with one `Transfer-Encoding` field of `value`, then `body`.
fn te(value: &[u8], body: &[u8]) -> Vec<u8> {
    post(&[&b"Transfer-Encoding: "[..], value].concat(), body)
}

/// `POST /` with one `Content-Length` field of `value`, then `body`.
fn cl(value: &[u8], body: &[u8]) -> Vec<u8> {
    post(&[&b"Content-Length: "[..], value].concat(), body)
}

/// `POST /` with a chunked body whose bytes are `body`.
fn chunked(body: &[u8]) -> Vec<u8> {
    te(b"chunked", body)
}

/// A valid chunked body: `hello`, then the last chunk.
const CHUNKED_HELLO: &[u8] = b"5\r\nhello\r\n0\r\n\r\n";

/// `line` as the request line, then `Host: t` and the end of the head.
fn line(line: &[u8]) -> Vec<u8> {
    [line, b"\r\nHost: t\r\n\r\n"].concat()
}

/// `GET /` with `fields` (CRLF-separated lines) after `Host: t`.
fn get_with(fields: &[u8]) -> Vec<u8> {
    [&b"GET / HTTP/1.1\r\nHost: t\r\n"[..], fields, b"\r\n\r\n"].concat()
}

/// `GET /` with `Host: value`.
fn host(value: &[u8]) -> Vec<u8> {
    [&b"GET / HTTP/1.1\r\nHost: "[..], value, b"\r\n\r\n"].concat()
}

/// A request answered 404, to show which bytes parse as a request.
const GET_X: &[u8] = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n";

fn case(
    category: Category,
    name: &'static str,
    rfc: &'static str,
    request: impl Into<Vec<u8>>,
    expect: &'static [u16],
    after: After,
) -> Case {
    Case {
        category,
        name,
        rfc,
        request: request.into(),
        expect,
        after,
    }
}

// ---------------------------------------------------------------------------
// The table

/// Every row, grouped by category (kept one row per call: a table reads
/// better than what rustfmt would make of it).
#[rustfmt::skip]
fn table() -> Vec<Case> {
    use After::*;
    use Category::*;
    let t = TransferEncoding;
    let mut rows = vec![
        // --- Transfer-Encoding: conflicts, codings, obfuscation -----------
        case(t, "chunked (control)", "9112 7.1", chunked(CHUNKED_HELLO), &[405], Open),
        case(t, "Content-Length then Transfer-Encoding", "9112 6.1, 6.3",
            post(b"Content-Length: 5\r\nTransfer-Encoding: chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "Transfer-Encoding then Content-Length", "9112 6.1, 6.3",
            post(b"Transfer-Encoding: chunked\r\nContent-Length: 15", CHUNKED_HELLO), &[400], Close),
        case(t, "Transfer-Encoding with Content-Length: 0", "9112 6.1",
            post(b"Transfer-Encoding: chunked\r\nContent-Length: 0", CHUNKED_HELLO), &[400], Close),
        case(t, "lower-case field name", "9110 5.1",
            post(b"transfer-encoding: chunked", CHUNKED_HELLO), &[405], Open),
        case(t, "upper-case name and coding", "9110 5.1, 9112 7",
            post(b"TRANSFER-ENCODING: CHUNKED", CHUNKED_HELLO), &[405], Open),
        case(t, "tab as OWS before the value", "9110 5.5",
            post(b"Transfer-Encoding:\tchunked", CHUNKED_HELLO), &[405], Open),
        case(t, "OWS after the value", "9110 5.5",
            post(b"Transfer-Encoding: chunked \t", CHUNKED_HELLO), &[405], Open),
        case(t, "empty list elements", "9110 5.6.1",
            te(b", ,chunked", CHUNKED_HELLO), &[405], Open),
        case(t, "space before the colon", "9112 5.1",
            post(b"Transfer-Encoding : chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "vertical tab before the value", "9110 5.5",
            te(b"\x0bchunked", CHUNKED_HELLO), &[400], Close),
        case(t, "vertical tab after the value", "9110 5.5",
            te(b"chunked\x0b", CHUNKED_HELLO), &[400], Close),
        case(t, "vertical tab in the name", "9110 5.1",
            post(b"Transfer-Encoding\x0b: chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "NUL before the value", "9110 5.5",
            te(b"\x00chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "NUL after the value", "9110 5.5",
            te(b"chunked\x00", CHUNKED_HELLO), &[400], Close),
        case(t, "0xA0 before the value", "9112 7, 9110 5.6.2",
            te(b"\xa0chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "0xA0 after the value", "9112 7, 9110 5.6.2",
            te(b"chunked\xa0", CHUNKED_HELLO), &[400], Close),
        case(t, "UTF-8 no-break space before the value", "9112 7",
            te(b"\xc2\xa0chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "0xFF inside the coding", "9112 7",
            te(b"chunk\xffed", CHUNKED_HELLO), &[400], Close),
        case(t, "0xA0 after the name", "9110 5.1",
            post(b"Transfer-Encoding\xa0: chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "0xA0 before the name", "9110 5.1",
            post(b"\xa0Transfer-Encoding: chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "leading space on the field line (obs-fold)", "9112 5.2",
            post(b" Transfer-Encoding: chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "folded onto the previous field", "9112 5.2",
            post(b"X: y\r\n Transfer-Encoding: chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "value folded onto a second line", "9112 5.2",
            post(b"Transfer-Encoding:\r\n chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "space inside the coding", "9112 7",
            te(b"chunk ed", CHUNKED_HELLO), &[400], Close),
        case(t, "quoted coding", "9112 7",
            te(b"\"chunked\"", CHUNKED_HELLO), &[400], Close),
        case(t, "empty value", "9112 6.1",
            te(b"", CHUNKED_HELLO), &[400], Close),
        case(t, "only commas", "9112 6.1",
            te(b" , ", CHUNKED_HELLO), &[400], Close),
        case(t, "chunked twice in one field", "9112 6.1",
            te(b"chunked, chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "chunked twice in two fields", "9112 6.1",
            post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "chunked not last", "9112 6.3",
            te(b"chunked, gzip", CHUNKED_HELLO), &[400], Close),
        case(t, "chunked not last across fields", "9112 6.3",
            post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip", CHUNKED_HELLO), &[400], Close),
        case(t, "identity after chunked", "9112 6.3",
            te(b"chunked, identity", CHUNKED_HELLO), &[400], Close),
        case(t, "parameter on chunked", "9112 7",
            te(b"chunked;q=1", CHUNKED_HELLO), &[400], Close),
        case(t, "0xA0 in a parameter's quoted value", "9110 5.6.4",
            te(b"gzip;a=\"\xa0\", chunked", CHUNKED_HELLO), &[400], Close),
        case(t, "unknown coding", "9112 6.1",
            te(b"gzip", CHUNKED_HELLO), &[501], Close),
        case(t, "unknown coding before chunked", "9112 6.1",
            te(b"gzip, chunked", CHUNKED_HELLO), &[501], Close),
        case(t, "unknown coding in an earlier field", "9112 6.1",
            post(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", CHUNKED_HELLO), &[501], Close),
        case(t, "identity (no longer a transfer coding)", "9112 6.1",
            te(b"identity", CHUNKED_HELLO), &[501], Close),
        case(t, "identity before chunked", "9112 6.1",
            te(b"identity, chunked", CHUNKED_HELLO), &[501], Close),
        case(t, "a coding that merely contains chunked", "9112 6.1",
            te(b"xchunked", CHUNKED_HELLO), &[501], Close),
        case(t, "Transfer-Encoding in HTTP/1.0", "9112 6.1",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
            &[400], Close),
        case(t, "underscore name is another field: the body parses as a request", "9110 5.1",
            post(b"Transfer_Encoding: chunked", CHUNKED_HELLO), &[405, 400], Close),
    ];

    let c = ContentLength;
    rows.extend([
        case(c, "Content-Length (control)", "9110 8.6", cl(b"5", b"hello"), &[405], Open),
        case(c, "lower-case name, no space", "9110 5.1",
            post(b"content-length:5", b"hello"), &[405], Open),
        case(c, "OWS around the value", "9110 5.5",
            post(b"Content-Length: \t5 \t", b"hello"), &[405], Open),
        case(c, "leading zeros", "9110 8.6", cl(b"0005", b"hello"), &[405], Open),
        case(c, "equal values as a list in one field", "9110 8.6",
            cl(b"1000,1000", &[b'a'; 1000]), &[400], Close),
        case(c, "equal values as a list in one field, with OWS", "9110 8.6",
            cl(b"1000, 1000", &[b'a'; 1000]), &[400], Close),
        case(c, "a list of one value and an empty element", "9110 8.6",
            cl(b"5,", b"hello"), &[400], Close),
        case(c, "equal values in two fields", "9110 8.6",
            post(b"Content-Length: 5\r\nContent-Length: 5", b"hello"), &[405], Open),
        case(c, "different values in one field", "9110 8.6, 9112 6.3",
            cl(b"5, 6", b"hello!"), &[400], Close),
        case(c, "different values in two fields", "9110 8.6, 9112 6.3",
            post(b"Content-Length: 5\r\nContent-Length: 6", b"hello!"), &[400], Close),
        case(c, "a list with a different value in a second field", "9112 6.3",
            post(b"Content-Length: 5\r\nContent-Length: 5, 6", b"hello!"), &[400], Close),
        case(c, "plus sign", "9110 8.6", cl(b"+5", b"hello"), &[400], Close),
        case(c, "minus sign", "9110 8.6", cl(b"-5", b"hello"), &[400], Close),
        case(c, "hex", "9110 8.6", cl(b"0x5", b"hello"), &[400], Close),
        case(c, "decimal point", "9110 8.6", cl(b"5.0", b"hello"), &[400], Close),
        case(c, "exponent", "9110 8.6", cl(b"5e0", b"hello"), &[400], Close),
        case(c, "digit separator", "9110 8.6", cl(b"1_0", b"0123456789"), &[400], Close),
        case(c, "space between digits", "9110 8.6", cl(b"1 0", b"0123456789"), &[400], Close),
        case(c, "vertical tab before", "9110 5.5", cl(b"\x0b5", b"hello"), &[400], Close),
        case(c, "NUL after", "9110 5.5", cl(b"5\x00", b"hello"), &[400], Close),
        case(c, "0xA0 after", "9110 8.6", cl(b"5\xa0", b"hello"), &[400], Close),
        case(c, "0xA0 before", "9110 8.6", cl(b"\xa05", b"hello"), &[400], Close),
        case(c, "non-ASCII digit", "9110 8.6", cl("\u{0665}".as_bytes(), b"hello"), &[400], Close),
        case(c, "empty", "9110 8.6", cl(b"", b""), &[400], Close),
        case(c, "only a comma", "9110 8.6", cl(b",", b""), &[400], Close),
        case(c, "space before the colon", "9112 5.1",
            post(b"Content-Length : 5", b"hello"), &[400], Close),
        case(c, "overflowing u64", "9110 8.6", cl(b"18446744073709551616", b""), &[400], Close),
        case(c, "far past u64", "9110 8.6", cl(b"99999999999999999999999999", b""), &[400], Close),
        case(c, "largest u64: well-formed, over the limit", "9110 15.5.14",
            cl(b"18446744073709551615", b""), &[413], Close),
        case(c, "one byte over --max-body", "9110 15.5.14",
            cl(b"1048577", b""), &[413], Close),
    ]);

    let k = Chunked;
    rows.extend([
        case(k, "extensions (token and quoted values)", "9112 7.1.1",
            chunked(b"5;a=b;c=\"d;e\\\"\"\r\nhello\r\n0\r\n\r\n"), &[405], Open),
        case(k, "whitespace before an extension", "9112 7.1.1",
            chunked(b"5 ;a\r\nhello\r\n0\r\n\r\n"), &[405], Open),
        case(k, "upper-case hex and leading zeros", "9112 7.1",
            chunked(b"00A\r\n0123456789\r\n0\r\n\r\n"), &[405], Open),
        case(k, "trailer fields", "9112 7.1.2",
            chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\nY:\r\n\r\n"), &[405], Open),
        case(k, "size overflowing u64 (17 hex digits)", "9112 7.1",
            chunked(b"10000000000000000\r\nx\r\n"), &[405], Cut),
        case(k, "size past every limit", "9112 7.1",
            chunked(b"ffffffffffffffff\r\nx\r\n"), &[405], Cut),
        case(k, "size past MAX_DISCARD", "9112 7.1",
            chunked(format!("{:x}\r\nx", MAX_DISCARD + 1).as_bytes()), &[405], Cut),
        case(k, "no size", "9112 7.1", chunked(b"\r\nhello\r\n"), &[405], Cut),
        case(k, "size with a sign", "9112 7.1", chunked(b"+5\r\nhello\r\n"), &[405], Cut),
        case(k, "size in 0x notation", "9112 7.1", chunked(b"0x5\r\nhello\r\n"), &[405], Cut),
        case(k, "space before the size", "9112 7.1", chunked(b" 5\r\nhello\r\n"), &[405], Cut),
        case(k, "space after the size without extension", "9112 7.1.1",
            chunked(b"5 \r\nhello\r\n0\r\n\r\n"), &[405], Cut),
        case(k, "NUL after the size", "9112 7.1", chunked(b"5\x00\r\nhello\r\n"), &[405], Cut),
        case(k, "bare LF after the size", "9112 7.1", chunked(b"5\nhello\r\n0\r\n\r\n"), &[405], Cut),
        case(k, "bare CR after the size", "9112 7.1", chunked(b"5\rhello\r\n0\r\n\r\n"), &[405], Cut),
        case(k, "bare LF after the data", "9112 7.1", chunked(b"5\r\nhello\n0\r\n\r\n"), &[405], Cut),
        case(k, "no CRLF after the data", "9112 7.1", chunked(b"5\r\nhello0\r\n\r\n"), &[405], Cut),
        case(k, "more data than the size", "9112 7.1", chunked(b"5\r\nhelloo\r\n0\r\n\r\n"), &[405], Cut),
        case(k, "less data than the size", "9112 7.1", chunked(b"5\r\nhell\r\n0\r\n\r\n"), &[405], Cut),
        case(k, "bare LF ending the body", "9112 7.1", chunked(b"0\r\n\n"), &[405], Cut),
        case(k, "CR then another byte ending the body", "9112 7.1", chunked(b"0\r\n\rX"), &[405], Cut),
        case(k, "control byte in an extension", "9112 7.1.1", chunked(b"5;\x01\r\nhello\r\n"), &[405], Cut),
        case(k, "0xA0 in an extension", "9112 7.1.1", chunked(b"5;a=\xa0\r\nhello\r\n"), &[405], Cut),
        case(k, "extension without a name", "9112 7.1.1", chunked(b"5;=b\r\nhello\r\n"), &[405], Cut),
        case(k, "extension with two values", "9112 7.1.1", chunked(b"5;a=b c\r\nhello\r\n"), &[405], Cut),
        case(k, "unterminated quote hiding the line end", "9112 7.1.1",
            chunked(b"5;a=\"\r\nhello\r\n0\r\n\r\n\"\r\n"), &[405], Cut),
        case(k, "bare LF inside an extension", "9112 7.1.1", chunked(b"5;a\nb\r\nhello\r\n"), &[405], Cut),
        case(k, "trailer line without a colon", "9112 7.1.2",
            chunked(b"0\r\nX-T\r\n\r\n"), &[405], Cut),
        case(k, "folded trailer", "9112 7.1.2, 5.2",
            chunked(b"0\r\nX: a\r\n b\r\n\r\n"), &[405], Cut),
        case(k, "bare LF after a trailer", "9112 7.1.2", chunked(b"0\r\nX: a\n\r\n"), &[405], Cut),
        case(k, "a request line as a trailer", "9112 7.1.2",
            chunked(b"0\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n"), &[405], Cut),
    ]);

    let r = RequestLine;
    rows.extend([
        case(r, "GET / (control)", "9112 3", line(b"GET / HTTP/1.1"), &[200], Open),
        case(r, "empty lines before the request line", "9112 2.2",
            [&b"\r\n\r\n"[..], &line(b"GET / HTTP/1.1")].concat(), &[200], Open),
        case(r, "lower-case method is another method", "9110 9.1",
            line(b"get / HTTP/1.1"), &[405], Open),
        case(r, "method with a non-token byte", "9110 9.1", line(b"G@T / HTTP/1.1"), &[400], Close),
        case(r, "method with 0xA0", "9110 9.1", line(b"G\xa0T / HTTP/1.1"), &[400], Close),
        case(r, "leading space", "9112 3", line(b" GET / HTTP/1.1"), &[400], Close),
        case(r, "tab as separator", "9112 3", line(b"GET\t/ HTTP/1.1"), &[400], Close),
        case(r, "two spaces", "9112 3", line(b"GET  / HTTP/1.1"), &[400], Close),
        case(r, "trailing space", "9112 3", line(b"GET / HTTP/1.1 "), &[400], Close),
        case(r, "space inside the target", "9112 3.2", line(b"GET /a b HTTP/1.1"), &[400], Close),
        case(r, "NUL in the target", "9112 3.2", line(b"GET /\x00 HTTP/1.1"), &[400], Close),
        case(r, "DEL in the target", "9112 3.2", line(b"GET /\x7f HTTP/1.1"), &[400], Close),
        case(r, "0xA0 in the target", "9112 3.2", line(b"GET /\xa0 HTTP/1.1"), &[400], Close),
        case(r, "fragment in the target", "9112 3.2", line(b"GET /#f HTTP/1.1"), &[400], Close),
        case(r, "bad percent-encoding", "3986 2.1", line(b"GET /a%zz HTTP/1.1"), &[400], Close),
        case(r, "backslash in the target", "3986 3.3", line(b"GET /a\\b HTTP/1.1"), &[400], Close),
        case(r, "braces in the target", "3986 3.3", line(b"GET /{x} HTTP/1.1"), &[400], Close),
        case(r, "relative target", "9112 3.2", line(b"GET ../ HTTP/1.1"), &[400], Close),
        case(r, "asterisk with GET", "9112 3.2.4", line(b"GET * HTTP/1.1"), &[400], Close),
        case(r, "authority-form with GET", "9112 3.2.3", line(b"GET t:80 HTTP/1.1"), &[400], Close),
        case(r, "CONNECT with origin-form", "9112 3.2.3", line(b"CONNECT / HTTP/1.1"), &[400], Close),
        case(r, "CONNECT without a port", "9112 3.2.3", line(b"CONNECT t HTTP/1.1"), &[400], Close),
        case(r, "OPTIONS * (control)", "9112 3.2.4", line(b"OPTIONS * HTTP/1.1"), &[405], Open),
        case(r, "double slash is a path", "9112 3.2.1", line(b"GET //x HTTP/1.1"), &[404], Open),
        case(r, "HTTP/1.2: no such minor version here", "9110 2.5", line(b"GET / HTTP/1.2"), &[505], Close),
        case(r, "HTTP/2.0", "9110 2.5", line(b"GET / HTTP/2.0"), &[505], Close),
        case(r, "HTTP/0.9", "9110 2.5", line(b"GET / HTTP/0.9"), &[505], Close),
        case(r, "HTTP/2 prior-knowledge preface", "9113 3.4",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), &[505], Close),
        case(r, "lower-case protocol name", "9112 2.3", line(b"GET / http/1.1"), &[400], Close),
        case(r, "two-digit minor version", "9112 2.3", line(b"GET / HTTP/1.10"), &[400], Close),
        case(r, "no minor version", "9112 2.3", line(b"GET / HTTP/1"), &[400], Close),
        case(r, "HTTPS as protocol name", "9112 2.3", line(b"GET / HTTPS/1.1"), &[400], Close),
        case(r, "no version (HTTP/0.9 style)", "9112 3", line(b"GET /"), &[400], Close),
        case(r, "method alone", "9112 3", line(b"GET"), &[400], Close),
        case(r, "TLS ClientHello", "9112 2.2",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec(), &[400], Close),
        case(r, "request line over 8 KiB", "9112 3",
            line(format!("GET /{} HTTP/1.1", "a".repeat(8192)).as_bytes()), &[414], Close),
    ]);

    let f = FieldSyntax;
    let many_fields: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    rows.extend([
        case(f, "bare LF line endings", "9112 2.2",
            b"GET / HTTP/1.1\nHost: t\n\n".to_vec(), &[200], Open),
        case(f, "0xA0 in an unrelated value (obs-text)", "9110 5.5",
            get_with(b"X: \xa0"), &[200], Open),
        case(f, "line without a colon", "9112 5", get_with(b"NoColon"), &[400], Close),
        case(f, "empty field name", "9112 5", get_with(b": v"), &[400], Close),
        case(f, "space before the colon", "9112 5.1", get_with(b"X : v"), &[400], Close),
        case(f, "tab before the colon", "9112 5.1", get_with(b"X\t: v"), &[400], Close),
        case(f, "NUL in a name", "9110 5.1", get_with(b"X\x00Y: v"), &[400], Close),
        case(f, "non-token byte in a name", "9110 5.1", get_with(b"X(Y): v"), &[400], Close),
        case(f, "0xA0 in a name", "9110 5.1", get_with(b"X-\xa0: v"), &[400], Close),
        case(f, "NUL in a value", "9110 5.5", get_with(b"X: a\x00b"), &[400], Close),
        case(f, "DEL in a value", "9110 5.5", get_with(b"X: a\x7fb"), &[400], Close),
        case(f, "vertical tab in a value", "9110 5.5", get_with(b"X:\x0bv"), &[400], Close),
        case(f, "bare CR in a value", "9112 2.2", get_with(b"X: a\rb"), &[400], Close),
        case(f, "obs-fold with a space", "9112 5.2", get_with(b"X: a\r\n b"), &[400], Close),
        case(f, "obs-fold with a tab", "9112 5.2", get_with(b"X: a\r\n\tb"), &[400], Close),
        case(f, "CR not followed by LF ending the head", "9112 2.2",
            b"GET / HTTP/1.1\r\nHost: t\r\n\rX\r\n".to_vec(), &[400], Close),
        case(f, "one field over --max-headers", "9110 15.5.20",
            get_with(format!("{many_fields}Y: v").as_bytes()), &[431], Close),
        case(f, "header section over 8 KiB", "9110 15.5.20",
            get_with(format!("X: {}", "v".repeat(8192)).as_bytes()), &[431], Close),
    ]);

    let h = Host;
    rows.extend([
        case(h, "host:port (control)", "9112 3.2", host(b"t:80"), &[200], Open),
        case(h, "IPv4 address", "3986 3.2.2", host(b"127.0.0.1"), &[200], Open),
        case(h, "IPv6 literal with port", "3986 3.2.2", host(b"[::1]:8080"), &[200], Open),
        case(h, "IPvFuture literal", "3986 3.2.2", host(b"[v1.x]"), &[200], Open),
        case(h, "empty port", "3986 3.2.3", host(b"t:"), &[200], Open),
        case(h, "missing in HTTP/1.1", "9112 3.2",
            b"GET / HTTP/1.1\r\nX: v\r\n\r\n".to_vec(), &[400], Close),
        case(h, "twice", "9112 3.2", get_with(b"Host: u"), &[400], Close),
        case(h, "twice, other case", "9112 3.2", get_with(b"host: t"), &[400], Close),
        case(h, "two hosts comma-joined", "9112 3.2", host(b"t, u"), &[400], Close),
        case(h, "empty with origin-form", "9112 3.2", host(b""), &[400], Close),
        case(h, "space inside", "9112 3.2", host(b"a b"), &[400], Close),
        case(h, "0xA0 after", "3986 3.2.2", host(b"t\xa0"), &[400], Close),
        case(h, "vertical tab after", "9110 5.5", host(b"t\x0b"), &[400], Close),
        case(h, "port out of range", "3986 3.2.3", host(b"t:65536"), &[400], Close),
        case(h, "negative port", "3986 3.2.3", host(b"t:-1"), &[400], Close),
        case(h, "two ports", "3986 3.2.3", host(b"t:80:80"), &[400], Close),
        case(h, "userinfo", "9110 4.2.4", host(b"u@t"), &[400], Close),
        case(h, "path", "9112 3.2", host(b"t/x"), &[400], Close),
        case(h, "unclosed IPv6 literal", "3986 3.2.2", host(b"[::1"), &[400], Close),
        case(h, "bad percent-encoding", "3986 2.1", host(b"t%zz"), &[400], Close),
        case(h, "HTTP/1.0 without Host (control)", "9112 3.2",
            b"GET / HTTP/1.0\r\n\r\n".to_vec(), &[200], Close),
        case(h, "HTTP/1.0 with an invalid Host", "9112 3.2",
            b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n".to_vec(), &[400], Close),
        case(h, "absolute-form: Host differs and is ignored", "9112 3.2.2",
            b"GET http://t/x HTTP/1.1\r\nHost: other\r\n\r\n".to_vec(), &[404], Open),
        case(h, "absolute-form: empty Host", "9112 3.2.2",
            b"GET http://t/ HTTP/1.1\r\nHost: \r\n\r\n".to_vec(), &[200], Open),
        case(h, "absolute-form: Host still required", "9112 3.2",
            b"GET http://t/ HTTP/1.1\r\n\r\n".to_vec(), &[400], Close),
        case(h, "absolute-form: invalid Host", "9112 3.2",
            b"GET http://t/ HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(), &[400], Close),
        case(h, "absolute-form: userinfo in the target", "9110 4.2.4",
            b"GET http://u@t/ HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400], Close),
        case(h, "absolute-form: empty authority", "9110 4.2.1",
            b"GET http:///x HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400], Close),
        case(h, "absolute-form: bad port in the target", "3986 3.2.3",
            b"GET http://t:x/ HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), &[400], Close),
    ]);

    let s = Smuggling;
    rows.extend([
        case(s, "request after a Content-Length body", "9112 6.3",
            [cl(b"5", b"hello"), GET_X.to_vec()].concat(), &[405, 404], Open),
        case(s, "request inside a Content-Length body", "9112 6.3",
            cl(format!("{}", GET_X.len()).as_bytes(), GET_X), &[405], Open),
        case(s, "request after a chunked body", "9112 6.3",
            [chunked(CHUNKED_HELLO), GET_X.to_vec()].concat(), &[405, 404], Open),
        case(s, "request inside a chunk", "9112 7.1",
            chunked(&[format!("{:x}\r\n", GET_X.len()).as_bytes(), GET_X, b"\r\n0\r\n\r\n"].concat()),
            &[405], Open),
        case(s, "request after Content-Length: 0", "9112 6.3",
            [cl(b"0", b""), GET_X.to_vec()].concat(), &[405, 404], Open),
        case(s, "GET with a body holding a request", "9112 6.3",
            [&b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: "[..],
                GET_X.len().to_string().as_bytes(), b"\r\n\r\n", GET_X].concat(),
            &[200], Open),
        case(s, "empty lines between requests", "9112 2.2",
            [cl(b"5", b"hello"), b"\r\n\r\n".to_vec(), GET_X.to_vec()].concat(), &[405, 404], Open),
        case(s, "CL.TE: a zero chunk then a prefix", "9112 6.1",
            post(b"Content-Length: 6\r\nTransfer-Encoding: chunked", b"0\r\n\r\nX"), &[400], Close),
        case(s, "TE.CL: a chunk holding a request", "9112 6.1",
            post(b"Transfer-Encoding: chunked\r\nContent-Length: 4",
                &[b"1c\r\n", GET_X, b"\r\n0\r\n\r\n"].concat()), &[400], Close),
        case(s, "TE.TE: obfuscated second coding", "9112 6.1",
            post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x", CHUNKED_HELLO), &[400], Close),
        case(s, "obfuscated TE with Content-Length", "9112 6.1",
            post(b"Content-Length: 5\r\nTransfer-Encoding:\xa0chunked", b"hello"), &[400], Close),
        case(s, "garbage after a body", "9112 2.2",
            [cl(b"5", b"hello"), b"XYZ\r\n\r\n".to_vec()].concat(), &[405, 400], Close),
        case(s, "bad framing in the second request", "9112 6.3",
            [cl(b"5", b"hello"), cl(b"+1", b"x")].concat(), &[405, 400], Close),
        case(s, "request after Connection: close is not read", "9112 9.6",
            [get_with(b"Connection: close"), GET_X.to_vec()].concat(), &[200], Close),
        case(s, "request after a bare-LF chunk size is not read", "9112 7.1",
            chunked(&[&b"0\n\r\n"[..], GET_X].concat()), &[405], Cut),
        case(s, "request after a broken chunk is not read", "9112 7.1",
            chunked(&[&b"5\r\nhelloXX"[..], GET_X].concat()), &[405], Cut),
    ]);

    let e = EarlyResponse;
    rows.extend([
        case(e, "Expect: 100-continue, body withheld", "9110 10.1.1",
            post(b"Expect: 100-continue\r\nContent-Length: 5", b""), &[405], Close),
        case(e, "Expect: 100-continue, chunked, body withheld", "9110 10.1.1",
            post(b"Expect: 100-continue\r\nTransfer-Encoding: chunked", b""), &[405], Close),
        case(e, "Expect: 100-continue, body sent anyway", "9110 10.1.1",
            post(b"Expect: 100-Continue\r\nContent-Length: 5", b"hello"), &[405], Close),
        case(e, "Expect: 100-continue without a body", "9110 10.1.1",
            get_with(b"Expect: 100-continue"), &[200], Open),
        case(e, "Expect in HTTP/1.0 is ignored", "9110 10.1.1",
            b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            &[405], Open),
        case(e, "unknown expectation is ignored", "9110 10.1.1",
            post(b"Expect: x\r\nContent-Length: 5", b"hello"), &[405], Open),
        case(e, "Connection: close with a body: not read", "9112 9.6",
            post(b"Connection: close\r\nContent-Length: 5", b"hello"), &[405], Close),
        case(e, "declared body over MAX_DISCARD: not read", "9110 9.3.3",
            cl((MAX_DISCARD + 1).to_string().as_bytes(), b""), &[405], Close),
        case(e, "body of exactly MAX_DISCARD: drained", "9112 6.3",
            [cl(MAX_DISCARD.to_string().as_bytes(), &vec![b'x'; MAX_DISCARD as usize]), GET_X.to_vec()]
                .concat(),
            &[405, 404], Open),
    ]);
    rows
}

// ---------------------------------------------------------------------------
// Running it

/// The request sent after a row's responses: answered exactly (and then
/// closing) on a connection still in step, never on one that must close.
const PROBE: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// Default limits, but deadlines far past the client's read timeout, so
/// that a connection wrongly left open fails its row instead of being
/// closed by an idle timeout in time to look right.
fn hostile_config() -> ServerConfig {
    config_with(Limits {
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..Limits::default()
    })
}

/// Sends one row and checks its responses and what follows them; panics
/// with a description on the first difference.
fn check(server: &TestServer, case: &Case) {
    let mut c = server.connect();
    c.send(&case.request);
    for (i, &code) in case.expect.iter().enumerate() {
        let r = c.read_response();
        assert_eq!(r.status, code, "response {i}: {}", r.masked());
        let last = i + 1 == case.expect.len();
        let announced = r.header("Connection") == Some("close");
        let must_announce = last && case.after == After::Close;
        assert_eq!(
            announced, must_announce,
            "Connection header of response {i}"
        );
    }
    // A close must be a deliberate one: the write may already fail (reset
    // by a server done lingering), and nothing may arrive for it.
    let _ = c.stream.write_all(PROBE);
    let rest = c.read_until_close();
    match case.after {
        After::Open => assert_eq!(
            mask_date(&rest),
            plain_response(200, "OK", None, Some("close")),
            "the next request did not get exactly its own response"
        ),
        After::Close | After::Cut => assert!(
            rest.is_empty(),
            "bytes after the expected responses: {:?}",
            String::from_utf8_lossy(&rest)
        ),
    }
}

/// Runs every row of `category` against `model`, reporting all failing rows.
fn run(model: Model, category: Category) {
    let server = start_with(model, hostile_config());
    let rows: Vec<Case> = table()
        .into_iter()
        .filter(|c| c.category == category)
        .collect();
    assert!(!rows.is_empty());
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|case| {
            let outcome = catch_unwind(AssertUnwindSafe(|| check(&server, case)));
            outcome.err().map(|panic| {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(panic)");
                format!(
                    "{:?} / {} (RFC {}), request {:?}: {why}",
                    case.category,
                    case.name,
                    case.rfc,
                    String::from_utf8_lossy(&case.request[..case.request.len().min(160)])
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed with {model:?}:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

fn transfer_encoding(model: Model) {
    run(model, Category::TransferEncoding);
}
fn content_length(model: Model) {
    run(model, Category::ContentLength);
}
fn chunked_framing(model: Model) {
    run(model, Category::Chunked);
}
fn request_line(model: Model) {
    run(model, Category::RequestLine);
}
fn field_syntax(model: Model) {
    run(model, Category::FieldSyntax);
}
fn host_field(model: Model) {
    run(model, Category::Host);
}
fn smuggling(model: Model) {
    run(model, Category::Smuggling);
}
fn early_response(model: Model) {
    run(model, Category::EarlyResponse);
}

per_model!(
    transfer_encoding,
    content_length,
    chunked_framing,
    request_line,
    field_syntax,
    host_field,
    smuggling,
    early_response,
);

/// The table's coverage by category and by outcome (print it with
/// `--nocapture`), and its shape: at least 100 rows, names unique, every
/// category with rows of more than one outcome.
#[test]
fn coverage() {
    let rows = table();
    let mut by_category: BTreeMap<Category, BTreeMap<String, usize>> = BTreeMap::new();
    for case in &rows {
        let outcome = format!(
            "{} {:?}",
            case.expect
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join("+"),
            case.after
        );
        *by_category
            .entry(case.category)
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }
    println!(
        "hostile requests by category ({} rows, run against every model):",
        rows.len()
    );
    for (category, outcomes) in &by_category {
        let total: usize = outcomes.values().sum();
        let detail: Vec<String> = outcomes.iter().map(|(o, n)| format!("{n}× {o}")).collect();
        println!("  {category:?}: {total} ({})", detail.join(", "));
    }
    assert!(rows.len() >= 100, "only {} rows", rows.len());
    let mut names: Vec<(Category, &str)> = rows.iter().map(|c| (c.category, c.name)).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "duplicate row names");
    for (category, outcomes) in &by_category {
        assert!(outcomes.len() > 1, "{category:?} tests a single outcome");
    }
}
