//! Every limit the protocol core enforces, with the defaults a user would expect.

use std::time::Duration;

/// The limits and deadlines of one HTTP/1.1 connection.
///
/// Each field has a `servelab serve` flag of the same name (with dashes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (method, target, version; CRLF excluded) before 414.
    pub max_request_line: usize,
    /// Largest header section (after the request line, up to and including the
    /// empty line) before 431. Chunked trailers count against it too.
    pub max_header_bytes: usize,
    /// Most header fields in one request before 431.
    pub max_headers: usize,
    /// Largest request body (declared or chunked-decoded) before 413.
    pub max_body: u64,
    /// How long a begun request head may take to arrive completely before 408.
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests (and how
    /// long one body read or response write may stall) before it is closed.
    pub idle_timeout: Duration,
}

/// The hard cap on [`Limits::max_headers`]: header slots live on the stack.
pub const MAX_HEADERS_CAP: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_header_bytes: 8 * 1024,
            max_headers: 100,
            max_body: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// The most bytes a request head can occupy in the read buffer:
    /// request line, its line ending, and the header section.
    pub fn max_head_bytes(&self) -> usize {
        self.max_request_line + 2 + self.max_header_bytes
    }
}

/// The most response bytes a connection holds unwritten before it stops
/// answering the requests it has buffered (64 KiB): past it, the next
/// buffered request is answered once the output is written
/// ([`super::Conn::consume_output`]). Pipelined small responses never reach it (a
/// batch of 16 is under 2 KiB); a large body (`--body`) reaches it with
/// every response, so a client pipelining many requests for one costs the
/// server one response's worth of memory at a time, not one per request.
pub const MAX_PENDING_OUTPUT: usize = 64 * 1024;
