//! Request-head parsing on `httparse`, plus what httparse leaves to us: the
//! size limits, body framing (RFC 9112 §6), `Host`, persistence and `Expect`.
//!
//! Everything here is a pure function of the bytes seen so far.

use std::mem::MaybeUninit;

use super::limits::Limits;
use super::status::Status;

/// The HTTP versions servelab speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: closes after each response unless `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: persistent unless `Connection: close`.
    Http11,
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes follow.
    Length(u64),
    /// A chunked body follows.
    Chunked,
}

/// A parsed request, as a [`crate::route::Handler`] sees it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The method token, case-sensitive (`GET`, `HEAD`, ...).
    pub method: &'a str,
    /// The request target exactly as sent.
    pub target: &'a str,
    /// The path the target names: query removed, absolute-form reduced to its
    /// path (`http://h/x?y` is `/x`, `http://h` is `/`), `*` kept as `*`.
    pub path: &'a str,
    /// The protocol version.
    pub version: Version,
    /// All header fields, in order.
    pub headers: &'a [httparse::Header<'a>],
}

/// A complete, valid request head and what the connection must do with it.
#[derive(Debug)]
pub struct Head<'a> {
    /// The request itself.
    pub request: Request<'a>,
    /// Bytes the head occupied in the buffer (leading empty lines included).
    pub len: usize,
    /// How the body is framed.
    pub framing: Framing,
    /// Whether the client allows the connection to persist after the response.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before sending its body.
    pub expects_continue: bool,
}

/// The outcome of trying to parse a head from the buffered bytes.
#[derive(Debug)]
pub enum HeadParse<'a> {
    /// More bytes are needed; none of the limits is exceeded yet.
    Partial,
    /// A complete head.
    Complete(Head<'a>),
    /// The head is invalid; answer with this status and close.
    Invalid(Status),
}

/// Parses a request head from the start of `buf`.
///
/// `headers` provides the header slots (uninitialised, so that a large array
/// costs nothing per request); its length is the field-count limit.
pub fn parse_head<'b>(
    buf: &'b [u8],
    headers: &'b mut [MaybeUninit<httparse::Header<'b>>],
    limits: &Limits,
) -> HeadParse<'b> {
    // httparse skips empty lines before the request line (RFC 9112 §2.2), so do
    // the size accounting from the same place.
    let lead = leading_empty_lines(buf);
    let line = &buf[lead..];
    let line_end = line.iter().position(|&b| b == b'\n');
    let line_len = match line_end {
        Some(lf) => lf - usize::from(lf > 0 && line[lf - 1] == b'\r'),
        None => line
            .len()
            .saturating_sub(usize::from(line.last() == Some(&b'\r'))),
    };
    if line_len > limits.max_request_line {
        return HeadParse::Invalid(Status::UriTooLong);
    }
    let header_bytes_so_far = match line_end {
        Some(lf) => line.len() - lf - 1,
        None => 0,
    };

    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Partial) => {
            if header_bytes_so_far > limits.max_header_bytes {
                HeadParse::Invalid(Status::HeaderFieldsTooLarge)
            } else {
                HeadParse::Partial
            }
        }
        Ok(httparse::Status::Complete(len)) => {
            let header_bytes = len - lead - line_end.map_or(0, |lf| lf + 1);
            if header_bytes > limits.max_header_bytes {
                return HeadParse::Invalid(Status::HeaderFieldsTooLarge);
            }
            match interpret(req, len) {
                Ok(head) => HeadParse::Complete(head),
                Err(status) => HeadParse::Invalid(status),
            }
        }
        Err(httparse::Error::TooManyHeaders) => HeadParse::Invalid(Status::HeaderFieldsTooLarge),
        Err(httparse::Error::Version) => HeadParse::Invalid(version_error(line)),
        Err(_) => HeadParse::Invalid(Status::BadRequest),
    }
}

fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match buf[i..] {
            [b'\r', b'\n', ..] => i += 2,
            [b'\n', ..] => i += 1,
            _ => return i,
        }
    }
}

/// A syntactically valid `HTTP/x.y` other than 1.0 and 1.1 is 505; anything
/// else in the version position is a malformed request line.
fn version_error(line: &[u8]) -> Status {
    let end = line.iter().position(|&b| b == b'\r' || b == b'\n');
    let line = &line[..end.unwrap_or(line.len())];
    let token = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
    match token {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() && line.contains(&b' ') =>
        {
            Status::VersionNotSupported
        }
        _ => Status::BadRequest,
    }
}

fn interpret<'b>(req: httparse::Request<'b, 'b>, len: usize) -> Result<Head<'b>, Status> {
    let method = req.method.ok_or(Status::BadRequest)?;
    let target = req.path.ok_or(Status::BadRequest)?;
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(Status::VersionNotSupported),
    };
    let path = path_of(method, target).ok_or(Status::BadRequest)?;

    let mut hosts = 0u32;
    let mut content_length: Option<u64> = None;
    let mut codings = Codings::default();
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expects_continue = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            for value in list_elements(h.value) {
                let n = parse_content_length(value)?;
                if content_length.is_some_and(|seen| seen != n) {
                    return Err(Status::BadRequest);
                }
                content_length = Some(n);
            }
            if content_length.is_none() {
                return Err(Status::BadRequest);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            codings.add(h.value)?;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in list_elements(h.value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expects_continue |= trim(h.value).eq_ignore_ascii_case(b"100-continue");
        }
    }

    match version {
        Version::Http11 if hosts != 1 => return Err(Status::BadRequest),
        Version::Http10 if hosts > 1 => return Err(Status::BadRequest),
        _ => {}
    }
    let framing = match (codings.seen, content_length) {
        (true, Some(_)) => return Err(Status::BadRequest),
        // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        (true, None) if version == Version::Http10 => return Err(Status::BadRequest),
        (true, None) => codings.framing()?,
        (false, Some(0)) | (false, None) => Framing::None,
        (false, Some(n)) => Framing::Length(n),
    };
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive_token && !close,
    };
    Ok(Head {
        request: Request {
            method,
            target,
            path,
            version,
            headers: req.headers,
        },
        len,
        framing,
        keep_alive,
        expects_continue: expects_continue && version == Version::Http11,
    })
}

/// The path a request target names, or `None` for a target of no valid form.
fn path_of<'a>(method: &str, target: &'a str) -> Option<&'a str> {
    if target.starts_with('/') {
        return Some(strip_query(target));
    }
    if target == "*" {
        return (method == "OPTIONS").then_some(target);
    }
    if method == "CONNECT" {
        return Some(target);
    }
    // absolute-form: scheme "://" authority [path] [query]
    let (scheme, rest) = target.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return None;
    }
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => Some(strip_query(&rest[i..])),
        _ => Some("/"),
    }
}

fn strip_query(target: &str) -> &str {
    match target.find(['?', '#']) {
        Some(i) => &target[..i],
        None => target,
    }
}

/// `Content-Length = 1*DIGIT`; a value too large for u64 is still a valid
/// length, just one no limit allows, so it saturates.
fn parse_content_length(value: &[u8]) -> Result<u64, Status> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Status::BadRequest);
    }
    Ok(value.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// The transfer codings listed across all `Transfer-Encoding` fields.
#[derive(Default)]
struct Codings {
    seen: bool,
    count: u32,
    chunked_at: Option<u32>,
    unknown: bool,
}

impl Codings {
    fn add(&mut self, value: &[u8]) -> Result<(), Status> {
        self.seen = true;
        for coding in list_elements(value) {
            if coding.eq_ignore_ascii_case(b"chunked") {
                if self.chunked_at.is_some() {
                    return Err(Status::BadRequest); // chunked applied twice
                }
                self.chunked_at = Some(self.count);
            } else {
                self.unknown = true;
            }
            self.count += 1;
        }
        Ok(())
    }

    fn framing(&self) -> Result<Framing, Status> {
        match self.chunked_at {
            _ if self.count == 0 => Err(Status::BadRequest),
            // RFC 9112 §6.3: chunked not last leaves the length undeterminable.
            Some(i) if i + 1 != self.count => Err(Status::BadRequest),
            _ if self.unknown => Err(Status::NotImplemented),
            Some(_) => Ok(Framing::Chunked),
            None => Err(Status::NotImplemented),
        }
    }
}

/// The non-empty elements of a comma-separated list (RFC 9110 §5.6.1), trimmed.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|e| !e.is_empty())
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<(Framing, bool, String), Status> {
        let limits = Limits::default();
        let mut slots = [MaybeUninit::uninit(); 100];
        match parse_head(raw.as_bytes(), &mut slots, &limits) {
            HeadParse::Complete(h) => Ok((h.framing, h.keep_alive, h.request.path.to_string())),
            HeadParse::Invalid(s) => Err(s),
            HeadParse::Partial => panic!("partial: {raw:?}"),
        }
    }

    #[test]
    fn paths_from_every_target_form() {
        let path = |t: &str| parse(&format!("GET {t} HTTP/1.1\r\nHost: a\r\n\r\n")).map(|r| r.2);
        assert_eq!(path("/").unwrap(), "/");
        assert_eq!(path("/?a=1").unwrap(), "/");
        assert_eq!(path("/x/y?z").unwrap(), "/x/y");
        assert_eq!(path("http://h/").unwrap(), "/");
        assert_eq!(path("http://h").unwrap(), "/");
        assert_eq!(path("http://h?q").unwrap(), "/");
        assert_eq!(path("https://h:80/p?q").unwrap(), "/p");
        assert_eq!(path("foo"), Err(Status::BadRequest));
        assert_eq!(path("*"), Err(Status::BadRequest));
        let opt = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(opt.2, "*");
    }

    #[test]
    fn content_length_rules() {
        let cl =
            |v: &str| parse(&format!("POST / HTTP/1.1\r\nHost: a\r\n{v}\r\n\r\n")).map(|r| r.0);
        assert_eq!(cl("Content-Length: 5"), Ok(Framing::Length(5)));
        assert_eq!(cl("Content-Length: 0"), Ok(Framing::None));
        assert_eq!(cl("Content-Length: 5, 5"), Ok(Framing::Length(5)));
        assert_eq!(
            cl("Content-Length: 5\r\nContent-Length: 5"),
            Ok(Framing::Length(5))
        );
        assert_eq!(cl("Content-Length: 5, 6"), Err(Status::BadRequest));
        assert_eq!(
            cl("Content-Length: 5\r\nContent-Length: 6"),
            Err(Status::BadRequest)
        );
        assert_eq!(cl("Content-Length: +5"), Err(Status::BadRequest));
        assert_eq!(cl("Content-Length: 0x5"), Err(Status::BadRequest));
        assert_eq!(cl("Content-Length: "), Err(Status::BadRequest));
        assert_eq!(cl("Content-Length: 1 2"), Err(Status::BadRequest));
        assert_eq!(
            cl("Content-Length: 99999999999999999999999"),
            Ok(Framing::Length(u64::MAX))
        );
    }

    #[test]
    fn transfer_encoding_rules() {
        let te =
            |v: &str| parse(&format!("POST / HTTP/1.1\r\nHost: a\r\n{v}\r\n\r\n")).map(|r| r.0);
        assert_eq!(te("Transfer-Encoding: chunked"), Ok(Framing::Chunked));
        assert_eq!(te("Transfer-Encoding: CHUNKED"), Ok(Framing::Chunked));
        assert_eq!(
            te("Transfer-Encoding: gzip, chunked"),
            Err(Status::NotImplemented)
        );
        assert_eq!(te("Transfer-Encoding: gzip"), Err(Status::NotImplemented));
        assert_eq!(
            te("Transfer-Encoding: chunked, gzip"),
            Err(Status::BadRequest)
        );
        assert_eq!(
            te("Transfer-Encoding: chunked, chunked"),
            Err(Status::BadRequest)
        );
        assert_eq!(
            te("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
            Err(Status::BadRequest)
        );
        assert_eq!(te("Transfer-Encoding: "), Err(Status::BadRequest));
        assert_eq!(
            te("Transfer-Encoding: chunked\r\nContent-Length: 3"),
            Err(Status::BadRequest)
        );
        let old = parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(old, Err(Status::BadRequest));
    }

    #[test]
    fn persistence_and_host() {
        let ka = |r: &str| parse(r).map(|r| r.1);
        assert_eq!(ka("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Ok(true));
        assert_eq!(
            ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n"),
            Ok(false)
        );
        assert_eq!(ka("GET / HTTP/1.0\r\n\r\n"), Ok(false));
        assert_eq!(
            ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            Ok(true)
        );
        assert_eq!(ka("GET / HTTP/1.1\r\n\r\n"), Err(Status::BadRequest));
        assert_eq!(
            ka("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(Status::BadRequest)
        );
    }

    #[test]
    fn malformed_heads_and_versions() {
        let bad = |r: &str| parse(r).err();
        assert_eq!(
            bad("GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
            Some(Status::VersionNotSupported)
        );
        assert_eq!(
            bad("GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
            Some(Status::VersionNotSupported)
        );
        assert_eq!(
            bad("GET / HTTP/x\r\nHost: a\r\n\r\n"),
            Some(Status::BadRequest)
        );
        assert_eq!(
            bad("GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
            Some(Status::BadRequest)
        );
        assert_eq!(
            bad("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"),
            Some(Status::BadRequest)
        );
        assert_eq!(
            bad("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"),
            Some(Status::BadRequest)
        );
        assert_eq!(
            bad("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n"),
            Some(Status::BadRequest)
        );
        assert_eq!(
            bad("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(Status::BadRequest)
        );
        assert_eq!(
            bad("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"),
            Some(Status::BadRequest)
        );
        assert_eq!(
            bad("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(Status::BadRequest)
        );
    }

    #[test]
    fn size_limits() {
        let limits = Limits {
            max_request_line: 32,
            max_header_bytes: 64,
            ..Limits::default()
        };
        let mut slots = [MaybeUninit::uninit(); 4];
        let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(40));
        let r = parse_head(long_line.as_bytes(), &mut slots, &limits);
        assert!(matches!(r, HeadParse::Invalid(Status::UriTooLong)));
        // Unfinished but already too long.
        let mut slots = [MaybeUninit::uninit(); 4];
        let r = parse_head(&long_line.as_bytes()[..36], &mut slots, &limits);
        assert!(matches!(r, HeadParse::Invalid(Status::UriTooLong)));
        let mut slots = [MaybeUninit::uninit(); 4];
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n", "b".repeat(60));
        let r = parse_head(big.as_bytes(), &mut slots, &limits);
        assert!(matches!(
            r,
            HeadParse::Invalid(Status::HeaderFieldsTooLarge)
        ));
        let mut slots = [MaybeUninit::uninit(); 4];
        let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n";
        let r = parse_head(many.as_bytes(), &mut slots, &limits);
        assert!(matches!(
            r,
            HeadParse::Invalid(Status::HeaderFieldsTooLarge)
        ));
        // Exactly at the limits is fine.
        let mut slots = [MaybeUninit::uninit(); 4];
        let exact = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(18));
        let r = parse_head(exact.as_bytes(), &mut slots, &limits);
        assert!(matches!(r, HeadParse::Complete(_)), "{r:?}");
        let mut slots = [MaybeUninit::uninit(); 4];
        let over = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(19));
        let r = parse_head(over.as_bytes(), &mut slots, &limits);
        assert!(matches!(r, HeadParse::Invalid(Status::UriTooLong)), "{r:?}");
    }
}
