// A USB host for rp2040js's device-mode USB controller: enumerates the rig the way
// Linux does, opens its CDC-ACM data interface and moves bytes both ways.
//
// rp2040js ships a CDC host (src/usb/cdc.ts, USBCDC), but it cannot drive embassy-usb:
//  1. When firmware arms an OUT buffer, rp2040js clears its AVAILABLE bit at once and
//     USBCDC answers immediately, with a zero-length packet when it has no data. A real
//     host NAKs instead and the buffer stays AVAILABLE until data comes. embassy-rp's
//     `read()` polls AVAILABLE, so it would "receive" a stale 64-byte buffer (or spin on
//     ZLPs). Here an armed OUT buffer keeps AVAILABLE set (the harness sets the bit back
//     in DPRAM) until the host has bytes; then the packet completes after its time on
//     the wire: FULL, length, BUFF_STATUS, the USB interrupt.
//  2. USBCDC never answers the OUT status stage of a control-IN transfer, and reads
//     only the configuration descriptor. This host does the full control sequence
//     (SETUP, data stage, status stage) and reads the device, configuration and string
//     descriptors so the test can check the rig's identity.
// IN packets use rp2040js's own path (onEndpointWrite, 10 µs after the firmware arms
// them).

const EP0_OUT_BUF_CTRL = 0x84;
const BUF_AVAILABLE = 1 << 10;
const BUF_FULL = 1 << 15;
const BUF_STALL = 1 << 11;
const LEN_MASK = 0x3ff;

// Full speed: 12 Mbit/s; a packet costs its bytes plus ~12 bytes of token, PIDs,
// CRC, handshake and gaps.
const wireNanos = (n) => Math.round(((n + 12) * 8 * 1e9) / 12e6);

function setup(bmRequestType, bRequest, wValue, wIndex, wLength) {
  const s = new Uint8Array(8);
  const v = new DataView(s.buffer);
  s[0] = bmRequestType;
  s[1] = bRequest;
  v.setUint16(2, wValue, true);
  v.setUint16(4, wIndex, true);
  v.setUint16(6, wLength, true);
  return s;
}

function utf16(bytes) {
  let s = '';
  for (let i = 2; i + 1 < bytes.length; i += 2) s += String.fromCharCode(bytes[i] | (bytes[i + 1] << 8));
  return s;
}

export class UsbHost {
  constructor(rp2040, { log = () => {}, onData = () => {}, onConfigured = () => {}, onEvent = () => {} } = {}) {
    this.rp2040 = rp2040;
    this.usb = rp2040.usbCtrl;
    this.clock = rp2040.clock;
    this.log = log;
    this.onData = onData;
    this.onConfigured = onConfigured;
    this.onEvent = onEvent;
    this.dv = rp2040.usbDPRAMView;
    this.txQueue = []; // host -> device bytes (Uint8Array chunks)
    this.txBytes = 0;
    this.resetState();
    this.stats = { outPackets: 0, inPackets: 0, outBytes: 0, inBytes: 0, enumerations: 0, resets: 0 };
    this.outAlarm = this.clock.createAlarm(() => this.completeOut());
    this.ctrlTimeout = this.clock.createAlarm(() => this.controlTimedOut());

    const usb = this.usb;
    usb.onUSBEnabled = () => {
      this.log('usb: controller enabled by firmware; bus reset in 10 ms');
      usb.resetDevice();
    };
    usb.onResetReceived = () => this.enumerate();
    usb.onEndpointWrite = (ep, buf) => this.endpointWrite(ep, buf);
    usb.onEndpointRead = (ep, size) => this.endpointRead(ep, size);
  }

  resetState() {
    this.configured = false;
    this.ctrl = null; // current control transfer
    this.ctrlQueue = [];
    this.ep0OutArmed = false;
    this.dataOut = -1;
    this.dataIn = -1;
    this.outArmed = false; // CDC bulk OUT buffer armed, waiting for data
    this.outInFlight = null;
    this.info = { strings: {} };
  }

  /** Host-initiated bus reset (as after a hub port reset); the firmware re-enumerates. */
  busReset() {
    this.stats.resets++;
    this.resetState();
    this.onEvent({ type: 'bus-reset' });
    this.usb.resetDevice();
  }

  // ---- control transfers ------------------------------------------------------

  control(req, dataOut = null) {
    return new Promise((resolve, reject) => {
      this.ctrlQueue.push({ req, dataOut, resolve, reject });
      if (!this.ctrl) this.nextControl();
    });
  }

  nextControl() {
    const c = this.ctrlQueue.shift();
    this.ctrl = c || null;
    if (!c) return;
    const wLength = c.req[6] | (c.req[7] << 8);
    c.dirIn = (c.req[0] & 0x80) !== 0;
    c.wLength = wLength;
    c.received = [];
    c.phase = c.dirIn ? (wLength ? 'data-in' : 'status-in') : c.dataOut ? 'data-out' : 'status-in';
    this.ctrlTimeout.schedule(50e6);
    this.usb.sendSetupPacket(c.req);
    this.pumpEp0Out();
  }

  finishControl(result) {
    const c = this.ctrl;
    this.ctrlTimeout.cancel();
    this.ctrl = null;
    if (c) c.resolve(result);
    this.nextControl();
  }

  controlTimedOut() {
    const c = this.ctrl;
    if (!c) return;
    const stalled = (this.dv.getUint32(0x80, true) & BUF_STALL) !== 0;
    this.ctrl = null;
    c.reject(new Error(`control request ${Buffer.from(c.req).toString('hex')} ${stalled ? 'stalled' : 'timed out'} in ${c.phase}`));
    this.nextControl();
  }

  pumpEp0Out() {
    const c = this.ctrl;
    if (!c || !this.ep0OutArmed) return;
    if (c.phase === 'data-out') {
      this.ep0OutArmed = false;
      this.fillOut(0, c.dataOut);
      c.phase = 'status-in';
    } else if (c.phase === 'status-out') {
      this.ep0OutArmed = false;
      this.fillOut(0, new Uint8Array(0));
      this.finishControl(Uint8Array.from(c.received));
    }
  }

  // ---- controller callbacks ---------------------------------------------------

  endpointWrite(ep, buf) {
    if (ep === 0) {
      const c = this.ctrl;
      if (!c) return;
      if (c.phase === 'data-in') {
        c.received.push(...buf);
        if (buf.length < 64 || c.received.length >= c.wLength) {
          c.phase = 'status-out';
          this.pumpEp0Out();
        }
      } else if (c.phase === 'status-in' && buf.length === 0) {
        this.finishControl(null);
      }
      return;
    }
    if (ep === this.dataIn) {
      this.stats.inPackets++;
      this.stats.inBytes += buf.length;
      if (buf.length) this.onData(buf);
    }
  }

  endpointRead(ep, size) {
    // rp2040js has just cleared AVAILABLE: a real controller keeps it until the host
    // sends, so set it back.
    const reg = EP0_OUT_BUF_CTRL + ep * 8;
    this.dv.setUint32(reg, this.dv.getUint32(reg, true) | BUF_AVAILABLE, true);
    if (ep === 0) {
      this.ep0OutArmed = true;
      this.pumpEp0Out();
      return;
    }
    if (ep === this.dataOut) {
      this.outArmed = true;
      this.outSize = size;
      this.startOut();
    }
  }

  /** Completes an armed OUT buffer with `data` now. */
  fillOut(ep, data) {
    const reg = EP0_OUT_BUF_CTRL + ep * 8;
    let bc = this.dv.getUint32(reg, true);
    const n = Math.min(data.length, bc & LEN_MASK);
    const off = this.usb.getEndpointBufferOffset(ep, true);
    this.rp2040.usbDPRAM.set(data.subarray(0, n), off);
    bc = (bc & ~(LEN_MASK | BUF_AVAILABLE)) | BUF_FULL | n;
    this.dv.setUint32(reg, bc, true);
    this.usb.indicateBufferReady(ep, true);
    return n;
  }

  // ---- CDC data ---------------------------------------------------------------

  /** Queues bytes for the rig (host -> device). */
  write(bytes) {
    if (!bytes.length) return;
    this.txQueue.push(bytes);
    this.txBytes += bytes.length;
    this.startOut();
  }

  startOut() {
    if (!this.configured || !this.outArmed || this.outInFlight || !this.txBytes) return;
    const n = Math.min(this.outSize || 64, 64, this.txBytes);
    const pkt = new Uint8Array(n);
    let k = 0;
    while (k < n) {
      const head = this.txQueue[0];
      const take = Math.min(head.length, n - k);
      pkt.set(head.subarray(0, take), k);
      k += take;
      if (take === head.length) this.txQueue.shift();
      else this.txQueue[0] = head.subarray(take);
    }
    this.txBytes -= n;
    this.outInFlight = pkt;
    this.outAlarm.schedule(wireNanos(n));
  }

  completeOut() {
    const pkt = this.outInFlight;
    this.outInFlight = null;
    if (!pkt || !this.outArmed) return;
    this.outArmed = false;
    this.fillOut(this.dataOut, pkt);
    this.stats.outPackets++;
    this.stats.outBytes += pkt.length;
    this.onEvent({ type: 'out-packet', nanos: this.clock.nanos, length: pkt.length });
  }

  // ---- enumeration ------------------------------------------------------------

  async enumerate() {
    this.resetState();
    this.stats.enumerations++;
    try {
      const dev64 = await this.control(setup(0x80, 6, 0x0100, 0, 64));
      await this.control(setup(0x00, 5, 1, 0, 0)); // SET_ADDRESS 1
      const dev = await this.control(setup(0x80, 6, 0x0100, 0, 18));
      const dv = new DataView(dev.buffer);
      if (dev.length < 18 || dev[1] !== 1) throw new Error(`bad device descriptor ${Buffer.from(dev64).toString('hex')}`);
      const info = this.info;
      info.bcdUSB = dv.getUint16(2, true);
      info.vid = dv.getUint16(8, true);
      info.pid = dv.getUint16(10, true);
      info.bcdDevice = dv.getUint16(12, true);
      const cfg9 = await this.control(setup(0x80, 6, 0x0200, 0, 9));
      const total = cfg9[2] | (cfg9[3] << 8);
      const cfg = await this.control(setup(0x80, 6, 0x0200, 0, total));
      info.configTotal = cfg.length;
      const langs = await this.control(setup(0x80, 6, 0x0300, 0, 255));
      const lang = langs.length >= 4 ? langs[2] | (langs[3] << 8) : 0x0409;
      for (const [name, idx] of [['manufacturer', dev[14]], ['product', dev[15]], ['serial', dev[16]]]) {
        if (idx) info.strings[name] = utf16(await this.control(setup(0x80, 6, 0x0300 | idx, lang, 255)));
      }
      this.parseConfig(cfg);
      await this.control(setup(0x00, 9, 1, 0, 0)); // SET_CONFIGURATION 1
      this.configured = true;
      const coding = new Uint8Array([0x00, 0xc2, 0x01, 0x00, 0, 0, 8]); // 115200 8N1
      await this.control(setup(0x21, 0x20, 0, this.commInterface, 7), coding);
      await this.control(setup(0x21, 0x22, 0x3, this.commInterface, 0)); // DTR | RTS
      this.log(
        `usb: enumerated ${info.vid.toString(16).padStart(4, '0')}:${info.pid.toString(16).padStart(4, '0')} ` +
          `bcdDevice ${info.bcdDevice.toString(16).padStart(4, '0')} "${info.strings.manufacturer}" ` +
          `"${info.strings.product}" serial ${info.strings.serial}; CDC data OUT ep${this.dataOut} IN ep${this.dataIn}`,
      );
      this.onConfigured(info);
      this.startOut();
    } catch (e) {
      this.log(`usb: enumeration failed: ${e.message}`);
      this.onEvent({ type: 'enumeration-failed', error: e.message });
    }
  }

  parseConfig(cfg) {
    let i = 0;
    let cls = -1;
    let iface = -1;
    this.commInterface = 0;
    while (i + 1 < cfg.length && cfg[i] >= 2) {
      const len = cfg[i];
      const type = cfg[i + 1];
      if (type === 4) {
        iface = cfg[i + 2];
        cls = cfg[i + 5];
        if (cls === 0x02) this.commInterface = iface;
      } else if (type === 5 && cls === 0x0a && (cfg[i + 3] & 3) === 2) {
        const addr = cfg[i + 2];
        if (addr & 0x80) this.dataIn = addr & 0xf;
        else this.dataOut = addr & 0xf;
      }
      i += len;
    }
    if (this.dataIn < 0 || this.dataOut < 0) throw new Error('no CDC data interface with bulk IN and OUT');
  }
}
