// rp2040js fixes the rig firmware needs, and the analogue world around the rig.
//
// Fixes (monkey-patches of this one rp2040js instance, made here; node_modules is
// untouched):
// * PWM wrap DREQs: rp2040js raises DREQ_PWM_WRAPn with `setDREQ` at every wrap and
//   never clears it, as if it were a FIFO's level. A DMA channel paced by a slice's
//   wrap then runs unpaced after the first wrap. On the RP2040 the DREQ is a pulse per
//   wrap and the DMA counts them per channel (a credit: one transfer each; the channel
//   DBG_CTDREQ register reads it, and a write clears it). Replaced by that: each wrap
//   adds a credit (up to 63) to every channel selecting that DREQ, busy or not, and a
//   paced transfer takes one. Counting while idle is the stricter reading of the
//   datasheet: a firmware that triggered a channel without clearing its count would
//   see a burst of stale credits here.
// * ADC round robin: the `activeChannel` setter masks the channel with
//   CS_AINSEL_SHIFT (12) instead of CS_AINSEL_MASK (7), so channel 1 is stored as 0
//   and a round robin over ADC0/ADC1 never leaves ADC0. Replaced by a correct
//   accessor.
// * PWM counter writes: rp2040js moves the counter when CTR is written but leaves the
//   outputs as they were until the next compare or wrap; on the RP2040 an output is
//   the comparison (counter < CC) at every cycle, so it follows the write at once.
//   The speaker's start writes CTR while the slice runs. Patched to set A and B from
//   the new count.
// * DMA CHAN_ABORT reads are not modelled (0xffffffff and a warning); rp2040js aborts
//   at once, so the register reads 0 (no abort in progress).
//
// The analogue world: `AnalogWorld` supplies each ADC conversion with a value
// computed from emulated time when the conversion starts (sample and hold):
// * ADC0 (microphone): mid-rail plus the speaker's sound `acousticDelayNs` earlier.
//   The sound is the PWM output on GP16 heard as each carrier period's duty held for
//   that period (rise to rise), averaged over the last `smoothNs` (one 48 kHz sample,
//   20.833 µs: two carrier periods, so the carrier itself cancels). That average is a
//   symmetric (linear-phase) low-pass, so it delays every frequency by smoothNs / 2.
//   A stimulus whose first level reaches the pin at t0, each level held for one
//   sample period Ts, is therefore heard as the stimulus delayed by exactly
//   acousticDelayNs + smoothNs / 2 + Ts / 2 from t0 (the second half-sample is the
//   rig's own zero-order hold), whatever its spectrum: that is the truth the checks
//   hold certlab's acoustic-path measurement to.
// * ADC1 (photodiode): dark level, or the lit level while the LED pin (GP15) was
//   high at t - `lightDelayNs`.
// Both get a little deterministic noise.

const DREQ_PWM_WRAP0 = 24;
const DREQ_PWM_WRAP7 = 31;
const MAX_CREDITS = 63; // the DMA's 6-bit DREQ counter

export function patchPwmDreq(chip) {
  const dma = chip.dma;
  const isPwm = (t) => t >= DREQ_PWM_WRAP0 && t <= DREQ_PWM_WRAP7;
  for (const ch of dma.channels) {
    const plain = ch.scheduleTransfer.bind(ch);
    ch.pwmPending = false;
    const transfer = ch.transferAlarm.callback;
    ch.transferAlarm.callback = () => {
      ch.pwmPending = false;
      transfer();
    };
    ch.scheduleTransfer = () => {
      if (!isPwm(ch.treq)) return plain();
      if (ch.pwmPending && ch.transferAlarm.scheduled) return; // one at a time
      if (ch.dreqCounter > 0) {
        ch.dreqCounter--;
        ch.pwmPending = true;
        ch.transferAlarm.schedule(0);
      }
    };
  }
  const setDREQ = dma.setDREQ.bind(dma);
  dma.setDREQ = (d) => {
    if (!isPwm(d)) return setDREQ(d);
    for (const ch of dma.channels) {
      if (ch.treq !== d) continue;
      ch.dreqCounter = Math.min(MAX_CREDITS, ch.dreqCounter + 1);
      if (ch.active) ch.scheduleTransfer();
    }
  };
}

export function patchPwmCounterWrite(chip) {
  const CHN_CTR = 0x08;
  const CSR_EN = 1;
  const CSR_PH_CORRECT = 2;
  for (const ch of chip.pwm.channels) {
    const write = ch.writeRegister.bind(ch);
    ch.writeRegister = (offset, value) => {
      write(offset, value);
      if (offset !== CHN_CTR || !(ch.csr & CSR_EN) || ch.csr & CSR_PH_CORRECT) return;
      const ctr = ch.timer.counter;
      ch.setA(ch.alarmA.target > ctr);
      ch.setB(ch.alarmB.target > ctr);
    };
  }
}

export function patchDmaAbortRead(chip) {
  const dma = chip.dma;
  const read0 = dma.readUint32.bind(dma);
  dma.readUint32 = (offset) => (offset === 0x444 ? 0 : read0(offset));
}

export function patchAdcRoundRobin(chip) {
  const adc = chip.adc;
  Object.defineProperty(adc, 'activeChannel', {
    configurable: true,
    get() {
      return (this.cs >> 12) & 7;
    },
    set(ch) {
      this.cs = (this.cs & ~(7 << 12)) | ((ch & 7) << 12);
    },
  });
}

export class AnalogWorld {
  constructor(chip, { acousticDelayNs = 3_000_000, lightDelayNs = 500_000, smoothNs = 1e9 / 48000, pwmPin = 16, ledPin = 15 } = {}) {
    this.chip = chip;
    this.acousticDelayNs = acousticDelayNs;
    this.lightDelayNs = lightDelayNs;
    this.smoothNs = smoothNs;
    // Speaker: every rising edge on GP16 ends a carrier period. Per edge k, in rings of
    // typed arrays (no allocation per edge: 96 000 periods a second even in silence):
    // its time B[k], the duty D[k] of the period that ends there, and the integral
    // C[k] of the duty signal up to it.
    const n = 1 << 20;
    this.B = new Float64Array(n);
    this.D = new Float32Array(n);
    this.C = new Float64Array(n);
    this.edges = 0; // rising edges recorded (the rings hold the last 2^20)
    this.lastRise = null;
    this.lastFall = null;
    this.led = []; // [t_ns, level]
    this.conversions = [0, 0, 0, 0, 0];
    this.noise = 12345;
    chip.gpio[pwmPin].addListener((state) => this.pwmEdge(state === 1));
    chip.gpio[ledPin].addListener((state) => this.led.push([chip.clock.nanos, state === 1 ? 1 : 0]));
    const adc = chip.adc;
    adc.onADCRead = (ch) => {
      adc.currentChannel = ch;
      adc.channelValues[ch] = this.value(ch, chip.clock.nanos);
      this.conversions[ch]++;
      adc.sampleAlarm.schedule(adc.sampleTime * 1000);
    };
  }

  pwmEdge(high) {
    const t = this.chip.clock.nanos;
    if (!high) {
      this.lastFall = t;
      return;
    }
    const mask = this.B.length - 1;
    const k = this.edges;
    if (k === 0 || this.lastRise === null) {
      this.B[0] = t;
      this.D[0] = 0.5;
      this.C[0] = 0;
    } else {
      const prev = (k - 1) & mask;
      const fell = this.lastFall !== null && this.lastFall > this.lastRise;
      const d = fell ? (this.lastFall - this.lastRise) / (t - this.lastRise) : 1;
      this.B[k & mask] = t;
      this.D[k & mask] = d;
      this.C[k & mask] = this.C[prev] + d * (t - this.B[prev]);
    }
    this.edges = k + 1;
    this.lastRise = t;
  }

  /** The integral of the speaker's duty signal up to time t (duty 0.5 outside the record). */
  integralAt(t) {
    const mask = this.B.length - 1;
    const n = this.edges;
    if (n === 0) return 0.5 * t;
    const oldest = Math.max(0, n - this.B.length);
    const first = this.B[oldest & mask];
    if (t <= first) return this.C[oldest & mask] - 0.5 * (first - t);
    const last = (n - 1) & mask;
    if (t >= this.B[last]) return this.C[last] + 0.5 * (t - this.B[last]);
    // The first edge after t: the period [B[k-1], B[k]) holds t.
    let lo = oldest + 1;
    let hi = n - 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.B[mid & mask] > t) hi = mid;
      else lo = mid + 1;
    }
    const p = (lo - 1) & mask;
    return this.C[p] + this.D[lo & mask] * (t - this.B[p]);
  }

  /** What the microphone hears at time t (before the acoustic delay): the duty signal's mean over the last smoothNs. */
  soundAt(t) {
    return (this.integralAt(t) - this.integralAt(t - this.smoothNs)) / this.smoothNs;
  }

  ledAt(t) {
    let v = 0;
    for (let i = this.led.length - 1; i >= 0; i--) {
      if (this.led[i][0] <= t) {
        v = this.led[i][1];
        break;
      }
    }
    return v;
  }

  rand() {
    this.noise = (this.noise * 1103515245 + 12345) & 0x7fffffff;
    return (this.noise / 0x7fffffff - 0.5) * 2;
  }

  value(ch, t) {
    const n = this.rand() * 4;
    let v = 2048;
    if (ch === 0) v = 2048 + (this.soundAt(t - this.acousticDelayNs) - 0.5) * 3000 + n;
    else if (ch === 1) v = (this.ledAt(t - this.lightDelayNs) ? 3600 : 300) + n;
    return Math.max(0, Math.min(4095, Math.round(v)));
  }
}
