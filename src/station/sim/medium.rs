//! The physical medium between the rig and the simulated DUT: sound in the air,
//! the LED's light, the button's plunger. True time is the host clock.

use std::sync::Arc;

/// A sound in the air: samples reconstructed by a DAC running at `rate`
/// samples per true second, from true time `t_start`.
#[derive(Debug, Clone)]
pub struct Emission {
    pub t_start: f64,
    pub rate: f64,
    pub gain: f32,
    pub samples: Arc<[f32]>,
}

impl Emission {
    pub fn t_end(&self) -> f64 {
        self.t_start + (self.samples.len() as f64 + HALF_TAPS as f64) / self.rate
    }

    /// The reconstructed (band-limited) signal at true time `t`.
    pub fn value_at(&self, t: f64) -> f32 {
        let x = (t - self.t_start) * self.rate;
        if x < -(HALF_TAPS as f64) || x > (self.samples.len() + HALF_TAPS) as f64 {
            return 0.0;
        }
        self.gain * interpolate(&self.samples, x)
    }
}

const HALF_TAPS: usize = 24;
const PHASES: usize = 512;

/// Windowed-sinc (Kaiser, β = 8) interpolation of `s` at fractional index `x`,
/// treating samples outside `s` as zero: a DAC's ideal reconstruction filter.
pub fn interpolate(s: &[f32], x: f64) -> f32 {
    let table = kernel_table();
    let base = x.floor();
    let frac = x - base;
    let base = base as i64;
    let pf = frac * PHASES as f64;
    let p0 = pf.floor() as usize;
    let w = (pf - p0 as f64) as f32;
    let k0 = &table[p0 * 2 * HALF_TAPS..(p0 + 1) * 2 * HALF_TAPS];
    let k1 = &table[(p0 + 1) * 2 * HALF_TAPS..(p0 + 2) * 2 * HALF_TAPS];
    let mut acc = 0.0f32;
    for j in 0..2 * HALF_TAPS {
        let idx = base - HALF_TAPS as i64 + 1 + j as i64;
        if idx < 0 || idx >= s.len() as i64 {
            continue;
        }
        let k = k0[j] + w * (k1[j] - k0[j]);
        acc += k * s[idx as usize];
    }
    acc
}

fn kernel_table() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let n = 2 * HALF_TAPS;
        let window = crate::dsp::Kaiser::new(8.0);
        let mut t = Vec::with_capacity((PHASES + 1) * n);
        for p in 0..=PHASES {
            let frac = p as f64 / PHASES as f64;
            for j in 0..n {
                // Tap j sits at sample base - HALF_TAPS + 1 + j; distance from x:
                let d = (j as f64 - HALF_TAPS as f64 + 1.0) - frac;
                t.push(crate::dsp::windowed_sinc(d, HALF_TAPS as f64, &window) as f32);
            }
        }
        t
    })
}

/// An interval during which the LED is lit, true time.
#[derive(Debug, Clone, Copy)]
pub struct Flash {
    pub on: f64,
    pub off: f64,
}

/// Everything in the air and on the bench at once.
#[derive(Debug, Default)]
pub struct Medium {
    /// Sounds reaching the DUT's microphone, each with the DUT's own send latency.
    pub to_dut: Vec<(Emission, f64)>,
    /// Sounds reaching the rig's microphone: the DUT's speaker, and the
    /// rig's own speaker through its acoustic path.
    pub at_rig_mic: Vec<Emission>,
    pub flashes: Vec<Flash>,
    /// The rig routes its microphone to its speaker with this delay, s.
    pub loopback: Option<f64>,
}

impl Medium {
    /// Forget what ended before `t`.
    pub fn prune(&mut self, t: f64) {
        self.to_dut.retain(|(e, lat)| e.t_end() + lat > t);
        self.at_rig_mic.retain(|e| e.t_end() > t);
        self.flashes.retain(|f| f.off > t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_reconstructs_a_band_limited_signal() {
        let f = 3000.0 / 48000.0;
        let s: Vec<f32> = (0..2000)
            .map(|i| (2.0 * std::f64::consts::PI * f * i as f64).sin() as f32)
            .collect();
        for k in 0..100 {
            let x = 800.0 + k as f64 * 3.37;
            let want = (2.0 * std::f64::consts::PI * f * x).sin() as f32;
            assert!((interpolate(&s, x) - want).abs() < 2e-3, "at {x}");
        }
    }
}
