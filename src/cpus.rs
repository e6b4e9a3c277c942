//! The CPUs this process may run on, pinning to some of them, and CPU lists
//! as a person writes them (`0-3,6`).

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

/// The CPUs the calling thread may run on.
pub fn allowed() -> Vec<usize> {
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU)
            .filter(|&cpu| set.is_set(cpu))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

/// The kernel's mask of `cpus`, each below [`CpuSet::MAX_CPU`] (as
/// [`parse`] checks: they are allowed ones).
pub fn mask(cpus: &[usize]) -> CpuSet {
    let mut mask = CpuSet::new();
    for &cpu in cpus {
        mask.set(cpu);
    }
    mask
}

/// Pins the calling thread (and the threads it starts afterwards) to `mask`.
/// Async-signal-safe, one system call on a mask made beforehand: the bench's
/// server children call it between fork and exec.
pub fn pin(mask: &CpuSet) -> std::io::Result<()> {
    Ok(sched_setaffinity(None, mask)?)
}

/// Parses a CPU list (`0`, `0-3`, `0,2,4-5`) and checks that every CPU in it
/// is one this process may run on.
pub fn parse(text: &str) -> Result<Vec<usize>, String> {
    let allowed = allowed();
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let parse = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| format!("{text:?}: expected CPU numbers like 0, 0-3 or 0,2-3"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("{text:?}: the range {lo}-{hi} is backwards"));
        }
        for cpu in lo..=hi {
            if !allowed.contains(&cpu) {
                return Err(format!(
                    "CPU {cpu} does not exist or is not available to this process (available: {})",
                    list(&allowed)
                ));
            }
            if !cpus.contains(&cpu) {
                cpus.push(cpu);
            }
        }
    }
    Ok(cpus)
}

/// `0-3,6` for a list of CPUs.
pub fn list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for cpu in sorted {
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == cpu => *hi = cpu,
            _ => ranges.push((cpu, cpu)),
        }
    }
    let text = ranges.iter().map(|&(lo, hi)| match lo == hi {
        true => lo.to_string(),
        false => format!("{lo}-{hi}"),
    });
    text.collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let first = allowed()[0];
        assert_eq!(parse(&first.to_string()).unwrap(), vec![first]);
        assert!(parse("99999").unwrap_err().contains("does not exist"));
        assert!(parse("x").is_err());
        assert!(parse("3-1").is_err());
        assert_eq!(list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn pins_to_an_allowed_cpu() {
        let before = allowed();
        assert!(!before.is_empty());
        // On a thread of its own: pinning narrows it for good.
        let first = before[0];
        let pinned = std::thread::spawn(move || pin(&mask(&[first])).map(|()| allowed()));
        assert_eq!(pinned.join().unwrap().unwrap(), vec![first]);
        assert_eq!(allowed(), before);
    }
}
