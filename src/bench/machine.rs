//! What the report says about where it ran: the machine (CPU model, cores,
//! memory, kernel) and the build.

use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::procfs;

/// The machine a bench ran on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// CPUs online.
    pub cpus: usize,
    /// Memory, bytes (`/proc/meminfo`).
    pub memory_bytes: u64,
    /// Kernel release.
    pub kernel: String,
    /// The soft open-files limit the bench ran with (raised to the hard one).
    pub fd_limit: u64,
}

impl Machine {
    /// Reads this machine's figures; unknown ones are left empty.
    pub fn detect(fd_limit: u64) -> Machine {
        let cpu_model = procfs::value("/proc/cpuinfo", "model name");
        let memory_kib = procfs::number("/proc/meminfo", "MemTotal").unwrap_or(0);
        // SAFETY: sysconf has no memory effects.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        Machine {
            cpu_model: cpu_model.unwrap_or_else(|| "unknown CPU".to_string()),
            cpus: usize::try_from(online).unwrap_or(1).max(1),
            memory_bytes: memory_kib * 1024,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".to_string()),
            fd_limit,
        }
    }
}

/// The build that ran the bench.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Build {
    /// The crate version.
    pub version: String,
    /// The git commit of the source tree it was built from (`-dirty` when
    /// tracked files had changes), or `unknown` outside a git checkout.
    pub commit: String,
    /// `release` or `debug`.
    pub profile: String,
}

impl Build {
    /// This build.
    pub fn detect() -> Build {
        let dir = env!("CARGO_MANIFEST_DIR");
        let git = |args: &[&str]| {
            Command::new("git")
                .args(["-C", dir])
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let dirty = || {
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty())
        };
        let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
            Some(hash) if dirty() => format!("{hash}-dirty"),
            Some(hash) => hash,
            None => "unknown".to_string(),
        };
        Build {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit,
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_string(),
        }
    }
}
