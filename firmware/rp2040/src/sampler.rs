//! The reference microphone (GP26/ADC0) and the photodiode (GP27/ADC1).
//!
//! The ADC converts both inputs in turn (round robin) from its 48 MHz clock
//! (the USB PLL) with DIV = 499 + 1: one conversion every 500 cycles, 96 kHz
//! in all, 48 kHz per input. DMA channel 10 copies the FIFO into a 16 KiB
//! ring of 8192 samples, 85 ms, without the CPU (a write ring; 2^31 transfers,
//! 6.2 hours, after which it chains to channel 11, which writes the count
//! again into channel 10's trigger alias: only one channel ever listens to the
//! ADC's DREQ). The ring is linked first in RAM (section `.adc_ring`, see
//! memory.x) so its 16 KiB alignment costs no padding. `Sampler::process`
//! takes what arrived since the last call, de-interleaves it into 256-sample
//! blocks per input, each stamped with the rig time of its first sample, runs
//! the photodiode's onset detector and feeds the loopback.
//!
//! Times: conversion n (from 0, both inputs interleaved, microphone first)
//! starts at t0 + n * 125 / 12 µs. The ADC is started right at the TIMER's
//! edge at t0, so t0 is exact to the cycles of that write. The TIMER and the
//! ADC clock come from the same crystal, so this does not drift. If the main
//! loop falls more than the ring behind, the samples lost are skipped whole
//! blocks at a time and the block counters jump (the host sees the gap).

use core::mem::MaybeUninit;

use embassy_rp::pac;
use embassy_rp::pac::dma::vals::{DataSize, TreqSel};

use crate::stamp::{now_us, wait_until};

const RING: usize = 8192;
const RING_BITS: u8 = 14; // 16 KiB
const CH_DATA: usize = 10;
const CH_CTRL: usize = 11;
pub const BLOCK: usize = 256;
pub const RATE: u32 = 48_000;
const ADC_FIFO: u32 = 0x4004_c00c;
/// Counting the DMA's progress from its ring position alone is safe while
/// less than a ring (85 ms) passed since the last count; beyond this, µs, the
/// count is taken from the clock.
const RECOUNT_US: u64 = 40_000;

const DMA_BASE: u32 = 0x5000_0000;
/// The data channel's AL1_TRANS_COUNT_TRIG alias (offset 0x1c of its block).
const DATA_COUNT_TRIG: u32 = DMA_BASE + 0x40 * CH_DATA as u32 + 0x1c;
/// Transfers per run of the data channel.
const RUN: u32 = 1 << 31;

#[repr(C, align(16384))]
struct Ring([u16; RING]);
/// Not zeroed at boot (a NOLOAD section): only the DMA writes it, and only
/// what it wrote is read.
#[link_section = ".adc_ring"]
static mut ADC_RING: MaybeUninit<Ring> = MaybeUninit::uninit();
/// What the control channel writes into the data channel's count trigger.
static RUN_COUNT: u32 = RUN;

fn ring_base() -> *const u16 {
    // Address only; the ring is read with volatile reads below.
    core::ptr::addr_of!(ADC_RING) as *const u16
}

/// What `process` reports.
pub enum Event<'a> {
    Block {
        input: usize,
        seq: u32,
        t_first: u64,
        samples: &'a [i16],
    },
    Onset {
        at: u64,
    },
}

struct Stream {
    buf: [i16; BLOCK],
    len: usize,
    /// Conversion index of buf[0].
    first: u64,
    seq: u32,
}

/// A rising step on the photodiode: the sample leaves a slow baseline by
/// more than `THRESHOLD` (1/8 of full scale), at most once per `HOLDOFF`.
struct OnsetDetector {
    baseline: i32, // x 256
    holdoff: u32,
}

const THRESHOLD: i32 = 4096;
const HOLDOFF: u32 = 4_800; // 100 ms of photodiode samples

impl OnsetDetector {
    fn feed(&mut self, s: i16) -> bool {
        let x = (s as i32) << 8;
        let hit = self.holdoff == 0 && (x - self.baseline) > (THRESHOLD << 8);
        if hit {
            self.holdoff = HOLDOFF;
        } else if self.holdoff > 0 {
            self.holdoff -= 1;
        }
        // Baseline: a first-order low-pass with a 1024-sample (21 ms) time constant.
        self.baseline += (x - self.baseline) >> 10;
        hit
    }
}

pub struct Sampler {
    t0: u64,
    /// Conversions consumed so far.
    done: u64,
    /// Conversions written by the DMA at the last look, and its rig time.
    counted: u64,
    counted_at: u64,
    streams: [Stream; 2],
    onset: OnsetDetector,
    pub overruns: u32,
}

pub fn conversion_time(t0: u64, n: u64) -> u64 {
    t0 + (n * 125 + 6) / 12
}

impl Sampler {
    /// Starts the ADC and its DMA; the input pads must be analogue already.
    pub fn start() -> Sampler {
        let dma = pac::DMA;
        let d = dma.ch(CH_DATA);
        d.read_addr().write_value(ADC_FIFO);
        d.write_addr().write_value(ring_base() as u32);
        d.trans_count().write_value(RUN);
        d.al1_ctrl().write_value({
            let mut v = pac::dma::regs::CtrlTrig(0);
            v.set_en(true);
            v.set_data_size(DataSize::SIZE_HALFWORD);
            v.set_incr_read(false);
            v.set_incr_write(true);
            v.set_ring_sel(true);
            v.set_ring_size(RING_BITS);
            v.set_treq_sel(TreqSel::ADC);
            v.set_chain_to(CH_CTRL as u8);
            v.set_irq_quiet(true);
            v.0
        });
        let c = dma.ch(CH_CTRL);
        c.read_addr()
            .write_value(core::ptr::addr_of!(RUN_COUNT) as u32);
        c.write_addr().write_value(DATA_COUNT_TRIG);
        c.trans_count().write_value(1);
        c.al1_ctrl().write_value({
            let mut v = pac::dma::regs::CtrlTrig(0);
            v.set_en(true);
            v.set_data_size(DataSize::SIZE_WORD);
            v.set_incr_read(false);
            v.set_incr_write(false);
            v.set_treq_sel(TreqSel::PERMANENT);
            v.set_chain_to(CH_CTRL as u8); // to itself: no chain
            v.set_irq_quiet(true);
            v.0
        });
        dma.multi_chan_trigger()
            .write(|w| w.set_multi_chan_trigger(1 << CH_DATA));
        let adc = pac::ADC;
        adc.fcs().write(|w| {
            w.set_en(true);
            w.set_dreq_en(true);
            w.set_thresh(1);
            w.set_shift(false);
            w.set_err(false);
        });
        adc.div().write(|w| {
            w.set_int(499);
            w.set_frac(0);
        });
        adc.cs().write(|w| {
            w.set_en(true);
            w.set_rrobin(0b11);
            w.set_ainsel(0);
        });
        while !adc.cs().read().ready() {}
        // Conversion 0 starts with the write, right at the edge of t0.
        let t0 = critical_section::with(|_| {
            let t0 = wait_until(now_us() + 1);
            adc.cs().write(|w| {
                w.set_en(true);
                w.set_rrobin(0b11);
                w.set_ainsel(0);
                w.set_start_many(true);
            });
            t0
        });
        Sampler {
            t0,
            done: 0,
            counted: 0,
            counted_at: t0,
            streams: [
                Stream {
                    buf: [0; BLOCK],
                    len: 0,
                    first: 0,
                    seq: 0,
                },
                Stream {
                    buf: [0; BLOCK],
                    len: 0,
                    first: 1,
                    seq: 0,
                },
            ],
            onset: OnsetDetector {
                baseline: 0,
                holdoff: HOLDOFF,
            },
            overruns: 0,
        }
    }

    /// Restarts input `i`'s block counter at 0 and drops its partial block.
    pub fn restart_stream(&mut self, i: usize) {
        if let Some(s) = self.streams.get_mut(i) {
            s.seq = 0;
            s.len = 0;
        }
    }

    /// The number of conversions the DMA has written since the start.
    fn written(&mut self) -> u64 {
        let addr = pac::DMA.ch(CH_DATA).write_addr().read();
        let pos = ((addr.wrapping_sub(ring_base() as u32)) / 2) as u64 % RING as u64;
        let now = now_us();
        let ring = RING as u64;
        let n = if now - self.counted_at < RECOUNT_US {
            // Less than a ring since the last count: the DMA moved on by the
            // distance between the two positions (no division on the way).
            let moved = (pos + ring - self.counted % ring) % ring;
            self.counted + moved
        } else {
            // The absolute count is the latest one with these low bits that
            // the clock allows (a little slack for the conversion in flight).
            let by_time = (now.saturating_sub(self.t0) * 12) / 125 + 2;
            let base = by_time - by_time % ring;
            let n = base + pos;
            if n > by_time {
                n.saturating_sub(ring)
            } else {
                n
            }
        };
        self.counted = n;
        self.counted_at = now;
        n
    }

    /// Takes the conversions that arrived; calls `sink` for every full block
    /// and every photodiode onset. `last_mic` gets the newest microphone sample.
    pub fn process(&mut self, mut sink: impl FnMut(Event<'_>), last_mic: &mut Option<i16>) {
        // Whole pairs only (microphone, photodiode): a pair's second half may
        // still be converting; it is taken next time.
        let end = self.written() & !1;
        if end <= self.done {
            return;
        }
        if end - self.done > (RING - 2 * BLOCK) as u64 {
            // Fell behind: skip to half a ring before the DMA, whole blocks
            // per input so the block counters count the gap.
            self.overruns = self.overruns.wrapping_add(1);
            let skip_to = end - (RING / 2) as u64;
            let skipped_blocks = ((skip_to - self.done) / (2 * BLOCK) as u64) as u32 + 1;
            for s in self.streams.iter_mut() {
                s.len = 0;
                s.seq = s.seq.wrapping_add(skipped_blocks);
                s.first = 0;
            }
            self.done = skip_to & !1;
        }
        // The ring as pairs: both inputs of one round in one 32-bit word
        // (the ring is aligned, and pairs start at even indices).
        let pairs = ring_base() as *const u32;
        let t0 = self.t0;
        let convert = |raw: u32| (((raw & 0x0fff) as i16) - 2048) << 4;
        while self.done < end {
            let [mic, pd] = &mut self.streams;
            // A run of pairs that ends no block: the inner loop has no checks.
            let run = ((end - self.done) / 2)
                .min((BLOCK - mic.len) as u64)
                .min((BLOCK - pd.len) as u64) as usize;
            if mic.len == 0 {
                mic.first = self.done;
            }
            if pd.len == 0 {
                pd.first = self.done + 1;
            }
            let first_pair = (self.done / 2) as usize;
            let mut onset = None;
            let m_out = &mut mic.buf[mic.len..mic.len + run];
            let p_out = &mut pd.buf[pd.len..pd.len + run];
            for (j, (m, p)) in m_out.iter_mut().zip(p_out.iter_mut()).enumerate() {
                // SAFETY: the index is masked into the ring's RING / 2 pairs.
                let w = unsafe { pairs.add((first_pair + j) & (RING / 2 - 1)).read_volatile() };
                *m = convert(w);
                *p = convert(w >> 16);
                if self.onset.feed(*p) && onset.is_none() {
                    onset = Some(self.done + 2 * j as u64 + 1);
                }
            }
            if let Some(&m) = m_out.last() {
                *last_mic = Some(m);
            }
            mic.len += run;
            pd.len += run;
            self.done += 2 * run as u64;
            if let Some(n) = onset {
                sink(Event::Onset {
                    at: conversion_time(t0, n),
                });
            }
            for (input, st) in self.streams.iter_mut().enumerate() {
                if st.len == BLOCK {
                    sink(Event::Block {
                        input,
                        seq: st.seq,
                        t_first: conversion_time(t0, st.first),
                        samples: &st.buf,
                    });
                    st.seq = st.seq.wrapping_add(1);
                    st.len = 0;
                }
            }
        }
    }
}
