//! The USB descriptor layer against the fixtures under fixtures/usb/, focused
//! cases for the tricky items, and property tests that no input makes a
//! parser panic or hang.

#[path = "../fixtures/usb/gen.rs"]
#[allow(dead_code)]
mod gen;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use certlab::usb::descriptors::{
    self, AudioDirection, ClassDescriptor, ErrorKind, FrameIntervals, SampleRates, VideoDescriptor,
};
use certlab::usb::hid::{self, FieldUsage, ReportKind, Usage};
use certlab::usb::sysfs::{self, UsbDevice};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/usb")
}

/// The one non-hub device of a fixture tree.
fn device(fixture: &str) -> UsbDevice {
    let devs = sysfs::scan(&fixtures().join(fixture)).expect("fixture tree");
    let mut devs: Vec<UsbDevice> = devs.into_iter().filter(|d| !d.is_hub()).collect();
    assert_eq!(devs.len(), 1, "{fixture}: one device");
    devs.remove(0)
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn frames(d: &UsbDevice, format: &str) -> Vec<(u16, u16, Vec<f64>)> {
    let v = d.video().expect("video");
    let f = v
        .formats
        .iter()
        .find(|f| f.format == format)
        .unwrap_or_else(|| panic!("no format {format}"));
    f.frames
        .iter()
        .map(|fr| (fr.width, fr.height, fr.fps.clone()))
        .collect()
}

// ---------------------------------------------------------------------------
// Fixtures

#[test]
#[ignore = "rewrites fixtures/usb from fixtures/usb/gen.rs"]
fn regenerate_fixtures() {
    gen::write_all(&fixtures()).unwrap();
}

fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fixtures_are_up_to_date() {
    let t = tempfile::tempdir().unwrap();
    gen::write_all(t.path()).unwrap();
    for f in gen::all() {
        let want = tree(&t.path().join(f.dir).join("bus"));
        let have = tree(&fixtures().join(f.dir).join("bus"));
        assert!(!want.is_empty());
        assert_eq!(
            have.iter().map(|x| &x.0).collect::<Vec<_>>(),
            want.iter().map(|x| &x.0).collect::<Vec<_>>(),
            "{}: files differ; run the ignored regenerate_fixtures test",
            f.dir
        );
        assert!(
            have == want,
            "{}: bytes differ; run regenerate_fixtures",
            f.dir
        );
    }
}

#[test]
fn every_good_fixture_parses_without_errors_or_warnings() {
    for f in [
        "speakerphone-uac1",
        "headset-uac2",
        "camera-uvc",
        "videobar",
        "dongle-uac1",
    ] {
        for d in sysfs::scan(&fixtures().join(f)).unwrap() {
            assert!(d.errors.is_empty(), "{f}/{}: {:?}", d.name, d.errors);
            assert!(d.warnings.is_empty(), "{f}/{}: {:?}", d.name, d.warnings);
            assert!(d.descriptors.is_some());
        }
    }
}

#[test]
fn speakerphone_uac1_with_hid_telephony() {
    let all = sysfs::scan(&fixtures().join("speakerphone-uac1")).unwrap();
    assert_eq!(
        all.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["1-1", "usb1"]
    );
    assert!(all[1].is_hub() && all[1].classes().is_empty());
    let d = &all[0];
    let id = &d.identity;
    assert_eq!((id.vid.as_str(), id.pid.as_str()), ("1209", "0001"));
    assert_eq!(id.firmware, "1.02");
    assert_eq!(id.serial, "SP100-0001234");
    assert_eq!(id.manufacturer, "Certlab Fixtures");
    assert_eq!(id.product, "SP-100 Speakerphone (fixture)");
    let raw = std::fs::read(fixtures().join("speakerphone-uac1/bus/usb/devices/1-1/descriptors"))
        .unwrap();
    assert_eq!(id.descriptors_sha256, hex::encode(Sha256::digest(&raw)));
    assert_eq!(d.classes(), ["audio", "hid"]);
    let a = d.audio().unwrap();
    assert_eq!(a.uac, 1);
    assert!(a.playback && a.capture);
    assert_eq!(a.sample_rates, [16000, 48000]);
    assert_eq!(a.streams.len(), 2);
    assert_eq!(a.streams[0].direction, Some(AudioDirection::Playback));
    assert_eq!(a.streams[1].direction, Some(AudioDirection::Capture));
    assert_eq!(
        (a.streams[0].channels, a.streams[0].bit_resolution),
        (Some(1), 16)
    );
    assert!(d.video().is_none());
    let h = d.hid_summary().unwrap();
    assert_eq!(
        h.usages,
        strs(&[
            "0x08:0x09",
            "0x08:0x17",
            "0x08:0x18",
            "0x0b:0x01",
            "0x0b:0x20",
            "0x0b:0x2f",
            "0x0c:0x01",
            "0x0c:0xe9",
            "0x0c:0xea"
        ])
    );
    assert_eq!(
        h.named,
        strs(&[
            "hook-switch",
            "phone-mute",
            "led-mute",
            "led-off-hook",
            "led-ring"
        ])
    );
    // The HID interface is where sysfs puts it.
    assert_eq!(d.hid.len(), 1);
    assert_eq!(d.hid[0].interface_dir, "1-1:1.3");
    assert_eq!(d.hid[0].node, "0003:1209:0001.0001");
    let r = d.hid[0].report.as_ref().unwrap();
    assert!(r.uses_report_ids);
    let hook = r
        .fields
        .iter()
        .find(|f| f.usage() == Some(Usage::new(0x0b, 0x20)))
        .unwrap();
    assert_eq!(
        (hook.kind, hook.report_id, hook.bit_offset, hook.bit_size),
        (ReportKind::Input, 1, 0, 1)
    );
    let ring = r
        .fields
        .iter()
        .find(|f| f.usage() == Some(Usage::new(0x08, 0x18)))
        .unwrap();
    assert_eq!(
        (ring.kind, ring.report_id, ring.bit_offset),
        (ReportKind::Output, 2, 2)
    );
    // Decoding hidraw input reports.
    assert_eq!(r.decode_input(&[0x01, 0b01], 0x0b, 0x20), Some(1));
    assert_eq!(r.decode_input(&[0x01, 0b10], 0x0b, 0x20), Some(0));
    assert_eq!(r.decode_input(&[0x01, 0b10], 0x0b, 0x2f), Some(1));
    assert_eq!(
        r.decode_input(&[0x03, 0b10], 0x0b, 0x20),
        None,
        "another report"
    );
    assert_eq!(r.decode_input(&[0x03, 0b10], 0x0c, 0xea), Some(1));
    assert_eq!(r.decode_input(&[0x01], 0x0b, 0x20), None, "too short");
}

#[test]
fn headset_uac2_with_hid_telephony() {
    let d = device("headset-uac2");
    assert_eq!(d.identity.firmware, "2.10");
    assert_eq!(d.classes(), ["audio", "hid"]);
    let a = d.audio().unwrap();
    assert_eq!(a.uac, 2);
    assert!(a.playback && a.capture);
    // UAC2 descriptors carry no rates; the snapshot records the clock's.
    assert_eq!(a.sample_rates, [16000, 48000], "from uac2_clock_rates");
    assert!(a.streams.iter().all(|s| s.rates_from_clock == Some(0x10)));
    let mut bare = d.clone();
    bare.uac2_clock_rates.clear();
    let b = bare.audio().unwrap();
    assert!(b.sample_rates.is_empty(), "UAC2 rates come from the clock");
    assert!(b.streams.iter().all(|s| s.rates_from_clock.is_none()));
    let s: Vec<_> = a
        .streams
        .iter()
        .map(|s| {
            (
                s.interface,
                s.alternate,
                s.direction,
                s.channels,
                s.subframe_size,
                s.bit_resolution,
            )
        })
        .collect();
    assert_eq!(
        s,
        [
            (1, 1, Some(AudioDirection::Playback), Some(2), 2, 16),
            (1, 2, Some(AudioDirection::Playback), Some(2), 3, 24),
            (2, 1, Some(AudioDirection::Capture), Some(1), 2, 16),
        ]
    );
    let desc = d.descriptors.as_ref().unwrap();
    assert_eq!(desc.configurations[0].associations.len(), 1);
    let ac = desc.alt_settings().next().unwrap();
    assert!(ac.class_info.iter().any(|c| matches!(
        c,
        ClassDescriptor::Audio(descriptors::AudioDescriptor::ClockSource { id: 0x10, .. })
    )));
    let h = d.hid_summary().unwrap();
    assert_eq!(
        h.named,
        strs(&[
            "hook-switch",
            "flash",
            "redial",
            "speakerphone",
            "phone-mute",
            "led-mute",
            "led-off-hook",
            "led-ring",
            "led-hold"
        ])
    );
    assert!(h.usages.contains(&"0xff00:0x01".to_string()));
    // Push/Pop: the Speakerphone output after Pop is back in report 2.
    let r = d.hid[0].report.as_ref().unwrap();
    let sp = r
        .fields
        .iter()
        .find(|f| f.usage() == Some(Usage::new(0x0b, 0x2b)))
        .unwrap();
    assert_eq!(
        (sp.kind, sp.report_id, sp.bit_offset, sp.bit_size),
        (ReportKind::Output, 2, 8, 8)
    );
    let vendor = r
        .fields
        .iter()
        .find(|f| f.usage() == Some(Usage::new(0xff00, 0x01)))
        .unwrap();
    assert_eq!(
        (vendor.kind, vendor.report_id, vendor.count, vendor.bit_size),
        (ReportKind::Feature, 3, 63, 8)
    );
}

#[test]
fn camera_uvc_formats_frames_and_rates() {
    let d = device("camera-uvc");
    assert_eq!(d.classes(), ["video"]);
    assert!(d.audio().is_none() && d.hid_summary().is_none());
    let v = d.video().unwrap();
    assert_eq!(
        v.formats
            .iter()
            .map(|f| f.format.as_str())
            .collect::<Vec<_>>(),
        ["MJPEG", "YUY2", "H264"]
    );
    assert_eq!(
        frames(&d, "MJPEG"),
        [
            (1920, 1080, vec![30.0]),
            (1280, 720, vec![30.0, 15.0]),
            (640, 480, vec![30.0, 15.0])
        ]
    );
    assert_eq!(
        frames(&d, "YUY2"),
        [
            (640, 480, vec![30.0, 15.0]),
            (320, 240, vec![30.0, 15.0]),
            (1280, 720, vec![10.0, 5.0])
        ]
    );
    assert_eq!(
        frames(&d, "H264"),
        [(1920, 1080, vec![30.0]), (1280, 720, vec![30.0, 5.0])]
    );
    // The continuous range is kept as such in the model.
    let desc = d.descriptors.as_ref().unwrap();
    let h264 = desc
        .alt_settings()
        .flat_map(|a| a.class_info.iter())
        .find_map(|c| match c {
            ClassDescriptor::Video(VideoDescriptor::Format(f)) if f.name == "H264" => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        h264.frames[1].intervals,
        FrameIntervals::Continuous {
            min: 333_333,
            max: 2_000_000,
            step: 333_333
        }
    );
    let camera = desc
        .alt_settings()
        .flat_map(|a| a.class_info.iter())
        .any(|c| {
            matches!(
                c,
                ClassDescriptor::Video(VideoDescriptor::InputTerminal {
                    terminal_type: 0x0201,
                    camera_controls: Some(_),
                    ..
                })
            )
        });
    assert!(camera);
}

#[test]
fn videobar_is_one_composite_device() {
    let d = device("videobar");
    assert_eq!(d.identity.firmware, "10.04");
    assert_eq!(d.classes(), ["audio", "video", "hid"]);
    let desc = d.descriptors.as_ref().unwrap();
    assert_eq!(desc.configurations[0].associations.len(), 2);
    assert_eq!(desc.configurations[0].interfaces.len(), 6);
    let a = d.audio().unwrap();
    assert_eq!(a.uac, 1);
    assert!(a.playback && a.capture);
    assert_eq!(a.sample_rates, [16000, 32000, 48000]);
    assert_eq!(
        frames(&d, "MJPEG"),
        [
            (3840, 2160, vec![30.0, 15.0]),
            (1920, 1080, vec![60.0, 30.0]),
            (1280, 720, vec![60.0, 30.0])
        ]
    );
    assert_eq!(frames(&d, "NV12"), [(1920, 1080, vec![30.0])]);
    assert_eq!(frames(&d, "YUY2"), [(640, 480, vec![30.0])]);
    let h = d.hid_summary().unwrap();
    assert_eq!(
        h.named,
        strs(&[
            "hook-switch",
            "phone-mute",
            "line-busy-tone",
            "led-mute",
            "led-off-hook",
            "led-ring",
            "led-microphone"
        ])
    );
    // The consumer array: index 1..3 → Volume Up, Volume Down, Mute.
    let r = d.hid[0].report.as_ref().unwrap();
    assert_eq!(r.decode_input(&[0x03, 0x02], 0x0c, 0xea), Some(1));
    assert_eq!(r.decode_input(&[0x03, 0x02], 0x0c, 0xe9), Some(0));
    assert_eq!(r.decode_input(&[0x03, 0x03], 0x0c, 0xe2), Some(1));
    // The LED range expands in order: Off-Hook, Ring, then Mute, Microphone.
    let leds: Vec<_> = r
        .fields
        .iter()
        .filter(|f| f.kind == ReportKind::Output && f.report_id == 2)
        .filter_map(|f| f.usage().map(|u| (u.to_string(), f.bit_offset)))
        .collect();
    assert_eq!(
        leds,
        [
            ("0x08:0x17".to_string(), 0),
            ("0x08:0x18".to_string(), 1),
            ("0x08:0x09".to_string(), 2),
            ("0x08:0x21".to_string(), 3),
            ("0x0b:0x97".to_string(), 4)
        ]
    );
}

#[test]
fn dongle_uac1_without_hid_and_a_continuous_range() {
    let d = device("dongle-uac1");
    assert_eq!(d.classes(), ["audio"]);
    assert!(d.hid_summary().is_none() && d.hid.is_empty());
    let a = d.audio().unwrap();
    assert!(a.playback && a.capture);
    assert_eq!(
        a.sample_rates,
        [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]
    );
    assert_eq!(a.streams[0].sample_rates, [44100, 48000]);
    assert_eq!(a.streams[1].continuous_range, Some((8000, 48000)));
    let desc = d.descriptors.as_ref().unwrap();
    let cont = desc
        .alt_settings()
        .flat_map(|a| a.class_info.iter())
        .find_map(|c| match c {
            ClassDescriptor::Audio(descriptors::AudioDescriptor::FormatTypeI { rates, .. }) => {
                matches!(rates, SampleRates::Continuous { .. }).then_some(rates.clone())
            }
            _ => None,
        });
    assert_eq!(
        cont,
        Some(SampleRates::Continuous {
            min: 8000,
            max: 48000
        })
    );
}

#[test]
fn malformed_loop_is_listed_with_its_offset() {
    let d = device("malformed-loop");
    let e = d.descriptor_error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::Loop);
    assert_eq!(e.offset, gen::malformed_loop_offset());
    assert_eq!(d.errors.len(), 1);
    assert!(
        d.errors[0].contains(&format!("at byte {}", e.offset)),
        "{:?}",
        d.errors
    );
    // Still listed with its identity (from the attribute files).
    assert_eq!(
        (d.identity.vid.as_str(), d.identity.pid.as_str()),
        ("1209", "0006")
    );
    assert_eq!(d.identity.firmware, "1.00");
    assert_eq!(d.identity.descriptors_sha256.len(), 64);
    let j = d.to_json_value();
    assert_eq!(j["classes"], serde_json::json!([]));
    assert!(j["audio"].is_null());
}

#[test]
fn malformed_total_length_is_listed_with_its_offset_and_hid() {
    let d = device("malformed-total-length");
    let e = d.descriptor_error.as_ref().expect("an error");
    assert_eq!((e.kind, e.offset), (ErrorKind::Truncated, 20));
    assert!(e.message.contains("wTotalLength"), "{e}");
    // The report descriptor read from sysfs still parses.
    let h = d.hid_summary().unwrap();
    assert!(h.named.contains(&"hook-switch".to_string()));
}

#[test]
fn json_shape_of_one_device() {
    let d = device("speakerphone-uac1");
    let j = d.to_json_value();
    let keys: Vec<&str> = j.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    for k in [
        "name",
        "vid",
        "pid",
        "serial",
        "firmware",
        "manufacturer",
        "product",
        "descriptors_sha256",
        "classes",
        "audio",
        "video",
        "hid",
        "errors",
        "warnings",
    ] {
        assert!(keys.contains(&k), "missing {k}");
    }
    assert_eq!(j["vid"], "1209");
    assert_eq!(j["firmware"], "1.02");
    assert_eq!(j["classes"], serde_json::json!(["audio", "hid"]));
    assert_eq!(j["audio"]["uac"], 1);
    assert_eq!(j["audio"]["playback"], true);
    assert_eq!(
        j["audio"]["sample_rates"],
        serde_json::json!([16000, 48000])
    );
    assert_eq!(j["audio"]["streams"][0]["direction"], "playback");
    assert!(j["video"].is_null());
    assert!(j["hid"]["usages"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("0x0b:0x20")));
    let cam = device("camera-uvc").to_json_value();
    assert_eq!(cam["video"]["formats"][0]["format"], "MJPEG");
    assert_eq!(
        cam["video"]["formats"][0]["frames"][0],
        serde_json::json!({"width": 1920, "height": 1080, "fps": [30.0]})
    );
}

#[test]
fn snapshot_round_trip() {
    let t = tempfile::tempdir().unwrap();
    for f in gen::all() {
        let devs = sysfs::scan(&fixtures().join(f.dir)).unwrap();
        let out = t.path().join(f.dir);
        sysfs::write_snapshot(&devs, &out).unwrap();
        let back = sysfs::scan(&out).unwrap();
        assert_eq!(back, devs, "{}", f.dir);
        assert_eq!(
            tree(&out.join("bus")),
            tree(&fixtures().join(f.dir).join("bus"))
        );
    }
}

#[test]
fn read_device_by_name_and_missing_files() {
    let d = sysfs::read_device(&fixtures().join("camera-uvc"), "2-1").unwrap();
    assert_eq!(d.identity.pid, "0003");
    assert!(sysfs::read_device(&fixtures().join("camera-uvc"), "9-9").is_err());
    assert!(sysfs::read_device(&fixtures().join("camera-uvc"), "..").is_err());
    // A device directory with only attributes is listed with an error.
    let t = tempfile::tempdir().unwrap();
    let dir = sysfs::devices_dir(t.path()).join("3-1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("idVendor"), "1209\n").unwrap();
    std::fs::write(dir.join("idProduct"), "zz\n").unwrap();
    let devs = sysfs::scan(t.path()).unwrap();
    assert_eq!(devs.len(), 1);
    assert_eq!(devs[0].identity.vid, "1209");
    assert_eq!(devs[0].identity.pid, "");
    assert_eq!(devs[0].errors.len(), 2, "{:?}", devs[0].errors);
}

// ---------------------------------------------------------------------------
// Descriptor faults

fn good() -> Vec<u8> {
    gen::speakerphone_descriptors()
}

#[test]
fn wrong_num_interfaces_is_inconsistent() {
    let mut d = good();
    d[22] = 5;
    let e = descriptors::parse(&d).unwrap_err();
    assert_eq!((e.kind, e.offset), (ErrorKind::Inconsistent, 22));
    assert!(e.message.contains("bNumInterfaces"));
}

#[test]
fn trailing_truncated_and_short_total_length() {
    let mut d = good();
    d.extend([1, 2, 3]);
    let e = descriptors::parse(&d).unwrap_err();
    assert_eq!((e.kind, e.offset), (ErrorKind::TrailingBytes, d.len() - 3));

    let d = good();
    let e = descriptors::parse(&d[..d.len() - 5]).unwrap_err();
    assert_eq!((e.kind, e.offset), (ErrorKind::Truncated, 20));

    // wTotalLength 3 bytes short: the last descriptor overruns it.
    let mut d = good();
    let total = u16::from_le_bytes([d[20], d[21]]) - 3;
    d[20..22].copy_from_slice(&total.to_le_bytes());
    let e = descriptors::parse(&d).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Overrun);
    assert_eq!(e.offset, d.len() - 7, "the last endpoint");

    // Device descriptor alone, but one configuration announced.
    let e = descriptors::parse(&good()[..18]).unwrap_err();
    assert_eq!((e.kind, e.offset), (ErrorKind::Truncated, 18));
    let e = descriptors::parse(&good()[..10]).unwrap_err();
    assert_eq!((e.kind, e.offset), (ErrorKind::Truncated, 10));
}

#[test]
fn class_descriptor_shorter_than_its_fields() {
    // A UAC1 format type I claiming 2 rates but long enough for one.
    let mut fmt = gen::uac1_format(1, 2, 16, &[48000]);
    fmt[7] = 2;
    let mut d = gen::device(0x0110, 0, 0, 0, 0x1209, 0x00ff, 0x0100, 1);
    let items = vec![
        gen::interface(0, 0, 0, 1, 1, 0),
        gen::uac1_ac(&[1], &[]),
        gen::interface(1, 0, 0, 1, 2, 0),
        gen::uac1_as_general(1),
        fmt,
    ];
    d.extend(gen::configuration(2, 0x80, 50, &items));
    let at = 18 + 9 + items[..4].iter().map(|i| i.len()).sum::<usize>();
    let e = descriptors::parse(&d).unwrap_err();
    assert_eq!((e.kind, e.offset), (ErrorKind::TooShort, at), "{e}");
    assert!(e.to_string().starts_with(&format!("at byte {at}:")));
}

#[test]
fn looping_lengths_are_errors() {
    for bad_len in [0u8, 1] {
        let mut d = good();
        d[27] = bad_len; // the first interface descriptor
        let e = descriptors::parse(&d).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::Loop, 27));
    }
}

#[test]
fn endpoint_count_mismatch_is_a_warning() {
    let mut d = good();
    d[27 + 4] = 2; // AC interface claims 2 endpoints
    let p = descriptors::parse(&d).unwrap();
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].offset, 31);
}

// ---------------------------------------------------------------------------
// HID items

#[test]
fn hid_push_pop_restores_globals() {
    let rd = hid::parse(&[
        0x05, 0x01, // Usage Page (Generic Desktop)
        0x75, 0x04, // Report Size (4)
        0x95, 0x01, // Report Count (1)
        0xa4, //       Push
        0x05, 0x09, //   Usage Page (Button)
        0x75, 0x01, //   Report Size (1)
        0x09, 0x01, //   Usage (Button 1)
        0x81, 0x02, //   Input
        0xb4, //       Pop
        0x09, 0x30, // Usage (X)
        0x81, 0x02, // Input
        0xb4, //       Pop (nothing to pop: a warning)
    ])
    .unwrap();
    let f: Vec<_> = rd
        .fields
        .iter()
        .map(|f| (f.usage().unwrap().to_string(), f.bit_offset, f.bit_size))
        .collect();
    assert_eq!(
        f,
        [
            ("0x09:0x01".to_string(), 0, 1),
            ("0x01:0x30".to_string(), 1, 4)
        ]
    );
    assert_eq!(rd.warnings.len(), 1);
    assert_eq!(rd.warnings[0].offset, 20);
}

#[test]
fn hid_usage_ranges_variable_and_array() {
    let rd = hid::parse(&[
        0x05, 0x09, // Usage Page (Button)
        0x19, 0x01, // Usage Minimum (1)
        0x29, 0x03, // Usage Maximum (3)
        0x15, 0x00, 0x25, 0x01, // Logical 0..1
        0x75, 0x01, 0x95, 0x05, // 5 x 1 bit
        0x81, 0x02, // Input (Var): buttons 1, 2, 3, 3, 3
        0x05, 0x07, // Usage Page (Keyboard)
        0x19, 0x00, 0x2a, 0xff, 0x00, // Usage 0..255
        0x26, 0xff, 0x00, // Logical Maximum (255)
        0x75, 0x08, 0x95, 0x02, // 2 x 8 bits
        0x81, 0x00, // Input (Array)
    ])
    .unwrap();
    let vars: Vec<_> = rd
        .fields
        .iter()
        .filter_map(|f| f.usage().map(|u| (u.id, f.bit_offset, f.count)))
        .collect();
    assert_eq!(vars, [(1, 0, 1), (2, 1, 1), (3, 2, 3)]);
    let arr = rd.fields.last().unwrap();
    assert_eq!(
        (arr.bit_offset, arr.bit_size, arr.count, arr.logical_max),
        (5, 8, 2, 255)
    );
    assert!(matches!(&arr.usage, FieldUsage::Array(r) if r.len() == 1 && r[0].max == 0xff));
    // Bits 0..5 buttons (button 2 down), then two key codes at bits 5 and
    // 13: 0x04 ('a') and 0x1e ('1'), little-endian bit order.
    let report = [
        0x02 | 0x80, // button 2; key 1 bits 0..2 (0b100)
        0xc0,        // key 1 bits 3..7 (0); key 2 bits 0..2 (0b110)
        0x03,        // key 2 bits 3..7 (0b00011)
    ];
    assert_eq!(rd.decode_input(&report, 0x09, 0x02), Some(1));
    assert_eq!(rd.decode_input(&report, 0x09, 0x01), Some(0));
    assert_eq!(rd.decode_input(&report, 0x07, 0x04), Some(1)); // 'a'
    assert_eq!(rd.decode_input(&report, 0x07, 0x1e), Some(1)); // '1'
    assert_eq!(rd.decode_input(&report, 0x07, 0x05), Some(0));
    assert_eq!(rd.usages().len(), 3 + 256);
}

#[test]
fn hid_long_items_are_skipped() {
    let rd = hid::parse(&[
        0xfe, 0x03, 0xf0, 0xaa, 0xbb, 0xcc, // long item, 3 data bytes
        0x05, 0x0b, 0x09, 0x20, 0x75, 0x01, 0x95, 0x01, 0x81, 0x02,
    ])
    .unwrap();
    assert_eq!(rd.long_items, 1);
    assert_eq!(rd.fields[0].usage(), Some(Usage::new(0x0b, 0x20)));
    let e = hid::parse(&[0x05, 0x0b, 0xfe, 0x10, 0x00, 0x01]).unwrap_err();
    assert_eq!(e.offset, 2);
}

#[test]
fn hid_extended_usage_and_signed_values() {
    let rd = hid::parse(&[
        0x05, 0x01, // Usage Page (Generic Desktop)
        0x0b, 0x38, 0x00, 0x01, 0x00, // Usage (Generic Desktop: Wheel), extended
        0x0b, 0x2f, 0x00, 0x0b, 0x00, // Usage (Telephony: Phone Mute), extended
        0x15, 0x81, // Logical Minimum (-127)
        0x25, 0x7f, // Logical Maximum (127)
        0x75, 0x08, 0x95, 0x02, 0x81, 0x06, // Input (Data,Var,Rel)
    ])
    .unwrap();
    assert_eq!(rd.usages(), ["0x01:0x38", "0x0b:0x2f"]);
    assert_eq!(rd.decode_input(&[0xfe, 0x05], 0x01, 0x38), Some(-2));
    assert_eq!(rd.decode_input(&[0xfe, 0x05], 0x0b, 0x2f), Some(5));
    assert_eq!(rd.named_usages(), ["phone-mute"]);
}

#[test]
fn hid_usage_page_after_usages_applies_at_the_main_item() {
    // Linux 5.x semantics: a Usage Page given between the usages and the
    // main item applies to the short usages.
    let rd = hid::parse(&[0x09, 0x20, 0x05, 0x0b, 0x75, 0x01, 0x95, 0x01, 0x81, 0x02]).unwrap();
    assert_eq!(rd.usages(), ["0x0b:0x20"]);
}

// ---------------------------------------------------------------------------
// Never panic, always terminate

/// Run `f` on another thread; fail if it panics or takes more than 10 s.
fn terminates<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the parser did not terminate"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the parser panicked"),
    }
}

fn exercise_descriptors(bytes: Vec<u8>) {
    terminates(move || {
        if let Ok(d) = descriptors::parse(&bytes) {
            let _ = (d.classes(), d.audio(), d.video(), d.hid_interfaces());
        }
    });
}

fn exercise_hid(bytes: Vec<u8>, report: Vec<u8>) {
    terminates(move || {
        if let Ok(r) = hid::parse(&bytes) {
            let _ = (r.usages(), r.named_usages());
            for f in r.fields.iter().take(64) {
                if let Some(u) = f.usage() {
                    let _ = r.decode(f.kind, &report, u);
                }
                if let FieldUsage::Array(ranges) = &f.usage {
                    let _ = r.decode(f.kind, &report, Usage::new(ranges[0].page, ranges[0].min));
                }
            }
        }
    });
}

fn fixture_descriptor_bytes() -> Vec<Vec<u8>> {
    vec![
        gen::speakerphone_descriptors(),
        gen::headset_descriptors(),
        gen::camera_descriptors(),
        gen::videobar_descriptors(),
        gen::dongle_descriptors(),
        gen::malformed_loop_descriptors(),
    ]
}

fn fixture_reports() -> Vec<&'static [u8]> {
    vec![
        gen::SPEAKERPHONE_REPORT,
        gen::HEADSET_REPORT,
        gen::VIDEOBAR_REPORT,
    ]
}

/// (position, new byte) edits and a cut.
fn mutate(
    mut b: Vec<u8>,
    edits: &[(usize, u8)],
    cut: Option<usize>,
    insert: Option<(usize, Vec<u8>)>,
) -> Vec<u8> {
    for &(i, v) in edits {
        if !b.is_empty() {
            let n = b.len();
            b[i % n] = v;
        }
    }
    if let Some((i, ins)) = insert {
        let at = if b.is_empty() { 0 } else { i % b.len() };
        b.splice(at..at, ins);
    }
    if let Some(c) = cut {
        if !b.is_empty() {
            let n = b.len();
            b.truncate(c % (n + 1));
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn descriptors_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise_descriptors(bytes);
    }

    #[test]
    fn descriptors_never_panic_on_random_bytes_after_a_device_header(
        tail in proptest::collection::vec(any::<u8>(), 0..600),
        n_configs in 0u8..4,
    ) {
        let mut b = gen::device(0x0200, 0, 0, 0, 0x1209, 1, 1, n_configs);
        b.extend(tail);
        exercise_descriptors(b);
    }

    #[test]
    fn descriptors_never_panic_on_mutated_fixtures(
        which in 0usize..6,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
        insert in proptest::option::of((any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))),
    ) {
        let b = fixture_descriptor_bytes().swap_remove(which);
        exercise_descriptors(mutate(b, &edits, cut, insert));
    }

    #[test]
    fn hid_never_panics_on_random_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        report in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        exercise_hid(bytes, report);
    }

    #[test]
    fn hid_never_panics_on_mutated_fixtures(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
        insert in proptest::option::of((any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))),
        report in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let b = fixture_reports()[which].to_vec();
        exercise_hid(mutate(b, &edits, cut, insert), report);
    }

    /// Item streams of well-formed prefixes with random tags and huge
    /// counts and sizes: bounded output, no overflow.
    #[test]
    fn hid_bounded_on_hostile_items(
        items in proptest::collection::vec((0u8..16, 0u8..3, any::<u32>()), 0..60),
        report in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut b = Vec::new();
        for (tag, typ, v) in items {
            b.push((tag << 4) | (typ << 2) | 3);
            b.extend(v.to_le_bytes());
        }
        let bytes = b.clone();
        terminates(move || {
            if let Ok(r) = hid::parse(&bytes) {
                assert!(r.fields.len() <= hid::MAX_FIELDS);
                let _ = r.usages();
            }
        });
        exercise_hid(b, report);
    }
}

/// Inputs built to make a careless parser quadratic stay fast.
#[test]
fn pathological_inputs_stay_fast() {
    let t0 = std::time::Instant::now();
    // Many array items of the full 16-bit usage range.
    let mut b = vec![0x75, 0x01, 0x95, 0x01];
    for _ in 0..9000 {
        b.extend([0x19, 0x00, 0x2a, 0xff, 0xff, 0x81, 0x00]);
    }
    let r = hid::parse(&b).unwrap();
    assert!(r.usages().len() <= hid::MAX_SUMMARY_USAGES);
    // Deep collections, then many fields inside.
    let mut b = vec![0x75, 0x01, 0x95, 0x01];
    for _ in 0..20000 {
        b.extend([0xa1, 0x00]);
    }
    for _ in 0..20000 {
        b.extend([0x09, 0x01, 0x81, 0x02]);
    }
    let r = hid::parse(&b).unwrap();
    assert_eq!(r.fields.len(), 20000);
    // A configuration of thousands of audio alternate settings of one
    // interface, each AS one with a format, and video frames after many
    // unknown descriptors.
    let mut items = vec![gen::interface(0, 0, 0, 1, 1, 0), gen::uac1_ac(&[1], &[])];
    for k in 0..1200u32 {
        items.push(gen::interface(1, k as u8, 0, 1, 2, 0));
        items.push(gen::uac1_as_general(1));
        items.push(gen::uac1_format(1, 2, 16, &[48000]));
    }
    items.push(gen::interface(2, 0, 0, 0x0e, 0x02, 0));
    items.push(gen::uvc_mjpeg(1, 1));
    for _ in 0..500 {
        items.push(gen::uvc_color());
        items.push(gen::uvc_frame(
            0x07,
            1,
            640,
            480,
            gen::Intervals::Discrete(&[333_333]),
        ));
    }
    let mut d = gen::device(0x0200, 0, 0, 0, 0x1209, 0x00ff, 0x0100, 1);
    d.extend(gen::configuration(3, 0x80, 50, &items));
    assert!(d.len() < 65535);
    let p = descriptors::parse(&d).unwrap();
    assert_eq!(p.audio().unwrap().streams.len(), 1200);
    assert_eq!(p.video().unwrap().formats[0].frames.len(), 500);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

/// Found by `hid_bounded_on_hostile_items`: Report Size × Report Count
/// beyond 2^32 bits, accumulated over items, once overflowed.
#[test]
fn hid_huge_report_sizes_do_not_overflow() {
    let mut b = Vec::new();
    b.push(0x97); // Report Count, 4 bytes
    b.extend(1_931_396_044u32.to_le_bytes());
    b.push(0x77); // Report Size, 4 bytes
    b.extend(3_183_663_294u32.to_le_bytes());
    for _ in 0..3 {
        b.extend([0x83, 0, 0, 0, 0]); // Input, 4 bytes of flags
    }
    let r = hid::parse(&b).unwrap();
    assert!(r.fields.is_empty());
    assert_eq!(r.warnings.len(), 3);
}

#[test]
#[ignore = "prints the JSON of every fixture device"]
fn print_json() {
    for f in gen::all() {
        for d in sysfs::scan(&fixtures().join(f.dir)).unwrap() {
            println!(
                "{}: {}",
                f.dir,
                serde_json::to_string_pretty(&d.json()).unwrap()
            );
        }
    }
}

/// The JSON example in docs/usb.md is what the code produces.
#[test]
fn docs_json_example_is_current() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/usb.md")).unwrap();
    let marker = "<!-- json: speakerphone-uac1/1-1 -->\n```json\n";
    let start = doc.find(marker).expect("marker in docs/usb.md") + marker.len();
    let end = start + doc[start..].find("\n```").unwrap();
    let documented: serde_json::Value = serde_json::from_str(&doc[start..end]).unwrap();
    let all = sysfs::scan(&fixtures().join("speakerphone-uac1")).unwrap();
    let d = all.iter().find(|d| d.name == "1-1").unwrap();
    assert_eq!(documented, d.to_json_value());
}

/// Real sysfs links `bus/usb/devices/*` to the device tree; scan follows.
#[cfg(unix)]
#[test]
fn symlinked_sysfs_layout() {
    let t = tempfile::tempdir().unwrap();
    let src = fixtures().join("headset-uac2/bus/usb/devices");
    let real = t.path().join("devices/pci0000:00/0000:00:14.0/usb1");
    std::fs::create_dir_all(&real).unwrap();
    let links = sysfs::devices_dir(t.path());
    std::fs::create_dir_all(&links).unwrap();
    for name in ["1-2", "1-2:1.3"] {
        let to = real.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(src.join(name)).unwrap() {
            let e = e.unwrap();
            if e.path().is_dir() {
                let sub = to.join(e.file_name());
                std::fs::create_dir_all(&sub).unwrap();
                std::fs::copy(
                    e.path().join("report_descriptor"),
                    sub.join("report_descriptor"),
                )
                .unwrap();
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
        std::os::unix::fs::symlink(&to, links.join(name)).unwrap();
    }
    let got = sysfs::scan(t.path()).unwrap();
    let want = sysfs::scan(&fixtures().join("headset-uac2")).unwrap();
    assert_eq!(got, want);
}
