#!/bin/bash
# tests/vlab/guest/20-hid.sh — owns: the HID path through the real usbhid
# and f_hid drivers. The report descriptor reads back from the host's sysfs
# byte for byte; LED output reports written to the host's /dev/hidrawN reach
# the gadget's /dev/hidg0 and the responder's answer (after its known delay)
# comes back on /dev/hidrawN with the right content, timed on CLOCK_MONOTONIC
# and split into OUT leg / gadget delay / IN leg; hook-switch presses the
# responder sends on request arrive, timed from the gadget's write.
set -euo pipefail
# shellcheck source=tests/vlab/lib.bash
. /vlab/lib.bash
vlab_need vlab_gadget cmp

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
