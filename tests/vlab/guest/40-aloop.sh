#!/bin/bash
# tests/vlab/guest/40-aloop.sh — owns: an ALSA round trip through the real
# snd-aloop driver. A known noise burst (made on the host, /vlab/data) is
# played on the loopback's playback (hw:Loopback,0,0) while its capture
# (hw:Loopback,1,0) records; certlab analyze must find the burst in the
# capture, and the captured samples from there on must equal the played ones
# bit for bit (a loopback does not touch samples), except for dropouts
# (silence in their place), which are counted and must stay under 5%. xruns
# are counted from aplay/arecord and must be zero. Then certlab's own ALSA
# backend (`certlab probe audio`, the `alsa` feature): it plays bursts on
# hw:Loopback,0,0 at scheduled CLOCK_MONOTONIC times while capturing
# hw:Loopback,1,0, both stamped from ALSA's htstamps, and must find every
# burst, with no xrun, at a latency that stays put shot after shot.
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
read -r frames dropped corrupt runs < <(vlab_compare_pcm "$stim.raw" "$cap" $(( data_at + 8 + pos * 2 )) 2)
vlab_measure aloop_samples_compared "$frames" samples
vlab_measure aloop_dropout_samples "$dropped" samples
vlab_measure aloop_dropouts "$runs" count
[ "$corrupt" = 0 ] || vlab_die "$corrupt captured sample(s) differ from the played ones (burst at sample $pos): corrupted, not dropped"
# A dropout (silence in place of samples, alignment kept) is what an ALSA
# backend must count and report; it happens under a starved emulated CPU.
# Past 5% of the burst the loopback is not carrying audio.
[ $(( dropped * 20 )) -le "$frames" ] || vlab_die "$dropped of $frames samples dropped in $runs gap(s)"
if [ "$dropped" = 0 ]; then
  vlab_ok "all $frames samples arrived bit-exact at sample $pos of the capture"
else
  echo "DROPOUT: $dropped of $frames samples arrived as silence in $runs gap(s); all others bit-exact at sample $pos"
fi

# certlab's ALSA backend, both directions at once, S16 mono at 48 kHz.
if ! certlab probe audio --help > /dev/null 2>&1 || certlab probe audio --playback x --capture y --shots 1 2>&1 | grep -q 'needs certlab built with'; then
  vlab_die "this certlab was built without the alsa feature: tests/vlab/run builds it with --features alsa when libasound2-dev is on the host"
fi
N=20
set +e
certlab probe audio --playback hw:Loopback,0,0 --capture hw:Loopback,1,0 --shots $N --interval-ms 250 --json \
  > "$VLAB_OUT/probe-audio.json" 2> "$VLAB_OUT/probe-audio.err"
code=$?
set -e
p=$VLAB_OUT/probe-audio.json
[ -s "$p" ] || vlab_die "certlab probe audio printed nothing (exit $code): $(cat "$VLAB_OUT/probe-audio.err")"
jq -c '{median_ms, min_ms, max_ms, capture_xruns, playback_xruns, late_stimuli, gap_blocks, overrun_blocks}' "$p"
jq -r '.shots[] | select(.latency_ms == null) | "missed shot \(.shot): \(.detail)"' "$p"
found=$(jq '[.shots[] | select(.latency_ms != null)] | length' "$p")
vlab_measure certlab_aloop_shots_found "$found" "of $N"
for k in capture_xruns playback_xruns late_stimuli gap_blocks overrun_blocks; do
  vlab_measure "certlab_aloop_$k" "$(jq -r ".$k" "$p")" count
done
[ "$code" = 0 ] && [ "$found" = "$N" ] || vlab_die "certlab probe audio found $found of $N bursts (exit $code)"
for k in capture_xruns playback_xruns late_stimuli gap_blocks overrun_blocks; do
  [ "$(jq -r ".$k" "$p")" = 0 ] || vlab_die "certlab probe audio: $k = $(jq -r ".$k" "$p")"
done
jq -r '.shots[].latency_ms' "$p" > "$VLAB_OUT/certlab-aloop.txt"
st=$(vlab_stats < "$VLAB_OUT/certlab-aloop.txt")
echo "certlab probe audio, snd-aloop latency (ms): $st"
# snd-aloop copies playback to capture on its timer, and both pointers move
# once per kernel tick (4 ms at Debian's HZ=250) while ALSA stamps them
# with the exact time: so the path is about zero, and each shot may look up
# to a tick or two early or late. Every shot must lie within 12 ms of the
# others, and the median within -10..20 ms.
med=$(vlab_stat median "$st")
awk -v m="$med" -v lo="$(vlab_stat min "$st")" -v hi="$(vlab_stat max "$st")" \
  'BEGIN { exit !(m >= -10 && m <= 20 && hi - lo <= 12) }' \
  || vlab_die "the loopback latency is off or wanders: $st"
vlab_ok "$N of $N bursts found by certlab over snd-aloop, no xrun; latency $med ms"
vlab_measure certlab_aloop_latency_median_ms "$med" ms
vlab_measure certlab_aloop_latency_spread_ms "min=$(vlab_stat min "$st"),p95=$(vlab_stat p95 "$st"),max=$(vlab_stat max "$st"),sd=$(vlab_stat sd "$st")" ms
