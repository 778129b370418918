//! `Correlator::estimate` allocates nothing once it has seen a capture length:
//! proved under a counting global allocator that counts only on the calling
//! thread, and only while the second call runs.

mod counting_alloc;

use certlab::measure::delay::Correlator;
use certlab::measure::stimulus::{Stimulus, StimulusKind};

/// Allocations made on this thread while `f` runs.
fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = counting_alloc::allocations();
    counting_alloc::watch(true);
    let out = f();
    counting_alloc::watch(false);
    (out, counting_alloc::allocations() - before)
}

/// The benchmark's case: a 1 s stimulus in a 10 s capture with a little noise.
fn capture(stim: &Stimulus, len: usize, delay: usize, seed: u64) -> Vec<f32> {
    let mut x: Vec<f32> = (0..len as u64)
        .map(|i| ((i ^ seed).wrapping_mul(2_654_435_761) % 1000) as f32 * 1e-5 - 0.005)
        .collect();
    for (o, &s) in x[delay..].iter_mut().zip(stim.samples()) {
        *o += s;
    }
    x
}

#[test]
fn estimate_allocates_nothing_after_the_first_call_at_a_length() {
    let stim = Stimulus::new(StimulusKind::Noise, 48_000, 1.0, 1);
    let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
    let first = capture(&stim, 480_000, 200_000, 1);
    let second = capture(&stim, 480_000, 123_457, 2);

    let (e1, n1) = allocations_during(|| cor.estimate(&first));
    assert!(
        n1 > 0,
        "the first call plans the FFT; the counter must see it"
    );
    let e1 = e1.expect("found");
    assert!((e1.delay_samples - 200_000.0).abs() < 0.01, "{e1:?}");

    let (e2, n) = allocations_during(|| cor.estimate(&second));
    assert_eq!(
        n, 0,
        "the second estimate at the same length allocated {n} times"
    );
    let e2 = e2.expect("found");
    assert!((e2.delay_samples - 123_457.0).abs() < 0.01, "{e2:?}");
}

#[test]
fn a_failed_estimate_allocates_nothing_either() {
    let stim = Stimulus::new(StimulusKind::Sweep, 48_000, 0.1, 1);
    let mut cor = Correlator::new(stim.samples(), stim.sample_rate);
    let noise: Vec<f32> = (0..48_000u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) % 1000) as f32 * 1e-3 - 0.5)
        .collect();
    assert!(cor.estimate(&noise).is_err());
    let (r, n) = allocations_during(|| cor.estimate(&noise));
    assert!(r.is_err());
    assert_eq!(n, 0, "a not-found estimate allocated {n} times");
}
