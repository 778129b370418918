//! The simulated station: a simulated DUT and rig behind the station traits.
//!
//! Owns the simulation of the physics between rig and DUT ([`medium`]), the
//! DUT's behaviour (latency distributions, noise, clock drift, faults) and the
//! rig's clock and link, all driven by a scenario file ([`scenario`]). True time
//! is the host clock. The simulated parts really delay and degrade signals; the
//! host learns latencies only by measuring them. It does not measure or judge.

pub mod ether;
pub mod firmware;
pub mod medium;
pub mod scenario;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use self::ether::{Event, Speaker};
use self::medium::{Emission, Flash, Medium};
use self::scenario::{Fault, Scenario};
use super::{
    AudioPath, Camera, Capabilities, ControlPort, DeviceIdentity, Dut, Frame, HidEvent, HidInput,
    Rig, RigInfo, Station, StationError, StationResult, SyncExchange, VideoMode,
};
use crate::profile::DeviceClass;
use crate::sampling::{Block, BlockSource, Read, SourceError, BLOCK_LEN};
use crate::time::{Clock, HostClock, HostTime, RigTime};
use crate::{Error, Result};
use rig_protocol::{ErrorCode, Refusal};

/// The scenario a class uses when none is given.
pub fn default_scenario(class: DeviceClass) -> PathBuf {
    fixtures_dir()
        .join("sim")
        .join(format!("{}.toml", class.name()))
}

/// `CERTLAB_FIXTURES`, else `fixtures/` in the working directory, else the source tree's.
pub fn fixtures_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CERTLAB_FIXTURES") {
        return PathBuf::from(d);
    }
    let local = PathBuf::from("fixtures");
    if local.join("sim").is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Open a simulated station of `class`. With `rig_port`, the rig is the one a
/// `certlab sim rig` serves on that serial port in another process: this
/// process simulates only the DUT, and meets the rig's half of the physics
/// through the [`ether`]. Otherwise both halves run here, the rig's firmware
/// behind an in-memory serial link in virtual time, or (`realtime`) behind a
/// pseudo-terminal in real time.
pub fn open(
    class: DeviceClass,
    spec: &str,
    scenario: Option<&Path>,
    rig_port: Option<&str>,
    realtime: bool,
) -> Result<Station> {
    let path = scenario
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_scenario(class));
    let (sc, sha) = Scenario::load(&path)?;
    if sc.class != class {
        return Err(Error::BadInput(format!(
            "scenario {} simulates a {}, but the device spec {spec} asks for a {}",
            path.display(),
            sc.class.name(),
            class.name()
        )));
    }
    // Another process's rig lives in real time, so this one must too.
    let clock = if realtime || rig_port.is_some() {
        Clock::Real(HostClock::new())
    } else {
        Clock::new_virtual()
    };
    let halves = if rig_port.is_some() {
        Halves::Dut
    } else {
        Halves::Both
    };
    let world = Arc::new(World::new(sc.clone(), clock.clone(), halves));
    if let Some(port) = rig_port {
        let stream = ether::connect(port).map_err(Error::Device)?;
        attach_peer(&world, stream).map_err(|e| {
            Error::Harness(format!("cannot attach to the simulated rig's medium: {e}"))
        })?;
    }
    let identity = identity_of(&sc, spec);
    let has_audio = matches!(
        class,
        DeviceClass::Speakerphone | DeviceClass::Headset | DeviceClass::RoomSystem
    );
    let has_video = matches!(class, DeviceClass::Camera | DeviceClass::RoomSystem);
    let has_hid = !identity.capabilities.hid_usages.is_empty();
    let dut = Dut {
        audio: has_audio.then(|| {
            Box::new(SimAudio {
                world: world.clone(),
            }) as Box<dyn AudioPath>
        }),
        camera: has_video.then(|| Box::new(SimCamera::new(world.clone())) as Box<dyn Camera>),
        hid: has_hid.then(|| {
            Box::new(SimHid {
                world: world.clone(),
            }) as Box<dyn HidInput>
        }),
        control: (class == DeviceClass::RoomSystem).then(|| {
            Box::new(SimControl {
                world: world.clone(),
            }) as Box<dyn ControlPort>
        }),
        presence: None,
    };
    let rig = match rig_port {
        Some(port) => crate::station::serial_rig::open_port(port, clock.clone())?,
        None if clock.is_virtual() => pipe_rig(SimRig::new(world.clone()), clock.clone())?,
        None => pty_rig(SimRig::new(world.clone()), clock.clone())?,
    };
    Ok(Station {
        clock,
        identity,
        rig,
        dut,
        scenario: Some((path, sha)),
    })
}

/// Make `stream` the world's peer, and apply what arrives on it until it closes.
fn attach_peer(world: &Arc<World>, stream: std::os::unix::net::UnixStream) -> std::io::Result<()> {
    let mut reader = stream.try_clone()?;
    *lock(&world.peer) = Some(Arc::new(ether::Peer::new(stream)));
    let w = world.clone();
    std::thread::Builder::new()
        .name("certlab-sim-medium".into())
        .spawn(move || {
            loop {
                match ether::read_event(&mut reader) {
                    Ok(Some(ev)) => w.receive(ev),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("simulated medium: {e}");
                        break;
                    }
                }
            }
            *lock(&w.peer) = None;
        })?;
    Ok(())
}

/// `certlab sim rig`: serve the rig half of `scenario` on a new pseudo-terminal,
/// and its medium on the socket [`ether::socket_path`] names, until `stop` is
/// set or a scenario fault unplugs the rig. `ready` gets the port's path and
/// the socket's path once both accept connections. Runs after runs may come
/// and go; each new medium connection replaces the last.
pub fn serve_rig(
    scenario: &Path,
    port: Option<&str>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    ready: impl FnOnce(&str, &Path),
) -> Result<()> {
    use serialport::SerialPort;
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::Ordering;
    let (sc, _) = Scenario::load(scenario)?;
    let clock = Clock::Real(HostClock::new());
    let world = Arc::new(World::new(sc, clock, Halves::Rig));
    let err = |e: &dyn std::fmt::Display| {
        Error::Harness(format!(
            "cannot open a pseudo-terminal for the simulated rig: {e}"
        ))
    };
    // The firmware's end of the link: a new pseudo-terminal, or a serial
    // device that exists already (a USB gadget's /dev/ttyGS0 in the lab).
    let (mut master, slave, port) = match port {
        Some(p) => {
            let dev = serialport::new(p, 115_200)
                .timeout(Duration::from_millis(50))
                .open_native()
                .map_err(|e| {
                    Error::Device(format!("cannot serve the simulated rig on {p}: {e}"))
                })?;
            (dev, None, p.to_string())
        }
        None => {
            let (mut master, mut slave) = serialport::TTYPort::pair().map_err(|e| err(&e))?;
            master
                .set_timeout(Duration::from_millis(50))
                .map_err(|e| err(&e))?;
            // This process keeps the far end open (so the firmware never sees a
            // hang-up between runs) but lets a run open it too.
            slave.set_exclusive(false).map_err(|e| err(&e))?;
            {
                use std::os::fd::AsRawFd;
                // set_exclusive(false) leaves a shared flock, which would refuse the
                // run's exclusive one.
                // SAFETY: flock on a descriptor this process owns.
                unsafe { libc::flock(slave.as_raw_fd(), libc::LOCK_UN) };
            }
            let port = slave
                .name()
                .ok_or_else(|| Error::Harness("the pseudo-terminal has no path".into()))?;
            (master, Some(slave), port)
        }
    };
    let _ = master.set_timeout(Duration::from_millis(50));
    let sock = ether::socket_path(&port);
    let sock_err = |e: &dyn std::fmt::Display| {
        Error::Harness(format!(
            "cannot listen for the simulated medium on {}: {e}",
            sock.display()
        ))
    };
    if let Some(dir) = sock.parent() {
        std::fs::create_dir_all(dir).map_err(|e| sock_err(&e))?;
    }
    ether::clear_stale(&sock);
    let listener = UnixListener::bind(&sock).map_err(|e| sock_err(&e))?;
    listener.set_nonblocking(true).map_err(|e| sock_err(&e))?;
    let (w, st) = (world.clone(), stop.clone());
    let acceptor = std::thread::Builder::new()
        .name("certlab-sim-accept".into())
        .spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        if let Err(e) = attach_peer(&w, stream) {
                            tracing::warn!("simulated medium: {e}");
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })
        .map_err(|e| sock_err(&e))?;
    ready(&port, &sock);
    let m2 = master.try_clone_native().map_err(|e| err(&e))?;
    firmware::Firmware::run(
        Box::new(master),
        Box::new(m2),
        SimRig::new(world),
        stop.clone(),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = acceptor.join();
    let _ = std::fs::remove_file(&sock);
    drop(slave);
    Ok(())
}

/// The simulated rig behind its firmware on an in-memory serial link in
/// virtual time, reached through the same serial adapter as a real rig.
fn pipe_rig(rig: SimRig, clock: Clock) -> Result<Box<dyn Rig>> {
    let (host_end, rig_end) = crate::time::wait::pipe(&clock, Duration::from_millis(50));
    let err = |e: &dyn std::fmt::Display| {
        Error::Harness(format!("cannot start the simulated rig's firmware: {e}"))
    };
    let fw = firmware::Firmware::start(Box::new(rig_end.try_clone()), Box::new(rig_end), rig)
        .map_err(|e| err(&e))?;
    let host = crate::station::serial_rig::SerialRig::connect(
        "simulated rig link",
        Box::new(host_end.try_clone()),
        Box::new(host_end),
        clock,
    )
    .map_err(|e| Error::Device(format!("simulated rig: {e}")))?;
    Ok(Box::new(LinkedRig {
        host,
        _firmware: fw,
    }))
}

/// The simulated rig behind its firmware on a pseudo-terminal, reached through
/// the same serial adapter as a real rig.
fn pty_rig(rig: SimRig, clock: Clock) -> Result<Box<dyn Rig>> {
    use serialport::SerialPort;
    let err = |e: &dyn std::fmt::Display| {
        Error::Harness(format!(
            "cannot open a pseudo-terminal for the simulated rig: {e}"
        ))
    };
    let (mut master, mut slave) = serialport::TTYPort::pair().map_err(|e| err(&e))?;
    master
        .set_timeout(Duration::from_millis(50))
        .map_err(|e| err(&e))?;
    slave
        .set_timeout(Duration::from_millis(50))
        .map_err(|e| err(&e))?;
    let path = slave.name().unwrap_or_else(|| "pty".into());
    let m2 = master.try_clone_native().map_err(|e| err(&e))?;
    let s2 = slave.try_clone_native().map_err(|e| err(&e))?;
    let fw = firmware::Firmware::start(Box::new(master), Box::new(m2), rig).map_err(|e| err(&e))?;
    let host =
        crate::station::serial_rig::SerialRig::connect(&path, Box::new(slave), Box::new(s2), clock)
            .map_err(|e| Error::Device(format!("simulated rig: {e}")))?;
    Ok(Box::new(LinkedRig {
        host,
        _firmware: fw,
    }))
}

/// The host's serial rig with the simulated firmware it talks to (over a
/// pseudo-terminal or an in-memory link).
struct LinkedRig {
    host: crate::station::serial_rig::SerialRig,
    _firmware: firmware::Firmware,
}

impl Rig for LinkedRig {
    fn info(&self) -> RigInfo {
        self.host.info()
    }
    fn sync_exchange(&mut self) -> StationResult<SyncExchange> {
        self.host.sync_exchange()
    }
    fn load(&mut self, samples: &Arc<[f32]>) -> StationResult<()> {
        self.host.load(samples)
    }
    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: RigTime) -> StationResult<()> {
        self.host.play(samples, sample_rate, at)
    }
    fn flash_led(&mut self, at: RigTime, duration_us: u64) -> StationResult<()> {
        self.host.flash_led(at, duration_us)
    }
    fn press_button(&mut self, at: RigTime, hold_us: u64) -> StationResult<()> {
        self.host.press_button(at, hold_us)
    }
    fn set_loopback(&mut self, on: bool) -> StationResult<()> {
        self.host.set_loopback(on)
    }
    fn mic_stream(&mut self, sample_rate: u32) -> StationResult<Box<dyn BlockSource>> {
        self.host.mic_stream(sample_rate)
    }
    fn stop_streams(&mut self) -> StationResult<()> {
        self.host.stop_streams()
    }
    fn link_stats(&self) -> crate::station::LinkStats {
        self.host.link_stats()
    }
    fn restarted(&self) -> bool {
        self.host.restarted()
    }
    fn recover(&mut self) -> StationResult<()> {
        self.host.recover()
    }
    fn take_onsets(&mut self) -> Vec<crate::station::RigOnset> {
        self.host.take_onsets()
    }
}

fn identity_of(sc: &Scenario, spec: &str) -> DeviceIdentity {
    let c = &sc.capabilities;
    if let Some(dev) = &sc.usb_device {
        // The descriptors are the identity; the control port is not a USB fact.
        let mut id = DeviceIdentity::from_usb(spec, sc.class, dev.clone(), true);
        id.capabilities.serial_port = c.serial_port;
        return id;
    }
    DeviceIdentity {
        spec: spec.to_string(),
        class: sc.class,
        usb_identity: sc.identity.usb_identity.clone(),
        simulated: true,
        capabilities: Capabilities {
            audio_playback: c.audio_playback,
            audio_capture: c.audio_capture,
            playback_rates: c.playback_rates.clone(),
            capture_rates: c.capture_rates.clone(),
            hid_usages: c
                .hid_usages
                .iter()
                .filter_map(|u| scenario::parse_usage(u))
                .collect(),
            video_modes: c
                .video_modes
                .iter()
                .map(|m| VideoMode {
                    format: m.format.clone(),
                    width: m.width,
                    height: m.height,
                    fps: m.fps,
                })
                .collect(),
            serial_port: c.serial_port,
        },
        usb: None,
    }
}

/// HID input changes due at a true time: (usage page, usage, value).
type HidQueue = Mutex<VecDeque<(f64, (u16, u16, i32))>>;

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
struct World {
    sc: Scenario,
    clock: Clock,
    halves: Halves,
    /// True time of the rig's last reboot (a `rig-reset` fault).
    rig_boot: Mutex<Option<f64>>,
    /// The other process's half (`halves` is not `Both`), while connected.
    peer: Mutex<Option<Arc<ether::Peer>>>,
    medium: Mutex<Medium>,
    /// The DUT's own random draws (latencies).
    dut_rng: Mutex<StdRng>,
    hid_queue: HidQueue,
    control_queue: Mutex<VecDeque<(f64, String)>>,
    control_state: Mutex<ControlState>,
    disconnect_at: Option<f64>,
    drop_probability: f64,
}

#[derive(Debug)]
struct ControlState {
    muted: bool,
    volume: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl World {
    fn new(sc: Scenario, clock: Clock, halves: Halves) -> Self {
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
            dut_rng: Mutex::new(StdRng::seed_from_u64(sc.seed)),
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

    fn now(&self) -> f64 {
        self.clock.now().as_secs_f64()
    }

    /// Fails once the simulated DUT has been unplugged by `t`.
    fn check_connected(&self, t: f64) -> StationResult<()> {
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
    fn rig_us(&self, t: f64) -> f64 {
        let c = &self.sc.clocks;
        let rate = 1.0 + c.rig_drift_ppm * 1e-6;
        match *lock(&self.rig_boot) {
            Some(b) => (t - b) * rate * 1e6,
            None => (t * rate + c.rig_offset_s) * 1e6,
        }
    }

    fn true_of_rig(&self, r: RigTime) -> f64 {
        let c = &self.sc.clocks;
        let rate = 1.0 + c.rig_drift_ppm * 1e-6;
        match *lock(&self.rig_boot) {
            Some(b) => r.0 as f64 * 1e-6 / rate + b,
            None => (r.0 as f64 * 1e-6 - c.rig_offset_s) / rate,
        }
    }

    /// The rig reboots: its clock starts again from zero now, its loopback is off.
    fn rig_reboot(&self) {
        *lock(&self.rig_boot) = Some(self.now());
        lock(&self.medium).loopback = None;
    }

    fn sleep_until(&self, t: f64) {
        // Rounded up (and a nanosecond on): after the sleep, `now() >= t`
        // holds in seconds too, or a loop that waits for `t` would spin in
        // virtual time, which does not move by itself.
        self.clock
            .sleep_until(HostTime((t * 1e9).ceil() as i64 + 1));
    }

    fn monotonic_ns(&self, t: f64) -> i64 {
        self.clock.to_monotonic(HostTime::from_secs_f64(t))
    }

    fn local_time(&self, ns: i64) -> f64 {
        self.clock.from_monotonic(ns).as_secs_f64()
    }

    /// Hand an event to the other process's half; a gone peer is forgotten
    /// (what happens in the air then reaches nobody, as in an empty room).
    fn to_peer(&self, ev: Event) {
        let peer = lock(&self.peer).clone();
        if let Some(p) = peer {
            if !p.send(&ev) {
                *lock(&self.peer) = None;
            }
        }
    }

    // Emitters: each reaches the receiving half here, or in the other process.

    /// A sound leaving `from` for the other process.
    fn send_sound(&self, from: Speaker, e: Emission) {
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
    fn rig_speaker(&self, e: Emission) {
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
    fn rig_led(&self, f: Flash) {
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
    fn rig_actuator(&self, down: f64, up: f64) {
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
    fn dut_speaker(&self, e: Emission) {
        if self.halves == Halves::Dut {
            self.send_sound(Speaker::Dut, e);
        } else {
            self.rig_hears(e);
        }
    }

    /// An event from the other process's half.
    fn receive(&self, ev: Event) {
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
    fn dut_hears(&self, e: Emission) {
        let lat = self.sc.latency.audio_send.draw(&mut *lock(&self.dut_rng));
        let mut m = lock(&self.medium);
        m.prune(self.now() - 2.0);
        m.to_dut.push((e, lat));
    }

    /// The DUT's button: its HID reports follow the press and the release
    /// after the DUT's HID latency.
    fn dut_pressed(&self, down: f64, up: f64) {
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
    fn rig_hears(&self, e: Emission) {
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

fn db(x: f64) -> f32 {
    10f64.powf(x / 20.0) as f32
}

fn gaussian(rng: &mut StdRng) -> f32 {
    rand_distr::Distribution::<f64>::sample(&rand_distr::StandardNormal, rng) as f32
}

// ---------------------------------------------------------------- rig

/// The simulated rig's hardware: its clock, its link's delays, and what its
/// speaker, LED, actuator and microphone do to the medium. Its firmware
/// ([`firmware`]) speaks the protocol in front of it; refusals are typed as
/// the protocol's.
pub struct SimRig {
    world: Arc<World>,
    link_rng: StdRng,
}

/// A refusal of the simulated rig's hardware.
fn refuse(code: ErrorCode, text: std::fmt::Arguments<'_>) -> Refusal {
    Refusal::fmt(code, text)
}

impl SimRig {
    fn new(world: Arc<World>) -> Self {
        let seed = world.sc.seed ^ 0x5249_4721;
        SimRig {
            world,
            link_rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The rig's clock now.
    fn now(&self) -> RigTime {
        RigTime(self.world.rig_us(self.world.now()).floor() as u64)
    }

    /// The delay of a transfer starting at true time `t`.
    fn link_delay(&mut self, t: f64, range: [f64; 2]) -> f64 {
        self.world.sc.link.delay(t, range, &mut self.link_rng)
    }

    /// Bytes the host wrote have just reached the link: wait out the up-link
    /// delay, and return the rig time at which the firmware has them (a
    /// SyncReply's stamp).
    fn arrive(&mut self) -> RigTime {
        let now = self.world.now();
        let up = self.link_delay(now, self.world.sc.link.up_us);
        self.world.sleep_until(now + up);
        RigTime(self.world.rig_us(now + up).floor() as u64)
    }

    /// The firmware's replies wait out the down-link delay before the host
    /// can read them.
    fn depart(&mut self) {
        let now = self.world.now();
        let down = self.link_delay(now, self.world.sc.link.down_us);
        self.world.sleep_until(now + down);
    }

    fn info(&self) -> RigInfo {
        RigInfo {
            kind: "simulated rig".into(),
            serial: "SIM-RIG-0001".into(),
            firmware: env!("CARGO_PKG_VERSION").into(),
            protocol: 1,
            mic_sample_rates: vec![16_000, 44_100, 48_000, 96_000],
            loopback_delay_us: 500,
        }
    }

    /// The true time of rig time `at`, which must not have passed.
    fn schedule_time(&self, at: RigTime, what: &str) -> Result<f64, Refusal> {
        let t = self.world.true_of_rig(at);
        let now = self.world.now();
        if t < now {
            return Err(refuse(
                ErrorCode::Late,
                format_args!(
                    "{what} scheduled for rig time {} us is {:.1} ms late",
                    at.0,
                    (now - t) * 1e3
                ),
            ));
        }
        Ok(t)
    }

    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: RigTime) -> Result<(), Refusal> {
        let t = self.schedule_time(at, "play")?;
        let w = &self.world;
        let rate = sample_rate as f64 * (1.0 + w.sc.clocks.rig_drift_ppm * 1e-6);
        w.rig_speaker(Emission {
            t_start: t,
            rate,
            gain: 1.0,
            samples,
        });
        Ok(())
    }

    fn flash_led(&mut self, at: RigTime, duration_us: u64) -> Result<(), Refusal> {
        let t = self.schedule_time(at, "LED flash")?;
        self.world.rig_led(Flash {
            on: t,
            off: t + duration_us as f64 * 1e-6,
        });
        Ok(())
    }

    fn press_button(&mut self, at: RigTime, hold_us: u64) -> Result<(), Refusal> {
        let t = self.schedule_time(at, "button press")?;
        self.world.rig_actuator(t, t + hold_us as f64 * 1e-6);
        Ok(())
    }

    fn set_loopback(&mut self, on: bool) {
        let d = self.info().loopback_delay_us as f64 * 1e-6;
        lock(&self.world.medium).loopback = on.then_some(d);
    }

    fn mic_stream(&mut self, sample_rate: u32) -> Result<RigMic, Refusal> {
        let rates = self.info().mic_sample_rates;
        if !rates.contains(&sample_rate) {
            return Err(refuse(
                ErrorCode::BadParameter,
                format_args!(
                    "the rig's microphone cannot stream at {sample_rate} Hz (it offers {rates:?})"
                ),
            ));
        }
        let w = self.world.clone();
        let start_us = w.rig_us(w.now() + 0.002).ceil();
        let seed = w.sc.seed ^ 0x004d_4943;
        Ok(RigMic {
            rate: sample_rate,
            start_us,
            n: 0,
            seq: 0,
            gain: db(w.sc.audio.rig_mic_gain_db),
            noise: db(w.sc.audio.rig_mic_noise_dbfs),
            rng: StdRng::seed_from_u64(seed),
            world: w,
        })
    }
}

/// The rig's reference microphone: sampled on the rig's clock, stamped in rig time.
struct RigMic {
    world: Arc<World>,
    rate: u32,
    start_us: f64,
    n: u64,
    seq: u64,
    gain: f32,
    noise: f32,
    rng: StdRng,
}

impl BlockSource for RigMic {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn read_block(&mut self, out: &mut Block) -> std::result::Result<Read, SourceError> {
        let us_per = 1e6 / self.rate as f64;
        let rig_first = self.start_us + self.n as f64 * us_per;
        let w = &*self.world;
        let t_end = w.true_of_rig(RigTime((rig_first + BLOCK_LEN as f64 * us_per) as u64));
        w.sleep_until(t_end);
        {
            let m = lock(&w.medium);
            for (j, slot) in out.data.iter_mut().enumerate() {
                let t = w.true_of_rig(RigTime(0))
                    + (rig_first + j as f64 * us_per) * 1e-6
                        / (1.0 + w.sc.clocks.rig_drift_ppm * 1e-6);
                let mut v = 0.0;
                for e in &m.at_rig_mic {
                    v += e.value_at(t);
                }
                *slot = self.gain * v + self.noise * gaussian(&mut self.rng);
            }
        }
        out.seq = self.seq;
        out.t_first_ns = (rig_first * 1e3).round() as i64;
        out.len = BLOCK_LEN as u16;
        out.corrupt = false;
        self.seq += 1;
        self.n += BLOCK_LEN as u64;
        Ok(Read::Block)
    }
}

// ---------------------------------------------------------------- DUT audio

struct SimAudio {
    world: Arc<World>,
}

fn unsupported(what: &str, rate: u32, rates: &[u32]) -> StationError {
    StationError::Other(format!(
        "the device does not support {what} at {rate} Hz (its descriptors offer {rates:?})"
    ))
}

impl AudioPath for SimAudio {
    fn capture_stream(&mut self, sample_rate: u32) -> StationResult<Box<dyn BlockSource>> {
        let w = self.world.clone();
        w.check_connected(w.now())?;
        let caps = &w.sc.capabilities;
        if !caps.audio_capture || !caps.capture_rates.contains(&sample_rate) {
            return Err(unsupported("capture", sample_rate, &caps.capture_rates));
        }
        let a = &w.sc.audio;
        Ok(Box::new(DutCapture {
            nominal: sample_rate,
            t0: w.now() + 0.001,
            rate: sample_rate as f64 * (1.0 + w.sc.clocks.dut_audio_drift_ppm * 1e-6),
            n: 0,
            seq: 0,
            gain: db(a.capture_gain_db) * a.capture_polarity as f32,
            noise: db(a.capture_noise_dbfs),
            jitter_ns: w.sc.clocks.stamp_jitter_us * 1e3,
            rng: StdRng::seed_from_u64(w.sc.seed ^ 0xCA97),
            world: w,
        }))
    }

    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: HostTime) -> StationResult<()> {
        let w = &self.world;
        w.check_connected(w.now())?;
        let caps = &w.sc.capabilities;
        if !caps.audio_playback || !caps.playback_rates.contains(&sample_rate) {
            return Err(unsupported("playback", sample_rate, &caps.playback_rates));
        }
        let lat = w.sc.latency.audio_receive.draw(&mut *lock(&w.dut_rng));
        let rate = sample_rate as f64 * (1.0 + w.sc.clocks.dut_audio_drift_ppm * 1e-6);
        w.dut_speaker(Emission {
            t_start: at.as_secs_f64() + lat,
            rate,
            gain: 1.0,
            samples,
        });
        Ok(())
    }
}

/// The DUT's microphone path as the host sees it: samples on the DUT's clock,
/// stamped by the host on arrival.
struct DutCapture {
    world: Arc<World>,
    nominal: u32,
    t0: f64,
    rate: f64,
    n: u64,
    seq: u64,
    gain: f32,
    noise: f32,
    jitter_ns: f64,
    rng: StdRng,
}

impl BlockSource for DutCapture {
    fn sample_rate(&self) -> u32 {
        self.nominal
    }

    fn read_block(&mut self, out: &mut Block) -> std::result::Result<Read, SourceError> {
        let w = &*self.world;
        loop {
            let t_first = self.t0 + self.n as f64 / self.rate;
            let t_end = self.t0 + (self.n + BLOCK_LEN as u64) as f64 / self.rate;
            w.sleep_until(t_end);
            if let Err(StationError::Disconnected(why)) = w.check_connected(t_end) {
                return Err(SourceError::Disconnected(why));
            }
            let seq = self.seq;
            self.seq += 1;
            self.n += BLOCK_LEN as u64;
            if w.drop_probability > 0.0 && self.rng.random_bool(w.drop_probability) {
                continue; // the device lost this block; the host sees a sequence gap
            }
            {
                let m = lock(&w.medium);
                for (j, slot) in out.data.iter_mut().enumerate() {
                    let t = t_first + j as f64 / self.rate;
                    let mut v = 0.0;
                    for (e, lat) in &m.to_dut {
                        v += e.value_at(t - lat);
                    }
                    *slot = self.gain * v + self.noise * gaussian(&mut self.rng);
                }
            }
            let jitter = self.jitter_ns * gaussian(&mut self.rng) as f64;
            out.seq = seq;
            out.t_first_ns = (t_first * 1e9 + jitter).round() as i64;
            out.len = BLOCK_LEN as u16;
            out.corrupt = false;
            return Ok(Read::Block);
        }
    }
}

// ---------------------------------------------------------------- camera

struct SimCamera {
    world: Arc<World>,
    t0: f64,
    k: u64,
    last_arrival: f64,
    rng: StdRng,
}

impl SimCamera {
    fn new(world: Arc<World>) -> Self {
        let seed = world.sc.seed ^ 0xCA3E;
        SimCamera {
            world,
            t0: 0.0,
            k: 0,
            last_arrival: 0.0,
            rng: StdRng::seed_from_u64(seed),
        }
    }
}

impl Camera for SimCamera {
    fn start(&mut self) -> StationResult<()> {
        let w = &self.world;
        w.check_connected(w.now())?;
        self.t0 = w.now();
        self.k = 0;
        self.last_arrival = 0.0;
        Ok(())
    }

    fn next_frame(&mut self, timeout: Duration) -> StationResult<Option<Frame>> {
        let w = self.world.clone();
        let v = &w.sc.video;
        let period = 1.0 / (v.fps * (1.0 + w.sc.clocks.camera_drift_ppm * 1e-6));
        let s = self.t0 + self.k as f64 * period;
        let lat = w.sc.latency.video.draw(&mut *lock(&w.dut_rng));
        // Frames leave the camera in order.
        let arrival = (s + period / 2.0 + lat).max(self.last_arrival + 1e-4);
        let deadline = w.now() + timeout.as_secs_f64();
        if arrival > deadline {
            w.sleep_until(deadline);
            w.check_connected(w.now())?;
            return Ok(None);
        }
        w.sleep_until(arrival);
        w.check_connected(arrival)?;
        self.last_arrival = arrival;
        self.k += 1;
        // The LED's share of this frame's exposure [s, s + period].
        let lit: f64 = {
            let m = lock(&w.medium);
            m.flashes
                .iter()
                .map(|f| (f.off.min(s + period) - f.on.max(s)).max(0.0))
                .sum::<f64>()
                / period
        };
        let (wd, ht) = (v.width as usize, v.height as usize);
        let r = v.led_region;
        let (x0, y0) = ((r[0] * wd as f64) as usize, (r[1] * ht as f64) as usize);
        let (x1, y1) = (
            ((r[0] + r[2]) * wd as f64) as usize,
            ((r[1] + r[3]) * ht as f64) as usize,
        );
        let mut luma = vec![0u8; wd * ht];
        for y in 0..ht {
            for x in 0..wd {
                let mut p = v.background + v.noise * gaussian(&mut self.rng) as f64;
                if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                    p += v.led_level * lit.min(1.0);
                }
                luma[y * wd + x] = p.round().clamp(0.0, 255.0) as u8;
            }
        }
        let jitter = w.sc.clocks.stamp_jitter_us * 1e-6 * gaussian(&mut self.rng) as f64;
        Ok(Some(Frame {
            seq: self.k - 1,
            host_time: HostTime::from_secs_f64(arrival + jitter),
            width: v.width,
            height: v.height,
            luma,
        }))
    }

    fn stop(&mut self) -> StationResult<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------- HID

struct SimHid {
    world: Arc<World>,
}

/// Wait for the first queued item due before `deadline`.
fn next_due<T>(
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

impl HidInput for SimHid {
    fn next_event(&mut self, timeout: Duration) -> StationResult<Option<HidEvent>> {
        let w = &*self.world;
        Ok(
            next_due(w, &w.hid_queue, timeout)?.map(|(t, (usage_page, usage, value))| HidEvent {
                host_time: HostTime::from_secs_f64(t),
                usage_page,
                usage,
                value,
            }),
        )
    }
}

// ---------------------------------------------------------------- control port

struct SimControl {
    world: Arc<World>,
}

impl SimControl {
    /// The room system's answer to one command line.
    fn answer(&self, line: &str) -> String {
        let w = &self.world;
        let cmd = line.trim();
        if w.sc.control.broken_commands.iter().any(|b| b == cmd) {
            return "*r Result (status=Error): Command not supported".into();
        }
        let mut st = lock(&w.control_state);
        let version = if w.sc.control.software_version.is_empty() {
            "ce11.9.1"
        } else {
            &w.sc.control.software_version
        };
        match cmd {
            "xStatus SystemUnit Software Version" => {
                format!("*s SystemUnit Software Version: \"{version}\"")
            }
            "xStatus SystemUnit ProductId" => {
                format!("*s SystemUnit ProductId: \"{}\"", w.sc.identity.product)
            }
            "xStatus Audio Microphones Mute" => {
                format!(
                    "*s Audio Microphones Mute: {}",
                    if st.muted { "On" } else { "Off" }
                )
            }
            "xCommand Audio Microphones Mute" => {
                st.muted = true;
                "*r MicrophonesMuteResult (status=OK)".into()
            }
            "xCommand Audio Microphones Unmute" => {
                st.muted = false;
                "*r MicrophonesUnmuteResult (status=OK)".into()
            }
            "xStatus Audio Volume" => format!("*s Audio Volume: {}", st.volume),
            _ => {
                if let Some(level) = cmd.strip_prefix("xCommand Audio Volume Set Level: ") {
                    match level.trim().parse::<u32>() {
                        Ok(v) if v <= 100 => {
                            st.volume = v;
                            "*r AudioVolumeSetResult (status=OK)".into()
                        }
                        _ => "*r AudioVolumeSetResult (status=Error): Level out of range".into(),
                    }
                } else {
                    "*r Result (status=Error): Unknown command".into()
                }
            }
        }
    }
}

impl ControlPort for SimControl {
    fn send_line(&mut self, line: &str) -> StationResult<HostTime> {
        let w = &*self.world;
        let now = w.now();
        w.check_connected(now)?;
        let delay = w.sc.latency.control.draw(&mut *lock(&w.dut_rng));
        let reply = self.answer(line);
        let mut q = lock(&w.control_queue);
        q.push_back((now + delay, reply));
        q.make_contiguous().sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(HostTime::from_secs_f64(now))
    }

    fn read_line(&mut self, timeout: Duration) -> StationResult<Option<(String, HostTime)>> {
        Ok(next_due(&self.world, &self.world.control_queue, timeout)?
            .map(|(t, line)| (line, HostTime::from_secs_f64(t))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over the serial protocol, a stimulus is uploaded once: by `load`
    /// before the shots, after which each `play` is one command (one
    /// acknowledgement) however long the stimulus; a stimulus with other
    /// samples is uploaded again.
    #[test]
    fn a_loaded_stimulus_is_played_without_another_upload() {
        let mut st = open(DeviceClass::Speakerphone, "sim", None, None, false).unwrap();
        let _p = st.clock.participate();
        let rig = st.rig.as_mut();
        // 100 ms at 48 kHz: several StimulusData chunks.
        let a: Arc<[f32]> = (0..4800).map(|i| ((i % 97) as f32 / 97.0) - 0.5).collect();
        let frames = |r: &dyn Rig| r.link_stats().frames;
        let f0 = frames(rig);
        rig.load(&a).unwrap();
        let upload = frames(rig) - f0;
        assert!(
            upload >= 2,
            "an upload of 4800 samples took {upload} frames"
        );
        let soon = |r: &mut dyn Rig| RigTime(r.sync_exchange().unwrap().rig.0 + 2_000_000);
        let f1 = frames(rig);
        let at = soon(rig);
        rig.play(a.clone(), 48_000, at).unwrap();
        let at = soon(rig);
        rig.play(a.clone(), 48_000, at).unwrap();
        // Two sync replies and two acknowledgements.
        assert_eq!(frames(rig) - f1, 4);
        let b: Arc<[f32]> = a.iter().map(|v| -v).collect();
        let f2 = frames(rig);
        rig.load(&b).unwrap();
        assert_eq!(frames(rig) - f2, upload);
        rig.load(&a).unwrap();
        assert_eq!(frames(rig) - f2, upload, "a is still in the rig's memory");
    }
}
