//! The k = 2 promise, checked over many seeds: a step's
//! `median_uncertainty_ms` is an expanded uncertainty (about 95 %), so the
//! scenario's true median must lie within it of the reported median in at
//! least 95 % of runs. A thousand simulated speakerphone runs, each with its
//! own scenario seed (the DUT's latency draws, noise, link delays), through
//! the same station, procedures and statistics a run uses (in virtual
//! time; no report files are written).
//!
//! It takes a few minutes, so `cargo test` leaves it out; `.ci/run` runs it:
//! `cargo test --test coverage -- --ignored`.
//! `CERTLAB_COVERAGE_RUNS=N` runs N seeds instead of 1000.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use certlab::measure::stats::StepStatistics;
use certlab::measure::{self, Ctx};
use certlab::station::sync::ClockSync;
use certlab::time::Clock;
use common::*;

/// One run's (step kind, reported median, stated uncertainty), or why it failed.
fn one_run(seed: u64, dir: &std::path::Path) -> Result<Vec<(String, f64, f64)>, String> {
    let base = std::fs::read_to_string(root().join("fixtures/sim/speakerphone.toml")).unwrap();
    let text: String = base
        .lines()
        .map(|l| {
            if l.starts_with("seed = ") {
                format!("seed = {seed}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join(format!("speakerphone-{seed}.toml"));
    std::fs::write(&path, text).unwrap();
    let profile = certlab::profile::resolve("speakerphone").map_err(|e| e.to_string())?;
    let (clock, _driving) = Clock::new_virtual_joined();
    let mut station = certlab::station::open(
        "sim",
        None,
        Some(&path),
        profile.device_class,
        clock.clone(),
    )
    .map_err(|e| format!("seed {seed}: {e}"))?;
    let mut sync = ClockSync::new();
    let cancel = AtomicBool::new(false);
    let progress = |_: u64| {};
    let mut out = Vec::new();
    for (i, step) in profile.steps.iter().enumerate() {
        if !step.kind.is_latency() {
            continue;
        }
        let mut ctx = Ctx {
            station: &mut station,
            sync: &mut sync,
            cancel: &cancel,
            progress: &progress,
            seed: 0x5eed ^ i as u64,
        };
        let m = measure::run_step(step, &mut ctx);
        if let Some(e) = &m.error {
            return Err(format!("seed {seed} step {}: {e}", step.id));
        }
        // As the record computes them (measure's statistics of the shots).
        let values: Vec<f64> = m.shots.iter().filter_map(|s| s.value_ms()).collect();
        let us: Vec<f64> = m.shots.iter().filter_map(|s| s.uncertainty_ms()).collect();
        let st = StepStatistics::of(&values, &us);
        let (Some(stats), Some(u)) = (st.stats, st.median_uncertainty_ms) else {
            return Err(format!("seed {seed} step {}: no statistics", step.id));
        };
        out.push((step.kind.name().to_string(), stats.median, u));
    }
    Ok(out)
}

#[test]
#[ignore = "a thousand simulated runs take minutes; .ci/run runs it with --ignored"]
fn the_stated_median_uncertainty_covers_the_true_median_in_95_percent_of_runs() {
    let runs: u64 = std::env::var("CERTLAB_COVERAGE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let sc = scenario("fixtures/sim/speakerphone.toml");
    let dir = tempfile::tempdir().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let results: Arc<Mutex<Vec<(String, f64, f64)>>> = Arc::new(Mutex::new(Vec::new()));
    let failures: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (next, results, failures) = (next.clone(), results.clone(), failures.clone());
            let dir = dir.path();
            s.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed) as u64;
                if k >= runs {
                    return;
                }
                match one_run(1_000 + k, dir) {
                    Ok(v) => results.lock().unwrap().extend(v),
                    Err(e) => failures.lock().unwrap().push(e),
                }
            });
        }
    });
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "runs that failed: {failures:?}");
    let results = results.lock().unwrap();
    let mut kinds: Vec<&str> = results.iter().map(|r| r.0.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    let mut report = String::new();
    let mut short = Vec::new();
    for kind in kinds {
        let truth = truth(&sc, kind).unwrap();
        let of_kind: Vec<&(String, f64, f64)> = results.iter().filter(|r| r.0 == kind).collect();
        let n = of_kind.len();
        let covered = of_kind
            .iter()
            .filter(|(_, m, u)| (m - truth).abs() <= *u)
            .count();
        let frac = covered as f64 / n as f64;
        let mean_u = of_kind.iter().map(|r| r.2).sum::<f64>() / n as f64;
        let rms_err =
            (of_kind.iter().map(|r| (r.1 - truth).powi(2)).sum::<f64>() / n as f64).sqrt();
        report += &format!(
            "{kind}: truth {truth} ms, {covered}/{n} covered ({:.1} %), mean stated u {mean_u:.3} ms, rms error {rms_err:.3} ms\n",
            100.0 * frac
        );
        if frac < 0.95 {
            short.push(kind.to_string());
        }
    }
    eprintln!("coverage over {runs} runs:\n{report}");
    assert!(
        short.is_empty(),
        "the k = 2 promise fails for {short:?}:\n{report}"
    );
}
