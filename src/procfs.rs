//! The one reader of /proc's files: a process's CPU time and parent, the
//! whole machine's CPU time (`/proc/stat`), the `key: value` lines of
//! `status`, `meminfo` and `cpuinfo`, descriptors.

/// Clock ticks per second of /proc's CPU times.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// What `/proc/PID/stat` says of a process: its parent, and its utime+stime
/// (every thread, dead ones included) in seconds.
fn stat(pid: u32) -> Option<(u32, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces and parentheses:
    // state, ppid, ..., utime (14th of the line), stime (15th).
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let cpu_s = (ticks(11)? + ticks(12)?) as f64 / ticks_per_second();
    Some((fields.get(1)?.parse().ok()?, cpu_s))
}

/// CPU seconds (user + system, every thread) process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat(pid).map(|s| s.1)
}

/// CPU seconds of this process.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// The whole machine's CPU time so far (`/proc/stat`, every CPU), seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    /// Time spent running processes: user, nice and system (interrupts not
    /// included, since the kernel may not charge them to any process).
    pub busy_s: f64,
    /// Time the hypervisor ran other guests while a CPU wanted to run.
    pub steal_s: f64,
    /// All of the CPUs' time (every field).
    pub total_s: f64,
}

impl CpuTimes {
    /// Reads `/proc/stat`; `None` where it cannot be read.
    pub fn now() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        CpuTimes::parse(&stat, ticks_per_second())
    }

    /// The aggregate `cpu` line of a `/proc/stat` text, in ticks of `hz`.
    pub fn parse(stat: &str, hz: f64) -> Option<CpuTimes> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        // user nice system idle iowait irq softirq steal guest guest_nice;
        // guest time is already counted in user.
        let f: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        if f.len() < 8 {
            return None;
        }
        let seconds = |ticks: u64| ticks as f64 / hz;
        Some(CpuTimes {
            busy_s: seconds(f[0] + f[1] + f[2]),
            steal_s: seconds(f[7]),
            total_s: seconds(f.iter().sum()),
        })
    }
}

/// `pid` and every process descended from it.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut tree = vec![pid];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return tree;
    };
    let all: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, stat(p)?.0)))
        .collect();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    tree
}

/// The value of the first `key: value` line of a /proc file (`cpuinfo`,
/// `meminfo`, `PID/status`), trimmed; `None` when the file or the line is
/// not there.
pub fn value(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// The number that starts the value of `key` (`MemTotal: 1024 kB`: 1024).
pub fn number(path: &str, key: &str) -> Option<u64> {
    value(path, key)?.split_whitespace().next()?.parse().ok()
}

/// The number of the `field` line of `/proc/PID/status` (`VmRSS`, in KiB;
/// `Threads`).
pub fn status(pid: u32, field: &str) -> Option<u64> {
    number(&format!("/proc/{pid}/status"), field)
}

/// The descriptors process `pid` has open, ascending.
pub fn fds(pid: u32) -> Option<Vec<u32>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut fds: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    Some(fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_proc_figures() {
        let me = std::process::id();
        assert!(status(me, "VmRSS").unwrap() > 0 && status(me, "Threads").unwrap() >= 1);
        assert!(fds(me).unwrap().len() >= 3);
        assert!(status(me, "NoSuchField").is_none());
        assert!(number("/proc/meminfo", "MemTotal").unwrap() > 0);
        let parent = stat(me).unwrap().0;
        assert!(tree(parent).contains(&me));
    }

    #[test]
    fn reads_proc_stat() {
        let stat = "cpu  100 20 30 1000 5 6 7 8 0 0\ncpu0 50 10 15 500 2 3 3 4 0 0\n";
        let t = CpuTimes::parse(stat, 100.0).unwrap();
        assert_eq!((t.busy_s, t.steal_s, t.total_s), (1.5, 0.08, 11.76));
        assert!(CpuTimes::parse("cpu0 1 2 3\n", 100.0).is_none());
        assert!(CpuTimes::now().is_some_and(|t| t.total_s > 0.0));
    }
}
