//! Benchmarks of the signal processing (run: `cargo bench --bench dsp`).
//!
//! - `correlate/fft_10s_vs_1s_{sweep,noise}`: `Correlator::estimate` on a 10 s,
//!   48 kHz capture against a 1 s sweep (the figure) and a 1 s noise
//!   burst, after a warm-up call (plans cached).
//! - `correlate/naive_1pct_lags`: the time-domain baseline over 1 % of the lags
//!   (4 320 of 432 001); multiply by 100 for the full search.
//! - `onset/i16_16MiB`: onset detection over a 16-bit stream, throughput in bytes.

use certlab::measure::delay::Correlator;
use certlab::measure::onset::{detect_onset_i16, OnsetConfig};
use certlab::measure::stimulus::{Stimulus, StimulusKind};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn capture(stim: &Stimulus, len: usize, delay: usize) -> Vec<f32> {
    let mut x: Vec<f32> = (0..len)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) % 1000) as f32 * 1e-5 - 0.005)
        .collect();
    for (o, &s) in x[delay..].iter_mut().zip(stim.samples()) {
        *o += s;
    }
    x
}

fn naive(stim: &[f32], x: &[f32], lags: std::ops::Range<usize>) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for k in lags {
        let v: f32 = stim.iter().zip(&x[k..]).map(|(a, b)| a * b).sum();
        if v.abs() > best.1 {
            best = (k, v.abs());
        }
    }
    best
}

fn bench_correlate(c: &mut Criterion) {
    let mut g = c.benchmark_group("correlate");
    g.sample_size(20);
    for (name, kind) in [
        ("fft_10s_vs_1s_sweep", StimulusKind::Sweep),
        ("fft_10s_vs_1s_noise", StimulusKind::Noise),
    ] {
        let stim = Stimulus::new(kind, 48_000, 1.0, 1);
        let x = capture(&stim, 480_000, 200_000);
        let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
        let found = cor.estimate(&x).expect("found");
        assert!((found.delay_samples - 200_000.0).abs() < 0.05, "{found:?}");
        g.bench_function(name, |b| b.iter(|| cor.estimate(black_box(&x)).unwrap()));
    }
    let stim = Stimulus::new(StimulusKind::Sweep, 48_000, 1.0, 1);
    let x = capture(&stim, 480_000, 200_000);
    let n_lags = x.len() - stim.len() + 1;
    g.bench_function("naive_1pct_lags", |b| {
        b.iter(|| {
            naive(
                stim.samples(),
                black_box(&x),
                195_000..195_000 + n_lags / 100,
            )
        })
    });
    g.finish();
}

fn bench_onset(c: &mut Criterion) {
    let n = 8 << 20; // 8 Mi samples = 16 MiB
    let mut s: Vec<i16> = (0..n)
        .map(|i| 100 + ((i as u64).wrapping_mul(2_654_435_761) >> 29) as i16 % 8)
        .collect();
    for v in &mut s[n - 1000..] {
        *v = 5000;
    }
    let cfg = OnsetConfig {
        lead_in: 1000,
        ..OnsetConfig::default()
    };
    let mut g = c.benchmark_group("onset");
    g.throughput(Throughput::Bytes((n * 2) as u64));
    g.bench_function("i16_16MiB", |b| {
        b.iter(|| detect_onset_i16(black_box(&s), &cfg).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_correlate, bench_onset);
criterion_main!(benches);
