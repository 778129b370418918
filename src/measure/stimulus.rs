//! Test stimuli: exponential sweep, pseudo-random noise burst, speech-like burst.
//!
//! Owns the synthesis of stimuli, both as rendered samples (what the host plays
//! and correlates against) and as an analytic function of continuous time (what
//! the simulated station uses to apply exact fractional delays and drift).
//!
//! Every stimulus is defined as a continuous-time function (`value_at`), zero
//! outside `[0, duration]`, and the rendered samples are exactly
//! `value_at(i / sample_rate)`. All kinds keep their energy inside the telephone
//! wideband band so that they survive a 200–7000 Hz band limit:
//!
//! - `Sweep`: exponential sine sweep 250 Hz → 6500 Hz (capped at 0.45·fs),
//!   amplitude rising 3 dB/octave so that the power spectrum is flat (a plain
//!   exponential sweep is pink, which widens its correlation peak), 5 ms
//!   raised-cosine fades (shorter for very short stimuli).
//! - `Noise`: Gaussian pseudo-random coefficients on a 16 kHz grid, interpolated
//!   with a Blackman-windowed band-pass kernel (400–6600 Hz ideal edges, ±8 ms
//!   support, so the −6 dB band is about 250–6750 Hz). It is true band-limited
//!   noise with a flat spectrum, so its autocorrelation is a single sharp peak.
//!   The kernel is tabulated with 128× oversampling and linearly interpolated
//!   (interpolation error below −80 dB); 256 table look-ups per evaluation.
//! - `Speech`: a voiced harmonic series (F0 gliding within ~95–245 Hz) shaped by
//!   three moving formants and a −6 dB/octave-ish tilt, under a ~4 Hz syllabic
//!   envelope, plus aspiration/fricative noise (the `Noise` construction)
//!   strongest between syllables. Harmonics fade out smoothly between 6 and 7 kHz.
//!
//! Peak amplitude is normalised to 0.8 over the rendered samples (the analytic
//! signal can exceed that marginally between samples, staying well below 1.0).

use crate::dsp::sinc;
pub use crate::profile::StimulusKind;
use std::f64::consts::PI;

/// Peak amplitude of the rendered samples.
pub const PEAK: f64 = 0.8;
/// Sweep start frequency, Hz.
pub const SWEEP_F1_HZ: f64 = 250.0;
/// Sweep end frequency, Hz (capped at 0.45·fs).
pub const SWEEP_F2_HZ: f64 = 6500.0;
/// Raised-cosine fade length at both ends, s (at most a quarter of the duration).
pub const FADE_S: f64 = 0.005;

const GRID_HZ: f64 = 16_000.0;
const KERNEL_HALF_S: f64 = 0.008;
const NOISE_LO_HZ: f64 = 400.0;
const NOISE_HI_HZ: f64 = 6600.0;
const TABLE_OS: usize = 128;

/// A stimulus: a band-limited signal of finite length with a known analytic form.
#[derive(Debug, Clone)]
pub struct Stimulus {
    pub kind: StimulusKind,
    pub sample_rate: u32,
    pub duration_s: f64,
    samples: Vec<f32>,
    scale: f64,
    fade_s: f64,
    synth: Synth,
}

#[derive(Debug, Clone)]
enum Synth {
    Sweep {
        f1: f64,
        rate: f64, // L = duration / ln(f2/f1)
    },
    Noise(BandNoise),
    Speech(Box<SpeechSynth>),
}

/// Band-limited noise: random coefficients on a grid, interpolated by a kernel.
#[derive(Debug, Clone)]
struct BandNoise {
    /// Coefficient of grid point `k` is `coef[k - first]`.
    first: i64,
    coef: Vec<f64>,
    /// Kernel sampled at `GRID_HZ * TABLE_OS` over [-half, half] (plus one guard).
    table: Vec<f64>,
    half_taps: i64,
}

#[derive(Debug, Clone)]
struct SpeechSynth {
    noise: BandNoise,
    /// Phases of the slow modulators.
    p: [f64; 8],
    /// F0 centre (Hz) and modulation rates (Hz), drawn from the seed.
    f0c: f64,
    rates: [f64; 2],
}

/// splitmix64: a tiny, stable PRNG so stimuli never change with a crate version.
struct SplitMix(u64);
impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let u1 = self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

impl BandNoise {
    fn new(duration_s: f64, rng: &mut SplitMix) -> BandNoise {
        let half_taps = (KERNEL_HALF_S * GRID_HZ).round() as i64;
        let first = -half_taps;
        let last = (duration_s * GRID_HZ).ceil() as i64 + half_taps;
        let coef = (first..=last).map(|_| rng.gauss()).collect();
        let n_table = (2 * half_taps as usize) * TABLE_OS + 2;
        let table = (0..n_table)
            .map(|i| {
                // t in grid periods, from -half_taps to +half_taps.
                let u = i as f64 / TABLE_OS as f64 - half_taps as f64;
                if u.abs() >= half_taps as f64 {
                    return 0.0;
                }
                let w = 0.42
                    + 0.5 * (PI * u / half_taps as f64).cos()
                    + 0.08 * (2.0 * PI * u / half_taps as f64).cos();
                let a = 2.0 * NOISE_HI_HZ / GRID_HZ;
                let b = 2.0 * NOISE_LO_HZ / GRID_HZ;
                w * (a * sinc(a * u) - b * sinc(b * u))
            })
            .collect();
        BandNoise {
            first,
            coef,
            table,
            half_taps,
        }
    }

    fn value(&self, t: f64) -> f64 {
        let g = t * GRID_HZ;
        let k_lo = (g - self.half_taps as f64).ceil() as i64;
        let k_hi = (g + self.half_taps as f64).floor() as i64;
        let k_lo = k_lo.max(self.first);
        let k_hi = k_hi.min(self.first + self.coef.len() as i64 - 1);
        let mut acc = 0.0;
        let os = TABLE_OS as f64;
        for k in k_lo..=k_hi {
            // position in the table
            let pos = (g - k as f64 + self.half_taps as f64) * os;
            let i = pos.floor();
            let fr = pos - i;
            let i = i as usize;
            if i + 1 >= self.table.len() {
                continue;
            }
            let h = self.table[i] + fr * (self.table[i + 1] - self.table[i]);
            acc += self.coef[(k - self.first) as usize] * h;
        }
        acc
    }
}

impl SpeechSynth {
    /// F0 (Hz) and its phase integral 2π∫F0 at t.
    fn f0(&self, t: f64) -> (f64, f64) {
        let (w1, w2) = (2.0 * PI * self.rates[0], 2.0 * PI * self.rates[1]);
        let (a1, a2) = (0.28 * self.f0c, 0.14 * self.f0c);
        let (p1, p2) = (self.p[0], self.p[1]);
        let f0c = self.f0c;
        let f = f0c + a1 * (w1 * t + p1).sin() + a2 * (w2 * t + p2).sin();
        let integral = f0c * t
            - a1 / w1 * ((w1 * t + p1).cos() - p1.cos())
            - a2 / w2 * ((w2 * t + p2).cos() - p2.cos());
        (f, 2.0 * PI * integral)
    }

    fn syllable(&self, t: f64) -> f64 {
        let th = 2.0 * PI * 4.0 * t + 1.2 * (2.0 * PI * 0.8 * t + self.p[2]).sin() + self.p[3];
        0.5 - 0.5 * th.cos()
    }

    fn value(&self, t: f64) -> f64 {
        let (f0, phi) = self.f0(t);
        let f1 = 550.0 + 200.0 * (2.0 * PI * 2.3 * t + self.p[4]).sin();
        let f2 = 1600.0 + 500.0 * (2.0 * PI * 1.7 * t + self.p[5]).sin();
        let f3 = 2700.0 + 200.0 * (2.0 * PI * 1.1 * t + self.p[6]).sin();
        let formants = [(f1, 90.0, 1.0), (f2, 130.0, 0.6), (f3, 200.0, 0.35)];
        let (s1, c) = phi.sin_cos();
        let mut s_prev = 0.0; // sin(0·phi)
        let mut s_cur = s1; // sin(1·phi)
        let mut voiced = 0.0;
        let mut h = 1.0;
        loop {
            let f = h * f0;
            if f >= 7000.0 {
                break;
            }
            let mut amp = 0.08;
            for &(fc, bw, g) in &formants {
                let x = (f - fc) / bw;
                amp += g / (1.0 + x * x).sqrt();
            }
            amp /= 1.0 + f / 500.0;
            if f > 6000.0 {
                let x = (7000.0 - f) / 1000.0;
                amp *= x * x * (3.0 - 2.0 * x);
            }
            voiced += amp * s_cur;
            let s_next = 2.0 * c * s_cur - s_prev;
            s_prev = s_cur;
            s_cur = s_next;
            h += 1.0;
        }
        let e = self.syllable(t);
        let voiced_env = 0.15 + 0.85 * e;
        let noise_env =
            0.35 + 0.6 * (1.0 - e) * (0.5 + 0.5 * (2.0 * PI * 2.9 * t + self.p[7]).sin());
        voiced_env * voiced + noise_env * self.noise.value(t)
    }
}

impl Stimulus {
    /// Synthesize a stimulus. `seed` fixes the pseudo-random parts.
    pub fn new(kind: StimulusKind, sample_rate: u32, duration_s: f64, seed: u64) -> Stimulus {
        assert!(sample_rate > 0, "sample rate must be positive");
        let duration_s = if duration_s.is_finite() {
            duration_s.max(0.0)
        } else {
            0.0
        };
        let mut rng = SplitMix(seed ^ 0x5EED_C0DE_CE47_1AB5);
        let synth = match kind {
            StimulusKind::Sweep => {
                let f2 = SWEEP_F2_HZ.min(0.45 * sample_rate as f64);
                let f1 = SWEEP_F1_HZ.min(f2 * 0.5);
                Synth::Sweep {
                    f1,
                    rate: duration_s.max(1e-9) / (f2 / f1).ln(),
                }
            }
            StimulusKind::Noise => Synth::Noise(BandNoise::new(duration_s, &mut rng)),
            StimulusKind::Speech => {
                let mut p = [0.0; 8];
                for v in p.iter_mut() {
                    *v = 2.0 * PI * rng.unit();
                }
                // F0 centre 140–190 Hz: with ±42 % modulation F0 stays in ~80–270 Hz.
                let f0c = 140.0 + 50.0 * rng.unit();
                let rates = [0.9 + 0.8 * rng.unit(), 3.0 + 2.0 * rng.unit()];
                Synth::Speech(Box::new(SpeechSynth {
                    noise: BandNoise::new(duration_s, &mut rng),
                    p,
                    f0c,
                    rates,
                }))
            }
        };
        let mut s = Stimulus {
            kind,
            sample_rate,
            duration_s,
            samples: Vec::new(),
            scale: 1.0,
            fade_s: FADE_S.min(duration_s / 4.0),
            synth,
        };
        let n = (duration_s * sample_rate as f64).round() as usize;
        let fs = sample_rate as f64;
        let peak = (0..n)
            .map(|i| s.raw(i as f64 / fs).abs())
            .fold(0.0f64, f64::max);
        s.scale = if peak > 0.0 { PEAK / peak } else { 1.0 };
        s.samples = (0..n).map(|i| s.value_at(i as f64 / fs)).collect();
        s
    }

    /// Unscaled signal including the fades.
    fn raw(&self, t: f64) -> f64 {
        if !(0.0..=self.duration_s).contains(&t) {
            return 0.0;
        }
        let fade = if self.fade_s > 0.0 {
            let edge = t.min(self.duration_s - t);
            if edge < self.fade_s {
                0.5 - 0.5 * (PI * edge / self.fade_s).cos()
            } else {
                1.0
            }
        } else {
            1.0
        };
        let v = match &self.synth {
            Synth::Sweep { f1, rate } => {
                // Amplitude ∝ √f(t): +3 dB/octave compensates the exponential
                // sweep's 1/f dwell, so its power spectrum is flat in band and
                // its autocorrelation a single sharp peak.
                let g = (t / rate).exp();
                g.sqrt() * (2.0 * PI * f1 * rate * (g - 1.0)).sin()
            }
            Synth::Noise(n) => n.value(t),
            Synth::Speech(s) => s.value(t),
        };
        fade * v
    }

    /// The signal at `t` seconds after its start; 0 outside [0, duration].
    pub fn value_at(&self, t: f64) -> f32 {
        (self.raw(t) * self.scale) as f32
    }

    /// The rendered samples: `value_at(i / sample_rate)`.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// Number of rendered samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the stimulus has no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_the_analytic_signal() {
        for kind in StimulusKind::ALL {
            let s = Stimulus::new(kind, 48_000, 0.1, 7);
            assert_eq!(s.samples().len(), 4800);
            for (i, &v) in s.samples().iter().enumerate() {
                assert_eq!(v, s.value_at(i as f64 / 48_000.0));
            }
            let peak = s.samples().iter().fold(0.0f32, |a, &v| a.max(v.abs()));
            assert!((peak - 0.8).abs() < 1e-6, "{kind:?} peak {peak}");
            assert_eq!(s.value_at(-0.001), 0.0);
            assert_eq!(s.value_at(0.1001), 0.0);
            // dense evaluation stays below full scale
            for i in 0..48_000 {
                assert!(s.value_at(i as f64 * 0.1 / 48_000.0).abs() <= 1.0);
            }
        }
    }

    #[test]
    fn seeds_differ_and_repeat() {
        let a = Stimulus::new(StimulusKind::Noise, 48_000, 0.05, 1);
        let b = Stimulus::new(StimulusKind::Noise, 48_000, 0.05, 1);
        let c = Stimulus::new(StimulusKind::Noise, 48_000, 0.05, 2);
        assert_eq!(a.samples(), b.samples());
        assert_ne!(a.samples(), c.samples());
    }
}
