//! The libusb fallback of `certlab devices`: on a host without sysfs and
//! without `--sysfs`, devices are listed through libusb, and no USB stack
//! at all (no sysfs, no libusb context or no device) is a note with exit 0;
//! an explicit `--sysfs ROOT` never falls back. Also the pure parts of
//! `usb::libusb` (names, bcdDevice, assembling the descriptor bytes).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use certlab::usb::libusb::{assemble_descriptors, bcd_from_version, device_name, interface_dir};
use certlab::usb::sysfs::{self, UsbDevice};
use common::*;
use serde_json::Value;

fn notes(v: &Value) -> Vec<String> {
    v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn devices_on_this_host_exits_0_with_a_note_naming_the_source() {
    let sysfs_here = Path::new("/sys/bus/usb/devices").exists();
    let o = certlab().args(["devices", "--json"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let notes = notes(&v);
    if sysfs_here {
        assert_eq!(v["usb_source"], "sysfs");
        return;
    }
    match v["usb_source"].as_str() {
        // This container: no sysfs, and libusb has no context or no device.
        None => {
            assert!(v["usb"].as_array().unwrap().is_empty());
            let n = notes
                .iter()
                .find(|n| n.starts_with("no USB stack"))
                .unwrap_or_else(|| panic!("no 'no USB stack' note: {notes:?}"));
            assert!(n.contains("libusb"), "{n}");
            assert!(n.contains("/sys/bus/usb/devices does not exist"), "{n}");
        }
        Some(s) => {
            assert_eq!(s, "libusb");
            assert!(
                notes.iter().any(|n| n.starts_with("listed through libusb")),
                "{notes:?}"
            );
        }
    }

    let o = certlab().args(["devices"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("note: no USB stack") || out.contains("note: listed through libusb"),
        "{out}"
    );
    assert!(out.contains("libusb"), "{out}");
}

#[test]
fn explicit_sysfs_lists_the_fixture_and_never_falls_back() {
    let o = certlab()
        .args([
            "devices",
            "--json",
            "--sysfs",
            "fixtures/usb/speakerphone-uac1",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["usb_source"], "sysfs");
    let usb = v["usb"].as_array().unwrap();
    assert_eq!(usb.len(), 1, "{usb:?}");
    assert_eq!(usb[0]["name"], "1-1");
    assert_eq!(usb[0]["vid"], "1209");
    assert!(!notes(&v).iter().any(|n| n.contains("libusb")), "{v}");

    let o = certlab()
        .args(["devices", "--sysfs", "fixtures/usb/speakerphone-uac1"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("1-1  1209:0001"), "{}", stdout(&o));

    // An explicit root without bus/usb: a note, no libusb.
    let t = tempfile::tempdir().unwrap();
    let o = certlab()
        .args(["devices", "--json", "--sysfs"])
        .arg(t.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["usb_source"], Value::Null);
    assert!(v["usb"].as_array().unwrap().is_empty());
    let notes = notes(&v);
    assert!(notes[0].starts_with("no USB stack"), "{notes:?}");
    assert!(notes[0].contains("--sysfs was given"), "{notes:?}");
    assert!(!notes.iter().any(|n| n.contains("listed through libusb")));
}

#[test]
fn names_like_sysfs() {
    assert_eq!(device_name(1, &[]), "usb1");
    assert_eq!(device_name(1, &[2]), "1-2");
    assert_eq!(device_name(3, &[1, 4, 2]), "3-1.4.2");
    assert_eq!(interface_dir("1-2", 1, 3), "1-2:1.3");
}

#[test]
fn bcd_device_back_from_rusb_version() {
    // rusb decodes 0x1004 as Version(10, 0, 4); 0x0102 as (1, 0, 2).
    assert_eq!(bcd_from_version(10, 0, 4), 0x1004);
    assert_eq!(bcd_from_version(1, 0, 2), 0x0102);
    assert_eq!(bcd_from_version(2, 1, 0), 0x0210);
    assert_eq!(bcd_from_version(0, 0, 2), 0x0002);
}

fn speakerphone_bytes() -> Vec<u8> {
    std::fs::read(root().join("fixtures/usb/speakerphone-uac1/bus/usb/devices/1-1/descriptors"))
        .unwrap()
}

#[test]
fn assembled_descriptors_are_the_sysfs_file() {
    // The sysfs `descriptors` file is the device descriptor followed by each
    // configuration: split it as the control reads would return it.
    let raw = speakerphone_bytes();
    let total = u16::from_le_bytes([raw[18 + 2], raw[18 + 3]]) as usize;
    assert_eq!(18 + total, raw.len(), "one configuration");
    let (got, errors) = assemble_descriptors(Ok(raw[..18].to_vec()), vec![Ok(raw[18..].to_vec())]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got.as_deref(), Some(&raw[..]));

    // The same UsbDevice as the sysfs reader builds, given the same strings.
    let from_sysfs =
        sysfs::read_device(&root().join("fixtures/usb/speakerphone-uac1"), "1-1").unwrap();
    let mut attrs = BTreeMap::new();
    for k in ["manufacturer", "product", "serial"] {
        attrs.insert(k.to_string(), from_sysfs.attributes[k].clone());
    }
    let hid: Vec<(String, String, Vec<u8>)> = from_sysfs
        .hid
        .iter()
        .map(|h| {
            (
                interface_dir("1-1", h.configuration, h.interface),
                "libusb".into(),
                h.raw.clone(),
            )
        })
        .collect();
    let d = UsbDevice::from_raw("1-1", attrs, got, hid);
    assert_eq!(d.json(), from_sysfs.json());
}

#[test]
fn a_failed_read_leaves_the_bytes_out_and_says_why() {
    let raw = speakerphone_bytes();
    let (got, errors) = assemble_descriptors(
        Ok(raw[..18].to_vec()),
        vec![Ok(raw[18..].to_vec()), Err("Pipe error".into())],
    );
    assert_eq!(got, None);
    assert_eq!(
        errors,
        ["descriptors: not read: configuration 1: Pipe error"]
    );

    let (got, errors) = assemble_descriptors(Err("Access denied".into()), vec![]);
    assert_eq!(got, None);
    assert!(
        errors[0].contains("device descriptor: Access denied"),
        "{errors:?}"
    );

    // A short reply is kept as read: the parser names it.
    let (got, errors) =
        assemble_descriptors(Ok(raw[..18].to_vec()), vec![Ok(raw[18..30].to_vec())]);
    assert!(errors.is_empty());
    let d = UsbDevice::from_raw("1-1", BTreeMap::new(), got, vec![]);
    assert!(
        d.errors.iter().any(|e| e.contains("descriptors: at byte")),
        "{:?}",
        d.errors
    );
}

#[test]
fn a_device_without_descriptors_is_a_hub_by_its_class_attribute() {
    let mut attrs = BTreeMap::new();
    attrs.insert("idVendor".to_string(), "1d6b".to_string());
    attrs.insert("idProduct".to_string(), "0002".to_string());
    attrs.insert("bDeviceClass".to_string(), "09".to_string());
    let d = UsbDevice::from_raw("usb1", attrs.clone(), None, vec![]);
    assert!(d.is_hub());
    assert_eq!(d.identity.vid, "1d6b");
    attrs.insert("bDeviceClass".to_string(), "00".to_string());
    assert!(!UsbDevice::from_raw("1-1", attrs, None, vec![]).is_hub());
}
