# Sourced by device_check.sh and device_speed.sh (bash): a lent machine's Python ($PY) made ready for abcscale.
# The wheels in $WHEELS (default .whl/, `make device-wheels`: abcscale's own and the pure-Python dependencies such
# an image lacks) go into a scratch folder on PYTHONPATH, never into the machine's own packages; $site names it
# (the caller removes it). Then the versions and the devices JAX sees are printed, or the script exits 2.
WHEELS=${WHEELS:-.whl}
site=""
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  site=$(mktemp -d /tmp/abcscale-site.XXXX)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$WHEELS"/*.whl || { rm -rf "$site"; exit 2; }
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -P -c 'import jax, abcscale; print("jax", jax.__version__, "abcscale", abcscale.__version__, "from", abcscale.__path__[0], jax.devices())' \
  || { [ -n "$site" ] && rm -rf "$site"; exit 2; }
command -v nvidia-smi >/dev/null && nvidia-smi -L
