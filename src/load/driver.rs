//! What an engine's event loop must do for the load threads: the
//! [`Driver`] trait, apart from `worker` (which runs a driver) and the two
//! drivers (`epoll_io`, `uring_io`), so that all of them point down to it.

use std::io;

use super::conn::Conn;
use super::engine::Io;
use super::plan::{Ctx, Plan};

/// An engine's event loop: the sockets ([`Driver::Io`], lent to the slots
/// through [`Ctx`]) and the waiting.
pub trait Driver<'a>: Sized {
    /// The sockets' side, which the slots call.
    type Io: Io;

    /// A driver for `connections` slots running `plan`; `open_loop` says
    /// whether it will be asked to wake for schedule slots.
    fn new(plan: &'a Plan, connections: usize, open_loop: bool) -> io::Result<(Self, Self::Io)>;

    /// Sends what the slots queued, waits for events until `wake` (ns after
    /// the start) or, in open loop, the next schedule slot `due`, and hands
    /// what happened to the slots. Hands nothing over once the run's end
    /// has passed.
    fn wait(
        &mut self,
        ctx: &mut Ctx<'a, Self::Io>,
        conns: &mut [Conn],
        now: u64,
        wake: u64,
        due: Option<u64>,
    ) -> io::Result<()>;

    /// Once every slot is finished (closed): waits for the engine's
    /// operations still under way to end.
    fn finish(&mut self, ctx: &mut Ctx<'a, Self::Io>);
}
