//! `certlab probe camera`: stream frames from a V4L2 camera with their
//! kernel timestamps, the frame interval and the frames the driver dropped.
//!
//! Owns the arguments and the printing; the backend is
//! `station::host::v4l2`, and this module must not judge frame timing.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::{ms3, node_of};
use crate::cli::print_json;
use crate::time::HostClock;
use crate::{Error, ExitStatus, Result};

#[derive(Args)]
#[command(after_help = "\
Asks for WIDTHxHEIGHT at FPS in a format whose luma certlab reads (YUYV, UYVY,
GREY, NV12); the driver may give another mode, which is printed. Exit 2 when
the node cannot be opened or streams nothing for 2 s.

Example:
  certlab probe camera --device /dev/video0 --frames 30")]
pub struct CameraArgs {
    /// usb:VID:PID[:SERIAL] (its V4L2 node) or /dev/videoN.
    #[arg(long, value_name = "SPEC")]
    device: String,
    #[arg(long, default_value_t = 30)]
    frames: u32,
    #[arg(long, default_value_t = 640)]
    width: u32,
    #[arg(long, default_value_t = 480)]
    height: u32,
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct FrameOut {
    seq: u64,
    /// Kernel timestamp, ms since the first frame.
    t_ms: f64,
    mean_luma: f64,
}

#[derive(Serialize)]
struct CameraOut {
    node: String,
    width: u32,
    height: u32,
    fps: f64,
    /// The first frame's kernel timestamp, CLOCK_MONOTONIC ns: where the
    /// frames' `t_ms` start.
    first_frame_ns: Option<i64>,
    frames: Vec<FrameOut>,
    interval_ms_mean: Option<f64>,
    interval_ms_min: Option<f64>,
    interval_ms_max: Option<f64>,
    dropped_frames: u64,
    error_frames: u64,
    unstamped_frames: u64,
}

/// `certlab probe camera`: stream N frames with their kernel timestamps.
pub fn run(a: CameraArgs) -> Result<ExitStatus> {
    let (device, frames, width, height, fps, json) = (
        a.device.as_str(),
        a.frames,
        a.width,
        a.height,
        a.fps,
        a.json,
    );
    use crate::station::host::v4l2::V4l2Camera;
    use crate::station::Camera;
    use std::sync::atomic::Ordering::Relaxed;
    if frames == 0 || frames > 10_000 {
        return Err(Error::BadInput("--frames 1..10000".into()));
    }
    let node = node_of(
        device,
        "video",
        |n, _| n.video.first().map(|(_, v)| PathBuf::from("/dev").join(v)),
        "is uvcvideo bound?",
    )?;
    let clock = HostClock::new();
    let dev = |e: crate::station::StationError| Error::Device(e.to_string());
    let mut cam = V4l2Camera::open(&node, width, height, fps, clock).map_err(dev)?;
    let (w, h, f) = cam.mode();
    cam.start().map_err(dev)?;
    let mut out = Vec::new();
    let mut first = None;
    while out.len() < frames as usize {
        let Some(fr) = cam.next_frame(Duration::from_secs(2)).map_err(dev)? else {
            return Err(Error::Device(format!(
                "{}: no frame within 2 s ({} received)",
                node.display(),
                out.len()
            )));
        };
        let t0 = *first.get_or_insert(fr.host_time);
        let mean = fr.luma.iter().map(|&v| f64::from(v)).sum::<f64>() / fr.luma.len().max(1) as f64;
        let o = FrameOut {
            seq: fr.seq,
            t_ms: fr.host_time.secs_since(t0) * 1e3,
            mean_luma: mean,
        };
        if !json {
            println!(
                "frame {:>6}  {:>10.3} ms  mean luma {:6.1}",
                o.seq, o.t_ms, o.mean_luma
            );
        }
        out.push(o);
    }
    cam.stop().map_err(dev)?;
    let gaps: Vec<f64> = out.windows(2).map(|p| p[1].t_ms - p[0].t_ms).collect();
    let o = CameraOut {
        node: node.display().to_string(),
        width: w,
        height: h,
        fps: f,
        first_frame_ns: first.map(|t| clock.to_monotonic(t)),
        interval_ms_mean: (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64),
        interval_ms_min: gaps.iter().copied().reduce(f64::min),
        interval_ms_max: gaps.iter().copied().reduce(f64::max),
        dropped_frames: cam.dropped_frames.load(Relaxed),
        error_frames: cam.error_frames.load(Relaxed),
        unstamped_frames: cam.unstamped_frames.load(Relaxed),
        frames: out,
    };
    if json {
        print_json(&o)?;
    } else {
        println!(
            "{} {}x{} at {:.2} fps: {} frames, interval {} ms mean ({}..{}), {} dropped, {} errors, {} without kernel stamps",
            o.node,
            o.width,
            o.height,
            o.fps,
            o.frames.len(),
            ms3(o.interval_ms_mean),
            ms3(o.interval_ms_min),
            ms3(o.interval_ms_max),
            o.dropped_frames,
            o.error_frames,
            o.unstamped_frames
        );
    }
    Ok(ExitStatus::Ok)
}
