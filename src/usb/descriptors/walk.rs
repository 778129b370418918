//! The walk: a `descriptors` buffer, descriptor by descriptor, into the
//! model.
//!
//! Owns the structure of the buffer — the device descriptor, then each
//! configuration of wTotalLength bytes with everything nested in it — and
//! where each descriptor belongs: interface associations, interfaces and
//! their alternate settings, endpoints and their class-specific
//! descriptors, the HID class descriptor; audio and video class-specific
//! descriptors go to `uac` and `uvc`. It checks every length before it
//! reads and advances by at least two bytes a descriptor, so it never
//! panics and never loops. It must not summarise (that is `summary`).

use std::collections::BTreeSet;

use super::codes::{class, desc_type};
use super::model::{
    AltSetting, ClassDescriptor, Configuration, Descriptors, DeviceDescriptor, Endpoint, ErrorKind,
    HidClassDescriptor, Interface, InterfaceAssociation, ParseError, VideoDescriptor, Warning,
};
use super::read::{b, counted, fail, need, raw, w};
use super::uac::parse_audio;
use super::uvc::parse_video;

/// Parse a `descriptors` buffer: the device descriptor followed by
/// bNumConfigurations configuration descriptors of wTotalLength bytes each.
pub fn parse(data: &[u8]) -> Result<Descriptors, ParseError> {
    let mut warnings = Vec::new();
    if data.is_empty() {
        return fail(
            0,
            ErrorKind::Truncated,
            "no data: the device descriptor is missing",
        );
    }
    let len0 = data[0];
    if len0 < 2 {
        return fail(
            0,
            ErrorKind::Loop,
            format!("device descriptor bLength is {len0}"),
        );
    }
    if data.len() < 2 {
        return fail(
            1,
            ErrorKind::Truncated,
            "the data ends inside the device descriptor",
        );
    }
    if data[1] != desc_type::DEVICE {
        return fail(
            1,
            ErrorKind::WrongType,
            format!(
                "expected a device descriptor (type 0x01), found type 0x{:02x}",
                data[1]
            ),
        );
    }
    if len0 != 18 {
        return fail(
            0,
            ErrorKind::Inconsistent,
            format!("device descriptor bLength is {len0}, must be 18"),
        );
    }
    if data.len() < 18 {
        return fail(
            data.len(),
            ErrorKind::Truncated,
            format!(
                "the device descriptor needs 18 bytes, the data has {}",
                data.len()
            ),
        );
    }
    let device = DeviceDescriptor {
        bcd_usb: w(data, 2),
        class: data[4],
        subclass: data[5],
        protocol: data[6],
        max_packet_size0: data[7],
        vendor_id: w(data, 8),
        product_id: w(data, 10),
        bcd_device: w(data, 12),
        i_manufacturer: data[14],
        i_product: data[15],
        i_serial: data[16],
        num_configurations: data[17],
    };
    if device.num_configurations == 0 {
        warnings.push(Warning {
            offset: 17,
            message: "bNumConfigurations is 0".into(),
        });
    }
    let mut pos = 18usize;
    let mut configurations = Vec::new();
    for n in 0..device.num_configurations {
        if pos >= data.len() {
            return fail(
                pos,
                ErrorKind::Truncated,
                format!(
                    "bNumConfigurations is {} but the data ends after {n} configuration(s)",
                    device.num_configurations
                ),
            );
        }
        let (cfg, end) = parse_configuration(data, pos, &mut warnings)?;
        configurations.push(cfg);
        pos = end;
    }
    if pos < data.len() {
        return fail(
            pos,
            ErrorKind::TrailingBytes,
            format!(
                "{} byte(s) after the last of {} configuration(s)",
                data.len() - pos,
                device.num_configurations
            ),
        );
    }
    Ok(Descriptors {
        device,
        configurations,
        warnings,
    })
}

/// Where the walk is inside a configuration.
struct Cursor {
    /// (index into interfaces, index into alt_settings).
    alt: Option<(usize, usize)>,
    endpoint: Option<usize>,
    /// Index in the current alt setting's class_info of the last video format.
    last_format: Option<usize>,
    /// (interface, alternate) pairs seen in this configuration.
    seen: BTreeSet<(u8, u8)>,
}

/// `Ok` when the configuration descriptor at `start` (its bytes on, `rest`)
/// declares at least `min` bytes and the data holds that many; else the
/// `kind` error `short` at its bLength, or the data's truncation.
fn config_holds(
    rest: &[u8],
    start: usize,
    min: usize,
    kind: ErrorKind,
    short: String,
) -> Result<(), ParseError> {
    if (b(rest, 0) as usize) < min {
        return fail(start, kind, short);
    }
    if rest.len() < min {
        return fail(
            start + rest.len(),
            ErrorKind::Truncated,
            "the data ends inside a configuration descriptor",
        );
    }
    Ok(())
}

fn parse_configuration(
    data: &[u8],
    start: usize,
    warnings: &mut Vec<Warning>,
) -> Result<(Configuration, usize), ParseError> {
    let rest = &data[start..];
    let blen = b(rest, 0) as usize;
    // bLength and bDescriptorType first, so that a wrong type is named as one.
    config_holds(
        rest,
        start,
        2,
        ErrorKind::Loop,
        format!("configuration descriptor bLength is {blen}"),
    )?;
    if rest[1] != desc_type::CONFIGURATION {
        return fail(
            start + 1,
            ErrorKind::WrongType,
            format!(
                "expected a configuration descriptor (type 0x02), found type 0x{:02x}",
                rest[1]
            ),
        );
    }
    config_holds(
        rest,
        start,
        9,
        ErrorKind::TooShort,
        format!("configuration descriptor bLength is {blen}, needs 9"),
    )?;
    let total = w(rest, 2) as usize;
    if total < blen {
        return fail(
            start + 2,
            ErrorKind::Inconsistent,
            format!("wTotalLength {total} is shorter than the configuration descriptor ({blen})"),
        );
    }
    if total > rest.len() {
        return fail(
            start + 2,
            ErrorKind::Truncated,
            format!(
                "wTotalLength says {total} bytes but only {} remain (truncated, or wTotalLength lies)",
                rest.len()
            ),
        );
    }
    let end = start + total;
    let mut cfg = Configuration {
        offset: start,
        total_length: total as u16,
        num_interfaces: rest[4],
        value: rest[5],
        i_configuration: rest[6],
        attributes: rest[7],
        max_power: rest[8],
        associations: Vec::new(),
        interfaces: Vec::new(),
        extra: Vec::new(),
    };
    let mut cur = Cursor {
        alt: None,
        endpoint: None,
        last_format: None,
        seen: BTreeSet::new(),
    };
    let mut p = start + blen;
    while p < end {
        let dlen = data[p] as usize;
        if dlen < 2 {
            return fail(
                p,
                ErrorKind::Loop,
                format!("descriptor bLength is {dlen}: the walk would not advance"),
            );
        }
        if p + dlen > end {
            return fail(
                p,
                ErrorKind::Overrun,
                format!(
                    "descriptor of type 0x{:02x} with bLength {dlen} runs {} byte(s) past the end \
                     of the configuration at byte {end} (wTotalLength {total})",
                    b(data, p + 1),
                    p + dlen - end
                ),
            );
        }
        let d = &data[p..p + dlen];
        walk_descriptor(&mut cfg, &mut cur, d, p, start, warnings)?;
        p += dlen;
    }

    // Counts.
    let n_if = cfg.interfaces.len();
    if n_if != cfg.num_interfaces as usize {
        return fail(
            start + 4,
            ErrorKind::Inconsistent,
            format!(
                "bNumInterfaces is {} but the configuration has {n_if} interface(s)",
                cfg.num_interfaces
            ),
        );
    }
    for a in cfg.interfaces.iter().flat_map(|i| i.alt_settings.iter()) {
        if a.endpoints.len() != a.num_endpoints as usize {
            warnings.push(Warning {
                offset: a.offset + 4,
                message: format!(
                    "interface {} alt {}: bNumEndpoints is {} but {} endpoint descriptor(s) follow",
                    a.interface,
                    a.alternate,
                    a.num_endpoints,
                    a.endpoints.len()
                ),
            });
        }
        for c in &a.class_info {
            if let ClassDescriptor::Video(VideoDescriptor::Format(f)) = c {
                if f.frames.len() != f.num_frames as usize {
                    warnings.push(Warning {
                        offset: f.offset,
                        message: format!(
                            "format {} ({}): bNumFrameDescriptors is {} but {} frame descriptor(s) follow",
                            f.index,
                            f.name,
                            f.num_frames,
                            f.frames.len()
                        ),
                    });
                }
            }
        }
    }
    Ok((cfg, end))
}

fn walk_descriptor(
    cfg: &mut Configuration,
    cur: &mut Cursor,
    d: &[u8],
    p: usize,
    cfg_start: usize,
    warnings: &mut Vec<Warning>,
) -> Result<(), ParseError> {
    let dtype = d[1];
    match dtype {
        desc_type::DEVICE | desc_type::CONFIGURATION => {
            return fail(
                p,
                ErrorKind::Inconsistent,
                format!(
                    "a {} descriptor inside the configuration at byte {cfg_start} \
                     (its wTotalLength runs over into the next one?)",
                    if dtype == desc_type::DEVICE {
                        "device"
                    } else {
                        "configuration"
                    }
                ),
            );
        }
        desc_type::INTERFACE_ASSOCIATION => {
            need(d, p, 8, "interface association descriptor")?;
            cfg.associations.push(InterfaceAssociation {
                offset: p,
                first_interface: d[2],
                interface_count: d[3],
                class: d[4],
                subclass: d[5],
                protocol: d[6],
                i_function: d[7],
            });
            cur.alt = None;
            cur.endpoint = None;
            cur.last_format = None;
        }
        desc_type::INTERFACE => {
            need(d, p, 9, "interface descriptor")?;
            let alt = AltSetting {
                offset: p,
                interface: d[2],
                alternate: d[3],
                num_endpoints: d[4],
                class: d[5],
                subclass: d[6],
                protocol: d[7],
                i_interface: d[8],
                class_info: Vec::new(),
                endpoints: Vec::new(),
                extra: Vec::new(),
            };
            let ii = match cfg
                .interfaces
                .iter()
                .position(|i| i.number == alt.interface)
            {
                Some(ii) => ii,
                None => {
                    cfg.interfaces.push(Interface {
                        number: alt.interface,
                        alt_settings: Vec::new(),
                    });
                    cfg.interfaces.len() - 1
                }
            };
            if !cur.seen.insert((alt.interface, alt.alternate)) {
                warnings.push(Warning {
                    offset: p,
                    message: format!(
                        "interface {} alternate setting {} appears twice",
                        alt.interface, alt.alternate
                    ),
                });
            }
            cfg.interfaces[ii].alt_settings.push(alt);
            cur.alt = Some((ii, cfg.interfaces[ii].alt_settings.len() - 1));
            cur.endpoint = None;
            cur.last_format = None;
        }
        desc_type::ENDPOINT => {
            need(d, p, 7, "endpoint descriptor")?;
            let ep = Endpoint {
                offset: p,
                address: d[2],
                attributes: d[3],
                max_packet_size: w(d, 4),
                interval: d[6],
                extra: Vec::new(),
            };
            match alt_mut(cfg, cur) {
                Some(a) => {
                    a.endpoints.push(ep);
                    cur.endpoint = Some(a.endpoints.len() - 1);
                }
                None => {
                    warnings.push(Warning {
                        offset: p,
                        message: "endpoint descriptor outside any interface".into(),
                    });
                    cfg.extra.push(raw(d, p));
                }
            }
        }
        desc_type::CS_ENDPOINT => {
            let ep = cur.endpoint;
            match alt_mut(cfg, cur) {
                Some(a) => match ep.and_then(|i| a.endpoints.get_mut(i)) {
                    Some(e) => e.extra.push(raw(d, p)),
                    None => a.extra.push(raw(d, p)),
                },
                None => cfg.extra.push(raw(d, p)),
            }
        }
        _ => {
            let Some(a) = alt_mut(cfg, cur) else {
                if dtype == desc_type::CS_INTERFACE {
                    warnings.push(Warning {
                        offset: p,
                        message: "class-specific interface descriptor outside any interface".into(),
                    });
                }
                cfg.extra.push(raw(d, p));
                return Ok(());
            };
            // Class-specific descriptors after an endpoint belong to the
            // interface still (UVC puts none there, UAC neither); keep them
            // with the interface.
            match (dtype, a.class) {
                (desc_type::CS_INTERFACE, class::AUDIO) => {
                    if let Some(c) = parse_audio(a, d, p, warnings)? {
                        a.class_info.push(ClassDescriptor::Audio(c));
                    }
                }
                (desc_type::CS_INTERFACE, class::VIDEO) => {
                    parse_video(a, d, p, warnings, &mut cur.last_format)?
                }
                (desc_type::HID, class::HID) => {
                    // bNumDescriptors, then (bDescriptorType, wDescriptorLength) each.
                    let n = counted(d, p, 5, 3, 0, "HID descriptor")?;
                    if n == 0 {
                        warnings.push(Warning {
                            offset: p + 5,
                            message:
                                "HID descriptor lists no class descriptors (bNumDescriptors 0)"
                                    .into(),
                        });
                    }
                    let descriptors = (0..n).map(|k| (d[6 + 3 * k], w(d, 7 + 3 * k))).collect();
                    a.class_info.push(ClassDescriptor::Hid(HidClassDescriptor {
                        offset: p,
                        bcd_hid: w(d, 2),
                        country_code: d[4],
                        descriptors,
                    }));
                }
                _ => a.extra.push(raw(d, p)),
            }
        }
    }
    Ok(())
}

fn alt_mut<'a>(cfg: &'a mut Configuration, cur: &Cursor) -> Option<&'a mut AltSetting> {
    let (i, j) = cur.alt?;
    cfg.interfaces.get_mut(i)?.alt_settings.get_mut(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_loops() {
        assert_eq!(parse(&[]).unwrap_err().kind, ErrorKind::Truncated);
        assert_eq!(parse(&[0]).unwrap_err().kind, ErrorKind::Loop);
        let mut dev = vec![18, 1, 0, 2, 0, 0, 0, 64, 9, 18, 1, 0, 0, 1, 1, 2, 3, 1];
        dev.extend([9, 2, 11, 0, 0, 1, 0, 0x80, 50, 0, 4]);
        let e = parse(&dev).unwrap_err();
        assert_eq!((e.offset, e.kind), (27, ErrorKind::Loop));
    }
}
