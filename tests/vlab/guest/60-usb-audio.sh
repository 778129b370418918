#!/bin/bash
# tests/vlab/guest/60-usb-audio.sh — owns the guest half of the QEMU
# usb-audio test: the real snd-usb-audio driver binds QEMU's UAC1 playback
# device (on qemu-xhci), certlab devices lists it as USB audio, and a known
# stereo noise burst (/vlab/data) is played to it. The host half
# (60-usb-audio.host) checks that QEMU's WAV file received those samples.
set -euo pipefail
# shellcheck source=tests/vlab/lib.bash
. /vlab/lib.bash
vlab_need aplay amixer certlab jq

card=$(awk '/USB-Audio/ { print $1; exit }' /proc/asound/cards)
[ -n "$card" ] || vlab_die "no USB-Audio card in /proc/asound/cards: $(cat /proc/asound/cards)"
echo "card $card: $(grep -A1 "^ *$card " /proc/asound/cards | tail -n1 | sed 's/^ *//')"
certlab devices --json > "$VLAB_OUT/devices.json"
jq -e '[.usb[] | select(.classes | index("audio")) | select(.audio.playback)] | length >= 1' "$VLAB_OUT/devices.json" > /dev/null \
  || vlab_die "certlab devices lists no USB audio playback device: $(jq -c '[.usb[] | {vid, pid, product, classes, errors}]' "$VLAB_OUT/devices.json")"
jq -c '.usb[] | select(.classes | index("audio")) | {name, vid, pid, product, audio: {uac: .audio.uac, rates: .audio.sample_rates}, errors}' "$VLAB_OUT/devices.json"
# Full volume, unmuted, so the samples pass unchanged.
while read -r c; do
  amixer -c "$card" sset "$c" 100% unmute > /dev/null 2>&1 || amixer -c "$card" sset "$c" 100% > /dev/null 2>&1 || true
done < <(amixer -c "$card" scontrols 2>/dev/null | sed -n "s/^Simple mixer control '\([^']*\)',0$/\1/p")
amixer -c "$card" contents > "$VLAB_OUT/mixer.txt" 2>&1 || true
aplay -D "hw:$card,0" -f S16_LE -r 48000 -c 2 -t raw "$VLAB_DATA/noise-48k-stereo.raw" 2> "$VLAB_OUT/aplay.err" \
  || vlab_die "aplay to hw:$card,0 failed: $(cat "$VLAB_OUT/aplay.err")"
xruns=$(grep -ciE 'underrun|xrun' "$VLAB_OUT/aplay.err" || true)
vlab_measure usb_audio_xruns "$xruns" count
vlab_ok "played $(( $(stat -c %s "$VLAB_DATA/noise-48k-stereo.raw") / 4 )) frames to hw:$card,0; the host checks QEMU's WAV"
