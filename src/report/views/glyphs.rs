//! The plots' text, set as outlines of the font the project ships.
//!
//! Owns turning each `<text>` element that plotters writes into the glyph
//! outlines of DejaVu Sans (assets/fonts), so a browser, a PDF converter or
//! an image viewer draws the project's font rather than one it finds on its
//! system, and the SVG and PNG plots agree. Each glyph a plot uses is defined
//! once in `<defs>` (in font units) and placed with `<use>`; the text itself
//! stays in an `aria-label`. It must not change any other element of the
//! document, nor decide what a plot says.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, Writer};
use ttf_parser::{Face, GlyphId, OutlineBuilder};

/// Where a text's anchor sits against its glyphs, as SVG's `dy` says it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dy {
    /// A length in em (plotters writes `0.76em` for top-anchored text).
    Em(f64),
    /// A length in ex, the font's x-height (`0.5ex`, `-0.5ex`).
    Ex(f64),
    /// A length in user units.
    User(f64),
}

/// One `<text>` element, read.
#[derive(Debug, Default)]
struct TextEl {
    x: f64,
    y: f64,
    dy: Option<Dy>,
    anchor: Anchor,
    size: f64,
    fill: Option<String>,
    opacity: Option<String>,
    transform: Option<String>,
    content: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Anchor {
    #[default]
    Start,
    Middle,
    End,
}

/// The font, parsed, and the glyphs one document has used so far.
pub(crate) struct Outliner<'f> {
    face: Face<'f>,
    /// Prefix of every glyph id, unique per plot so plots can share a page.
    prefix: String,
    /// Glyph id → its outline as SVG path data, in font units, y up.
    used: BTreeMap<u16, String>,
}

impl<'f> Outliner<'f> {
    pub(crate) fn new(font: &'f [u8], prefix: &str) -> Result<Self, String> {
        let face = Face::parse(font, 0).map_err(|e| format!("the plot font: {e}"))?;
        Ok(Outliner {
            face,
            prefix: prefix.to_string(),
            used: BTreeMap::new(),
        })
    }

    fn em(&self) -> f64 {
        f64::from(self.face.units_per_em())
    }

    /// The font's x-height in em: its OS/2 value where the table is new
    /// enough to hold one, else the height of the glyph 'x' (as browsers
    /// measure it), else half an em (CSS's fallback).
    fn ex(&self) -> f64 {
        let h = self.face.x_height().filter(|h| *h > 0).or_else(|| {
            let x = self.face.glyph_index('x')?;
            Some(self.face.glyph_bounding_box(x)?.y_max).filter(|h| *h > 0)
        });
        h.map_or(0.5, |h| f64::from(h) / self.em())
    }

    /// The glyphs of `text` and the pen position of each, in font units.
    fn layout(&self, text: &str) -> (Vec<(GlyphId, f64)>, f64) {
        let mut pen = 0.0;
        let mut out = Vec::with_capacity(text.len());
        let mut prev: Option<GlyphId> = None;
        for c in text.chars() {
            let g = self.face.glyph_index(c).unwrap_or(GlyphId(0));
            if let Some(p) = prev {
                pen += f64::from(self.kern(p, g));
            }
            out.push((g, pen));
            pen += f64::from(self.face.glyph_hor_advance(g).unwrap_or(0));
            prev = Some(g);
        }
        (out, pen)
    }

    /// The legacy `kern` table's adjustment between two glyphs.
    fn kern(&self, left: GlyphId, right: GlyphId) -> i16 {
        let Some(kern) = self.face.tables().kern else {
            return 0;
        };
        kern.subtables
            .into_iter()
            .filter(|s| s.horizontal && !s.variable)
            .find_map(|s| s.glyphs_kerning(left, right))
            .unwrap_or(0)
    }

    /// Defines the glyph if it has an outline; whether it has one.
    fn define(&mut self, g: GlyphId) -> bool {
        if let Some(d) = self.used.get(&g.0) {
            return !d.is_empty();
        }
        let mut path = PathData(String::new());
        let drawn = self.face.outline_glyph(g, &mut path).is_some();
        let d = if drawn { path.0 } else { String::new() };
        let has = !d.is_empty();
        self.used.insert(g.0, d);
        has
    }

    fn glyph_id(&self, g: u16) -> String {
        format!("{}{g}", self.prefix)
    }

    /// The `<g>` that replaces one text element, and the glyphs to place
    /// in it: (glyph, pen position in font units).
    fn group(&mut self, t: &TextEl) -> (BytesStart<'static>, Vec<(u16, f64)>) {
        let text = collapse_whitespace(&t.content);
        let (glyphs, width) = self.layout(&text);
        let scale = t.size / self.em();
        let dx = match t.anchor {
            Anchor::Start => 0.0,
            Anchor::Middle => -width / 2.0 * scale,
            Anchor::End => -width * scale,
        };
        let dy = match t.dy {
            None => 0.0,
            Some(Dy::Em(v)) => v * t.size,
            Some(Dy::Ex(v)) => v * self.ex() * t.size,
            Some(Dy::User(v)) => v,
        };
        let mut transform = String::new();
        if let Some(tr) = &t.transform {
            transform.push_str(tr);
            transform.push(' ');
        }
        let _ = write!(
            transform,
            "translate({} {}) scale({} {})",
            num(t.x + dx),
            num(t.y + dy),
            scale_num(scale),
            scale_num(-scale)
        );
        let mut g = BytesStart::new("g");
        g.push_attribute(("aria-label", text.as_str()));
        g.push_attribute(("transform", transform.as_str()));
        if let Some(fill) = &t.fill {
            g.push_attribute(("fill", fill.as_str()));
        }
        if let Some(op) = &t.opacity {
            g.push_attribute(("opacity", op.as_str()));
        }
        let uses = glyphs
            .into_iter()
            .filter(|(g, _)| self.define(*g))
            .map(|(g, x)| (g.0, x))
            .collect();
        (g, uses)
    }
}

/// `svg` with every `<text>` element replaced by the outlines of `font`,
/// glyph ids prefixed with `prefix` (an XML name, unique on the page).
pub(crate) fn outline_text(svg: &str, font: &[u8], prefix: &str) -> Result<String, String> {
    let mut o = Outliner::new(font, prefix)?;
    let mut reader = Reader::from_str(svg);
    let mut w = Writer::new(Vec::with_capacity(svg.len()));
    let bad = |e: &dyn std::fmt::Display| format!("the plot's SVG: {e}");
    loop {
        let ev = reader.read_event().map_err(|e| bad(&e))?;
        match ev {
            Event::Eof => break,
            Event::Start(e) if e.name().as_ref() == b"text" => {
                let mut t = read_text_attrs(&e).map_err(|e| bad(&e))?;
                loop {
                    match reader.read_event().map_err(|e| bad(&e))? {
                        Event::Text(x) => t.content.push_str(&x.decode().map_err(|e| bad(&e))?),
                        Event::CData(x) => t.content.push_str(&x.decode().map_err(|e| bad(&e))?),
                        Event::GeneralRef(r) => {
                            if let Some(c) = r.resolve_char_ref().map_err(|e| bad(&e))? {
                                t.content.push(c);
                            } else {
                                let name = r.decode().map_err(|e| bad(&e))?;
                                let v = quick_xml::escape::resolve_predefined_entity(&name)
                                    .ok_or_else(|| bad(&format!("unknown entity &{name};")))?;
                                t.content.push_str(v);
                            }
                        }
                        Event::End(e) if e.name().as_ref() == b"text" => break,
                        Event::Eof => return Err(bad(&"a <text> is not closed")),
                        other => return Err(bad(&format!("unexpected {other:?} in <text>"))),
                    }
                }
                let (g, uses) = o.group(&t);
                w.write_event(Event::Start(g)).map_err(|e| bad(&e))?;
                for (gid, x) in uses {
                    let mut u = BytesStart::new("use");
                    u.push_attribute(("xlink:href", format!("#{}", o.glyph_id(gid)).as_str()));
                    if x != 0.0 {
                        u.push_attribute(("x", num(x).as_str()));
                    }
                    w.write_event(Event::Empty(u)).map_err(|e| bad(&e))?;
                }
                w.write_event(Event::End(quick_xml::events::BytesEnd::new("g")))
                    .map_err(|e| bad(&e))?;
            }
            Event::Start(mut e) if e.name().as_ref() == b"svg" => {
                // `xlink:href` rather than SVG 2's `href`, which older
                // viewers and converters do not know.
                if !e
                    .attributes()
                    .flatten()
                    .any(|a| a.key.as_ref() == b"xmlns:xlink")
                {
                    e.push_attribute(("xmlns:xlink", "http://www.w3.org/1999/xlink"));
                }
                w.write_event(Event::Start(e)).map_err(|e| bad(&e))?;
            }
            Event::End(e) if e.name().as_ref() == b"svg" => {
                if o.used.values().any(|d| !d.is_empty()) {
                    w.write_event(Event::Start(BytesStart::new("defs")))
                        .map_err(|e| bad(&e))?;
                    for (gid, d) in o.used.iter().filter(|(_, d)| !d.is_empty()) {
                        let mut p = BytesStart::new("path");
                        p.push_attribute(("id", o.glyph_id(*gid).as_str()));
                        p.push_attribute(("d", d.as_str()));
                        w.write_event(Event::Empty(p)).map_err(|e| bad(&e))?;
                    }
                    w.write_event(Event::End(quick_xml::events::BytesEnd::new("defs")))
                        .map_err(|e| bad(&e))?;
                }
                w.write_event(Event::End(e)).map_err(|e| bad(&e))?;
            }
            other => w.write_event(other).map_err(|e| bad(&e))?,
        }
    }
    String::from_utf8(w.into_inner()).map_err(|e| bad(&e))
}

fn read_text_attrs(e: &BytesStart<'_>) -> Result<TextEl, String> {
    let mut t = TextEl {
        size: 16.0,
        ..TextEl::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let v = a.unescape_value().map_err(|e| e.to_string())?;
        let v = v.trim();
        let f = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    format!(
                        "<text> has {}=\"{v}\"",
                        String::from_utf8_lossy(a.key.as_ref())
                    )
                })
        };
        match a.key.as_ref() {
            b"x" => t.x = f(v)?,
            b"y" => t.y = f(v)?,
            b"font-size" => t.size = f(v.trim_end_matches("px"))?,
            b"dy" => {
                t.dy = Some(if let Some(n) = v.strip_suffix("em") {
                    Dy::Em(f(n)?)
                } else if let Some(n) = v.strip_suffix("ex") {
                    Dy::Ex(f(n)?)
                } else {
                    Dy::User(f(v.trim_end_matches("px"))?)
                })
            }
            b"text-anchor" => {
                t.anchor = match v {
                    "middle" => Anchor::Middle,
                    "end" => Anchor::End,
                    _ => Anchor::Start,
                }
            }
            b"fill" => t.fill = Some(v.to_string()),
            b"opacity" => t.opacity = Some(v.to_string()),
            b"transform" => t.transform = Some(v.to_string()),
            // The family, weight and style name a font; the outlines are
            // the shipped font's, whatever they say.
            _ => {}
        }
    }
    Ok(t)
}

/// SVG's default white-space handling: newlines removed, tabs become
/// spaces, runs of spaces become one, and the ends are trimmed.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => {}
            '\t' | ' ' => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// A number for an attribute: at most 3 decimals, no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// A glyph scale (about 0.005 for 10 px text): 7 decimals keep a
/// 2048-unit glyph within a thousandth of a pixel.
fn scale_num(v: f64) -> String {
    let s = format!("{v:.7}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn num32(v: f32) -> String {
    num(f64::from(v))
}

/// SVG path data from a glyph outline.
struct PathData(String);

impl OutlineBuilder for PathData {
    fn move_to(&mut self, x: f32, y: f32) {
        let _ = write!(self.0, "M{} {}", num32(x), num32(y));
    }
    fn line_to(&mut self, x: f32, y: f32) {
        let _ = write!(self.0, "L{} {}", num32(x), num32(y));
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        let _ = write!(
            self.0,
            "Q{} {} {} {}",
            num32(x1),
            num32(y1),
            num32(x),
            num32(y)
        );
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        let _ = write!(
            self.0,
            "C{} {} {} {} {} {}",
            num32(x1),
            num32(y1),
            num32(x2),
            num32(y2),
            num32(x),
            num32(y)
        );
    }
    fn close(&mut self) {
        self.0.push('Z');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ab_glyph::{Font as _, FontRef};
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    use plotters::style::FontTransform;

    static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

    /// (text, x, y, horizontal, vertical, rotated)
    const TEXTS: &[(&str, i32, i32, HPos, VPos, bool)] = &[
        ("Latency (ms)", 320, 20, HPos::Center, VPos::Top, false),
        (
            "AVAWAY <script>&'\"",
            10,
            100,
            HPos::Left,
            VPos::Center,
            false,
        ),
        ("p95  \t 41.2", 630, 200, HPos::Right, VPos::Bottom, false),
        ("shots", 12, 180, HPos::Center, VPos::Top, true),
    ];

    fn plotters_svg() -> String {
        let mut s = String::new();
        {
            let root = SVGBackend::with_string(&mut s, (640, 360)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            root.draw(&Rectangle::new([(5, 5), (50, 50)], BLUE.filled()))
                .unwrap();
            for &(t, x, y, h, v, rot) in TEXTS {
                let mut style = ("sans-serif", 15).into_font().color(&BLACK);
                if rot {
                    style = style.transform(FontTransform::Rotate270);
                }
                root.draw(&Text::new(t, (x, y), style.pos(Pos::new(h, v))))
                    .unwrap();
            }
            root.present().unwrap();
        }
        s
    }

    /// The text's advance width in font units, by ab_glyph (the library the
    /// PNG plots are drawn with), with the legacy kerning it applies.
    fn ab_width(text: &str) -> f64 {
        let f = FontRef::try_from_slice(FONT).unwrap();
        let mut w = 0.0f32;
        let mut prev = None;
        for c in text.chars() {
            let g = f.glyph_id(c);
            if let Some(p) = prev {
                w += f.kern_unscaled(p, g);
            }
            w += f.h_advance_unscaled(g);
            prev = Some(g);
        }
        f64::from(w)
    }

    fn transform_parts(t: &str) -> (Option<&str>, f64, f64, f64) {
        let (rot, rest) = match t.find("translate(") {
            Some(0) => (None, t),
            Some(i) => (Some(t[..i].trim()), &t[i..]),
            None => panic!("no translate in {t}"),
        };
        let nums: Vec<f64> = rest
            .split(['(', ')', ' '])
            .filter_map(|x| x.parse().ok())
            .collect();
        assert_eq!(nums.len(), 4, "{t}");
        assert_eq!(nums[2], -nums[3], "{t}");
        (rot, nums[0], nums[1], nums[2])
    }

    #[test]
    fn every_text_becomes_the_shipped_fonts_outlines_where_a_browser_would_set_it() {
        let input = plotters_svg();
        assert_eq!(input.matches("<text").count(), TEXTS.len());
        let out = outline_text(&input, FONT, "s1h").unwrap();
        let doc = roxmltree::Document::parse(&out).unwrap();
        assert!(doc.descendants().all(|n| !n.has_tag_name("text")), "{out}");

        // Every glyph reference resolves to an outline in this document.
        let defs: BTreeMap<&str, &str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("path") && n.attribute("id").is_some())
            .map(|n| (n.attribute("id").unwrap(), n.attribute("d").unwrap()))
            .collect();
        assert!(defs
            .values()
            .all(|d| d.starts_with('M') && d.ends_with('Z')));
        let xlink = "http://www.w3.org/1999/xlink";

        let em = 2048.0;
        // DejaVu Sans' OS/2 table is too old to state an x-height, so it
        // is the top of 'x', as ab_glyph measures it.
        let f = FontRef::try_from_slice(FONT).unwrap();
        let b = f.outline(f.glyph_id('x')).unwrap().bounds;
        let x_height = f64::from((b.max.y - b.min.y).abs()) / em;
        assert!((0.5..0.6).contains(&x_height), "{x_height}");
        let groups: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("g") && n.attribute("aria-label").is_some())
            .collect();
        assert_eq!(groups.len(), TEXTS.len());
        for (g, &(text, x, y, h, v, rot)) in groups.iter().zip(TEXTS) {
            let label = g.attribute("aria-label").unwrap();
            let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(label, collapsed);
            assert_eq!(g.attribute("fill"), Some("#000000"));
            let (r, tx, ty, k) = transform_parts(g.attribute("transform").unwrap());
            // plotters writes font-size = size / 1.24.
            let size = 15.0 / 1.24;
            assert!((k - size / em).abs() < 1e-7, "scale {k}");
            let width = ab_width(&collapsed) * size / em;
            let left = match h {
                HPos::Left => f64::from(x),
                HPos::Center => f64::from(x) - width / 2.0,
                HPos::Right => f64::from(x) - width,
            };
            assert!((tx - left).abs() < 0.002, "{label}: x {tx} against {left}");
            let baseline = f64::from(y)
                + match v {
                    VPos::Top => 0.76 * size,
                    VPos::Center => 0.5 * x_height * size,
                    VPos::Bottom => -0.5 * x_height * size,
                };
            assert!(
                (ty - baseline).abs() < 0.002,
                "{label}: y {ty} against {baseline}"
            );
            assert_eq!(
                r.map(str::to_string),
                rot.then(|| format!("rotate(270, {x}, {y})"))
            );
            // One placed outline per inked character, in order, at the pen
            // positions ab_glyph gives.
            let uses: Vec<_> = g.children().filter(|n| n.has_tag_name("use")).collect();
            let inked: Vec<char> = collapsed.chars().filter(|c| *c != ' ').collect();
            assert_eq!(uses.len(), inked.len(), "{label}");
            let mut uses = uses.into_iter();
            for (i, c) in collapsed.char_indices().filter(|(_, c)| *c != ' ') {
                let u = uses.next().unwrap();
                let href = u.attribute((xlink, "href")).unwrap();
                let id = href.strip_prefix('#').unwrap();
                assert_eq!(id, format!("s1h{}", f.glyph_id(c).0));
                assert!(defs.contains_key(id), "{id}");
                let pen: f64 = u.attribute("x").map_or(0.0, |x| x.parse().unwrap());
                let want = ab_width(&collapsed[..i]);
                let kern = match collapsed[..i].chars().last() {
                    Some(p) => f64::from(f.kern_unscaled(f.glyph_id(p), f.glyph_id(c))),
                    None => 0.0,
                };
                assert!(
                    (pen - (want + kern)).abs() < 0.01,
                    "{label} '{c}': {pen} {want}"
                );
            }
        }

        // Nothing else changed: the other elements, in order, with their
        // attributes.
        let others = |s: &str| -> Vec<String> {
            let d = roxmltree::Document::parse(s).unwrap();
            d.descendants()
                .filter(|n| n.is_element())
                .filter(|n| !matches!(n.tag_name().name(), "text" | "g" | "use" | "defs"))
                .filter(|n| n.attribute("id").is_none())
                .map(|n| {
                    let a: Vec<String> = n
                        .attributes()
                        .filter(|a| a.name() != "xlink")
                        .map(|a| format!("{}={}", a.name(), a.value()))
                        .collect();
                    format!("{} {}", n.tag_name().name(), a.join(" "))
                })
                .collect()
        };
        assert_eq!(others(&out), others(&input));
    }

    #[test]
    fn a_document_without_text_is_left_as_it_was_but_for_the_namespace() {
        let input = "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect x=\"1\" y=\"2\"/></svg>";
        let out = outline_text(input, FONT, "a").unwrap();
        assert_eq!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" \
             xmlns:xlink=\"http://www.w3.org/1999/xlink\"><rect x=\"1\" y=\"2\"/></svg>"
        );
    }

    #[test]
    fn malformed_svg_and_bad_numbers_are_errors_not_panics() {
        for (svg, want) in [
            ("<svg><text x=\"1\">open", "not closed"),
            ("<svg><text x=\"NaN\">a</text></svg>", "x=\"NaN\""),
            ("<svg><text x=\"1\">&bogus;</text></svg>", "unknown entity"),
            ("<svg><text><b>x</b></text></svg>", "unexpected"),
        ] {
            let e = outline_text(svg, FONT, "a").unwrap_err();
            assert!(e.contains(want), "{svg}: {e}");
        }
        assert!(outline_text("<svg/>", b"not a font", "a")
            .unwrap_err()
            .contains("the plot font"));
    }
}
