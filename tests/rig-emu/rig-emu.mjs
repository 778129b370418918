#!/usr/bin/env node
// rig-emu: runs certlab's RP2040 rig firmware image (the UF2 a lab flashes, or its ELF)
// in rp2040js, acts as its USB host, and bridges its CDC-ACM port to a pseudo-terminal.
//
//   node rig-emu.mjs --image rig.uf2 [--unique-id HEX16] [--acoustic-delay-us N]
//                    [--light-delay-us N] [--exec CMD] [--timeout S] [-v]
//
// Prints, on stdout:
//   RIG-EMU PTY /dev/pts/N          the rig's serial port (open it like /dev/ttyACM0)
//   RIG-EMU CONTROL /path/ctl.sock  JSON-lines control socket (stats, edges, usb-reset, ...)
//   RIG-EMU USB {...}               the identity read at enumeration
//   RIG-EMU READY lag ...            emulated time has settled on wall time (below)
// With --exec, runs CMD (through sh) once the rig has enumerated, with RIG_EMU_PTY and
// RIG_EMU_CONTROL in its environment, and exits with its status.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RP2040 } from 'rp2040js';

import { AnalogWorld, patchAdcRoundRobin, patchDmaAbortRead, patchPwmCounterWrite, patchPwmDreq } from './lib/analog.mjs';
import { installFlashModel } from './lib/flash.mjs';
import { loadImage } from './lib/image.mjs';
import { Pacer } from './lib/pacer.mjs';
import { Probes } from './lib/probes.mjs';
import { MiniRom } from './lib/rom.mjs';
import { Sniffer } from './lib/sniff.mjs';
import { UsbHost } from './lib/usbhost.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const o = { acousticDelayUs: 3000, lightDelayUs: 500, uniqueId: 'CE271AB5E0000001', timeout: 0, verbose: false, exec: null, image: null };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--image') o.image = v();
    else if (a === '--unique-id') o.uniqueId = v();
    else if (a === '--exec') o.exec = v();
    else if (a === '--timeout') o.timeout = Number(v());
    else if (a === '--acoustic-delay-us') o.acousticDelayUs = Number(v());
    else if (a === '--light-delay-us') o.lightDelayUs = Number(v());
    else if (a === '-v' || a === '--verbose') o.verbose = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.image) throw new Error('--image FILE is required');
  if (!/^[0-9a-fA-F]{16}$/.test(o.uniqueId)) throw new Error('--unique-id takes 16 hex digits');
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv);
} catch (e) {
  console.error(`rig-emu: ${e.message}`);
  process.exit(3);
}

const log = (msg) => process.stderr.write(`rig-emu: ${msg}\n`);
const out = (msg) => process.stdout.write(`RIG-EMU ${msg}\n`);

// ---- the chip -------------------------------------------------------------------

const warnings = new Map();
const chip = new RP2040();
let pacer = null;
chip.logger = {
  debug() {},
  info(component, msg) {
    // rp2040js 1.4.1 executes SEV as a no-op that only logs "SEV". On a Cortex-M0+ SEV
    // sets the event register, so the next WFE falls through; embassy's executor relies
    // on that when one task wakes another from thread mode. Set it here.
    if (msg === 'SEV') {
      chip.core.eventRegistered = true;
      return;
    }
    if (opts.verbose) log(`[${component}] ${msg}`);
  },
  warn(component, msg) {
    const key = `[${component}] ${msg}`;
    const n = (warnings.get(key) || 0) + 1;
    warnings.set(key, n);
    if (n === 1 || opts.verbose) log(`warning: ${key}`);
  },
  error(component, msg) {
    log(`error: [${component}] ${msg} (PC 0x${(chip.core.PC >>> 0).toString(16)}, LR 0x${(chip.core.LR >>> 0).toString(16)}, r0-r3 ${[0, 1, 2, 3].map((i) => (chip.core.registers[i] >>> 0).toString(16)).join(" ")})`);
    throw new Error(`[${component}] ${msg}`);
  },
};

const rom = new MiniRom(chip, {
  log,
  onFault: (why) => {
    log(`rom: ${why}`);
    pacer?.halt(why);
    finish(1, `firmware fault: ${why}`);
  },
});
const image = fs.readFileSync(opts.image);
const loaded = loadImage(chip.flash, new Uint8Array(image.buffer, image.byteOffset, image.byteLength), opts.image);
log(`loaded ${opts.image}: ${loaded.kind}, ${loaded.bytes} bytes of flash`);
const flashStats = installFlashModel(chip, Uint8Array.from(Buffer.from(opts.uniqueId, 'hex')));

chip.onBreak = (imm) => {
  if (rom.onBreak(imm)) return;
  const why = `BKPT #${imm} at 0x${((chip.core.PC - 2) >>> 0).toString(16)} outside the ROM`;
  log(why);
  pacer?.halt(why);
  finish(1, `firmware stopped: ${why}`);
};

patchPwmDreq(chip);
patchPwmCounterWrite(chip);
patchDmaAbortRead(chip);
patchAdcRoundRobin(chip);
const world = new AnalogWorld(chip, {
  acousticDelayNs: opts.acousticDelayUs * 1000,
  lightDelayNs: opts.lightDelayUs * 1000,
});
const probes = new Probes(chip, { pins: [14, 15, 16, 25] });
const sniffer = new Sniffer(chip.clock);
const resets = [];
chip.peripherals[0x40058].onWatchdogTrigger = () => {
  resets.push({ nanos: chip.clock.nanos, cause: 'watchdog' });
  log(`firmware triggered a watchdog reset at ${(chip.clock.nanos / 1e6).toFixed(3)} ms (emulated)`);
  pacer?.halt('watchdog reset');
  finish(1, 'watchdog reset (the firmware panicked)');
};

// ---- USB host and pty bridge --------------------------------------------------------

let bridge = null;
let usbInfo = null;
let toHost = [];
const injected = { bursts: 0, bytes: 0, zeros: 0 };
let garbageRng = 0x2545f491;
function flushToHost() {
  if (!toHost.length || !bridge) return;
  const chunks = toHost;
  toHost = [];
  bridge.stdin.write(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
}
const host = new UsbHost(chip, {
  log,
  // Bytes for the host are written to the bridge once per pacing slice (one pipe
  // write per slice instead of one per 64-byte packet; a slice is at most 2 ms).
  onData: (buf) => {
    sniffer.fromRig.feed(buf);
    toHost.push(buf);
  },
  onConfigured: (info) => {
    usbInfo = info;
    out(`USB ${JSON.stringify({ vid: info.vid, pid: info.pid, bcdDevice: info.bcdDevice, ...info.strings })}`);
    waitSettled();
  },
});

pacer = new Pacer(chip, { sliceBudgetMs: 2 });
pacer.onSliceEnd = flushToHost;

bridge = spawn('python3', [path.join(here, 'pty_bridge.py')], { stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
let ptyPath = null;
bridge.stdio[3].setEncoding('utf8');
bridge.stdio[3].on('data', (s) => {
  const m = /^PTY (\S+)/m.exec(s);
  if (m && !ptyPath) {
    ptyPath = m[1];
    out(`PTY ${ptyPath}`);
    maybeExec();
  }
});
// Host bytes reach the rig at the emulated time equal to their wall arrival time, never
// earlier: when emulated time trails (a loaded machine, a stall), they wait for it in
// an alarm. So the rig cannot stamp a byte before the host sent it, and clock sync over
// the emulated link stays causal however far the emulator falls behind.
const inbound = []; // [emulated ns due, bytes]
const inboundAlarm = chip.clock.createAlarm(() => deliverInbound());
function deliverInbound() {
  while (inbound.length && inbound[0][0] <= chip.clock.nanos) {
    const [due, bytes] = inbound.shift();
    sniffer.toRig.feed(bytes, due);
    host.write(bytes);
  }
  if (inbound.length) inboundAlarm.schedule(inbound[0][0] - chip.clock.nanos);
}
// The bridge stamps each read with CLOCK_MONOTONIC (process.hrtime's clock too).
let fromBridge = Buffer.alloc(0);
let mono0 = null; // [hrtime ns, pacer wall ns] at one instant
bridge.stdout.on('data', (buf) => {
  pacer.kick(); // bring emulated time up to now before the bytes reach the rig
  fromBridge = fromBridge.length ? Buffer.concat([fromBridge, buf]) : buf;
  while (fromBridge.length >= 12) {
    const n = fromBridge.readUInt32LE(0);
    if (fromBridge.length < 12 + n) break;
    const readAt = fromBridge.readBigUInt64LE(4);
    const bytes = new Uint8Array(fromBridge.subarray(12, 12 + n));
    fromBridge = fromBridge.subarray(12 + n);
    if (!mono0) mono0 = [process.hrtime.bigint(), pacer.wallNs()];
    const wall = Math.min(pacer.wallNs(), mono0[1] + Number(readAt - mono0[0]));
    inbound.push([pacer.e0 + wall, bytes]);
  }
  deliverInbound();
  pacer.kick();
});
bridge.on('exit', (code) => {
  if (!finishing) finish(1, `pty bridge exited (${code})`);
});

// ---- control socket -----------------------------------------------------------------

const ctlDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-emu-'));
const ctlPath = path.join(ctlDir, 'control.sock');

function stats() {
  const wall = pacer.wallNs();
  return {
    wallS: wall / 1e9,
    emulatedS: (chip.clock.nanos - pacer.e0) / 1e9,
    lagNowUs: pacer.lagNs() / 1e3,
    lag: pacer.lagStats(),
    instructions: pacer.instructions,
    mips: pacer.instructions / Math.max(1, pacer.busyWallNs / 1e3),
    busyFraction: pacer.busyWallNs / Math.max(1, wall),
    usb: { ...host.stats, configured: host.configured, info: usbInfo },
    rom: rom.calls,
    flash: flashStats,
    resets,
    warnings: Object.fromEntries(warnings),
    edges: probes.counts(),
    adcConversions: world.conversions,
    world: {
      acousticDelayUs: world.acousticDelayNs / 1000,
      lightDelayUs: world.lightDelayNs / 1000,
      smoothUs: world.smoothNs / 1000,
    },
    sniffed: sniffer.counts(),
    injected,
    stalls,
  };
}

const commands = {
  stats: () => stats(),
  lag: (c) => pacer.lagStats(c.fromWallNs ?? 0, c.toWallNs ?? Infinity),
  now: () => ({ wallNs: pacer.wallNs(), emulatedNs: chip.clock.nanos - pacer.e0, emulatedAbsNs: chip.clock.nanos }),
  'usb-reset': () => (host.busReset(), { ok: true }),
  edges: (c) => ({ edges: probes.edges(c.pin, c.sinceNs ?? 0, c.untilNs ?? Infinity) }),
  freeze: (c) => {
    // A stalled rig: its CPU hangs for `ms` of wall time (no instruction, so no USB
    // traffic either); its peripherals and clock run on (Pacer.hangFor).
    const ms = c.ms ?? 1000;
    const at = chip.clock.nanos;
    pacer.hangFor(ms);
    stalls.push({ emulatedNs: at, ms });
    return { ok: true, emulatedNs: at };
  },
  hang: (c) => {
    // The CPU stops for `us` of emulated time from emulated ns `atNs` (peripherals run on).
    pacer.hangAt(c.atNs, (c.us ?? 10) * 1000);
    return { ok: true };
  },
  hangs: () => ({ hangs: pacer.hangs }),
  garbage: (c) => {
    // Noise on the rig->host line: `bytes` pseudo-random bytes between two USB packets
    // (so usually inside a frame), as the simulated rig's rig-garbage fault does. One
    // of them is always 0x00, the frame delimiter, so a burst also ends the frame it
    // cut and starts a false one.
    const n = Math.max(1, Math.min(4096, c.bytes ?? 40));
    const b = new Uint8Array(n);
    const next = () => {
      garbageRng ^= garbageRng << 13;
      garbageRng ^= garbageRng >>> 17;
      garbageRng ^= garbageRng << 5;
      return garbageRng >>> 0;
    };
    for (let i = 0; i < n; i++) b[i] = next() & 0xff;
    b[next() % n] = 0;
    for (const x of b) if (x === 0) injected.zeros++;
    toHost.push(b);
    injected.bursts++;
    injected.bytes += n;
    return { ok: true, bytes: n };
  },
  // The host's scheduled commands and the rig's Onsets as they passed on the link.
  sniffed: (c) => ({ records: sniffer.records(c.kind, c.sinceNs ?? 0) }),
  stimulus: (c) => ({ samples: sniffer.stimulus(c.id) }),
  stack: () => stackUse(),
};

const stalls = [];

// The deepest the stack has reached: cortex-m-rt (feature paint-stack) fills the RAM
// between the end of the statics and the top with 0xCCCCCCCC at boot. Scanning down
// from the top, the stack ends at the first run of 256 painted words.
function stackUse() {
  const ram = chip.sramView;
  const top = chip.sram.length;
  let run = 0;
  for (let off = top - 4; off >= 0; off -= 4) {
    if (ram.getUint32(off, true) === 0xcccccccc) {
      run++;
      if (run === 256) {
        const deepest = off + 256 * 4; // the lowest word the stack wrote
        let low = off;
        while (low >= 4 && ram.getUint32(low - 4, true) === 0xcccccccc) low -= 4;
        return { usedBytes: top - deepest, paintedBytesLeft: deepest - low };
      }
    } else {
      run = 0;
    }
  }
  return { usedBytes: null, paintedBytesLeft: 0 };
}

const ctl = net.createServer((sock) => {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let reply;
      try {
        const c = JSON.parse(line);
        const f = commands[c.cmd];
        reply = f ? f(c) : { error: `unknown command ${c.cmd}` };
      } catch (e) {
        reply = { error: e.message };
      }
      sock.write(JSON.stringify(reply) + '\n');
    }
  });
  sock.on('error', () => {});
});
ctl.listen(ctlPath, () => out(`CONTROL ${ctlPath}`));

// ---- run ------------------------------------------------------------------------------

// Settling: for its first second or so V8 runs rp2040js unoptimised and emulated
// time falls 100-200 ms behind wall time, then catches up. A host that synchronised
// its clock during that time would see the rig's clock run fast by that much. So
// checks start only once the worst lag over the last 500 ms is under 5 ms (or after
// 15 s, with a warning).
let settled = false;
function waitSettled() {
  const t0 = Date.now();
  const poll = () => {
    if (finishing || settled) return;
    const w = pacer.wallNs();
    const s = pacer.lagStats(w - 500e6, w);
    if ((s && s.spanS > 0.4 && s.lagUs.max < 5000) || Date.now() - t0 > 15000) {
      settled = true;
      out(`READY lag ${s ? s.lagUs.max.toFixed(0) : '?'} us max over the last 0.5 s`);
      maybeExec();
    } else {
      setTimeout(poll, 100);
    }
  };
  poll();
}

let child = null;
let finishing = false;
function maybeExec() {
  if (!opts.exec || child || !ptyPath || !usbInfo || !settled) return;
  child = spawn('sh', ['-c', opts.exec], {
    stdio: 'inherit',
    env: { ...process.env, RIG_EMU_PTY: ptyPath, RIG_EMU_CONTROL: ctlPath },
  });
  child.on('exit', (code, sig) => finish(code ?? (sig ? 1 : 0), `check exited ${code ?? sig}`));
}

function finish(code, why) {
  if (finishing) return;
  finishing = true;
  pacer.stop();
  const s = stats();
  log(`${why}; ${JSON.stringify({ wallS: s.wallS, emulatedS: s.emulatedS, lag: s.lag, mips: s.mips, usb: s.usb })}`);
  try {
    child?.kill();
  } catch {}
  bridge?.stdin.end();
  ctl.close();
  fs.rmSync(ctlDir, { recursive: true, force: true });
  setTimeout(() => process.exit(code), 50);
}

process.on('SIGTERM', () => finish(143, 'terminated'));
process.on('SIGINT', () => finish(130, 'interrupted'));
if (opts.timeout > 0) setTimeout(() => finish(1, `timeout after ${opts.timeout} s`), opts.timeout * 1000);

pacer.onHalt = (why) => finish(1, why);
pacer.start();
