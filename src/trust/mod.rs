//! The trust chain: keys, the program authority's documents, the marking
//! rule, signed reports and their verification (SPEC "Trust and signatures").
//!
//! Owns everything about who may say what: Ed25519 key files (`keys`), DSSE
//! envelopes (`dsse`), accreditations, admissions and revocation lists
//! (`documents`), OFFICIAL or UNOFFICIAL (`marking`), the in-toto statement
//! over a report directory (`statement`) and `certlab verify` (`verify`).
//! It never measures, judges limits, or writes a report file other than
//! trust/, signer.pub and report.dsse.json.

pub mod documents;
pub mod dsse;
pub mod keys;
pub mod marking;
pub mod statement;
pub mod verify;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;

use documents::TrustSet;
use marking::{Facts, Marking, SignerKind};
use statement::{Predicate, TrustRef};

use crate::Result;

/// How a run signs its report: the key and the trust documents, loaded and
/// checked before the run starts so that a bad key or document costs no
/// measuring time.
#[derive(Debug, Clone)]
pub struct Signing {
    key: SigningKey,
    pub kind: SignerKind,
    pub key_id: String,
    /// The per-user key's file, when this run created it.
    pub created: Option<PathBuf>,
    pub trust: Option<TrustSet>,
}

impl Signing {
    /// Load `--lab-key` (or the per-user key, made on first use) and the
    /// trust directory. Bad files are bad input (exit 3).
    pub fn prepare(lab_key: Option<&Path>, trust_dir: Option<&Path>) -> Result<Signing> {
        let (key, kind, created) = match lab_key {
            Some(p) => (keys::read_private(p)?, SignerKind::Lab, None),
            None => {
                let (k, path, made) = keys::user_key()?;
                (k, SignerKind::User, made.then_some(path))
            }
        };
        let trust = match trust_dir {
            Some(d) => Some(documents::load_dir(d, None)?),
            None => None,
        };
        Ok(Signing {
            key_id: keys::key_id(&key.verifying_key()),
            key,
            kind,
            created,
            trust,
        })
    }

    /// A signing of `key` with no trust documents (tests, tools).
    pub fn with_key(key: SigningKey, kind: SignerKind) -> Signing {
        Signing {
            key_id: keys::key_id(&key.verifying_key()),
            key,
            kind,
            created: None,
            trust: None,
        }
    }

    /// The marking of a run of `program` for `vendor` that started at `t`.
    pub fn decide(&self, program: &str, vendor: &str, t: DateTime<Utc>) -> Marking {
        let files = self
            .trust
            .as_ref()
            .map(|s| s.files.as_slice())
            .unwrap_or(&[]);
        let mut m = marking::decide(
            &Facts {
                signer: self.kind,
                key_id: &self.key_id,
                program,
                vendor,
                test_time: t,
            },
            files,
        );
        if self.trust.is_none() && self.kind == SignerKind::Lab {
            m.reasons.insert(
                0,
                "no trust documents were given (--trust DIR): nothing shows the key accredited \
                 or the vendor admitted"
                    .into(),
            );
        }
        m
    }

    /// What the operator should know about the key and the documents.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if let Some(p) = &self.created {
            w.push(format!(
                "created the per-user signing key {} (key {}); reports it signs are UNOFFICIAL",
                p.display(),
                self.key_id
            ));
        }
        if let Some(t) = &self.trust {
            w.extend(t.warnings.iter().cloned());
        }
        w
    }

    /// Put the documents the marking used under trust/ and the signer's
    /// public key in signer.pub. Returns the documents as report.json and
    /// the statement name them.
    pub fn stage(&self, dir: &Path, m: &Marking) -> std::io::Result<Vec<TrustRef>> {
        let mut refs = Vec::new();
        if let Some(set) = &self.trust {
            for &i in &m.used {
                let f = &set.files[i];
                let name = format!("trust/{}", f.name);
                crate::files::AtomicFile::write(&dir.join(&name), &f.bytes)?;
                refs.push(TrustRef {
                    name,
                    kind: f.doc.kind().into(),
                    sha256: f.sha256.clone(),
                });
            }
        }
        crate::files::AtomicFile::write(
            &dir.join(statement::SIGNER_PUB_FILE),
            keys::public_pem(&self.key.verifying_key()).as_bytes(),
        )?;
        Ok(refs)
    }

    /// Sign the finished report directory (report.dsse.json, last).
    pub fn sign(&self, dir: &Path, predicate: Predicate) -> std::io::Result<()> {
        statement::sign_dir(dir, predicate, &self.key).map(|_| ())
    }
}
