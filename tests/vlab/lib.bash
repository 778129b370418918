# tests/vlab/lib.bash — sourced by every lab script that runs in the guest
# (tests/vlab/init, tests/vlab/gadget, tests/vlab/guest/*.sh).
#
# Owns the lab's shared facts (the gadget's identity, the responder's delay,
# where its control FIFO and log are) and the helpers the guest tests share:
# failing and skipping with a reason, recording a measurement, waiting for a
# condition, finding the gadget's sysfs directory, hidraw and ttyACM nodes,
# and summary statistics. It runs nothing when sourced.
#
# A guest test exits 0 (pass), 77 (skip) or anything else (fail), prints
# what it measured, and calls vlab_measure for each figure the summary shows.

# shellcheck shell=bash disable=SC2034  # the facts are for the scripts that source this

# The gadget (tests/vlab/gadget). 1209 is pid.codes; 000c is one of its test PIDs.
VLAB_VID=1209
VLAB_PID=000c
VLAB_BCD=0100
VLAB_SERIAL=VLAB-0001
VLAB_MANUFACTURER="certlab vlab"
VLAB_PRODUCT="vlab HID telephony + CDC-ACM gadget"
# The responder (examples/vlab_gadget.rs), started by tests/vlab/init.
VLAB_HID_DELAY_MS=${VLAB_HID_DELAY_MS:-25}
VLAB_RUNDIR=/run/vlab
VLAB_CONTROL=$VLAB_RUNDIR/gadget.ctl
VLAB_GADGET_LOG=$VLAB_RUNDIR/gadget.log
# Set by tests/vlab/init for each test: where it may leave files for the
# host (they come back in the run directory's out/<test>/), and its name.
VLAB_OUT=${VLAB_OUT:-/tmp}
VLAB_TEST=${VLAB_TEST:-$(basename "$0" .sh)}
VLAB_DATA=${VLAB_DATA:-/vlab/data}

vlab_die() { echo "FAIL: $*" >&2; exit 1; }
vlab_skip() { echo "SKIP: $*" >&2; exit 77; }
vlab_ok() { echo "ok: $*"; }

# vlab_measure NAME VALUE [UNIT]: print it and record it for the summary.
vlab_measure() {
  echo "MEASURE $1 $2 ${3:-}"
  if [ -n "${VLAB_MEASURES:-}" ]; then
    printf '%s\t%s\t%s\t%s\n' "$VLAB_TEST" "$1" "$2" "${3:-}" >> "$VLAB_MEASURES"
  fi
}

# vlab_measures_from FILE: record every "MEASURE name value unit" line of FILE.
vlab_measures_from() {
  local _m k v u
  while read -r _m k v u; do
    [ "$_m" = MEASURE ] || continue
    if [ -n "${VLAB_MEASURES:-}" ]; then
      printf '%s\t%s\t%s\t%s\n' "$VLAB_TEST" "$k" "$v" "$u" >> "$VLAB_MEASURES"
    fi
  done < <(grep '^MEASURE ' "$1" || true)
}

# vlab_need CMD...: the guest image must have these (else the recipe is broken).
vlab_need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || vlab_die "$c is not in the guest image: fix GUEST_PACKAGES in tests/vlab/run"
  done
}

# vlab_wait SECONDS WHAT 'SHELL CONDITION': evaluate the condition every 0.1 s
# until it holds (single-quote it, so that it is evaluated each time).
vlab_wait() {
  local secs=$1 what=$2 cond=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    if eval "$cond" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  vlab_die "timed out after ${secs}s waiting for $what"
}

# The gadget's directory under /sys/bus/usb/devices (host side), or nothing.
vlab_usb_dir() {
  local d
  for d in /sys/bus/usb/devices/*; do
    [ -f "$d/idVendor" ] || continue
    if [ "$(cat "$d/idVendor")" = "$VLAB_VID" ] && [ "$(cat "$d/idProduct")" = "$VLAB_PID" ]; then
      echo "$d"
      return 0
    fi
  done
}

# The gadget's /dev/hidrawN (host side), or nothing.
vlab_hidraw() {
  local h id
  id=$(printf '%04X:%04X' "0x$VLAB_VID" "0x$VLAB_PID")
  for h in /sys/class/hidraw/hidraw*; do
    [ -e "$h" ] || continue
    case "$(readlink -f "$h/device")" in
      *":$id."*) echo "/dev/$(basename "$h")"; return 0 ;;
    esac
  done
}

# The gadget's /dev/ttyACMN (host side), or nothing.
vlab_ttyacm() {
  local t dir
  dir=$(vlab_usb_dir)
  [ -n "$dir" ] || return 0
  dir=$(readlink -f "$dir")
  for t in /sys/class/tty/ttyACM*; do
    [ -e "$t" ] || continue
    case "$(readlink -f "$t/device")" in
      "$dir"/*) echo "/dev/$(basename "$t")"; return 0 ;;
    esac
  done
}

# vlab_stats < numbers: "n=N min=.. median=.. p95=.. max=.. mean=.. sd=.."
vlab_stats() {
  sort -g | awk '
    { v[NR] = $1; s += $1; ss += $1 * $1 }
    END {
      if (NR == 0) { print "n=0"; exit }
      m = s / NR; sd = ss / NR - m * m; if (sd < 0) sd = 0
      i95 = int((NR - 1) * 0.95 + 0.5) + 1
      if (NR % 2) med = v[(NR + 1) / 2]; else med = (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "n=%d min=%.3f median=%.3f p95=%.3f max=%.3f mean=%.3f sd=%.3f\n", NR, v[1], med, v[i95], v[NR], m, sqrt(sd)
    }'
}

# vlab_stat KEY STATS_LINE: one value of a vlab_stats line.
vlab_stat() { tr ' ' '\n' <<< "$2" | sed -n "s/^$1=//p"; }

# vlab_now_ns: the time since boot in ns, to 10 ms (/proc/uptime; equal to
# CLOCK_MONOTONIC in a guest that never suspends): for coarse checks only.
vlab_now_ns() { awk '{ printf "%.0f\n", $1 * 1e9 }' /proc/uptime; }

# vlab_compare_pcm STIM.raw CAPTURE BYTE_OFFSET FRAME_BYTES: compare the raw
# stimulus with the capture from BYTE_OFFSET on, frame by frame. Prints
# "FRAMES DROPPED CORRUPT RUNS": a dropped frame is one the capture has as
# silence (all zero bytes) where the stimulus had sound (a dropout, e.g. a
# late timer under emulation); a corrupt frame holds anything else that
# differs; RUNS counts the dropouts (gaps; a stimulus sample that is itself
# zero does not split one). Used on the guest and the host.
vlab_compare_pcm() {
  local stim=$1 cap=$2 at=$3 fb=$4 n
  n=$(wc -c < "$stim")
  { cmp -l -n "$n" -i "0:$at" "$stim" "$cap" 2>/dev/null || true; } | awk -v fb="$fb" -v n="$n" '
    function fin(f) {
      if (f in bad) corrupt++
      else { drop++; if (f > lastdrop + 8) runs++; lastdrop = f }
    }
    BEGIN { lastdrop = -100 }
    $1 ~ /^[0-9]+$/ {
      f = int(($1 - 1) / fb)
      if (seen && f != cur) fin(cur)
      cur = f; seen = 1
      if ($3 != 0) bad[f] = 1
    }
    END {
      if (seen) fin(cur)
      printf "%d %d %d %d\n", n / fb, drop, corrupt, runs
    }'
}
