// rp2040js fixes the rig firmware needs, and the analogue world around the rig.
//
// Fixes (monkey-patches of this one rp2040js instance, made here; node_modules is
// untouched):
// * DMA pacing timers: rp2040js 1.4.1 computes a timer's period as (X/Y)/clk_sys,
//   the inverse of the datasheet's rate clk_sys*X/Y (and reads timer 3's X with
//   `>>> 36`). With X/Y = 6/15625 the speaker DMA would run at 2.6e11 Hz instead of
//   48 kHz. Replaced by period = Y/(X*clk_sys).
// * ADC round robin: the `activeChannel` setter masks the channel with
//   CS_AINSEL_SHIFT (12) instead of CS_AINSEL_MASK (7), so channel 1 is stored as 0
//   and a round robin over ADC0/ADC1 never leaves ADC0. Replaced by a correct
//   accessor.
//
// The analogue world: `AnalogWorld` supplies each ADC conversion with a value
// computed from emulated time when the conversion starts (sample and hold):
// * ADC0 (microphone): mid-rail plus the speaker's PWM duty, as the RC low-pass and
//   the acoustic path would deliver it, `acousticDelayNs` later (the duty of the
//   last complete PWM period on GP16 before t - delay);
// * ADC1 (photodiode): dark level, or the lit level while the LED pin (GP15) was
//   high at t - `lightDelayNs`.
// Both get a little deterministic noise.

const TREQ_TIMER0 = 59;

export function patchDmaTimers(chip) {
  const dma = chip.dma;
  dma.getTimer = function (treq) {
    if (treq === 63) return 1e6 / chip.clkSys; // permanent: one transfer per cycle
    const i = treq - TREQ_TIMER0;
    if (i < 0 || i > 3) return 0;
    const reg = [this.timer0, this.timer1, this.timer2, this.timer3][i] >>> 0;
    const x = reg >>> 16;
    const y = reg & 0xffff;
    if (!x || !y) return 0;
    return (y / x) * (1e6 / chip.clkSys); // µs per transfer
  };
}

// * DMA CHAN_ABORT reads are not modelled (0xffffffff and a warning); rp2040js aborts
//   at once, so the register reads 0 (no abort in progress).
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
  constructor(chip, { acousticDelayNs = 3_000_000, lightDelayNs = 500_000, pwmPin = 16, ledPin = 15 } = {}) {
    this.chip = chip;
    this.acousticDelayNs = acousticDelayNs;
    this.lightDelayNs = lightDelayNs;
    // Speaker: duty of each completed PWM period, in a ring of typed arrays (no
    // allocation per edge: the PWM runs at 96 kHz even in silence).
    this.dutyT = new Float64Array(1 << 20);
    this.dutyV = new Float32Array(1 << 20);
    this.dutyN = 0; // periods recorded (the ring holds the last 2^20)
    this.lastRise = null;
    this.lastFall = null;
    this.currentDuty = 0.5;
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
    if (high) {
      if (this.lastRise !== null && this.lastFall !== null && this.lastFall > this.lastRise) {
        const i = this.dutyN & (this.dutyT.length - 1);
        this.dutyT[i] = t;
        this.dutyV[i] = (this.lastFall - this.lastRise) / (t - this.lastRise);
        this.dutyN++;
      }
      this.lastRise = t;
    } else {
      this.lastFall = t;
    }
  }

  /** The speaker's duty at time t (the last complete PWM period ending before t). */
  dutyAt(t) {
    const mask = this.dutyT.length - 1;
    const n = this.dutyN;
    const oldest = Math.max(0, n - this.dutyT.length);
    if (n === 0 || this.dutyT[(n - 1) & mask] < t - 1e6 || this.dutyT[oldest & mask] > t) {
      // No PWM period in the last millisecond (static output), or older than the ring.
      return 0.5;
    }
    let lo = oldest;
    let hi = n - 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi + 1) / 2);
      if (this.dutyT[mid & mask] <= t) lo = mid;
      else hi = mid - 1;
    }
    return this.dutyV[lo & mask];
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
    if (ch === 0) v = 2048 + (this.dutyAt(t - this.acousticDelayNs) - 0.5) * 3000 + n;
    else if (ch === 1) v = (this.ledAt(t - this.lightDelayNs) ? 3600 : 300) + n;
    return Math.max(0, Math.min(4095, Math.round(v)));
  }
}
