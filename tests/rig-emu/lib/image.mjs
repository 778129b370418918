// Loads a firmware image into rp2040js's flash: a UF2 file (what a lab drags onto the
// Pico's boot drive) or the ELF it was made from (PT_LOAD segments at their load
// addresses). The bytes go into flash unchanged; nothing is patched.

const FLASH_START = 0x10000000;
const RP2040_FAMILY = 0xe48bff56;

export function loadUf2(flash, data) {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length % 512 !== 0 || data.length === 0) throw new Error('UF2 size is not a multiple of 512');
  let blocks = 0;
  let bytes = 0;
  for (let off = 0; off < data.length; off += 512) {
    const m0 = dv.getUint32(off, true);
    const m1 = dv.getUint32(off + 4, true);
    const mEnd = dv.getUint32(off + 508, true);
    if (m0 !== 0x0a324655 || m1 !== 0x9e5d5157 || mEnd !== 0x0ab16f30) throw new Error(`UF2 block ${off / 512}: bad magic`);
    const flags = dv.getUint32(off + 8, true);
    const addr = dv.getUint32(off + 12, true);
    const size = dv.getUint32(off + 16, true);
    const family = dv.getUint32(off + 28, true);
    if (flags & 1) continue; // not for the main flash
    if (flags & 0x2000 && family !== RP2040_FAMILY) throw new Error(`UF2 block ${off / 512}: family 0x${family.toString(16)} is not RP2040`);
    if (size > 476 || addr < FLASH_START || addr + size > FLASH_START + flash.length) {
      throw new Error(`UF2 block ${off / 512}: 0x${addr.toString(16)}+${size} outside flash`);
    }
    flash.set(data.subarray(off + 32, off + 32 + size), addr - FLASH_START);
    blocks++;
    bytes += size;
  }
  return { blocks, bytes };
}

export function loadElf(flash, data) {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (dv.getUint32(0, false) !== 0x7f454c46 || data[4] !== 1 || data[5] !== 1) throw new Error('not a 32-bit little-endian ELF');
  const phoff = dv.getUint32(28, true);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);
  let bytes = 0;
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = dv.getUint32(p, true);
    const offset = dv.getUint32(p + 4, true);
    const paddr = dv.getUint32(p + 12, true);
    const filesz = dv.getUint32(p + 16, true);
    if (type !== 1 || filesz === 0) continue;
    if (paddr < FLASH_START || paddr + filesz > FLASH_START + flash.length) throw new Error(`segment at 0x${paddr.toString(16)} outside flash`);
    flash.set(data.subarray(offset, offset + filesz), paddr - FLASH_START);
    bytes += filesz;
  }
  return { blocks: 0, bytes };
}

export function loadImage(flash, data, name) {
  if (data.length >= 4 && data[0] === 0x7f && data[1] === 0x45) return { kind: 'elf', ...loadElf(flash, data) };
  if (name.endsWith('.uf2') || (data.length >= 4 && data[0] === 0x55 && data[1] === 0x46)) return { kind: 'uf2', ...loadUf2(flash, data) };
  throw new Error(`${name}: neither UF2 nor ELF`);
}
