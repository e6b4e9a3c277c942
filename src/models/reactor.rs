//! The vocabulary the reactor models (v4 event, v5 uring) share: one name
//! for each idea, whatever the I/O interface underneath.
//!
//! A reactor `run`s one loop; each connection it touches takes a `step`
//! (exchange bytes with the core, time out, linger, close). It is
//! [`Accepting`] new connections or not, each connection is at a [`Stage`],
//! and it sleeps until [`next_wake`].

use std::time::Instant;

use super::Linger;

/// Whether a reactor takes new connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accepting {
    /// Taking them.
    Open,
    /// Out of descriptors: the listener is left alone until then, and its
    /// queue drained at that time.
    PausedUntil(Instant),
    /// Shutting down: no more.
    Stopped,
}

impl Accepting {
    /// The end of a pause, if paused.
    pub(crate) fn paused_until(self) -> Option<Instant> {
        match self {
            Accepting::PausedUntil(until) => Some(until),
            _ => None,
        }
    }

    /// Open again if a pause has ended by `now`; whether it did.
    pub(crate) fn resume_if_over(&mut self, now: Instant) -> bool {
        match *self {
            Accepting::PausedUntil(until) if now >= until => {
                *self = Accepting::Open;
                true
            }
            _ => false,
        }
    }
}

/// Where a reactor's connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Serving requests.
    Open,
    /// The last response is sent to a peer that may still be sending
    /// (`Conn::needs_linger`) and our side is shut down: input is read and
    /// dropped, bounded ([`Linger`]), so that closing is not a reset.
    Lingering(Linger),
    /// Done: closed once nothing of the kernel's points at it (v5's
    /// operations in flight; v4 closes at once and never holds this stage).
    Closing,
}

/// When a reactor must wake with nothing to read: the earliest of its
/// connections' deadlines, the end of an accept pause and the end of a
/// shutdown.
pub(crate) fn next_wake(
    deadline: Option<Instant>,
    accepting: Accepting,
    shutdown_end: Option<Instant>,
) -> Option<Instant> {
    [deadline, accepting.paused_until(), shutdown_end]
        .into_iter()
        .flatten()
        .min()
}
