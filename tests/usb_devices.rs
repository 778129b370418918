//! End to end through the real binary: `certlab devices` on every USB
//! fixture (classes, formats, rates, HID usages, matching profiles, parse
//! errors), `--snapshot` round trips, `--device usb:...` matching and
//! refusal, and the USB conformance step's per-requirement evidence on
//! simulated DUTs whose identity is a USB fixture.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

fn devices_json(root: &Path) -> Value {
    let o = certlab()
        .args(["devices", "--json", "--sysfs"])
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// (fixture, classes, sample rates, first video format, named HID usages, profiles)
type Case = (
    &'static str,
    Value,
    Value,
    Value,
    Value,
    &'static [&'static str],
);

#[test]
fn devices_reports_every_fixture() {
    // (fixture, classes, sample rates, first video format, named HID usages, profiles)
    let cases: &[Case] = &[
        (
            "speakerphone-uac1",
            json!(["audio", "hid"]),
            json!([16000, 48000]),
            Value::Null,
            json!([
                "hook-switch",
                "phone-mute",
                "led-mute",
                "led-off-hook",
                "led-ring"
            ]),
            &["headset", "speakerphone"],
        ),
        (
            "speakerphone-nomute",
            json!(["audio", "hid"]),
            json!([16000, 48000]),
            Value::Null,
            json!(["hook-switch", "led-mute"]),
            &[],
        ),
        (
            "headset-uac2",
            json!(["audio", "hid"]),
            json!([16000, 48000]),
            Value::Null,
            json!([
                "hook-switch",
                "flash",
                "redial",
                "speakerphone",
                "phone-mute",
                "led-mute",
                "led-off-hook",
                "led-ring",
                "led-hold"
            ]),
            &["headset", "speakerphone"],
        ),
        (
            "camera-uvc",
            json!(["video"]),
            Value::Null,
            json!("MJPEG"),
            Value::Null,
            &["camera"],
        ),
        (
            "videobar",
            json!(["audio", "video", "hid"]),
            json!([16000, 32000, 48000]),
            json!("MJPEG"),
            Value::Null,
            &["camera", "room-system", "speakerphone"],
        ),
        (
            "dongle-uac1",
            json!(["audio"]),
            json!([8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]),
            Value::Null,
            Value::Null,
            &[],
        ),
        (
            "certlab-rig",
            json!(["serial", "rig"]),
            Value::Null,
            Value::Null,
            Value::Null,
            &[],
        ),
    ];
    for (name, classes, rates, format, named, profiles) in cases {
        let v = devices_json(&root().join("fixtures/usb").join(name));
        let usb = v["usb"].as_array().unwrap();
        assert_eq!(usb.len(), 1, "{name}: root hubs are not listed: {v}");
        let d = &usb[0];
        assert_eq!(&d["classes"], classes, "{name}");
        assert_eq!(d["vid"], "1209", "{name}");
        assert_eq!(d["descriptors_sha256"].as_str().unwrap().len(), 64);
        if rates.is_null() {
            assert!(d["audio"].is_null(), "{name}");
        } else {
            assert_eq!(&d["audio"]["sample_rates"], rates, "{name}");
            assert_eq!(d["audio"]["playback"], true, "{name}");
            assert_eq!(d["audio"]["capture"], true, "{name}");
        }
        if format.is_null() {
            assert!(d["video"].is_null(), "{name}");
        } else {
            assert_eq!(&d["video"]["formats"][0]["format"], format, "{name}");
        }
        if !named.is_null() {
            assert_eq!(&d["hid"]["named"], named, "{name}");
            for u in d["hid"]["usages"].as_array().unwrap() {
                let u = u.as_str().unwrap();
                let (p, i) = u.split_once(':').unwrap();
                for part in [p, i] {
                    let hex = part.strip_prefix("0x").unwrap();
                    assert!(hex.len() >= 2 && hex == hex.to_lowercase(), "{u}");
                }
            }
        }
        assert_eq!(
            sorted(&d["profiles"]),
            *profiles,
            "{name}: {}",
            d["profiles"]
        );
        assert!(
            d["errors"].as_array().unwrap().is_empty(),
            "{name}: {}",
            d["errors"]
        );
        assert!(v["serial"].is_array() && v["notes"].is_array());
    }
    // The camera's formats and the headset's UAC2 rates in detail.
    let v = devices_json(&root().join("fixtures/usb/camera-uvc"));
    let formats: Vec<&str> = v["usb"][0]["video"]["formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["MJPEG", "YUY2", "H264"]);
    assert_eq!(
        v["usb"][0]["video"]["formats"][0]["frames"][0],
        json!({"width": 1920, "height": 1080, "fps": [30.0]})
    );
    let v = devices_json(&root().join("fixtures/usb/headset-uac2"));
    for s in v["usb"][0]["audio"]["streams"].as_array().unwrap() {
        assert_eq!(s["uac"], 2);
        assert_eq!(s["rates_from_clock"], 16, "{s}");
        assert_eq!(s["sample_rates"], json!([16000, 48000]));
    }
}

#[test]
fn malformed_devices_are_listed_with_their_error_and_exit_0() {
    for (name, error) in [
        ("malformed-loop", "descriptors: at byte 107"),
        ("malformed-total-length", "descriptors: at byte 20"),
    ] {
        let v = devices_json(&root().join("fixtures/usb").join(name));
        let d = &v["usb"][0];
        assert_eq!(d["classes"], json!([]), "{name}");
        assert!(
            d["errors"][0].as_str().unwrap().starts_with(error),
            "{name}: {d}"
        );
        assert_eq!(d["profiles"], json!([]), "{name}");
        let o = certlab()
            .args(["devices", "--sysfs"])
            .arg(root().join("fixtures/usb").join(name))
            .output()
            .unwrap();
        assert_eq!(code(&o), 0);
        assert!(
            stdout(&o).contains("error: descriptors: at byte"),
            "{}",
            stdout(&o)
        );
    }
}

#[test]
fn human_listing_shows_identity_interfaces_rates_usages_and_profiles() {
    let o = certlab()
        .args(["devices", "--sysfs", "fixtures/usb/speakerphone-uac1"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    for want in [
        "1-1  1209:0001  Certlab Fixtures SP-100 Speakerphone (fixture)",
        "serial \"SP100-0001234\"  firmware 1.02",
        "interfaces: 0 audio control, 1 audio streaming, 2 audio streaming, 3 HID",
        "audio: UAC1 playback + capture; rates 16000, 48000 Hz",
        "interface 1 alt 1: playback, 1 ch, 16 bit, 48000/16000 Hz",
        "HID: hook-switch, phone-mute, led-mute, led-off-hook, led-ring",
        "profiles: headset, speakerphone",
        "note: 1 USB hub(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let o = certlab()
        .args(["devices", "--sysfs", "fixtures/usb/dongle-uac1"])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(out.contains("profiles: none"), "{out}");
    assert!(out.contains("not speakerphone: hid-hook-switch:"), "{out}");
    assert!(!out.contains("a certlab rig"), "only a rig is one: {out}");
    // The reference rig is named as one, with the spec that reaches it.
    let o = certlab()
        .args(["devices", "--sysfs", "fixtures/usb/certlab-rig"])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("a certlab rig: measure with --rig usb:1209:000e:E66138935F4B2A28"),
        "{out}"
    );
}

#[test]
fn this_host_without_a_usb_stack_gets_a_note() {
    // /sys in this container has no bus/usb; on a host with USB this still exits 0.
    let o = certlab().args(["devices"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    if !Path::new("/sys/bus/usb/devices").exists() {
        assert!(stdout(&o).contains("note: no USB stack"), "{}", stdout(&o));
    }
}

#[test]
fn snapshot_round_trips_and_refuses_a_non_empty_dir() {
    let t = tempfile::tempdir().unwrap();
    let snap = t.path().join("snap");
    for name in ["videobar", "headset-uac2", "malformed-total-length"] {
        let _ = std::fs::remove_dir_all(&snap);
        let src = root().join("fixtures/usb").join(name);
        let o = certlab()
            .args(["devices", "--json", "--sysfs"])
            .arg(&src)
            .arg("--snapshot")
            .arg(&snap)
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let first: Value = serde_json::from_slice(&o.stdout).unwrap();
        let again = devices_json(&snap);
        assert_eq!(first["usb"], again["usb"], "{name}");
        assert!(!first["usb"].as_array().unwrap().is_empty());
    }
    let o = certlab()
        .args(["devices", "--sysfs", "fixtures/usb/videobar", "--snapshot"])
        .arg(&snap)
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
}

fn run_usb(spec: &str, sysfs: &str) -> std::process::Output {
    run_usb_with(spec, sysfs, &[])
}

fn run_usb_with(spec: &str, sysfs: &str, extra: &[&str]) -> std::process::Output {
    let t = tempfile::tempdir().unwrap();
    certlab()
        .env("CERTLAB_SYSFS", root().join(sysfs))
        .args([
            "run",
            "speakerphone",
            "--device",
            spec,
            "--vendor",
            "demo",
            "--out",
        ])
        .arg(t.path().join("r"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn usb_device_specs_are_matched_through_sysfs() {
    let o = run_usb("usb:1209:0001:WRONG", "fixtures/usb/speakerphone-uac1");
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("does not have serial number \"WRONG\"")
            && stderr(&o).contains("SP100-0001234"),
        "{}",
        stderr(&o)
    );
    let o = run_usb("usb:1209:0042", "fixtures/usb/speakerphone-uac1");
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no USB device matches usb:1209:0042: no device 1209:0042 is attached"),
        "{}",
        stderr(&o)
    );
    let o = run_usb("usb:1209:0001", "fixtures/usb/no-such-root");
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no USB stack"), "{}", stderr(&o));
    // A real device needs a real rig, by path or by USB identity; the
    // snapshot's speakerphone has no serial port to be one.
    let o = run_usb(
        "usb:1209:0001:SP100-0001234",
        "fixtures/usb/speakerphone-uac1",
    );
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("name its rig with --rig"),
        "{}",
        stderr(&o)
    );
    let o = run_usb_with(
        "usb:1209:0001:SP100-0001234",
        "fixtures/usb/speakerphone-uac1",
        &["--rig", "usb:1209:0001"],
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("the device 1209:0001 has no serial port"),
        "{}",
        stderr(&o)
    );
    let o = run_usb_with(
        "usb:1209:0001:SP100-0001234",
        "fixtures/usb/speakerphone-uac1",
        &["--rig", "serial:/dev/certlab-no-such-port"],
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no serial port at /dev/certlab-no-such-port"),
        "{}",
        stderr(&o)
    );
}

/// The speakerphone profile with only its USB conformance step (the latency
/// steps of a HID-less device would end in ERROR before it).
fn conformance_only(profile: &str, dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root().join("profiles").join(profile)).unwrap();
    let first = text.find("[[steps]]").unwrap();
    let usb = text.find("[[steps]]\nid = \"usb-descriptors\"").unwrap();
    let p = dir.join(profile);
    std::fs::write(&p, format!("{}{}", &text[..first], &text[usb..])).unwrap();
    p
}

fn usb_step(report: &Path) -> Value {
    let r = read_json(&report.join("report.json"));
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "usb-conformance")
        .cloned()
        .unwrap()
}

fn requirement<'a>(step: &'a Value, name: &str) -> &'a Value {
    step["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["requirement"] == name)
        .unwrap_or_else(|| panic!("{name} in {step}"))
}

#[test]
fn conformance_fails_a_dongle_without_hid_naming_the_hook_switch() {
    let t = tempfile::tempdir().unwrap();
    let profile = conformance_only("speakerphone.toml", t.path());
    let scenario = t.path().join("dongle.toml");
    std::fs::write(
        &scenario,
        "class = \"speakerphone\"\nseed = 1\n[identity]\nusb = \"dongle-uac1\"\n",
    )
    .unwrap();
    let (o, dir) = run_sim(
        profile.to_str().unwrap(),
        "sim",
        Some(scenario.to_str().unwrap()),
    );
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    let rdir = dir.path().join("report");
    let step = usb_step(&rdir);
    assert_eq!(step["outcome"], "FAIL");
    assert!(
        step["reason"].as_str().unwrap().contains("hid-hook-switch"),
        "{step}"
    );
    let hook = requirement(&step, "hid-hook-switch");
    assert_eq!(hook["met"], false);
    assert!(
        hook["evidence"]
            .as_str()
            .unwrap()
            .contains("no HID report descriptor"),
        "{hook}"
    );
    let play = requirement(&step, "audio-playback");
    assert_eq!(play["met"], true);
    assert!(
        play["evidence"]
            .as_str()
            .unwrap()
            .contains("interface 1 alt 1: UAC1"),
        "{play}"
    );
    let r = read_json(&rdir.join("report.json"));
    assert_eq!(r["device"]["pid"], "0005");
    assert_eq!(
        r["device"]["descriptors_sha256"].as_str().unwrap().len(),
        64
    );
}

#[test]
fn conformance_passes_good_devices_with_evidence() {
    let t = tempfile::tempdir().unwrap();
    for (profile, device, wanted) in [
        ("speakerphone.toml", "sim", "format descriptor at byte 0x"),
        ("headset.toml", "sim:headset", "recorded from clock 0x10"),
        ("camera.toml", "sim:camera", "MJPEG 1920x1080 at 30 fps"),
    ] {
        let p = conformance_only(profile, t.path());
        let (o, dir) = run_sim(p.to_str().unwrap(), device, None);
        assert_eq!(code(&o), 0, "{profile}: {}\n{}", stdout(&o), stderr(&o));
        let rdir = dir.path().join("report");
        let step = usb_step(&rdir);
        assert_eq!(step["outcome"], "PASS", "{step}");
        let all: String = step["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["met"], true, "{r}");
                r["evidence"].as_str().unwrap().to_string()
            })
            .collect();
        assert!(all.contains(wanted), "{profile}: {all}");
        let r = read_json(&rdir.join("report.json"));
        let d = &r["device"];
        for k in [
            "vid",
            "pid",
            "serial",
            "firmware",
            "manufacturer",
            "product",
        ] {
            assert!(!d[k].as_str().unwrap().is_empty(), "{profile}: device.{k}");
        }
        assert_eq!(d["descriptors_sha256"].as_str().unwrap().len(), 64);
    }
}

#[test]
fn a_scenario_cannot_both_name_a_usb_snapshot_and_hand_write_capabilities() {
    let t = tempfile::tempdir().unwrap();
    let scenario = t.path().join("bad.toml");
    std::fs::write(
        &scenario,
        "class = \"speakerphone\"\n[identity]\nusb = \"dongle-uac1\"\n[capabilities]\nhid_usages = [\"0x0b:0x20\"]\n",
    )
    .unwrap();
    let (o, _dir) = run_sim("speakerphone", "sim", Some(scenario.to_str().unwrap()));
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("capabilities.hid_usages is given"),
        "{}",
        stderr(&o)
    );
    std::fs::write(
        &scenario,
        "class = \"speakerphone\"\n[identity]\nusb = \"../etc\"\n",
    )
    .unwrap();
    let (o, _dir) = run_sim("speakerphone", "sim", Some(scenario.to_str().unwrap()));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}

#[test]
fn probe_hid_says_what_is_missing() {
    // A snapshot's device has no hidraw node: nothing to open.
    let o = certlab()
        .env(
            "CERTLAB_SYSFS",
            root().join("fixtures/usb/speakerphone-uac1"),
        )
        .args(["probe", "hid", "--device", "usb:1209:0001"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("has no hidraw node"), "{}", stderr(&o));
    let o = certlab()
        .args(["probe", "hid", "--device", "/dev/certlab-no-hidraw"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no such hidraw node"), "{}", stderr(&o));
    let o = certlab()
        .args([
            "probe",
            "hid",
            "--device",
            "/dev/null",
            "--set",
            "led-mute=x",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("not an integer"), "{}", stderr(&o));
    // A node that is not hidraw is refused by the kernel's answer, not guessed.
    let o = certlab()
        .args(["probe", "hid", "--device", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a hidraw node"), "{}", stderr(&o));
}

#[test]
fn probe_camera_and_audio_say_what_is_missing() {
    let o = certlab()
        .args(["probe", "camera", "--device", "/dev/certlab-no-video"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no such video node"), "{}", stderr(&o));
    let o = certlab()
        .env(
            "CERTLAB_SYSFS",
            root().join("fixtures/usb/speakerphone-uac1"),
        )
        .args(["probe", "camera", "--device", "usb:1209:0001"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("has no video node"), "{}", stderr(&o));
    let o = certlab()
        .args(["probe", "camera", "--device", "sim", "--frames", "3"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    // Without the alsa feature (the default build) audio says how to get it.
    let o = certlab()
        .args(["probe", "audio", "--playback", "null", "--capture", "null"])
        .output()
        .unwrap();
    if cfg!(feature = "alsa") {
        assert_eq!(code(&o), 2, "null never carries the bursts back");
    } else {
        assert_eq!(code(&o), 2);
        assert!(stderr(&o).contains("--features alsa"), "{}", stderr(&o));
    }
    // A USB identity is resolved to the device's ALSA card first, with or
    // without the feature: the fixture has no card bound, and says so.
    let o = certlab()
        .env(
            "CERTLAB_SYSFS",
            root().join("fixtures/usb/speakerphone-uac1"),
        )
        .args(["probe", "audio", "--playback", "usb:1209:0001"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("usb:1209:0001 has no ALSA card"),
        "{}",
        stderr(&o)
    );
    let o = certlab()
        .env(
            "CERTLAB_SYSFS",
            root().join("fixtures/usb/speakerphone-uac1"),
        )
        .args(["probe", "audio", "--playback", "usb:1209:0fff"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}
