#!/bin/bash
# tests/vlab/guest/10-devices.sh — owns: `certlab devices` against the real
# sysfs of a real enumerated USB device (the lab's gadget). It finds the
# gadget by VID:PID, its identity matches what tests/vlab/gadget configured,
# its descriptors parse without errors (the digest is the sysfs file's),
# the HID telephony usages appear by name, the CDC-ACM interfaces are
# classed serial and its tty is listed; a --snapshot replays the same JSON.
set -euo pipefail
# shellcheck source=tests/vlab/lib.bash
. /vlab/lib.bash
vlab_need certlab jq sha256sum

dir=$(vlab_usb_dir)
[ -n "$dir" ] || vlab_die "the gadget $VLAB_VID:$VLAB_PID is not in /sys/bus/usb/devices"
name=$(basename "$dir")
certlab devices --json > "$VLAB_OUT/devices.json" 2> "$VLAB_OUT/devices.err" \
  || vlab_die "certlab devices --json failed: $(cat "$VLAB_OUT/devices.err")"
j=$VLAB_OUT/devices.json
[ "$(jq -r .usb_source "$j")" = sysfs ] || vlab_die "usb_source is $(jq -r .usb_source "$j"), expected sysfs"
if jq -e '.notes[] | select(test("could not be loaded"))' "$j" > /dev/null; then
  vlab_die "certlab could not load its shipped profiles: $(jq -c .notes "$j")"
fi
dev=$(jq -c --arg v "$VLAB_VID" --arg p "$VLAB_PID" '[.usb[] | select(.vid == $v and .pid == $p)]' "$j")
[ "$(jq length <<< "$dev")" = 1 ] || vlab_die "expected one $VLAB_VID:$VLAB_PID in certlab devices, got: $dev"
dev=$(jq -c '.[0]' <<< "$dev")
echo "certlab sees: $(jq -c '{name, vid, pid, serial, firmware, manufacturer, product, classes, hid, errors, warnings}' <<< "$dev")"

check() { # check JQ_EXPR EXPECTED WHAT
  local got
  got=$(jq -r "$1" <<< "$dev")
  [ "$got" = "$2" ] || vlab_die "$3: certlab says '$got', expected '$2'"
  vlab_ok "$3 = $got"
}
check .name "$name" "sysfs name"
check .serial "$VLAB_SERIAL" "serial"
check .manufacturer "$VLAB_MANUFACTURER" "manufacturer"
check .product "$VLAB_PRODUCT" "product"
check .firmware "1.00" "firmware (bcdDevice 0x$VLAB_BCD)"
check '.errors | length' 0 "descriptor/report-descriptor parse errors"
check .descriptors_sha256 "$(sha256sum < "$dir/descriptors" | cut -d' ' -f1)" "descriptors digest (of $dir/descriptors)"
check '.classes | join(" ")' "hid serial" "classes (HID, and CDC-ACM as serial)"
for u in hook-switch phone-mute led-mute led-off-hook; do
  check "[.hid.named[] | select(. == \"$u\")] | length" 1 "HID usage $u"
done
check '.hid.usages | join(" ")' "0x08:0x09 0x08:0x17 0x0b:0x01 0x0b:0x20 0x0b:0x2f" "all HID usages"
warnings=$(jq -r '.warnings | join("; ")' <<< "$dev")
[ -z "$warnings" ] || echo "note: certlab warnings: $warnings"

# The human listing classes the CDC-ACM interfaces (communications + data) as serial.
certlab devices > "$VLAB_OUT/devices.txt"
line=$(awk -v n="$name" '$1 == n { f = 1 } f && /interfaces:/ { print; exit }' "$VLAB_OUT/devices.txt")
echo "listing: $line"
nserial=$(grep -o 'communications (serial)' <<< "$line" | wc -l)
[ "$nserial" = 2 ] || vlab_die "expected the 2 CDC-ACM interfaces classed 'communications (serial)', got $nserial in: $line"
grep -q 'HID' <<< "$line" || vlab_die "no HID interface in: $line"
vlab_ok "CDC-ACM interfaces classed serial, HID interface listed"

acm=$(vlab_ttyacm)
kind=$(jq -r --arg p "$acm" '.serial[] | select(.path == $p) | .kind' "$j")
[ -n "$kind" ] || vlab_die "certlab's serial ports do not list $acm: $(jq -c .serial "$j")"
[ "$kind" = usb ] || vlab_die "$acm is listed as kind '$kind', expected usb"
vlab_ok "serial port $acm listed, kind usb"

# A snapshot of the live device replays to the same JSON.
certlab devices --snapshot "$VLAB_OUT/snapshot" > /dev/null
certlab devices --json --sysfs "$VLAB_OUT/snapshot" > "$VLAB_OUT/replay.json"
a=$(jq -S --arg n "$name" '.usb[] | select(.name == $n)' "$j")
b=$(jq -S --arg n "$name" '.usb[] | select(.name == $n)' "$VLAB_OUT/replay.json")
{ [ -n "$a" ] && [ "$a" = "$b" ]; } || vlab_die "the snapshot's replay differs from the live device"
vlab_ok "snapshot replays identically"
# (cat: sysfs gives the attribute a fixed size, which wc -c would read from stat)
# shellcheck disable=SC2002
vlab_measure descriptors_bytes "$(cat "$dir/descriptors" | wc -c)" B
