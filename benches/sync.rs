//! Cost of the clock-sync fit (run: `cargo bench --bench sync`).
//!
//! - `sync/estimate/N`: `ClockSync::estimate` over N exchanges of the simulated
//!   USB-like link (`LinkSpec::default()`), spread as a run spreads them: 1728
//!   is a speakerphone run with 8 exchanges a top-up, 4608 with 32, 50 000 some
//!   ten minutes of runs. The procedure fits once after every top-up, so this
//!   is paid once a shot.

use certlab::station::sim::scenario::LinkSpec;
use certlab::station::sync::ClockSync;
use certlab::station::SyncExchange;
use certlab::time::{HostTime, RigTime};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};

fn exchanges(n: usize) -> ClockSync {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let link = LinkSpec::default();
    let rig_us = |t: f64| (t * (1.0 + 35e-6) + 4242.125) * 1e6;
    let mut sync = ClockSync::new();
    let mut t = 1.0;
    for k in 0..n {
        // 32 exchanges, then the rest of a 300 ms shot interval.
        if k % 32 == 0 {
            t += 0.26;
        }
        t += rng.random_range(0.0..0.0011);
        let up = link.delay(t, link.up_us, &mut rng);
        let down = link.delay(t + up, link.down_us, &mut rng);
        sync.add(SyncExchange {
            host_send: HostTime::from_secs_f64(t),
            rig: RigTime(rig_us(t + up).floor() as u64),
            host_recv: HostTime::from_secs_f64(t + up + down),
        });
        t += up + down;
    }
    sync
}

fn estimate(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync/estimate");
    g.sample_size(20);
    for n in [1728, 4608, 50_000] {
        let sync = exchanges(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &sync, |b, s| {
            b.iter(|| black_box(s.estimate()).expect("consistent exchanges"))
        });
    }
    g.finish();
}

criterion_group!(benches, estimate);
criterion_main!(benches);
