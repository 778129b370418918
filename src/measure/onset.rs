//! Onset detection in sensor streams (photodiode, reference microphone envelope).
//! (Placeholder: being written.)

/// An onset found in a stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Onset {
    /// Fractional sample index of the threshold crossing.
    pub index: f64,
    /// Noise floor (mean, standard deviation) measured over the lead-in.
    pub floor_mean: f64,
    pub floor_std: f64,
}
