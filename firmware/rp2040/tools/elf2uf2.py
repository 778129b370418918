#!/usr/bin/env python3
"""Convert the rig firmware ELF into a UF2 file for the RP2040's USB mass-storage bootloader.

UF2 (Microsoft, github.com/microsoft/uf2): a sequence of 512-byte blocks, each carrying
up to 476 bytes of payload for one target address. This writer emits what the RP2040
bootrom accepts: 256-byte payloads at 256-byte aligned flash addresses, the
"familyID present" flag and the RP2040 family id. The payload is every PT_LOAD segment's
file image at its *physical* (load) address, so initialised data lands in flash where
cortex-m-rt's startup code copies it from.

Usage: elf2uf2.py FIRMWARE.elf OUT.uf2
"""

import struct
import sys

UF2_MAGIC_START0 = 0x0A324655
UF2_MAGIC_START1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_FAMILY_ID_PRESENT = 0x00002000
RP2040_FAMILY_ID = 0xE48BFF56
PAGE = 256
FLASH_START = 0x10000000
FLASH_END = 0x11000000  # 16 MiB of XIP address space


def load_segments(elf: bytes):
    if elf[:4] != b"\x7fELF" or elf[4] != 1 or elf[5] != 1:
        raise ValueError("not a 32-bit little-endian ELF file")
    (e_type, e_machine, _ver, _entry, e_phoff, _shoff, _flags, _ehsize,
     e_phentsize, e_phnum) = struct.unpack_from("<HHIIIIIHHH", elf, 16)
    if e_machine != 40:
        raise ValueError("not an ARM ELF file")
    if e_type != 2:
        raise ValueError("not an executable ELF file")
    segments = []
    for i in range(e_phnum):
        (p_type, p_offset, _vaddr, p_paddr, p_filesz, _memsz, _flags,
         _align) = struct.unpack_from("<IIIIIIII", elf, e_phoff + i * e_phentsize)
        if p_type != 1 or p_filesz == 0:  # PT_LOAD with bytes in the file
            continue
        if not (FLASH_START <= p_paddr and p_paddr + p_filesz <= FLASH_END):
            raise ValueError(f"segment at 0x{p_paddr:08x} (+{p_filesz}) is not in flash")
        segments.append((p_paddr, elf[p_offset:p_offset + p_filesz]))
    if not segments:
        raise ValueError("no loadable segments")
    return segments


def pages(segments):
    """The image as 256-byte flash pages {address: bytearray}, gaps filled with 0."""
    out = {}
    for addr, data in segments:
        for i, b in enumerate(data):
            a = addr + i
            page = out.setdefault(a & ~(PAGE - 1), bytearray(PAGE))
            page[a & (PAGE - 1)] = b
    return out


def uf2(segments) -> bytes:
    image = pages(segments)
    addrs = sorted(image)
    blocks = []
    for n, addr in enumerate(addrs):
        header = struct.pack("<IIIIIIII", UF2_MAGIC_START0, UF2_MAGIC_START1,
                             UF2_FLAG_FAMILY_ID_PRESENT, addr, PAGE, n, len(addrs),
                             RP2040_FAMILY_ID)
        payload = bytes(image[addr]) + bytes(476 - PAGE)
        blocks.append(header + payload + struct.pack("<I", UF2_MAGIC_END))
    return b"".join(blocks)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 3
    with open(argv[1], "rb") as f:
        elf = f.read()
    try:
        data = uf2(load_segments(elf))
    except ValueError as e:
        print(f"elf2uf2: {argv[1]}: {e}", file=sys.stderr)
        return 1
    with open(argv[2], "wb") as f:
        f.write(data)
    print(f"elf2uf2: {argv[2]}: {len(data) // 512} blocks, {len(data) // 512 * PAGE} bytes of flash")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
