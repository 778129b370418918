//! Bounds-checked reads of descriptor bytes, and the errors every parser
//! of the walk raises the same way.
//!
//! Owns the little-endian field reads (out of range reads give 0; callers
//! check lengths first, this is the belt to those braces), the
//! "shorter than its fields" check, and raw descriptors. It depends only on
//! `model`, and knows no descriptor layout.

use super::model::{ErrorKind, ParseError, RawDescriptor};

pub(super) fn fail<T>(
    offset: usize,
    kind: ErrorKind,
    message: impl Into<String>,
) -> Result<T, ParseError> {
    Err(ParseError {
        offset,
        kind,
        message: message.into(),
    })
}

pub(super) fn b(d: &[u8], i: usize) -> u8 {
    d.get(i).copied().unwrap_or(0)
}
pub(super) fn w(d: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b(d, i), b(d, i.saturating_add(1))])
}
pub(super) fn t3(d: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([
        b(d, i),
        b(d, i.saturating_add(1)),
        b(d, i.saturating_add(2)),
        0,
    ])
}
pub(super) fn dw(d: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([
        b(d, i),
        b(d, i.saturating_add(1)),
        b(d, i.saturating_add(2)),
        b(d, i.saturating_add(3)),
    ])
}
/// Little-endian unsigned of up to 4 bytes.
pub(super) fn le_n(d: &[u8], i: usize, n: usize) -> u32 {
    let mut v = 0u32;
    for k in (0..n.min(4)).rev() {
        v = (v << 8) | u32::from(b(d, i.saturating_add(k)));
    }
    v
}

pub(super) fn too_short<T>(
    p: usize,
    what: &str,
    have: usize,
    need: usize,
) -> Result<T, ParseError> {
    fail(
        p,
        ErrorKind::TooShort,
        format!("{what} has bLength {have}, its fields need {need}"),
    )
}

pub(super) fn raw(d: &[u8], p: usize) -> RawDescriptor {
    RawDescriptor {
        offset: p,
        descriptor_type: b(d, 1),
        bytes: d.to_vec(),
    }
}

/// `Ok` when the descriptor `d` at byte `p` holds at least `n` bytes, else
/// the [`too_short`] error naming `what`.
pub(super) fn need(d: &[u8], p: usize, n: usize, what: &str) -> Result<(), ParseError> {
    if d.len() < n {
        too_short(p, what, d.len(), n)
    } else {
        Ok(())
    }
}

/// A count at byte `at` of `d` and the entries of `size` bytes it counts,
/// which follow it, then `tail` bytes more: `Ok(count)` when `d` holds them
/// all, else the [`too_short`] error naming `what` (first for the count
/// byte itself, then for the entries).
pub(super) fn counted(
    d: &[u8],
    p: usize,
    at: usize,
    size: usize,
    tail: usize,
    what: &str,
) -> Result<usize, ParseError> {
    need(d, p, at + 1, what)?;
    let n = d[at] as usize;
    need(d, p, at + 1 + n * size + tail, what)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_little_endian_and_zero_past_the_end() {
        let d = [0x01, 0x02, 0x03, 0x04];
        assert_eq!(w(&d, 0), 0x0201);
        assert_eq!(t3(&d, 1), 0x040302);
        assert_eq!(dw(&d, 0), 0x04030201);
        assert_eq!(le_n(&d, 1, 2), 0x0302);
        assert_eq!(le_n(&d, 0, 9), 0x04030201, "at most 4 bytes");
        assert_eq!(w(&d, 3), 0x0004);
        assert_eq!(dw(&d, usize::MAX), 0);
    }

    #[test]
    fn need_names_the_descriptor() {
        assert!(need(&[0; 5], 10, 5, "x").is_ok());
        let e = need(&[0; 4], 10, 5, "UAC1 AC header").unwrap_err();
        assert_eq!((e.offset, e.kind), (10, ErrorKind::TooShort));
        assert_eq!(e.message, "UAC1 AC header has bLength 4, its fields need 5");
    }

    #[test]
    fn counted_entries() {
        // A count of 2 at byte 1, entries of 3 bytes, one tail byte: 9 bytes.
        let d = [0, 2, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(counted(&d, 0, 1, 3, 1, "x").unwrap(), 2);
        let e = counted(&d[..8], 7, 1, 3, 1, "x").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (7, "x has bLength 8, its fields need 9")
        );
        let e = counted(&d[..1], 7, 1, 3, 1, "x").unwrap_err();
        assert_eq!(e.message, "x has bLength 1, its fields need 2");
    }
}
