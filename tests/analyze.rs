//! `certlab analyze audio` on real WAV files made by sox (installed by .ci/run):
//! fractional delays, bit depths, channels, polarity, several shots, and the
//! errors: no stimulus (exit 2), mismatched or unreadable files (exit 3).
//! Without sox each test is skipped with a message, except under CI=true,
//! where that is a failure.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Whether sox is here; skips the test `test` (loudly) when it is not.
fn have_sox(test: &str) -> bool {
    tool_or_skip(
        test,
        "sox",
        runs("sox", &["--version"]),
        "apt-get install sox; .ci/run installs it",
    )
}

fn sox(dir: &Path, args: &[&str]) {
    let st = Command::new("sox")
        .current_dir(dir)
        .args(args)
        .status()
        .expect("sox is needed for these tests: apt-get install sox (.ci/run installs it)");
    assert!(st.success(), "sox {args:?} failed");
}

/// A 200 ms exponential sweep, 16-bit, 48 kHz.
fn stimulus(dir: &Path) {
    sox(
        dir,
        &[
            "-n", "-r", "48000", "-b", "16", "stim.wav", "synth", "0.2", "sine", "300:6000",
            "fade", "h", "0.005", "0.2", "0.005", "vol", "0.7",
        ],
    );
}

/// The stimulus delayed by `delay_s` (a quarter-sample resolution: sox pads
/// whole samples at 192 kHz between two band-limited resamplings), with noise.
fn delayed(dir: &Path, delay_s: f64, noise_vol: f64, out: &str, extra: &[&str]) {
    let d = format!("{delay_s:.10}");
    sox(
        dir,
        &[
            "stim.wav", "-b", "24", "sig.wav", "rate", "-v", "192k", "pad", &d, "0.3", "rate",
            "-v", "48k",
        ],
    );
    let v = format!("{noise_vol}");
    let len = "0.6";
    sox(
        dir,
        &[
            "-n",
            "-r",
            "48000",
            "-b",
            "24",
            "noise.wav",
            "synth",
            len,
            "whitenoise",
            "vol",
            &v,
        ],
    );
    let mut args = vec!["-m", "sig.wav", "noise.wav"];
    args.extend_from_slice(extra);
    args.push(out);
    sox(dir, &args);
}

fn analyze_json(dir: &Path, capture: &str, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let o = certlab()
        .args(["analyze", "audio", "--json", "--stimulus"])
        .arg(dir.join("stim.wav"))
        .arg("--capture")
        .arg(dir.join(capture))
        .args(extra)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (code(&o), v, stderr(&o))
}

#[test]
fn fractional_delays_in_sox_files_are_found_to_a_small_fraction_of_a_sample() {
    if !have_sox("fractional_delays_in_sox_files_are_found_to_a_small_fraction_of_a_sample") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    stimulus(dir);
    // 600.25 samples and 1234.75 samples at 48 kHz, 16-bit and float captures.
    for (delay_samples, fmt) in [(600.25, ["-b", "16"]), (1234.75, ["-e", "floating-point"])] {
        let delay_s = delay_samples / 48_000.0;
        delayed(dir, delay_s, 0.01, "cap.wav", &fmt);
        let (c, v, err) = analyze_json(dir, "cap.wav", &[]);
        assert_eq!(c, 0, "{err}");
        let got = v["latency_ms"].as_f64().unwrap();
        let err_samples = (got / 1e3 * 48_000.0 - delay_samples).abs();
        assert!(
            err_samples < 0.05,
            "found {got} ms for {delay_samples} samples: error {err_samples} samples"
        );
        for k in [
            "uncertainty_ms",
            "confidence",
            "snr_db",
            "channel",
            "polarity",
            "drift_ppm",
            "shots",
        ] {
            assert!(v.get(k).is_some(), "JSON lacks {k}: {v}");
        }
        assert_eq!(v["polarity"], 1);
        assert!(v["confidence"].as_f64().unwrap() > 0.9);
        assert_eq!(v["shots"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn the_signal_channel_and_an_inverted_polarity_are_found() {
    if !have_sox("the_signal_channel_and_an_inverted_polarity_are_found") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    stimulus(dir);
    // 489.75 samples: a whole number of samples at 192 kHz, where sox pads.
    delayed(dir, 489.75 / 48_000.0, 0.01, "mono.wav", &["-b", "24"]);
    // Four channels: noise, noise, the inverted signal, silence.
    sox(
        dir,
        &[
            "-n",
            "-r",
            "48000",
            "-b",
            "24",
            "n2.wav",
            "synth",
            "0.6",
            "whitenoise",
            "vol",
            "0.05",
        ],
    );
    sox(dir, &["mono.wav", "inv.wav", "vol", "-1"]);
    sox(
        dir,
        &[
            "-M",
            "n2.wav",
            "n2.wav",
            "inv.wav",
            "n2.wav",
            "-b",
            "24",
            "multi.wav",
            "remix",
            "1",
            "2",
            "3",
            "4v0",
        ],
    );
    let (c, v, err) = analyze_json(dir, "multi.wav", &[]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(v["channel"], 2, "{v}");
    assert_eq!(v["polarity"], -1, "{v}");
    let got = v["latency_ms"].as_f64().unwrap() / 1e3 * 48_000.0;
    assert!((got - 489.75).abs() < 0.05, "{got} samples: {v}");
}

#[test]
fn several_shots_are_segmented_with_their_own_latencies() {
    if !have_sox("several_shots_are_segmented_with_their_own_latencies") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    stimulus(dir);
    // Three shots scheduled every 400 ms, with latencies 12, 15 and 18.5 ms.
    let lats = [0.012, 0.015, 0.0185];
    for (k, l) in lats.iter().enumerate() {
        let start = format!("{:.6}", l);
        let tail = format!("{:.6}", 0.4 - 0.2 - l);
        sox(
            dir,
            &[
                "stim.wav",
                "-b",
                "16",
                &format!("s{k}.wav"),
                "pad",
                &start,
                &tail,
            ],
        );
    }
    sox(dir, &["s0.wav", "s1.wav", "s2.wav", "shots.wav"]);
    let (c, v, err) = analyze_json(dir, "shots.wav", &["--interval-ms", "400"]);
    assert_eq!(c, 0, "{err}");
    let shots = v["shots"].as_array().unwrap();
    assert_eq!(shots.len(), 3, "{v}");
    for (s, l) in shots.iter().zip(lats) {
        assert!(
            (s["latency_ms"].as_f64().unwrap() - l * 1e3).abs() < 0.002,
            "{s}"
        );
    }
    // Latencies that grow across shots read as drift (+8125 ppm here): the
    // estimate is the slope of the positions against the schedule.
    let d = v["drift_ppm"].as_f64().unwrap();
    assert!((d - 8125.0).abs() < 5.0, "{v}");
}

#[test]
fn no_stimulus_is_an_error_with_exit_2_never_a_number() {
    if !have_sox("no_stimulus_is_an_error_with_exit_2_never_a_number") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    stimulus(dir);
    sox(
        dir,
        &[
            "-n",
            "-r",
            "48000",
            "-b",
            "16",
            "noise.wav",
            "synth",
            "1",
            "pinknoise",
            "vol",
            "0.3",
        ],
    );
    let (c, v, err) = analyze_json(dir, "noise.wav", &[]);
    assert_eq!(c, 2);
    assert!(v.is_null(), "printed a result: {v}");
    assert!(err.contains("stimulus not found"), "{err}");
}

#[test]
fn mismatched_or_unreadable_files_exit_3() {
    if !have_sox("mismatched_or_unreadable_files_exit_3") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    stimulus(dir);
    sox(
        dir,
        &["stim.wav", "-r", "44100", "cap44.wav", "pad", "0.01", "0.2"],
    );
    let (c, _, err) = analyze_json(dir, "cap44.wav", &[]);
    assert_eq!(c, 3);
    assert!(
        err.contains("48000 Hz but the capture at 44100 Hz"),
        "{err}"
    );
    std::fs::write(dir.join("junk.wav"), "this is not a WAV file").unwrap();
    let (c, _, err) = analyze_json(dir, "junk.wav", &[]);
    assert_eq!(c, 3);
    assert!(err.contains("cannot read the capture"), "{err}");
    let (c, _, err) = analyze_json(dir, "missing.wav", &[]);
    assert_eq!(c, 3);
    assert!(err.contains("missing.wav"), "{err}");
}
