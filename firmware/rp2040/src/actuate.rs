//! The LED (GP15) and the button actuator's solenoid (GP14), switched at
//! scheduled rig times from TIMER alarm interrupts.
//!
//! Each actuator owns one hardware alarm (LED: ALARM1, solenoid: ALARM2;
//! embassy-time has ALARM0) and a short queue of `(on, off)` intervals. The
//! alarm fires `LEAD_US` before a switch is due; with interrupts off its
//! handler waits for the TIMER's edge at the due microsecond and then drives
//! the pin through SIO (a single-cycle write), so the pin switches about
//! 0.2 µs after the edge: on and off times, and so durations, are exact to
//! the rig's clock. The rig time of each switch-on is the TIMER read right
//! after the pin write, logged and reported by the main loop as an Onset; a
//! handler that runs late (interrupts held off for longer than the lead)
//! switches at once and that read says how late.

use core::cell::RefCell;

use critical_section::Mutex;
use embassy_rp::interrupt::typelevel::{Handler, TIMER_IRQ_1, TIMER_IRQ_2};
use embassy_rp::pac;
use rig_protocol::sensor;

use crate::stamp::{now_us, wait_until};

pub const LED_PIN: u8 = 15;
pub const SOLENOID_PIN: u8 = 14;
const QUEUE: usize = 8;
/// How long before a switch its alarm fires, µs (interrupt entry and the
/// queue's bookkeeping take under 1 µs; the rest is spent waiting for the edge).
const LEAD_US: u64 = 3;
const ONSET_LOG: usize = 16;

#[derive(Clone, Copy)]
struct Interval {
    on: u64,
    off: u64,
}

struct Actuator {
    pin: u8,
    alarm: usize,
    sensor: u8,
    queue: [Interval; QUEUE],
    len: usize,
    /// Switched on, until this rig time.
    on_until: Option<u64>,
}

impl Actuator {
    const fn new(pin: u8, alarm: usize, sensor: u8) -> Self {
        Actuator {
            pin,
            alarm,
            sensor,
            queue: [Interval { on: 0, off: 0 }; QUEUE],
            len: 0,
            on_until: None,
        }
    }
}

struct Onsets {
    log: [(u8, u64); ONSET_LOG],
    len: usize,
    lost: u32,
}

static LED: Mutex<RefCell<Actuator>> =
    Mutex::new(RefCell::new(Actuator::new(LED_PIN, 1, sensor::LED)));
static SOLENOID: Mutex<RefCell<Actuator>> =
    Mutex::new(RefCell::new(Actuator::new(SOLENOID_PIN, 2, sensor::BUTTON)));
static ONSETS: Mutex<RefCell<Onsets>> = Mutex::new(RefCell::new(Onsets {
    log: [(0, 0); ONSET_LOG],
    len: 0,
    lost: 0,
}));

/// Why an interval was not scheduled.
pub enum Refused {
    QueueFull,
    Overlaps,
}

fn set_pin(pin: u8, on: bool) {
    let mask = 1u32 << pin;
    if on {
        pac::SIO.gpio_out(0).value_set().write_value(mask);
    } else {
        pac::SIO.gpio_out(0).value_clr().write_value(mask);
    }
}

/// Logs an onset for the main loop (also used by the speaker).
pub(crate) fn log_onset(cs: critical_section::CriticalSection<'_>, sensor: u8, at: u64) {
    let mut o = ONSETS.borrow_ref_mut(cs);
    if o.len < ONSET_LOG {
        let n = o.len;
        o.log[n] = (sensor, at);
        o.len += 1;
    } else {
        o.lost = o.lost.wrapping_add(1);
    }
}

/// Takes the onsets logged since the last call, oldest first.
pub fn take_onsets(out: &mut [(u8, u64); ONSET_LOG]) -> usize {
    critical_section::with(|cs| {
        let mut o = ONSETS.borrow_ref_mut(cs);
        let n = o.len;
        out[..n].copy_from_slice(&o.log[..n]);
        o.len = 0;
        n
    })
}

/// Drives the pins low and enables the alarm interrupts.
pub fn init() {
    for pin in [LED_PIN, SOLENOID_PIN] {
        set_pin(pin, false);
        pac::SIO.gpio_oe(0).value_set().write_value(1 << pin);
        pac::IO_BANK0
            .gpio(pin as usize)
            .ctrl()
            .write(|w| w.set_funcsel(5)); // SIO
    }
    pac::TIMER.inte().modify(|w| {
        w.set_alarm(1, true);
        w.set_alarm(2, true);
    });
    use embassy_rp::interrupt::InterruptExt;
    for irq in [
        embassy_rp::interrupt::TIMER_IRQ_1,
        embassy_rp::interrupt::TIMER_IRQ_2,
    ] {
        irq.unpend();
        // SAFETY: the handlers below are bound to these interrupts in main.rs.
        unsafe { irq.enable() };
    }
}

fn which(led: bool) -> &'static Mutex<RefCell<Actuator>> {
    if led {
        &LED
    } else {
        &SOLENOID
    }
}

/// Schedules the actuator on at `on` for `len_us` (both rig times, `on` in the
/// future and within 2^31 µs).
pub fn schedule(led: bool, on: u64, len_us: u32) -> Result<(), Refused> {
    let iv = Interval {
        on,
        off: on + len_us.max(1) as u64,
    };
    critical_section::with(|cs| {
        let mut a = which(led).borrow_ref_mut(cs);
        if a.len >= QUEUE {
            return Err(Refused::QueueFull);
        }
        let clash = a.queue[..a.len]
            .iter()
            .any(|q| iv.on < q.off && q.on < iv.off)
            || a.on_until.is_some_and(|t| iv.on < t);
        if clash {
            return Err(Refused::Overlaps);
        }
        let at = a.queue[..a.len]
            .iter()
            .position(|q| q.on > iv.on)
            .unwrap_or(a.len);
        let n = a.len;
        a.queue.copy_within(at..n, at + 1);
        a.queue[at] = iv;
        a.len += 1;
        service(cs, &mut a);
        Ok(())
    })
}

/// Cancels everything scheduled and switches the actuator off.
pub fn cancel_all() {
    critical_section::with(|cs| {
        for led in [true, false] {
            let mut a = which(led).borrow_ref_mut(cs);
            a.len = 0;
            a.on_until = None;
            set_pin(a.pin, false);
            pac::TIMER.armed().write(|w| w.set_armed(1 << a.alarm));
        }
    });
}

/// The next change of an actuator: `(rig time, switch on)`.
fn next_change(a: &Actuator) -> Option<(u64, bool)> {
    match a.on_until {
        Some(off) => Some((off, false)),
        None if a.len > 0 => Some((a.queue[0].on, true)),
        None => None,
    }
}

/// Switches what is due within the lead (each at its microsecond's edge) and
/// arms the alarm for the next change.
fn service(cs: critical_section::CriticalSection<'_>, a: &mut Actuator) {
    while let Some((t, on)) = next_change(a) {
        if now_us() + LEAD_US < t {
            pac::TIMER.alarm(a.alarm).write_value((t - LEAD_US) as u32);
            // An alarm set to a time already past would only fire after the
            // 32-bit wrap: look again after arming.
            if now_us() + LEAD_US < t {
                return;
            }
            continue;
        }
        wait_until(t);
        set_pin(a.pin, on);
        if on {
            let at = now_us();
            let iv = a.queue[0];
            let n = a.len;
            a.queue.copy_within(1..n, 0);
            a.len -= 1;
            a.on_until = Some(iv.off);
            log_onset(cs, a.sensor, at);
        } else {
            a.on_until = None;
        }
    }
}

fn on_alarm(led: bool) {
    let alarm = if led { 1 } else { 2 };
    pac::TIMER.intr().write(|w| w.set_alarm(alarm, true));
    critical_section::with(|cs| {
        let mut a = which(led).borrow_ref_mut(cs);
        service(cs, &mut a);
    });
    crate::WAKE.signal(());
}

pub struct LedAlarm;
impl Handler<TIMER_IRQ_1> for LedAlarm {
    unsafe fn on_interrupt() {
        on_alarm(true);
    }
}

pub struct SolenoidAlarm;
impl Handler<TIMER_IRQ_2> for SolenoidAlarm {
    unsafe fn on_interrupt() {
        on_alarm(false);
    }
}
