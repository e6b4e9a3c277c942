//! The routing logic every model serves, behind a small [`Handler`] trait, and
//! the optional per-request [`Work`] that makes a request cost something.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::http::{Reply, Request, Status};
use crate::units::parse_duration;

/// Decides the reply to one request. Called once per request head, after the
/// framing has been checked and before the body (if any) is drained.
pub trait Handler {
    /// The reply to `request`. Whatever time it takes is taken from the
    /// thread that serves the connection: in a reactor model, from every
    /// connection of that reactor.
    fn handle(&mut self, request: &Request<'_>) -> Reply;
}

/// The seed's routes: `GET|HEAD /` -> 200 `OK`; `/` with another method -> 405
/// with `Allow: GET, HEAD`; any other path -> 404. `OPTIONS *` addresses the
/// server as a whole, which is the same resource as `/` here.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeedRoutes;

/// The methods `/` allows, as sent in `Allow`.
pub const ROOT_ALLOW: &str = "GET, HEAD";

impl Handler for SeedRoutes {
    #[inline]
    fn handle(&mut self, request: &Request<'_>) -> Reply {
        if request.path != "/" && request.path != "*" {
            return Reply::plain(Status::NotFound);
        }
        match request.method {
            "GET" | "HEAD" => Reply {
                status: Status::Ok,
                body: b"OK",
                allow: None,
            },
            _ => Reply {
                allow: Some(ROOT_ALLOW),
                ..Reply::plain(Status::MethodNotAllowed)
            },
        }
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
}

/// The longest work one request may be given: past it a request would outlive
/// every default deadline, which is not a handler cost any more but a hang.
pub const MAX_WORK: Duration = Duration::from_secs(1);

impl Work {
    /// Spends the work on the calling thread.
    #[inline]
    pub fn spend(self) {
        match self {
            Work::None => {}
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

    /// Parses `none`, `cpu:DURATION` or `wait:DURATION` (`cpu:50us`, `wait:1ms`).
    fn from_str(text: &str) -> Result<Work, String> {
        let usage = "expected none, cpu:DURATION or wait:DURATION (e.g. cpu:50us, wait:1ms)";
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
    /// The reply to `request`, after the configured work. Always inlined:
    /// it is the whole handler of every request.
    #[inline(always)]
    fn reply(&self, request: &Request<'_>) -> Reply {
        if self.panic_path == Some(request.path) {
            panic!("injected fault: handler panic on {}", request.path);
        }
        self.work.spend();
        SeedRoutes.handle(request)
    }
}

impl Handler for Routes {
    #[inline]
    fn handle(&mut self, request: &Request<'_>) -> Reply {
        self.reply(request)
    }
}

/// The reactor models' connections share their server's [`Routes`] rather
/// than each holding a copy: a reference is 8 bytes of every connection's
/// state, the copy 40.
impl Handler for &Routes {
    #[inline]
    fn handle(&mut self, request: &Request<'_>) -> Reply {
        self.reply(request)
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
        for text in ["cpu:50us", "wait:1000us", "none"] {
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
}
