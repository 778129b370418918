//! The simulated rig's serial link inside one process: its firmware behind
//! an in-memory pipe (virtual time) or a pseudo-terminal (real time),
//! reached through the same serial adapter as a real rig.

use std::sync::Arc;
use std::time::Duration;

use super::firmware;
use super::rig::SimRig;
use crate::sampling::BlockSource;
use crate::station::{Rig, RigInfo, StationResult, SyncExchange};
use crate::time::{Clock, RigTime};
use crate::{Error, Result};

/// The simulated rig behind its firmware on an in-memory serial link in
/// virtual time, reached through the same serial adapter as a real rig.
pub(super) fn pipe_rig(rig: SimRig, clock: Clock) -> Result<Box<dyn Rig>> {
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
pub(super) fn pty_rig(rig: SimRig, clock: Clock) -> Result<Box<dyn Rig>> {
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
pub(super) struct LinkedRig {
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
