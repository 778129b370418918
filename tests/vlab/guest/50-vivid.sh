#!/bin/bash
# tests/vlab/guest/50-vivid.sh — owns: V4L2 capture through the real vivid
# driver. It streams frames (v4l2-ctl --stream-mmap) at 320x180 YUYV and
# checks every buffer: its size, its sequence number (gaps are dropped
# frames, counted and reported), its kernel timestamp (monotonic clock,
# strictly increasing, no later than now); and that the frames carry a
# picture that changes (vivid draws a running counter), not zeros. Then
# certlab's own V4L2 backend (`certlab probe camera`): the mode it
# negotiates, every frame's kernel timestamp and sequence number, the
# intervals, the drops, and the luma it reads.
set -euo pipefail
# shellcheck source=tests/vlab/lib.bash
. /vlab/lib.bash
vlab_need v4l2-ctl awk cmp certlab jq

dev=
for v in /sys/class/video4linux/video*; do
  if grep -q 'vid-cap' "$v/name" 2>/dev/null; then dev=/dev/$(basename "$v"); break; fi
done
[ -n "$dev" ] || vlab_die "no vivid capture node (vivid not loaded?): $(cat /sys/class/video4linux/*/name 2>/dev/null | tr '\n' ' ')"
echo "vivid capture: $dev ($(cat /sys/class/video4linux/"$(basename "$dev")"/name))"
W=320 H=180 COUNT=30
v4l2-ctl -d "$dev" --set-fmt-video=width=$W,height=$H,pixelformat=YUYV
v4l2-ctl -d "$dev" --set-parm=30 > /dev/null
fmt=$(v4l2-ctl -d "$dev" --get-fmt-video)
grep -q "Width/Height *: $W/$H" <<< "$fmt" || vlab_die "format not taken: $fmt"
size=$(awk -F: '/Size Image/ { gsub(/ /, "", $2); print $2 }' <<< "$fmt")
before=$(vlab_now_ns)
v4l2-ctl -d "$dev" --stream-mmap=4 --stream-count=$COUNT --stream-to="$VLAB_OUT/frames.yuv" --verbose \
  > "$VLAB_OUT/stream.log" 2>&1 || vlab_die "v4l2-ctl streaming failed: $(tail -n 5 "$VLAB_OUT/stream.log")"
after=$(vlab_now_ns)
grep -E 'seq:' "$VLAB_OUT/stream.log" | head -n 3
# One line per buffer: seq and ts (seconds, CLOCK_MONOTONIC), bytesused.
awk '/seq:/ { for (i = 1; i <= NF; i++) { if ($i == "seq:") s = $(i+1); if ($i == "ts:") t = $(i+1); if ($i == "bytesused:") b = $(i+1) } print s, t, b }' \
  "$VLAB_OUT/stream.log" > "$VLAB_OUT/frames.txt"
got=$(wc -l < "$VLAB_OUT/frames.txt")
[ "$got" = "$COUNT" ] || vlab_die "$got buffers reported, expected $COUNT"
bad=$(awk -v sz="$size" '$3 != sz' "$VLAB_OUT/frames.txt" | wc -l)
[ "$bad" = 0 ] || vlab_die "$bad buffer(s) with bytesused other than $size"
[ "$(stat -c %s "$VLAB_OUT/frames.yuv")" = $(( size * COUNT )) ] || vlab_die "frames.yuv is not $COUNT frames of $size bytes"
read -r drops nonmono first last < <(awk '
  NR > 1 { if ($1 > ps + 1) d += $1 - ps - 1; if ($2 <= pt) nm++ }
  NR == 1 { f = $2 } { ps = $1; pt = $2 } END { printf "%d %d %s %s\n", d, nm, f, pt }' "$VLAB_OUT/frames.txt")
[ "$nonmono" = 0 ] || vlab_die "$nonmono timestamp(s) not after the previous one"
awk -v f="$first" -v l="$last" -v b="$before" -v a="$after" 'BEGIN { exit !(f * 1e9 >= b - 2e9 && l * 1e9 <= a + 2e7) }' \
  || vlab_die "buffer timestamps $first..$last s are not within the stream's time ($before..$after ns since boot): not CLOCK_MONOTONIC?"
vlab_ok "$COUNT buffers of $size bytes, timestamps increasing and monotonic-clock ($first..$last s)"
deltas=$(awk 'NR > 1 { printf "%.3f\n", ($2 - pt) * 1000 } { pt = $2 }' "$VLAB_OUT/frames.txt" | vlab_stats)
echo "frame intervals (ms): $deltas"
vlab_measure vivid_frame_interval_median_ms "$(vlab_stat median "$deltas")" ms
vlab_measure vivid_frame_interval_spread_ms "min=$(vlab_stat min "$deltas"),p95=$(vlab_stat p95 "$deltas"),max=$(vlab_stat max "$deltas"),sd=$(vlab_stat sd "$deltas")" ms
vlab_measure vivid_dropped_frames "$drops" frames
vlab_measure vivid_fps "$(awk -v f="$first" -v l="$last" -v n="$COUNT" 'BEGIN { printf "%.2f", (n - 1) / (l - f) }')" fps
# The picture: not all zeros, and the first and last frames differ.
if cmp -s -n "$size" "$VLAB_OUT/frames.yuv" /dev/zero; then vlab_die "the first frame is all zeros"; fi
if cmp -s -n "$size" -i "0:$(( size * (COUNT - 1) ))" "$VLAB_OUT/frames.yuv" "$VLAB_OUT/frames.yuv"; then
  vlab_die "the first and last frames are identical: the picture does not move"
fi
vlab_ok "frames carry a moving picture"
rm -f "$VLAB_OUT/frames.yuv"

# certlab's V4L2 backend on the same node.
before=$(vlab_now_ns)
certlab probe camera --device "$dev" --frames $COUNT --width $W --height $H --fps 30 --json \
  > "$VLAB_OUT/probe-camera.json" 2> "$VLAB_OUT/probe-camera.err" \
  || vlab_die "certlab probe camera --device $dev failed: $(cat "$VLAB_OUT/probe-camera.err")"
p=$VLAB_OUT/probe-camera.json
jq -c '{node, width, height, fps, interval_ms_mean, interval_ms_min, interval_ms_max, dropped_frames, error_frames, unstamped_frames}' "$p"
[ "$(jq -r '"\(.width)x\(.height)"' "$p")" = "${W}x${H}" ] || vlab_die "certlab negotiated $(jq -r '"\(.width)x\(.height)"' "$p"), not ${W}x${H}"
[ "$(jq '.frames | length' "$p")" = "$COUNT" ] || vlab_die "certlab got $(jq '.frames | length' "$p") frames, not $COUNT"
for k in error_frames unstamped_frames; do
  [ "$(jq -r ".$k" "$p")" = 0 ] || vlab_die "certlab probe camera: $k = $(jq -r ".$k" "$p")"
done
after=$(vlab_now_ns)
first=$(jq -r .first_frame_ns "$p")
awk -v f="$first" -v b="$before" -v a="$after" 'BEGIN { exit !(f >= b - 2e9 && f <= a + 2e7) }' \
  || vlab_die "certlab's first frame stamp $first ns is not within the stream's time ($before..$after ns since boot): not the kernel's CLOCK_MONOTONIC stamp?"
# Sequence numbers from the kernel: increasing; their gaps are the drops
# certlab reports.
gaps=$(jq '[.frames | . as $f | range(1; length) | $f[.].seq - $f[. - 1].seq - 1] | add' "$p")
nonincr=$(jq '[.frames | . as $f | range(1; length) | select($f[.].seq <= $f[. - 1].seq or $f[.].t_ms <= $f[. - 1].t_ms)] | length' "$p")
[ "$nonincr" = 0 ] || vlab_die "$nonincr frame(s) whose sequence number or timestamp does not increase"
[ "$gaps" = "$(jq -r .dropped_frames "$p")" ] || vlab_die "sequence gaps add to $gaps, certlab reports $(jq -r .dropped_frames "$p") dropped"
# vivid draws a moving picture, so the luma certlab reads is neither zero
# nor constant.
jq -e '[.frames[].mean_luma] | (min > 0) and (max < 256)' "$p" > /dev/null || vlab_die "mean luma out of range: $(jq -c '[.frames[].mean_luma]' "$p")"
jq -r '.frames | . as $f | range(1; length) | ($f[.].t_ms - $f[. - 1].t_ms)' "$p" > "$VLAB_OUT/certlab-intervals.txt"
st=$(vlab_stats < "$VLAB_OUT/certlab-intervals.txt")
echo "certlab probe camera, frame intervals (ms): $st"
med=$(vlab_stat median "$st")
awk -v m="$med" 'BEGIN { exit !(m > 30 && m < 37) }' || vlab_die "median frame interval $med ms is not about 33.3 ms (30 fps)"
vlab_ok "certlab streamed $COUNT frames from $dev at ${W}x${H}, kernel timestamps increasing, median interval $med ms"
vlab_measure certlab_vivid_dropped_frames "$(jq -r .dropped_frames "$p")" frames
vlab_measure certlab_vivid_frame_interval_median_ms "$med" ms
vlab_measure certlab_vivid_frame_interval_spread_ms "min=$(vlab_stat min "$st"),p95=$(vlab_stat p95 "$st"),max=$(vlab_stat max "$st"),sd=$(vlab_stat sd "$st")" ms
