#!/bin/bash
# tests/vlab/guest/40-aloop.sh — owns: an ALSA round trip through the real
# snd-aloop driver. A known noise burst (made on the host, /vlab/data) is
# played on the loopback's playback (hw:Loopback,0,0) while its capture
# (hw:Loopback,1,0) records; certlab analyze must find the burst in the
# capture, and the captured samples from there on must equal the played ones
# bit for bit (a loopback does not touch samples). xruns are counted from
# aplay/arecord and must be zero.
set -euo pipefail
# shellcheck source=tests/vlab/lib.bash
. /vlab/lib.bash
vlab_need aplay arecord certlab jq cmp

[ -d /proc/asound/Loopback ] || vlab_die "no Loopback card in /proc/asound (snd-aloop not loaded?)"
stim=$VLAB_DATA/noise-48k-mono
cap=$VLAB_OUT/capture.wav
fmt=(-f S16_LE -r 48000 -c 1)
arecord -D hw:Loopback,1,0 "${fmt[@]}" -t wav -d 3 "$cap" 2> "$VLAB_OUT/arecord.err" &
rec=$!
sleep 0.5
aplay -D hw:Loopback,0,0 "${fmt[@]}" -t raw "$stim.raw" 2> "$VLAB_OUT/aplay.err" || vlab_die "aplay failed: $(cat "$VLAB_OUT/aplay.err")"
wait "$rec" || vlab_die "arecord failed: $(cat "$VLAB_OUT/arecord.err")"
xruns=$(cat "$VLAB_OUT/aplay.err" "$VLAB_OUT/arecord.err" | grep -ciE 'underrun|overrun|xrun' || true)
vlab_measure aloop_xruns "$xruns" count
[ "$xruns" = 0 ] || vlab_die "$xruns xrun(s): $(cat "$VLAB_OUT/aplay.err" "$VLAB_OUT/arecord.err")"

certlab analyze audio --stimulus "$stim.wav" --capture "$cap" --json > "$VLAB_OUT/analyze.json" \
  || vlab_die "certlab analyze did not find the played burst in the loopback capture"
jq -c '{latency_ms, confidence, snr_db, channel, polarity}' "$VLAB_OUT/analyze.json"
pos_ms=$(jq -r .latency_ms "$VLAB_OUT/analyze.json")
pol=$(jq -r .polarity "$VLAB_OUT/analyze.json")
[ "$pol" = 1 ] || vlab_die "polarity $pol: the loopback inverted the signal?"
# Position in whole samples; a bit-exact copy sits on an integer sample.
pos=$(awk -v m="$pos_ms" 'BEGIN { printf "%d", m * 48 + 0.5 }')
frac=$(awk -v m="$pos_ms" -v p="$pos" 'BEGIN { d = m * 48 - p; if (d < 0) d = -d; printf "%.4f", d }')
vlab_measure aloop_burst_position_in_capture_ms "$pos_ms" ms
vlab_measure aloop_subsample_residual "$frac" samples
# Where the samples start in arecord's WAV: after the "data" chunk header.
data_at=$(grep -obUa data "$cap" | head -n1 | cut -d: -f1)
[ -n "$data_at" ] || vlab_die "no data chunk in $cap"
n=$(stat -c %s "$stim.raw")
if cmp -n "$n" -i "0:$(( data_at + 8 + pos * 2 ))" "$stim.raw" "$cap"; then
  vlab_ok "all $(( n / 2 )) samples arrived bit-exact at sample $pos of the capture"
else
  vlab_die "the captured samples differ from the played ones (burst found at sample $pos)"
fi
vlab_measure aloop_samples_compared $(( n / 2 )) samples

# The loopback's own latency, measured by alsabat's round-trip test when it has one.
if alsabat --help 2>&1 | grep -q roundtriplatency; then
  if timeout 60 alsabat -P hw:Loopback,0,0 -C hw:Loopback,1,0 -r 48000 -c 1 -f S16_LE --roundtriplatency \
      > "$VLAB_OUT/alsabat.txt" 2>&1; then
    lat=$(grep -oiE 'latency[^0-9]*[0-9.]+ *ms' "$VLAB_OUT/alsabat.txt" | tail -n1 | grep -oE '[0-9.]+ *ms' | tr -d ' ms' || true)
    grep -iE 'latency' "$VLAB_OUT/alsabat.txt" | tail -n 3
    [ -n "$lat" ] && vlab_measure aloop_alsabat_roundtrip_ms "$lat" ms
  else
    echo "note: alsabat --roundtriplatency did not finish: $(tail -n 3 "$VLAB_OUT/alsabat.txt")"
  fi
fi
