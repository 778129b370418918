//! The simulated physical world both halves share: the scenario, the clock,
//! the medium in the air and on the bench, and the DUT's queued HID and
//! control-port answers. Emitters hand a sound, a light or a press to the
//! receiving half here or, across processes, through the ether.
//!
//! It owns true time and the physics; it never tells the host a latency.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::SeedableRng;

use super::ether::{self, Event, Speaker};
use super::medium::{Emission, Flash, Medium};
use super::scenario::{self, Fault, Scenario};
use crate::seeded::Rng as SimRng;
use crate::station::{StationError, StationResult};
use crate::time::{Clock, HostTime, RigTime};

/// HID input changes due at a true time: (usage page, usage, value).
pub(super) type HidQueue = Mutex<VecDeque<(f64, (u16, u16, i32))>>;

/// Which halves of the physical world this process simulates: both, or (with
/// `certlab sim rig` in another process) only the rig's or only the DUT's. The
/// other half is reached through the [`ether`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halves {
    Both,
    Rig,
    Dut,
}

/// State shared by every simulated part.
pub(super) struct World {
    pub(super) sc: Scenario,
    pub(super) clock: Clock,
    pub(super) halves: Halves,
    /// True time of the rig's last reboot (a `rig-reset` fault).
    pub(super) rig_boot: Mutex<Option<f64>>,
    /// The other process's half (`halves` is not `Both`), while connected.
    pub(super) peer: Mutex<Option<Arc<ether::Peer>>>,
    pub(super) medium: Mutex<Medium>,
    /// The DUT's own random draws (latencies).
    pub(super) dut_rng: Mutex<SimRng>,
    pub(super) hid_queue: HidQueue,
    pub(super) control_queue: Mutex<VecDeque<(f64, String)>>,
    pub(super) control_state: Mutex<ControlState>,
    pub(super) disconnect_at: Option<f64>,
    pub(super) drop_probability: f64,
}

#[derive(Debug)]
pub(super) struct ControlState {
    pub(super) muted: bool,
    pub(super) volume: u32,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl World {
    pub(super) fn new(sc: Scenario, clock: Clock, halves: Halves) -> Self {
        let disconnect_at = sc.faults.iter().find_map(|f| match f {
            Fault::Disconnect { at_s } => Some(*at_s),
            _ => None,
        });
        let drop_probability = sc
            .faults
            .iter()
            .find_map(|f| match f {
                Fault::DropBlocks { probability } => Some(*probability),
                _ => None,
            })
            .unwrap_or(0.0);
        World {
            dut_rng: Mutex::new(SimRng::seed_from_u64(sc.seed)),
            sc,
            clock,
            halves,
            rig_boot: Mutex::new(None),
            peer: Mutex::new(None),
            medium: Mutex::new(Medium::default()),
            hid_queue: Mutex::new(VecDeque::new()),
            control_queue: Mutex::new(VecDeque::new()),
            control_state: Mutex::new(ControlState {
                muted: false,
                volume: 50,
            }),
            disconnect_at,
            drop_probability,
        }
    }

    pub(super) fn now(&self) -> f64 {
        self.clock.now().as_secs_f64()
    }

    /// Fails once the simulated DUT has been unplugged by `t`.
    pub(super) fn check_connected(&self, t: f64) -> StationResult<()> {
        match self.disconnect_at {
            Some(at) if t >= at => Err(StationError::Disconnected(format!(
                "{} {} (serial {}) was unplugged {at:.1} s after the station opened (scenario fault)",
                self.sc.identity.manufacturer, self.sc.identity.product, self.sc.identity.serial
            ))),
            _ => Ok(()),
        }
    }

    /// The rig's clock, µs, at true time `t`: the scenario's offset, or zero
    /// at its last reboot.
    pub(super) fn rig_us(&self, t: f64) -> f64 {
        let c = &self.sc.clocks;
        let rate = 1.0 + c.rig_drift_ppm * 1e-6;
        match *lock(&self.rig_boot) {
            Some(b) => (t - b) * rate * 1e6,
            None => (t * rate + c.rig_offset_s) * 1e6,
        }
    }

    pub(super) fn true_of_rig(&self, r: RigTime) -> f64 {
        let c = &self.sc.clocks;
        let rate = 1.0 + c.rig_drift_ppm * 1e-6;
        match *lock(&self.rig_boot) {
            Some(b) => r.0 as f64 * 1e-6 / rate + b,
            None => (r.0 as f64 * 1e-6 - c.rig_offset_s) / rate,
        }
    }

    /// The rig reboots: its clock starts again from zero now, its loopback is off.
    pub(super) fn rig_reboot(&self) {
        *lock(&self.rig_boot) = Some(self.now());
        lock(&self.medium).loopback = None;
    }

    pub(super) fn sleep_until(&self, t: f64) {
        // Rounded up (and a nanosecond on): after the sleep, `now() >= t`
        // holds in seconds too, or a loop that waits for `t` would spin in
        // virtual time, which does not move by itself.
        self.clock
            .sleep_until(HostTime((t * 1e9).ceil() as i64 + 1));
    }

    /// Sleep until true time `t` to within a µs or so. In real time a plain
    /// sleep wakes late by the thread's timer slack (50 µs by default) and
    /// the wake-up latency, some 70 µs measured on a 2-core VM: sleep to
    /// 100 µs before `t`, then spin. Virtual time wakes exactly.
    pub(super) fn sleep_precisely(&self, t: f64) {
        if self.clock.is_virtual() {
            return self.sleep_until(t);
        }
        const SPIN_S: f64 = 100e-6;
        if t - self.now() > SPIN_S {
            self.sleep_until(t - SPIN_S);
        }
        while self.now() < t {
            std::hint::spin_loop();
        }
    }

    pub(super) fn monotonic_ns(&self, t: f64) -> i64 {
        self.clock.to_monotonic(HostTime::from_secs_f64(t))
    }

    pub(super) fn local_time(&self, ns: i64) -> f64 {
        self.clock.from_monotonic(ns).as_secs_f64()
    }

    /// Hand an event to the other process's half; a gone peer is forgotten
    /// (what happens in the air then reaches nobody, as in an empty room).
    pub(super) fn to_peer(&self, ev: Event) {
        let peer = lock(&self.peer).clone();
        if let Some(p) = peer {
            if !p.send(&ev) {
                *lock(&self.peer) = None;
            }
        }
    }

    // Emitters: each reaches the receiving half here, or in the other process.

    /// A sound leaving `from` for the other process.
    pub(super) fn send_sound(&self, from: Speaker, e: Emission) {
        self.to_peer(Event::Sound {
            from,
            start_ns: self.monotonic_ns(e.t_start),
            rate: e.rate,
            gain: e.gain,
            samples: e.samples,
        });
    }

    /// A sound from the rig's speaker. The rig's own microphone hears it too,
    /// through the rig's acoustic path (never looped back again).
    pub(super) fn rig_speaker(&self, e: Emission) {
        if self.halves != Halves::Dut {
            let a = &self.sc.audio;
            let own = Emission {
                t_start: e.t_start + a.rig_acoustic_path_us * 1e-6,
                gain: e.gain * db(a.rig_acoustic_gain_db),
                ..e.clone()
            };
            let mut m = lock(&self.medium);
            m.prune(self.now() - 2.0);
            m.at_rig_mic.push(own);
        }
        if self.halves == Halves::Rig {
            self.send_sound(Speaker::Rig, e);
        } else {
            self.dut_hears(e);
        }
    }

    /// The rig's LED is lit.
    pub(super) fn rig_led(&self, f: Flash) {
        if self.halves == Halves::Rig {
            self.to_peer(Event::Light {
                on_ns: self.monotonic_ns(f.on),
                off_ns: self.monotonic_ns(f.off),
            });
        } else {
            let mut m = lock(&self.medium);
            m.prune(self.now() - 2.0);
            m.flashes.push(f);
        }
    }

    /// The rig's actuator presses the DUT's button from `down` to `up`.
    pub(super) fn rig_actuator(&self, down: f64, up: f64) {
        if self.halves == Halves::Rig {
            self.to_peer(Event::Press {
                down_ns: self.monotonic_ns(down),
                up_ns: self.monotonic_ns(up),
            });
        } else {
            self.dut_pressed(down, up);
        }
    }

    /// A sound from the DUT's speaker.
    pub(super) fn dut_speaker(&self, e: Emission) {
        if self.halves == Halves::Dut {
            self.send_sound(Speaker::Dut, e);
        } else {
            self.rig_hears(e);
        }
    }

    /// An event from the other process's half.
    pub(super) fn receive(&self, ev: Event) {
        match ev {
            Event::Sound {
                from,
                start_ns,
                rate,
                gain,
                samples,
            } => {
                let e = Emission {
                    t_start: self.local_time(start_ns),
                    rate,
                    gain,
                    samples,
                };
                match (from, self.halves) {
                    (Speaker::Rig, Halves::Dut) => self.dut_hears(e),
                    (Speaker::Dut, Halves::Rig) => self.rig_hears(e),
                    _ => {}
                }
            }
            Event::Light { on_ns, off_ns } if self.halves == Halves::Dut => self.rig_led(Flash {
                on: self.local_time(on_ns),
                off: self.local_time(off_ns),
            }),
            Event::Press { down_ns, up_ns } if self.halves == Halves::Dut => {
                self.dut_pressed(self.local_time(down_ns), self.local_time(up_ns))
            }
            _ => {}
        }
    }

    // Receivers: the DUT's half.

    /// The DUT's microphone path: a sound reaches the host after the DUT's
    /// send latency.
    pub(super) fn dut_hears(&self, e: Emission) {
        let lat = self.sc.latency.audio_send.draw(&mut *lock(&self.dut_rng));
        let mut m = lock(&self.medium);
        m.prune(self.now() - 2.0);
        m.to_dut.push((e, lat));
    }

    /// The DUT's button: its HID reports follow the press and the release
    /// after the DUT's HID latency.
    pub(super) fn dut_pressed(&self, down: f64, up: f64) {
        let usages = &self.sc.capabilities.hid_usages;
        // The actuator sits on the hook-switch button when the device has one.
        let Some((page, usage)) = usages
            .iter()
            .filter_map(|u| scenario::parse_usage(u))
            .find(|&(p, u)| (p, u) == (0x0b, 0x20))
            .or_else(|| usages.first().and_then(|u| scenario::parse_usage(u)))
        else {
            return;
        };
        let (d_down, d_up) = {
            let mut rng = lock(&self.dut_rng);
            (
                self.sc.latency.hid.draw(&mut *rng),
                self.sc.latency.hid.draw(&mut *rng),
            )
        };
        let mut q = lock(&self.hid_queue);
        q.push_back((down + d_down, (page, usage, 1)));
        q.push_back((up + d_up, (page, usage, 0)));
        q.make_contiguous().sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    // Receivers: the rig's half.

    /// The rig's microphone hears the DUT; with loopback on, the rig also
    /// plays what it hears back to the DUT.
    pub(super) fn rig_hears(&self, e: Emission) {
        let looped = {
            let mut m = lock(&self.medium);
            m.prune(self.now() - 2.0);
            let looped = m.loopback.map(|d| Emission {
                t_start: e.t_start + d,
                ..e.clone()
            });
            m.at_rig_mic.push(e);
            looped
        };
        if let Some(l) = looped {
            self.rig_speaker(l);
        }
    }
}

pub(super) fn db(x: f64) -> f32 {
    10f64.powf(x / 20.0) as f32
}

pub(super) fn gaussian(rng: &mut SimRng) -> f32 {
    rand_distr::Distribution::<f64>::sample(&rand_distr::StandardNormal, rng) as f32
}

/// Wait for the first queued item due before `deadline`.
pub(super) fn next_due<T>(
    w: &World,
    queue: &Mutex<VecDeque<(f64, T)>>,
    timeout: Duration,
) -> StationResult<Option<(f64, T)>> {
    let deadline = w.now() + timeout.as_secs_f64();
    loop {
        let now = w.now();
        w.check_connected(now)?;
        let next = lock(queue).front().map(|x| x.0);
        match next {
            Some(t) if t <= now => return Ok(lock(queue).pop_front()),
            Some(t) if t <= deadline => w.sleep_until(t),
            _ if now >= deadline => return Ok(None),
            _ => w.sleep_until(deadline.min(now + 0.005)),
        }
    }
}
