//! USB Audio Class descriptors: AudioControl and AudioStreaming, UAC1 and
//! UAC2.
//!
//! Owns the layouts of the class-specific interface descriptors of USB
//! Audio 1.0 (audio10.pdf §4.3, frmts10.pdf §2.2) and 2.0 (Audio20 §4.7,
//! §4.9). Where the two versions hold the same fields at other offsets (the
//! input and output terminals) the layouts are data, [`TERMINALS`], read by
//! one function. It is handed one descriptor at a time by `walk` and must
//! not walk the buffer itself, nor summarise.

use super::model::{
    AltSetting, AudioDescriptor, ErrorKind, ParseError, SampleRates, UacVersion, Warning,
};
use super::read::{counted, dw, fail, le_n, need, t3, w};

/// AC descriptor subtypes of the terminals (both versions).
const INPUT_TERMINAL: u8 = 0x02;
const OUTPUT_TERMINAL: u8 = 0x03;

/// What a terminal's version-dependent byte means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TerminalRole {
    /// An input terminal: the offset of bNrChannels.
    Input { channels: usize },
    /// An output terminal: the offset of bSourceID.
    Output { source: usize },
}

/// Where an input or output terminal descriptor of one UAC version keeps
/// its fields (byte offsets from the descriptor's bLength).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TerminalLayout {
    /// Names the descriptor in errors: "UAC1 input terminal".
    what: &'static str,
    /// The bLength its fields need.
    len: usize,
    /// bTerminalID.
    id: usize,
    /// wTerminalType (two bytes).
    terminal_type: usize,
    /// bAssocTerminal.
    assoc_terminal: usize,
    role: TerminalRole,
    /// bCSourceID: UAC2 only.
    clock_source: Option<usize>,
}

/// The terminal layouts: (AC subtype, version, layout). UAC2 puts
/// bCSourceID where UAC1 has bNrChannels (input) or after bSourceID
/// (output), and adds channel config and controls.
const TERMINALS: [(u8, UacVersion, TerminalLayout); 4] = [
    (
        INPUT_TERMINAL,
        UacVersion::Uac1,
        TerminalLayout {
            what: "UAC1 input terminal",
            len: 12,
            id: 3,
            terminal_type: 4,
            assoc_terminal: 6,
            role: TerminalRole::Input { channels: 7 },
            clock_source: None,
        },
    ),
    (
        INPUT_TERMINAL,
        UacVersion::Uac2,
        TerminalLayout {
            what: "UAC2 input terminal",
            len: 17,
            id: 3,
            terminal_type: 4,
            assoc_terminal: 6,
            role: TerminalRole::Input { channels: 8 },
            clock_source: Some(7),
        },
    ),
    (
        OUTPUT_TERMINAL,
        UacVersion::Uac1,
        TerminalLayout {
            what: "UAC1 output terminal",
            len: 9,
            id: 3,
            terminal_type: 4,
            assoc_terminal: 6,
            role: TerminalRole::Output { source: 7 },
            clock_source: None,
        },
    ),
    (
        OUTPUT_TERMINAL,
        UacVersion::Uac2,
        TerminalLayout {
            what: "UAC2 output terminal",
            len: 12,
            id: 3,
            terminal_type: 4,
            assoc_terminal: 6,
            role: TerminalRole::Output { source: 7 },
            clock_source: Some(8),
        },
    ),
];

/// The layout of an AC descriptor of `subtype` in `version`, if a terminal.
fn terminal_layout(subtype: u8, version: UacVersion) -> Option<&'static TerminalLayout> {
    TERMINALS
        .iter()
        .find(|(s, v, _)| *s == subtype && *v == version)
        .map(|(_, _, l)| l)
}

/// An input or output terminal descriptor `d` at byte `p`, read by its layout.
fn parse_terminal(l: &TerminalLayout, d: &[u8], p: usize) -> Result<AudioDescriptor, ParseError> {
    need(d, p, l.len, l.what)?;
    let (id, terminal_type, assoc_terminal) = (d[l.id], w(d, l.terminal_type), d[l.assoc_terminal]);
    let clock_source = l.clock_source.map(|i| d[i]);
    Ok(match l.role {
        TerminalRole::Input { channels } => AudioDescriptor::InputTerminal {
            offset: p,
            id,
            terminal_type,
            assoc_terminal,
            channels: d[channels],
            clock_source,
        },
        TerminalRole::Output { source } => AudioDescriptor::OutputTerminal {
            offset: p,
            id,
            terminal_type,
            assoc_terminal,
            source: d[source],
            clock_source,
        },
    })
}

pub(super) fn parse_audio(
    a: &AltSetting,
    d: &[u8],
    p: usize,
    warnings: &mut Vec<Warning>,
) -> Result<Option<AudioDescriptor>, ParseError> {
    need(d, p, 3, "audio class-specific descriptor")?;
    let subtype = d[2];
    let version = match a.protocol {
        0x00 => UacVersion::Uac1,
        0x20 => UacVersion::Uac2,
        other => {
            warnings.push(Warning {
                offset: p,
                message: format!(
                    "audio interface {} protocol 0x{other:02x} (not UAC1 or UAC2): class descriptors kept raw",
                    a.interface
                ),
            });
            return Ok(Some(AudioDescriptor::Other { offset: p, subtype }));
        }
    };
    let v2 = version == UacVersion::Uac2;
    if a.subclass == 0x01 {
        if let Some(layout) = terminal_layout(subtype, version) {
            return parse_terminal(layout, d, p).map(Some);
        }
    }
    match a.subclass {
        // Audio control.
        0x01 => match (subtype, v2) {
            (0x01, false) => {
                let n = counted(d, p, 7, 1, 0, "UAC1 AC header")?;
                Ok(Some(AudioDescriptor::Header {
                    offset: p,
                    bcd_adc: w(d, 3),
                    total_length: w(d, 5),
                    stream_interfaces: d[8..8 + n].to_vec(),
                }))
            }
            (0x01, true) => {
                need(d, p, 9, "UAC2 AC header")?;
                Ok(Some(AudioDescriptor::Header {
                    offset: p,
                    bcd_adc: w(d, 3),
                    total_length: w(d, 6),
                    stream_interfaces: Vec::new(),
                }))
            }
            (0x06, _) => {
                let controls = feature_controls(d, p, v2, warnings)?;
                Ok(Some(AudioDescriptor::FeatureUnit {
                    offset: p,
                    id: d[3],
                    source: d[4],
                    controls,
                }))
            }
            (0x0a, true) => {
                need(d, p, 8, "UAC2 clock source")?;
                Ok(Some(AudioDescriptor::ClockSource {
                    offset: p,
                    id: d[3],
                    attributes: d[4],
                    controls: d[5],
                    assoc_terminal: d[6],
                }))
            }
            (0x04 | 0x05 | 0x07 | 0x08, _) | (0x09 | 0x0b | 0x0c | 0x0d, true) => {
                need(d, p, 4, "audio unit")?;
                Ok(Some(AudioDescriptor::Unit {
                    offset: p,
                    subtype,
                    id: d[3],
                }))
            }
            _ => Ok(Some(AudioDescriptor::Other { offset: p, subtype })),
        },
        // Audio streaming.
        0x02 => match (subtype, v2) {
            (0x01, false) => {
                need(d, p, 7, "UAC1 AS general")?;
                Ok(Some(AudioDescriptor::StreamingGeneral {
                    offset: p,
                    terminal_link: d[3],
                    format_tag: Some(w(d, 5)),
                    formats: None,
                    channels: None,
                }))
            }
            (0x01, true) => {
                need(d, p, 16, "UAC2 AS general")?;
                Ok(Some(AudioDescriptor::StreamingGeneral {
                    offset: p,
                    terminal_link: d[3],
                    format_tag: None,
                    formats: Some(dw(d, 6)),
                    channels: Some(d[10]),
                }))
            }
            (0x02, _) => {
                need(d, p, 4, "audio format type descriptor")?;
                let format_type = d[3];
                if format_type != 0x01 {
                    return Ok(Some(AudioDescriptor::FormatOther {
                        offset: p,
                        format_type,
                    }));
                }
                if v2 {
                    need(d, p, 6, "UAC2 format type I")?;
                    return Ok(Some(AudioDescriptor::FormatTypeI {
                        offset: p,
                        channels: None,
                        subframe_size: d[4],
                        bit_resolution: d[5],
                        rates: SampleRates::Unknown,
                    }));
                }
                need(d, p, 8, "UAC1 format type I")?;
                let n = d[7] as usize;
                let rates = if n == 0 {
                    need(d, p, 14, "UAC1 format type I with a continuous rate range")?;
                    let (lo, hi) = (t3(d, 8), t3(d, 11));
                    if lo > hi {
                        warnings.push(Warning {
                            offset: p + 8,
                            message: format!(
                                "continuous sample rate range {lo}..{hi} is upside down"
                            ),
                        });
                        SampleRates::Continuous { min: hi, max: lo }
                    } else {
                        SampleRates::Continuous { min: lo, max: hi }
                    }
                } else {
                    need(d, p, 8 + 3 * n, "UAC1 format type I")?;
                    SampleRates::Discrete((0..n).map(|k| t3(d, 8 + 3 * k)).collect())
                };
                Ok(Some(AudioDescriptor::FormatTypeI {
                    offset: p,
                    channels: Some(d[4]),
                    subframe_size: d[5],
                    bit_resolution: d[6],
                    rates,
                }))
            }
            _ => Ok(Some(AudioDescriptor::Other { offset: p, subtype })),
        },
        _ => Ok(Some(AudioDescriptor::Other { offset: p, subtype })),
    }
}

/// A feature unit's bmaControls, which fill the space between their first
/// byte and iFeature, the last: UAC1 gives bUnitID, bSourceID, bControlSize,
/// then controls of bControlSize bytes; UAC2 bUnitID, bSourceID, then
/// controls of 4 bytes.
fn feature_controls(
    d: &[u8],
    p: usize,
    v2: bool,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<u32>, ParseError> {
    let (first, size) = if v2 {
        need(d, p, 6, "UAC2 feature unit")?;
        (5, 4)
    } else {
        need(d, p, 7, "UAC1 feature unit")?;
        let size = d[5] as usize;
        if size == 0 {
            return fail(
                p + 5,
                ErrorKind::Inconsistent,
                "UAC1 feature unit bControlSize is 0",
            );
        }
        (6, size)
    };
    let room = d.len() - first - 1;
    if room % size != 0 {
        let message = if v2 {
            format!(
                "UAC2 feature unit bLength {} is not 6 + 4 per channel",
                d.len()
            )
        } else {
            format!(
                "UAC1 feature unit bLength {} leaves a partial control of bControlSize {size}",
                d.len()
            )
        };
        warnings.push(Warning { offset: p, message });
    }
    Ok((0..room / size)
        .map(|k| le_n(d, first + k * size, size))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An audio control alternate setting of `protocol` (0x00 UAC1, 0x20 UAC2).
    fn control(protocol: u8) -> AltSetting {
        AltSetting {
            offset: 0,
            interface: 0,
            alternate: 0,
            num_endpoints: 0,
            class: 0x01,
            subclass: 0x01,
            protocol,
            i_interface: 0,
            class_info: Vec::new(),
            endpoints: Vec::new(),
            extra: Vec::new(),
        }
    }

    fn parse(protocol: u8, d: &[u8]) -> Result<AudioDescriptor, ParseError> {
        let mut warnings = Vec::new();
        let got = parse_audio(&control(protocol), d, 40, &mut warnings)?;
        assert!(warnings.is_empty(), "{warnings:?}");
        Ok(got.expect("a descriptor"))
    }

    #[test]
    fn every_layout_fits_its_length() {
        for (_, _, l) in &TERMINALS {
            let role = match l.role {
                TerminalRole::Input { channels } => channels,
                TerminalRole::Output { source } => source,
            };
            let last = [l.id, l.terminal_type + 1, l.assoc_terminal, role]
                .into_iter()
                .chain(l.clock_source)
                .max()
                .unwrap();
            assert!(last < l.len, "{}", l.what);
        }
        for subtype in [INPUT_TERMINAL, OUTPUT_TERMINAL] {
            for v in [UacVersion::Uac1, UacVersion::Uac2] {
                assert!(terminal_layout(subtype, v).is_some());
            }
        }
        assert!(terminal_layout(0x06, UacVersion::Uac1).is_none());
    }

    /// Each layout of [`TERMINALS`] against a descriptor of its version, as
    /// the class specs lay them out.
    #[test]
    fn terminals_of_both_versions() {
        let input = |terminal_type, assoc_terminal, channels, clock_source| {
            AudioDescriptor::InputTerminal {
                offset: 40,
                id: 1,
                terminal_type,
                assoc_terminal,
                channels,
                clock_source,
            }
        };
        let output =
            |terminal_type, assoc_terminal, source, clock_source| AudioDescriptor::OutputTerminal {
                offset: 40,
                id: 3,
                terminal_type,
                assoc_terminal,
                source,
                clock_source,
            };
        let cases: [(u8, &[u8], AudioDescriptor); 4] = [
            // UAC1 input: bTerminalID 1, wTerminalType 0x0101 (USB
            // streaming), bAssocTerminal 0, bNrChannels 2, wChannelConfig,
            // iChannelNames, iTerminal.
            (
                0x00,
                &[12, 0x24, 0x02, 1, 0x01, 0x01, 0, 2, 0x03, 0x00, 0, 0],
                input(0x0101, 0, 2, None),
            ),
            // UAC2 input: ... bAssocTerminal 4, bCSourceID 0x10, bNrChannels
            // 2, bmChannelConfig (4), iChannelNames, bmControls (2), iTerminal.
            (
                0x20,
                &[
                    17, 0x24, 0x02, 1, 0x01, 0x02, 4, 0x10, 2, 0x03, 0, 0, 0, 0, 0, 0, 0,
                ],
                input(0x0201, 4, 2, Some(0x10)),
            ),
            // UAC1 output: bTerminalID 3, wTerminalType 0x0301 (speaker),
            // bAssocTerminal 0, bSourceID 2, iTerminal.
            (
                0x00,
                &[9, 0x24, 0x03, 3, 0x01, 0x03, 0, 2, 0],
                output(0x0301, 0, 2, None),
            ),
            // UAC2 output: ... bAssocTerminal 5, bSourceID 2, bCSourceID
            // 0x10, bmControls (2), iTerminal.
            (
                0x20,
                &[12, 0x24, 0x03, 3, 0x01, 0x01, 5, 2, 0x10, 0, 0, 0],
                output(0x0101, 5, 2, Some(0x10)),
            ),
        ];
        for (protocol, bytes, want) in cases {
            assert_eq!(parse(protocol, bytes).unwrap(), want, "{bytes:?}");
        }
    }

    #[test]
    fn a_terminal_shorter_than_its_version_needs() {
        // A UAC1-sized input terminal in a UAC2 interface.
        let d = [12, 0x24, 0x02, 1, 0x01, 0x01, 0, 2, 0x03, 0x00, 0, 0];
        let e = parse(0x20, &d).unwrap_err();
        assert_eq!((e.offset, e.kind), (40, ErrorKind::TooShort));
        assert_eq!(
            e.message,
            "UAC2 input terminal has bLength 12, its fields need 17"
        );
        let e = parse(0x00, &[8, 0x24, 0x03, 3, 0x01, 0x03, 0, 2]).unwrap_err();
        assert_eq!(
            e.message,
            "UAC1 output terminal has bLength 8, its fields need 9"
        );
    }
}
