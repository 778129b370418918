//! Judging statistics against a profile's limits, and a step as a whole.
//!
//! Owns the verdict rules: FAIL outside a bound; MARGINAL inside a bound but
//! within its marginal band, or when the bound lies inside the value's
//! uncertainty interval (guard band in the sense of ISO 14253-1); PASS otherwise.
//! And the step's policy (`judge_step`): how missed shots count (the device's
//! against `max_missed` as FAIL, the station's as ERROR), unmet requirements
//! and a latency step without a measured shot as FAIL.
//! It sees only statistics and counts, never samples; it must not import
//! `measure` or `report` (they hand it statistics and take back verdicts).

use serde::{Deserialize, Serialize};

use super::model::{Limit, Step};
use crate::statistic::Stats;

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

/// What a finished step comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepVerdict {
    /// Judged: the worst of its requirements, missed shots and limits.
    Judged(Verdict),
    /// The station lost more shots than the step allows: the device cannot
    /// be judged on it (the record's ERROR).
    StationFault,
}

/// The facts of a finished step its verdict rests on, besides its limits.
#[derive(Debug, Clone, Default)]
pub struct StepFacts<'a> {
    /// Shots taken.
    pub shots: usize,
    /// Shots missed, and of those, missed through the station's fault.
    pub missed: u32,
    pub station_missed: u32,
    /// Whether any shot was measured (the step has statistics).
    pub measured: bool,
    /// Each requirement not met, with its evidence.
    pub unmet: Vec<(&'a str, &'a str)>,
}

/// Judge a step that ran to its end, from its facts and its judged limits;
/// the reason is every requirement, count and limit that is not PASS.
pub fn judge_step(
    step: &Step,
    facts: &StepFacts,
    limits: &[LimitResult],
) -> (StepVerdict, Option<String>) {
    let mut reasons = Vec::new();
    let mut worst = Verdict::Pass;
    if !facts.unmet.is_empty() {
        worst = Verdict::Fail;
        for (requirement, evidence) in &facts.unmet {
            reasons.push(format!("{requirement} not met: {evidence}"));
        }
    }
    if step.kind.is_latency() {
        let station = facts.station_missed;
        if station > step.params.max_missed {
            return (
                StepVerdict::StationFault,
                Some(format!(
                    "{station} of {} shots could not be measured through the station's fault \
                     (not emitted, or samples lost inside the stimulus; max_missed {})",
                    facts.shots, step.params.max_missed
                )),
            );
        }
        let by_device = facts.missed - station;
        if by_device > step.params.max_missed {
            worst = Verdict::Fail;
            reasons.push(format!(
                "{by_device} of {} shots were not detected (max_missed {})",
                facts.shots, step.params.max_missed
            ));
        }
        if !facts.measured {
            worst = Verdict::Fail;
            reasons.push("no shot was measured".into());
        }
    }
    for l in limits {
        worst = worst.max(l.verdict);
        if l.verdict != Verdict::Pass {
            reasons.push(l.reason.clone());
        }
    }
    (
        StepVerdict::Judged(worst),
        (!reasons.is_empty()).then(|| reasons.join("; ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::model::Unit;
    use crate::statistic::Statistic;

    /// Statistics of 40, 41 and 42 ms (median 41 ms).
    fn stats_41() -> Stats {
        Stats {
            n: 3,
            min: 40.0,
            max: 42.0,
            mean: 41.0,
            median: 41.0,
            p95: 41.9,
            p99: 41.98,
            stddev: 1.0,
            mad: 1.0,
        }
    }

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
        let s = stats_41();
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
        let s = Stats {
            n: 1,
            min: 10.0,
            max: 10.0,
            mean: 10.0,
            median: 10.0,
            p95: 10.0,
            p99: 10.0,
            stddev: 0.0,
            mad: 0.0,
        };
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

    fn latency_step(max_missed: u32) -> Step {
        let toml = format!(
            "format = 1\nid = \"t\"\nversion = \"1.0.0\"\nprogram = \"p\"\n\
             device_class = \"speakerphone\"\ntitle = \"t\"\ndescription = \"t\"\n\
             [[steps]]\nid = \"send\"\nkind = \"audio-send-latency\"\ntitle = \"s\"\n\
             shots = 10\nmax_missed = {max_missed}\n\
             [[steps.limits]]\nstatistic = \"median\"\nmax = 60.0\nunit = \"ms\"\n"
        );
        let p =
            crate::profile::Profile::from_bytes(toml.as_bytes(), std::path::Path::new("t.toml"))
                .unwrap();
        p.steps[0].clone()
    }

    #[test]
    fn missed_shots_count_against_the_device_or_the_station() {
        let step = latency_step(2);
        let facts = |missed, station_missed| StepFacts {
            shots: 10,
            missed,
            station_missed,
            measured: true,
            unmet: Vec::new(),
        };
        assert_eq!(
            judge_step(&step, &facts(2, 1), &[]),
            (StepVerdict::Judged(Verdict::Pass), None)
        );
        // Three shots the device missed: FAIL.
        let (v, why) = judge_step(&step, &facts(4, 1), &[]);
        assert_eq!(v, StepVerdict::Judged(Verdict::Fail));
        assert_eq!(
            why.as_deref(),
            Some("3 of 10 shots were not detected (max_missed 2)")
        );
        // Three the station lost: the step cannot be judged.
        let (v, why) = judge_step(&step, &facts(3, 3), &[]);
        assert_eq!(v, StepVerdict::StationFault);
        assert!(why
            .unwrap()
            .starts_with("3 of 10 shots could not be measured"));
    }

    #[test]
    fn nothing_measured_unmet_requirements_and_limits_give_the_worst() {
        let step = latency_step(10);
        let none = StepFacts {
            shots: 10,
            missed: 10,
            unmet: vec![("audio-playback", "no streaming interface")],
            ..StepFacts::default()
        };
        let (v, why) = judge_step(&step, &none, &[]);
        assert_eq!(v, StepVerdict::Judged(Verdict::Fail));
        assert_eq!(
            why.as_deref(),
            Some("audio-playback not met: no streaming interface; no shot was measured")
        );
        let measured = StepFacts {
            shots: 10,
            measured: true,
            ..StepFacts::default()
        };
        let marginal = judge(&[limit(44.0, Some(5.0), Unit::Ms)], &stats_41(), 0.1);
        let (v, why) = judge_step(&step, &measured, &marginal);
        assert_eq!(v, StepVerdict::Judged(Verdict::Marginal));
        assert_eq!(why, Some(marginal[0].reason.clone()));
    }
}
