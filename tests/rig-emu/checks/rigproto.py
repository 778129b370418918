"""A small, independent host side of rig protocol v1 (docs/rig-protocol.md), for the
checks: COBS framing, CRC-32/ISO-HDLC (zlib's), the messages the checks use, and a reader
thread that stamps every frame with the host's monotonic clock on arrival."""

import struct
import threading
import time
import zlib

HELLO, SYNC, STIM, PLAY, LED, PRESS, LOOP, MIC, PHOTO = range(1, 10)
HELLO_REPLY, SYNC_REPLY, ACK, ERROR, ONSET, BLOCK, HEARTBEAT = range(0x81, 0x88)
S_MIC, S_SPEAKER, S_PHOTO, S_LED, S_BUTTON = range(5)


def cobs_encode(data):
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data):
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0 or i + code > n:
            return None
        out += data[i + 1:i + code]
        i += code
        if code < 255 and i < n:
            out.append(0)
    return bytes(out)


def frame(mtype, seq, payload=b"", version=1):
    raw = struct.pack("<BBH", version, mtype, seq & 0xFFFF) + payload
    raw += struct.pack("<I", zlib.crc32(raw) & 0xFFFFFFFF)
    return cobs_encode(raw) + b"\x00"


def decode(enc):
    raw = cobs_decode(enc)
    if raw is None or len(raw) < 8:
        return None
    if struct.unpack("<I", raw[-4:])[0] != zlib.crc32(raw[:-4]) & 0xFFFFFFFF:
        return None
    version, mtype, seq = struct.unpack("<BBH", raw[:4])
    return version, mtype, seq, raw[4:-4]


def parse(mtype, p):
    """The fields of a rig->host message as a dict."""
    if mtype == HELLO_REPLY:
        sensors, loop_us, cap, n = struct.unpack_from("<BIIB", p, 0)
        off = 10
        rates = list(struct.unpack_from(f"<{n}I", p, off))
        off += 4 * n
        strs = []
        for _ in range(3):
            ln = p[off]
            strs.append(p[off + 1:off + 1 + ln].decode())
            off += 1 + ln
        return dict(sensors=sensors, loopback_delay_us=loop_us, stimulus_capacity=cap, rates=rates,
                    kind=strs[0], firmware=strs[1], serial=strs[2])
    if mtype == SYNC_REPLY:
        cookie, rig = struct.unpack_from("<IQ", p)
        return dict(cookie=cookie, rig=rig)
    if mtype == ACK:
        return dict(seq=struct.unpack_from("<H", p)[0])
    if mtype == ERROR:
        seq, code, ln = struct.unpack_from("<HHB", p)
        return dict(seq=seq, code=code, message=p[5:5 + ln].decode(errors="replace"))
    if mtype == ONSET:
        sensor, at = struct.unpack_from("<BQ", p)
        return dict(sensor=sensor, at=at)
    if mtype == BLOCK:
        stream, bseq, t_first, n = struct.unpack_from("<BIQH", p)
        samples = struct.unpack_from(f"<{n}h", p, 15)
        return dict(stream=stream, seq=bseq, t_first=t_first, samples=samples)
    if mtype == HEARTBEAT:
        return dict(now=struct.unpack_from("<Q", p)[0])
    return dict(raw=p)


class Rig:
    """Frames in both directions over a `rigemu.Port`, with a reader thread."""

    def __init__(self, port):
        self.port = port
        self.seq = 0
        self.cookie = 0
        self.lock = threading.Condition()
        self.frames = []  # (host_ns, version, type, seq, fields)
        self.bad = 0
        self.stop = False
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()

    def _reader(self):
        buf = bytearray()
        while not self.stop:
            data = self.port.read_some(0.05)
            if not data:
                continue
            now = time.monotonic_ns()
            buf += data
            while True:
                i = buf.find(b"\x00")
                if i < 0:
                    break
                enc = bytes(buf[:i])
                del buf[:i + 1]
                if not enc:
                    continue
                d = decode(enc)
                with self.lock:
                    if d is None:
                        self.bad += 1
                    else:
                        v, t, s, p = d
                        try:
                            fields = parse(t, p)
                        except (struct.error, IndexError, UnicodeDecodeError):
                            fields = None
                            self.bad += 1
                        self.frames.append((now, v, t, s, fields))
                    self.lock.notify_all()

    def send_raw(self, data):
        self.port.write(data)

    def send(self, mtype, payload=b"", seq=None, version=1):
        if seq is None:
            seq = self.seq
            self.seq = (self.seq + 1) & 0xFFFF
        f = frame(mtype, seq, payload, version)
        t = time.monotonic_ns()
        self.port.write(f)
        return seq, t, f

    def wait(self, pred, timeout=2.0, since=0):
        """The first frame (after index `since`) for which pred(type, fields) holds."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for i in range(since, len(self.frames)):
                    fr = self.frames[i]
                    if fr[4] is not None and pred(fr[2], fr[4]):
                        return fr
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(left)

    def mark(self):
        with self.lock:
            return len(self.frames)

    def collect(self, since, mtype):
        with self.lock:
            return [f for f in self.frames[since:] if f[2] == mtype and f[4] is not None]

    def reply_to(self, seq, since, timeout=2.0):
        return self.wait(lambda t, f: t in (ACK, ERROR) and f["seq"] == seq, timeout, since)

    def hello(self, timeout=2.0):
        m = self.mark()
        self.send_raw(b"\x00")
        self.send(HELLO)
        return self.wait(lambda t, f: t == HELLO_REPLY, timeout, m)

    def sync(self, timeout=1.0):
        self.cookie += 1
        c = self.cookie
        m = self.mark()
        _, t0, _ = self.send(SYNC, struct.pack("<I", c))
        fr = self.wait(lambda t, f: t == SYNC_REPLY and f["cookie"] == c, timeout, m)
        if fr is None:
            return None
        return (t0 / 1e3, fr[0] / 1e3, fr[4]["rig"])

    def command(self, mtype, payload, timeout=2.0):
        m = self.mark()
        seq, _, _ = self.send(mtype, payload)
        return self.reply_to(seq, m, timeout)

    def close(self):
        self.stop = True
        self.t.join(1)


def stim_chunk(sid, total, offset, samples):
    return struct.pack("<HIIH", sid, total, offset, len(samples)) + struct.pack(f"<{len(samples)}h", *samples)


class Sync:
    """Offset window (rig µs - host µs) from exchanges, assuming equal rates."""

    def __init__(self):
        self.x = []

    def add(self, ex):
        if ex:
            self.x.append(ex)

    def window(self, last=None):
        x = self.x[-last:] if last else self.x
        lo = max(r - b for a, b, r in x)
        hi = min(r - a for a, b, r in x)
        return lo, hi

    def rig_now(self, last=30):
        lo, hi = self.window(last)
        return time.monotonic_ns() / 1e3 + (lo + hi) / 2
