//! Clock drift within one stimulus: the delays of its two halves, whose
//! difference over the distance of their centroids is the rate ratio.
//!
//! Owns splitting the stimulus into halves (their derivative-energy
//! centroids, information and the offset truncation gives them without
//! drift), correlating each half in the time domain around a found delay
//! (vectorised dot products), and the drift and variance that follow. It
//! must not find the stimulus itself or decide whether to correct
//! (`correlator` does both).

use super::interp::{refine, SINC_HALF};

/// Largest drift searched for, as a rate ratio − 1.
pub(super) const MAX_DRIFT: f64 = 1e-3;
/// Stimuli shorter than this are not drift-corrected (their bias at 100 ppm is
/// ≤ 0.6 sample, and a strong echo biases the half-stimulus delays of a sweep by
/// ~0.3 sample, which the correction would turn into a delay error).
pub(super) const MIN_DRIFT_CORRECT_LEN: usize = 24_000;
/// Stimuli shorter than this are not split into halves at all.
pub(super) const MIN_HALVES_LEN: usize = 1024;

/// The two halves of a stimulus, measured once per stimulus.
pub(super) struct Halves {
    /// Derivative-energy centroid of the whole stimulus, samples.
    pub centroid: f64,
    /// Each half: its start, end and derivative-energy centroid.
    halves: [(usize, usize, f64); 2],
    /// Offsets of the half-stimulus peaks without drift (see `half_lags`).
    half_bias: [f64; 2],
    /// Derivative energy of each half (its share of the timing information).
    half_info: [f64; 2],
}

impl Halves {
    /// The halves of `stimulus`; `buf` is scratch, kept for later calls.
    pub fn new(stimulus: &[f32], buf: &mut Vec<f64>) -> Halves {
        let m = stimulus.len();
        let half = m / 2;
        let info = |a: usize, b: usize| {
            (a.max(1)..b.min(m.saturating_sub(1)))
                .map(|j| ((stimulus[j + 1] - stimulus[j - 1]) as f64).powi(2))
                .sum::<f64>()
                .max(f64::MIN_POSITIVE)
        };
        let half_info = [info(0, half), info(half, m)];
        let halves = [
            (0, half, deriv_centroid(stimulus, 0, half)),
            (half, m, deriv_centroid(stimulus, half, m)),
        ];
        // Offsets of the half-stimulus peaks without drift (see `half_lags`).
        let mut half_bias = [0.0; 2];
        if m >= MIN_HALVES_LEN {
            let pad = (MAX_DRIFT * m as f64).ceil() as usize + 2 * SINC_HALF as usize + 8;
            let mut cap = vec![0f32; m + 2 * pad];
            cap[pad..pad + m].copy_from_slice(stimulus);
            let reach = (MAX_DRIFT * m as f64).ceil() as i64 + 2;
            if let Some(l) = half_lags(stimulus, &halves, [reach; 2], &cap, pad as f64, 1.0, buf) {
                half_bias = [l[0] - pad as f64, l[1] - pad as f64];
            }
        }
        Halves {
            centroid: deriv_centroid(stimulus, 0, m),
            halves,
            half_bias,
            half_info,
        }
    }

    /// Drift (rate ratio − 1) from the delays of the two halves of
    /// `stimulus` around `delay` in `capture`, and the factor by which the
    /// delay variance grows from using it. `buf` is scratch.
    pub fn drift(
        &self,
        stimulus: &[f32],
        capture: &[f32],
        delay: f64,
        sign: f64,
        buf: &mut Vec<f64>,
    ) -> Option<(f64, f64)> {
        let reach = [0, 1].map(|h| {
            let shift = MAX_DRIFT * (self.halves[h].2 - self.centroid).abs();
            (shift + self.half_bias[h].abs()).ceil() as i64 + 2
        });
        let lags = half_lags(stimulus, &self.halves, reach, capture, delay, sign, buf)?;
        let (c1, c2) = (self.halves[0].2, self.halves[1].2);
        if c2 - c1 < 1.0 {
            return None;
        }
        let l1 = lags[0] - self.half_bias[0];
        let l2 = lags[1] - self.half_bias[1];
        let eps = (l2 - l1) / (c2 - c1);
        if !eps.is_finite() || eps.abs() > MAX_DRIFT {
            return None;
        }
        // Half h carries the fraction I_h / I of the timing information
        // (derivative energy), so var(lag_h) ≈ var(full) · I / I_h, and
        // var(eps·c) = c² (var(l1) + var(l2)) / (c2 − c1)².
        let total = self.half_info[0] + self.half_info[1];
        let ratio = self.centroid / (c2 - c1);
        let f = ratio * ratio * (total / self.half_info[0] + total / self.half_info[1]);
        Some((eps, f))
    }
}

/// Derivative-energy centroid of `s[a..b]`, in absolute sample indices.
fn deriv_centroid(s: &[f32], a: usize, b: usize) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for j in a.max(1)..b.min(s.len().saturating_sub(1)) {
        let d = (s[j + 1] - s[j - 1]) as f64;
        num += j as f64 * d * d;
        den += d * d;
    }
    if den > 0.0 {
        num / den
    } else {
        (a + b) as f64 / 2.0
    }
}

/// Refined correlation peaks of the two stimulus halves near `delay` (lags in
/// full-stimulus coordinates). Truncated halves have a small systematic offset
/// even without drift; `Correlator::new` measures it on the stimulus itself.
/// Half `h`'s peak is searched within `±reach[h]` samples of `delay`.
fn half_lags(
    stimulus: &[f32],
    halves: &[(usize, usize, f64); 2],
    reach: [i64; 2],
    capture: &[f32],
    delay: f64,
    sign: f64,
    buf: &mut Vec<f64>,
) -> Option<[f64; 2]> {
    let centre = delay.round() as i64;
    let mut lags = [0f64; 2];
    for (h, &(a, b, _)) in halves.iter().enumerate() {
        let reach = reach[h];
        let span = reach + SINC_HALF;
        let seg = &stimulus[a..b];
        let count = (2 * span + 1) as usize;
        buf.clear();
        buf.resize(count, 0.0);
        let mut i = 0;
        while i < count {
            let start = centre - span + i as i64 + a as i64;
            if i + 4 <= count && start >= 0 && start as usize + seg.len() + 3 <= capture.len() {
                let s = start as usize;
                buf[i..i + 4].copy_from_slice(&dot4(seg, &capture[s..]));
                i += 4;
                continue;
            }
            buf[i] = if start as usize >= capture.len() && start >= 0 {
                0.0
            } else if start < 0 {
                let skip = (-start) as usize;
                if skip >= seg.len() {
                    0.0
                } else {
                    dot(&seg[skip..], capture)
                }
            } else {
                dot(seg, &capture[start as usize..])
            };
            i += 1;
        }
        // integer peak within ±reach of the centre
        let mut best = SINC_HALF as usize;
        let mut bv = f64::NEG_INFINITY;
        let first = SINC_HALF as usize;
        for (i, &b) in buf
            .iter()
            .enumerate()
            .take((SINC_HALF + 2 * reach) as usize + 1)
            .skip(first)
        {
            let v = sign * b;
            if v > bv {
                bv = v;
                best = i;
            }
        }
        if bv <= 0.0 {
            return None;
        }
        let vals = &buf[best - SINC_HALF as usize..=best + SINC_HALF as usize];
        let d = refine(vals, sign);
        lags[h] = (centre - span + best as i64) as f64 + d;
    }
    Some(lags)
}

/// f32 dot product with eight independent accumulators (vectorises).
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f64 = acc.iter().map(|&v| v as f64).sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += (*x as f64) * (*y as f64);
    }
    s
}

/// `dot(a, &x[l..])` for l = 0..4 in one pass over `a` (same lanes and order
/// as [`dot`], so the same values bit for bit): each `a` chunk is loaded once,
/// and the four lags give eight independent vector accumulators instead of two,
/// so the loop is no longer bound by the latency of the adds. `x` must hold
/// `a.len() + 3` samples.
fn dot4(a: &[f32], x: &[f32]) -> [f64; 4] {
    let n = a.len();
    let x = &x[..n + 3];
    let chunks = n / 8;
    let mut acc = [[0f32; 8]; 4];
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: AVX is present (checked above); the kernel reads
            // a[..chunks·8] and x[..chunks·8 + 3], both in bounds.
            unsafe { dot4_avx(a, x, chunks, &mut acc) };
        } else {
            // SAFETY: SSE2 is part of the x86_64 baseline; same bounds.
            unsafe { dot4_sse2(a, x, chunks, &mut acc) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for c in 0..chunks {
        let j = c * 8;
        for (l, acc_l) in acc.iter_mut().enumerate() {
            for i in 0..8 {
                acc_l[i] += a[j + i] * x[j + l + i];
            }
        }
    }
    let mut out = [0f64; 4];
    for (l, o) in out.iter_mut().enumerate() {
        let mut s: f64 = acc[l].iter().map(|&v| v as f64).sum();
        for j in chunks * 8..n {
            s += (a[j] as f64) * (x[j + l] as f64);
        }
        *o = s;
    }
    out
}

/// The `dot4` kernel on 8-lane AVX vectors (multiply, then add: no FMA, so the
/// lanes round exactly as `dot`'s do).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn dot4_avx(a: &[f32], x: &[f32], chunks: usize, acc: &mut [[f32; 8]; 4]) {
    use std::arch::x86_64::*;
    debug_assert!(a.len() >= chunks * 8 && x.len() >= chunks * 8 + 3);
    let (pa, px) = (a.as_ptr(), x.as_ptr());
    let mut s = [_mm256_setzero_ps(); 4];
    for c in 0..chunks {
        let j = c * 8;
        let av = _mm256_loadu_ps(pa.add(j));
        for (l, sl) in s.iter_mut().enumerate() {
            let xv = _mm256_loadu_ps(px.add(j + l));
            *sl = _mm256_add_ps(*sl, _mm256_mul_ps(av, xv));
        }
    }
    for (l, sl) in s.iter().enumerate() {
        _mm256_storeu_ps(acc[l].as_mut_ptr(), *sl);
    }
}

/// The `dot4` kernel on SSE2: lanes 0–3 and 4–7 of each lag in two vectors.
#[cfg(target_arch = "x86_64")]
unsafe fn dot4_sse2(a: &[f32], x: &[f32], chunks: usize, acc: &mut [[f32; 8]; 4]) {
    use std::arch::x86_64::*;
    debug_assert!(a.len() >= chunks * 8 && x.len() >= chunks * 8 + 3);
    let (pa, px) = (a.as_ptr(), x.as_ptr());
    let mut s = [[_mm_setzero_ps(); 2]; 4];
    for c in 0..chunks {
        let j = c * 8;
        let a0 = _mm_loadu_ps(pa.add(j));
        let a1 = _mm_loadu_ps(pa.add(j + 4));
        for (l, sl) in s.iter_mut().enumerate() {
            let x0 = _mm_loadu_ps(px.add(j + l));
            let x1 = _mm_loadu_ps(px.add(j + l + 4));
            sl[0] = _mm_add_ps(sl[0], _mm_mul_ps(a0, x0));
            sl[1] = _mm_add_ps(sl[1], _mm_mul_ps(a1, x1));
        }
    }
    for (l, sl) in s.iter().enumerate() {
        _mm_storeu_ps(acc[l].as_mut_ptr(), sl[0]);
        _mm_storeu_ps(acc[l].as_mut_ptr().add(4), sl[1]);
    }
}
