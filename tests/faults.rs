//! End to end through the real binary: failing devices, faults, Ctrl-C and bad input,
//! each with its message and exit code.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn a_slow_speakerphone_fails_with_exit_1_and_reasons() {
    let (o, dir) = run_sim(
        "speakerphone",
        "sim",
        Some("fixtures/sim/speakerphone-slow.toml"),
    );
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    assert!(out.contains("OUTCOME: FAIL"), "{out}");
    let r = read_json(&dir.path().join("report/report.json"));
    assert_eq!(r["outcome"], "FAIL");
    let step = |id: &str| {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap()
    };
    let send = step("send-latency");
    assert_eq!(send["outcome"], "FAIL", "{send}");
    let median = send["stats"]["median"].as_f64().unwrap();
    assert!(
        (median - 140.0).abs() < 3.0,
        "slow device measured at {median} ms"
    );
    assert!(
        send["reason"].as_str().unwrap().contains("median"),
        "{send}"
    );
    let usb = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "usb-conformance")
        .unwrap();
    assert_eq!(usb["outcome"], "FAIL");
    assert!(
        usb["reason"].as_str().unwrap().contains("hid-phone-mute"),
        "{usb}"
    );
}

#[test]
fn an_unplugged_device_gives_error_exit_2_and_keeps_the_data() {
    let (o, dir) = run_sim(
        "speakerphone",
        "sim",
        Some("fixtures/sim/speakerphone-unplugged.toml"),
    );
    let out = stdout(&o);
    assert_eq!(code(&o), 2, "stdout:\n{out}\nstderr:\n{}", stderr(&o));
    assert!(out.contains("OUTCOME: ERROR"), "{out}");
    let rdir = dir.path().join("report");
    let r = read_json(&rdir.join("report.json"));
    assert_eq!(r["outcome"], "ERROR");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("send-latency") && reason.contains("unplugged"),
        "{reason}"
    );
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(steps[0]["outcome"], "ERROR");
    // The shots before the unplugging were measured and kept.
    let measured = steps[0]["shots"]["measured"].as_u64().unwrap();
    assert!(measured >= 3, "kept {measured} shots");
    assert!(steps[1..].iter().all(|s| s["outcome"] == "SKIPPED"));
    let csv = std::fs::read_to_string(rdir.join("measurements.csv")).unwrap();
    assert!(csv.lines().filter(|l| l.contains(",measured,")).count() as u64 == measured);
    assert!(rdir.join("raw/send-latency.wav").is_file());
    // The report of a run in ERROR is signed as well.
    let v = verify_with_new_authority(&rdir);
    assert_eq!(code(&v), 0, "{}", stdout(&v));
    assert!(stdout(&v).contains("outcome   ERROR"), "{}", stdout(&v));
}

#[test]
fn ctrl_c_aborts_cleanly_and_keeps_partial_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let bin = assert_cmd::cargo::cargo_bin("certlab");
    let child = std::process::Command::new(bin)
        .current_dir(root())
        .env("XDG_CONFIG_HOME", test_config_home())
        .args([
            "run",
            "speakerphone",
            "--device",
            "sim",
            "--vendor",
            "demo",
            // An operator who watches and presses Ctrl-C 4 s in: real time.
            "--realtime",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // The signal Ctrl-C sends, without needing a `kill` program on the machine.
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the child this test started, still running.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    let o = child.wait_with_output().unwrap();
    let text = stdout(&o);
    assert_eq!(code(&o), 2, "stdout:\n{text}\nstderr:\n{}", stderr(&o));
    assert!(text.contains("OUTCOME: ABORTED"), "{text}");
    let r = read_json(&out.join("report.json"));
    assert_eq!(r["outcome"], "ABORTED");
    let first = &r["steps"][0];
    assert_eq!(first["outcome"], "ERROR");
    assert!(first["reason"].as_str().unwrap().contains("aborted"));
    assert!(first["shots"]["measured"].as_u64().unwrap() >= 3, "{first}");
    // The aborted report validates, and its views show the partial step.
    check_report_dir(&out);
    // An aborted run's report is signed too, and verifies (as UNOFFICIAL:
    // the per-user key signed it).
    let o = verify_with_new_authority(&out);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).starts_with("UNOFFICIAL\n"), "{}", stdout(&o));
    assert!(stdout(&o).contains("outcome   ABORTED"), "{}", stdout(&o));
}

#[test]
fn bad_profiles_are_reported_with_positions_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        r#"format = 1
id = "bad"
version = "1.0.0"
program = "teams-usb-audio"
device_class = "speakerphone"
title = "Bad"

[[steps]]
id = "a"
kind = "audio-teleport-latency"

[[steps]]
id = "b"
kind = "audio-send-latency"
shots = 30

[[steps.limits]]
statistic = "median"
max = 100
unit = "dB"
"#,
    )
    .unwrap();
    let o = certlab()
        .args(["profiles", "check"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    let out = stdout(&o);
    let name = p.display().to_string();
    assert!(
        out.contains(&format!("{name}:10:8:")),
        "unknown kind at 10:8:\n{out}"
    );
    assert!(
        out.contains("audio-send-latency"),
        "lists the valid kinds:\n{out}"
    );
    assert!(
        out.contains(&format!("{name}:20:8:")) && out.contains("\"dB\""),
        "bad unit at 20:8:\n{out}"
    );
    // The same file given to `run` is refused before anything runs.
    let o = certlab()
        .args(["run"])
        .arg(&p)
        .args(["--device", "sim", "--vendor", "demo"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains(&format!("{name}:10:8:")),
        "{}",
        stderr(&o)
    );

    std::fs::write(&p, "id = [unclosed\n").unwrap();
    let o = certlab()
        .args(["profiles", "check"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(stdout(&o).contains(&format!("{name}:1:")), "{}", stdout(&o));
}

#[test]
fn device_specs_that_match_nothing_are_refused() {
    let o = certlab()
        .args([
            "run",
            "speakerphone",
            "--device",
            "usb:dead:beef",
            "--vendor",
            "demo",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no USB device matches usb:dead:beef"),
        "{}",
        stderr(&o)
    );

    let o = certlab()
        .args([
            "run",
            "speakerphone",
            "--device",
            "sim:toaster",
            "--vendor",
            "demo",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("unknown simulated class \"toaster\""),
        "{}",
        stderr(&o)
    );

    let o = certlab()
        .args([
            "run",
            "speakerphone",
            "--device",
            "serial:/dev/certlab-none",
            "--vendor",
            "demo",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no serial port at /dev/certlab-none"),
        "{}",
        stderr(&o)
    );

    let o = certlab()
        .args([
            "run",
            "speakerphone",
            "--device",
            "bluetooth:1",
            "--vendor",
            "demo",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("bad device spec"), "{}", stderr(&o));
}

#[test]
fn an_unwritable_output_directory_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let out = file.join("report");
    let o = certlab()
        .args([
            "run",
            "speakerphone",
            "--device",
            "sim",
            "--vendor",
            "demo",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("cannot write the report to"),
        "{}",
        stderr(&o)
    );

    // A directory that already holds a report is not overwritten.
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("report.json"), "{}").unwrap();
    let o = certlab()
        .args([
            "run",
            "speakerphone",
            "--device",
            "sim",
            "--vendor",
            "demo",
            "--out",
        ])
        .arg(&full)
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("is not empty"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(full.join("report.json")).unwrap(),
        "{}"
    );
}

#[test]
fn usage_errors_exit_3_and_unbuilt_commands_say_so_with_exit_2() {
    let o = certlab()
        .args(["run", "speakerphone", "--device", "sim"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3, "missing --vendor");
    assert!(stderr(&o).contains("--vendor"));
    let o = certlab().args(["frobnicate"]).output().unwrap();
    assert_eq!(code(&o), 3);
    let o = certlab()
        .args([
            "run",
            "no-such-profile",
            "--device",
            "sim",
            "--vendor",
            "demo",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("no profile file or shipped profile named \"no-such-profile\""));
    let o = certlab()
        .args([
            "run",
            "speakerphone",
            "--device",
            "sim",
            "--vendor",
            "de mo",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("bad --vendor"));
    let o = certlab()
        .args([
            "run",
            "speakerphone",
            "--device",
            "sim:camera",
            "--scenario",
            "fixtures/sim/headset.toml",
            "--vendor",
            "demo",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("simulates a headset"), "{}", stderr(&o));
    let o = certlab().arg("--help").output().unwrap();
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("Exit codes"));
}

#[test]
fn profiles_list_show_and_check_the_shipped_profiles() {
    let o = certlab().args(["profiles", "list"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for id in ["speakerphone", "headset", "camera", "room-system"] {
        assert!(out.contains(id), "{out}");
    }
    let o = certlab()
        .args(["profiles", "show", "camera"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("video-latency"));
    let o = certlab()
        .args([
            "profiles",
            "check",
            "profiles/speakerphone.toml",
            "profiles/headset.toml",
            "profiles/camera.toml",
            "profiles/room-system.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert_eq!(stdout(&o).matches(": ok (").count(), 4);
}

#[test]
fn devices_without_a_usb_stack_is_a_note_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let o = certlab()
        .args(["devices", "--json", "--sysfs"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["usb"].as_array().unwrap().is_empty());
    assert!(v["notes"][0].as_str().unwrap().contains("no USB stack"));
}

#[test]
fn a_rig_that_does_not_answer_or_speaks_another_version_stops_the_run_with_exit_2() {
    let (o, dir) = run_sim(
        "speakerphone",
        "sim",
        Some("fixtures/sim/speakerphone-rig-silent.toml"),
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did not answer the handshake within 1000 ms"),
        "{}",
        stderr(&o)
    );
    assert!(
        !dir.path().join("report").exists(),
        "a run that never started writes no report"
    );

    let (o, _dir) = run_sim(
        "speakerphone",
        "sim",
        Some("fixtures/sim/speakerphone-rig-v2.toml"),
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("rig speaks protocol 2, certlab speaks 1"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_rig_unplugged_mid_run_gives_error_naming_the_step_and_keeps_the_data() {
    let (o, dir) = run_sim(
        "speakerphone",
        "sim",
        Some("fixtures/sim/speakerphone-rig-unplugged.toml"),
    );
    assert_eq!(code(&o), 2, "{}\n{}", stdout(&o), stderr(&o));
    let r = read_json(&dir.path().join("report/report.json"));
    assert_eq!(r["outcome"], "ERROR");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("send-latency") && reason.contains("rig"),
        "{reason}"
    );
    let first = &r["steps"][0];
    assert_eq!(first["outcome"], "ERROR");
    assert!(first["shots"]["measured"].as_u64().unwrap() >= 3, "{first}");
    assert!(dir.path().join("report/raw/send-latency.wav").is_file());
}

#[test]
fn a_noisy_rig_link_is_counted_survived_and_never_blamed_on_the_device() {
    let (o, dir) = run_sim(
        "speakerphone",
        "sim",
        Some("fixtures/sim/speakerphone-rig-noisy.toml"),
    );
    let r = read_json(&dir.path().join("report/report.json"));
    let link = &r["station"]["rig_link"];
    assert!(link["corrupt_frames"].as_u64().unwrap() > 0, "{link}");
    assert!(link["skipped_bytes"].as_u64().unwrap() > 0, "{link}");
    // Commands and sync requests whose replies were lost were sent again: the
    // run reached every step it could, and nothing FAILed for the link's sake.
    assert_ne!(r["outcome"], "FAIL", "{}", stdout(&o));
    for s in r["steps"].as_array().unwrap() {
        assert_ne!(s["outcome"], "FAIL", "{s}");
        if s["outcome"] == "ERROR" {
            assert!(
                s["reason"].as_str().unwrap().contains("station's fault"),
                "{s}"
            );
        }
    }
    let send = &r["steps"][0];
    assert_eq!(send["outcome"], "PASS", "{send}");
    assert_eq!(code(&o), if r["outcome"] == "PASS" { 0 } else { 2 });
}

#[test]
fn a_rig_that_stalls_for_400_ms_is_waited_for_and_never_blamed_on_the_device() {
    let (o, dir) = run_sim(
        "speakerphone",
        "sim",
        Some("fixtures/sim/speakerphone-rig-stall.toml"),
    );
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let r = read_json(&dir.path().join("report/report.json"));
    assert_eq!(r["outcome"], "PASS");
    for s in r["steps"].as_array().unwrap() {
        let shots = &s["shots"];
        let station = s["anomalies"]["station_missed_shots"].as_u64().unwrap();
        // A shot lost to the stall is the station's, not a device miss.
        assert_eq!(
            shots["measured"].as_u64().unwrap() + station,
            shots["planned"].as_u64().unwrap(),
            "{s}"
        );
    }
}

#[test]
fn a_rig_that_reboots_mid_step_is_greeted_again_and_the_step_repeated() {
    let (o, dir) = run_sim(
        "speakerphone",
        "sim",
        Some("fixtures/sim/speakerphone-rig-reset.toml"),
    );
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let rdir = dir.path().join("report");
    let r = read_json(&rdir.join("report.json"));
    assert_eq!(r["outcome"], "PASS");
    assert_eq!(r["station"]["rig_link"]["restarts"], 1);
    let send = &r["steps"][0];
    assert_eq!(send["id"], "send-latency");
    assert_eq!(send["anomalies"]["rig_restarts"], 1, "{send}");
    assert_eq!(send["shots"]["measured"], 30, "{send}");
    // The voided attempt is kept, not thrown away.
    let raw: Vec<&str> = send["raw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(raw.contains(&"raw/send-latency-attempt1.wav"), "{raw:?}");
    assert!(rdir.join("raw/send-latency-attempt1.wav").is_file());
    // The new clock sync knows the rig's rate again (-15 ppm in the scenario).
    let drift = r["clock_sync"]["drift_ppm"].as_f64().unwrap();
    assert!((drift + 15.0).abs() < 2.0, "drift {drift} ppm");
    // The kept attempt and every later step are on the rig's new clock, as
    // the run's final estimate is: their shots are converted with it.
    for s in r["steps"].as_array().unwrap() {
        if s["kind"] != "audio-roundtrip-latency" && s["kind"] != "usb-conformance" {
            assert_eq!(s["shots_converted_with"], "run", "{s}");
        }
    }
}

#[test]
fn a_step_before_a_rig_reboot_keeps_its_own_clock_sync_estimate() {
    // The reboot in the second step: the first step's shots are on the
    // rig's old clock, which the run's final estimate knows nothing of.
    let base =
        std::fs::read_to_string(root().join("fixtures/sim/speakerphone-rig-reset.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late-reset.toml");
    std::fs::write(&path, base.replace("at_s = 3.0", "at_s = 14.0")).unwrap();
    let (o, out) = run_sim("speakerphone", "sim", Some(path.to_str().unwrap()));
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let rdir = out.path().join("report");
    let r = read_json(&rdir.join("report.json"));
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(steps[0]["anomalies"]["rig_restarts"], 0, "{}", steps[0]);
    assert_eq!(steps[1]["anomalies"]["rig_restarts"], 1, "{}", steps[1]);
    assert_eq!(steps[0]["shots_converted_with"], "step");
    assert_eq!(steps[1]["shots_converted_with"], "run");
    assert_eq!(steps[3]["shots_converted_with"], "run");
    let table = std::fs::read_to_string(rdir.join("raw/send-latency-crossings.csv")).unwrap();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 30);
    assert!(rows.iter().all(|l| l.ends_with(",step")), "{table}");
    let html = std::fs::read_to_string(rdir.join("report.html")).unwrap();
    assert!(
        html.contains("with their own step&#39;s estimate")
            || html.contains("with their own step's estimate"),
        "report.html does not say which estimate"
    );
}

#[test]
fn a_scenario_with_a_bad_rig_fault_is_refused_with_exit_3() {
    let base =
        std::fs::read_to_string(root().join("fixtures/sim/speakerphone-rig-stall.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (bad, want) in [
        ("duration_ms = 400.0", "duration_ms = 90000.0"),
        ("at_s = 3.0", "at_s = -1.0"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, base.replace(bad, want)).unwrap();
        let (o, out) = run_sim("speakerphone", "sim", Some(path.to_str().unwrap()));
        assert_eq!(code(&o), 3, "{want}: {}", stderr(&o));
        let msg = if want.starts_with("at_s") {
            "a fault's at_s must be a time ≥ 0"
        } else {
            "a rig stall's duration_ms and a reset's boot_ms must be within 0..=60000"
        };
        assert!(stderr(&o).contains(msg), "{want}: {}", stderr(&o));
        assert!(
            !out.path().join("report").exists(),
            "no report for a bad scenario"
        );
    }
}
