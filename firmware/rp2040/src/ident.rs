//! Who this rig is: the flash unique id (the USB serial number) and the
//! firmware version (bcdDevice).
//!
//! The unique id comes from the QSPI flash's "read unique id" command (0x4B),
//! issued by embassy-rp from RAM with XIP suspended; that path calls four
//! bootrom functions. Before taking it the firmware checks at run time that a
//! bootrom with those functions is there, and afterwards that the id is not
//! all-0x00/all-0xFF (what a missing or unmodelled flash answers), so the same
//! image runs on a Pico, on an emulator with a minimal ROM, or on one with no
//! ROM at all, and says which (`Serial::Missing*`).

use embassy_rp::flash::{Blocking, Flash};
use embassy_rp::peripherals::FLASH;
use embassy_rp::rom_data;
use embassy_rp::Peri;

const FLASH_SIZE: usize = 2 * 1024 * 1024;

/// bcdDevice from the crate version: 0xMMmp (major in BCD, minor and patch one
/// nibble each, clipped to 9).
pub const BCD_DEVICE: u16 = {
    const fn digit(s: &str) -> u16 {
        let b = s.as_bytes();
        let mut v: u16 = 0;
        let mut i = 0;
        while i < b.len() {
            v = v * 10 + (b[i] - b'0') as u16;
            i += 1;
        }
        v
    }
    const fn bcd2(v: u16) -> u16 {
        let v = if v > 99 { 99 } else { v };
        ((v / 10) << 4) | (v % 10)
    }
    const fn nib(v: u16) -> u16 {
        if v > 9 {
            9
        } else {
            v
        }
    }
    (bcd2(digit(env!("CARGO_PKG_VERSION_MAJOR"))) << 8)
        | (nib(digit(env!("CARGO_PKG_VERSION_MINOR"))) << 4)
        | nib(digit(env!("CARGO_PKG_VERSION_PATCH")))
};

#[allow(dead_code)]
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How the serial number was obtained.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Serial {
    /// The 64-bit flash unique id.
    UniqueId([u8; 8]),
    /// No bootrom (or one without the flash functions): the id was not read.
    MissingRom,
    /// The flash answered all-0x00 or all-0xFF: no usable id.
    MissingId,
}

/// The bootrom's magic ("Mu", version) at 0x10 and a lookup function pointer
/// at 0x18 (RP2040 datasheet 2.8.2).
fn rom_present() -> bool {
    // SAFETY: the bootrom is always mapped at 0 on the RP2040 (reads of
    // unmapped ROM in an emulator return zeros or 0xFF, which fail the check).
    let (m, u, lookup) = unsafe {
        (
            core::ptr::read_volatile(0x10 as *const u8),
            core::ptr::read_volatile(0x11 as *const u8),
            core::ptr::read_volatile(0x18 as *const u16),
        )
    };
    if m != b'M' || u != b'u' || lookup == 0 || lookup & 1 == 0 || lookup == 0xffff {
        return false;
    }
    // The functions embassy-rp's unique-id path calls (flash_enter_cmd_xip is
    // replaced by a RAM copy of boot2).
    let fns = [
        rom_data::connect_internal_flash::ptr() as usize,
        rom_data::flash_exit_xip::ptr() as usize,
        rom_data::flash_flush_cache::ptr() as usize,
        rom_data::memcpy44::ptr() as usize,
    ];
    fns.iter().all(|&p| p != 0 && p & 1 == 1 && p < 0x4000)
}

pub fn read_serial(flash: Peri<'static, FLASH>) -> Serial {
    if !rom_present() {
        return Serial::MissingRom;
    }
    let mut f: Flash<'_, FLASH, Blocking, FLASH_SIZE> = Flash::new_blocking(flash);
    let mut id = [0u8; 8];
    if f.blocking_unique_id(&mut id).is_err() {
        return Serial::MissingId;
    }
    if id.iter().all(|&b| b == 0) || id.iter().all(|&b| b == 0xff) {
        return Serial::MissingId;
    }
    Serial::UniqueId(id)
}

impl Serial {
    /// The USB serial-number string: 16 upper-case hex digits of the unique id,
    /// or a marker that no id could be read.
    pub fn write_str(self, out: &mut [u8; 16]) -> &str {
        let n = match self {
            Serial::UniqueId(id) => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                for (i, b) in id.iter().enumerate() {
                    out[2 * i] = HEX[(b >> 4) as usize];
                    out[2 * i + 1] = HEX[(b & 15) as usize];
                }
                16
            }
            Serial::MissingRom => put(out, b"NO-ROM"),
            Serial::MissingId => put(out, b"NO-UNIQUE-ID"),
        };
        core::str::from_utf8(&out[..n]).unwrap_or("")
    }
}

fn put(out: &mut [u8; 16], s: &[u8]) -> usize {
    let n = s.len().min(out.len());
    out[..n].copy_from_slice(&s[..n]);
    n
}
