//! A report's signature: an in-toto Statement v1 over every file of the
//! report directory, in a DSSE envelope (report.dsse.json).
//!
//! Owns the statement and predicate layout, walking and hashing a report
//! directory, and writing report.dsse.json. It does not decide the marking
//! (`trust::marking`) and does not write any other file of the report.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::dsse::Envelope;
use super::marking::SignerKind;

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// certlab's predicate: a test report's marking and the facts it rests on.
pub const PREDICATE_TYPE: &str = "urn:certlab:predicate:test-report:v1";
/// The signature's file name in a report directory.
pub const SIGNATURE_FILE: &str = "report.dsse.json";
/// The signer's public key, kept in the report for tools like openssl.
pub const SIGNER_PUB_FILE: &str = "signer.pub";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Digest256 {
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Subject {
    pub name: String,
    pub digest: Digest256,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignerRecord {
    pub kind: SignerKind,
    pub key_id: String,
    /// The lab the authority bound the key to, if any document does.
    pub lab_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProfileDigest {
    pub id: String,
    pub version: String,
    pub sha256: String,
}

/// A trust document kept in the report, under trust/.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrustRef {
    /// Path relative to the report directory, e.g. trust/lab.json.
    pub name: String,
    pub kind: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HarnessRef {
    pub name: String,
    pub version: String,
}

/// The facts the marking rests on, signed with the files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Predicate {
    pub marking: String,
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    pub signer: SignerRecord,
    pub vendor: String,
    pub program: String,
    pub profile: ProfileDigest,
    /// The device identity, as report.json has it.
    pub device: serde_json::Value,
    pub outcome: String,
    /// The run's times, as report.json states them (the test time the
    /// marking was decided at is `started_at`).
    #[serde(with = "crate::timestamp::serde_record")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::timestamp::serde_record")]
    pub finished_at: DateTime<Utc>,
    pub trust_documents: Vec<TrustRef>,
    pub harness: HarnessRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Predicate,
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// One entry of a report directory, found by walking it.
#[derive(Debug)]
pub enum Entry {
    /// A regular file: its path relative to the directory, '/'-separated.
    File(String, PathBuf),
    /// Something that cannot be a subject (a symlink, a device, a name that
    /// is not UTF-8), named for the message.
    Other(String),
}

/// Every entry below `dir` except the signature itself, sorted by name.
pub fn walk(dir: &Path) -> std::io::Result<Vec<Entry>> {
    fn go(root: &Path, rel: &str, out: &mut Vec<Entry>) -> std::io::Result<()> {
        let here = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        for entry in std::fs::read_dir(&here)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            let name = match entry.file_name().into_string() {
                Ok(n) => n,
                Err(n) => {
                    out.push(Entry::Other(format!("{rel}/{}", n.to_string_lossy())));
                    continue;
                }
            };
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if ft.is_dir() {
                go(root, &path, out)?;
            } else if ft.is_file() {
                if path != SIGNATURE_FILE {
                    out.push(Entry::File(path, entry.path()));
                }
            } else {
                out.push(Entry::Other(path));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(dir, "", &mut out)?;
    out.sort_by(|a, b| {
        let k = |e: &Entry| match e {
            Entry::File(n, _) | Entry::Other(n) => n.clone(),
        };
        k(a).cmp(&k(b))
    });
    Ok(out)
}

/// Sign a finished report directory: hash every file in it, then write
/// report.dsse.json, the last file of the report.
pub fn sign_dir(dir: &Path, predicate: Predicate, key: &SigningKey) -> std::io::Result<Statement> {
    let mut subject = Vec::new();
    for e in walk(dir)? {
        match e {
            Entry::File(name, path) => subject.push(Subject {
                digest: Digest256 {
                    sha256: sha256_file(&path)?,
                },
                name,
            }),
            Entry::Other(name) => {
                return Err(std::io::Error::other(format!(
                    "{name} in the report directory is not a regular file"
                )))
            }
        }
    }
    let statement = Statement {
        type_: STATEMENT_TYPE.into(),
        subject,
        predicate_type: PREDICATE_TYPE.into(),
        predicate,
    };
    // Compact JSON: one subject a match for `grep -o` (docs/verifying.md).
    let payload = serde_json::to_vec(&statement).map_err(std::io::Error::other)?;
    let env = Envelope::sign(IN_TOTO_TYPE, &payload, key);
    crate::files::AtomicFile::write(&dir.join(SIGNATURE_FILE), &env.to_json())?;
    Ok(statement)
}
