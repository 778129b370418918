//! Receipt stamps for USB OUT packets, latched in the USB interrupt.
//!
//! `UsbStamp` is bound to `USBCTRL_IRQ` *before* embassy-rp's own handler (see
//! `bind_interrupts!` in main.rs), so it runs first in the same interrupt entry,
//! while `BUFF_STATUS` still shows which buffers completed. For every completed
//! OUT buffer of a non-control endpoint it latches the 1 MHz TIMER into a small
//! ring. The CDC reader pops one stamp per packet it reads: with embassy-rp's
//! single-buffered endpoints a new OUT packet cannot complete before the reader
//! has re-armed the buffer, so stamps and packets pair off in order.
//!
//! The stamp is taken at interrupt entry plus a few dozen cycles (under 1 µs at
//! 120-125 MHz), unless a critical section holds interrupts off at that moment.

use core::sync::atomic::{AtomicU32, Ordering};

use embassy_rp::interrupt::typelevel::{Handler, USBCTRL_IRQ};
use embassy_rp::pac;

const RING: usize = 16;

static STAMPS: [AtomicU32; RING * 2] = [const { AtomicU32::new(0) }; RING * 2];
static HEAD: AtomicU32 = AtomicU32::new(0); // written by the interrupt only
static TAIL: AtomicU32 = AtomicU32::new(0); // written by the reader only
static OVERRUNS: AtomicU32 = AtomicU32::new(0);

/// OUT-direction bits of BUFF_STATUS for endpoints 1..=15 (bit 2n+1 is EPn OUT).
const OUT_EP_MASK: u32 = 0xAAAA_AAA8;

/// The RP2040's free-running 1 MHz timer, read without latching side effects.
pub fn now_us() -> u64 {
    let t = pac::TIMER;
    loop {
        let hi = t.timerawh().read();
        let lo = t.timerawl().read();
        if t.timerawh().read() == hi {
            return ((hi as u64) << 32) | lo as u64;
        }
    }
}

/// Spins until the TIMER reaches rig time `t` and returns `t`, or returns the
/// time at once if `t` has passed. It watches TIMERAWL alone (one load a turn,
/// a few cycles), so a caller that writes a register right after returning
/// does so within about 0.1 µs of the microsecond's first edge. For waits of
/// a few microseconds only (callers hold interrupts off meanwhile).
#[inline(always)]
#[allow(dead_code)] // examples/echo.rs shares this file and does not wait
pub fn wait_until(t: u64) -> u64 {
    let now = now_us();
    if now >= t {
        return now;
    }
    let lo = t as u32;
    // Less than 2^31 µs ahead: the wrapping difference of the low words
    // orders the two times, across a carry into the high word too.
    while (pac::TIMER.timerawl().read().wrapping_sub(lo) as i32) < 0 {}
    t
}

/// Runs first in USBCTRL_IRQ; never clears anything, so embassy's handler sees
/// the same status.
pub struct UsbStamp;

impl Handler<USBCTRL_IRQ> for UsbStamp {
    unsafe fn on_interrupt() {
        let now = now_us();
        let done = pac::USB.buff_status().read().0 & OUT_EP_MASK;
        if done == 0 {
            return;
        }
        for _ in 0..done.count_ones() {
            let head = HEAD.load(Ordering::Relaxed);
            let tail = TAIL.load(Ordering::Acquire);
            if head.wrapping_sub(tail) as usize >= RING {
                OVERRUNS.store(OVERRUNS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                return;
            }
            let slot = (head as usize % RING) * 2;
            STAMPS[slot].store(now as u32, Ordering::Relaxed);
            STAMPS[slot + 1].store((now >> 32) as u32, Ordering::Relaxed);
            HEAD.store(head.wrapping_add(1), Ordering::Release);
        }
    }
}

/// The receipt stamp of the next packet the reader got, oldest first; `None` if
/// the interrupt recorded none (the caller then stamps late, with `now_us`).
pub fn pop() -> Option<u64> {
    let tail = TAIL.load(Ordering::Relaxed);
    let head = HEAD.load(Ordering::Acquire);
    if head == tail {
        return None;
    }
    let slot = (tail as usize % RING) * 2;
    let lo = STAMPS[slot].load(Ordering::Relaxed) as u64;
    let hi = STAMPS[slot + 1].load(Ordering::Relaxed) as u64;
    TAIL.store(tail.wrapping_add(1), Ordering::Release);
    Some((hi << 32) | lo)
}

/// Forgets stamps of packets that will never be read (after a bus reset).
pub fn clear() {
    TAIL.store(HEAD.load(Ordering::Acquire), Ordering::Release);
}
