//! Video latency: the rig's LED flashes in front of the DUT's camera; the
//! frames that show it, and when they arrive, give each flash's latency.

use super::{as_fired, drive_shots, need, schedule, shots_of, Ctx, Emit, LEAD_IN_S};
use crate::measure::measurement::{Measurement, RawData};
use crate::measure::shots::{flash_shots, FrameSample};
use crate::profile::Step;

/// Mean luma over a region given as fractions of the frame.
pub fn roi_mean(frame: &crate::station::Frame, roi: [f64; 4]) -> f64 {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let x0 = ((roi[0] * w as f64).floor() as usize).min(w.saturating_sub(1));
    let y0 = ((roi[1] * h as f64).floor() as usize).min(h.saturating_sub(1));
    let x1 = (((roi[0] + roi[2]) * w as f64).ceil() as usize).clamp(x0 + 1, w);
    let y1 = (((roi[1] + roi[3]) * h as f64).ceil() as usize).clamp(y0 + 1, h);
    let mut sum = 0u64;
    for y in y0..y1 {
        sum += frame.luma[y * w + x0..y * w + x1]
            .iter()
            .map(|&v| v as u64)
            .sum::<u64>();
    }
    sum as f64 / ((x1 - x0) * (y1 - y0)) as f64
}

pub(super) fn latency(step: &Step, ctx: &mut Ctx, m: &mut Measurement) -> Result<(), String> {
    let p = &step.params;
    ctx.sync_burst().map_err(|e| e.to_string())?;
    m.anomalies.sync_bursts += 1;
    let est0 = ctx.estimate().map_err(|e| e.to_string())?;
    need(ctx.station.dut.camera.as_mut(), "camera")?
        .start()
        .map_err(|e| e.to_string())?;
    let n = shots_of(step);
    let interval = p.interval_ms / 1e3;
    let t0 = ctx.station.clock.now().plus_secs(LEAD_IN_S + 0.2);
    let end = t0.plus_secs(n as f64 * interval);
    let times = schedule(t0, interval, n, (interval * 0.1).min(0.04), ctx.seed);
    // Long enough to fully light at least two frames at 30 fps.
    let flash_us = 100_000;
    let mut frames: Vec<FrameSample> =
        Vec::with_capacity((n as f64 * interval * 120.0) as usize + 64);
    let mut dropped = 0;
    let (sent, failure) = drive_shots(
        ctx,
        m,
        est0,
        &times,
        end,
        |st, _, at| st.rig.flash_led(at, flash_us).map(|_| Emit::Rig(at)),
        |st, wait| {
            let cam = need(st.dut.camera.as_mut(), "camera")?;
            if let Some(f) = cam.next_frame(wait).map_err(|e| e.to_string())? {
                if let Some(&(last, ..)) = frames.last() {
                    dropped += f.seq.saturating_sub(last + 1);
                }
                frames.push((f.seq, f.host_time, roi_mean(&f, p.led_roi)));
            }
            Ok(())
        },
    );
    m.anomalies.dropped_frames += dropped;
    if let Some(cam) = ctx.station.dut.camera.as_mut() {
        let _ = cam.stop();
    }
    if ctx.sync_burst().is_ok() {
        m.anomalies.sync_bursts += 1;
    }
    let flashes = as_fired(ctx, rig_protocol::sensor::LED, &sent);
    let est = ctx.estimate().map_err(|e| e.to_string())?;
    m.sync = Some(est.clone());
    m.raw.push(RawData::Table {
        name: format!("{}-frames.csv", step.id),
        header: vec!["seq", "host_time_ns", "roi_mean"],
        rows: frames
            .iter()
            .map(|(s, t, b)| vec![s.to_string(), t.0.to_string(), format!("{b:.3}")])
            .collect(),
    });
    m.shots = flash_shots(&flashes, &frames, &est, p.max_latency_ms / 1e3);
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}
