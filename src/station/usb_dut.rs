//! A real USB DUT: finding it by its `usb:VID:PID[:SERIAL]` spec in sysfs,
//! and watching that it stays attached.
//!
//! Owns the lookup of the device a spec names (refusing, with the reason, a
//! spec that no attached device meets) and the presence watcher: the
//! device's sysfs directory disappearing, or another device taking its
//! place, means the DUT vanished. It reads sysfs only through
//! [`crate::usb::sysfs`]; it must not parse descriptors itself, measure, or
//! judge.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Presence, StationError, StationResult};
use crate::usb::sysfs::{self, ScanError, UsbDevice};
use crate::{Error, Result};

/// The environment variable that points the station at another sysfs root
/// (a snapshot) instead of `/sys`.
pub const SYSFS_ENV: &str = "CERTLAB_SYSFS";

/// `CERTLAB_SYSFS`, else `/sys`.
pub fn sysfs_root() -> PathBuf {
    std::env::var_os(SYSFS_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(sysfs::DEFAULT_ROOT))
}

fn label(d: &UsbDevice) -> String {
    let i = &d.identity;
    let mut s = format!("{}:{}", i.vid, i.pid);
    let name = format!("{} {}", i.manufacturer, i.product);
    if !name.trim().is_empty() {
        s.push_str(&format!(" ({})", name.trim()));
    }
    if !i.serial.is_empty() {
        s.push_str(&format!(" serial {:?}", i.serial));
    }
    s.push_str(&format!(" at sysfs {}", d.name));
    s
}

/// The one attached device (root hubs aside) with this VID and PID, and
/// this serial number when one is given. Refuses, as a device error (exit
/// 2), no USB stack, no such VID:PID, a wrong serial number, and several
/// devices a spec without a serial cannot tell apart.
pub fn find(
    root: &Path,
    vid: u16,
    pid: u16,
    serial: Option<&str>,
    spec: &str,
) -> Result<UsbDevice> {
    let all = match sysfs::scan(root) {
        Ok(v) => v,
        Err(ScanError::NoUsbStack(dir)) => {
            return Err(Error::Device(format!(
                "no USB device matches {spec}: there is no USB stack ({} does not exist)",
                dir.display()
            )))
        }
        Err(e) => return Err(Error::Device(format!("no USB device matches {spec}: {e}"))),
    };
    let want_vid = format!("{vid:04x}");
    let want_pid = format!("{pid:04x}");
    let same: Vec<UsbDevice> = all
        .into_iter()
        .filter(|d| !d.is_hub() && d.identity.vid == want_vid && d.identity.pid == want_pid)
        .collect();
    if same.is_empty() {
        return Err(Error::Device(format!(
            "no USB device matches {spec}: no device {want_vid}:{want_pid} is attached (under {}); `certlab devices` lists what is",
            sysfs::devices_dir(root).display()
        )));
    }
    match serial {
        Some(s) => {
            let serials: Vec<String> = same.iter().map(label).collect();
            same.into_iter()
                .find(|d| d.identity.serial == s)
                .ok_or_else(|| {
                    Error::Device(format!(
                        "no USB device matches {spec}: the attached {want_vid}:{want_pid} device does not have serial number {s:?}: found {}",
                        serials.join("; ")
                    ))
                })
        }
        None if same.len() > 1 => Err(Error::Device(format!(
            "--device {spec} is ambiguous: {} devices {want_vid}:{want_pid} are attached; name one by its serial number (usb:{want_vid}:{want_pid}:SERIAL): {}",
            same.len(),
            same.iter().map(label).collect::<Vec<_>>().join("; ")
        ))),
        None => Ok(same.into_iter().next().expect("one device")),
    }
}

/// Watches one device in sysfs: it is present while its directory exists
/// and still shows the same VID, PID and serial number.
#[derive(Debug, Clone)]
pub struct SysfsWatch {
    dir: PathBuf,
    vid: String,
    pid: String,
    serial: String,
    label: String,
}

impl SysfsWatch {
    pub fn new(root: &Path, dev: &UsbDevice) -> SysfsWatch {
        SysfsWatch {
            dir: sysfs::devices_dir(root).join(&dev.name),
            vid: dev.identity.vid.clone(),
            pid: dev.identity.pid.clone(),
            serial: dev.identity.serial.clone(),
            label: label(dev),
        }
    }

    fn attr(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(name))
            .ok()
            .map(|s| s.trim_end_matches(['\n', '\r']).to_lowercase())
    }

    /// `Err(Disconnected)` naming the device once it is gone or replaced.
    pub fn check(&self) -> StationResult<()> {
        if !self.dir.is_dir() {
            return Err(StationError::Disconnected(format!(
                "{} vanished ({} no longer exists)",
                self.label,
                self.dir.display()
            )));
        }
        let vid = self.attr("idVendor");
        let pid = self.attr("idProduct");
        let serial = std::fs::read_to_string(self.dir.join("serial"))
            .ok()
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string());
        let replaced = vid.as_deref().is_some_and(|v| v != self.vid)
            || pid.as_deref().is_some_and(|p| p != self.pid)
            || serial.as_deref().is_some_and(|s| s != self.serial);
        if replaced {
            return Err(StationError::Disconnected(format!(
                "{} was replaced by another device at {} ({}:{} serial {:?})",
                self.label,
                self.dir.display(),
                vid.unwrap_or_default(),
                pid.unwrap_or_default(),
                serial.unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Poll [`Self::check`] every `interval` on a thread of its own, so that
    /// I/O paths can ask cheaply whether the device is still there.
    pub fn spawn(self, interval: Duration) -> WatchHandle {
        let gone = Arc::new(AtomicBool::new(false));
        let why = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (gone, why, stop) = (gone.clone(), why.clone(), stop.clone());
            std::thread::Builder::new()
                .name("usb-watch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Err(e) = self.check() {
                            *why.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            gone.store(true, Ordering::Release);
                            return;
                        }
                        std::thread::sleep(interval);
                    }
                })
                .ok()
        };
        WatchHandle {
            gone,
            why,
            stop,
            thread,
        }
    }
}

impl Presence for SysfsWatch {
    fn check(&self) -> StationResult<()> {
        SysfsWatch::check(self)
    }
}

/// A running [`SysfsWatch`]; stops its thread when dropped.
pub struct WatchHandle {
    gone: Arc<AtomicBool>,
    why: Arc<Mutex<Option<StationError>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WatchHandle {
    /// `Err(Disconnected)` once the watcher saw the device go.
    pub fn check(&self) -> StationResult<()> {
        if !self.gone.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(self
            .why
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| StationError::Disconnected("the device vanished".into())))
    }
}

impl Presence for WatchHandle {
    fn check(&self) -> StationResult<()> {
        WatchHandle::check(self)
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dest = to.join(e.file_name());
            if e.path().is_dir() {
                copy_tree(&e.path(), &dest);
            } else {
                std::fs::copy(e.path(), dest).unwrap();
            }
        }
    }

    fn fixture_copy(name: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/usb")
                .join(name),
            t.path(),
        );
        t
    }

    #[test]
    fn finds_by_vid_pid_and_serial_and_refuses_the_rest() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/usb/speakerphone-uac1");
        let d = find(&root, 0x1209, 0x0001, None, "usb:1209:0001").unwrap();
        assert_eq!(d.name, "1-1");
        let d = find(&root, 0x1209, 0x0001, Some("SP100-0001234"), "x").unwrap();
        assert_eq!(d.identity.serial, "SP100-0001234");
        let e = find(&root, 0x1209, 0x0001, Some("NOPE"), "usb:1209:0001:NOPE").unwrap_err();
        assert!(matches!(e, Error::Device(_)));
        assert!(
            e.to_string()
                .contains("does not have serial number \"NOPE\""),
            "{e}"
        );
        assert!(e.to_string().contains("SP100-0001234"), "{e}");
        let e = find(&root, 0x1209, 0x0009, None, "usb:1209:0009").unwrap_err();
        assert!(
            e.to_string()
                .contains("no USB device matches usb:1209:0009: no device 1209:0009"),
            "{e}"
        );
        // The root hub (1d6b:0002) is never a DUT.
        assert!(find(&root, 0x1d6b, 0x0002, None, "usb:1d6b:0002").is_err());
        let t = tempfile::tempdir().unwrap();
        let e = find(t.path(), 0x1209, 0x0001, None, "usb:1209:0001").unwrap_err();
        assert!(e.to_string().contains("no USB stack"), "{e}");
    }

    #[test]
    fn two_devices_need_a_serial() {
        let t = fixture_copy("speakerphone-uac1");
        let devs = sysfs::devices_dir(t.path());
        copy_tree(&devs.join("1-1"), &devs.join("1-3"));
        std::fs::write(devs.join("1-3/serial"), "SP100-0009999\n").unwrap();
        let e = find(t.path(), 0x1209, 0x0001, None, "usb:1209:0001").unwrap_err();
        assert!(e.to_string().contains("2 devices 1209:0001"), "{e}");
        let d = find(t.path(), 0x1209, 0x0001, Some("SP100-0009999"), "x").unwrap();
        assert_eq!(d.name, "1-3");
    }

    #[test]
    fn watcher_sees_the_device_directory_disappear() {
        let t = fixture_copy("headset-uac2");
        let dev = find(t.path(), 0x1209, 0x0002, None, "usb:1209:0002").unwrap();
        let watch = SysfsWatch::new(t.path(), &dev);
        assert_eq!(watch.check(), Ok(()));
        let handle = watch.clone().spawn(Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(handle.check(), Ok(()), "still attached");
        let dir = sysfs::devices_dir(t.path());
        std::fs::remove_dir_all(dir.join("1-2:1.3")).unwrap();
        std::fs::remove_dir_all(dir.join("1-2")).unwrap();
        let t0 = std::time::Instant::now();
        while handle.check().is_ok() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let e = handle.check().unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        let StationError::Disconnected(why) = &e else {
            panic!("{e:?}")
        };
        assert!(why.contains("1209:0002"), "{why}");
        assert!(why.contains("HS200-0005678"), "{why}");
        assert!(why.contains("vanished"), "{why}");
        assert!(watch.check().is_err());
    }

    #[test]
    fn watcher_sees_another_device_in_its_place() {
        let t = fixture_copy("speakerphone-uac1");
        let dev = find(t.path(), 0x1209, 0x0001, None, "usb:1209:0001").unwrap();
        let watch = SysfsWatch::new(t.path(), &dev);
        std::fs::write(sysfs::devices_dir(t.path()).join("1-1/serial"), "OTHER\n").unwrap();
        let e = watch.check().unwrap_err();
        assert!(e.to_string().contains("replaced by another device"), "{e}");
    }
}
