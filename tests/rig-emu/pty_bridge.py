#!/usr/bin/env python3
"""A pseudo-terminal in front of the emulated rig's CDC-ACM port.

Node cannot open a pty without native modules, so rig-emu spawns this: it opens a pty
pair, puts the slave in raw mode, writes "PTY <slave path>" on fd 3, and copies bytes
between the master and its own stdin/stdout (stdin: from the rig, stdout: to the rig).
Bytes to the rig go out in records `length u32 | CLOCK_MONOTONIC ns u64 | bytes`, the
time this process read them from the pty: the emulator schedules them at that instant,
so a busy emulator process that reads its pipe late does not make the host's bytes
late. It keeps its own slave descriptor open, so a client that closes and reopens the
port does not hang the master up. It ends when stdin closes.
"""

import os
import pty
import select
import struct
import sys
import time
import tty


def main():
    master, slave = pty.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    with os.fdopen(3, "w") as ctl:
        ctl.write(f"PTY {os.ttyname(slave)}\n")
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    to_master = b""
    while True:
        wl = [master] if to_master else []
        r, w, _ = select.select([master, stdin], wl, [])
        if stdin in r:
            data = os.read(stdin, 65536)
            if not data:
                return 0
            to_master += data
        if master in r:
            try:
                data = os.read(master, 65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = None
            if data:
                rec = struct.pack("<IQ", len(data), time.monotonic_ns()) + data
                view = memoryview(rec)
                while view:
                    view = view[os.write(stdout, view):]
        if to_master:
            try:
                n = os.write(master, to_master)
                to_master = to_master[n:]
            except (BlockingIOError, InterruptedError):
                pass


if __name__ == "__main__":
    sys.exit(main())
