//! An incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! It consumes (and discards) chunk data, extensions and trailers byte by byte
//! across any number of reads, so that the next pipelined request starts at the
//! right byte. Line endings inside the chunked framing must be CRLF: a bare LF
//! or CR here is rejected, since lenient chunk parsing is a classic request
//! smuggling vector.

use super::limits::Limits;
use super::status::Status;

/// Most hex digits in a chunk size: 16 fill a u64.
const MAX_SIZE_DIGITS: u8 = 16;
/// Most bytes of chunk extensions on one chunk-size line.
const MAX_EXTENSION_BYTES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Size,
    SizeBws,
    Extension,
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

/// Decoder state for one chunked body.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    size_digits: u8,
    extension_bytes: usize,
    body_len: u64,
    trailer_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            size_digits: 0,
            extension_bytes: 0,
            body_len: 0,
            trailer_bytes: 0,
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
            if let State::Data(remaining) = self.state {
                let take = remaining.min((input.len() - i) as u64);
                i += take as usize;
                self.state = match remaining - take {
                    0 => State::DataCr,
                    left => State::Data(left),
                };
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
        self.state = match (self.state, byte) {
            (Size, b) if b.is_ascii_hexdigit() => {
                if self.size_digits == MAX_SIZE_DIGITS {
                    return Err(Status::BadRequest);
                }
                self.size_digits += 1;
                self.size = self.size << 4 | u64::from(hex_value(b));
                Size
            }
            (Size, b' ' | b'\t') if self.size_digits > 0 => SizeBws,
            (Size, b';') if self.size_digits > 0 => Extension,
            (Size | SizeBws, b'\r') if self.size_digits > 0 => SizeLf,
            (SizeBws, b' ' | b'\t') => SizeBws,
            (SizeBws, b';') => Extension,
            (Extension, b'\r') => SizeLf,
            (Extension, b) if b == b'\t' || (b >= 0x20 && b != 0x7f) => {
                self.extension_bytes += 1;
                if self.extension_bytes > MAX_EXTENSION_BYTES {
                    return Err(Status::BadRequest);
                }
                Extension
            }
            (SizeLf, b'\n') => {
                let size = std::mem::take(&mut self.size);
                self.size_digits = 0;
                self.extension_bytes = 0;
                self.body_len = self.body_len.saturating_add(size);
                if self.body_len > limits.max_body {
                    return Err(Status::ContentTooLarge);
                }
                if size == 0 {
                    TrailerStart
                } else {
                    Data(size)
                }
            }
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart | Trailer, b) if b == b'\t' || (b >= 0x20 && b != 0x7f) => {
                self.trailer_bytes += 1;
                if self.trailer_bytes > limits.max_header_bytes {
                    return Err(Status::HeaderFieldsTooLarge);
                }
                Trailer
            }
            (Trailer, b'\r') => TrailerLf,
            (TrailerLf, b'\n') => TrailerStart,
            (EndLf, b'\n') => Done,
            _ => return Err(Status::BadRequest),
        };
        Ok(())
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
        let body = b"4 ; ext=1\r\nWiki\r\n5\r\npedia\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET";
        let d = decode_all(body).unwrap();
        assert!(d.done);
        assert_eq!(&body[d.consumed..], b"GET");
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
