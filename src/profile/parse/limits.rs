//! The limits of a step: `[[steps.limits]]` tables.
//!
//! Owns what a limit may hold (statistic, bounds, unit, marginal band) and
//! the rules between them, and which step kinds need or refuse limits. It
//! must not read positions or values other than through `profile::spanned`.

use crate::profile::model::{Limit, StepKind, Unit};
use crate::profile::spanned::{Cx, Tbl};
use crate::statistic::Statistic;

const LIMIT_KEYS: &[&str] = &["statistic", "min", "max", "unit", "marginal"];

pub(super) fn parse_limits(cx: &mut Cx, t: &Tbl<'_, '_>, kind: Option<StepKind>) -> Vec<Limit> {
    let kind_name = kind.map(|k| k.name()).unwrap_or("step");
    if kind == Some(StepKind::UsbConformance) {
        if t.get("limits").is_some() {
            cx.err(
                t.key_span("limits"),
                format!(
                    "usb-conformance steps take no limits {}; their outcome is whether \
                     every requirement is met",
                    t.loc
                ),
            );
        }
        return Vec::new();
    }
    let needs = kind.is_some_and(|k| k.is_latency());
    let Some((tables, span)) = cx.tables(t, "limits", "[[steps.limits]]") else {
        if needs && t.get("limits").is_none() {
            cx.err(
                t.span.clone(),
                format!(
                    "{} ({kind_name}) has no limits; latency steps need at least one \
                     [[steps.limits]] (e.g. statistic = \"median\", max = 60.0, unit = \"ms\")",
                    t.loc.trim_start_matches("in ")
                ),
            );
        }
        return Vec::new();
    };
    if needs && tables.is_empty() {
        cx.err(
            span,
            format!(
                "`limits` {} is empty; {kind_name} steps need at least one limit",
                t.loc
            ),
        );
    }
    let step = t.loc.trim_start_matches("in ").to_string();
    let mut out = Vec::new();
    for (i, (table, span)) in tables.into_iter().enumerate() {
        let l = Tbl {
            t: table,
            span,
            loc: format!("in limit {} of {step}", i + 1),
        };
        if let Some(limit) = parse_limit(cx, &l, kind_name) {
            out.push(limit);
        }
    }
    out
}

fn parse_limit(cx: &mut Cx, l: &Tbl<'_, '_>, kind_name: &str) -> Option<Limit> {
    let n_before = cx.diags.len();
    cx.unknown_keys(l, LIMIT_KEYS, "limits");
    let stat_names: Vec<&str> = Statistic::ALL.iter().map(|s| s.name()).collect();
    let statistic = cx.req_choice(l, "statistic", &stat_names, Statistic::parse, |s, hint| {
        format!(
            "unknown statistic {s:?} {}{hint}; use one of {}",
            l.loc,
            stat_names.join(", ")
        )
    });
    let unit = match cx.req_string(l, "unit", " (ms, us or s)") {
        Some((s, span)) => Unit::parse(s).or_else(|| {
            cx.err(
                span,
                format!("unit {s:?} is not a time unit; {kind_name} limits take ms, us or s"),
            );
            None
        }),
        None => None,
    };
    let min = cx.num(l, "min");
    let max = cx.num(l, "max");
    let marginal = cx.num(l, "marginal");
    if l.get("min").is_none() && l.get("max").is_none() {
        cx.err(
            l.span.clone(),
            format!(
                "limit {} has no bound; give `min`, `max` or both",
                l.loc.trim_start_matches("in limit ")
            ),
        );
    }
    if let (Some((lo, lo_span)), Some((hi, _))) = (&min, &max) {
        if lo > hi {
            cx.err(
                lo_span.clone(),
                format!("`min` ({lo}) is above `max` ({hi}) {}", l.loc),
            );
        }
    }
    if let Some((m, span)) = &marginal {
        if *m < 0.0 {
            cx.err(
                span.clone(),
                format!(
                    "`marginal` {} is {m}; the marginal band must be 0 or more",
                    l.loc
                ),
            );
        } else if let (Some((lo, _)), Some((hi, _))) = (&min, &max) {
            if hi >= lo && 2.0 * m >= hi - lo {
                cx.err(
                    span.clone(),
                    format!(
                        "`marginal` {} is {m}, but the bands inside min ({lo}) and max ({hi}) \
                         would meet; 2 × marginal must be less than max − min ({})",
                        l.loc,
                        hi - lo
                    ),
                );
            }
        }
    }
    if cx.diags.len() > n_before {
        return None;
    }
    Some(Limit {
        statistic: statistic?,
        min: min.map(|(x, _)| x),
        max: max.map(|(x, _)| x),
        unit: unit?,
        marginal: marginal.map(|(x, _)| x),
    })
}
