//! Who a USB device says it is: the one identity struct.
//!
//! Owns [`UsbIdentity`], the seven facts that name a device — VID, PID,
//! serial number, firmware (bcdDevice), manufacturer, product and the
//! digest of its raw descriptors — as `usb::sysfs` and `usb::libusb` read
//! them, a DUT's identity carries them into report.json
//! (`station::DeviceIdentity`), and a simulated scenario writes them by hand
//! (`station::sim::scenario`). Each of those embeds this struct, so the
//! seven keys serialise the same everywhere (flattened into the object
//! around them). It reads nothing and must not depend on any other part of
//! `usb`.

use serde::{Deserialize, Serialize};

/// Who a device says it is. Strings the device lacks are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsbIdentity {
    /// 4 lowercase hex digits.
    pub vid: String,
    /// 4 lowercase hex digits.
    pub pid: String,
    pub serial: String,
    /// bcdDevice as "MM.mm", see `usb::descriptors::format_bcd` ("1.23").
    pub firmware: String,
    pub manufacturer: String,
    pub product: String,
    /// SHA-256 of the raw `descriptors` bytes, lowercase hex; empty without them.
    pub descriptors_sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys, in this order, are a stable interface (docs/usb.md, report.json).
    #[test]
    fn serialises_as_the_seven_keys_in_order() {
        let id = UsbIdentity {
            vid: "1209".into(),
            pid: "0001".into(),
            serial: "S".into(),
            firmware: "1.02".into(),
            manufacturer: "M".into(),
            product: "P".into(),
            descriptors_sha256: "ab".into(),
        };
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            r#"{"vid":"1209","pid":"0001","serial":"S","firmware":"1.02","manufacturer":"M","product":"P","descriptors_sha256":"ab"}"#
        );
        let back: UsbIdentity = serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
        assert_eq!(back, id);
    }
}
