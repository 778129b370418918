#!/bin/bash
# tests/vlab/guest/20-hid.sh — owns: the HID path through the real usbhid
# and f_hid drivers. The report descriptor reads back from the host's sysfs
# byte for byte; LED output reports written to the host's /dev/hidrawN reach
# the gadget's /dev/hidg0 and the responder's answer (after its known delay)
# comes back on /dev/hidrawN with the right content, timed on CLOCK_MONOTONIC
# and split into OUT leg / gadget delay / IN leg; hook-switch presses the
# responder sends on request arrive, timed from the gadget's write. Then
# certlab's own hidraw backend (`certlab probe hid`, by the gadget's USB
# identity): the node it picks, the usages it decodes from the report
# descriptor, the LED output report it encodes, and the answer it reads and
# decodes, timed from its write, no sooner than the responder's delay.
set -euo pipefail
# shellcheck source=tests/vlab/lib.bash
. /vlab/lib.bash
vlab_need vlab_gadget cmp certlab jq

hr=$(vlab_hidraw)
[ -n "$hr" ] || vlab_die "no hidraw node for $VLAB_VID:$VLAB_PID"
[ -c "$hr" ] || vlab_die "$hr is not a character device"
rd=$(ls /sys/class/hidraw/"$(basename "$hr")"/device/report_descriptor)
cmp "$rd" /sys/kernel/config/usb_gadget/vlab/functions/hid.usb0/report_desc \
  || vlab_die "the host's report descriptor differs from the gadget's"
vlab_ok "report descriptor read back identically ($(stat -c %s "$rd") bytes) via $hr"

vlab_gadget hid-rtt --hidraw "$hr" --delay-ms "$VLAB_HID_DELAY_MS" --count 40 --slack-ms 250 \
  --log "$VLAB_GADGET_LOG" | tee "$VLAB_OUT/rtt.txt"
vlab_measures_from "$VLAB_OUT/rtt.txt"
vlab_measure hid_responder_delay_ms "$VLAB_HID_DELAY_MS" ms

vlab_gadget hid-press --hidraw "$hr" --control "$VLAB_CONTROL" --log "$VLAB_GADGET_LOG" --count 15 --max-ms 250 \
  | tee "$VLAB_OUT/press.txt"
vlab_measures_from "$VLAB_OUT/press.txt"

# certlab's hidraw backend. Each probe is a new process whose decoder starts
# from all-zero inputs, so each LED set to 1 must come back as exactly one
# change: the off-hook LED as hook-switch = 1, the mute LED as phone-mute = 1.
spec=usb:$VLAB_VID:$VLAB_PID
N=20
: > "$VLAB_OUT/certlab-rtt.txt"
: > "$VLAB_OUT/certlab-write.txt"
for i in $(seq 1 $N); do
  if (( i % 2 )); then led=led-off-hook want=hook-switch; else led=led-mute want=phone-mute; fi
  out=$VLAB_OUT/probe-hid-$i.json
  certlab probe hid --device "$spec" --set "$led=1" --listen-ms 600 --json > "$out" 2> "$VLAB_OUT/probe-hid.err" \
    || vlab_die "certlab probe hid --device $spec failed: $(cat "$VLAB_OUT/probe-hid.err")"
  if (( i == 1 )); then
    [ "$(jq -r .node "$out")" = "$hr" ] || vlab_die "certlab picked $(jq -r .node "$out") for $spec, not $hr"
    for u in 0x0b:0x20 0x0b:0x2f 0x08:0x09 0x08:0x17; do
      jq -e --arg u "$u" '.usages | index($u) != null' "$out" > /dev/null \
        || vlab_die "certlab's decoder lacks usage $u: $(jq -c .usages "$out")"
    done
    vlab_ok "certlab opened $hr for $spec; usages $(jq -r '.usages | join(" ")' "$out")"
  fi
  events=$(jq -c '[.events[] | {name, value, t_ms}]' "$out")
  [ "$(jq length <<< "$events")" = 1 ] || vlab_die "probe $i ($led=1): expected one input change, got $events"
  [ "$(jq -r '.[0].name' <<< "$events")" = "$want" ] && [ "$(jq -r '.[0].value' <<< "$events")" = 1 ] \
    || vlab_die "probe $i ($led=1): expected $want = 1, got $events"
  for k in undecodable_reports dropped_events; do
    [ "$(jq -r ".$k" "$out")" = 0 ] || vlab_die "probe $i: $k = $(jq -r ".$k" "$out")"
  done
  t=$(jq -r '.[0].t_ms' <<< "$events")
  awk -v t="$t" -v d="$VLAB_HID_DELAY_MS" 'BEGIN { exit !(t >= d) }' \
    || vlab_die "probe $i: the answer came $t ms after the write was issued, sooner than the responder's $VLAB_HID_DELAY_MS ms delay"
  echo "$t" >> "$VLAB_OUT/certlab-rtt.txt"
  jq -r .write_ms "$out" >> "$VLAB_OUT/certlab-write.txt"
done
st=$(vlab_stats < "$VLAB_OUT/certlab-rtt.txt")
echo "certlab probe hid, LED write to decoded answer (ms): $st"
med=$(vlab_stat median "$st")
awk -v m="$med" -v d="$VLAB_HID_DELAY_MS" 'BEGIN { exit !(m <= d + 200) }' \
  || vlab_die "certlab's median LED-to-answer time $med ms is over the delay $VLAB_HID_DELAY_MS ms + 200 ms"
vlab_ok "$N LED writes answered and decoded, every one after the responder's delay"
vlab_measure certlab_hid_rtt_median_ms "$med" ms
vlab_measure certlab_hid_rtt_spread_ms "min=$(vlab_stat min "$st"),p95=$(vlab_stat p95 "$st"),max=$(vlab_stat max "$st"),sd=$(vlab_stat sd "$st")" ms
wst=$(vlab_stats < "$VLAB_OUT/certlab-write.txt")
echo "certlab probe hid, the output report's write() call (ms): $wst"
vlab_measure certlab_hid_write_call_ms "median=$(vlab_stat median "$wst"),max=$(vlab_stat max "$wst")" ms
