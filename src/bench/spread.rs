//! The median of a set of figures with its smallest and largest: how the
//! bench reads several runs of one cell ([`super::results`] re-exports it).

use serde::Serialize;

/// The median of several runs, with the smallest and the largest.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Runs it comes from.
    pub runs: usize,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if !n.is_multiple_of(2) {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            runs: n,
        })
    }

    /// Each of its figures over `by`; `None` unless `by` is above zero.
    pub fn over(self, by: f64) -> Option<Spread> {
        (by > 0.0).then(|| Spread {
            median: self.median / by,
            min: self.min / by,
            max: self.max / by,
            runs: self.runs,
        })
    }
}
