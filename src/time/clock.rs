//! The station's clock: the host's CLOCK_MONOTONIC, or a virtual clock that
//! jumps to the next event.
//!
//! Owns "now", sleeping and timed waiting for everything a station and its
//! procedures do, so that the same code runs in real time (real stations,
//! `certlab sim rig` over a pseudo-terminal, `--realtime`) and in virtual
//! time (the in-process simulated station). The virtual clock is a
//! discrete-event scheduler over ordinary threads: each thread that takes
//! part registers ([`Clock::spawn`], [`Clock::participate`]); virtual time
//! stands still while any of them runs, and when all of them wait (in
//! [`Clock::park_until`], [`Clock::sleep_until`] or a [`super::wait`]
//! primitive) it jumps to the earliest deadline and wakes whoever waits for
//! it. Nothing here knows what the threads do. A thread that takes part
//! must never wait for anything but this clock while it holds a lock
//! another taker-part needs (it would hold virtual time still for ever);
//! blocking on something else goes through [`Clock::blocking`].

use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use super::{HostClock, HostTime};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A thread's wake-up: a permit an unpark leaves (so a wake-up that comes
/// before the wait is not lost) and, while it waits on a virtual clock,
/// where its entry sits in that clock's queue.
#[derive(Debug, Default)]
pub struct Parker {
    state: Mutex<ParkState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct ParkState {
    permit: bool,
    /// Set by the clock (deadline reached or unparked) for a virtual wait.
    woken: bool,
    /// Its entry in the virtual clock's queue while parked there.
    key: Option<(i64, u64)>,
}

thread_local! {
    static PARKER: Arc<Parker> = Arc::new(Parker::default());
    /// The virtual clock this thread takes part in, and how many nested
    /// registrations it holds.
    static TAKING_PART: RefCell<Option<(Weak<VirtualClock>, usize)>> = const { RefCell::new(None) };
}

/// This thread's parker.
pub fn current_parker() -> Arc<Parker> {
    PARKER.with(|p| p.clone())
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// Someone unparked the thread (or had, before it waited).
    Unparked,
    /// The deadline came.
    Deadline,
}

/// Virtual time: stands still while a taking-part thread runs, jumps to the
/// earliest deadline when all of them wait.
#[derive(Debug, Default)]
pub struct VirtualClock {
    now: AtomicI64,
    sched: Mutex<Sched>,
}

#[derive(Debug)]
struct Sched {
    /// Taking-part threads not waiting on this clock.
    running: usize,
    /// Waiting threads: (deadline, arrival) and parker. A handful of
    /// threads take part, so a scan beats a tree, and the room reserved up
    /// front means waiting allocates nothing (the acquisition thread waits
    /// here in virtual time).
    parked: Vec<((i64, u64), Arc<Parker>)>,
    seq: u64,
}

impl Default for Sched {
    fn default() -> Self {
        Sched {
            running: 0,
            parked: Vec::with_capacity(64),
            seq: 0,
        }
    }
}

impl Sched {
    /// The earliest waiting entry's index.
    fn first(&self) -> Option<usize> {
        (0..self.parked.len()).min_by_key(|&i| self.parked[i].0)
    }
    fn remove(&mut self, key: (i64, u64)) -> bool {
        match self.parked.iter().position(|e| e.0 == key) {
            Some(i) => {
                self.parked.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

impl VirtualClock {
    pub fn now(&self) -> HostTime {
        HostTime(self.now.load(Ordering::Acquire))
    }

    /// With nobody running, move time to the earliest deadline and wake
    /// every thread whose deadline it is.
    fn advance(&self, s: &mut Sched) {
        while s.running == 0 {
            let Some(i) = s.first() else {
                return;
            };
            let deadline = s.parked[i].0 .0;
            if deadline == i64::MAX {
                return;
            }
            let now = self.now.load(Ordering::Acquire).max(deadline);
            self.now.store(now, Ordering::Release);
            // Wake every thread whose deadline this is, earliest arrival first.
            while let Some(i) = s.first().filter(|&i| s.parked[i].0 .0 <= now) {
                let (_, p) = s.parked.swap_remove(i);
                let mut st = lock(&p.state);
                st.key = None;
                st.woken = true;
                p.cv.notify_one();
                s.running += 1;
            }
        }
    }

    fn enter(&self) {
        lock(&self.sched).running += 1;
    }

    fn leave(&self) {
        let mut s = lock(&self.sched);
        s.running = s.running.saturating_sub(1);
        self.advance(&mut s);
    }

    fn park_until(&self, deadline: HostTime) -> Woke {
        let p = current_parker();
        // Under the queue's lock, so that an unpark cannot fall between the
        // look at the permit and the wait.
        let mut s = lock(&self.sched);
        {
            let mut st = lock(&p.state);
            if std::mem::take(&mut st.permit) {
                return Woke::Unparked;
            }
            if deadline <= self.now() {
                return Woke::Deadline;
            }
            s.seq += 1;
            let key = (deadline.0, s.seq);
            st.key = Some(key);
            st.woken = false;
            s.parked.push((key, p.clone()));
        }
        s.running = s.running.saturating_sub(1);
        self.advance(&mut s);
        drop(s);
        let mut st = lock(&p.state);
        while !st.woken {
            st = p.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.woken = false;
        if std::mem::take(&mut st.permit) {
            Woke::Unparked
        } else {
            Woke::Deadline
        }
    }

    fn unpark(&self, p: &Parker) {
        let mut s = lock(&self.sched);
        let mut st = lock(&p.state);
        st.permit = true;
        if let Some(key) = st.key.take() {
            s.remove(key);
            st.woken = true;
            p.cv.notify_one();
            s.running += 1;
        }
    }
}

/// The station's clock. Cheap to clone; every clone is the same clock.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The host's CLOCK_MONOTONIC from a station epoch.
    Real(HostClock),
    /// Virtual time from 0, jumping to the next event.
    Virtual(Arc<VirtualClock>),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::Real(HostClock::new())
    }
}

impl From<HostClock> for Clock {
    fn from(c: HostClock) -> Self {
        Clock::Real(c)
    }
}

/// While held, this thread takes part in a virtual clock (see
/// [`Clock::participate`]).
#[must_use]
pub struct Participation {
    clock: Option<Arc<VirtualClock>>,
}

impl Drop for Participation {
    fn drop(&mut self) {
        if let Some(vc) = self.clock.take() {
            let last = TAKING_PART.with(|t| {
                let mut t = t.borrow_mut();
                match t.as_mut() {
                    Some((_, n)) if *n > 1 => {
                        *n -= 1;
                        false
                    }
                    _ => {
                        *t = None;
                        true
                    }
                }
            });
            if last {
                vc.leave();
            }
        }
    }
}

/// One place in a virtual clock's count of running threads, not bound to a
/// thread: passed from a thread that stops driving the station to the one
/// that starts (and back), so that virtual time cannot slip forward in the
/// hand-over. See [`Clock::pass_baton`].
#[must_use]
pub struct Baton {
    clock: Option<Arc<VirtualClock>>,
    depth: usize,
}

impl Baton {
    /// Take part on this thread, in the baton's place.
    pub fn take(self) -> Participation {
        if let Some(vc) = &self.clock {
            TAKING_PART.with(|t| *t.borrow_mut() = Some((Arc::downgrade(vc), 1)));
        }
        Participation { clock: self.clock }
    }
}

impl Participation {
    /// Stop taking part on this thread, keeping the place for another
    /// thread (or this one, later) to take.
    pub fn into_baton(mut self) -> Baton {
        let clock = self.clock.take();
        if clock.is_some() {
            TAKING_PART.with(|t| *t.borrow_mut() = None);
        }
        Baton { clock, depth: 1 }
    }
}

impl Clock {
    /// A new virtual clock at time 0.
    pub fn new_virtual() -> Clock {
        Clock::Virtual(Arc::new(VirtualClock::default()))
    }

    /// A new virtual clock at time 0 that this thread takes part in until
    /// the guard drops (see [`Clock::participate`]): how a test that drives
    /// virtual time starts, so that time cannot run on while it is busy.
    pub fn new_virtual_joined() -> (Clock, Participation) {
        let clock = Clock::new_virtual();
        let me = clock.participate();
        (clock, me)
    }

    pub fn is_virtual(&self) -> bool {
        matches!(self, Clock::Virtual(_))
    }

    pub fn now(&self) -> HostTime {
        match self {
            Clock::Real(c) => c.now(),
            Clock::Virtual(v) => v.now(),
        }
    }

    /// The real clock under this one, if it is real.
    pub fn host(&self) -> Option<HostClock> {
        match self {
            Clock::Real(c) => Some(*c),
            Clock::Virtual(_) => None,
        }
    }

    /// CLOCK_MONOTONIC nanoseconds of host time `t` (virtual time maps to itself).
    pub fn to_monotonic(&self, t: HostTime) -> i64 {
        match self {
            Clock::Real(c) => c.to_monotonic(t),
            Clock::Virtual(_) => t.0,
        }
    }

    /// Host time of a CLOCK_MONOTONIC reading (virtual time maps to itself).
    pub fn from_monotonic(&self, ns: i64) -> HostTime {
        match self {
            Clock::Real(c) => c.from_monotonic(ns),
            Clock::Virtual(_) => HostTime(ns),
        }
    }

    /// Take part in this clock on this thread until the guard drops
    /// (nested calls are counted; a real clock needs nothing).
    pub fn participate(&self) -> Participation {
        let Clock::Virtual(vc) = self else {
            return Participation { clock: None };
        };
        let fresh = TAKING_PART.with(|t| {
            let mut t = t.borrow_mut();
            match t.as_mut() {
                Some((w, n)) if w.upgrade().is_some_and(|c| Arc::ptr_eq(&c, vc)) => {
                    *n += 1;
                    false
                }
                _ => {
                    *t = Some((Arc::downgrade(vc), 1));
                    true
                }
            }
        });
        if fresh {
            vc.enter();
        }
        Participation {
            clock: Some(vc.clone()),
        }
    }

    fn taking_part(&self) -> Option<&Arc<VirtualClock>> {
        let Clock::Virtual(vc) = self else {
            return None;
        };
        TAKING_PART
            .with(|t| {
                t.borrow()
                    .as_ref()
                    .is_some_and(|(w, _)| w.upgrade().is_some_and(|c| Arc::ptr_eq(&c, vc)))
            })
            .then_some(vc)
    }

    /// Start a thread that takes part in this clock for its whole life
    /// (counted from before it starts, so time cannot run past its start).
    pub fn spawn<F, T>(&self, name: &str, f: F) -> std::io::Result<std::thread::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let clock = self.clone();
        if let Clock::Virtual(vc) = self {
            vc.enter();
        }
        let r = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _p = match &clock {
                    Clock::Virtual(vc) => {
                        TAKING_PART.with(|t| *t.borrow_mut() = Some((Arc::downgrade(vc), 1)));
                        Participation {
                            clock: Some(vc.clone()),
                        }
                    }
                    Clock::Real(_) => Participation { clock: None },
                };
                f()
            });
        if r.is_err() {
            if let Clock::Virtual(vc) = self {
                vc.leave();
            }
        }
        r
    }

    /// This thread stops taking part and hands its place in the count to
    /// whoever [`take`](Baton::take)s the baton; [`take_back`](Self::take_back)
    /// returns it. Time stands still throughout the hand-over.
    pub fn pass_baton(&self) -> Baton {
        match self.taking_part().cloned() {
            Some(vc) => {
                let depth = TAKING_PART
                    .with(|t| t.borrow_mut().take().map(|(_, n)| n))
                    .unwrap_or(1);
                Baton {
                    clock: Some(vc),
                    depth,
                }
            }
            None => Baton {
                clock: None,
                depth: 0,
            },
        }
    }

    /// This thread takes part again, in the place `baton` holds (from
    /// [`pass_baton`](Self::pass_baton), and back from the thread it went to).
    pub fn take_back(&self, baton: Baton) {
        if let Some(vc) = baton.clock {
            let depth = baton.depth.max(1);
            TAKING_PART.with(|t| *t.borrow_mut() = Some((Arc::downgrade(&vc), depth)));
        }
    }

    /// Run `f`, which blocks on something other than this clock (joining a
    /// taking-part thread), without holding virtual time still meanwhile.
    pub fn blocking<T>(&self, f: impl FnOnce() -> T) -> T {
        match self.taking_part().cloned() {
            Some(vc) => {
                vc.leave();
                let r = f();
                vc.enter();
                r
            }
            None => f(),
        }
    }

    /// Wait until `deadline` or until another thread [`unpark`](Self::unpark)s
    /// this one (also if it did before the wait began).
    pub fn park_until(&self, deadline: HostTime) -> Woke {
        match self {
            Clock::Virtual(vc) if self.taking_part().is_some() => vc.park_until(deadline),
            Clock::Virtual(vc) => {
                // A thread that does not take part joins for the wait: time
                // may move on while it runs before and after, not during.
                let _p = self.participate();
                vc.park_until(deadline)
            }
            Clock::Real(c) => {
                let p = current_parker();
                let mut st = lock(&p.state);
                loop {
                    if std::mem::take(&mut st.permit) {
                        return Woke::Unparked;
                    }
                    let left = deadline.0 - c.now().0;
                    if left <= 0 {
                        return Woke::Deadline;
                    }
                    st =
                        p.cv.wait_timeout(st, Duration::from_nanos(left as u64))
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                }
            }
        }
    }

    /// Wake the thread whose parker this is (see [`park_until`](Self::park_until)).
    pub fn unpark(&self, p: &Parker) {
        match self {
            Clock::Virtual(vc) => vc.unpark(p),
            Clock::Real(_) => {
                let mut st = lock(&p.state);
                st.permit = true;
                p.cv.notify_one();
            }
        }
    }

    /// Sleep until host time `t` (returns at once if it has passed).
    pub fn sleep_until(&self, t: HostTime) {
        match self {
            Clock::Real(c) => c.sleep_until(t),
            Clock::Virtual(_) => {
                while self.now() < t {
                    self.park_until(t);
                }
            }
        }
    }

    pub fn sleep(&self, d: Duration) {
        self.sleep_until(
            self.now()
                .plus_ns(d.as_nanos().min(i64::MAX as u128) as i64),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_time_jumps_to_the_next_deadline_and_wakes_in_order() {
        let (clock, _me) = Clock::new_virtual_joined();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for (name, at_ms) in [("b", 30), ("a", 10), ("c", 20)] {
            let (c, log) = (clock.clone(), log.clone());
            threads.push(
                clock
                    .spawn(name, move || {
                        c.sleep_until(HostTime(at_ms * 1_000_000));
                        lock(&log).push((name, c.now().0 / 1_000_000));
                    })
                    .unwrap(),
            );
        }
        let started = std::time::Instant::now();
        clock.sleep(Duration::from_secs(3600));
        assert_eq!(clock.now(), HostTime(3_600_000_000_000));
        for t in threads {
            clock.blocking(|| t.join().unwrap());
        }
        assert_eq!(*lock(&log), vec![("a", 10), ("c", 20), ("b", 30)]);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "an hour of virtual time"
        );
    }

    #[test]
    fn an_unpark_before_the_wait_is_not_lost_and_time_stands_still_while_a_thread_runs() {
        let (clock, _me) = Clock::new_virtual_joined();
        let me = current_parker();
        let c = clock.clone();
        let t = clock
            .spawn("waker", move || {
                // Busy for a while in real time: virtual time must not move.
                let t0 = c.now();
                std::thread::sleep(Duration::from_millis(30));
                assert_eq!(c.now(), t0);
                c.unpark(&me);
            })
            .unwrap();
        let w = clock.park_until(HostTime(1_000_000_000));
        assert_eq!(w, Woke::Unparked);
        assert_eq!(clock.now(), HostTime(0));
        clock.blocking(|| t.join().unwrap());
        // A permit left with nobody waiting ends the next wait at once.
        clock.unpark(&current_parker());
        assert_eq!(clock.park_until(HostTime(5)), Woke::Unparked);
        assert_eq!(clock.park_until(HostTime(5)), Woke::Deadline);
        assert_eq!(clock.now(), HostTime(5));
    }

    #[test]
    fn a_baton_hands_the_driving_over_without_letting_time_slip() {
        let (clock, _me) = Clock::new_virtual_joined();
        // A background thread that would let time race by 50 ms a wait.
        let (c, stop) = (
            clock.clone(),
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
        let st = stop.clone();
        let bg = clock
            .spawn("idle", move || {
                while !st.load(Ordering::Relaxed) {
                    c.sleep(Duration::from_millis(50));
                }
            })
            .unwrap();
        let t0 = clock.now();
        let baton = clock.pass_baton();
        let c = clock.clone();
        let worker = std::thread::spawn(move || {
            let p = baton.take();
            // Real time passes on both sides of the hand-over; virtual time must not.
            std::thread::sleep(Duration::from_millis(20));
            let now = c.now();
            (now, p.into_baton())
        });
        std::thread::sleep(Duration::from_millis(20));
        let (seen, back) = worker.join().unwrap();
        clock.take_back(back);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!((seen, clock.now()), (t0, t0));
        stop.store(true, Ordering::Relaxed);
        clock.blocking(|| bg.join().unwrap());
    }

    #[test]
    fn the_real_clock_sleeps_and_parks_in_real_time() {
        let clock = Clock::Real(HostClock::new());
        let t0 = clock.now();
        assert_eq!(clock.park_until(t0.plus_secs(0.01)), Woke::Deadline);
        assert!(clock.now().secs_since(t0) >= 0.01);
        clock.unpark(&current_parker());
        assert_eq!(clock.park_until(t0.plus_secs(10.0)), Woke::Unparked);
    }
}
