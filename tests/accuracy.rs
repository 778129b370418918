//! Accuracy suite of the signal processing: delay estimation and onset detection
//! against ground truth. Captures are synthesised with exact fractional delays by
//! evaluating the analytic stimulus `value_at(t - d)`, with noise at a
//! controlled SNR (stimulus power over its duration / noise power). All seeds are
//! fixed. Run with `--nocapture` to see the figures.

use certlab::measure::delay::{drift_ppm, Correlator, DelayError};
use certlab::measure::onset::{detect_onset, detect_onset_i16, Edge, OnsetConfig, OnsetError};
use certlab::measure::stimulus::{Stimulus, StimulusKind};
use certlab::seeded::Rng as StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use realfft::RealFftPlanner;

const FS: u32 = 48_000;
const KINDS: [StimulusKind; 3] = StimulusKind::ALL;

fn power(s: &[f32]) -> f64 {
    s.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / s.len() as f64
}

/// Capture of `len` samples holding `gain · stim(t)` starting at fractional
/// sample `delay`, with the capture clock running `1 + drift` times the
/// stimulus clock, plus white noise at `snr_db` relative to the delivered
/// stimulus power (None: no noise).
fn capture(
    stim: &Stimulus,
    len: usize,
    delay: f64,
    gain: f64,
    drift: f64,
    snr_db: Option<f64>,
    rng: &mut StdRng,
) -> Vec<f32> {
    let fs = stim.sample_rate as f64;
    let mut out = vec![0f32; len];
    add_stimulus(&mut out, stim, delay, gain, drift);
    if let Some(snr) = snr_db {
        let p = power(stim.samples()) * gain * gain;
        let sigma = (p / 10f64.powf(snr / 10.0)).sqrt();
        add_noise(&mut out, sigma, rng);
    }
    let _ = fs;
    out
}

fn add_stimulus(out: &mut [f32], stim: &Stimulus, delay: f64, gain: f64, drift: f64) {
    let fs = stim.sample_rate as f64;
    let span = stim.duration_s * fs * (1.0 + drift);
    let lo = delay.floor().max(0.0) as usize;
    let hi = ((delay + span).ceil() as usize + 1).min(out.len());
    for (i, o) in out.iter_mut().enumerate().take(hi).skip(lo) {
        let t = (i as f64 - delay) / ((1.0 + drift) * fs);
        *o += (gain * stim.value_at(t) as f64) as f32;
    }
}

fn add_noise(out: &mut [f32], sigma: f64, rng: &mut StdRng) {
    let n = Normal::new(0.0, sigma).unwrap();
    for o in out.iter_mut() {
        *o += n.sample(rng) as f32;
    }
}

/// Zero-phase band limit: FFT, keep 200–7000 Hz with 50 Hz cosine skirts, inverse.
fn band_limit(x: &mut [f32], fs: f64, lo: f64, hi: f64) {
    let n = x.len();
    let mut planner = RealFftPlanner::<f32>::new();
    let f = planner.plan_fft_forward(n);
    let i = planner.plan_fft_inverse(n);
    let mut spec = f.make_output_vec();
    let mut buf = x.to_vec();
    f.process(&mut buf, &mut spec).unwrap();
    let skirt = 50.0;
    for (k, c) in spec.iter_mut().enumerate() {
        let fr = k as f64 * fs / n as f64;
        let g = if fr < lo - skirt || fr > hi + skirt {
            0.0
        } else if fr < lo {
            0.5 - 0.5 * (std::f64::consts::PI * (fr - lo + skirt) / skirt).cos()
        } else if fr > hi {
            0.5 + 0.5 * (std::f64::consts::PI * (fr - hi) / skirt).cos()
        } else {
            1.0
        };
        *c *= (g / n as f64) as f32;
    }
    spec[0].im = 0.0;
    if n % 2 == 0 {
        let l = spec.len() - 1;
        spec[l].im = 0.0;
    }
    i.process(&mut spec, x).unwrap();
}

struct Summary {
    mean_abs: f64,
    max_abs: f64,
    mean_sigma: f64,
    within_3sigma: f64,
}

fn summarise(errs: &[(f64, f64)]) -> Summary {
    let n = errs.len() as f64;
    Summary {
        mean_abs: errs.iter().map(|e| e.0.abs()).sum::<f64>() / n,
        max_abs: errs.iter().map(|e| e.0.abs()).fold(0.0, f64::max),
        mean_sigma: errs.iter().map(|e| e.1).sum::<f64>() / n,
        within_3sigma: errs.iter().filter(|e| e.0.abs() <= 3.0 * e.1).count() as f64 / n,
    }
}

/// Runs `trials` captures of `kind` at `snr_db`; returns (error, σ) pairs.
#[allow(clippy::too_many_arguments)]
fn run_trials(
    kind: StimulusKind,
    dur: f64,
    cap_len: usize,
    snr_db: f64,
    trials: usize,
    seed: u64,
    mutate: impl Fn(&mut Vec<f32>, &mut StdRng),
    expect_polarity: i8,
) -> Vec<(f64, f64)> {
    let stim = Stimulus::new(kind, FS, dur, seed);
    let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
    let mut rng = StdRng::seed_from_u64(seed * 7919 + 1);
    let m = stim.len();
    (0..trials)
        .map(|_| {
            let d = rng.random_range(100.0..(cap_len - m - 100) as f64);
            let mut x = capture(&stim, cap_len, d, 1.0, 0.0, Some(snr_db), &mut rng);
            mutate(&mut x, &mut rng);
            let e = cor
                .estimate(&x)
                .unwrap_or_else(|e| panic!("{kind:?} snr {snr_db}: {e}"));
            assert_eq!(e.polarity, expect_polarity, "{kind:?}: {e:?}");
            MIN_SNR.with(|m| m.set(m.get().min(e.snr_db)));
            (e.delay_samples - d, e.std_uncertainty_samples)
        })
        .collect()
}

thread_local! {
    static MIN_SNR: std::cell::Cell<f64> = const { std::cell::Cell::new(f64::INFINITY) };
}

fn report(label: &str, s: &Summary) {
    let min_snr = MIN_SNR.with(|m| m.replace(f64::INFINITY));
    eprintln!(
        "{label:<40} mean|err| {:.4}  max|err| {:.4}  mean σ {:.4}  within 3σ {:.0}%  min SNR {min_snr:.1} dB",
        s.mean_abs,
        s.max_abs,
        s.mean_sigma,
        s.within_3sigma * 100.0
    );
}

#[test]
fn snr_30db_each_kind() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let errs = run_trials(kind, 0.1, 24_000, 30.0, 30, 10 + i as u64, |_, _| {}, 1);
        let s = summarise(&errs);
        report(&format!("{kind:?} 100 ms, 30 dB"), &s);
        assert!(s.mean_abs <= 0.05, "{kind:?}");
        assert!(s.max_abs <= 0.1, "{kind:?}");
        assert!(s.within_3sigma >= 0.9, "{kind:?}: σ not honest");
    }
}

#[test]
fn snr_0db_each_kind() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let errs = run_trials(kind, 0.1, 24_000, 0.0, 30, 20 + i as u64, |_, _| {}, 1);
        let s = summarise(&errs);
        report(&format!("{kind:?} 100 ms, 0 dB"), &s);
        assert!(s.mean_abs <= 0.5, "{kind:?}");
        assert!(s.max_abs <= 1.0, "{kind:?}");
        assert!(s.within_3sigma >= 0.9, "{kind:?}: σ not honest");
    }
}

#[test]
fn stimulus_at_minus_10db() {
    // Below 0 dB the estimate degrades but σ must say so.
    for (i, kind) in KINDS.into_iter().enumerate() {
        let errs = run_trials(kind, 0.3, 36_000, -10.0, 20, 30 + i as u64, |_, _| {}, 1);
        let s = summarise(&errs);
        report(&format!("{kind:?} 300 ms, -10 dB"), &s);
        assert!(s.within_3sigma >= 0.85, "{kind:?}: σ not honest");
    }
}

#[test]
fn polarity_inversion() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let errs = run_trials(
            kind,
            0.1,
            24_000,
            30.0,
            10,
            40 + i as u64,
            |x, _| x.iter_mut().for_each(|v| *v = -*v),
            -1,
        );
        let s = summarise(&errs);
        report(&format!("{kind:?} inverted, 30 dB"), &s);
        assert!(s.mean_abs <= 0.05);
    }
}

#[test]
fn clipping() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        // +12 dB overdrive into a hard clip at ±0.8.
        let errs = run_trials(
            kind,
            0.1,
            24_000,
            30.0,
            10,
            50 + i as u64,
            |x, _| x.iter_mut().for_each(|v| *v = (*v * 4.0).clamp(-0.8, 0.8)),
            1,
        );
        let s = summarise(&errs);
        report(&format!("{kind:?} clipped +12 dB, 30 dB"), &s);
        assert!(s.mean_abs <= 0.05, "{kind:?}");
        assert!(s.max_abs <= 0.15, "{kind:?}");
    }
}

#[test]
fn band_limited_200_7000() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let errs = run_trials(
            kind,
            0.1,
            24_000,
            30.0,
            10,
            60 + i as u64,
            |x, _| band_limit(x, FS as f64, 200.0, 7000.0),
            1,
        );
        let s = summarise(&errs);
        report(&format!("{kind:?} band-limited, 30 dB"), &s);
        assert!(s.mean_abs <= 0.05, "{kind:?}");
        assert!(s.max_abs <= 0.1, "{kind:?}");
    }
}

#[test]
fn echoes_3_to_15_ms() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let stim = Stimulus::new(kind, FS, 0.1, 70 + i as u64);
        let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
        let mut rng = StdRng::seed_from_u64(71 + i as u64);
        let mut errs = Vec::new();
        for echo_ms in [3.0, 5.0, 7.5, 10.0, 12.5, 15.0] {
            for gain_db in [-3.0, -6.0] {
                let d = rng.random_range(1000.0..10_000.0);
                let g = 10f64.powf(gain_db / 20.0);
                let mut x = capture(&stim, 24_000, d, 1.0, 0.0, Some(30.0), &mut rng);
                add_stimulus(&mut x, &stim, d + echo_ms * 48.0, g, 0.0);
                let e = cor.estimate(&x).unwrap();
                errs.push((e.delay_samples - d, e.std_uncertainty_samples));
            }
        }
        let s = summarise(&errs);
        report(&format!("{kind:?} echo 3-15 ms ≤ -3 dB"), &s);
        assert!(s.max_abs <= 0.5, "{kind:?}: took the echo?");
        assert!(s.mean_abs <= 0.15, "{kind:?}");
    }
}

#[test]
fn echo_stronger_than_direct_path() {
    // A first arrival 3 dB below a later echo is still the direct path, at
    // every rate: the first-arrival window is 20 ms, whatever the rate.
    for fs in [16_000u32, 48_000, 96_000] {
        let stim = Stimulus::new(StimulusKind::Noise, fs, 0.1, 75);
        let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
        let mut rng = StdRng::seed_from_u64(76);
        let per_ms = fs as f64 / 1e3;
        let d = 100.0 * per_ms + 0.25;
        // The direct path at -3 dB, an equal-energy echo `echo_ms` later.
        let mut with_echo = |echo_ms: f64| {
            let len = (500.0 * per_ms) as usize;
            let mut x = capture(&stim, len, d, 0.71, 0.0, None, &mut rng);
            add_stimulus(&mut x, &stim, d + echo_ms * per_ms, 1.0, 0.0);
            add_noise(&mut x, 0.005, &mut rng);
            x
        };
        for echo_ms in [3.0, 8.0, 15.0, 19.0] {
            let e = cor.estimate(&with_echo(echo_ms)).unwrap();
            // 6.25 µs: 0.3 sample at 48 kHz
            assert!(
                (e.delay_samples - d).abs() < 0.3 * fs as f64 / 48e3,
                "{fs} Hz, {echo_ms} ms: {e:?}"
            );
        }
        // An echo 30 ms late is outside the window: the largest peak wins.
        let e = cor.estimate(&with_echo(30.0)).unwrap();
        assert!(
            (e.delay_samples - d - 30.0 * per_ms).abs() < 0.3,
            "{fs} Hz, 30 ms: {e:?}"
        );
    }
}

#[test]
fn one_signal_channel_among_four() {
    let stim = Stimulus::new(StimulusKind::Speech, FS, 0.1, 80);
    let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
    let mut rng = StdRng::seed_from_u64(81);
    for (trial, ch) in [0usize, 1, 2, 3, 2, 1].into_iter().enumerate() {
        let d = 3000.0 + trial as f64 * 777.37;
        let len = 24_000;
        let chans: Vec<Vec<f32>> = (0..4)
            .map(|c| {
                if c == ch {
                    capture(&stim, len, d, 0.5, 0.0, Some(30.0), &mut rng)
                } else {
                    let mut v = vec![0f32; len];
                    add_noise(&mut v, 0.05, &mut rng);
                    v
                }
            })
            .collect();
        let inter: Vec<f32> = (0..len)
            .flat_map(|i| chans.iter().map(move |c| c[i]))
            .collect();
        let (found, e) = cor.estimate_multichannel(&inter, 4).unwrap();
        assert_eq!(found, ch);
        assert!((e.delay_samples - d).abs() <= 0.05, "{e:?}");
    }
    // no channel has it
    let mut inter = vec![0f32; 4 * 24_000];
    add_noise(&mut inter, 0.1, &mut rng);
    assert!(matches!(
        cor.estimate_multichannel(&inter, 4),
        Err(DelayError::NotFound { .. })
    ));
}

#[test]
fn drift_100_ppm_over_1_s() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let stim = Stimulus::new(kind, FS, 1.0, 90 + i as u64);
        let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
        let mut rng = StdRng::seed_from_u64(91 + i as u64);
        for drift_ppm_true in [-100.0, 0.0, 100.0] {
            let d = 4321.4;
            let x = capture(
                &stim,
                72_000,
                d,
                1.0,
                drift_ppm_true * 1e-6,
                Some(30.0),
                &mut rng,
            );
            let e = cor.estimate(&x).unwrap();
            let drift = cor.last_drift_ppm().expect("drift measured");
            eprintln!(
                "{kind:?} drift {drift_ppm_true:+} ppm: err {:+.4} samples, measured drift {drift:+.2} ppm, σ {:.4}",
                e.delay_samples - d,
                e.std_uncertainty_samples
            );
            assert!(
                (e.delay_samples - d).abs() <= 0.1,
                "{kind:?} {drift_ppm_true}: {e:?}"
            );
            assert!(
                (drift - drift_ppm_true).abs() <= 5.0,
                "{kind:?}: drift {drift}"
            );
        }
    }
}

#[test]
fn capture_40_db_quieter() {
    for (i, kind) in KINDS.into_iter().enumerate() {
        let stim = Stimulus::new(kind, FS, 0.1, 100 + i as u64);
        let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
        let mut rng = StdRng::seed_from_u64(101);
        for _ in 0..5 {
            let d = rng.random_range(100.0..15_000.0);
            let x = capture(&stim, 24_000, d, 0.01, 0.0, Some(30.0), &mut rng);
            let e = cor.estimate(&x).unwrap();
            assert!((e.delay_samples - d).abs() <= 0.05, "{kind:?}: {e:?}");
        }
    }
}

#[test]
fn long_capture_10_s_with_1_s_stimulus() {
    let stim = Stimulus::new(StimulusKind::Noise, FS, 1.0, 110);
    let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
    let mut rng = StdRng::seed_from_u64(111);
    for d in [0.0, 123_456.789, 431_999.5] {
        let x = capture(&stim, 480_000, d, 0.3, 0.0, Some(10.0), &mut rng);
        let e = cor.estimate(&x).unwrap();
        assert!((e.delay_samples - d).abs() <= 0.05, "{d}: {e:?}");
    }
}

/// Every false-alarm input must give NotFound; returns the highest SNR seen.
fn assert_not_found(cor: &mut Correlator, x: &[f32], what: &str) -> f64 {
    match cor.estimate(x) {
        Err(DelayError::NotFound { snr_db, confidence }) => {
            assert!(confidence < 0.5);
            snr_db
        }
        Err(e) => panic!("{what}: unexpected {e}"),
        Ok(e) => panic!("{what}: false detection {e:?}"),
    }
}

#[test]
fn no_stimulus_never_gives_a_number() {
    let mut worst = f64::NEG_INFINITY;
    let mut count = 0;
    for (i, kind) in KINDS.into_iter().enumerate() {
        let stim = Stimulus::new(kind, FS, 0.1, 120 + i as u64);
        let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
        let mut rng = StdRng::seed_from_u64(121 + i as u64);
        for seed in 0..60u64 {
            // white noise
            let mut x = vec![0f32; 48_000];
            add_noise(&mut x, 0.1, &mut rng);
            worst = worst.max(assert_not_found(&mut cor, &x, "white noise"));
            // band-limited (speech-band) noise
            band_limit(&mut x, FS as f64, 200.0, 7000.0);
            worst = worst.max(assert_not_found(&mut cor, &x, "band noise"));
            // a different stimulus of the same kind, and of the other kinds
            // (sweeps do not depend on the seed: compare them with the others)
            let mut other_kind = KINDS[(seed as usize) % 3];
            if other_kind == StimulusKind::Sweep && kind == StimulusKind::Sweep {
                other_kind = KINDS[1 + (seed as usize / 3) % 2];
            }
            let other = Stimulus::new(other_kind, FS, 0.1, 1000 + seed);
            let mut y = capture(&other, 48_000, 5000.5, 1.0, 0.0, Some(20.0), &mut rng);
            worst = worst.max(assert_not_found(
                &mut cor,
                &y,
                &format!("{other_kind:?} vs {kind:?}"),
            ));
            // the other stimulus in digital silence
            y.fill(0.0);
            add_stimulus(&mut y, &other, 20_000.0, 1.0, 0.0);
            worst = worst.max(assert_not_found(&mut cor, &y, "other stimulus, silent"));
            count += 4;
        }
        // silence, DC, a lone click
        let z = vec![0f32; 48_000];
        assert_not_found(&mut cor, &z, "silence");
        let dc = vec![0.25f32; 48_000];
        worst = worst.max(assert_not_found(&mut cor, &dc, "dc"));
        let mut click = vec![0f32; 48_000];
        click[9000] = 1.0;
        worst = worst.max(assert_not_found(&mut cor, &click, "click"));
    }
    eprintln!("false-alarm inputs: {count}, none detected; highest peak SNR {worst:.1} dB");
}

#[test]
fn drift_from_shots() {
    let shots: Vec<(f64, f64)> = (0..30)
        .map(|i| {
            let t = i as f64 * 0.4;
            (t, 0.05 + t * (1.0 - 80e-6))
        })
        .collect();
    assert!((drift_ppm(&shots).unwrap() + 80.0).abs() < 1e-6);
}

// ---------------------------------------------------------------- onsets

/// Step from `base` to `base + height` with a linear ramp of `rise` samples
/// starting at fractional position `p`, plus noise.
fn step(
    len: usize,
    p: f64,
    rise: f64,
    base: f64,
    height: f64,
    sigma: f64,
    rng: &mut StdRng,
) -> Vec<f64> {
    let n = Normal::new(0.0, sigma.max(1e-300)).unwrap();
    (0..len)
        .map(|i| {
            let x = ((i as f64 - p) / rise).clamp(0.0, 1.0);
            base + height * x + if sigma > 0.0 { n.sample(rng) } else { 0.0 }
        })
        .collect()
}

#[test]
fn onset_fractional_positions() {
    let mut rng = StdRng::seed_from_u64(200);
    let cfg = OnsetConfig {
        lead_in: 500,
        k_sigma: 6.0,
        // threshold half-way up the ramp, where the samples around the
        // crossing lie on the ramp (linear interpolation is then exact)
        min_step: 0.4,
        hysteresis: 0.5,
        hold: 5,
        window: (1000, 9000),
        edge: Edge::Rising,
    };
    let mut errs = Vec::new();
    for _ in 0..50 {
        let p = rng.random_range(1500.0..8000.0);
        let rise = 4.0;
        let (base, height, sigma) = (0.1, 0.8, 0.002);
        let s = step(10_000, p, rise, base, height, sigma, &mut rng);
        let f: Vec<f32> = s.iter().map(|&v| v as f32).collect();
        let o = detect_onset(&f, &cfg).unwrap();
        // where the noiseless ramp crosses the threshold used
        let truth = p + (o.threshold - base) / height * rise;
        errs.push(o.index - truth);
        // i16 stream of the same signal
        let q: Vec<i16> = s.iter().map(|&v| (v * 10_000.0).round() as i16).collect();
        let cfg_i = OnsetConfig {
            min_step: 4000.0,
            ..cfg.clone()
        };
        let oi = detect_onset_i16(&q, &cfg_i).unwrap();
        let truth_i = p + (oi.threshold / 10_000.0 - base) / height * rise;
        errs.push(oi.index - truth_i);
    }
    let mean = errs.iter().map(|e| e.abs()).sum::<f64>() / errs.len() as f64;
    let max = errs.iter().map(|e| e.abs()).fold(0.0, f64::max);
    eprintln!("onset: mean|err| {mean:.4} samples, max {max:.4} (ramp 4 samples, σ/step 0.25 %)");
    assert!(mean < 0.05 && max < 0.2, "{mean} {max}");
}

#[test]
fn onset_errors() {
    let mut rng = StdRng::seed_from_u64(201);
    let cfg = OnsetConfig {
        lead_in: 500,
        k_sigma: 6.0,
        min_step: 0.0,
        hysteresis: 0.5,
        hold: 5,
        window: (1000, 5000),
        edge: Edge::Rising,
    };
    let late: Vec<f32> = step(10_000, 7000.0, 2.0, 0.0, 1.0, 0.01, &mut rng)
        .iter()
        .map(|&v| v as f32)
        .collect();
    match detect_onset(&late, &cfg) {
        Err(OnsetError::OutsideWindow { index }) => assert!((index - 7000.0).abs() < 2.0),
        other => panic!("{other:?}"),
    }
    let early: Vec<f32> = step(10_000, 700.0, 2.0, 0.0, 1.0, 0.01, &mut rng)
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert!(matches!(
        detect_onset(&early, &cfg),
        Err(OnsetError::OutsideWindow { .. })
    ));
    let none: Vec<f32> = step(10_000, 1e9, 2.0, 0.0, 1.0, 0.01, &mut rng)
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert_eq!(detect_onset(&none, &cfg), Err(OnsetError::NotFound));
    let none_i: Vec<i16> = none.iter().map(|&v| (v * 1000.0) as i16).collect();
    assert_eq!(detect_onset_i16(&none_i, &cfg), Err(OnsetError::NotFound));
    // a glitch shorter than `hold` is not an onset
    let mut glitch = none.clone();
    glitch[2000] = 1.0;
    glitch[2001] = 1.0;
    assert_eq!(detect_onset(&glitch, &cfg), Err(OnsetError::NotFound));
    // falling edge (photodiode going dark)
    let fall: Vec<f32> = step(10_000, 3000.5, 1.0, 1.0, -1.0, 0.01, &mut rng)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let c = OnsetConfig {
        edge: Edge::Falling,
        ..cfg.clone()
    };
    let o = detect_onset(&fall, &c).unwrap();
    assert!((o.index - 3000.5).abs() < 0.5, "{o:?}");
}
