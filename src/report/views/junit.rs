//! junit.xml: the run as a JUnit test suite, for the CI systems labs already
//! run (Jenkins, GitLab).
//!
//! Owns the mapping: one `<testsuite>` for the run; one `<testcase>` per
//! step, and one more per requirement of a conformance step. FAIL is a
//! `<failure>`, ERROR an `<error>`, SKIPPED `<skipped>`, each with the
//! record's reason; MARGINAL passes and says so in `<system-out>`. The XML is
//! written by quick-xml, which escapes; characters XML 1.0 cannot carry at
//! all (most control characters) are replaced first. It must not judge.

use chrono::{DateTime, Utc};
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::report::{Report, StepOutcome, StepRecord};
use crate::timestamp;

/// Text XML 1.0 can carry: controls other than tab, newline and carriage
/// return, and the non-characters U+FFFE/U+FFFF, become U+FFFD.
pub(crate) fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// From `a` to `b`, s (0 when `b` is earlier).
fn seconds(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    ((b - a).num_microseconds().unwrap_or(0) as f64 / 1e6).max(0.0)
}

/// What one testcase says.
struct Case {
    name: String,
    classname: String,
    time: f64,
    /// (element, type, message, body): `failure`, `error` or `skipped`.
    result: Option<(&'static str, &'static str, String, String)>,
    out: Option<String>,
}

fn cases(r: &Report) -> Vec<Case> {
    let class = format!("certlab.{}", r.profile.id);
    let mut v = Vec::new();
    for s in &r.steps {
        let reason = s.reason.clone().unwrap_or_default();
        let details = details(s);
        let result = match s.outcome {
            StepOutcome::Pass | StepOutcome::Marginal => None,
            StepOutcome::Fail => Some(("failure", "FAIL", reason.clone(), details.clone())),
            StepOutcome::Error => Some(("error", "ERROR", reason.clone(), details.clone())),
            StepOutcome::Skipped => Some(("skipped", "SKIPPED", reason.clone(), String::new())),
        };
        let out = match s.outcome {
            StepOutcome::Marginal => Some(format!("MARGINAL: {reason}\n{details}")),
            StepOutcome::Pass => Some(details.clone()),
            _ => None,
        };
        v.push(Case {
            name: format!("{}: {}", s.id, s.title),
            classname: class.clone(),
            time: seconds(s.started_at, s.finished_at),
            result,
            out: out.filter(|o| !o.trim().is_empty()),
        });
        for q in &s.requirements {
            v.push(Case {
                name: format!("{} / {}", s.id, q.requirement),
                classname: format!("{class}.{}", s.id),
                time: 0.0,
                result: (!q.met).then(|| {
                    (
                        "failure",
                        "requirement not met",
                        format!("{} not met: {}", q.requirement, q.evidence),
                        String::new(),
                    )
                }),
                out: q.met.then(|| q.evidence.clone()),
            });
        }
    }
    v
}

/// Each limit's judgement and the step's statistics, for the testcase body.
fn details(s: &StepRecord) -> String {
    let mut lines: Vec<String> = s
        .limits
        .iter()
        .map(|l| format!("{:?}: {}", l.verdict, l.reason).to_uppercase_first())
        .collect();
    if let Some(st) = &s.stats {
        lines.push(format!(
            "{} shots: median {:.3} ms, p95 {:.3} ms, max {:.3} ms{}",
            st.n,
            st.median,
            st.p95,
            st.max,
            s.uncertainty_ms
                .map(|u| format!(", uncertainty ± {u:.3} ms (k = 2)"))
                .unwrap_or_default()
        ));
    }
    lines.join("\n")
}

trait UpperFirst {
    fn to_uppercase_first(self) -> String;
}

impl UpperFirst for String {
    /// "Pass: …" → "PASS: …" (the verdict's name as the report writes it).
    fn to_uppercase_first(self) -> String {
        match self.split_once(':') {
            Some((v, rest)) => format!("{}:{rest}", v.to_uppercase()),
            None => self,
        }
    }
}

/// junit.xml for `r`.
pub(crate) fn document(r: &Report) -> std::io::Result<Vec<u8>> {
    let cases = cases(r);
    let count = |el: &str| {
        cases
            .iter()
            .filter(|c| c.result.as_ref().is_some_and(|x| x.0 == el))
            .count()
            .to_string()
    };
    let (tests, failures, errors, skipped) = (
        cases.len().to_string(),
        count("failure"),
        count("error"),
        count("skipped"),
    );
    let time = format!("{:.3}", seconds(r.started_at, r.finished_at));
    let suite = xml_safe(&format!(
        "{} v{} on {} {} ({}:{} serial {})",
        r.profile.id,
        r.profile.version,
        r.device.manufacturer,
        r.device.product,
        r.device.vid,
        r.device.pid,
        r.device.serial
    ));
    let host = xml_safe(&r.station.host);
    // JUnit's timestamp is an ISO 8601 time without a zone (the Ant schema's
    // xs:dateTime pattern); it is UTC here.
    let started = r.started_at.format("%Y-%m-%dT%H:%M:%S").to_string();
    // The one suite's counts and time, which the root repeats.
    let totals = [
        ("tests", tests.as_str()),
        ("failures", failures.as_str()),
        ("errors", errors.as_str()),
        ("skipped", skipped.as_str()),
        ("time", time.as_str()),
    ];
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("testsuites")
        .with_attributes([("name", "certlab")].into_iter().chain(totals))
        .write_inner_content(|w| {
            w.create_element("testsuite")
                .with_attributes(
                    [("name", suite.as_str())]
                        .into_iter()
                        .chain(totals)
                        .chain([("timestamp", started.as_str()), ("hostname", host.as_str())]),
                )
                .write_inner_content(|w| {
                    properties(w, r)?;
                    for c in &cases {
                        case(w, c)?;
                    }
                    if let Some(why) = &r.reason {
                        w.create_element("system-err")
                            .write_text_content(BytesText::new(&xml_safe(&format!(
                                "run {}: {why}",
                                r.outcome.name()
                            ))))?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

fn properties(w: &mut Writer<Vec<u8>>, r: &Report) -> std::io::Result<()> {
    let d = &r.device;
    let props: Vec<(&str, String)> = vec![
        ("certlab.outcome", r.outcome.name().to_string()),
        ("certlab.marking", r.marking.clone()),
        ("certlab.profile.id", r.profile.id.clone()),
        ("certlab.profile.version", r.profile.version.clone()),
        ("certlab.profile.sha256", r.profile.sha256.clone()),
        ("certlab.program", r.profile.program.clone()),
        ("certlab.vendor", r.vendor.clone()),
        ("certlab.device.vid", d.vid.clone()),
        ("certlab.device.pid", d.pid.clone()),
        ("certlab.device.serial", d.serial.clone()),
        ("certlab.device.firmware", d.firmware.clone()),
        ("certlab.device.manufacturer", d.manufacturer.clone()),
        ("certlab.device.product", d.product.clone()),
        ("certlab.harness.version", r.harness.version.clone()),
        ("certlab.finished_at", timestamp::record(r.finished_at)),
    ];
    w.create_element("properties").write_inner_content(|w| {
        for (k, v) in &props {
            let v = xml_safe(v);
            w.create_element("property")
                .with_attributes([("name", *k), ("value", v.as_str())])
                .write_empty()?;
        }
        Ok(())
    })?;
    Ok(())
}

fn case(w: &mut Writer<Vec<u8>>, c: &Case) -> std::io::Result<()> {
    let name = xml_safe(&c.name);
    let class = xml_safe(&c.classname);
    let time = format!("{:.3}", c.time);
    let el = w.create_element("testcase").with_attributes([
        ("name", name.as_str()),
        ("classname", class.as_str()),
        ("time", time.as_str()),
    ]);
    if c.result.is_none() && c.out.is_none() {
        el.write_empty()?;
        return Ok(());
    }
    el.write_inner_content(|w| {
        if let Some((tag, kind, message, body)) = &c.result {
            let message = xml_safe(message);
            let e = w
                .create_element(*tag)
                .with_attributes([("message", message.as_str()), ("type", *kind)]);
            if body.is_empty() {
                e.write_empty()?;
            } else {
                e.write_text_content(BytesText::new(&xml_safe(body)))?;
            }
        }
        if let Some(out) = &c.out {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&xml_safe(out)))?;
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_replacement() {
        assert_eq!(
            xml_safe("a\u{0}b\u{1b}c\td\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}c\td\u{FFFD}"
        );
    }
}
