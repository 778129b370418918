//! The virtual device lab's gadget responder and its host-side probes
//! (tests/vlab, docs/vlab.md). std + libc only.
//!
//! Owns, on the gadget side of a dummy_hcd USB gadget (`respond`): answering
//! every HID output report (an LED write from the host) with an input report
//! after a known delay, and sending hook-switch presses on request through a
//! control FIFO, logging every action with its CLOCK_MONOTONIC time. On the
//! host side (`hid-rtt`, `hid-press`): writing output reports to a hidraw
//! node and timing the replies, and timing requested presses from the
//! gadget's write to the host's read (the same kernel, so the same clock).
//!
//! It opens only the paths it is given and does nothing without arguments,
//! so `cargo test` building and anyone running it outside the lab is
//! harmless. It is lab tooling, not part of certlab: certlab's own hidraw
//! backend should replace the host-side probes in the lab's tests.
//!
//! The reports (no report IDs), matching the descriptor in tests/vlab/gadget:
//! - output (LEDs, host → device), 1 byte: bit 0 mute, bit 1 off-hook;
//! - input (buttons, device → host), 1 byte: bit 0 hook switch, bit 1 phone mute.
//!
//! The responder's answer to LEDs `l` is the input report
//! `((l & 1) << 1) | ((l >> 1) & 1)`: the mute LED comes back as phone mute,
//! the off-hook LED as the hook switch.

#[cfg(target_os = "linux")]
fn main() {
    std::process::exit(lab::main(std::env::args().skip(1).collect()));
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("vlab_gadget: Linux only (USB gadget and hidraw); see docs/vlab.md");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
mod lab {
    use std::fs::{File, OpenOptions};
    use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;

    const USAGE: &str = "usage:
  vlab_gadget respond --hidg /dev/hidgN --delay-ms MS [--control FIFO] [--log FILE]
      gadget side: answer each output report after MS ms; FIFO lines
      'press', 'release', 'mute', 'unmute' send input reports at once
  vlab_gadget hid-rtt --hidraw /dev/hidrawN --delay-ms MS --count N [--slack-ms S] [--log FILE]
      host side: write N LED reports, time each reply, check its content;
      fails when a reply is wrong or missing, faster than MS, or its median
      slower than MS + S (default S 200); with the responder's --log, splits
      each round trip into its OUT leg, the gadget's delay and its IN leg
  vlab_gadget hid-press --hidraw /dev/hidrawN --control FIFO --log FILE --count N [--max-ms M]
      host side: ask the responder for N hook-switch presses and releases;
      time each from the gadget's write (its log) to the host's read;
      fails when a report is wrong or missing, or the median exceeds M (default 200)";

    fn now_ns() -> i64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid timespec for the call to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    /// Sleep until CLOCK_MONOTONIC reads `t` ns.
    fn sleep_until(t: i64) {
        let ts = libc::timespec {
            tv_sec: t / 1_000_000_000,
            tv_nsec: t % 1_000_000_000,
        };
        loop {
            // SAFETY: ts is valid; the remainder pointer may be null with TIMER_ABSTIME.
            let r = unsafe {
                libc::clock_nanosleep(
                    libc::CLOCK_MONOTONIC,
                    libc::TIMER_ABSTIME,
                    &ts,
                    std::ptr::null_mut(),
                )
            };
            if r != libc::EINTR {
                return;
            }
        }
    }

    /// Wait until `fd` is readable (or writable), at most `ms`; false on timeout.
    fn wait_fd(fd: i32, events: i16, ms: i32) -> Result<bool, String> {
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(format!("poll: {e}"));
            }
            return Ok(r > 0);
        }
    }

    struct Args(Vec<String>);

    impl Args {
        fn opt(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .position(|a| a == name)
                .and_then(|i| self.0.get(i + 1).cloned())
        }
        fn need(&self, name: &str) -> Result<String, String> {
            self.opt(name)
                .ok_or_else(|| format!("{name} is required\n{USAGE}"))
        }
        fn num(&self, name: &str, default: Option<u64>) -> Result<u64, String> {
            match self.opt(name) {
                Some(s) => s
                    .parse()
                    .map_err(|_| format!("{name}: '{s}' is not a whole number")),
                None => default.ok_or_else(|| format!("{name} is required\n{USAGE}")),
            }
        }
        fn check_known(&self, known: &[&str]) -> Result<(), String> {
            let mut i = 0;
            while i < self.0.len() {
                if !known.contains(&self.0[i].as_str()) {
                    return Err(format!("unknown argument '{}'\n{USAGE}", self.0[i]));
                }
                i += 2;
            }
            Ok(())
        }
    }

    pub fn main(argv: Vec<String>) -> i32 {
        let Some(cmd) = argv.first().cloned() else {
            eprintln!("{USAGE}");
            return 2;
        };
        let args = Args(argv[1..].to_vec());
        let r = match cmd.as_str() {
            "respond" => respond(&args),
            "hid-rtt" => hid_rtt(&args),
            "hid-press" => hid_press(&args),
            "-h" | "--help" | "help" => {
                println!("{USAGE}");
                return 0;
            }
            other => Err(format!("unknown command '{other}'\n{USAGE}")),
        };
        match r {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("vlab_gadget {cmd}: {e}");
                1
            }
        }
    }

    /// The responder's answer to LED state `l`.
    pub fn answer(l: u8) -> u8 {
        ((l & 1) << 1) | ((l >> 1) & 1)
    }

    fn open_rw(path: &str, nonblock: bool) -> Result<File, String> {
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        if nonblock {
            o.custom_flags(libc::O_NONBLOCK);
        }
        o.open(path).map_err(|e| format!("cannot open {path}: {e}"))
    }

    /// Write one report to the gadget, waiting at most 2 s for the host to
    /// take the previous one; false when the host is not reading.
    fn send(hidg: &mut File, report: u8) -> Result<bool, String> {
        if !wait_fd(hidg.as_raw_fd(), libc::POLLOUT, 2000)? {
            return Ok(false);
        }
        match hidg.write(&[report]) {
            Ok(1) => Ok(true),
            Ok(n) => Err(format!("short write to the gadget: {n} bytes")),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(format!("write to the gadget: {e}")),
        }
    }

    fn respond(a: &Args) -> Result<(), String> {
        a.check_known(&["--hidg", "--delay-ms", "--control", "--log"])?;
        let hidg_path = a.need("--hidg")?;
        let delay_ns = a.num("--delay-ms", None)? as i64 * 1_000_000;
        let mut hidg = open_rw(&hidg_path, true)?;
        let mut control = match a.opt("--control") {
            Some(p) => Some(open_rw(&p, true)?),
            None => None,
        };
        let mut log: Box<dyn Write> = match a.opt("--log") {
            Some(p) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(|e| format!("cannot open the log {p}: {e}"))?,
            ),
            None => Box::new(std::io::stdout()),
        };
        eprintln!(
            "vlab_gadget respond: {hidg_path}, delay {} ms, ready",
            delay_ns / 1_000_000
        );
        let mut pending = Vec::<u8>::new();
        loop {
            let mut fds = vec![libc::pollfd {
                fd: hidg.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            if let Some(c) = &control {
                fds.push(libc::pollfd {
                    fd: c.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            // SAFETY: fds is a valid array of its length.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(format!("poll: {e}"));
            }
            if fds[0].revents & libc::POLLIN != 0 {
                let mut buf = [0u8; 64];
                let n = match hidg.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                    Err(e) => return Err(format!("read from {hidg_path}: {e}")),
                };
                let t_out = now_ns();
                if n > 0 {
                    let reply = answer(buf[0]);
                    sleep_until(t_out + delay_ns);
                    let t_in = now_ns();
                    let ok = send(&mut hidg, reply)?;
                    let _ = writeln!(
                        log,
                        "out {t_out} leds=0x{:02x} in {t_in} report=0x{reply:02x}{}",
                        buf[0],
                        if ok { "" } else { " host-not-reading" }
                    );
                    let _ = log.flush();
                }
            } else if fds[0].revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                return Err(format!("{hidg_path}: error or hang-up"));
            }
            if let Some(c) = control.as_mut() {
                if fds.get(1).is_some_and(|f| f.revents & libc::POLLIN != 0) {
                    let mut buf = [0u8; 256];
                    let n = c.read(&mut buf).unwrap_or(0);
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=i).collect();
                        let cmd = String::from_utf8_lossy(&line).trim().to_string();
                        let report = match cmd.as_str() {
                            "press" => 0x01,
                            "release" | "unmute" => 0x00,
                            "mute" => 0x02,
                            "" => continue,
                            other => {
                                let _ = writeln!(log, "unknown-command {other:?}");
                                let _ = log.flush();
                                continue;
                            }
                        };
                        let t = now_ns();
                        let ok = send(&mut hidg, report)?;
                        let _ = writeln!(
                            log,
                            "{cmd} {t} report=0x{report:02x}{}",
                            if ok { "" } else { " host-not-reading" }
                        );
                        let _ = log.flush();
                    }
                }
            }
        }
    }

    /// Read one input report within `ms`; the report and its read time.
    fn read_report(dev: &mut File, ms: i32) -> Result<Option<(Vec<u8>, i64)>, String> {
        if !wait_fd(dev.as_raw_fd(), libc::POLLIN, ms)? {
            return Ok(None);
        }
        let mut buf = [0u8; 64];
        match dev.read(&mut buf) {
            Ok(n) => Ok(Some((buf[..n].to_vec(), now_ns()))),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// Drop reports that were queued before we started.
    fn drain(dev: &mut File) -> Result<usize, String> {
        let mut n = 0;
        while read_report(dev, 100)?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    fn ms(ns: i64) -> f64 {
        ns as f64 / 1e6
    }

    fn stats(name: &str, unit_ns: &mut [i64]) -> f64 {
        unit_ns.sort_unstable();
        let n = unit_ns.len();
        if n == 0 {
            return f64::NAN;
        }
        let pick = |q: f64| unit_ns[((n - 1) as f64 * q).round() as usize];
        let mean = unit_ns.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let sd = (unit_ns
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / n as f64)
            .sqrt();
        let median = ms(pick(0.5));
        // The line tests/vlab/lib.bash collects: MEASURE name value unit.
        println!("MEASURE {name}_median_ms {median:.3} ms");
        println!(
            "MEASURE {name}_spread_ms min={:.3},p95={:.3},max={:.3},sd={:.3},n={n} ms",
            ms(unit_ns[0]),
            ms(pick(0.95)),
            ms(unit_ns[n - 1]),
            sd / 1e6
        );
        median
    }

    /// Log lines appended since `from` (a byte offset).
    fn log_lines_since(path: &str, from: u64) -> Result<Vec<String>, String> {
        let mut f = File::open(path).map_err(|e| format!("cannot open the log {path}: {e}"))?;
        f.seek(SeekFrom::Start(from))
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(BufReader::new(f).lines().map_while(Result::ok).collect())
    }

    fn log_len(path: &str) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// The number after the field `after` in a log line's fields.
    fn field_ns(fields: &[&str], after: &str) -> Option<i64> {
        let i = fields.iter().position(|f| *f == after)?;
        fields.get(i + 1)?.parse().ok()
    }

    fn hid_rtt(a: &Args) -> Result<(), String> {
        a.check_known(&["--hidraw", "--delay-ms", "--count", "--slack-ms", "--log"])?;
        let path = a.need("--hidraw")?;
        let delay_ms = a.num("--delay-ms", None)?;
        let count = a.num("--count", None)?.max(1);
        let slack_ms = a.num("--slack-ms", Some(200))?;
        let log = a.opt("--log");
        let mut dev = open_rw(&path, true)?;
        let stale = drain(&mut dev)?;
        if stale > 0 {
            println!("dropped {stale} stale input report(s) queued before the test");
        }
        let log_from = log.as_deref().map(log_len).unwrap_or(0);
        let mut rtts = Vec::new();
        let mut problems = Vec::new();
        for i in 0..count {
            let leds = [0x01u8, 0x02, 0x03, 0x00][(i % 4) as usize];
            let want = answer(leds);
            let t0 = now_ns();
            match dev.write(&[0x00, leds]) {
                Ok(2) => {}
                Ok(n) => return Err(format!("short write to {path}: {n} bytes")),
                Err(e) => return Err(format!("write to {path}: {e}")),
            }
            match read_report(&mut dev, 3000)? {
                None => problems.push(format!(
                    "shot {i}: no reply within 3 s to LEDs 0x{leds:02x}"
                )),
                Some((r, t1)) => {
                    let rtt = t1 - t0;
                    println!(
                        "shot {i}: LEDs 0x{leds:02x} -> report {:02x?} in {:.3} ms",
                        r,
                        ms(rtt)
                    );
                    if r != [want] {
                        problems.push(format!(
                            "shot {i}: reply {r:02x?}, expected [{want:02x}] for LEDs 0x{leds:02x}"
                        ));
                    } else if rtt < delay_ms as i64 * 1_000_000 {
                        problems.push(format!(
                            "shot {i}: round trip {:.3} ms is shorter than the responder's {delay_ms} ms delay",
                            ms(rtt)
                        ));
                    } else {
                        rtts.push((t0, t1, rtt));
                    }
                }
            }
        }
        let mut all: Vec<i64> = rtts.iter().map(|r| r.2).collect();
        let median = stats("hid_rtt", &mut all);
        if !rtts.is_empty() && median > (delay_ms + slack_ms) as f64 {
            problems.push(format!(
                "median round trip {median:.3} ms exceeds the delay {delay_ms} ms + slack {slack_ms} ms"
            ));
        }
        if let Some(log) = log {
            // Split each round trip at the responder's own stamps.
            let lines = log_lines_since(&log, log_from)?;
            let outs: Vec<(i64, i64)> = lines
                .iter()
                .filter(|l| l.starts_with("out "))
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    Some((field_ns(&f, "out")?, field_ns(&f, "in")?))
                })
                .collect();
            if outs.len() != count as usize {
                problems.push(format!(
                    "the responder logged {} answers for {count} output reports",
                    outs.len()
                ));
            } else {
                let (mut out_leg, mut held, mut in_leg) = (Vec::new(), Vec::new(), Vec::new());
                for ((t0, t1, _), (g_out, g_in)) in rtts.iter().zip(&outs) {
                    out_leg.push(g_out - t0);
                    held.push(g_in - g_out);
                    in_leg.push(t1 - g_in);
                }
                stats("hid_out_leg", &mut out_leg);
                let held_median = stats("hid_gadget_delay", &mut held);
                stats("hid_in_leg", &mut in_leg);
                if held_median < delay_ms as f64 {
                    problems.push(format!(
                        "the responder held replies {held_median:.3} ms, less than its {delay_ms} ms"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    fn hid_press(a: &Args) -> Result<(), String> {
        a.check_known(&["--hidraw", "--control", "--log", "--count", "--max-ms"])?;
        let path = a.need("--hidraw")?;
        let control = a.need("--control")?;
        let log = a.need("--log")?;
        let count = a.num("--count", None)?.max(1);
        let max_ms = a.num("--max-ms", Some(200))?;
        let mut dev = open_rw(&path, true)?;
        let stale = drain(&mut dev)?;
        if stale > 0 {
            println!("dropped {stale} stale input report(s) queued before the test");
        }
        let mut ctl = OpenOptions::new()
            .write(true)
            .open(&control)
            .map_err(|e| format!("cannot open the control FIFO {control}: {e}"))?;
        let mut lat = Vec::new();
        let mut problems = Vec::new();
        for i in 0..count {
            for (cmd, want) in [("press", 0x01u8), ("release", 0x00)] {
                let from = log_len(&log);
                writeln!(ctl, "{cmd}").map_err(|e| format!("write to {control}: {e}"))?;
                let got = read_report(&mut dev, 3000)?;
                // The responder stamps before its write and logs after it; give it a moment.
                let mut sent = None;
                for _ in 0..100 {
                    sent = log_lines_since(&log, from)?
                        .iter()
                        .find(|l| l.starts_with(cmd))
                        .and_then(|l| {
                            let f: Vec<&str> = l.split_whitespace().collect();
                            field_ns(&f, cmd)
                        });
                    if sent.is_some() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                match (got, sent) {
                    (None, _) => problems.push(format!("{i} {cmd}: no input report within 3 s")),
                    (_, None) => problems.push(format!("{i} {cmd}: the responder did not log it")),
                    (Some((r, t_read)), Some(t_sent)) => {
                        let d = t_read - t_sent;
                        println!(
                            "{i} {cmd}: report {r:02x?} {:.3} ms after the gadget wrote it",
                            ms(d)
                        );
                        if r != [want] {
                            problems
                                .push(format!("{i} {cmd}: report {r:02x?}, expected [{want:02x}]"));
                        } else if d < 0 {
                            problems.push(format!("{i} {cmd}: read before the gadget wrote it ({d} ns): a stale report?"));
                        } else {
                            lat.push(d);
                        }
                    }
                }
            }
        }
        let median = stats("hid_press_to_read", &mut lat);
        if !lat.is_empty() && median > max_ms as f64 {
            problems.push(format!("median {median:.3} ms exceeds {max_ms} ms"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}
