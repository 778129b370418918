//! The steps of a profile: their common keys, and the parameters and keys
//! of each step kind, with their defaults.
//!
//! Owns what a `[[steps]]` table may hold and what it means; its limits are
//! `limits`'s. It must not read positions or values other than through
//! `profile::spanned`, and knows nothing of the top level of a profile.

use std::collections::HashMap;

use toml::de::{DeTable, DeValue};

use super::limits::parse_limits;
use crate::profile::model::{Params, SerialCommand, Step, StepKind, StimulusKind};
use crate::profile::requirement::{format_hid_usage, parse_hid_usage, Requirement};
use crate::profile::spanned::{a_type, num_value, Cx, Span, Tbl};

const COMMON_STEP_KEYS: &[&str] = &["id", "kind", "title", "timeout_s", "limits"];
const AUDIO_KEYS: &[&str] = &[
    "shots",
    "interval_ms",
    "stimulus",
    "stimulus_ms",
    "sample_rate",
    "max_latency_ms",
    "max_missed",
];
const VIDEO_KEYS: &[&str] = &[
    "shots",
    "interval_ms",
    "max_latency_ms",
    "max_missed",
    "led_roi",
];
const HID_KEYS: &[&str] = &[
    "shots",
    "interval_ms",
    "max_latency_ms",
    "max_missed",
    "hid_usage",
];
const USB_KEYS: &[&str] = &["requirements"];
const SERIAL_KEYS: &[&str] = &["commands", "baud"];
const COMMAND_KEYS: &[&str] = &["send", "expect"];

/// The keys a step of `kind` accepts besides the common ones.
pub fn kind_keys(kind: StepKind) -> &'static [&'static str] {
    match kind {
        StepKind::AudioSendLatency
        | StepKind::AudioReceiveLatency
        | StepKind::AudioRoundtripLatency => AUDIO_KEYS,
        StepKind::VideoLatency => VIDEO_KEYS,
        StepKind::ButtonHidLatency => HID_KEYS,
        StepKind::UsbConformance => USB_KEYS,
        StepKind::SerialConformance => SERIAL_KEYS,
    }
}

fn is_audio(kind: StepKind) -> bool {
    matches!(
        kind,
        StepKind::AudioSendLatency
            | StepKind::AudioReceiveLatency
            | StepKind::AudioRoundtripLatency
    )
}

impl Params {
    /// The parameters a step of `kind` gets when its file sets none
    /// (every field is filled, including those the kind does not use).
    pub fn defaults(kind: StepKind) -> Params {
        let (interval_ms, max_latency_ms) = match kind {
            StepKind::VideoLatency => (500.0, 300.0),
            StepKind::ButtonHidLatency => (250.0, 100.0),
            _ => (300.0, 200.0),
        };
        Params {
            shots: 30,
            interval_ms,
            stimulus: StimulusKind::Noise,
            stimulus_ms: 100.0,
            sample_rate: 48_000,
            max_latency_ms,
            max_missed: 3,
            hid_usage: "0x0b:0x20".into(),
            led_roi: [0.0, 0.0, 1.0, 1.0],
            requirements: Vec::new(),
            commands: Vec::new(),
            baud: 115_200,
            timeout_s: 120.0,
        }
    }
}

/// An identifier: `[a-z0-9][a-z0-9-]*`.
fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A required identifier `[a-z0-9][a-z0-9-]*`.
pub(super) fn ident(cx: &mut Cx, t: &Tbl<'_, '_>, key: &str, hint: &str) -> String {
    match cx.req_string(t, key, hint) {
        Some((s, span)) => {
            if !is_ident(s) {
                cx.err(
                    span,
                    format!(
                        "`{key}` {s:?} {} must be lowercase letters, digits and dashes, \
                         starting with a letter or digit",
                        t.loc
                    ),
                );
            }
            s.to_string()
        }
        None => String::new(),
    }
}

pub(super) fn parse_step(
    cx: &mut Cx,
    index: usize,
    table: &DeTable<'_>,
    span: Span,
    seen: &mut HashMap<String, Span>,
) -> Option<Step> {
    let mut t = Tbl {
        t: table,
        span,
        loc: format!("in step {}", index + 1),
    };
    let n_before = cx.diags.len();

    let id = ident(cx, &t, "id", " (e.g. id = \"send-latency\")");
    if !id.is_empty() && is_ident(&id) {
        let id_span = t.get("id").map(|v| v.span()).unwrap_or(t.span.clone());
        if seen.contains_key(&id) {
            cx.err(
                id_span,
                format!(
                    "duplicate step id `{id}`; each step's id must be unique within the profile"
                ),
            );
        } else {
            seen.insert(id.clone(), id_span);
        }
        t.loc = format!("in step `{id}`");
    }

    let kind_names: Vec<&str> = StepKind::ALL.iter().map(|k| k.name()).collect();
    let kind = cx.req_choice(&t, "kind", &kind_names, StepKind::parse, |s, hint| {
        format!(
            "unknown step kind {s:?} {}{hint}; valid kinds are: {}",
            t.loc,
            kind_names.join(", ")
        )
    });

    // Unknown keys: against the kind's keys, or (kind unknown) any step key.
    match kind {
        Some(k) => {
            let mut allowed: Vec<&str> = COMMON_STEP_KEYS.to_vec();
            allowed.extend_from_slice(kind_keys(k));
            cx.unknown_keys(&t, &allowed, &format!("{} steps", k.name()));
        }
        None => {
            let mut allowed: Vec<&str> = COMMON_STEP_KEYS.to_vec();
            for k in StepKind::ALL {
                for key in kind_keys(k) {
                    if !allowed.contains(key) {
                        allowed.push(key);
                    }
                }
            }
            cx.unknown_keys(&t, &allowed, "steps");
        }
    }

    let title = cx.string(&t, "title").map(|(s, _)| s.to_string());
    let mut params = Params::defaults(kind.unwrap_or(StepKind::UsbConformance));
    let timeout = cx.num_in(&t, "timeout_s", 0.0, true, 86_400.0, " s");
    if let Some((x, _)) = timeout {
        params.timeout_s = x;
    }

    if let Some(k) = kind {
        if k.is_latency() {
            latency_params(cx, &t, k, &mut params, timeout.map(|(_, s)| s));
        } else if k == StepKind::UsbConformance {
            usb_params(cx, &t, &mut params);
        } else {
            serial_params(cx, &t, &mut params);
        }
    }

    let limits = parse_limits(cx, &t, kind);

    if cx.diags.len() > n_before {
        return None;
    }
    let kind = kind?;
    Some(Step {
        title: title.unwrap_or_else(|| id.clone()),
        id,
        kind,
        params,
        limits,
    })
}

fn latency_params(
    cx: &mut Cx,
    t: &Tbl<'_, '_>,
    kind: StepKind,
    p: &mut Params,
    timeout_span: Option<Span>,
) {
    let shots = cx.int(t, "shots", 1, 10_000, "shots");
    if let Some((x, _)) = shots {
        p.shots = x as u32;
    }
    p.max_missed = p.shots / 10;
    if let Some((x, span)) = cx.int(t, "max_missed", 0, 10_000, "max_missed") {
        if x as u32 > p.shots {
            cx.err(
                span,
                format!(
                    "`max_missed` {} is {x}, more than the {} shots the step takes",
                    t.loc, p.shots
                ),
            );
        }
        p.max_missed = x as u32;
    }
    let interval = cx.num_in(t, "interval_ms", 0.0, true, 60_000.0, " ms");
    if let Some((x, _)) = interval {
        p.interval_ms = x;
    }
    let max_latency = cx.num_in(t, "max_latency_ms", 0.0, true, 10_000.0, " ms");
    if let Some((x, _)) = max_latency {
        p.max_latency_ms = x;
    }

    if is_audio(kind) {
        if let Some((s, span)) = cx.string(t, "stimulus") {
            match StimulusKind::ALL.into_iter().find(|k| k.name() == s) {
                Some(k) => p.stimulus = k,
                None => cx.err(
                    span,
                    format!(
                        "unknown stimulus {s:?} {}; use sweep, noise or speech",
                        t.loc
                    ),
                ),
            }
        }
        let stim = cx.num_in(t, "stimulus_ms", 10.0, false, 5000.0, " ms");
        if let Some((x, _)) = stim {
            p.stimulus_ms = x;
        }
        if let Some((x, _)) = cx.int(t, "sample_rate", 8000, 192_000, "sample_rate (Hz)") {
            p.sample_rate = x as u32;
        }
        let least = p.stimulus_ms + p.max_latency_ms;
        let what = format!(
            "stimulus_ms + max_latency_ms ({} + {} = {least} ms)",
            p.stimulus_ms, p.max_latency_ms
        );
        no_overlap(
            cx,
            t,
            p.interval_ms,
            least,
            &what,
            [&interval, &stim, &max_latency],
        );
    } else {
        let what = format!("max_latency_ms ({} ms)", p.max_latency_ms);
        no_overlap(
            cx,
            t,
            p.interval_ms,
            p.max_latency_ms,
            &what,
            [&interval, &max_latency],
        );
        if kind == StepKind::VideoLatency {
            led_roi(cx, t, p);
        }
        if kind == StepKind::ButtonHidLatency {
            if let Some((s, span)) = cx.string(t, "hid_usage") {
                match parse_hid_usage(s) {
                    Some((page, usage)) => p.hid_usage = format_hid_usage(page, usage),
                    None => cx.err(
                        span,
                        format!(
                            "`hid_usage` {s:?} {} must be \"0xPP:0xUU\" (usage page and usage \
                             in hex), e.g. \"0x0b:0x20\" for the telephony hook switch",
                            t.loc
                        ),
                    ),
                }
            }
        }
    }
    let total_s = f64::from(p.shots) * p.interval_ms / 1000.0;
    if total_s > p.timeout_s {
        let span = timeout_span
            .or(shots.map(|(_, s)| s))
            .unwrap_or(t.span.clone());
        cx.err(
            span,
            format!(
                "{} shots every {} ms take {total_s} s, longer than the step's timeout_s ({} s) {}",
                p.shots, p.interval_ms, p.timeout_s, t.loc
            ),
        );
    }
}

/// Shots must not overlap: `interval_ms` at least `least` ms (`what` says
/// of what). The error points at the first of `spans` the step sets, else
/// at the step.
fn no_overlap<const N: usize>(
    cx: &mut Cx,
    t: &Tbl<'_, '_>,
    interval_ms: f64,
    least: f64,
    what: &str,
    spans: [&Option<(f64, Span)>; N],
) {
    if interval_ms >= least {
        return;
    }
    let span = spans
        .into_iter()
        .find_map(|s| s.as_ref().map(|(_, s)| s.clone()))
        .unwrap_or(t.span.clone());
    cx.err(
        span,
        format!(
            "shots overlap {}: interval_ms ({interval_ms} ms) must be at least {what}",
            t.loc
        ),
    );
}

fn led_roi(cx: &mut Cx, t: &Tbl<'_, '_>, p: &mut Params) {
    let Some(v) = t.get("led_roi") else { return };
    let bad = |cx: &mut Cx, why: &str| {
        cx.err(
            v.span(),
            format!(
                "`led_roi` {} {why}; write [x, y, w, h] as fractions of the frame, \
                 e.g. [0.4, 0.4, 0.2, 0.2] for the centre",
                t.loc
            ),
        )
    };
    let DeValue::Array(items) = v.get_ref() else {
        return bad(
            cx,
            &format!("must be an array of 4 numbers, not {}", a_type(v.get_ref())),
        );
    };
    if items.len() != 4 {
        return bad(cx, &format!("has {} numbers, not 4", items.len()));
    }
    let mut roi = [0.0; 4];
    for (i, item) in items.iter().enumerate() {
        match num_value(item.get_ref()) {
            Some(Some(x)) => roi[i] = x,
            _ => return bad(cx, &format!("entry {} is not a number", i + 1)),
        }
    }
    let [x, y, w, h] = roi;
    const EPS: f64 = 1e-9;
    if roi.iter().any(|c| !(0.0..=1.0).contains(c)) {
        return bad(cx, "has a value outside 0 to 1");
    }
    if w <= 0.0 || h <= 0.0 {
        return bad(cx, "must have a width and height above 0");
    }
    if x + w > 1.0 + EPS || y + h > 1.0 + EPS {
        return bad(
            cx,
            "extends past the edge of the frame (x + w and y + h must be at most 1)",
        );
    }
    p.led_roi = roi;
}

fn usb_params(cx: &mut Cx, t: &Tbl<'_, '_>, p: &mut Params) {
    let Some(v) = t.get("requirements") else {
        cx.missing(
            t,
            "requirements",
            " (e.g. requirements = [\"audio-playback\", \"serial-number\"])",
        );
        return;
    };
    let DeValue::Array(items) = v.get_ref() else {
        cx.wrong_type(t, "requirements", v, "an array of strings");
        return;
    };
    if items.is_empty() {
        cx.err(
            v.span(),
            format!(
                "`requirements` {} is empty; list at least one requirement",
                t.loc
            ),
        );
    }
    for item in items.iter() {
        let DeValue::String(s) = item.get_ref() else {
            cx.err(
                item.span(),
                format!(
                    "each requirement {} must be a string, not {}",
                    t.loc,
                    a_type(item.get_ref())
                ),
            );
            continue;
        };
        match Requirement::parse(s) {
            Ok(r) => {
                if p.requirements.contains(&r) {
                    cx.err(
                        item.span(),
                        format!("requirement {s:?} is listed twice {}", t.loc),
                    );
                } else {
                    p.requirements.push(r);
                }
            }
            Err(e) => cx.err(
                item.span(),
                format!("{e} ({})", t.loc.trim_start_matches("in ")),
            ),
        }
    }
}

fn serial_params(cx: &mut Cx, t: &Tbl<'_, '_>, p: &mut Params) {
    if let Some((x, _)) = cx.int(t, "baud", 50, 4_000_000, "baud") {
        p.baud = x as u32;
    }
    if t.get("commands").is_none() {
        cx.missing(
            t,
            "commands",
            " (add [[steps.commands]] tables with `send` and `expect`)",
        );
        return;
    }
    let Some((tables, span)) = cx.tables(t, "commands", "[[steps.commands]]") else {
        return;
    };
    if tables.is_empty() {
        cx.err(
            span,
            format!("`commands` {} is empty; list at least one command", t.loc),
        );
    }
    for (i, (table, span)) in tables.into_iter().enumerate() {
        let c = Tbl {
            t: table,
            span,
            loc: format!(
                "in command {} of step {}",
                i + 1,
                t.loc.trim_start_matches("in step ")
            ),
        };
        cx.unknown_keys(&c, COMMAND_KEYS, "commands");
        let send = cx.req_string(&c, "send", " (the line to send)");
        if let Some((s, span)) = &send {
            if s.trim().is_empty() {
                cx.err(span.clone(), format!("`send` {} must not be empty", c.loc));
            }
        }
        let expect = cx.req_string(
            &c,
            "expect",
            " (a regular expression the reply line must match)",
        );
        if let Some((e, span)) = &expect {
            if let Err(err) = regex::Regex::new(&format!("^(?:{e})$")) {
                cx.err(
                    span.clone(),
                    format!(
                        "`expect` {} is not a valid regular expression: {}",
                        c.loc,
                        regex_reason(&err)
                    ),
                );
            }
        }
        if let (Some((s, _)), Some((e, _))) = (send, expect) {
            p.commands.push(SerialCommand {
                send: s.to_string(),
                expect: e.to_string(),
            });
        }
    }
}

/// The one-line reason from a regex error (its Display spans several lines).
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().last().unwrap_or("").trim().to_string())
}
