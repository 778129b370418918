//! `certlab probe hid`: it opens a DUT's hidraw node (by USB identity or
//! path), optionally writes an output report (an LED), and prints every
//! input change with its time since the write.
//!
//! Owns the arguments and the printing; the backend is
//! `station::host::hidraw`, and this module must not decode reports itself.

use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::node_of;
use crate::cli::print_json;
use crate::station::host::{self, hidraw::Hidraw};
use crate::station::HidInput;
use crate::time::HostClock;
use crate::usb::hid::{usage_name, Usage, NAMED_USAGES};
use crate::{Error, ExitStatus, Result};

#[derive(Args)]
#[command(after_help = "\
Usages by name (hook-switch, phone-mute, led-mute, led-off-hook, led-ring, ...)
or as 0xPAGE:0xID. Times are CLOCK_MONOTONIC stamps taken as each report is
read, less the time just before the write was issued (usbhid writes are
synchronous, so a device can answer before the write returns; the write's
own duration is printed too). Exit 2 when the node cannot be opened
(absent, no permission, not hidraw), 3 for a bad argument.

Examples:
  certlab probe hid --device usb:1209:0001 --set led-off-hook=1 --listen-ms 500
  certlab probe hid --device /dev/hidraw0 --json")]
pub struct HidArgs {
    /// usb:VID:PID[:SERIAL] (its telephony hidraw node) or /dev/hidrawN.
    #[arg(long, value_name = "SPEC")]
    device: String,
    /// Write the output report that sets USAGE to VALUE first.
    #[arg(long, value_name = "USAGE=VALUE")]
    set: Option<String>,
    /// How long to listen for input reports.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    listen_ms: u64,
    /// Print one JSON object: node, vid, pid, usages, wrote, write_ms, events [{usage, name, value, t_ms}], counters.
    #[arg(long)]
    json: bool,
}

/// A usage by name (`led-mute`, `hook-switch`, ...) or as `0xPP:0xUU`.
pub fn parse_usage(s: &str) -> Result<Usage> {
    if let Some((p, i, _)) = NAMED_USAGES.iter().find(|(_, _, n)| *n == s) {
        return Ok(Usage::new(*p, *i));
    }
    crate::profile::requirement::parse_hid_usage(s)
        .map(|(p, i)| Usage::new(p, i))
        .ok_or_else(|| {
            Error::BadInput(format!(
                "bad usage {s:?}: give a name ({}) or 0xPAGE:0xID",
                NAMED_USAGES
                    .iter()
                    .map(|(_, _, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

#[derive(Serialize)]
struct EventOut {
    usage: String,
    name: Option<&'static str>,
    value: i32,
    /// Since the output report was written (or since listening began), ms.
    t_ms: f64,
}

#[derive(Serialize)]
struct ProbeOut {
    node: String,
    vid: String,
    pid: String,
    bustype: u32,
    usages: Vec<String>,
    wrote: Option<String>,
    /// How long the write call took, ms.
    write_ms: Option<f64>,
    events: Vec<EventOut>,
    reports: u64,
    undecodable_reports: u64,
    dropped_events: u64,
}

pub fn run(a: HidArgs) -> Result<ExitStatus> {
    let (device, set, listen_ms, json) = (a.device.as_str(), a.set.as_deref(), a.listen_ms, a.json);
    let write = match set {
        Some(s) => {
            let (u, v) = s.split_once('=').ok_or_else(|| {
                Error::BadInput(format!(
                    "--set {s:?}: expected USAGE=VALUE, e.g. led-mute=1"
                ))
            })?;
            let v: i64 = v.trim().parse().map_err(|_| {
                Error::BadInput(format!("--set {s:?}: the value is not an integer"))
            })?;
            Some((parse_usage(u.trim())?, v))
        }
        None => None,
    };
    let node = node_of(
        device,
        "hidraw",
        host::pick_hidraw,
        "no HID interface, or usbhid is not bound",
    )?;
    let clock = HostClock::new();
    let mut h = Hidraw::open(&node, clock).map_err(|e| Error::Device(e.to_string()))?;
    let info = h.info().clone();
    let mut t0 = clock.now();
    let mut wrote = None;
    let mut write_ms = None;
    if let Some((u, v)) = write {
        let (before, after) = h
            .set_output(u, v)
            .map_err(|e| Error::Device(e.to_string()))?;
        t0 = before;
        write_ms = Some(after.secs_since(before) * 1e3);
        wrote = Some(format!("{u}={v}"));
    }
    let deadline = t0.plus_secs(listen_ms as f64 / 1e3);
    let mut events = Vec::new();
    loop {
        let now = clock.now();
        if now >= deadline {
            break;
        }
        let left = Duration::from_nanos((deadline.0 - now.0).max(0) as u64);
        match h.next_event(left) {
            Ok(Some(e)) => {
                let u = Usage::new(e.usage_page, e.usage);
                let ev = EventOut {
                    usage: u.to_string(),
                    name: usage_name(u),
                    value: e.value,
                    t_ms: e.host_time.secs_since(t0) * 1e3,
                };
                if !json {
                    println!(
                        "{:>10.3} ms  {} {} = {}",
                        ev.t_ms,
                        ev.usage,
                        ev.name.unwrap_or(""),
                        ev.value
                    );
                }
                events.push(ev);
            }
            Ok(None) => break,
            Err(e) => return Err(Error::Device(e.to_string())),
        }
    }
    let stats = &h.stats;
    use std::sync::atomic::Ordering::Relaxed;
    let out = ProbeOut {
        node: node.display().to_string(),
        vid: format!("{:04x}", info.vid),
        pid: format!("{:04x}", info.pid),
        bustype: info.bustype,
        usages: info.report.usages(),
        wrote,
        write_ms,
        events,
        reports: stats.reports.load(Relaxed),
        undecodable_reports: stats.undecodable_reports.load(Relaxed),
        dropped_events: stats.dropped_events.load(Relaxed),
    };
    if json {
        print_json(&out)?;
    } else {
        if let (Some(w), Some(ms)) = (&out.wrote, out.write_ms) {
            eprintln!("wrote {w}: the write took {ms:.3} ms");
        }
        eprintln!(
            "{} ({}:{}): {} reports, {} undecodable, {} events dropped; usages {}",
            out.node,
            out.vid,
            out.pid,
            out.reports,
            out.undecodable_reports,
            out.dropped_events,
            out.usages.join(" ")
        );
    }
    Ok(ExitStatus::Ok)
}
