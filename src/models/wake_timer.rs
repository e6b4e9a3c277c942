//! v4's precise wake: `epoll_wait` takes its timeout in whole milliseconds
//! (mio rounds up), so a deadline 0.3 ms away would be met 1 ms late. For
//! the long deadlines of idle and slow clients that is nothing, but a
//! request parked for 1 ms (`--work await:1ms`) would wait up to twice
//! that. When the next wake is near, the reactor arms this timer (a
//! [`Timer`], registered in its epoll set) and waits without a timeout
//! instead; the timer's expiry is an event like any other.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use crate::timerfd::Timer;

/// Waits shorter than this are timed by the timerfd; longer ones by
/// `epoll_wait`'s millisecond timeout, whose rounding is then under 10%.
pub(crate) const PRECISE_BELOW: Duration = Duration::from_millis(10);

/// A [`Timer`] that knows whether it is armed, so that a loop that does not
/// need it makes no syscall to disarm it.
pub(crate) struct WakeTimer {
    timer: Timer,
    armed: bool,
}

impl WakeTimer {
    /// A new, unarmed timer.
    pub(crate) fn new() -> io::Result<WakeTimer> {
        Ok(WakeTimer {
            timer: Timer::new()?,
            armed: false,
        })
    }

    /// Fires once, `after` from now.
    pub(crate) fn arm(&mut self, after: Duration) {
        self.armed = self.timer.arm_in(after.as_nanos() as u64).is_ok();
    }

    /// Stops it, if armed.
    pub(crate) fn disarm(&mut self) {
        if self.armed {
            let _ = self.timer.disarm();
            self.armed = false;
        }
    }

    /// It fired: its expiry is read away (it is edge-triggered in the
    /// reactor's set, so this only keeps the descriptor tidy).
    pub(crate) fn fired(&mut self) {
        self.timer.clear();
        self.armed = false;
    }
}

impl AsRawFd for WakeTimer {
    fn as_raw_fd(&self) -> RawFd {
        self.timer.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn fires_after_its_delay_and_once() {
        let mut timer = WakeTimer::new().unwrap();
        let start = Instant::now();
        timer.arm(Duration::from_micros(300));
        let mut pfd = libc::pollfd {
            fd: timer.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, 1000) };
        assert_eq!(ready, 1, "the timer never fired");
        assert!(start.elapsed() >= Duration::from_micros(300));
        timer.fired();
        timer.disarm();
        // SAFETY: as above.
        let again = unsafe { libc::poll(&mut pfd, 1, 20) };
        assert_eq!(again, 0, "fired again after its one expiry was read");
    }
}
