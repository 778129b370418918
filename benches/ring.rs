//! Throughput of the sampling core's transport (run: `cargo bench --bench ring`).
//!
//! - `ring/acquisition_cap{64,1024}`: `BLOCKS` blocks of `BLOCK_LEN` samples move
//!   from a synthetic `BlockSource` through `certlab::sampling::Acquisition`
//!   (its thread, the lock-free SPSC ring) to a consumer on the bench thread that
//!   polls `pop`, yielding when the ring is empty.
//! - `ring/mpsc_sync_channel_cap{64,1024}`: the baseline; the same source on a
//!   spawned thread, the same blocks through `std::sync::mpsc::sync_channel` of
//!   the same capacity, received with `recv`.
//!
//! Each iteration includes one thread spawn and join (tens of µs, small next to
//! the transfer of 20 000 blocks). The source applies credit-based back-pressure
//! (it reports `Idle` while `capacity` blocks are unconsumed), like a device
//! paced to the reader, so neither transport drops anything and every iteration
//! moves exactly `BLOCKS` blocks; the bench asserts it. Throughput is reported in
//! blocks (elements) per second; multiply by `BLOCK_LEN` (256) for samples/s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use certlab::sampling::{Acquisition, Block, BlockSource, Read, SourceError, BLOCK_LEN};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// Blocks per iteration (20 000 × 256 samples ≈ 107 s of 48 kHz audio).
const BLOCKS: u64 = 20_000;

/// Makes blocks as fast as it may: at most `capacity` ahead of the consumer.
struct Synthetic {
    seq: u64,
    capacity: u64,
    consumed: Arc<AtomicU64>,
}

impl BlockSource for Synthetic {
    fn read_block(&mut self, out: &mut Block) -> Result<Read, SourceError> {
        if self.seq >= BLOCKS {
            return Ok(Read::End);
        }
        if self.seq - self.consumed.load(Ordering::Acquire) >= self.capacity {
            return Ok(Read::Idle);
        }
        out.seq = self.seq;
        out.t_first_ns = (self.seq * BLOCK_LEN as u64 * 20_833) as i64;
        out.len = BLOCK_LEN as u16;
        out.corrupt = false;
        let base = self.seq as f32;
        for (i, s) in out.data.iter_mut().enumerate() {
            *s = base + i as f32;
        }
        self.seq += 1;
        Ok(Read::Block)
    }
    fn sample_rate(&self) -> u32 {
        48_000
    }
}

/// What a consumer does with a block: enough that it cannot be optimised away.
#[inline]
fn consume(b: &Block, sum: &mut f64) {
    *sum += b.seq as f64 + b.data[0] as f64 + b.data[BLOCK_LEN - 1] as f64;
}

fn through_acquisition(capacity: usize) -> f64 {
    let consumed = Arc::new(AtomicU64::new(0));
    let source = Synthetic {
        seq: 0,
        capacity: capacity as u64,
        consumed: consumed.clone(),
    };
    let mut acq = Acquisition::start(Box::new(source), capacity).expect("spawn");
    let (mut n, mut sum) = (0u64, 0.0);
    loop {
        match acq.pop() {
            Some(b) => {
                consume(&b, &mut sum);
                n += 1;
                consumed.store(n, Ordering::Release);
            }
            None if acq.finished() => {
                // The thread has stopped: whatever it pushed is visible now.
                while let Some(b) = acq.pop() {
                    consume(&b, &mut sum);
                    n += 1;
                }
                break;
            }
            // Empty: let the acquisition thread run (the machine may have
            // fewer free cores than threads; spinning would starve it).
            None => std::thread::yield_now(),
        }
    }
    let stats = acq.stats();
    assert_eq!((n, stats.overruns), (BLOCKS, 0));
    sum
}

fn through_mpsc(capacity: usize) -> f64 {
    let consumed = Arc::new(AtomicU64::new(0));
    let mut source = Synthetic {
        seq: 0,
        capacity: capacity as u64,
        consumed: consumed.clone(),
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Block>(capacity);
    let producer = std::thread::spawn(move || {
        let mut block = Block::EMPTY;
        loop {
            match source.read_block(&mut block).expect("synthetic") {
                Read::End => return,
                Read::Idle => std::thread::yield_now(),
                Read::Block => tx.send(block).expect("receiver alive"),
            }
        }
    });
    let (mut n, mut sum) = (0u64, 0.0);
    while let Ok(b) = rx.recv() {
        consume(&b, &mut sum);
        n += 1;
        consumed.store(n, Ordering::Release);
    }
    producer.join().expect("producer");
    assert_eq!(n, BLOCKS);
    sum
}

fn bench_ring(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(BLOCKS));
    g.sample_size(20);
    for capacity in [64usize, 1024] {
        g.bench_function(format!("acquisition_cap{capacity}"), |b| {
            b.iter(|| black_box(through_acquisition(capacity)))
        });
        g.bench_function(format!("mpsc_sync_channel_cap{capacity}"), |b| {
            b.iter(|| black_box(through_mpsc(capacity)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_ring);
criterion_main!(benches);
