//! Creating a ring with the cheapest setup the kernel offers, and the one
//! check of whether v5 can run here at all: io_uring present and permitted,
//! the opcodes it submits, provided buffer rings and multishot recv. The
//! load generator's io_uring engine (`crate::load`) makes the same check
//! for the opcodes it submits, and uses the same rings.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;

use io_uring::{cqueue, opcode, types, IoUring, Probe};

use super::buf_ring::BufRing;

/// Submission queue entries per ring; a loop iteration that needs more
/// flushes the queue early (one extra `io_uring_enter`).
pub(crate) const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries per ring: multishot operations post many
/// completions per submission. Overflow is not lost (IORING_FEAT_NODROP),
/// only slower.
const CQ_ENTRIES: u32 = 8 * SQ_ENTRIES;

/// A ring for the calling thread, which must be the only one to submit to
/// it. Tries, in order: single issuer with deferred task work (Linux 6.1+:
/// completions are processed only when this thread enters the kernel to
/// wait, so the network stack never interrupts it), then cooperative task
/// work (5.19+), then plain.
pub(crate) fn new_ring(entries: u32) -> io::Result<IoUring> {
    let cq_entries = CQ_ENTRIES.max(2 * entries);
    let deferred = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_submit_all()
        .setup_cqsize(cq_entries)
        .build(entries);
    let cooperative = || {
        IoUring::builder()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .setup_submit_all()
            .setup_cqsize(cq_entries)
            .build(entries)
    };
    match deferred {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => match cooperative() {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                IoUring::builder().setup_cqsize(cq_entries).build(entries)
            }
            other => other,
        },
        other => other,
    }
}

/// The operations v5 (the server) submits.
const SERVER_OPS: &[(u8, &str)] = &[
    (opcode::AcceptMulti::CODE, "accept"),
    (opcode::RecvMulti::CODE, "recv"),
    (opcode::Send::CODE, "send"),
    (opcode::AsyncCancel::CODE, "cancel"),
    (opcode::Close::CODE, "close"),
];

/// The operations `servelab load`'s io_uring engine submits.
const CLIENT_OPS: &[(u8, &str)] = &[
    (opcode::Connect::CODE, "connect"),
    (opcode::RecvMulti::CODE, "recv"),
    (opcode::Send::CODE, "send"),
    (opcode::AsyncCancel::CODE, "cancel"),
];

/// Whether v5 can run on this machine: `Ok`, or why not, in words that name
/// the cause. Probed once per process (a ring, a buffer ring and one
/// multishot recv over a socket pair), then remembered.
pub fn availability() -> Result<(), String> {
    static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
    PROBED.get_or_init(|| probe_on_thread(SERVER_OPS)).clone()
}

/// The same check for the load generator's io_uring engine, which submits
/// connects instead of accepts and closes.
pub(crate) fn client_availability() -> Result<(), String> {
    static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
    PROBED.get_or_init(|| probe_on_thread(CLIENT_OPS)).clone()
}

fn probe_on_thread(needed: &'static [(u8, &'static str)]) -> Result<(), String> {
    // On a thread of its own: tearing a ring down can notify the thread that
    // used it, which would interrupt (EINTR) a blocking call of the caller's
    // with a timeout.
    std::thread::Builder::new()
        .name("io_uring-probe".into())
        .spawn(move || probe(needed))
        .map_err(|e| format!("cannot start a thread to probe io_uring: {e}"))?
        .join()
        .unwrap_or_else(|_| Err("the io_uring probe panicked".into()))
}

fn probe(needed: &[(u8, &str)]) -> Result<(), String> {
    if disabled_sysctl() == Some(2) {
        return Err(
            "io_uring is disabled on this system (sysctl kernel.io_uring_disabled = 2)".into(),
        );
    }
    // Declared before the ring, so dropped after it.
    let buffers = BufRing::new(4, 64, 4).map_err(|e| format!("cannot map a buffer ring: {e}"))?;
    let mut ring = new_ring(8).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSYS) => format!(
            "the kernel has no io_uring (io_uring_setup: {e}); Linux 6.0 or newer built with \
             CONFIG_IO_URING is needed"
        ),
        Some(libc::EPERM) => match disabled_sysctl() {
            Some(1) => format!(
                "io_uring_setup was refused ({e}): sysctl kernel.io_uring_disabled = 1 allows \
                 io_uring only to the group kernel.io_uring_group and to CAP_SYS_ADMIN (or a \
                 seccomp filter blocks it)"
            ),
            _ => format!(
                "io_uring_setup was refused ({e}): a seccomp filter (as container runtimes \
                 install) or a security module blocks io_uring"
            ),
        },
        _ => format!("io_uring_setup failed: {e}"),
    })?;
    let params = ring.params();
    if !params.is_feature_ext_arg() || !params.is_feature_nodrop() {
        return Err(
            "the kernel's io_uring lacks timed waits or no-drop completions \
                    (Linux 6.0 or newer is needed)"
                .into(),
        );
    }
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring cannot be probed ({e}); Linux 6.0 or newer is needed"))?;
    if let Some((_, name)) = needed.iter().find(|(code, _)| !probe.is_supported(*code)) {
        return Err(format!(
            "the kernel's io_uring has no {name} operation (Linux 6.0 or newer is needed)"
        ));
    }
    // SAFETY: `buffers` is dropped after `ring` (declared before it), and
    // `multishot_recv_works` leaves no recv in flight.
    unsafe { buffers.register(&ring.submitter(), 0) }.map_err(|e| {
        format!("provided buffer rings are not supported ({e}); Linux 5.19 or newer is needed")
    })?;
    multishot_recv_works(&mut ring)
}

/// Arms one multishot recv on a socket pair, sends a byte and checks that it
/// arrives in a provided buffer with the multishot kept armed (Linux 6.0+);
/// then closes the peer and waits for the recv to end.
fn multishot_recv_works(ring: &mut IoUring) -> Result<(), String> {
    let (ours, mut theirs) =
        UnixStream::pair().map_err(|e| format!("cannot create a socket pair: {e}"))?;
    let recv = opcode::RecvMulti::new(types::Fd(ours.as_raw_fd()), 0)
        .build()
        .user_data(1);
    // SAFETY: a multishot recv into buffer group 0, which the caller
    // registered and keeps mapped until the ring is gone.
    unsafe { ring.submission().push(&recv) }.map_err(|_| "submission queue full".to_string())?;
    let next = |ring: &mut IoUring| {
        ring.submit_and_wait(1)
            .map_err(|e| format!("io_uring_enter failed: {e}"))?;
        ring.completion()
            .next()
            .ok_or_else(|| "no completion for a multishot recv".to_string())
    };
    theirs
        .write_all(b"x")
        .map_err(|e| format!("cannot write to a socket pair: {e}"))?;
    let cqe = next(ring)?;
    let armed = cqueue::more(cqe.flags());
    let outcome = match cqe.result() {
        1 if armed && cqueue::buffer_select(cqe.flags()).is_some() => Ok(()),
        res if res < 0 => Err(format!(
            "multishot recv is not supported ({}); Linux 6.0 or newer is needed",
            io::Error::from_raw_os_error(-res)
        )),
        res => Err(format!(
            "multishot recv behaved unexpectedly (result {res}, flags {:#x}); Linux 6.0 or \
             newer is needed",
            cqe.flags()
        )),
    };
    if armed {
        // EOF ends the multishot recv: then nothing is in flight.
        drop(theirs);
        while cqueue::more(next(ring)?.flags()) {}
    }
    outcome
}

/// `kernel.io_uring_disabled` (6.6+): 0 allowed, 1 only for a privileged
/// group, 2 disabled; `None` where the sysctl does not exist.
fn disabled_sysctl() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}
