//! The marking rule: OFFICIAL or UNOFFICIAL, and why.
//!
//! A pure function of the signer, the program, the vendor, the test time and
//! authenticated trust documents. `certlab run` and `certlab verify` call the
//! same function, so a report's marking can be recomputed exactly. It reads
//! no files and checks no signatures (`trust::documents` does).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::documents::{Document, TrustFile};
use crate::timestamp;

/// The notice every UNOFFICIAL report carries, and `certlab verify` prints
/// for one.
pub const UNOFFICIAL_NOTICE: &str =
    "Unofficial test results do not constitute a certification or endorsement by the program";

/// Who signed a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignerKind {
    /// A key given with --lab-key.
    Lab,
    /// The per-user key made on first use: never OFFICIAL.
    User,
}

/// What the marking is decided on.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub signer: SignerKind,
    pub key_id: &'a str,
    pub program: &'a str,
    pub vendor: &'a str,
    /// The test time: the run's started_at.
    pub test_time: DateTime<Utc>,
}

/// A decided marking.
#[derive(Debug, Clone, PartialEq)]
pub struct Marking {
    pub official: bool,
    /// When UNOFFICIAL, every condition that failed; when OFFICIAL, the
    /// grounds it rests on.
    pub reasons: Vec<String>,
    /// The lab the authority bound the key to, valid or not.
    pub lab_id: Option<String>,
    /// Indices of the documents that bear on it (to keep with the report).
    pub used: Vec<usize>,
    /// True facts that do not change the marking (a revocation after the
    /// test, an expired revocation list, no revocation list).
    pub notes: Vec<String>,
}

impl Marking {
    pub fn name(&self) -> &'static str {
        if self.official {
            "OFFICIAL"
        } else {
            "UNOFFICIAL"
        }
    }
}

fn short(key_id: &str) -> &str {
    &key_id[..key_id.len().min(16)]
}

fn within(t: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    from <= t && t <= to
}

/// How the grants (accreditations or admissions) that name the subject
/// meet the program at the test time.
struct Grants {
    /// The first one naming the subject, valid or not.
    first: Option<usize>,
    /// The first one for the program, valid at the test time, and its
    /// "from A to B (FILE)".
    valid: Option<(usize, String)>,
    /// Those for other programs only: "PROGRAMS (FILE)".
    other_programs: Vec<String>,
    /// Those for the program but another period: "from A to B (FILE)".
    out_of_period: Vec<String>,
}

/// How a kind of grant words its verdict.
struct Wording<'a> {
    /// The ground of a valid grant, from its "from A to B (FILE)".
    granted: &'a dyn Fn(&str) -> String,
    /// Why not, from the grants for the program but another period.
    out_of_period: &'a dyn Fn(&str) -> String,
    /// Why not, from the grants for other programs only.
    other_programs: &'a dyn Fn(&str) -> String,
    /// Why not, when no grant names the subject.
    none: String,
}

impl Grants {
    /// The ground a valid grant gives, or else why there is none: a grant
    /// out of its period first, then grants for other programs.
    fn verdict(&self, say: Wording) -> std::result::Result<String, String> {
        if let Some((_, term)) = &self.valid {
            Ok((say.granted)(term))
        } else if !self.out_of_period.is_empty() {
            Err((say.out_of_period)(&self.out_of_period.join("; ")))
        } else if !self.other_programs.is_empty() {
            Err((say.other_programs)(&self.other_programs.join("; ")))
        } else {
            Err(say.none)
        }
    }
}

/// Look through `files` for grants `grant` recognises (it gives their
/// programs and period); each one found is marked used.
fn check_grants<'a>(
    files: &'a [TrustFile],
    f: &Facts,
    used: &mut Vec<usize>,
    grant: impl Fn(&'a Document) -> Option<(&'a Vec<String>, DateTime<Utc>, DateTime<Utc>)>,
) -> Grants {
    let mut g = Grants {
        first: None,
        valid: None,
        other_programs: Vec::new(),
        out_of_period: Vec::new(),
    };
    for (i, file) in files.iter().enumerate() {
        let Some((programs, from, to)) = grant(&file.doc) else {
            continue;
        };
        used.push(i);
        g.first.get_or_insert(i);
        let term = || {
            format!(
                "from {} to {} ({})",
                timestamp::document(from),
                timestamp::document(to),
                file.name
            )
        };
        if !programs.iter().any(|p| p == f.program) {
            g.other_programs
                .push(format!("{} ({})", programs.join(", "), file.name));
        } else if !within(f.test_time, from, to) {
            g.out_of_period.push(term());
        } else if g.valid.is_none() {
            g.valid = Some((i, term()));
        }
    }
    g
}

/// Decide the marking. OFFICIAL only when the signer is a lab key, an
/// accreditation of that key for the program is valid at the test time, no
/// revocation of the key takes effect at or before the test time, and an
/// admission of the vendor to the program is valid at the test time.
pub fn decide(f: &Facts, files: &[TrustFile]) -> Marking {
    let t = f.test_time;
    let when = timestamp::document(t);
    let key = short(f.key_id);
    let mut failed = Vec::new();
    let mut grounds = Vec::new();
    let mut notes = Vec::new();
    let mut used = Vec::new();

    if f.signer == SignerKind::User {
        failed.push(format!(
            "signed with the per-user key {key}…, not a lab key: such reports are always UNOFFICIAL \
             (a lab signs with --lab-key)"
        ));
    }

    // The lab's accreditation.
    let acc = check_grants(files, f, &mut used, |d| match d {
        Document::Accreditation(a) if a.lab_key_id == f.key_id => {
            Some((&a.programs, a.not_before, a.not_after))
        }
        _ => None,
    });
    let lab_of = |i: usize| match &files[i].doc {
        Document::Accreditation(a) => Some(a.lab_id.clone()),
        _ => None,
    };
    // The lab the authority bound the key to: the valid accreditation's,
    // else the first one naming the key.
    let lab_id = acc
        .valid
        .as_ref()
        .map(|(i, _)| *i)
        .or(acc.first)
        .and_then(lab_of);
    let lab = lab_id.clone().unwrap_or_default();
    match acc.verdict(Wording {
        granted: &|term| {
            format!(
                "key {key}… is accredited as lab {lab} for program {} {term}",
                f.program
            )
        },
        out_of_period: &|terms| {
            format!(
                "the accreditation of key {key}… for program {} is not valid at the test time {when}: \
                 it is valid {terms}",
                f.program
            )
        },
        other_programs: &|programs| {
            format!(
                "key {key}… is accredited for {programs}, not for program {}",
                f.program
            )
        },
        none: format!(
            "key {key}… is not accredited by the program authority (no accreditation names it)"
        ),
    }) {
        Ok(ground) => grounds.push(ground),
        Err(why) => failed.push(why),
    }

    // Revocations: one at or before the test time voids the key.
    let mut newest: Option<(usize, u64)> = None;
    let mut revoked = false;
    for (i, file) in files.iter().enumerate() {
        let Document::Revocations(r) = &file.doc else {
            continue;
        };
        if newest.is_none_or(|(_, s)| r.sequence > s) {
            newest = Some((i, r.sequence));
        }
        for k in r.revoked.iter().filter(|k| k.key_id == f.key_id) {
            if !used.contains(&i) {
                used.push(i);
            }
            if k.revoked_at <= t {
                revoked = true;
                failed.push(format!(
                    "key {key}… was revoked at {}, at or before the test time {when} \
                     (revocation list {} in {})",
                    timestamp::document(k.revoked_at),
                    r.sequence,
                    file.name
                ));
            } else {
                notes.push(format!(
                    "key {key}… was revoked at {}, after the test time (revocation list {} in {})",
                    timestamp::document(k.revoked_at),
                    r.sequence,
                    file.name
                ));
            }
        }
    }
    match newest {
        Some((i, seq)) => {
            if !used.contains(&i) {
                used.push(i);
            }
            if let Document::Revocations(r) = &files[i].doc {
                if r.expires < t {
                    notes.push(format!(
                        "the newest revocation list ({seq}, {}) expired at {}, before the test time: \
                         revocations published since are not known here",
                        files[i].name,
                        timestamp::document(r.expires)
                    ));
                }
            }
            if !revoked {
                grounds.push(format!(
                    "key {key}… is not revoked at the test time (revocation list {seq}, {})",
                    files[i].name
                ));
            }
        }
        None => {
            notes.push("no revocation list was given: no revocation of the key is known".into())
        }
    }

    // The vendor's admission.
    let adm = check_grants(files, f, &mut used, |d| match d {
        Document::Admission(a) if a.vendor_id == f.vendor => {
            Some((&a.programs, a.not_before, a.not_after))
        }
        _ => None,
    });
    match adm.verdict(Wording {
        granted: &|term| {
            format!(
                "vendor {} is admitted to program {} {term}",
                f.vendor, f.program
            )
        },
        out_of_period: &|terms| {
            format!(
                "the admission of vendor {} to program {} is not valid at the test time {when}: it is valid {terms}",
                f.vendor, f.program
            )
        },
        other_programs: &|programs| {
            format!(
                "vendor {} is admitted to {programs}, not to program {}",
                f.vendor, f.program
            )
        },
        none: format!(
            "vendor {} is not admitted to program {} (no admission names it)",
            f.vendor, f.program
        ),
    }) {
        Ok(ground) => grounds.push(ground),
        Err(why) => failed.push(why),
    }

    used.sort_unstable();
    used.dedup();
    let official = failed.is_empty();
    Marking {
        official,
        reasons: if official { grounds } else { failed },
        lab_id,
        used,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::documents::*;
    use crate::trust::keys;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time("t", s).unwrap()
    }

    struct World {
        auth: ed25519_dalek::SigningKey,
        lab: ed25519_dalek::SigningKey,
        files: Vec<TrustFile>,
    }

    impl World {
        fn new() -> World {
            World {
                auth: keys::generate().unwrap(),
                lab: keys::generate().unwrap(),
                files: Vec::new(),
            }
        }
        fn lab_id(&self) -> String {
            keys::key_id(&self.lab.verifying_key())
        }
        fn add(&mut self, name: &str, doc: Document) {
            let env = issue(&doc, &self.auth);
            self.files
                .push(authenticate(name, env.to_json(), &self.auth.verifying_key()).unwrap());
        }
        fn accredit(&mut self, program: &str, from: &str, to: &str) {
            let doc = Document::Accreditation(Accreditation {
                lab_id: "lab-7".into(),
                lab_key_id: self.lab_id(),
                lab_public_key: keys::public_pem(&self.lab.verifying_key()),
                programs: vec![program.into()],
                not_before: t(from),
                not_after: t(to),
                issued_at: t(from),
                issuer: issuer_of(&self.auth),
            });
            self.add("lab.json", doc);
        }
        fn admit(&mut self, vendor: &str, program: &str, from: &str, to: &str) {
            let doc = Document::Admission(Admission {
                vendor_id: vendor.into(),
                programs: vec![program.into()],
                not_before: t(from),
                not_after: t(to),
                issued_at: t(from),
                issuer: issuer_of(&self.auth),
            });
            self.add("vendor.json", doc);
        }
        fn revoke(&mut self, at: &str, seq: u64, expires: &str) {
            let doc = Document::Revocations(RevocationList {
                sequence: seq,
                issued_at: t(at),
                expires: t(expires),
                revoked: vec![Revoked {
                    key_id: self.lab_id(),
                    revoked_at: t(at),
                }],
                issuer: issuer_of(&self.auth),
            });
            self.add("revoked.json", doc);
        }
        fn decide(&self, signer: SignerKind, vendor: &str, when: &str) -> Marking {
            let id = self.lab_id();
            decide(
                &Facts {
                    signer,
                    key_id: &id,
                    program: "teams-usb-audio",
                    vendor,
                    test_time: t(when),
                },
                &self.files,
            )
        }
    }

    fn standard() -> World {
        let mut w = World::new();
        w.accredit(
            "teams-usb-audio",
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        );
        w.admit(
            "acme",
            "teams-usb-audio",
            "2026-06-01T00:00:00Z",
            "2026-12-31T00:00:00Z",
        );
        w
    }

    #[test]
    fn official_only_when_every_condition_holds() {
        let w = standard();
        let m = w.decide(SignerKind::Lab, "acme", "2026-11-23T10:00:00Z");
        assert!(m.official, "{m:?}");
        assert_eq!(m.lab_id.as_deref(), Some("lab-7"));
        assert_eq!(m.used, vec![0, 1]);
        assert!(m
            .reasons
            .iter()
            .any(|r| r.contains("accredited as lab lab-7")));
        // The per-user key never makes an OFFICIAL report.
        let m = w.decide(SignerKind::User, "acme", "2026-11-23T10:00:00Z");
        assert!(!m.official);
        assert!(m.reasons[0].contains("per-user key"), "{m:?}");
    }

    #[test]
    fn each_failed_condition_is_a_reason() {
        let w = standard();
        let case = |vendor: &str, when: &str, want: &str| {
            let m = w.decide(SignerKind::Lab, vendor, when);
            assert!(!m.official, "{vendor} {when}: {m:?}");
            assert!(
                m.reasons.iter().any(|r| r.contains(want)),
                "{vendor} {when}: want {want:?} in {:?}",
                m.reasons
            );
        };
        case(
            "globex",
            "2026-11-23T10:00:00Z",
            "vendor globex is not admitted",
        );
        case("acme", "2026-05-01T00:00:00Z", "admission of vendor acme");
        case("acme", "2026-12-31T00:00:01Z", "not valid at the test time");
        case("acme", "2027-02-01T00:00:00Z", "accreditation of key");

        let mut w = World::new();
        w.accredit("zoom-rooms", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
        w.admit(
            "acme",
            "teams-usb-audio",
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        );
        let m = w.decide(SignerKind::Lab, "acme", "2026-11-23T10:00:00Z");
        assert!(!m.official);
        assert!(m.reasons[0].contains("accredited for zoom-rooms"), "{m:?}");

        let m = World::new().decide(SignerKind::Lab, "acme", "2026-11-23T10:00:00Z");
        assert!(m.reasons[0].contains("not accredited"), "{m:?}");
        assert_eq!(m.reasons.len(), 2, "{m:?}");
    }

    #[test]
    fn revocation_at_or_before_the_test_time_voids_the_key() {
        let mut w = standard();
        w.revoke("2026-11-01T00:00:00Z", 3, "2026-12-01T00:00:00Z");
        let m = w.decide(SignerKind::Lab, "acme", "2026-11-23T10:00:00Z");
        assert!(!m.official);
        assert!(
            m.reasons
                .iter()
                .any(|r| r.contains("was revoked at 2026-11-01")),
            "{m:?}"
        );
        // At exactly the revocation time: revoked.
        let m = w.decide(SignerKind::Lab, "acme", "2026-11-01T00:00:00Z");
        assert!(!m.official);
        // Before it: the report stands, with a note.
        let m = w.decide(SignerKind::Lab, "acme", "2026-10-31T23:59:59Z");
        assert!(m.official, "{m:?}");
        assert!(
            m.notes.iter().any(|n| n.contains("after the test time")),
            "{m:?}"
        );
        assert_eq!(m.used, vec![0, 1, 2]);
    }
}
