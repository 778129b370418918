#!/usr/bin/env python3
"""Phase A: the echo firmware in rp2040js, through the pty, with timing figures.

Checks: USB identity; byte streams of awkward sizes come back unchanged; round-trip
times; receipt stamps bracketed by the host's send and receive times (what certlab's
clock sync assumes), the emulated-vs-wall drift they imply; the heartbeat LED's edges
at the right emulated times; emulated-vs-wall lag while idle and under an echo flood.
"""

import os
import random
import time

from rigemu import Control, Port, Results, env, quantiles

pty, ctlpath = env()
ctl = Control(ctlpath)
port = Port(pty)
res = Results()
rng = random.Random(1234)

info = ctl("stats")["usb"]["info"]
res.check("usb identity", info["vid"] == 0x1209 and info["pid"] == 0x000E
          and info["strings"].get("manufacturer") == "certlab"
          and info["strings"].get("product") == "certlab rig", f"{info}")
res.check("serial is the flash unique id", info["strings"].get("serial") == os.environ.get(
    "RIG_EMU_UNIQUE_ID", "CE271AB5E0000001"), info["strings"].get("serial", ""))

# ---- echo ---------------------------------------------------------------------------
port.drain()
ok = True
for n in [1, 2, 63, 64, 65, 127, 128, 129, 500, 1000, 4096, 20000]:
    data = bytes(rng.randrange(256) for _ in range(n))
    if n > 100:
        data = b"\x00" * 3 + data  # zeros on the link too
    port.write(data)
    back = port.read_exact(len(data), timeout=5 + len(data) / 20000)
    if back != data:
        ok = False
        res.check(f"echo {len(data)} bytes", False, f"got {len(back)} bytes back")
res.check("echo of 1..20003-byte streams", ok)

# ---- round-trip times ---------------------------------------------------------------
rtts = []
for i in range(300):
    msg = bytes([0x41 + i % 26]) * 16
    t0 = time.monotonic_ns()
    port.write(msg)
    back = port.read_exact(16, timeout=2)
    t1 = time.monotonic_ns()
    if back != msg:
        res.check("round trip", False, f"shot {i}: {back!r}")
        break
    rtts.append((t1 - t0) / 1e3)
    time.sleep(rng.uniform(0, 0.004))
res.figure("cdc_round_trip_us_16B", {k: round(v, 1) for k, v in quantiles(rtts).items()})
res.check("round trips under 150 ms (certlab's reply timeout)", rtts and max(rtts) < 150e3)

# ---- receipt stamps vs host send/receive ----------------------------------------------
stamps = []
for i in range(400):
    t0 = time.monotonic_ns()
    port.write(b"STAMP\n")
    line = port.read_until(b"\n", timeout=2)
    t1 = time.monotonic_ns()
    if not line or not line.startswith(b"STAMP "):
        res.check("stamp reply", False, repr(line))
        break
    _, rx, seen, _over = line.split()
    stamps.append((t0 / 1e3, t1 / 1e3, int(rx), int(seen)))
    time.sleep(rng.uniform(0, 0.01))
if stamps:
    # Offset o = rig - host must satisfy rig - t_recv <= o <= rig - t_send for every
    # exchange if the two clocks run at the same rate.
    lo = max(r - b for a, b, r, _ in stamps)
    hi = min(r - a for a, b, r, _ in stamps)
    res.figure("stamp_offset_window_us", {"lo": lo, "hi": hi, "width": hi - lo})
    res.check("every receipt stamp lies between host send and receive (one offset fits all)", lo <= hi,
              f"window {hi - lo:.1f} us")
    # Drift: slope of rig stamps against the exchange midpoints.
    xs = [(a + b) / 2 for a, b, _, _ in stamps]
    ys = [r for _, _, r, _ in stamps]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    resid = [y - (my + slope * (x - mx)) for x, y in zip(xs, ys)]
    res.figure("rig_vs_host_drift_ppm", round((slope - 1) * 1e6, 1))
    res.figure("rig_stamp_residual_us", {k: round(v, 1) for k, v in quantiles([abs(r) for r in resid]).items()})
    res.check("rig clock within +-500 ppm of the host's", abs(slope - 1) < 500e-6)
    res.figure("irq_stamp_to_task_us", quantiles([s - r for _, _, r, s in stamps]))

# ---- heartbeat LED edges ------------------------------------------------------------
edges = ctl("edges", pin=25)["edges"]
rises = [t for t, v in edges if v == 1]
falls = [t for t, v in edges if v == 0]
periods = [(b - a) / 1e3 for a, b in zip(rises, rises[1:])]
highs = [(f - r) / 1e3 for r in rises for f in falls if 0 < f - r < 500e6]
res.figure("gp25_period_us", quantiles(periods))
res.figure("gp25_high_us", quantiles(highs))
res.check("GP25 heartbeat: 1 s period, 100 ms high (emulated time, +-100 us)",
          len(periods) >= 3 and all(abs(p - 1e6) < 100 for p in periods)
          and all(abs(h - 1e5) < 100 for h in highs))

# ---- emulated vs wall time: idle, then under an echo flood -------------------------
def lag_window(seconds, load=None):
    t0 = ctl("now")["wallNs"]
    end = time.monotonic() + seconds
    moved = 0
    while time.monotonic() < end:
        if load:
            moved += load()
        else:
            time.sleep(0.05)
    t1 = ctl("now")["wallNs"]
    return ctl("lag", fromWallNs=t0, toWallNs=t1), moved


idle, _ = lag_window(2.0)
res.figure("lag_idle", idle)


def flood():
    data = bytes(rng.randrange(256) for _ in range(4096))
    port.write(data)
    back = port.read_exact(len(data), timeout=10)
    if back != data:
        raise SystemExit("flood echo mismatch")
    return len(data)


t = time.monotonic()
busy, moved = lag_window(3.0, flood)
res.figure("lag_echo_flood", busy)
res.figure("echo_flood_throughput_kBps", round(moved / (time.monotonic() - t) / 1e3, 1))
for name, s in [("idle", idle), ("echo flood", busy)]:
    res.check(f"emulated time keeps up with wall time ({name}): drift within +-500 ppm",
              s is not None and abs(s["driftPpm"]) < 500, f"{s and round(s['driftPpm'], 1)} ppm")

st = ctl("stats")
res.figure("emulator", {"mips": round(st["mips"], 2), "busyFraction": round(st["busyFraction"], 3),
                        "instructions": st["instructions"], "rom_calls": st["rom"], "flash": st["flash"]})
port.close()
res.finish()
