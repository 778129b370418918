//! Judging statistics against a profile's limits.
//!
//! Owns the verdict rules: FAIL outside a bound; MARGINAL inside a bound but
//! within its marginal band, or when the bound lies inside the value's
//! uncertainty interval (guard band in the sense of ISO 14253-1); PASS otherwise.
//! It sees only statistics, never samples.

use serde::{Deserialize, Serialize};

use super::model::Limit;
use crate::measure::stats::Stats;

/// The verdict on one limit, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Marginal,
    Fail,
}

/// A limit with the value it was judged on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitResult {
    #[serde(flatten)]
    pub limit: Limit,
    /// The statistic's value, in the limit's unit.
    pub value: f64,
    pub verdict: Verdict,
    /// Why, in words, e.g. "median 41.20 ms <= max 150 ms".
    pub reason: String,
}

/// Judge statistics in milliseconds, with the expanded uncertainty of the
/// statistic in milliseconds, against each limit.
pub fn judge(limits: &[Limit], stats_ms: &Stats, uncertainty_ms: f64) -> Vec<LimitResult> {
    limits
        .iter()
        .map(|limit| {
            let per = limit.unit.to_ms();
            let value = stats_ms.get(limit.statistic) / per;
            let u = uncertainty_ms / per;
            let band = limit.marginal.unwrap_or(0.0);
            let unit = limit.unit.name();
            let stat = limit.statistic.name();
            let mut verdict = Verdict::Pass;
            let mut reasons = Vec::new();
            if let Some(max) = limit.max {
                if value > max {
                    verdict = verdict.max(Verdict::Fail);
                    reasons.push(format!("{stat} {value:.3} {unit} > max {max} {unit}"));
                } else if value > max - band || value + u > max {
                    verdict = verdict.max(Verdict::Marginal);
                    reasons.push(format!(
                        "{stat} {value:.3} ± {u:.3} {unit} is within the margin of max {max} {unit}"
                    ));
                } else {
                    reasons.push(format!("{stat} {value:.3} {unit} <= max {max} {unit}"));
                }
            }
            if let Some(min) = limit.min {
                if value < min {
                    verdict = verdict.max(Verdict::Fail);
                    reasons.push(format!("{stat} {value:.3} {unit} < min {min} {unit}"));
                } else if value < min + band || value - u < min {
                    verdict = verdict.max(Verdict::Marginal);
                    reasons.push(format!(
                        "{stat} {value:.3} ± {u:.3} {unit} is within the margin of min {min} {unit}"
                    ));
                } else {
                    reasons.push(format!("{stat} {value:.3} {unit} >= min {min} {unit}"));
                }
            }
            LimitResult {
                limit: limit.clone(),
                value,
                verdict,
                reason: reasons.join("; "),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::stats::Statistic;
    use crate::profile::model::Unit;

    fn limit(max: f64, marginal: Option<f64>, unit: Unit) -> Limit {
        Limit {
            statistic: Statistic::Median,
            min: None,
            max: Some(max),
            unit,
            marginal,
        }
    }

    #[test]
    fn pass_marginal_fail_and_units() {
        let s = Stats::of(&[40.0, 41.0, 42.0]).unwrap(); // median 41 ms
        let v = |l: Limit, u: f64| judge(&[l], &s, u)[0].verdict;
        assert_eq!(v(limit(50.0, Some(5.0), Unit::Ms), 0.1), Verdict::Pass);
        assert_eq!(v(limit(44.0, Some(5.0), Unit::Ms), 0.1), Verdict::Marginal);
        assert_eq!(v(limit(41.5, None, Unit::Ms), 1.0), Verdict::Marginal);
        assert_eq!(v(limit(40.0, Some(5.0), Unit::Ms), 0.1), Verdict::Fail);
        // 41 ms is 41000 us; a 40000 us bound fails, 0.05 s passes.
        assert_eq!(v(limit(40000.0, None, Unit::Us), 0.1), Verdict::Fail);
        assert_eq!(v(limit(0.05, None, Unit::S), 0.1), Verdict::Pass);
    }

    #[test]
    fn min_bound() {
        let s = Stats::of(&[10.0]).unwrap();
        let l = Limit {
            statistic: Statistic::Min,
            min: Some(12.0),
            max: None,
            unit: Unit::Ms,
            marginal: None,
        };
        let r = &judge(&[l], &s, 0.0)[0];
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.reason.contains("< min 12"), "{}", r.reason);
    }
}
