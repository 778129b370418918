//! USB devices listed through libusb (the `rusb` crate, libusb vendored and
//! built from source), for hosts without sysfs.
//!
//! Owns enumerating the devices of an explicit [`rusb::Context`] and turning
//! each into the same [`UsbDevice`] that [`super::sysfs`] builds
//! ([`UsbDevice::from_raw`]): identity from the device descriptor (vid, pid,
//! bcdDevice), the manufacturer, product and serial strings, the raw
//! descriptor bytes (the 18-byte device descriptor followed by every
//! configuration's full descriptor, read with GET_DESCRIPTOR control
//! transfers) and each HID interface's report descriptor (GET_DESCRIPTOR
//! 0x22 on the interface). Strings and bytes need the device opened; a
//! device that cannot be opened is still listed, with its identity and an
//! error saying why its descriptors are missing. No bytes are invented.
//!
//! This is the only place in certlab that talks to libusb. It always uses
//! its own [`rusb::Context`] and never rusb's global context (whose
//! creation panics on a host without a USB stack); a context that cannot be
//! created is [`ListError::NoUsbStack`], a note for the user, not a crash.
//! It only reads (standard GET_DESCRIPTOR requests); it never claims an
//! interface, detaches a kernel driver or changes a configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rusb::{Device, DeviceHandle, UsbContext};

use super::descriptors::{self, desc_type};
use super::sysfs::UsbDevice;

/// How long one control transfer may take.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// GET_DESCRIPTOR (USB 2.0 §9.4.3).
pub const GET_DESCRIPTOR: u8 = 0x06;
/// bmRequestType: device-to-host, standard, device.
pub const REQUEST_IN_DEVICE: u8 = 0x80;
/// bmRequestType: device-to-host, standard, interface.
pub const REQUEST_IN_INTERFACE: u8 = 0x81;

/// The node name given to a report descriptor read through libusb (sysfs
/// names it after the kernel's HID device, e.g. `0003:1209:0001.0001`).
pub const HID_NODE: &str = "libusb";

/// Why libusb could not list devices at all.
#[derive(Debug)]
pub enum ListError {
    /// `libusb_init` failed: no USB stack libusb can use (a note, not a crash).
    NoUsbStack(rusb::Error),
    /// The context exists but the device list could not be read.
    List(rusb::Error),
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::NoUsbStack(e) => write!(f, "libusb could not start ({e})"),
            ListError::List(e) => write!(f, "libusb could not list the devices ({e})"),
        }
    }
}

impl std::error::Error for ListError {}

/// Every device libusb sees, sorted by name, root hubs included (see
/// [`UsbDevice::is_hub`]). Uses a fresh [`rusb::Context`].
pub fn scan() -> Result<Vec<UsbDevice>, ListError> {
    let ctx = rusb::Context::new().map_err(ListError::NoUsbStack)?;
    let list = ctx.devices().map_err(ListError::List)?;
    let mut out: Vec<UsbDevice> = list.iter().map(|d| read_device(&d)).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The sysfs name of a device: `usbB` for a root hub (no ports), else
/// `B-P.P.P` (bus, then the port numbers from the root).
pub fn device_name(bus: u8, ports: &[u8]) -> String {
    if ports.is_empty() {
        return format!("usb{bus}");
    }
    let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    format!("{bus}-{}", ports.join("."))
}

/// bcdDevice back from rusb's [`rusb::Version`] (which decodes the high
/// byte as two decimal digits): exact for BCD, lossy for a high-byte nibble
/// above 9. Only used when the raw device descriptor could not be read.
pub fn bcd_from_version(major: u8, minor: u8, sub_minor: u8) -> u16 {
    let m = major.min(99) as u16;
    ((m / 10) << 12) | ((m % 10) << 8) | (((minor & 0x0f) as u16) << 4) | (sub_minor & 0x0f) as u16
}

/// The `descriptors` bytes from what the control reads returned: the device
/// descriptor, then each configuration in index order. A read that failed
/// leaves the whole file out (a file missing a configuration would claim
/// something the device did not say) and is named in the errors; bytes that
/// were read are kept as they are, so a short reply is the parser's
/// `truncated` error rather than something patched here.
pub fn assemble_descriptors(
    device: Result<Vec<u8>, String>,
    configurations: Vec<Result<Vec<u8>, String>>,
) -> (Option<Vec<u8>>, Vec<String>) {
    let mut errors = Vec::new();
    let mut out = match device {
        Ok(b) => Some(b),
        Err(e) => {
            errors.push(format!("descriptors: not read: the device descriptor: {e}"));
            None
        }
    };
    for (i, c) in configurations.into_iter().enumerate() {
        match c {
            Ok(b) => {
                if let Some(o) = out.as_mut() {
                    o.extend_from_slice(&b);
                }
            }
            Err(e) => {
                errors.push(format!("descriptors: not read: configuration {i}: {e}"));
                out = None;
            }
        }
    }
    if !errors.is_empty() {
        out = None;
    }
    (out, errors)
}

/// The interface directory name sysfs would give: `<name>:<cfg>.<intf>`.
pub fn interface_dir(name: &str, configuration: u8, interface: u8) -> String {
    format!("{name}:{configuration}.{interface}")
}

/// A GET_DESCRIPTOR read of `length` bytes, returning what the device sent.
fn get_descriptor<T: UsbContext>(
    h: &DeviceHandle<T>,
    request_type: u8,
    kind: u8,
    index: u8,
    w_index: u16,
    length: u16,
) -> rusb::Result<Vec<u8>> {
    let mut buf = vec![0u8; length as usize];
    let n = h.read_control(
        request_type,
        GET_DESCRIPTOR,
        ((kind as u16) << 8) | index as u16,
        w_index,
        &mut buf,
        TIMEOUT,
    )?;
    buf.truncate(n);
    Ok(buf)
}

/// One configuration's full bytes: wTotalLength from libusb's copy of the
/// configuration descriptor, else from a 9-byte read of its header.
fn read_configuration<T: UsbContext>(
    dev: &Device<T>,
    h: &DeviceHandle<T>,
    index: u8,
) -> Result<Vec<u8>, String> {
    let total = match dev.config_descriptor(index) {
        Ok(c) => c.total_length(),
        Err(_) => {
            let head = get_descriptor(h, REQUEST_IN_DEVICE, desc_type::CONFIGURATION, index, 0, 9)
                .map_err(|e| e.to_string())?;
            if head.len() < 4 {
                return Err(format!("its header is {} bytes", head.len()));
            }
            u16::from_le_bytes([head[2], head[3]])
        }
    };
    get_descriptor(
        h,
        REQUEST_IN_DEVICE,
        desc_type::CONFIGURATION,
        index,
        0,
        total,
    )
    .map_err(|e| e.to_string())
}

/// A string descriptor in the device's first language, else as ASCII.
fn read_string<T: UsbContext>(
    h: &DeviceHandle<T>,
    lang: Option<rusb::Language>,
    index: Option<u8>,
) -> Option<rusb::Result<String>> {
    let index = index?;
    let utf16 = lang.map(|l| h.read_string_descriptor(l, index, TIMEOUT));
    Some(match utf16 {
        Some(Ok(s)) => Ok(s),
        _ => h.read_string_descriptor_ascii(index),
    })
}

/// Without raw bytes, the identity comes from libusb's copy of the device
/// descriptor, as the attribute files sysfs would have: `idVendor`,
/// `idProduct`, `bcdDevice` and `bDeviceClass` (which lets
/// [`UsbDevice::is_hub`] tell a hub without descriptors).
fn identity_attributes(desc: &rusb::DeviceDescriptor, attributes: &mut BTreeMap<String, String>) {
    let v = desc.device_version();
    attributes.insert("idVendor".into(), format!("{:04x}", desc.vendor_id()));
    attributes.insert("idProduct".into(), format!("{:04x}", desc.product_id()));
    attributes.insert(
        "bcdDevice".into(),
        format!(
            "{:04x}",
            bcd_from_version(v.major(), v.minor(), v.sub_minor())
        ),
    );
    attributes.insert("bDeviceClass".into(), format!("{:02x}", desc.class_code()));
}

fn read_device<T: UsbContext>(dev: &Device<T>) -> UsbDevice {
    let name = device_name(dev.bus_number(), &dev.port_numbers().unwrap_or_default());
    let mut attributes = BTreeMap::new();
    let desc = match dev.device_descriptor() {
        Ok(d) => d,
        Err(e) => {
            let mut d = UsbDevice::from_raw(&name, attributes, None, Vec::new());
            d.errors
                .push(format!("device descriptor: not read through libusb: {e}"));
            return d;
        }
    };
    let handle = match dev.open() {
        Ok(h) => h,
        Err(e) => {
            // Identity from libusb's copy of the device descriptor; nothing else.
            identity_attributes(&desc, &mut attributes);
            let mut d = UsbDevice::from_raw(&name, attributes, None, Vec::new());
            d.errors.push(format!(
                "descriptors: not read: the device could not be opened through libusb ({e}); its strings and report descriptors are missing too"
            ));
            return d;
        }
    };
    let mut warnings = Vec::new();
    let lang = handle
        .read_languages(TIMEOUT)
        .ok()
        .and_then(|l| l.first().copied());
    for (key, index) in [
        ("manufacturer", desc.manufacturer_string_index()),
        ("product", desc.product_string_index()),
        ("serial", desc.serial_number_string_index()),
    ] {
        match read_string(&handle, lang, index) {
            Some(Ok(s)) => {
                attributes.insert(key.to_string(), s);
            }
            Some(Err(e)) => warnings.push(format!("{key}: string not read through libusb: {e}")),
            None => {}
        }
    }
    let device_bytes = get_descriptor(&handle, REQUEST_IN_DEVICE, desc_type::DEVICE, 0, 0, 18)
        .map_err(|e| e.to_string());
    let configs = (0..desc.num_configurations())
        .map(|i| read_configuration(dev, &handle, i))
        .collect();
    let (raw, mut errors) = assemble_descriptors(device_bytes, configs);
    if raw.is_none() {
        identity_attributes(&desc, &mut attributes);
    }
    // HID report descriptors, on the active configuration's HID interfaces.
    let mut hid = Vec::new();
    if let Some(parsed) = raw.as_deref().and_then(|b| descriptors::parse(b).ok()) {
        let active = handle.active_configuration().ok();
        for c in &parsed.configurations {
            if active.is_some_and(|a| a != c.value) {
                continue;
            }
            for i in &c.interfaces {
                let Some((n, h)) = i.alt_settings.iter().find_map(|a| {
                    a.class_info.iter().find_map(|ci| match ci {
                        descriptors::ClassDescriptor::Hid(h) => Some((a.interface, h)),
                        _ => None,
                    })
                }) else {
                    continue;
                };
                let Some(len) = h.report_descriptor_length() else {
                    continue;
                };
                match get_descriptor(
                    &handle,
                    REQUEST_IN_INTERFACE,
                    desc_type::HID_REPORT,
                    0,
                    n as u16,
                    len,
                ) {
                    Ok(bytes) => hid.push((interface_dir(&name, c.value, n), HID_NODE.into(), bytes)),
                    Err(e) => warnings.push(format!(
                        "HID interface {n}: report descriptor not read through libusb ({e}); left out"
                    )),
                }
            }
        }
    }
    let mut d = UsbDevice::from_raw(&name, attributes, raw, hid);
    errors.append(&mut d.errors);
    d.errors = errors;
    warnings.append(&mut d.warnings);
    d.warnings = warnings;
    d
}
