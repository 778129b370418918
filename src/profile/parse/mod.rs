//! The profile schema: what a profile's keys mean, checked with a position
//! for every problem.
//!
//! The TOML is read into a spanned tree (`toml::de::DeTable`) and walked by
//! hand with `profile::spanned`, so that every problem — unknown keys, wrong
//! types, missing keys, bad units, rule violations — is collected (not just
//! the first) with the byte span of the offending key or value. This file
//! owns the top level of a profile; [`step`] the steps and their parameters
//! per kind; [`limits`] their limits. The schema is documented for lab
//! engineers in `docs/profiles.md`; keep the two in step. It must not read
//! positions or values other than through `profile::spanned`, nor load files.

mod limits;
mod step;

use std::collections::HashMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use toml::de::DeTable;

use super::model::{DeviceClass, Profile};
use super::spanned::{finish, int_value, Cx, Diagnostic, Span, Tbl};
use step::{ident, parse_step};

pub use step::kind_keys;

/// The profile format this parser reads.
pub const FORMAT: i64 = 1;

const TOP_KEYS: &[&str] = &[
    "format",
    "id",
    "version",
    "program",
    "device_class",
    "title",
    "description",
    "calibration_max_age_days",
    "steps",
];

fn is_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 9 && p.chars().all(|c| c.is_ascii_digit()))
}

/// Parse and validate a profile. On failure, every problem found, in source order.
pub fn parse_profile(text: &str) -> Result<Profile, Vec<Diagnostic>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let mut diags: Vec<Diagnostic> = errors
            .iter()
            .map(|e| Diagnostic {
                span: e.span().unwrap_or(0..0),
                message: format!("TOML syntax error: {}", e.message().trim_end()),
            })
            .collect();
        finish(&mut diags);
        return Err(diags);
    }
    let mut cx = Cx::default();
    let top = Tbl {
        t: root.get_ref(),
        span: 0..0,
        loc: "at the top level".into(),
    };
    cx.unknown_keys(&top, TOP_KEYS, "profiles");

    let format = match top.get("format") {
        None => {
            cx.missing(&top, "format", " (write `format = 1` as the first line)");
            FORMAT
        }
        Some(v) => {
            match int_value(v.get_ref()) {
                Some(Some(FORMAT)) => FORMAT,
                Some(_) => {
                    cx.err(
                    v.span(),
                    format!("profile format {} is not supported; this certlab reads format = {FORMAT}", v.get_ref().as_integer().map(|i| i.to_string()).unwrap_or_default()),
                );
                    FORMAT
                }
                None => {
                    cx.wrong_type(&top, "format", v, "the integer 1");
                    FORMAT
                }
            }
        }
    };
    let id = ident(&mut cx, &top, "id", " (e.g. id = \"speakerphone\")");
    let version = match cx.req_string(&top, "version", " (e.g. version = \"1.0.0\")") {
        Some((v, span)) => {
            if !is_version(v) {
                cx.err(
                    span,
                    format!("`version` {v:?} must be MAJOR.MINOR.PATCH, e.g. \"1.0.0\""),
                );
            }
            v.to_string()
        }
        None => String::new(),
    };
    let program = ident(
        &mut cx,
        &top,
        "program",
        " (e.g. program = \"teams-usb-audio\")",
    );
    let names: Vec<&str> = DeviceClass::ALL.iter().map(|c| c.name()).collect();
    let device_class = cx.req_choice(
        &top,
        "device_class",
        &names,
        DeviceClass::parse,
        |s, hint| {
            format!(
                "unknown device_class {s:?}{hint}; use one of {}",
                names.join(", ")
            )
        },
    );
    let title = match cx.req_string(&top, "title", " (a one-line name for reports)") {
        Some((s, span)) => {
            if s.trim().is_empty() {
                cx.err(span, "`title` at the top level must not be empty");
            }
            s.to_string()
        }
        None => String::new(),
    };
    let description = cx
        .string(&top, "description")
        .map(|(s, _)| s.to_string())
        .unwrap_or_default();
    let calibration_max_age_days = cx
        .num_in(&top, "calibration_max_age_days", 0.0, true, 3650.0, " days")
        .map(|(d, _)| d);

    let mut steps = Vec::new();
    match cx.tables(&top, "steps", "[[steps]]") {
        None => {
            if top.get("steps").is_none() {
                cx.missing(&top, "steps", " (add at least one [[steps]] table)");
            }
        }
        Some((tables, span)) => {
            if tables.is_empty() {
                cx.err(span, "`steps` is empty; a profile needs at least one step");
            }
            let mut seen: HashMap<String, Span> = HashMap::new();
            for (i, (t, span)) in tables.into_iter().enumerate() {
                if let Some(step) = parse_step(&mut cx, i, t, span, &mut seen) {
                    steps.push(step);
                }
            }
        }
    }

    if !cx.diags.is_empty() {
        finish(&mut cx.diags);
        return Err(cx.diags);
    }
    Ok(Profile {
        format: format as u32,
        id,
        version,
        program,
        device_class: device_class.unwrap_or(DeviceClass::Speakerphone),
        title,
        description,
        calibration_max_age_days,
        steps,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        source: PathBuf::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::profile::model::{Params, StepKind, Unit};

    const GOOD: &str = r#"format = 1
id = "t"
version = "1.0.0"
program = "teams-usb-audio"
device_class = "speakerphone"
title = "T"

[[steps]]
id = "send"
kind = "audio-send-latency"
limits = [{ statistic = "median", max = 60, unit = "ms", marginal = 5.0 }]

[[steps]]
id = "usb"
kind = "usb-conformance"
requirements = ["audio-playback", "hid-usage:0X0B:0x20"]

[[steps]]
id = "hid"
kind = "button-hid-latency"
hid_usage = "0x0B:0x2F"
[[steps.limits]]
statistic = "p95"
min = 1
max = 80.5
unit = "us"
"#;

    fn errs(text: &str) -> Vec<String> {
        match parse_profile(text) {
            Ok(_) => panic!("expected errors"),
            Err(d) => d
                .iter()
                .map(|d| d.render(Path::new("p.toml"), text))
                .collect(),
        }
    }

    #[test]
    fn defaults_are_filled() {
        let p = parse_profile(GOOD).unwrap();
        assert_eq!(p.steps.len(), 3);
        let s = &p.steps[0];
        assert_eq!(s.title, "send");
        assert_eq!(s.params, Params::defaults(StepKind::AudioSendLatency));
        assert_eq!(s.params.interval_ms, 300.0);
        assert_eq!(s.params.max_latency_ms, 200.0);
        assert_eq!(s.params.max_missed, 3);
        assert_eq!(s.limits[0].max, Some(60.0));
        assert_eq!(s.limits[0].marginal, Some(5.0));
        assert_eq!(
            p.steps[1].params.requirements[1].to_string(),
            "hid-usage:0x0b:0x20"
        );
        assert!(p.steps[1].limits.is_empty());
        let h = &p.steps[2];
        assert_eq!(h.params.hid_usage, "0x0b:0x2f");
        assert_eq!(h.params.interval_ms, 250.0);
        assert_eq!(h.limits[0].unit, Unit::Us);
        assert_eq!(h.limits[0].min, Some(1.0));
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let text = GOOD.replace(
            "kind = \"audio-send-latency\"",
            "kind = \"audio-send-latency\"\nshot = 5",
        );
        let e = errs(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("p.toml:11:1: unknown key `shot` in step `send` (did you mean `shots`?); audio-send-latency steps take: id, kind,"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn missing_step_id_points_at_header() {
        let text = GOOD.replace("id = \"usb\"\n", "");
        let e = errs(&text);
        assert_eq!(
            e,
            vec!["p.toml:13:1: missing required key `id` in step 2 (e.g. id = \"send-latency\")"]
        );
    }

    /// Both forms of the overlap rule, each at the first key the step sets.
    #[test]
    fn shots_must_not_overlap() {
        let head = "format = 1\nid = \"t\"\nversion = \"1.0.0\"\nprogram = \"p\"\ndevice_class = \"camera\"\ntitle = \"T\"\n";
        let limit = "limits = [{ statistic = \"median\", max = 60, unit = \"ms\" }]\n";
        let e = errs(&format!(
            "{head}[[steps]]\nid = \"v\"\nkind = \"video-latency\"\ninterval_ms = 100\n{limit}"
        ));
        assert_eq!(
            e,
            vec!["p.toml:10:15: shots overlap in step `v`: interval_ms (100 ms) must be at least max_latency_ms (300 ms)"]
        );
        let e = errs(&format!(
            "{head}[[steps]]\nid = \"a\"\nkind = \"audio-send-latency\"\nstimulus_ms = 250\n{limit}"
        ));
        assert_eq!(
            e,
            vec!["p.toml:10:15: shots overlap in step `a`: interval_ms (300 ms) must be at least stimulus_ms + max_latency_ms (250 + 200 = 450 ms)"]
        );
    }

    #[test]
    fn structural_mistakes() {
        let head = "format = 1\nid = \"t\"\nversion = \"1\"\nprogram = \"p\"\ndevice_class = \"phone\"\ntitle = \"T\"\n";
        let e = errs(&format!("{head}[steps]\nid = \"x\"\n"));
        assert_eq!(
            e,
            vec![
                "p.toml:3:11: `version` \"1\" must be MAJOR.MINOR.PATCH, e.g. \"1.0.0\"",
                "p.toml:5:16: unknown device_class \"phone\"; use one of speakerphone, headset, camera, room-system",
                "p.toml:7:1: `steps` at the top level must be an array of tables ([[steps]] or steps = [{...}]), not a table",
            ]
        );
        let e = errs(&format!(
            "{head}[[steps]]\nid = \"a\"\nkind = \"video-latency\"\nshots = 30.0\nstimulus = \"noise\"\n[steps.limits]\nstatistic = \"median\"\n"
        ));
        let all = e.join("\n");
        assert!(
            all.contains(
                "p.toml:10:9: `shots` in step `a` must be a whole number (integer), not a float"
            ),
            "{all}"
        );
        assert!(
            all.contains(
                "p.toml:11:1: unknown key `stimulus` in step `a`; video-latency steps take:"
            ),
            "{all}"
        );
        assert!(
            all.contains("p.toml:12:1: `limits` in step `a` must be an array of tables"),
            "{all}"
        );
        let e = errs(&format!("{head}[[steps]]\nid = \"b\"\ntimeout_s = 0\n"));
        let all = e.join("\n");
        assert!(
            all.contains(
                "p.toml:7:1: missing required key `kind` in step `b` (one of audio-send-latency,"
            ),
            "{all}"
        );
        assert!(all.contains("p.toml:9:13: `timeout_s` in step `b` is 0 s; it must be more than 0 and at most 86400 s"), "{all}");
        let e = errs(&format!(
            "{head}[[steps]]\nid = \"c\"\nkind = \"serial-conformance\"\ncommands = []\n[[steps]]\nid = \"d\"\nkind = \"audio-send-latency\"\nshots = 1000\nmax_missed = 2000\n"
        ));
        let all = e.join("\n");
        assert!(
            all.contains("p.toml:10:12: `commands` in step `c` is empty"),
            "{all}"
        );
        assert!(
            all.contains("p.toml:11:1: step `d` (audio-send-latency) has no limits; latency steps need at least one"),
            "{all}"
        );
        assert!(all.contains("p.toml:14:9: 1000 shots every 300 ms take 300 s, longer than the step's timeout_s (120 s)"), "{all}");
        assert!(
            all.contains(
                "p.toml:15:14: `max_missed` in step `d` is 2000, more than the 1000 shots"
            ),
            "{all}"
        );
    }
}
