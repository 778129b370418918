//! A short UTF-8 string in a fixed buffer, for the protocol's bounded text
//! fields (an Error's message) where no allocator exists.

use core::fmt;

/// At most `N` bytes of UTF-8; writes past the end are cut at a character
/// boundary, never split one.
#[derive(Clone, Copy)]
pub struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    pub const fn new() -> Self {
        Text {
            buf: [0; N],
            len: 0,
        }
    }

    /// `s`, cut to `N` bytes.
    pub fn from_text(s: &str) -> Self {
        let mut t = Self::new();
        t.push_str(s);
        t
    }

    /// The text of `args` (as `format!` would write it), cut to `N` bytes.
    pub fn from_fmt(args: fmt::Arguments<'_>) -> Self {
        let mut t = Self::new();
        let _ = fmt::write(&mut t, args);
        t
    }

    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append as much of `s` as fits, ending on a character boundary.
    pub fn push_str(&mut self, s: &str) {
        let room = N - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> PartialEq for Text<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<const N: usize> Eq for Text<N> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_a_character_boundary() {
        let t = Text::<5>::from_text("abcdé");
        assert_eq!(t.as_str(), "abcd");
        let t = Text::<8>::from_fmt(format_args!("late by {} us", 1200));
        assert_eq!(t.as_str(), "late by ");
    }
}
