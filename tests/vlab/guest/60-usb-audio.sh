#!/bin/bash
# tests/vlab/guest/60-usb-audio.sh — owns the guest half of the QEMU
# usb-audio test: the real snd-usb-audio driver binds QEMU's UAC1 playback
# device (on qemu-xhci), certlab devices lists it as USB audio, and a known
# stereo noise burst (/vlab/data) is played to it with aplay; then
# certlab's ALSA backend, opening the card by the device's USB identity,
# plays 10 bursts 250 ms apart at scheduled CLOCK_MONOTONIC times, with no
# xrun and none late. The host half (60-usb-audio.host) checks that QEMU's
# WAV file received aplay's samples bit for bit, and certlab's bursts 250 ms
# apart.
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

# certlab's player through the real snd-usb-audio driver, the card found by
# USB identity. There is no capture on this device: the bursts are found in
# QEMU's WAV by the host half.
id=$(jq -r '[.usb[] | select(.classes | index("audio")) | select(.audio.playback)][0] | "\(.vid):\(.pid)"' "$VLAB_OUT/devices.json")
set +e
certlab probe audio --playback "usb:$id" --shots 10 --interval-ms 250 --burst-out "$VLAB_OUT/probe-burst.wav" --json \
  > "$VLAB_OUT/probe-play.json" 2> "$VLAB_OUT/probe-play.err"
code=$?
set -e
[ -s "$VLAB_OUT/probe-play.json" ] || vlab_die "certlab probe audio --playback usb:$id printed nothing (exit $code): $(cat "$VLAB_OUT/probe-play.err")"
jq -c . "$VLAB_OUT/probe-play.json"
[ "$(jq -r .playback "$VLAB_OUT/probe-play.json")" = "hw:$card,0" ] || vlab_die "usb:$id opened $(jq -r .playback "$VLAB_OUT/probe-play.json"), not hw:$card,0"
vlab_measure certlab_usb_audio_playback_xruns "$(jq -r .playback_xruns "$VLAB_OUT/probe-play.json")" count
vlab_measure certlab_usb_audio_late_bursts "$(jq -r .late_stimuli "$VLAB_OUT/probe-play.json")" count
[ "$code" = 0 ] || vlab_die "certlab's player had xruns or late bursts on hw:$card,0 (exit $code)"
vlab_ok "certlab played 10 bursts to usb:$id (hw:$card,0) with no xrun and none late; the host finds them"
