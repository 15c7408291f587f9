#!/usr/bin/env bash
# The project's GPU check, for a session lent a GPU: one device call of at most 10 minutes.
#   bash workflow/scripts/gpu_check.sh --out "$OUT"      # on the GPU machine
#   bash workflow/scripts/gpu_check.sh --dry-run         # anywhere: what it would measure
# Wheels the GPU machine lacks travel in .whl/ (`make gpu-wheels`) and are installed first;
# a wheel too large for one call travels in parts in .whl-parts/ (README, "GPU check").
# Everything else is workflow/scripts/gpu_check.py (`--help`).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
site=${GPU_CHECK_SITE:-/tmp/gpu-check-site}
wheels_dir=${GPU_CHECK_WHEELS:-.whl}
parts_dir=${GPU_CHECK_PARTS:-.whl-parts}

# Reassemble a bundle of wheels carried in parts (`make gpu-wheels-dali`): NAME.tar.part-aa,
# -ab, ... and NAME.tar.sha256; unpacked into .whl/ only when every part is here.
shopt -s nullglob
for sum in "$parts_dir"/*.tar.sha256; do
  bundle=${sum%.sha256}
  parts=("$bundle".part-*)
  cat "${parts[@]}" > "$bundle"
  if (cd "$parts_dir" && sha256sum --quiet --status -c "$(basename "$sum")"); then
    mkdir -p "$wheels_dir" && tar -xf "$bundle" -C "$wheels_dir"
  else
    echo "gpu_check: $(basename "$bundle"): ${#parts[@]} parts here, not all; skipped" >&2
  fi
  rm -f "$bundle"
done

wheels=("$wheels_dir"/*.whl)
if (( ${#wheels[@]} )) && [[ " $* " != *" --dry-run "* ]]; then
  echo "gpu_check: installing ${#wheels[@]} carried wheels into $site" >&2
  "$PY" -m pip --version >/dev/null 2>&1 || {
    echo "gpu_check: $PY has no pip to install the carried wheels with" >&2; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "${wheels[@]}"
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
exec "$PY" -m workflow.scripts.gpu_check "$@"
