//! A timer with nanosecond precision for v4's epoll loop: `epoll_wait`
//! takes its timeout in whole milliseconds (mio rounds up), so a deadline
//! 0.3 ms away would be met 1 ms late. For the long deadlines of idle and
//! slow clients that is nothing, but a request parked for 1 ms
//! (`--work await:1ms`) would wait up to twice that. When the next wake is
//! near, the reactor arms this timerfd, registered in its epoll set, and
//! waits without a timeout instead; the timer's expiry is an event like any
//! other.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Waits shorter than this are timed by the timerfd; longer ones by
/// `epoll_wait`'s millisecond timeout, whose rounding is then under 10%.
pub(crate) const PRECISE_BELOW: Duration = Duration::from_millis(10);

/// A non-blocking, monotonic timerfd.
pub(crate) struct WakeTimer {
    fd: OwnedFd,
    /// Whether it is armed now (disarming an unarmed timer is a wasted syscall).
    armed: bool,
}

impl WakeTimer {
    /// A new, unarmed timer.
    pub(crate) fn new() -> io::Result<WakeTimer> {
        // SAFETY: plain syscall; the descriptor is owned from here on.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(WakeTimer { fd, armed: false })
    }

    /// Fires once, `after` from now (at least 1 ns: zero would disarm it).
    pub(crate) fn arm(&mut self, after: Duration) {
        let after = after.max(Duration::from_nanos(1));
        self.set(libc::timespec {
            tv_sec: after.as_secs() as libc::time_t,
            tv_nsec: after.subsec_nanos() as libc::c_long,
        });
        self.armed = true;
    }

    /// Stops it, if armed.
    pub(crate) fn disarm(&mut self) {
        if self.armed {
            self.set(libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            });
            self.armed = false;
        }
    }

    /// Reads its expiry count away after it fired (it is edge-triggered in
    /// the reactor's set, so this only keeps the descriptor tidy).
    pub(crate) fn fired(&mut self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a buffer of 8.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
        self.armed = false;
    }

    fn set(&self, value: libc::timespec) {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: a valid descriptor and a valid itimerspec; the old value is not asked for.
        unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    }
}

impl AsRawFd for WakeTimer {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn fires_after_its_delay_to_well_under_a_millisecond() {
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
