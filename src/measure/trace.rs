//! The normalised cross-correlation of a stimulus over a capture window, lag
//! by lag, for the report's correlation plot.
//!
//! Owns only that trace. The delay estimate itself (peak search, sub-sample
//! interpolation, polarity, drift) is `measure::delay`'s; this is a picture of
//! what it searched, recomputed from the raw captures after the run, so it
//! never runs in the acquisition or the measurement path.

use realfft::num_complex::Complex;
use realfft::RealFftPlanner;

/// Normalised cross-correlation coefficient of `stimulus` against `window`
/// at each lag `0..=window.len() - stimulus.len()` (in samples of the
/// window): ρ(lag) = Σ s·w[lag..] / (‖s‖·‖w[lag..lag+m]‖), in [-1, 1]; a
/// negative peak is an inverted stimulus. Empty when the window is shorter
/// than the stimulus or either is silent.
pub fn correlation(stimulus: &[f32], window: &[f32]) -> Vec<f32> {
    let m = stimulus.len();
    if m == 0 || window.len() < m {
        return Vec::new();
    }
    let lags = window.len() - m + 1;
    let n = super::delay::fast_fft_len(window.len() + m);
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let spectrum = |x: &[f32]| -> Vec<Complex<f64>> {
        let mut buf = vec![0.0f64; n];
        for (b, v) in buf.iter_mut().zip(x) {
            *b = *v as f64;
        }
        let mut out = fwd.make_output_vec();
        // Lengths match the plan, so this cannot fail.
        let _ = fwd.process(&mut buf, &mut out);
        out
    };
    let w = spectrum(window);
    let s = spectrum(stimulus);
    let mut prod: Vec<Complex<f64>> = w.iter().zip(&s).map(|(a, b)| a * b.conj()).collect();
    // The inverse of a real signal's spectrum has real end bins.
    if let Some(c) = prod.first_mut() {
        c.im = 0.0;
    }
    if let Some(c) = prod.last_mut() {
        c.im = 0.0;
    }
    let mut r = inv.make_output_vec();
    let _ = inv.process(&mut prod, &mut r);
    let es: f64 = stimulus.iter().map(|v| (*v as f64).powi(2)).sum();
    if es <= 0.0 {
        return Vec::new();
    }
    // Running energy of the window under the stimulus.
    let mut ew: f64 = window[..m].iter().map(|v| (*v as f64).powi(2)).sum();
    let mut out = Vec::with_capacity(lags);
    for lag in 0..lags {
        if lag > 0 {
            ew += (window[lag + m - 1] as f64).powi(2) - (window[lag - 1] as f64).powi(2);
        }
        let den = (es * ew.max(0.0)).sqrt();
        let rho = if den > 1e-30 {
            r[lag] / n as f64 / den
        } else {
            0.0
        };
        out.push(rho.clamp(-1.0, 1.0) as f32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_at_the_delay_with_its_sign() {
        let stim: Vec<f32> = (0..200)
            .map(|i| ((i * 7919 % 97) as f32 / 48.0 - 1.0) * if i % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let mut win = vec![0.0f32; 1000];
        for (i, v) in stim.iter().enumerate() {
            win[321 + i] = -0.5 * v;
        }
        let r = correlation(&stim, &win);
        assert_eq!(r.len(), 801);
        let (at, peak) = r
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap();
        assert_eq!(at, 321);
        assert!((*peak + 1.0).abs() < 1e-4, "{peak}");
        assert!(correlation(&stim, &win[..100]).is_empty());
    }
}
