//! The machine's own floor: the cheapest HTTP/1.1 responder servelab can
//! be, to measure what the machine and the load generator cost before any
//! server is compared (`servelab responder`).
//!
//! One thread, one epoll loop (mio), non-blocking sockets. It parses
//! nothing: a request is counted when the blank line that ends its head (CR
//! LF CR LF) goes by, even split across reads, and each is answered with the
//! same fixed bytes; the answers to one read leave in one write. Latency
//! measured against it is the floor of what any server can show on this
//! machine: virtual CPUs that pause, the scheduler, loopback TCP and the
//! load generator's own delays, none of which a server can remove.
//!
//! ```text
//! loop {
//!     epoll_wait (no timeout: nothing here expires)
//!     listener readable   -> accept until EAGAIN, register each
//!     connection readable -> read until EAGAIN; per CR LF CR LF seen, one
//!                            fixed answer; write them all; EOF, an error or
//!                            a short write (a client not reading) -> close
//! }
//! ```
//!
//! It runs until the process is ended (SIGTERM's default action), as the
//! bench ends every server it starts. Hand-written rather than built on the
//! core on purpose: it is the floor the core is measured against.

use std::io::{self, Read, Write};
use std::net::TcpListener;

use mio::net::{TcpListener as MioListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// The answer to every request: servelab's `200 OK` less its `Date`.
pub const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK";

const LISTENER: Token = Token(usize::MAX);
/// Most answers one read can owe before they are written out in a batch.
const BATCH: usize = 256;

/// One connection: its socket and how much of CR LF CR LF the bytes read so
/// far end with (0-3).
struct Connection {
    stream: TcpStream,
    matched: u8,
}

/// Serves `listener` until the process ends or an epoll call fails.
pub fn run(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = MioListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut connections: Vec<Option<Connection>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut input = vec![0u8; 64 * 1024];
    let output: Vec<u8> = ANSWER.repeat(BATCH);
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    let slot = free.pop().unwrap_or_else(|| {
                        connections.push(None);
                        connections.len() - 1
                    });
                    if poll
                        .registry()
                        .register(&mut stream, Token(slot), Interest::READABLE)
                        .is_ok()
                    {
                        connections[slot] = Some(Connection { stream, matched: 0 });
                    } else {
                        free.push(slot);
                    }
                }
                continue;
            }
            let slot = event.token().0;
            let Some(connection) = connections[slot].as_mut() else {
                continue;
            };
            if !answer(connection, &mut input, &output) {
                if let Some(mut gone) = connections[slot].take() {
                    let _ = poll.registry().deregister(&mut gone.stream);
                }
                free.push(slot);
            }
        }
    }
}

/// Reads what arrived and answers every request head it completes; false
/// once the connection must close.
fn answer(connection: &mut Connection, input: &mut [u8], output: &[u8]) -> bool {
    loop {
        let n = match connection.stream.read(input) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        let heads = count_heads(&input[..n], &mut connection.matched);
        if heads > 0 && !send(&mut connection.stream, heads, output) {
            return false;
        }
    }
}

/// The heads that `bytes` complete, given how much of CR LF CR LF the bytes
/// before them ended with (`matched`, updated).
pub fn count_heads(bytes: &[u8], matched: &mut u8) -> usize {
    let mut heads = 0;
    let mut state = *matched;
    for &b in bytes {
        state = match (state, b) {
            (0 | 2, b'\r') => state + 1,
            (1, b'\n') => 2,
            (3, b'\n') => {
                heads += 1;
                0
            }
            (_, b'\r') => 1,
            _ => 0,
        };
    }
    *matched = state;
    heads
}

/// Writes `heads` answers, in batches of [`BATCH`]; false when the client
/// did not take them at once (it is not reading: a floor does not buffer).
fn send(stream: &mut TcpStream, heads: usize, output: &[u8]) -> bool {
    let mut left = heads;
    while left > 0 {
        let n = left.min(BATCH);
        let bytes = &output[..n * ANSWER.len()];
        let mut written = 0;
        while written < bytes.len() {
            match stream.write(&bytes[written..]) {
                Ok(0) => return false,
                Ok(w) => written += w,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        left -= n;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream as StdStream;
    use std::time::Duration;

    #[test]
    fn heads_are_counted_at_their_blank_line_however_split() {
        let two = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        for cut in 0..=two.len() {
            let mut matched = 0;
            let heads =
                count_heads(&two[..cut], &mut matched) + count_heads(&two[cut..], &mut matched);
            assert_eq!(heads, 2, "split at {cut}");
            assert_eq!(matched, 0);
        }
        let mut matched = 0;
        assert_eq!(count_heads(b"\r\r\n\r\r\n\r\n", &mut matched), 1);
        assert_eq!(count_heads(b"a\r\nb\r\n", &mut matched), 0);
    }

    #[test]
    fn answers_every_pipelined_request_in_one_batch() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || run(listener));
        let mut client = StdStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let requests = 300; // more than one batch
        client
            .write_all(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(requests))
            .unwrap();
        let mut got = vec![0u8; requests * ANSWER.len()];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, ANSWER.repeat(requests));
    }
}
