//! The response status codes servelab sends, and what each means for the connection.

/// A response status servelab can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// 200
    Ok,
    /// 400: malformed request or untrustworthy framing.
    BadRequest,
    /// 404: no resource at this path.
    NotFound,
    /// 405: the resource exists but not for this method (sent with `Allow`).
    MethodNotAllowed,
    /// 408: a begun request did not arrive in time.
    RequestTimeout,
    /// 413: body over [`crate::http::Limits::max_body`].
    ContentTooLarge,
    /// 414: request line over [`crate::http::Limits::max_request_line`].
    UriTooLong,
    /// 431: header section over its byte or field-count limit.
    HeaderFieldsTooLarge,
    /// 500: the handler panicked; the connection is closed, the server goes on.
    InternalServerError,
    /// 501: a transfer coding servelab does not implement.
    NotImplemented,
    /// 503: the server is at capacity (models send this, the core never does).
    ServiceUnavailable,
    /// 505: an HTTP version other than 1.0 and 1.1 (HTTP/1.2 and HTTP/2.0 included).
    VersionNotSupported,
}

impl Status {
    /// Every status servelab sends, in code order.
    pub const ALL: [Status; 12] = [
        Status::Ok,
        Status::BadRequest,
        Status::NotFound,
        Status::MethodNotAllowed,
        Status::RequestTimeout,
        Status::ContentTooLarge,
        Status::UriTooLong,
        Status::HeaderFieldsTooLarge,
        Status::InternalServerError,
        Status::NotImplemented,
        Status::ServiceUnavailable,
        Status::VersionNotSupported,
    ];

    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::UriTooLong => 414,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalServerError => 500,
            Status::NotImplemented => 501,
            Status::ServiceUnavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }

    /// The reason phrase (RFC 9110 §15).
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::ContentTooLarge => "Content Too Large",
            Status::UriTooLong => "URI Too Long",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalServerError => "Internal Server Error",
            Status::NotImplemented => "Not Implemented",
            Status::ServiceUnavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    /// The pre-encoded status line, CRLF included.
    pub fn status_line(self) -> &'static [u8] {
        match self {
            Status::Ok => b"HTTP/1.1 200 OK\r\n",
            Status::BadRequest => b"HTTP/1.1 400 Bad Request\r\n",
            Status::NotFound => b"HTTP/1.1 404 Not Found\r\n",
            Status::MethodNotAllowed => b"HTTP/1.1 405 Method Not Allowed\r\n",
            Status::RequestTimeout => b"HTTP/1.1 408 Request Timeout\r\n",
            Status::ContentTooLarge => b"HTTP/1.1 413 Content Too Large\r\n",
            Status::UriTooLong => b"HTTP/1.1 414 URI Too Long\r\n",
            Status::HeaderFieldsTooLarge => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            Status::InternalServerError => b"HTTP/1.1 500 Internal Server Error\r\n",
            Status::NotImplemented => b"HTTP/1.1 501 Not Implemented\r\n",
            Status::ServiceUnavailable => b"HTTP/1.1 503 Service Unavailable\r\n",
            Status::VersionNotSupported => b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
        }
    }

    /// Whether the connection must close after this status: the request stream
    /// can no longer be trusted (or, for 408 and 503, the server gives up on it;
    /// for 500, on the handler's state).
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            Status::BadRequest
                | Status::RequestTimeout
                | Status::ContentTooLarge
                | Status::UriTooLong
                | Status::HeaderFieldsTooLarge
                | Status::InternalServerError
                | Status::NotImplemented
                | Status::ServiceUnavailable
                | Status::VersionNotSupported
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_matches_code_and_reason() {
        for s in Status::ALL {
            let expected = format!("HTTP/1.1 {} {}\r\n", s.code(), s.reason());
            assert_eq!(s.status_line(), expected.as_bytes());
        }
    }

    /// `ALL` lists every variant once, in code order: the match below stops
    /// compiling when a variant is added, and the test fails until `ALL`
    /// has it.
    #[test]
    fn all_lists_every_status_once_in_code_order() {
        fn position(s: Status) -> usize {
            use Status::*;
            match s {
                Ok => 0,
                BadRequest => 1,
                NotFound => 2,
                MethodNotAllowed => 3,
                RequestTimeout => 4,
                ContentTooLarge => 5,
                UriTooLong => 6,
                HeaderFieldsTooLarge => 7,
                InternalServerError => 8,
                NotImplemented => 9,
                ServiceUnavailable => 10,
                VersionNotSupported => 11,
            }
        }
        for (i, s) in Status::ALL.into_iter().enumerate() {
            assert_eq!(position(s), i, "{s:?}");
        }
        assert!(Status::ALL.windows(2).all(|w| w[0].code() < w[1].code()));
    }
}
