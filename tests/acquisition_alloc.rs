//! The acquisition loop allocates nothing: proved under a counting global
//! allocator that counts only on the acquisition thread, while it moves
//! thousands of blocks through the ring, including overruns.

mod counting_alloc;

use certlab::sampling::{Acquisition, Block, BlockSource, Capture, Read, SourceError, BLOCK_LEN};

/// Blocks the synthetic source delivers before it ends.
const TOTAL: u64 = 20_000;

/// Blocks the source makes before it waits for the consumer to start: far
/// more than the ring holds, so the ring overruns mid-stream.
const BEFORE_CONSUMER: u64 = 300;

/// A source that makes a block as fast as it is asked, marking its thread as
/// watched; after [`BEFORE_CONSUMER`] blocks it waits until `go` is set.
struct Synthetic {
    seq: u64,
    corrupt_every: u64,
    go: &'static std::sync::atomic::AtomicBool,
}

impl BlockSource for Synthetic {
    fn read_block(&mut self, out: &mut Block) -> Result<Read, SourceError> {
        counting_alloc::watch(true);
        if self.seq >= TOTAL {
            return Ok(Read::End);
        }
        if self.seq == BEFORE_CONSUMER {
            while !self.go.load(std::sync::atomic::Ordering::Acquire) {
                std::hint::spin_loop();
            }
        }
        out.seq = self.seq;
        out.t_first_ns = (self.seq * BLOCK_LEN as u64 * 20_833) as i64;
        out.len = BLOCK_LEN as u16;
        out.corrupt = self.seq % self.corrupt_every == 0;
        for (i, s) in out.data.iter_mut().enumerate() {
            *s = ((self.seq as usize + i) % 7) as f32;
        }
        self.seq += 1;
        Ok(Read::Block)
    }
    fn sample_rate(&self) -> u32 {
        48_000
    }
}

#[test]
fn the_acquisition_loop_makes_zero_allocations() {
    static GO: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let mut acq = Acquisition::start(
        Box::new(Synthetic {
            seq: 0,
            corrupt_every: 97,
            go: &GO,
        }),
        64,
    )
    .unwrap();
    let mut capture = Capture::new(48_000, 0);
    // Consume nothing until the source has made far more blocks than the
    // ring holds (it then waits), then keep up: the overruns fall
    // mid-stream, so the blocks after them reveal them as gaps, however the
    // threads are scheduled on a loaded machine.
    let t0 = std::time::Instant::now();
    while acq.stats().blocks + acq.stats().overruns < BEFORE_CONSUMER {
        assert!(t0.elapsed().as_secs() < 60, "the source never got going");
        std::thread::yield_now();
    }
    GO.store(true, std::sync::atomic::Ordering::Release);
    while !acq.finished() {
        acq.drain_into(&mut capture);
    }
    let during = counting_alloc::allocations();
    let (stats, err) = acq.stop(&mut capture);
    assert_eq!(during, 0, "the acquisition thread allocated {during} times");
    assert!(err.is_none());
    assert!(stats.overruns > 0, "the test meant to overrun the ring");
    assert!(stats.corrupt > 0);
    // Every block is accounted for: received, lost to overruns (seen as gaps), or corrupt.
    assert_eq!(stats.blocks + stats.overruns, TOTAL);
    // Overruns at the very end leave no later block to reveal the gap.
    assert!(capture.gap_blocks <= stats.overruns);
    assert!(capture.gap_blocks > 0, "overruns show up as sequence gaps");
    assert!(capture.corrupt_blocks > 0);
}
