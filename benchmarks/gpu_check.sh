#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): the tests marked gpu, pre-training throughput per loader and `bassl
# segment` frames/s, written to --out as they are measured. `--dry-run` takes the same steps on the CPU, tiny.
#
#   bash benchmarks/gpu_check.sh [--dry-run] [--stage all|base|dali] [--steps N] [--out DIR]
#   bash benchmarks/gpu_check.sh --stage base|stash|dali --pack DIR [--out DIR]     # on the lent GPU machine
#
# --pack DIR: a folder made by benchmarks/gpu_pack.py (see docs/gpu-check.md). The machine's python3 and torch
# are used; the carried wheels are installed with --no-deps into $BASSL_GPU_SITE, and each command's DALI part is
# copied out of the tree into $BASSL_GPU_STAGING (they outlive a command while the machine stays warm):
#   base   installs the wheels, stashes its DALI part, runs everything that needs no DALI;
#   stash  stashes its DALI part;
#   dali   stashes the last part, joins them, checks the sha256, installs DALI and runs the DALI test and loader.
# Without --pack: this repo's .venv if there is one, else python3 (with `pip install -e .` if bassl is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=${BASSL_GPU_SITE:-/tmp/bassl_gpu/site}
STAGING=${BASSL_GPU_STAGING:-/tmp/bassl_gpu/parts}
stage=all
pack=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --pack) pack=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
install() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$@"; }

if [ -n "$pack" ]; then
  PY=python3
  [ -d "$pack" ] || { echo "gpu_check: --pack $pack is not a folder: carry it (benchmarks/gpu_pack.py prints the commands)" >&2; exit 3; }
  if [ "$stage" = base ]; then rm -rf "$SITE" "$STAGING"; fi
  mkdir -p "$STAGING"
  cp "$pack"/dali.* "$STAGING"/
  echo "[gpu_check] DALI parts here so far: $(cd "$STAGING" && ls dali.tar.* | tr '\n' ' ')"
  case "$stage" in
    base) install "$pack"/*.whl ;;
    stash) exit 0 ;;
    dali)
      if [ ! -d "$SITE/deepspeed" ]; then
        echo "gpu_check: $SITE lacks the first command's packages: the machine was restarted since; run the commands again from the first" >&2
        exit 3
      fi
      read -r sum _ parts < "$STAGING/dali.sha256"
      have=$(ls "$STAGING"/dali.tar.[0-9][0-9] | wc -l)
      if [ "$have" != "$parts" ]; then
        echo "gpu_check: $have of $parts DALI parts in $STAGING: a command between the first and this one was missed or the machine restarted; run them again from the first" >&2
        exit 3
      fi
      cat "$STAGING"/dali.tar.[0-9][0-9] > "$STAGING/dali.tar"
      echo "$sum  $STAGING/dali.tar" | sha256sum -c --quiet
      rm -rf "$STAGING/wheels" && mkdir "$STAGING/wheels" && tar -xf "$STAGING/dali.tar" -C "$STAGING/wheels"
      install "$STAGING"/wheels/*.whl ;;
    *) echo "gpu_check: --stage $stage with --pack: use base, stash or dali" >&2; exit 3 ;;
  esac
  export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  PY=python3
  "$PY" -c "import bassl" 2>/dev/null || "$PY" -m pip install -q -e '.[test]'
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
start=$(date +%s)
case "$stage" in base) limit=330 ;; dali) limit=170 ;; *) limit=480 ;; esac  # inside the device command's timeout
case " ${args[*]-} " in *" --dry-run "*) limit=900 ;; esac  # 2 CPU cores, not a GPU
timeout "${BASSL_GPU_TIMEOUT:-$limit}" "$PY" benchmarks/gpu_check.py --stage "$stage" ${args[@]+"${args[@]}"}
echo "[gpu_check] $(( $(date +%s) - start )) s"
