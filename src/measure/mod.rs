//! Measurements: samples in, shots and statistics out.
//!
//! Owns the signal processing (stimuli, delay estimation, onset detection), the
//! statistics, and the measurement procedures of each step kind. A measurement
//! produces shots, statistics and uncertainties; it never judges them against a
//! limit (that is `profile::judge`) and never writes files (that is `report`).

pub mod analyze;
pub mod conformance;
pub mod ctx;
pub mod delay;
pub mod measurement;
pub mod onset;
pub mod procedure;
pub mod rig_path;
pub mod shots;
pub mod stats;
pub mod stimulus;
pub mod trace;

pub use ctx::Ctx;
pub use measurement::{Measurement, Shot, ShotOutcome, K};

use crate::profile::{Step, StepKind};

/// Run one step of a profile against the station in `ctx`: its procedure
/// (a latency step's, or a conformance check's), then the tally of missed
/// and outlying shots.
pub fn run_step(step: &Step, ctx: &mut Ctx) -> Measurement {
    let mut m = Measurement::default();
    let r = match step.kind {
        StepKind::UsbConformance => conformance::usb(step, ctx, &mut m),
        StepKind::SerialConformance => conformance::serial(step, ctx, &mut m),
        _ => procedure::latency(step, ctx, &mut m),
    };
    if let Err(e) = r {
        m.error = Some(e);
    }
    m.cancelled = ctx.cancelled();
    m.tally();
    m
}
