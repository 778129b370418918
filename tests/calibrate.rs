//! End to end through the real binary: station calibration. `certlab
//! calibrate` finds the simulated interface's loopback and the rig's
//! speaker-to-microphone path within their stated uncertainties of the
//! scenario's truth; a run given the calibrated station file records it
//! and loses the station's own path from its figures (the uncalibrated run
//! shows it, many times its uncertainty); and a calibration for another
//! rig, a stale one, a missing one the profile needs, a malformed file and
//! a dead microphone each stop with their message and exit code.

mod common;

use std::path::Path;

use common::*;

/// Latencies that barely vary from shot to shot, so that the interface's
/// few hundred µs stand out of the sampling error.
const STEADY: &str = "fixtures/sim/speakerphone-audio-rig-steady.toml";

fn calibrate(args: &[&str], out: &Path) -> std::process::Output {
    certlab()
        .arg("calibrate")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn table(path: &Path) -> toml::Value {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A term of a written calibration: (latency, uncertainty), µs.
fn term(cal: &toml::Value, name: &str) -> (f64, f64) {
    let t = &cal["calibration"][name];
    (
        t["latency_us"].as_float().unwrap(),
        t["uncertainty_us"].as_float().unwrap(),
    )
}

/// The median and its uncertainty of a step of a report, ms.
fn step(r: &serde_json::Value, id: &str) -> (f64, f64, serde_json::Value) {
    let s = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"));
    (
        s["stats"]["median"].as_f64().unwrap(),
        s["median_uncertainty_ms"].as_f64().unwrap(),
        s.clone(),
    )
}

#[test]
fn a_calibrated_audio_rig_loses_its_own_path_from_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("station.toml");
    let o = calibrate(&["--rig", "audio:sim", "--scenario", STEADY], &st);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("loopback (output to input):"),
        "{}",
        stdout(&o)
    );
    // The written file is the shipped channel map with a [calibration],
    // whose terms hold the truth within their uncertainty.
    let cal = table(&st);
    assert_eq!(cal["inputs"]["microphone"].as_integer(), Some(1));
    assert_eq!(
        cal["calibration"]["rig_serial"].as_str(),
        Some("SIM-IFACE-0001")
    );
    let sc = scenario(STEADY);
    let out_us = sc["interface"]["output_latency_us"].as_float().unwrap();
    let in_us = sc["interface"]["input_latency_us"].as_float().unwrap();
    let air_us = sc["audio"]["rig_acoustic_path_us"].as_float().unwrap();
    let (l, lu) = term(&cal, "loopback");
    assert!(
        (l - (out_us + in_us)).abs() <= lu,
        "loopback {l} ± {lu} µs, truth {}",
        out_us + in_us
    );
    assert!(lu < 30.0, "loopback uncertainty {lu} µs");
    let (a, au) = term(&cal, "acoustic");
    let want = out_us + in_us + air_us;
    assert!(
        (a - want).abs() <= au,
        "acoustic {a} ± {au} µs, truth {want}"
    );

    let (plain, d1) = run_sim_with(
        "profiles/speakerphone.toml",
        "sim",
        Some(STEADY),
        &["--rig", "audio:sim"],
    );
    assert_eq!(code(&plain), 0, "{}", stderr(&plain));
    let st_arg = st.to_str().unwrap();
    let (calibrated, d2) = run_sim_with(
        "profiles/speakerphone.toml",
        "sim",
        Some(STEADY),
        &["--rig", "audio:sim", "--station", st_arg],
    );
    assert_eq!(code(&calibrated), 0, "{}", stderr(&calibrated));
    let r0 = read_json(&d1.path().join("report/report.json"));
    let r1 = read_json(&d2.path().join("report/report.json"));
    assert!(r0["station"].get("calibration").is_none());
    let rec = &r1["station"]["calibration"];
    assert_eq!(rec["rig_serial"], "SIM-IFACE-0001");
    assert_eq!(rec["sha256"].as_str().unwrap().len(), 64);
    assert!(rec.get("refused").is_none(), "{rec}");
    assert!(
        (0.0..0.01).contains(&rec["age_days"].as_f64().unwrap()),
        "{rec}"
    );
    let uses: Vec<_> = rec["terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["use"].as_str().unwrap()))
        .collect();
    assert_eq!(uses, [("loopback", "subtracted"), ("acoustic", "recorded")]);

    for (id, kind, adds) in [
        ("send-latency", "audio-send-latency", out_us),
        ("receive-latency", "audio-receive-latency", in_us),
        (
            "roundtrip-latency",
            "audio-roundtrip-latency",
            out_us + in_us,
        ),
    ] {
        let truth = truth(&sc, kind).unwrap();
        let (m0, u0, _) = step(&r0, id);
        let (m1, u1, s1) = step(&r1, id);
        // Uncalibrated, the figure holds what the interface adds, far
        // outside its uncertainty; calibrated, it covers the truth.
        assert!(
            (m0 - truth - adds / 1e3).abs() <= 1.5 * u0 && (m0 - truth).abs() > 3.0 * u0,
            "{id} uncalibrated: {m0:.4} ± {u0:.4} ms, truth {truth} + {adds} µs"
        );
        assert_median_covers(id, m1, truth, u1);
        let c = &s1["station_corrections"][0];
        assert_eq!(c["term"], "loopback");
        let sub = c["subtracted_us"].as_f64().unwrap();
        assert!(
            ((m0 - m1) * 1e3 - sub).abs() < 60.0,
            "{id}: {m0} → {m1}, {c}"
        );
    }
    // The round trip passes through both converters: it loses all of the
    // loopback with the loopback's own uncertainty, and stays tight.
    let (_, u_rt, s_rt) = step(&r1, "roundtrip-latency");
    assert_eq!(s_rt["station_corrections"][0]["share"], "whole");
    assert!(u_rt < 0.05, "round trip ± {u_rt} ms");
    // Send and receive cannot know how the loopback splits: the split's
    // whole range is in their uncertainty.
    let (_, u_send, s_send) = step(&r1, "send-latency");
    assert_eq!(s_send["station_corrections"][0]["share"], "output");
    assert!(u_send > l / 2.0 / 1e3 / 3f64.sqrt(), "send ± {u_send} ms");
    // The view shows the calibration.
    let html = std::fs::read_to_string(d2.path().join("report/report.html")).unwrap();
    assert!(
        html.contains("Station calibration"),
        "report.html names no calibration"
    );
    assert!(html.contains("SIM-IFACE-0001"));
}

#[test]
fn the_simulated_serial_rig_calibrates_its_acoustic_path() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("station.toml");
    let o = calibrate(&["--rig", "sim", "--shots", "12"], &st);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let cal = table(&st);
    assert!(
        cal.get("inputs").is_none(),
        "a serial rig's file has no channel map"
    );
    assert!(cal["calibration"].get("loopback").is_none());
    let air = scenario("fixtures/sim/speakerphone.toml")["audio"]["rig_acoustic_path_us"]
        .as_float()
        .unwrap_or(512.5);
    let (a, au) = term(&cal, "acoustic");
    assert!((a - air).abs() <= au, "acoustic {a} ± {au} µs, truth {air}");
    // A run records it; nothing is subtracted from any step.
    let (o, d) = run_sim_with(
        "profiles/speakerphone.toml",
        "sim",
        None,
        &["--station", st.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = read_json(&d.path().join("report/report.json"));
    assert_eq!(r["station"]["calibration"]["terms"][0]["use"], "recorded");
    for s in r["steps"].as_array().unwrap() {
        assert!(s.get("station_corrections").is_none(), "{s}");
    }
}

/// A copy of the speakerphone profile that requires a calibration no older
/// than `days`.
fn strict_profile(dir: &Path, days: u32) -> String {
    let text = std::fs::read_to_string(root().join("profiles/speakerphone.toml")).unwrap();
    let text = text.replacen(
        "device_class = \"speakerphone\"\n",
        &format!("device_class = \"speakerphone\"\ncalibration_max_age_days = {days}\n"),
        1,
    );
    let p = dir.join("strict.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A serial rig's calibration file for `serial`, measured `days_ago`.
fn calibration_file(dir: &Path, serial: &str, days_ago: i64) -> String {
    let at = chrono::Utc::now() - chrono::Duration::days(days_ago);
    let p = dir.join(format!("cal-{serial}-{days_ago}.toml"));
    std::fs::write(
        &p,
        format!(
            "format = \"certlab-station/1\"\n[calibration]\nrig_serial = \"{serial}\"\n\
             [calibration.acoustic]\nlatency_us = 512.0\nuncertainty_us = 8.0\n\
             measured = \"{}\"\nshots = 30\n",
            at.format("%Y-%m-%dT%H:%M:%SZ")
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

/// The serial number the in-process simulated rig gives.
fn sim_rig_serial() -> String {
    let (o, d) = run_sim("profiles/speakerphone.toml", "sim", None);
    assert_eq!(code(&o), 0);
    read_json(&d.path().join("report/report.json"))["station"]["rig"]["serial"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn another_rig_a_stale_or_a_missing_calibration_is_the_stations_error() {
    let dir = tempfile::tempdir().unwrap();
    let strict = strict_profile(dir.path(), 30);
    let serial = sim_rig_serial();
    let cases = [
        (
            None,
            "requires a station calibration no older than 30 days; none was given",
        ),
        (
            Some(calibration_file(dir.path(), "SOME-OTHER-RIG", 1)),
            "was made on the rig \"SOME-OTHER-RIG\", not on this run's rig",
        ),
        (
            Some(calibration_file(dir.path(), &serial, 40)),
            "days old; the profile allows 30 days (calibration_max_age_days)",
        ),
    ];
    for (file, want) in cases {
        let mut extra = Vec::new();
        if let Some(f) = &file {
            extra = vec!["--station", f.as_str()];
        }
        let (o, d) = run_sim_with(&strict, "sim", None, &extra);
        assert_eq!(code(&o), 2, "{want}: {}{}", stdout(&o), stderr(&o));
        let r = read_json(&d.path().join("report/report.json"));
        assert_eq!(r["outcome"], "ERROR");
        let first = &r["steps"][0];
        assert_eq!(first["outcome"], "ERROR");
        assert_eq!(first["shots"]["measured"], 0, "nothing was measured");
        let why = first["reason"].as_str().unwrap();
        assert!(
            why.starts_with("station calibration: ") && why.contains(want),
            "{why}"
        );
        if file.is_some() {
            assert!(r["station"]["calibration"]["refused"]
                .as_str()
                .unwrap()
                .contains(want));
        }
        // The conformance step does not cross the rig, but comes after an
        // ERROR: skipped.
        assert_eq!(r["steps"][4]["outcome"], "SKIPPED");
    }
    // The same stale file under a profile without a limit is used.
    let f = calibration_file(dir.path(), &serial, 40);
    let (o, _) = run_sim_with(
        "profiles/speakerphone.toml",
        "sim",
        None,
        &["--station", &f],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn bad_calibration_input_is_refused_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    // A malformed term: exit 3 naming the file and the key, before any step.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "format = \"certlab-station/1\"\n[calibration]\nrig_serial = \"X\"\n\
         [calibration.acoustic]\nlatency_us = -4\nuncertainty_us = 8.0\n\
         measured = \"yesterday\"\nshots = 30\n",
    )
    .unwrap();
    let (o, d) = run_sim_with(
        "profiles/speakerphone.toml",
        "sim",
        None,
        &["--station", bad.to_str().unwrap()],
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("bad.toml:5:"), "{e}");
    assert!(e.contains("`latency_us`"), "{e}");
    assert!(e.contains("not an RFC 3339 time"), "{e}");
    assert!(!d.path().join("report").exists(), "no report for bad input");

    // A loopback onto the speaker's output.
    let out = dir.path().join("never.toml");
    let o = calibrate(&["--rig", "audio:sim", "--loopback", "1:4"], &out);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--loopback 1:4: output channel 1 is `outputs.speaker`"),
        "{}",
        stderr(&o)
    );
    // A dead reference microphone: exit 2, nothing written.
    let o = calibrate(
        &[
            "--rig",
            "audio:sim",
            "--scenario",
            "fixtures/sim/speakerphone-audio-rig-silent.toml",
        ],
        &out,
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no signal on the reference microphone"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "a failed calibration writes nothing");
    // --station is an audio rig's channel map.
    let o = calibrate(
        &[
            "--rig",
            "sim",
            "--station",
            "fixtures/sim/audio-station.toml",
        ],
        &out,
    );
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("name an audio-interface rig's channels"),
        "{}",
        stderr(&o)
    );
}
