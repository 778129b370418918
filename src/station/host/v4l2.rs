//! A DUT's camera over V4L2 (`/dev/videoN`).
//!
//! Owns opening a capture node and negotiating format, size and frame rate
//! (through linuxvideo), and streaming: mmap buffers queued to the driver,
//! each dequeued frame taken with the kernel's own buffer timestamp (on
//! CLOCK_MONOTONIC, the host clock) and its sequence number, so frames the
//! driver dropped are counted from the gaps. Frames become luma planes for
//! the flash detection of `measure`. The streaming ioctls are issued here
//! because linuxvideo's stream does not expose timestamps or sequence
//! numbers. It does not detect flashes or judge.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use linuxvideo::format::{PixFormat, PixelFormat};
use linuxvideo::{BufType, Device, Fract, VideoCaptureDevice};

use super::fd::{ioctl, iow, iowr, poll_in};
use crate::station::{Camera, Frame, StationError, StationResult};
use crate::time::HostClock;

/// Buffers queued to the driver.
const BUFFERS: u32 = 4;

// linux/videodev2.h, 64-bit layouts.
const V4L2_BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
const V4L2_MEMORY_MMAP: u32 = 1;
const V4L2_BUF_FLAG_TIMESTAMP_MASK: u32 = 0xe000;
const V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC: u32 = 0x2000;
const V4L2_BUF_FLAG_ERROR: u32 = 0x0040;
const VIDIOC_REQBUFS: u64 = iowr::<RequestBuffers>(b'V', 8);
const VIDIOC_QUERYBUF: u64 = iowr::<V4l2Buffer>(b'V', 9);
const VIDIOC_QBUF: u64 = iowr::<V4l2Buffer>(b'V', 15);
const VIDIOC_DQBUF: u64 = iowr::<V4l2Buffer>(b'V', 17);
const VIDIOC_STREAMON: u64 = iow::<libc::c_int>(b'V', 18);
const VIDIOC_STREAMOFF: u64 = iow::<libc::c_int>(b'V', 19);

#[repr(C)]
#[derive(Default)]
struct RequestBuffers {
    count: u32,
    type_: u32,
    memory: u32,
    capabilities: u32,
    flags: u8,
    reserved: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct V4l2Buffer {
    index: u32,
    type_: u32,
    bytesused: u32,
    flags: u32,
    field: u32,
    timestamp: libc::timeval,
    timecode: [u32; 4],
    sequence: u32,
    memory: u32,
    m: u64,
    length: u32,
    reserved2: u32,
    request_fd: u32,
}

const _: () = assert!(std::mem::size_of::<V4l2Buffer>() == 88);
const _: () = assert!(std::mem::size_of::<RequestBuffers>() == 20);

impl V4l2Buffer {
    fn new(index: u32) -> V4l2Buffer {
        V4l2Buffer {
            index,
            type_: V4L2_BUF_TYPE_VIDEO_CAPTURE,
            bytesused: 0,
            flags: 0,
            field: 0,
            timestamp: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            timecode: [0; 4],
            sequence: 0,
            memory: V4L2_MEMORY_MMAP,
            m: 0,
            length: 0,
            reserved2: 0,
            request_fd: 0,
        }
    }
}

/// The pixel formats whose luma certlab reads without a decoder.
fn luma_layout(f: PixelFormat) -> Option<Layout> {
    match &f.as_fourcc() {
        b"YUYV" => Some(Layout::Packed { offset: 0, step: 2 }),
        b"YVYU" => Some(Layout::Packed { offset: 0, step: 2 }),
        b"UYVY" => Some(Layout::Packed { offset: 1, step: 2 }),
        b"GREY" | b"NV12" | b"NV21" | b"YU12" | b"YV12" => {
            Some(Layout::Packed { offset: 0, step: 1 })
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Luma byte of pixel x at `offset + x * step` in each line.
    Packed { offset: usize, step: usize },
}

/// The luma plane of a frame buffer, `width × height` bytes.
fn luma_of(
    data: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    layout: Layout,
    out: &mut Vec<u8>,
) -> bool {
    let Layout::Packed { offset, step } = layout;
    out.clear();
    if width == 0 || height == 0 {
        return false;
    }
    let need = (height - 1) * stride + offset + (width - 1) * step + 1;
    if data.len() < need {
        return false;
    }
    for y in 0..height {
        let line = &data[y * stride..];
        out.extend((0..width).map(|x| line[offset + x * step]));
    }
    true
}

struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

/// A V4L2 capture node, streaming.
pub struct V4l2Camera {
    path: PathBuf,
    /// Holds the file descriptor and the negotiated format.
    dev: VideoCaptureDevice,
    width: u32,
    height: u32,
    stride: u32,
    layout: Layout,
    fps: f64,
    clock: HostClock,
    buffers: Vec<Mapped>,
    streaming: bool,
    last_seq: Option<u32>,
    pub dropped_frames: Arc<AtomicU64>,
    pub error_frames: Arc<AtomicU64>,
    /// Frames whose timestamps were not CLOCK_MONOTONIC (their host time is
    /// taken at dequeue instead).
    pub unstamped_frames: Arc<AtomicU64>,
}

// SAFETY: the mapped buffers belong to this camera alone and are only
// touched through &mut self.
unsafe impl Send for V4l2Camera {}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> StationError {
    match e.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENXIO) => {
            StationError::Disconnected(format!("{}: the camera is gone ({what})", path.display()))
        }
        Some(libc::ENOENT) => {
            StationError::Disconnected(format!("{}: no such video node", path.display()))
        }
        Some(libc::EACCES) | Some(libc::EPERM) => StationError::Other(format!(
            "{}: permission denied (add the lab user to the video group)",
            path.display()
        )),
        _ => StationError::Other(format!("{}: {what}: {e}", path.display())),
    }
}

impl V4l2Camera {
    /// Open `path` and ask for `width`×`height` at `fps` in a format whose
    /// luma can be read (YUYV, UYVY, GREY, NV12...). The driver may give
    /// another size or rate; what it gave is kept and reported.
    pub fn open(
        path: &Path,
        width: u32,
        height: u32,
        fps: f64,
        clock: HostClock,
    ) -> StationResult<V4l2Camera> {
        let dev = Device::open(path).map_err(|e| io_err(path, "open", e))?;
        let caps = dev
            .capabilities()
            .map_err(|e| io_err(path, "capabilities", e))?;
        if !dev
            .supported_buf_types()
            .into_iter()
            .any(|t| t == BufType::VIDEO_CAPTURE)
        {
            return Err(StationError::Other(format!(
                "{}: {} ({}) is not a video capture device",
                path.display(),
                caps.card(),
                caps.driver()
            )));
        }
        let offered: Vec<PixelFormat> = dev
            .formats(BufType::VIDEO_CAPTURE)
            .filter_map(|f| f.ok())
            .map(|f| f.pixel_format())
            .collect();
        let Some(pf) = offered.iter().copied().find(|f| luma_layout(*f).is_some()) else {
            return Err(StationError::Other(format!(
                "{}: offers only {} (certlab reads YUYV, UYVY, GREY or NV12 luma; no decoder for compressed formats)",
                path.display(),
                offered
                    .iter()
                    .map(|f| String::from_utf8_lossy(&f.as_fourcc()).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let cap = dev
            .video_capture(PixFormat::new(width, height, pf))
            .map_err(|e| io_err(path, "set format", e))?;
        let got = cap.format();
        let (gw, gh, gpf, gbpl) = (
            got.width(),
            got.height(),
            got.pixel_format(),
            got.bytes_per_line(),
        );
        let rate = if fps > 0.0 {
            cap.set_frame_interval(Fract::new(1000, (fps * 1000.0).round() as u32))
                .ok()
                .map(|f| f.denominator() as f64 / f.numerator().max(1) as f64)
                .unwrap_or(fps)
        } else {
            fps
        };
        let layout = luma_layout(gpf).ok_or_else(|| {
            StationError::Other(format!(
                "{}: the driver switched to an unreadable format",
                path.display()
            ))
        })?;
        let stride = if gbpl > 0 {
            gbpl
        } else {
            gw * if matches!(layout, Layout::Packed { step: 2, .. }) {
                2
            } else {
                1
            }
        };
        Ok(V4l2Camera {
            path: path.to_path_buf(),
            width: gw,
            height: gh,
            stride,
            layout,
            fps: rate,
            dev: cap,
            clock,
            buffers: Vec::new(),
            streaming: false,
            last_seq: None,
            dropped_frames: Arc::new(AtomicU64::new(0)),
            error_frames: Arc::new(AtomicU64::new(0)),
            unstamped_frames: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The negotiated mode: width, height, frames per second, fourcc.
    pub fn mode(&self) -> (u32, u32, f64) {
        (self.width, self.height, self.fps)
    }

    fn fd(&self) -> i32 {
        self.dev.as_raw_fd()
    }

    fn unmap(&mut self) {
        for b in self.buffers.drain(..) {
            // SAFETY: each mapping was made by mmap with this length.
            unsafe { libc::munmap(b.ptr, b.len) };
        }
    }
}

impl Drop for V4l2Camera {
    fn drop(&mut self) {
        let _ = self.stop();
        self.unmap();
    }
}

impl Camera for V4l2Camera {
    fn start(&mut self) -> StationResult<()> {
        if self.streaming {
            return Ok(());
        }
        let fd = self.fd();
        let path = self.path.clone();
        self.unmap();
        let mut req = RequestBuffers {
            count: BUFFERS,
            type_: V4L2_BUF_TYPE_VIDEO_CAPTURE,
            memory: V4L2_MEMORY_MMAP,
            ..Default::default()
        };
        ioctl(fd, VIDIOC_REQBUFS, &mut req).map_err(|e| io_err(&path, "request buffers", e))?;
        for i in 0..req.count {
            let mut b = V4l2Buffer::new(i);
            ioctl(fd, VIDIOC_QUERYBUF, &mut b).map_err(|e| io_err(&path, "query buffer", e))?;
            // SAFETY: maps the driver's buffer i at the offset it gave.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    b.length as usize,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    fd,
                    (b.m & 0xffff_ffff) as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io_err(&path, "mmap", std::io::Error::last_os_error()));
            }
            self.buffers.push(Mapped {
                ptr,
                len: b.length as usize,
            });
            ioctl(fd, VIDIOC_QBUF, &mut b).map_err(|e| io_err(&path, "queue buffer", e))?;
        }
        let mut t = V4L2_BUF_TYPE_VIDEO_CAPTURE as libc::c_int;
        ioctl(fd, VIDIOC_STREAMON, &mut t).map_err(|e| io_err(&path, "stream on", e))?;
        self.streaming = true;
        self.last_seq = None;
        Ok(())
    }

    fn next_frame(&mut self, timeout: Duration) -> StationResult<Option<Frame>> {
        if !self.streaming {
            self.start()?;
        }
        let fd = self.fd();
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        if poll_in(fd, ms)
            .map_err(|e| io_err(&self.path, "poll", e))?
            .is_none()
        {
            return Ok(None);
        }
        let mut b = V4l2Buffer::new(0);
        ioctl(fd, VIDIOC_DQBUF, &mut b).map_err(|e| io_err(&self.path, "dequeue", e))?;
        let host_time = if b.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK
            == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC
        {
            #[allow(clippy::unnecessary_cast)]
            let ns = b.timestamp.tv_sec as i64 * 1_000_000_000 + b.timestamp.tv_usec as i64 * 1000;
            self.clock.from_monotonic(ns)
        } else {
            self.unstamped_frames.fetch_add(1, Ordering::Relaxed);
            self.clock.now()
        };
        if let Some(prev) = self.last_seq {
            let gap = b.sequence.wrapping_sub(prev).wrapping_sub(1);
            if gap > 0 && gap < 1 << 20 {
                self.dropped_frames
                    .fetch_add(u64::from(gap), Ordering::Relaxed);
            }
        }
        self.last_seq = Some(b.sequence);
        // VIDIOC_QBUF below writes the buffer's state back into `b`, its
        // sequence number included: keep the dequeued one.
        let seq = u64::from(b.sequence);
        let mut luma = Vec::with_capacity((self.width * self.height) as usize);
        let ok = match self.buffers.get(b.index as usize) {
            Some(m) => {
                let used = (b.bytesused as usize).min(m.len);
                // SAFETY: the driver filled `used` bytes of this mapping, and
                // it is not requeued until the copy below is done.
                let data = unsafe { std::slice::from_raw_parts(m.ptr as *const u8, used) };
                luma_of(
                    data,
                    self.width as usize,
                    self.height as usize,
                    self.stride as usize,
                    self.layout,
                    &mut luma,
                )
            }
            None => false,
        };
        if b.flags & V4L2_BUF_FLAG_ERROR != 0 || !ok {
            self.error_frames.fetch_add(1, Ordering::Relaxed);
        }
        ioctl(fd, VIDIOC_QBUF, &mut b).map_err(|e| io_err(&self.path, "requeue", e))?;
        if !ok {
            return Ok(None);
        }
        Ok(Some(Frame {
            seq,
            host_time,
            width: self.width,
            height: self.height,
            luma,
        }))
    }

    fn stop(&mut self) -> StationResult<()> {
        if self.streaming {
            let mut t = V4L2_BUF_TYPE_VIDEO_CAPTURE as libc::c_int;
            let _ = ioctl(self.fd(), VIDIOC_STREAMOFF, &mut t);
            self.streaming = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_is_read_from_packed_and_planar_layouts() {
        // 2×2 YUYV with a 6-byte stride (2 bytes of padding a line).
        let yuyv = [10, 128, 20, 128, 0, 0, 30, 128, 40, 128, 0, 0];
        let mut out = Vec::new();
        assert!(luma_of(
            &yuyv,
            2,
            2,
            6,
            Layout::Packed { offset: 0, step: 2 },
            &mut out
        ));
        assert_eq!(out, vec![10, 20, 30, 40]);
        let uyvy = [128, 11, 128, 22];
        assert!(luma_of(
            &uyvy,
            2,
            1,
            4,
            Layout::Packed { offset: 1, step: 2 },
            &mut out
        ));
        assert_eq!(out, vec![11, 22]);
        let grey = [1, 2, 3, 4, 5, 6];
        assert!(luma_of(
            &grey,
            3,
            2,
            3,
            Layout::Packed { offset: 0, step: 1 },
            &mut out
        ));
        assert_eq!(out, vec![1, 2, 3, 4, 5, 6]);
        // A short buffer is refused, not read past.
        assert!(!luma_of(
            &grey[..5],
            3,
            2,
            3,
            Layout::Packed { offset: 0, step: 1 },
            &mut out
        ));
        assert!(luma_layout(PixelFormat::MJPG).is_none());
        assert!(luma_layout(PixelFormat::YUYV).is_some());
    }

    #[test]
    fn a_missing_node_is_a_disconnection() {
        let e = V4l2Camera::open(
            Path::new("/dev/certlab-no-video"),
            640,
            480,
            30.0,
            HostClock::new(),
        )
        .err()
        .unwrap();
        assert!(matches!(e, StationError::Disconnected(_)), "{e}");
        assert!(e.to_string().contains("certlab-no-video"), "{e}");
        let e = V4l2Camera::open(Path::new("/dev/null"), 640, 480, 30.0, HostClock::new())
            .err()
            .unwrap();
        assert!(e.to_string().contains("/dev/null"), "{e}");
    }
}
