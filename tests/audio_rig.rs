//! End to end through the real binary: the audio-interface rig
//! (`--rig audio:sim`, the simulated interface behind the same `Interface`
//! trait as ALSA's). A profile's latency steps measure the simulated DUT's
//! latencies plus what the interface's converters add (the station's own
//! path, which only a station calibration subtracts: tests/calibrate.rs) within the stated
//! uncertainty; `certlab probe rig` finds the interface's loopback latency;
//! and every bad input has its message and exit code.

mod common;

use common::*;

const SCENARIO: &str = "fixtures/sim/speakerphone-audio-rig.toml";

/// What the simulated interface adds to each step kind, ms: its output's
/// latency to what the rig emits, its input's to what the rig hears.
fn interface_adds(scenario: &toml::Value, kind: &str) -> f64 {
    let i = &scenario["interface"];
    let out = i["output_latency_us"].as_float().unwrap() / 1e3;
    let inp = i["input_latency_us"].as_float().unwrap() / 1e3;
    match kind {
        "audio-send-latency" | "button-hid-latency" => out,
        "audio-receive-latency" => inp,
        // Played back through the rig's routing: heard (input), then played (output).
        "audio-roundtrip-latency" => inp + out,
        k => panic!("no truth for {k}"),
    }
}

#[test]
fn speakerphone_runs_on_the_audio_interface_rig_and_measures_the_truth() {
    let (o, dir) = run_sim_with(
        "profiles/speakerphone.toml",
        "sim",
        Some(SCENARIO),
        &["--rig", "audio:sim"],
    );
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    assert!(out.contains("OUTCOME: PASS"), "{out}");
    let r = read_json(&dir.path().join("report/report.json"));
    let rig = &r["station"]["rig"];
    assert!(
        rig["kind"]
            .as_str()
            .unwrap()
            .starts_with("audio interface sim"),
        "{rig}"
    );
    assert_eq!(rig["mic_sample_rates"], serde_json::json!([48000]));
    assert_eq!(rig["loopback_delay_us"], 20000);
    // The xruns are recorded, and there are none.
    assert_eq!(r["station"]["rig_link"]["xruns"], 0);
    assert_eq!(r["station"]["clock"], "virtual");
    // One clock: the sync's bound is no link's round trip but the output
    // frame clock's placement error (σ 150 µs stamps over 2 s of periods).
    let bound = r["clock_sync"]["bound_us"].as_f64().unwrap();
    assert!((10.0..200.0).contains(&bound), "bound {bound} µs");
    let sc = scenario(SCENARIO);
    let mut checked = 0;
    for s in r["steps"].as_array().unwrap() {
        let kind = s["kind"].as_str().unwrap();
        let Some(dut) = truth(&sc, kind) else {
            continue;
        };
        let want = dut + interface_adds(&sc, kind);
        let median = s["stats"]["median"].as_f64().unwrap();
        let u = s["median_uncertainty_ms"].as_f64().unwrap();
        assert!(u > 0.0 && u < 3.0, "{kind}: uncertainty {u}");
        assert_median_covers(kind, median, want, u);
        assert_eq!(s["anomalies"]["station_missed_shots"], 0, "{kind}");
        checked += 1;
    }
    assert_eq!(checked, 4, "send, receive, round trip and button");
}

#[test]
fn headset_runs_on_the_audio_interface_rig() {
    let (o, dir) = run_sim_with(
        "profiles/headset.toml",
        "sim:headset",
        None,
        &["--rig", "audio:sim"],
    );
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let r = read_json(&dir.path().join("report/report.json"));
    let sc = scenario("fixtures/sim/headset.toml");
    // The headset's scenario keeps the interface's defaults: 310 µs out, 270 µs in.
    for s in r["steps"].as_array().unwrap() {
        let kind = s["kind"].as_str().unwrap();
        let Some(dut) = truth(&sc, kind) else {
            continue;
        };
        let adds = match kind {
            "audio-receive-latency" => 0.27,
            "audio-roundtrip-latency" => 0.58,
            _ => 0.31,
        };
        let median = s["stats"]["median"].as_f64().unwrap();
        let u = s["median_uncertainty_ms"].as_f64().unwrap();
        assert_median_covers(kind, median, dut + adds, u);
    }
}

#[test]
fn probe_shows_the_map_the_levels_and_the_loopback_latency() {
    let o = certlab()
        .args(["probe", "rig", "--rig", "audio:sim", "--acoustic", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["inputs"], 4);
    assert_eq!(j["microphone_live"], true);
    assert_eq!(j["xruns"], 0);
    let parts: Vec<&str> = j["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["part"].as_str().unwrap())
        .collect();
    assert!(parts.contains(&"inputs.microphone") && parts.contains(&"outputs.actuator"));
    let levels = j["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 4);
    // The microphone's noise floor (the scenario's -60 dBFS), the others the converter's.
    let mic = levels[0]["rms_dbfs"].as_f64().unwrap();
    assert!((mic + 60.0).abs() < 1.0, "microphone at {mic} dBFS");
    assert!(levels[2]["rms_dbfs"].as_f64().unwrap() < -100.0);
    // The default interface: 310 µs out + 270 µs in.
    let lb = &j["loopback"];
    let (m, u) = (
        lb["median_us"].as_f64().unwrap(),
        lb["median_uncertainty_us"].as_f64().unwrap(),
    );
    assert!(u > 0.0 && u < 50.0, "loopback ±{u} µs");
    assert!(
        (m - 580.0).abs() <= 1.5 * u,
        "loopback {m} ± {u} µs, truth 580 µs"
    );
    // Speaker to microphone: out + the rig's acoustic path (512.5 µs) + in.
    let ac = &j["acoustic"];
    let (m, u) = (
        ac["median_us"].as_f64().unwrap(),
        ac["median_uncertainty_us"].as_f64().unwrap(),
    );
    assert!(
        (m - 1092.5).abs() <= 1.5 * u,
        "acoustic {m} ± {u} µs, truth 1092.5 µs"
    );
    // And as text, for a lab engineer.
    let o = certlab()
        .args(["probe", "rig", "--rig", "audio:sim"])
        .output()
        .unwrap();
    let t = stdout(&o);
    assert_eq!(code(&o), 0, "{t}");
    assert!(
        t.contains("input  1 microphone") && t.contains("loopback (output to input):"),
        "{t}"
    );
}

/// A station file in a temporary directory.
fn station_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("station.toml");
    std::fs::write(&p, text).unwrap();
    (d, p)
}

const WIRED: &str = "[interface]\nrate = 48000\n[inputs]\nmicrophone = 1\n[outputs]\nspeaker = 1\n";

#[test]
fn a_channel_the_interface_lacks_is_refused_at_its_position() {
    let (_d, p) =
        station_file(&WIRED.replace("microphone = 1\n", "microphone = 1\nphotodiode = 6\n"));
    for args in [
        vec!["probe", "rig", "--rig", "audio:sim", "--station"],
        vec![
            "run",
            "speakerphone",
            "--device",
            "sim",
            "--vendor",
            "demo",
            "--rig",
            "audio:sim",
            "--station",
        ],
    ] {
        let o = certlab().args(&args).arg(&p).output().unwrap();
        let e = stderr(&o);
        assert_eq!(code(&o), 2, "{args:?}: {e}");
        assert!(
            e.contains("station.toml:5:14: `inputs.photodiode` is input channel 6, but the audio interface sim has 4 input channels"),
            "{e}"
        );
    }
}

#[test]
fn a_rate_the_interface_refuses_is_refused() {
    let (_d, p) = station_file(&WIRED.replace("48000", "22050"));
    let o = certlab()
        .args(["probe", "rig", "--rig", "audio:sim", "--station"])
        .arg(&p)
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(code(&o), 2, "{e}");
    assert!(
        e.contains("refuses 22050 Hz") && e.contains("station.toml:2:8"),
        "{e}"
    );
}

#[test]
fn a_silent_reference_microphone_stops_the_run() {
    let o = certlab()
        .args([
            "run",
            "speakerphone",
            "--device",
            "sim",
            "--vendor",
            "demo",
            "--rig",
            "audio:sim",
            "--scenario",
            "fixtures/sim/speakerphone-audio-rig-silent.toml",
        ])
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(code(&o), 2, "{e}");
    assert!(
        e.contains("no signal on the reference microphone (input 1"),
        "{e}"
    );
}

#[test]
fn a_bad_station_file_is_bad_input_with_positions() {
    let (_d, p) = station_file(
        "[interface]\nrate = 48000\n[inputs]\nmicrophone = 0\n[outputs]\nspeakr = 1\n",
    );
    let o = certlab()
        .args(["probe", "rig", "--rig", "audio:sim", "--station"])
        .arg(&p)
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(code(&o), 3, "{e}");
    assert!(
        e.contains("station.toml:4:14:") && e.contains("channel number"),
        "{e}"
    );
    assert!(e.contains("station.toml:6:1: unknown key `speakr`"), "{e}");
    assert!(e.contains("missing required key `speaker`"), "{e}");
}

#[test]
fn a_real_interface_needs_a_station_file_and_a_real_device() {
    let o = certlab()
        .args(["probe", "rig", "--rig", "audio:hw:CARD=Scarlett"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("needs --station FILE"),
        "{}",
        stderr(&o)
    );
    // A simulated device cannot be measured by a real interface.
    let o = certlab()
        .args([
            "run",
            "speakerphone",
            "--device",
            "sim",
            "--vendor",
            "demo",
            "--rig",
            "audio:hw:0",
            "--station",
            "fixtures/sim/audio-station.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("only a simulated rig can measure it"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_alsa_device_that_does_not_exist_is_named() {
    let o = certlab()
        .args([
            "probe",
            "rig",
            "--rig",
            "audio:hw:CARD=NoSuchCertlabCard",
            "--station",
            "fixtures/sim/audio-station.toml",
        ])
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(code(&o), 2, "{e}");
    if cfg!(feature = "alsa") {
        assert!(
            e.contains("no ALSA device hw:CARD=NoSuchCertlabCard"),
            "{e}"
        );
    } else {
        assert!(
            e.contains("needs certlab built with `--features alsa`"),
            "{e}"
        );
    }
}
