//! Waiting for SIGINT/SIGTERM without a signal handler: the signals are blocked
//! in every thread and the main thread takes them with `sigwait`, so shutdown
//! runs as ordinary code rather than in async-signal context.

use std::io;
use std::mem::MaybeUninit;

/// SIGINT and SIGTERM, blocked in the thread that created this and in every
/// thread it spawns afterwards.
pub struct TerminationSignals {
    set: libc::sigset_t,
}

impl TerminationSignals {
    /// Blocks SIGINT and SIGTERM. Call before spawning any thread, so that no
    /// thread can receive them and die of the default action.
    pub fn block() -> io::Result<Self> {
        // SAFETY: the sigset is initialised by sigemptyset before any use, and
        // pthread_sigmask only reads it.
        unsafe {
            let mut set = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            let mut set = set.assume_init();
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(TerminationSignals { set })
        }
    }

    /// Waits for one of the signals and returns its name.
    pub fn wait(&self) -> &'static str {
        let mut signal = 0;
        // SAFETY: sigwait writes the signal number into `signal`.
        while unsafe { libc::sigwait(&self.set, &mut signal) } != 0 {}
        match signal {
            libc::SIGINT => "SIGINT",
            _ => "SIGTERM",
        }
    }
}
