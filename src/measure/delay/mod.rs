//! Delay estimation of a known stimulus in a capture, by FFT cross-correlation.
//!
//! Method (see also the accuracy suite in `tests/accuracy.rs`):
//!
//! 1. Cross-correlation `r[k] = Σ_j s[j]·x[k+j]` for every lag `k` at which at
//!    least half of the stimulus lies inside the capture, computed with realfft
//!    on a fast length, 2^a·{1,3,5,9} (plans, spectra and buffers are cached per capture
//!    length, so `estimate` does not allocate after the first call for a length).
//!    When the stimulus has (almost) no energy above 0.16·fs (every built-in
//!    stimulus), the capture is first decimated by 2 with a half-band filter
//!    (flat to 0.16·fs, ~−80 dB from 0.34·fs), the FFT pair runs at half length
//!    with the filter's response divided out of the stimulus spectrum, and the
//!    peak is searched on the even lags this gives, then the odd lags next to
//!    it and over the first-arrival window are restored by half-band
//!    interpolation (the correlation is the full-rate one to ~1e-4): half the
//!    FFT work, and no full-rate correlation buffer.
//! 2. Normalised correlation `ρ[k] = r[k] / (‖s‖·‖x[k..k+M]‖)`. Window energies
//!    come from a prefix sum of `x²` kept every 16 samples (plus at most 15
//!    squares at either end); the pruned peak search bounds each block of lags
//!    from the grid alone. The capture's level therefore does not matter.
//! 3. Noise floor first: the robust standard deviation of ρ over the searched
//!    lags (median |ρ| / 0.6745 on ≤ 4096 evenly spaced even lags), but never less
//!    than the floor an independent signal would give, `1/√M_eff` with
//!    `M_eff = (Σs²)² / Σ_m R_ss(m)²` (so digital silence cannot make a tiny
//!    floor). `z = |ρ_peak| / floor`, `snr_db = 20·log10 z`.
//! 4. Detection: `confidence = smoothstep((z − Z_NOISE) / (Z_SURE − Z_NOISE))`, a
//!    stimulus is found when `z ≥ Z_DETECT` (confidence 0.5). Pure noise over
//!    480 000 lags peaks near z ≈ 5; see the accuracy suite's false-alarm tests.
//! 5. First arrival: an earlier local peak within 20 ms of the largest one wins
//!    when it is at least half as high and clearly higher than the stimulus's own
//!    autocorrelation sidelobe at that distance (so an echo stronger than the
//!    direct path does not win, and a sidelobe is never taken for a direct path).
//! 6. Sub-sample refinement: the raw correlation is band-limited (the stimulus is),
//!    so it is interpolated with a Kaiser-windowed sinc (±16 taps) and its maximum
//!    found by golden-section search to 0.02 sample, then polished with a
//!    parabola through the interpolant 0.002 sample apart: no parabolic bias
//!    of the kind a fit through the integer lags has.
//! 7. Drift within the stimulus: the two halves of the stimulus are correlated
//!    (time domain, a few dozen lags) around the peak; their delays give the
//!    clock-rate ratio. A full-stimulus correlation peak sits at the start plus
//!    drift × (derivative-energy centroid of the stimulus), so that bias is
//!    removed and the reported delay is the stimulus START.
//! 8. Uncertainty: `σ = 1 / (z_raw · ω_rms)`, the small-error (Cramér–Rao-like)
//!    result for a correlation peak of curvature `ω_rms²` in noise (ω_rms: rms
//!    angular frequency of the stimulus power spectrum, rad/sample; z_raw: peak
//!    of the raw correlation over its robust noise floor), inflated for the drift
//!    correction, with a 0.002-sample floor for interpolation error.
//!
//! The parts: `correlator` (steps 1–5 and putting them together),
//! `halfband` (the half-rate filter), `energy` (window energies, the pruned
//! peak search, the noise floor), `interp` (step 6) and `drift` (step 7).

mod correlator;
mod drift;
mod energy;
mod halfband;
mod interp;

use crate::dsp::LineFit;

pub use correlator::Correlator;

/// z (peak over floor) at or below which confidence is 0.
pub const Z_NOISE: f64 = 6.0;
/// z at or above which confidence is 1.
pub const Z_SURE: f64 = 12.0;
/// z at which a stimulus counts as found (confidence 0.5).
pub const Z_DETECT: f64 = 9.0;
/// Window before the largest peak searched for an earlier (direct) arrival, s.
pub const FIRST_ARRIVAL_WINDOW_S: f64 = 0.020;

/// Where and how well a stimulus was found in a capture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelayEstimate {
    /// Position of the stimulus start in the capture, in samples (sub-sample).
    pub delay_samples: f64,
    /// +1, or -1 when the capture holds the inverted stimulus.
    pub polarity: i8,
    /// Peak of the normalised cross-correlation, 0..1.
    pub peak: f64,
    /// Peak height over the correlation's noise floor, dB.
    pub snr_db: f64,
    /// 0..1; how surely this is the stimulus and not noise.
    pub confidence: f64,
    /// Standard uncertainty of `delay_samples` from detection, in samples.
    pub std_uncertainty_samples: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DelayError {
    #[error("stimulus not found (confidence {confidence:.2}, peak SNR {snr_db:.1} dB)")]
    NotFound { confidence: f64, snr_db: f64 },
    #[error("capture of {capture} samples is shorter than the stimulus ({stimulus})")]
    TooShort { capture: usize, stimulus: usize },
}

/// Length of the correlation FFT for at least `n` points: the smallest
/// `2^a·f`, f ∈ {1, 3, 5, 9}. Any 2^a·3^b·5^c is valid for realfft, but it is not
/// equally fast: at the 10 s / 1 s size the smallest smooth length, 506 250 =
/// 2·3⁴·5⁵, took 1.4× as long for a forward + inverse pair as 2^19 = 524 288,
/// although it is 3 % shorter; radix-2 passes with at most one 3, 5 or 9
/// butterfly stage are rustfft's fastest.
pub fn fast_fft_len(n: usize) -> usize {
    let n = n.max(1);
    [1usize, 3, 5, 9]
        .iter()
        .map(|&f| {
            let mut v = f;
            while v < n {
                v *= 2;
            }
            v
        })
        .min()
        .unwrap_or(n)
}

/// Smallest 2^a·3^b·5^c ≥ n.
pub fn good_fft_len(n: usize) -> usize {
    let n = n.max(1);
    let mut best = usize::MAX;
    let mut p5 = 1usize;
    while p5 < best {
        let mut p35 = p5;
        while p35 < best {
            let mut v = p35;
            while v < n {
                v *= 2;
            }
            best = best.min(v);
            p35 *= 3;
        }
        p5 *= 5;
    }
    best
}

/// Clock drift from a series of shots: the least-squares slope of measured
/// arrival time against scheduled time, minus 1, in ppm. `None` with fewer than
/// two shots, no spread in the schedule, or non-finite values.
pub fn drift_ppm(shots: &[(f64, f64)]) -> Option<f64> {
    if shots.len() < 2 || shots.iter().any(|(a, b)| !a.is_finite() || !b.is_finite()) {
        return None;
    }
    let slope = LineFit::of(shots.iter().copied())?.slope()?;
    Some((slope - 1.0) * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_lengths_are_smooth() {
        assert_eq!(good_fft_len(1), 1);
        assert_eq!(good_fft_len(7), 8);
        assert_eq!(good_fft_len(11), 12);
        assert_eq!(good_fft_len(504_001), 506_250);
        for n in [97, 1000, 4801, 52_799] {
            let l = good_fft_len(n);
            assert!(l >= n);
            let mut v = l;
            for p in [2, 3, 5] {
                while v % p == 0 {
                    v /= p;
                }
            }
            assert_eq!(v, 1);
        }
    }

    #[test]
    fn drift_slope() {
        let shots: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64, 0.1 + i as f64 * (1.0 + 50e-6)))
            .collect();
        let d = drift_ppm(&shots).unwrap();
        assert!((d - 50.0).abs() < 1e-6, "{d}");
        assert_eq!(drift_ppm(&[(1.0, 1.0)]), None);
        assert_eq!(drift_ppm(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }
}
