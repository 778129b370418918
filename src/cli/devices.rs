//! `certlab devices`: what is attached to this host.

use std::path::Path;

use serde::Serialize;

use crate::{ExitStatus, Result};

#[derive(Serialize)]
struct UsbDevice {
    path: String,
    vid: String,
    pid: String,
    serial: String,
    firmware: String,
    manufacturer: String,
    product: String,
}

#[derive(Serialize)]
struct SerialPort {
    path: String,
    kind: String,
}

#[derive(Serialize)]
struct Listing {
    usb: Vec<UsbDevice>,
    serial: Vec<SerialPort>,
    simulated: Vec<String>,
    notes: Vec<String>,
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn usb_devices(sysfs: &Path, notes: &mut Vec<String>) -> Vec<UsbDevice> {
    let root = sysfs.join("bus/usb/devices");
    let Ok(rd) = std::fs::read_dir(&root) else {
        notes.push(format!(
            "no USB stack: {} does not exist, so no USB device can be listed (this host has no USB support, or it is a container)",
            root.display()
        ));
        return Vec::new();
    };
    let mut out: Vec<UsbDevice> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("idVendor").exists())
        .map(|p| {
            let bcd = read(&p, "bcdDevice");
            UsbDevice {
                path: p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                vid: read(&p, "idVendor").to_lowercase(),
                pid: read(&p, "idProduct").to_lowercase(),
                serial: read(&p, "serial"),
                firmware: if bcd.len() == 4 {
                    format!("{}.{}", &bcd[..2], &bcd[2..])
                } else {
                    bcd
                },
                manufacturer: read(&p, "manufacturer"),
                product: read(&p, "product"),
            }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

pub fn run(json: bool, sysfs: &Path) -> Result<ExitStatus> {
    let mut notes = Vec::new();
    let usb = usb_devices(sysfs, &mut notes);
    let serial = match serialport::available_ports() {
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
    };
    notes.push("USB class details (audio, video, HID) and matching profiles come with descriptor parsing, not implemented yet".into());
    let listing = Listing {
        usb,
        serial,
        simulated: crate::profile::DeviceClass::ALL
            .iter()
            .map(|c| format!("sim:{}", c.name()))
            .collect(),
        notes,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&listing).unwrap_or_else(|_| "{}".into())
        );
        return Ok(ExitStatus::Ok);
    }
    println!("USB devices:");
    if listing.usb.is_empty() {
        println!("  (none)");
    }
    for d in &listing.usb {
        println!(
            "  {:<10} {}:{}  {} {}  serial {:?}  firmware {}",
            d.path, d.vid, d.pid, d.manufacturer, d.product, d.serial, d.firmware
        );
    }
    println!("Serial ports:");
    if listing.serial.is_empty() {
        println!("  (none)");
    }
    for p in &listing.serial {
        println!("  {} ({})", p.path, p.kind);
    }
    println!("Simulated devices: {}", listing.simulated.join(", "));
    for n in &listing.notes {
        println!("note: {n}");
    }
    Ok(ExitStatus::Ok)
}
