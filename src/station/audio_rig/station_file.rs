//! The station file (`--station FILE`, TOML): how an audio-interface rig is
//! wired, i.e. which of the interface's channels drive the reference
//! speaker, the LED and the button actuator, and which read the reference
//! microphone, the photodiode and a loopback cable.
//!
//! Owns the schema, its validation with positions (`file:line:column:
//! message`, through the profile's spanned-TOML walker) and the parsed
//! [`StationFile`]. It opens no device: whether the interface has the
//! channels named is checked when the rig opens ([`super::AudioRig::open`]),
//! which reports the offending entry's position too.
//!
//! It also owns the `[calibration]` table (issue 16, part 2) that
//! `certlab calibrate` writes: what the station itself adds, each term with
//! its expanded uncertainty and UTC time ([`Calibration`]), its rendering as
//! TOML and its replacement in an existing file's text. A serial rig has no
//! channel map, so its calibration file holds only `format` and
//! `[calibration]` ([`Calibration::parse_alone`]). It measures nothing, and
//! what a run makes of a calibration is not its business.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use crate::profile::spanned::{finish, Cx, Tbl};
use crate::profile::Diagnostic;
use crate::{Error, Result};

/// The format a station file may name in `format`.
pub const FORMAT: &str = "certlab-station/1";

/// How an output channel drives an LED or a solenoid driver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Drive {
    /// A tone burst at `hz`, rectified on the driver board (AC-coupled outputs).
    Tone { hz: f64 },
    /// A DC level for the duration (a DC-coupled output).
    Dc,
}

/// An actuator output's drive and level (0 < level ≤ 1 of full scale).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriveSpec {
    pub drive: Drive,
    pub level: f32,
}

impl Default for DriveSpec {
    fn default() -> Self {
        DriveSpec {
            drive: Drive::Tone { hz: 12_000.0 },
            level: 0.9,
        }
    }
}

/// A channel of the map (0-based), with where the file names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub index: u16,
    /// `inputs.microphone`, ...
    pub name: &'static str,
    /// Byte span of the value in the file.
    pub span: Range<usize>,
}

/// A parsed, valid station file.
#[derive(Debug, Clone, PartialEq)]
pub struct StationFile {
    pub path: PathBuf,
    pub text: String,
    pub sha256: String,
    /// Sample rate of both directions, Hz.
    pub rate: u32,
    pub rate_span: Range<usize>,
    /// The rig's serial number in reports (default: the interface's own).
    pub serial: Option<String>,
    pub microphone: Channel,
    pub photodiode: Option<Channel>,
    pub loopback_in: Option<Channel>,
    pub speaker: Channel,
    pub led: Option<Channel>,
    pub actuator: Option<Channel>,
    pub loopback_out: Option<Channel>,
    pub led_drive: DriveSpec,
    pub actuator_drive: DriveSpec,
    /// The rig's microphone-to-speaker routing for round trips, s.
    pub round_trip_delay_s: f64,
    /// The station's calibration (`[calibration]`), when it has one.
    pub calibration: Option<Calibration>,
}

/// One calibrated term: a latency the station itself adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// The measured latency (a median of bursts), µs.
    pub latency_us: f64,
    /// Its expanded (k = 2) uncertainty, µs.
    pub uncertainty_us: f64,
    /// When it was measured (UTC).
    pub measured: chrono::DateTime<chrono::Utc>,
    /// Bursts measured.
    pub shots: u32,
}

/// A station's calibration: what it adds, measured by `certlab calibrate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The serial number of the rig it was measured on.
    pub rig_serial: String,
    /// The interface's output-to-input latency through the loopback cable
    /// (`[calibration.loopback]`; audio-interface rigs).
    pub loopback: Option<Term>,
    /// The rig's speaker to its microphone, electronics and air
    /// (`[calibration.acoustic]`).
    pub acoustic: Option<Term>,
}

/// The terms a `[calibration]` table may hold, with what they mean.
const TERMS: &[(&str, &str)] = &[
    (
        "loopback",
        "the interface's output-to-input latency through the loopback cable",
    ),
    (
        "acoustic",
        "the rig's speaker to its microphone (electronics and air)",
    ),
];

impl Calibration {
    /// The `[calibration]` tables as TOML, ending in a newline.
    pub fn to_toml(&self) -> String {
        let mut s = String::from(
            "\n# What the station itself adds, written by `certlab calibrate`: each term's\n\
             # median latency with its expanded (k = 2) uncertainty, and when it was measured.\n\
             [calibration]\n",
        );
        s.push_str(&format!("rig_serial = {}\n", toml_string(&self.rig_serial)));
        for ((name, what), term) in TERMS.iter().zip([&self.loopback, &self.acoustic]) {
            if let Some(t) = term {
                s.push_str(&format!(
                    "\n[calibration.{name}]   # {what}\nlatency_us = {:.1}\nuncertainty_us = {:.1}\n\
                     measured = \"{}\"\nshots = {}\n",
                    t.latency_us,
                    t.uncertainty_us,
                    crate::timestamp::record(t.measured),
                    t.shots
                ));
            }
        }
        s
    }

    /// `text` (a station file's) with its `[calibration]` tables replaced
    /// by `self`'s, appended at the end; every other line is kept as it is.
    pub fn replace_in(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 512);
        let mut in_cal = false;
        for line in text.split_inclusive('\n') {
            let t = line.trim_start();
            if t.starts_with('[') {
                let name = t.trim_start_matches('[').trim_start();
                in_cal = name.starts_with("calibration")
                    && name["calibration".len()..]
                        .trim_start()
                        .starts_with([']', '.']);
            }
            if !in_cal {
                out.push_str(line);
            }
        }
        while out.ends_with("\n\n") {
            out.pop();
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&self.to_toml());
        out
    }

    /// A calibration file with no channel map (a serial rig's): only
    /// `format` and `[calibration]`.
    pub fn parse_alone(text: &str) -> std::result::Result<Calibration, Vec<Diagnostic>> {
        let root = parse_root(text)?;
        let mut cx = Cx::default();
        let top = Tbl {
            t: &root,
            span: 0..0,
            loc: "at the top level".into(),
        };
        cx.unknown_keys(
            &top,
            &["format", "calibration"],
            "a serial rig's calibration file's top level",
        );
        check_format(&mut cx, &top);
        let cal = match top.get("calibration") {
            Some(_) => calibration(&mut cx, &top),
            None => {
                cx.missing(&top, "calibration", " (a [calibration] table)");
                None
            }
        };
        finish(&mut cx.diags);
        match cal {
            Some(c) if cx.diags.is_empty() => Ok(c),
            _ => Err(cx.diags),
        }
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn parse_root(text: &str) -> std::result::Result<toml::de::DeTable<'_>, Vec<Diagnostic>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let mut d: Vec<Diagnostic> = errors
            .iter()
            .map(|e| Diagnostic {
                span: e.span().unwrap_or(0..0),
                message: format!("TOML syntax error: {}", e.message().trim_end()),
            })
            .collect();
        finish(&mut d);
        return Err(d);
    }
    Ok(root.into_inner())
}

fn check_format(cx: &mut Cx, top: &Tbl<'_, '_>) {
    if let Some((f, span)) = cx.string(top, "format") {
        if f != FORMAT {
            cx.err(
                span,
                format!("unknown format {f:?}; this certlab reads {FORMAT:?}"),
            );
        }
    }
}

/// A table `name` of `t`, or a type error.
fn table<'a, 'i>(cx: &mut Cx, t: &Tbl<'a, 'i>, name: &str, loc: String) -> Option<Tbl<'a, 'i>> {
    let v = t.get(name)?;
    match v.get_ref() {
        DeValue::Table(tt) => Some(Tbl {
            t: tt,
            span: v.span(),
            loc,
        }),
        _ => {
            cx.wrong_type(t, name, v, "a table");
            None
        }
    }
}

/// The `[calibration]` table of `top` (which has one).
fn calibration(cx: &mut Cx, top: &Tbl<'_, '_>) -> Option<Calibration> {
    let t = table(cx, top, "calibration", "in [calibration]".into())?;
    let mut allowed = vec!["rig_serial"];
    allowed.extend(TERMS.iter().map(|(n, _)| *n));
    cx.unknown_keys(&t, &allowed, "[calibration]");
    let serial = cx.req_string(
        &t,
        "rig_serial",
        " (the rig the calibration was measured on)",
    );
    let mut ok = serial.is_some();
    let mut terms = Vec::new();
    for (name, _) in TERMS {
        let Some(tt) = table(cx, &t, name, format!("in [calibration.{name}]")) else {
            ok &= t.get(name).is_none();
            terms.push(None);
            continue;
        };
        let term = self::term(cx, &tt);
        ok &= term.is_some();
        terms.push(term);
    }
    if ok && terms.iter().all(Option::is_none) {
        cx.err(
            t.span.clone(),
            format!(
                "[calibration] has no term; it takes {}",
                TERMS
                    .iter()
                    .map(|(n, _)| format!("[calibration.{n}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        ok = false;
    }
    let acoustic = terms.pop().flatten();
    let loopback = terms.pop().flatten();
    ok.then(|| Calibration {
        rig_serial: serial.map(|(s, _)| s.to_string()).unwrap_or_default(),
        loopback,
        acoustic,
    })
}

fn term(cx: &mut Cx, t: &Tbl<'_, '_>) -> Option<Term> {
    cx.unknown_keys(
        t,
        &["latency_us", "uncertainty_us", "measured", "shots"],
        &t.loc.replace("in ", ""),
    );
    for (key, hint) in [
        ("latency_us", " (the measured latency, µs)"),
        ("uncertainty_us", " (its expanded (k = 2) uncertainty, µs)"),
        ("measured", " (when, an RFC 3339 UTC time)"),
        ("shots", " (the bursts measured)"),
    ] {
        if t.get(key).is_none() {
            cx.missing(t, key, hint);
        }
    }
    let latency = cx.num_in(t, "latency_us", 0.0, false, 1e6, " µs");
    let uncertainty = cx.num_in(t, "uncertainty_us", 0.0, true, 1e6, " µs");
    let measured = cx.string(t, "measured").and_then(|(s, span)| {
        match crate::timestamp::parse(s) {
            Ok(m) => Some(m),
            Err(e) => {
                cx.err(
                    span,
                    format!(
                        "`measured` {} is {s:?}, not an RFC 3339 time such as \"2026-12-04T22:53:24Z\" ({e})",
                        t.loc
                    ),
                );
                None
            }
        }
    });
    let shots = cx.int(t, "shots", 1, 100_000, "a count of bursts");
    Some(Term {
        latency_us: latency?.0,
        uncertainty_us: uncertainty?.0,
        measured: measured?,
        shots: shots?.0 as u32,
    })
}

/// The calibration a run takes with `--station`, and the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrated {
    pub path: PathBuf,
    pub sha256: String,
    /// `None` when the file (an audio-interface rig's channel map) has no
    /// `[calibration]` yet.
    pub calibration: Option<Calibration>,
}

impl Calibrated {
    /// Read a station file for its calibration: an audio-interface rig's
    /// (`audio_rig`: the channel map with an optional `[calibration]`) or
    /// another rig's (only `format` and `[calibration]`). Every problem as
    /// `file:line:column: message` (exit 3).
    pub fn load(path: &Path, audio_rig: bool) -> Result<Calibrated> {
        if audio_rig {
            let st = StationFile::load(path)?;
            return Ok(Calibrated {
                path: st.path,
                sha256: st.sha256,
                calibration: st.calibration,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::BadInput(format!("cannot read station file {}: {e}", path.display()))
        })?;
        let cal = Calibration::parse_alone(&text).map_err(|diagnostics| Error::Profile {
            path: path.to_path_buf(),
            diagnostics: diagnostics.iter().map(|d| d.render(path, &text)).collect(),
        })?;
        Ok(Calibrated {
            path: path.to_path_buf(),
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
            calibration: Some(cal),
        })
    }
}

impl StationFile {
    /// Read and validate a station file; every problem as `file:line:column: message` (exit 3).
    pub fn load(path: &Path) -> Result<StationFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::BadInput(format!("cannot read station file {}: {e}", path.display()))
        })?;
        Self::parse(path, &text).map_err(|diagnostics| Error::Profile {
            path: path.to_path_buf(),
            diagnostics: diagnostics.iter().map(|d| d.render(path, &text)).collect(),
        })
    }

    /// Validate `text` (named `path` in messages).
    pub fn parse(path: &Path, text: &str) -> std::result::Result<StationFile, Vec<Diagnostic>> {
        let root = parse_root(text)?;
        let mut cx = Cx::default();
        let top = Tbl {
            t: &root,
            span: 0..0,
            loc: "at the top level".into(),
        };
        cx.unknown_keys(
            &top,
            &[
                "format",
                "interface",
                "inputs",
                "outputs",
                "led",
                "actuator",
                "round_trip",
                "calibration",
            ],
            "a station file's top level",
        );
        check_format(&mut cx, &top);
        let sub = |cx: &mut Cx, name: &str, required: bool| -> Option<Tbl<'_, '_>> {
            let v = match top.get(name) {
                Some(v) => v,
                None => {
                    if required {
                        cx.missing(&top, name, &format!(" (a [{name}] table)"));
                    }
                    return None;
                }
            };
            match v.get_ref() {
                DeValue::Table(t) => Some(Tbl {
                    t,
                    span: v.span(),
                    loc: format!("in [{name}]"),
                }),
                _ => {
                    cx.wrong_type(&top, name, v, "a table");
                    None
                }
            }
        };
        let iface = sub(&mut cx, "interface", true);
        let inputs = sub(&mut cx, "inputs", true);
        let outputs = sub(&mut cx, "outputs", true);
        let led = sub(&mut cx, "led", false);
        let actuator = sub(&mut cx, "actuator", false);
        let round_trip = sub(&mut cx, "round_trip", false);

        let mut rate = None;
        let mut serial = None;
        if let Some(t) = &iface {
            cx.unknown_keys(t, &["rate", "serial"], "[interface]");
            if t.get("rate").is_none() {
                cx.missing(t, "rate", " (the sample rate in Hz, e.g. 48000)");
            }
            rate = cx.int(t, "rate", 8_000, 384_000, "a sample rate in Hz");
            serial = cx.string(t, "serial").map(|(s, _)| s.to_string());
        }
        let chan = |cx: &mut Cx, t: &Tbl<'_, '_>, key: &str, name: &'static str, req: bool| {
            if req && t.get(key).is_none() {
                cx.missing(t, key, " (a channel number, 1 for the first)");
            }
            cx.int(t, key, 1, 64, "a channel number (1 for the first)")
                .map(|(i, span)| Channel {
                    index: (i - 1) as u16,
                    name,
                    span,
                })
        };
        let (mut mic, mut pd, mut lb_in) = (None, None, None);
        if let Some(t) = &inputs {
            cx.unknown_keys(t, &["microphone", "photodiode", "loopback"], "[inputs]");
            mic = chan(&mut cx, t, "microphone", "inputs.microphone", true);
            pd = chan(&mut cx, t, "photodiode", "inputs.photodiode", false);
            lb_in = chan(&mut cx, t, "loopback", "inputs.loopback", false);
            distinct(&mut cx, "[inputs]", &[&mic, &pd, &lb_in]);
        }
        let (mut spk, mut led_ch, mut act, mut lb_out) = (None, None, None, None);
        if let Some(t) = &outputs {
            cx.unknown_keys(t, &["speaker", "led", "actuator", "loopback"], "[outputs]");
            spk = chan(&mut cx, t, "speaker", "outputs.speaker", true);
            led_ch = chan(&mut cx, t, "led", "outputs.led", false);
            act = chan(&mut cx, t, "actuator", "outputs.actuator", false);
            lb_out = chan(&mut cx, t, "loopback", "outputs.loopback", false);
            distinct(&mut cx, "[outputs]", &[&spk, &led_ch, &act, &lb_out]);
        }
        if lb_in.is_some() != lb_out.is_some() {
            let span = lb_in
                .as_ref()
                .or(lb_out.as_ref())
                .map(|c| c.span.clone())
                .unwrap_or(0..0);
            cx.err(
                span,
                "a loopback cable has two ends: name both `inputs.loopback` and `outputs.loopback`",
            );
        }
        let led_drive = led.as_ref().map_or(Some(DriveSpec::default()), |t| {
            drive_spec(&mut cx, t, "[led]")
        });
        let actuator_drive = actuator.as_ref().map_or(Some(DriveSpec::default()), |t| {
            drive_spec(&mut cx, t, "[actuator]")
        });
        let mut round_trip_delay_s = 0.02;
        if let Some(t) = &round_trip {
            cx.unknown_keys(t, &["delay_ms"], "[round_trip]");
            if let Some((d, _)) = cx.num_in(t, "delay_ms", 5.0, false, 500.0, " ms") {
                round_trip_delay_s = d / 1e3;
            }
        }
        let calibration = top
            .get("calibration")
            .and_then(|_| calibration(&mut cx, &top));
        finish(&mut cx.diags);
        if !cx.diags.is_empty() {
            return Err(cx.diags);
        }
        let (Some((rate, rate_span)), Some(microphone), Some(speaker), Some(ld), Some(ad)) =
            (rate, mic, spk, led_drive, actuator_drive)
        else {
            return Err(vec![Diagnostic {
                span: 0..0,
                message: "incomplete station file".into(),
            }]);
        };
        use sha2::Digest;
        Ok(StationFile {
            path: path.to_path_buf(),
            text: text.to_string(),
            sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
            rate: rate as u32,
            rate_span,
            serial,
            microphone,
            photodiode: pd,
            loopback_in: lb_in,
            speaker,
            led: led_ch,
            actuator: act,
            loopback_out: lb_out,
            led_drive: ld,
            actuator_drive: ad,
            round_trip_delay_s,
            calibration,
        })
    }

    /// Every mapped channel, inputs then outputs, with whether it is an input.
    pub fn channels(&self) -> Vec<(bool, &Channel)> {
        let ins = [
            Some(&self.microphone),
            self.photodiode.as_ref(),
            self.loopback_in.as_ref(),
        ];
        let outs = [
            Some(&self.speaker),
            self.led.as_ref(),
            self.actuator.as_ref(),
            self.loopback_out.as_ref(),
        ];
        ins.into_iter()
            .flatten()
            .map(|c| (true, c))
            .chain(outs.into_iter().flatten().map(|c| (false, c)))
            .collect()
    }

    /// The loopback cable moved to output `OUT` and input `IN` (1-based,
    /// `OUT:IN`, as `certlab calibrate --loopback` takes it); a channel
    /// another part uses in that direction is refused, as in the file.
    pub fn with_loopback(mut self, spec: &str) -> Result<StationFile> {
        let bad = |why: String| Error::BadInput(format!("--loopback {spec}: {why}"));
        let (o, i) = spec
            .split_once(':')
            .ok_or_else(|| bad("give the cable's ends as OUT:IN, 1-based (e.g. 4:4)".into()))?;
        let num = |s: &str, dir: &str| -> Result<u16> {
            match s.trim().parse::<u16>() {
                Ok(n) if (1..=64).contains(&n) => Ok(n - 1),
                _ => Err(bad(format!("{dir} channel {s:?} is not 1..64"))),
            }
        };
        let (o, i) = (num(o, "output")?, num(i, "input")?);
        for (input, c) in self.channels() {
            let (want, dir) = if input { (i, "input") } else { (o, "output") };
            if c.index == want && !c.name.ends_with(".loopback") {
                return Err(bad(format!(
                    "{dir} channel {} is `{}` in {}",
                    want + 1,
                    c.name,
                    self.path.display()
                )));
            }
        }
        self.loopback_out = Some(Channel {
            index: o,
            name: "outputs.loopback",
            span: 0..0,
        });
        self.loopback_in = Some(Channel {
            index: i,
            name: "inputs.loopback",
            span: 0..0,
        });
        Ok(self)
    }

    /// `file:line:column` of a span of the file.
    pub fn at(&self, span: &Range<usize>) -> String {
        let (line, col) = Diagnostic {
            span: span.clone(),
            message: String::new(),
        }
        .line_col(&self.text);
        format!("{}:{line}:{col}", self.path.display())
    }
}

/// Two parts on one channel of one direction is a wiring mistake.
fn distinct(cx: &mut Cx, table: &str, chans: &[&Option<Channel>]) {
    let chans: Vec<&Channel> = chans.iter().filter_map(|c| c.as_ref()).collect();
    for (i, a) in chans.iter().enumerate() {
        if let Some(b) = chans[..i].iter().find(|b| b.index == a.index) {
            cx.err(
                a.span.clone(),
                format!(
                    "channel {} {table} is already `{}`; each part needs a channel of its own",
                    a.index + 1,
                    b.name
                ),
            );
        }
    }
}

fn drive_spec(cx: &mut Cx, t: &Tbl<'_, '_>, whose: &str) -> Option<DriveSpec> {
    cx.unknown_keys(t, &["drive", "tone_hz", "level"], whose);
    let mut spec = DriveSpec::default();
    let mut ok = true;
    if let Some((d, span)) = cx.string(t, "drive") {
        match d {
            "tone" => {}
            "dc" => spec.drive = Drive::Dc,
            other => {
                ok = false;
                cx.err(
                    span,
                    format!(
                        "`drive` {} is {other:?}; it must be \"tone\" (a burst for a rectifier board) or \"dc\" (a DC-coupled output)",
                        t.loc
                    ),
                );
            }
        }
    }
    if let Some((hz, span)) = cx.num_in(t, "tone_hz", 100.0, false, 40_000.0, " Hz") {
        if spec.drive == Drive::Dc {
            ok = false;
            cx.err(
                span,
                format!("`tone_hz` {} applies only to drive = \"tone\"", t.loc),
            );
        } else {
            spec.drive = Drive::Tone { hz };
        }
    } else if t.get("tone_hz").is_some() {
        ok = false;
    }
    match cx.num_in(t, "level", 0.0, true, 1.0, " (of full scale)") {
        Some((l, _)) => spec.level = l as f32,
        None if t.get("level").is_some() => ok = false,
        None => {}
    }
    ok.then_some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
format = "certlab-station/1"
[interface]
rate = 48000
[inputs]
microphone = 1
photodiode = 2
[outputs]
speaker = 1
led = 2
"#;

    fn errors(text: &str) -> Vec<String> {
        StationFile::parse(Path::new("st.toml"), text)
            .unwrap_err()
            .iter()
            .map(|d| d.render(Path::new("st.toml"), text))
            .collect()
    }

    #[test]
    fn a_good_file_maps_its_channels_from_one() {
        let s = StationFile::parse(Path::new("st.toml"), GOOD).unwrap();
        assert_eq!(s.rate, 48_000);
        assert_eq!(s.microphone.index, 0);
        assert_eq!(s.photodiode.as_ref().unwrap().index, 1);
        assert_eq!(s.led.as_ref().unwrap().index, 1);
        assert!(s.actuator.is_none());
        assert_eq!(s.led_drive, DriveSpec::default());
        assert_eq!(s.at(&s.microphone.span), "st.toml:6:14");
    }

    #[test]
    fn every_problem_is_named_at_its_position() {
        let text = "[interface]\nrate = 1000\nspeed = 3\n[inputs]\nmicrophone = 0\n\
                    photodiode = 2\nloopback = 2\n[outputs]\nspeaker = \"one\"\n\
                    [led]\ndrive = \"pwm\"\n";
        let e = errors(text);
        assert!(
            e.iter()
                .any(|m| m.starts_with("st.toml:2:8:") && m.contains("8000 to 384000")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("st.toml:3:1:") && m.contains("unknown key `speed`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("st.toml:5:14:") && m.contains("channel number")),
            "{e:?}"
        );
        assert!(
            e.iter().any(
                |m| m.starts_with("st.toml:7:12:") && m.contains("already `inputs.photodiode`")
            ),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("st.toml:9:11:") && m.contains("whole number")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("st.toml:11:9:") && m.contains("\"tone\"")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("two ends")), "{e:?}");
    }

    #[test]
    fn missing_tables_and_keys_are_named() {
        let e = errors("[interface]\n[inputs]\n");
        assert!(
            e.iter().any(|m| m.contains("missing required key `rate`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("missing required key `microphone`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("missing required key `outputs`")),
            "{e:?}"
        );
        let e = errors("[interface\n");
        assert!(e[0].contains("TOML syntax error"), "{e:?}");
    }

    #[test]
    fn a_dc_drive_takes_no_tone() {
        let text = format!("{GOOD}[actuator]\ndrive = \"dc\"\ntone_hz = 1000\n");
        let e = errors(&text);
        assert!(
            e.iter()
                .any(|m| m.contains("applies only to drive = \"tone\"")),
            "{e:?}"
        );
        let text = format!("{GOOD}[actuator]\ndrive = \"dc\"\nlevel = 0.5\n");
        let s = StationFile::parse(Path::new("st.toml"), &text).unwrap();
        assert_eq!(
            s.actuator_drive,
            DriveSpec {
                drive: Drive::Dc,
                level: 0.5
            }
        );
    }
}
