//! The simulated DUT's HID telephony interface: input reports the rig's
//! actuator causes, after the DUT's HID latency.

use std::sync::Arc;
use std::time::Duration;

use super::world::{next_due, World};
use crate::station::{HidEvent, HidInput, StationResult};
use crate::time::HostTime;

pub(super) struct SimHid {
    pub(super) world: Arc<World>,
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
