// Records GPIO output edges with their emulated times (rp2040js calls a pin's listeners
// whenever its output level changes, whether SIO or PWM drives it).

export class Probes {
  constructor(rp2040, { pins = [], maxEdges = 1 << 20 } = {}) {
    this.rp2040 = rp2040;
    this.maxEdges = maxEdges;
    this.log = new Map();
    for (const p of pins) {
      const edges = [];
      this.log.set(p, edges);
      let last = null;
      rp2040.gpio[p].addListener((state) => {
        const v = state === 1 ? 1 : 0; // GPIOPinState.High === 1
        if (v === last) return;
        last = v;
        if (edges.length < this.maxEdges) edges.push([rp2040.clock.nanos, v]);
      });
    }
  }
  edges(pin, sinceNs = 0) {
    return (this.log.get(pin) || []).filter(([t]) => t >= sinceNs);
  }
  counts() {
    return Object.fromEntries([...this.log].map(([p, e]) => [p, e.length]));
  }
}
