//! The contract between the core and the application it serves: a
//! [`Handler`] is asked for each request and gives an [`Answer`], now or
//! after a wait that holds no thread.
//!
//! A handler that waits on something outside the connection (a database, an
//! upstream, a timer) answers [`Answer::Later`]: the connection *parks* the
//! request ([`super::Phase::Awaiting`]) and reads nothing more of its
//! stream. The wait is sans-IO like the rest of the core: the handler says
//! how long it lasts ([`Pending::after`]), the connection turns that into its
//! [`super::Conn::deadline`], and the model that drives the connection wakes
//! it then through [`super::Conn::on_timeout`], exactly as it would for an
//! idle timeout. The core then asks [`Handler::resume`] for the reply,
//! handing back the [`Ticket`] the handler chose, so a handler keeps no
//! state per parked request.
//!
//! ```
//! use std::time::Duration;
//! use servelab::http::{Answer, Conn, Handler, Limits, Now, Pending, Reply, Request, Status, Ticket};
//!
//! /// Answers every request after 5 ms, as if it asked a database first.
//! struct Slow;
//!
//! impl Handler for Slow {
//!     fn handle(&mut self, _: &Request<'_>) -> Answer {
//!         Answer::Later(Pending { after: Duration::from_millis(5), ticket: Ticket(0) })
//!     }
//!     fn resume(&mut self, _: Ticket) -> Reply {
//!         Reply::plain(Status::Ok)
//!     }
//! }
//!
//! let start = Now::read();
//! let mut conn = Conn::new(Slow, Limits::default(), start);
//! conn.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", start);
//! assert!(conn.is_awaiting() && conn.output().is_empty());
//! assert_eq!(conn.deadline(), start.instant + Duration::from_millis(5));
//! // The model's timer fires: the reply goes out.
//! let later = Now { instant: conn.deadline(), ..start };
//! conn.on_timeout(later);
//! assert!(conn.output().starts_with(b"HTTP/1.1 200 OK\r\n"));
//! ```

use std::time::Duration;

use super::request::Request;
use super::response::Reply;

/// Decides the reply to one request. Called once per request head, after the
/// framing has been checked and before the body (if any) is drained.
pub trait Handler {
    /// The answer to `request`: a reply now, or a wait. Whatever time this
    /// call takes is taken from the thread that serves the connection: in a
    /// reactor model, from every connection of that reactor. A wait
    /// ([`Answer::Later`]) takes none.
    fn handle(&mut self, request: &Request<'_>) -> Answer;

    /// The reply to a request parked by [`Answer::Later`] with `ticket`,
    /// once its wait is over. Never called for a handler that always
    /// answers [`Answer::Now`].
    fn resume(&mut self, ticket: Ticket) -> Reply;
}

/// What a handler gives for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The reply, now.
    Now(Reply),
    /// The reply once a wait is over: the request is parked meanwhile.
    Later(Pending),
}

/// A wait a handler asks for instead of replying now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// How long the wait lasts, from the moment the request was handled.
    pub after: Duration,
    /// Handed back to [`Handler::resume`] when the wait is over: what the
    /// handler needs to know then of the request it parked.
    pub ticket: Ticket,
}

/// A handler's own note about a parked request (the core only carries it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(pub u64);
