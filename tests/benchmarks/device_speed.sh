#!/usr/bin/env bash
# The runner's speed on a lent accelerator: `make bench-peer`'s two abcscale sweeps (demo: widths 32,64,128 x 11
# LRs x 2 seeds; wide: 256,512 x 6 LRs x 1 seed; muP + Adam per-layer, 100 steps, batch 8 x 32 bytes) and a
# "big" one (widths 1024,2048 x 6 LRs x 1 seed), each whole process (interpreter start to results on disk) from
# a cold compilation cache, then again warm. Like device_check.sh it installs .whl/ (`make device-wheels`) into a
# scratch folder first. Writes $OUT/device_speed.log (the `abcscale sweep --json` summary of each run and its
# wall time); $OUT defaults to .device-out. SWEEPS (default "demo wide big") and STEPS override.
#
#   bash tests/benchmarks/device_speed.sh
set -uo pipefail
OUT=${OUT:-.device-out}
PY=${PYTHON:-python3}
STEPS=${STEPS:-100}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_speed.log") 2>&1

source "$(dirname "${BASH_SOURCE[0]}")/device_setup.sh"  # the wheels, then the versions and devices
work=$(mktemp -d /tmp/abcscale-speed.XXXX)
trap 'rm -rf "$work" ${site:+"$site"}' EXIT

declare -A WIDTHS=([demo]=32,64,128 [wide]=256,512 [big]=1024,2048 [tiny]=32)
declare -A LRS=([demo]=-8.5:-3.5:0.5 [wide]=-8:-5.5:0.5 [big]=-9:-6.5:0.5 [tiny]=-6,-5)
declare -A SEEDS=([demo]=2 [wide]=1 [big]=1 [tiny]=1)
for name in ${SWEEPS:-demo wide big}; do
  [ -n "${WIDTHS[$name]:-}" ] || { echo "SWEEPS: no sweep named $name (${!WIDTHS[*]})"; exit 2; }
  for cache in cold warm; do
    out="$work/$name-$cache"
    start=$("$PY" -c "import time; print(time.time())")
    ABCSCALE_JAX_CACHE="$work/cache-$name" "$PY" -P -m abcscale sweep --out "$out" -q --json -p mup -o adam \
      --lr-mode per_layer --widths "${WIDTHS[$name]}" --log2-lr="${LRS[$name]}" --seeds "${SEEDS[$name]}" \
      --steps "$STEPS" --batch 8 --seq-len 32 --depth 1 --head-dim 16 --attn-scale linear --base-width 32 \
      --max-bytes 2000000 > "$work/summary.json" || { echo "$name $cache: abcscale sweep failed"; exit 1; }
    "$PY" - "$name" "$cache" "$start" "$work/summary.json" <<'EOF'
import json, sys, time
name, cache, start, path = sys.argv[1:]
wall = time.time() - float(start)
s = json.load(open(path))
print(f"{name} {cache}: wall {float(wall):.1f} s, sweep span {s.get('sweep_s', float('nan')):.1f} s, "
      f"{s.get('runs', '?')} runs")
EOF
  done
done
