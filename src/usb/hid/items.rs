//! The item lexer: a report descriptor's bytes → its items.
//!
//! Owns the item encoding of HID 1.11 §6.2.2.2-3: a short item's prefix
//! (data size, type, tag) and its 0, 1, 2 or 4 little-endian data bytes,
//! and long items (0xFE, bDataSize, bLongItemTag, data), which it skips.
//! Each item advances past at least its prefix, so lexing never loops; an
//! item whose data runs past the end is the one error. It gives items no
//! meaning (that is `state`), and depends only on `model` for the error.

use super::model::HidError;

/// The type bits of a short item's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemType {
    Main,
    Global,
    Local,
    /// Type 3, reserved (0xFE, the long item prefix, is taken out first).
    Reserved,
}

/// One short item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ShortItem {
    /// Byte offset of the prefix.
    pub(super) offset: usize,
    pub(super) prefix: u8,
    pub(super) kind: ItemType,
    pub(super) tag: u8,
    /// Data bytes: 0, 1, 2 or 4.
    pub(super) size: usize,
    /// The data, little-endian, zero-extended.
    pub(super) data: u32,
}

/// What the lexer finds next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Item {
    Short(ShortItem),
    /// A long item, skipped (HID 1.11 defines no long item tags).
    Long,
}

/// The items of a report descriptor, in order; after an error, nothing.
pub(super) struct Items<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Items<'a> {
    pub(super) fn new(data: &'a [u8]) -> Items<'a> {
        Items { data, pos: 0 }
    }

    fn fail(&mut self, message: String) -> Option<Result<Item, HidError>> {
        let offset = self.pos;
        self.pos = self.data.len();
        Some(Err(HidError { offset, message }))
    }
}

impl Iterator for Items<'_> {
    type Item = Result<Item, HidError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (data, i) = (self.data, self.pos);
        let &prefix = data.get(i)?;
        if prefix == 0xfe {
            // Long item: 0xFE, bDataSize, bLongItemTag, data.
            if data.len() - i < 3 {
                return self.fail("long item header runs past the end".into());
            }
            let size = data[i + 1] as usize;
            if data.len() - i - 3 < size {
                return self.fail(format!(
                    "long item with {size} data bytes runs past the end"
                ));
            }
            self.pos = i + 3 + size;
            return Some(Ok(Item::Long));
        }
        let size = [0usize, 1, 2, 4][(prefix & 0x03) as usize];
        if data.len() - i - 1 < size {
            return self.fail(format!(
                "item 0x{prefix:02x} needs {size} data byte(s), {} remain",
                data.len() - i - 1
            ));
        }
        let mut v = 0u32;
        for k in (0..size).rev() {
            v = (v << 8) | u32::from(data[i + 1 + k]);
        }
        let kind = match (prefix >> 2) & 0x03 {
            0 => ItemType::Main,
            1 => ItemType::Global,
            2 => ItemType::Local,
            _ => ItemType::Reserved,
        };
        self.pos = i + 1 + size;
        Some(Ok(Item::Short(ShortItem {
            offset: i,
            prefix,
            kind,
            tag: prefix >> 4,
            size,
            data: v,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(data: &[u8]) -> Vec<Result<Item, HidError>> {
        Items::new(data).collect()
    }

    #[test]
    fn short_items_of_each_size() {
        // Usage Page (Telephony), Logical Maximum 0x1234 (2 bytes),
        // Report Count 4 bytes, End Collection (no data).
        let got = lex(&[0x05, 0x0b, 0x26, 0x34, 0x12, 0x97, 1, 2, 3, 4, 0xc0]);
        let items: Vec<ShortItem> = got
            .into_iter()
            .map(|r| match r.unwrap() {
                Item::Short(s) => s,
                Item::Long => panic!("no long item here"),
            })
            .collect();
        let brief: Vec<(usize, ItemType, u8, usize, u32)> = items
            .iter()
            .map(|s| (s.offset, s.kind, s.tag, s.size, s.data))
            .collect();
        assert_eq!(
            brief,
            vec![
                (0, ItemType::Global, 0x0, 1, 0x0b),
                (2, ItemType::Global, 0x2, 2, 0x1234),
                (5, ItemType::Global, 0x9, 4, 0x0403_0201),
                (10, ItemType::Main, 0xc, 0, 0),
            ]
        );
    }

    #[test]
    fn long_items_are_skipped_and_reserved_types_kept() {
        let got = lex(&[0xfe, 2, 0x10, 0xaa, 0xbb, 0x0c]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok(Item::Long));
        match got[1] {
            Ok(Item::Short(s)) => assert_eq!((s.offset, s.kind), (5, ItemType::Reserved)),
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn data_past_the_end_is_the_error_and_ends_the_items() {
        let got = lex(&[0x05, 0x0b, 0x26, 0xff]);
        assert_eq!(got.len(), 2);
        let e = got[1].clone().unwrap_err();
        assert_eq!(e.offset, 2);
        assert_eq!(e.message, "item 0x26 needs 2 data byte(s), 1 remain");
        let e = lex(&[0xfe, 9, 0]).pop().unwrap().unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (0, "long item with 9 data bytes runs past the end")
        );
        let e = lex(&[0x0c, 0xfe, 1]).pop().unwrap().unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (1, "long item header runs past the end")
        );
    }
}
