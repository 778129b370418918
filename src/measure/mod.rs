//! Measurements: samples in, shots and statistics out.
//!
//! Owns the signal processing (stimuli, delay estimation, onset detection), the
//! statistics, and the measurement procedures of each step kind. A measurement
//! produces shots, statistics and uncertainties; it never judges them against a
//! limit (that is `profile::judge`) and never writes files (that is `report`).

pub mod analyze;
pub mod conformance;
pub mod delay;
pub mod onset;
pub mod procedure;
pub mod rig_path;
pub mod stats;
pub mod stimulus;
pub mod trace;
