//! The rig's stimulus memory: uploaded stimuli assembled from `StimulusData`
//! chunks into memory the rig lends it, without an allocator.
//!
//! A chunk at offset 0 (re)starts a stimulus and reserves its whole length;
//! every other chunk must continue it exactly. When a new stimulus does not
//! fit, the least recently used complete stimuli are forgotten to make room
//! (a later Play of one is refused as *unknown stimulus*, and the host
//! uploads it again); only a stimulus larger than the whole memory is
//! *buffer full*.

use crate::codec::{ErrorCode, Samples};

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    used: bool,
    id: u16,
    start: usize,
    total: usize,
    filled: usize,
    /// Larger is more recent.
    last_use: u32,
}

/// Stimuli in `mem`, at most `SLOTS` of them at once.
#[derive(Debug)]
pub struct StimulusStore<'m, const SLOTS: usize = 16> {
    mem: &'m mut [i16],
    slots: [Slot; SLOTS],
    clock: u32,
    evicted: u32,
}

impl<'m, const SLOTS: usize> StimulusStore<'m, SLOTS> {
    /// A store over `mem`: its length is the capacity in samples.
    pub fn new(mem: &'m mut [i16]) -> Self {
        StimulusStore {
            mem,
            slots: [Slot::default(); SLOTS],
            clock: 0,
            evicted: 0,
        }
    }

    /// Capacity in samples (what a HelloReply announces).
    pub fn capacity(&self) -> u32 {
        self.mem.len().min(u32::MAX as usize) as u32
    }

    /// Stimuli forgotten to make room so far.
    pub fn evicted(&self) -> u32 {
        self.evicted
    }

    /// Forget every stimulus (a reboot).
    pub fn clear(&mut self) {
        self.slots = [Slot::default(); SLOTS];
    }

    fn tick(&mut self) -> u32 {
        self.clock = self.clock.wrapping_add(1);
        self.clock
    }

    /// Take one chunk of stimulus `id`.
    pub fn chunk(
        &mut self,
        id: u16,
        total: u32,
        offset: u32,
        samples: &Samples<'_>,
    ) -> Result<(), ErrorCode> {
        let (total, offset) = (total as usize, offset as usize);
        if offset == 0 {
            if let Some(s) = self.slots.iter_mut().find(|s| s.used && s.id == id) {
                s.used = false;
            }
            if total > self.mem.len() {
                return Err(ErrorCode::BufferFull);
            }
            let start = self.reserve(total)?;
            let now = self.tick();
            let slot = self
                .slots
                .iter_mut()
                .find(|s| !s.used)
                .ok_or(ErrorCode::BufferFull)?;
            *slot = Slot {
                used: true,
                id,
                start,
                total,
                filled: 0,
                last_use: now,
            };
        }
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.used && s.id == id)
            .ok_or(ErrorCode::UnknownStimulus)?;
        if slot.total != total || offset != slot.filled || slot.filled + samples.len() > total {
            return Err(ErrorCode::BadParameter);
        }
        let at = slot.start + slot.filled;
        samples.copy_to(&mut self.mem[at..at + samples.len()]);
        slot.filled += samples.len();
        Ok(())
    }

    /// Room for `total` samples, forgetting the least recently used
    /// stimuli if need be; the start of the region. Needs a free slot too.
    fn reserve(&mut self, total: usize) -> Result<usize, ErrorCode> {
        loop {
            if self.slots.iter().any(|s| !s.used) {
                if let Some(start) = self.gap(total) {
                    return Ok(start);
                }
                let used: usize = self.slots.iter().filter(|s| s.used).map(|s| s.total).sum();
                if self.mem.len() - used >= total {
                    self.compact();
                    continue;
                }
            }
            // Forget the least recently used stimulus and try again.
            let Some(victim) = self
                .slots
                .iter_mut()
                .filter(|s| s.used)
                .min_by_key(|s| s.last_use)
            else {
                return Err(ErrorCode::BufferFull);
            };
            victim.used = false;
            self.evicted = self.evicted.wrapping_add(1);
        }
    }

    /// The first free region of `total` samples between the used ones.
    fn gap(&self, total: usize) -> Option<usize> {
        let mut at = 0;
        loop {
            let next = self
                .slots
                .iter()
                .filter(|s| s.used && s.start + s.total > at)
                .min_by_key(|s| s.start);
            match next {
                Some(s) if s.start < at + total => at = s.start + s.total,
                _ => return (at + total <= self.mem.len()).then_some(at),
            }
        }
    }

    /// Move every stimulus to the front of memory, in order, closing the gaps.
    fn compact(&mut self) {
        let mut order: [usize; SLOTS] = core::array::from_fn(|i| i);
        order.sort_unstable_by_key(|&i| (!self.slots[i].used, self.slots[i].start));
        let mut at = 0;
        for &i in &order {
            let s = self.slots[i];
            if !s.used {
                break;
            }
            self.mem.copy_within(s.start..s.start + s.total, at);
            self.slots[i].start = at;
            at += s.total;
        }
    }

    /// Complete stimulus `id` for playing (marks it recently used). `Err`
    /// says why it cannot be played: unknown, or still being uploaded.
    pub fn play(&mut self, id: u16) -> Result<&[i16], ErrorCode> {
        let now = self.tick();
        let s = self
            .slots
            .iter_mut()
            .find(|s| s.used && s.id == id)
            .ok_or(ErrorCode::UnknownStimulus)?;
        if s.filled != s.total {
            return Err(ErrorCode::BadParameter);
        }
        s.last_use = now;
        let (a, n) = (s.start, s.total);
        Ok(&self.mem[a..a + n])
    }

    /// Complete stimulus `id`, without touching its recency.
    pub fn get(&self, id: u16) -> Option<&[i16]> {
        self.slots
            .iter()
            .find(|s| s.used && s.id == id && s.filled == s.total)
            .map(|s| &self.mem[s.start..s.start + s.total])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::stimulus_chunks;
    use crate::codec::Message;

    fn upload<const S: usize>(st: &mut StimulusStore<'_, S>, id: u16, pcm: &[i16]) {
        for c in stimulus_chunks(id, pcm) {
            let Message::StimulusData {
                id,
                total,
                offset,
                samples,
            } = c
            else {
                unreachable!()
            };
            st.chunk(id, total, offset, &samples).unwrap();
        }
    }

    #[test]
    fn chunks_reassemble_and_a_gap_or_overrun_is_refused() {
        let mut mem = [0i16; 4096];
        let mut st: StimulusStore<'_> = StimulusStore::new(&mut mem);
        let pcm: [i16; 1000] = core::array::from_fn(|i| (i * 31) as i16);
        upload(&mut st, 3, &pcm);
        assert_eq!(st.get(3), Some(&pcm[..]));
        assert_eq!(
            st.chunk(4, 5000, 0, &Samples::Pcm(&[])),
            Err(ErrorCode::BufferFull)
        );
        assert_eq!(
            st.chunk(3, 1000, 7, &Samples::Pcm(&[1])),
            Err(ErrorCode::BadParameter)
        );
        assert_eq!(
            st.chunk(8, 10, 4, &Samples::Pcm(&[1])),
            Err(ErrorCode::UnknownStimulus)
        );
        // Play of a half-uploaded stimulus.
        st.chunk(5, 10, 0, &Samples::Pcm(&[1, 2])).unwrap();
        assert_eq!(st.play(5), Err(ErrorCode::BadParameter));
        assert_eq!(st.play(6), Err(ErrorCode::UnknownStimulus));
    }

    #[test]
    fn the_least_recently_played_stimulus_makes_room() {
        let mut mem = [0i16; 3000];
        let mut st: StimulusStore<'_, 4> = StimulusStore::new(&mut mem);
        let a = [1i16; 1000];
        let b = [2i16; 1000];
        let c = [3i16; 1000];
        upload(&mut st, 1, &a);
        upload(&mut st, 2, &b);
        upload(&mut st, 3, &c);
        st.play(1).unwrap(); // 2 is now the least recently used
        let d = [4i16; 1500];
        upload(&mut st, 4, &d);
        assert_eq!(st.get(2), None);
        assert_eq!(st.evicted(), 2, "one 1000-sample slot was not enough");
        assert_eq!(st.play(4).unwrap(), &d[..]);
        assert_eq!(st.get(1).map(|s| s[0]), Some(1));
    }

    #[test]
    fn freed_gaps_are_compacted() {
        let mut mem = [0i16; 3000];
        let mut st: StimulusStore<'_, 4> = StimulusStore::new(&mut mem);
        upload(&mut st, 1, &[1i16; 1000]);
        upload(&mut st, 2, &[2i16; 1000]);
        upload(&mut st, 3, &[3i16; 1000]);
        // Re-uploading 3 and 1 shorter leaves two holes of 500 that only
        // compaction joins.
        upload(&mut st, 3, &[6i16; 500]);
        upload(&mut st, 1, &[5i16; 500]);
        upload(&mut st, 7, &[7i16; 1000]);
        assert_eq!(st.evicted(), 0);
        for (id, v, n) in [(1, 5, 500), (2, 2, 1000), (3, 6, 500), (7, 7, 1000)] {
            let s = st.get(id).unwrap();
            assert!(s.len() == n && s.iter().all(|x| *x == v), "stimulus {id}");
        }
    }
}
