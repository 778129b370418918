//! Descriptive statistics of a set of shots.
//!
//! Owns n, min, max, mean, median, p95, p99, stddev and MAD, and the naming of
//! outliers. It never drops a value: outliers are listed, and still counted.

use serde::{Deserialize, Serialize};

/// Summary statistics of a set of values. Percentiles use linear
/// interpolation between order statistics (type 7, as R and NumPy default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub n: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    pub p95: f64,
    pub p99: f64,
    /// Sample standard deviation (n - 1 in the denominator; 0 when n = 1).
    pub stddev: f64,
    /// Median absolute deviation from the median (unscaled).
    pub mad: f64,
}

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

    /// The value of a named statistic.
    pub fn get(&self, statistic: Statistic) -> f64 {
        match statistic {
            Statistic::Min => self.min,
            Statistic::Max => self.max,
            Statistic::Mean => self.mean,
            Statistic::Median => self.median,
            Statistic::P95 => self.p95,
            Statistic::P99 => self.p99,
            Statistic::Stddev => self.stddev,
            Statistic::Mad => self.mad,
        }
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

/// A statistic a profile limit can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    Min,
    Max,
    Mean,
    Median,
    P95,
    P99,
    Stddev,
    Mad,
}

impl Statistic {
    pub const ALL: [Statistic; 8] = [
        Statistic::Min,
        Statistic::Max,
        Statistic::Mean,
        Statistic::Median,
        Statistic::P95,
        Statistic::P99,
        Statistic::Stddev,
        Statistic::Mad,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Min => "min",
            Statistic::Max => "max",
            Statistic::Mean => "mean",
            Statistic::Median => "median",
            Statistic::P95 => "p95",
            Statistic::P99 => "p99",
            Statistic::Stddev => "stddev",
            Statistic::Mad => "mad",
        }
    }
    pub fn parse(s: &str) -> Option<Statistic> {
        Statistic::ALL.into_iter().find(|x| x.name() == s)
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
    fn empty_or_nan_has_no_stats() {
        assert!(Stats::of(&[]).is_none());
        assert!(Stats::of(&[1.0, f64::NAN]).is_none());
    }
}
