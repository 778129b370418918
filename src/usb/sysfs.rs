//! USB devices read from a sysfs-shaped tree, and snapshots written to one.
//!
//! Owns reading `ROOT/bus/usb/devices/<name>/` (the `descriptors` file and
//! the `idVendor`, `idProduct`, `serial`, `manufacturer`, `product` and
//! `bcdDevice` attributes) and each HID interface's report descriptor at
//! `ROOT/bus/usb/devices/<name>:<cfg>.<intf>/<hid-node>/report_descriptor`,
//! into a [`UsbDevice`] with its identity, parsed descriptors, parsed report
//! descriptors, errors and warnings, and a stable JSON form (docs/usb.md).
//! ROOT is `/sys` on a live system ([`DEFAULT_ROOT`]) and a fixture
//! directory in tests. It also writes the same shape back
//! ([`write_snapshot`]) for `certlab devices --snapshot DIR`.
//!
//! This is the only file of the `usb` module that touches sysfs (the other
//! one doing I/O is [`super::libusb`], which talks to devices), and the only
//! I/O it does is reading and writing these files. It judges nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::descriptors::{self, AudioSummary, Descriptors, ParseError, VideoSummary};
use super::hid::{self, HidError, ReportDescriptor, Usage, NAMED_USAGES};
pub use super::identity::UsbIdentity;

/// Where sysfs lives on a live system.
pub const DEFAULT_ROOT: &str = "/sys";

/// The device attribute files read and written, in this order. The last,
/// `uac2_clock_rates`, is not a kernel attribute but a certlab snapshot
/// extension: the sample rates a lab recorded from a UAC2 device's clock
/// entities (their sampling-frequency RANGE replies), one line per clock,
/// `<clock id> <rate> <rate> ...` (id in decimal or `0x` hex). UAC2
/// descriptors do not carry rates; see docs/usb.md.
pub const ATTRIBUTES: [&str; 7] = [
    "idVendor",
    "idProduct",
    "bcdDevice",
    "manufacturer",
    "product",
    "serial",
    CLOCK_RATES_FILE,
];

/// The reference rig's USB identity (firmware/rp2040; pid.codes' test range
/// until a PID is assigned), lowercase hex as [`UsbIdentity`] holds it.
pub const RIG_VID: &str = "1209";
pub const RIG_PID: &str = "000e";
/// The reference rig's product string.
pub const RIG_PRODUCT: &str = "certlab rig";

/// The snapshot file with recorded UAC2 clock rates (see [`ATTRIBUTES`]).
pub const CLOCK_RATES_FILE: &str = "uac2_clock_rates";

/// Parse `uac2_clock_rates`: `<clock id> <rate> <rate> ...` per line.
pub fn parse_clock_rates(text: &str) -> Result<BTreeMap<u8, Vec<u32>>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let Some(id) = words.next() else { continue };
        let id = match id.strip_prefix("0x").or_else(|| id.strip_prefix("0X")) {
            Some(h) => u8::from_str_radix(h, 16).ok(),
            None => id.parse::<u8>().ok(),
        }
        .ok_or_else(|| format!("line {}: clock id {id:?} is not a byte", n + 1))?;
        let mut rates = Vec::new();
        for r in words {
            match r.parse::<u32>() {
                Ok(hz) if (1..=1_000_000).contains(&hz) => rates.push(hz),
                _ => return Err(format!("line {}: {r:?} is not a sample rate in Hz", n + 1)),
            }
        }
        out.insert(id, rates);
    }
    Ok(out)
}

/// Largest `descriptors` file read.
pub const MAX_DESCRIPTORS_BYTES: u64 = 1 << 20;
/// Largest `report_descriptor` file read (Linux caps them at 4096 bytes).
pub const MAX_REPORT_DESCRIPTOR_BYTES: u64 = 1 << 16;
const MAX_ATTRIBUTE_BYTES: u64 = 4096;

/// One HID interface's report descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct HidInterface {
    /// The interface directory name, `<name>:<cfg>.<intf>`.
    pub interface_dir: String,
    pub configuration: u8,
    pub interface: u8,
    /// The HID node directory name, e.g. `0003:1209:0001.0001`.
    pub node: String,
    pub raw: Vec<u8>,
    pub report: Result<ReportDescriptor, HidError>,
}

/// A USB device as read from sysfs (or built with [`UsbDevice::from_raw`]).
#[derive(Debug, Clone, PartialEq)]
pub struct UsbDevice {
    /// The sysfs directory name, e.g. `1-2` or `3-1.4`.
    pub name: String,
    pub identity: UsbIdentity,
    /// Attribute files as read, without the trailing newline.
    pub attributes: BTreeMap<String, String>,
    /// The `descriptors` file, when there is one.
    pub raw_descriptors: Option<Vec<u8>>,
    /// The parsed descriptors; `None` when missing or unparseable (see
    /// [`Self::descriptor_error`] and [`Self::errors`]).
    pub descriptors: Option<Descriptors>,
    pub descriptor_error: Option<ParseError>,
    pub hid: Vec<HidInterface>,
    /// UAC2 clock id → sample rates, from the snapshot's `uac2_clock_rates`
    /// (empty on a live system: certlab does not send RANGE requests yet).
    pub uac2_clock_rates: BTreeMap<u8, Vec<u32>>,
    /// Everything that went wrong, as text naming the file and byte offset.
    pub errors: Vec<String>,
    /// Recoverable oddities, as text.
    pub warnings: Vec<String>,
}

/// Why a tree could not be scanned at all.
#[derive(Debug)]
pub enum ScanError {
    /// `ROOT/bus/usb/devices` does not exist: no USB stack here (a note, not a crash).
    NoUsbStack(PathBuf),
    Io(PathBuf, io::Error),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::NoUsbStack(p) => write!(f, "no USB stack: {} does not exist", p.display()),
            ScanError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for ScanError {}

/// `ROOT/bus/usb/devices`.
pub fn devices_dir(root: &Path) -> PathBuf {
    root.join("bus").join("usb").join("devices")
}

/// `ROOT/bus/usb/devices` when it holds a device directory `name`, else
/// `NotFound` naming the device.
fn devices_dir_of(root: &Path, name: &str) -> io::Result<PathBuf> {
    let dir = devices_dir(root);
    if !safe_name(name) || !dir.join(name).is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no USB device {name} under {}", dir.display()),
        ));
    }
    Ok(dir)
}

/// Every USB device under ROOT, sorted by name: each entry of
/// `ROOT/bus/usb/devices` without a `:` (interfaces have one) that has a
/// `descriptors` or `idVendor` file. Root hubs (`usbN`) are included; see
/// [`UsbDevice::is_hub`].
pub fn scan(root: &Path) -> Result<Vec<UsbDevice>, ScanError> {
    let dir = devices_dir(root);
    if !dir.is_dir() {
        return Err(ScanError::NoUsbStack(dir));
    }
    let names = list_names(&dir).map_err(|e| ScanError::Io(dir.clone(), e))?;
    let mut out = Vec::new();
    for name in &names {
        if name.contains(':') {
            continue;
        }
        let d = dir.join(name);
        if !d.join("descriptors").is_file() && !d.join("idVendor").is_file() {
            continue;
        }
        out.push(read_device_in(&dir, &names, name));
    }
    Ok(out)
}

/// One device by its sysfs name. Problems with its files are in the
/// device's `errors`; `Err` only when the device directory is missing.
pub fn read_device(root: &Path, name: &str) -> io::Result<UsbDevice> {
    let dir = devices_dir_of(root, name)?;
    let names = list_names(&dir)?;
    Ok(read_device_in(&dir, &names, name))
}

fn list_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(buf)
}

fn read_device_in(dir: &Path, names: &[String], name: &str) -> UsbDevice {
    let ddir = dir.join(name);
    let mut errors = Vec::new();
    let mut attributes = BTreeMap::new();
    for a in ATTRIBUTES {
        let p = ddir.join(a);
        if !p.exists() {
            continue;
        }
        match read_limited(&p, MAX_ATTRIBUTE_BYTES) {
            Ok(bytes) => {
                let s = String::from_utf8_lossy(&bytes);
                attributes.insert(a.to_string(), s.trim_end_matches(['\n', '\r']).to_string());
            }
            Err(e) => errors.push(format!("{a}: {e}")),
        }
    }
    let raw_descriptors = match read_limited(&ddir.join("descriptors"), MAX_DESCRIPTORS_BYTES) {
        Ok(b) => Some(b),
        Err(e) => {
            errors.push(format!("descriptors: {e}"));
            None
        }
    };
    // HID interfaces: <name>:<cfg>.<intf>/<node>/report_descriptor.
    let mut hid = Vec::new();
    let prefix = format!("{name}:");
    for iname in names.iter().filter(|n| n.starts_with(&prefix)) {
        let Some((cfg, intf)) = parse_interface_suffix(&iname[prefix.len()..]) else {
            continue;
        };
        let idir = dir.join(iname);
        let Ok(subs) = list_names(&idir) else {
            continue;
        };
        for node in subs {
            let rp = idir.join(&node).join("report_descriptor");
            if !rp.is_file() {
                continue;
            }
            match read_limited(&rp, MAX_REPORT_DESCRIPTOR_BYTES) {
                Ok(raw) => hid.push((iname.clone(), cfg, intf, node, raw)),
                Err(e) => errors.push(format!("{iname}/{node}/report_descriptor: {e}")),
            }
        }
    }
    let mut dev = build(name, attributes, raw_descriptors, hid);
    errors.append(&mut dev.errors);
    dev.errors = errors;
    dev
}

/// The kernel device nodes a USB device's interfaces expose, as sysfs
/// names them (the node is `/dev/<name>`; an ALSA card is `hw:<index>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceNodes {
    /// (interface number, `hidrawN`), from `<intf>/<hid-node>/hidraw/`.
    pub hidraw: Vec<(u8, String)>,
    /// (interface number, `ttyACMN`...), from `<intf>/tty/`.
    pub tty: Vec<(u8, String)>,
    /// (interface number, ALSA card index), from `<intf>/sound/cardN`.
    pub sound_cards: Vec<(u8, u32)>,
    /// (interface number, `videoN`), from `<intf>/video4linux/`.
    pub video: Vec<(u8, String)>,
}

/// The device nodes of device `name` under ROOT (empty lists when its
/// interfaces have no driver bound).
pub fn device_nodes(root: &Path, name: &str) -> io::Result<DeviceNodes> {
    let dir = devices_dir_of(root, name)?;
    let mut nodes = DeviceNodes::default();
    let prefix = format!("{name}:");
    for iname in list_names(&dir)?.iter().filter(|n| n.starts_with(&prefix)) {
        let Some((_, intf)) = parse_interface_suffix(&iname[prefix.len()..]) else {
            continue;
        };
        let idir = dir.join(iname);
        let names_in = |sub: &Path| list_names(sub).unwrap_or_default();
        for node in names_in(&idir) {
            for raw in names_in(&idir.join(&node).join("hidraw")) {
                if raw.starts_with("hidraw") {
                    nodes.hidraw.push((intf, raw));
                }
            }
        }
        for tty in names_in(&idir.join("tty")) {
            nodes.tty.push((intf, tty));
        }
        for card in names_in(&idir.join("sound")) {
            if let Some(n) = card.strip_prefix("card").and_then(|n| n.parse().ok()) {
                nodes.sound_cards.push((intf, n));
            }
        }
        for v in names_in(&idir.join("video4linux")) {
            if v.starts_with("video") {
                nodes.video.push((intf, v));
            }
        }
    }
    Ok(nodes)
}

/// `"1.3"` → (1, 3).
fn parse_interface_suffix(s: &str) -> Option<(u8, u8)> {
    let (c, i) = s.split_once('.')?;
    Some((c.parse().ok()?, i.parse().ok()?))
}

fn hex4(s: &str) -> Option<u16> {
    let s = s.trim();
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    u16::from_str_radix(s, 16).ok()
}

fn build(
    name: &str,
    attributes: BTreeMap<String, String>,
    raw_descriptors: Option<Vec<u8>>,
    hid_raw: Vec<(String, u8, u8, String, Vec<u8>)>,
) -> UsbDevice {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let (descriptors, descriptor_error) = match &raw_descriptors {
        Some(bytes) => match descriptors::parse(bytes) {
            Ok(d) => {
                warnings.extend(d.warnings.iter().map(|w| format!("descriptors: {w}")));
                (Some(d), None)
            }
            Err(e) => {
                errors.push(format!("descriptors: {e}"));
                (None, Some(e))
            }
        },
        None => (None, None),
    };
    let attr = |k: &str| attributes.get(k).cloned().unwrap_or_default();
    let uac2_clock_rates = match attributes.get(CLOCK_RATES_FILE) {
        None => BTreeMap::new(),
        Some(t) => parse_clock_rates(t).unwrap_or_else(|e| {
            errors.push(format!("{CLOCK_RATES_FILE}: {e}"));
            BTreeMap::new()
        }),
    };
    // vid, pid, firmware: the attribute files, else the device descriptor.
    let mut pick = |key: &str, from_desc: Option<u16>| -> Option<u16> {
        let from_attr = attributes.get(key).map(|s| (s.clone(), hex4(s)));
        match (from_attr, from_desc) {
            (Some((_, Some(a))), Some(d)) => {
                if a != d {
                    warnings.push(format!(
                        "{key} is {a:04x} but the device descriptor says {d:04x}"
                    ));
                }
                Some(a)
            }
            (Some((_, Some(a))), None) => Some(a),
            (Some((s, None)), d) => {
                errors.push(format!("{key}: {s:?} is not 4 hex digits"));
                d
            }
            (None, d) => d,
        }
    };
    let dd = descriptors.as_ref().map(|d| &d.device);
    let vid = pick("idVendor", dd.map(|d| d.vendor_id));
    let pid = pick("idProduct", dd.map(|d| d.product_id));
    let bcd = pick("bcdDevice", dd.map(|d| d.bcd_device));
    let identity = UsbIdentity {
        vid: vid.map(|v| format!("{v:04x}")).unwrap_or_default(),
        pid: pid.map(|v| format!("{v:04x}")).unwrap_or_default(),
        serial: attr("serial"),
        firmware: bcd.map(descriptors::format_bcd).unwrap_or_default(),
        manufacturer: attr("manufacturer"),
        product: attr("product"),
        descriptors_sha256: raw_descriptors
            .as_ref()
            .map(|b| hex::encode(Sha256::digest(b)))
            .unwrap_or_default(),
    };
    let mut hid = Vec::new();
    for (interface_dir, configuration, interface, node, raw) in hid_raw {
        let report = hid::parse(&raw);
        match &report {
            Ok(r) => warnings.extend(
                r.warnings
                    .iter()
                    .map(|w| format!("{interface_dir}/{node}/report_descriptor: {w}")),
            ),
            Err(e) => errors.push(format!("{interface_dir}/{node}/report_descriptor: {e}")),
        }
        hid.push(HidInterface {
            interface_dir,
            configuration,
            interface,
            node,
            raw,
            report,
        });
    }
    if let Some(d) = &descriptors {
        for (n, h) in d.hid_interfaces() {
            let got = hid.iter().find(|x| x.interface == n);
            match (got, h.report_descriptor_length()) {
                (None, _) => warnings.push(format!(
                    "HID interface {n} has no report_descriptor in sysfs (no HID driver bound?)"
                )),
                (Some(x), Some(len)) if x.raw.len() != len as usize => warnings.push(format!(
                    "HID interface {n}: report_descriptor has {} bytes, the HID descriptor says {len}",
                    x.raw.len()
                )),
                _ => {}
            }
        }
    }
    UsbDevice {
        name: name.to_string(),
        identity,
        attributes,
        raw_descriptors,
        descriptors,
        descriptor_error,
        hid,
        uac2_clock_rates,
        errors,
        warnings,
    }
}

/// The JSON form of one USB device (docs/usb.md; a stable interface).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsbDeviceJson {
    pub name: String,
    /// vid, pid, serial, firmware, manufacturer, product, descriptors_sha256.
    #[serde(flatten)]
    pub identity: UsbIdentity,
    pub classes: Vec<String>,
    pub audio: Option<AudioSummary>,
    pub video: Option<VideoSummary>,
    pub hid: Option<HidSummary>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// The HID usages of all a device's report descriptors together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HidSummary {
    /// `"0xPP:0xUU"`, sorted by page then id.
    pub usages: Vec<String>,
    /// Names from [`NAMED_USAGES`] that are declared, in that order.
    pub named: Vec<String>,
}

impl UsbDevice {
    /// A device from its parts (for simulators and tests): attribute files
    /// by name, the `descriptors` bytes, and each HID report descriptor as
    /// (interface directory `<name>:<cfg>.<intf>`, node name, bytes).
    pub fn from_raw(
        name: &str,
        attributes: BTreeMap<String, String>,
        descriptors: Option<Vec<u8>>,
        hid: Vec<(String, String, Vec<u8>)>,
    ) -> UsbDevice {
        let mut errors = Vec::new();
        let prefix = format!("{name}:");
        let hid_raw = hid
            .into_iter()
            .filter_map(|(dir, node, raw)| {
                match dir.strip_prefix(&prefix).and_then(parse_interface_suffix) {
                    Some((c, i)) => Some((dir, c, i, node, raw)),
                    None => {
                        errors.push(format!("{dir}: not an interface directory of {name}"));
                        None
                    }
                }
            })
            .collect();
        let mut dev = build(name, attributes, descriptors, hid_raw);
        errors.append(&mut dev.errors);
        dev.errors = errors;
        dev
    }

    /// Classes present: "audio", "video", "hid", "serial" in that order,
    /// then "rig" for a serial device that is a certlab rig
    /// ([`is_certlab_rig`](Self::is_certlab_rig)).
    pub fn classes(&self) -> Vec<&'static str> {
        let mut c = self
            .descriptors
            .as_ref()
            .map(|d| d.classes())
            .unwrap_or_default();
        if self.is_certlab_rig() {
            c.push("rig");
        }
        c
    }

    /// A CDC-ACM serial device with the reference rig's USB identity: its
    /// VID:PID ([`RIG_VID`]:[`RIG_PID`]) or its product string
    /// ([`RIG_PRODUCT`], for a rig built under another PID).
    pub fn is_certlab_rig(&self) -> bool {
        let serial = self
            .descriptors
            .as_ref()
            .is_some_and(|d| d.classes().contains(&"serial"));
        let i = &self.identity;
        serial && ((i.vid == RIG_VID && i.pid == RIG_PID) || i.product == RIG_PRODUCT)
    }

    /// A hub (class 9), e.g. a root hub: by its device descriptor, else (a
    /// device listed through libusb without its descriptors) by a
    /// `bDeviceClass` attribute.
    pub fn is_hub(&self) -> bool {
        match &self.descriptors {
            Some(d) => d.device.class == 0x09,
            None => self
                .attributes
                .get("bDeviceClass")
                .is_some_and(|c| c.trim() == "09"),
        }
    }

    /// The audio summary; UAC2 streams take the recorded clock rates.
    pub fn audio(&self) -> Option<AudioSummary> {
        self.descriptors
            .as_ref()
            .and_then(|d| d.audio_with_clock_rates(&self.uac2_clock_rates))
    }

    pub fn video(&self) -> Option<VideoSummary> {
        self.descriptors.as_ref().and_then(|d| d.video())
    }

    /// All usages of all parsed report descriptors.
    pub fn hid_usages(&self) -> BTreeSet<Usage> {
        let mut set = BTreeSet::new();
        for h in &self.hid {
            if let Ok(r) = &h.report {
                set.extend(r.usage_set());
            }
        }
        set
    }

    /// Whether any report descriptor declares the usage.
    pub fn has_hid_usage(&self, page: u16, id: u16) -> bool {
        let u = Usage::new(page, id);
        self.hid
            .iter()
            .any(|h| h.report.as_ref().map(|r| r.has_usage(u)).unwrap_or(false))
    }

    /// The HID summary: present when the device has a HID interface or a
    /// report descriptor.
    pub fn hid_summary(&self) -> Option<HidSummary> {
        if self.hid.is_empty() && !self.classes().contains(&"hid") {
            return None;
        }
        Some(HidSummary {
            usages: self.hid_usages().iter().map(|u| u.to_string()).collect(),
            named: NAMED_USAGES
                .iter()
                .filter(|(p, i, _)| self.has_hid_usage(*p, *i))
                .map(|(_, _, n)| n.to_string())
                .collect(),
        })
    }

    /// The JSON form (docs/usb.md).
    pub fn json(&self) -> UsbDeviceJson {
        UsbDeviceJson {
            name: self.name.clone(),
            identity: self.identity.clone(),
            classes: self.classes().iter().map(|s| s.to_string()).collect(),
            audio: self.audio(),
            video: self.video(),
            hid: self.hid_summary(),
            errors: self.errors.clone(),
            warnings: self.warnings.clone(),
        }
    }

    /// [`Self::json`] as a `serde_json::Value`.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self.json()).unwrap_or(serde_json::Value::Null)
    }
}

/// A directory or file name that stays where it is put.
fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains('/')
        && !s.contains('\\')
        && !s.contains('\0')
}

/// Write the devices as a sysfs-shaped tree under `dir` (created if
/// needed): `dir/bus/usb/devices/<name>/{descriptors, idVendor, ...}` and
/// `dir/bus/usb/devices/<name>:<cfg>.<intf>/<node>/report_descriptor`, so
/// that [`scan`]`(dir)` reads them back. Attributes are written with a
/// trailing newline, as sysfs shows them. Plain directories, no symlinks.
pub fn write_snapshot(devices: &[UsbDevice], dir: &Path) -> io::Result<()> {
    let base = devices_dir(dir);
    fs::create_dir_all(&base)?;
    let bad =
        |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("unsafe name {what:?}"));
    for d in devices {
        if !safe_name(&d.name) {
            return Err(bad(&d.name));
        }
        let ddir = base.join(&d.name);
        fs::create_dir_all(&ddir)?;
        for (k, v) in &d.attributes {
            if !safe_name(k) {
                return Err(bad(k));
            }
            fs::write(ddir.join(k), format!("{v}\n"))?;
        }
        if let Some(raw) = &d.raw_descriptors {
            fs::write(ddir.join("descriptors"), raw)?;
        }
        for h in &d.hid {
            if !safe_name(&h.interface_dir) || !safe_name(&h.node) {
                return Err(bad(&format!("{}/{}", h.interface_dir, h.node)));
            }
            let ndir = base.join(&h.interface_dir).join(&h.node);
            fs::create_dir_all(&ndir)?;
            fs::write(ndir.join("report_descriptor"), &h.raw)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_interface_suffix("1.3"), Some((1, 3)));
        assert_eq!(parse_interface_suffix("1"), None);
        assert!(!safe_name(".."));
        assert!(!safe_name("a/b"));
        assert!(safe_name("0003:1209:0001.0001"));
        assert_eq!(hex4("0b0e"), Some(0x0b0e));
        assert_eq!(hex4("12345"), None);
    }

    #[test]
    fn no_usb_stack_is_an_error_value() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(scan(t.path()), Err(ScanError::NoUsbStack(_))));
    }
}
