//! Running a profile against a station.
//!
//! Owns the order of steps, their timeouts, cancellation (Ctrl-C gives ABORTED
//! and keeps the data gathered so far), progress bars, the run log, and
//! handing each step's measurement to `profile::judge` and `report`. The steps
//! run on blocking threads under a tokio runtime that watches the clock and the
//! signal. It does no signal processing and writes files only through `report`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::Digest;

use crate::files::AtomicFile;
use crate::measure::measurement::SyncConversion;
use crate::measure::{self, Ctx, Measurement};
use crate::profile::Profile;
use crate::report::{self, ClockSyncRecord, Ending, Report, StationRecord, StepRecord};
use crate::station::sync::ClockSync;
use crate::station::{self, Station};
use crate::time::HostTime;
use crate::timestamp;
use crate::{Error, Result};

pub mod calibration;
use calibration::Verdict;

/// What `certlab run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub profile: Profile,
    pub device: String,
    pub rig: Option<String>,
    pub scenario: Option<PathBuf>,
    pub vendor: String,
    pub out: Option<PathBuf>,
    /// Reports root when `out` is not given.
    pub reports_root: PathBuf,
    /// Show progress bars (when stderr is a terminal).
    pub progress: bool,
    /// The key that signs the report and the trust documents its marking rests on.
    pub signing: crate::trust::Signing,
    /// Run a simulated station in real time rather than virtual time.
    pub realtime: bool,
    /// The station file (`--station`): an audio-interface rig's channel map
    /// and calibration, or another rig's calibration alone.
    pub station: Option<PathBuf>,
}

/// The result of a run: the report and where it was written.
pub struct RunSummary {
    pub report: Report,
    pub dir: PathBuf,
}

/// Maps host time to UTC for the record.
#[derive(Clone, Copy)]
struct WallClock {
    host: HostTime,
    utc: DateTime<Utc>,
}

impl WallClock {
    /// The UTC time of `t`, in whole microseconds (as the record keeps it).
    fn of(&self, t: HostTime) -> DateTime<Utc> {
        timestamp::whole_micros(self.utc + chrono::Duration::nanoseconds(t.0 - self.host.0))
    }
}

/// Run a profile. Errors are for runs that could not start; a run that
/// starts always ends with a report, whatever its outcome.
pub fn execute(opts: RunOptions) -> Result<RunSummary> {
    validate_vendor(&opts.vendor)?;
    // This thread drives the station between steps: virtual time stands
    // still while it works, from before the station's first moment.
    let clock = station::clock_for(&opts.device, opts.rig.as_deref(), opts.realtime)?;
    let _driving = clock.participate();
    // The station's calibration is read before the station opens: a bad
    // file is bad input (exit 3) and touches no hardware.
    let calibrated = match &opts.station {
        Some(p) => Some(station::audio_rig::station_file::Calibrated::load(
            p,
            opts.rig.as_deref().is_some_and(|r| r.starts_with("audio:")),
        )?),
        None => None,
    };
    let station = station::open_with(
        &opts.device,
        opts.rig.as_deref(),
        opts.scenario.as_deref(),
        opts.station.as_deref(),
        opts.profile.device_class,
        clock,
    )?;
    // Whole microseconds: the time report.json states is the time the
    // marking was decided at, so `certlab verify` recomputes it exactly.
    let started = timestamp::whole_micros(Utc::now());
    let dir = match &opts.out {
        Some(d) => d.clone(),
        None => opts.reports_root.join(report::default_dir_name(
            started,
            &opts.profile.id,
            &opts.device,
        )),
    };
    report::create_report_dir(&dir)?;
    let log = init_log(&dir);
    // The marking is decided before measuring (the test time is the run's
    // start), so the operator learns at once what the report will say.
    let marking = opts
        .signing
        .decide(&opts.profile.program, &opts.vendor, started);
    for w in opts.signing.warnings() {
        eprintln!("certlab: {w}");
    }
    eprintln!("certlab: this report will be {}", marking.name());
    if !marking.official {
        for why in &marking.reasons {
            eprintln!("certlab:   - {why}");
        }
    }
    tracing::info!(profile = %opts.profile.id, version = %opts.profile.version, sha256 = %opts.profile.sha256, device = %opts.device, "run started");
    tracing::info!(marking = marking.name(), key_id = %opts.signing.key_id, reasons = ?marking.reasons, "marking decided");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::Harness(format!("cannot start the runtime: {e}")))?;
    let report = rt.block_on(run_steps(
        &opts,
        station,
        calibrated.as_ref(),
        &dir,
        started,
        &marking,
    ))?;
    drop(rt);
    // Nothing may write into the directory once it is signed: the log is
    // closed first, and the signature is the last file.
    if let Some(log) = log {
        log.close();
    }
    opts.signing
        .sign(&dir, predicate(&report))
        .map_err(|e| Error::Harness(format!("cannot sign the report in {}: {e}", dir.display())))?;
    Ok(RunSummary { report, dir })
}

/// The signed statement's predicate: the marking and the facts it rests on.
fn predicate(r: &Report) -> crate::trust::statement::Predicate {
    use crate::trust::statement::{HarnessRef, Predicate, ProfileDigest};
    Predicate {
        marking: r.marking.clone(),
        reasons: r.marking_reasons.clone(),
        notice: r.notice.clone(),
        signer: r.signer.clone(),
        vendor: r.vendor.clone(),
        program: r.profile.program.clone(),
        profile: ProfileDigest {
            id: r.profile.id.clone(),
            version: r.profile.version.clone(),
            sha256: r.profile.sha256.clone(),
        },
        device: serde_json::to_value(&r.device).unwrap_or(serde_json::Value::Null),
        outcome: r.outcome.name().into(),
        started_at: r.started_at,
        finished_at: r.finished_at,
        trust_documents: r.trust.clone(),
        harness: HarnessRef {
            name: r.harness.name.clone(),
            version: r.harness.version.clone(),
        },
    }
}

fn validate_vendor(v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(Error::BadInput(format!(
            "bad --vendor {v:?}: use the vendor id the program assigned (letters, digits, '-', '_', '.')"
        )))
    }
}

/// run.log, which can be closed: after that, log lines go nowhere (the
/// report is being signed, and no file of it may change).
#[derive(Clone)]
struct LogFile(Arc<std::sync::Mutex<Option<std::fs::File>>>);

struct LogWriter<'a>(std::sync::MutexGuard<'a, Option<std::fs::File>>);

impl std::io::Write for LogWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.as_mut() {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = LogWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl LogFile {
    fn close(&self) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.take() {
            let _ = f.sync_all();
        }
    }
}

/// Send the run's log to run.log in the report directory.
fn init_log(dir: &std::path::Path) -> Option<LogFile> {
    let file = std::fs::File::create(dir.join("run.log")).ok()?;
    let log = LogFile(Arc::new(std::sync::Mutex::new(Some(file))));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    tracing::subscriber::set_global_default(subscriber).ok()?;
    Some(log)
}

async fn run_steps(
    opts: &RunOptions,
    mut station: Station,
    calibrated: Option<&station::audio_rig::station_file::Calibrated>,
    dir: &std::path::Path,
    started: DateTime<Utc>,
    marking: &crate::trust::marking::Marking,
) -> Result<Report> {
    let wall = WallClock {
        host: station.clock.now(),
        utc: started,
    };
    // Where the host times of the record (raw/ included) sit on the host's
    // CLOCK_MONOTONIC, which other processes and the kernel's stamps share.
    if !station.clock.is_virtual() {
        tracing::info!(
            monotonic_ns = station.clock.to_monotonic(HostTime(0)),
            "host time 0"
        );
    }
    let mut sync = ClockSync::new();
    let rig_info = station.rig.info();
    let (cal, cal_record) = calibration::check(
        calibrated,
        &rig_info.serial,
        opts.profile.calibration_max_age_days,
        started,
    );
    match &cal {
        Verdict::Refuse(why) => {
            eprintln!("certlab: the station calibration cannot be used: {why}");
            tracing::warn!(reason = %why, "station calibration refused");
        }
        Verdict::Use(c) => {
            tracing::info!(rig_serial = %c.rig_serial, record = ?cal_record, "station calibration used")
        }
        Verdict::None => {
            tracing::info!("no station calibration: figures include the station's own paths")
        }
    }
    let identity = station.identity.clone();
    let scenario = station.scenario.clone();
    let profile = &opts.profile;
    let abort = Arc::new(AtomicBool::new(false));
    // Each step in order: skipped, or run and kept until the end of the
    // run, when its shots are converted again and it is judged.
    let mut entries: Vec<Entry> = Vec::new();
    let mut bursts = 0u32;
    let mut stop_reason: Option<String> = None;
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    for (i, step) in profile.steps.iter().enumerate() {
        if let Some(why) = &stop_reason {
            entries.push(Entry::Skipped(report::skipped_record(
                step,
                why,
                wall.of(station.clock.now()),
            )));
            continue;
        }
        let step_start = wall.of(station.clock.now());
        // A step that crosses the rig needs the calibration the run was
        // refused: it is the station's fault, and nothing is measured.
        if let (true, Verdict::Refuse(why)) = (step.kind.is_latency(), &cal) {
            let mut rec = report::skipped_record(step, why, step_start);
            rec.outcome = report::StepOutcome::Error;
            rec.reason = Some(format!("station calibration: {why}"));
            tracing::info!(step = %step.id, reason = ?rec.reason, "step not run");
            entries.push(Entry::Skipped(rec));
            stop_reason = Some(format!("skipped: step {} ended in ERROR", step.id));
            continue;
        }
        tracing::info!(step = %step.id, kind = step.kind.name(), "step started");
        let cancel = Arc::new(AtomicBool::new(false));
        let seed = u64::from_le_bytes(
            sha2::Sha256::digest(format!("{}/{}", profile.sha256, step.id)).as_slice()[..8]
                .try_into()
                .unwrap_or([0; 8]),
        );
        // A rig that restarts mid-step voids the step's clock sync: the rig is
        // greeted again, the sync starts over, and the step runs once more.
        let mut attempt = 1u32;
        let mut earlier_raw = Vec::new();
        let (ending, m, restarted) = loop {
            let bar = progress_bar(opts.progress, step, i, profile.steps.len());
            let (st, sy, m, ending) = attempt_step(
                step,
                station,
                std::mem::take(&mut sync),
                seed,
                &cancel,
                &abort,
                &mut ctrl_c,
                bar,
            )
            .await?;
            station = st;
            sync = sy;
            // The rig's clock began again: what came before it cannot be
            // converted with what comes after.
            let restarted = station.rig.restarted();
            if restarted {
                for e in &mut entries {
                    if let Entry::Ran(r) = e {
                        r.reconvert = false;
                    }
                }
            }
            match after_rig_restart(&mut station, &mut sync, step, attempt, m, ending) {
                AfterRestart::Done(ending, m) => break (ending, m, restarted),
                AfterRestart::Again(first) => {
                    // Keep what the first attempt recorded, under its own name.
                    let raw: Vec<_> = first
                        .raw
                        .into_iter()
                        .map(|r| r.renamed("attempt1"))
                        .collect();
                    earlier_raw = report::write_files(dir, &raw).map_err(|e| {
                        Error::Harness(format!("cannot write raw data of step {}: {e}", step.id))
                    })?;
                    attempt += 1;
                }
            }
        };
        let mut m = m;
        m.anomalies.rig_restarts = attempt - 1;
        bursts += m.anomalies.sync_bursts;
        let mut raw = earlier_raw;
        raw.extend(report::write_files(dir, &m.raw).map_err(|e| {
            Error::Harness(format!("cannot write raw data of step {}: {e}", step.id))
        })?);
        // A DUT that vanished during the step ends it (and the run) in ERROR,
        // whatever the step made of its data; what it gathered is kept.
        let vanished = match station.dut.presence.as_ref().map(|p| p.check()) {
            Some(Err(e)) => Some(format!("during step {}: {e}", step.id)),
            _ => None,
        };
        let ran = RanStep {
            m,
            ending: Ended::of(&ending),
            started: step_start,
            finished: wall.of(station.clock.now()),
            raw,
            vanished,
            // A step during whose kept attempt the rig restarted keeps its
            // own conversion, as do the steps before it.
            reconvert: !restarted,
            corrections: Vec::new(),
        };
        // Judged now on the step's own conversion only to know whether the
        // run goes on: an ERROR does not depend on the shots' figures. The
        // verdict the report gives is the one at the end of the run.
        let rec = ran.record(step);
        tracing::info!(step = %step.id, outcome = rec.outcome.name(), reason = ?rec.reason, "step finished (on its own clock-sync estimate; judged again at the end of the run)");
        if abort.load(Ordering::Relaxed) {
            stop_reason = Some("skipped: the run was aborted".into());
        } else if rec.outcome == report::StepOutcome::Error {
            stop_reason = Some(format!("skipped: step {} ended in ERROR", step.id));
        }
        entries.push(Entry::Ran(ran));
    }
    // Every shot since the rig last restarted is converted again with the
    // run's last estimate of its clock: every exchange of every step since,
    // whose longer span narrows the possible rates and so the bound between
    // exchanges. Then the steps are judged and their shots recorded.
    let est = sync.estimate();
    let mut records: Vec<StepRecord> = Vec::new();
    let mut csv_rows: Vec<report::CsvRow> = Vec::new();
    let mut bound_us: f64 = 0.0;
    for (step, entry) in profile.steps.iter().zip(entries) {
        let mut ran = match entry {
            Entry::Skipped(rec) => {
                records.push(rec);
                continue;
            }
            Entry::Ran(ran) => ran,
        };
        if let (true, Some(est)) = (ran.reconvert, &est) {
            ran.reconvert_with(est);
        }
        // The station's own paths out of every figure, after the final
        // conversion and before judging.
        if let Verdict::Use(c) = &cal {
            ran.corrections = calibration::corrections(step.kind, c);
            calibration::correct(&mut ran.m, &ran.corrections);
        }
        if let Some(table) = report::crossings_table(step, &ran.m) {
            ran.raw
                .extend(report::write_files(dir, &[table]).map_err(|e| {
                    Error::Harness(format!("cannot write raw data of step {}: {e}", step.id))
                })?);
        }
        if let Some(e) = &ran.m.sync {
            bound_us = bound_us.max(e.bound_us());
        }
        let rec = ran.record(step);
        tracing::info!(step = %step.id, outcome = rec.outcome.name(), reason = ?rec.reason, converted_with = ?ran.m.sync_conversion, "step judged");
        csv_rows.extend(report::csv_rows(step, &ran.m.shots, &|t| wall.of(t)));
        records.push(rec);
    }
    let aborted = abort.load(Ordering::Relaxed);
    let outcome = report::overall(&records, aborted);
    let reason = if aborted {
        Some("aborted by the operator (Ctrl-C)".to_string())
    } else {
        records
            .iter()
            .find(|r| r.outcome == report::StepOutcome::Error)
            .map(|r| format!("step {}: {}", r.id, r.reason.clone().unwrap_or_default()))
    };
    let trust = opts.signing.stage(dir, marking).map_err(|e| {
        Error::Harness(format!(
            "cannot keep the trust documents in {}: {e}",
            dir.display()
        ))
    })?;
    let report = Report {
        schema: report::SCHEMA.into(),
        outcome,
        reason,
        marking: marking.name().into(),
        marking_reasons: marking.reasons.clone(),
        marking_notes: marking.notes.clone(),
        notice: (!marking.official).then(|| crate::trust::marking::UNOFFICIAL_NOTICE.to_string()),
        signer: crate::trust::statement::SignerRecord {
            kind: opts.signing.kind,
            key_id: opts.signing.key_id.clone(),
            lab_id: marking.lab_id.clone(),
        },
        trust,
        profile: report::ProfileRef::of(profile),
        vendor: opts.vendor.clone(),
        device: identity,
        station: StationRecord {
            host: hostname(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            rig: rig_info,
            rig_link: station.rig.link_stats(),
            scenario: scenario.map(|(p, sha)| report::Scenario {
                path: p.to_string_lossy().into_owned(),
                sha256: sha,
            }),
            clock: if station.clock.is_virtual() {
                "virtual"
            } else {
                "real"
            }
            .into(),
            calibration: cal_record,
        },
        clock_sync: ClockSyncRecord {
            bound_us,
            drift_ppm: est.map(|e| e.drift_ppm).unwrap_or(0.0),
            resyncs: bursts.saturating_sub(1),
            exchanges: sync.len(),
        },
        started_at: started,
        finished_at: wall.of(station.clock.now()),
        harness: report::Harness::default(),
        steps: records,
    };
    write_record(dir, &report, &csv_rows)?;
    tracing::info!(outcome = report.outcome.name(), "run finished");
    Ok(report)
}

fn write_record(dir: &std::path::Path, report: &Report, rows: &[report::CsvRow]) -> Result<()> {
    let io = |what: &str, e: &dyn std::fmt::Display| {
        Error::Harness(format!("cannot write {what} in {}: {e}", dir.display()))
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(report::CSV_HEADER)
        .map_err(|e| io("measurements.csv", &e))?;
    for r in rows {
        w.write_record(r).map_err(|e| io("measurements.csv", &e))?;
    }
    let bytes = w.into_inner().map_err(|e| io("measurements.csv", &e))?;
    AtomicFile::write(&dir.join("measurements.csv"), &bytes)
        .map_err(|e| io("measurements.csv", &e))?;
    // The human views (plots/, report.html, junit.xml) read measurements.csv
    // and raw/ back, as `certlab report render` does, and must be complete
    // before report.json (and the signature after it).
    report::views::write(dir, report)?;
    let json = serde_json::to_vec_pretty(report).map_err(|e| io("report.json", &e))?;
    // report.json goes last: when it is there, everything it names is there.
    AtomicFile::write(&dir.join("report.json"), &json).map_err(|e| io("report.json", &e))?;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// One attempt at a step: the procedure on a blocking thread, raced
/// against the step's time limit and the operator's Ctrl-C (either cancels
/// it, and it returns what it gathered). The station and the clock sync
/// come back with the measurement.
#[allow(clippy::too_many_arguments)]
async fn attempt_step<C>(
    step: &crate::profile::Step,
    mut station: Station,
    mut sync: ClockSync,
    seed: u64,
    cancel: &Arc<AtomicBool>,
    abort: &AtomicBool,
    ctrl_c: &mut std::pin::Pin<Box<C>>,
    bar: ProgressBar,
) -> Result<(Station, ClockSync, Measurement, Ending)>
where
    C: std::future::Future<Output = std::io::Result<()>>,
{
    // The step's thread drives the station now, in this thread's place in
    // the virtual clock's count (handed over and back, so no virtual time
    // slips by in between); this one only waits for it.
    let clock = station.clock.clone();
    let baton = clock.pass_baton();
    let task = {
        let cancel = cancel.clone();
        let step = step.clone();
        let bar = bar.clone();
        tokio::task::spawn_blocking(move || {
            let driving = baton.take();
            let progress = move |n: u64| bar.set_position(n);
            let mut ctx = Ctx {
                station: &mut station,
                sync: &mut sync,
                cancel: &cancel,
                progress: &progress,
                seed,
            };
            let m = measure::run_step(&step, &mut ctx);
            (station, sync, m, driving.into_baton())
        })
    };
    tokio::pin!(task);
    let timeout = tokio::time::sleep(Duration::from_secs_f64(step.params.timeout_s));
    tokio::pin!(timeout);
    let mut ending = Ending::Finished;
    let joined = loop {
        tokio::select! {
            r = &mut task => break r,
            _ = &mut timeout, if matches!(ending, Ending::Finished) => {
                tracing::warn!(step = %step.id, "step timed out");
                ending = Ending::TimedOut(step.params.timeout_s);
                cancel.store(true, Ordering::Relaxed);
            }
            _ = &mut *ctrl_c, if !abort.load(Ordering::Relaxed) => {
                tracing::warn!(step = %step.id, "aborted by the operator");
                eprintln!("\ncertlab: aborting; keeping the data gathered so far…");
                abort.store(true, Ordering::Relaxed);
                ending = Ending::Aborted;
                cancel.store(true, Ordering::Relaxed);
            }
        }
    };
    bar.finish_and_clear();
    let (station, sync, m, baton) =
        joined.map_err(|e| Error::Harness(format!("step {} crashed: {e}", step.id)))?;
    clock.take_back(baton);
    Ok((station, sync, m, ending))
}

/// How a step ended, kept until it is judged at the end of the run.
#[derive(Debug, Clone, Copy)]
enum Ended {
    Finished,
    TimedOut(f64),
    Aborted,
}

impl Ended {
    fn of(e: &Ending) -> Ended {
        match e {
            Ending::Finished => Ended::Finished,
            Ending::TimedOut(s) => Ended::TimedOut(*s),
            Ending::Aborted => Ended::Aborted,
        }
    }

    fn ending(self) -> Ending {
        match self {
            Ended::Finished => Ending::Finished,
            Ended::TimedOut(s) => Ending::TimedOut(s),
            Ended::Aborted => Ending::Aborted,
        }
    }
}

/// A step of the profile, in order.
enum Entry {
    /// It did not run.
    Skipped(StepRecord),
    Ran(RanStep),
}

/// A step that ran, with what its record needs.
struct RanStep {
    m: Measurement,
    ending: Ended,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
    raw: Vec<String>,
    /// Why the step is ERROR whatever its data: the DUT vanished during it.
    vanished: Option<String>,
    /// Whether the rig's clock ran on, without a restart, from this step to
    /// the end of the run, so that its shots can be converted with the
    /// run's last estimate.
    reconvert: bool,
    /// The station calibration's terms subtracted from its shots.
    corrections: Vec<calibration::Correction>,
}

impl RanStep {
    /// Convert every shot again with `est` (an estimate of the same rig
    /// clock, from the exchanges of this step and every other since the
    /// rig last restarted): values, uncertainties and sync bounds follow,
    /// and so do the outliers among the values.
    fn reconvert_with(&mut self, est: &crate::station::sync::SyncEstimate) {
        for shot in &mut self.m.shots {
            shot.reconvert(est);
        }
        if self.m.shots.iter().any(|s| s.crossing.is_some()) {
            self.m.tally();
            self.m.sync = Some(est.clone());
            self.m.sync_conversion = SyncConversion::Run;
        }
    }

    /// The step's record from its shots as they stand.
    fn record(&self, step: &crate::profile::Step) -> StepRecord {
        let mut rec = report::step_record(
            step,
            &self.m,
            self.ending.ending(),
            self.started,
            self.finished,
            self.raw.clone(),
        );
        rec.station_corrections = self.corrections.clone();
        if let Some(why) = &self.vanished {
            if rec.outcome != report::StepOutcome::Error {
                rec.outcome = report::StepOutcome::Error;
                rec.reason = Some(why.clone());
            }
        }
        rec
    }
}

/// What follows an attempt at a step.
enum AfterRestart {
    /// The step is over, with this measurement.
    Done(Ending, Measurement),
    /// The rig restarted during the first attempt and has been greeted
    /// again: run the step once more (this is the first attempt's record).
    Again(Measurement),
}

/// A rig that restarted during a step that ran to its end voids that
/// attempt: greet it again, start the clock sync over (the rig's clock began
/// again), and run the step once more, once. A second restart, or a rig
/// that does not answer, ends the step with the station's fault named.
fn after_rig_restart(
    station: &mut Station,
    sync: &mut ClockSync,
    step: &crate::profile::Step,
    attempt: u32,
    mut m: Measurement,
    ending: Ending,
) -> AfterRestart {
    if !(station.rig.restarted() && matches!(ending, Ending::Finished)) {
        return AfterRestart::Done(ending, m);
    }
    tracing::warn!(step = %step.id, attempt, "the rig restarted during the step");
    match station.rig.recover() {
        Ok(()) => {
            *sync = ClockSync::new();
            if attempt == 1 {
                return AfterRestart::Again(m);
            }
            m.error = Some(format!(
                "{}the rig restarted again during the repeated step (station's fault)",
                m.error
                    .as_ref()
                    .map(|e| format!("{e}; "))
                    .unwrap_or_default()
            ));
            AfterRestart::Done(ending, m)
        }
        Err(e) => {
            m.error = Some(format!(
                "the rig restarted and did not answer a new handshake (station's fault): {e}"
            ));
            AfterRestart::Done(ending, m)
        }
    }
}

fn progress_bar(enabled: bool, step: &crate::profile::Step, i: usize, n: usize) -> ProgressBar {
    let len = if step.kind.is_latency() {
        step.params.shots as u64
    } else if !step.params.commands.is_empty() {
        step.params.commands.len() as u64
    } else {
        step.params.requirements.len() as u64
    };
    let target = if enabled {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template("[{prefix}] {msg:<28} {bar:30} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("{}/{}", i + 1, n));
    bar.set_message(step.id.clone());
    bar
}
