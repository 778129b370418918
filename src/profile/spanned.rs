//! The spanned-TOML walker: positions, `file:line:column`, and value access
//! that reports instead of failing.
//!
//! Owns [`Diagnostic`] (a message at a byte span, rendered as
//! `file:line:column: message`) and the checker ([`Cx`]) that reads keys of
//! a spanned table ([`Tbl`], a `toml::de::DeTable` with where it is and how
//! to name it) as strings, whole numbers, numbers in a range, arrays of
//! tables or one word of a closed vocabulary, collecting every problem with
//! the span of the offending key or value. It knows nothing of what a
//! profile's keys mean (that is `profile::parse`, the schema) and must not
//! depend on the profile model.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::suggest::did_you_mean;

/// One problem in a profile, at a byte span of the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Byte offsets into the source text.
    pub span: std::ops::Range<usize>,
    pub message: String,
}

impl Diagnostic {
    /// `file:line:column: message`, with 1-based line and column (column in characters).
    pub fn render(&self, path: &Path, text: &str) -> String {
        let (line, col) = self.line_col(text);
        format!("{}:{line}:{col}: {}", path.display(), self.message)
    }

    /// 1-based line and column (in characters) of the span's start.
    pub fn line_col(&self, text: &str) -> (usize, usize) {
        let mut start = self.span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, col)
    }
}

/// Sort the diagnostics into source order and drop repeats.
pub(crate) fn finish(diags: &mut Vec<Diagnostic>) {
    diags.sort_by_key(|d| (d.span.start, d.span.end));
    diags.dedup();
}

/// "a string", "an integer", ...: what a value is, for messages.
pub(crate) fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// `None` when not an integer; `Some(None)` when one that does not fit i64.
pub(crate) fn int_value(v: &DeValue<'_>) -> Option<Option<i64>> {
    match v {
        DeValue::Integer(i) => Some(i64::from_str_radix(i.as_str(), i.radix()).ok()),
        _ => None,
    }
}

/// `None` when not a number; `Some(None)` when one that is not finite.
pub(crate) fn num_value(v: &DeValue<'_>) -> Option<Option<f64>> {
    match v {
        DeValue::Integer(i) => Some(
            i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|x| x as f64),
        ),
        DeValue::Float(f) => Some(f.as_str().parse::<f64>().ok().filter(|x| x.is_finite())),
        _ => None,
    }
}

pub(crate) type Span = Range<usize>;
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// A table being checked, with where it is and how to name it in messages.
pub(crate) struct Tbl<'a, 'i> {
    pub(crate) t: &'a DeTable<'i>,
    pub(crate) span: Span,
    /// "in step `send-latency`", "at the top level", ...
    pub(crate) loc: String,
}

impl<'a, 'i> Tbl<'a, 'i> {
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.t.get(key)
    }
    pub(crate) fn key_span(&self, key: &str) -> Span {
        self.t
            .get_key_value(key)
            .map(|(k, _)| k.span())
            .unwrap_or_else(|| self.span.clone())
    }
}

/// The checker: every problem found so far.
#[derive(Default)]
pub(crate) struct Cx {
    pub(crate) diags: Vec<Diagnostic>,
}

impl Cx {
    pub(crate) fn err(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            span,
            message: message.into(),
        });
    }

    pub(crate) fn wrong_type(&mut self, t: &Tbl<'_, '_>, key: &str, v: &Value<'_>, expected: &str) {
        self.err(
            v.span(),
            format!(
                "`{key}` {} must be {expected}, not {}",
                t.loc,
                a_type(v.get_ref())
            ),
        );
    }

    pub(crate) fn missing(&mut self, t: &Tbl<'_, '_>, key: &str, hint: &str) {
        self.err(
            t.span.clone(),
            format!("missing required key `{key}` {}{hint}", t.loc),
        );
    }

    /// Flag every key of `t` not in `allowed`; `whose` names what takes them.
    pub(crate) fn unknown_keys(&mut self, t: &Tbl<'_, '_>, allowed: &[&str], whose: &str) {
        for (k, _) in t.t.iter() {
            let name: &str = k.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let hint = did_you_mean(name, allowed.iter().copied());
            self.err(
                k.span(),
                format!(
                    "unknown key `{name}` {}{hint}; {whose} take: {}",
                    t.loc,
                    allowed.join(", ")
                ),
            );
        }
    }

    pub(crate) fn string<'a>(&mut self, t: &Tbl<'a, '_>, key: &str) -> Option<(&'a str, Span)> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.as_ref(), v.span())),
            _ => {
                self.wrong_type(t, key, v, "a string");
                None
            }
        }
    }

    pub(crate) fn req_string<'a>(
        &mut self,
        t: &Tbl<'a, '_>,
        key: &str,
        hint: &str,
    ) -> Option<(&'a str, Span)> {
        if t.get(key).is_none() {
            self.missing(t, key, hint);
            return None;
        }
        self.string(t, key)
    }

    /// A required string that must be one of `names`, read by `parse`. A
    /// missing one asks for "one of ..."; an unknown one is reported at its
    /// value with `unknown(word, hint)`, `hint` being the did-you-mean hint
    /// (or empty).
    pub(crate) fn req_choice<T>(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        names: &[&str],
        parse: impl FnOnce(&str) -> Option<T>,
        unknown: impl FnOnce(&str, &str) -> String,
    ) -> Option<T> {
        let (s, span) = self.req_string(t, key, &format!(" (one of {})", names.join(", ")))?;
        let found = parse(s);
        if found.is_none() {
            let hint = did_you_mean(s, names.iter().copied());
            self.err(span, unknown(s, &hint));
        }
        found
    }

    /// A whole number in `lo..=hi`.
    pub(crate) fn int(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        lo: i64,
        hi: i64,
        what: &str,
    ) -> Option<(i64, Span)> {
        let v = t.get(key)?;
        match int_value(v.get_ref()) {
            Some(Some(x)) if (lo..=hi).contains(&x) => Some((x, v.span())),
            Some(_) => {
                self.err(
                    v.span(),
                    format!(
                        "`{key}` {} is out of range; {what} must be {lo} to {hi}",
                        t.loc
                    ),
                );
                None
            }
            None => {
                self.wrong_type(t, key, v, "a whole number (integer)");
                None
            }
        }
    }

    /// A finite number (TOML integer or float).
    pub(crate) fn num(&mut self, t: &Tbl<'_, '_>, key: &str) -> Option<(f64, Span)> {
        let v = t.get(key)?;
        match num_value(v.get_ref()) {
            Some(Some(x)) => Some((x, v.span())),
            Some(None) => {
                self.err(
                    v.span(),
                    format!("`{key}` {} must be a finite number", t.loc),
                );
                None
            }
            None => {
                self.wrong_type(t, key, v, "a number");
                None
            }
        }
    }

    /// A number in `lo..=hi` (`lo` exclusive when `lo_open`).
    pub(crate) fn num_in(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        lo: f64,
        lo_open: bool,
        hi: f64,
        unit: &str,
    ) -> Option<(f64, Span)> {
        let (x, span) = self.num(t, key)?;
        let ok = if lo_open { x > lo } else { x >= lo } && x <= hi;
        if ok {
            Some((x, span))
        } else {
            let range = if lo_open {
                format!("more than {lo} and at most {hi}{unit}")
            } else {
                format!("{lo} to {hi}{unit}")
            };
            self.err(
                span.clone(),
                format!("`{key}` {} is {x}{unit}; it must be {range}", t.loc),
            );
            None
        }
    }

    /// An array of tables (`[[key]]` or `key = [{...}]`); each with its span.
    pub(crate) fn tables<'a, 'i>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &str,
        header: &str,
    ) -> Option<(Vec<(&'a DeTable<'i>, Span)>, Span)> {
        let v = t.get(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.err(
                v.span(),
                format!(
                    "`{key}` {} must be an array of tables ({header} or {key} = [{{...}}]), not {}",
                    t.loc,
                    a_type(v.get_ref())
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(tt) => out.push((tt, item.span())),
                other => self.err(
                    item.span(),
                    format!(
                        "entry {} of `{key}` {} must be a table, not {}",
                        i + 1,
                        t.loc,
                        a_type(other)
                    ),
                ),
            }
        }
        Some((out, v.span()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_handles_multibyte_and_out_of_range() {
        let d = Diagnostic {
            span: 2..3,
            message: "m".into(),
        };
        assert_eq!(d.render(Path::new("f"), "µ\nx"), "f:1:2: m");
        let d = Diagnostic {
            span: 1..1,
            message: "m".into(),
        };
        assert_eq!(d.render(Path::new("f"), "µ"), "f:1:1: m");
        let d = Diagnostic {
            span: 99..99,
            message: "m".into(),
        };
        assert_eq!(d.render(Path::new("f"), "a\nbc"), "f:2:3: m");
    }

    /// The walker on its own: a table read key by key, every problem kept
    /// with the position of its key or value.
    #[test]
    fn reads_keys_and_reports_at_their_positions() {
        let text = "n = 3\nf = 1.5\nbig = 99\ns = 7\nword = \"medain\"\nzzz = 1\n";
        let (root, errors) = DeTable::parse_recoverable(text);
        assert!(errors.is_empty());
        let t = Tbl {
            t: root.get_ref(),
            span: 0..0,
            loc: "here".into(),
        };
        let mut cx = Cx::default();
        assert_eq!(cx.int(&t, "n", 1, 10, "n").map(|(x, _)| x), Some(3));
        assert_eq!(cx.num(&t, "f").map(|(x, _)| x), Some(1.5));
        assert!(cx.int(&t, "big", 1, 10, "big").is_none());
        assert!(cx.string(&t, "s").is_none());
        assert!(cx.int(&t, "absent", 1, 10, "absent").is_none());
        let names = ["median", "mean"];
        let choice = cx.req_choice(
            &t,
            "word",
            &names,
            |s| names.contains(&s).then_some(()),
            |s, hint| format!("unknown word {s:?}{hint}"),
        );
        assert!(choice.is_none());
        cx.unknown_keys(&t, &["n", "f", "big", "s", "word"], "tests");
        finish(&mut cx.diags);
        let got: Vec<String> = cx
            .diags
            .iter()
            .map(|d| d.render(Path::new("t.toml"), text))
            .collect();
        assert_eq!(
            got,
            vec![
                "t.toml:3:7: `big` here is out of range; big must be 1 to 10",
                "t.toml:4:5: `s` here must be a string, not an integer",
                "t.toml:5:8: unknown word \"medain\" (did you mean `median`?)",
                "t.toml:6:1: unknown key `zzz` here; tests take: n, f, big, s, word",
            ]
        );
    }
}
