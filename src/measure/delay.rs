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

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use std::f64::consts::PI;
use std::sync::Arc;

/// z (peak over floor) at or below which confidence is 0.
pub const Z_NOISE: f64 = 6.0;
/// z at or above which confidence is 1.
pub const Z_SURE: f64 = 12.0;
/// z at which a stimulus counts as found (confidence 0.5).
pub const Z_DETECT: f64 = 9.0;
/// Window before the largest peak searched for an earlier (direct) arrival, s.
pub const FIRST_ARRIVAL_WINDOW_S: f64 = 0.020;

const SINC_HALF: i64 = 16;
const FLOOR_SAMPLES: usize = 4096;
const MAX_DRIFT: f64 = 1e-3;
/// Stimuli shorter than this are not drift-corrected (their bias at 100 ppm is
/// ≤ 0.6 sample, and a strong echo biases the half-stimulus delays of a sweep by
/// ~0.3 sample, which the correction would turn into a delay error).
const MIN_DRIFT_CORRECT_LEN: usize = 24_000;

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
    /// Derivative-energy centroid of the whole stimulus and of its halves.
    centroid: f64,
    halves: [(usize, usize, f64); 2],
    half_bias: [f64; 2],
    half_info: [f64; 2],
    /// The stimulus has (almost) no energy above [`DECIM_BAND`]·fs, so the
    /// correlation may be computed at half rate.
    band_limited: bool,
    planner: RealFftPlanner<f32>,
    plan: Option<Plan>,
    last_drift: Option<f64>,
    chan_buf: Vec<f32>,
    seg_buf: Vec<f64>,
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

const KAISER_BETA: f64 = 8.0;

/// Non-zero taps on each side of the half-band filter (at odd offsets
/// ±1, ±3, …, ±15; the centre tap is ½): Kaiser-windowed (β = 8) ideal half-band,
/// pass band flat to ~1e-4 up to 0.16·fs, stop band (~−80 dB) from 0.34·fs.
const HB_TAPS: usize = 8;
/// Highest frequency (fraction of fs) at which the stimulus may carry energy
/// for the half-rate correlation: the half-band filter's pass-band edge.
const DECIM_BAND: f64 = 0.16;
/// Largest fraction of the stimulus energy allowed above `DECIM_BAND`.
const DECIM_LEAK: f64 = 1e-7;

/// Half-band taps `g[t]` at offsets ±(2t+1), t = 0..HB_TAPS.
fn halfband() -> [f32; HB_TAPS] {
    let half = (2 * HB_TAPS) as f64;
    let i0b = bessel_i0(KAISER_BETA);
    let mut g = [0f32; HB_TAPS];
    for (t, gt) in g.iter_mut().enumerate() {
        let n = (2 * t + 1) as f64;
        let sign = if t % 2 == 0 { 1.0 } else { -1.0 };
        let r = n / half;
        let w = bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / i0b;
        *gt = (sign / (PI * n) * w) as f32;
    }
    g
}

/// Zero-phase response of the half-band filter at `w` rad/sample.
fn halfband_response(g: &[f32; HB_TAPS], w: f64) -> f64 {
    0.5 + g
        .iter()
        .enumerate()
        .map(|(t, &c)| 2.0 * c as f64 * (w * (2 * t + 1) as f64).cos())
        .sum::<f64>()
}

/// `y[j] = (h * x)[2j]` for j < y.len() (x is zero outside its range).
#[inline(never)]
fn decimate2(x: &[f32], y: &mut [f32], g: &[f32; HB_TAPS]) {
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
fn upsampled_at(r2: &[f32], g: &[f32; HB_TAPS], k: i64) -> f32 {
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

fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..40 {
        // The reciprocal does not depend on `term`, so it is computed off the
        // loop's dependency chain (a division in the chain costs its latency).
        term *= q * (1.0 / (k * k) as f64);
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    sum
}

/// Band-limited interpolation of `r` (values at integer lags `centre-16..=centre+16`
/// given as `vals`, index 16 = centre) at `centre + d`: Kaiser-windowed sinc
/// (β = 8, ±17 samples). `sin(π(d − j)) = (−1)^j·sin(πd)`, so one sine serves
/// every tap, and the window's normalisation `I0(β)` is computed once.
fn interp(vals: &[f64], d: f64) -> f64 {
    let h = (SINC_HALF + 1) as f64;
    let inv_i0_beta = 1.0 / bessel_i0(KAISER_BETA);
    let sin_pd = (PI * d).sin();
    let mut acc = 0.0;
    for (i, &v) in vals.iter().enumerate() {
        let j = i as i64 - SINC_HALF;
        let x = d - j as f64;
        if x.abs() >= h {
            continue;
        }
        let r = x / h;
        let w = bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) * inv_i0_beta;
        let s = if x.abs() < 1e-12 {
            1.0
        } else {
            let sin_x = if j % 2 == 0 { sin_pd } else { -sin_pd };
            sin_x / (PI * x)
        };
        acc += v * s * w;
    }
    acc
}

/// Maximum of `sign·interp(vals, d)` for d in [-1, 1]: golden-section search
/// down to a bracket 0.02 wide, then one parabola through three points 0.004
/// apart around its middle. The interpolant is band-limited, so over a few
/// thousandths of a sample it is a parabola to ~1e-7 sample; 15 evaluations
/// instead of the 32 a golden section to 1e-6 takes.
fn refine(vals: &[f64], sign: f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (-1.0f64, 1.0f64);
    let f = |d: f64| sign * interp(vals, d);
    let mut c = b - g * (b - a);
    let mut d = a + g * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    while b - a > 0.02 {
        if fc > fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    let x0 = (a + b) / 2.0;
    let h = 0.002;
    let (fm, f0, fp) = (f(x0 - h), f(x0), f(x0 + h));
    let curv = fm - 2.0 * f0 + fp;
    if curv >= 0.0 || !curv.is_finite() {
        return x0;
    }
    let x = x0 + 0.5 * h * (fm - fp) / curv;
    x.clamp(a, b)
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

fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// Grid of the coarse prefix of `x²`.
const E_STEP: usize = 16;

/// Coarse prefix sums of `x²`: `coarse[i] = Σ_{j < min(i·E_STEP, len)} x[j]²`
/// (f64), `coarse.len() = ⌈len / E_STEP⌉ + 1`; returns the total. Each block of
/// 16 squares is summed on eight independent f64 lanes, so one dependent add per
/// block, and the prefix is a 16th of the capture's size: it stays in cache.
#[inline(never)]
fn coarse_energy(x: &[f32], coarse: &mut [f64]) -> f64 {
    debug_assert_eq!(coarse.len(), x.len().div_ceil(E_STEP) + 1);
    coarse[0] = 0.0;
    let mut acc = 0.0f64;
    for (c, o) in x.chunks(E_STEP).zip(&mut coarse[1..]) {
        let mut lanes = [0f64; 8];
        let mut q = c.chunks_exact(8);
        for v in &mut q {
            for l in 0..8 {
                lanes[l] += (v[l] as f64) * (v[l] as f64);
            }
        }
        for (l, &v) in q.remainder().iter().enumerate() {
            lanes[l] += (v as f64) * (v as f64);
        }
        let (a0, a1) = (lanes[0] + lanes[4], lanes[1] + lanes[5]);
        let (a2, a3) = (lanes[2] + lanes[6], lanes[3] + lanes[7]);
        acc += (a0 + a1) + (a2 + a3);
        *o = acc;
    }
    acc
}

/// Window energies `Σ x[k..k+m]²` of a capture from its coarse prefix.
struct Energy<'a> {
    x: &'a [f32],
    coarse: &'a [f64],
    m: usize,
}

impl Energy<'_> {
    /// `Σ_{j < k} x[j]²` (k clamped to the capture): the coarse prefix plus at
    /// most `E_STEP − 1` squares.
    fn prefix(&self, k: usize) -> f64 {
        let k = k.min(self.x.len());
        let b = k / E_STEP;
        self.x[b * E_STEP..k]
            .iter()
            .fold(self.coarse[b], |p, &v| p + (v as f64) * (v as f64))
    }

    /// Lower bound of `prefix(k)` from the grid alone.
    fn prefix_lo(&self, k: usize) -> f64 {
        self.coarse[k.min(self.x.len()) / E_STEP]
    }

    /// Upper bound of `prefix(k)` from the grid alone.
    fn prefix_hi(&self, k: usize) -> f64 {
        self.coarse[k.min(self.x.len()).div_ceil(E_STEP)]
    }

    /// Energy of the window of `m` samples at lag `k`.
    fn window(&self, k: usize) -> f64 {
        self.prefix(k + self.m) - self.prefix(k)
    }

    fn sq(&self, k: usize) -> f64 {
        self.x.get(k).map_or(0.0, |&v| (v as f64) * (v as f64))
    }
}

/// Correlation entries per block of the pruned peak search in [`peak_rho2`]
/// (a multiple of `E_STEP`).
const PEAK_BLOCK: usize = 64;

/// Lag of the largest `ρ²·‖s‖² = r² / e` over the correlation `rc`, whose entry
/// `i` is lag `step·i` (first one on ties), among lags whose window energy `e`
/// is above `silent`, and that value (−1 when every window is silent). Pruned
/// search: a cheap vectorised pass takes the largest `r²` of every block, and
/// with a lower bound of the block's window energies (the prefix is
/// non-decreasing) gives an upper bound of the block's `ρ²`; only blocks whose
/// bound reaches the best exact value found so far are scanned entry by entry
/// (no division per lag: `r² · e_best > r_best² · e`). The result is exactly
/// that of a scan over every entry. `bounds` is scratch.
#[inline(never)]
fn peak_rho2(
    rc: &[f32],
    step: usize,
    en: &Energy,
    silent: f64,
    bounds: &mut Vec<f64>,
) -> (usize, f64) {
    let m = en.m;
    bounds.clear();
    for (b, chunk) in rc.chunks(PEAK_BLOCK).enumerate() {
        let mut mx = [0f32; 8];
        let mut c8 = chunk.chunks_exact(8);
        for c in &mut c8 {
            for i in 0..8 {
                let v = c[i] * c[i];
                mx[i] = if v > mx[i] { v } else { mx[i] };
            }
        }
        let mut top = mx.iter().fold(0f32, |a, &v| a.max(v)) as f64;
        for &v in c8.remainder() {
            top = top.max((v * v) as f64);
        }
        // r² in f32 may round down by half an ulp.
        let top = top * (1.0 + 1e-6);
        let k0 = b * PEAK_BLOCK * step;
        let k1 = k0 + (chunk.len() - 1) * step;
        let e_hi = en.prefix_hi(k1 + m) - en.prefix_lo(k0);
        let e_lo = en.prefix_lo(k0 + m) - en.prefix_hi(k1);
        bounds.push(if e_hi <= silent {
            -1.0
        } else if e_lo <= silent || e_lo <= 0.0 {
            f64::INFINITY
        } else {
            top / e_lo
        });
    }
    // Best exact (lag, r², e) so far; r² = −1 means none yet.
    let mut best = (0usize, -1.0f64, 1.0f64);
    let scan_block = |b: usize, best: &mut (usize, f64, f64)| {
        let i0 = b * PEAK_BLOCK;
        let i1 = (i0 + PEAK_BLOCK).min(rc.len());
        let k0 = i0 * step;
        let (mut p_lo, mut p_hi) = (en.prefix(k0), en.prefix(k0 + m));
        for (i, &ri) in rc.iter().enumerate().take(i1).skip(i0) {
            let k = i * step;
            let e = p_hi - p_lo;
            if e > silent {
                let rr = (ri as f64) * (ri as f64);
                let (lhs, rhs) = (rr * best.2, best.1 * e);
                if lhs > rhs || (lhs == rhs && best.1 >= 0.0 && k < best.0) {
                    *best = (k, rr, e);
                }
            }
            for d in 0..step {
                p_lo += en.sq(k + d);
                p_hi += en.sq(k + m + d);
            }
        }
    };
    let first = bounds.iter().enumerate().fold(
        (0usize, -1.0f64),
        |a, (b, &v)| if v > a.1 { (b, v) } else { a },
    );
    if first.1 < 0.0 {
        return (0, -1.0);
    }
    scan_block(first.0, &mut best);
    for (b, &bound) in bounds.iter().enumerate() {
        if b == first.0 || bound < 0.0 {
            continue;
        }
        let q = if best.1 < 0.0 { -1.0 } else { best.1 / best.2 };
        if bound >= q {
            scan_block(b, &mut best);
        }
    }
    if best.1 < 0.0 {
        (0, -1.0)
    } else {
        (best.0, best.1 / best.2)
    }
}

/// Robust standard deviation (median |v| / 0.6745) of `buf`; reorders it.
fn robust_sigma(buf: &mut [f32]) -> f64 {
    if buf.is_empty() {
        return 0.0;
    }
    let mid = buf.len() / 2;
    let (_, m, _) = buf.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    *m as f64 / 0.6745
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
        let mut seg_buf = Vec::new();
        if m >= 1024 {
            let pad = (MAX_DRIFT * m as f64).ceil() as usize + 2 * SINC_HALF as usize + 8;
            let mut cap = vec![0f32; m + 2 * pad];
            cap[pad..pad + m].copy_from_slice(stimulus);
            let reach = (MAX_DRIFT * m as f64).ceil() as i64 + 2;
            if let Some(l) = half_lags(
                stimulus,
                &halves,
                [reach; 2],
                &cap,
                pad as f64,
                1.0,
                &mut seg_buf,
            ) {
                half_bias = [l[0] - pad as f64, l[1] - pad as f64];
            }
        }
        Correlator {
            stimulus: stimulus.to_vec(),
            half_bias,
            half_info,
            stim_norm: energy.sqrt(),
            omega_rms,
            theo_floor,
            acf,
            centroid: deriv_centroid(stimulus, 0, m),
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
        if m >= 1024 {
            if let Some((eps, var_scale)) = self.half_delays(capture, delay, sign) {
                // Correct only a drift bias that stands out of the noise of
                // its own estimate (3σ); otherwise keep the full-stimulus peak
                // (a correction below 3σ_corr would add more noise than bias).
                let bias = eps * self.centroid;
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

    /// Drift (rate ratio − 1) from the delays of the two stimulus halves around
    /// `delay`, and the factor by which the delay variance grows from using it.
    fn half_delays(&mut self, capture: &[f32], delay: f64, sign: f64) -> Option<(f64, f64)> {
        let reach = [0, 1].map(|h| {
            let shift = MAX_DRIFT * (self.halves[h].2 - self.centroid).abs();
            (shift + self.half_bias[h].abs()).ceil() as i64 + 2
        });
        let lags = half_lags(
            &self.stimulus,
            &self.halves,
            reach,
            capture,
            delay,
            sign,
            &mut self.seg_buf,
        )?;
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

/// Clock drift from a series of shots: the least-squares slope of measured
/// arrival time against scheduled time, minus 1, in ppm. `None` with fewer than
/// two shots, no spread in the schedule, or non-finite values.
pub fn drift_ppm(shots: &[(f64, f64)]) -> Option<f64> {
    if shots.len() < 2 || shots.iter().any(|(a, b)| !a.is_finite() || !b.is_finite()) {
        return None;
    }
    let n = shots.len() as f64;
    let mx = shots.iter().map(|s| s.0).sum::<f64>() / n;
    let my = shots.iter().map(|s| s.1).sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(x, y) in shots {
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (y - my);
    }
    if sxx <= 0.0 {
        return None;
    }
    Some((sxy / sxx - 1.0) * 1e6)
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
        for kind in [
            StimulusKind::Sweep,
            StimulusKind::Noise,
            StimulusKind::Speech,
        ] {
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
