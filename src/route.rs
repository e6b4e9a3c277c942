//! The routing logic every model serves, behind a small [`Handler`] trait.

use crate::http::{Reply, Request, Status};

/// Decides the reply to one request. Called once per request head, after the
/// framing has been checked and before the body (if any) is drained.
pub trait Handler {
    /// The reply to `request`; must not block.
    fn handle(&mut self, request: &Request<'_>) -> Reply;
}

/// The seed's routes: `GET|HEAD /` -> 200 `OK`; `/` with another method -> 405
/// with `Allow: GET, HEAD`; any other path -> 404. `OPTIONS *` addresses the
/// server as a whole, which is the same resource as `/` here.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeedRoutes;

/// The methods `/` allows, as sent in `Allow`.
pub const ROOT_ALLOW: &str = "GET, HEAD";

impl Handler for SeedRoutes {
    #[inline]
    fn handle(&mut self, request: &Request<'_>) -> Reply {
        if request.path != "/" && request.path != "*" {
            return Reply::plain(Status::NotFound);
        }
        match request.method {
            "GET" | "HEAD" => Reply {
                status: Status::Ok,
                body: b"OK",
                allow: None,
            },
            _ => Reply {
                allow: Some(ROOT_ALLOW),
                ..Reply::plain(Status::MethodNotAllowed)
            },
        }
    }
}
