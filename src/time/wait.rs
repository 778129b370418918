//! Waiting that follows the station's clock: a channel with a timed
//! receive, and an in-memory byte pipe with timed reads (the simulated
//! rig's serial link when the station runs in virtual time).
//!
//! Owns only the hand-over and the waits; on a real clock they wait in real
//! time, on a virtual clock in virtual time (see [`super::clock`]).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

pub use std::sync::mpsc::RecvTimeoutError;

use super::clock::{current_parker, Clock, Parker};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Chan<T> {
    clock: Clock,
    queue: Mutex<VecDeque<T>>,
    receiver: Mutex<Option<Arc<Parker>>>,
    senders: AtomicUsize,
    receiver_alive: AtomicBool,
}

impl<T> Chan<T> {
    fn wake_receiver(&self) {
        if let Some(p) = lock(&self.receiver).as_ref() {
            self.clock.unpark(p);
        }
    }
}

/// The sending half of a [`channel`].
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving half of a [`channel`].
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

/// A channel of many senders and one receiver whose timed receive follows `clock`.
pub fn channel<T>(clock: &Clock) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        clock: clock.clone(),
        queue: Mutex::new(VecDeque::new()),
        receiver: Mutex::new(None),
        senders: AtomicUsize::new(1),
        receiver_alive: AtomicBool::new(true),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

impl<T> Sender<T> {
    /// Queue `v`; `Err(v)` when the receiver is gone.
    pub fn send(&self, v: T) -> Result<(), T> {
        if !self.chan.receiver_alive.load(Ordering::Acquire) {
            return Err(v);
        }
        lock(&self.chan.queue).push_back(v);
        self.chan.wake_receiver();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::AcqRel);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.wake_receiver();
        }
    }
}

impl<T> Receiver<T> {
    /// The next value, waiting up to `timeout` on the channel's clock.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let c = &self.chan;
        *lock(&c.receiver) = Some(current_parker());
        let deadline = c
            .clock
            .now()
            .plus_ns(timeout.as_nanos().min(i64::MAX as u128 / 2) as i64);
        loop {
            if let Some(v) = lock(&c.queue).pop_front() {
                return Ok(v);
            }
            if c.senders.load(Ordering::Acquire) == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            if c.clock.now() >= deadline {
                return Err(RecvTimeoutError::Timeout);
            }
            c.clock.park_until(deadline);
        }
    }

    /// The next value if one is waiting.
    pub fn try_recv(&self) -> Option<T> {
        lock(&self.chan.queue).pop_front()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.receiver_alive.store(false, Ordering::Release);
    }
}

/// A wake-up that one thread waits for and others give ("a block has
/// arrived"), so that a consumer need not poll. A wake-up given before the
/// wait ends the next wait at once.
pub struct Notify {
    clock: Clock,
    waiter: Mutex<Option<Arc<Parker>>>,
}

impl Notify {
    pub fn new(clock: &Clock) -> Notify {
        Notify {
            clock: clock.clone(),
            waiter: Mutex::new(None),
        }
    }

    /// Wait (on the clock) until notified or `timeout` has passed.
    pub fn wait(&self, timeout: Duration) {
        *lock(&self.waiter) = Some(current_parker());
        let deadline = self
            .clock
            .now()
            .plus_ns(timeout.as_nanos().min(i64::MAX as u128 / 2) as i64);
        self.clock.park_until(deadline);
    }

    /// Wake the waiting thread (or end its next wait at once).
    pub fn notify(&self) {
        if let Some(p) = lock(&self.waiter).as_ref() {
            self.clock.unpark(p);
        }
    }
}

/// One direction of a [`pipe`].
struct Half {
    bytes: Mutex<VecDeque<u8>>,
    reader: Mutex<Option<Arc<Parker>>>,
    /// The writing end, while any handle of it lives.
    writer: Mutex<Weak<()>>,
}

/// One end of an in-memory byte pipe: writes never block; a read waits up
/// to its timeout on the pipe's clock, then fails with `TimedOut` (as a
/// serial port with a read timeout does), and reads 0 once the other end
/// is gone and everything it wrote has been read.
pub struct PipeEnd {
    clock: Clock,
    rx: Arc<Half>,
    tx: Arc<Half>,
    /// Alive while any clone of this end is (taken out on drop, so that
    /// the other end sees it gone before it is woken).
    token: Option<Arc<()>>,
    timeout: Duration,
}

/// Two connected ends of a byte pipe whose reads time out after `timeout`
/// on `clock`.
pub fn pipe(clock: &Clock, timeout: Duration) -> (PipeEnd, PipeEnd) {
    let half = || {
        Arc::new(Half {
            bytes: Mutex::new(VecDeque::new()),
            reader: Mutex::new(None),
            writer: Mutex::new(Weak::new()),
        })
    };
    let (ab, ba) = (half(), half());
    let (ta, tb) = (Arc::new(()), Arc::new(()));
    *lock(&ab.writer) = Arc::downgrade(&ta);
    *lock(&ba.writer) = Arc::downgrade(&tb);
    (
        PipeEnd {
            clock: clock.clone(),
            rx: ba.clone(),
            tx: ab.clone(),
            token: Some(ta),
            timeout,
        },
        PipeEnd {
            clock: clock.clone(),
            rx: ab,
            tx: ba,
            token: Some(tb),
            timeout,
        },
    )
}

impl PipeEnd {
    /// Another handle of the same end (for a reader and a writer thread).
    pub fn try_clone(&self) -> PipeEnd {
        PipeEnd {
            clock: self.clock.clone(),
            rx: self.rx.clone(),
            tx: self.tx.clone(),
            token: self.token.clone(),
            timeout: self.timeout,
        }
    }
}

impl io::Read for PipeEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        *lock(&self.rx.reader) = Some(current_parker());
        let deadline = self
            .clock
            .now()
            .plus_ns(self.timeout.as_nanos().min(i64::MAX as u128 / 2) as i64);
        loop {
            {
                let mut q = lock(&self.rx.bytes);
                if !q.is_empty() {
                    let n = buf.len().min(q.len());
                    for (d, s) in buf.iter_mut().zip(q.drain(..n)) {
                        *d = s;
                    }
                    return Ok(n);
                }
            }
            if lock(&self.rx.writer).upgrade().is_none() {
                return Ok(0);
            }
            if self.clock.now() >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"));
            }
            self.clock.park_until(deadline);
        }
    }
}

impl io::Write for PipeEnd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.tx.bytes).extend(buf.iter().copied());
        if let Some(p) = lock(&self.tx.reader).as_ref() {
            self.clock.unpark(p);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        // The last handle of this end: let its token go, then wake the other
        // end's reader, which then reads 0.
        let last = self
            .token
            .take()
            .is_some_and(|t| Arc::strong_count(&t) == 1);
        if last {
            if let Some(p) = lock(&self.tx.reader).as_ref() {
                self.clock.unpark(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::HostTime;
    use std::io::{Read, Write};

    #[test]
    fn a_pipe_carries_bytes_times_out_in_virtual_time_and_reads_0_when_closed() {
        let (clock, _me) = Clock::new_virtual_joined();
        let (mut a, b) = pipe(&clock, Duration::from_millis(50));
        let c = clock.clone();
        let mut b2 = b.try_clone();
        let t = clock
            .spawn("peer", move || {
                c.sleep_until(HostTime(7_000_000));
                b2.write_all(b"hello").unwrap();
                c.sleep_until(HostTime(200_000_000));
                drop(b2);
                drop(b);
            })
            .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(a.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(clock.now(), HostTime(7_000_000), "woken by the write");
        let e = a.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(clock.now(), HostTime(57_000_000));
        // Reads go on timing out until the peer closes its end.
        loop {
            match a.read(&mut buf) {
                Ok(0) => break,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
                r => panic!("{r:?}"),
            }
        }
        assert_eq!(clock.now(), HostTime(200_000_000));
        clock.blocking(|| t.join().unwrap());
    }

    #[test]
    fn a_channel_hands_values_over_and_says_when_its_senders_are_gone() {
        let (clock, _me) = Clock::new_virtual_joined();
        let (tx, rx) = channel::<u32>(&clock);
        let c = clock.clone();
        let t = clock
            .spawn("sender", move || {
                c.sleep(Duration::from_millis(3));
                tx.send(1).unwrap();
                let tx2 = tx.clone();
                drop(tx);
                c.sleep(Duration::from_millis(3));
                tx2.send(2).unwrap();
            })
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(1));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        );
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(2));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(1)),
            Err(RecvTimeoutError::Disconnected)
        );
        assert_eq!(clock.now(), HostTime(6_000_000));
        clock.blocking(|| t.join().unwrap());
    }
}
