//! The correlator: finds a known stimulus in captures, reusing its FFT plans
//! and buffers (the method is in the parent module's documentation).
//!
//! Owns the stimulus's spectral figures, the FFT cross-correlation (at full
//! or half rate), the peak and first-arrival search, detection and its
//! confidence, and putting the sub-sample, drift and uncertainty steps
//! together. The filter (`halfband`), the interpolation (`interp`), the
//! energies and noise floor (`energy`) and the drift (`drift`) are its
//! parts; it must not judge a shot or know about steps (`procedure` does).

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use std::f64::consts::PI;
use std::sync::Arc;

use super::drift::{Halves, MIN_DRIFT_CORRECT_LEN, MIN_HALVES_LEN};
use super::energy::{coarse_energy, peak_rho2, robust_sigma, Energy, E_STEP, PEAK_BLOCK};
use super::halfband::{
    decimate2, halfband, halfband_response, upsampled_at, DECIM_BAND, DECIM_LEAK, HB_TAPS,
};
use super::interp::{interp, refine, SINC_HALF};
use super::{
    fast_fft_len, good_fft_len, DelayError, DelayEstimate, FIRST_ARRIVAL_WINDOW_S, Z_DETECT,
    Z_NOISE, Z_SURE,
};

/// Evenly spaced lags the noise floor is taken over, at most.
const FLOOR_SAMPLES: usize = 4096;

/// Cached FFT set-up for one capture length.
struct Plan {
    capture_len: usize,
    /// Correlation at half rate: the FFTs run on `n / 2` points, and `time`
    /// holds the even lags of the correlation after the inverse FFT.
    decimated: bool,
    fwd: Arc<dyn RealToComplex<f32>>,
    inv: Arc<dyn ComplexToReal<f32>>,
    /// conj(FFT(stimulus)) / n (decimated: / (H·n/2) on the lower half band).
    stim_spec: Vec<Complex<f32>>,
    time: Vec<f32>,
    spec: Vec<Complex<f32>>,
    scratch_fwd: Vec<Complex<f32>>,
    scratch_inv: Vec<Complex<f32>>,
    coarse: Vec<f64>,
    /// Full-rate correlation, and ρ, over the first-arrival window.
    local: Vec<f32>,
    local_rho: Vec<f64>,
    floor_buf: Vec<f32>,
    bounds: Vec<f64>,
}

/// Correlates captures against one stimulus; reuses its FFT plans and buffers.
pub struct Correlator {
    stimulus: Vec<f32>,
    stim_norm: f64,
    omega_rms: f64,
    theo_floor: f64,
    /// |ρ_ss(m)| for m = 0..acf.len(): normalised autocorrelation magnitude.
    acf: Vec<f32>,
    /// Lags searched before the largest peak for an earlier arrival.
    first_arrival_lags: usize,
    /// The stimulus's two halves, for the drift within it.
    halves: Halves,
    /// The stimulus has (almost) no energy above [`DECIM_BAND`]·fs, so the
    /// correlation may be computed at half rate.
    band_limited: bool,
    planner: RealFftPlanner<f32>,
    plan: Option<Plan>,
    last_drift: Option<f64>,
    chan_buf: Vec<f32>,
    seg_buf: Vec<f64>,
}

fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

impl Correlator {
    /// A correlator for `stimulus`, sampled (as the captures will be) at
    /// `sample_rate` Hz; the rate sets the first-arrival window in samples.
    pub fn new(stimulus: &[f32], sample_rate: u32) -> Correlator {
        let m = stimulus.len();
        let first_arrival_lags = (FIRST_ARRIVAL_WINDOW_S * sample_rate as f64).round() as usize;
        let energy: f64 = stimulus.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let mut planner = RealFftPlanner::<f32>::new();
        // Spectral figures from one FFT of the zero-padded stimulus.
        let (omega_rms, theo_floor, acf, band_limited) = if m > 1 && energy > 0.0 {
            let n = good_fft_len(2 * m);
            let fwd = planner.plan_fft_forward(n);
            let inv = planner.plan_fft_inverse(n);
            let mut t = vec![0f32; n];
            t[..m].copy_from_slice(stimulus);
            let mut spec = fwd.make_output_vec();
            fwd.process(&mut t, &mut spec).expect("fft sizes");
            let (mut p, mut pw2, mut p2, mut p_high) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
            for (k, c) in spec.iter().enumerate() {
                let pk = c.norm_sqr() as f64;
                let w = 2.0 * PI * k as f64 / n as f64;
                p += pk;
                pw2 += pk * w * w;
                if k as f64 > DECIM_BAND * n as f64 {
                    p_high += pk;
                }
            }
            // Expected Σ_m R(m)² = (1/n) Σ_f P(f)², with P the power spectrum
            // smoothed over 64 bins (the raw |S|² of one realisation would
            // count its random sidelobes too). One-sided sums count twice.
            for chunk in spec.chunks(64) {
                let avg =
                    chunk.iter().map(|c| c.norm_sqr() as f64).sum::<f64>() / chunk.len() as f64;
                p2 += 2.0 * chunk.len() as f64 * avg * avg;
            }
            let omega = (pw2 / p).sqrt();
            let sum_r2 = p2 / n as f64;
            // Var(ρ) against an independent signal of the stimulus's spectrum
            // is Σ R² / (E² M): M_eff = M E² / Σ R².
            let m_eff = m as f64 * energy * energy / sum_r2;
            let floor = 1.0 / m_eff.sqrt();
            let mut acf_spec: Vec<Complex<f32>> = spec
                .iter()
                .map(|c| Complex::new(c.norm_sqr(), 0.0))
                .collect();
            let mut acf_t = vec![0f32; n];
            inv.process(&mut acf_spec, &mut acf_t).expect("fft sizes");
            let lags = (first_arrival_lags + 2).min(m);
            let r0 = acf_t[0].abs().max(f32::MIN_POSITIVE);
            let acf = acf_t[..lags].iter().map(|v| v.abs() / r0).collect();
            (omega, floor, acf, p_high <= DECIM_LEAK * p)
        } else {
            (1.0, 1.0, vec![1.0], false)
        };
        let mut seg_buf = Vec::new();
        let halves = Halves::new(stimulus, &mut seg_buf);
        Correlator {
            stimulus: stimulus.to_vec(),
            stim_norm: energy.sqrt(),
            omega_rms,
            theo_floor,
            acf,
            first_arrival_lags,
            halves,
            band_limited,
            planner,
            plan: None,
            last_drift: None,
            chan_buf: Vec::new(),
            seg_buf,
        }
    }

    /// Length of the stimulus, samples.
    pub fn stimulus_len(&self) -> usize {
        self.stimulus.len()
    }

    /// Clock drift within the stimulus found by the last successful `estimate`
    /// (capture rate relative to the stimulus rate, minus 1, in ppm), when the
    /// stimulus was long enough to measure it.
    pub fn last_drift_ppm(&self) -> Option<f64> {
        self.last_drift.map(|d| d * 1e6)
    }

    fn ensure_plan(&mut self, capture_len: usize) {
        if self.plan.as_ref().map(|p| p.capture_len) == Some(capture_len) {
            return;
        }
        let m = self.stimulus.len();
        let need = capture_len + m / 2 + 1;
        // Half rate: the FFT length n/2 must hold the correlation of the
        // decimated capture (plus the filter's reach), and be even.
        let decimated = self.band_limited && need >= 4096;
        let (n, nf) = if decimated {
            let nf = fast_fft_len(need.div_ceil(2) + 4 * HB_TAPS);
            (2 * nf, nf)
        } else {
            let n = fast_fft_len(need);
            (n, n)
        };
        // Stimulus spectrum at the full length n.
        let fwd_full = self.planner.plan_fft_forward(n);
        let mut t = vec![0f32; n];
        t[..m].copy_from_slice(&self.stimulus);
        let mut full_spec = fwd_full.make_output_vec();
        fwd_full.process(&mut t, &mut full_spec).expect("fft sizes");
        let fwd = self.planner.plan_fft_forward(nf);
        let inv = self.planner.plan_fft_inverse(nf);
        let mut stim_spec = fwd.make_output_vec();
        let scale = 1.0 / nf as f64;
        if decimated {
            // Bin q of the half-rate FFT is bin q of the full-rate one; the
            // decimation filter's response H is divided out.
            let g = halfband();
            for (q, (o, c)) in stim_spec.iter_mut().zip(&full_spec).enumerate() {
                let w = 2.0 * PI * q as f64 / n as f64;
                let k = scale / halfband_response(&g, w);
                *o = c.conj() * k as f32;
            }
        } else {
            for (o, c) in stim_spec.iter_mut().zip(&full_spec) {
                *o = c.conj() * scale as f32;
            }
        }
        let spec = fwd.make_output_vec();
        let scratch_fwd = fwd.make_scratch_vec();
        let scratch_inv = inv.make_scratch_vec();
        self.plan = Some(Plan {
            capture_len,
            decimated,
            fwd,
            inv,
            stim_spec,
            time: vec![0f32; nf],
            spec,
            scratch_fwd,
            scratch_inv,
            coarse: vec![0.0; capture_len.div_ceil(E_STEP) + 1],
            local: Vec::with_capacity(self.first_arrival_lags + 2 * SINC_HALF as usize + 8),
            local_rho: Vec::with_capacity(self.first_arrival_lags + 4),
            floor_buf: Vec::with_capacity(FLOOR_SAMPLES + 1),
            bounds: Vec::with_capacity(capture_len.div_ceil(PEAK_BLOCK) + 1),
        });
    }

    /// Find the stimulus in `capture`: where it STARTS, in (fractional) samples.
    pub fn estimate(&mut self, capture: &[f32]) -> Result<DelayEstimate, DelayError> {
        self.last_drift = None;
        let m = self.stimulus.len();
        let nc = capture.len();
        if m < 2 || nc < m {
            return Err(DelayError::TooShort {
                capture: nc,
                stimulus: m,
            });
        }
        self.ensure_plan(nc);
        let plan = self.plan.as_mut().expect("plan");
        let nf = plan.time.len();
        let hb = halfband();

        // 1. correlation: `rc[i]` is the correlation at lag `step·i`
        if plan.decimated {
            let ny = nc.div_ceil(2) + HB_TAPS;
            decimate2(capture, &mut plan.time[..ny], &hb);
            plan.time[ny..].fill(0.0);
        } else {
            plan.time[..nc].copy_from_slice(capture);
            plan.time[nc..].fill(0.0);
        }
        plan.fwd
            .process_with_scratch(&mut plan.time, &mut plan.spec, &mut plan.scratch_fwd)
            .expect("fft sizes");
        for (x, s) in plan.spec.iter_mut().zip(&plan.stim_spec) {
            *x *= *s;
        }
        plan.spec[0].im = 0.0;
        if nf % 2 == 0 {
            let last = plan.spec.len() - 1;
            plan.spec[last].im = 0.0;
        }
        plan.inv
            .process_with_scratch(&mut plan.spec, &mut plan.time, &mut plan.scratch_inv)
            .expect("fft sizes");
        let step = if plan.decimated { 2 } else { 1 };
        let rc: &[f32] = &plan.time;
        // Full-rate correlation at any lag (negative lags wrap, as in the FFT).
        let r_at = |k: i64| -> f32 {
            if step == 2 {
                upsampled_at(rc, &hb, k)
            } else {
                rc[k.rem_euclid(nf as i64) as usize]
            }
        };

        // 2. window energies
        let total = coarse_energy(capture, &mut plan.coarse);
        if total <= 0.0 || !total.is_finite() {
            return Err(DelayError::NotFound {
                confidence: 0.0,
                snr_db: f64::NEG_INFINITY,
            });
        }
        let en = Energy {
            x: capture,
            coarse: &plan.coarse,
            m,
        };
        let n_lags = (nc - m / 2 + 1).min(step * nf - m + 1);
        let silent = total * 1e-12 / nc as f64 * m as f64 + f64::MIN_POSITIVE;
        let stim_norm = self.stim_norm;
        let rho_of = |r: f32, k: usize| {
            let e = en.window(k);
            if e > silent {
                r as f64 / (e.sqrt() * stim_norm)
            } else {
                0.0
            }
        };

        // 3. peak of ρ² over the computed lags, then over the full-rate lags
        // next to it, and the robust floor
        let (coarse_k, coarse_q) = peak_rho2(
            &rc[..n_lags.div_ceil(step)],
            step,
            &en,
            silent,
            &mut plan.bounds,
        );
        if coarse_q <= 0.0 {
            return Err(DelayError::NotFound {
                confidence: 0.0,
                snr_db: f64::NEG_INFINITY,
            });
        }
        let mut best_k = coarse_k;
        if step == 2 {
            let q = |k: usize| rho_of(r_at(k as i64), k).powi(2);
            let mut best_q = q(coarse_k);
            for k in [coarse_k.wrapping_sub(1), coarse_k + 1] {
                if k < n_lags && q(k) > best_q {
                    best_q = q(k);
                    best_k = k;
                }
            }
        }
        // Even lags only, so that the floor does not depend on the rate the
        // correlation was computed at.
        let stride = n_lags.div_ceil(FLOOR_SAMPLES).max(1).next_multiple_of(2);
        plan.floor_buf.clear();
        plan.floor_buf.extend(
            (0..n_lags)
                .step_by(stride)
                .map(|k| rho_of(rc[k / step], k).abs() as f32),
        );
        let floor_rho = robust_sigma(&mut plan.floor_buf).max(self.theo_floor);
        plan.floor_buf.clear();
        plan.floor_buf
            .extend((0..n_lags).step_by(stride).map(|k| rc[k / step].abs()));
        let floor_raw = robust_sigma(&mut plan.floor_buf);

        // 4. the full-rate correlation and ρ over the first-arrival window
        let window = self.first_arrival_lags.min(self.acf.len() - 1);
        let lo = best_k.saturating_sub(window);
        // ρ at lags rho_lo..=best_k + 1; the raw correlation 16 lags beyond.
        let rho_lo = lo.saturating_sub(1);
        let w0 = rho_lo as i64 - SINC_HALF - 2;
        let w1 = best_k as i64 + SINC_HALF + 3;
        plan.local.clear();
        plan.local.extend((w0..w1).map(r_at));
        plan.local_rho.clear();
        plan.local_rho.extend(
            plan.local[(rho_lo as i64 - w0) as usize..(best_k as i64 + 2 - w0) as usize]
                .iter()
                .enumerate()
                .map(|(i, &r)| rho_of(r, rho_lo + i)),
        );
        let rho_at = |k: usize| plan.local_rho[k - rho_lo];

        // 5. first arrival
        let mut k0 = best_k;
        let peak_abs = rho_at(best_k).abs();
        let sign_main = rho_at(best_k).signum();
        for k in lo.max(1)..best_k.saturating_sub(2) {
            let v = sign_main * rho_at(k);
            if v < 0.5 * peak_abs {
                continue;
            }
            if v < sign_main * rho_at(k - 1) || v < sign_main * rho_at(k + 1) {
                continue;
            }
            let sidelobe = self.acf[best_k - k] as f64 * peak_abs;
            if v > sidelobe + (0.2 * peak_abs).max(5.0 * floor_rho) {
                k0 = k;
                break;
            }
        }
        let rho0 = rho_at(k0);
        let peak = rho0.abs();
        let z = peak / floor_rho;
        let snr_db = 20.0 * z.log10();
        let confidence = smoothstep((z - Z_NOISE) / (Z_SURE - Z_NOISE));
        if z < Z_DETECT || !z.is_finite() {
            return Err(DelayError::NotFound { confidence, snr_db });
        }
        let sign = rho0.signum();

        // 6. sub-sample refinement on the raw correlation
        let mut vals = [0f64; (2 * SINC_HALF + 1) as usize];
        let first = (k0 as i64 - SINC_HALF - w0) as usize;
        for (v, &r) in vals.iter_mut().zip(&plan.local[first..]) {
            *v = r as f64;
        }
        let delta = refine(&vals, sign);
        let raw_peak = sign * interp(&vals, delta);
        let mut delay = k0 as f64 + delta;

        // 8. uncertainty
        let z_raw = if floor_raw > 0.0 {
            raw_peak / floor_raw
        } else {
            f64::INFINITY
        };
        let mut sigma = 1.0 / (z_raw.min(z * 1e3).max(1.0) * self.omega_rms);

        // 7. drift within the stimulus
        if m >= MIN_HALVES_LEN {
            let drift = self
                .halves
                .drift(&self.stimulus, capture, delay, sign, &mut self.seg_buf);
            if let Some((eps, var_scale)) = drift {
                // Correct only a drift bias that stands out of the noise of
                // its own estimate (3σ); otherwise keep the full-stimulus peak
                // (a correction below 3σ_corr would add more noise than bias).
                let bias = eps * self.halves.centroid;
                let sigma_corr = sigma * var_scale.sqrt();
                self.last_drift = Some(eps);
                if bias.abs() > 3.0 * sigma_corr && m >= MIN_DRIFT_CORRECT_LEN {
                    delay -= bias;
                    sigma = (sigma * sigma + sigma_corr * sigma_corr).sqrt();
                }
            }
        }
        let sigma = (sigma * sigma + 0.002 * 0.002).sqrt();
        Ok(DelayEstimate {
            delay_samples: delay,
            polarity: if sign < 0.0 { -1 } else { 1 },
            peak: peak.min(1.0),
            snr_db,
            confidence,
            std_uncertainty_samples: sigma,
        })
    }

    /// Find the stimulus in an interleaved multichannel capture; returns the
    /// channel with the best confidence (ties: higher SNR) and its estimate.
    pub fn estimate_multichannel(
        &mut self,
        interleaved: &[f32],
        channels: usize,
    ) -> Result<(usize, DelayEstimate), DelayError> {
        let m = self.stimulus.len();
        if channels == 0 {
            return Err(DelayError::TooShort {
                capture: 0,
                stimulus: m,
            });
        }
        let frames = interleaved.len() / channels;
        let mut buf = std::mem::take(&mut self.chan_buf);
        let mut best: Option<(usize, DelayEstimate, Option<f64>)> = None;
        let mut worst_err: Option<DelayError> = None;
        for ch in 0..channels {
            buf.clear();
            buf.extend(interleaved.iter().skip(ch).step_by(channels).take(frames));
            match self.estimate(&buf) {
                Ok(e) => {
                    let better = match &best {
                        None => true,
                        Some((_, b, _)) => {
                            e.confidence > b.confidence
                                || (e.confidence == b.confidence && e.snr_db > b.snr_db)
                        }
                    };
                    if better {
                        best = Some((ch, e, self.last_drift));
                    }
                }
                Err(err) => {
                    let replace = match (&worst_err, &err) {
                        (None, _) => true,
                        (
                            Some(DelayError::NotFound { confidence: a, .. }),
                            DelayError::NotFound { confidence: b, .. },
                        ) => b > a,
                        _ => false,
                    };
                    if replace {
                        worst_err = Some(err);
                    }
                }
            }
        }
        self.chan_buf = buf;
        match best {
            Some((ch, e, drift)) => {
                self.last_drift = drift;
                Ok((ch, e))
            }
            None => Err(worst_err.unwrap_or(DelayError::NotFound {
                confidence: 0.0,
                snr_db: f64::NEG_INFINITY,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_delay_found() {
        let s: Vec<f32> = (0..2000)
            .map(|i| {
                let t = i as f64 / 48_000.0;
                ((2.0 * PI * (300.0 * t + 20_000.0 * t * t)).sin() * 0.5) as f32
            })
            .collect();
        let mut c = Correlator::new(&s, 48_000);
        let mut cap = vec![0f32; 10_000];
        cap[1234..1234 + 2000].copy_from_slice(&s);
        let e = c.estimate(&cap).unwrap();
        assert!((e.delay_samples - 1234.0).abs() < 0.01, "{e:?}");
        assert_eq!(e.polarity, 1);
        assert!(c.estimate(&vec![0.0; 10_000]).is_err());
        assert!(matches!(
            c.estimate(&cap[..100]),
            Err(DelayError::TooShort { .. })
        ));
    }

    /// The half-rate correlation gives the full-rate estimate, for every kind
    /// of stimulus, in noise and in white noise alone.
    #[test]
    fn half_rate_matches_full_rate() {
        use crate::measure::stimulus::{Stimulus, StimulusKind};
        for kind in StimulusKind::ALL {
            let stim = Stimulus::new(kind, 48_000, 0.5, 3);
            let mut half = Correlator::new(stim.samples(), stim.sample_rate);
            assert!(half.band_limited, "{kind:?}");
            let mut full = Correlator::new(stim.samples(), stim.sample_rate);
            full.band_limited = false;
            let mut state = 12345u64;
            let mut noise = |a: f32| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * a
            };
            let mut cap: Vec<f32> = (0..100_000).map(|_| noise(0.2)).collect();
            for (o, &v) in cap[31_337..].iter_mut().zip(stim.samples()) {
                *o += v;
            }
            let (a, b) = (half.estimate(&cap).unwrap(), full.estimate(&cap).unwrap());
            eprintln!("{kind:?} {a:?} {b:?}");
            assert!(
                (a.delay_samples - b.delay_samples).abs() < 1e-3,
                "{a:?} {b:?}"
            );
            assert!((a.snr_db - b.snr_db).abs() < 0.05, "{a:?} {b:?}");
            let white: Vec<f32> = (0..100_000).map(|_| noise(1.0)).collect();
            assert!(half.estimate(&white).is_err());
            assert!(full.estimate(&white).is_err());
        }
    }
}
