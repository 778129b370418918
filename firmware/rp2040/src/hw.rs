//! The rig's hardware behind rig-protocol's `RigHandler`: what each command
//! does, and the limits that turn a bad command into a refusal, never a panic.

use rig_protocol::codec::{HelloReply, Rates};
use rig_protocol::rig::ALL_SENSORS;
use rig_protocol::{Command, ErrorCode, Refusal, RigHandler, RigTime, StimulusStore};

use crate::{actuate, ident, sampler, speaker};

pub const KIND: &str = "certlab-rig-rp2040";
/// Stimulus memory: 96 000 samples, 2 s at 48 kHz (192 KiB of the 264 KiB SRAM).
pub const STIMULUS_SAMPLES: usize = 96_000;
/// The loopback copies the newest microphone sample to the speaker each time
/// the main loop runs (every millisecond): 1 ms on average, up to 2 ms.
pub const LOOPBACK_DELAY_US: u32 = 1_000;
/// Longest solenoid hold and LED flash accepted (protects the solenoid).
const MAX_HOLD_US: u32 = 2_000_000;
const MAX_FLASH_US: u32 = 10_000_000;
/// Scheduled times must lie within this of now (TIMER alarms compare 32 bits).
const MAX_AHEAD_US: u64 = 1 << 31;

const RATES: [u32; 1] = [sampler::RATE];

pub struct Hw {
    pub store: StimulusStore<'static, 16>,
    pub serial: &'static str,
    pub loopback: bool,
    /// Streaming on, per sampler input (0 microphone, 1 photodiode).
    pub streaming: [bool; 2],
    /// A restart of a stream was asked for (its counter goes back to 0).
    pub restart: [bool; 2],
}

fn ahead(at: RigTime, now: RigTime) -> Result<u64, Refusal> {
    if at.0.saturating_sub(now.0) >= MAX_AHEAD_US {
        return Err(Refusal::new(
            ErrorCode::BadParameter,
            "scheduled more than 35 minutes ahead",
        ));
    }
    Ok(at.0)
}

impl RigHandler for Hw {
    fn hello(&self) -> HelloReply<'_> {
        HelloReply {
            sensors: ALL_SENSORS,
            loopback_delay_us: LOOPBACK_DELAY_US,
            stimulus_capacity: self.store.capacity(),
            mic_sample_rates: Rates::List(&RATES),
            kind: KIND,
            firmware: ident::VERSION,
            serial: self.serial,
        }
    }

    fn new_session(&mut self) {
        self.streaming = [false; 2];
        self.loopback = false;
        speaker::cancel();
        actuate::cancel_all();
    }

    fn command(&mut self, cmd: Command<'_>, now: RigTime) -> Result<(), Refusal> {
        match cmd {
            Command::StimulusData {
                id,
                total,
                offset,
                samples,
            } => {
                if speaker::busy() {
                    return Err(Refusal::new(
                        ErrorCode::Busy,
                        "a playback is scheduled or running",
                    ));
                }
                self.store
                    .chunk(id, total, offset, &samples)
                    .map_err(|c| Refusal::fmt(c, format_args!("stimulus {id}: {c}")))
            }
            Command::Play {
                at,
                sample_rate,
                id,
            } => {
                if sample_rate != speaker::RATE {
                    return Err(Refusal::fmt(
                        ErrorCode::BadParameter,
                        format_args!("the speaker plays at {} Hz only", speaker::RATE),
                    ));
                }
                let at = ahead(at, now)?;
                if speaker::busy() {
                    return Err(Refusal::new(
                        ErrorCode::Busy,
                        "a playback is already scheduled",
                    ));
                }
                let s = self
                    .store
                    .play(id)
                    .map_err(|c| Refusal::fmt(c, format_args!("stimulus {id}: {c}")))?;
                if speaker::schedule(at, s) {
                    Ok(())
                } else {
                    Err(Refusal::new(
                        ErrorCode::Busy,
                        "a playback is already scheduled",
                    ))
                }
            }
            Command::FlashLed { at, duration_us } => {
                if duration_us == 0 || duration_us > MAX_FLASH_US {
                    return Err(Refusal::new(ErrorCode::BadParameter, "duration 1 us..10 s"));
                }
                actuate::schedule(true, ahead(at, now)?, duration_us).map_err(refused)
            }
            Command::PressButton { at, hold_us } => {
                if hold_us == 0 || hold_us > MAX_HOLD_US {
                    return Err(Refusal::new(ErrorCode::BadParameter, "hold 1 us..2 s"));
                }
                actuate::schedule(false, ahead(at, now)?, hold_us).map_err(refused)
            }
            Command::SetLoopback { on } => {
                self.loopback = on;
                if !on {
                    speaker::set_level_if_idle(0);
                }
                Ok(())
            }
            Command::StreamMic { sample_rate, on } => self.stream(0, sample_rate, on),
            Command::StreamPhotodiode { sample_rate, on } => self.stream(1, sample_rate, on),
        }
    }
}

fn refused(r: actuate::Refused) -> Refusal {
    match r {
        // Protocol: *busy* (8) is the code for both, the station's fault.
        actuate::Refused::QueueFull => Refusal::new(ErrorCode::Busy, "schedule queue full"),
        actuate::Refused::Overlaps => {
            Refusal::new(ErrorCode::Busy, "overlaps an interval already scheduled")
        }
    }
}

impl Hw {
    fn stream(&mut self, input: usize, rate: u32, on: bool) -> Result<(), Refusal> {
        if on && rate != sampler::RATE {
            return Err(Refusal::fmt(
                ErrorCode::BadParameter,
                format_args!("streams run at {} Hz only", sampler::RATE),
            ));
        }
        if on && !self.streaming[input] {
            self.restart[input] = true;
        }
        self.streaming[input] = on;
        Ok(())
    }
}
