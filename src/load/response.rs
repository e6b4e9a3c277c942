//! Sans-IO framing of a response stream: where each response ends, its status
//! and whether the server will close. Bodies are skipped, never buffered.

use std::mem::MaybeUninit;
use std::time::Duration;

use crate::http::{ChunkedDecoder, Limits};

/// Header slots on the stack for one response head.
const MAX_RESPONSE_HEADERS: usize = 64;
/// Longest head remembered by the same-head fast path.
const CACHED_HEAD: usize = 256;

/// A response whose end has been reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The status code.
    pub status: u16,
    /// Whether the connection ends after it (`Connection: close`, HTTP/1.0
    /// without keep-alive, or a body delimited by the end of the stream).
    pub close: bool,
}

/// The result of one [`ResponseParser::advance`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Input bytes consumed.
    pub consumed: usize,
    /// The response that ended within them, if one did.
    pub completed: Option<Completed>,
}

/// Why a response stream cannot be framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// The head is not HTTP/1.x (httparse refused it), or has too many fields.
    BadHead,
    /// `Content-Length` is not a number, or several disagree.
    BadLength,
    /// The chunked body is malformed.
    BadChunk,
    /// The head does not fit the read buffer.
    HeadTooLarge,
    /// `101 Switching Protocols`: the stream is no longer HTTP.
    Upgrade,
}

#[derive(Clone, Debug)]
enum State {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilEof,
}

/// How a head says its body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    None,
    Length(u64),
    Chunked,
    UntilEof,
}

impl Body {
    fn state(self) -> State {
        match self {
            Body::None => State::Head,
            Body::Length(n) => State::Length(n),
            Body::Chunked => State::Chunked(ChunkedDecoder::default()),
            Body::UntilEof => State::UntilEof,
        }
    }
}

/// The last final head parsed, byte for byte, and what it decided. A server
/// under load sends the same head again and again (until its `Date` ticks),
/// and identical bytes frame identically: a compare replaces a parse.
#[derive(Clone, Debug)]
struct HeadCache {
    bytes: [u8; CACHED_HEAD],
    len: usize,
    completed: Completed,
    body: Body,
}

/// Frames the responses of one connection, in order.
#[derive(Clone, Debug)]
pub struct ResponseParser {
    state: State,
    current: Completed,
    head_request: bool,
    max_head: usize,
    limits: Limits,
    cache: HeadCache,
}

impl ResponseParser {
    /// A parser for responses to `HEAD` requests (`head_request`: no bodies)
    /// or other methods, refusing heads longer than `max_head` bytes.
    pub fn new(head_request: bool, max_head: usize) -> Self {
        ResponseParser {
            state: State::Head,
            current: Completed {
                status: 0,
                close: false,
            },
            head_request,
            max_head,
            limits: Limits {
                max_body: u64::MAX,
                max_header_bytes: max_head,
                header_read_timeout: Duration::MAX,
                idle_timeout: Duration::MAX,
                ..Limits::default()
            },
            cache: HeadCache {
                bytes: [0; CACHED_HEAD],
                len: 0,
                completed: Completed {
                    status: 0,
                    close: false,
                },
                body: Body::None,
            },
        }
    }

    /// Forgets any partial response (the connection was replaced).
    pub fn reset(&mut self) {
        self.state = State::Head;
    }

    /// Whether the parser sits between responses.
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Head)
    }

    /// Consumes what it can of `input`, stopping right after the end of the
    /// first response that completes. `consumed == 0` without a completion
    /// means more input is needed.
    pub fn advance(&mut self, input: &[u8]) -> Result<Step, FramingError> {
        let mut consumed = 0;
        loop {
            let rest = &input[consumed..];
            match &mut self.state {
                State::Head => {
                    if rest.is_empty() {
                        return Ok(self.step(consumed, false));
                    }
                    match self.parse_head(rest)? {
                        None => return Ok(self.step(consumed, false)),
                        Some((len, interim)) => {
                            consumed += len;
                            if interim {
                                continue;
                            }
                            if matches!(self.state, State::Head) {
                                return Ok(self.step(consumed, true));
                            }
                        }
                    }
                }
                State::Length(left) => {
                    let take = (*left).min(rest.len() as u64);
                    consumed += take as usize;
                    *left -= take;
                    let done = *left == 0;
                    if done {
                        self.state = State::Head;
                    }
                    return Ok(self.step(consumed, done));
                }
                State::Chunked(decoder) => {
                    let d = decoder
                        .decode(rest, &self.limits)
                        .map_err(|_| FramingError::BadChunk)?;
                    consumed += d.consumed;
                    if d.done {
                        self.state = State::Head;
                    }
                    return Ok(self.step(consumed, d.done));
                }
                State::UntilEof => return Ok(self.step(input.len(), false)),
            }
        }
    }

    /// The stream ended: completes a body delimited by the end of the stream.
    pub fn on_eof(&mut self) -> Option<Completed> {
        if matches!(self.state, State::UntilEof) {
            self.state = State::Head;
            Some(self.current)
        } else {
            None
        }
    }

    fn step(&self, consumed: usize, done: bool) -> Step {
        Step {
            consumed,
            completed: done.then_some(self.current),
        }
    }

    /// Parses one head; returns its length and whether it was an interim
    /// (1xx) response, and sets up the body state.
    fn parse_head(&mut self, input: &[u8]) -> Result<Option<(usize, bool)>, FramingError> {
        let cached = self.cache.len;
        if cached > 0 && input.len() >= cached && input[..cached] == self.cache.bytes[..cached] {
            self.current = self.cache.completed;
            self.state = self.cache.body.state();
            return Ok(Some((cached, false)));
        }
        let mut headers =
            [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            input,
            &mut headers,
        ) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if input.len() >= self.max_head => {
                return Err(FramingError::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(FramingError::BadHead),
        };
        let status = response.code.unwrap_or(0);
        if status == 101 {
            return Err(FramingError::Upgrade);
        }
        if (100..200).contains(&status) {
            return Ok(Some((len, true)));
        }
        let mut close = response.version == Some(0);
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut other_coding = false;
        for h in response.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let value = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or(FramingError::BadLength)?;
                if length.is_some_and(|l| l != value) {
                    return Err(FramingError::BadLength);
                }
                length = Some(value);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
                chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
                other_coding = !chunked;
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive")
                        && response.version == Some(0)
                    {
                        close = false;
                    }
                }
            }
        }
        let no_body = self.head_request || status == 204 || status == 304;
        let body = if no_body {
            Body::None
        } else if chunked {
            Body::Chunked
        } else if other_coding {
            close = true;
            Body::UntilEof
        } else {
            match length {
                Some(0) => Body::None,
                Some(n) => Body::Length(n),
                None => {
                    close = true;
                    Body::UntilEof
                }
            }
        };
        self.current = Completed { status, close };
        self.state = body.state();
        if len <= CACHED_HEAD {
            self.cache.bytes[..len].copy_from_slice(&input[..len]);
            self.cache.len = len;
            self.cache.completed = self.current;
            self.cache.body = body;
        }
        Ok(Some((len, false)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `stream` in pieces cut at `cuts`, the way a socket might deliver
    /// it, keeping unconsumed bytes like a read buffer does.
    fn frame(stream: &[u8], cuts: &[usize]) -> Result<Vec<Completed>, FramingError> {
        let mut parser = ResponseParser::new(false, 8192);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut last = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();
        for p in points {
            buf.extend_from_slice(&stream[last..p]);
            last = p;
            loop {
                let step = parser.advance(&buf)?;
                buf.drain(..step.consumed);
                out.extend(step.completed);
                if step.consumed == 0 && step.completed.is_none() {
                    break;
                }
            }
        }
        out.extend(parser.on_eof());
        Ok(out)
    }

    const MIXED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK\
HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\nX-T: 1\r\n\r\n\
HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n\
HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n\
HTTP/1.0 200 OK\r\n\r\nuntil the end";

    fn statuses(c: &[Completed]) -> Vec<(u16, bool)> {
        c.iter().map(|c| (c.status, c.close)).collect()
    }

    #[test]
    fn frames_every_kind_in_order() {
        let got = frame(MIXED, &[]).unwrap();
        assert_eq!(
            statuses(&got),
            [
                (200, false),
                (404, false),
                (204, false),
                (503, true),
                (200, true)
            ]
        );
    }

    proptest! {
        #[test]
        fn any_split_frames_the_same(cuts in proptest::collection::vec(0usize..400, 0..12)) {
            prop_assert_eq!(frame(MIXED, &cuts).unwrap(), frame(MIXED, &[]).unwrap());
        }
    }

    #[test]
    fn the_same_head_fast_path_only_takes_identical_heads() {
        let stream = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK\
HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK\
HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n0123456789012345678901\
HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK\
HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK";
        let got = frame(stream, &[]).unwrap();
        assert_eq!(
            statuses(&got),
            [
                (200, false),
                (200, false),
                (200, false),
                (200, false),
                (200, true)
            ]
        );
        // A cached head must not match a stream that merely starts like it.
        let mut p = ResponseParser::new(false, 8192);
        p.advance(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
            .unwrap();
        let s = p.advance(b"HTTP/1.1 200 OK\r\nContent-Length: 2").unwrap();
        assert_eq!((s.consumed, s.completed), (0, None));
    }

    #[test]
    fn head_responses_have_no_body() {
        let mut p = ResponseParser::new(true, 8192);
        let s = p
            .advance(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
            .unwrap();
        assert_eq!(s.completed.map(|c| c.status), Some(200));
        assert!(p.at_boundary());
    }

    #[test]
    fn refuses_what_cannot_be_framed() {
        let bad = |input: &[u8]| ResponseParser::new(false, 64).advance(input).unwrap_err();
        assert_eq!(bad(b"HTTX/1.1 200 OK\r\n\r\n"), FramingError::BadHead);
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            FramingError::BadLength
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            FramingError::BadLength
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            FramingError::BadChunk
        );
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(64, b'a');
        assert_eq!(bad(&long), FramingError::HeadTooLarge);
        assert_eq!(
            bad(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            FramingError::Upgrade
        );
    }
}
