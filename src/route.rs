//! The routing logic every model serves, as an [`http::Handler`](Handler),
//! and the optional per-request [`Work`] that makes a request cost something.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::http::{Answer, Handler, Pending, Reply, Request, Status, Ticket};
use crate::units::{parse_duration, parse_share_ppm, share_percent};

/// Where the seed's routing sends a request: `GET|HEAD /` -> 200 `OK` (or
/// the body `serve --body` sets); `/`
/// with another method -> 405 with `Allow: GET, HEAD`; any other path ->
/// 404. `OPTIONS *` addresses the server as a whole, which is the same
/// resource as `/` here. With `serve --slow-work` (and only then), `/slow`
/// is a second resource like `/` ([`Route::Slow`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET` or `HEAD` of `/`.
    Root,
    /// `GET` or `HEAD` of `/slow`, where the routes have one
    /// ([`Routes::slow_work`]): answered as [`Route::Root`] is, after its
    /// own work.
    Slow,
    /// `/` (or `/slow`, where it exists) with another method.
    NotAllowed,
    /// Any other path.
    NotFound,
}

/// The methods `/` allows, as sent in `Allow`.
pub const ROOT_ALLOW: &str = "GET, HEAD";

/// The path of [`Route::Slow`].
pub const SLOW_PATH: &str = "/slow";

impl Route {
    /// The route `request` takes under the seed's routing (no `/slow`).
    #[inline]
    pub fn of(request: &Request<'_>) -> Route {
        Route::with_slow(request, false)
    }

    /// The route `request` takes, with `/slow` a resource of its own when
    /// `slow` says so (else a 404, as every other path).
    #[inline]
    pub fn with_slow(request: &Request<'_>, slow: bool) -> Route {
        let resource = if request.path == "/" || request.path == "*" {
            Route::Root
        } else if slow && request.path == SLOW_PATH {
            Route::Slow
        } else {
            return Route::NotFound;
        };
        match request.method {
            "GET" | "HEAD" => resource,
            _ => Route::NotAllowed,
        }
    }

    /// The reply the route gives, with the seed's body for `GET /`.
    #[inline]
    pub fn reply(self) -> Reply {
        self.reply_with(SEED_BODY)
    }

    /// The reply the route gives, with `body` for `GET /` (and `GET /slow`).
    #[inline]
    pub fn reply_with(self, body: &'static [u8]) -> Reply {
        match self {
            Route::Root | Route::Slow => Reply {
                status: Status::Ok,
                body,
                allow: None,
            },
            Route::NotAllowed => Reply {
                allow: Some(ROOT_ALLOW),
                ..Reply::plain(Status::MethodNotAllowed)
            },
            Route::NotFound => Reply::plain(Status::NotFound),
        }
    }

    /// The route as a parked request's ticket: all a handler needs to know
    /// of a request once its wait is over.
    fn ticket(self) -> Ticket {
        Ticket(self as u64)
    }

    /// The route a ticket of [`Route::ticket`] carries.
    fn of_ticket(ticket: Ticket) -> Route {
        [Route::Root, Route::Slow, Route::NotAllowed, Route::NotFound]
            .into_iter()
            .find(|route| route.ticket() == ticket)
            .unwrap_or(Route::NotFound)
    }
}

/// The seed's routes ([`Route`]), answered at once.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeedRoutes;

impl Handler for SeedRoutes {
    #[inline]
    fn handle(&mut self, request: &Request<'_>) -> Answer {
        Answer::Now(Route::of(request).reply())
    }

    fn resume(&mut self, ticket: Ticket) -> Reply {
        Route::of_ticket(ticket).reply()
    }
}

/// What each request costs its handler beyond routing (`serve --work`): the
/// seed's handlers cost nothing, real ones burn CPU or wait on something, and
/// the models' trade-offs change when they do.
///
/// How long each request's work lasts is a [`ServiceTime`]: fixed
/// (`cpu:50us`), exponential around a mean (`cpu:exp(50us)`) or bimodal
/// (`cpu:10us|1ms@1%`: 10 µs, but 1 ms for 1% of requests). Every form reads
/// back what it prints ([`Work::from_str`], [`fmt::Display`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Work {
    /// Routing only (`none`, the default).
    #[default]
    None,
    /// Burn this much CPU time per request, spinning on the clock (`cpu:50us`).
    Cpu(ServiceTime),
    /// Block the serving thread this long per request, as a handler waiting on
    /// a database would (`wait:1ms`).
    Wait(ServiceTime),
    /// Wait this long per request without holding the serving thread
    /// (`await:1ms`): the handler parks the request ([`Answer::Later`]), as
    /// an asynchronous database call would. v1-v3 have no way to wait but
    /// on their thread, so for them it is [`Work::Wait`].
    Await(ServiceTime),
}

/// The longest work one request may be given: past it a request would outlive
/// every default deadline, which is not a handler cost any more but a hang.
/// Every duration given must be at most this, and every draw of a
/// distribution is cut to it (an exponential's tail has no end).
pub const MAX_WORK: Duration = Duration::from_secs(1);

impl Work {
    /// Whether the work takes time on the thread that calls the handler.
    pub fn holds_thread(self) -> bool {
        matches!(self, Work::Cpu(_) | Work::Wait(_))
    }

    /// Spends the work on the calling thread ([`Work::Await`] spends none:
    /// the request is parked instead). A distribution is drawn from once.
    #[inline]
    pub fn spend(self) {
        match self {
            Work::None | Work::Await(_) => {}
            Work::Cpu(time) => {
                let d = time.draw();
                let start = Instant::now();
                while start.elapsed() < d {
                    std::hint::spin_loop();
                }
            }
            Work::Wait(time) => std::thread::sleep(time.draw()),
        }
    }
}

impl FromStr for Work {
    type Err = String;

    /// Parses `none` or `KIND:TIME`, KIND one of `cpu`, `wait`, `await` and
    /// TIME a [`ServiceTime`] (`cpu:50us`, `wait:exp(1ms)`, `await:1ms|20ms@5%`).
    fn from_str(text: &str) -> Result<Work, String> {
        let usage = "expected none or KIND:TIME, KIND one of cpu, wait, await and TIME \
                     a duration (50us), exp(MEAN) or USUAL|RARE@SHARE% \
                     (e.g. cpu:50us, wait:exp(1ms), await:1ms|20ms@5%)";
        if text == "none" {
            return Ok(Work::None);
        }
        let (kind, time) = text
            .split_once(':')
            .ok_or_else(|| format!("invalid work {text:?}: {usage}"))?;
        let kind = match kind {
            "cpu" => Work::Cpu,
            "wait" => Work::Wait,
            "await" => Work::Await,
            _ => return Err(format!("invalid work {text:?}: {usage}")),
        };
        let time = time
            .parse::<ServiceTime>()
            .map_err(|why| format!("invalid work {text:?}: {why}"))?;
        Ok(kind(time))
    }
}

impl fmt::Display for Work {
    /// The form [`Work::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::None => write!(f, "none"),
            Work::Cpu(time) => write!(f, "cpu:{time}"),
            Work::Wait(time) => write!(f, "wait:{time}"),
            Work::Await(time) => write!(f, "await:{time}"),
        }
    }
}

/// How long one request's [`Work`] lasts: the same every time, or drawn per
/// request from a distribution (each duration above 0 and at most
/// [`MAX_WORK`]; every draw is cut to [`MAX_WORK`]).
///
/// Draws are deterministic: each thread that calls a handler draws from its
/// own stream of a seeded generator ([`Draws`]), so two runs of the same
/// server draw the same durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceTime {
    /// This long, every request (`50us`).
    Fixed(Duration),
    /// Exponentially distributed with this mean (`exp(50us)`): most requests
    /// are short, a few much longer (1% last over 4.6 means). Draws past
    /// [`MAX_WORK`] are cut to it, which lowers the mean noticeably only for
    /// a mean within a few tenths of it.
    Exp {
        /// The mean.
        mean: Duration,
    },
    /// Two durations (`10us|1ms@1%`): `usual`, except for a share of
    /// requests (`rare_ppm` per million, written as a percentage with up to
    /// 4 decimals) that take `rare`.
    Bimodal {
        /// The duration most requests take.
        usual: Duration,
        /// The duration the others take.
        rare: Duration,
        /// How many requests in a million take `rare`: above 0, below a million.
        rare_ppm: u32,
    },
}

impl From<Duration> for ServiceTime {
    fn from(d: Duration) -> ServiceTime {
        ServiceTime::Fixed(d)
    }
}

impl ServiceTime {
    /// The duration of one request: the fixed one, or a draw from the calling
    /// thread's stream ([`next_draw`]).
    #[inline]
    pub fn draw(self) -> Duration {
        match self {
            ServiceTime::Fixed(d) => d,
            _ => self.at(next_draw()),
        }
    }

    /// The duration for the uniformly distributed 64-bit draw `x`, by the
    /// inverse of the distribution function; at most [`MAX_WORK`].
    pub fn at(self, x: u64) -> Duration {
        match self {
            ServiceTime::Fixed(d) => d,
            ServiceTime::Exp { mean } => {
                // 53 bits to a uniform in (0, 1]: ln never sees 0.
                let u = ((x >> 11) + 1) as f64 / (1u64 << 53) as f64;
                let nanos = mean.as_nanos() as f64 * -u.ln();
                // The cast saturates; the cap keeps it far from that anyway.
                Duration::from_nanos(nanos.min(MAX_WORK.as_nanos() as f64) as u64)
            }
            ServiceTime::Bimodal {
                usual,
                rare,
                rare_ppm,
            } => {
                // x scaled to [0, 1_000_000): the high half of x * 10^6.
                let per_million = ((u128::from(x) * 1_000_000) >> 64) as u32;
                if per_million < rare_ppm {
                    rare
                } else {
                    usual
                }
            }
        }
    }

    /// The distribution's mean, before draws are cut to [`MAX_WORK`].
    pub fn mean(self) -> Duration {
        match self {
            ServiceTime::Fixed(d) => d,
            ServiceTime::Exp { mean } => mean,
            ServiceTime::Bimodal {
                usual,
                rare,
                rare_ppm,
            } => {
                let ppm = u128::from(rare_ppm);
                let nanos =
                    (usual.as_nanos() * (1_000_000 - ppm) + rare.as_nanos() * ppm) / 1_000_000;
                Duration::from_nanos(nanos as u64)
            }
        }
    }
}

/// One duration of a [`ServiceTime`]: above 0 and at most [`MAX_WORK`].
fn work_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() || d > MAX_WORK {
        return Err(format!(
            "the duration {text:?} must be above 0 and at most {MAX_WORK:?}"
        ));
    }
    Ok(d)
}

impl FromStr for ServiceTime {
    type Err = String;

    /// Parses `DURATION` (`50us`), `exp(MEAN)` (`exp(50us)`) or
    /// `USUAL|RARE@SHARE%` (`10us|1ms@1%`).
    fn from_str(text: &str) -> Result<ServiceTime, String> {
        if let Some(mean) = text.strip_prefix("exp(").and_then(|t| t.strip_suffix(')')) {
            return Ok(ServiceTime::Exp {
                mean: work_duration(mean)?,
            });
        }
        if let Some((usual, rest)) = text.split_once('|') {
            let (rare, share) = rest.split_once('@').ok_or_else(|| {
                format!(
                    "invalid service time {text:?}: expected USUAL|RARE@SHARE%, e.g. 10us|1ms@1%"
                )
            })?;
            return Ok(ServiceTime::Bimodal {
                usual: work_duration(usual)?,
                rare: work_duration(rare)?,
                rare_ppm: parse_share_ppm(share)?,
            });
        }
        Ok(ServiceTime::Fixed(work_duration(text)?))
    }
}

/// A duration as [`parse_duration`] reads it back: whole microseconds when
/// it has no fraction of one (as every duration of the CLI's has, unless
/// given so), nanoseconds as a fraction otherwise.
struct Micros(Duration);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        match nanos % 1000 {
            0 => write!(f, "{}us", nanos / 1000),
            rest => {
                let fraction = format!("{rest:03}");
                write!(f, "{}.{}us", nanos / 1000, fraction.trim_end_matches('0'))
            }
        }
    }
}

impl fmt::Display for ServiceTime {
    /// The form [`ServiceTime::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceTime::Fixed(d) => write!(f, "{}", Micros(d)),
            ServiceTime::Exp { mean } => write!(f, "exp({})", Micros(mean)),
            ServiceTime::Bimodal {
                usual,
                rare,
                rare_ppm,
            } => {
                write!(
                    f,
                    "{}|{}@{}",
                    Micros(usual),
                    Micros(rare),
                    share_percent(rare_ppm)
                )
            }
        }
    }
}

/// The seed of every stream of draws: fixed, so that runs compare.
pub const DRAW_SEED: u64 = 0x5e7e_1ab5_eed0_0001;

/// A stream of uniformly distributed 64-bit draws: SplitMix64 (Steele, Lea
/// and Flood, 2014), whose state is a counter; each stream starts where its
/// seed and number hash to. Small, fast and good enough to pick service
/// times; not for anything that must be unpredictable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draws {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Draws {
    /// Stream number `stream` of the generator seeded with `seed`: the same
    /// pair gives the same draws.
    pub fn new(seed: u64, stream: u64) -> Draws {
        Draws {
            state: mix64(seed ^ mix64(stream.wrapping_add(GOLDEN_GAMMA))),
        }
    }

    /// The next draw.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }
}

/// Stream numbers handed out to threads, in the order they first draw.
static STREAMS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The calling thread's stream of draws. Per thread, because the handler
    /// has nowhere else to keep one: a reactor's connections share one
    /// `&Routes` (no `&mut` to a state there, and an atomic or a lock shared
    /// by every reactor would cost each request a contended cache line),
    /// while the blocking models copy `Routes` into each connection (a state
    /// there would restart every connection at the same first draw). A
    /// thread's `Cell` needs no lock and no allocation, and each thread
    /// (each connection's, in v2) gets a stream of its own on its first draw.
    static THREAD_DRAWS: Cell<Draws> =
        Cell::new(Draws::new(DRAW_SEED, STREAMS.fetch_add(1, Ordering::Relaxed)));
}

/// The next draw of the calling thread's stream.
#[inline]
fn next_draw() -> u64 {
    THREAD_DRAWS.with(|cell| {
        let mut draws = cell.get();
        let x = draws.next_u64();
        cell.set(draws);
        x
    })
}

/// The body `GET /` answers by default: the seed's.
pub const SEED_BODY: &[u8] = b"OK";

/// The largest body `serve --body` may give `GET /` (16 MiB): the whole body
/// is copied into a connection's output buffer per response.
pub const MAX_BODY: usize = 16 << 20;

/// A `GET /` body of `size` bytes (at most [`MAX_BODY`]): printable ASCII,
/// in 64-byte lines (63 characters and a newline) of a repeating pattern, so
/// that a misplaced byte shows. Built once when a server is configured and
/// leaked, since a [`Reply`]'s body is `&'static` and the server serves it
/// for as long as the process lives: call it once per configuration, not per
/// request.
pub fn leak_body(size: usize) -> &'static [u8] {
    assert!(
        size <= MAX_BODY,
        "a body of {size} bytes is over {MAX_BODY}"
    );
    const PATTERN: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let body: Box<[u8]> = (0..size)
        .map(|i| match i % 64 {
            63 => b'\n',
            column => PATTERN[(i / 64 + column) % PATTERN.len()],
        })
        .collect();
    Box::leak(body)
}

/// The handler every model serves: [`SeedRoutes`] plus the configured
/// [`Work`] per request and `GET /`'s body, optionally a second resource
/// `/slow` with work of its own, and an optional injected fault for tests.
#[derive(Clone, Copy, Debug)]
pub struct Routes {
    /// Spent on every request before it is routed, but those of `/slow`
    /// when it has work of its own.
    pub work: Work,
    /// `serve --slow-work`: `GET|HEAD /slow` is answered as `GET|HEAD /`
    /// is, after this work instead of [`Routes::work`] (other methods get
    /// 405, as on `/`). `None`, the default, leaves `/slow` a 404 as any
    /// other path: the seed's routing. Two kinds of request in one server,
    /// so that a load mixing them (`servelab load --mix /slow:1%`) shows
    /// how long requests delay short ones.
    pub slow_work: Option<Work>,
    /// What `GET /` answers ([`SEED_BODY`] by default; see [`leak_body`]).
    pub body: &'static [u8],
    /// Fault injection: a request for exactly this path makes the handler
    /// panic. Tests use it to check that a panic costs one request, not a
    /// thread; no CLI flag sets it.
    pub panic_path: Option<&'static str>,
}

impl Default for Routes {
    fn default() -> Routes {
        Routes {
            work: Work::None,
            slow_work: None,
            body: SEED_BODY,
            panic_path: None,
        }
    }
}

impl Routes {
    /// The answer to `request`, after the work of its route (or, for
    /// [`Work::Await`], a wait). Always inlined: it is the whole handler of
    /// every request.
    #[inline(always)]
    fn answer(&self, request: &Request<'_>) -> Answer {
        if self.panic_path == Some(request.path) {
            panic!("injected fault: handler panic on {}", request.path);
        }
        let (route, work) = match self.slow_work {
            None => (Route::of(request), self.work),
            Some(slow) => match Route::with_slow(request, true) {
                Route::Slow => (Route::Slow, slow),
                route => (route, self.work),
            },
        };
        if let Work::Await(time) = work {
            // The route rides in the ticket: resume answers /slow as /slow.
            let ticket = route.ticket();
            let after = time.draw();
            return Answer::Later(Pending { after, ticket });
        }
        work.spend();
        Answer::Now(route.reply_with(self.body))
    }
}

impl Handler for Routes {
    #[inline]
    fn handle(&mut self, request: &Request<'_>) -> Answer {
        self.answer(request)
    }

    fn resume(&mut self, ticket: Ticket) -> Reply {
        Route::of_ticket(ticket).reply_with(self.body)
    }
}

/// The reactor models' connections share their server's [`Routes`] rather
/// than each holding a copy: a reference is 8 bytes of every connection's
/// state, the copy several times that.
impl Handler for &Routes {
    #[inline]
    fn handle(&mut self, request: &Request<'_>) -> Answer {
        self.answer(request)
    }

    fn resume(&mut self, ticket: Ticket) -> Reply {
        Route::of_ticket(ticket).reply_with(self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(d: Duration) -> ServiceTime {
        ServiceTime::Fixed(d)
    }

    #[test]
    fn work_parses_and_prints_back() {
        let us = Duration::from_micros;
        assert_eq!("none".parse(), Ok(Work::None));
        assert_eq!("cpu:50us".parse(), Ok(Work::Cpu(fixed(us(50)))));
        assert_eq!(
            "wait:1ms".parse(),
            Ok(Work::Wait(fixed(Duration::from_millis(1))))
        );
        assert_eq!(
            "await:1ms".parse(),
            Ok(Work::Await(fixed(Duration::from_millis(1))))
        );
        assert_eq!(
            "cpu:exp(50us)".parse(),
            Ok(Work::Cpu(ServiceTime::Exp { mean: us(50) }))
        );
        assert_eq!(
            "wait:10us|1ms@1%".parse(),
            Ok(Work::Wait(ServiceTime::Bimodal {
                usual: us(10),
                rare: us(1000),
                rare_ppm: 10_000,
            }))
        );
        assert_eq!(
            "await:1ms|20ms@0.05%".parse::<Work>().unwrap().to_string(),
            "await:1000us|20000us@0.05%"
        );
        for text in [
            "cpu:50us",
            "wait:1000us",
            "await:20us",
            "none",
            "cpu:exp(50us)",
            "await:exp(1000000us)",
            "wait:10us|1000us@1%",
            "cpu:1000us|10us@99.9999%",
            "await:1us|2us@12.5%",
            "cpu:1.5us",
            "cpu:exp(0.25us)",
        ] {
            let work: Work = text.parse().unwrap();
            assert_eq!(work.to_string(), text);
            assert_eq!(work.to_string().parse::<Work>().unwrap(), work);
        }
        for bad in [
            "",
            "cpu",
            "cpu:",
            "cpu:0s",
            "sleep:1ms",
            "wait:2s",
            "await:0s",
            "cpu:-1ms",
            "cpu:exp()",
            "cpu:exp(0us)",
            "cpu:exp(2s)",
            "cpu:exp(50us",
            "cpu:10us|1ms",
            "cpu:10us|1ms@",
            "cpu:10us|1ms@1",
            "cpu:10us|1ms@0%",
            "cpu:10us|1ms@100%",
            "cpu:10us|1ms@-1%",
            "cpu:10us|1ms@1.%",
            "cpu:10us|1ms@.5%",
            "cpu:10us|1ms@0.00001%",
            "cpu:10us|2s@1%",
            "cpu:0us|1ms@1%",
            "cpu:|1ms@1%",
        ] {
            assert!(bad.parse::<Work>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn cpu_work_takes_at_least_its_duration() {
        let start = Instant::now();
        Work::Cpu(fixed(Duration::from_millis(3))).spend();
        assert!(start.elapsed() >= Duration::from_millis(3));
    }

    const DRAWS: usize = 100_000;

    fn draws(time: ServiceTime, stream: u64) -> impl Iterator<Item = Duration> {
        let mut draws = Draws::new(DRAW_SEED, stream);
        (0..DRAWS).map(move |_| time.at(draws.next_u64()))
    }

    #[test]
    fn exponential_draws_have_their_mean() {
        for mean in [Duration::from_micros(50), Duration::from_millis(1)] {
            let time = ServiceTime::Exp { mean };
            let total: Duration = draws(time, 7).sum();
            let sample = total.as_secs_f64() / DRAWS as f64;
            let error = (sample / mean.as_secs_f64() - 1.0).abs();
            assert!(error < 0.02, "mean {mean:?}: sampled {sample}s");
            // Exponential: the median is ln 2 of the mean.
            let below = draws(time, 7)
                .filter(|d| *d < mean.mul_f64(2f64.ln()))
                .count();
            assert!((below as f64 / DRAWS as f64 - 0.5).abs() < 0.01);
        }
    }

    #[test]
    fn draws_are_cut_to_max_work() {
        let time = ServiceTime::Exp { mean: MAX_WORK };
        assert!(draws(time, 1).all(|d| d <= MAX_WORK));
        assert!(draws(time, 1).any(|d| d == MAX_WORK));
        // The extremes of the uniform draw.
        assert_eq!(time.at(u64::MAX), Duration::ZERO);
        assert_eq!(time.at(0), MAX_WORK);
    }

    #[test]
    fn bimodal_draws_take_the_rare_duration_at_their_share() {
        let (usual, rare) = (Duration::from_micros(10), Duration::from_millis(1));
        for rare_ppm in [10_000, 1_000, 500_000] {
            let time = ServiceTime::Bimodal {
                usual,
                rare,
                rare_ppm,
            };
            let rares = draws(time, 3).filter(|d| *d == rare).count();
            assert!(draws(time, 3).all(|d| d == rare || d == usual));
            let expected = DRAWS as f64 * f64::from(rare_ppm) / 1e6;
            // Within 5 standard deviations of the binomial count.
            let sd = (expected * (1.0 - f64::from(rare_ppm) / 1e6)).sqrt();
            assert!(
                (rares as f64 - expected).abs() < 5.0 * sd,
                "{rare_ppm} ppm: {rares} of {DRAWS}"
            );
        }
        let time: ServiceTime = "10us|1ms@1%".parse().unwrap();
        assert_eq!(time.mean(), Duration::from_nanos(19_900));
    }

    #[test]
    fn draws_are_deterministic() {
        let time = ServiceTime::Exp {
            mean: Duration::from_micros(50),
        };
        assert!(draws(time, 5).eq(draws(time, 5)));
        assert!(!draws(time, 5).eq(draws(time, 6)));
        let mut a = Draws::new(1, 0);
        let mut b = Draws::new(2, 0);
        assert_ne!(a.next_u64(), b.next_u64());
        // A fixed time draws nothing: the same every time.
        let fixed = fixed(Duration::from_micros(50));
        assert!(draws(fixed, 1).all(|d| d == Duration::from_micros(50)));
        // A thread's draws come from a stream of its own.
        let time = ServiceTime::Bimodal {
            usual: Duration::from_micros(1),
            rare: Duration::from_micros(2),
            rare_ppm: 500_000,
        };
        let run = move || (0..64).map(|_| time.draw()).collect::<Vec<_>>();
        let here = run();
        let there = std::thread::spawn(run).join().unwrap();
        assert_ne!(here, there);
    }

    #[test]
    fn bodies_are_their_size_and_printable() {
        for size in [0, 1, 2, 63, 64, 65, 16 << 10, 1 << 20] {
            let body = leak_body(size);
            assert_eq!(body.len(), size);
            assert!(body.iter().all(|b| b.is_ascii_graphic() || *b == b'\n'));
        }
        let body = leak_body(128);
        assert_eq!(body[63], b'\n');
        assert_eq!(body[127], b'\n');
        assert_ne!(body[..63], body[64..127]);
        let routes = Routes {
            body,
            ..Routes::default()
        };
        let request = Request {
            method: "GET",
            path: "/",
            target: "/",
            version: crate::http::Version::Http11,
            headers: &[],
        };
        assert_eq!(
            (&routes).handle(&request),
            Answer::Now(Reply {
                status: Status::Ok,
                body,
                allow: None
            })
        );
    }

    fn request<'a>(method: &'a str, path: &'a str) -> Request<'a> {
        Request {
            method,
            path,
            target: path,
            version: crate::http::Version::Http11,
            headers: &[],
        }
    }

    /// `/slow` exists only with its own work, answers as `/` does, and
    /// spends that work instead of `work`; a parked `/slow` resumes as
    /// itself.
    #[test]
    fn slow_is_a_route_only_with_its_own_work() {
        let ok = Reply {
            status: Status::Ok,
            body: SEED_BODY,
            allow: None,
        };
        let not_found = Answer::Now(Reply::plain(Status::NotFound));
        let mut seed = Routes::default();
        assert_eq!(seed.handle(&request("GET", "/slow")), not_found);
        assert_eq!(Route::of(&request("GET", "/slow")), Route::NotFound);

        let ms = |n| fixed(Duration::from_millis(n));
        let mut routes = Routes {
            slow_work: Some(Work::Await(ms(7))),
            ..Routes::default()
        };
        // The slow work only on /slow: / and the 404s answer at once.
        assert_eq!(routes.handle(&request("GET", "/")), Answer::Now(ok));
        assert_eq!(routes.handle(&request("GET", "/slow/x")), not_found);
        assert_eq!(routes.handle(&request("GET", "/slo")), not_found);
        for method in ["GET", "HEAD"] {
            let Answer::Later(pending) = routes.handle(&request(method, "/slow")) else {
                panic!("{method} /slow was not parked");
            };
            assert_eq!(pending.after, Duration::from_millis(7));
            assert_eq!(routes.resume(pending.ticket), ok);
        }
        let Answer::Now(refused) = routes.handle(&request("POST", "/slow")) else {
            panic!("POST /slow was parked");
        };
        assert_eq!(
            (refused.status, refused.allow),
            (Status::MethodNotAllowed, Some(ROOT_ALLOW))
        );

        // The other way round: / parks, /slow (no work) answers at once.
        let mut routes = Routes {
            work: Work::Await(ms(3)),
            slow_work: Some(Work::None),
            ..Routes::default()
        };
        assert_eq!(routes.handle(&request("GET", "/slow")), Answer::Now(ok));
        let Answer::Later(pending) = routes.handle(&request("GET", "/")) else {
            panic!("GET / was not parked");
        };
        assert_eq!(pending.after, Duration::from_millis(3));
        // Every route's ticket comes back as that route.
        for route in [Route::Root, Route::Slow, Route::NotAllowed, Route::NotFound] {
            assert_eq!(Route::of_ticket(route.ticket()), route);
        }
    }

    /// The core's checks know the seed's answers through their own probe
    /// handler (the core imports nothing of its users): the routes served
    /// must give the same answers, whatever the request.
    #[test]
    fn the_routes_answer_as_the_cores_checks_expect() {
        use crate::http::invariants::SeedProbe;
        use crate::http::{Request, Version};
        for path in ["/", "*", "/x", "/?a=1", ""] {
            for method in ["GET", "HEAD", "POST", "OPTIONS", "DELETE"] {
                let request = Request {
                    method,
                    path,
                    target: path,
                    version: Version::Http11,
                    headers: &[],
                };
                let expected = SeedProbe.handle(&request);
                assert_eq!(SeedRoutes.handle(&request), expected, "{method} {path}");
                assert_eq!(Routes::default().handle(&request), expected);
                // Parked, the same reply comes back after the wait.
                let mut waiting = Routes {
                    work: Work::Await(fixed(Duration::from_millis(1))),
                    ..Routes::default()
                };
                let Answer::Later(pending) = waiting.handle(&request) else {
                    panic!("await:1ms did not park {method} {path}");
                };
                assert_eq!(pending.after, Duration::from_millis(1));
                assert_eq!(Answer::Now(waiting.resume(pending.ticket)), expected);
            }
        }
    }
}
