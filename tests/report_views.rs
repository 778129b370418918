//! The human views of a report, end to end through the real binary: one
//! simulated run of a device whose USB strings hold markup, shared by every
//! test here, then `certlab report render` and headless Chromium on it.
//!
//! The browser test drives Debian's chromium over the DevTools protocol on a
//! pipe (`--remote-debugging-pipe`): the page itself carries no script; the
//! checks are evaluated by the harness. Without chromium it is skipped with a
//! message, except under CI=true, where that is a failure (.ci/run installs it).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const PRODUCT: &str = "<script>window.__pwned=1</script> SP-100 \"Speakerphone\" & <b>co</b>";
const MANUFACTURER: &str = "Evil</title><img src=x onerror=\"window.__pwned=2\"> Corp";
const SERIAL: &str = "SN-<!--c-->'7'";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The shared run: the speakerphone profile on a simulated speakerphone whose
/// manufacturer, product and serial strings are hostile. Returns the report
/// directory (under cargo's per-target temporary directory).
fn report() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_views");
        let _ = std::fs::remove_dir_all(&base);
        // A fixtures tree whose USB snapshot is the speakerphone's with markup in its strings.
        let fixtures = base.join("fixtures");
        let usb = fixtures.join("usb/hostile");
        copy_dir(&root().join("fixtures/usb/speakerphone-uac1"), &usb);
        let dev = usb.join("bus/usb/devices/1-1");
        std::fs::write(dev.join("product"), format!("{PRODUCT}\n")).unwrap();
        std::fs::write(dev.join("manufacturer"), format!("{MANUFACTURER}\n")).unwrap();
        std::fs::write(dev.join("serial"), format!("{SERIAL}\n")).unwrap();
        let scenario = std::fs::read_to_string(root().join("fixtures/sim/speakerphone.toml"))
            .unwrap()
            .replace("usb = \"speakerphone-uac1\"", "usb = \"hostile\"");
        assert!(scenario.contains("\"hostile\""));
        let scenario_path = base.join("hostile.toml");
        std::fs::write(&scenario_path, scenario).unwrap();
        let out = base.join("report");
        let t0 = Instant::now();
        let o = certlab()
            .env("CERTLAB_FIXTURES", &fixtures)
            .args(["run", "speakerphone", "--device", "sim", "--vendor", "demo"])
            .arg("--scenario")
            .arg(&scenario_path)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            code(&o),
            0,
            "stdout:\n{}\nstderr:\n{}",
            stdout(&o),
            stderr(&o)
        );
        eprintln!(
            "report_views: the shared run took {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        check_report_dir(&out);
        out
    })
}

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn the_device_strings_are_text_in_report_html_and_junit_xml() {
    let dir = report();
    let r = read_json(&dir.join("report.json"));
    assert_eq!(r["device"]["product"], PRODUCT);
    assert_eq!(r["device"]["manufacturer"], MANUFACTURER);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for s in [PRODUCT, MANUFACTURER, SERIAL] {
        assert!(html.contains(&html_escape(s)), "{s} escaped");
    }
    let lower = html.to_ascii_lowercase();
    for bad in ["<script", "<img", "<b>co</b>", "</title><", "<!--c-->"] {
        assert!(!lower.contains(bad), "{bad} reached the page as markup");
    }
    // junit.xml carries them as text that parses back to the same strings.
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let prop = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
            .and_then(|n| n.attribute("value"))
            .map(str::to_string)
    };
    assert_eq!(prop("certlab.device.product").as_deref(), Some(PRODUCT));
    assert_eq!(
        prop("certlab.device.manufacturer").as_deref(),
        Some(MANUFACTURER)
    );
    assert_eq!(prop("certlab.device.serial").as_deref(), Some(SERIAL));
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert!(suite.attribute("name").unwrap().contains(PRODUCT));
}

#[test]
fn render_reproduces_the_views_byte_for_byte_and_leaves_the_report_alone() {
    let dir = report();
    let before = files_under(dir);
    let out = dir.with_file_name("rendered");
    let _ = std::fs::remove_dir_all(&out);
    let t0 = Instant::now();
    let o = certlab()
        .args(["report", "render"])
        .arg(dir)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let took = t0.elapsed().as_secs_f64();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    eprintln!("report_views: render took {took:.2} s");
    assert_eq!(
        files_under(dir),
        before,
        "render changed the report directory"
    );
    let views: Vec<_> = before
        .iter()
        .filter(|(p, _)| p == "report.html" || p == "junit.xml" || p.starts_with("plots/"))
        .cloned()
        .collect();
    assert!(
        views.len() >= 3 + 4 * 4,
        "views of the run: {}",
        views.len()
    );
    let rendered = files_under(&out);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&rendered), names(&views));
    for ((p, a), (_, b)) in views.iter().zip(&rendered) {
        assert!(a == b, "{p} differs between the run and render");
    }
    // Every written path is printed.
    for (p, _) in &rendered {
        assert!(stdout(&o).contains(p.as_str()), "{p} not listed");
    }
}

#[test]
fn render_writes_png_plots_on_request() {
    let dir = report();
    let out = dir.with_file_name("rendered-png");
    let _ = std::fs::remove_dir_all(&out);
    let o = certlab()
        .args(["report", "render", "--png", "--out"])
        .arg(&out)
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let svgs: Vec<_> = files_under(&out.join("plots"))
        .into_iter()
        .filter(|(p, _)| p.ends_with(".svg"))
        .collect();
    assert!(!svgs.is_empty());
    for (p, _) in svgs {
        let png = out.join("plots").join(p.replace(".svg", ".png"));
        let img = image::open(&png)
            .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
            .to_rgb8();
        assert_eq!((img.width(), img.height()), (640, 360), "{}", png.display());
        // Drawn, with text: many shades, not a blank canvas.
        let mut shades = std::collections::HashSet::new();
        for px in img.pixels() {
            shades.insert(px.0);
        }
        assert!(
            shades.len() > 30,
            "{}: {} shades",
            png.display(),
            shades.len()
        );
    }
}

#[test]
fn render_refuses_what_is_not_a_readable_report_with_exit_3() {
    let dir = report();
    let scratch = dir.with_file_name("bad");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let render = |d: &Path, out: &Path| {
        certlab()
            .args(["report", "render"])
            .arg(d)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let expect = |name: &str, d: &Path, out: &Path, needle: &str| {
        let o = render(d, out);
        assert_eq!(code(&o), 3, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{name}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{name}");
    };
    let out = scratch.join("out");
    expect(
        "no such directory",
        &scratch.join("nope"),
        &out,
        "is not a directory",
    );
    let empty = scratch.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    expect(
        "no report.json",
        &empty,
        &out,
        "not a certlab report directory",
    );
    let copy = |name: &str| {
        let d = scratch.join(name);
        copy_dir(dir, &d);
        d
    };
    let garbled = copy("garbled");
    std::fs::write(
        garbled.join("report.json"),
        b"{\"schema\": \"certlab-report/1\", \"outc",
    )
    .unwrap();
    expect("garbled JSON", &garbled, &out, "not valid JSON");
    let other = copy("other-schema");
    let mut r = read_json(&other.join("report.json"));
    r["schema"] = json!("certlab-report/9");
    std::fs::write(other.join("report.json"), serde_json::to_vec(&r).unwrap()).unwrap();
    expect("another schema", &other, &out, "certlab-report/9");
    let wrong = copy("wrong-shape");
    let mut r = read_json(&wrong.join("report.json"));
    r["steps"][0]["outcome"] = json!("GREAT");
    std::fs::write(wrong.join("report.json"), serde_json::to_vec(&r).unwrap()).unwrap();
    expect("a bad outcome", &wrong, &out, "GREAT");
    let no_raw = copy("no-raw");
    std::fs::remove_file(no_raw.join("raw/send-latency.wav")).unwrap();
    expect("a missing raw capture", &no_raw, &out, "send-latency.wav");
    let no_csv = copy("no-csv");
    std::fs::remove_file(no_csv.join("measurements.csv")).unwrap();
    expect("no measurements.csv", &no_csv, &out, "measurements.csv");
    // Never into the report itself, nor into a directory that is not empty.
    expect(
        "out inside the report",
        dir,
        &dir.join("views"),
        "inside the report",
    );
    assert!(!dir.join("views").exists());
    let full = scratch.join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("x"), b"x").unwrap();
    expect("out not empty", dir, &full, "not empty");
    assert!(!out.exists(), "nothing written on refusal");
}

// ---------------------------------------------------------------------------
// Headless Chromium over the DevTools protocol on a pipe.

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CERTLAB_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser"] {
        for d in std::env::split_paths(&path) {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A browser driven over `--remote-debugging-pipe`: commands go to its fd 3,
/// replies and events come from its fd 4, each a JSON text ended by NUL.
struct Browser {
    child: std::process::Child,
    to: std::fs::File,
    from: mpsc::Receiver<Value>,
    next: u64,
    events: Vec<Value>,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both are fresh descriptors this process owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    fn launch(exe: &Path, profile: &Path) -> Browser {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let (their_in, our_out) = pipe();
        let (our_in, their_out) = pipe();
        let (a, b) = (their_in.as_raw_fd(), their_out.as_raw_fd());
        let mut cmd = std::process::Command::new(exe);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--mute-audio",
            // No network: no name resolves, and no proxy is tried.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--no-proxy-server",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Move both out of the way first, then onto 3 and 4 (dup2
                // clears close-on-exec on the copies).
                let a2 = libc::fcntl(a, libc::F_DUPFD_CLOEXEC, 10);
                let b2 = libc::fcntl(b, libc::F_DUPFD_CLOEXEC, 10);
                if a2 < 0 || b2 < 0 || libc::dup2(a2, 3) < 0 || libc::dup2(b2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("chromium starts");
        drop(their_in);
        drop(their_out);
        let (tx, rx) = mpsc::channel();
        let from = std::fs::File::from(our_in);
        std::thread::spawn(move || {
            let mut r = BufReader::new(from);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                            if tx.send(v).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        Browser {
            child,
            to: std::fs::File::from(our_out),
            from: rx,
            next: 0,
            events: Vec::new(),
        }
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("chromium did not answer {method}: {e}"));
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn wait_event(&mut self, method: &str, timeout: Duration) {
        if self.events.iter().any(|e| e["method"] == method) {
            return;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no {method} from chromium: {e}"));
            let hit = v["method"] == method;
            self.events.push(v);
            if hit {
                return;
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Evaluated in the page by the harness (the page has no script of its own).
const CHECK: &str = r#"(() => {
  const visible = (el) => {
    if (!el) return false;
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.display !== 'none' &&
      s.visibility !== 'hidden' && parseFloat(s.opacity) > 0;
  };
  const fact = (name) => {
    const dt = [...document.querySelectorAll('dt')].find(d => d.textContent === name);
    return dt && dt.nextElementSibling ? dt.nextElementSibling.textContent : null;
  };
  const banner = document.getElementById('banner');
  const table = document.getElementById('verdict-table');
  return {
    title: document.title,
    scripts: document.scripts.length,
    images: document.images.length,
    pwned: typeof window.__pwned !== 'undefined',
    banner: banner ? { visible: visible(banner), text: banner.innerText } : null,
    table: table ? { visible: visible(table), rows: table.tBodies[0].rows.length } : null,
    plots: [...document.querySelectorAll('figure.plot')].map(f => {
      const svg = f.querySelector('svg');
      const r = svg ? svg.getBoundingClientRect() : null;
      return { id: f.id, visible: visible(f) && visible(svg), svg_width: r ? r.width : 0,
               figure_width: f.getBoundingClientRect().width,
               texts: svg ? svg.querySelectorAll('text').length : 0,
               labels: svg ? [...svg.querySelectorAll('g[aria-label]')]
                 .filter(g => g.getAttribute('aria-label').trim() !== '').length : 0,
               drawn_labels: svg ? [...svg.querySelectorAll('g[aria-label]')]
                 .filter(g => g.getAttribute('aria-label').trim() !== '')
                 .filter(g => { const b = g.getBBox(); return b.width > 1 && b.height > 1; }).length : 0 };
    }),
    product: fact('Product'),
    manufacturer: fact('Manufacturer'),
    serial: fact('Serial number'),
    scroll_width: document.documentElement.scrollWidth,
  };
})()"#;

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64 from chromium")
}

/// Errors the page logged (console, exceptions, the browser's log) and the
/// URLs it requested, from the events seen.
fn problems_and_requests(events: &[Value]) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut requests = Vec::new();
    for e in events {
        let m = e["method"].as_str().unwrap_or("");
        let p = &e["params"];
        match m {
            "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                problems.push(format!("console {}: {}", p["type"], p["args"]))
            }
            "Runtime.exceptionThrown" => {
                problems.push(format!("exception: {}", p["exceptionDetails"]))
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                problems.push(format!("log: {}", p["entry"]["text"]))
            }
            "Network.requestWillBeSent" => {
                requests.push(p["request"]["url"].as_str().unwrap_or("").to_string())
            }
            _ => {}
        }
    }
    (problems, requests)
}

#[test]
fn report_html_in_headless_chromium_shows_banner_verdicts_and_plots() {
    let exe = chromium();
    if !tool_or_skip(
        "report_html_in_headless_chromium_shows_banner_verdicts_and_plots",
        "chromium",
        exe.is_some(),
        "apt-get install chromium, or set CERTLAB_CHROMIUM; .ci/run installs Debian's chromium",
    ) {
        return;
    }
    let Some(exe) = exe else { return };
    let dir = report();
    let r = read_json(&dir.join("report.json"));
    let html = std::fs::canonicalize(dir.join("report.html")).unwrap();
    let plots_on_disk = std::fs::read_dir(dir.join("plots"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count();
    let work = dir.with_file_name("browser");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let t0 = Instant::now();
    let mut b = Browser::launch(&exe, &work.join("profile"));
    let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
    let attached = b.call(
        None,
        "Target.attachToTarget",
        json!({"targetId": target["targetId"], "flatten": true}),
    );
    let sid = attached["sessionId"].as_str().unwrap().to_string();
    let s = Some(sid.as_str());
    for m in [
        "Runtime.enable",
        "Log.enable",
        "Network.enable",
        "Page.enable",
    ] {
        b.call(s, m, json!({}));
    }
    b.call(
        s,
        "Network.emulateNetworkConditions",
        json!({"offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
    );
    b.call(
        s,
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
    );
    // First a canary page that does log an error and fetch: the checks
    // below must see both, or their silence on the report means nothing.
    let canary = work.join("canary.html");
    std::fs::write(
        &canary,
        "<!DOCTYPE html><title>canary</title><img src=\"http://example.invalid/x.png\">\
         <script>console.error('canary error')</script>",
    )
    .unwrap();
    b.events.clear();
    b.call(
        s,
        "Page.navigate",
        json!({"url": format!("file://{}", canary.display())}),
    );
    b.wait_event("Page.loadEventFired", Duration::from_secs(30));
    let (problems, requests) = problems_and_requests(&b.events);
    assert!(
        problems.iter().any(|p| p.contains("canary error")),
        "the console check is blind: {problems:?}"
    );
    assert!(
        requests.iter().any(|u| u.starts_with("http://")),
        "the request check is blind: {requests:?}"
    );

    let url = format!("file://{}", html.display());
    b.events.clear();
    let nav = b.call(s, "Page.navigate", json!({"url": url}));
    assert!(nav.get("errorText").is_none(), "navigate: {nav}");
    b.wait_event("Page.loadEventFired", Duration::from_secs(30));
    let got = b.call(
        s,
        "Runtime.evaluate",
        json!({"expression": CHECK, "returnByValue": true}),
    );
    let v = got["result"]["value"].clone();
    assert!(v.is_object(), "evaluation failed: {got}");

    // Screen: the banner, the verdict table and every plot, visible.
    assert_eq!(v["scripts"], 0, "the page carries no script");
    assert_eq!(
        v["images"], 0,
        "no <img> (a device string must not become one)"
    );
    assert_eq!(v["pwned"], false, "a device string ran as script");
    let banner = &v["banner"];
    assert_eq!(banner["visible"], true, "banner: {banner}");
    let btext = banner["text"].as_str().unwrap();
    assert!(btext.contains("UNOFFICIAL"), "{btext}");
    assert!(btext.contains(r["notice"].as_str().unwrap()), "{btext}");
    for why in r["marking_reasons"].as_array().unwrap() {
        assert!(btext.contains(why.as_str().unwrap()), "{btext}");
    }
    assert_eq!(v["table"]["visible"], true, "{}", v["table"]);
    assert!(v["table"]["rows"].as_u64().unwrap() >= r["steps"].as_array().unwrap().len() as u64);
    let plots = v["plots"].as_array().unwrap();
    assert_eq!(
        plots.len(),
        plots_on_disk,
        "every plot of plots/ is on the page"
    );
    assert!(plots.len() >= 4 * 4, "{} plots", plots.len());
    for p in plots {
        assert_eq!(p["visible"], true, "plot {} not visible", p["id"]);
        // The text is the shipped font's outlines, which the browser
        // draws: no <text> is left for it to set in a font of its own.
        assert_eq!(p["texts"], 0, "plot {} has <text>", p["id"]);
        let labels = p["labels"].as_u64().unwrap();
        assert!(labels > 5, "plot {} has no text: {p}", p["id"]);
        assert_eq!(
            p["drawn_labels"].as_u64().unwrap(),
            labels,
            "plot {}: some text is not drawn: {p}",
            p["id"]
        );
    }
    // The hostile strings are shown as the text they are.
    assert_eq!(v["product"], PRODUCT);
    assert_eq!(v["manufacturer"], MANUFACTURER);
    assert_eq!(v["serial"], SERIAL);
    assert!(
        v["title"].as_str().unwrap().contains(MANUFACTURER),
        "{}",
        v["title"]
    );
    let shot = b.call(
        s,
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true}),
    );
    let png = b64(shot["data"].as_str().unwrap());
    let shot_path = work.join("report.png");
    std::fs::write(&shot_path, &png).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    assert!(
        img.width() >= 1200 && img.height() > 2000,
        "{}x{}",
        img.width(),
        img.height()
    );
    eprintln!("report_views: screenshot {}", shot_path.display());

    // Print: at A4's printable width (210 mm less 2 × 12 mm margins, at 96
    // px/in) and print media, nothing is wider than the page, and every plot
    // fits its figure; then a PDF on A4 paper.
    let a4_px = ((210.0 - 24.0) / 25.4 * 96.0) as u32;
    b.call(
        s,
        "Emulation.setDeviceMetricsOverride",
        json!({"width": a4_px, "height": 1100, "deviceScaleFactor": 1, "mobile": false}),
    );
    b.call(s, "Emulation.setEmulatedMedia", json!({"media": "print"}));
    let got = b.call(
        s,
        "Runtime.evaluate",
        json!({"expression": CHECK, "returnByValue": true}),
    );
    let p = &got["result"]["value"];
    assert!(
        p["scroll_width"].as_u64().unwrap() <= a4_px as u64,
        "the printed page is {} px wide, A4 holds {a4_px}",
        p["scroll_width"]
    );
    for pl in p["plots"].as_array().unwrap() {
        assert_eq!(pl["visible"], true, "print: {}", pl["id"]);
        assert!(
            pl["svg_width"].as_f64().unwrap() <= pl["figure_width"].as_f64().unwrap() + 0.5,
            "print: {pl}"
        );
    }
    // What the printed page looks like, at A4's width, for a person to look at.
    let shot = b.call(
        s,
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true}),
    );
    std::fs::write(
        work.join("report-print.png"),
        b64(shot["data"].as_str().unwrap()),
    )
    .unwrap();
    let pdf = b.call(
        s,
        "Page.printToPDF",
        json!({"paperWidth": 8.27, "paperHeight": 11.69, "preferCSSPageSize": true, "printBackground": true}),
    );
    let pdf = b64(pdf["data"].as_str().unwrap());
    assert!(pdf.starts_with(b"%PDF"), "a PDF");
    std::fs::write(work.join("report.pdf"), &pdf).unwrap();

    // No console error, no exception, no error logged, and no request but the page.
    let (problems, requests) = problems_and_requests(&b.events);
    assert!(
        problems.is_empty(),
        "the page logged errors:\n{}",
        problems.join("\n")
    );
    assert_eq!(
        requests,
        vec![url.clone()],
        "the page fetched something beyond itself"
    );
    drop(b);
    eprintln!(
        "report_views: chromium checks took {:.1} s ({} plots, page {} bytes)",
        t0.elapsed().as_secs_f64(),
        plots.len(),
        std::fs::metadata(&html).unwrap().len()
    );
}

#[test]
fn the_schema_rejects_reports_that_break_it() {
    let dir = report();
    let good = read_json(&dir.join("report.json"));
    check_schema(&good, "the shared run");
    let schema = read_json(&root().join("schemas/report.schema.json"));
    let v = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    type Edit = fn(&mut Value);
    let bad: [(&str, Edit); 9] = [
        ("an outcome it does not know", |r| {
            r["outcome"] = json!("GREAT")
        }),
        ("UNOFFICIAL without the notice", |r| {
            r.as_object_mut().unwrap().remove("notice");
        }),
        ("another notice", |r| r["notice"] = json!("all fine")),
        ("OFFICIAL with the notice", |r| {
            r["marking"] = json!("OFFICIAL")
        }),
        ("an unknown field", |r| r["extra"] = json!(1)),
        ("a bad sha256", |r| r["profile"]["sha256"] = json!("abc")),
        ("a time that is not RFC 3339 UTC", |r| {
            r["started_at"] = json!("yesterday")
        }),
        ("a step without stats", |r| {
            r["steps"][0].as_object_mut().unwrap().remove("stats");
        }),
        ("a FAIL step without a reason", |r| {
            r["steps"][0]["outcome"] = json!("FAIL");
            r["steps"][0].as_object_mut().unwrap().remove("reason");
        }),
    ];
    for (what, edit) in bad {
        let mut r = good.clone();
        edit(&mut r);
        assert!(!v.is_valid(&r), "the schema accepts {what}");
    }
}

#[test]
fn the_format_doc_names_every_field_of_the_schema() {
    let schema = read_json(&root().join("schemas/report.schema.json"));
    let doc = std::fs::read_to_string(root().join("docs/report-format.md")).unwrap();
    let mut names = std::collections::BTreeSet::new();
    fn walk(v: &Value, names: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Object(props)) = m.get("properties") {
                    for (k, sub) in props {
                        names.insert(k.clone());
                        walk(sub, names);
                    }
                }
                for (k, sub) in m {
                    if k != "properties" {
                        walk(sub, names);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, names)),
            _ => {}
        }
    }
    walk(&schema, &mut names);
    assert!(names.len() > 60, "{names:?}");
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/report-format.md does not name {missing:?}"
    );
    // And measurements.csv's columns.
    let csv_header = "step,shot,value,unit,uncertainty,timestamp,status,detail,sync_bound_us";
    for c in csv_header.split(',') {
        assert!(
            doc.contains(&format!("| `{c}` |")),
            "measurements.csv column {c}"
        );
    }
}
