//! The trust chain through the real binary: keys, the authority's documents,
//! signed reports, the OFFICIAL/UNOFFICIAL marking and `certlab verify`,
//! including every tampering a reviewer must catch.
//!
//! The marking cases run a one-step profile (tests/data/quick-usb.toml, about
//! a second each); the OFFICIAL happy path runs the shipped speakerphone
//! profile, and its report is then tampered with in every way.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine;
use chrono::{Duration, Utc};
use common::*;

const QUICK: &str = "tests/data/quick-usb.toml";
const PROGRAM: &str = "teams-usb-audio";

fn ok(o: &Output) -> &Output {
    assert_eq!(code(o), 0, "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
    o
}

fn t(days: i64) -> String {
    (Utc::now() + Duration::days(days)).to_rfc3339()
}

/// An authority, labs and a trust directory, made with the real commands.
struct Program {
    dir: tempfile::TempDir,
}

impl Program {
    fn new() -> Program {
        let p = Program {
            dir: tempfile::tempdir().unwrap(),
        };
        ok(&certlab()
            .args(["authority", "init", "--out"])
            .arg(p.path("authority"))
            .output()
            .unwrap());
        std::fs::create_dir(p.trust()).unwrap();
        std::fs::copy(p.authority_pub(), p.trust().join("authority.pub")).unwrap();
        p
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn trust(&self) -> PathBuf {
        self.path("trust")
    }
    fn authority_key(&self) -> PathBuf {
        self.path("authority/authority.key")
    }
    fn authority_pub(&self) -> PathBuf {
        self.path("authority/authority.pub")
    }
    /// A lab key pair; returns its key id.
    fn lab_key(&self, name: &str) -> String {
        let o = certlab()
            .args(["keys", "generate", "--out"])
            .arg(self.path(name))
            .output()
            .unwrap();
        ok(&o);
        let id = stdout(&o)
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("key id ")
            .to_string();
        assert_eq!(id.len(), 64, "{}", stdout(&o));
        id
    }
    fn accredit(&self, lab: &str, program: &str, from: &str, to: &str, out: &Path) {
        ok(&certlab()
            .args(["authority", "accredit-lab", "--authority-key"])
            .arg(self.authority_key())
            .args(["--lab-id", lab, "--lab-pub"])
            .arg(self.path(&format!("{lab}.pub")))
            .args([
                "--program",
                program,
                "--not-before",
                from,
                "--not-after",
                to,
            ])
            .arg("--out")
            .arg(out)
            .output()
            .unwrap());
    }
    fn admit(&self, vendor: &str, from: &str, to: &str, out: &Path) {
        ok(&certlab()
            .args(["authority", "admit-vendor", "--authority-key"])
            .arg(self.authority_key())
            .args(["--vendor-id", vendor, "--program", PROGRAM])
            .args(["--not-before", from, "--not-after", to, "--out"])
            .arg(out)
            .output()
            .unwrap());
    }
    fn revoke(&self, key_id: &str, at: &str, seq: u64, out: &Path) {
        ok(&certlab()
            .args(["authority", "revoke", "--authority-key"])
            .arg(self.authority_key())
            .args(["--key-id", key_id, "--revoked-at", at])
            .args(["--sequence", &seq.to_string(), "--expires", &t(30), "--out"])
            .arg(out)
            .output()
            .unwrap());
    }
    fn run(&self, profile: &str, vendor: &str, lab: &str, out: &Path) -> Output {
        certlab()
            .args([
                "run",
                profile,
                "--device",
                "sim",
                "--vendor",
                vendor,
                "--lab-key",
            ])
            .arg(self.path(&format!("{lab}.key")))
            .arg("--trust")
            .arg(self.trust())
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    }
    fn verify(&self, report: &Path, extra: &[&str]) -> Output {
        certlab()
            .arg("verify")
            .arg(report)
            .arg("--authority")
            .arg(self.authority_pub())
            .args(extra)
            .output()
            .unwrap()
    }
}

fn verify_json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("verify --json: {e}\n{}", stdout(o)))
}

fn reasons(v: &serde_json::Value) -> String {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn files_of(dir: &Path) -> Vec<String> {
    fn go(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                go(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut v = Vec::new();
    go(dir, dir, &mut v);
    v.sort();
    v
}

/// Sign a changed statement with `key`, as a dishonest lab would.
fn resign(report: &Path, key: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    use certlab::trust::dsse::Envelope;
    let env = Envelope::parse(&std::fs::read(report.join("report.dsse.json")).unwrap()).unwrap();
    let mut st: serde_json::Value = serde_json::from_slice(&env.payload_bytes().unwrap()).unwrap();
    edit(&mut st);
    // Keep the subjects true to the files, so only the claim is false.
    let subjects: Vec<serde_json::Value> = files_of(report)
        .into_iter()
        .filter(|n| n != "report.dsse.json")
        .map(|n| {
            let sha = certlab::trust::statement::sha256_file(&report.join(&n)).unwrap();
            serde_json::json!({"name": n, "digest": {"sha256": sha}})
        })
        .collect();
    st["subject"] = subjects.into();
    let key = certlab::trust::keys::read_private(key).unwrap();
    let env = Envelope::sign(&env.payload_type, &serde_json::to_vec(&st).unwrap(), &key);
    std::fs::write(report.join("report.dsse.json"), env.to_json()).unwrap();
}

/// Rewrite report.json's marking, as a lab claiming more would.
fn claim_official_in_report_json(report: &Path) {
    let p = report.join("report.json");
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    r["marking"] = "OFFICIAL".into();
    std::fs::write(&p, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
}

#[test]
fn key_files_are_private_and_never_overwritten() {
    let p = Program::new();
    p.lab_key("lab");
    use std::os::unix::fs::PermissionsExt;
    for f in ["lab.key", "authority/authority.key"] {
        let mode = std::fs::metadata(p.path(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let pem = std::fs::read_to_string(p.path("lab.key")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    let pub_pem = std::fs::read_to_string(p.path("lab.pub")).unwrap();
    assert!(
        pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{pub_pem}"
    );
    for args in [
        vec!["keys", "generate", "--out"],
        vec!["authority", "init", "--out"],
    ] {
        let target = if args[0] == "keys" {
            p.path("lab")
        } else {
            p.path("authority")
        };
        let o = certlab().args(&args).arg(&target).output().unwrap();
        assert_eq!(code(&o), 3, "{args:?}");
        assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read_to_string(p.path("lab.key")).unwrap(), pem);
    // A key others can read is refused when signing.
    std::fs::set_permissions(p.path("lab.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = p.run(QUICK, "acme", "lab", &p.path("r"));
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("readable by others"), "{}", stderr(&o));
    assert!(
        !p.path("r").exists(),
        "no report for a run that could not start"
    );
}

#[test]
fn marking_follows_the_documents_and_forged_claims_are_invalid() {
    let p = Program::new();
    let tr = p.trust();
    for lab in ["lab", "video-lab", "revoked-lab", "stranger"] {
        p.lab_key(lab);
    }
    let revoked_id = p.lab_key("late-lab");
    let _ = revoked_id;
    p.accredit("lab", PROGRAM, &t(-1), &t(365), &tr.join("lab.json"));
    p.accredit(
        "video-lab",
        "teams-usb-video",
        &t(-1),
        &t(365),
        &tr.join("video-lab.json"),
    );
    p.accredit(
        "revoked-lab",
        PROGRAM,
        &t(-10),
        &t(365),
        &tr.join("revoked-lab.json"),
    );
    p.accredit(
        "late-lab",
        PROGRAM,
        &t(-10),
        &t(365),
        &tr.join("late-lab.json"),
    );
    p.admit("acme", &t(-1), &t(365), &tr.join("acme.json"));
    p.admit("oldco", &t(-30), &t(-1), &tr.join("oldco.json"));
    p.admit("newco", &t(1), &t(30), &tr.join("newco.json"));
    let revoked = std::fs::read_to_string(p.path("revoked-lab.pub")).unwrap();
    let revoked_id = {
        let k = certlab::trust::keys::parse_public_pem(&revoked).unwrap();
        certlab::trust::keys::key_id(&k)
    };
    p.revoke(&revoked_id, &t(-1), 1, &tr.join("revoked-1.json"));

    // (vendor, lab key, expected marking, a reason it must give)
    let cases: [(&str, &str, &str, &str); 7] = [
        (
            "acme",
            "lab",
            "OFFICIAL",
            "is admitted to program teams-usb-audio",
        ),
        (
            "globex",
            "lab",
            "UNOFFICIAL",
            "vendor globex is not admitted",
        ),
        (
            "oldco",
            "lab",
            "UNOFFICIAL",
            "admission of vendor oldco to program teams-usb-audio is not valid at the test time",
        ),
        (
            "newco",
            "lab",
            "UNOFFICIAL",
            "admission of vendor newco to program teams-usb-audio is not valid at the test time",
        ),
        (
            "acme",
            "video-lab",
            "UNOFFICIAL",
            "is accredited for teams-usb-video",
        ),
        ("acme", "revoked-lab", "UNOFFICIAL", "was revoked at"),
        (
            "acme",
            "stranger",
            "UNOFFICIAL",
            "is not accredited by the program authority",
        ),
    ];
    let results: Vec<(usize, Output, PathBuf)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .enumerate()
            .map(|(i, (vendor, lab, _, _))| {
                let out = p.path(&format!("report-{i}"));
                let p = &p;
                s.spawn(move || (i, p.run(QUICK, vendor, lab, &out), out))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, o, out) in &results {
        let (vendor, lab, want, why) = cases[*i];
        let what = format!("{vendor} tested by {lab}");
        ok(o);
        let r = read_json(&out.join("report.json"));
        assert_eq!(r["marking"], want, "{what}: {}", r["marking_reasons"]);
        let text = stdout(o);
        assert!(text.contains(&format!("MARKING: {want}")), "{what}: {text}");
        assert!(text.contains(why), "{what}: want {why:?} in\n{text}");
        let v = p.verify(out, &["--json"]);
        ok(&v);
        let v = verify_json(&v);
        assert_eq!(v["status"], want, "{what}: {v}");
        assert!(reasons(&v).contains(why), "{what}: want {why:?} in {v}");
        if want == "UNOFFICIAL" {
            assert_eq!(
                r["notice"],
                "Unofficial test results do not constitute a certification or endorsement by the program"
            );
            assert!(text.contains("do not constitute a certification"), "{text}");
            // The lab re-signs the payload to claim OFFICIAL: INVALID, for
            // the same reason.
            let forged = p.path(&format!("forged-{i}"));
            copy_dir(out, &forged);
            claim_official_in_report_json(&forged);
            resign(&forged, &p.path(&format!("{lab}.key")), |st| {
                st["predicate"]["marking"] = "OFFICIAL".into();
                st["predicate"]["notice"] = serde_json::Value::Null;
            });
            let o = p.verify(&forged, &["--json"]);
            assert_eq!(code(&o), 1, "{what}: {}", stdout(&o));
            let v = verify_json(&o);
            assert_eq!(v["status"], "INVALID");
            let rs = reasons(&v);
            assert!(
                rs.contains("the report claims OFFICIAL, but"),
                "{what}: {rs}"
            );
            assert!(rs.contains(why), "{what}: want {why:?} in {rs}");
        } else {
            assert!(r.get("notice").is_none(), "{r}");
            assert_eq!(r["signer"]["lab_id"], "lab");
            let kept = files_of(&out.join("trust"));
            assert_eq!(
                kept,
                vec!["acme.json", "lab.json", "revoked-1.json"],
                "{kept:?}"
            );
        }
    }

    // A later revocation list, given to verify, voids an OFFICIAL report
    // signed after the key's revocation time.
    let official = &results[0].2;
    let later = p.path("later");
    std::fs::create_dir(&later).unwrap();
    let lab_id = read_json(&official.join("report.json"))["signer"]["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&certlab()
        .args(["authority", "revoke", "--authority-key"])
        .arg(p.authority_key())
        .args(["--key-id", &lab_id, "--revoked-at", &t(-1)])
        .args(["--sequence", "2", "--expires", &t(30), "--include"])
        .arg(tr.join("revoked-1.json"))
        .arg("--out")
        .arg(later.join("revoked-2.json"))
        .output()
        .unwrap());
    let o = p.verify(official, &["--json", "--trust", later.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let rs = reasons(&verify_json(&o));
    assert!(
        rs.contains("claims OFFICIAL, but key") && rs.contains("was revoked at"),
        "{rs}"
    );
    // Revoked after the test: the report stands, with a note.
    std::fs::remove_file(later.join("revoked-2.json")).unwrap();
    ok(&certlab()
        .args(["authority", "revoke", "--authority-key"])
        .arg(p.authority_key())
        .args(["--key-id", &lab_id, "--revoked-at", &t(1)])
        .args(["--sequence", "3", "--expires", &t(30), "--out"])
        .arg(later.join("revoked-3.json"))
        .output()
        .unwrap());
    let o = p.verify(official, &["--json", "--trust", later.to_str().unwrap()]);
    let v = verify_json(ok(&o));
    assert_eq!(v["status"], "OFFICIAL");
    assert!(
        v["notes"].to_string().contains("after the test time"),
        "{v}"
    );
}

#[test]
fn an_official_report_verifies_anywhere_and_every_tampering_is_invalid() {
    let p = Program::new();
    let tr = p.trust();
    p.lab_key("lab");
    p.accredit("lab", PROGRAM, &t(-1), &t(365), &tr.join("lab.json"));
    p.admit("acme", &t(-1), &t(365), &tr.join("acme.json"));
    // A document of another program's authority in the directory is left
    // out, with a warning, and does not stop the run.
    let rogue = p.path("rogue");
    ok(&certlab()
        .args(["authority", "init", "--out"])
        .arg(&rogue)
        .output()
        .unwrap());
    ok(&certlab()
        .args(["authority", "admit-vendor", "--authority-key"])
        .arg(rogue.join("authority.key"))
        .args([
            "--vendor-id",
            "acme",
            "--program",
            PROGRAM,
            "--not-after",
            &t(9),
            "--out",
        ])
        .arg(tr.join("rogue.json"))
        .output()
        .unwrap());
    let report = p.path("report");
    let o = p.run("speakerphone", "acme", "lab", &report);
    ok(&o);
    assert!(stdout(&o).contains("MARKING: OFFICIAL"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("rogue.json is left out"),
        "{}",
        stderr(&o)
    );
    let r = read_json(&report.join("report.json"));
    assert_eq!(r["marking"], "OFFICIAL");
    assert_eq!(r["trust"].as_array().unwrap().len(), 2, "{}", r["trust"]);

    // The private key appears nowhere: not in the report, not on the terminal.
    let pem = std::fs::read_to_string(p.path("lab.key")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&body)
        .unwrap();
    let secret = &der[der.len() - 32..];
    let needles = [
        body.clone(),
        hex::encode(secret),
        base64::engine::general_purpose::STANDARD.encode(secret),
    ];
    let mut haystacks = vec![stdout(&o), stderr(&o)];
    for f in files_of(&report) {
        haystacks
            .push(String::from_utf8_lossy(&std::fs::read(report.join(f)).unwrap()).into_owned());
    }
    for h in &haystacks {
        for n in &needles {
            assert!(!h.contains(n.as_str()), "the private key leaked");
        }
    }

    // The statement: an in-toto v1 statement in a DSSE envelope, naming
    // every other file with its digest.
    let env: serde_json::Value = read_json(&report.join("report.dsse.json"));
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    let st: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    let mut names: Vec<String> = st["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let mut want = files_of(&report);
    want.retain(|n| n != "report.dsse.json");
    assert_eq!(names, want);
    let pr = &st["predicate"];
    assert_eq!(pr["marking"], "OFFICIAL");
    assert_eq!(pr["signer"]["lab_id"], "lab");
    assert_eq!(pr["vendor"], "acme");
    assert_eq!(pr["program"], PROGRAM);
    assert_eq!(pr["profile"]["sha256"], r["profile"]["sha256"]);
    assert_eq!(pr["device"]["serial"], r["device"]["serial"]);
    assert_eq!(pr["outcome"], "PASS");
    assert_eq!(pr["trust_documents"].as_array().unwrap().len(), 2);

    // Another machine: the directory alone and authority.pub.
    let elsewhere = tempfile::tempdir().unwrap();
    let moved = elsewhere.path().join("copy");
    copy_dir(&report, &moved);
    let auth = elsewhere.path().join("authority.pub");
    std::fs::copy(p.authority_pub(), &auth).unwrap();
    let o = certlab()
        .arg("verify")
        .arg(&moved)
        .arg("--authority")
        .arg(&auth)
        .output()
        .unwrap();
    ok(&o);
    let text = stdout(&o);
    assert!(text.starts_with("OFFICIAL\n"), "{text}");
    for want in [
        "lab lab",
        "acme",
        "speakerphone v1.0.0",
        "SP100-0001234",
        "PASS",
    ] {
        assert!(text.contains(want), "want {want:?} in\n{text}");
    }

    // Each tampering on a fresh copy: (what, how, a phrase the verdict names).
    type Tamper = Box<dyn Fn(&Path)>;
    let flip = |rel: String| -> Tamper {
        Box::new(move |d: &Path| {
            let f = d.join(&rel);
            let mut b = std::fs::read(&f).unwrap();
            let i = b.len() / 2;
            b[i] ^= 0x01;
            std::fs::write(&f, b).unwrap();
        })
    };
    let mut cases: Vec<(String, Tamper, String)> = Vec::new();
    for f in want.iter() {
        cases.push((
            format!("one byte of {f}"),
            flip(f.clone()),
            format!("{f} has changed"),
        ));
    }
    let envelope_field = |field: &'static str| -> Tamper {
        Box::new(move |d: &Path| {
            let f = d.join("report.dsse.json");
            let mut env: serde_json::Value = read_json(&f);
            let v = if field == "payload" {
                env["payload"].as_str().unwrap().to_string()
            } else {
                env["signatures"][0]["sig"].as_str().unwrap().to_string()
            };
            let mut raw = base64::engine::general_purpose::STANDARD
                .decode(&v)
                .unwrap();
            let i = raw.len() / 3;
            raw[i] ^= 0x01;
            let back = base64::engine::general_purpose::STANDARD.encode(raw);
            if field == "payload" {
                env["payload"] = back.into();
            } else {
                env["signatures"][0]["sig"] = back.into();
            }
            std::fs::write(&f, serde_json::to_vec_pretty(&env).unwrap()).unwrap();
        })
    };
    cases.push((
        "one byte of the payload".into(),
        envelope_field("payload"),
        "does not verify".into(),
    ));
    cases.push((
        "one byte of the signature".into(),
        envelope_field("sig"),
        "does not verify".into(),
    ));
    cases.push((
        "a deleted file".into(),
        Box::new(|d: &Path| std::fs::remove_file(d.join("raw/send-latency.wav")).unwrap()),
        "raw/send-latency.wav is missing".into(),
    ));
    cases.push((
        "an added file".into(),
        Box::new(|d: &Path| std::fs::write(d.join("raw/notes.txt"), "later").unwrap()),
        "raw/notes.txt was added".into(),
    ));
    cases.push((
        "no signature".into(),
        Box::new(|d: &Path| std::fs::remove_file(d.join("report.dsse.json")).unwrap()),
        "report.dsse.json is missing".into(),
    ));
    let rogue_key = rogue.join("authority.key");
    let lab_pub = p.path("lab.pub");
    cases.push((
        "a trust document swapped for one signed by another key".into(),
        Box::new(move |d: &Path| {
            let o = certlab()
                .args(["authority", "accredit-lab", "--authority-key"])
                .arg(&rogue_key)
                .args(["--lab-id", "lab", "--lab-pub"])
                .arg(&lab_pub)
                .args(["--program", PROGRAM, "--not-after", &t(365), "--out"])
                .arg(d.join("swapped.json"))
                .output()
                .unwrap();
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            std::fs::rename(d.join("swapped.json"), d.join("trust/lab.json")).unwrap();
        }),
        "trust/lab.json is not a document of the authority".into(),
    ));
    for (i, (what, tamper, phrase)) in cases.iter().enumerate() {
        let copy = elsewhere.path().join(format!("t{i}"));
        copy_dir(&report, &copy);
        tamper(&copy);
        let o = certlab()
            .arg("verify")
            .arg(&copy)
            .arg("--authority")
            .arg(&auth)
            .arg("--json")
            .output()
            .unwrap();
        assert_eq!(code(&o), 1, "{what}: {}", stdout(&o));
        let v = verify_json(&o);
        assert_eq!(v["status"], "INVALID", "{what}");
        assert!(
            reasons(&v).contains(phrase.as_str()),
            "{what}: want {phrase:?} in\n{}",
            reasons(&v)
        );
    }

    // Unusable input is exit 3, with the reason.
    for (args, phrase) in [
        (
            vec!["verify", "/nonexistent/report", "--authority"],
            "is not a report directory",
        ),
        (vec!["verify", ".", "--authority"], ""),
    ] {
        let key = if phrase.is_empty() {
            p.path("lab.key")
        } else {
            auth.clone()
        };
        let o = certlab().args(&args).arg(&key).output().unwrap();
        assert_eq!(code(&o), 3, "{args:?}: {}", stderr(&o));
        let want = if phrase.is_empty() {
            "holds a private key"
        } else {
            phrase
        };
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn trust_directories_and_authority_commands_refuse_bad_input() {
    let p = Program::new();
    p.lab_key("lab");
    let bad_time = certlab()
        .args(["authority", "admit-vendor", "--authority-key"])
        .arg(p.authority_key())
        .args([
            "--vendor-id",
            "acme",
            "--program",
            PROGRAM,
            "--not-after",
            "next week",
            "--out",
        ])
        .arg(p.path("x.json"))
        .output()
        .unwrap();
    assert_eq!(code(&bad_time), 3);
    assert!(
        stderr(&bad_time).contains("RFC 3339"),
        "{}",
        stderr(&bad_time)
    );
    let backwards = certlab()
        .args(["authority", "accredit-lab", "--authority-key"])
        .arg(p.authority_key())
        .args(["--lab-id", "lab", "--lab-pub"])
        .arg(p.path("lab.pub"))
        .args([
            "--program",
            PROGRAM,
            "--not-before",
            &t(5),
            "--not-after",
            &t(1),
            "--out",
        ])
        .arg(p.path("x.json"))
        .output()
        .unwrap();
    assert_eq!(code(&backwards), 3);
    assert!(
        stderr(&backwards).contains("is not after"),
        "{}",
        stderr(&backwards)
    );
    let bad_id = certlab()
        .args(["authority", "revoke", "--authority-key"])
        .arg(p.authority_key())
        .args(["--key-id", "abc", "--revoked-at", &t(0), "--sequence", "1"])
        .args(["--expires", &t(9), "--out"])
        .arg(p.path("x.json"))
        .output()
        .unwrap();
    assert_eq!(code(&bad_id), 3);
    assert!(
        stderr(&bad_id).contains("bad --key-id"),
        "{}",
        stderr(&bad_id)
    );
    // The public key where the authority's private key belongs.
    let wrong = certlab()
        .args(["authority", "admit-vendor", "--authority-key"])
        .arg(p.authority_pub())
        .args([
            "--vendor-id",
            "acme",
            "--program",
            PROGRAM,
            "--not-after",
            &t(9),
            "--out",
        ])
        .arg(p.path("x.json"))
        .output()
        .unwrap();
    assert_eq!(code(&wrong), 3);
    assert!(
        stderr(&wrong).contains("holds a public key"),
        "{}",
        stderr(&wrong)
    );
    assert!(!p.path("x.json").exists());

    // A file in the trust directory that is no trust document: exit 3,
    // named, before anything is measured.
    std::fs::write(p.trust().join("notes.json"), "{\"hello\": 1}").unwrap();
    let o = p.run(QUICK, "acme", "lab", &p.path("r"));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("notes.json"), "{}", stderr(&o));
    assert!(!p.path("r").exists());
    std::fs::remove_file(p.trust().join("notes.json")).unwrap();

    // Without authority.pub the documents are checked against the issuer
    // they name, which the run says; verify then holds them to the real key.
    std::fs::remove_file(p.trust().join("authority.pub")).unwrap();
    p.accredit("lab", PROGRAM, &t(-1), &t(365), &p.trust().join("lab.json"));
    p.admit("acme", &t(-1), &t(365), &p.trust().join("acme.json"));
    let out = p.path("r2");
    let o = p.run(QUICK, "acme", "lab", &out);
    ok(&o);
    assert!(stderr(&o).contains("no authority.pub"), "{}", stderr(&o));
    assert!(stdout(&o).contains("MARKING: OFFICIAL"), "{}", stdout(&o));
    ok(&p.verify(&out, &[]));

    // --lab-key without --trust: signed, UNOFFICIAL, and it says why.
    let out = p.path("r3");
    let o = certlab()
        .args([
            "run",
            QUICK,
            "--device",
            "sim",
            "--vendor",
            "acme",
            "--lab-key",
        ])
        .arg(p.path("lab.key"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    assert!(
        stdout(&o).contains("no trust documents were given"),
        "{}",
        stdout(&o)
    );
    let v = verify_json(ok(&p.verify(&out, &["--json"])));
    assert_eq!(v["status"], "UNOFFICIAL");
}
