//! The program authority's trust documents: lab accreditations, vendor
//! admissions and revocation lists, each a DSSE envelope signed by the
//! authority key.
//!
//! Owns their payload types and JSON, issuing them, authenticating them
//! against an authority key, and reading a trust directory. It does not
//! decide a marking (`trust::marking`) and does not touch reports.

use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::dsse::Envelope;
use super::keys::{self, key_id};
use crate::{timestamp, Error, Result};

pub const ACCREDITATION_TYPE: &str = "application/vnd.certlab.lab-accreditation+json";
pub const ADMISSION_TYPE: &str = "application/vnd.certlab.vendor-admission+json";
pub const REVOCATIONS_TYPE: &str = "application/vnd.certlab.revocation-list+json";

/// Largest trust document read (they are a few kB).
const MAX_DOC_BYTES: u64 = 1 << 20;

/// The key that signed a document, as the document states it. Only used to
/// name the issuer, and to check documents when no authority key is pinned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    pub key_id: String,
    /// SubjectPublicKeyInfo PEM.
    pub public_key: String,
}

// The documents' times are written by chrono's serde, whose text is
// `timestamp::document`'s (as few fractional digits as a time needs); a
// test there holds the two together, since the signatures cover the bytes.

/// A lab accredited, with one key, for programs, over a period.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Accreditation {
    pub lab_id: String,
    pub lab_key_id: String,
    /// The lab's SubjectPublicKeyInfo PEM.
    pub lab_public_key: String,
    pub programs: Vec<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub issuer: Issuer,
}

/// A vendor admitted to programs over a period.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    pub vendor_id: String,
    pub programs: Vec<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub issuer: Issuer,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    pub key_id: String,
    /// From this time on, nothing the key signs counts.
    pub revoked_at: DateTime<Utc>,
}

/// Keys revoked, with a sequence number (a later list has a higher one) and
/// an expiry by which a newer list should have been published.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RevocationList {
    pub sequence: u64,
    pub issued_at: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub revoked: Vec<Revoked>,
    pub issuer: Issuer,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Accreditation(Accreditation),
    Admission(Admission),
    Revocations(RevocationList),
}

impl Document {
    pub fn payload_type(&self) -> &'static str {
        match self {
            Document::Accreditation(_) => ACCREDITATION_TYPE,
            Document::Admission(_) => ADMISSION_TYPE,
            Document::Revocations(_) => REVOCATIONS_TYPE,
        }
    }

    /// A short name of the kind, used in report.json and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Document::Accreditation(_) => "lab-accreditation",
            Document::Admission(_) => "vendor-admission",
            Document::Revocations(_) => "revocation-list",
        }
    }

    fn issuer(&self) -> &Issuer {
        match self {
            Document::Accreditation(a) => &a.issuer,
            Document::Admission(a) => &a.issuer,
            Document::Revocations(r) => &r.issuer,
        }
    }

    fn to_json(&self) -> Vec<u8> {
        let v = match self {
            Document::Accreditation(a) => serde_json::to_vec_pretty(a),
            Document::Admission(a) => serde_json::to_vec_pretty(a),
            Document::Revocations(r) => serde_json::to_vec_pretty(r),
        };
        v.expect("a trust document always serialises")
    }

    /// Parse a payload of a known type and check that it holds together.
    fn from_payload(payload_type: &str, payload: &[u8]) -> std::result::Result<Document, String> {
        let bad = |e: serde_json::Error| format!("its {payload_type} payload is malformed: {e}");
        let doc = match payload_type {
            ACCREDITATION_TYPE => {
                Document::Accreditation(serde_json::from_slice(payload).map_err(bad)?)
            }
            ADMISSION_TYPE => Document::Admission(serde_json::from_slice(payload).map_err(bad)?),
            REVOCATIONS_TYPE => {
                Document::Revocations(serde_json::from_slice(payload).map_err(bad)?)
            }
            other => {
                return Err(format!(
                    "its payload type {other:?} is not a certlab trust document"
                ))
            }
        };
        doc.check().map(|()| doc)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let issuer = self.issuer();
        let ik = keys::parse_public_pem(&issuer.public_key)
            .map_err(|w| format!("its issuer key: {w}"))?;
        if key_id(&ik) != issuer.key_id {
            return Err("its issuer's key id does not match the issuer's key".into());
        }
        match self {
            Document::Accreditation(a) => {
                check_id("lab id", &a.lab_id)?;
                a.programs.iter().try_for_each(|p| check_id("program", p))?;
                let lk = keys::parse_public_pem(&a.lab_public_key)
                    .map_err(|w| format!("its lab key: {w}"))?;
                if key_id(&lk) != a.lab_key_id {
                    return Err("its lab key id does not match the lab's key".into());
                }
                check_period(a.not_before, a.not_after)
            }
            Document::Admission(a) => {
                check_id("vendor id", &a.vendor_id)?;
                a.programs.iter().try_for_each(|p| check_id("program", p))?;
                check_period(a.not_before, a.not_after)
            }
            Document::Revocations(r) => {
                for k in &r.revoked {
                    if !keys::is_key_id(&k.key_id) {
                        return Err(format!("it revokes {:?}, which is not a key id", k.key_id));
                    }
                }
                Ok(())
            }
        }
    }
}

/// Ids of labs, vendors and programs: 1 to 64 of letters, digits, '-', '_', '.'.
pub fn check_id(what: &str, s: &str) -> std::result::Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad {what} {s:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> std::result::Result<(), String> {
    if to <= from {
        return Err(format!(
            "its period ends ({}) before it begins ({})",
            timestamp::document(to),
            timestamp::document(from)
        ));
    }
    Ok(())
}

/// Parse an RFC 3339 time given on the command line.
pub fn parse_time(flag: &str, s: &str) -> Result<DateTime<Utc>> {
    crate::timestamp::parse(s.trim()).map_err(|e| {
        Error::BadInput(format!(
            "bad {flag} {s:?}: {e}; give an RFC 3339 time such as 2027-01-31T00:00:00Z"
        ))
    })
}

/// Sign a document with the authority key.
pub fn issue(doc: &Document, authority: &SigningKey) -> Envelope {
    Envelope::sign(doc.payload_type(), &doc.to_json(), authority)
}

/// The issuer record of an authority key.
pub fn issuer_of(authority: &SigningKey) -> Issuer {
    let vk = authority.verifying_key();
    Issuer {
        key_id: key_id(&vk),
        public_key: keys::public_pem(&vk),
    }
}

/// A trust document file, authenticated.
#[derive(Debug, Clone)]
pub struct TrustFile {
    /// Its file name (no directory).
    pub name: String,
    /// The envelope file's bytes, as read.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`.
    pub sha256: String,
    pub doc: Document,
}

/// Authenticate one envelope file against `authority`. The error says why
/// it is not an authority's document.
pub fn authenticate(
    name: &str,
    bytes: Vec<u8>,
    authority: &VerifyingKey,
) -> std::result::Result<TrustFile, String> {
    let env = Envelope::parse(&bytes)?;
    let payload = env.verify(authority).map_err(|e| {
        if e.contains("signed by key") {
            format!("{e} (the authority's key)")
        } else {
            e
        }
    })?;
    let doc = Document::from_payload(&env.payload_type, &payload)?;
    if doc.issuer().key_id != key_id(authority) {
        return Err("its payload names another issuer than the key that signed it".into());
    }
    Ok(TrustFile {
        name: name.to_string(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes,
        doc,
    })
}

/// The issuer key an envelope's payload names (not yet authenticated).
fn stated_issuer(bytes: &[u8]) -> std::result::Result<VerifyingKey, String> {
    let env = Envelope::parse(bytes)?;
    let payload = env.payload_bytes()?;
    let doc = Document::from_payload(&env.payload_type, &payload)?;
    keys::parse_public_pem(&doc.issuer().public_key)
}

/// The authenticated documents of a trust directory.
#[derive(Debug, Clone)]
pub struct TrustSet {
    pub authority: VerifyingKey,
    /// True when the authority key came from outside the documents
    /// (authority.pub, or --authority); false when it was taken from the
    /// documents themselves, which proves only that they agree.
    pub pinned: bool,
    pub files: Vec<TrustFile>,
    /// Documents left out, and other things worth saying.
    pub warnings: Vec<String>,
}

/// Read a trust directory: every `*.json` in it is a trust document. The
/// authority key is `pin`, else the directory's authority.pub, else the
/// issuer the documents name (they must all name the same one).
///
/// A file that is not a trust document is bad input (exit 3); a document
/// signed by another key than the authority's is left out with a warning.
pub fn load_dir(dir: &Path, pin: Option<&VerifyingKey>) -> Result<TrustSet> {
    let unreadable = |e: std::io::Error| {
        Error::BadInput(format!(
            "cannot read the trust directory {}: {e}",
            dir.display()
        ))
    };
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && entry.file_type().map_err(unreadable)?.is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut warnings = Vec::new();
    if dir.join("authority.key").exists() {
        warnings.push(format!(
            "{} holds the authority's private key; it should never leave the authority",
            dir.display()
        ));
    }
    let mut raw = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let len = std::fs::metadata(&path).map_err(unreadable)?.len();
        if len > MAX_DOC_BYTES {
            return Err(Error::BadInput(format!(
                "{}: {len} bytes is too large for a trust document",
                path.display()
            )));
        }
        let bytes = std::fs::read(&path).map_err(unreadable)?;
        raw.push((name, bytes));
    }
    let (authority, pinned) = match pin {
        Some(k) => (*k, true),
        None if dir.join("authority.pub").exists() => {
            (keys::read_public(&dir.join("authority.pub"))?, true)
        }
        None => {
            let mut issuers: Vec<(VerifyingKey, String)> = Vec::new();
            for (name, bytes) in &raw {
                let k = stated_issuer(bytes).map_err(|why| {
                    Error::BadInput(format!("{}: {why}", dir.join(name).display()))
                })?;
                if !issuers.iter().any(|(i, _)| *i == k) {
                    issuers.push((k, name.clone()));
                }
            }
            match issuers.len() {
                0 => {
                    return Err(Error::BadInput(format!(
                        "the trust directory {} holds no trust documents (*.json) and no authority.pub",
                        dir.display()
                    )))
                }
                1 => {
                    warnings.push(format!(
                        "no authority.pub in {}: the documents were checked against the key they name ({}), \
                         which shows they agree but not that the program issued them; `certlab verify` \
                         checks them against the authority's key",
                        dir.display(),
                        key_id(&issuers[0].0)
                    ));
                    (issuers[0].0, false)
                }
                _ => {
                    return Err(Error::BadInput(format!(
                        "the documents in {} name different issuers ({}); put the program's authority.pub \
                         in the directory to say which is the authority",
                        dir.display(),
                        issuers
                            .iter()
                            .map(|(k, n)| format!("{} in {n}", key_id(k)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
    };
    let mut files = Vec::new();
    for (name, bytes) in raw {
        let path = dir.join(&name);
        // A file that is no trust document at all is an error; one by
        // another signer is set aside.
        if let Err(why) = stated_issuer(&bytes) {
            return Err(Error::BadInput(format!("{}: {why}", path.display())));
        }
        match authenticate(&name, bytes, &authority) {
            Ok(f) => files.push(f),
            Err(why) => warnings.push(format!("{} is left out: {why}", path.display())),
        }
    }
    Ok(TrustSet {
        authority,
        pinned,
        files,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time("t", s).unwrap()
    }

    #[test]
    fn issued_documents_authenticate_only_against_their_authority() {
        let auth = keys::generate().unwrap();
        let lab = keys::generate().unwrap();
        let doc = Document::Accreditation(Accreditation {
            lab_id: "lab-1".into(),
            lab_key_id: key_id(&lab.verifying_key()),
            lab_public_key: keys::public_pem(&lab.verifying_key()),
            programs: vec!["teams-usb-audio".into()],
            not_before: t("2026-01-01T00:00:00Z"),
            not_after: t("2027-01-01T00:00:00Z"),
            issued_at: t("2026-01-01T00:00:00Z"),
            issuer: issuer_of(&auth),
        });
        let env = issue(&doc, &auth);
        let f = authenticate("lab.json", env.to_json(), &auth.verifying_key()).unwrap();
        assert_eq!(f.doc, doc);
        let e = authenticate("lab.json", env.to_json(), &lab.verifying_key()).unwrap_err();
        assert!(e.contains("signed by key"), "{e}");
        // A document whose lab key id does not match its key is refused even
        // when properly signed.
        let Document::Accreditation(mut a) = doc else {
            unreachable!()
        };
        a.lab_key_id = key_id(&auth.verifying_key());
        let env = issue(&Document::Accreditation(a), &auth);
        let e = authenticate("lab.json", env.to_json(), &auth.verifying_key()).unwrap_err();
        assert!(e.contains("lab key id"), "{e}");
    }

    #[test]
    fn a_trust_directory_without_authority_pub_must_agree_on_one_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let a1 = keys::generate().unwrap();
        let a2 = keys::generate().unwrap();
        let adm = |auth: &SigningKey| {
            Document::Admission(Admission {
                vendor_id: "acme".into(),
                programs: vec!["p".into()],
                not_before: t("2026-01-01T00:00:00Z"),
                not_after: t("2027-01-01T00:00:00Z"),
                issued_at: t("2026-01-01T00:00:00Z"),
                issuer: issuer_of(auth),
            })
        };
        std::fs::write(dir.path().join("a.json"), issue(&adm(&a1), &a1).to_json()).unwrap();
        let set = load_dir(dir.path(), None).unwrap();
        assert!(!set.pinned);
        assert_eq!(set.files.len(), 1);
        std::fs::write(dir.path().join("b.json"), issue(&adm(&a2), &a2).to_json()).unwrap();
        let e = load_dir(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("different issuers"), "{e}");
        // Pinned: the other authority's document is set aside, with a warning.
        let set = load_dir(dir.path(), Some(&a1.verifying_key())).unwrap();
        assert_eq!(set.files.len(), 1);
        assert!(
            set.warnings
                .iter()
                .any(|w| w.contains("b.json is left out")),
            "{:?}",
            set.warnings
        );
        // A file that is no trust document is an error that names it.
        std::fs::write(dir.path().join("c.json"), b"{\"hello\": 1}").unwrap();
        let e = load_dir(dir.path(), Some(&a1.verifying_key())).unwrap_err();
        assert_eq!(e.exit_status(), crate::ExitStatus::BadInput);
        assert!(e.to_string().contains("c.json"), "{e}");
    }
}
