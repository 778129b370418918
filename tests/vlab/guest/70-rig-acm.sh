#!/bin/bash
# tests/vlab/guest/70-rig-acm.sh — owns: the rig protocol over the lab's real
# USB serial link. `certlab sim rig --port /dev/ttyGS0` serves the simulated
# rig's firmware on the gadget's side of the CDC-ACM function, so its
# protocol bytes cross u_serial, dummy_hcd and cdc_acm; on the host side
# `certlab probe rig --rig usb:VID:PID` finds /dev/ttyACMN by the gadget's
# USB identity and synchronises clocks over it, and `certlab run` runs a
# short profile against the simulated DUT through it. The medium (sound,
# light) between the two processes is the simulated rig's socket, named
# after the port path each side opens (ttyGS0 here, ttyACMN there), so it
# is linked under the second name. The run must finish (PASS or FAIL, not
# ERROR: at most 5 of 10 shots missed: emulation hiccups pass, a link that
# makes every shot late does not) with every frame intact, and the report
# must verify. The clock-sync bound over this link is reported, beside a
# control run straight over a pty.
set -euo pipefail
# shellcheck source=tests/vlab/lib.bash
. /vlab/lib.bash
vlab_need certlab jq

acm=$(vlab_ttyacm)
[ -n "$acm" ] || vlab_die "no ttyACM node for $VLAB_VID:$VLAB_PID"
scenario=/vlab/fixtures/sim/speakerphone.toml
[ -f "$scenario" ] || vlab_die "no $scenario in the payload"
cat > "$VLAB_OUT/rig-link.toml" <<'TOML'
# certlab vlab: a short profile that carries the rig protocol over the lab's
# USB CDC-ACM link. The limit is a public proxy, as in every shipped profile.
# The stimulus is uploaded to the rig once, before the shots (the emulated
# link carries only about 150 KiB/s, and a shot is scheduled 60 ms ahead).
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
stimulus_ms = 100
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
# The rig's firmware on the gadget's end of the link.
kill "${pids[0]}" 2>/dev/null || true
certlab sim rig --scenario "$scenario" --port /dev/ttyGS0 > "$VLAB_OUT/rig-gs.out" 2> "$VLAB_OUT/rig-gs.err" &
pids+=($!)
vlab_wait 30 "certlab sim rig --port /dev/ttyGS0 to start" '[ -s "$VLAB_OUT/rig-gs.out" ]'
[ "$(head -n1 "$VLAB_OUT/rig-gs.out")" = /dev/ttyGS0 ] || vlab_die "certlab sim rig --port printed '$(head -n1 "$VLAB_OUT/rig-gs.out")': $(cat "$VLAB_OUT/rig-gs.err")"
# certlab finds a simulated rig's medium socket from the port's path.
sockdir=${TMPDIR:-/tmp}/certlab-sim-rig
mangle() { tr -c 'A-Za-z0-9\n' '_' <<< "$1"; }
vlab_wait 10 "the simulated rig's medium socket" '[ -S "$sockdir/$(mangle /dev/ttyGS0).sock" ]'
ln -sf "$sockdir/$(mangle /dev/ttyGS0).sock" "$sockdir/$(mangle "$acm").sock"
echo "rig firmware on /dev/ttyGS0 <-> USB <-> $acm"

# The rig by its USB identity: handshake and clock sync over the link.
certlab probe rig --rig "usb:$VLAB_VID:$VLAB_PID" --seconds 5 --json > "$VLAB_OUT/probe-rig.json" 2> "$VLAB_OUT/probe-rig.err" \
  || vlab_die "certlab probe rig --rig usb:$VLAB_VID:$VLAB_PID failed: $(cat "$VLAB_OUT/probe-rig.err")"
pr=$VLAB_OUT/probe-rig.json
jq -c '{port, kind: .rig.kind, exchanges, rtt_us_min, rtt_us_median, rtt_us_max, offset_bound_us, drift_ppm, drift_bound_ppm, link}' "$pr"
[ "$(jq -r .port "$pr")" = "$acm" ] || vlab_die "usb:$VLAB_VID:$VLAB_PID resolved to $(jq -r .port "$pr"), not $acm"
for k in corrupt_frames lost_frames restarts; do
  [ "$(jq -r ".link.$k" "$pr")" = 0 ] || vlab_die "probe rig: link $k = $(jq -r ".link.$k" "$pr")"
done
jq -e '.exchanges >= 20 and .offset_bound_us != null' "$pr" > /dev/null || vlab_die "probe rig: too few exchanges or no offset bound"
vlab_ok "rig found as $acm by USB identity; $(jq -r .exchanges "$pr") sync exchanges, offset bound $(jq -r '.offset_bound_us | . * 10 | round / 10' "$pr") us"
vlab_measure rig_acm_rtt_us "min=$(jq -r '.rtt_us_min | round' "$pr"),median=$(jq -r '.rtt_us_median | round' "$pr"),max=$(jq -r '.rtt_us_max | round' "$pr")" us
vlab_measure rig_acm_probe_offset_bound_us "$(jq -r '.offset_bound_us | . * 1000 | round / 1000' "$pr")" us
vlab_measure rig_acm_probe_drift_ppm "$(jq -r '(.drift_ppm // 0) | . * 100 | round / 100' "$pr") +- $(jq -r '(.drift_bound_ppm // 0) | . * 100 | round / 100' "$pr")" ppm

set +e
certlab run "$VLAB_OUT/rig-link.toml" --device sim --scenario "$scenario" --rig "usb:$VLAB_VID:$VLAB_PID" \
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
