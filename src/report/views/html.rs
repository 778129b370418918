//! report.html: one self-contained page (inline CSS and SVG, no script, no
//! fetch) that a person reads before the JSON, on screen or printed on A4.
//!
//! Owns the page's layout and its escaping. Markup is written only from
//! `&'static str` literals ([`Page::raw`]); every string that came from the
//! record (device, profile, scenario, reasons) goes through [`Page::text`],
//! which escapes it, and the plots through [`Page::svg`], whose strings are
//! only in escaped attributes (plots' text is glyph outlines, see `glyphs`). A Content-Security-Policy forbids script and every fetch in
//! case anything slipped through. It must not judge or mark: it shows the
//! record's outcomes and marking as they are.

use chrono::{DateTime, Utc};

use super::plots::Plot;
use super::{Data, StepData};
use crate::measure::measurement::SyncConversion;
use crate::report::{Report, StepOutcome};
use crate::timestamp;

/// The page under construction. Markup cannot be built from a runtime
/// string except through [`Page::text`] (escaped) and [`Page::svg`].
struct Page {
    out: String,
}

impl Page {
    fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// Text content or an attribute value: escaped, control characters
    /// (other than tab and newline) replaced by U+FFFD.
    fn text(&mut self, s: &str) -> &mut Self {
        escape_into(&mut self.out, s);
        self
    }

    /// An SVG document from plotters, without its XML prolog if any.
    fn svg(&mut self, svg: &str) -> &mut Self {
        let body = match svg.find("<svg") {
            Some(i) => &svg[i..],
            None => "",
        };
        self.out.push_str(body);
        self
    }

    /// `<tag class="..">text</tag>` with a static tag and class.
    fn el(&mut self, open: &'static str, s: &str, close: &'static str) -> &mut Self {
        self.raw(open).text(s).raw(close)
    }
}

/// Escape for HTML text and double- or single-quoted attribute values.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

const CSS: &str = r#"
:root { --ink:#1b1f24; --mute:#5a6470; --line:#d5dae0; --pass:#1f7a3a; --marginal:#a86400; --fail:#b3261e; --error:#6b2fa3; --skip:#5a6470; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: var(--ink); margin: 0 auto; max-width: 1180px; padding: 0 20px 40px; font-size: 15px; line-height: 1.4; }
h1 { font-size: 1.5em; margin: 18px 0 4px; }
h2 { font-size: 1.2em; margin: 26px 0 8px; border-bottom: 2px solid var(--line); padding-bottom: 3px; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
.banner { margin: 16px 0 8px; padding: 12px 16px; border-radius: 6px; border: 3px solid; }
.banner .marking { font-size: 1.9em; font-weight: bold; letter-spacing: .08em; }
.banner.official { background: #e8f5ec; border-color: var(--pass); color: #0f4a22; }
.banner.unofficial { background: #fff4e0; border-color: var(--marginal); color: #5c3800; }
.banner .notice { font-weight: bold; margin: 6px 0; }
.banner ul { margin: 4px 0 0 18px; padding: 0; }
.outcome { display: inline-block; padding: 1px 8px; border-radius: 4px; font-weight: bold; color: #fff; }
.o-PASS { background: var(--pass); } .o-MARGINAL { background: var(--marginal); } .o-FAIL { background: var(--fail); }
.o-ERROR, .o-ABORTED { background: var(--error); } .o-SKIPPED { background: var(--skip); }
.headline { font-size: 1.15em; margin: 8px 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.facts dt { color: var(--mute); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 10px 24px; }
.cards > *, .plots > * { min-width: 0; }
.card h3 { margin-top: 6px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f4f7; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
@media screen { table.verdicts tr.first td:nth-child(-n+2) { white-space: nowrap; } }
.reason { color: var(--mute); overflow-wrap: anywhere; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 12px; }
figure.plot { margin: 0; border: 1px solid var(--line); border-radius: 4px; padding: 6px; break-inside: avoid; page-break-inside: avoid; }
figure.plot svg { display: block; width: 100%; height: auto; }
figure.plot figcaption { font-size: .85em; color: var(--mute); margin-top: 4px; }
figure.plot figcaption b { color: var(--ink); }
.missing { color: var(--fail); }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .92em; overflow-wrap: anywhere; }
footer { margin-top: 30px; color: var(--mute); font-size: .85em; border-top: 1px solid var(--line); padding-top: 8px; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 9.5pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .cards { grid-template-columns: 1fr 1fr; }
  .plots { grid-template-columns: 1fr 1fr; }
  section.step { break-before: auto; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  table { page-break-inside: auto; } tr { break-inside: avoid; page-break-inside: avoid; }
  td.num { white-space: normal; }
  th, td { padding: 3px 5px; }
  thead { display: table-header-group; }
}
"#;

fn outcome_class(p: &mut Page, name: &str) {
    // The class names are fixed words; anything else gets no colour.
    let class = match name {
        "PASS" => "<span class=\"outcome o-PASS\">",
        "MARGINAL" => "<span class=\"outcome o-MARGINAL\">",
        "FAIL" => "<span class=\"outcome o-FAIL\">",
        "ERROR" => "<span class=\"outcome o-ERROR\">",
        "ABORTED" => "<span class=\"outcome o-ABORTED\">",
        "SKIPPED" => "<span class=\"outcome o-SKIPPED\">",
        _ => "<span class=\"outcome\">",
    };
    p.raw(class).text(name).raw("</span>");
}

fn fact(p: &mut Page, name: &'static str, value: &str) {
    p.raw("<dt>")
        .raw(name)
        .raw("</dt><dd>")
        .text(value)
        .raw("</dd>");
}

fn fact_mono(p: &mut Page, name: &'static str, value: &str) {
    p.raw("<dt>")
        .raw(name)
        .raw("</dt><dd class=\"mono\">")
        .text(value)
        .raw("</dd>");
}

/// From `a` to `b`, s (to the millisecond).
fn duration(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1e3
}

/// The page for `report`, with each step's plots (in step order).
pub(crate) fn page(report: &Report, data: &Data, plots: &[Vec<Plot>]) -> String {
    let mut p = Page {
        out: String::with_capacity(64 * 1024),
    };
    p.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .raw("<title>");
    p.text(&format!(
        "{} — {} {} — {} — {}",
        report.marking,
        report.device.manufacturer,
        report.device.product,
        report.profile.id,
        report.outcome.name()
    ));
    p.raw("</title>\n<style>")
        .raw(CSS)
        .raw("</style>\n</head>\n<body>\n");
    banner(&mut p, report);
    summary(&mut p, report);
    verdicts(&mut p, report);
    p.raw("<section id=\"steps\">\n<h2>Steps</h2>\n");
    for (d, pl) in data.steps.iter().zip(plots) {
        step(&mut p, d, pl);
    }
    p.raw("</section>\n");
    anomalies(&mut p, report);
    p.raw("<footer>");
    p.text(&format!(
        "Written by {} {} (report schema {}). This page renders report.json, \
         measurements.csv and raw/ of the same directory; where it and report.json \
         differ, report.json is the record. The report's signature (report.dsse.json), \
         when present, covers this page.",
        report.harness.name, report.harness.version, report.schema
    ));
    p.raw("</footer>\n</body>\n</html>\n");
    p.out
}

fn banner(p: &mut Page, r: &Report) {
    if r.marking == "OFFICIAL" {
        p.raw("<header id=\"banner\" class=\"banner official\" role=\"banner\">");
    } else {
        p.raw("<header id=\"banner\" class=\"banner unofficial\" role=\"banner\">");
    }
    p.el("<div class=\"marking\">", &r.marking, "</div>");
    if let Some(n) = &r.notice {
        p.el("<p class=\"notice\">", n, "</p>");
    }
    if !r.marking_reasons.is_empty() {
        p.raw("<ul class=\"reasons\">");
        for why in &r.marking_reasons {
            p.el("<li>", why, "</li>");
        }
        p.raw("</ul>");
    }
    p.raw("</header>\n");
}

fn summary(p: &mut Page, r: &Report) {
    let d = &r.device;
    p.raw("<h1>");
    p.text(&format!("{} {}", d.manufacturer, d.product));
    p.raw("</h1>\n<p class=\"headline\" id=\"outcome\">Outcome ");
    outcome_class(p, r.outcome.name());
    p.raw(" for profile ");
    p.text(&format!("{} v{}", r.profile.id, r.profile.version));
    if let Some(why) = &r.reason {
        p.raw(" — <span class=\"reason\">").text(why).raw("</span>");
    }
    p.raw("</p>\n<section id=\"identity\" class=\"cards\">\n");

    p.raw("<div class=\"card\"><h3>Device under test</h3><dl class=\"facts\">");
    fact(p, "Manufacturer", &d.manufacturer);
    fact(p, "Product", &d.product);
    fact_mono(p, "VID:PID", &format!("{}:{}", d.vid, d.pid));
    fact_mono(p, "Serial number", &d.serial);
    fact(p, "Firmware", &d.firmware);
    fact(p, "Class", d.class.name());
    fact_mono(p, "Device spec", &d.spec);
    fact_mono(p, "Descriptors SHA-256", &d.descriptors_sha256);
    fact(p, "Simulated", if d.simulated { "yes" } else { "no" });
    p.raw("</dl></div>\n");

    p.raw("<div class=\"card\"><h3>Profile and parties</h3><dl class=\"facts\">");
    fact(
        p,
        "Profile",
        &format!("{} v{}", r.profile.id, r.profile.version),
    );
    fact(p, "Title", &r.profile.title);
    fact(p, "Program", &r.profile.program);
    fact_mono(p, "Profile SHA-256", &r.profile.sha256);
    fact(p, "Vendor", &r.vendor);
    // The lab is who the authority bound the signing key to; the key id is
    // what report.dsse.json's signature names.
    use crate::trust::marking::SignerKind;
    let lab = match (r.signer.kind, &r.signer.lab_id) {
        (SignerKind::Lab, Some(id)) => format!("{id} (accredited key)"),
        (SignerKind::Lab, None) => "a lab key no accreditation names".to_string(),
        (SignerKind::User, _) => "none: signed with a per-user key".to_string(),
    };
    fact(p, "Lab", &lab);
    fact_mono(p, "Signing key", &r.signer.key_id);
    p.raw("</dl></div>\n");

    p.raw("<div class=\"card\"><h3>Station</h3><dl class=\"facts\">");
    fact(p, "Host", &r.station.host);
    fact(
        p,
        "OS / arch",
        &format!("{} / {}", r.station.os, r.station.arch),
    );
    let rig = &r.station.rig;
    fact(
        p,
        "Rig",
        &format!(
            "{} serial {} firmware {} (protocol {})",
            rig.kind, rig.serial, rig.firmware, rig.protocol
        ),
    );
    if let Some(s) = &r.station.scenario {
        fact_mono(p, "Scenario", &s.path);
        fact_mono(p, "Scenario SHA-256", &s.sha256);
    }
    match &r.station.calibration {
        Some(c) => {
            let terms: Vec<String> = c
                .terms
                .iter()
                .map(|t| {
                    format!(
                        "{} {:.1} ± {:.1} µs ({} bursts, measured {}, {})",
                        t.name,
                        t.latency_us,
                        t.uncertainty_us,
                        t.shots,
                        timestamp::record(t.measured),
                        match t.use_ {
                            crate::run::calibration::TermUse::Subtracted => "subtracted",
                            crate::run::calibration::TermUse::Recorded => "recorded only",
                        }
                    )
                })
                .collect();
            let limit = c
                .max_age_days
                .map_or(String::new(), |d| format!(", the profile allows {d} days"));
            fact(
                p,
                "Station calibration",
                &format!(
                    "{} for rig {}, {:.1} days old{limit}: {}",
                    c.path,
                    c.rig_serial,
                    c.age_days,
                    terms.join("; ")
                ),
            );
            fact_mono(p, "Calibration SHA-256", &c.sha256);
            if let Some(why) = &c.refused {
                fact(p, "Calibration refused", why);
            }
        }
        None => fact(
            p,
            "Station calibration",
            "none: every figure includes the station's own paths",
        ),
    }
    if r.station.clock == "virtual" {
        fact(
            p,
            "Station clock",
            "virtual (simulated station: time jumps to the next event; times are the station's)",
        );
    }
    fact(
        p,
        "Clock sync",
        &format!(
            "bound ≤ {:.1} µs (full width), drift {:+.2} ppm, {} exchanges, {} re-syncs",
            r.clock_sync.bound_us,
            r.clock_sync.drift_ppm,
            r.clock_sync.exchanges,
            r.clock_sync.resyncs
        ),
    );
    // Which estimate the shots crossing the rig's clock were converted with.
    let converted = |w| {
        r.steps
            .iter()
            .filter(|s| s.shots_converted_with == Some(w))
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
    };
    let (run_wide, own) = (
        converted(SyncConversion::Run),
        converted(SyncConversion::Step),
    );
    if !run_wide.is_empty() || !own.is_empty() {
        let mut text = String::new();
        if !run_wide.is_empty() {
            text.push_str(&format!(
                "with the run's final estimate: {}",
                run_wide.join(", ")
            ));
        }
        if !own.is_empty() {
            if !text.is_empty() {
                text.push_str("; ");
            }
            text.push_str(&format!(
                "with their own step's estimate (the rig restarted after them): {}",
                own.join(", ")
            ));
        }
        fact(p, "Shots across the rig's clock converted", &text);
    }
    p.raw("</dl></div>\n");

    p.raw("<div class=\"card\"><h3>Times and harness</h3><dl class=\"facts\">");
    fact_mono(p, "Started", &timestamp::record(r.started_at));
    fact_mono(p, "Finished", &timestamp::record(r.finished_at));
    let took = duration(r.started_at, r.finished_at);
    fact(p, "Duration", &format!("{took:.1} s"));
    fact(
        p,
        "Harness",
        &format!("{} {}", r.harness.name, r.harness.version),
    );
    fact(p, "Report schema", &r.schema);
    p.raw("</dl></div>\n</section>\n");
}

fn verdicts(p: &mut Page, r: &Report) {
    p.raw("<section id=\"verdicts\">\n<h2>Verdicts</h2>\n<table class=\"verdicts\" id=\"verdict-table\">\n<thead><tr><th>Step</th><th>Kind</th><th>Statistic</th><th>Value ± uncertainty</th><th>Limit</th><th>Outcome</th></tr></thead>\n<tbody>\n");
    for s in &r.steps {
        let first = |p: &mut Page, i: usize| {
            if i == 0 {
                p.raw("<tr class=\"first\"><td>")
                    .text(&s.id)
                    .raw("</td><td>")
                    .text(&s.kind)
                    .raw("</td>");
            } else {
                p.raw("<tr><td></td><td></td>");
            }
        };
        let mut rows = 0;
        for l in &s.limits {
            first(p, rows);
            rows += 1;
            let unit = l.limit.unit.name();
            let per = l.limit.unit.to_ms();
            let value = match s.uncertainty_ms {
                Some(u) => format!("{:.3} ± {:.3} {unit}", l.value, u / per),
                None => format!("{:.3} {unit}", l.value),
            };
            let mut bound = Vec::new();
            if let Some(max) = l.limit.max {
                bound.push(format!("≤ {max} {unit}"));
            }
            if let Some(min) = l.limit.min {
                bound.push(format!("≥ {min} {unit}"));
            }
            if let Some(m) = l.limit.marginal {
                bound.push(format!("(marginal band {m} {unit})"));
            }
            p.raw("<td>")
                .text(l.limit.statistic.name())
                .raw("</td><td class=\"num\">")
                .text(&value);
            p.raw("</td><td class=\"num\">")
                .text(&bound.join(" "))
                .raw("</td><td>");
            let v = match l.verdict {
                crate::profile::judge::Verdict::Pass => "PASS",
                crate::profile::judge::Verdict::Marginal => "MARGINAL",
                crate::profile::judge::Verdict::Fail => "FAIL",
            };
            outcome_class(p, v);
            p.raw("</td></tr>\n");
        }
        for q in &s.requirements {
            first(p, rows);
            rows += 1;
            p.raw("<td>requirement</td><td>")
                .text(&q.requirement)
                .raw("<br><span class=\"reason\">");
            p.text(&q.evidence)
                .raw("</span></td><td>must be met</td><td>");
            outcome_class(p, if q.met { "PASS" } else { "FAIL" });
            p.raw("</td></tr>\n");
        }
        first(p, rows);
        p.raw("<td>step</td><td class=\"reason\" colspan=\"2\">");
        if let Some(why) = &s.reason {
            p.text(why);
        } else if let Some(st) = &s.stats {
            p.text(&format!(
                "{} shots: median {:.3} ms, p95 {:.3} ms",
                st.n, st.median, st.p95
            ));
        }
        p.raw("</td><td>");
        outcome_class(p, s.outcome.name());
        p.raw("</td></tr>\n");
    }
    p.raw("</tbody>\n</table>\n<p class=\"headline\">Run outcome ");
    outcome_class(p, r.outcome.name());
    p.raw("</p>\n</section>\n");
}

fn step(p: &mut Page, d: &StepData, plots: &[Plot]) {
    let s = d.rec;
    p.raw("<section class=\"step\" id=\"step-")
        .text(&d.stem())
        .raw("\">\n<h3>");
    p.text(&format!("{} — {} ", s.id, s.title));
    outcome_class(p, s.outcome.name());
    p.raw("</h3>\n<dl class=\"facts\">");
    fact(p, "Kind", &s.kind);
    fact(
        p,
        "Time",
        &format!(
            "{} to {}",
            timestamp::record(s.started_at),
            timestamp::record(s.finished_at)
        ),
    );
    if d.is_latency() {
        fact(
            p,
            "Shots",
            &format!(
                "{} planned, {} measured, {} missed ({} through the station)",
                s.shots.planned, s.shots.measured, s.shots.missed, s.anomalies.station_missed_shots
            ),
        );
    }
    if let Some(st) = &s.stats {
        fact(
            p,
            "Statistics (ms)",
            &format!(
                "n {} · min {:.3} · median {:.3} · mean {:.3} · p95 {:.3} · p99 {:.3} · max {:.3} · stddev {:.3} · MAD {:.3}",
                st.n, st.min, st.median, st.mean, st.p95, st.p99, st.max, st.stddev, st.mad
            ),
        );
    }
    if let Some(u) = s.uncertainty_ms {
        fact(
            p,
            "Uncertainty (k = 2)",
            &format!("± {u:.3} ms on each statistic"),
        );
    }
    if let Some(u) = s.median_uncertainty_ms {
        fact(
            p,
            "Median as the device's",
            &format!("± {u:.3} ms (instrument and sampling)"),
        );
    }
    if d.is_latency() && !d.shots.is_empty() && !super::plots::crosses_rig_clock(d) {
        fact(
            p,
            "Clock sync",
            "no shot of this step crosses the rig's clock, so no sync bound enters its uncertainty",
        );
    }
    if !s.station_corrections.is_empty() {
        let c: Vec<String> = s
            .station_corrections
            .iter()
            .map(|c| {
                format!(
                    "{} ({} share) {:.1} ± {:.1} µs",
                    c.term, c.share, c.subtracted_us, c.uncertainty_us
                )
            })
            .collect();
        fact(
            p,
            "Station calibration",
            &format!("subtracted from every shot: {}", c.join("; ")),
        );
    }
    if let Some(ppm) = s.stream_drift_ppm {
        fact(
            p,
            "Stream clock",
            &format!("{ppm:+.1} ppm against its time stamps"),
        );
    }
    if let Some(why) = &s.reason {
        fact(p, "Reason", why);
    }
    if !s.raw.is_empty() {
        fact_mono(p, "Raw data", &s.raw.join(", "));
    }
    p.raw("</dl>\n");
    let missed: Vec<_> = d.shots.iter().filter(|x| x.value.is_none()).collect();
    if !missed.is_empty() && d.is_latency() {
        p.raw("<div class=\"missed\"><p>");
        p.text(&format!("{} missed shots and why", missed.len()));
        p.raw("</p><ul>");
        for m in missed {
            p.raw("<li>")
                .text(&format!("shot {} ({}): {}", m.shot, m.status, m.detail))
                .raw("</li>");
        }
        p.raw("</ul></div>\n");
    }
    if !plots.is_empty() {
        p.raw("<div class=\"plots\">\n");
        for pl in plots {
            p.raw("<figure class=\"plot\" id=\"plot-")
                .text(&pl.stem)
                .raw("\" data-kind=\"")
                .text(pl.kind)
                .raw("\">");
            match &pl.svg {
                Ok(svg) => {
                    p.svg(svg);
                }
                Err(e) => {
                    p.el(
                        "<p class=\"missing\">The plot could not be drawn: ",
                        e,
                        "</p>",
                    );
                }
            }
            p.raw("<figcaption><b>")
                .text(&pl.title)
                .raw("</b> ")
                .text(&pl.caption);
            p.raw(" <span class=\"mono\">")
                .text(&pl.path_svg())
                .raw("</span></figcaption></figure>\n");
        }
        p.raw("</div>\n");
    }
    p.raw("</section>\n");
}

fn anomalies(p: &mut Page, r: &Report) {
    p.raw("<section id=\"anomalies\">\n<h2>Anomalies</h2>\n");
    p.raw("<table class=\"anomalies\"><thead><tr><th>Step</th><th>Lost blocks (gap / overrun / corrupt)</th><th>Dropped frames</th><th>Missed shots (station's)</th><th>Outliers</th><th>Sync bursts</th><th>Rig restarts</th></tr></thead><tbody>\n");
    let mut any = false;
    for s in &r.steps {
        let a = &s.anomalies;
        if s.outcome == StepOutcome::Skipped {
            continue;
        }
        any = true;
        let outliers = if a.outlier_shots.is_empty() {
            "none".to_string()
        } else {
            format!(
                "{} (shots {})",
                a.outlier_shots.len(),
                a.outlier_shots
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        p.raw("<tr><td>").text(&s.id).raw("</td><td class=\"num\">");
        p.text(&format!(
            "{} / {} / {}",
            a.gap_blocks, a.overrun_blocks, a.corrupt_blocks
        ));
        p.raw("</td><td class=\"num\">")
            .text(&a.dropped_frames.to_string());
        p.raw("</td><td class=\"num\">")
            .text(&format!("{} ({})", a.missed_shots, a.station_missed_shots));
        p.raw("</td><td>").text(&outliers);
        p.raw("</td><td class=\"num\">")
            .text(&a.sync_bursts.to_string());
        p.raw("</td><td class=\"num\">")
            .text(&a.rig_restarts.to_string())
            .raw("</td></tr>\n");
    }
    if !any {
        p.raw("<tr><td colspan=\"7\">No step ran.</td></tr>\n");
    }
    p.raw("</tbody></table>\n");
    let l = &r.station.rig_link;
    p.raw("<p id=\"rig-link\">Rig link: ");
    p.text(&format!(
        "{} frames decoded, {} corrupt frames dropped ({} bytes skipped), {} frames lost, {} rig restarts; {} clock-sync re-syncs over the run.",
        l.frames, l.corrupt_frames, l.skipped_bytes, l.lost_frames, l.restarts, r.clock_sync.resyncs
    ));
    p.raw("</p>\n");
    let faults: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| matches!(s.outcome, StepOutcome::Error | StepOutcome::Skipped))
        .filter_map(|s| s.reason.as_deref())
        .collect();
    if !faults.is_empty() {
        p.raw("<h3>Faults</h3><ul class=\"faults\">");
        for (s, why) in r
            .steps
            .iter()
            .filter(|s| matches!(s.outcome, StepOutcome::Error | StepOutcome::Skipped))
            .filter_map(|s| Some((s, s.reason.as_deref()?)))
        {
            p.raw("<li>")
                .text(&format!("{} {}: {why}", s.id, s.outcome.name()))
                .raw("</li>");
        }
        p.raw("</ul>\n");
    }
    p.raw("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        let mut s = String::new();
        escape_into(&mut s, "<script>alert('x')</script> & \"q\"\u{1}\u{7f}\tok");
        assert_eq!(
            s,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\u{FFFD}\u{FFFD}\tok"
        );
    }
}
