//! The profile library API: shipped profiles, diagnostics, robustness.

use std::path::{Path, PathBuf};

use certlab::profile::{
    parse_profile, DeviceClass, Profile, Requirement, StepKind, StimulusKind, Unit,
};
use certlab::statistic::Statistic;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn shipped_path(id: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(format!("{id}.toml"))
}

fn load(id: &str) -> Profile {
    let path = shipped_path(id);
    Profile::load(&path).unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn kinds(p: &Profile) -> Vec<StepKind> {
    p.steps.iter().map(|s| s.kind).collect()
}

#[test]
fn shipped_profiles_load_and_say_they_are_proxies() {
    for id in ["speakerphone", "headset", "camera", "room-system"] {
        let path = shipped_path(id);
        let bytes = std::fs::read(&path).unwrap();
        let p = load(id);
        assert_eq!(p.id, id);
        assert_eq!(p.format, 1);
        assert_eq!(p.version, "1.0.0");
        assert_eq!(p.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(p.source, path);
        let head: String = String::from_utf8(bytes)
            .unwrap()
            .lines()
            .take(6)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(head.contains("PUBLIC PROXIES"), "{id}: {head}");
        assert!(head.contains("NOT the"), "{id}");
        // Every latency step has a limit, and each step's shots fit in its timeout.
        for s in &p.steps {
            if s.kind.is_latency() {
                assert!(!s.limits.is_empty(), "{id}/{}", s.id);
                let total_s = f64::from(s.params.shots) * s.params.interval_ms / 1000.0;
                assert!(total_s <= 15.0, "{id}/{} takes {total_s} s", s.id);
            }
        }
    }
}

#[test]
fn shipped_list_finds_all_four() {
    let ids: Vec<String> = certlab::profile::shipped()
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect();
    for id in ["camera", "headset", "room-system", "speakerphone"] {
        assert!(ids.iter().any(|i| i == id), "{ids:?}");
    }
}

#[test]
fn speakerphone_contents() {
    let p = load("speakerphone");
    assert_eq!(p.program, "teams-usb-audio");
    assert_eq!(p.device_class, DeviceClass::Speakerphone);
    assert_eq!(
        kinds(&p),
        vec![
            StepKind::AudioSendLatency,
            StepKind::AudioReceiveLatency,
            StepKind::AudioRoundtripLatency,
            StepKind::ButtonHidLatency,
            StepKind::UsbConformance,
        ]
    );
    let send = &p.steps[0];
    assert_eq!(send.id, "send-latency");
    assert_eq!(send.params.shots, 30);
    assert_eq!(send.params.interval_ms, 300.0);
    assert_eq!(send.params.max_missed, 3);
    assert_eq!(send.limits[0].statistic, Statistic::Median);
    assert_eq!(send.limits[0].max, Some(60.0));
    assert_eq!(send.limits[0].unit, Unit::Ms);
    assert_eq!(send.limits[0].marginal, Some(5.0));
    assert_eq!(p.steps[3].params.hid_usage, "0x0b:0x20");
    let reqs: Vec<String> = p.steps[4]
        .params
        .requirements
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        reqs,
        [
            "audio-playback",
            "audio-capture",
            "sample-rate:48000",
            "hid-hook-switch",
            "hid-phone-mute",
            "hid-mute-led",
            "serial-number"
        ]
    );
    assert!(p.steps[4].limits.is_empty());
}

#[test]
fn headset_contents() {
    let p = load("headset");
    assert_eq!(p.program, "teams-usb-audio");
    assert_eq!(p.device_class, DeviceClass::Headset);
    let stimuli: Vec<StimulusKind> = p.steps[..3].iter().map(|s| s.params.stimulus).collect();
    assert!(stimuli.contains(&StimulusKind::Speech));
    assert!(stimuli.contains(&StimulusKind::Sweep));
    let usb = p
        .steps
        .iter()
        .find(|s| s.kind == StepKind::UsbConformance)
        .unwrap();
    assert!(usb
        .params
        .requirements
        .contains(&Requirement::SampleRate(16000)));
    assert!(usb
        .params
        .requirements
        .contains(&Requirement::SampleRate(48000)));
}

#[test]
fn camera_contents() {
    let p = load("camera");
    assert_eq!(p.program, "teams-usb-video");
    assert_eq!(p.device_class, DeviceClass::Camera);
    assert_eq!(
        kinds(&p),
        vec![StepKind::VideoLatency, StepKind::UsbConformance]
    );
    let v = &p.steps[0];
    assert_eq!(v.params.led_roi, [0.4, 0.4, 0.2, 0.2]);
    assert_eq!(v.params.interval_ms, 500.0);
    assert_eq!(v.limits[0].statistic, Statistic::Median);
    assert_eq!(v.limits[0].max, Some(200.0));
    let reqs: Vec<String> = p.steps[1]
        .params
        .requirements
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        reqs,
        ["video-mode:1920x1080@30:MJPEG,H264", "serial-number"]
    );
}

#[test]
fn room_system_contents() {
    let p = load("room-system");
    assert_eq!(p.program, "teams-room-system");
    assert_eq!(p.device_class, DeviceClass::RoomSystem);
    assert_eq!(
        kinds(&p),
        vec![
            StepKind::AudioSendLatency,
            StepKind::AudioReceiveLatency,
            StepKind::VideoLatency,
            StepKind::SerialConformance,
        ]
    );
    let serial = &p.steps[3];
    assert_eq!(serial.params.baud, 115200);
    assert!((4..=5).contains(&serial.params.commands.len()));
    let first = &serial.params.commands[0];
    assert_eq!(first.send, "xStatus SystemUnit Software Version");
    let re = regex::Regex::new(&first.expect).unwrap();
    assert!(re.is_match(r#"*s SystemUnit Software Version: "ce11.5.1""#));
    assert!(serial.limits.iter().all(|l| l.max.unwrap() <= 200.0));
}

/// Diagnostics of `text` rendered against `bad.toml`.
fn diagnostics(text: &str) -> Vec<String> {
    match parse_profile(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(d) => d
            .iter()
            .map(|d| d.render(Path::new("bad.toml"), text))
            .collect(),
    }
}

const MALFORMED: &str = r#"format = 1
version = "1.0.0"
program = "teams-usb-audio"
device_class = "speakerphone"
title = "Broken"

[[steps]]
id = "send-latency"
kind = "audio-send-latency"
shot = 30
interval_ms = 250

[[steps.limits]]
statistic = "median"
max = 60.0
unit = "dB"

[[steps]]
id = "send-latency"
kind = "audio-sideways-latency"

[[steps]]
id = "usb"
kind = "usb-conformance"
requirements = ["audio-playback", "sample-rate:44.1k"]

[[steps]]
id = "control"
kind = "serial-conformance"
commands = [{ send = "xStatus", expect = '^\*s (unclosed$' }]
"#;

#[test]
fn malformed_profile_reports_every_problem_where_it_is() {
    let d = diagnostics(MALFORMED);
    let expected = [
        "bad.toml:1:1: missing required key `id` at the top level (e.g. id = \"speakerphone\")",
        "bad.toml:10:1: unknown key `shot` in step `send-latency` (did you mean `shots`?); \
         audio-send-latency steps take: id, kind, title, timeout_s, limits, shots, interval_ms, \
         stimulus, stimulus_ms, sample_rate, max_latency_ms, max_missed",
        "bad.toml:11:15: shots overlap in step `send-latency`: interval_ms (250 ms) must be at \
         least stimulus_ms + max_latency_ms (100 + 200 = 300 ms)",
        "bad.toml:16:8: unit \"dB\" is not a time unit; audio-send-latency limits take ms, us or s",
        "bad.toml:19:6: duplicate step id `send-latency`; each step's id must be unique within \
         the profile",
        "bad.toml:20:8: unknown step kind \"audio-sideways-latency\" in step `send-latency`; \
         valid kinds are: audio-send-latency, audio-receive-latency, audio-roundtrip-latency, \
         video-latency, button-hid-latency, usb-conformance, serial-conformance",
    ];
    for e in expected {
        assert!(
            d.iter().any(|x| x == e),
            "missing:\n{e}\nin:\n{}",
            d.join("\n")
        );
    }
    let req = d
        .iter()
        .find(|x| x.starts_with("bad.toml:25:35: "))
        .unwrap_or_else(|| panic!("no requirement error in:\n{}", d.join("\n")));
    assert!(
        req.contains("\"sample-rate:44.1k\" needs a whole number of hertz"),
        "{req}"
    );
    let re = d
        .iter()
        .find(|x| x.starts_with("bad.toml:30:42: "))
        .unwrap_or_else(|| panic!("no regex error in:\n{}", d.join("\n")));
    assert!(
        re.contains("`expect` in command 1 of step `control` is not a valid regular expression: unclosed group"),
        "{re}"
    );
    assert_eq!(d.len(), expected.len() + 2, "{}", d.join("\n"));
}

#[test]
fn toml_syntax_error_points_where_the_parser_says() {
    let text = "format = 1\nid = \"x\"\ntitle = \"unterminated\n";
    let d = diagnostics(text);
    assert_eq!(
        d,
        ["bad.toml:3:22: TOML syntax error: invalid basic string, expected `\"`"]
    );
}

#[test]
fn limit_rules() {
    let base = std::fs::read_to_string(shipped_path("speakerphone")).unwrap();
    let with_limit = |limit: &str| {
        base.replacen(
            "[[steps.limits]]\nstatistic = \"median\"\nmax = 60.0\nunit = \"ms\"\nmarginal = 5.0\n",
            limit,
            1,
        )
    };
    let d = diagnostics(&with_limit(
        "[[steps.limits]]\nstatistic = \"avg\"\nmin = 50\nmax = 40\nunit = \"ms\"\nmarginal = -1\n",
    ));
    let all = d.join("\n");
    assert!(all.contains("unknown statistic \"avg\""), "{all}");
    assert!(all.contains("`min` (50) is above `max` (40)"), "{all}");
    assert!(all.contains("the marginal band must be 0 or more"), "{all}");
    let d = diagnostics(&with_limit(
        "[[steps.limits]]\nstatistic = \"median\"\nmin = 10\nmax = 20\nunit = \"s\"\nmarginal = 5\n",
    ));
    assert!(
        d[0].contains("2 × marginal must be less than max − min (10)"),
        "{d:?}"
    );
    let d = diagnostics(&with_limit(
        "[[steps.limits]]\nstatistic = \"median\"\nunit = \"ms\"\n",
    ));
    assert!(
        d[0].contains("has no bound; give `min`, `max` or both"),
        "{d:?}"
    );
    // A limit on a usb-conformance step is an error at the `limits` key.
    let text = base.replace(
        "timeout_s = 30\nrequirements",
        "timeout_s = 30\nlimits = [{ statistic = \"median\", max = 1, unit = \"ms\" }]\nrequirements",
    );
    let d = diagnostics(&text);
    assert!(
        d[0].contains("usb-conformance steps take no limits"),
        "{d:?}"
    );
}

#[test]
fn inline_limits_equal_tables() {
    let tables = std::fs::read_to_string(shipped_path("camera")).unwrap();
    let inline = tables.replace(
        "\n[[steps.limits]]\nstatistic = \"median\"\nmax = 200.0\nunit = \"ms\"\nmarginal = 10.0\n\n[[steps.limits]]\nstatistic = \"p95\"\nmax = 250.0\nunit = \"ms\"\nmarginal = 10.0\n",
        "limits = [\n  { statistic = \"median\", max = 200, unit = \"ms\", marginal = 10 },\n  { statistic = \"p95\", max = 250.0, unit = \"ms\", marginal = 10.0 },\n]\n",
    );
    assert_ne!(tables, inline);
    let a = parse_profile(&tables).unwrap();
    let b = parse_profile(&inline).unwrap();
    assert_eq!(a.steps, b.steps);
}

#[test]
fn wrong_types_and_ranges() {
    let base = std::fs::read_to_string(shipped_path("camera")).unwrap();
    let text = base
        .replace("shots = 30", "shots = \"thirty\"")
        .replace(
            "led_roi = [0.4, 0.4, 0.2, 0.2]",
            "led_roi = [0.9, 0.4, 0.2, 0.2]",
        )
        .replace("format = 1", "format = 2");
    let d = diagnostics(&text);
    let all = d.join("\n");
    assert!(all.contains("profile format 2 is not supported"), "{all}");
    assert!(
        all.contains(
            "`shots` in step `video-latency` must be a whole number (integer), not a string"
        ),
        "{all}"
    );
    assert!(
        all.contains("`led_roi` in step `video-latency` extends past the edge"),
        "{all}"
    );
}

fn shipped_texts() -> Vec<String> {
    ["speakerphone", "headset", "camera", "room-system"]
        .iter()
        .map(|id| std::fs::read_to_string(shipped_path(id)).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = parse_profile(&text);
    }

    #[test]
    fn toml_like_text_never_panics(text in "[a-z_=\\[\\]{}\"'.,0-9 \n#-]{0,300}") {
        if let Err(d) = parse_profile(&text) {
            for x in d {
                let _ = x.render(Path::new("f"), &text);
            }
        }
    }

    #[test]
    fn mutated_profiles_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..40, "\\PC{0,12}"), 1..6),
    ) {
        let mut text = shipped_texts()[which].clone();
        for (at, del, ins) in edits {
            let mut start = at.index(text.len() + 1);
            while !text.is_char_boundary(start) { start -= 1; }
            let mut end = (start + del).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(start..end, &ins);
        }
        match parse_profile(&text) {
            Ok(p) => prop_assert!(!p.steps.is_empty()),
            Err(d) => {
                prop_assert!(!d.is_empty());
                for x in d {
                    prop_assert!(x.span.start <= text.len());
                    let _ = x.render(Path::new("f"), &text);
                }
            }
        }
    }

    #[test]
    fn value_swaps_never_panic(
        which in 0usize..4,
        line in any::<prop::sample::Index>(),
        value in prop_oneof![
            Just("-1".to_string()), Just("0".to_string()), Just("1e400".to_string()),
            Just("nan".to_string()), Just("inf".to_string()), Just("99999999999999999999".to_string()),
            Just("[]".to_string()), Just("{}".to_string()), Just("\"\"".to_string()),
            Just("true".to_string()), Just("1979-05-27".to_string()), Just("[1, \"a\"]".to_string()),
            Just("0x7fffffffffffffff".to_string()), Just("-0.0".to_string()),
        ],
    ) {
        let text = shipped_texts()[which].clone();
        let lines: Vec<&str> = text.lines().collect();
        let i = line.index(lines.len());
        let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        if let Some((k, _)) = lines[i].split_once(" = ") {
            out[i] = format!("{k} = {value}");
        }
        let _ = parse_profile(&out.join("\n"));
    }
}
