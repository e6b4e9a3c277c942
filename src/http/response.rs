//! Response encoding into a caller's buffer: pre-encoded pieces, no formatting.

use super::date::IMF_FIXDATE_LEN;
use super::status::Status;

/// What a handler answers: a status, a static body and the optional `Allow` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: Status,
    /// The body (sent for every method but HEAD; its length is always declared).
    pub body: &'static [u8],
    /// The `Allow` header value, sent when present (405 needs it).
    pub allow: Option<&'static str>,
}

impl Reply {
    /// A reply whose body is the reason phrase, as servelab's error pages are.
    pub fn plain(status: Status) -> Reply {
        Reply {
            status,
            body: status.reason().as_bytes(),
            allow: None,
        }
    }
}

/// The `Connection` header a response carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionHeader {
    /// No header: HTTP/1.1 persistence is the default.
    Omit,
    /// `Connection: keep-alive`, for an HTTP/1.0 client that asked for it.
    KeepAlive,
    /// `Connection: close`: the server closes after this response.
    Close,
}

/// Appends one complete response to `out`.
///
/// `with_body` is false for HEAD: the head still declares the body's length.
///
/// No `Server` header: RFC 9110 §10.2.4 leaves it optional, a client needs
/// nothing from it, and the server pays for every byte it sends (the
/// kernel's send path costs per byte; at 16 pipelined requests per write its
/// 18 bytes were a measurable share of v5's CPU per request). `Date` is sent because an
/// origin server with a clock must (§6.6.1), and `Content-Type` because a
/// response with content should carry one (§8.3).
pub fn encode(
    out: &mut Vec<u8>,
    reply: &Reply,
    date: &[u8; IMF_FIXDATE_LEN],
    connection: ConnectionHeader,
    with_body: bool,
) {
    out.extend_from_slice(reply.status.status_line());
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    put_decimal(out, reply.body.len());
    out.extend_from_slice(b"\r\n");
    if let Some(allow) = reply.allow {
        out.extend_from_slice(b"Allow: ");
        out.extend_from_slice(allow.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match connection {
        ConnectionHeader::Omit => {}
        ConnectionHeader::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ConnectionHeader::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    if with_body {
        out.extend_from_slice(reply.body);
    }
}

fn put_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; 29] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn encodes_exact_bytes() {
        let mut out = Vec::new();
        let reply = Reply {
            status: Status::Ok,
            body: b"OK",
            allow: None,
        };
        encode(&mut out, &reply, DATE, ConnectionHeader::Omit, true);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"
        );
    }

    #[test]
    fn head_keeps_length_and_drops_body_and_allow_and_close_are_sent() {
        let mut out = Vec::new();
        let reply = Reply {
            status: Status::MethodNotAllowed,
            body: b"Method Not Allowed",
            allow: Some("GET, HEAD"),
        };
        encode(&mut out, &reply, DATE, ConnectionHeader::Close, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text
            .contains("\r\nContent-Length: 18\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn decimal_lengths() {
        for n in [0usize, 7, 10, 99, 1000, 1 << 20] {
            let mut out = Vec::new();
            put_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
