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

/// A parsed request, as a [`super::Handler`] sees it.
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

/// A request line of exactly `method SP target SP HTTP/x.y`, with a version
/// other than 1.0 and 1.1, is 505; anything else in the version position (or
/// a space too many before it) is a malformed request line.
fn version_error(line: &[u8]) -> Status {
    let end = line.iter().position(|&b| b == b'\r' || b == b'\n');
    let line = &line[..end.unwrap_or(line.len())];
    let spaces = line.iter().filter(|&&b| b == b' ').count();
    let token = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
    match token {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() && spaces == 2 =>
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
    let (form, path) = target_form(method, target).ok_or(Status::BadRequest)?;

    let mut hosts = 0u32;
    let mut host: &[u8] = b"";
    let mut content_length: Option<u64> = None;
    let mut codings = Codings::default();
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expects_continue = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        // The length picks the one name a field could be, so that most
        // fields cost one comparison of lengths and none of bytes.
        let is = |wanted: &[u8]| name.eq_ignore_ascii_case(wanted);
        let field = match name.len() {
            4 if is(b"host") => Field::Host,
            14 if is(b"content-length") => Field::ContentLength,
            17 if is(b"transfer-encoding") => Field::TransferEncoding,
            10 if is(b"connection") => Field::Connection,
            6 if is(b"expect") => Field::Expect,
            _ => continue,
        };
        if field == Field::Host {
            hosts += 1;
            host = h.value;
        } else if field == Field::ContentLength {
            // One value per field: a list (`5, 5`) is refused, as RFC 9110
            // §8.6 allows, since recipients that take its first or last
            // element frame differently. Equal values in separate fields
            // are the one value.
            let n = parse_content_length(trim(h.value))?;
            if content_length.is_some_and(|seen| seen != n) {
                return Err(Status::BadRequest);
            }
            content_length = Some(n);
        } else if field == Field::TransferEncoding {
            codings.add(h.value)?;
        } else if field == Field::Connection {
            for token in list_elements(h.value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else {
            expects_continue |= trim(h.value).eq_ignore_ascii_case(b"100-continue");
        }
    }

    match version {
        Version::Http11 if hosts != 1 => return Err(Status::BadRequest),
        Version::Http10 if hosts > 1 => return Err(Status::BadRequest),
        _ => {}
    }
    // RFC 9112 §3.2.2: with an absolute-form target the Host value is ignored
    // (the target's authority, checked above, names the host), and may be
    // empty; it must still be a syntactically valid Host.
    if hosts == 1 && !valid_host(trim(host), form == Form::Absolute, Port::Optional) {
        return Err(Status::BadRequest);
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

/// The header fields that decide how a request is framed and answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Expect,
}

/// The four forms of request-target (RFC 9112 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// `/path?query`
    Origin,
    /// `scheme://authority/path?query`
    Absolute,
    /// `host:port`, CONNECT only.
    Authority,
    /// `*`, OPTIONS only.
    Asterisk,
}

/// The form of a request target and the path it names, or `None` for a
/// target of no valid form (RFC 9112 §3.2, characters per RFC 3986).
///
/// - origin-form: `absolute-path [ "?" query ]`; the path is the target up to `?`.
/// - absolute-form: `scheme "://" authority path-abempty [ "?" query ]`, the
///   authority a valid host and optional port without userinfo (RFC 9110
///   §4.2.4); the path is `/` when empty.
/// - authority-form (CONNECT only, and CONNECT takes no other form):
///   `uri-host ":" port`, the port present.
/// - asterisk-form (OPTIONS only): `*`.
///
/// A fragment (`#`) is in no form, nor any byte outside RFC 3986 (`"`, `<`,
/// `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`, non-ASCII), nor a `%` not followed
/// by two hex digits.
fn target_form<'a>(method: &str, target: &'a str) -> Option<(Form, &'a str)> {
    if method == "CONNECT" {
        return valid_host(target.as_bytes(), false, Port::Required)
            .then_some((Form::Authority, target));
    }
    if target == "*" {
        return (method == "OPTIONS").then_some((Form::Asterisk, target));
    }
    if target.starts_with('/') {
        return path_and_query_ok(target).then(|| (Form::Origin, strip_query(target)));
    }
    let (scheme, rest) = target.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    let authority_ok = !authority.contains('@') // no userinfo
        && valid_host(authority.as_bytes(), false, Port::Optional);
    if !(scheme_ok && authority_ok && path_and_query_ok(path_and_query)) {
        return None;
    }
    let path = strip_query(path_and_query);
    Some((Form::Absolute, if path.is_empty() { "/" } else { path }))
}

fn strip_query(target: &str) -> &str {
    match target.bytes().position(|b| b == b'?') {
        Some(i) => &target[..i],
        None => target,
    }
}

/// `path-abempty [ "?" query ]` of RFC 3986: pchars, `/` and `?`.
fn path_and_query_ok(s: &str) -> bool {
    uri_chars_ok(s.as_bytes(), COLON | AT | SLASH | QUESTION)
}

// Character classes, one bit each in [`CLASS`]: what RFC 3986 and RFC 9110
// allow where, looked up once per byte instead of searched for.
/// `ALPHA / DIGIT / "-" / "." / "_" / "~"` (RFC 3986 §2.3).
const UNRESERVED: u8 = 1;
/// `"!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="` (§2.2).
const SUB_DELIM: u8 = 2;
const COLON: u8 = 4;
const AT: u8 = 8;
const SLASH: u8 = 16;
const QUESTION: u8 = 32;
/// `tchar` (RFC 9110 §5.6.2).
const TCHAR: u8 = 64;

/// The classes of every byte value.
static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            table[b] |= UNRESERVED | TCHAR;
        }
        b += 1;
    }
    let marks: [(&[u8], u8); 7] = [
        (b"-._~", UNRESERVED),
        (b"!$&'()*+,;=", SUB_DELIM),
        (b":", COLON),
        (b"@", AT),
        (b"/", SLASH),
        (b"?", QUESTION),
        (b"!#$%&'*+-.^_`|~", TCHAR),
    ];
    let mut m = 0;
    while m < marks.len() {
        let (bytes, class) = marks[m];
        let mut i = 0;
        while i < bytes.len() {
            table[bytes[i] as usize] |= class;
            i += 1;
        }
        m += 1;
    }
    table
}

/// Whether every byte of `s` is unreserved, a sub-delim, in one of the
/// `extra` classes, or part of a valid percent-encoding (RFC 3986 §2).
fn uri_chars_ok(s: &[u8], extra: u8) -> bool {
    let allowed = UNRESERVED | SUB_DELIM | extra;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if CLASS[usize::from(b)] & allowed != 0 {
            i += 1;
            continue;
        }
        match s.get(i..i + 3) {
            Some([b'%', h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
            _ => return false,
        }
    }
    true
}

/// Whether a port must follow the host in [`valid_host`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Port {
    /// `uri-host [ ":" port ]`: `Host` and an absolute-form authority.
    Optional,
    /// `uri-host ":" port` with at least one digit: CONNECT's authority-form.
    Required,
}

/// The `Host` grammar, `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986
/// §3.2.2-3.2.3): `uri-host` an IP-literal in brackets (IPv6 or IPvFuture) or
/// a reg-name (unreserved, sub-delims, percent-encodings; this includes every
/// IPv4 address), `port` decimal digits up to 65535 (RFC 3986 allows an empty
/// port). An empty host is valid only where `empty_ok` (the `Host` of an
/// absolute-form request).
fn valid_host(value: &[u8], empty_ok: bool, port: Port) -> bool {
    let (host, rest) = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(close) => {
                if !valid_ip_literal(&value[1..close]) {
                    return false;
                }
                value.split_at(close + 1)
            }
            None => return false,
        },
        _ => {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            let (name, rest) = value.split_at(end);
            if !uri_chars_ok(name, 0) {
                return false;
            }
            (name, rest)
        }
    };
    if host.is_empty() && !empty_ok {
        return false;
    }
    let digits = match rest {
        [] => return port == Port::Optional,
        [b':', digits @ ..] => digits,
        _ => return false,
    };
    if digits.is_empty() {
        return port == Port::Optional;
    }
    digits.iter().all(u8::is_ascii_digit)
        && digits
            .iter()
            .try_fold(0u32, |n, &d| {
                let n = n * 10 + u32::from(d - b'0');
                (n <= 65_535).then_some(n)
            })
            .is_some()
}

/// IP-literal without its brackets: an IPv6 address (RFC 4291 text forms,
/// parsed by the standard library) or `"v" 1*HEXDIG "." 1*( unreserved /
/// sub-delims / ":" )` (IPvFuture).
fn valid_ip_literal(inner: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inner {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, address) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !address.is_empty()
            && !address.contains(&b'%')
            && uri_chars_ok(address, COLON);
    }
    std::str::from_utf8(inner).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6). A value too large for u64 is
/// malformed (400), not a length over the limit (413): no sender can mean it,
/// and a recipient that wraps or truncates it would frame differently.
fn parse_content_length(value: &[u8]) -> Result<u64, Status> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Status::BadRequest);
    }
    value
        .iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(Status::BadRequest)
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
    /// Adds one field's codings. The value must be a list of
    /// `transfer-coding = token *( OWS ";" OWS transfer-parameter )` (RFC 9112
    /// §7, RFC 9110 §10.1.4): any other byte (non-ASCII, controls, a space
    /// inside a name) makes the framing unknowable, so it is 400, not the 501
    /// of a well-formed coding servelab does not implement.
    fn add(&mut self, value: &[u8]) -> Result<(), Status> {
        self.seen = true;
        let mut p = Cursor { s: value, i: 0 };
        loop {
            p.skip_ows();
            if p.eat(b',') {
                continue; // empty list elements are allowed (RFC 9110 §5.6.1)
            }
            if p.at_end() {
                return Ok(());
            }
            let name = p.token().ok_or(Status::BadRequest)?;
            let mut parameters = false;
            loop {
                p.skip_ows();
                if !p.eat(b';') {
                    break;
                }
                p.skip_ows();
                p.token().ok_or(Status::BadRequest)?;
                p.skip_ows();
                if !p.eat(b'=') {
                    return Err(Status::BadRequest);
                }
                p.skip_ows();
                p.token()
                    .or_else(|| p.quoted_string())
                    .ok_or(Status::BadRequest)?;
                parameters = true;
            }
            if !(p.at_end() || p.eat(b',')) {
                return Err(Status::BadRequest);
            }
            self.add_coding(name, parameters)?;
        }
    }

    fn add_coding(&mut self, name: &[u8], parameters: bool) -> Result<(), Status> {
        if name.eq_ignore_ascii_case(b"chunked") {
            // chunked defines no parameters; RFC 9112 §7 asks recipients to
            // treat them as an error. Applied twice it is ambiguous.
            if parameters || self.chunked_at.is_some() {
                return Err(Status::BadRequest);
            }
            self.chunked_at = Some(self.count);
        } else {
            self.unknown = true;
        }
        self.count += 1;
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

/// A position in a field value, for the few list grammars parsed here.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.i == self.s.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&byte);
        self.i += usize::from(hit);
        hit
    }

    fn skip_ows(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// `token = 1*tchar` (RFC 9110 §5.6.2).
    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|&b| is_tchar(b)) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    /// `quoted-string` (RFC 9110 §5.6.4), ASCII only: obs-text has no place
    /// in a transfer-coding parameter servelab could act on.
    fn quoted_string(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        if !self.eat(b'"') {
            return None;
        }
        loop {
            match self.s.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Some(&self.s[start..self.i]);
                }
                Some(b'\\') => match self.s.get(self.i + 1) {
                    Some(&b) if b == b'\t' || (0x20..0x7f).contains(&b) => self.i += 2,
                    _ => return None,
                },
                Some(&b) if b == b'\t' || (0x20..0x7f).contains(&b) => self.i += 1,
                _ => return None,
            }
        }
    }
}

/// `tchar` (RFC 9110 §5.6.2).
pub(super) fn is_tchar(b: u8) -> bool {
    CLASS[usize::from(b)] & TCHAR != 0
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
        parse_bytes(raw.as_bytes())
    }

    fn parse_bytes(raw: &[u8]) -> Result<(Framing, bool, String), Status> {
        let limits = Limits::default();
        let mut slots = [MaybeUninit::uninit(); 100];
        match parse_head(raw, &mut slots, &limits) {
            HeadParse::Complete(h) => Ok((h.framing, h.keep_alive, h.request.path.to_string())),
            HeadParse::Invalid(s) => Err(s),
            HeadParse::Partial => panic!("partial: {:?}", String::from_utf8_lossy(raw)),
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
        assert_eq!(
            cl("Content-Length: 5\r\nContent-Length: 5"),
            Ok(Framing::Length(5))
        );
        // A list in one field is refused, even of equal values.
        for list in [
            "1000,1000",
            "1000, 1000",
            "5,5",
            "5 ,5",
            "5,",
            ",5",
            "5, 5, 5",
        ] {
            let field = format!("Content-Length: {list}");
            assert_eq!(cl(&field), Err(Status::BadRequest), "{field:?}");
        }
        assert_eq!(
            cl("Content-Length: 5\r\nContent-Length: 5, 5"),
            Err(Status::BadRequest)
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
        // u64::MAX is a well-formed length (413 is the limit's business); one
        // more digit's worth overflows and is malformed.
        assert_eq!(
            cl("Content-Length: 18446744073709551615"),
            Ok(Framing::Length(u64::MAX))
        );
        assert_eq!(
            cl("Content-Length: 18446744073709551616"),
            Err(Status::BadRequest)
        );
        assert_eq!(cl("Content-Length: 0005"), Ok(Framing::Length(5)));
        assert_eq!(cl("Content-Length: \t5\t"), Ok(Framing::Length(5)));
        for bad in [
            &b"-5"[..],
            b"5.0",
            b"5e0",
            b"5\xa0",
            b"\xa05",
            b"5 ,6",
            b" , ",
        ] {
            let framing = framing_with(b"Content-Length", bad);
            assert_eq!(framing, Err(Status::BadRequest), "{bad:?}");
        }
    }

    /// The framing of a `POST /` carrying one field `name: value`.
    fn framing_with(name: &[u8], value: &[u8]) -> Result<Framing, Status> {
        let raw = [
            &b"POST / HTTP/1.1\r\nHost: a\r\n"[..],
            name,
            b": ",
            value,
            b"\r\n\r\n",
        ]
        .concat();
        parse_bytes(&raw).map(|r| r.0)
    }

    #[test]
    fn transfer_encoding_grammar() {
        let te = |v: &[u8]| framing_with(b"Transfer-Encoding", v);
        // Well-formed lists.
        assert_eq!(te(b"chunked"), Ok(Framing::Chunked));
        assert_eq!(te(b", chunked ,"), Ok(Framing::Chunked));
        assert_eq!(te(b"\tchunked"), Ok(Framing::Chunked));
        // Well-formed but unknown codings: 501, whatever their parameters.
        assert_eq!(te(b"identity"), Err(Status::NotImplemented));
        assert_eq!(te(b"gzip;q=1, chunked"), Err(Status::NotImplemented));
        assert_eq!(
            te(b"x ; a = \"b,c\\\"\" , chunked"),
            Err(Status::NotImplemented)
        );
        // Outside the grammar: 400, never 501.
        for bad in [
            &b"chunked\xa0"[..],
            b"\xa0chunked",
            b"chunked\x0b",
            b"chunk ed",
            b"chunked;",
            b"chunked;a",
            b"chunked;a=b",
            b"gzip;a=\"unterminated",
            b"gzip;a=\"\xa0\"",
            b"gzip;=b",
            b"\"chunked\"",
            b"chunked/1",
            b"gz\xffip",
        ] {
            assert_eq!(
                te(bad),
                Err(Status::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// The class table says, for every byte, what the grammars spell out.
    #[test]
    fn character_classes_match_the_rfc_sets() {
        for b in 0..=255u8 {
            let class = CLASS[usize::from(b)];
            let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
            assert_eq!(class & UNRESERVED != 0, unreserved, "{b:#x}");
            assert_eq!(
                class & SUB_DELIM != 0,
                b"!$&'()*+,;=".contains(&b),
                "{b:#x}"
            );
            assert_eq!(class & COLON != 0, b == b':', "{b:#x}");
            assert_eq!(class & AT != 0, b == b'@', "{b:#x}");
            assert_eq!(class & SLASH != 0, b == b'/', "{b:#x}");
            assert_eq!(class & QUESTION != 0, b == b'?', "{b:#x}");
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), tchar, "{b:#x}");
        }
        assert!(uri_chars_ok(b"a%20b", 0));
        assert!(!uri_chars_ok(b"a%2", 0));
        assert!(!uri_chars_ok(b"a%zz", 0));
        assert!(!uri_chars_ok(b"a:b", 0));
        assert!(uri_chars_ok(b"a:b", COLON));
    }

    #[test]
    fn host_grammar() {
        let host = |v: &[u8]| {
            let raw = [&b"GET / HTTP/1.1\r\nHost: "[..], v, b"\r\n\r\n"].concat();
            parse_bytes(&raw).map(|_| ())
        };
        for good in [
            &b"example.com"[..],
            b"example.com:8080",
            b"a:0",
            b"a:65535",
            b"a:",
            b"127.0.0.1",
            b"999.1.1.1", // a reg-name, as RFC 3986 reads it
            b"[::1]",
            b"[::1]:80",
            b"[2001:db8::7]",
            b"[::ffff:192.0.2.1]",
            b"[v1.fe80::a+en1]",
            b"xn--bcher-kva.example",
            b"a%41b",
            b"under_score~!$&'()*+,;=",
        ] {
            assert_eq!(host(good), Ok(()), "{:?}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b""[..],
            b":80",
            b"a b",
            b"a\xa0",
            b"\xa0a",
            b"a:65536",
            b"a:99999999999999999999",
            b"a:-1",
            b"a:+80",
            b"a:8o",
            b"a:80:80",
            b"a/b",
            b"a?b",
            b"a#b",
            b"a@b",
            b"user@a",
            b"a%4",
            b"a%zz",
            b"[::1",
            b"::1",
            b"[::1]x",
            b"[::1]:x",
            b"[1.2.3.4]",
            b"[v1.]",
            b"[vz.a]",
            b"[fe80::1%25eth0]",
            b"a\"b",
            b"a{b}",
            b"a\\b",
        ] {
            assert_eq!(
                host(bad),
                Err(Status::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // HTTP/1.0 needs no Host, but one it sends must be valid.
        assert!(parse("GET / HTTP/1.0\r\n\r\n").is_ok());
        assert_eq!(
            parse("GET / HTTP/1.0\r\nHost: a b\r\n\r\n").err(),
            Some(Status::BadRequest)
        );
    }

    /// RFC 9112 §3.2.2: with absolute-form the target's authority names the
    /// host; `Host` is still required (HTTP/1.1) and must be valid, but its
    /// value is ignored and may be empty or differ.
    #[test]
    fn absolute_form_authority_rules() {
        let req = |target: &str, host: &str| {
            parse(&format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n")).map(|r| r.2)
        };
        assert_eq!(req("http://h/x", "h").as_deref(), Ok("/x"));
        assert_eq!(req("http://h/x", "other:81").as_deref(), Ok("/x"));
        assert_eq!(req("http://h/x", "").as_deref(), Ok("/x"));
        assert_eq!(req("http://[::1]:8080?q", "h").as_deref(), Ok("/"));
        assert_eq!(req("http://h/x", "a b"), Err(Status::BadRequest));
        assert_eq!(req("http:///x", "h"), Err(Status::BadRequest));
        assert_eq!(req("http://u:p@h/x", "h"), Err(Status::BadRequest));
        assert_eq!(req("http://h:99999/", "h"), Err(Status::BadRequest));
        assert_eq!(req("http://h:x/", "h"), Err(Status::BadRequest));
        assert_eq!(req("http://h#f", "h"), Err(Status::BadRequest));
        assert_eq!(req("1http://h/", "h"), Err(Status::BadRequest));
        assert_eq!(
            parse("GET http://h/ HTTP/1.1\r\n\r\n").err(),
            Some(Status::BadRequest),
            "Host is still required"
        );
        // Origin-form needs a non-empty host.
        assert_eq!(req("/", ""), Err(Status::BadRequest));
    }

    #[test]
    fn target_grammar() {
        let req = |method: &str, target: &str| {
            parse(&format!("{method} {target} HTTP/1.1\r\nHost: a\r\n\r\n")).map(|r| r.2)
        };
        assert_eq!(
            req("GET", "/a%20b;c=d:e@f/?x=/?y").as_deref(),
            Ok("/a%20b;c=d:e@f/")
        );
        for bad in [
            "/#f", "/a%2", "/a%g0", "/{", "/|", "/\\", "/\"", "/<", "/^", "/`",
        ] {
            assert_eq!(req("GET", bad), Err(Status::BadRequest), "{bad:?}");
        }
        assert_eq!(req("CONNECT", "h:443").as_deref(), Ok("h:443"));
        assert_eq!(req("CONNECT", "[::1]:443").as_deref(), Ok("[::1]:443"));
        for bad in ["h", "h:", "/", "*", "http://h/", "u@h:1"] {
            assert_eq!(req("CONNECT", bad), Err(Status::BadRequest), "{bad:?}");
        }
        assert_eq!(req("GET", "h:443"), Err(Status::BadRequest));
        assert_eq!(req("GET", "*"), Err(Status::BadRequest));
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
        // A space inside the target makes a malformed line, not a version.
        assert_eq!(
            bad("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(Status::BadRequest)
        );
        assert_eq!(
            bad("GET /a b HTTP/2.0\r\nHost: a\r\n\r\n"),
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
