//! docs/verifying.md's shell steps, run exactly as written (with `sh`,
//! coreutils and openssl) on a real signed report: they must accept it, and
//! reject it after a byte of a file, a byte of the signature, or an added
//! file.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn doc_steps() -> String {
    let doc = std::fs::read_to_string(root().join("docs/verifying.md")).unwrap();
    let start = doc
        .find("<!-- steps -->")
        .expect("docs/verifying.md marks its steps");
    let end = doc.find("<!-- end of steps -->").expect("and their end");
    let mut script = String::new();
    let mut inside = false;
    for line in doc[start..end].lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside && line.trim() == "```sh";
            continue;
        }
        if inside {
            script.push_str(line);
            script.push('\n');
        }
    }
    assert!(script.contains("openssl pkeyutl -verify"), "{script}");
    script
}

fn run_steps(script: &str, report: &Path, authority: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("R", report)
        .env("AUTHORITY", authority)
        .output()
        .unwrap()
}

fn ok(o: &Output) {
    assert_eq!(code(o), 0, "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

#[test]
fn the_documented_openssl_steps_verify_a_real_report() {
    if !tool_or_skip(
        "the_documented_openssl_steps_verify_a_real_report",
        "openssl",
        runs("openssl", &["version"]),
        "apt-get install openssl; .ci/run installs it; docs/verifying.md's steps need it",
    ) {
        return;
    }
    let script = doc_steps();
    let d = tempfile::tempdir().unwrap();
    let p = |s: &str| d.path().join(s);
    let c = |args: &[&str]| {
        let o = certlab().args(args).current_dir(d.path()).output().unwrap();
        ok(&o);
    };
    let profile = root().join("tests/data/quick-usb.toml");
    c(&["authority", "init", "--out", "authority"]);
    c(&["keys", "generate", "--out", "lab"]);
    std::fs::create_dir(p("trust")).unwrap();
    c(&[
        "authority",
        "accredit-lab",
        "--authority-key",
        "authority/authority.key",
        "--lab-id",
        "lab-1",
        "--lab-pub",
        "lab.pub",
        "--program",
        "teams-usb-audio",
        "--not-before",
        "2020-01-01T00:00:00Z",
        "--not-after",
        "2099-01-01T00:00:00Z",
        "--out",
        "trust/lab-1.json",
    ]);
    c(&[
        "authority",
        "admit-vendor",
        "--authority-key",
        "authority/authority.key",
        "--vendor-id",
        "acme",
        "--program",
        "teams-usb-audio",
        "--not-before",
        "2020-01-01T00:00:00Z",
        "--not-after",
        "2099-01-01T00:00:00Z",
        "--out",
        "trust/acme.json",
    ]);
    std::fs::copy(p("authority/authority.pub"), p("trust/authority.pub")).unwrap();
    c(&[
        "run",
        profile.to_str().unwrap(),
        "--device",
        "sim",
        "--vendor",
        "acme",
        "--lab-key",
        "lab.key",
        "--trust",
        "trust",
        "--out",
        "report",
    ]);
    let report = p("report");
    let auth = p("authority/authority.pub");

    let o = run_steps(&script, &report, &auth);
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains("Signature Verified Successfully"), "{out}");
    assert!(out.contains("accredits the signer's key"), "{out}");
    // The report and both trust documents: three signatures.
    assert_eq!(
        out.matches("Signature Verified Successfully").count(),
        3,
        "{out}"
    );

    // Each tampering stops the steps with a non-zero status.
    let copy = |name: &str| {
        let to = p(name);
        let o = Command::new("cp")
            .arg("-r")
            .arg(&report)
            .arg(&to)
            .output()
            .unwrap();
        ok(&o);
        to
    };
    let t = copy("changed");
    let f = t.join("measurements.csv");
    let mut b = std::fs::read(&f).unwrap();
    let i = b.len() / 2;
    b[i] ^= 1;
    std::fs::write(&f, b).unwrap();
    let o = run_steps(&script, &t, &auth);
    assert_ne!(code(&o), 0, "a changed file passed:\n{}", stdout(&o));
    assert!(
        stdout(&o).contains("measurements.csv: FAILED"),
        "{}",
        stdout(&o)
    );

    let t = copy("added");
    std::fs::write(t.join("extra.txt"), "x").unwrap();
    let o = run_steps(&script, &t, &auth);
    assert_ne!(code(&o), 0, "an added file passed:\n{}", stdout(&o));
    assert!(stdout(&o).contains("extra.txt"), "{}", stdout(&o));

    let t = copy("resigned");
    let f = t.join("report.dsse.json");
    let text = std::fs::read_to_string(&f).unwrap();
    let sig_at = text.find("\"sig\": \"").unwrap() + 8;
    let mut bytes = text.into_bytes();
    bytes[sig_at + 5] = if bytes[sig_at + 5] == b'A' {
        b'B'
    } else {
        b'A'
    };
    std::fs::write(&f, bytes).unwrap();
    let o = run_steps(&script, &t, &auth);
    assert_ne!(code(&o), 0, "a changed signature passed:\n{}", stdout(&o));
    assert!(
        !stdout(&o).contains("Signature Verified Successfully"),
        "{}",
        stdout(&o)
    );

    // A trust document checked against another key fails too.
    let o = run_steps(&script, &report, &p("lab.pub"));
    assert_ne!(code(&o), 0, "a trust document passed against the lab's key");
}
