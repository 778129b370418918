//! The half-band filter of the half-rate correlation: its taps, its
//! response, decimation by 2, and interpolation of the odd lags back.
//!
//! Owns the filter (Kaiser-windowed, β = 8, ideal half-band) and the two
//! resamplings the correlator does with it. It must not search peaks or
//! judge a detection (`correlator`); it only filters.

use std::f64::consts::PI;

use crate::dsp::Kaiser;

/// The Kaiser window's shape for the half-band filter.
const KAISER_BETA: f64 = 8.0;

/// Non-zero taps on each side of the half-band filter (at odd offsets
/// ±1, ±3, …, ±15; the centre tap is ½): Kaiser-windowed (β = 8) ideal half-band,
/// pass band flat to ~1e-4 up to 0.16·fs, stop band (~−80 dB) from 0.34·fs.
pub(super) const HB_TAPS: usize = 8;
/// Highest frequency (fraction of fs) at which the stimulus may carry energy
/// for the half-rate correlation: the half-band filter's pass-band edge.
pub(super) const DECIM_BAND: f64 = 0.16;
/// Largest fraction of the stimulus energy allowed above `DECIM_BAND`.
pub(super) const DECIM_LEAK: f64 = 1e-7;

/// Half-band taps `g[t]` at offsets ±(2t+1), t = 0..HB_TAPS.
pub(super) fn halfband() -> [f32; HB_TAPS] {
    let half = (2 * HB_TAPS) as f64;
    let window = Kaiser::new(KAISER_BETA);
    let mut g = [0f32; HB_TAPS];
    for (t, gt) in g.iter_mut().enumerate() {
        let n = (2 * t + 1) as f64;
        let sign = if t % 2 == 0 { 1.0 } else { -1.0 };
        let w = window.at(n / half);
        *gt = (sign / (PI * n) * w) as f32;
    }
    g
}

/// Zero-phase response of the half-band filter at `w` rad/sample.
pub(super) fn halfband_response(g: &[f32; HB_TAPS], w: f64) -> f64 {
    0.5 + g
        .iter()
        .enumerate()
        .map(|(t, &c)| 2.0 * c as f64 * (w * (2 * t + 1) as f64).cos())
        .sum::<f64>()
}

/// `y[j] = (h * x)[2j]` for j < y.len() (x is zero outside its range).
#[inline(never)]
pub(super) fn decimate2(x: &[f32], y: &mut [f32], g: &[f32; HB_TAPS]) {
    let no = x.len() / 2;
    // y[j] = ½x[2j] + Σ_t g[t]·(odd[j−1−t] + odd[j+t]), odd[i] = x[2i+1].
    let t = HB_TAPS;
    let ny = y.len();
    let bulk_hi = (no + 1).saturating_sub(t).min(ny).max(t);
    let at = |i: isize| -> f32 {
        if i >= 0 && (i as usize) < no {
            x[2 * i as usize + 1]
        } else {
            0.0
        }
    };
    let xe = |j: usize| -> f32 { x.get(2 * j).copied().unwrap_or(0.0) };
    for (j, yj) in y.iter_mut().enumerate().take(t.min(ny)) {
        let mut acc = 0.5 * xe(j);
        for (k, &c) in g.iter().enumerate() {
            acc += c * (at(j as isize - 1 - k as isize) + at((j + k) as isize));
        }
        *yj = acc;
    }
    // Bulk, in blocks that stay in L1: the block's odd samples (with a halo)
    // are gathered once into a contiguous array, then eight outputs at a time
    // take every tap from unaligned loads of it (one vector per tap pair).
    const BLOCK: usize = 1024;
    let mut lo = [0f32; BLOCK + 2 * HB_TAPS];
    let mut j0 = t;
    while j0 < bulk_hi {
        let j1 = (j0 + BLOCK).min(bulk_hi);
        let len = j1 - j0;
        // lo[i] = odd[j0 − t + i], i < len + 2t − 1.
        let src = &x[2 * (j0 - t)..2 * (j1 + t - 1)];
        for (o, p) in lo.iter_mut().zip(src.chunks_exact(2)) {
            *o = p[1];
        }
        let ys = &mut y[j0..j1];
        let even = &x[2 * j0..2 * j1];
        // Eight outputs at a time, all taps in registers: y is written once.
        let mut y8 = ys.chunks_exact_mut(8);
        let mut e8 = even.chunks_exact(16);
        for (i, (yc, ec)) in (&mut y8).zip(&mut e8).enumerate() {
            let base = 8 * i;
            let mut acc = [0f32; 8];
            for l in 0..8 {
                acc[l] = 0.5 * ec[2 * l];
            }
            for (k, &c) in g.iter().enumerate() {
                let a = &lo[base + t - 1 - k..base + t - 1 - k + 8];
                let b = &lo[base + t + k..base + t + k + 8];
                for l in 0..8 {
                    acc[l] += c * (a[l] + b[l]);
                }
            }
            yc.copy_from_slice(&acc);
        }
        let done = len - y8.into_remainder().len();
        for (jj, yj) in ys.iter_mut().enumerate().skip(done) {
            let mut acc = 0.5 * even[2 * jj];
            for (k, &c) in g.iter().enumerate() {
                acc += c * (lo[jj + t - 1 - k] + lo[jj + t + k]);
            }
            *yj = acc;
        }
        j0 = j1;
    }
    for (j, yj) in y.iter_mut().enumerate().skip(bulk_hi) {
        let mut acc = 0.5 * xe(j);
        for (k, &c) in g.iter().enumerate() {
            acc += c * (at(j as isize - 1 - k as isize) + at((j + k) as isize));
        }
        *yj = acc;
    }
}

/// The full-rate correlation at lag `k` (circular, `k` taken modulo `2·r2.len()`)
/// from its even samples `r2`: `r[2j] = r2[j]`, `r[2j+1]` by half-band
/// interpolation.
pub(super) fn upsampled_at(r2: &[f32], g: &[f32; HB_TAPS], k: i64) -> f32 {
    let n2 = r2.len() as i64;
    let k = k.rem_euclid(2 * n2);
    let j = k / 2;
    if k % 2 == 0 {
        return r2[j as usize];
    }
    let mut acc = 0.0;
    for (t, &c) in g.iter().enumerate() {
        let t = t as i64;
        let a = r2[(j - t).rem_euclid(n2) as usize];
        let b = r2[(j + 1 + t).rem_euclid(n2) as usize];
        acc += 2.0 * c * (a + b);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flat to the pass-band edge, deep in the stop band, ½ at a quarter of
    /// the rate (a half-band filter's symmetry).
    #[test]
    fn response_is_a_half_band() {
        let g = halfband();
        let at = |f: f64| halfband_response(&g, 2.0 * PI * f);
        for i in 0..=16 {
            let f = DECIM_BAND * i as f64 / 16.0;
            assert!((at(f) - 1.0).abs() < 2e-4, "{f}: {}", at(f));
        }
        for i in 0..=16 {
            let f = 0.34 + (0.5 - 0.34) * i as f64 / 16.0;
            assert!(at(f).abs() < 2e-4, "{f}: {}", at(f));
        }
        assert!((at(0.25) - 0.5).abs() < 1e-6);
    }

    /// Decimating, then interpolating the odd samples, gives back a signal
    /// inside the pass band.
    #[test]
    fn decimate_then_upsample_restores_a_band_limited_signal() {
        let g = halfband();
        let x: Vec<f32> = (0..4096)
            .map(|i| (2.0 * PI * 0.05 * i as f64).sin() as f32)
            .collect();
        let mut y = vec![0f32; x.len() / 2];
        decimate2(&x, &mut y, &g);
        for k in 200..3800i64 {
            let got = upsampled_at(&y, &g, k);
            assert!((got - x[k as usize]).abs() < 1e-3, "{k}: {got}");
        }
    }
}
