// A passive listener on both directions of the emulated rig's serial link: it decodes
// rig protocol v1 frames (COBS, CRC-32) on its own, without the rig-protocol crate, and
// keeps the ones the checks compare with the pins: the host's scheduled commands (Play,
// FlashLed, PressButton: their `at`) and the rig's Onsets, each with the emulated time
// its last byte passed, and the stimuli the host uploaded (StimulusData), so a check
// can compare what GP16 played with what was sent. Frames that do not decode are only
// counted. It sees the rig's
// bytes before any injected garbage, so it always reads what the firmware sent.

const TYPES = { 0x04: 'play', 0x05: 'led', 0x06: 'press', 0x85: 'onset' };
const STIMULUS_DATA = 0x03;
const MAX_STIMULUS = 1 << 20;
const MAX_KEPT = 100000;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes, end) {
  let c = 0xffffffff;
  for (let i = 0; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function cobsDecode(src) {
  const out = new Uint8Array(src.length);
  let o = 0;
  let i = 0;
  while (i < src.length) {
    const code = src[i++];
    if (code === 0) return null;
    for (let k = 1; k < code; k++) {
      if (i >= src.length) return null;
      out[o++] = src[i++];
    }
    if (code < 0xff && i < src.length) out[o++] = 0;
  }
  return out.subarray(0, o);
}

class Direction {
  constructor(clock, name) {
    this.clock = clock;
    this.name = name;
    this.buf = new Uint8Array(1024);
    this.len = 0;
    this.frames = 0;
    this.bad = 0;
    this.kept = [];
    this.stimuli = new Map(); // id -> Int16Array of `total` samples, as uploaded
  }

  /** Bytes that passed; `arrivedNs`: when they reached the harness, in emulated ns (host side). */
  feed(bytes, arrivedNs = null) {
    this.arrivedNs = arrivedNs;
    for (const b of bytes) {
      if (b !== 0) {
        if (this.len < this.buf.length) this.buf[this.len] = b;
        this.len++;
        continue;
      }
      if (this.len > 0) this.frame(this.len <= this.buf.length ? this.buf.subarray(0, this.len) : null);
      this.len = 0;
    }
  }

  frame(enc) {
    const f = enc && cobsDecode(enc);
    if (!f || f.length < 8) {
      this.bad++;
      return;
    }
    const dv = new DataView(f.buffer, f.byteOffset, f.length);
    if (dv.getUint32(f.length - 4, true) !== crc32(f, f.length - 4)) {
      this.bad++;
      return;
    }
    this.frames++;
    const type = f[1];
    if (type === STIMULUS_DATA && f.length >= 4 + 12 + 4) {
      const id = dv.getUint16(4, true);
      const total = dv.getUint32(6, true);
      const offset = dv.getUint32(10, true);
      const n = dv.getUint16(14, true);
      if (total > MAX_STIMULUS || f.length < 16 + 2 * n + 4) return;
      let st = this.stimuli.get(id);
      if (offset === 0 || !st || st.length !== total) {
        st = new Int16Array(total);
        this.stimuli.set(id, st);
      }
      for (let i = 0; i < n && offset + i < total; i++) st[offset + i] = dv.getInt16(16 + 2 * i, true);
      return;
    }
    const kind = TYPES[type];
    if (!kind) return;
    const p = 4;
    const rec = { kind, version: f[0], seq: dv.getUint16(2, true), ns: this.clock.nanos, arrivedNs: this.arrivedNs };
    if (kind === 'onset') {
      if (f.length < p + 9 + 4) return;
      rec.sensor = f[p];
      rec.at = Number(dv.getBigUint64(p + 1, true));
    } else {
      if (f.length < p + 12 + 4) return;
      rec.at = Number(dv.getBigUint64(p, true));
      rec.arg = dv.getUint32(p + 8, true); // sample rate, duration or hold
      if (kind === 'play' && f.length >= p + 14 + 4) rec.id = dv.getUint16(p + 12, true);
    }
    if (this.kept.length >= MAX_KEPT) this.kept.shift();
    this.kept.push(rec);
  }
}

export class Sniffer {
  constructor(clock) {
    this.toRig = new Direction(clock, 'to-rig');
    this.fromRig = new Direction(clock, 'from-rig');
  }
  /** Kept records of `kind` (play, led, press, onset) that passed at or after sinceNs. */
  records(kind, sinceNs = 0) {
    const dir = kind === 'onset' ? this.fromRig : this.toRig;
    return dir.kept.filter((r) => r.kind === kind && r.ns >= sinceNs);
  }
  /** The last stimulus uploaded under `id`, as sent (null if none). */
  stimulus(id) {
    const st = this.toRig.stimuli.get(id);
    return st ? Array.from(st) : null;
  }
  counts() {
    return {
      toRig: { frames: this.toRig.frames, bad: this.toRig.bad },
      fromRig: { frames: this.fromRig.frames, bad: this.fromRig.bad },
    };
  }
}
