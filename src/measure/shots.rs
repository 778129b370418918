//! Shot analysis: from what a step recorded (an audio capture, camera
//! frames, HID reports) and when each stimulus went out, to shots with
//! their uncertainties.
//!
//! Pure functions of data: no station, no clock, no waiting, so each is
//! tested with synthetic signals of known latency. The procedures that
//! gather the data are `measure::procedure`'s; judging is `profile`'s.

use super::delay::Correlator;
use super::measurement::{CrossedValue, RigCrossing, RigSide, Shot, K};
use crate::sampling::{Capture, TimeMap};
use crate::station::sync::SyncEstimate;
use crate::station::HidEvent;
use crate::time::{HostTime, RigTime};

/// A stimulus that went out, as an audio shot's analysis needs it.
#[derive(Debug, Clone, Copy)]
pub struct AudioEmission {
    /// When it was emitted, host time.
    pub emitted: HostTime,
    /// Half-width of the clock-sync bound of `emitted`, ns (0 when the
    /// stimulus was emitted on the host's clock).
    pub emit_hw_ns: f64,
    /// The rig time it was emitted at, when the rig emitted it and
    /// `emitted` is that time's host time (`SyncEstimate::rig_to_host`,
    /// with `emit_hw_ns`): the shot then crosses the rig's clock there.
    pub rig: Option<RigTime>,
    /// The emission on the capture's own clock, ns.
    pub at_capture_ns: f64,
}

/// Where to look for each stimulus in a capture.
#[derive(Debug, Clone, Copy)]
pub struct AudioWindow {
    /// Samples from the emission that may hold the stimulus (its length and
    /// the longest latency).
    pub len: usize,
    /// Samples before the emission kept too (the filters' settling, and the
    /// clock-sync bound).
    pub guard: usize,
    /// Subtracted from each latency: a known path inside the station (the
    /// rig's loopback of a round trip), s.
    pub subtract_s: f64,
}

/// A time on a capture's clock as host time.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub host: HostTime,
    /// Half-width of the clock-sync bound of `host`, ns (0 on the host's clock).
    pub hw_ns: f64,
    /// The rig time that `host` is the host time of, when the capture is on
    /// the rig's clock: the shot then crosses the rig's clock there.
    pub rig: Option<RigTime>,
}

impl Arrival {
    /// A time on the host's clock, ns.
    pub fn host_ns(t: f64) -> Arrival {
        Arrival {
            host: HostTime(t.round() as i64),
            hw_ns: 0.0,
            rig: None,
        }
    }
}

/// Find each emitted stimulus in `capture` and measure its latency.
/// `arrival_to_host` maps a time on the capture's clock (ns) to host time
/// with the half-width of its bound (ns). A shot that crosses the rig's
/// clock on one side (the emission's or the arrival's `rig`) keeps its
/// [`RigCrossing`], so it can be converted again. An emission that is `Err` was not
/// emitted (the station's fault; the `HostTime` is when it was due). Also
/// returns each emission's place in the capture as a fractional sample index
/// (NaN when not emitted), for the raw record.
pub fn audio_shots(
    emissions: &[Result<AudioEmission, (HostTime, String)>],
    capture: &Capture,
    map: &TimeMap,
    corr: &mut Correlator,
    window: AudioWindow,
    arrival_to_host: impl Fn(f64) -> Arrival,
) -> (Vec<Shot>, Vec<f64>) {
    let rate = capture.sample_rate as f64;
    let stimulus_len = corr.stimulus_len();
    let mut shots = Vec::with_capacity(emissions.len());
    let mut at_samples = Vec::with_capacity(emissions.len());
    for (k, e) in emissions.iter().enumerate() {
        let k32 = k as u32;
        let e = match e {
            Ok(e) => *e,
            Err((due, why)) => {
                at_samples.push(f64::NAN);
                shots.push(Shot::missed_by_station(
                    k32,
                    *due,
                    format!("not emitted: {why}"),
                ));
                continue;
            }
        };
        let i_emit = map.index_of(e.at_capture_ns);
        at_samples.push(i_emit);
        let start = (i_emit.round() as i64 - window.guard as i64).max(0) as usize;
        let stop = (start + window.len + window.guard).min(capture.samples.len());
        if stop <= start || stop - start < window.len {
            // The harness stopped listening too early: the station's fault.
            shots.push(Shot::missed_by_station(
                k32,
                e.emitted,
                "the capture ended before this shot's window".into(),
            ));
            continue;
        }
        let holed = capture.has_hole_in(start, stop);
        let shot = match corr.estimate(&capture.samples[start..stop]) {
            Err(err) if holed => missed(
                k32,
                &e,
                format!("{err}; samples were lost in this shot's window (see gap_blocks)"),
            ),
            Err(err) => missed(k32, &e, err.to_string()),
            // Lost samples inside the stimulus itself would bias it: not a number.
            Ok(d)
                if holed && {
                    let at = start + d.delay_samples.max(0.0) as usize;
                    capture.has_hole_in(
                        at.saturating_sub(window.guard),
                        at + stimulus_len + window.guard,
                    )
                } =>
            {
                Shot::missed_by_station(
                    k32,
                    e.emitted,
                    "samples were lost inside the stimulus (see gap_blocks)".into(),
                )
            }
            Ok(d) => {
                let arr = arrival_to_host(map.time_of(start as f64 + d.delay_samples));
                let detect_s = d.std_uncertainty_samples / rate;
                let stamp_s = map.fit_uncertainty_ns * 1e-9;
                let other_u_s = K * (detect_s.powi(2) + stamp_s.powi(2)).sqrt();
                let detail = format!(
                    "confidence {:.3}, peak SNR {:.1} dB, polarity {:+}",
                    d.confidence, d.snr_db, d.polarity
                );
                let crossed = |host: HostTime| CrossedValue {
                    host,
                    offset_s: -window.subtract_s,
                    other_uncertainty_s: other_u_s,
                };
                match (e.rig, arr.rig) {
                    // The rig emitted, the host captured.
                    (Some(rig), None) => Shot::crossing(
                        k32,
                        e.emitted,
                        RigCrossing {
                            rig,
                            side: RigSide::Emission,
                            value: Some(crossed(arr.host)),
                        },
                        (e.emitted, e.emit_hw_ns),
                        detail,
                    ),
                    // The host emitted, the rig captured.
                    (None, Some(rig)) => Shot::crossing(
                        k32,
                        e.emitted,
                        RigCrossing {
                            rig,
                            side: RigSide::Capture,
                            value: Some(crossed(e.emitted)),
                        },
                        (arr.host, arr.hw_ns),
                        detail,
                    ),
                    // Both ends on one clock (or each side's bound as given).
                    _ => {
                        let latency_s = arr.host.secs_since(e.emitted) - window.subtract_s;
                        let u = (e.emit_hw_ns + arr.hw_ns) * 1e-9 + other_u_s;
                        Shot::measured(k32, e.emitted, latency_s * 1e3, u * 1e3, detail)
                            .with_sync_bound(2.0 * (e.emit_hw_ns + arr.hw_ns) * 1e-3)
                    }
                }
            }
        };
        shots.push(shot);
    }
    (shots, at_samples)
}

/// A shot whose stimulus was not found: one the rig emitted still crosses
/// its clock (its emission time and bound are converted).
fn missed(index: u32, e: &AudioEmission, detail: String) -> Shot {
    match e.rig {
        Some(rig) => Shot::crossing(
            index,
            e.emitted,
            RigCrossing {
                rig,
                side: RigSide::Emission,
                value: None,
            },
            (e.emitted, e.emit_hw_ns),
            detail,
        ),
        None => Shot::missed_by_device(index, e.emitted, detail),
    }
}

/// A camera frame as the video analysis needs it: sequence number, host
/// arrival time, and the mean luma of the LED's region.
pub type FrameSample = (u64, HostTime, f64);

/// The frame period: the median interval between arrivals, s (0 with fewer
/// than two frames).
pub fn frame_period(frames: &[FrameSample]) -> f64 {
    let mut intervals: Vec<f64> = frames
        .windows(2)
        .map(|w| w[1].1.secs_since(w[0].1))
        .collect();
    intervals.sort_by(f64::total_cmp);
    intervals.get(intervals.len() / 2).copied().unwrap_or(0.0)
}

/// The LED flashes (rig times, or why a flash was not emitted with the time
/// it was due) found in the frames: each flash's latency to the frame that
/// first shows it, interpolated within that frame's exposure by how lit it is.
pub fn flash_shots(
    flashes: &[Result<RigTime, (HostTime, String)>],
    frames: &[FrameSample],
    est: &SyncEstimate,
    max_latency_s: f64,
) -> Vec<Shot> {
    let period = frame_period(frames);
    // The frames' arrival stamps: host stamps of the kernel's buffers.
    let stamp_s = 20e-6;
    flashes
        .iter()
        .enumerate()
        .map(|(k, flash)| {
            let k32 = k as u32;
            let at = match flash {
                Ok(at) => *at,
                Err((due, why)) => {
                    return Shot::missed_by_station(k32, *due, format!("not emitted: {why}"))
                }
            };
            let conv = est.rig_to_host(at);
            let t_f = conv.0;
            match locate_flash(frames, t_f, period, max_latency_s) {
                Err(why) => Shot::crossing(
                    k32,
                    t_f,
                    RigCrossing {
                        rig: at,
                        side: RigSide::Emission,
                        value: None,
                    },
                    conv,
                    why,
                ),
                Ok((arrival, f, noise_frac, thr_frac)) => Shot::crossing(
                    k32,
                    t_f,
                    RigCrossing {
                        rig: at,
                        side: RigSide::Emission,
                        value: Some(CrossedValue {
                            host: arrival,
                            offset_s: -period * (f - 0.5),
                            other_uncertainty_s: period * thr_frac
                                + K * ((period * noise_frac).powi(2) + stamp_s * stamp_s).sqrt(),
                        }),
                    },
                    conv,
                    format!("lit fraction {f:.3} of the first lit frame"),
                ),
            }
        })
        .collect()
}

/// Find the first frame showing a flash at host time `t_f`. Returns its arrival,
/// the lit fraction of its exposure, the brightness noise as a fraction of the
/// step, and the threshold as a fraction of the step.
fn locate_flash(
    frames: &[FrameSample],
    t_f: HostTime,
    period: f64,
    max_latency: f64,
) -> Result<(HostTime, f64, f64, f64), String> {
    if period <= 0.0 {
        return Err("too few frames to know the frame period".into());
    }
    // The dark level: the frames that arrived in the 200 ms before the flash,
    // summarised robustly (median, and MAD scaled to a standard deviation) so
    // that a late frame of the previous flash cannot raise it.
    let mut before: Vec<f64> = frames
        .iter()
        .filter(|(_, t, _)| *t <= t_f && t.secs_since(t_f) > -0.2)
        .map(|x| x.2)
        .collect();
    if before.len() < 3 {
        return Err("too few frames before the flash to measure the dark level".into());
    }
    before.sort_by(f64::total_cmp);
    let floor = before[before.len() / 2];
    let mut dev: Vec<f64> = before.iter().map(|b| (b - floor).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let sd = (1.4826 * dev[dev.len() / 2]).max(0.05);
    let after: Vec<&FrameSample> = frames
        .iter()
        .filter(|(_, t, _)| *t > t_f && t.secs_since(t_f) <= max_latency + 2.0 * period)
        .collect();
    let high = after.iter().map(|x| x.2).fold(f64::NEG_INFINITY, f64::max);
    let step = high - floor;
    if !step.is_finite() || step < (10.0 * sd).max(2.0) {
        return Err(format!(
            "LED not seen: brightest frame {:.1} over a dark level of {floor:.1} ± {sd:.1} within {:.0} ms",
            if high.is_finite() { high } else { floor },
            (max_latency + 2.0 * period) * 1e3
        ));
    }
    let thr_frac = ((6.0 * sd) / step).max(0.03);
    let threshold = floor + thr_frac * step;
    let Some(j) = after.iter().position(|x| x.2 > threshold) else {
        return Err("LED not seen above its threshold".into());
    };
    // The fully lit level: the frame after the first lit one, when it is brighter.
    let full = after
        .get(j + 1)
        .map(|x| x.2)
        .unwrap_or(high)
        .max(after[j].2);
    let f = ((after[j].2 - floor) / (full - floor)).clamp(0.0, 1.0);
    let arrival = after[j].1;
    if arrival.secs_since(t_f) - period * (f - 0.5) > max_latency {
        return Err(format!(
            "the first lit frame arrived {:.1} ms after the flash, beyond max_latency_ms",
            arrival.secs_since(t_f) * 1e3
        ));
    }
    Ok((arrival, f, sd / step, thr_frac))
}

/// The button presses (rig times, or why a press was not emitted with the
/// time it was due) matched with the first report of `usage` (page, id)
/// going active within `max_latency_s` after each.
pub fn press_shots(
    presses: &[Result<RigTime, (HostTime, String)>],
    events: &[HidEvent],
    est: &SyncEstimate,
    usage: (u16, u16),
    max_latency_s: f64,
) -> Vec<Shot> {
    let (page, id) = usage;
    presses
        .iter()
        .enumerate()
        .map(|(k, press)| {
            let k32 = k as u32;
            let at = match press {
                Ok(at) => *at,
                Err((due, why)) => {
                    return Shot::missed_by_station(k32, *due, format!("not emitted: {why}"))
                }
            };
            let conv = est.rig_to_host(at);
            let (t_p, hw_ns) = conv;
            let hit = events.iter().find(|e| {
                e.usage_page == page
                    && e.usage == id
                    && e.value != 0
                    && e.host_time.secs_since(t_p) >= -hw_ns * 1e-9
                    && e.host_time.secs_since(t_p) <= max_latency_s
            });
            // The report's stamp is taken as the read returns: the rig's
            // 1 µs tick is the other term.
            let value = hit.map(|e| CrossedValue {
                host: e.host_time,
                offset_s: 0.0,
                other_uncertainty_s: K * 1e-6,
            });
            let detail = match hit {
                Some(_) => format!("usage 0x{page:02x}:0x{id:02x} pressed"),
                None => format!(
                    "no HID report of usage 0x{page:02x}:0x{id:02x} within {:.0} ms",
                    max_latency_s * 1e3
                ),
            };
            let crossing = RigCrossing {
                rig: at,
                side: RigSide::Emission,
                value,
            };
            Shot::crossing(k32, t_p, crossing, conv, detail)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::measurement::ShotOutcome;
    use crate::sampling::{Block, BLOCK_LEN};
    use crate::station::sync::ClockSync;
    use crate::station::SyncExchange;

    /// An estimate of a rig clock that equals host time / 1000 exactly, from
    /// exchanges with no round trip.
    fn exact_sync() -> SyncEstimate {
        let mut s = ClockSync::new();
        for k in 0..20i64 {
            let t = k * 500_000_000;
            s.add(SyncExchange {
                host_send: HostTime(t),
                rig: RigTime((t / 1000) as u64),
                host_recv: HostTime(t),
            });
        }
        s.estimate().unwrap()
    }

    fn frames(latency_s: f64, flashes_at: &[f64]) -> Vec<FrameSample> {
        // 30 fps, exposure [s, s + period], arriving at s + period/2 + latency.
        let period = 1.0 / 30.0;
        (0..120)
            .map(|k| {
                let s = k as f64 * period;
                let lit: f64 = flashes_at
                    .iter()
                    .map(|&on| ((on + 0.1).min(s + period) - on.max(s)).max(0.0) / period)
                    .sum();
                let arrival = s + period / 2.0 + latency_s;
                (
                    k as u64,
                    HostTime::from_secs_f64(arrival),
                    20.0 + 150.0 * lit.min(1.0) + if k % 2 == 0 { 0.3 } else { -0.3 },
                )
            })
            .collect()
    }

    #[test]
    fn a_flash_is_found_with_its_latency_interpolated_in_the_frame() {
        let est = exact_sync();
        let on = [1.0117, 2.5031];
        let fr = frames(0.045, &on);
        let flashes: Vec<_> = on
            .iter()
            .map(|&t| Ok(RigTime((t * 1e6).round() as u64)))
            .chain([Err((HostTime(3_000_000_000), "behind".to_string()))])
            .collect();
        let shots = flash_shots(&flashes, &fr, &est, 0.2);
        assert_eq!(shots.len(), 3);
        for s in &shots[..2] {
            let (v, u) = (s.value_ms().unwrap(), s.uncertainty_ms().unwrap());
            assert!((v - 45.0).abs() <= u, "{v} ± {u} ms");
            assert!(u < 5.0, "{u}");
        }
        assert_eq!(shots[2].outcome, ShotOutcome::MissedByStation);
        // No flash in the frames: the device missed it.
        let dark = frames(0.045, &[]);
        let s = flash_shots(&flashes[..1], &dark, &est, 0.2);
        assert_eq!(s[0].outcome, ShotOutcome::MissedByDevice);
        assert!(s[0].detail.starts_with("LED not seen"), "{}", s[0].detail);
    }

    #[test]
    fn a_press_is_matched_with_the_first_report_of_its_usage() {
        let est = exact_sync();
        let ev = |t: f64, usage: u16, value: i32| HidEvent {
            host_time: HostTime::from_secs_f64(t),
            usage_page: 0x0b,
            usage,
            value,
        };
        let events = [
            ev(1.005, 0x2f, 1),  // another usage
            ev(1.0125, 0x20, 1), // the hook switch, 12.5 ms after
            ev(1.1, 0x20, 0),
            ev(2.3, 0x20, 1), // too late for the press at 2.0
        ];
        let presses = [Ok(RigTime(1_000_000)), Ok(RigTime(2_000_000))];
        let shots = press_shots(&presses, &events, &est, (0x0b, 0x20), 0.2);
        // Within the rig's 1 µs tick, which the clock sync keeps in its bound.
        assert!((shots[0].value_ms().unwrap() - 12.5).abs() < 1e-3);
        assert_eq!(shots[1].outcome, ShotOutcome::MissedByDevice);
        assert!(
            shots[1].detail.contains("within 200 ms"),
            "{}",
            shots[1].detail
        );
    }

    /// A capture on the host's clock holding `stim` at each of `at` (s)
    /// plus `latency_s`, with a hole (lost blocks) from `hole`.
    fn capture(stim: &[f32], at: &[f64], latency_s: f64, hole: Option<usize>) -> Capture {
        let rate = 48_000u32;
        let n = 3 * rate as usize;
        let mut x = vec![0f32; n];
        let mut noise = crate::seeded::rng(9);
        for v in x.iter_mut() {
            *v = 0.001 * (rand::Rng::random::<f32>(&mut noise) - 0.5);
        }
        for &t in at {
            let i0 = ((t + latency_s) * rate as f64).round() as usize;
            for (j, s) in stim.iter().enumerate() {
                x[i0 + j] += *s;
            }
        }
        let mut cap = Capture::new(rate, n);
        for (b, chunk) in x.chunks(BLOCK_LEN).enumerate() {
            if hole.is_some_and(|h| (h..h + 4).contains(&b)) {
                continue;
            }
            let mut blk = Block::EMPTY;
            blk.seq = b as u64;
            blk.t_first_ns = (b * BLOCK_LEN) as i64 * 1_000_000_000 / rate as i64;
            blk.len = chunk.len() as u16;
            blk.data[..chunk.len()].copy_from_slice(chunk);
            cap.push(&blk);
        }
        cap
    }

    #[test]
    fn an_audio_shot_is_measured_and_lost_samples_or_a_short_capture_are_the_stations() {
        let stim = crate::measure::stimulus::Stimulus::new(
            crate::profile::StimulusKind::Noise,
            48_000,
            0.05,
            3,
        );
        let s = stim.samples();
        let at = [0.5, 1.2];
        let em = |t: f64| {
            Ok(AudioEmission {
                emitted: HostTime::from_secs_f64(t),
                emit_hw_ns: 0.0,
                rig: None,
                at_capture_ns: t * 1e9,
            })
        };
        let window = AudioWindow {
            len: (0.2 * 48_000.0) as usize,
            guard: 240,
            subtract_s: 0.0,
        };
        let cap = capture(s, &at, 0.0321, None);
        let map = cap.time_map().unwrap();
        let mut corr = Correlator::new(s, 48_000);
        let emissions = [
            em(at[0]),
            em(at[1]),
            Err((HostTime(2_000_000_000), "behind".into())),
            em(2.95),
        ];
        let (shots, at_samples) =
            audio_shots(&emissions, &cap, &map, &mut corr, window, Arrival::host_ns);
        for (sh, t) in shots[..2].iter().zip(at) {
            // The stimulus was placed on a whole sample.
            let truth = (((t + 0.0321) * 48_000.0).round() / 48_000.0 - t) * 1e3;
            let (v, u) = (sh.value_ms().unwrap(), sh.uncertainty_ms().unwrap());
            assert!((v - truth).abs() <= u, "{v} ± {u}, truth {truth}");
        }
        assert!(at_samples[2].is_nan());
        assert_eq!(shots[2].outcome, ShotOutcome::MissedByStation);
        assert_eq!(
            shots[3].outcome,
            ShotOutcome::MissedByStation,
            "{}",
            shots[3].detail
        );
        // Blocks lost right inside the second stimulus.
        let holed = capture(
            s,
            &at,
            0.0321,
            Some(((1.2 + 0.0421) * 48_000.0 / 256.0) as usize),
        );
        let map = holed.time_map().unwrap();
        let (shots, _) = audio_shots(
            &emissions[..2],
            &holed,
            &map,
            &mut corr,
            window,
            Arrival::host_ns,
        );
        assert!(shots[0].value_ms().is_some());
        assert_eq!(
            shots[1].outcome,
            ShotOutcome::MissedByStation,
            "{}",
            shots[1].detail
        );
    }
}
