//! Parsing and validating profile TOML, with a position for every problem.
//!
//! The TOML is read into a spanned tree (`toml::de::DeTable`) and walked by
//! hand, so that every problem — unknown keys, wrong types, missing keys, bad
//! units, rule violations — is collected (not just the first) with the byte
//! span of the offending key or value. The schema is documented for lab
//! engineers in `docs/profiles.md`; keep the two in step.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::requirement::{format_hid_usage, parse_hid_usage, Requirement};
use super::{
    DeviceClass, Limit, Params, Profile, SerialCommand, Step, StepKind, StimulusKind, Unit,
};
use crate::measure::stats::Statistic;

/// One problem in a profile, at a byte span of the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Byte offsets into the source text.
    pub span: std::ops::Range<usize>,
    pub message: String,
}

impl Diagnostic {
    /// `file:line:column: message`, with 1-based line and column (column in characters).
    pub fn render(&self, path: &Path, text: &str) -> String {
        let (line, col) = self.line_col(text);
        format!("{}:{line}:{col}: {}", path.display(), self.message)
    }

    /// 1-based line and column (in characters) of the span's start.
    pub fn line_col(&self, text: &str) -> (usize, usize) {
        let mut start = self.span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, col)
    }
}

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
    "steps",
];
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
const LIMIT_KEYS: &[&str] = &["statistic", "min", "max", "unit", "marginal"];
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

/// The closest of `candidates` to `word` (edit distance at most 2 and less
/// than the word's length), for "did you mean" hints.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = word.to_lowercase();
    if w.is_empty() || w.chars().count() > 64 {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = levenshtein(&w, &c.to_lowercase());
        if d <= 2 && d < w.chars().count() && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 9 && p.chars().all(|c| c.is_ascii_digit()))
}

fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn int_value(v: &DeValue<'_>) -> Option<Option<i64>> {
    match v {
        DeValue::Integer(i) => Some(i64::from_str_radix(i.as_str(), i.radix()).ok()),
        _ => None,
    }
}

fn num_value(v: &DeValue<'_>) -> Option<Option<f64>> {
    match v {
        DeValue::Integer(i) => Some(
            i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|x| x as f64),
        ),
        DeValue::Float(f) => Some(f.as_str().parse::<f64>().ok().filter(|x| x.is_finite())),
        _ => None,
    }
}

type Span = Range<usize>;
type Value<'i> = Spanned<DeValue<'i>>;

/// A table being checked, with where it is and how to name it in messages.
struct Tbl<'a, 'i> {
    t: &'a DeTable<'i>,
    span: Span,
    /// "in step `send-latency`", "at the top level", ...
    loc: String,
}

impl<'a, 'i> Tbl<'a, 'i> {
    fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.t.get(key)
    }
    fn key_span(&self, key: &str) -> Span {
        self.t
            .get_key_value(key)
            .map(|(k, _)| k.span())
            .unwrap_or_else(|| self.span.clone())
    }
}

#[derive(Default)]
struct Cx {
    diags: Vec<Diagnostic>,
}

impl Cx {
    fn err(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            span,
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, t: &Tbl<'_, '_>, key: &str, v: &Value<'_>, expected: &str) {
        self.err(
            v.span(),
            format!(
                "`{key}` {} must be {expected}, not {}",
                t.loc,
                a_type(v.get_ref())
            ),
        );
    }

    fn missing(&mut self, t: &Tbl<'_, '_>, key: &str, hint: &str) {
        self.err(
            t.span.clone(),
            format!("missing required key `{key}` {}{hint}", t.loc),
        );
    }

    /// Flag every key of `t` not in `allowed`; `whose` names what takes them.
    fn unknown_keys(&mut self, t: &Tbl<'_, '_>, allowed: &[&str], whose: &str) {
        for (k, _) in t.t.iter() {
            let name: &str = k.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let hint = suggest(name, allowed.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            self.err(
                k.span(),
                format!(
                    "unknown key `{name}` {}{hint}; {whose} take: {}",
                    t.loc,
                    allowed.join(", ")
                ),
            );
        }
    }

    fn string<'a>(&mut self, t: &Tbl<'a, '_>, key: &str) -> Option<(&'a str, Span)> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.as_ref(), v.span())),
            _ => {
                self.wrong_type(t, key, v, "a string");
                None
            }
        }
    }

    fn req_string<'a>(
        &mut self,
        t: &Tbl<'a, '_>,
        key: &str,
        hint: &str,
    ) -> Option<(&'a str, Span)> {
        if t.get(key).is_none() {
            self.missing(t, key, hint);
            return None;
        }
        self.string(t, key)
    }

    /// A whole number in `lo..=hi`.
    fn int(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        lo: i64,
        hi: i64,
        what: &str,
    ) -> Option<(i64, Span)> {
        let v = t.get(key)?;
        match int_value(v.get_ref()) {
            Some(Some(x)) if (lo..=hi).contains(&x) => Some((x, v.span())),
            Some(_) => {
                self.err(
                    v.span(),
                    format!(
                        "`{key}` {} is out of range; {what} must be {lo} to {hi}",
                        t.loc
                    ),
                );
                None
            }
            None => {
                self.wrong_type(t, key, v, "a whole number (integer)");
                None
            }
        }
    }

    /// A finite number (TOML integer or float).
    fn num(&mut self, t: &Tbl<'_, '_>, key: &str) -> Option<(f64, Span)> {
        let v = t.get(key)?;
        match num_value(v.get_ref()) {
            Some(Some(x)) => Some((x, v.span())),
            Some(None) => {
                self.err(
                    v.span(),
                    format!("`{key}` {} must be a finite number", t.loc),
                );
                None
            }
            None => {
                self.wrong_type(t, key, v, "a number");
                None
            }
        }
    }

    /// A number in `lo..=hi` (`lo` exclusive when `lo_open`).
    fn num_in(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        lo: f64,
        lo_open: bool,
        hi: f64,
        unit: &str,
    ) -> Option<(f64, Span)> {
        let (x, span) = self.num(t, key)?;
        let ok = if lo_open { x > lo } else { x >= lo } && x <= hi;
        if ok {
            Some((x, span))
        } else {
            let range = if lo_open {
                format!("more than {lo} and at most {hi}{unit}")
            } else {
                format!("{lo} to {hi}{unit}")
            };
            self.err(
                span.clone(),
                format!("`{key}` {} is {x}{unit}; it must be {range}", t.loc),
            );
            None
        }
    }

    /// An array of tables (`[[key]]` or `key = [{...}]`); each with its span.
    fn tables<'a, 'i>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &str,
        header: &str,
    ) -> Option<(Vec<(&'a DeTable<'i>, Span)>, Span)> {
        let v = t.get(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.err(
                v.span(),
                format!(
                    "`{key}` {} must be an array of tables ({header} or {key} = [{{...}}]), not {}",
                    t.loc,
                    a_type(v.get_ref())
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(tt) => out.push((tt, item.span())),
                other => self.err(
                    item.span(),
                    format!(
                        "entry {} of `{key}` {} must be a table, not {}",
                        i + 1,
                        t.loc,
                        a_type(other)
                    ),
                ),
            }
        }
        Some((out, v.span()))
    }
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
    let device_class = match cx.req_string(
        &top,
        "device_class",
        &format!(" (one of {})", names.join(", ")),
    ) {
        Some((s, span)) => DeviceClass::parse(s).or_else(|| {
            let hint = suggest(s, names.iter().copied())
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            cx.err(
                span,
                format!(
                    "unknown device_class {s:?}{hint}; use one of {}",
                    names.join(", ")
                ),
            );
            None
        }),
        None => None,
    };
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
        steps,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        source: PathBuf::new(),
    })
}

fn finish(diags: &mut Vec<Diagnostic>) {
    diags.sort_by_key(|d| (d.span.start, d.span.end));
    diags.dedup();
}

/// A required identifier `[a-z0-9][a-z0-9-]*`.
fn ident(cx: &mut Cx, t: &Tbl<'_, '_>, key: &str, hint: &str) -> String {
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

fn parse_step(
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
    let kind = match cx.req_string(&t, "kind", &format!(" (one of {})", kind_names.join(", "))) {
        Some((s, span)) => StepKind::parse(s).or_else(|| {
            let hint = suggest(s, kind_names.iter().copied())
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            cx.err(
                span,
                format!(
                    "unknown step kind {s:?} {}{hint}; valid kinds are: {}",
                    t.loc,
                    kind_names.join(", ")
                ),
            );
            None
        }),
        None => None,
    };

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
            match s {
                "sweep" => p.stimulus = StimulusKind::Sweep,
                "noise" => p.stimulus = StimulusKind::Noise,
                "speech" => p.stimulus = StimulusKind::Speech,
                _ => cx.err(
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
        if p.interval_ms < p.stimulus_ms + p.max_latency_ms {
            let span = interval
                .as_ref()
                .or(stim.as_ref())
                .or(max_latency.as_ref())
                .map(|(_, s)| s.clone())
                .unwrap_or(t.span.clone());
            cx.err(
                span,
                format!(
                    "shots overlap {}: interval_ms ({} ms) must be at least stimulus_ms + \
                     max_latency_ms ({} + {} = {} ms)",
                    t.loc,
                    p.interval_ms,
                    p.stimulus_ms,
                    p.max_latency_ms,
                    p.stimulus_ms + p.max_latency_ms
                ),
            );
        }
    } else {
        if p.interval_ms < p.max_latency_ms {
            let span = interval
                .as_ref()
                .or(max_latency.as_ref())
                .map(|(_, s)| s.clone())
                .unwrap_or(t.span.clone());
            cx.err(
                span,
                format!(
                    "shots overlap {}: interval_ms ({} ms) must be at least max_latency_ms ({} ms)",
                    t.loc, p.interval_ms, p.max_latency_ms
                ),
            );
        }
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

fn parse_limits(cx: &mut Cx, t: &Tbl<'_, '_>, kind: Option<StepKind>) -> Vec<Limit> {
    let kind_name = kind.map(|k| k.name()).unwrap_or("step");
    if kind == Some(StepKind::UsbConformance) {
        if t.get("limits").is_some() {
            cx.err(
                t.key_span("limits"),
                format!(
                    "usb-conformance steps take no limits {}; their outcome is whether \
                     every requirement is met",
                    t.loc
                ),
            );
        }
        return Vec::new();
    }
    let needs = kind.is_some_and(|k| k.is_latency());
    let Some((tables, span)) = cx.tables(t, "limits", "[[steps.limits]]") else {
        if needs && t.get("limits").is_none() {
            cx.err(
                t.span.clone(),
                format!(
                    "{} ({kind_name}) has no limits; latency steps need at least one \
                     [[steps.limits]] (e.g. statistic = \"median\", max = 60.0, unit = \"ms\")",
                    t.loc.trim_start_matches("in ")
                ),
            );
        }
        return Vec::new();
    };
    if needs && tables.is_empty() {
        cx.err(
            span,
            format!(
                "`limits` {} is empty; {kind_name} steps need at least one limit",
                t.loc
            ),
        );
    }
    let step = t.loc.trim_start_matches("in ").to_string();
    let mut out = Vec::new();
    for (i, (table, span)) in tables.into_iter().enumerate() {
        let l = Tbl {
            t: table,
            span,
            loc: format!("in limit {} of {step}", i + 1),
        };
        if let Some(limit) = parse_limit(cx, &l, kind_name) {
            out.push(limit);
        }
    }
    out
}

fn parse_limit(cx: &mut Cx, l: &Tbl<'_, '_>, kind_name: &str) -> Option<Limit> {
    let n_before = cx.diags.len();
    cx.unknown_keys(l, LIMIT_KEYS, "limits");
    let stat_names: Vec<&str> = Statistic::ALL.iter().map(|s| s.name()).collect();
    let statistic = match cx.req_string(
        l,
        "statistic",
        &format!(" (one of {})", stat_names.join(", ")),
    ) {
        Some((s, span)) => Statistic::parse(s).or_else(|| {
            let hint = suggest(s, stat_names.iter().copied())
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            cx.err(
                span,
                format!(
                    "unknown statistic {s:?} {}{hint}; use one of {}",
                    l.loc,
                    stat_names.join(", ")
                ),
            );
            None
        }),
        None => None,
    };
    let unit = match cx.req_string(l, "unit", " (ms, us or s)") {
        Some((s, span)) => Unit::parse(s).or_else(|| {
            cx.err(
                span,
                format!("unit {s:?} is not a time unit; {kind_name} limits take ms, us or s"),
            );
            None
        }),
        None => None,
    };
    let min = cx.num(l, "min");
    let max = cx.num(l, "max");
    let marginal = cx.num(l, "marginal");
    if l.get("min").is_none() && l.get("max").is_none() {
        cx.err(
            l.span.clone(),
            format!(
                "limit {} has no bound; give `min`, `max` or both",
                l.loc.trim_start_matches("in limit ")
            ),
        );
    }
    if let (Some((lo, lo_span)), Some((hi, _))) = (&min, &max) {
        if lo > hi {
            cx.err(
                lo_span.clone(),
                format!("`min` ({lo}) is above `max` ({hi}) {}", l.loc),
            );
        }
    }
    if let Some((m, span)) = &marginal {
        if *m < 0.0 {
            cx.err(
                span.clone(),
                format!(
                    "`marginal` {} is {m}; the marginal band must be 0 or more",
                    l.loc
                ),
            );
        } else if let (Some((lo, _)), Some((hi, _))) = (&min, &max) {
            if hi >= lo && 2.0 * m >= hi - lo {
                cx.err(
                    span.clone(),
                    format!(
                        "`marginal` {} is {m}, but the bands inside min ({lo}) and max ({hi}) \
                         would meet; 2 × marginal must be less than max − min ({})",
                        l.loc,
                        hi - lo
                    ),
                );
            }
        }
    }
    if cx.diags.len() > n_before {
        return None;
    }
    Some(Limit {
        statistic: statistic?,
        min: min.map(|(x, _)| x),
        max: max.map(|(x, _)| x),
        unit: unit?,
        marginal: marginal.map(|(x, _)| x),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn render_handles_multibyte_and_out_of_range() {
        let d = Diagnostic {
            span: 2..3,
            message: "m".into(),
        };
        assert_eq!(d.render(Path::new("f"), "µ\nx"), "f:1:2: m");
        let d = Diagnostic {
            span: 1..1,
            message: "m".into(),
        };
        assert_eq!(d.render(Path::new("f"), "µ"), "f:1:1: m");
        let d = Diagnostic {
            span: 99..99,
            message: "m".into(),
        };
        assert_eq!(d.render(Path::new("f"), "a\nbc"), "f:2:3: m");
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

    #[test]
    fn suggestions() {
        assert_eq!(suggest("shot", AUDIO_KEYS.iter().copied()), Some("shots"));
        assert_eq!(
            suggest("intervall_ms", AUDIO_KEYS.iter().copied()),
            Some("interval_ms")
        );
        assert_eq!(suggest("zzz", AUDIO_KEYS.iter().copied()), None);
    }
}
