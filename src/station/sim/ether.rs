//! The physical medium between a simulated rig and a simulated DUT that run in
//! two processes: `certlab sim rig` in one, `certlab run --device sim --rig
//! serial:PATH` in the other.
//!
//! Owns the side channel (a Unix socket found from the rig's serial path) and
//! its wire format. What crosses it is physics only: a sound leaving a speaker,
//! the LED's light, the actuator's finger on a button, each at an absolute
//! CLOCK_MONOTONIC time, which both processes share. It never carries a
//! latency, a clock offset or anything else the host is there to measure, and
//! the host-facing code never reads it: only the simulated rig and the
//! simulated DUT do.
//!
//! Frame: `u32` little-endian payload length, then the payload: a tag byte and
//! the fields in little-endian order.
//! - `1` sound from the rig's speaker, `2` sound from the DUT's speaker:
//!   `i64` start (ns), `f64` sample rate (Hz, the emitter's true rate),
//!   `f32` gain, `u32` n, n × `f32` samples;
//! - `3` LED light: `i64` on (ns), `i64` off (ns);
//! - `4` button pressed by the actuator: `i64` down (ns), `i64` up (ns).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Largest frame accepted (a 10 s stimulus at 192 kHz is 7.7 MB).
const MAX_FRAME: usize = 16 << 20;

/// Where the medium of the simulated rig serving `port` listens: a socket in
/// the temporary directory named after the port's path, so that a run given
/// only `--rig serial:PATH` finds it.
pub fn socket_path(port: &str) -> PathBuf {
    let name: String = port
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::env::temp_dir()
        .join("certlab-sim-rig")
        .join(format!("{name}.sock"))
}

/// Which speaker a sound leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Rig,
    Dut,
}

/// One physical event, at absolute CLOCK_MONOTONIC nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Sound {
        from: Speaker,
        start_ns: i64,
        rate: f64,
        gain: f32,
        samples: Arc<[f32]>,
    },
    Light {
        on_ns: i64,
        off_ns: i64,
    },
    Press {
        down_ns: i64,
        up_ns: i64,
    },
}

impl Event {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::new();
        match self {
            Event::Sound {
                from,
                start_ns,
                rate,
                gain,
                samples,
            } => {
                p.reserve(29 + 4 * samples.len());
                p.push(match from {
                    Speaker::Rig => 1,
                    Speaker::Dut => 2,
                });
                p.extend_from_slice(&start_ns.to_le_bytes());
                p.extend_from_slice(&rate.to_le_bytes());
                p.extend_from_slice(&gain.to_le_bytes());
                p.extend_from_slice(&(samples.len() as u32).to_le_bytes());
                for v in samples.iter() {
                    p.extend_from_slice(&v.to_le_bytes());
                }
            }
            Event::Light { on_ns, off_ns } => {
                p.push(3);
                p.extend_from_slice(&on_ns.to_le_bytes());
                p.extend_from_slice(&off_ns.to_le_bytes());
            }
            Event::Press { down_ns, up_ns } => {
                p.push(4);
                p.extend_from_slice(&down_ns.to_le_bytes());
                p.extend_from_slice(&up_ns.to_le_bytes());
            }
        }
        let mut out = Vec::with_capacity(4 + p.len());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&p);
        out
    }

    /// Decode one payload (without its length prefix).
    pub fn decode(p: &[u8]) -> Result<Event, String> {
        let mut at = 1usize;
        let mut take = |n: usize| -> Result<&[u8], String> {
            let s = p
                .get(at..at + n)
                .ok_or_else(|| format!("medium frame of {} bytes is truncated", p.len()))?;
            at += n;
            Ok(s)
        };
        let i64_at = |b: &[u8]| i64::from_le_bytes(b.try_into().expect("8 bytes"));
        let ev = match p.first() {
            Some(&tag @ (1 | 2)) => {
                let start_ns = i64_at(take(8)?);
                let rate = f64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
                let gain = f32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
                let n = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
                let raw = take(n.checked_mul(4).ok_or("sample count overflows")?)?;
                let samples: Arc<[f32]> = raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect();
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(format!("sound with a sample rate of {rate}"));
                }
                Event::Sound {
                    from: if tag == 1 { Speaker::Rig } else { Speaker::Dut },
                    start_ns,
                    rate,
                    gain,
                    samples,
                }
            }
            Some(3) => Event::Light {
                on_ns: i64_at(take(8)?),
                off_ns: i64_at(take(8)?),
            },
            Some(4) => Event::Press {
                down_ns: i64_at(take(8)?),
                up_ns: i64_at(take(8)?),
            },
            Some(t) => return Err(format!("unknown medium event type {t}")),
            None => return Err("empty medium frame".into()),
        };
        if at != p.len() {
            return Err(format!(
                "medium frame has {} bytes after its event",
                p.len() - at
            ));
        }
        Ok(ev)
    }
}

/// Read one framed event; `Ok(None)` at a clean end of stream.
pub fn read_event(r: &mut impl Read) -> Result<Option<Event>, String> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(format!("medium socket: {e}")),
    }
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(format!("medium frame of {n} bytes is too long"));
    }
    let mut p = vec![0u8; n];
    r.read_exact(&mut p)
        .map_err(|e| format!("medium socket: {e}"))?;
    Event::decode(&p).map(Some)
}

/// The sending half of a connection to the other process.
pub struct Peer {
    stream: Mutex<UnixStream>,
}

impl Peer {
    pub fn new(stream: UnixStream) -> Peer {
        Peer {
            stream: Mutex::new(stream),
        }
    }

    /// Send an event; false once the other process has gone.
    pub fn send(&self, ev: &Event) -> bool {
        let bytes = ev.encode();
        let mut s = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        s.write_all(&bytes).is_ok()
    }
}

/// Connect to the medium of the simulated rig serving `port`.
pub fn connect(port: &str) -> Result<UnixStream, String> {
    let path = socket_path(port);
    UnixStream::connect(&path).map_err(|e| {
        format!(
            "{port} is not a simulated rig (no medium at {}: {e}); a simulated device can only be measured by a simulated rig, so start `certlab sim rig` and pass the port it prints",
            path.display()
        )
    })
}

/// Remove a socket file left behind by a rig that did not exit cleanly.
pub fn clear_stale(path: &Path) {
    if UnixStream::connect(path).is_err() {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_bad_frames_are_errors() {
        let evs = [
            Event::Sound {
                from: Speaker::Dut,
                start_ns: -5,
                rate: 48_000.5,
                gain: 0.5,
                samples: vec![0.25f32, -1.0, 3.5].into(),
            },
            Event::Light {
                on_ns: 1_000,
                off_ns: 2_000,
            },
            Event::Press {
                down_ns: i64::MAX,
                up_ns: 0,
            },
        ];
        for ev in &evs {
            let bytes = ev.encode();
            assert_eq!(read_event(&mut &bytes[..]).unwrap().as_ref(), Some(ev));
            // Every truncation is an error, never a panic or a wrong event.
            for cut in 5..bytes.len() {
                assert!(Event::decode(&bytes[4..cut]).is_err(), "{cut}");
            }
        }
        assert!(Event::decode(&[9]).is_err());
        assert!(Event::decode(&[]).is_err());
        assert_eq!(read_event(&mut &[][..]).unwrap(), None);
        let huge = (MAX_FRAME as u32 + 1).to_le_bytes();
        assert!(read_event(&mut &huge[..]).unwrap_err().contains("too long"));
    }
}
