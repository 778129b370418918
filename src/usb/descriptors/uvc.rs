//! USB Video Class descriptors: VideoControl and VideoStreaming, formats
//! and their frames.
//!
//! Owns the layouts of the UVC 1.1/1.5 class-specific interface
//! descriptors (UVC 1.5 §3.7, §3.9; the payload specs for the formats) and
//! naming format GUIDs. It is handed one descriptor at a time by `walk` and
//! must not walk the buffer itself, nor summarise.

use super::codes::TERMINAL_CAMERA;
use super::model::{
    AltSetting, ClassDescriptor, FrameIntervals, ParseError, UvcFormat, UvcFormatKind, UvcFrame,
    VideoDescriptor, Warning,
};
use super::read::{counted, dw, le_n, need, too_short, w};

/// The suffix of FourCC-based format GUIDs (XXXXXXXX-0000-0010-8000-00AA00389B71),
/// as stored little-endian after the four FourCC bytes.
const FOURCC_GUID_SUFFIX: [u8; 12] = [
    0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

/// A format GUID as a name: the FourCC ("YUY2", "NV12", "H264", ...) when it
/// is a FourCC GUID of printable characters, else the GUID in its usual form.
pub fn guid_name(g: &[u8; 16]) -> String {
    if g[4..] == FOURCC_GUID_SUFFIX && g[..4].iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        let s: String = g[..4].iter().map(|&c| c as char).collect();
        let s = s.trim_end().to_string();
        if !s.is_empty() {
            return s;
        }
    }
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        dw(g, 0),
        w(g, 4),
        w(g, 6),
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

pub(super) fn parse_video(
    a: &mut AltSetting,
    d: &[u8],
    p: usize,
    warnings: &mut Vec<Warning>,
    last_format: &mut Option<usize>,
) -> Result<(), ParseError> {
    need(d, p, 3, "video class-specific descriptor")?;
    let subtype = d[2];
    let push =
        |a: &mut AltSetting, v: VideoDescriptor| a.class_info.push(ClassDescriptor::Video(v));
    match a.subclass {
        // Video control.
        0x01 => match subtype {
            0x01 => {
                let n = counted(d, p, 11, 1, 0, "VC header")?;
                push(
                    a,
                    VideoDescriptor::Header {
                        offset: p,
                        bcd_uvc: w(d, 3),
                        total_length: w(d, 5),
                        clock_frequency: dw(d, 7),
                        stream_interfaces: d[12..12 + n].to_vec(),
                    },
                );
            }
            0x02 => {
                need(d, p, 8, "VC input terminal")?;
                let terminal_type = w(d, 4);
                let camera_controls = if terminal_type == TERMINAL_CAMERA {
                    let n = counted(d, p, 14, 1, 0, "camera terminal")?;
                    Some(le_n(d, 15, n))
                } else {
                    None
                };
                push(
                    a,
                    VideoDescriptor::InputTerminal {
                        offset: p,
                        id: d[3],
                        terminal_type,
                        camera_controls,
                    },
                );
            }
            0x03 => {
                need(d, p, 9, "VC output terminal")?;
                push(
                    a,
                    VideoDescriptor::OutputTerminal {
                        offset: p,
                        id: d[3],
                        terminal_type: w(d, 4),
                        source: d[7],
                    },
                );
            }
            0x05 => {
                // bControlSize, bmControls, then iProcessing.
                let n = counted(d, p, 7, 1, 1, "processing unit")?;
                push(
                    a,
                    VideoDescriptor::ProcessingUnit {
                        offset: p,
                        id: d[3],
                        source: d[4],
                        controls: le_n(d, 8, n),
                    },
                );
            }
            0x04 | 0x06 | 0x07 => {
                need(d, p, 4, "video unit")?;
                push(
                    a,
                    VideoDescriptor::Unit {
                        offset: p,
                        subtype,
                        id: d[3],
                    },
                );
            }
            _ => push(a, VideoDescriptor::Other { offset: p, subtype }),
        },
        // Video streaming.
        0x02 => match subtype {
            0x01 => {
                need(d, p, 13, "VS input header")?;
                let p_formats = d[3] as usize;
                let size = d[12] as usize;
                need(d, p, 13 + p_formats * size, "VS input header")?;
                push(
                    a,
                    VideoDescriptor::InputHeader {
                        offset: p,
                        num_formats: d[3],
                        endpoint: d[6],
                        terminal_link: d[8],
                    },
                );
            }
            0x04 | 0x10 => {
                let frame_based = subtype == 0x10;
                need(
                    d,
                    p,
                    if frame_based { 28 } else { 27 },
                    if frame_based {
                        "frame-based format"
                    } else {
                        "uncompressed format"
                    },
                )?;
                let mut guid = [0u8; 16];
                guid.copy_from_slice(&d[5..21]);
                push(
                    a,
                    VideoDescriptor::Format(UvcFormat {
                        offset: p,
                        kind: if frame_based {
                            UvcFormatKind::FrameBased
                        } else {
                            UvcFormatKind::Uncompressed
                        },
                        index: d[3],
                        num_frames: d[4],
                        name: guid_name(&guid),
                        guid: Some(guid),
                        bits_per_pixel: Some(d[21]),
                        frames: Vec::new(),
                    }),
                );
                *last_format = Some(a.class_info.len() - 1);
            }
            0x06 => {
                need(d, p, 11, "MJPEG format")?;
                push(
                    a,
                    VideoDescriptor::Format(UvcFormat {
                        offset: p,
                        kind: UvcFormatKind::Mjpeg,
                        index: d[3],
                        num_frames: d[4],
                        name: "MJPEG".into(),
                        guid: None,
                        bits_per_pixel: None,
                        frames: Vec::new(),
                    }),
                );
                *last_format = Some(a.class_info.len() - 1);
            }
            0x05 | 0x07 | 0x11 => {
                let frame = parse_frame(d, p, subtype == 0x11, warnings)?;
                let want = match subtype {
                    0x05 => UvcFormatKind::Uncompressed,
                    0x07 => UvcFormatKind::Mjpeg,
                    _ => UvcFormatKind::FrameBased,
                };
                let last =
                    last_format
                        .and_then(|i| a.class_info.get_mut(i))
                        .and_then(|c| match c {
                            ClassDescriptor::Video(VideoDescriptor::Format(f)) => Some(f),
                            _ => None,
                        });
                match last {
                    Some(f) => {
                        if f.kind != want {
                            warnings.push(Warning {
                                offset: p,
                                message: format!(
                                    "frame descriptor subtype 0x{subtype:02x} follows a {:?} format",
                                    f.kind
                                ),
                            });
                        }
                        f.frames.push(frame);
                    }
                    None => warnings.push(Warning {
                        offset: p,
                        message: "frame descriptor before any format descriptor: ignored".into(),
                    }),
                }
            }
            _ => push(a, VideoDescriptor::Other { offset: p, subtype }),
        },
        _ => push(a, VideoDescriptor::Other { offset: p, subtype }),
    }
    Ok(())
}

/// Uncompressed and MJPEG frames (UVC 1.5 §3.1.2 of the payload specs) and
/// frame-based frames share the interval layout from byte 26; they differ
/// in where the default interval and the interval type sit.
fn parse_frame(
    d: &[u8],
    p: usize,
    frame_based: bool,
    warnings: &mut Vec<Warning>,
) -> Result<UvcFrame, ParseError> {
    let what = if frame_based {
        "frame-based frame"
    } else {
        "video frame"
    };
    if d.len() < 26 {
        return too_short(p, what, d.len(), 26);
    }
    let (default_interval, n) = if frame_based {
        (dw(d, 17), d[21] as usize)
    } else {
        (dw(d, 21), d[25] as usize)
    };
    let intervals = if n == 0 {
        if d.len() < 38 {
            return too_short(p, &format!("{what} with continuous intervals"), d.len(), 38);
        }
        let (min, max, step) = (dw(d, 26), dw(d, 30), dw(d, 34));
        if min > max || min == 0 {
            warnings.push(Warning {
                offset: p + 26,
                message: format!(
                    "continuous frame intervals min {min} max {max} step {step} are odd"
                ),
            });
        }
        FrameIntervals::Continuous {
            min: min.min(max),
            max: max.max(min),
            step,
        }
    } else {
        let need = 26 + 4 * n;
        if d.len() < need {
            return too_short(p, what, d.len(), need);
        }
        let v: Vec<u32> = (0..n).map(|k| dw(d, 26 + 4 * k)).collect();
        if v.contains(&0) {
            warnings.push(Warning {
                offset: p + 26,
                message: "a frame interval of 0 (no frame rate)".into(),
            });
        }
        FrameIntervals::Discrete(v)
    };
    Ok(UvcFrame {
        offset: p,
        index: d[3],
        width: w(d, 5),
        height: w(d, 7),
        default_interval,
        intervals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_names() {
        let mut g = [0u8; 16];
        g[..4].copy_from_slice(b"YUY2");
        g[4..].copy_from_slice(&FOURCC_GUID_SUFFIX);
        assert_eq!(guid_name(&g), "YUY2");
        g[4] = 1;
        assert_eq!(guid_name(&g), "32595559-0001-0010-8000-00aa00389b71");
    }
}
