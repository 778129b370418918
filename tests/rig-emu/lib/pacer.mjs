import { performance } from 'node:perf_hooks';

// Runs the emulated RP2040 against the host's wall clock.
//
// rp2040js's SimulationClock is a counter of emulated nanoseconds that advances by the
// cycles of each instruction (at clk_sys, which rp2040js derives from the PLL registers
// the firmware writes: 8.33 ns at the rig's 120 MHz) and jumps to the next alarm when the core
// sleeps (WFI/WFE). Left alone it runs as fast as the host allows: idle firmware races
// ahead of real time, busy firmware falls behind.
//
// The pacing rule here: emulated time may never run ahead of wall time, and is brought
// up to wall time as soon as the host can.
//   emulated target(now) = e0 + (wall(now) - w0)
// Each slice runs instructions (ticking the clock per instruction, as rp2040js's own
// Simulator does) or, while the core sleeps, jumps the clock to min(next alarm, target).
// A slice ends at the target or after `sliceBudgetMs` of wall time, whichever is first;
// between slices the Node event loop runs (pty bytes, timers). When the core sleeps and
// its next alarm is later than the target, the loop sleeps in wall time until then
// (setTimeout, about 1 ms resolution) or until host bytes arrive: arriving bytes call
// `kick()`, which first catches emulated time up to the wall clock, so the rig sees them
// at (nearly) the wall time they arrived.
//
// So emulated time trails wall time by a lag that is >= 0 by construction; the
// `lag` statistics measure it. If the host cannot execute instructions as fast as the
// firmware needs them, the lag grows without bound: that rate is reported as drift.

export class Pacer {
  constructor(rp2040, { sliceBudgetMs = 4, realtime = true } = {}) {
    this.rp2040 = rp2040;
    this.clock = rp2040.clock;
    this.core = rp2040.core;
    this.sliceBudgetNs = sliceBudgetMs * 1e6;
    this.realtime = realtime;
    this.running = false;
    this.timer = null;
    this.instructions = 0;
    this.busyWallNs = 0;
    this.lagSamples = []; // [wallNs since start, lagNs at that time, max lagNs in that ms]
    this.maxLagSamples = 600000; // 10 minutes
    this.halted = null;
    this.hangNs = 0;
    this.hangs = [];
    this.hungUntilWall = 0;
  }

  wallNs() {
    return (performance.now() - this.w0) * 1e6;
  }

  start() {
    this.w0 = performance.now(); // ms, sub-µs resolution; cheaper than hrtime.bigint()
    this.e0 = this.clock.nanos;
    this.running = true;
    this.schedule(0);
  }

  stop() {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * A stall: the rig's CPU hangs for `ms` of wall time while its TIMER, DMA, ADC, PWM
   * and USB controller run on in real time (no instruction executes; interrupts pend; a
   * USB OUT packet lands in the one buffer the firmware had armed, the rest wait). Then
   * the CPU runs again and meets all of that, as firmware does after a hang.
   */
  hangFor(ms) {
    this.hungUntilWall = this.wallNs() + ms * 1e6;
  }

  /**
   * Hang the CPU for `ns` of emulated time from emulated time `atNs` (as a long
   * critical section or a bus stall would): the clock and the peripherals run on, no
   * instruction executes, interrupts wait. For testing what firmware reports when it
   * runs late.
   */
  hangAt(atNs, ns) {
    const alarm = this.clock.createAlarm(() => {
      this.hangNs = ns;
    });
    alarm.schedule(Math.max(0, atNs - this.clock.nanos));
  }

  hangNow() {
    const ns = this.hangNs;
    this.hangNs = 0;
    this.hangs.push({ atNs: this.clock.nanos, ns });
    this.clock.tick(ns);
  }

  halt(reason) {
    this.halted = reason;
    this.stop();
  }

  /** Emulated ns minus the emulated ns that wall time allows (<= 0 when paced). */
  lagNs() {
    return this.wallNs() - (this.clock.nanos - this.e0);
  }

  /** Catch emulated time up to wall time now (host data arrived, for example). */
  kick() {
    if (!this.running) return;
    this.slice();
  }

  schedule(ms) {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    if (ms <= 0) {
      this.timer = null;
      setImmediate(() => this.running && this.slice());
    } else {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.slice();
      }, ms);
    }
  }

  slice() {
    if (!this.running || this.inSlice) return;
    this.inSlice = true;
    const { clock, core } = this;
    const startWall = this.wallNs();
    const deadline = startWall + this.sliceBudgetNs;
    const target = this.e0 + startWall;
    const cycleNanos = 1e9 / this.rp2040.clkSys;
    const hung = this.hungUntilWall > startWall;
    let n = 0;
    try {
      if (hung && clock.nanos < target) clock.tick(target - clock.nanos);
      // The wall clock is read about every 2000 steps (an instruction, or a jump to
      // the next alarm while the core sleeps): reading it is not free, and the core
      // falls asleep every few instructions. A sleeping core still has peripherals'
      // alarms to run (the ADC and the PWM make ~300 000 a second): far behind, those
      // alone would otherwise hold the event loop (host bytes, timers) for as long
      // as catching up takes.
      let steps = 0;
      while (!hung && clock.nanos < target) {
        if (core.waiting) {
          const next = clock.nextAlarm ? clock.nextAlarm.nanos : Infinity;
          const to = Math.min(next, target);
          clock.tick(to - clock.nanos);
          if (this.hangNs) this.hangNow();
          steps += 8;
        } else {
          let i = 0;
          for (; i < 2000 && !core.waiting; i++) {
            const cycles = core.executeInstruction();
            clock.tick(cycles * cycleNanos);
            if (this.hangNs) this.hangNow();
          }
          n += i;
          steps += i;
          if (this.halted) break;
        }
        if (steps >= 2000) {
          steps = 0;
          if (this.wallNs() > deadline) break;
        }
      }
    } catch (e) {
      this.halt(`emulator error: ${e.message}`);
      if (this.onHalt) this.onHalt(this.halted);
    }
    this.instructions += n;
    const endWall = this.wallNs();
    this.busyWallNs += endWall - startWall;
    // One sample per millisecond of wall time (the slice that ends it), in a ring.
    const lag = endWall - (clock.nanos - this.e0);
    const last = this.lagSamples[this.lagSamples.length - 1];
    if (last && endWall - last[0] < 1e6) {
      last[2] = Math.max(last[2], lag);
    } else {
      if (this.lagSamples.length >= this.maxLagSamples) this.lagSamples.shift();
      this.lagSamples.push([endWall, lag, lag]);
    }
    this.inSlice = false;
    if (this.onSliceEnd) this.onSliceEnd();
    if (!this.running) return;
    if (hung) {
      this.schedule(1); // the peripherals' time moves on in steps of about 1 ms
      return;
    }
    if (clock.nanos < this.e0 + endWall && !core.waiting) {
      this.schedule(0); // busy and behind: run again after I/O
      return;
    }
    const next = clock.nextAlarm ? clock.nextAlarm.nanos : Infinity;
    const aheadMs = (next - (this.e0 + this.wallNs())) / 1e6;
    if (!core.waiting || aheadMs <= 0.05) this.schedule(0);
    else this.schedule(Math.min(Math.max(1, Math.floor(aheadMs)), 20));
  }

  /** Lag statistics over samples taken after `fromWallNs`. */
  lagStats(fromWallNs = 0, toWallNs = Infinity) {
    const s = this.lagSamples.filter(([w]) => w >= fromWallNs && w <= toWallNs);
    if (s.length < 2) return null;
    const lags = s.map(([, , l]) => l).sort((a, b) => a - b); // the worst lag in each ms
    const q = (p) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))];
    // Least-squares slope of emulated vs wall time: drift in ppm.
    let sw = 0, se = 0, sww = 0, swe = 0;
    for (const [w, l] of s) {
      const e = w - l;
      sw += w; se += e; sww += w * w; swe += w * e;
    }
    const k = s.length;
    const slope = (k * swe - sw * se) / (k * sww - sw * sw);
    const b = (se - slope * sw) / k;
    let rss = 0;
    for (const [w, l] of s) {
      const r = w - l - (slope * w + b);
      rss += r * r;
    }
    return {
      samples: k,
      spanS: (s[k - 1][0] - s[0][0]) / 1e9,
      lagUs: { min: lags[0] / 1e3, p50: q(0.5) / 1e3, p99: q(0.99) / 1e3, max: lags[k - 1] / 1e3 },
      driftPpm: (slope - 1) * 1e6,
      jitterUs: Math.sqrt(rss / k) / 1e3,
    };
  }
}
