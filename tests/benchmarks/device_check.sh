#!/usr/bin/env bash
# Issue 18's GPU check as one prepared command: the transfer benchmark's sweeps to width 1024, timed, on whatever
# accelerator JAX finds (on a CPU-only machine it runs there, slowly; the test suite runs it tiny).
#
# On a lent machine that lacks some of abcscale's pure-Python dependencies, `make device-wheels` (here) puts
# abcscale's wheel and those dependencies' wheels for Python $DEVICE_PY in .whl/, which travels with the
# command; this script installs them into a scratch folder first and never touches the machine's own packages.
#
#   bash tests/benchmarks/device_check.sh                  # every row, widths 32-128 fitted, 256/512/1024 held out
#   ROWS=3 TEST_WIDTHS=256,512,1024 LIMIT_S=420 bash tests/benchmarks/device_check.sh
#
# It writes $OUT/transfer_gpu.md (the transfer table after each finished row, each row's wall time, the device)
# and $OUT/device_check.log; $OUT defaults to .device-out. LIMIT_S bounds the sweeps (default 480 s): a run
# stopped there leaves the rows it finished in the report and says so.
set -uo pipefail
OUT=${OUT:-.device-out}
PY=${PYTHON:-python3}
LIMIT_S=${LIMIT_S:-480}
ROWS=${ROWS:-3,0,1,2,4,5}  # muP + Adam per-layer first: the product's main case
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1

source "$(dirname "${BASH_SOURCE[0]}")/device_setup.sh"  # the wheels, then the versions and devices

cache=$(mktemp -d /tmp/abcscale-device-cache.XXXX)  # cold compilation cache: the times include compiling
cells=$(mktemp -d /tmp/abcscale-transfer.XXXX)
trap 'rm -rf "$cache" "$cells" ${site:+"$site"}' EXIT
start=$(date +%s)
ABCSCALE_JAX_CACHE=$cache timeout "$LIMIT_S" "$PY" tests/benchmarks/transfer.py --rows "$ROWS" \
  --fit-widths "${FIT_WIDTHS:-32,64,128}" --test-widths "${TEST_WIDTHS:-256,512,1024}" \
  --steps "${STEPS:-100}" --seeds "${SEEDS:-2}" --out "$cells" --report "$OUT/transfer_gpu.md"
rc=$?
took=$(( $(date +%s) - start ))
if [ "$rc" = 124 ]; then
  echo "stopped at LIMIT_S=$LIMIT_S s; $OUT/transfer_gpu.md holds the rows that finished"
elif [ "$rc" != 0 ]; then
  echo "transfer.py failed (exit $rc) after $took s"; exit "$rc"
fi
echo "device check: $took s of sweeps, fitting and reporting"
