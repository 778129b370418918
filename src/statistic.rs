//! The statistics of a step: their names and their values.
//!
//! Owns the vocabulary `measure`, `profile` and `report` share: which
//! statistics a limit can name ([`Statistic`]), and the value type that
//! holds them ([`Stats`]), with looking one up by name. It computes nothing
//! (`measure::stats` computes statistics and their uncertainties;
//! `profile::judge` reads them against limits), and must not import any other
//! module of the crate, so that both sides can use it without a cycle.

use serde::{Deserialize, Serialize};

/// Summary statistics of a set of values, as `measure::stats` computes them
/// (`Stats::of`). Percentiles use linear interpolation between order
/// statistics (type 7, as R and NumPy default).
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

impl Stats {
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
    fn names_round_trip_and_look_up_their_value() {
        let s = Stats {
            n: 3,
            min: 1.0,
            max: 9.0,
            mean: 4.0,
            median: 3.0,
            p95: 8.5,
            p99: 8.9,
            stddev: 2.0,
            mad: 1.5,
        };
        let want = [1.0, 9.0, 4.0, 3.0, 8.5, 8.9, 2.0, 1.5];
        for (st, v) in Statistic::ALL.into_iter().zip(want) {
            assert_eq!(Statistic::parse(st.name()), Some(st));
            assert_eq!(s.get(st), v, "{}", st.name());
        }
        assert_eq!(Statistic::parse("p50"), None);
    }
}
