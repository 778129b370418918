//! Descriptive statistics of a set of shots, and their uncertainties.
//!
//! Owns computing n, min, max, mean, median, p95, p99, stddev and MAD
//! ([`Stats::of`]), a step's instrument and median uncertainties
//! ([`StepStatistics`]), and the naming of outliers. It never drops a value:
//! outliers are listed, and still counted. The names and the value type are
//! `crate::statistic`'s (shared with `profile`); judging them against limits
//! is `profile::judge`'s, recording them `report`'s.

pub use crate::statistic::{Statistic, Stats};

/// Robust z-score above which a value is named an outlier (Iglewicz and Hoaglin).
pub const OUTLIER_Z: f64 = 3.5;

impl Stats {
    /// Statistics of `values`; `None` when there are none or any is not finite.
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        let median = quantile_sorted(&sorted, 0.5);
        let mut dev: Vec<f64> = sorted.iter().map(|v| (v - median).abs()).collect();
        dev.sort_by(f64::total_cmp);
        Some(Stats {
            n,
            min: sorted[0],
            max: sorted[n - 1],
            mean,
            median,
            p95: quantile_sorted(&sorted, 0.95),
            p99: quantile_sorted(&sorted, 0.99),
            stddev: var.sqrt(),
            mad: quantile_sorted(&dev, 0.5),
        })
    }
}

/// The expanded (about 95 %) uncertainty of the median of `values` as an
/// estimate of the median they are drawn from, from the distribution-free
/// 95 % confidence interval of a median: the order statistics x₍ᵣ₎ and
/// x₍ₙ₊₁₋ᵣ₎ with the largest r for which 2·P(Binomial(n, ½) < r) ≤ 5 %;
/// the farther of its ends from the sample median, since the interval need
/// not be symmetric about it. It assumes nothing about the distribution
/// (the asymptotic √(π/2)·s/√n holds for a normal one only, and understates
/// a uniform one's by a third). With fewer than six values no such interval
/// exists and the farther end of the range stands in.
pub fn median_half_width_95(values: &[f64]) -> f64 {
    let mut x: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let n = x.len();
    if n < 2 {
        return 0.0;
    }
    x.sort_by(f64::total_cmp);
    let median = quantile_sorted(&x, 0.5);
    let r = median_rank_95(n).max(1);
    (median - x[r - 1]).max(x[n - r] - median)
}

/// The largest r (1-based) with 2·P(Binomial(n, ½) ≤ r − 1) ≤ 0.05, or 0.
fn median_rank_95(n: usize) -> usize {
    if n > 1000 {
        // The normal approximation of the binomial, far past any step's size.
        let r = (n as f64 - 1.96 * (n as f64).sqrt()) / 2.0;
        return r.floor().max(0.0) as usize;
    }
    // P(B = k) by the recurrence p(k+1) = p(k)·(n−k)/(k+1), from 2^−n.
    let mut p = 0.5f64.powi(n as i32);
    let mut cdf = 0.0;
    let mut r = 0;
    for k in 0..n / 2 {
        cdf += p;
        if 2.0 * cdf > 0.05 {
            break;
        }
        r = k + 1;
        p = p * (n - k) as f64 / (k + 1) as f64;
    }
    r
}

/// Indices of values whose robust z-score (0.6745 (x - median) / MAD) exceeds
/// [`OUTLIER_Z`]. With MAD = 0 nothing is an outlier.
pub fn outliers(values: &[f64]) -> Vec<usize> {
    let Some(s) = Stats::of(values) else {
        return Vec::new();
    };
    if s.mad <= 0.0 {
        return Vec::new();
    }
    values
        .iter()
        .enumerate()
        .filter(|(_, v)| (0.6745 * (*v - s.median) / s.mad).abs() > OUTLIER_Z)
        .map(|(i, _)| i)
        .collect()
}

fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// A step's statistics over its measured shots, with their uncertainties
/// (docs/architecture.md, "Uncertainty").
#[derive(Debug, Clone, PartialEq)]
pub struct StepStatistics {
    /// Statistics of the measured values, ms; `None` when none was measured.
    pub stats: Option<Stats>,
    /// Expanded (k = 2) instrument uncertainty of each statistic, ms: the
    /// widest shot uncertainty; `None` without shots.
    pub uncertainty_ms: Option<f64>,
    /// Expanded uncertainty of the median as an estimate of the device's
    /// median: the shots' median instrument uncertainty and the median's
    /// sampling error (half its distribution-free 95 % interval,
    /// [`median_half_width_95`]) in quadrature, ms.
    pub median_uncertainty_ms: Option<f64>,
}

impl StepStatistics {
    /// From the measured shots' values and their expanded uncertainties
    /// (both in ms, the missed shots left out).
    pub fn of(values: &[f64], uncertainties: &[f64]) -> StepStatistics {
        let stats = Stats::of(values);
        let uncertainty_ms = uncertainties.iter().copied().reduce(f64::max);
        let median_uncertainty_ms = match (&stats, Stats::of(uncertainties)) {
            (Some(_), Some(u)) => {
                Some((u.median.powi(2) + median_half_width_95(values).powi(2)).sqrt())
            }
            _ => None,
        };
        StepStatistics {
            stats,
            uncertainty_ms,
            median_uncertainty_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_match_hand_computed_values() {
        let v = [3.0, 1.0, 2.0, 5.0, 4.0];
        let s = Stats::of(&v).unwrap();
        assert_eq!(s.n, 5);
        assert_eq!((s.min, s.max, s.median), (1.0, 5.0, 3.0));
        assert!((s.mean - 3.0).abs() < 1e-12);
        assert!((s.stddev - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((s.p95 - 4.8).abs() < 1e-12);
        assert_eq!(s.mad, 1.0);
    }

    #[test]
    fn outliers_are_named_not_dropped() {
        let mut v: Vec<f64> = (0..29).map(|i| 40.0 + (i % 5) as f64 * 0.1).collect();
        v.push(90.0);
        assert_eq!(outliers(&v), vec![29]);
        assert_eq!(Stats::of(&v).unwrap().n, 30);
    }

    #[test]
    fn step_uncertainties() {
        let s = StepStatistics::of(&[40.0, 41.0, 42.0, 43.0], &[0.2, 0.4, 0.3, 0.3]);
        assert_eq!(s.uncertainty_ms, Some(0.4));
        // Four values: no 95 % interval of order statistics; the range's
        // farther end from the median 41.5.
        let want = (0.3f64.powi(2) + 1.5f64.powi(2)).sqrt();
        assert_eq!(s.median_uncertainty_ms, Some(want));
        let none = StepStatistics::of(&[], &[]);
        assert_eq!(
            (none.stats, none.uncertainty_ms, none.median_uncertainty_ms),
            (None, None, None)
        );
    }

    #[test]
    fn the_median_interval_uses_the_binomial_ranks_and_covers_95_percent() {
        // The classic table: n = 30 gives [x(10), x(21)], n = 10 [x(2), x(9)].
        assert_eq!(median_rank_95(30), 10);
        assert_eq!(median_rank_95(10), 2);
        assert_eq!(median_rank_95(6), 1);
        assert_eq!(median_rank_95(5), 0);
        let v: Vec<f64> = (1..=30).map(f64::from).collect();
        assert_eq!(median_half_width_95(&v), 21.0 - 15.5);
        // Coverage of the true median of a uniform distribution, the case
        // the normal formula gets wrong.
        use rand::Rng;
        let mut rng = crate::seeded::rng(7);
        let trials = 4000;
        let mut covered = 0;
        for _ in 0..trials {
            let x: Vec<f64> = (0..30).map(|_| rng.random::<f64>()).collect();
            let m = Stats::of(&x).unwrap().median;
            if (m - 0.5).abs() <= median_half_width_95(&x) {
                covered += 1;
            }
        }
        let frac = covered as f64 / trials as f64;
        assert!((0.95..0.995).contains(&frac), "coverage {frac}");
    }

    #[test]
    fn empty_or_nan_has_no_stats() {
        assert!(Stats::of(&[]).is_none());
        assert!(Stats::of(&[1.0, f64::NAN]).is_none());
    }
}
