#!/usr/bin/env python3
"""certlab's own host code against the emulated rig: `certlab probe rig --rig serial:PTY`.

Checks that it shakes hands (identity from HelloReply), synchronises clocks with a finite
offset bound and a drift within certlab's +-500 ppm assumption, and saw a clean link.
CERTLAB names the binary."""

import json
import os
import subprocess

from rigemu import Results, env

pty, _ = env()
res = Results()
certlab = os.environ.get("CERTLAB", "certlab")
p = subprocess.run([certlab, "probe", "rig", "--rig", f"serial:{pty}", "--seconds", "5", "--json"],
                   capture_output=True, text=True, timeout=60)
res.check("certlab probe rig --rig serial:PTY exits 0", p.returncode == 0, p.stderr.strip()[-500:])
try:
    o = json.loads(p.stdout)
except json.JSONDecodeError:
    o = None
res.check("it prints its JSON", o is not None, p.stdout[-300:])
if o:
    r = o["rig"]
    res.check("rig identity: kind, serial (flash unique id), firmware, protocol 1",
              r["kind"] == "certlab-rig-rp2040" and r["serial"] == "CE271AB5E0000001" and r["protocol"] == 1
              and r["firmware"] and r["mic_sample_rates"] == [48000], f"{r}")
    res.figure("certlab_exchanges", o["exchanges"])
    res.figure("certlab_rtt_us", {"min": o["rtt_us_min"], "median": o["rtt_us_median"], "max": o["rtt_us_max"]})
    res.figure("certlab_offset_bound_us", o["offset_bound_us"])
    res.figure("certlab_drift_ppm", [o["drift_ppm"], o["drift_bound_ppm"]])
    res.check("clock sync converged (an offset bound exists)", o["offset_bound_us"] is not None)
    res.check("drift within +-500 ppm", o["drift_ppm"] is not None and abs(o["drift_ppm"]) < 500)
    link = o["link"]
    res.check("clean link: no corrupt or lost frames, no restart",
              link["corrupt_frames"] == 0 and link["lost_frames"] == 0 and link["restarts"] == 0, f"{link}")
res.finish()
