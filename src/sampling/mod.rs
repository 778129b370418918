//! The sampling core's transport: acquisition thread, lock-free ring, capture assembly.
//!
//! Owns the path of sample blocks from a [`BlockSource`] (a device, the rig, the
//! simulator) to the analysis: a dedicated acquisition thread that never
//! allocates and never blocks on anything the analysis owns, a bounded SPSC ring
//! (rtrb), and the [`Capture`] the analysis side assembles, with every gap,
//! overrun and corrupt block counted. It does no signal processing and knows
//! nothing of steps or limits.

mod capture;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::time::Clock;

pub use capture::{Capture, TimeMap};

/// Samples per block.
pub const BLOCK_LEN: usize = 256;

/// A block of mono samples with its sequence number and the time of its first
/// sample, in nanoseconds of the source's clock (host time, or rig time).
#[derive(Clone, Copy)]
pub struct Block {
    pub seq: u64,
    pub t_first_ns: i64,
    /// Valid samples in `data` (a source may end with a short block).
    pub len: u16,
    /// The source flagged the block as corrupt (e.g. a bad CRC); its samples are not used.
    pub corrupt: bool,
    pub data: [f32; BLOCK_LEN],
}

impl Block {
    pub const EMPTY: Block = Block {
        seq: 0,
        t_first_ns: 0,
        len: 0,
        corrupt: false,
        data: [0.0; BLOCK_LEN],
    };
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("seq", &self.seq)
            .field("t_first_ns", &self.t_first_ns)
            .field("len", &self.len)
            .field("corrupt", &self.corrupt)
            .finish_non_exhaustive()
    }
}

/// What a read from a source gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// `out` holds a new block.
    Block,
    /// Nothing yet; the source will be asked again.
    Idle,
    /// The stream has ended.
    End,
}

/// Why a source stopped delivering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("device disconnected: {0}")]
    Disconnected(String),
    #[error("I/O error: {0}")]
    Io(String),
}

/// A stream of sample blocks: a device capture, the rig's microphone, a simulator.
/// `read_block` may block for about a block's duration while the device fills it.
pub trait BlockSource: Send {
    fn read_block(&mut self, out: &mut Block) -> Result<Read, SourceError>;
    /// Samples per second of this stream, in its own clock.
    fn sample_rate(&self) -> u32;
}

/// Counters shared by the acquisition thread and the analysis.
#[derive(Debug, Default)]
pub struct Counters {
    /// Blocks pushed into the ring.
    pub blocks: AtomicU64,
    /// Blocks dropped because the ring was full (the analysis fell behind).
    pub overruns: AtomicU64,
    /// Blocks the source marked corrupt.
    pub corrupt: AtomicU64,
}

struct Shared {
    stop: AtomicBool,
    finished: AtomicBool,
    counters: Counters,
    error: Mutex<Option<SourceError>>,
}

/// A running acquisition: a thread reading a source into a ring.
pub struct Acquisition {
    consumer: rtrb::Consumer<Block>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    sample_rate: u32,
    clock: Clock,
}

/// Totals of an acquisition, for the record.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AcquisitionStats {
    pub blocks: u64,
    pub overruns: u64,
    pub corrupt: u64,
}

impl Acquisition {
    /// Start reading `source` on a new thread into a ring of `capacity`
    /// blocks, in real time.
    pub fn start(source: Box<dyn BlockSource>, capacity: usize) -> std::io::Result<Self> {
        Self::start_on(&Clock::default(), source, capacity)
    }

    /// As [`start`](Self::start), the thread taking part in `clock` (a
    /// virtual clock waits for it; its idle source is polled on the clock).
    pub fn start_on(
        clock: &Clock,
        mut source: Box<dyn BlockSource>,
        capacity: usize,
    ) -> std::io::Result<Self> {
        let (mut producer, consumer) = rtrb::RingBuffer::<Block>::new(capacity.max(2));
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            counters: Counters::default(),
            error: Mutex::new(None),
        });
        let sample_rate = source.sample_rate();
        let sh = shared.clone();
        let idle = clock.clone();
        let thread = clock.spawn("certlab-acquisition", move || {
            let mut block = Block::EMPTY;
            let result = acquisition_loop(source.as_mut(), &mut producer, &sh, &mut block, &idle);
            if let Err(e) = result {
                // The loop has ended; recording the error may allocate.
                if let Ok(mut slot) = sh.error.lock() {
                    *slot = Some(e);
                }
            }
            sh.finished.store(true, Ordering::Release);
        })?;
        Ok(Acquisition {
            consumer,
            shared,
            thread: Some(thread),
            sample_rate,
            clock: clock.clone(),
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Take the next block, if one is waiting.
    pub fn pop(&mut self) -> Option<Block> {
        self.consumer.pop().ok()
    }

    /// Move every waiting block into `capture`; returns how many.
    pub fn drain_into(&mut self, capture: &mut Capture) -> usize {
        let mut n = 0;
        while let Ok(b) = self.consumer.pop() {
            capture.push(&b);
            n += 1;
        }
        n
    }

    /// The source's error, once the thread has stopped because of one.
    pub fn error(&self) -> Option<SourceError> {
        if !self.shared.finished.load(Ordering::Acquire) {
            return None;
        }
        self.shared.error.lock().ok().and_then(|e| e.clone())
    }

    /// Whether the thread has stopped (end of stream, error, or `stop`).
    pub fn finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> AcquisitionStats {
        let c = &self.shared.counters;
        AcquisitionStats {
            blocks: c.blocks.load(Ordering::Relaxed),
            overruns: c.overruns.load(Ordering::Relaxed),
            corrupt: c.corrupt.load(Ordering::Relaxed),
        }
    }

    /// Stop the thread, wait for it, and move what remains into `capture`.
    pub fn stop(mut self, capture: &mut Capture) -> (AcquisitionStats, Option<SourceError>) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = self.clock.blocking(|| t.join());
        }
        self.drain_into(capture);
        let err = self.shared.error.lock().ok().and_then(|e| e.clone());
        (self.stats(), err)
    }
}

impl Drop for Acquisition {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = self.clock.blocking(|| t.join());
        }
    }
}

/// The hot loop. It allocates nothing: one block lives on the stack of the
/// thread and is copied into the ring's preallocated slots.
fn acquisition_loop(
    source: &mut dyn BlockSource,
    producer: &mut rtrb::Producer<Block>,
    shared: &Shared,
    block: &mut Block,
    clock: &Clock,
) -> Result<(), SourceError> {
    let c = &shared.counters;
    let virtual_time = clock.is_virtual();
    while !shared.stop.load(Ordering::Acquire) {
        match source.read_block(block)? {
            Read::End => return Ok(()),
            // In virtual time a source with nothing yet must let time pass.
            Read::Idle if virtual_time => clock.sleep(std::time::Duration::from_micros(100)),
            Read::Idle => std::thread::yield_now(),
            Read::Block => {
                if block.corrupt {
                    c.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                match producer.push(*block) {
                    Ok(()) => {
                        c.blocks.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        c.overruns.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
    Ok(())
}
