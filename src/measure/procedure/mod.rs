//! The measurement procedure of each latency step kind, driven against a
//! station: schedule stimuli through the rig or the DUT, acquire what comes
//! back, and hand it to the shot analysis (`measure::shots`).
//!
//! Owns the shared shot loop ([`drive_shots`]: scheduling ahead, the
//! station's-fault rule for shots it cannot emit in time, clock-sync
//! top-ups between shots) and each kind's driver (`audio`, `video`, `hid`).
//! It never judges a value against a limit and never writes a file: it
//! fills a [`Measurement`] with everything it saw, raw data included.

mod audio;
mod hid;
mod video;

use std::time::Duration;

use super::ctx::Ctx;
use super::measurement::Measurement;
use crate::profile::{Step, StepKind};
use crate::station::sync::SyncEstimate;
use crate::station::{Station, StationError};
use crate::time::{HostTime, RigTime};

pub use super::ctx::{SYNC_BURST, SYNC_TOPUP};

/// Run the procedure of a latency step kind into `m`.
pub fn latency(step: &Step, ctx: &mut Ctx, m: &mut Measurement) -> Result<(), String> {
    match step.kind {
        StepKind::AudioSendLatency
        | StepKind::AudioReceiveLatency
        | StepKind::AudioRoundtripLatency => audio::latency(step, ctx, m),
        StepKind::VideoLatency => video::latency(step, ctx, m),
        StepKind::ButtonHidLatency => hid::latency(step, ctx, m),
        k => Err(format!("{} is not a latency step", k.name())),
    }
}

fn need<T>(part: Option<T>, what: &str) -> Result<T, String> {
    part.ok_or_else(|| format!("the device has no {what}, which this step needs"))
}

fn shots_of(step: &Step) -> u32 {
    step.params.shots.max(1)
}

/// Time before the first shot, for the noise floor and settling.
const LEAD_IN_S: f64 = 0.3;
/// How far ahead of its time a stimulus is scheduled.
const SCHEDULE_AHEAD_S: f64 = 0.06;

/// Shots whose command cannot reach the rig in time are not emitted: the
/// shot is recorded as missed with this reason, and the step goes on.
const MIN_LEAD_S: f64 = 0.010;

const BEHIND: &str = "the harness fell behind its schedule (see run.log)";

/// Whether the rig refused a shot's command for a reason that is the
/// station's, not the device's: its time had passed when the command
/// arrived (the harness fell behind), or the actuator was still busy.
fn is_late(e: &StationError) -> bool {
    matches!(
        e,
        StationError::RigRefused {
            code: rig_protocol::ErrorCode::Late | rig_protocol::ErrorCode::Busy,
            ..
        }
    )
}

/// Where a shot's stimulus came from.
#[derive(Debug, Clone, Copy)]
enum Emit {
    /// The rig, at this rig time.
    Rig(RigTime),
    /// The host (to the DUT), at this host time.
    Host(HostTime),
}

/// A shot's emission, or why it was not emitted with the time it was due.
type Sent = Result<Emit, (HostTime, String)>;

/// The shared shot loop. For each of `times` (host times), `SCHEDULE_AHEAD_S`
/// before it, `fire` sends the shot for that host time and its rig time on
/// the current estimate, returning where the stimulus comes from; between
/// shots `poll` waits up to the given time for what the device sends back
/// (and keeps draining what the step records), until `end`. A shot that
/// cannot be sent in time, or that the rig refuses as late or busy, is the
/// station's miss; re-sync runs after each shot is sent, never before (a
/// lost sync reply costs a retry, which must not make a shot late).
/// Returns each shot's emission and why the loop stopped early, if it did.
fn drive_shots(
    ctx: &mut Ctx,
    m: &mut Measurement,
    mut est: SyncEstimate,
    times: &[HostTime],
    end: HostTime,
    mut fire: impl FnMut(&mut Station, HostTime, RigTime) -> Result<Emit, StationError>,
    mut poll: impl FnMut(&mut Station, Duration) -> Result<(), String>,
) -> (Vec<Sent>, Option<String>) {
    let n = times.len();
    let mut sent: Vec<Sent> = Vec::with_capacity(n);
    while !ctx.cancelled() {
        let now = ctx.station.clock.now();
        let k = sent.len();
        if k < n && now >= times[k].plus_secs(-SCHEDULE_AHEAD_S) {
            if now > times[k].plus_secs(-MIN_LEAD_S) {
                sent.push(Err((times[k], BEHIND.to_string())));
            } else {
                let at = est.host_to_rig(times[k]);
                match fire(ctx.station, times[k], at) {
                    Ok(e) => sent.push(Ok(e)),
                    Err(e) if is_late(&e) => sent.push(Err((times[k], e.to_string()))),
                    Err(e) => return (sent, Some(format!("shot {k}: {e}"))),
                }
            }
            (ctx.progress)(k as u64 + 1);
            let next = times
                .get(k + 1)
                .map_or(end, |t| t.plus_secs(-SCHEDULE_AHEAD_S));
            match ctx.top_up(&mut est, next) {
                Ok(ran) => m.anomalies.sync_bursts += ran as u32,
                Err(e) => return (sent, Some(format!("shot {k}: clock sync: {e}"))),
            }
            continue;
        }
        if k >= n && now >= end {
            break;
        }
        let until = if k < n {
            times[k].plus_secs(-SCHEDULE_AHEAD_S)
        } else {
            end
        };
        if let Err(e) = poll(
            ctx.station,
            Duration::from_secs_f64(until.secs_since(now).clamp(0.001, 0.05)),
        ) {
            return (sent, Some(e));
        }
    }
    (sent, None)
}

/// The rig-emitted shots, each at the rig time the rig reports `sensor`
/// actually fired (when it reports one) rather than the time it was asked.
fn as_fired(ctx: &mut Ctx, sensor: u8, sent: &[Sent]) -> Vec<Result<RigTime, (HostTime, String)>> {
    let onsets = ctx.station.rig.take_onsets();
    sent.iter()
        .map(|s| match s {
            Ok(Emit::Rig(at)) => Ok(crate::station::fired_at(&onsets, sensor, *at)),
            Ok(Emit::Host(t)) => Err((*t, "emitted by the host, not the rig".into())),
            Err(e) => Err(e.clone()),
        })
        .collect()
}

/// Shot times: `t0 + k · interval` plus a pseudo-random dither in [0, dither),
/// so shots do not keep one phase against a frame or polling clock (which
/// would hide or bias the sub-frame interpolation).
fn schedule(t0: HostTime, interval: f64, n: u32, dither: f64, seed: u64) -> Vec<HostTime> {
    use rand::Rng;
    let mut rng = crate::seeded::rng(seed);
    (0..n)
        .map(|k| t0.plus_secs(k as f64 * interval + dither * rng.random::<f64>()))
        .collect()
}
