//! `certlab keys`, `certlab authority` and `certlab verify`: printing and
//! argument checks around `trust`. No trust logic lives here.

use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::timestamp;
use crate::trust::documents::{
    self, check_id, parse_time, Accreditation, Admission, Document, RevocationList, Revoked,
};
use crate::trust::{keys, verify};
use crate::{Error, ExitStatus, Result};

pub fn keys_generate(out: &Path) -> Result<ExitStatus> {
    let key = keys::generate()?;
    let (k, p) = keys::write_pair(out, &key)?;
    println!("key id {}", keys::key_id(&key.verifying_key()));
    println!("private key {} (mode 0600; keep it secret)", k.display());
    println!("public key  {}", p.display());
    Ok(ExitStatus::Ok)
}

pub fn authority_init(out: &Path) -> Result<ExitStatus> {
    let key = keys::generate()?;
    let (k, p) = keys::write_pair(&out.join("authority"), &key)?;
    println!("authority key id {}", keys::key_id(&key.verifying_key()));
    println!(
        "private key {} (mode 0600; it signs every accreditation, admission and revocation)",
        k.display()
    );
    println!(
        "public key  {} (give it to labs, in their trust directory, and to reviewers)",
        p.display()
    );
    Ok(ExitStatus::Ok)
}

fn ids(what: &str, v: &[String]) -> Result<Vec<String>> {
    if v.is_empty() {
        return Err(Error::BadInput(format!("give at least one {what}")));
    }
    let mut out: Vec<String> = Vec::new();
    for s in v {
        check_id(what, s).map_err(Error::BadInput)?;
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

fn period(
    not_before: Option<&str>,
    not_after: &str,
) -> Result<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> {
    let from = match not_before {
        Some(t) => parse_time("--not-before", t)?,
        None => Utc::now(),
    };
    let to = parse_time("--not-after", not_after)?;
    if to <= from {
        return Err(Error::BadInput(format!(
            "--not-after {} is not after --not-before {}",
            timestamp::document(to),
            timestamp::document(from)
        )));
    }
    Ok((from, to))
}

fn write_doc(out: &Path, doc: &Document, key: &ed25519_dalek::SigningKey) -> Result<()> {
    let env = documents::issue(doc, key);
    keys::write_new(out, &env.to_json(), 0o644)
}

pub struct Accredit {
    pub authority_key: PathBuf,
    pub lab_id: String,
    pub lab_pub: PathBuf,
    pub programs: Vec<String>,
    pub not_before: Option<String>,
    pub not_after: String,
    pub out: PathBuf,
}

pub fn accredit_lab(a: Accredit) -> Result<ExitStatus> {
    check_id("lab id", &a.lab_id).map_err(Error::BadInput)?;
    let programs = ids("program", &a.programs)?;
    let (from, to) = period(a.not_before.as_deref(), &a.not_after)?;
    let lab = keys::read_public(&a.lab_pub)?;
    let auth = keys::read_private(&a.authority_key)?;
    if lab == auth.verifying_key() {
        return Err(Error::BadInput(
            "--lab-pub is the authority's own key; a lab signs with a key of its own".into(),
        ));
    }
    let doc = Document::Accreditation(Accreditation {
        lab_id: a.lab_id.clone(),
        lab_key_id: keys::key_id(&lab),
        lab_public_key: keys::public_pem(&lab),
        programs: programs.clone(),
        not_before: from,
        not_after: to,
        issued_at: Utc::now(),
        issuer: documents::issuer_of(&auth),
    });
    write_doc(&a.out, &doc, &auth)?;
    println!(
        "accredited lab {} (key {}) for {} from {} to {}: {}",
        a.lab_id,
        keys::key_id(&lab),
        programs.join(", "),
        timestamp::document(from),
        timestamp::document(to),
        a.out.display()
    );
    Ok(ExitStatus::Ok)
}

pub struct Admit {
    pub authority_key: PathBuf,
    pub vendor_id: String,
    pub programs: Vec<String>,
    pub not_before: Option<String>,
    pub not_after: String,
    pub out: PathBuf,
}

pub fn admit_vendor(a: Admit) -> Result<ExitStatus> {
    check_id("vendor id", &a.vendor_id).map_err(Error::BadInput)?;
    let programs = ids("program", &a.programs)?;
    let (from, to) = period(a.not_before.as_deref(), &a.not_after)?;
    let auth = keys::read_private(&a.authority_key)?;
    let doc = Document::Admission(Admission {
        vendor_id: a.vendor_id.clone(),
        programs: programs.clone(),
        not_before: from,
        not_after: to,
        issued_at: Utc::now(),
        issuer: documents::issuer_of(&auth),
    });
    write_doc(&a.out, &doc, &auth)?;
    println!(
        "admitted vendor {} to {} from {} to {}: {}",
        a.vendor_id,
        programs.join(", "),
        timestamp::document(from),
        timestamp::document(to),
        a.out.display()
    );
    Ok(ExitStatus::Ok)
}

pub struct Revoke {
    pub authority_key: PathBuf,
    pub key_ids: Vec<String>,
    pub revoked_at: Vec<String>,
    pub sequence: u64,
    pub expires: String,
    pub include: Option<PathBuf>,
    pub out: PathBuf,
}

pub fn revoke(a: Revoke) -> Result<ExitStatus> {
    if a.key_ids.len() != a.revoked_at.len() {
        return Err(Error::BadInput(format!(
            "give one --revoked-at for each --key-id ({} key ids, {} times)",
            a.key_ids.len(),
            a.revoked_at.len()
        )));
    }
    let auth = keys::read_private(&a.authority_key)?;
    let expires = parse_time("--expires", &a.expires)?;
    let now = Utc::now();
    if expires <= now {
        eprintln!(
            "certlab: warning: --expires {} is already past; verifiers will note the list as expired",
            timestamp::document(expires)
        );
    }
    let mut revoked: Vec<Revoked> = Vec::new();
    // Entries of an earlier list are carried forward: a revocation is never undone.
    if let Some(prev) = &a.include {
        let bytes = std::fs::read(prev)
            .map_err(|e| Error::BadInput(format!("cannot read {}: {e}", prev.display())))?;
        let f = documents::authenticate("included", bytes, &auth.verifying_key())
            .map_err(|why| Error::BadInput(format!("--include {}: {why}", prev.display())))?;
        let Document::Revocations(r) = f.doc else {
            return Err(Error::BadInput(format!(
                "--include {} is a {}, not a revocation list",
                prev.display(),
                f.doc.kind()
            )));
        };
        if r.sequence >= a.sequence {
            return Err(Error::BadInput(format!(
                "--sequence {} must be higher than the included list's {}",
                a.sequence, r.sequence
            )));
        }
        revoked = r.revoked;
    }
    for (id, at) in a.key_ids.iter().zip(&a.revoked_at) {
        let id = id.to_ascii_lowercase();
        if !keys::is_key_id(&id) {
            return Err(Error::BadInput(format!(
                "bad --key-id {id:?}: a key id is the 64 hex digits of the key's SHA-256 \
                 (`certlab keys generate` prints it)"
            )));
        }
        let at = parse_time("--revoked-at", at)?;
        match revoked.iter_mut().find(|r| r.key_id == id) {
            // An earlier revocation time wins: it voids more.
            Some(r) => r.revoked_at = r.revoked_at.min(at),
            None => revoked.push(Revoked {
                key_id: id,
                revoked_at: at,
            }),
        }
    }
    if revoked.is_empty() {
        return Err(Error::BadInput(
            "the list would revoke nothing: give --key-id and --revoked-at (or --include)".into(),
        ));
    }
    let doc = Document::Revocations(RevocationList {
        sequence: a.sequence,
        issued_at: now,
        expires,
        revoked: revoked.clone(),
        issuer: documents::issuer_of(&auth),
    });
    write_doc(&a.out, &doc, &auth)?;
    println!(
        "revocation list {} ({} key(s)) valid until {}: {}",
        a.sequence,
        revoked.len(),
        timestamp::document(expires),
        a.out.display()
    );
    for r in &revoked {
        println!(
            "  {} revoked at {}",
            r.key_id,
            timestamp::document(r.revoked_at)
        );
    }
    Ok(ExitStatus::Ok)
}

pub fn verify(
    dir: &Path,
    authority: &Path,
    trust: Option<&Path>,
    json: bool,
) -> Result<ExitStatus> {
    let auth = keys::read_public(authority)?;
    let extra = match trust {
        Some(d) => Some(documents::load_dir(d, Some(&auth))?),
        None => None,
    };
    let v = verify::verify_dir(dir, &auth, extra.as_ref())?;
    if json {
        let text = serde_json::to_string_pretty(&v)
            .map_err(|e| Error::Harness(format!("cannot print the result: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", verify::render(&v, dir));
    }
    Ok(match v.status {
        verify::Status::Invalid => ExitStatus::Failed,
        _ => ExitStatus::Ok,
    })
}
