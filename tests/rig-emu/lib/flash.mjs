// The QSPI flash chip behind rp2040js's SSI, as far as the rig firmware talks to it
// directly (not through XIP):
//
// * rp2040js's SSI model answers only the status-register polls of boot2. embassy-rp
//   reads the flash unique id (command 0x4B: 4 dummy bytes, then 8 id bytes) and the
//   JEDEC id (0x9F: 3 bytes) with the SSI in EEPROM-read mode (CTRLR0.TMOD = 3,
//   CTRLR1 = frames to receive - 1). This model answers those two commands in that
//   mode like a W25Q16JV (the Pico's flash) with a unique id the harness chooses, and
//   leaves everything else to rp2040js's model.
// * XIP_CTRL (0x14000000) is not modelled at all in rp2040js: reads there return
//   0xffffffff, and embassy-rp waits for XIP_CTRL.STREAM_CTR to read 0 before running
//   flash code from RAM, forever. The model here reads STREAM_CTR = 0 (no background
//   stream), STAT = flush ready | FIFO empty, and ignores FLUSH.
//
// Both are small monkey-patches of one rp2040js instance, made in the harness (nothing
// in node_modules changes).

import { BasePeripheral } from 'rp2040js';

const SSI_CTRLR0 = 0x00;
const SSI_CTRLR1 = 0x04;
const SSI_SSIENR = 0x08;
const SSI_SR = 0x28;
const SSI_RXFLR = 0x24;
const SSI_DR0 = 0x60;
const TMOD_EEPROM = 3;

const JEDEC_W25Q16JV = [0xef, 0x40, 0x15];

class XipCtrl extends BasePeripheral {
  constructor(rp2040) {
    super(rp2040, 'XIP_CTRL');
    this.ctrl = 0x3;
  }
  readUint32(offset) {
    switch (offset) {
      case 0x00:
        return this.ctrl;
      case 0x08: // STAT: FLUSH_READY | FIFO_EMPTY
        return 0x3;
      case 0x0c: // CTR_HIT
      case 0x10: // CTR_ACC
      case 0x14: // STREAM_ADDR
      case 0x18: // STREAM_CTR
        return 0;
      default:
        return 0;
    }
  }
  writeUint32(offset, value) {
    if (offset === 0x00) this.ctrl = value;
  }
}

export function installFlashModel(rp2040, uniqueId) {
  if (!(uniqueId instanceof Uint8Array) || uniqueId.length !== 8) {
    throw new Error('unique id must be 8 bytes');
  }
  rp2040.peripherals[(0x14000000 >>> 14) << 2] = new XipCtrl(rp2040);

  const ssi = rp2040.peripherals[(0x18000000 >>> 14) << 2];
  const read0 = ssi.readUint32.bind(ssi);
  const write0 = ssi.writeUint32.bind(ssi);
  let rx = [];
  const stats = { uniqueIdReads: 0, jedecReads: 0 };

  ssi.writeUint32 = (offset, value) => {
    if (offset === SSI_SSIENR) rx = [];
    if (offset === SSI_DR0 && ((ssi.crtlr0 >>> 8) & 3) === TMOD_EEPROM && ssi.ssienr & 1) {
      const frames = (ssi.crtlr1 & 0xffff) + 1;
      const cmd = value & 0xff;
      let resp = null;
      if (cmd === 0x4b) {
        resp = [0, 0, 0, 0, ...uniqueId];
        stats.uniqueIdReads++;
      } else if (cmd === 0x9f) {
        resp = JEDEC_W25Q16JV;
        stats.jedecReads++;
      }
      if (resp) {
        rx = Array.from({ length: frames }, (_, i) => (i < resp.length ? resp[i] : 0xff));
        return;
      }
    }
    write0(offset, value);
  };
  ssi.readUint32 = (offset) => {
    if (rx.length) {
      if (offset === SSI_DR0) return rx.shift();
      if (offset === SSI_RXFLR) return rx.length;
      if (offset === SSI_SR) return 0x0e; // TFE | RFNE | TFNF
    }
    return read0(offset);
  };
  void SSI_CTRLR0;
  return stats;
}
