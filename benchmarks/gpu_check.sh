#!/usr/bin/env bash
# The GPU check, ready for the first lent GPU: set up Python, then (in under 8 minutes on one GPU) run the tests
# marked gpu, measure ResNet-50 pre-training throughput with the DALI and the torch loader, and write
# benchmarks/results/gpu_check.{json,md}. `--dry-run` takes the same steps on the CPU with tiny sizes (CI runs it).
#
#   bash benchmarks/gpu_check.sh [--dry-run] [--steps N] [--out DIR]
#
# Python: this repo's .venv if there is one (a machine set up as the README says); else the machine's python3 with
# the wheels in .whl/ installed into /tmp/site (a GPU machine that reaches no package index: carry .whl there; see
# the README's "GPU check"); else the machine's python3 with `pip install -e .` when an index is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  PY=python3
  if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  elif ! "$PY" -c "import bassl" 2>/dev/null; then
    "$PY" -m pip install -q -e '.[test]'
  fi
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
start=$(date +%s)
timeout 480 "$PY" benchmarks/gpu_check.py "$@"
echo "[gpu_check] $(( $(date +%s) - start )) s"
