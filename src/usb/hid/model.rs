//! The model of a parsed HID report descriptor, and what it declares.
//!
//! Owns the types the parser fills in — [`ReportDescriptor`] with its
//! [`Field`]s and [`Collection`]s, [`Usage`]s and usage ranges, the errors
//! and warnings — the named telephony and LED usages, and the usage
//! summaries (which usages a descriptor declares, capped so that hostile
//! descriptors stay cheap). It parses nothing (that is `items` and `state`)
//! and reads no reports (that is `report`); it depends on no other part of
//! `usb::hid`.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::usb::at_byte::AtByte;

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
    pub(super) fn declares(&self, u: Usage) -> bool {
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
pub type HidWarning = AtByte;

/// A report descriptor that cannot be read on: an item runs past the end.
pub type HidError = AtByte;

/// One value of an input report (see [`ReportDescriptor::input_values`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputValue {
    pub usage: Usage,
    pub value: i64,
    /// From an array field: the usage is active (value 1) in this report.
    pub array: bool,
}

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

/// Most usages [`ReportDescriptor::usages`] lists.
pub const MAX_SUMMARY_USAGES: usize = 65_536;
/// Most array usages [`ReportDescriptor::usage_set`] looks at.
pub const MAX_SUMMARY_WORK: usize = 1 << 20;

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
}
