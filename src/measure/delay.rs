//! Delay estimation of a known stimulus in a capture, by FFT cross-correlation.
//! (Placeholder: being written.)

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

/// Correlates captures against one stimulus; reuses its FFT plans and buffers.
pub struct Correlator {
    stimulus: Vec<f32>,
}

impl Correlator {
    pub fn new(stimulus: &[f32]) -> Correlator {
        Correlator {
            stimulus: stimulus.to_vec(),
        }
    }
    /// Find the stimulus in `capture`.
    pub fn estimate(&mut self, capture: &[f32]) -> Result<DelayEstimate, DelayError> {
        Err(DelayError::TooShort {
            capture: capture.len(),
            stimulus: self.stimulus.len(),
        })
    }
}
