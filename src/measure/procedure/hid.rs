//! Button-to-HID latency: the rig's actuator presses the DUT's button; the
//! first HID report of the usage going active gives each press's latency.

use super::{as_fired, drive_shots, need, schedule, shots_of, Ctx, Emit, LEAD_IN_S};
use crate::measure::measurement::{Measurement, RawData};
use crate::measure::shots::press_shots;
use crate::profile::Step;

pub(super) fn latency(step: &Step, ctx: &mut Ctx, m: &mut Measurement) -> Result<(), String> {
    let p = &step.params;
    let usage = crate::profile::requirement::parse_hid_usage(&p.hid_usage)
        .ok_or_else(|| format!("bad hid_usage {:?}", p.hid_usage))?;
    need(ctx.station.dut.hid.as_mut(), "HID interface")?;
    ctx.sync_burst().map_err(|e| e.to_string())?;
    m.anomalies.sync_bursts += 1;
    let est0 = ctx.estimate().map_err(|e| e.to_string())?;
    let n = shots_of(step);
    let interval = p.interval_ms / 1e3;
    let hold_us = ((interval * 0.4) * 1e6) as u64;
    let t0 = ctx.station.clock.now().plus_secs(LEAD_IN_S);
    let end = t0.plus_secs(n as f64 * interval);
    let times = schedule(t0, interval, n, (interval * 0.1).min(0.02), ctx.seed);
    let mut events = Vec::with_capacity(2 * n as usize + 8);
    let (sent, failure) = drive_shots(
        ctx,
        m,
        est0,
        &times,
        end,
        |st, _, at| st.rig.press_button(at, hold_us).map(|_| Emit::Rig(at)),
        |st, wait| {
            let hid = need(st.dut.hid.as_mut(), "HID interface")?;
            if let Some(e) = hid.next_event(wait).map_err(|e| e.to_string())? {
                events.push(e);
            }
            Ok(())
        },
    );
    if ctx.sync_burst().is_ok() {
        m.anomalies.sync_bursts += 1;
    }
    let presses = as_fired(ctx, rig_protocol::sensor::BUTTON, &sent);
    let est = ctx.estimate().map_err(|e| e.to_string())?;
    m.sync = Some(est.clone());
    m.raw.push(RawData::Table {
        name: format!("{}-hid.csv", step.id),
        header: vec!["host_time_ns", "usage_page", "usage", "value"],
        rows: events
            .iter()
            .map(|e| {
                vec![
                    e.host_time.0.to_string(),
                    format!("0x{:02x}", e.usage_page),
                    format!("0x{:02x}", e.usage),
                    e.value.to_string(),
                ]
            })
            .collect(),
    });
    m.shots = press_shots(&presses, &events, &est, usage, p.max_latency_ms / 1e3);
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}
