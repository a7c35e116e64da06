#!/bin/sh
# Runs the API fuzzer (api_fuzz.lua) for SECONDS of wall time from SEED on, one process
# per seed.  A process whose status file has not moved for API_FUZZ_STALL seconds is in
# one legal but endless call (a scan of a 2^62-element expanded view): it is stopped, its
# call is printed, and the next seed goes on.  A crash or a sanitizer report is replayed
# with its seed to name the calls before it, and fails the run.  The environment (the
# ASan build, LD_PRELOAD, CRATER_MEMORY_LIMIT) comes from `make fuzz-api`.
# usage: spec/fuzz/run_api_fuzz.sh SECONDS SEED OUTDIR
set -u
total=$1 seed=$2 out=$3
stall=${API_FUZZ_STALL:-120}
status=$out/api_fuzz.status
end=$(( $(date +%s) + total ))
calls=0 refused=0 changed=0 skipped=0 stalls=0 seeds=0
while [ "$(date +%s)" -lt "$end" ]; do
  left=$(( end - $(date +%s) ))
  rm -f "$status"
  API_FUZZ_STATUS=$status lua5.4 spec/fuzz/api_fuzz.lua "$left" "$seed" >"$out/api_fuzz.$seed.log" 2>&1 &
  pid=$! stalled=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if [ -f "$status" ] && [ $(( $(date +%s) - $(stat -c %Y "$status") )) -gt "$stall" ]; then
      stalled=1; kill -9 "$pid" 2>/dev/null
    fi
  done
  wait "$pid"; rc=$?
  # shellcheck disable=SC2046  # the four counts, split into $1..$4
  set -- $(head -1 "$status" 2>/dev/null || echo 0 0 0 0)
  calls=$((calls + $1)) refused=$((refused + $2)) changed=$((changed + $3)) skipped=$((skipped + $4))
  seeds=$((seeds + 1))
  if [ "$stalled" = 1 ]; then
    stalls=$((stalls + 1))
    echo "api fuzz: seed $seed stalled over ${stall} s in $(sed -n 2p "$status")"
  elif [ "$rc" != 0 ]; then
    grep -m5 -E 'ERROR: AddressSanitizer|runtime error|refused call|SUMMARY' "$out/api_fuzz.$seed.log"
    echo "api fuzz: seed $seed failed (exit $rc); replaying to $out/api_fuzz.log"
    lua5.4 spec/fuzz/api_fuzz.lua "$left" "$seed" 1 >"$out/api_fuzz.log" 2>&1
    grep '^call' "$out/api_fuzz.log" | tail -3
    exit 1
  else
    tail -1 "$out/api_fuzz.$seed.log"
  fi
  seed=$((seed + 1))
done
echo "api fuzz: $seeds seeds, $calls calls, $refused refused, $changed refused calls changed a tensor," \
  "0 crashes, 0 sanitizer reports; $stalls calls stopped after ${stall} s of legal work;" \
  "$skipped huge calls skipped"
[ "$changed" = 0 ]
