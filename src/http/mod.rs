//! The sans-IO HTTP/1.1 core: bytes in, response bytes out.
//!
//! Nothing here touches a socket, a thread or a clock; the time is passed in as
//! [`Now`]. A concurrency model reads into [`Conn::read_buf`], calls
//! [`Conn::commit_read`], writes [`Conn::output`] and reports what was
//! written ([`Conn::consume_output`]), calls [`Conn::on_timeout`] once
//! [`Conn::deadline`] has passed, and closes when [`Conn::is_finished`] says
//! so (lingering first when [`Conn::needs_linger`]). It reads nothing while
//! output is unwritten or a request awaits its reply ([`Conn::is_awaiting`]).
//! A reactor lends the buffers from a [`BufferPool`] ([`Conn::lend`],
//! [`Conn::reclaim`]). The application is a [`Handler`], the core's
//! contract: it answers each request now, or later without holding a thread.
//!
//! ```
//! use servelab::http::{Conn, Limits, Now};
//! use servelab::route::SeedRoutes;
//!
//! let mut conn = Conn::new(SeedRoutes, Limits::default(), Now::read());
//! // Two pipelined requests, the second split across two reads.
//! conn.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HT", Now::read());
//! conn.feed(b"TP/1.1\r\nHost: a\r\n\r\n", Now::read());
//! let out = String::from_utf8(conn.output().to_vec()).unwrap();
//! assert!(out.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(out.contains("\r\n\r\nOKHTTP/1.1 404 Not Found\r\n"));
//! assert!(out.ends_with("\r\n\r\nNot Found"));
//! assert!(!conn.is_closing());
//! ```

mod buffers;
mod chunked;
mod conn;
mod date;
mod handler;
#[cfg(any(test, feature = "invariants"))]
pub mod invariants;
mod limits;
mod request;
mod response;
mod status;

pub use buffers::{BufferPool, INPUT_BUFFER, OUTPUT_BUFFER};
pub use chunked::{ChunkedDecoder, Decoded};
pub use conn::{Conn, Phase, MAX_DISCARD};
pub use date::{render as render_date, DateCache, IMF_FIXDATE_LEN};
pub use handler::{Answer, Handler, Pending, Ticket};
pub use limits::{Limits, MAX_HEADERS_CAP, MAX_PENDING_OUTPUT};
pub use request::{parse_head, Framing, Head, HeadParse, Request, Version};
pub use response::{encode, ConnectionHeader, Reply};
pub use status::Status;

use std::time::{Instant, SystemTime};

/// The current time, read by a model and handed to the core.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Monotonic time, for deadlines.
    pub instant: Instant,
    /// Seconds since the Unix epoch, for the `Date` header.
    pub unix_secs: u64,
}

impl Now {
    /// Reads both clocks (two vDSO calls, no syscall).
    pub fn read() -> Now {
        Now {
            instant: Instant::now(),
            unix_secs: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// Appends a complete response carrying `status`, its reason phrase as body and
/// `Connection: close`: what a model sends when it refuses a connection (503).
pub fn encode_rejection(out: &mut Vec<u8>, status: Status, unix_secs: u64) {
    let date = render_date(unix_secs);
    encode(
        out,
        &Reply::plain(status),
        &date,
        ConnectionHeader::Close,
        true,
    );
}
