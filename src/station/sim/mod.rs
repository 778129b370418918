//! The simulated station: a simulated DUT and rig behind the station traits.
//!
//! Owns the simulation of the physics between rig and DUT ([`medium`]), the
//! DUT's behaviour (latency distributions, noise, clock drift, faults) and the
//! rig's clock and link, all driven by a scenario file ([`scenario`]). True time
//! is the host clock. The simulated parts really delay and degrade signals; the
//! host learns latencies only by measuring them. It does not measure or judge.

mod audio;
mod camera;
mod control;
pub mod ether;
pub mod firmware;
mod hid;
pub mod interface;
mod link;
pub mod medium;
mod rig;
pub mod scenario;
mod world;

pub use rig::SimRig;
pub use world::Halves;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use self::audio::SimAudio;
use self::camera::SimCamera;
use self::control::SimControl;
use self::hid::SimHid;
use self::link::{pipe_rig, pty_rig};
use self::scenario::Scenario;
use self::world::{lock, World};
use super::{
    AudioPath, Camera, Capabilities, ControlPort, DeviceIdentity, Dut, HidInput, Station, VideoMode,
};
use crate::profile::DeviceClass;
use crate::time::{Clock, HostClock};
use crate::{Error, Result};

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
/// through the [`ether`] (on a real `clock`: the other process lives in real
/// time). Otherwise both halves run here, the rig's firmware behind an
/// in-memory serial link on a virtual `clock`, or behind a pseudo-terminal
/// on a real one.
pub fn open(
    class: DeviceClass,
    spec: &str,
    scenario: Option<&Path>,
    rig_port: Option<&str>,
    clock: Clock,
) -> Result<Station> {
    let rig = match rig_port {
        Some(p) => SimRigChoice::Port(p),
        None => SimRigChoice::InProcess,
    };
    open_with(class, spec, scenario, rig, clock)
}

/// Which rig measures a simulated DUT.
pub enum SimRigChoice<'a> {
    /// The simulated serial rig, in this process.
    InProcess,
    /// The simulated serial rig a `certlab sim rig` serves on this port.
    Port(&'a str),
    /// The simulated audio interface (`--rig audio:sim`), wired as this
    /// station file says, in this process.
    Interface(Box<crate::station::audio_rig::StationFile>),
}

/// [`open`] with any rig kind.
pub fn open_with(
    class: DeviceClass,
    spec: &str,
    scenario: Option<&Path>,
    rig_choice: SimRigChoice<'_>,
    clock: Clock,
) -> Result<Station> {
    let rig_port = match &rig_choice {
        SimRigChoice::Port(p) => Some(*p),
        _ => None,
    };
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
    if rig_port.is_some() && clock.is_virtual() {
        return Err(Error::Harness(
            "a rig in another process lives in real time: this station cannot run on a virtual clock"
                .into(),
        ));
    }
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
    let rig: Box<dyn crate::station::Rig> = match rig_choice {
        SimRigChoice::Port(port) => crate::station::serial_rig::open_port(port, clock.clone())?,
        SimRigChoice::Interface(station) => {
            let iface = interface::SimInterface::open(world.clone(), &station)
                .map_err(|e| Error::Device(format!("--rig audio:sim: {e}")))?;
            Box::new(crate::station::audio_rig::AudioRig::open_live(
                Box::new(iface),
                *station,
                clock.clone(),
            )?)
        }
        SimRigChoice::InProcess if clock.is_virtual() => {
            pipe_rig(SimRig::new(world.clone()), clock.clone())?
        }
        SimRigChoice::InProcess => pty_rig(SimRig::over_pty(world.clone()), clock.clone())?,
    };
    Ok(Station {
        clock,
        identity,
        rig,
        dut,
        scenario: Some((path, sha)),
    })
}

/// The simulated audio interface as a rig on its own (`certlab probe rig
/// --rig audio:sim`), in a world of `scenario` (default: the
/// speakerphone's), without the live-microphone check (the probe shows
/// the levels first). The caller takes part in `clock` before.
pub fn interface_rig(
    station: crate::station::audio_rig::StationFile,
    scenario: Option<&Path>,
    clock: Clock,
) -> Result<crate::station::audio_rig::AudioRig> {
    let path = scenario
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_scenario(DeviceClass::Speakerphone));
    let (sc, _) = Scenario::load(&path)?;
    let world = Arc::new(World::new(sc, clock.clone(), Halves::Both));
    let iface = interface::SimInterface::open(world, &station)
        .map_err(|e| Error::Device(format!("--rig audio:sim: {e}")))?;
    crate::station::audio_rig::AudioRig::open(Box::new(iface), station, clock)
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
    let host = HostClock::new();
    // The simulator's truth, which nothing on the host's side reads: where
    // the rig's clock sits on CLOCK_MONOTONIC (which the run's process
    // shares), for a test to hold the host's clock-sync bounds against.
    eprintln!(
        "certlab: simulated rig clock: {:.3} µs at CLOCK_MONOTONIC {} ns, {:+} ppm",
        sc.clocks.rig_offset_s * 1e6,
        host.to_monotonic(crate::time::HostTime(0)),
        sc.clocks.rig_drift_ppm
    );
    let clock = Clock::Real(host);
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
        SimRig::over_pty(world),
        stop.clone(),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = acceptor.join();
    let _ = std::fs::remove_file(&sock);
    drop(slave);
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::station::Rig;
    use crate::time::RigTime;

    /// Over the serial protocol, a stimulus is uploaded once: by `load`
    /// before the shots, after which each `play` is one command (one
    /// acknowledgement) however long the stimulus; a stimulus with other
    /// samples is uploaded again.
    #[test]
    fn a_loaded_stimulus_is_played_without_another_upload() {
        let (clock, _p) = Clock::new_virtual_joined();
        let mut st = open(DeviceClass::Speakerphone, "sim", None, None, clock).unwrap();
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
