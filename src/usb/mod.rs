//! USB devices as the host sees them: descriptors, HID report descriptors,
//! and the sysfs tree they are read from.
//!
//! Owns the parsing of raw USB descriptor bytes ([`descriptors`]), of HID
//! report descriptors and reports ([`hid`]), who a device is
//! ([`identity::UsbIdentity`], the one identity struct), the reading and
//! writing of sysfs-shaped trees ([`sysfs`]), and listing devices through
//! libusb on hosts without sysfs ([`libusb`]); a message about a byte of
//! those ([`at_byte::AtByte`]). It parses and reads; it does no judging
//! (profiles judge), and it does no I/O except in [`sysfs`] and [`libusb`].
//! It must not touch the station, the measurements or the reports.

pub mod at_byte;
pub mod descriptors;
pub mod hid;
pub mod identity;
pub mod libusb;
pub mod sysfs;
