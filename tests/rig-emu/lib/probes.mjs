// Records GPIO output edges with their emulated times (rp2040js calls a pin's listeners
// whenever its output level changes, whether SIO or PWM drives it). Each pin keeps the
// last 2^20 edges in typed arrays: the speaker's PWM pin makes 192 000 edges a second
// even in silence, so nothing is allocated per edge.

const RING = 1 << 20;

export class Probes {
  constructor(rp2040, { pins = [] } = {}) {
    this.rp2040 = rp2040;
    this.log = new Map();
    for (const p of pins) {
      const rec = { t: new Float64Array(RING), v: new Uint8Array(RING), n: 0, last: -1 };
      this.log.set(p, rec);
      rp2040.gpio[p].addListener((state) => {
        const v = state === 1 ? 1 : 0; // GPIOPinState.High === 1
        if (v === rec.last) return;
        rec.last = v;
        const i = rec.n & (RING - 1);
        rec.t[i] = rp2040.clock.nanos;
        rec.v[i] = v;
        rec.n++;
      });
    }
  }
  /** Edges [emulated ns, level] at or after sinceNs (and before untilNs), oldest first. */
  edges(pin, sinceNs = 0, untilNs = Infinity, max = 200000) {
    const rec = this.log.get(pin);
    if (!rec) return [];
    const out = [];
    for (let k = Math.max(0, rec.n - RING); k < rec.n && out.length < max; k++) {
      const i = k & (RING - 1);
      if (rec.t[i] >= sinceNs && rec.t[i] < untilNs) out.push([rec.t[i], rec.v[i]]);
    }
    return out;
  }
  counts() {
    return Object.fromEntries([...this.log].map(([p, r]) => [p, r.n]));
  }
}
