//! Test stimuli: exponential sweep, pseudo-random noise burst, speech-like burst.
//!
//! Owns the synthesis of stimuli, both as rendered samples (what the host plays
//! and correlates against) and as an analytic function of continuous time (what
//! the simulated station uses to apply exact fractional delays and drift).
//! (Placeholder: being written.)

pub use crate::profile::StimulusKind;

/// A stimulus: a band-limited signal of finite length with a known analytic form.
#[derive(Debug, Clone)]
pub struct Stimulus {
    pub kind: StimulusKind,
    pub sample_rate: u32,
    pub duration_s: f64,
    samples: Vec<f32>,
}

impl Stimulus {
    /// Synthesize a stimulus. `seed` fixes the pseudo-random parts.
    pub fn new(kind: StimulusKind, sample_rate: u32, duration_s: f64, seed: u64) -> Stimulus {
        let _ = seed;
        let n = (duration_s * sample_rate as f64).round() as usize;
        Stimulus {
            kind,
            sample_rate,
            duration_s,
            samples: vec![0.0; n],
        }
    }
    /// The signal at `t` seconds after its start; 0 outside [0, duration].
    pub fn value_at(&self, t: f64) -> f32 {
        let _ = t;
        0.0
    }
    /// The rendered samples: `value_at(i / sample_rate)`.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }
}
