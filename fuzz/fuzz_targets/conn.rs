//! Fuzzes the sans-IO connection core, `servelab::http::Conn`, with the same
//! checks as its property tests (`servelab::http::invariants`): no panic,
//! every output byte a well-formed response, errors close and come last,
//! splitting the input never changes the output, a timeout always ends the
//! connection.
//!
//! Input layout: byte 0 picks the limits (even: the defaults; odd: small
//! ones the input runs into), byte 1 the number of split points (0-7), then
//! two bytes per split point (little-endian, taken modulo the stream length
//! plus one), then the byte stream itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use servelab::http::invariants::{check_arbitrary, small_limits};
use servelab::http::Limits;

fuzz_target!(|data: &[u8]| {
    let [config, splits, rest @ ..] = data else {
        return;
    };
    let limits = if config % 2 == 0 {
        Limits::default()
    } else {
        small_limits()
    };
    let split_bytes = usize::from(splits % 8) * 2;
    if rest.len() < split_bytes {
        return;
    }
    let (positions, input) = rest.split_at(split_bytes);
    let mut cuts: Vec<usize> = positions
        .chunks_exact(2)
        .map(|p| usize::from(u16::from_le_bytes([p[0], p[1]])) % (input.len() + 1))
        .collect();
    cuts.sort_unstable();
    check_arbitrary(input, &cuts, limits);
});
