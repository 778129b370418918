//! Conformance checks: USB descriptors against requirements, and a control
//! port's replies against expected patterns.

use std::time::Duration;

use super::procedure::{Ctx, Measurement, RequirementResult, Shot};
use crate::profile::requirement::{Requirement, VideoFormat};
use crate::profile::Step;

/// Check every requirement of the step against what the device declares.
pub fn usb(step: &Step, ctx: &mut Ctx, m: &mut Measurement) -> Result<(), String> {
    let id = &ctx.station.identity;
    let c = &id.capabilities;
    for req in &step.params.requirements {
        let (met, evidence) = match req {
            Requirement::AudioPlayback => (
                c.audio_playback,
                if c.audio_playback {
                    "an audio streaming interface for playback (output terminal: speaker)"
                        .to_string()
                } else {
                    "no audio playback interface".to_string()
                },
            ),
            Requirement::AudioCapture => (
                c.audio_capture,
                if c.audio_capture {
                    "an audio streaming interface for capture (input terminal: microphone)"
                        .to_string()
                } else {
                    "no audio capture interface".to_string()
                },
            ),
            Requirement::SampleRate(hz) => {
                let p = c.playback_rates.contains(hz);
                let r = c.capture_rates.contains(hz);
                (
                    p && r,
                    format!(
                        "playback rates {:?} ({}), capture rates {:?} ({})",
                        c.playback_rates,
                        if p { "has it" } else { "lacks it" },
                        c.capture_rates,
                        if r { "has it" } else { "lacks it" }
                    ),
                )
            }
            Requirement::HidUsage(u) => {
                let found = c.hid_usages.contains(&(u.page, u.usage));
                (
                    found,
                    if found {
                        format!(
                            "usage 0x{:02x}:0x{:02x} declared in the HID report descriptor",
                            u.page, u.usage
                        )
                    } else {
                        format!(
                            "usage 0x{:02x}:0x{:02x} not declared; the HID usages are [{}]",
                            u.page,
                            u.usage,
                            c.hid_usages
                                .iter()
                                .map(|(p, u)| format!("0x{p:02x}:0x{u:02x}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                )
            }
            Requirement::VideoMode(v) => {
                let ok = |f: &str| {
                    v.formats.is_empty()
                        || v.formats
                            .iter()
                            .any(|x: &VideoFormat| x.name().eq_ignore_ascii_case(f))
                };
                let hit = c.video_modes.iter().find(|m| {
                    m.width == v.width
                        && m.height == v.height
                        && m.fps + 1e-6 >= v.fps as f64
                        && ok(&m.format)
                });
                let modes = c
                    .video_modes
                    .iter()
                    .map(|m| format!("{} {}x{}@{}", m.format, m.width, m.height, m.fps))
                    .collect::<Vec<_>>()
                    .join(", ");
                match hit {
                    Some(m) => (
                        true,
                        format!("offers {} {}x{}@{}", m.format, m.width, m.height, m.fps),
                    ),
                    None => (false, format!("no matching mode; the modes are [{modes}]")),
                }
            }
            Requirement::SerialNumber => (
                !id.serial.trim().is_empty(),
                if id.serial.trim().is_empty() {
                    "the serial number string is empty".to_string()
                } else {
                    format!("serial number {:?}", id.serial)
                },
            ),
        };
        m.requirements.push(RequirementResult {
            requirement: req.to_string(),
            met,
            evidence,
        });
    }
    (ctx.progress)(step.params.requirements.len() as u64);
    Ok(())
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
        m.shots.push(Shot {
            index: k as u32,
            emitted: sent,
            value_ms: value,
            uncertainty_ms: value.map(|_| 0.002),
            detail: evidence,
            station_fault: false,
        });
        (ctx.progress)(k as u64 + 1);
        if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}
