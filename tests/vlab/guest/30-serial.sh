#!/bin/bash
# tests/vlab/guest/30-serial.sh — owns: the CDC-ACM path through the real
# cdc_acm and u_serial drivers. 64 KiB of random bytes go host /dev/ttyACMN →
# gadget /dev/ttyGS0 and another 64 KiB back, in raw mode, and must arrive
# byte for byte; it prints the throughput each way.
set -euo pipefail
# shellcheck source=tests/vlab/lib.bash
. /vlab/lib.bash
vlab_need stty cmp head timeout

acm=$(vlab_ttyacm)
[ -n "$acm" ] || vlab_die "no ttyACM node for $VLAB_VID:$VLAB_PID"
gs=/dev/ttyGS0
[ -c "$gs" ] || vlab_die "no $gs on the gadget side"
N=65536
head -c $N /dev/urandom > "$VLAB_OUT/down.bin"
head -c $N /dev/urandom > "$VLAB_OUT/up.bin"

# Hold both ends open so the raw settings stay while the transfers run.
exec 3<>"$acm" 4<>"$gs"
for t in "$acm" "$gs"; do
  stty -F "$t" raw -echo -echoe -echok -echoctl -echoke -ixon -ixoff || vlab_die "stty raw on $t failed"
done

transfer() { # transfer FROM_FD TO_FD FILE WHAT
  local from=$1 to=$2 file=$3 what=$4 got=$VLAB_OUT/got-$4.bin t0 t1 ms
  timeout 60 head -c $N <&"$to" > "$got" &
  local reader=$!
  sleep 0.2
  t0=$(date +%s%N)
  cat "$file" >&"$from"
  wait "$reader" || vlab_die "$what: the reader got $(stat -c %s "$got") of $N bytes in 60 s"
  t1=$(date +%s%N)
  cmp "$file" "$got" || vlab_die "$what: the bytes that arrived differ from those sent"
  ms=$(( (t1 - t0) / 1000000 ))
  [ "$ms" -gt 0 ] || ms=1
  vlab_ok "$what: $N bytes arrived intact in $ms ms"
  vlab_measure "serial_${what}_KiB_per_s" $(( N * 1000 / 1024 / ms )) KiB/s
}
transfer 3 4 "$VLAB_OUT/down.bin" host_to_gadget
transfer 4 3 "$VLAB_OUT/up.bin" gadget_to_host
exec 3>&- 4>&-
