// certlab's own minimal RP2040 boot ROM for rp2040js.
//
// rp2040js ships no bootrom and Raspberry Pi's may not be copied or fetched, so the
// harness provides one that does only what the rig firmware needs, with the logic in
// JavaScript behind BKPT trampolines (rp2040js calls rp2040.onBreak(imm8) for BKPT and
// then carries on with the next instruction):
//
//   0x000  vector table: initial SP 0x20042000, reset -> 0x100
//   0x010  'M' 'u' 0x01, version 3 (as an RP2040-B2), then the 16-bit pointers to the
//          function table (0x14), data table (0x16) and rom_table_lookup (0x18)
//   0x100  reset:  BKPT #BOOT  -> flash boot, as the real ROM does on a flash boot:
//                  check boot2's CRC-32 (CRC-32/MPEG-2 over 252 bytes, the 4 after it),
//                  copy it to SRAM 0x20041f00 and enter it with LR = 0 and the stack
//                  just below it (boot2 then
//                  configures XIP and jumps to the image's vector table at 0x10000100)
//   0x110  rom_table_lookup(table, code): BKPT #LOOKUP; BX LR (walks the table in ROM)
//   0x120  faults: BKPT #FAULT; B .
//   0x200  function table {code u16, ptr u16}..., 0
//   0x280  data table (empty)
//   0x300+ one `BKPT #k; BX LR` per function below.
//
// Functions: connect_internal_flash, flash_exit_xip, flash_flush_cache,
// flash_enter_cmd_xip (rp2040js reads flash directly, so these only track the XIP
// state for the SSI model in flash.mjs), memcpy44, memcpy, memset4, memset. A lookup of
// any other code returns 0, as the real ROM does for an unknown code; the firmware
// checks the pointers before it uses them.

const BKPT = (n) => 0xbe00 | n;
const BX_LR = 0x4770;
const B_SELF = 0xe7fe;

const BK_BOOT = 0xb0;
const BK_LOOKUP = 0xb1;
const BK_FAULT = 0xbf;

const code = (s) => s.charCodeAt(0) | (s.charCodeAt(1) << 8);

const FUNCS = [
  ['IF', 'connect_internal_flash'],
  ['EX', 'flash_exit_xip'],
  ['FC', 'flash_flush_cache'],
  ['CX', 'flash_enter_cmd_xip'],
  ['C4', 'memcpy44'],
  ['MC', 'memcpy'],
  ['S4', 'memset4'],
  ['MS', 'memset'],
];

export const BOOT2_SRAM = 0x20041f00;
export const STACK_TOP = 0x20042000;

// CRC-32/MPEG-2: poly 0x04c11db7, init 0xffffffff, not reflected, no final xor.
export function crc32mpeg2(bytes) {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b << 24;
    for (let i = 0; i < 8; i++) {
      crc = crc & 0x80000000 ? ((crc << 1) ^ 0x04c11db7) >>> 0 : (crc << 1) >>> 0;
    }
  }
  return crc >>> 0;
}

export class MiniRom {
  constructor(rp2040, { log = () => {}, onFault = () => {} } = {}) {
    this.rp2040 = rp2040;
    this.log = log;
    this.onFault = onFault;
    this.calls = {};
    this.xip = true;
    const rom = new Uint8Array(16 * 1024);
    const dv = new DataView(rom.buffer);
    const h = (addr, v) => dv.setUint16(addr, v, true);
    dv.setUint32(0x00, STACK_TOP, true);
    dv.setUint32(0x04, 0x100 | 1, true);
    for (let v = 2; v < 16; v++) dv.setUint32(v * 4, 0x120 | 1, true);
    rom.set([0x4d, 0x75, 0x01, 0x03], 0x10);
    h(0x14, 0x200);
    h(0x16, 0x280);
    h(0x18, 0x110 | 1);
    h(0x100, BKPT(BK_BOOT));
    h(0x102, B_SELF);
    h(0x110, BKPT(BK_LOOKUP));
    h(0x112, BX_LR);
    h(0x120, BKPT(BK_FAULT));
    h(0x122, B_SELF);
    this.byBreak = new Map();
    FUNCS.forEach(([c, name], k) => {
      const addr = 0x300 + 4 * k;
      h(addr, BKPT(k));
      h(addr + 2, BX_LR);
      h(0x200 + 4 * k, code(c));
      h(0x202 + 4 * k, addr | 1);
      this.byBreak.set(k, name);
    });
    h(0x200 + 4 * FUNCS.length, 0);
    h(0x280, 0);
    this.image = rom;
    rp2040.loadBootrom(new Uint32Array(rom.buffer));
  }

  /** rp2040.onBreak handler; returns false for a BKPT that is not the ROM's. */
  onBreak(imm) {
    const pc = (this.rp2040.core.PC - 2) >>> 0;
    if (pc >= 0x4000) return false;
    const core = this.rp2040.core;
    const r = core.registers;
    if (imm === BK_BOOT) return this.flashBoot(), true;
    if (imm === BK_FAULT) {
      this.onFault(`fault: exception ${core.IPSR} (IPSR) entered the ROM's fault vector`);
      return true;
    }
    if (imm === BK_LOOKUP) {
      let table = r[0] >>> 0;
      const want = r[1] & 0xffff;
      let found = 0;
      for (;;) {
        const c = this.rp2040.readUint16(table);
        if (c === 0) break;
        if (c === want) {
          found = this.rp2040.readUint16(table + 2);
          break;
        }
        table += 4;
      }
      r[0] = found;
      return true;
    }
    const name = this.byBreak.get(imm);
    if (!name) return false;
    this.calls[name] = (this.calls[name] || 0) + 1;
    const m = this.rp2040;
    switch (name) {
      case 'flash_exit_xip':
        this.xip = false;
        break;
      case 'flash_enter_cmd_xip':
        this.xip = true;
        break;
      case 'memcpy44':
      case 'memcpy': {
        const [dst, src, n] = [r[0] >>> 0, r[1] >>> 0, r[2] >>> 0];
        for (let i = 0; i < n; i++) m.writeUint8(dst + i, m.readUint8(src + i));
        break;
      }
      case 'memset4':
      case 'memset': {
        const [dst, c, n] = [r[0] >>> 0, r[1] & 0xff, r[2] >>> 0];
        for (let i = 0; i < n; i++) m.writeUint8(dst + i, c);
        break;
      }
      default:
        break;
    }
    return true;
  }

  flashBoot() {
    const m = this.rp2040;
    const boot2 = m.flash.slice(0, 256);
    const want = new DataView(boot2.buffer).getUint32(252, true);
    const got = crc32mpeg2(boot2.subarray(0, 252));
    if (want !== got) {
      this.onFault(
        `boot2 checksum 0x${want.toString(16)} != 0x${got.toString(16)}: no valid image (the real ROM would enter USB boot)`,
      );
      return;
    }
    m.sram.set(boot2, BOOT2_SRAM - 0x20000000);
    const core = m.core;
    // boot2 lives in the top 256 bytes of SRAM5 and pushes onto the stack: the stack
    // must start below it, or boot2's literal pool is overwritten.
    core.SP = BOOT2_SRAM;
    core.LR = 0;
    core.PC = BOOT2_SRAM;
    this.log('rom: flash boot: boot2 checksum ok, entering boot2 at 0x20041f00');
  }
}
