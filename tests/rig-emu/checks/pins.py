"""Reading the speaker's PWM pin (GP16) from the edges rig-emu recorded.

The rig's carrier runs at 96 kHz (1250 cycles of 120 MHz, 10416.7 ns), and every
carrier period starts with a rising edge at the counter's wrap (every level the
firmware uses is above 0). A playback starts by writing the slice's counter: the
carrier's phase jumps, and from then on the rising edges lie on a new grid. The
firmware's design says the first stimulus level drives the period that begins at the
second wrap after that write; the checks find both from the pin alone:

* the old grid from the rises well before the scheduled time, the new grid from the
  rises well after it (each a phase modulo the carrier period);
* W1, the first rise on the new grid after the last rise on the old one, is the first
  wrap after the write; W2 = W1 + one period is when the first level reaches the pin.

When the write left the phase where it was (the two grids agree within 20 ns), the
pin shows no reset at all and `first_level` says so (None) instead of guessing. That
is rare for starts at random times (about one in 250) but the rule for a host that
schedules a series at multiples of 250 ms, which is 24 000 carrier periods: then
`first_level_of` finds the start from the levels themselves, given the stimulus.
"""

PERIOD_NS = 1e9 / 96000
TOLERANCE_NS = 20.0


def rises(edges):
    return [t for t, v in edges if v == 1]


def on_grid(t, ref, period=PERIOD_NS, tol=TOLERANCE_NS):
    x = (t - ref) / period
    return abs(x - round(x)) * period <= tol


def periods_from(edges, t0, n):
    """Duty and length of the n carrier periods (rise to rise) starting at the rise t0."""
    out = []
    rise = fall = None
    for t, v in edges:
        if t < t0 - 1:
            continue
        if v == 1:
            if rise is not None and fall is not None and fall > rise:
                out.append(((fall - rise) / (t - rise), t - rise, rise))
                if len(out) == n:
                    break
            rise = t
        elif rise is not None:
            fall = t
    return out


def first_level(edges, at_ns, period=PERIOD_NS):
    """(W2, W1) in emulated ns for a playback scheduled at `at_ns`, or (None, why)."""
    r = rises(edges)
    before = [t for t in r if at_ns - 400e3 <= t <= at_ns - 40e3]
    after = [t for t in r if at_ns + 15e3 <= t <= at_ns + 400e3]
    if len(before) < 10 or len(after) < 10:
        return None, f"too few carrier periods around the start ({len(before)} before, {len(after)} after)"
    ref0, ref1 = before[0], after[0]
    if not all(on_grid(t, ref0, period) for t in before) or not all(on_grid(t, ref1, period) for t in after):
        return None, "the carrier is not periodic around the start"
    if on_grid(ref1, ref0, period):
        return None, "the counter write left the carrier's phase where it was: no reset visible on the pin"
    window = [t for t in r if at_ns - 40e3 < t < at_ns + 15e3]
    last_old = max([t for t in before + window if on_grid(t, ref0, period) and t < ref1], default=None)
    w1 = min([t for t in window + after if on_grid(t, ref1, period) and t > last_old], default=None)
    if last_old is None or w1 is None:
        return None, "no wrap on the new grid after the old one"
    return w1 + period, w1


LEVELS = 1250


def level(s):
    return ((s + 32768) * LEVELS) >> 16


def first_level_of(edges, at_ns, stimulus, search_us=60, period=PERIOD_NS):
    """(W2, None) for a playback of `stimulus` (i16 samples) scheduled at `at_ns`, found
    on the pin as the one carrier period from which the duties are the stimulus'
    levels, each for two periods, to its end; or (None, why). It checks every level
    on the way, so a start that fits is the playback, whatever the carrier's phase did."""
    r = rises(edges)
    first = next((t for t in r if t >= at_ns - search_us * 1000), None)
    if first is None:
        return None, "no carrier period near the scheduled time"
    n = len(stimulus)
    per = periods_from(edges, first, 2 * n + 4 * search_us)
    want = [level(x) / LEVELS for x in stimulus]
    tol = 0.5 / LEVELS
    fits = []
    for k0 in range(len(per)):
        if per[k0][2] > at_ns + search_us * 1000:
            break
        if k0 + 2 * n > len(per):
            break
        if all(abs(per[k0 + 2 * i][0] - w) < tol and abs(per[k0 + 2 * i + 1][0] - w) < tol
               and abs(per[k0 + 2 * i][1] - period) < 1 and abs(per[k0 + 2 * i + 1][1] - period) < 1
               for i, w in enumerate(want)):
            fits.append(per[k0][2])
    if len(fits) != 1:
        return None, f"{len(fits)} carrier periods start the stimulus' levels near the scheduled time"
    return fits[0], None
