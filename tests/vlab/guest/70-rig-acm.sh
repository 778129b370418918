#!/bin/bash
# tests/vlab/guest/70-rig-acm.sh — owns: the rig protocol over the lab's real
# USB serial link. `certlab sim rig` (the simulated rig's firmware, on a
# pty) is wired to the gadget's /dev/ttyGS0 with socat, so its protocol
# bytes cross cdc_acm, dummy_hcd and u_serial; `certlab run` on the host side
# opens /dev/ttyACMN (--rig serial:/dev/ttyACMN) and runs a short profile
# against the simulated DUT. The medium (sound, light) between the two
# processes is the simulated rig's socket, reached through a link named after
# the ttyACM path, as certlab finds it from the port's path. The run must
# finish (PASS or FAIL, not ERROR: at most 5 of 10 shots missed: emulation
# hiccups pass, a link that makes every shot late does not) with every
# frame intact, and the report must verify. The clock-sync bound over this
# link is reported, beside a control run straight over the pty.
set -euo pipefail
# shellcheck source=tests/vlab/lib.bash
. /vlab/lib.bash
vlab_need certlab socat jq

acm=$(vlab_ttyacm)
[ -n "$acm" ] || vlab_die "no ttyACM node for $VLAB_VID:$VLAB_PID"
scenario=/vlab/fixtures/sim/speakerphone.toml
[ -f "$scenario" ] || vlab_die "no $scenario in the payload"
cat > "$VLAB_OUT/rig-link.toml" <<'TOML'
# certlab vlab: a short profile that carries the rig protocol over the lab's
# USB CDC-ACM link. The limit is a public proxy, as in every shipped profile.
# The stimulus is short because the rig uploads it with each shot, 60 ms
# ahead, and the emulated link carries only about 150 KiB/s: a 100 ms
# stimulus (9.6 KB) arrives late there and every shot is refused.
format = 1
id = "vlab-rig-link"
version = "1.0.0"
program = "vlab"
device_class = "speakerphone"
title = "vlab: rig protocol over a real USB serial link"
description = "Audio send latency on the simulated DUT, the rig reached over /dev/ttyACM."

[[steps]]
id = "send-latency"
kind = "audio-send-latency"
title = "Audio send latency"
shots = 10
max_missed = 5
stimulus = "noise"
stimulus_ms = 20
interval_ms = 300
max_latency_ms = 200
sample_rate = 48000
timeout_s = 60

[[steps.limits]]
statistic = "median"
max = 60.0
unit = "ms"
TOML
certlab profiles check "$VLAB_OUT/rig-link.toml"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
certlab sim rig --scenario "$scenario" > "$VLAB_OUT/rig.out" 2> "$VLAB_OUT/rig.err" &
pids+=($!)
vlab_wait 30 "certlab sim rig to print its pty" '[ -s "$VLAB_OUT/rig.out" ]'
pty=$(head -n1 "$VLAB_OUT/rig.out")
[ -c "$pty" ] || vlab_die "certlab sim rig printed '$pty', not a tty"
# Control: the same run straight over the pty, without USB in between.
set +e
certlab run "$VLAB_OUT/rig-link.toml" --device sim --scenario "$scenario" --rig "serial:$pty" \
  --vendor vlab --out "$VLAB_OUT/report-pty" > "$VLAB_OUT/run-pty.out" 2>&1
code=$?
set -e
echo "control over $pty: exit $code; $(jq -c '{outcome, clock_sync, rig_link: .station.rig_link, missed: .steps[0].anomalies.missed_shots}' "$VLAB_OUT/report-pty/report.json" 2>/dev/null)"
if [ -f "$VLAB_OUT/report-pty/report.json" ]; then
  vlab_measure rig_pty_clock_sync_bound_us "$(jq -r '.clock_sync.bound_us | . * 1000 | round / 1000' "$VLAB_OUT/report-pty/report.json")" us
fi
socat "/dev/ttyGS0,raw,echo=0" "$pty,raw,echo=0" 2> "$VLAB_OUT/socat.err" &
pids+=($!)
# certlab finds a simulated rig's medium socket from the port's path.
sockdir=${TMPDIR:-/tmp}/certlab-sim-rig
mangle() { tr -c 'A-Za-z0-9\n' '_' <<< "$1"; }
vlab_wait 10 "the simulated rig's medium socket" '[ -S "$sockdir/$(mangle "$pty").sock" ]'
ln -sf "$sockdir/$(mangle "$pty").sock" "$sockdir/$(mangle "$acm").sock"
echo "rig firmware on $pty <-> socat <-> /dev/ttyGS0 <-> USB <-> $acm"

set +e
certlab run "$VLAB_OUT/rig-link.toml" --device sim --scenario "$scenario" --rig "serial:$acm" \
  --vendor vlab --out "$VLAB_OUT/report" > "$VLAB_OUT/run.out" 2>&1
code=$?
set -e
cat "$VLAB_OUT/run.out"
r=$VLAB_OUT/report/report.json
[ -f "$r" ] || vlab_die "certlab run over $acm wrote no report.json (exit $code)"
jq -c '{outcome, clock_sync, rig_link: .station.rig_link, rig: .station.rig.kind}' "$r"
missed=$(jq -r '.steps[0].anomalies.missed_shots' "$r")
vlab_measure rig_acm_missed_shots "$missed" "shots of 10"
[ "$code" != 2 ] || vlab_die "certlab run over $acm ended in $(jq -r .outcome "$r"): $(jq -r .reason "$r")"
for k in corrupt_frames lost_frames restarts; do
  [ "$(jq -r ".station.rig_link.$k" "$r")" = 0 ] || vlab_die "rig link $k = $(jq -r ".station.rig_link.$k" "$r") over $acm"
done
certlab authority init --out "$VLAB_OUT/authority" > /dev/null
certlab verify "$VLAB_OUT/report" --authority "$VLAB_OUT/authority/authority.pub" > "$VLAB_OUT/verify.out" \
  || vlab_die "certlab verify: $(cat "$VLAB_OUT/verify.out")"
vlab_ok "report verifies: $(head -n1 "$VLAB_OUT/verify.out")"
vlab_measure rig_acm_clock_sync_bound_us "$(jq -r '.clock_sync.bound_us | . * 1000 | round / 1000' "$r")" us
vlab_measure rig_acm_frames "$(jq -r '.station.rig_link.frames' "$r")" frames
vlab_measure rig_acm_send_latency_median_ms "$(jq -r '.steps[0].stats.median | . * 1000 | round / 1000' "$r")" ms
