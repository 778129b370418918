//! The simulated room system's serial control port: answers to command
//! lines after its control latency.

use std::sync::Arc;
use std::time::Duration;

use super::world::{lock, next_due, World};
use crate::station::{ControlPort, StationResult};
use crate::time::HostTime;

pub(super) struct SimControl {
    pub(super) world: Arc<World>,
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
