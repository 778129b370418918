#!/bin/bash
# tests/vlab/guest/50-vivid.sh — owns: V4L2 capture through the real vivid
# driver. It streams frames (v4l2-ctl --stream-mmap) at 320x180 YUYV and
# checks every buffer: its size, its sequence number (gaps are dropped
# frames, counted and reported), its kernel timestamp (monotonic clock,
# strictly increasing, no later than now); and that the frames carry a
# picture that changes (vivid draws a running counter), not zeros.
set -euo pipefail
# shellcheck source=tests/vlab/lib.bash
. /vlab/lib.bash
vlab_need v4l2-ctl awk cmp

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
