//! Conformance checks: USB descriptors against requirements, and a control
//! port's replies against expected patterns.
//!
//! Owns the evaluation of a profile's USB requirements against a parsed
//! device ([`evaluate`]: one verdict and its evidence per requirement, from
//! the descriptor fields), whether a device matches a profile
//! ([`profile_match`], used by `certlab devices`), and the two conformance
//! step kinds. It reads parsed descriptors; it never reads sysfs, writes
//! files, or judges statistics against limits.

use std::fmt::Write as _;
use std::time::Duration;

use super::ctx::Ctx;
use super::measurement::{Measurement, RequirementResult, Shot};
use crate::profile::requirement::{format_hid_usage, Requirement, VideoFormat};
use crate::profile::{DeviceClass, Profile, Step, StepKind};
use crate::usb::descriptors::{AudioDirection, AudioStream, AudioSummary};
use crate::usb::hid::{usage_name, FieldUsage, Usage};
use crate::usb::sysfs::UsbDevice;

/// Check every requirement of the step against the device's descriptors.
pub fn usb(step: &Step, ctx: &mut Ctx, m: &mut Measurement) -> Result<(), String> {
    let id = &ctx.station.identity;
    for req in &step.params.requirements {
        let r = match id.usb.as_deref() {
            Some(dev) => evaluate(req, dev),
            None => RequirementResult {
                requirement: req.to_string(),
                met: false,
                evidence: format!(
                    "no USB descriptors were read for {} (its identity names no USB device)",
                    id.spec
                ),
            },
        };
        m.requirements.push(r);
    }
    (ctx.progress)(step.params.requirements.len() as u64);
    Ok(())
}

/// Whether `dev` is a device `profile` is for: its class fits the
/// profile's device class (speakerphone and headset: audio playback and
/// capture; camera: video; room system: audio playback and capture, and
/// video), and every requirement of every `usb-conformance` step is met.
/// `Err` says why not.
pub fn profile_match(profile: &Profile, dev: &UsbDevice) -> Result<(), String> {
    class_fits(profile.device_class, dev)?;
    for step in profile
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::UsbConformance)
    {
        for req in &step.params.requirements {
            let r = evaluate(req, dev);
            if !r.met {
                return Err(format!("{}: {}", r.requirement, r.evidence));
            }
        }
    }
    Ok(())
}

/// The class check of [`profile_match`].
pub fn class_fits(class: DeviceClass, dev: &UsbDevice) -> Result<(), String> {
    let audio = dev.audio();
    let duplex = audio
        .as_ref()
        .map(|a| a.playback && a.capture)
        .unwrap_or(false);
    let video = dev.video().map(|v| !v.formats.is_empty()).unwrap_or(false);
    let (ok, need) = match class {
        DeviceClass::Speakerphone | DeviceClass::Headset => (duplex, "audio playback and capture"),
        DeviceClass::Camera => (video, "a video streaming format"),
        DeviceClass::RoomSystem => (duplex && video, "audio playback and capture, and video"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("a {} needs {need}", class.name()))
    }
}

/// One requirement against one device: met or not, and the descriptor
/// fields that show it (or why not).
pub fn evaluate(req: &Requirement, dev: &UsbDevice) -> RequirementResult {
    let (met, evidence) = match req {
        Requirement::AudioPlayback => direction(dev, AudioDirection::Playback),
        Requirement::AudioCapture => direction(dev, AudioDirection::Capture),
        Requirement::SampleRate(hz) => sample_rate(dev, *hz),
        Requirement::HidUsage(u) => hid_usage(dev, Usage::new(u.page, u.usage)),
        Requirement::VideoMode(v) => video_mode(dev, v),
        Requirement::SerialNumber => serial_number(dev),
    };
    RequirementResult {
        requirement: req.to_string(),
        met,
        evidence,
    }
}

/// Why a device has no summary of a kind: unparseable descriptors, or no
/// interface of the class.
fn absent(dev: &UsbDevice, what: &str) -> String {
    match &dev.descriptor_error {
        Some(e) => format!("the descriptors do not parse ({e}), so no {what} can be shown"),
        None if dev.descriptors.is_none() => {
            format!("the device has no descriptors file, so no {what} can be shown")
        }
        None => {
            let classes = dev.classes();
            format!(
                "the device has no {what} (its interface classes: {})",
                if classes.is_empty() {
                    "none".to_string()
                } else {
                    classes.join(", ")
                }
            )
        }
    }
}

fn dir_name(d: AudioDirection) -> &'static str {
    match d {
        AudioDirection::Playback => "playback",
        AudioDirection::Capture => "capture",
    }
}

/// "interface 1 alt 1: UAC1 format type I, 1 ch, 16 bit, 48000/16000 Hz (byte 0x5a)".
fn describe_stream(s: &AudioStream) -> String {
    let mut t = format!(
        "interface {} alt {}: UAC{} format type I",
        s.interface, s.alternate, s.uac
    );
    if let Some(c) = s.channels {
        let _ = write!(t, ", {c} ch");
    }
    let _ = write!(t, ", {} bit", s.bit_resolution);
    match (
        s.continuous_range,
        s.rates_from_clock,
        s.sample_rates.is_empty(),
    ) {
        (Some((lo, hi)), _, _) => {
            let _ = write!(t, ", continuous {lo}..{hi} Hz");
        }
        (None, Some(c), _) => {
            let _ = write!(
                t,
                ", {} Hz recorded from clock 0x{c:02x}'s RANGE reply (uac2_clock_rates)",
                join(&s.sample_rates, "/")
            );
        }
        (None, None, false) => {
            let _ = write!(t, ", {} Hz", join(&s.sample_rates, "/"));
        }
        (None, None, true) => t.push_str(", rates not in the descriptors"),
    }
    let _ = write!(t, " (format descriptor at byte 0x{:x})", s.format_offset);
    t
}

fn join(v: &[u32], sep: &str) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

fn streams_of(a: &AudioSummary, d: AudioDirection) -> Vec<&AudioStream> {
    a.streams
        .iter()
        .filter(|s| s.direction == Some(d))
        .collect()
}

fn direction(dev: &UsbDevice, d: AudioDirection) -> (bool, String) {
    let Some(a) = dev.audio() else {
        return (false, absent(dev, "audio interface"));
    };
    let present = match d {
        AudioDirection::Playback => a.playback,
        AudioDirection::Capture => a.capture,
    };
    let streams = streams_of(&a, d);
    if !present {
        let terminal = match d {
            AudioDirection::Playback => "USB streaming input terminal (host to device)",
            AudioDirection::Capture => "USB streaming output terminal (device to host)",
        };
        return (
            false,
            format!(
                "no audio {}: no {terminal} and no streaming interface linked to one",
                dir_name(d)
            ),
        );
    }
    if streams.is_empty() {
        return (
            true,
            format!(
                "a USB streaming terminal for {} is declared, but no streaming alternate setting with a format",
                dir_name(d)
            ),
        );
    }
    (
        true,
        streams
            .iter()
            .map(|s| describe_stream(s))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

fn sample_rate(dev: &UsbDevice, hz: u32) -> (bool, String) {
    let Some(a) = dev.audio() else {
        return (false, absent(dev, "audio interface"));
    };
    let mut parts = Vec::new();
    let mut met = true;
    let mut any = false;
    for d in [AudioDirection::Playback, AudioDirection::Capture] {
        let streams = streams_of(&a, d);
        if streams.is_empty() {
            continue;
        }
        any = true;
        match streams.iter().find(|s| s.sample_rates.contains(&hz)) {
            Some(s) => parts.push(format!("{}: {}", dir_name(d), describe_stream(s))),
            None => {
                met = false;
                let unknown: Vec<&&AudioStream> = streams
                    .iter()
                    .filter(|s| s.sample_rates.is_empty() && s.uac == 2)
                    .collect();
                if !unknown.is_empty() && unknown.len() == streams.len() {
                    let clocks: Vec<String> = unknown
                        .iter()
                        .filter_map(|s| s.clock_source)
                        .map(|c| format!("0x{c:02x}"))
                        .collect();
                    parts.push(format!(
                        "{}: {hz} Hz not declared in descriptors (UAC2: rates come from the clock source's RANGE request{}, which was not recorded)",
                        dir_name(d),
                        if clocks.is_empty() {
                            String::new()
                        } else {
                            format!(" to clock {}", clocks.join(", "))
                        }
                    ));
                } else {
                    let mut offered: Vec<u32> = streams
                        .iter()
                        .flat_map(|s| s.sample_rates.iter().copied())
                        .collect();
                    offered.sort_unstable();
                    offered.dedup();
                    parts.push(format!(
                        "{}: no stream offers {hz} Hz (offered: {} Hz)",
                        dir_name(d),
                        if offered.is_empty() {
                            "none".to_string()
                        } else {
                            join(&offered, ", ")
                        }
                    ));
                }
            }
        }
    }
    if !any {
        return (
            false,
            "no audio streaming interface with a format, so no sample rate is declared".into(),
        );
    }
    (met, parts.join("; "))
}

fn hid_usage(dev: &UsbDevice, u: Usage) -> (bool, String) {
    let label = match usage_name(u) {
        Some(n) => format!("{} ({n})", format_hid_usage(u.page, u.id)),
        None => format_hid_usage(u.page, u.id),
    };
    for h in &dev.hid {
        let Ok(r) = &h.report else { continue };
        let place = format!(
            "interface {} report descriptor ({}/{})",
            h.interface, h.interface_dir, h.node
        );
        for f in &r.fields {
            let (hit, how) = match &f.usage {
                FieldUsage::Variable(v) => (*v == u, "variable"),
                FieldUsage::Array(ranges) => (ranges.iter().any(|x| x.contains(u)), "array"),
                FieldUsage::None => (false, ""),
            };
            if hit {
                let kind = match f.kind {
                    crate::usb::hid::ReportKind::Input => "input",
                    crate::usb::hid::ReportKind::Output => "output",
                    crate::usb::hid::ReportKind::Feature => "feature",
                };
                let report = if f.report_id == 0 {
                    String::new()
                } else {
                    format!(" id {}", f.report_id)
                };
                return (
                    true,
                    format!(
                        "{label}: {place}, {kind} report{report}, bit {} ({} x {} bit, {how})",
                        f.bit_offset, f.count, f.bit_size
                    ),
                );
            }
        }
        if let Some(c) = r.collections.iter().find(|c| c.usage == Some(u)) {
            return (
                true,
                format!("{label}: {place}, collection at byte 0x{:x}", c.offset),
            );
        }
    }
    let declared = dev.hid_usages();
    if dev.hid.is_empty() {
        return (
            false,
            format!(
                "{label} not declared: {}",
                absent(dev, "HID report descriptor")
            ),
        );
    }
    (
        false,
        format!(
            "{label} not declared; the report descriptors declare [{}]",
            declared
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

fn video_mode(dev: &UsbDevice, v: &crate::profile::requirement::VideoMode) -> (bool, String) {
    let Some(video) = dev.video() else {
        return (false, absent(dev, "video interface"));
    };
    let ok = |f: &str| {
        v.formats.is_empty()
            || v.formats
                .iter()
                .any(|x: &VideoFormat| x.name().eq_ignore_ascii_case(f))
    };
    let wanted = if v.formats.is_empty() {
        "any format".to_string()
    } else {
        v.formats
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let mut slower = Vec::new();
    for f in video.formats.iter().filter(|f| ok(&f.format)) {
        for fr in f
            .frames
            .iter()
            .filter(|fr| u32::from(fr.width) == v.width && u32::from(fr.height) == v.height)
        {
            let best = fr.fps.iter().copied().fold(0.0f64, f64::max);
            if best + 1e-6 >= f64::from(v.fps) {
                return (
                    true,
                    format!(
                        "{} {}x{} at {} fps (frame descriptor at byte 0x{:x}; rates {:?})",
                        f.format, fr.width, fr.height, best, fr.offset, fr.fps
                    ),
                );
            }
            slower.push(format!("{} at most {best} fps", f.format));
        }
    }
    if !slower.is_empty() {
        return (
            false,
            format!(
                "{}x{} is offered in {wanted} only below {} fps: {}",
                v.width,
                v.height,
                v.fps,
                slower.join(", ")
            ),
        );
    }
    let offered: Vec<String> = video
        .formats
        .iter()
        .map(|f| {
            let sizes: Vec<String> = f
                .frames
                .iter()
                .map(|fr| format!("{}x{}", fr.width, fr.height))
                .collect();
            format!("{} {}", f.format, sizes.join(" "))
        })
        .collect();
    (
        false,
        format!(
            "no {}x{} frame in {wanted}; offered: {}",
            v.width,
            v.height,
            if offered.is_empty() {
                "no formats".to_string()
            } else {
                offered.join("; ")
            }
        ),
    )
}

fn serial_number(dev: &UsbDevice) -> (bool, String) {
    let index = dev.descriptors.as_ref().map(|d| d.device.i_serial);
    let serial = dev.identity.serial.trim();
    match (index, serial.is_empty()) {
        (Some(0), _) => (
            false,
            "iSerialNumber is 0 (device descriptor byte 16): the device declares no serial number"
                .into(),
        ),
        (_, true) => (
            false,
            format!(
                "the serial number string is empty{}",
                index
                    .map(|i| format!(" (iSerialNumber {i}, device descriptor byte 16)"))
                    .unwrap_or_default()
            ),
        ),
        (Some(i), false) => (
            true,
            format!("iSerialNumber {i} (device descriptor byte 16): {serial:?}"),
        ),
        (None, false) => (
            true,
            format!("serial {serial:?} (sysfs serial attribute; the descriptors did not parse)"),
        ),
    }
}

/// Send each command on the control port and check its reply and response time.
pub fn serial(step: &Step, ctx: &mut Ctx, m: &mut Measurement) -> Result<(), String> {
    let port = ctx
        .station
        .dut
        .control
        .as_mut()
        .ok_or("the device has no control port, which this step needs")?;
    let timeout = Duration::from_secs(2);
    for (k, cmd) in step.params.commands.iter().enumerate() {
        let re = regex::Regex::new(&format!("^(?:{})$", cmd.expect))
            .map_err(|e| format!("command {k}: bad expect pattern: {e}"))?;
        let sent = port.send_line(&cmd.send).map_err(|e| e.to_string())?;
        let reply = port.read_line(timeout).map_err(|e| e.to_string())?;
        let (met, evidence, value) = match &reply {
            Some((line, at)) => {
                let ms = at.secs_since(sent) * 1e3;
                (
                    re.is_match(line),
                    format!("reply {line:?} after {ms:.1} ms; expected /{}/", cmd.expect),
                    Some(ms),
                )
            }
            None => (
                false,
                format!("no reply within {} s", timeout.as_secs()),
                None,
            ),
        };
        m.requirements.push(RequirementResult {
            requirement: format!("{:?} answers /{}/", cmd.send, cmd.expect),
            met,
            evidence: evidence.clone(),
        });
        // The reply's stamp and the send's are both the host's: its clock's
        // resolution and the read's granularity are the uncertainty.
        m.shots.push(match value {
            Some(v) => Shot::measured(k as u32, sent, v, 0.002, evidence),
            None => Shot::missed_by_device(k as u32, sent, evidence),
        });
        (ctx.progress)(k as u64 + 1);
        if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usb::sysfs;
    use std::path::PathBuf;

    fn fixture(name: &str) -> UsbDevice {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/usb")
            .join(name);
        sysfs::scan(&root)
            .unwrap()
            .into_iter()
            .find(|d| !d.is_hub())
            .unwrap()
    }

    fn eval(req: &str, dev: &UsbDevice) -> RequirementResult {
        evaluate(&Requirement::parse(req).unwrap(), dev)
    }

    /// Evaluate `req` on `dev`, and assert that it is met or not as `met`
    /// says and that its evidence holds each of `says`.
    #[track_caller]
    fn expect(req: &str, dev: &UsbDevice, met: bool, says: &[&str]) -> RequirementResult {
        let r = eval(req, dev);
        assert_eq!(r.met, met, "{req}: {r:?}");
        for s in says {
            assert!(r.evidence.contains(s), "{req}: {s:?} not in {}", r.evidence);
        }
        r
    }

    /// Assert that the evidence begins with `text`.
    #[track_caller]
    fn begins(r: &RequirementResult, text: &str) {
        assert!(r.evidence.starts_with(text), "{}", r.evidence);
    }

    #[test]
    fn speakerphone_meets_its_requirements_with_descriptor_evidence() {
        let d = fixture("speakerphone-uac1");
        let r = expect("audio-playback", &d, true, &[]);
        begins(
            &r,
            "interface 1 alt 1: UAC1 format type I, 1 ch, 16 bit, 48000/16000 Hz (format descriptor at byte 0x",
        );
        expect(
            "sample-rate:48000",
            &d,
            true,
            &["playback: interface 1 alt 1", "capture: interface 2 alt 1"],
        );
        expect(
            "hid-hook-switch",
            &d,
            true,
            &[
                "0x0b:0x20 (hook-switch): interface 3",
                "input report id 1, bit 0",
            ],
        );
        expect("hid-mute-led", &d, true, &["output report id 2"]);
        expect("serial-number", &d, true, &["\"SP100-0001234\""]);
        expect(
            "sample-rate:44100",
            &d,
            false,
            &["playback: no stream offers 44100 Hz (offered: 16000, 48000 Hz)"],
        );
    }

    #[test]
    fn a_dongle_without_hid_fails_the_hid_requirements() {
        let d = fixture("dongle-uac1");
        expect(
            "hid-hook-switch",
            &d,
            false,
            &["0x0b:0x20 (hook-switch) not declared: the device has no HID report descriptor"],
        );
        // Its capture is a continuous range; playback lists only 44100/48000.
        expect("sample-rate:16000", &d, false, &[]);
        expect("audio-capture", &d, true, &["continuous 8000..48000 Hz"]);
    }

    #[test]
    fn uac2_rates_come_from_the_recorded_clock_or_are_not_declared() {
        let mut d = fixture("headset-uac2");
        expect("sample-rate:16000", &d, true, &["recorded from clock 0x10"]);
        d.uac2_clock_rates.clear();
        expect(
            "sample-rate:16000",
            &d,
            false,
            &["16000 Hz not declared in descriptors (UAC2: rates come from the clock source's RANGE request to clock 0x10"],
        );
    }

    #[test]
    fn camera_modes() {
        let d = fixture("camera-uvc");
        let r = expect("video-mode:1920x1080@30:MJPEG,H264", &d, true, &[]);
        begins(&r, "MJPEG 1920x1080 at 30 fps (frame descriptor at byte 0x");
        expect(
            "video-mode:1920x1080@60:MJPEG,H264",
            &d,
            false,
            &["1920x1080 is offered in MJPEG or H264 only below 60 fps"],
        );
        let r = expect("video-mode:3840x2160@30", &d, false, &[]);
        begins(
            &r,
            "no 3840x2160 frame in any format; offered: MJPEG 1920x1080",
        );
        expect(
            "audio-playback",
            &d,
            false,
            &["no audio interface (its interface classes: video)"],
        );
    }

    #[test]
    fn malformed_and_serial_less_devices_say_why() {
        let d = fixture("malformed-loop");
        expect(
            "audio-playback",
            &d,
            false,
            &["the descriptors do not parse (at byte 107"],
        );
        let mut d = fixture("speakerphone-uac1");
        d.identity.serial.clear();
        expect(
            "serial-number",
            &d,
            false,
            &["serial number string is empty"],
        );
    }

    #[test]
    fn profiles_match_by_class_and_requirements() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let load = |id: &str| Profile::load(&dir.join(format!("{id}.toml"))).unwrap();
        let (sp, hs, cam, rs) = (
            load("speakerphone"),
            load("headset"),
            load("camera"),
            load("room-system"),
        );
        let spk = fixture("speakerphone-uac1");
        assert!(profile_match(&sp, &spk).is_ok());
        assert!(profile_match(&cam, &spk)
            .unwrap_err()
            .contains("a camera needs"));
        assert!(profile_match(&rs, &spk).is_err());
        let dongle = fixture("dongle-uac1");
        let e = profile_match(&sp, &dongle).unwrap_err();
        assert!(e.starts_with("hid-hook-switch:"), "{e}");
        assert!(profile_match(&hs, &fixture("headset-uac2")).is_ok());
        assert!(profile_match(&cam, &fixture("camera-uvc")).is_ok());
        let bar = fixture("videobar");
        assert!(profile_match(&rs, &bar).is_ok());
        let e = profile_match(&sp, &fixture("speakerphone-nomute")).unwrap_err();
        assert!(e.starts_with("hid-phone-mute:"), "{e}");
    }
}
