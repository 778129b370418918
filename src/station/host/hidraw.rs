//! A DUT's HID interface over Linux hidraw (`/dev/hidrawN`).
//!
//! Owns opening a hidraw node (its bus, VID, PID and report descriptor come
//! from the kernel's ioctls), a reader thread that blocks on the node,
//! stamps each input report with CLOCK_MONOTONIC as soon as it returns and
//! decodes it with the report descriptor into usage changes, and writing
//! output reports (LEDs). The reader allocates nothing per report; events
//! it cannot queue, reports it cannot decode and short reads are counted.
//! It does not measure latency or judge anything.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::fd::{ioctl, ior, poll_in};
use crate::station::{HidEvent, HidInput, StationError, StationResult};
use crate::time::{HostClock, HostTime};
use crate::usb::hid::{self, InputValue, ReportDescriptor, ReportKind, Usage};

/// Events queued between the reader and the measurement.
const QUEUE: usize = 1024;
/// The largest report hidraw hands out.
const MAX_REPORT: usize = 4096;
/// How often the reader looks at its stop flag.
const POLL_MS: i32 = 100;

// ioctl requests of linux/hidraw.h.
const HIDIOCGRDESCSIZE: u64 = ior::<libc::c_int>(b'H', 0x01);
const HIDIOCGRDESC: u64 = ior::<RawReportDescriptor>(b'H', 0x02);
const HIDIOCGRAWINFO: u64 = ior::<RawDevInfo>(b'H', 0x03);

#[repr(C)]
struct RawReportDescriptor {
    size: u32,
    value: [u8; MAX_REPORT],
}

#[repr(C)]
#[derive(Default)]
struct RawDevInfo {
    bustype: u32,
    vendor: i16,
    product: i16,
}

// The sizes the requests encode: struct hidraw_report_descriptor and
// struct hidraw_devinfo.
const _: () = assert!(std::mem::size_of::<RawReportDescriptor>() == 4100);
const _: () = assert!(std::mem::size_of::<RawDevInfo>() == 8);

/// What the kernel says of a hidraw node.
#[derive(Debug, Clone)]
pub struct HidrawInfo {
    pub path: PathBuf,
    /// BUS_USB is 3.
    pub bustype: u32,
    pub vid: u16,
    pub pid: u16,
    pub raw_descriptor: Vec<u8>,
    pub report: ReportDescriptor,
}

/// Counters of the reader, shared with the owner.
#[derive(Debug, Default)]
pub struct HidrawStats {
    pub reports: AtomicU64,
    pub events: AtomicU64,
    /// Events lost because the queue was full (the measurement fell behind).
    pub dropped_events: AtomicU64,
    /// Reports of an id the descriptor does not declare, or too short.
    pub undecodable_reports: AtomicU64,
    /// Values past the reader's fixed tables (a hostile descriptor).
    pub overflow_values: AtomicU64,
}

enum Msg {
    Event(HidEvent),
    Gone(String),
}

fn ioctl_err(path: &Path, what: &str, e: std::io::Error) -> StationError {
    StationError::Other(format!("{}: {what}: {e}", path.display()))
}

/// Read a hidraw node's identity and report descriptor.
pub fn inspect(path: &Path) -> StationResult<(File, HidrawInfo)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .or_else(|_| File::open(path))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                StationError::Disconnected(format!("{}: no such hidraw node", path.display()))
            }
            std::io::ErrorKind::PermissionDenied => StationError::Other(format!(
                "{}: permission denied (a udev rule gives the lab's group access; see the README)",
                path.display()
            )),
            _ => StationError::Other(format!("{}: {e}", path.display())),
        })?;
    let fd = file.as_raw_fd();
    let mut info = RawDevInfo::default();
    ioctl(fd, HIDIOCGRAWINFO, &mut info)
        .map_err(|e| ioctl_err(path, "not a hidraw node (HIDIOCGRAWINFO)", e))?;
    let mut size: libc::c_int = 0;
    ioctl(fd, HIDIOCGRDESCSIZE, &mut size).map_err(|e| ioctl_err(path, "HIDIOCGRDESCSIZE", e))?;
    let mut desc = Box::new(RawReportDescriptor {
        size: size.clamp(0, MAX_REPORT as i32) as u32,
        value: [0; MAX_REPORT],
    });
    // The request fills `value` up to `size` bytes (≤ 4096).
    ioctl(fd, HIDIOCGRDESC, &mut *desc).map_err(|e| ioctl_err(path, "HIDIOCGRDESC", e))?;
    let raw = desc.value[..desc.size as usize].to_vec();
    let report = hid::parse(&raw).map_err(|e| {
        StationError::Other(format!("{}: its report descriptor {e}", path.display()))
    })?;
    Ok((
        file,
        HidrawInfo {
            path: path.to_path_buf(),
            bustype: info.bustype,
            vid: info.vendor as u16,
            pid: info.product as u16,
            raw_descriptor: raw,
            report,
        },
    ))
}

/// An open hidraw node with its reader thread.
pub struct Hidraw {
    info: HidrawInfo,
    file: File,
    clock: HostClock,
    rx: Receiver<Msg>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    pub stats: Arc<HidrawStats>,
    gone: Option<String>,
}

impl Hidraw {
    /// Open `path` and start reading input reports, stamped on `clock`.
    pub fn open(path: &Path, clock: HostClock) -> StationResult<Hidraw> {
        let (file, info) = inspect(path)?;
        let reader_file = file
            .try_clone()
            .map_err(|e| StationError::Other(format!("{}: {e}", path.display())))?;
        let (tx, rx) = sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(HidrawStats::default());
        let reader = {
            let rd = info.report.clone();
            let stop = stop.clone();
            let stats = stats.clone();
            let name = path.display().to_string();
            std::thread::Builder::new()
                .name("certlab-hidraw".into())
                .spawn(move || read_loop(reader_file, rd, clock, tx, &stop, &stats, &name))
                .map_err(|e| StationError::Other(format!("cannot start the hidraw reader: {e}")))?
        };
        Ok(Hidraw {
            info,
            file,
            clock,
            rx,
            stop,
            reader: Some(reader),
            stats,
            gone: None,
        })
    }

    pub fn info(&self) -> &HidrawInfo {
        &self.info
    }

    /// Write the output report that sets `usage` to `value` (other fields
    /// zero); returns the host times just before the write was issued and
    /// when it returned. usbhid sends an output report synchronously, so the
    /// device may have it (and answer) before the write returns: the time
    /// before is the one nothing can precede.
    pub fn set_output(&mut self, usage: Usage, value: i64) -> StationResult<(HostTime, HostTime)> {
        let report = self
            .info
            .report
            .encode(ReportKind::Output, usage, value)
            .ok_or_else(|| {
                StationError::Other(format!(
                    "{}: no output report carries {usage}{} with a value of {value}",
                    self.info.path.display(),
                    hid::usage_name(usage)
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ))
            })?;
        let report = write_format(&self.info.report, report);
        let before = self.clock.now();
        self.file.write_all(&report).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENODEV) {
                StationError::Disconnected(format!(
                    "{}: the device is gone",
                    self.info.path.display()
                ))
            } else {
                StationError::Other(format!(
                    "{}: writing an output report: {e}",
                    self.info.path.display()
                ))
            }
        })?;
        Ok((before, self.clock.now()))
    }
}

/// A report as hidraw's write() takes it: the report id first, always. A
/// device without report ids gets a 0 there, which the kernel strips before
/// the report goes out (Documentation/hid/hidraw.rst); without it the kernel
/// takes the first data byte for an id and refuses the write (EINVAL).
fn write_format(rd: &crate::usb::hid::ReportDescriptor, report: Vec<u8>) -> Vec<u8> {
    if rd.uses_report_ids {
        report
    } else {
        let mut out = Vec::with_capacity(report.len() + 1);
        out.push(0);
        out.extend_from_slice(&report);
        out
    }
}

impl Drop for Hidraw {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl HidInput for Hidraw {
    fn next_event(&mut self, timeout: Duration) -> StationResult<Option<HidEvent>> {
        if let Some(why) = &self.gone {
            return Err(StationError::Disconnected(why.clone()));
        }
        match self.rx.recv_timeout(timeout) {
            Ok(Msg::Event(e)) => Ok(Some(e)),
            Ok(Msg::Gone(why)) => {
                self.gone = Some(why.clone());
                Err(StationError::Disconnected(why))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(StationError::Disconnected(format!(
                "{}: the reader stopped",
                self.info.path.display()
            ))),
        }
    }
}

/// Usage values seen so far, in fixed-capacity tables (no allocation).
struct State {
    /// Last value of each variable usage.
    values: Vec<(Usage, i64)>,
    /// Array usages active in the last report of each id.
    active: Vec<(u8, Usage)>,
    scratch_active: Vec<(u8, Usage)>,
}

fn send(tx: &SyncSender<Msg>, e: HidEvent, stats: &HidrawStats) {
    match tx.try_send(Msg::Event(e)) {
        Ok(()) => {
            stats.events.fetch_add(1, Ordering::Relaxed);
        }
        Err(TrySendError::Full(_)) => {
            stats.dropped_events.fetch_add(1, Ordering::Relaxed);
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

fn event(t: HostTime, u: Usage, value: i64) -> HidEvent {
    HidEvent {
        host_time: t,
        usage_page: u.page,
        usage: u.id,
        value: value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
    }
}

/// Turn one report's values into change events. Values never seen before
/// count as changes from 0 (a button held when the reader started shows as
/// a press).
fn changes(
    report_id: u8,
    now: &[InputValue],
    state: &mut State,
    t: HostTime,
    emit: &mut dyn FnMut(HidEvent),
    stats: &HidrawStats,
) {
    state.scratch_active.clear();
    for v in now {
        if v.array {
            if state.scratch_active.len() < state.scratch_active.capacity() {
                state.scratch_active.push((report_id, v.usage));
            } else {
                stats.overflow_values.fetch_add(1, Ordering::Relaxed);
            }
            if !state.active.contains(&(report_id, v.usage)) {
                emit(event(t, v.usage, 1));
            }
            continue;
        }
        match state.values.iter_mut().find(|(u, _)| *u == v.usage) {
            Some((_, old)) if *old == v.value => {}
            Some((_, old)) => {
                *old = v.value;
                emit(event(t, v.usage, v.value));
            }
            None => {
                if state.values.len() < state.values.capacity() {
                    state.values.push((v.usage, v.value));
                } else {
                    stats.overflow_values.fetch_add(1, Ordering::Relaxed);
                }
                if v.value != 0 {
                    emit(event(t, v.usage, v.value));
                }
            }
        }
    }
    // Array usages of this report that are no longer active: released.
    for &(id, u) in &state.active {
        if id == report_id && !state.scratch_active.contains(&(id, u)) {
            emit(event(t, u, 0));
        }
    }
    state.active.retain(|(id, _)| *id != report_id);
    for &a in &state.scratch_active {
        if state.active.len() < state.active.capacity() {
            state.active.push(a);
        }
    }
}

fn read_loop(
    mut file: File,
    rd: ReportDescriptor,
    clock: HostClock,
    tx: SyncSender<Msg>,
    stop: &AtomicBool,
    stats: &HidrawStats,
    name: &str,
) {
    use std::io::Read;
    let cap = rd.input_capacity() + 8;
    let mut buf = vec![0u8; MAX_REPORT];
    let mut values: Vec<InputValue> = Vec::with_capacity(cap);
    let mut state = State {
        values: Vec::with_capacity(cap),
        active: Vec::with_capacity(cap),
        scratch_active: Vec::with_capacity(cap),
    };
    let fd = file.as_raw_fd();
    while !stop.load(Ordering::Relaxed) {
        let revents = match poll_in(fd, POLL_MS) {
            Ok(Some(revents)) => revents,
            Ok(None) => continue,
            Err(e) => {
                let _ = tx.send(Msg::Gone(format!("{name}: poll failed: {e}")));
                return;
            }
        };
        if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
            && revents & libc::POLLIN == 0
        {
            let _ = tx.send(Msg::Gone(format!("{name}: the device is gone")));
            return;
        }
        match file.read(&mut buf) {
            Ok(0) => continue,
            Ok(n) => {
                let t = clock.now();
                stats.reports.fetch_add(1, Ordering::Relaxed);
                let report = &buf[..n];
                rd.input_values(report, &mut values);
                if values.is_empty() {
                    stats.undecodable_reports.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let id = if rd.uses_report_ids { report[0] } else { 0 };
                changes(
                    id,
                    &values,
                    &mut state,
                    t,
                    &mut |e| send(&tx, e, stats),
                    stats,
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let why = if e.raw_os_error() == Some(libc::ENODEV) {
                    format!("{name}: the device is gone")
                } else {
                    format!("{name}: read failed: {e}")
                };
                let _ = tx.send(Msg::Gone(why));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vlab gadget's descriptor has no report ids: its off-hook LED
    /// report goes to hidraw as [0, bit 1]. With ids, the id leads as is.
    #[test]
    fn output_reports_are_written_with_hidraws_leading_report_number() {
        let no_ids = crate::usb::hid::parse(&[
            0x05, 0x0b, 0x09, 0x01, 0xa1, 0x01, // Telephony: Phone
            0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x01, // 0..1, 1 bit
            0x09, 0x20, 0x81, 0x02, 0x09, 0x2f, 0x81, 0x02, // hook, mute in
            0x95, 0x06, 0x81, 0x03, // padding
            0x05, 0x08, 0x95, 0x01, 0x09, 0x09, 0x91, 0x02, 0x09, 0x17, 0x91, 0x02, // LEDs
            0x95, 0x06, 0x91, 0x03, // padding
            0xc0,
        ])
        .unwrap();
        assert!(!no_ids.uses_report_ids);
        let r = no_ids
            .encode(ReportKind::Output, Usage::new(0x08, 0x17), 1)
            .unwrap();
        assert_eq!(r, [0b10]);
        assert_eq!(write_format(&no_ids, r), [0, 0b10]);

        let ids = crate::usb::hid::parse(&[
            0x05, 0x08, 0x09, 0x01, 0xa1, 0x01, 0x85, 0x02, // LEDs, report 2
            0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x01, 0x09, 0x17, 0x91, 0x02, 0x95, 0x07,
            0x91, 0x03, 0xc0,
        ])
        .unwrap();
        let r = ids
            .encode(ReportKind::Output, Usage::new(0x08, 0x17), 1)
            .unwrap();
        assert_eq!(write_format(&ids, r), [2, 1]);
    }

    fn v(page: u16, id: u16, value: i64, array: bool) -> InputValue {
        InputValue {
            usage: Usage::new(page, id),
            value,
            array,
        }
    }

    #[test]
    fn reports_become_change_events() {
        let stats = HidrawStats::default();
        let mut state = State {
            values: Vec::with_capacity(8),
            active: Vec::with_capacity(8),
            scratch_active: Vec::with_capacity(8),
        };
        let mut got = Vec::new();
        let mut step = |id: u8, now: &[InputValue], t: i64| {
            let mut out = Vec::new();
            changes(
                id,
                now,
                &mut state,
                HostTime(t),
                &mut |e| out.push(e),
                &stats,
            );
            got.push(
                out.iter()
                    .map(|e| (e.host_time.0, e.usage, e.value))
                    .collect::<Vec<_>>(),
            );
        };
        // Hook switch idle, then pressed, held, released; a key array too.
        step(1, &[v(0x0b, 0x20, 0, false)], 10);
        step(1, &[v(0x0b, 0x20, 1, false)], 20);
        step(1, &[v(0x0b, 0x20, 1, false)], 30);
        step(3, &[v(0x0b, 0xb3, 1, true)], 40);
        step(3, &[v(0x0b, 0xb3, 1, true), v(0x0b, 0xb0, 1, true)], 50);
        step(3, &[], 60);
        step(1, &[v(0x0b, 0x20, 0, false)], 70);
        assert_eq!(
            got,
            vec![
                vec![],
                vec![(20, 0x20, 1)],
                vec![],
                vec![(40, 0xb3, 1)],
                vec![(50, 0xb0, 1)],
                vec![(60, 0xb3, 0), (60, 0xb0, 0)],
                vec![(70, 0x20, 0)],
            ]
        );
    }

    #[test]
    fn a_file_that_is_not_hidraw_is_refused_with_its_path() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = Hidraw::open(f.path(), HostClock::new()).err().unwrap();
        assert!(e.to_string().contains("not a hidraw node"), "{e}");
        let e = Hidraw::open(Path::new("/dev/hidraw-none"), HostClock::new())
            .err()
            .unwrap();
        assert!(matches!(e, StationError::Disconnected(_)), "{e}");
    }
}
