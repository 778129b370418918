//! `certlab probe hid`: check a station's HID wiring before a run. It opens
//! a DUT's hidraw node (by USB identity or path), optionally writes an output
//! report (an LED), and prints every input change with its time since the
//! write. Printing only; the backend is `station::host::hidraw`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::station::host::{self, hidraw::Hidraw};
use crate::station::usb_dut;
use crate::station::{DeviceSpec, HidInput};
use crate::time::HostClock;
use crate::usb::hid::{usage_name, Usage, NAMED_USAGES};
use crate::usb::sysfs;
use crate::{Error, ExitStatus, Result};

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

/// The hidraw node a `--device` spec or a path names.
fn node_of(device: &str) -> Result<PathBuf> {
    if device.starts_with("/dev/") {
        return Ok(PathBuf::from(device));
    }
    let DeviceSpec::Usb { vid, pid, serial } = DeviceSpec::parse(device)? else {
        return Err(Error::BadInput(format!(
            "--device {device}: give usb:VID:PID[:SERIAL] or a /dev/hidrawN path"
        )));
    };
    let root = usb_dut::sysfs_root();
    let dev = usb_dut::find(&root, vid, pid, serial.as_deref(), device)?;
    let nodes = sysfs::device_nodes(&root, &dev.name)
        .map_err(|e| Error::Device(format!("{device}: {e}")))?;
    host::pick_hidraw(&nodes, &dev).ok_or_else(|| {
        Error::Device(format!(
            "{device} has no hidraw node (no HID interface, or usbhid is not bound)"
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
    events: Vec<EventOut>,
    reports: u64,
    undecodable_reports: u64,
    dropped_events: u64,
}

pub fn hid(device: &str, set: Option<&str>, listen_ms: u64, json: bool) -> Result<ExitStatus> {
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
    let node = node_of(device)?;
    let clock = HostClock::new();
    let mut h = Hidraw::open(&node, clock).map_err(|e| Error::Device(e.to_string()))?;
    let info = h.info().clone();
    let mut t0 = clock.now();
    let mut wrote = None;
    if let Some((u, v)) = write {
        t0 = h
            .set_output(u, v)
            .map_err(|e| Error::Device(e.to_string()))?;
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
        events,
        reports: stats.reports.load(Relaxed),
        undecodable_reports: stats.undecodable_reports.load(Relaxed),
        dropped_events: stats.dropped_events.load(Relaxed),
    };
    if json {
        let text = serde_json::to_string_pretty(&out)
            .map_err(|e| Error::Harness(format!("cannot print: {e}")))?;
        println!("{text}");
    } else {
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
