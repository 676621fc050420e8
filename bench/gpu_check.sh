#!/usr/bin/env bash
# One-command GPU check (about ten minutes on one H100/H200): every method's CIFAR preset on CIFAR-shaped synthetic
# tensors; writes bench/results/<gpu>-<date>.md.  Arguments go to bench/gpu_check.py (e.g. --methods ce dividemix;
# --device cpu --n 512 --epochs 1 for a smoke test).  PYTHON picks the interpreter (default: python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
if ! "$PY" -c "import lnlkit" 2>/dev/null; then
    "$PY" -m pip install --no-deps -e .
fi
exec "$PY" bench/gpu_check.py --device cuda "$@"
