//! The one reader of a process's /proc files: CPU time and parent, RSS and
//! threads, descriptors (the whole machine's `/proc/stat` is [`super::machine`]'s).

use super::machine::ticks_per_second;
use super::results::ProcSample;

/// What `/proc/PID/stat` says of a process.
struct Stat {
    /// Its parent.
    ppid: u32,
    /// utime+stime (every thread, dead ones included), seconds.
    cpu_s: f64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces and parentheses:
    // state, ppid, ..., utime (14th of the line), stime (15th).
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Stat {
        ppid: fields.get(1)?.parse().ok()?,
        cpu_s: (ticks(11)? + ticks(12)?) as f64 / ticks_per_second(),
    })
}

/// `pid` and every process descended from it.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut tree = vec![pid];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return tree;
    };
    let all: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, stat(p)?.ppid)))
        .collect();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    tree
}

fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The /proc figures of `pids`, added up.
pub fn sample(pids: &[u32]) -> ProcSample {
    let mut s = ProcSample::default();
    for &p in pids {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        s.processes += 1;
        s.cpu_s += stat(p).map_or(0.0, |st| st.cpu_s);
        s.rss_kib += status_field(&status, "VmRSS:");
        s.threads += status_field(&status, "Threads:");
        s.fds += std::fs::read_dir(format!("/proc/{p}/fd")).map_or(0, |d| d.count() as u64);
    }
    s
}

/// CPU seconds of this process (the load threads and the bench's clients).
pub fn own_cpu_seconds() -> f64 {
    stat(std::process::id()).map_or(0.0, |s| s.cpu_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_proc_figures() {
        let me = sample(&tree(std::process::id()));
        assert!(me.processes >= 1);
        assert!(me.rss_kib > 0 && me.threads >= 1 && me.fds >= 3, "{me:?}");
        let parent = stat(std::process::id()).unwrap().ppid;
        assert!(tree(parent).contains(&std::process::id()));
    }
}
