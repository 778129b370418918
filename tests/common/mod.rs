//! Helpers shared by the end-to-end tests: run the real binary, read reports.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `certlab` binary, run from the repository root. Its per-user signing
/// key lives under the build's temporary directory, not the user's config.
pub fn certlab() -> Command {
    let mut c = Command::cargo_bin("certlab").expect("the certlab binary is built");
    c.current_dir(root())
        .env("XDG_CONFIG_HOME", test_config_home());
    c
}

/// The config directory the tests' runs use (XDG_CONFIG_HOME).
pub fn test_config_home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("config")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", p.display()))
}

/// Run a profile on the simulated station into a fresh directory.
pub fn run_sim(profile: &str, device: &str, scenario: Option<&str>) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let mut cmd = certlab();
    cmd.args([
        "run", profile, "--device", device, "--vendor", "demo", "--out",
    ])
    .arg(&out);
    if let Some(s) = scenario {
        cmd.args(["--scenario", s]);
    }
    let o = cmd.output().unwrap();
    (o, dir)
}

/// The scenario's configured median for a step kind, ms (round trip: both paths).
pub fn truth(scenario: &toml::Value, kind: &str) -> Option<f64> {
    let lat = scenario.get("latency")?;
    let m = |k: &str| lat.get(k)?.get("median_ms")?.as_float();
    match kind {
        "audio-send-latency" => m("audio_send"),
        "audio-receive-latency" => m("audio_receive"),
        "audio-roundtrip-latency" => Some(m("audio_send")? + m("audio_receive")?),
        "video-latency" => m("video"),
        "button-hid-latency" => m("hid"),
        _ => None,
    }
}

/// A scenario file of the repository, parsed.
pub fn scenario(path: &str) -> toml::Value {
    toml::from_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

/// `certlab verify` of a report against a newly made authority's key. A
/// report signed with the per-user key is valid (UNOFFICIAL) whoever the
/// authority is, so this checks its signature and every file's digest.
pub fn verify_with_new_authority(report: &Path) -> Output {
    let auth = tempfile::tempdir().unwrap();
    let o = certlab()
        .args(["authority", "init", "--out"])
        .arg(auth.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    certlab()
        .arg("verify")
        .arg(report)
        .arg("--authority")
        .arg(auth.path().join("authority.pub"))
        .output()
        .unwrap()
}
