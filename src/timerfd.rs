//! A timerfd, for an epoll loop that must wake at sub-millisecond precision
//! (epoll_wait's own timeout has millisecond granularity): the load
//! generator's open-loop threads, where a late wakeup is a late send, and
//! v4's reactors, where it is a parked request answered late.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A one-shot monotonic timer that becomes readable when it expires.
pub struct Timer {
    fd: OwnedFd,
}

impl Timer {
    /// Creates a disarmed nonblocking timer, and drops the calling thread's
    /// timer slack (50 us by default, by which the kernel may defer the
    /// expiry to batch wakeups) to 1 ns: a late wakeup is a late send.
    pub fn new() -> io::Result<Timer> {
        drop_timer_slack();
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Timer {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Arms the timer to expire `ns` nanoseconds from now (at least 1 ns:
    /// zero would disarm it).
    pub fn arm_in(&self, ns: u64) -> io::Result<()> {
        let ns = ns.max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec; the old value is not wanted.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Disarms the timer.
    pub fn disarm(&self) -> io::Result<()> {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let spec = libc::itimerspec {
            it_interval: zero,
            it_value: zero,
        };
        // SAFETY: as in `arm_in`.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Consumes the expiration, so that the next one is a fresh edge.
    pub fn clear(&self) {
        let mut ticks = [0u8; 8];
        // SAFETY: reads at most 8 bytes into an 8-byte buffer; EAGAIN is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), ticks.as_mut_ptr().cast(), ticks.len()) };
    }
}

/// Drops the calling thread's timer slack (50 us by default, by which the
/// kernel may defer a timed wakeup to batch wakeups) to 1 ns.
pub fn drop_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument; failure only
    // leaves the default slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
}

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
