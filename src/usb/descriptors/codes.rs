//! The numbers the descriptor walk dispatches on: descriptor types,
//! interface classes and terminal types.
//!
//! Owns these constants only (USB 2.0 table 9-5 and the class specs). It
//! must not depend on any other part of `usb::descriptors`.

/// Descriptor types (USB 2.0 table 9-5, class specs).
pub mod desc_type {
    pub const DEVICE: u8 = 0x01;
    pub const CONFIGURATION: u8 = 0x02;
    pub const INTERFACE: u8 = 0x04;
    pub const ENDPOINT: u8 = 0x05;
    pub const INTERFACE_ASSOCIATION: u8 = 0x0b;
    pub const HID: u8 = 0x21;
    pub const HID_REPORT: u8 = 0x22;
    pub const CS_INTERFACE: u8 = 0x24;
    pub const CS_ENDPOINT: u8 = 0x25;
}

/// Interface class codes.
pub mod class {
    pub const AUDIO: u8 = 0x01;
    pub const HID: u8 = 0x03;
    pub const VIDEO: u8 = 0x0e;
    /// Communications (CDC); with subclass `CDC_ACM`, a serial port.
    pub const CDC: u8 = 0x02;
    pub const CDC_ACM: u8 = 0x02;
}

/// USB streaming terminal type (UAC1 termt10 and UAC2 both 0x0101; UVC
/// TT_STREAMING is also 0x0101).
pub const TERMINAL_USB_STREAMING: u16 = 0x0101;
/// UVC camera input terminal type (ITT_CAMERA).
pub const TERMINAL_CAMERA: u16 = 0x0201;
