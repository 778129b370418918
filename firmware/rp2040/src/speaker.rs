//! The reference speaker: PWM slice 0 channel A on GP16 (through an RC
//! low-pass into the PAM8302), its duty set per sample by DMA, with a start
//! that is exact to the rig's clock and reported as it happens on the pin.
//!
//! * Carrier: clk_sys 120 MHz / (TOP + 1) with TOP = 1249, exactly 96 kHz
//!   (main.rs sets clk_sys for this), two carrier periods per 48 kHz sample;
//!   a sample s (i16) sets the compare level (s + 32768) * 1250 / 65536,
//!   0..=1249 (silence: 625, half duty).
//! * Pacing: the slice's own wrap DREQ (DREQ_PWM_WRAP0) paces the data
//!   channel (DMA 8), which writes one level into CC per wrap; each sample's
//!   level is in the buffer twice, so it holds for two periods. CC is double
//!   buffered: a level written just after wrap k drives the period that starts
//!   at wrap k + 1, so every level reaches the pin on a wrap, never mid-period.
//! * Buffers: two of 256 samples (512 levels), refilled from stimulus memory
//!   by the data channel's completion interrupt (DMA_IRQ_1), so stimuli stay
//!   i16. Only one channel listens to the DREQ (the RP2040 datasheet's DMA
//!   chapter warns against two on one DREQ): when it finishes a buffer it
//!   chains to a control channel (DMA 9) that writes the other buffer's address
//!   into its READ_ADDR trigger alias, from a two-entry list it walks as a ring.
//! * Start: TIMER ALARM3 fires `ALARM_LEAD_US` before the playback is due.
//!   With interrupts off, its handler waits for the TIMER's edge at
//!   `at - START_US`, then sets the slice's counter to `PHASE` (the carrier's
//!   phase is reset), clears the data channel's DREQ counter and triggers it.
//!   The first wrap comes TOP + 1 - PHASE = 1150 cycles later; its DREQ moves
//!   the first level into CC, and the second wrap, 1250 cycles after that,
//!   puts it on the pin: 2400 cycles, exactly `START_US` = 20 µs after the
//!   counter write. (The carrier period cut short by the write, and the one
//!   that follows at the old level, are the only trace of the reset on the
//!   pin: a disturbance of at most about 2 µs × full scale, 20 µs ahead of the
//!   stimulus.) The Onset reports the TIMER read right after that write
//!   plus 20 µs, so normally `at` itself; the write lags the edge by the
//!   few cycles of the wait loop (under 0.2 µs). A late handler (a command
//!   that arrived under 24 µs ahead, interrupts held off) starts at the next
//!   microsecond edge instead, and the Onset says so.
//! * Stop: the playback ends after the first buffer that held no stimulus
//!   sample has played (so the stimulus' last level plays its full two
//!   periods); the channels are stopped as RP2040-E13 asks (paused, aborted,
//!   idle by BUSY, their interrupt flags cleared) and CC goes back to silence.

use core::cell::RefCell;

use critical_section::Mutex;
use embassy_rp::interrupt::typelevel::{Handler, DMA_IRQ_1, TIMER_IRQ_3};
use embassy_rp::pac;
use embassy_rp::pac::dma::vals::{DataSize, TreqSel};
use rig_protocol::sensor;

use crate::actuate::log_onset;
use crate::stamp::{now_us, wait_until};

pub const TOP: u16 = 1249;
pub const SILENCE: u16 = (TOP + 1).div_ceil(2);
pub const RATE: u32 = 48_000;
/// The counter value written at the start (see the module documentation).
const PHASE: u16 = 100;
/// From the counter write to the first level on the pin, µs:
/// (TOP + 1 - PHASE) + (TOP + 1) = 2400 cycles of 120 MHz.
pub const START_US: u64 = 20;
/// How long before the start edge the alarm fires (interrupt entry and the
/// preparation take about 1 µs; the rest is spent waiting for the edge).
const SLACK_US: u64 = 4;
const ALARM_LEAD_US: u64 = START_US + SLACK_US;
const CH_DATA: usize = 8;
const CH_CTRL: usize = 9;
/// Samples per buffer; each is two levels.
const BUF: usize = 256;
const ALARM: usize = 3;
/// PWM slice 0's CC register (channel A in bits 0..16; a halfword write is
/// replicated to both halves, so B follows A on no pin).
const PWM_CC0: u32 = 0x4005_000c;
const DMA_BASE: u32 = 0x5000_0000;
/// The data channel's AL3_READ_ADDR_TRIG alias (offset 0x3c of its block).
const DATA_READ_ADDR_TRIG: u32 = DMA_BASE + 0x40 * CH_DATA as u32 + 0x3c;

#[repr(C, align(4))]
struct Buffers([[u16; 2 * BUF]; 2]);
static mut BUFFERS: Buffers = Buffers([[0; 2 * BUF]; 2]);

/// The buffer addresses the control channel hands the data channel in turn
/// (buffer 1 after the first, then 0, ...): a read ring of 8 bytes.
#[repr(C, align(8))]
struct NextList([u32; 2]);
static mut NEXT: NextList = NextList([0; 2]);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Scheduled,
    Playing,
}

struct Play {
    phase: Phase,
    src: *const i16,
    len: usize,
    /// Next stimulus sample to put into a buffer.
    next: usize,
    /// Whether each buffer holds any stimulus samples.
    real: [bool; 2],
    /// The buffer the data channel is reading.
    playing: usize,
    at: u64,
}

// SAFETY: `src` points into the stimulus memory, which is not changed while a
// playback is scheduled or running (StimulusData is refused as busy then).
unsafe impl Send for Play {}

static PLAY: Mutex<RefCell<Play>> = Mutex::new(RefCell::new(Play {
    phase: Phase::Idle,
    src: core::ptr::null(),
    len: 0,
    next: 0,
    real: [false; 2],
    playing: 0,
    at: 0,
}));

pub fn level(s: i16) -> u16 {
    (((s as i32 + 32768) as u32 * (TOP as u32 + 1)) >> 16) as u16
}

fn buffer_ptr(b: usize) -> *mut u16 {
    // SAFETY: only the address is taken; a buffer is written while the data
    // channel is not reading it.
    unsafe { core::ptr::addr_of_mut!(BUFFERS.0[b & 1]) as *mut u16 }
}

fn next_list() -> *mut u32 {
    // SAFETY: address only.
    unsafe { core::ptr::addr_of_mut!(NEXT.0) as *mut u32 }
}

fn data_ctrl(en: bool) -> u32 {
    let mut v = pac::dma::regs::CtrlTrig(0);
    v.set_en(en);
    v.set_data_size(DataSize::SIZE_HALFWORD);
    v.set_incr_read(true);
    v.set_incr_write(false);
    v.set_treq_sel(TreqSel::PWM_WRAP0);
    v.set_chain_to(CH_CTRL as u8);
    v.0
}

fn ctrl_ctrl(en: bool) -> u32 {
    let mut v = pac::dma::regs::CtrlTrig(0);
    v.set_en(en);
    v.set_data_size(DataSize::SIZE_WORD);
    v.set_incr_read(true);
    v.set_incr_write(false);
    v.set_ring_sel(false); // the ring wraps the read address
    v.set_ring_size(3); // 8 bytes: the two entries of NEXT
    v.set_treq_sel(TreqSel::PERMANENT);
    v.set_chain_to(CH_CTRL as u8); // chaining to itself: no chain
    v.set_irq_quiet(true);
    v.0
}

/// Configures both DMA channels (enabled, not triggered) and the interrupts;
/// the PWM slice itself is set up by main.rs through embassy-rp.
pub fn init() {
    let dma = pac::DMA;
    // SAFETY: written once here, read only by the DMA.
    unsafe {
        let list = next_list();
        list.write_volatile(buffer_ptr(1) as u32);
        list.add(1).write_volatile(buffer_ptr(0) as u32);
    }
    let d = dma.ch(CH_DATA);
    d.write_addr().write_value(PWM_CC0);
    d.trans_count().write_value(2 * BUF as u32);
    d.al1_ctrl().write_value(data_ctrl(true));
    let c = dma.ch(CH_CTRL);
    c.read_addr().write_value(next_list() as u32);
    c.write_addr().write_value(DATA_READ_ADDR_TRIG);
    c.trans_count().write_value(1);
    c.al1_ctrl().write_value(ctrl_ctrl(true));
    dma.inte(1).modify(|w| *w |= 1 << CH_DATA);
    pac::TIMER.inte().modify(|w| w.set_alarm(ALARM, true));
    use embassy_rp::interrupt::InterruptExt;
    for irq in [
        embassy_rp::interrupt::DMA_IRQ_1,
        embassy_rp::interrupt::TIMER_IRQ_3,
    ] {
        irq.unpend();
        // SAFETY: the handlers below are bound to these interrupts in main.rs.
        unsafe { irq.enable() };
    }
}

/// Fills buffer `b` with the next samples, each level twice (silence past
/// the end); `(next sample, whether it holds any stimulus)`.
///
/// # Safety
/// `src` must hold `len` samples, and the data channel must not be reading
/// buffer `b`.
unsafe fn fill(src: *const i16, len: usize, mut next: usize, b: usize) -> (usize, bool) {
    let dst = buffer_ptr(b);
    let mut real = false;
    for i in 0..BUF {
        let v = if next < len {
            real = true;
            // SAFETY: next < len, the stimulus' length.
            let s = unsafe { *src.add(next) };
            next += 1;
            level(s)
        } else {
            SILENCE
        };
        // SAFETY: 2i + 1 < 2 BUF, inside buffer b.
        unsafe {
            dst.add(2 * i).write_volatile(v);
            dst.add(2 * i + 1).write_volatile(v);
        }
    }
    (next, real)
}

pub fn busy() -> bool {
    critical_section::with(|cs| PLAY.borrow_ref(cs).phase != Phase::Idle)
}

/// Schedules `samples` (in stimulus memory) so that its first level is on
/// the pin at rig time `at`. `false` if a playback is already scheduled or
/// running.
pub fn schedule(at: u64, samples: &[i16]) -> bool {
    if busy() {
        return false;
    }
    // Idle: neither the DMA nor an interrupt touches the buffers now, and
    // only this (thread-mode) code leaves Idle, so they fill with interrupts on.
    // SAFETY: `samples` holds `len` samples; no channel reads the buffers.
    let (next, real0) = unsafe { fill(samples.as_ptr(), samples.len(), 0, 0) };
    let (next, real1) = unsafe { fill(samples.as_ptr(), samples.len(), next, 1) };
    critical_section::with(|cs| {
        let mut p = PLAY.borrow_ref_mut(cs);
        p.src = samples.as_ptr();
        p.len = samples.len();
        p.next = next;
        p.real = [real0, real1];
        p.playing = 0;
        p.at = at;
        p.phase = Phase::Scheduled;
        // The control channel hands out buffer 1 first.
        pac::DMA
            .ch(CH_CTRL)
            .read_addr()
            .write_value(next_list() as u32);
        let alarm_at = at.saturating_sub(ALARM_LEAD_US);
        pac::TIMER.alarm(ALARM).write_value(alarm_at as u32);
        // An alarm set to a time already past fires only after the 32-bit wrap.
        if now_us() >= alarm_at {
            start(cs, &mut p);
        }
    });
    true
}

/// The start, with interrupts off (see the module documentation).
fn start(cs: critical_section::CriticalSection<'_>, p: &mut Play) {
    pac::TIMER.armed().write(|w| w.set_armed(1 << ALARM));
    // The edge `START_US` before `at`, or the next one when that has passed.
    wait_until(p.at.saturating_sub(START_US).max(now_us() + 1));
    pac::PWM.ch(0).ctr().write(|w| w.set_ctr(PHASE));
    // The wrap that follows is 1150 cycles away: nothing counts in between.
    let t = now_us();
    let d = pac::DMA.ch(CH_DATA);
    d.dbg_ctdreq().write_value(pac::dma::regs::DbgCtdreq(0));
    d.al3_read_addr_trig().write_value(buffer_ptr(0) as u32);
    p.phase = Phase::Playing;
    log_onset(cs, sensor::SPEAKER, t + START_US);
}

fn stop(p: &mut Play) {
    pac::TIMER.armed().write(|w| w.set_armed(1 << ALARM));
    let dma = pac::DMA;
    let both: u32 = (1 << CH_DATA) | (1 << CH_CTRL);
    // RP2040-E13: an abort can report done while a transfer is in flight
    // and then raise a completion interrupt. Pause both channels (EN = 0
    // ignores triggers, so neither restarts the other), mask the interrupt,
    // abort, wait for BUSY to fall, clear the flags, unmask, enable again.
    dma.ch(CH_DATA).al1_ctrl().write_value(data_ctrl(false));
    dma.ch(CH_CTRL).al1_ctrl().write_value(ctrl_ctrl(false));
    dma.inte(1).modify(|w| *w &= !(1 << CH_DATA));
    dma.chan_abort().write(|w| w.set_chan_abort(both as u16));
    // A few bus cycles on hardware; bounded all the same.
    for _ in 0..1000 {
        let busy =
            dma.ch(CH_DATA).ctrl_trig().read().busy() || dma.ch(CH_CTRL).ctrl_trig().read().busy();
        if !busy {
            break;
        }
    }
    dma.ints(1).write_value(both);
    dma.inte(1).modify(|w| *w |= 1 << CH_DATA);
    dma.ch(CH_DATA).al1_ctrl().write_value(data_ctrl(true));
    dma.ch(CH_CTRL).al1_ctrl().write_value(ctrl_ctrl(true));
    pac::PWM.ch(0).cc().write(|w| {
        w.set_a(SILENCE);
        w.set_b(SILENCE);
    });
    p.phase = Phase::Idle;
    p.src = core::ptr::null();
    p.len = 0;
}

/// Stops any playback and leaves the output at silence.
pub fn cancel() {
    critical_section::with(|cs| stop(&mut PLAY.borrow_ref_mut(cs)));
}

/// Loopback: sets the output level directly while no playback owns it.
pub fn set_level_if_idle(s: i16) {
    critical_section::with(|cs| {
        if PLAY.borrow_ref(cs).phase == Phase::Idle {
            let l = level(s);
            pac::PWM.ch(0).cc().write(|w| {
                w.set_a(l);
                w.set_b(l);
            });
        }
    });
}

pub struct StartAlarm;
impl Handler<TIMER_IRQ_3> for StartAlarm {
    unsafe fn on_interrupt() {
        pac::TIMER.intr().write(|w| w.set_alarm(ALARM, true));
        critical_section::with(|cs| {
            let mut p = PLAY.borrow_ref_mut(cs);
            if p.phase == Phase::Scheduled {
                start(cs, &mut p);
            }
        });
        crate::WAKE.signal(());
    }
}

pub struct Refill;
impl Handler<DMA_IRQ_1> for Refill {
    unsafe fn on_interrupt() {
        let done: u32 = pac::DMA.ints(1).read() & (1 << CH_DATA);
        pac::DMA.ints(1).write_value(done);
        if done == 0 {
            return;
        }
        // The data channel finished buffer `b` and the control channel has
        // already pointed it at the other one.
        let job = critical_section::with(|cs| {
            let mut p = PLAY.borrow_ref_mut(cs);
            if p.phase != Phase::Playing {
                return None;
            }
            let b = p.playing;
            p.playing ^= 1;
            if !p.real[b] {
                // A buffer of silence has played out: the stimulus is over.
                stop(&mut p);
                return None;
            }
            Some((p.src, p.len, p.next, b))
        });
        let Some((src, len, next, b)) = job else {
            return;
        };
        // Filled with interrupts on (about 40 µs): only the TIMER alarms can
        // run meanwhile (they have the higher priority), and none of them
        // touches a playing playback's buffers or counters.
        // SAFETY: the playback holds `len` samples at `src` (stimulus memory
        // stays as it is while a playback runs); the channel reads the other buffer.
        let (next, real) = unsafe { fill(src, len, next, b) };
        critical_section::with(|cs| {
            let mut p = PLAY.borrow_ref_mut(cs);
            if p.phase == Phase::Playing {
                p.next = next;
                p.real[b] = real;
            }
        });
    }
}
