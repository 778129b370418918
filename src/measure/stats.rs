//! Descriptive statistics of a set of shots, and their uncertainties.
//!
//! Owns computing n, min, max, mean, median, p95, p99, stddev and MAD
//! ([`Stats::of`]), a step's instrument and median uncertainties
//! ([`StepStatistics`]), and the naming of outliers. It never drops a value:
//! outliers are listed, and still counted. The names and the value type are
//! `crate::statistic`'s (shared with `profile`); judging them against limits
//! is `profile::judge`'s, recording them `report`'s.

pub use crate::statistic::{Statistic, Stats};

use super::procedure::K;

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

    /// Standard error of the median of a sample of this spread
    /// (asymptotic, sqrt(pi/2) * s / sqrt(n)).
    pub fn median_standard_error(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        (std::f64::consts::PI / 2.0).sqrt() * self.stddev / (self.n as f64).sqrt()
    }
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
    /// sampling error (k = 2) in quadrature, ms.
    pub median_uncertainty_ms: Option<f64>,
}

impl StepStatistics {
    /// From the measured shots' values and their expanded uncertainties
    /// (both in ms, the missed shots left out).
    pub fn of(values: &[f64], uncertainties: &[f64]) -> StepStatistics {
        let stats = Stats::of(values);
        let uncertainty_ms = uncertainties.iter().copied().reduce(f64::max);
        let median_uncertainty_ms = match (&stats, Stats::of(uncertainties)) {
            (Some(s), Some(u)) => {
                Some((u.median.powi(2) + (K * s.median_standard_error()).powi(2)).sqrt())
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
        let st = s.stats.as_ref().unwrap();
        let sampling = K * st.median_standard_error();
        let want = (0.3f64.powi(2) + sampling.powi(2)).sqrt();
        assert_eq!(s.median_uncertainty_ms, Some(want));
        let none = StepStatistics::of(&[], &[]);
        assert_eq!(
            (none.stats, none.uncertainty_ms, none.median_uncertainty_ms),
            (None, None, None)
        );
    }

    #[test]
    fn empty_or_nan_has_no_stats() {
        assert!(Stats::of(&[]).is_none());
        assert!(Stats::of(&[1.0, f64::NAN]).is_none());
    }
}
