//! The reference speaker: PWM slice 0 channel A on GP16 (through an RC
//! low-pass into the PAM8302), its duty set per sample by DMA.
//!
//! * Carrier: clk_sys 125 MHz / (TOP + 1) with TOP = 1301, 96.0 kHz, two
//!   carrier periods per audio sample; a sample s (i16) sets the compare level
//!   (s + 32768) * 1302 / 65536, 0..=1301 (silence: 651, half duty).
//! * Samples: DMA channels 8 and 9 take turns (each chains to the other)
//!   moving 256 levels each from two RAM buffers into the PWM compare
//!   register, paced by DMA timer 0 at clk_sys * 6 / 15625 = exactly 48 kHz.
//!   The completion interrupt (DMA_IRQ_1) refills the buffer just played from
//!   the stimulus, so the stimulus itself stays i16 in stimulus memory.
//! * Start: TIMER ALARM3 fires at the scheduled rig time and its interrupt
//!   triggers channel 8; that rig time is reported as the speaker's Onset.
//!   The first level reaches the pin at the next DMA timer tick and then the
//!   next PWM wrap (the compare register is double-buffered): between 0 and
//!   20.8 + 10.4 µs after the alarm on hardware, where the DMA timer runs
//!   free. (rp2040js starts the DMA timer's phase at the trigger, so there
//!   the delay is 20.8 µs plus up to one PWM period.)

use core::cell::RefCell;

use critical_section::Mutex;
use embassy_rp::interrupt::typelevel::{Handler, DMA_IRQ_1, TIMER_IRQ_3};
use embassy_rp::pac;
use embassy_rp::pac::dma::vals::{DataSize, TreqSel};
use rig_protocol::sensor;

use crate::actuate::log_onset;
use crate::stamp::now_us;

pub const TOP: u16 = 1301;
pub const SILENCE: u16 = (TOP + 1).div_ceil(2);
pub const RATE: u32 = 48_000;
const CH_A: usize = 8;
const CH_B: usize = 9;
const BUF: usize = 256;
const ALARM: usize = 3;
/// PWM slice 0's CC register (channel A in bits 0..16).
const PWM_CC0: u32 = 0x4005_000c;

#[repr(C, align(4))]
struct Buffers([[u16; BUF]; 2]);
static mut BUFFERS: Buffers = Buffers([[SILENCE; BUF]; 2]);

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
    at: 0,
}));

pub fn level(s: i16) -> u16 {
    (((s as i32 + 32768) as u32 * (TOP as u32 + 1)) >> 16) as u16
}

/// Configures the DMA channels, the pacing timer and the interrupts (the PWM
/// slice itself is set up by main.rs through embassy-rp).
pub fn init() {
    let dma = pac::DMA;
    dma.timer(0).write(|w| {
        w.set_x(6);
        w.set_y(15625);
    });
    for (ch, other) in [(CH_A, CH_B), (CH_B, CH_A)] {
        let c = dma.ch(ch);
        c.write_addr().write_value(PWM_CC0);
        c.trans_count().write_value(BUF as u32);
        c.al1_ctrl().write_value({
            let mut v = pac::dma::regs::CtrlTrig(0);
            v.set_en(true);
            v.set_data_size(DataSize::SIZE_HALFWORD);
            v.set_incr_read(true);
            v.set_incr_write(false);
            v.set_treq_sel(TreqSel::TIMER0);
            v.set_chain_to(other as u8);
            v.0
        });
    }
    dma.inte(1).modify(|w| *w |= (1 << CH_A) | (1 << CH_B));
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

fn buffer_ptr(b: usize) -> *mut u16 {
    // SAFETY: only the address is taken; the buffers are written in critical
    // sections while their DMA channel is not reading them.
    unsafe { core::ptr::addr_of_mut!(BUFFERS.0[b & 1]) as *mut u16 }
}

/// Fills buffer `b` with the next samples (silence past the end).
fn fill(p: &mut Play, b: usize) {
    let dst = buffer_ptr(b);
    let mut real = false;
    for i in 0..BUF {
        let v = if p.next < p.len {
            real = true;
            // SAFETY: p.next < p.len, the stimulus' length.
            let s = unsafe { *p.src.add(p.next) };
            p.next += 1;
            level(s)
        } else {
            SILENCE
        };
        // SAFETY: i < BUF, inside buffer b.
        unsafe { dst.add(i).write_volatile(v) };
    }
    p.real[b & 1] = real;
    pac::DMA
        .ch(CH_A + (b & 1))
        .read_addr()
        .write_value(dst as u32);
}

pub fn busy() -> bool {
    critical_section::with(|cs| PLAY.borrow_ref(cs).phase != Phase::Idle)
}

/// Schedules `samples` (in stimulus memory) to start at rig time `at`.
/// `false` if a playback is already scheduled or running.
pub fn schedule(at: u64, samples: &[i16]) -> bool {
    critical_section::with(|cs| {
        let mut p = PLAY.borrow_ref_mut(cs);
        if p.phase != Phase::Idle {
            return false;
        }
        p.src = samples.as_ptr();
        p.len = samples.len();
        p.next = 0;
        p.at = at;
        fill(&mut p, 0);
        fill(&mut p, 1);
        p.phase = Phase::Scheduled;
        pac::TIMER.alarm(ALARM).write_value(at as u32);
        if now_us() >= at {
            start(cs, &mut p);
        }
        true
    })
}

fn start(cs: critical_section::CriticalSection<'_>, p: &mut Play) {
    pac::DMA
        .multi_chan_trigger()
        .write(|w| w.set_multi_chan_trigger(1 << CH_A));
    p.phase = Phase::Playing;
    log_onset(cs, sensor::SPEAKER, now_us());
}

fn stop(p: &mut Play) {
    pac::TIMER.armed().write(|w| w.set_armed(1 << ALARM));
    pac::DMA
        .chan_abort()
        .write(|w| w.set_chan_abort((1 << CH_A) | (1 << CH_B)));
    // The abort completes within a few bus cycles; bounded all the same.
    for _ in 0..1000 {
        if pac::DMA.chan_abort().read().chan_abort() == 0 {
            break;
        }
    }
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
        let done = pac::DMA.ints(1).read() & ((1 << CH_A) | (1 << CH_B));
        pac::DMA.ints(1).write_value(done);
        critical_section::with(|cs| {
            let mut p = PLAY.borrow_ref_mut(cs);
            if p.phase != Phase::Playing {
                return;
            }
            for b in 0..2 {
                if done & (1 << (CH_A + b)) == 0 {
                    continue;
                }
                // Buffer b has played; the other is playing now. If that one
                // holds no stimulus samples, the stimulus is over.
                if !p.real[1 - b] {
                    stop(&mut p);
                    return;
                }
                fill(&mut p, b);
            }
        });
    }
}
