//! HID report descriptors → the fields of each report, and report decoding.
//!
//! Owns the parsing of HID 1.11 report descriptors (§6.2.2: short and long
//! items; main, global and local items; push and pop; usage ranges; 32-bit
//! extended usages; report ids; collections) into a list of [`Field`]s with
//! their usage, report kind, report id, bit offset and size, and the
//! decoding of a usage's value from a report's bytes (for hidraw). It also
//! names the telephony usages conferencing devices declare.
//!
//! It never panics and never loops on any input: every item advances the
//! cursor, and the number of fields, usages and pushes is capped. It parses
//! only: no I/O, no judging.
//!
//! The parts, each using only those listed before it: `model` (the types,
//! named usages and usage summaries), `items` (the item lexer), `state`
//! (the state machine: global and local state, collections, fields:
//! [`parse`]), `report` (reading and building reports). This file only
//! names them.

mod items;
mod model;
mod report;
mod state;

pub use model::{
    usage_name, Collection, Field, FieldUsage, HidError, HidWarning, InputValue, ReportDescriptor,
    ReportKind, Usage, UsageRange, MAX_SUMMARY_USAGES, MAX_SUMMARY_WORK, NAMED_USAGES,
};
pub use report::extract_bits;
pub use state::{parse, MAX_FIELDS, MAX_LOCAL_USAGES, MAX_PUSH_DEPTH};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_strings() {
        assert_eq!(Usage::new(0x0b, 0x20).to_string(), "0x0b:0x20");
        assert_eq!(Usage::new(0xff00, 0x1).to_string(), "0xff00:0x01");
    }

    /// Hook Switch and Phone Mute in (report 1), Mute / Off-Hook / Ring
    /// LEDs out (report 2), and a keypad array in (report 3).
    const PHONE: &[u8] = &[
        0x05, 0x0b, 0x09, 0x01, 0xa1, 0x01, // Telephony: Phone, application
        0x85, 0x01, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x01, // id 1, 0..1, 1 bit
        0x09, 0x20, 0x81, 0x22, // Hook Switch, input
        0x09, 0x2f, 0x81, 0x06, // Phone Mute, input (relative)
        0x95, 0x06, 0x81, 0x03, // padding
        0x85, 0x02, 0x05, 0x08, 0x09, 0x09, 0x09, 0x17, 0x09, 0x18, // id 2, LEDs
        0x95, 0x03, 0x91, 0x22, 0x95, 0x05, 0x91, 0x03, // output, padding
        0x85, 0x03, 0x05, 0x0b, 0x19, 0xb0, 0x29, 0xbb, // id 3, Phone Key 0..11
        0x15, 0x00, 0x25, 0x0b, 0x75, 0x08, 0x95, 0x02, 0x81, 0x00, // array of 2
        0xc0,
    ];

    #[test]
    fn output_reports_are_encoded_and_input_values_read_back() {
        let rd = parse(PHONE).unwrap();
        // Off-Hook LED on: report 2, bit 1.
        let r = rd
            .encode(ReportKind::Output, Usage::new(0x08, 0x17), 1)
            .unwrap();
        assert_eq!(r, vec![0x02, 0b0000_0010]);
        assert_eq!(
            rd.decode(ReportKind::Output, &r, Usage::new(0x08, 0x17)),
            Some(1)
        );
        assert_eq!(
            rd.decode(ReportKind::Output, &r, Usage::new(0x08, 0x09)),
            Some(0)
        );
        // Out of the field's range, or a usage no output declares.
        assert!(rd
            .encode(ReportKind::Output, Usage::new(0x08, 0x17), 2)
            .is_none());
        assert!(rd
            .encode(ReportKind::Output, Usage::new(0x0b, 0x20), 1)
            .is_none());

        let mut out = Vec::with_capacity(rd.input_capacity());
        let cap = out.capacity();
        rd.input_values(&[0x01, 0b01], &mut out);
        let hook = Usage::new(0x0b, 0x20);
        let mute = Usage::new(0x0b, 0x2f);
        assert_eq!(
            out,
            vec![
                InputValue {
                    usage: hook,
                    value: 1,
                    array: false
                },
                InputValue {
                    usage: mute,
                    value: 0,
                    array: false
                },
            ]
        );
        // Keys 3 and 0 held: an array of Phone Key usages (0xb0 + index).
        rd.input_values(&[0x03, 3, 0], &mut out);
        assert_eq!(
            out.iter()
                .map(|v| (v.usage.id, v.array))
                .collect::<Vec<_>>(),
            vec![(0xb3, true), (0xb0, true)]
        );
        assert_eq!(out.capacity(), cap, "no growth past input_capacity");
        // Another report id, or a short report: nothing.
        rd.input_values(&[0x07, 1], &mut out);
        assert!(out.is_empty());
        rd.input_values(&[], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn truncated_item() {
        let e = parse(&[0x05, 0x0b, 0x26, 0xff]).unwrap_err();
        assert_eq!(e.offset, 2);
    }
}
