"""Helpers for rig-emu checks: the pty as a raw serial port, the control socket, results."""

import json
import os
import select
import socket
import sys
import termios
import time
import tty


class Port:
    """The emulated rig's pseudo-terminal, opened like /dev/ttyACM0 (raw, 8N1)."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        self.buf = bytearray()

    def write(self, data):
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
                view = view[n:]
            except BlockingIOError:
                select.select([], [self.fd], [], 1.0)

    def read_some(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return b""
        try:
            return os.read(self.fd, 65536)
        except BlockingIOError:
            return b""

    def read_exact(self, n, timeout):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.buf += self.read_some(left)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, delim, timeout):
        deadline = time.monotonic() + timeout
        while delim not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.buf += self.read_some(left)
        i = self.buf.index(delim) + len(delim)
        out = bytes(self.buf[:i])
        del self.buf[:i]
        return out

    def drain(self, quiet=0.05):
        while self.read_some(quiet):
            pass
        self.buf.clear()

    def close(self):
        os.close(self.fd)


class Control:
    """rig-emu's JSON-lines control socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rwb")

    def __call__(self, cmd, **kw):
        kw["cmd"] = cmd
        self.f.write(json.dumps(kw).encode() + b"\n")
        self.f.flush()
        reply = json.loads(self.f.readline())
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"control {cmd}: {reply['error']}")
        return reply


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.figures = {}

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name} {detail}".rstrip(), flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name} {detail}".rstrip(), flush=True)
        return ok

    def figure(self, name, value):
        self.figures[name] = value
        print(f"     {name}: {json.dumps(value)}", flush=True)

    def finish(self):
        print(f"rig-emu: {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(0 if self.failed == 0 else 1)


def quantiles(xs, ps=(0.0, 0.5, 0.9, 0.99, 1.0)):
    s = sorted(xs)
    if not s:
        return {}
    return {f"p{int(p * 100)}": s[min(len(s) - 1, int(p * len(s)))] for p in ps}


def env():
    pty = os.environ.get("RIG_EMU_PTY")
    ctl = os.environ.get("RIG_EMU_CONTROL")
    if not pty or not ctl:
        print("run me through rig-emu --exec (RIG_EMU_PTY and RIG_EMU_CONTROL unset)", file=sys.stderr)
        sys.exit(3)
    return pty, ctl
