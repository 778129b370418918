//! `certlab keys`, `certlab authority` and `certlab verify`: their
//! arguments and help, argument checks around `trust`, and printing. No
//! trust logic lives here: documents, keys, signatures and verification are
//! `trust`'s.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::timestamp;
use crate::trust::documents::{
    self, check_id, parse_time, Accreditation, Admission, Document, RevocationList, Revoked,
};
use crate::trust::{keys, verify};
use crate::{Error, ExitStatus, Result};

#[derive(Args)]
#[command(after_help = "\
Checks, with nothing but the authority's public key:
  - report.dsse.json's signature (Ed25519, strict) by the key in signer.pub;
  - every file's SHA-256 against the signed statement: a changed, missing or
    added file is named;
  - each trust document under trust/ against the authority's key;
  - the marking, recomputed from those documents at the test time
    (started_at). With --trust, newer documents (a later revocation list)
    count too. A report that claims OFFICIAL without documents to support it
    is INVALID.

Exit 0 for a valid report (OFFICIAL or UNOFFICIAL), 1 for INVALID, 3 when the
directory or a key cannot be read. docs/verifying.md shows the same checks
with sha256sum and openssl.

Example:
  certlab verify reports/20261123T101500Z-speakerphone-sim --authority authority.pub")]
pub struct VerifyArgs {
    /// The report directory.
    report_dir: PathBuf,
    /// The program authority's public key.
    #[arg(long, value_name = "AUTHORITY.pub")]
    authority: PathBuf,
    /// Further trust documents to take into account (e.g. the authority's current revocation list).
    #[arg(long, value_name = "DIR")]
    trust: Option<PathBuf>,
    /// Print one JSON object: status, claimed, reasons, notes, signer, vendor, device, profile, ...
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Write NAME.key (Ed25519 PKCS#8 PEM, mode 0600) and NAME.pub
    /// (SubjectPublicKeyInfo PEM), and print the key id (SHA-256 of the raw
    /// public key). Existing files are never overwritten.
    Generate {
        #[arg(long, value_name = "NAME")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
#[command(after_help = "\
Times are RFC 3339, e.g. 2027-01-31T00:00:00Z. Each document is a DSSE
envelope signed by the authority key; labs keep them in a trust directory
(with authority.pub) and pass it to `certlab run --trust DIR`.

Example:
  certlab authority init --out authority
  certlab keys generate --out lab
  certlab authority accredit-lab --authority-key authority/authority.key \\
      --lab-id lab-1 --lab-pub lab.pub --program teams-usb-audio \\
      --not-after 2027-12-31T00:00:00Z --out trust/lab-1.json
  certlab authority admit-vendor --authority-key authority/authority.key \\
      --vendor-id acme --program teams-usb-audio \\
      --not-after 2027-12-31T00:00:00Z --out trust/acme.json")]
pub enum AuthorityCmd {
    /// Create the program authority's key pair: DIR/authority.key and DIR/authority.pub.
    Init {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Accredit a lab's key for programs over a period.
    AccreditLab(AccreditLab),
    /// Admit a vendor to programs over a period.
    AdmitVendor(AdmitVendor),
    /// Publish a revocation list: nothing a revoked key signs at or after its revocation time counts.
    Revoke(Revoke),
}

pub fn keys(cmd: KeysCmd) -> Result<ExitStatus> {
    let KeysCmd::Generate { out } = cmd;
    keys_generate(&out)
}

pub fn authority(cmd: AuthorityCmd) -> Result<ExitStatus> {
    match cmd {
        AuthorityCmd::Init { out } => authority_init(&out),
        AuthorityCmd::AccreditLab(a) => accredit_lab(a),
        AuthorityCmd::AdmitVendor(a) => admit_vendor(a),
        AuthorityCmd::Revoke(a) => revoke(a),
    }
}

fn keys_generate(out: &Path) -> Result<ExitStatus> {
    let key = keys::generate()?;
    let (k, p) = keys::write_pair(out, &key)?;
    println!("key id {}", keys::key_id(&key.verifying_key()));
    println!("private key {} (mode 0600; keep it secret)", k.display());
    println!("public key  {}", p.display());
    Ok(ExitStatus::Ok)
}

fn authority_init(out: &Path) -> Result<ExitStatus> {
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

/// The period a grant (an accreditation or an admission) is valid over,
/// and the file its document goes to.
#[derive(Args)]
struct Term {
    /// Default: now.
    #[arg(long, value_name = "T")]
    not_before: Option<String>,
    #[arg(long, value_name = "T")]
    not_after: String,
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// A grant's arguments, checked: its programs (each once) and its period.
struct Grant {
    programs: Vec<String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Term {
    /// Check the subject's id (`what` names it), the programs and the period.
    fn check(&self, what: &str, id: &str, programs: &[String]) -> Result<Grant> {
        check_id(what, id).map_err(Error::BadInput)?;
        let programs = ids("program", programs)?;
        let from = match &self.not_before {
            Some(t) => parse_time("--not-before", t)?,
            None => Utc::now(),
        };
        let to = parse_time("--not-after", &self.not_after)?;
        if to <= from {
            return Err(Error::BadInput(format!(
                "--not-after {} is not after --not-before {}",
                timestamp::document(to),
                timestamp::document(from)
            )));
        }
        Ok(Grant { programs, from, to })
    }
}

impl Grant {
    /// "PROGRAMS from A to B: FILE", as the commands print it.
    fn described(&self, out: &Path) -> String {
        format!(
            "{} from {} to {}: {}",
            self.programs.join(", "),
            timestamp::document(self.from),
            timestamp::document(self.to),
            out.display()
        )
    }
}

fn write_doc(out: &Path, doc: &Document, key: &ed25519_dalek::SigningKey) -> Result<()> {
    let env = documents::issue(doc, key);
    keys::write_new(out, &env.to_json(), 0o644)
}

#[derive(Args)]
pub struct AccreditLab {
    #[arg(long, value_name = "K")]
    authority_key: PathBuf,
    #[arg(long, value_name = "ID")]
    lab_id: String,
    /// The lab's public key (from `certlab keys generate`).
    #[arg(long, value_name = "P")]
    lab_pub: PathBuf,
    /// A program in scope (repeat for more).
    #[arg(long = "program", value_name = "PROG", required = true)]
    programs: Vec<String>,
    #[command(flatten)]
    term: Term,
}

fn accredit_lab(a: AccreditLab) -> Result<ExitStatus> {
    let g = a.term.check("lab id", &a.lab_id, &a.programs)?;
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
        programs: g.programs.clone(),
        not_before: g.from,
        not_after: g.to,
        issued_at: Utc::now(),
        issuer: documents::issuer_of(&auth),
    });
    write_doc(&a.term.out, &doc, &auth)?;
    println!(
        "accredited lab {} (key {}) for {}",
        a.lab_id,
        keys::key_id(&lab),
        g.described(&a.term.out)
    );
    Ok(ExitStatus::Ok)
}

#[derive(Args)]
pub struct AdmitVendor {
    #[arg(long, value_name = "K")]
    authority_key: PathBuf,
    #[arg(long, value_name = "ID")]
    vendor_id: String,
    /// A program (repeat for more).
    #[arg(long = "program", value_name = "PROG", required = true)]
    programs: Vec<String>,
    #[command(flatten)]
    term: Term,
}

fn admit_vendor(a: AdmitVendor) -> Result<ExitStatus> {
    let g = a.term.check("vendor id", &a.vendor_id, &a.programs)?;
    let auth = keys::read_private(&a.authority_key)?;
    let doc = Document::Admission(Admission {
        vendor_id: a.vendor_id.clone(),
        programs: g.programs.clone(),
        not_before: g.from,
        not_after: g.to,
        issued_at: Utc::now(),
        issuer: documents::issuer_of(&auth),
    });
    write_doc(&a.term.out, &doc, &auth)?;
    println!(
        "admitted vendor {} to {}",
        a.vendor_id,
        g.described(&a.term.out)
    );
    Ok(ExitStatus::Ok)
}

#[derive(Args)]
pub struct Revoke {
    #[arg(long, value_name = "K")]
    authority_key: PathBuf,
    /// The key id to revoke (repeat, each with its own --revoked-at).
    #[arg(long = "key-id", value_name = "HEX")]
    key_ids: Vec<String>,
    #[arg(long = "revoked-at", value_name = "T")]
    revoked_at: Vec<String>,
    /// Higher than every earlier list's.
    #[arg(long, value_name = "N")]
    sequence: u64,
    /// When a newer list must have replaced this one.
    #[arg(long, value_name = "T")]
    expires: String,
    /// An earlier list whose revocations this one carries forward.
    #[arg(long, value_name = "FILE")]
    include: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

fn revoke(a: Revoke) -> Result<ExitStatus> {
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

pub fn verify(a: VerifyArgs) -> Result<ExitStatus> {
    let (dir, trust) = (a.report_dir.as_path(), a.trust.as_deref());
    let auth = keys::read_public(&a.authority)?;
    let extra = match trust {
        Some(d) => Some(documents::load_dir(d, Some(&auth))?),
        None => None,
    };
    let v = verify::verify_dir(dir, &auth, extra.as_ref())?;
    if a.json {
        super::print_json(&v)?;
    } else {
        print!("{}", verify::render(&v, dir));
    }
    Ok(match v.status {
        verify::Status::Invalid => ExitStatus::Failed,
        _ => ExitStatus::Ok,
    })
}
