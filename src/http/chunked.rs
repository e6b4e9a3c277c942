//! An incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! It consumes (and discards) chunk data, extensions and trailers byte by byte
//! across any number of reads, so that the next pipelined request starts at the
//! right byte. It holds the framing to its grammar exactly, since lenient chunk
//! parsing is a classic request smuggling vector: line endings inside the
//! framing must be CRLF (a bare LF or CR is rejected), whitespace after a
//! chunk size is allowed only before a `;`, chunk extensions must be
//! `;name[=token|quoted-string]` (a quoted string cannot hide a CRLF), and
//! each trailer line must be `name ":" value` (no obs-fold).

use super::limits::Limits;
use super::request::is_tchar;
use super::status::Status;

/// Most hex digits in a chunk size: 16 fill a u64.
const MAX_SIZE_DIGITS: u8 = 16;
/// Most bytes of chunk extensions on one chunk-size line.
const MAX_EXTENSION_BYTES: u16 = 4096;

/// Where the decoder is in `chunked-body` (RFC 9112 §7.1); the `Ext*` states
/// walk `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`.
/// One byte: the numbers live in [`ChunkedDecoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Size,
    /// Whitespace after the size, which only a `;` may follow.
    SizeBws,
    /// After `;`, before the extension name.
    ExtNameStart,
    ExtName,
    /// Whitespace after a name, before `=` or `;`.
    ExtNameBws,
    /// After `=`, before the value.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedPair,
    /// Right after a closing quote.
    ExtQuoteEnd,
    /// Whitespace after a value, which only a `;` may follow.
    ExtValueBws,
    SizeLf,
    /// Inside chunk data; [`ChunkedDecoder::size`] bytes of it are left.
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

/// Decoder state for one chunked body: 24 bytes, part of every connection's
/// state (the counters are as wide as their limits need).
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    /// The chunk size being read; then, in [`State::Data`], what is left of
    /// the chunk's data; after the last chunk, the trailer bytes so far
    /// (counted against [`Limits::max_header_bytes`]).
    size: u64,
    body_len: u64,
    extension_bytes: u16,
    size_digits: u8,
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            size: 0,
            body_len: 0,
            extension_bytes: 0,
            size_digits: 0,
            state: State::Size,
        }
    }
}

/// How far a call to [`ChunkedDecoder::decode`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes consumed.
    pub consumed: usize,
    /// Whether the body (last chunk and trailers) is complete.
    pub done: bool,
}

impl ChunkedDecoder {
    /// Consumes as much of `input` as belongs to this body.
    ///
    /// Errors: malformed framing is 400, a decoded body over
    /// [`Limits::max_body`] is 413, trailers over [`Limits::max_header_bytes`] are 431.
    pub fn decode(&mut self, input: &[u8], limits: &Limits) -> Result<Decoded, Status> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            if self.state == State::Data {
                let take = self.size.min((input.len() - i) as u64);
                i += take as usize;
                self.size -= take;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.step(input[i], limits)?;
            i += 1;
        }
        Ok(Decoded {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    fn step(&mut self, byte: u8, limits: &Limits) -> Result<(), Status> {
        use State::*;
        let ws = byte == b' ' || byte == b'\t';
        let extension = matches!(
            self.state,
            SizeBws
                | ExtNameStart
                | ExtName
                | ExtNameBws
                | ExtValueStart
                | ExtToken
                | ExtQuoted
                | ExtQuotedPair
                | ExtQuoteEnd
                | ExtValueBws
        );
        if extension {
            self.extension_bytes += 1;
            if self.extension_bytes > MAX_EXTENSION_BYTES {
                return Err(Status::BadRequest);
            }
        }
        self.state = match (self.state, byte) {
            (Size, b) if b.is_ascii_hexdigit() => {
                if self.size_digits == MAX_SIZE_DIGITS {
                    return Err(Status::BadRequest);
                }
                self.size_digits += 1;
                self.size = self.size << 4 | u64::from(hex_value(b));
                Size
            }
            (Size, _) if self.size_digits == 0 => return Err(Status::BadRequest),
            (Size, _) if ws => SizeBws,
            (Size, b';') => ExtNameStart,
            (Size, b'\r') => SizeLf,
            (SizeBws, _) if ws => SizeBws,
            (SizeBws, b';') => ExtNameStart,
            (ExtNameStart, _) if ws => ExtNameStart,
            (ExtNameStart | ExtName, b) if is_tchar(b) => ExtName,
            (ExtName | ExtNameBws, _) if ws => ExtNameBws,
            (ExtName | ExtNameBws, b'=') => ExtValueStart,
            (ExtName | ExtNameBws, b';') => ExtNameStart,
            (ExtName, b'\r') => SizeLf,
            (ExtValueStart, _) if ws => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart | ExtToken, b) if is_tchar(b) => ExtToken,
            (ExtToken | ExtQuoteEnd | ExtValueBws, _) if ws => ExtValueBws,
            (ExtToken | ExtQuoteEnd | ExtValueBws, b';') => ExtNameStart,
            (ExtToken | ExtQuoteEnd, b'\r') => SizeLf,
            (ExtQuoted, b'"') => ExtQuoteEnd,
            (ExtQuoted, b'\\') => ExtQuotedPair,
            (ExtQuoted | ExtQuotedPair, b) if ws || b.is_ascii_graphic() => ExtQuoted,
            (SizeLf, b'\n') => {
                self.size_digits = 0;
                self.extension_bytes = 0;
                self.body_len = self.body_len.saturating_add(self.size);
                if self.body_len > limits.max_body {
                    return Err(Status::ContentTooLarge);
                }
                // The size stays: it counts the chunk's data down, or (the
                // last chunk's size, 0) the trailer bytes up.
                if self.size == 0 {
                    TrailerStart
                } else {
                    Data
                }
            }
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart | TrailerName, b) if is_tchar(b) => {
                self.trailer_byte(TrailerName, limits)?
            }
            (TrailerName, b':') => self.trailer_byte(TrailerValue, limits)?,
            (TrailerValue, b) if b == b'\t' || (b >= 0x20 && b != 0x7f) => {
                self.trailer_byte(TrailerValue, limits)?
            }
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerLf, b'\n') => TrailerStart,
            (EndLf, b'\n') => Done,
            _ => return Err(Status::BadRequest),
        };
        Ok(())
    }

    /// Counts one trailer byte against [`Limits::max_header_bytes`].
    fn trailer_byte(&mut self, next: State, limits: &Limits) -> Result<State, Status> {
        self.size += 1;
        if self.size > limits.max_header_bytes as u64 {
            return Err(Status::HeaderFieldsTooLarge);
        }
        Ok(next)
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Decoded, Status> {
        ChunkedDecoder::default().decode(input, &Limits::default())
    }

    #[test]
    fn whole_body_with_extensions_and_trailers() {
        let body = b"4 ; ext=1\r\nWiki\r\n5\r\npedia\r\nA;a;b = \"q\\\"s;\\r\" ;c=d\r\n0123456789\r\n0\r\nX-T: 1\r\nY:\r\n\r\nGET";
        let d = decode_all(body).unwrap();
        assert!(d.done);
        assert_eq!(&body[d.consumed..], b"GET");
    }

    /// Every form of `chunk-ext` the grammar allows, and the near misses
    /// that lenient parsers accept differently.
    #[test]
    fn extension_grammar() {
        let ext = |e: &[u8]| decode_all(&[&b"1"[..], e, b"\r\nx\r\n0\r\n\r\n"].concat());
        for good in [
            &b";a"[..],
            b";a=b",
            b" ;a",
            b"\t; a = b ; c",
            b";a=\"\"",
            b";a=\"b c;d=e\"",
            b";a=\"\\\"\"",
            b";a=\"b\" ;c",
        ] {
            assert!(
                ext(good).is_ok_and(|d| d.done),
                "{:?}",
                String::from_utf8_lossy(good)
            );
        }
        for bad in [
            &b" "[..],      // whitespace with no extension after it
            b";",           // no name
            b";=b",         // no name
            b";a ",         // whitespace before the line end
            b";a=",         // no value
            b";a=b ",       // whitespace before the line end
            b";a b",        // two names
            b";a=b c",      // two values
            b";a=\"b",      // unterminated: the CRLF would be inside it
            b";a=\"b\"c",   // bytes after the quote
            b";a=\"\x01\"", // control character
            b";a=\xa0",     // non-ASCII
            b";a\xa0",
            b";a=\"\xa0\"",
            b";a\nb",
        ] {
            assert_eq!(
                ext(bad),
                Err(Status::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn trailer_grammar() {
        let trailer = |t: &[u8]| decode_all(&[&b"0\r\n"[..], t, b"\r\n"].concat());
        assert!(trailer(b"X: 1\r\nY:\t\xa0\r\n").is_ok_and(|d| d.done));
        for bad in [
            &b"X\r\n"[..],         // no colon
            b": 1\r\n",            // no name
            b"X : 1\r\n",          // space before the colon
            b"X: 1\r\n Y\r\n",     // obs-fold
            b"X: 1\n",             // bare LF
            b"GET / HTTP/1.1\r\n", // a request line is not a field
            b"X: \x01\r\n",
        ] {
            assert_eq!(
                trailer(bad),
                Err(Status::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// The decoder is part of every connection's state: it stays small.
    #[test]
    fn decoder_is_24_bytes() {
        assert_eq!(std::mem::size_of::<ChunkedDecoder>(), 24);
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let body = b"3\r\nabc\r\n0\r\n\r\n";
        let mut dec = ChunkedDecoder::default();
        let limits = Limits::default();
        for (i, b) in body.iter().enumerate() {
            let d = dec.decode(std::slice::from_ref(b), &limits).unwrap();
            assert_eq!(d.consumed, 1);
            assert_eq!(d.done, i == body.len() - 1);
        }
    }

    #[test]
    fn rejects_bad_framing() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"3\nabc\r\n",
            b"3\r\nabcX",
            b"3\r\nabc\n0\r\n\r\n",
            b"0\r\n\r\r",
            b"11111111111111111\r\n",
            b"3;\x01\r\n",
            b"5 6\r\n",
            b"5 \r\n",
            b" 5\r\n",
            b"+5\r\n",
            b"-5\r\n",
            b"0x5\r\n",
            b"5\x00\r\n",
            b"5\r\r\n",
        ] {
            assert_eq!(decode_all(bad), Err(Status::BadRequest), "{bad:?}");
        }
    }

    #[test]
    fn enforces_body_and_trailer_limits() {
        let limits = Limits {
            max_body: 10,
            max_header_bytes: 8,
            ..Limits::default()
        };
        let mut dec = ChunkedDecoder::default();
        assert_eq!(
            dec.decode(b"6\r\nabcdef\r\n", &limits).map(|d| d.done),
            Ok(false)
        );
        assert_eq!(dec.decode(b"5\r\n", &limits), Err(Status::ContentTooLarge));
        let mut dec = ChunkedDecoder::default();
        assert_eq!(
            dec.decode(b"0\r\nX-Long: 123456\r\n\r\n", &limits),
            Err(Status::HeaderFieldsTooLarge)
        );
        let mut dec = ChunkedDecoder::default();
        assert_eq!(
            dec.decode(b"ffffffffffffffff\r\n", &limits),
            Err(Status::ContentTooLarge)
        );
    }
}
