//! `--mix PATH:SHARE%`: two kinds of request in one run. A share of the
//! requests go to a second path (same method, headers, body and host as the
//! URL's), the rest to the URL's own path, and each kind's latency is
//! recorded apart: long requests holding up short ones (head-of-line
//! blocking) shows as the short kind's tail rising.
//!
//! Which request is which kind is decided by each load thread's [`Mixer`],
//! in the order the thread sends them: an error-diffusion (Bresenham)
//! pattern, so that the kinds are spread evenly (a 10% share is every tenth
//! request, a 1% share every hundredth) and every run of n requests holds
//! n × SHARE of the second kind to within one. Deterministic, so runs
//! compare, and an addition and a comparison per request, as cheap as the
//! hot path asks.

use std::fmt;
use std::str::FromStr;

use crate::units::{parse_share_ppm, share_percent};

/// The kind of a request sent to the URL's own path.
pub const MAIN: u8 = 0;
/// The kind of a request sent to the mix's path.
pub const MIXED: u8 = 1;

/// Parts per million in a whole: the unit of a share.
const WHOLE: u32 = 1_000_000;

/// The second kind of request: its path, and the share of the requests
/// that go to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    /// The request target of the second kind: a path from `/`, with a
    /// query if wanted (`/slow`, `/search?q=x`).
    pub path: String,
    /// How many requests in a million go to `path`: above 0, below a
    /// million.
    pub share_ppm: u32,
}

impl Mix {
    /// Checks what [`Mix::from_str`] checks, for a `Mix` built in code: the
    /// path is a path and cannot break the request line, the share is
    /// within its bounds.
    pub fn check(&self) -> Result<(), String> {
        check_path(&self.path)?;
        if self.share_ppm == 0 || self.share_ppm >= WHOLE {
            return Err(format!(
                "the share of --mix {} must be above 0% and below 100%",
                self.path
            ));
        }
        Ok(())
    }

    /// The share of the URL's own path, in parts per million.
    pub fn main_share_ppm(&self) -> u32 {
        WHOLE - self.share_ppm
    }
}

/// A request target that can stand in a request line: from `/`, without a
/// space, a control byte or a fragment.
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "the path {path:?} must start with / (a path on the URL's host, e.g. /slow)"
        ));
    }
    if let Some(bad) = path.bytes().find(|&b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "the path {path:?} holds byte 0x{bad:02x}; percent-encode it"
        ));
    }
    if path.contains('#') {
        return Err(format!(
            "the path {path:?} holds a fragment (#), which is never sent"
        ));
    }
    Ok(())
}

impl FromStr for Mix {
    type Err = String;

    /// Parses `PATH:SHARE%` (`/slow:1%`, `/x:0.5%`): the share a percentage
    /// above 0 and below 100 with up to 4 decimals, as `serve --work`'s
    /// bimodal share. The last `:` splits, so a path may hold one.
    fn from_str(text: &str) -> Result<Mix, String> {
        let (path, share) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("invalid mix {text:?}: expected PATH:SHARE%, e.g. /slow:1%"))?;
        check_path(path).map_err(|why| format!("invalid mix {text:?}: {why}"))?;
        let share_ppm =
            parse_share_ppm(share).map_err(|why| format!("invalid mix {text:?}: {why}"))?;
        Ok(Mix {
            path: path.to_string(),
            share_ppm,
        })
    }
}

impl fmt::Display for Mix {
    /// The form [`Mix::from_str`] reads back: `/slow:1%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path, share_percent(self.share_ppm))
    }
}

/// One load thread's choice of kind, request by request: a credit grows
/// by the share at every request, and a request that brings it to a whole
/// one goes to the mix's path (and spends it). After n requests from the
/// start, the mix's path had `floor((start + n × share) / whole)` of them,
/// so any n consecutive requests hold `n × share` rounded down or up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mixer {
    share_ppm: u32,
    credit: u32,
}

impl Mixer {
    /// The chooser of thread `thread` of `threads` for a share of
    /// `share_ppm`. Thread i starts with (i + ½) / threads of a request in
    /// credit: one thread rounds its count to the nearest (10% of 1,000
    /// requests is 100, not 99), and several threads' roundings spread
    /// over the interval, so that the run's total stays within one of its
    /// share when the threads send alike, rather than within one per thread.
    pub fn new(share_ppm: u32, thread: usize, threads: usize) -> Mixer {
        let threads = threads.max(1) as u64;
        let thread = (thread as u64).min(threads - 1);
        let start = (2 * thread + 1) * u64::from(WHOLE) / (2 * threads);
        Mixer {
            share_ppm: share_ppm.min(WHOLE),
            credit: start as u32,
        }
    }

    /// The kind of the next request: [`MIXED`] or [`MAIN`].
    #[inline]
    pub fn next_kind(&mut self) -> u8 {
        self.credit += self.share_ppm;
        if self.credit >= WHOLE {
            self.credit -= WHOLE;
            MIXED
        } else {
            MAIN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_print_back_and_refuse_bad_input() {
        assert_eq!(
            "/slow:1%".parse(),
            Ok(Mix {
                path: "/slow".to_string(),
                share_ppm: 10_000
            })
        );
        let mix: Mix = "/a:b?c=1:0.25%".parse().unwrap();
        assert_eq!((mix.path.as_str(), mix.share_ppm), ("/a:b?c=1", 2_500));
        assert_eq!(mix.main_share_ppm(), 997_500);
        for text in ["/slow:1%", "/x:99.9999%", "/:0.0001%", "/q?a=1:12.5%"] {
            assert_eq!(text.parse::<Mix>().unwrap().to_string(), text);
        }
        for (bad, why) in [
            ("/slow", "expected PATH:SHARE%"),
            ("/slow:", "invalid share"),
            ("/slow:1", "invalid share"),
            ("/slow:0.01", "invalid share"),
            ("/slow:0%", "invalid share"),
            ("/slow:100%", "invalid share"),
            ("/slow:-1%", "invalid share"),
            ("/slow:1.00001%", "invalid share"),
            ("slow:1%", "must start with /"),
            (":1%", "must start with /"),
            ("/a b:1%", "byte 0x20"),
            ("/a\r\nX: y:1%", "byte 0x0d"),
            ("/a#b:1%", "fragment"),
        ] {
            let e = bad.parse::<Mix>().unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.starts_with(&format!("invalid mix {bad:?}")), "{e}");
        }
        let built = Mix {
            path: "/x".to_string(),
            share_ppm: WHOLE,
        };
        assert!(built.check().is_err());
    }

    /// The mix's path's requests among the first `n` of `mixer`, in order.
    fn kinds(mut mixer: Mixer, n: usize) -> Vec<u8> {
        (0..n).map(|_| mixer.next_kind()).collect()
    }

    #[test]
    fn one_thread_sends_its_share_rounded_to_the_nearest() {
        for (ppm, n, expected) in [
            (100_000, 1_000, 100),
            (10_000, 1_000, 10),
            (10_000, 150, 2),
            (10_000, 149, 1),
            (500_000, 7, 4),
            (1, 1_000_000, 1),
            (999_999, 1_000, 1_000),
            (333_333, 3_000, 1_000),
        ] {
            let mixed = kinds(Mixer::new(ppm, 0, 1), n)
                .iter()
                .filter(|&&k| k == MIXED)
                .count();
            assert_eq!(mixed, expected, "{ppm} ppm of {n}");
        }
    }

    /// Every window of n consecutive requests holds n × share rounded down
    /// or up (the pattern is balanced), and the mix's requests are evenly
    /// spaced: 1/share apart, rounded down or up.
    #[test]
    fn the_kinds_are_spread_evenly() {
        for ppm in [10_000, 100_000, 123_456, 333_333, 500_000, 900_000, 999] {
            let seq = kinds(Mixer::new(ppm, 0, 1), 20_000);
            for n in [1, 2, 7, 10, 99, 100, 1_001] {
                let exact = n as f64 * f64::from(ppm) / 1e6;
                let mut in_window = seq[..n].iter().filter(|&&k| k == MIXED).count();
                for start in 0..seq.len() - n {
                    assert!(
                        (in_window as f64 - exact).abs() < 1.0,
                        "{ppm} ppm: {in_window} in the window of {n} from {start}"
                    );
                    in_window -= usize::from(seq[start] == MIXED);
                    in_window += usize::from(seq[start + n] == MIXED);
                }
            }
            let at: Vec<usize> = (0..seq.len()).filter(|&i| seq[i] == MIXED).collect();
            let gap = 1e6 / f64::from(ppm);
            for pair in at.windows(2) {
                let d = (pair[1] - pair[0]) as f64;
                assert!(d >= gap.floor() && d <= gap.ceil(), "{ppm} ppm: gap {d}");
            }
        }
    }

    /// Threads sending alike send the run's share to within one, not one
    /// each; and the same thread of the same run chooses the same kinds.
    #[test]
    fn threads_together_send_the_share_to_within_one() {
        for threads in [2, 3, 4, 7] {
            for (ppm, n) in [
                (10_000, 1_000),
                (100_000, 333),
                (250_000, 10),
                (1_234, 5_000),
            ] {
                let total: usize = (0..threads)
                    .map(|t| {
                        kinds(Mixer::new(ppm, t, threads), n)
                            .iter()
                            .filter(|&&k| k == MIXED)
                            .count()
                    })
                    .sum();
                let exact = (threads * n) as f64 * f64::from(ppm) / 1e6;
                assert!(
                    (total as f64 - exact).abs() <= 1.0,
                    "{threads} threads, {ppm} ppm of {n} each: {total}"
                );
            }
        }
        assert_eq!(
            kinds(Mixer::new(123_456, 1, 3), 500),
            kinds(Mixer::new(123_456, 1, 3), 500)
        );
    }
}
