//! The routing logic every model serves, as an [`http::Handler`](Handler),
//! and the optional per-request [`Work`] that makes a request cost something.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::http::{Answer, Handler, Pending, Reply, Request, Status, Ticket};
use crate::units::parse_duration;

/// Where the seed's routing sends a request: `GET|HEAD /` -> 200 `OK`; `/`
/// with another method -> 405 with `Allow: GET, HEAD`; any other path ->
/// 404. `OPTIONS *` addresses the server as a whole, which is the same
/// resource as `/` here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET` or `HEAD` of `/`.
    Root,
    /// `/` with another method.
    NotAllowed,
    /// Any other path.
    NotFound,
}

/// The methods `/` allows, as sent in `Allow`.
pub const ROOT_ALLOW: &str = "GET, HEAD";

impl Route {
    /// The route `request` takes.
    #[inline]
    pub fn of(request: &Request<'_>) -> Route {
        if request.path != "/" && request.path != "*" {
            return Route::NotFound;
        }
        match request.method {
            "GET" | "HEAD" => Route::Root,
            _ => Route::NotAllowed,
        }
    }

    /// The reply the route gives.
    #[inline]
    pub fn reply(self) -> Reply {
        match self {
            Route::Root => Reply {
                status: Status::Ok,
                body: b"OK",
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
        [Route::Root, Route::NotAllowed, Route::NotFound]
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Work {
    /// Routing only (`none`, the default).
    #[default]
    None,
    /// Burn this much CPU time per request, spinning on the clock (`cpu:50us`).
    Cpu(Duration),
    /// Block the serving thread this long per request, as a handler waiting on
    /// a database would (`wait:1ms`).
    Wait(Duration),
    /// Wait this long per request without holding the serving thread
    /// (`await:1ms`): the handler parks the request ([`Answer::Later`]), as
    /// an asynchronous database call would. v1-v3 have no way to wait but
    /// on their thread, so for them it is [`Work::Wait`].
    Await(Duration),
}

/// The longest work one request may be given: past it a request would outlive
/// every default deadline, which is not a handler cost any more but a hang.
pub const MAX_WORK: Duration = Duration::from_secs(1);

impl Work {
    /// Whether the work takes time on the thread that calls the handler.
    pub fn holds_thread(self) -> bool {
        matches!(self, Work::Cpu(_) | Work::Wait(_))
    }

    /// Spends the work on the calling thread ([`Work::Await`] spends none:
    /// the request is parked instead).
    #[inline]
    pub fn spend(self) {
        match self {
            Work::None | Work::Await(_) => {}
            Work::Cpu(d) => {
                let start = Instant::now();
                while start.elapsed() < d {
                    std::hint::spin_loop();
                }
            }
            Work::Wait(d) => std::thread::sleep(d),
        }
    }
}

impl FromStr for Work {
    type Err = String;

    /// Parses `none`, `cpu:DURATION`, `wait:DURATION` or `await:DURATION`
    /// (`cpu:50us`, `wait:1ms`, `await:1ms`).
    fn from_str(text: &str) -> Result<Work, String> {
        let usage = "expected none, cpu:DURATION, wait:DURATION or await:DURATION \
                     (e.g. cpu:50us, wait:1ms, await:1ms)";
        if text == "none" {
            return Ok(Work::None);
        }
        let (kind, amount) = text
            .split_once(':')
            .ok_or_else(|| format!("invalid work {text:?}: {usage}"))?;
        let d = parse_duration(amount)?;
        if d.is_zero() || d > MAX_WORK {
            return Err(format!(
                "invalid work {text:?}: the duration must be above 0 and at most {MAX_WORK:?}"
            ));
        }
        match kind {
            "cpu" => Ok(Work::Cpu(d)),
            "wait" => Ok(Work::Wait(d)),
            "await" => Ok(Work::Await(d)),
            _ => Err(format!("invalid work {text:?}: {usage}")),
        }
    }
}

impl fmt::Display for Work {
    /// The form [`Work::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::None => write!(f, "none"),
            Work::Cpu(d) => write!(f, "cpu:{}us", d.as_micros()),
            Work::Wait(d) => write!(f, "wait:{}us", d.as_micros()),
            Work::Await(d) => write!(f, "await:{}us", d.as_micros()),
        }
    }
}

/// The handler every model serves: [`SeedRoutes`] plus the configured
/// [`Work`] per request, and an optional injected fault for tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Routes {
    /// Spent on every request before it is routed.
    pub work: Work,
    /// Fault injection: a request for exactly this path makes the handler
    /// panic. Tests use it to check that a panic costs one request, not a
    /// thread; no CLI flag sets it.
    pub panic_path: Option<&'static str>,
}

impl Routes {
    /// The answer to `request`, after the configured work (or, for
    /// [`Work::Await`], a wait). Always inlined: it is the whole handler of
    /// every request.
    #[inline(always)]
    fn answer(&self, request: &Request<'_>) -> Answer {
        if self.panic_path == Some(request.path) {
            panic!("injected fault: handler panic on {}", request.path);
        }
        let route = Route::of(request);
        if let Work::Await(after) = self.work {
            let ticket = route.ticket();
            return Answer::Later(Pending { after, ticket });
        }
        self.work.spend();
        Answer::Now(route.reply())
    }
}

impl Handler for Routes {
    #[inline]
    fn handle(&mut self, request: &Request<'_>) -> Answer {
        self.answer(request)
    }

    fn resume(&mut self, ticket: Ticket) -> Reply {
        Route::of_ticket(ticket).reply()
    }
}

/// The reactor models' connections share their server's [`Routes`] rather
/// than each holding a copy: a reference is 8 bytes of every connection's
/// state, the copy 40.
impl Handler for &Routes {
    #[inline]
    fn handle(&mut self, request: &Request<'_>) -> Answer {
        self.answer(request)
    }

    fn resume(&mut self, ticket: Ticket) -> Reply {
        Route::of_ticket(ticket).reply()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_parses_and_prints_back() {
        assert_eq!("none".parse(), Ok(Work::None));
        assert_eq!("cpu:50us".parse(), Ok(Work::Cpu(Duration::from_micros(50))));
        assert_eq!("wait:1ms".parse(), Ok(Work::Wait(Duration::from_millis(1))));
        assert_eq!(
            "await:1ms".parse(),
            Ok(Work::Await(Duration::from_millis(1)))
        );
        for text in ["cpu:50us", "wait:1000us", "await:20us", "none"] {
            let work: Work = text.parse().unwrap();
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
        ] {
            assert!(bad.parse::<Work>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn cpu_work_takes_at_least_its_duration() {
        let start = Instant::now();
        Work::Cpu(Duration::from_millis(3)).spend();
        assert!(start.elapsed() >= Duration::from_millis(3));
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
                    work: Work::Await(Duration::from_millis(1)),
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
