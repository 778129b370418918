//! Verifying a signed report directory: OFFICIAL, UNOFFICIAL or INVALID.
//!
//! Owns the reviewer's checks, in order: the envelope's signature (strict),
//! every file's digest (changed, missing and added files are named), the
//! trust documents' signatures against the authority key, report.json
//! agreeing with the signed statement, and the marking recomputed with
//! `trust::marking::decide`. A report that claims more than its documents
//! support is INVALID. It reads the report directory and writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use super::documents::{authenticate, TrustFile, TrustSet};
use super::dsse::Envelope;
use super::keys::{self, key_id};
use super::marking::{decide, Facts, SignerKind};
use super::statement::{
    sha256_file, walk, Entry, Predicate, ProfileDigest, SignerRecord, Statement, IN_TOTO_TYPE,
    PREDICATE_TYPE, SIGNATURE_FILE, SIGNER_PUB_FILE, STATEMENT_TYPE,
};
use crate::{timestamp, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Official,
    Unofficial,
    Invalid,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Official => "OFFICIAL",
            Status::Unofficial => "UNOFFICIAL",
            Status::Invalid => "INVALID",
        }
    }
}

/// What `certlab verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub status: Status,
    /// The marking the report claims.
    pub claimed: Option<String>,
    /// Why: the marking's reasons as recomputed, or what makes it INVALID.
    pub reasons: Vec<String>,
    /// Facts that do not change the result.
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<&'static str>,
    pub signer: Option<SignerRecord>,
    pub vendor: Option<String>,
    pub program: Option<String>,
    pub profile: Option<ProfileDigest>,
    pub device: Option<serde_json::Value>,
    pub outcome: Option<String>,
    #[serde(with = "crate::timestamp::serde_record_opt")]
    pub started_at: Option<DateTime<Utc>>,
    /// Files whose digest matched the signed statement.
    pub files_verified: usize,
    /// Trust documents the marking was recomputed from.
    pub trust_documents: Vec<String>,
    pub authority_key_id: String,
}

/// A subject name a report may hold: relative, '/'-separated, no '..'.
fn safe_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('/')
        && !n.contains('\\')
        && n.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
}

/// The file `name` of the report in `dir`, read by `read` and parsed by
/// `parse`; `None` with the problem noted when either fails. `if_missing`
/// says what an absent file means, when that is more than a read error.
fn read_part<R, T>(
    dir: &Path,
    name: &str,
    read: impl FnOnce(std::path::PathBuf) -> std::io::Result<R>,
    parse: impl FnOnce(R) -> std::result::Result<T, String>,
    if_missing: Option<&str>,
    problems: &mut Vec<String>,
) -> Option<T> {
    let why = match read(dir.join(name)) {
        Ok(r) => match parse(r) {
            Ok(t) => return Some(t),
            Err(why) => format!("{name}: {why}"),
        },
        Err(e) => match if_missing {
            Some(means) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("{name} is missing: {means}")
            }
            _ => format!("{name} cannot be read: {e}"),
        },
    };
    problems.push(why);
    None
}

/// Verify the report in `dir` against the authority's key. `extra` holds
/// documents the reviewer adds (e.g. a later revocation list), already
/// authenticated against the same key. Errors are only for unusable input
/// (exit 3); everything wrong with the report itself makes it INVALID.
pub fn verify_dir(
    dir: &Path,
    authority: &VerifyingKey,
    extra: Option<&TrustSet>,
) -> Result<Verification> {
    if !dir.is_dir() {
        return Err(Error::BadInput(format!(
            "{} is not a report directory",
            dir.display()
        )));
    }
    let mut problems: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut v = Verification {
        status: Status::Invalid,
        claimed: None,
        reasons: Vec::new(),
        notes: Vec::new(),
        notice: None,
        signer: None,
        vendor: None,
        program: None,
        profile: None,
        device: None,
        outcome: None,
        started_at: None,
        files_verified: 0,
        trust_documents: Vec::new(),
        authority_key_id: key_id(authority),
    };
    if let Some(x) = extra {
        notes.extend(x.warnings.iter().cloned());
    }

    // 1. The envelope and the signer's key.
    let env = read_part(
        dir,
        SIGNATURE_FILE,
        std::fs::read,
        |b| Envelope::parse(&b),
        Some("the report is not signed"),
        &mut problems,
    );
    let signer_key = read_part(
        dir,
        SIGNER_PUB_FILE,
        std::fs::read_to_string,
        |t| keys::parse_public_pem(&t),
        None,
        &mut problems,
    );
    let mut statement: Option<Statement> = None;
    if let Some(env) = &env {
        if env.payload_type != IN_TOTO_TYPE {
            problems.push(format!(
                "{SIGNATURE_FILE}: its payload type is {:?}, not {IN_TOTO_TYPE}",
                env.payload_type
            ));
        }
        if let Some(k) = &signer_key {
            if let Err(why) = env.verify(k) {
                problems.push(format!(
                    "{SIGNATURE_FILE}: {why} (the key in {SIGNER_PUB_FILE}); the signed statement \
                     or the signature was changed"
                ));
            }
        }
        match env.payload_bytes().and_then(|p| {
            serde_json::from_slice::<Statement>(&p)
                .map_err(|e| format!("its payload is not a certlab report statement: {e}"))
        }) {
            Ok(s) => {
                if s.type_ != STATEMENT_TYPE {
                    problems.push(format!(
                        "the statement's _type is {:?}, not {STATEMENT_TYPE}",
                        s.type_
                    ));
                }
                if s.predicate_type != PREDICATE_TYPE {
                    problems.push(format!(
                        "the statement's predicateType is {:?}, not {PREDICATE_TYPE}",
                        s.predicate_type
                    ));
                }
                statement = Some(s);
            }
            Err(why) => problems.push(format!("{SIGNATURE_FILE}: {why}")),
        }
    }
    let Some(statement) = statement else {
        v.reasons = problems;
        v.notes = notes;
        return Ok(v);
    };
    let p: &Predicate = &statement.predicate;
    v.claimed = Some(p.marking.clone());
    v.signer = Some(p.signer.clone());
    v.vendor = Some(p.vendor.clone());
    v.program = Some(p.program.clone());
    v.profile = Some(p.profile.clone());
    v.device = Some(p.device.clone());
    v.outcome = Some(p.outcome.clone());
    v.started_at = Some(p.started_at);
    if let Some(k) = &signer_key {
        if key_id(k) != p.signer.key_id {
            problems.push(format!(
                "{SIGNER_PUB_FILE} holds key {}, but the statement names signer key {}",
                key_id(k),
                p.signer.key_id
            ));
        }
    }

    // 2. Every file, by digest: changed, missing, added.
    let mut signed: BTreeMap<&str, &str> = BTreeMap::new();
    for s in &statement.subject {
        if !safe_name(&s.name) || s.name == SIGNATURE_FILE {
            problems.push(format!(
                "the statement names a file {:?} no report can hold",
                s.name
            ));
        } else if signed.insert(&s.name, &s.digest.sha256).is_some() {
            problems.push(format!("the statement names {} twice", s.name));
        }
    }
    let entries = walk(dir).map_err(|e| {
        Error::BadInput(format!(
            "cannot read the report directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut present = BTreeSet::new();
    for e in &entries {
        match e {
            Entry::File(name, path) => {
                present.insert(name.clone());
                match signed.get(name.as_str()) {
                    None => problems.push(format!(
                        "{name} was added: it is not among the signed files"
                    )),
                    Some(want) => match sha256_file(path) {
                        Ok(got) if got == *want => v.files_verified += 1,
                        Ok(got) => problems.push(format!(
                            "{name} has changed: its sha256 is {got}, the signed one {want}"
                        )),
                        Err(e) => problems.push(format!("{name} cannot be read: {e}")),
                    },
                }
            }
            Entry::Other(name) => problems.push(format!("{name} is not a regular file")),
        }
    }
    for name in signed.keys() {
        if !present.contains(*name) {
            problems.push(format!("{name} is missing"));
        }
    }

    // 3. report.json agrees with the signed statement.
    match std::fs::read(dir.join("report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    {
        None => problems.push("report.json is missing or is not JSON".into()),
        Some(r) => {
            let checks: [(&str, serde_json::Value, serde_json::Value); 7] = [
                ("marking", r["marking"].clone(), p.marking.clone().into()),
                ("vendor", r["vendor"].clone(), p.vendor.clone().into()),
                (
                    "profile.sha256",
                    r["profile"]["sha256"].clone(),
                    p.profile.sha256.clone().into(),
                ),
                (
                    "profile.program",
                    r["profile"]["program"].clone(),
                    p.program.clone().into(),
                ),
                ("outcome", r["outcome"].clone(), p.outcome.clone().into()),
                (
                    "started_at",
                    r["started_at"].clone(),
                    timestamp::record(p.started_at).into(),
                ),
                (
                    "signer.key_id",
                    r["signer"]["key_id"].clone(),
                    p.signer.key_id.clone().into(),
                ),
            ];
            for (field, theirs, signed) in checks {
                if theirs != signed {
                    problems.push(format!(
                        "report.json's {field} is {theirs}, but the signed statement says {signed}"
                    ));
                }
            }
        }
    }

    // 4. The trust documents the report kept, against the authority key.
    let mut docs: Vec<TrustFile> = Vec::new();
    for t in &p.trust_documents {
        if !signed.contains_key(t.name.as_str()) {
            problems.push(format!(
                "trust document {} is not among the signed files",
                t.name
            ));
            continue;
        }
        let Ok(bytes) = std::fs::read(dir.join(&t.name)) else {
            continue; // named above as missing
        };
        let base = t.name.rsplit('/').next().unwrap_or(&t.name).to_string();
        match authenticate(&base, bytes, authority) {
            Ok(f) => {
                if f.sha256 != t.sha256 {
                    problems.push(format!(
                        "{} is not the trust document the statement names",
                        t.name
                    ));
                }
                v.trust_documents.push(t.name.clone());
                docs.push(f);
            }
            Err(why) => problems.push(format!(
                "{} is not a document of the authority: {why}",
                t.name
            )),
        }
    }
    if let Some(x) = extra {
        for f in &x.files {
            if !docs.iter().any(|d| d.sha256 == f.sha256) {
                v.trust_documents.push(format!("--trust {}", f.name));
                docs.push(f.clone());
            }
        }
    }

    // 5. The marking, recomputed.
    // (The statement's test time parsed with it: a statement whose
    // started_at is not a time is not a certlab statement.)
    let m = decide(
        &Facts {
            signer: p.signer.kind,
            key_id: &p.signer.key_id,
            program: &p.program,
            vendor: &p.vendor,
            test_time: p.started_at,
        },
        &docs,
    );
    if p.signer.lab_id.is_some() && p.signer.lab_id != m.lab_id {
        problems.push(format!(
            "the statement names lab {:?}, but no accreditation binds the signer's key to it",
            p.signer.lab_id.as_deref().unwrap_or_default()
        ));
    }
    notes.extend(m.notes.iter().cloned());
    match p.marking.as_str() {
        _ if !problems.is_empty() => {}
        "OFFICIAL" if m.official => {
            v.status = Status::Official;
            v.reasons = m.reasons.clone();
        }
        "OFFICIAL" => {
            problems.extend(
                m.reasons
                    .iter()
                    .map(|r| format!("the report claims OFFICIAL, but {r}")),
            );
        }
        "UNOFFICIAL" => {
            v.status = Status::Unofficial;
            v.notice = Some(super::marking::UNOFFICIAL_NOTICE);
            if m.official {
                v.reasons = p.reasons.clone();
                notes.push(
                    "the trust documents would support OFFICIAL, but the report claims UNOFFICIAL"
                        .into(),
                );
            } else {
                v.reasons = m.reasons.clone();
            }
        }
        other => problems.push(format!(
            "the statement's marking {other:?} is neither OFFICIAL nor UNOFFICIAL"
        )),
    }
    if !problems.is_empty() {
        v.status = Status::Invalid;
        v.reasons = problems;
        v.notice = None;
    }
    if p.signer.kind == SignerKind::User && v.status != Status::Invalid {
        notes.push("signed with a per-user key: the signer is named only by its key id".into());
    }
    v.notes = notes;
    Ok(v)
}

/// The verification as the terminal shows it.
pub fn render(v: &Verification, dir: &Path) -> String {
    let mut s = format!("{}\n", v.status.name());
    let line = |s: &mut String, k: &str, val: String| s.push_str(&format!("  {k:<9} {val}\n"));
    line(&mut s, "report", dir.display().to_string());
    if let Some(c) = &v.claimed {
        line(&mut s, "claims", c.clone());
    }
    if let Some(sg) = &v.signer {
        let who = match (&sg.kind, &sg.lab_id) {
            (SignerKind::Lab, Some(l)) => format!("lab {l}"),
            (SignerKind::Lab, None) => "a lab key the authority has not accredited".into(),
            (SignerKind::User, _) => "a per-user key".into(),
        };
        line(&mut s, "signer", format!("{who}, key {}", sg.key_id));
    }
    if let Some(x) = &v.vendor {
        line(&mut s, "vendor", x.clone());
    }
    if let Some(d) = &v.device {
        let g = |k: &str| d.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        line(
            &mut s,
            "device",
            format!(
                "{}:{} serial {}, firmware {}, {} {}{}",
                g("vid"),
                g("pid"),
                g("serial"),
                g("firmware"),
                g("manufacturer"),
                g("product"),
                if d.get("simulated").and_then(|x| x.as_bool()) == Some(true) {
                    " (simulated)"
                } else {
                    ""
                }
            )
            .chars()
            .flat_map(|c| -> Vec<char> {
                if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                }
            })
            .collect(),
        );
    }
    if let Some(pr) = &v.profile {
        line(
            &mut s,
            "profile",
            format!(
                "{} v{} (program {}), sha256 {}",
                pr.id,
                pr.version,
                v.program.clone().unwrap_or_default(),
                pr.sha256
            ),
        );
    }
    if let (Some(o), Some(t)) = (&v.outcome, &v.started_at) {
        line(
            &mut s,
            "outcome",
            format!("{o}, tested at {}", timestamp::record(*t)),
        );
    }
    line(
        &mut s,
        "checked",
        format!(
            "{} files, {} trust documents, authority key {}",
            v.files_verified,
            v.trust_documents.len(),
            v.authority_key_id
        ),
    );
    if !v.reasons.is_empty() {
        s.push_str(if v.status == Status::Invalid {
            "problems:\n"
        } else {
            "reasons:\n"
        });
        for r in &v.reasons {
            s.push_str(&format!("  - {r}\n"));
        }
    }
    for n in &v.notes {
        s.push_str(&format!("  note: {n}\n"));
    }
    if let Some(n) = v.notice {
        s.push_str(&format!("{n}.\n"));
    }
    s
}
