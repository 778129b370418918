//! The parser's state machine: items → fields and collections.
//!
//! Owns the meaning of the items (HID 1.11 §6.2.2.4-8): the global state
//! (usage page, logical range, report size, id and count) with Push and
//! Pop, the local state (usages, usage ranges, extended usages) that each
//! main item consumes, open collections and the application around a
//! field, and the bit offset of each field per (report kind, report id).
//! Everything odd is a [`HidWarning`]; the number of fields, usages and
//! pushes is capped. It takes items from `items` and must not read bytes
//! itself, nor decode reports (that is `report`).

use super::items::{Item, ItemType, Items, ShortItem};
use super::model::{
    Collection, Field, FieldUsage, HidError, HidWarning, ReportDescriptor, ReportKind, Usage,
    UsageRange,
};

/// Most fields a descriptor may produce; past it fields are dropped with a warning.
pub const MAX_FIELDS: usize = 65_536;
/// Most usage entries (single usages and ranges) one main item may collect.
pub const MAX_LOCAL_USAGES: usize = 4096;
/// Deepest push stack.
pub const MAX_PUSH_DEPTH: usize = 64;

/// The global items in effect (saved and restored by Push and Pop).
#[derive(Debug, Clone, Copy, Default)]
struct Globals {
    usage_page: u16,
    logical_min: i64,
    logical_max_raw: u32,
    logical_max_size: usize,
    report_size: u32,
    report_id: u8,
    report_count: u32,
}

/// A Usage, or a Usage Minimum/Maximum pair; the page when extended.
enum LocalUsage {
    One(Option<u16>, u16),
    Range(Option<u16>, u16, u16),
}

fn sign_extend(v: u32, size: usize) -> i64 {
    match size {
        1 => i64::from(v as u8 as i8),
        2 => i64::from(v as u16 as i16),
        4 => i64::from(v as i32),
        _ => 0,
    }
}

/// Parse a report descriptor. An item whose data runs past the end is an
/// error; everything else odd is a warning.
pub fn parse(data: &[u8]) -> Result<ReportDescriptor, HidError> {
    let mut st = State::default();
    if data.is_empty() {
        st.rd.warnings.push(HidWarning {
            offset: 0,
            message: "empty report descriptor".into(),
        });
    }
    for item in Items::new(data) {
        match item? {
            Item::Long => st.rd.long_items += 1,
            Item::Short(it) => st.item(it),
        }
    }
    Ok(st.finish(data.len()))
}

#[derive(Default)]
struct State {
    rd: ReportDescriptor,
    g: Globals,
    stack: Vec<Globals>,
    locals: Vec<LocalUsage>,
    pending_min: Option<(Option<u16>, u16)>,
    locals_capped: bool,
    fields_capped: bool,
    /// Open collections: for each, the usage of the innermost application
    /// collection at or around it (so a field finds it in O(1)).
    open: Vec<Option<Usage>>,
    /// The next free bit of each (kind, report id).
    offsets: Vec<((ReportKind, u8), u64)>,
    seen_main_without_id: bool,
}

impl State {
    fn warn(&mut self, offset: usize, message: String) {
        self.rd.warnings.push(HidWarning { offset, message });
    }

    fn item(&mut self, it: ShortItem) {
        match it.kind {
            ItemType::Main => self.main(it),
            ItemType::Global => self.global(it),
            ItemType::Local => self.local(it),
            ItemType::Reserved => self.warn(
                it.offset,
                format!("reserved item type 3 (prefix 0x{:02x})", it.prefix),
            ),
        }
    }

    fn main(&mut self, it: ShortItem) {
        let (at, v) = (it.offset, it.data);
        // Resolve local usages against the page in effect now (as Linux
        // does since 5.x: the last Usage Page before the main item).
        let page = self.g.usage_page;
        let ranges: Vec<UsageRange> = self
            .locals
            .iter()
            .map(|l| match *l {
                LocalUsage::One(p, id) => UsageRange {
                    page: p.unwrap_or(page),
                    min: id,
                    max: id,
                },
                LocalUsage::Range(p, a, b) => UsageRange {
                    page: p.unwrap_or(page),
                    min: a,
                    max: b,
                },
            })
            .collect();
        if self.pending_min.take().is_some() {
            self.warn(at, "Usage Minimum without Usage Maximum".into());
        }
        self.locals.clear();
        self.locals_capped = false;
        match it.tag {
            0x8 | 0x9 | 0xb => {
                let kind = match it.tag {
                    0x8 => ReportKind::Input,
                    0x9 => ReportKind::Output,
                    _ => ReportKind::Feature,
                };
                self.fields(at, kind, v, ranges);
            }
            0xa => {
                let usage = ranges.first().map(|r| Usage::new(r.page, r.min));
                self.rd.collections.push(Collection {
                    offset: at,
                    kind: v as u8,
                    usage,
                    depth: self.open.len() as u32,
                });
                let app = if v & 0xff == 1 {
                    usage
                } else {
                    self.open.last().copied().flatten()
                };
                self.open.push(app);
            }
            0xc => {
                if self.open.pop().is_none() {
                    self.warn(at, "End Collection without an open collection".into());
                }
            }
            tag => self.warn(at, format!("reserved main item tag 0x{tag:x}")),
        }
    }

    /// The fields of an Input, Output or Feature item with data `flags`.
    fn fields(&mut self, at: usize, kind: ReportKind, flags: u32, ranges: Vec<UsageRange>) {
        let g = self.g;
        if g.report_id == 0 {
            self.seen_main_without_id = true;
        }
        let logical_min = g.logical_min;
        let mut logical_max = sign_extend(g.logical_max_raw, g.logical_max_size);
        if logical_min >= 0 && logical_max < logical_min {
            // Logical Maximum 0xFF in one byte meant 255.
            logical_max = i64::from(g.logical_max_raw);
        }
        let application = self.open.last().copied().flatten();
        let key = (kind, g.report_id);
        let slot = match self.offsets.iter().position(|(k, _)| *k == key) {
            Some(s) => s,
            None => {
                self.offsets.push((key, 0));
                self.offsets.len() - 1
            }
        };
        let start = self.offsets[slot].1;
        let bits = u64::from(g.report_size) * u64::from(g.report_count);
        self.offsets[slot].1 = start.saturating_add(bits);
        if start.saturating_add(bits) > u64::from(u32::MAX) {
            self.warn(at, "report longer than 2^32 bits: field dropped".into());
            return;
        }
        if g.report_count == 0 || g.report_size == 0 {
            self.warn(
                at,
                format!(
                    "main item with Report Size {} and Report Count {}",
                    g.report_size, g.report_count
                ),
            );
            return;
        }
        let base = Field {
            kind,
            report_id: g.report_id,
            bit_offset: start as u32,
            bit_size: g.report_size,
            count: g.report_count,
            flags,
            logical_min,
            logical_max,
            usage: FieldUsage::None,
            application,
        };
        let mut new_fields = Vec::new();
        if ranges.is_empty() {
            new_fields.push(base);
        } else if flags & 0x02 == 0 {
            new_fields.push(Field {
                usage: FieldUsage::Array(ranges),
                ..base
            });
        } else {
            // Variable: element k takes usage k; the last usage repeats for
            // the elements beyond the list.
            let total: u64 = ranges.iter().map(|r| u64::from(r.len())).sum();
            let n = total.min(u64::from(g.report_count)) as u32;
            let room = MAX_FIELDS.saturating_sub(self.rd.fields.len()) as u32;
            let mut k = 0u32;
            'outer: for r in &ranges {
                for id in r.min..=r.max {
                    if k >= n || k >= room {
                        break 'outer;
                    }
                    let count = if k + 1 == n { g.report_count - k } else { 1 };
                    new_fields.push(Field {
                        bit_offset: base.bit_offset + k * g.report_size,
                        count,
                        usage: FieldUsage::Variable(Usage::new(r.page, id)),
                        ..base.clone()
                    });
                    k += 1;
                }
            }
        }
        for f in new_fields {
            if self.rd.fields.len() >= MAX_FIELDS {
                if !self.fields_capped {
                    self.warn(
                        at,
                        format!("more than {MAX_FIELDS} fields: the rest are dropped"),
                    );
                    self.fields_capped = true;
                }
                break;
            }
            self.rd.fields.push(f);
        }
    }

    fn global(&mut self, it: ShortItem) {
        let (at, v) = (it.offset, it.data);
        match it.tag {
            0x0 => {
                if v > 0xffff {
                    self.warn(at, format!("Usage Page 0x{v:x} does not fit 16 bits"));
                }
                self.g.usage_page = v as u16;
            }
            0x1 => self.g.logical_min = sign_extend(v, it.size),
            0x2 => {
                self.g.logical_max_raw = v;
                self.g.logical_max_size = it.size;
            }
            0x3..=0x6 => {} // physical min/max, unit exponent, unit
            0x7 => self.g.report_size = v,
            0x8 => {
                if v == 0 || v > 0xff {
                    self.warn(at, format!("Report ID {v} is out of range 1..=255"));
                }
                self.g.report_id = v as u8;
                self.rd.uses_report_ids = true;
            }
            0x9 => self.g.report_count = v,
            0xa => {
                if self.stack.len() >= MAX_PUSH_DEPTH {
                    self.warn(at, format!("Push deeper than {MAX_PUSH_DEPTH}: ignored"));
                } else {
                    self.stack.push(self.g);
                }
            }
            0xb => match self.stack.pop() {
                Some(s) => self.g = s,
                None => self.warn(at, "Pop without Push".into()),
            },
            tag => self.warn(at, format!("reserved global item tag 0x{tag:x}")),
        }
    }

    fn local(&mut self, it: ShortItem) {
        let (at, v) = (it.offset, it.data);
        let (page, id) = if it.size == 4 {
            (Some((v >> 16) as u16), v as u16)
        } else {
            (None, v as u16)
        };
        let full = self.locals.len() >= MAX_LOCAL_USAGES;
        match it.tag {
            0x0 | 0x2 if full && !self.locals_capped => {
                self.warn(
                    at,
                    format!("more than {MAX_LOCAL_USAGES} usages for one main item"),
                );
                self.locals_capped = true;
            }
            0x0 | 0x2 if full => {}
            0x0 => self.locals.push(LocalUsage::One(page, id)),
            0x1 => {
                if self.pending_min.is_some() {
                    self.warn(at, "Usage Minimum follows Usage Minimum".into());
                }
                self.pending_min = Some((page, id));
            }
            0x2 => match self.pending_min.take() {
                Some((p0, lo)) => {
                    let p = match (p0, page) {
                        (Some(a), Some(b)) if a != b => {
                            self.warn(at, "usage range spans two usage pages".into());
                            Some(a)
                        }
                        (a, b) => a.or(b),
                    };
                    if lo > id {
                        self.warn(
                            at,
                            format!("Usage Minimum 0x{lo:x} above Usage Maximum 0x{id:x}"),
                        );
                        self.locals.push(LocalUsage::Range(p, id, lo));
                    } else {
                        self.locals.push(LocalUsage::Range(p, lo, id));
                    }
                }
                None => self.warn(at, "Usage Maximum without Usage Minimum".into()),
            },
            _ => {} // designators, strings, delimiters
        }
    }

    /// The descriptor, with the warnings only the end shows.
    fn finish(mut self, len: usize) -> ReportDescriptor {
        if !self.open.is_empty() {
            let n = self.open.len();
            self.warn(len, format!("{n} collection(s) not closed"));
        }
        if self.rd.uses_report_ids && self.seen_main_without_id {
            self.warn(
                0,
                "report ids are used but some items come before the first Report ID".into(),
            );
        }
        self.rd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(data: &[u8]) -> Vec<(usize, String)> {
        parse(data)
            .unwrap()
            .warnings
            .into_iter()
            .map(|w| (w.offset, w.message))
            .collect()
    }

    #[test]
    fn push_and_pop_restore_the_globals() {
        // Report Size 8, Push, Report Size 1, Pop, Report Count 1, Input.
        let rd = parse(&[0x75, 8, 0xa4, 0x75, 1, 0xb4, 0x95, 1, 0x81, 0x02]).unwrap();
        assert_eq!(rd.fields.len(), 1);
        assert_eq!(rd.fields[0].bit_size, 8);
        assert_eq!(warnings(&[0xb4]), vec![(0, "Pop without Push".to_string())]);
    }

    #[test]
    fn locals_are_consumed_by_each_main_item() {
        // Usage Page Telephony, Usage Min 0x20, Usage Max 0x21, size 1,
        // count 2, Input (variable); then Input again without usages.
        let rd = parse(&[
            0x05, 0x0b, 0x19, 0x20, 0x29, 0x21, 0x75, 1, 0x95, 2, 0x81, 0x02, 0x81, 0x02,
        ])
        .unwrap();
        let usages: Vec<(u32, Option<Usage>)> = rd
            .fields
            .iter()
            .map(|f| (f.bit_offset, f.usage()))
            .collect();
        assert_eq!(
            usages,
            vec![
                (0, Some(Usage::new(0x0b, 0x20))),
                (1, Some(Usage::new(0x0b, 0x21))),
                (2, None),
            ]
        );
    }

    #[test]
    fn odd_structure_is_warned_at_its_item() {
        assert_eq!(
            warnings(&[0x19, 0x20, 0x81, 0x02]),
            vec![
                (2, "Usage Minimum without Usage Maximum".to_string()),
                (
                    2,
                    "main item with Report Size 0 and Report Count 0".to_string()
                ),
            ]
        );
        assert_eq!(
            warnings(&[0xa1, 0x01]),
            vec![(2, "1 collection(s) not closed".to_string())]
        );
        assert_eq!(
            warnings(&[0xc0]),
            vec![(0, "End Collection without an open collection".to_string())]
        );
        assert_eq!(
            warnings(&[]),
            vec![(0, "empty report descriptor".to_string())]
        );
    }
}
