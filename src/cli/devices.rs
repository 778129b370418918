//! `certlab devices`: what is attached to this host.
//!
//! Owns listing the USB devices of a sysfs root (through
//! [`crate::usb::sysfs`], or through [`crate::usb::libusb`] on a host
//! without sysfs when no root was given), the serial ports (serialport) and
//! the simulated classes, printing them (human or the JSON of docs/usb.md, plus each
//! device's matching shipped profiles), and `--snapshot DIR`. It parses no
//! descriptors and evaluates no requirement itself: matching a profile is
//! [`crate::measure::conformance::profile_match`].

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use crate::measure::conformance::{class_fits, profile_match};
use crate::profile::Profile;
use crate::usb::descriptors::{AudioDirection, Descriptors};
use crate::usb::libusb;
use crate::usb::sysfs::{self, ScanError, UsbDevice};
use crate::{Error, ExitStatus, Result};

#[derive(Args)]
pub struct DevicesArgs {
    /// Print one JSON object {"usb": [...], "serial": [...], "simulated": [...], "notes": [...]}
    /// (the USB devices' form is a stable interface, docs/usb.md).
    #[arg(long)]
    json: bool,
    /// Read USB devices from this sysfs root instead of /sys (e.g. a
    /// snapshot). Without it, a host without /sys/bus/usb is listed
    /// through libusb; with it, never.
    #[arg(long, value_name = "ROOT")]
    sysfs: Option<PathBuf>,
    /// Also write a sysfs-shaped snapshot of the listed USB devices to DIR
    /// (a new or empty directory), replayable with --sysfs DIR.
    #[arg(long, value_name = "DIR")]
    snapshot: Option<PathBuf>,
}

#[derive(Serialize)]
struct SerialPort {
    path: String,
    kind: String,
}

#[derive(Serialize)]
struct Listing {
    /// Where `usb` came from: "sysfs", "libusb", or null (no USB stack).
    usb_source: Option<&'static str>,
    usb: Vec<serde_json::Value>,
    serial: Vec<SerialPort>,
    simulated: Vec<String>,
    notes: Vec<String>,
}

/// A DIR that may receive a snapshot: absent, or an empty directory.
fn check_snapshot_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(dir)
        .map_err(|e| {
            Error::BadInput(format!(
                "--snapshot {}: not a readable directory: {e}",
                dir.display()
            ))
        })?
        .next()
        .is_none();
    if !empty {
        return Err(Error::BadInput(format!(
            "--snapshot {}: the directory is not empty; give a new or empty directory",
            dir.display()
        )));
    }
    Ok(())
}

fn serial_ports(notes: &mut Vec<String>) -> Vec<SerialPort> {
    match serialport::available_ports() {
        Ok(ports) => ports
            .into_iter()
            .map(|p| SerialPort {
                path: p.port_name,
                kind: match p.port_type {
                    serialport::SerialPortType::UsbPort(_) => "usb",
                    serialport::SerialPortType::PciPort => "pci",
                    serialport::SerialPortType::BluetoothPort => "bluetooth",
                    serialport::SerialPortType::Unknown => "unknown",
                }
                .into(),
            })
            .collect(),
        Err(e) => {
            notes.push(format!("serial ports could not be listed: {e}"));
            Vec::new()
        }
    }
}

/// The ids of the shipped profiles the device matches.
fn matching(profiles: &[Profile], d: &UsbDevice) -> Vec<String> {
    profiles
        .iter()
        .filter(|p| profile_match(p, d).is_ok())
        .map(|p| p.id.clone())
        .collect()
}

/// Where the USB devices were listed from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// `ROOT/bus/usb/devices`.
    Sysfs(PathBuf),
    /// libusb, because there is no sysfs and no `--sysfs` was given.
    Libusb,
    /// No USB stack: nothing to list.
    None,
}

impl Source {
    fn json(&self) -> Option<&'static str> {
        match self {
            Source::Sysfs(_) => Some("sysfs"),
            Source::Libusb => Some("libusb"),
            Source::None => None,
        }
    }
}

/// All USB devices, hubs included: sysfs first (it needs no device
/// opening); when `ROOT/bus/usb/devices` does not exist and ROOT was not
/// given (`explicit` false), libusb. A root given explicitly is exactly what
/// is listed (a lab replaying a snapshot wants that snapshot, never this
/// host's devices). No USB stack is a note, never an error.
fn list_usb(
    root: &Path,
    explicit: bool,
    notes: &mut Vec<String>,
) -> Result<(Vec<UsbDevice>, Source)> {
    let dir = match sysfs::scan(root) {
        Ok(all) => return Ok((all, Source::Sysfs(sysfs::devices_dir(root)))),
        Err(ScanError::NoUsbStack(dir)) => dir,
        Err(e) => return Err(Error::Device(format!("cannot list USB devices: {e}"))),
    };
    if explicit {
        notes.push(format!(
            "no USB stack: {} does not exist, so no USB device can be listed (--sysfs was given, so libusb is not asked)",
            dir.display()
        ));
        return Ok((Vec::new(), Source::None));
    }
    let why = match libusb::scan() {
        Ok(all) if !all.is_empty() => {
            notes.push(format!(
                "listed through libusb (no sysfs: {} does not exist); strings, descriptors and report descriptors need each device opened",
                dir.display()
            ));
            return Ok((all, Source::Libusb));
        }
        Ok(_) => "libusb lists no device".to_string(),
        Err(e) => e.to_string(),
    };
    notes.push(format!(
        "no USB stack: {} does not exist and {why}, so no USB device can be listed (this host has no USB support, or it is a container)",
        dir.display()
    ));
    Ok((Vec::new(), Source::None))
}

pub fn run(a: DevicesArgs) -> Result<ExitStatus> {
    let (json, sysfs_root, snapshot) = (a.json, a.sysfs.as_deref(), a.snapshot.as_deref());
    if let Some(dir) = snapshot {
        check_snapshot_dir(dir)?;
    }
    let root = sysfs_root.unwrap_or(Path::new(sysfs::DEFAULT_ROOT));
    let mut notes = Vec::new();
    let (all, source) = list_usb(root, sysfs_root.is_some(), &mut notes)?;
    let hubs = all.iter().filter(|d| d.is_hub()).count();
    if hubs > 0 {
        notes.push(format!(
            "{hubs} USB hub(s) (root hubs included) not listed: a hub is never a device under test"
        ));
    }
    let devices: Vec<UsbDevice> = all.into_iter().filter(|d| !d.is_hub()).collect();
    let mut profiles = Vec::new();
    for p in crate::profile::shipped() {
        match p {
            Ok(p) => profiles.push(p),
            Err(e) => notes.push(format!("a shipped profile could not be loaded: {e}")),
        }
    }
    let matches: Vec<Vec<String>> = devices.iter().map(|d| matching(&profiles, d)).collect();
    if let Some(dir) = snapshot {
        if source == Source::None {
            notes.push(format!(
                "no snapshot written to {}: there is no USB stack to snapshot",
                dir.display()
            ));
        } else {
            sysfs::write_snapshot(&devices, dir).map_err(|e| {
                Error::Harness(format!(
                    "cannot write the snapshot to {}: {e}",
                    dir.display()
                ))
            })?;
            notes.push(format!(
                "snapshot of {} USB device(s) written to {} (replay it with --sysfs {})",
                devices.len(),
                dir.display(),
                dir.display()
            ));
        }
    }
    let serial = serial_ports(&mut notes);
    let simulated: Vec<String> = crate::profile::DeviceClass::ALL
        .iter()
        .map(|c| format!("sim:{}", c.name()))
        .collect();
    if json {
        let usb = devices
            .iter()
            .zip(&matches)
            .map(|(d, m)| {
                let mut v = d.to_json_value();
                if let Some(o) = v.as_object_mut() {
                    o.insert("profiles".into(), serde_json::json!(m));
                }
                v
            })
            .collect();
        let listing = Listing {
            usb_source: source.json(),
            usb,
            serial,
            simulated,
            notes,
        };
        super::print_json(&listing)?;
        return Ok(ExitStatus::Ok);
    }
    match &source {
        Source::Sysfs(dir) => println!("USB devices ({}):", dir.display()),
        Source::Libusb => println!("USB devices (libusb):"),
        Source::None => println!("USB devices ({}):", sysfs::devices_dir(root).display()),
    }
    if devices.is_empty() {
        println!("  (none)");
    }
    for (d, m) in devices.iter().zip(&matches) {
        print_device(d, m, &profiles);
    }
    println!("Serial ports:");
    if serial.is_empty() {
        println!("  (none)");
    }
    for p in &serial {
        println!("  {} ({})", p.path, p.kind);
    }
    println!("Simulated devices: {}", simulated.join(", "));
    for n in &notes {
        println!("note: {n}");
    }
    Ok(ExitStatus::Ok)
}

fn interface_class(class: u8, subclass: u8) -> String {
    match (class, subclass) {
        (0x01, 0x01) => "audio control".into(),
        (0x01, 0x02) => "audio streaming".into(),
        (0x01, 0x03) => "MIDI streaming".into(),
        (0x0e, 0x01) => "video control".into(),
        (0x0e, 0x02) => "video streaming".into(),
        (0x0e, _) => "video".into(),
        (0x01, _) => "audio".into(),
        (0x03, _) => "HID".into(),
        (0x02, _) | (0x0a, _) => "communications (serial)".into(),
        (0xff, _) => "vendor specific".into(),
        _ => format!("class 0x{class:02x}"),
    }
}

fn interfaces_line(d: &Descriptors) -> String {
    let mut out = Vec::new();
    for c in &d.configurations {
        for i in &c.interfaces {
            if let Some(a) = i.alt_settings.first() {
                out.push(format!(
                    "{} {}",
                    i.number,
                    interface_class(a.class, a.subclass)
                ));
            }
        }
    }
    out.join(", ")
}

/// The items joined by `sep`, or `none` when there are none.
fn joined_or<S: AsRef<str>>(items: &[S], sep: &str, none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(sep)
    }
}

fn print_device(d: &UsbDevice, matches: &[String], profiles: &[Profile]) {
    let i = &d.identity;
    println!(
        "  {}  {}:{}  {} {}",
        d.name, i.vid, i.pid, i.manufacturer, i.product
    );
    println!(
        "      serial {:?}  firmware {}  descriptors sha256 {}",
        i.serial,
        i.firmware,
        if i.descriptors_sha256.is_empty() {
            "(none)"
        } else {
            &i.descriptors_sha256
        }
    );
    if let Some(desc) = &d.descriptors {
        println!("      interfaces: {}", interfaces_line(desc));
    }
    if d.is_certlab_rig() {
        println!(
            "      a certlab rig: measure with --rig usb:{}:{}{}",
            i.vid,
            i.pid,
            if i.serial.is_empty() {
                String::new()
            } else {
                format!(":{}", i.serial)
            }
        );
    }
    if let Some(a) = d.audio() {
        let mut dirs = Vec::new();
        if a.playback {
            dirs.push("playback");
        }
        if a.capture {
            dirs.push("capture");
        }
        println!(
            "      audio: UAC{} {}; rates {}",
            a.uac,
            joined_or(&dirs, " + ", "(no streaming direction)"),
            if a.sample_rates.is_empty() {
                "not declared (UAC2: from the clock source)".to_string()
            } else {
                format!(
                    "{} Hz",
                    a.sample_rates
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        for s in &a.streams {
            let dir = match s.direction {
                Some(AudioDirection::Playback) => "playback",
                Some(AudioDirection::Capture) => "capture",
                None => "unknown direction",
            };
            let rates = match s.continuous_range {
                Some((lo, hi)) => format!("{lo}..{hi} Hz"),
                None if s.sample_rates.is_empty() => "rates not declared".into(),
                None => format!(
                    "{} Hz{}",
                    s.sample_rates
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join("/"),
                    s.rates_from_clock
                        .map(|c| format!(" (recorded from clock 0x{c:02x})"))
                        .unwrap_or_default()
                ),
            };
            println!(
                "        interface {} alt {}: {dir}, {} ch, {} bit, {rates}",
                s.interface,
                s.alternate,
                s.channels.map(|c| c.to_string()).unwrap_or("?".into()),
                s.bit_resolution
            );
        }
    }
    if let Some(v) = d.video() {
        for f in &v.formats {
            let frames: Vec<String> = f
                .frames
                .iter()
                .map(|fr| {
                    format!(
                        "{}x{}@{}",
                        fr.width,
                        fr.height,
                        fr.fps
                            .iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join("/")
                    )
                })
                .collect();
            println!("      video {}: {}", f.format, frames.join(", "));
        }
    }
    if let Some(h) = d.hid_summary() {
        println!(
            "      HID: {}  (usages {})",
            joined_or(&h.named, ", ", "no telephony or LED usages"),
            h.usages.join(" ")
        );
    }
    for e in &d.errors {
        println!("      error: {e}");
    }
    for w in &d.warnings {
        println!("      warning: {w}");
    }
    println!("      profiles: {}", joined_or(matches, ", ", "none"));
    // Why a profile of a fitting class does not match: its first unmet requirement.
    for p in profiles
        .iter()
        .filter(|p| !matches.contains(&p.id) && class_fits(p.device_class, d).is_ok())
    {
        if let Err(why) = profile_match(p, d) {
            println!("        not {}: {why}", p.id);
        }
    }
}
