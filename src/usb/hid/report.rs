//! Reports: reading usages' values from a report's bytes, and building a
//! report that sets one usage.
//!
//! Owns the bit layout of reports as hidraw gives and takes them (the
//! report id first when ids are used) and the decoding of variable and
//! array fields. It reads the model only: it must not parse report
//! descriptors.

use super::model::{
    Field, FieldUsage, InputValue, ReportDescriptor, ReportKind, Usage, UsageRange,
};

/// Elements of one array field looked at (a keyboard has 6; more is hostile).
const MAX_ARRAY_ELEMENTS: u32 = 64;

impl ReportDescriptor {
    /// The value of `usage` in a report of `kind` (its bytes as read from
    /// hidraw: with the report id first when the descriptor uses ids).
    ///
    /// A variable field gives its first element's value (sign-extended when
    /// the logical minimum is negative); an array field gives 1 when an
    /// element selects the usage and 0 otherwise. `None` when the report is
    /// another report, too short, or does not carry the usage.
    pub fn decode(&self, kind: ReportKind, report: &[u8], usage: Usage) -> Option<i64> {
        let (id, data) = self.split_id(report)?;
        for f in &self.fields {
            if f.kind != kind || f.report_id != id || !f.declares(usage) {
                continue;
            }
            match &f.usage {
                FieldUsage::Variable(_) => return element(f, data, 0),
                FieldUsage::Array(ranges) => {
                    let mut hit = false;
                    for k in 0..f.count {
                        let value = element(f, data, k)?;
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
        let Some((id, data)) = self.split_id(report) else {
            return;
        };
        for f in &self.fields {
            if f.kind != ReportKind::Input || f.report_id != id || f.is_constant() {
                continue;
            }
            match &f.usage {
                FieldUsage::Variable(u) => {
                    if let Some(v) = element(f, data, 0) {
                        out.push(InputValue {
                            usage: *u,
                            value: v,
                            array: false,
                        });
                    }
                }
                FieldUsage::Array(ranges) => {
                    for k in 0..f.count.min(MAX_ARRAY_ELEMENTS) {
                        let Some(v) = element(f, data, k) else { break };
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

    /// A report as hidraw gives it → (report id, its data): the first byte
    /// is the id when the descriptor uses ids (`None` for an empty report),
    /// else the id is 0 and all of it is data.
    fn split_id<'r>(&self, report: &'r [u8]) -> Option<(u8, &'r [u8])> {
        if self.uses_report_ids {
            let (&id, rest) = report.split_first()?;
            Some((id, rest))
        } else {
            Some((0, report))
        }
    }
}

/// Element `k` of field `f` in a report's data: sign-extended when the
/// logical minimum is negative; `None` past the end of `data`.
fn element(f: &Field, data: &[u8], k: u32) -> Option<i64> {
    let off = u64::from(f.bit_offset) + u64::from(k) * u64::from(f.bit_size);
    let raw = extract_bits(data, u32::try_from(off).ok()?, f.bit_size)?;
    Some(if f.logical_min < 0 {
        sign_extend_bits(raw, f.bit_size)
    } else {
        i64::from(raw)
    })
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
    fn bits() {
        assert_eq!(extract_bits(&[0b1010_0000, 0x01], 5, 4), Some(0b1101));
        assert_eq!(extract_bits(&[0xff], 4, 8), None);
        assert_eq!(sign_extend_bits(0b111, 3), -1);
    }
}
