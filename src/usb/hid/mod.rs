//! HID report descriptors → the fields of each report, and report decoding.
//!
//! Owns the parsing of HID 1.11 report descriptors (§6.2.2: short and long
//! items; main, global and local items; push and pop; usage ranges; 32-bit
//! extended usages; report ids; collections) into a list of [`Field`]s with
//! their usage, report kind, report id, bit offset and size, and the
//! decoding of a usage's value from a report's bytes (for hidraw). It also
//! names the telephony usages conferencing devices declare.
//!
//! It never panics and never loops on any input: every item advances the
//! cursor, and the number of fields, usages and pushes is capped. It parses
//! only: no I/O, no judging.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

/// A usage: page and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Usage {
    pub page: u16,
    pub id: u16,
}

impl Usage {
    pub fn new(page: u16, id: u16) -> Usage {
        Usage { page, id }
    }
}

impl fmt::Display for Usage {
    /// `0xPP:0xUU`, lowercase, at least two hex digits each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02x}:0x{:02x}", self.page, self.id)
    }
}

/// Usages `min..=max` of one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UsageRange {
    pub page: u16,
    pub min: u16,
    pub max: u16,
}

impl UsageRange {
    /// Usages in the range (1 for a range written upside down).
    pub fn len(&self) -> u32 {
        u32::from(self.max).saturating_sub(u32::from(self.min)) + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn contains(&self, u: Usage) -> bool {
        u.page == self.page && u.id >= self.min && u.id <= self.max
    }
}

/// Which report a field is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    Input,
    Output,
    Feature,
}

/// What a field's elements mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldUsage {
    /// No usage: padding, or data declared without a usage.
    None,
    /// A variable item: each element carries this usage's value.
    Variable(Usage),
    /// An array item: each element holds the index (from logical minimum)
    /// of an active usage among these ranges, in order.
    Array(Vec<UsageRange>),
}

/// One run of elements of a main item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub kind: ReportKind,
    /// 0 when the descriptor uses no report ids.
    pub report_id: u8,
    /// Offset of the first element in bits from the start of the report
    /// data (after the report id byte, when there is one).
    pub bit_offset: u32,
    /// Bits per element (Report Size).
    pub bit_size: u32,
    /// Elements in this run, each `bit_size` bits, one after the other.
    pub count: u32,
    /// The main item's data: bit 0 constant, 1 variable, 2 relative, ...
    pub flags: u32,
    pub logical_min: i64,
    pub logical_max: i64,
    pub usage: FieldUsage,
    /// The usage of the innermost application collection around it.
    pub application: Option<Usage>,
}

impl Field {
    pub fn is_constant(&self) -> bool {
        self.flags & 0x01 != 0
    }
    pub fn is_variable(&self) -> bool {
        self.flags & 0x02 != 0
    }
    pub fn is_relative(&self) -> bool {
        self.flags & 0x04 != 0
    }
    /// The usage page and id of a variable field.
    pub fn usage(&self) -> Option<Usage> {
        match &self.usage {
            FieldUsage::Variable(u) => Some(*u),
            _ => None,
        }
    }
    fn declares(&self, u: Usage) -> bool {
        match &self.usage {
            FieldUsage::None => false,
            FieldUsage::Variable(v) => *v == u,
            FieldUsage::Array(r) => r.iter().any(|r| r.contains(u)),
        }
    }
}

/// A collection (main item 0xA0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collection {
    /// Byte offset of the item.
    pub offset: usize,
    /// 0 physical, 1 application, 2 logical, 3 report, ...
    pub kind: u8,
    pub usage: Option<Usage>,
    /// Nesting depth, 0 for a top-level collection.
    pub depth: u32,
}

/// A recoverable oddity in a report descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HidWarning {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for HidWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

/// A report descriptor that cannot be read on: an item runs past the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HidError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for HidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for HidError {}

/// One value of an input report (see [`ReportDescriptor::input_values`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputValue {
    pub usage: Usage,
    pub value: i64,
    /// From an array field: the usage is active (value 1) in this report.
    pub array: bool,
}

/// Elements of one array field looked at (a keyboard has 6; more is hostile).
const MAX_ARRAY_ELEMENTS: u32 = 64;

/// A parsed report descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ReportDescriptor {
    pub fields: Vec<Field>,
    pub collections: Vec<Collection>,
    /// Whether report ids are used (every report then starts with its id).
    pub uses_report_ids: bool,
    /// Long items seen (HID 1.11 defines no long item tags; they are skipped).
    pub long_items: usize,
    pub warnings: Vec<HidWarning>,
}

/// Named usages conferencing devices declare: (page, id, name).
pub const NAMED_USAGES: [(u16, u16, &str); 11] = [
    (0x0b, 0x20, "hook-switch"),
    (0x0b, 0x21, "flash"),
    (0x0b, 0x24, "redial"),
    (0x0b, 0x2b, "speakerphone"),
    (0x0b, 0x2f, "phone-mute"),
    (0x0b, 0x97, "line-busy-tone"),
    (0x08, 0x09, "led-mute"),
    (0x08, 0x17, "led-off-hook"),
    (0x08, 0x18, "led-ring"),
    (0x08, 0x20, "led-hold"),
    (0x08, 0x21, "led-microphone"),
];

/// The name of a named telephony or LED usage.
pub fn usage_name(u: Usage) -> Option<&'static str> {
    NAMED_USAGES
        .iter()
        .find(|(p, i, _)| *p == u.page && *i == u.id)
        .map(|(_, _, n)| *n)
}

/// Most fields a descriptor may produce; past it fields are dropped with a warning.
pub const MAX_FIELDS: usize = 65_536;
/// Most usage entries (single usages and ranges) one main item may collect.
pub const MAX_LOCAL_USAGES: usize = 4096;
/// Deepest push stack.
pub const MAX_PUSH_DEPTH: usize = 64;
/// Most usages [`ReportDescriptor::usages`] lists.
pub const MAX_SUMMARY_USAGES: usize = 65_536;
/// Most array usages [`ReportDescriptor::usage_set`] looks at.
pub const MAX_SUMMARY_WORK: usize = 1 << 20;

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
    let mut rd = ReportDescriptor::default();
    let mut g = Globals::default();
    let mut stack: Vec<Globals> = Vec::new();
    let mut locals: Vec<LocalUsage> = Vec::new();
    let mut pending_min: Option<(Option<u16>, u16)> = None;
    let mut locals_capped = false;
    let mut fields_capped = false;
    // Open collections: for each, the usage of the innermost application
    // collection at or around it (so a field finds it in O(1)).
    let mut open: Vec<Option<Usage>> = Vec::new();
    let mut offsets: Vec<((ReportKind, u8), u64)> = Vec::new();
    let mut seen_main_without_id = false;
    if data.is_empty() {
        rd.warnings.push(HidWarning {
            offset: 0,
            message: "empty report descriptor".into(),
        });
    }

    let mut i = 0usize;
    while i < data.len() {
        let prefix = data[i];
        if prefix == 0xfe {
            // Long item: 0xFE, bDataSize, bLongItemTag, data.
            if data.len() - i < 3 {
                return Err(HidError {
                    offset: i,
                    message: "long item header runs past the end".into(),
                });
            }
            let size = data[i + 1] as usize;
            if data.len() - i - 3 < size {
                return Err(HidError {
                    offset: i,
                    message: format!("long item with {size} data bytes runs past the end"),
                });
            }
            rd.long_items += 1;
            i += 3 + size;
            continue;
        }
        let size = [0usize, 1, 2, 4][(prefix & 0x03) as usize];
        if data.len() - i - 1 < size {
            return Err(HidError {
                offset: i,
                message: format!(
                    "item 0x{prefix:02x} needs {size} data byte(s), {} remain",
                    data.len() - i - 1
                ),
            });
        }
        let mut v = 0u32;
        for k in (0..size).rev() {
            v = (v << 8) | u32::from(data[i + 1 + k]);
        }
        let item_type = (prefix >> 2) & 0x03;
        let tag = prefix >> 4;
        let at = i;
        i += 1 + size;
        let warn = |rd: &mut ReportDescriptor, message: String| {
            rd.warnings.push(HidWarning {
                offset: at,
                message,
            })
        };
        match item_type {
            // Main.
            0 => {
                // Resolve local usages against the page in effect now (as
                // Linux does since 5.x: the last Usage Page before the main item).
                let ranges: Vec<UsageRange> = locals
                    .iter()
                    .map(|l| match *l {
                        LocalUsage::One(p, id) => UsageRange {
                            page: p.unwrap_or(g.usage_page),
                            min: id,
                            max: id,
                        },
                        LocalUsage::Range(p, a, b) => UsageRange {
                            page: p.unwrap_or(g.usage_page),
                            min: a,
                            max: b,
                        },
                    })
                    .collect();
                if pending_min.take().is_some() {
                    warn(&mut rd, "Usage Minimum without Usage Maximum".into());
                }
                locals.clear();
                locals_capped = false;
                match tag {
                    0x8 | 0x9 | 0xb => {
                        let kind = match tag {
                            0x8 => ReportKind::Input,
                            0x9 => ReportKind::Output,
                            _ => ReportKind::Feature,
                        };
                        if g.report_id == 0 {
                            seen_main_without_id = true;
                        }
                        let logical_min = g.logical_min;
                        let mut logical_max = sign_extend(g.logical_max_raw, g.logical_max_size);
                        if logical_min >= 0 && logical_max < logical_min {
                            // Logical Maximum 0xFF in one byte meant 255.
                            logical_max = i64::from(g.logical_max_raw);
                        }
                        let application = open.last().copied().flatten();
                        let key = (kind, g.report_id);
                        let slot = match offsets.iter().position(|(k, _)| *k == key) {
                            Some(s) => s,
                            None => {
                                offsets.push((key, 0));
                                offsets.len() - 1
                            }
                        };
                        let start = offsets[slot].1;
                        let bits = u64::from(g.report_size) * u64::from(g.report_count);
                        offsets[slot].1 = start.saturating_add(bits);
                        if start.saturating_add(bits) > u64::from(u32::MAX) {
                            warn(
                                &mut rd,
                                "report longer than 2^32 bits: field dropped".into(),
                            );
                            continue;
                        }
                        if g.report_count == 0 || g.report_size == 0 {
                            warn(
                                &mut rd,
                                format!(
                                    "main item with Report Size {} and Report Count {}",
                                    g.report_size, g.report_count
                                ),
                            );
                            continue;
                        }
                        let base = Field {
                            kind,
                            report_id: g.report_id,
                            bit_offset: start as u32,
                            bit_size: g.report_size,
                            count: g.report_count,
                            flags: v,
                            logical_min,
                            logical_max,
                            usage: FieldUsage::None,
                            application,
                        };
                        let mut new_fields = Vec::new();
                        if ranges.is_empty() {
                            new_fields.push(base);
                        } else if v & 0x02 == 0 {
                            new_fields.push(Field {
                                usage: FieldUsage::Array(ranges),
                                ..base
                            });
                        } else {
                            // Variable: element k takes usage k; the last usage
                            // repeats for the elements beyond the list.
                            let total: u64 = ranges.iter().map(|r| u64::from(r.len())).sum();
                            let n = total.min(u64::from(g.report_count)) as u32;
                            let room = MAX_FIELDS.saturating_sub(rd.fields.len()) as u32;
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
                            if rd.fields.len() >= MAX_FIELDS {
                                if !fields_capped {
                                    warn(
                                        &mut rd,
                                        format!(
                                            "more than {MAX_FIELDS} fields: the rest are dropped"
                                        ),
                                    );
                                    fields_capped = true;
                                }
                                break;
                            }
                            rd.fields.push(f);
                        }
                    }
                    0xa => {
                        let usage = ranges.first().map(|r| Usage::new(r.page, r.min));
                        rd.collections.push(Collection {
                            offset: at,
                            kind: v as u8,
                            usage,
                            depth: open.len() as u32,
                        });
                        let app = if v & 0xff == 1 {
                            usage
                        } else {
                            open.last().copied().flatten()
                        };
                        open.push(app);
                    }
                    0xc => {
                        if open.pop().is_none() {
                            warn(&mut rd, "End Collection without an open collection".into());
                        }
                    }
                    _ => warn(&mut rd, format!("reserved main item tag 0x{tag:x}")),
                }
            }
            // Global.
            1 => match tag {
                0x0 => {
                    if v > 0xffff {
                        warn(&mut rd, format!("Usage Page 0x{v:x} does not fit 16 bits"));
                    }
                    g.usage_page = v as u16;
                }
                0x1 => g.logical_min = sign_extend(v, size),
                0x2 => {
                    g.logical_max_raw = v;
                    g.logical_max_size = size;
                }
                0x3..=0x6 => {} // physical min/max, unit exponent, unit
                0x7 => g.report_size = v,
                0x8 => {
                    if v == 0 || v > 0xff {
                        warn(&mut rd, format!("Report ID {v} is out of range 1..=255"));
                    }
                    g.report_id = v as u8;
                    rd.uses_report_ids = true;
                }
                0x9 => g.report_count = v,
                0xa => {
                    if stack.len() >= MAX_PUSH_DEPTH {
                        warn(
                            &mut rd,
                            format!("Push deeper than {MAX_PUSH_DEPTH}: ignored"),
                        );
                    } else {
                        stack.push(g);
                    }
                }
                0xb => match stack.pop() {
                    Some(s) => g = s,
                    None => warn(&mut rd, "Pop without Push".into()),
                },
                _ => warn(&mut rd, format!("reserved global item tag 0x{tag:x}")),
            },
            // Local.
            2 => {
                let (page, id) = if size == 4 {
                    (Some((v >> 16) as u16), v as u16)
                } else {
                    (None, v as u16)
                };
                match tag {
                    0x0 | 0x2 if locals.len() >= MAX_LOCAL_USAGES && !locals_capped => {
                        warn(
                            &mut rd,
                            format!("more than {MAX_LOCAL_USAGES} usages for one main item"),
                        );
                        locals_capped = true;
                    }
                    0x0 | 0x2 if locals.len() >= MAX_LOCAL_USAGES => {}
                    0x0 => locals.push(LocalUsage::One(page, id)),
                    0x1 => {
                        if pending_min.is_some() {
                            warn(&mut rd, "Usage Minimum follows Usage Minimum".into());
                        }
                        pending_min = Some((page, id));
                    }
                    0x2 => match pending_min.take() {
                        Some((p0, lo)) => {
                            let p = match (p0, page) {
                                (Some(a), Some(b)) if a != b => {
                                    warn(&mut rd, "usage range spans two usage pages".into());
                                    Some(a)
                                }
                                (a, b) => a.or(b),
                            };
                            if lo > id {
                                warn(
                                    &mut rd,
                                    format!("Usage Minimum 0x{lo:x} above Usage Maximum 0x{id:x}"),
                                );
                                locals.push(LocalUsage::Range(p, id, lo));
                            } else {
                                locals.push(LocalUsage::Range(p, lo, id));
                            }
                        }
                        None => warn(&mut rd, "Usage Maximum without Usage Minimum".into()),
                    },
                    _ => {} // designators, strings, delimiters
                }
            }
            _ => warn(
                &mut rd,
                format!("reserved item type 3 (prefix 0x{prefix:02x})"),
            ),
        }
    }
    if !open.is_empty() {
        rd.warnings.push(HidWarning {
            offset: data.len(),
            message: format!("{} collection(s) not closed", open.len()),
        });
    }
    if rd.uses_report_ids && seen_main_without_id {
        rd.warnings.push(HidWarning {
            offset: 0,
            message: "report ids are used but some items come before the first Report ID".into(),
        });
    }
    Ok(rd)
}

impl ReportDescriptor {
    /// Whether a field or collection declares the usage (ranges included).
    pub fn has_usage(&self, u: Usage) -> bool {
        self.fields.iter().any(|f| f.declares(u))
            || self.collections.iter().any(|c| c.usage == Some(u))
    }

    /// Every usage declared by a field or a collection, sorted, without
    /// duplicates (at most [`MAX_SUMMARY_USAGES`]; array ranges stop being
    /// expanded after [`MAX_SUMMARY_WORK`] candidates, so that hostile
    /// descriptors of many huge ranges stay cheap).
    pub fn usage_set(&self) -> BTreeSet<Usage> {
        let mut set = BTreeSet::new();
        let mut work = 0usize;
        for c in &self.collections {
            if let Some(u) = c.usage {
                set.insert(u);
            }
        }
        'f: for f in &self.fields {
            match &f.usage {
                FieldUsage::None => {}
                FieldUsage::Variable(u) => {
                    set.insert(*u);
                }
                FieldUsage::Array(ranges) => {
                    for r in ranges {
                        for id in r.min..=r.max {
                            work += 1;
                            if set.len() >= MAX_SUMMARY_USAGES || work > MAX_SUMMARY_WORK {
                                break 'f;
                            }
                            set.insert(Usage::new(r.page, id));
                        }
                    }
                }
            }
        }
        set
    }

    /// [`Self::usage_set`] as `"0xPP:0xUU"` strings.
    pub fn usages(&self) -> Vec<String> {
        self.usage_set().iter().map(|u| u.to_string()).collect()
    }

    /// The named telephony and LED usages declared, in [`NAMED_USAGES`] order.
    pub fn named_usages(&self) -> Vec<&'static str> {
        NAMED_USAGES
            .iter()
            .filter(|(p, i, _)| self.has_usage(Usage::new(*p, *i)))
            .map(|(_, _, n)| *n)
            .collect()
    }

    /// The value of `usage` in a report of `kind` (its bytes as read from
    /// hidraw: with the report id first when the descriptor uses ids).
    ///
    /// A variable field gives its first element's value (sign-extended when
    /// the logical minimum is negative); an array field gives 1 when an
    /// element selects the usage and 0 otherwise. `None` when the report is
    /// another report, too short, or does not carry the usage.
    pub fn decode(&self, kind: ReportKind, report: &[u8], usage: Usage) -> Option<i64> {
        let (id, data) = if self.uses_report_ids {
            let (&id, rest) = report.split_first()?;
            (id, rest)
        } else {
            (0, report)
        };
        for f in &self.fields {
            if f.kind != kind || f.report_id != id || !f.declares(usage) {
                continue;
            }
            match &f.usage {
                FieldUsage::Variable(_) => {
                    let raw = extract_bits(data, f.bit_offset, f.bit_size)?;
                    return Some(if f.logical_min < 0 {
                        sign_extend_bits(raw, f.bit_size)
                    } else {
                        i64::from(raw)
                    });
                }
                FieldUsage::Array(ranges) => {
                    let mut hit = false;
                    for k in 0..f.count {
                        let off = u64::from(f.bit_offset) + u64::from(k) * u64::from(f.bit_size);
                        let off = u32::try_from(off).ok()?;
                        let raw = extract_bits(data, off, f.bit_size)?;
                        let value = if f.logical_min < 0 {
                            sign_extend_bits(raw, f.bit_size)
                        } else {
                            i64::from(raw)
                        };
                        if array_usage(ranges, value - f.logical_min) == Some(usage) {
                            hit = true;
                        }
                    }
                    return Some(i64::from(hit));
                }
                FieldUsage::None => {}
            }
        }
        None
    }

    /// A whole report of `kind` that sets `usage` to `value` and every other
    /// field to zero, as the device sends or takes it: the report id first
    /// only when the descriptor uses ids (hidraw's write() wants a 0 there
    /// otherwise; its adapter adds it). `None` when no variable field of that
    /// kind carries the usage, or the value does not fit its field.
    pub fn encode(&self, kind: ReportKind, usage: Usage, value: i64) -> Option<Vec<u8>> {
        let f = self
            .fields
            .iter()
            .find(|f| f.kind == kind && f.usage() == Some(usage))?;
        if value < f.logical_min || value > f.logical_max || f.bit_size == 0 || f.bit_size > 32 {
            return None;
        }
        // The report's length: the furthest bit any field of it reaches.
        let bits = self
            .fields
            .iter()
            .filter(|g| g.kind == kind && g.report_id == f.report_id)
            .map(|g| u64::from(g.bit_offset) + u64::from(g.bit_size) * u64::from(g.count))
            .max()?;
        let len = usize::try_from(bits.div_ceil(8)).ok()?;
        if len > 4096 {
            return None;
        }
        let mut data = vec![0u8; len];
        let raw = (value as u64) & ((1u64 << f.bit_size) - 1);
        for k in 0..f.bit_size {
            if (raw >> k) & 1 != 0 {
                let bit = f.bit_offset as usize + k as usize;
                data[bit / 8] |= 1 << (bit % 8);
            }
        }
        if self.uses_report_ids {
            data.insert(0, f.report_id);
        }
        Some(data)
    }

    /// Every input value a report carries: a variable field's element as
    /// (usage, value), an array field's active element as (usage, 1) with
    /// `array` set. `out` is cleared first; it does not grow past the
    /// capacity [`Self::input_capacity`] gives, so a reader that reserves
    /// that much allocates nothing per report.
    pub fn input_values(&self, report: &[u8], out: &mut Vec<InputValue>) {
        out.clear();
        let (id, data) = if self.uses_report_ids {
            match report.split_first() {
                Some((&id, rest)) => (id, rest),
                None => return,
            }
        } else {
            (0, report)
        };
        for f in &self.fields {
            if f.kind != ReportKind::Input || f.report_id != id || f.is_constant() {
                continue;
            }
            let value_at = |k: u32| -> Option<i64> {
                let off = u64::from(f.bit_offset) + u64::from(k) * u64::from(f.bit_size);
                let raw = extract_bits(data, u32::try_from(off).ok()?, f.bit_size)?;
                Some(if f.logical_min < 0 {
                    sign_extend_bits(raw, f.bit_size)
                } else {
                    i64::from(raw)
                })
            };
            match &f.usage {
                FieldUsage::Variable(u) => {
                    if let Some(v) = value_at(0) {
                        out.push(InputValue {
                            usage: *u,
                            value: v,
                            array: false,
                        });
                    }
                }
                FieldUsage::Array(ranges) => {
                    for k in 0..f.count.min(MAX_ARRAY_ELEMENTS) {
                        let Some(v) = value_at(k) else { break };
                        if let Some(u) = array_usage(ranges, v - f.logical_min) {
                            out.push(InputValue {
                                usage: u,
                                value: 1,
                                array: true,
                            });
                        }
                    }
                }
                FieldUsage::None => {}
            }
        }
    }

    /// How many values [`Self::input_values`] can give for one report.
    pub fn input_capacity(&self) -> usize {
        self.fields
            .iter()
            .filter(|f| f.kind == ReportKind::Input)
            .map(|f| match f.usage {
                FieldUsage::Array(_) => f.count.min(MAX_ARRAY_ELEMENTS) as usize,
                _ => 1,
            })
            .sum()
    }

    /// [`Self::decode`] of an input report.
    pub fn decode_input(&self, report: &[u8], page: u16, id: u16) -> Option<i64> {
        self.decode(ReportKind::Input, report, Usage::new(page, id))
    }
}

/// The usage an array element's index selects.
fn array_usage(ranges: &[UsageRange], index: i64) -> Option<Usage> {
    if index < 0 {
        return None;
    }
    let mut index = index as u64;
    for r in ranges {
        let n = u64::from(r.len());
        if index < n {
            return Some(Usage::new(r.page, r.min + index as u16));
        }
        index -= n;
    }
    None
}

/// Little-endian bit field of 1..=32 bits; `None` past the end of `data`.
pub fn extract_bits(data: &[u8], bit_offset: u32, bit_size: u32) -> Option<u32> {
    if bit_size == 0 || bit_size > 32 {
        return None;
    }
    let end = u64::from(bit_offset) + u64::from(bit_size);
    if end > data.len() as u64 * 8 {
        return None;
    }
    let mut v = 0u32;
    for k in 0..bit_size {
        let bit = bit_offset as usize + k as usize;
        let byte = *data.get(bit / 8)?;
        if (byte >> (bit % 8)) & 1 != 0 {
            v |= 1 << k;
        }
    }
    Some(v)
}

fn sign_extend_bits(v: u32, bits: u32) -> i64 {
    if bits == 0 || bits >= 32 {
        return i64::from(v as i32);
    }
    if v & (1 << (bits - 1)) != 0 {
        i64::from(v) - (1i64 << bits)
    } else {
        i64::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_strings() {
        assert_eq!(Usage::new(0x0b, 0x20).to_string(), "0x0b:0x20");
        assert_eq!(Usage::new(0xff00, 0x1).to_string(), "0xff00:0x01");
    }

    #[test]
    fn bits() {
        assert_eq!(extract_bits(&[0b1010_0000, 0x01], 5, 4), Some(0b1101));
        assert_eq!(extract_bits(&[0xff], 4, 8), None);
        assert_eq!(sign_extend_bits(0b111, 3), -1);
    }

    /// Hook Switch and Phone Mute in (report 1), Mute / Off-Hook / Ring
    /// LEDs out (report 2), and a keypad array in (report 3).
    const PHONE: &[u8] = &[
        0x05, 0x0b, 0x09, 0x01, 0xa1, 0x01, // Telephony: Phone, application
        0x85, 0x01, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x01, // id 1, 0..1, 1 bit
        0x09, 0x20, 0x81, 0x22, // Hook Switch, input
        0x09, 0x2f, 0x81, 0x06, // Phone Mute, input (relative)
        0x95, 0x06, 0x81, 0x03, // padding
        0x85, 0x02, 0x05, 0x08, 0x09, 0x09, 0x09, 0x17, 0x09, 0x18, // id 2, LEDs
        0x95, 0x03, 0x91, 0x22, 0x95, 0x05, 0x91, 0x03, // output, padding
        0x85, 0x03, 0x05, 0x0b, 0x19, 0xb0, 0x29, 0xbb, // id 3, Phone Key 0..11
        0x15, 0x00, 0x25, 0x0b, 0x75, 0x08, 0x95, 0x02, 0x81, 0x00, // array of 2
        0xc0,
    ];

    #[test]
    fn output_reports_are_encoded_and_input_values_read_back() {
        let rd = parse(PHONE).unwrap();
        // Off-Hook LED on: report 2, bit 1.
        let r = rd
            .encode(ReportKind::Output, Usage::new(0x08, 0x17), 1)
            .unwrap();
        assert_eq!(r, vec![0x02, 0b0000_0010]);
        assert_eq!(
            rd.decode(ReportKind::Output, &r, Usage::new(0x08, 0x17)),
            Some(1)
        );
        assert_eq!(
            rd.decode(ReportKind::Output, &r, Usage::new(0x08, 0x09)),
            Some(0)
        );
        // Out of the field's range, or a usage no output declares.
        assert!(rd
            .encode(ReportKind::Output, Usage::new(0x08, 0x17), 2)
            .is_none());
        assert!(rd
            .encode(ReportKind::Output, Usage::new(0x0b, 0x20), 1)
            .is_none());

        let mut out = Vec::with_capacity(rd.input_capacity());
        let cap = out.capacity();
        rd.input_values(&[0x01, 0b01], &mut out);
        let hook = Usage::new(0x0b, 0x20);
        let mute = Usage::new(0x0b, 0x2f);
        assert_eq!(
            out,
            vec![
                InputValue {
                    usage: hook,
                    value: 1,
                    array: false
                },
                InputValue {
                    usage: mute,
                    value: 0,
                    array: false
                },
            ]
        );
        // Keys 3 and 0 held: an array of Phone Key usages (0xb0 + index).
        rd.input_values(&[0x03, 3, 0], &mut out);
        assert_eq!(
            out.iter()
                .map(|v| (v.usage.id, v.array))
                .collect::<Vec<_>>(),
            vec![(0xb3, true), (0xb0, true)]
        );
        assert_eq!(out.capacity(), cap, "no growth past input_capacity");
        // Another report id, or a short report: nothing.
        rd.input_values(&[0x07, 1], &mut out);
        assert!(out.is_empty());
        rd.input_values(&[], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn truncated_item() {
        let e = parse(&[0x05, 0x0b, 0x26, 0xff]).unwrap_err();
        assert_eq!(e.offset, 2);
    }
}
