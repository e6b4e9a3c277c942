//! SIGINT and SIGTERM. `serve` waits for them without a signal handler
//! ([`TerminationSignals`]: the signals are blocked in every thread and a
//! thread takes them with `sigwait`, so shutdown runs as ordinary code rather
//! than in async-signal context). `load` and `bench`, busy measuring, poll a
//! flag instead ([`Interrupts`], through the `signal-hook` crate).

use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use signal_hook::flag;

/// SIGINT and SIGTERM, blocked in the thread that created this and in every
/// thread it spawns afterwards.
pub struct TerminationSignals {
    set: libc::sigset_t,
}

/// One of the signals that ask a process to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Termination {
    /// The signal's name.
    pub fn name(self) -> &'static str {
        match self {
            Termination::Interrupt => "SIGINT",
            Termination::Terminate => "SIGTERM",
        }
    }

    /// The exit status of a process that this signal ended without a
    /// graceful shutdown: 128 + the signal number, as a shell reports it.
    pub fn exit_status(self) -> u8 {
        let number = match self {
            Termination::Interrupt => libc::SIGINT,
            Termination::Terminate => libc::SIGTERM,
        };
        128 + number as u8
    }
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

    /// Waits for one of the signals (from any thread: the blocked set is
    /// the process's).
    pub fn wait(&self) -> Termination {
        let mut signal = 0;
        // SAFETY: sigwait writes the signal number into `signal`.
        while unsafe { libc::sigwait(&self.set, &mut signal) } != 0 {}
        match signal {
            libc::SIGINT => Termination::Interrupt,
            _ => Termination::Terminate,
        }
    }
}

/// The first SIGINT or SIGTERM sets a flag that the program polls to stop
/// and report what it measured; a second one ends the process at once, as
/// the signal's default action would (the shell sees 130 or 143).
pub struct Interrupts {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl Interrupts {
    /// Installs the handlers (they only store to atomics).
    pub fn catch() -> io::Result<Interrupts> {
        let interrupts = Interrupts {
            flag: Arc::new(AtomicBool::new(false)),
            signal: Arc::new(AtomicUsize::new(0)),
        };
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // In order: the default action if the flag is already set (a
            // second signal), then note which signal, then set the flag.
            flag::register_conditional_default(signal, Arc::clone(&interrupts.flag))?;
            flag::register_usize(signal, Arc::clone(&interrupts.signal), signal as usize)?;
            flag::register(signal, Arc::clone(&interrupts.flag))?;
        }
        Ok(interrupts)
    }

    /// The flag the first signal sets.
    pub fn flag(&self) -> &Arc<AtomicBool> {
        &self.flag
    }

    /// The signal that arrived, if one did.
    pub fn received(&self) -> Option<Termination> {
        if !self.flag.load(Ordering::SeqCst) {
            return None;
        }
        match self.signal.load(Ordering::SeqCst) as libc::c_int {
            libc::SIGTERM => Some(Termination::Terminate),
            _ => Some(Termination::Interrupt),
        }
    }
}
