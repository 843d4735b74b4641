#!/usr/bin/env bash
# The prepared device check (issue 16): run it first whenever a GPU is lent.
#   scripts/gpu_check.sh --out DIR [--device cuda|cpu] [--tiny] [--minutes N]
# Writes DIR/gpu_check.json (every part's numbers or error, rewritten after each step) and DIR/gpu_check.log.
# Needs only torch, numpy, scipy, safetensors (and pytest for the CUDA tests): the GPU machine has no SQLAlchemy,
# Streamlit or Plotly, maybe no torchvision, and no network. $PYTHON picks the interpreter (default python3).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python3}
# The checkout travels with ../shared (MNIST's gz files); relative --out paths stay relative to the caller's folder.
if [[ -z "${GAN_DATA_DIR:-}" && -d "$ROOT/../shared/datasets" ]]; then
  export GAN_DATA_DIR="$ROOT/../shared/datasets"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
out=""
prev=""
for arg in "$@"; do
  [[ "$prev" == "--out" ]] && out="$arg"
  [[ "$arg" == --out=* ]] && out="${arg#--out=}"
  prev="$arg"
done
rc=0
"$PYTHON" -m gan_core gpu-check "$@" || rc=$?
# A crash before the check's own logging began (an import error, say) still leaves a line in the log.
if [[ $rc -ne 0 && -n "$out" && -d "$out" ]]; then
  echo "gpu_check.sh: $PYTHON -m gan_core gpu-check exited with status $rc" >> "$out/gpu_check.log"
fi
exit $rc
