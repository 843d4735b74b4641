#!/usr/bin/env bash
# Reproduce the generators shipped in gan_core/assets/generators/ with the product's own trainer, then score each
# with `evaluate` (numbers in BENCHMARKS.md). CPU, 2 cores: about a minute an epoch for the half-width DCGANs,
# 5-15 s for the dense ones. Stop any with Ctrl-C: it checkpoints, and the same command with --resume continues.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-pretrained-work}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # several trainings side by side: one thread each

ship() {  # name, then train flags
  local name=$1; shift
  "$PY" -m gan_core train "$@" --out "$WORK/$name"
  cp "$WORK/$name/generator.safetensors" "gan_core/assets/generators/$name.safetensors"
  "$PY" -m gan_core evaluate --checkpoint "gan_core/assets/generators/$name.safetensors" --n 5000
}

# Mode seeking (issue 29), then lower λ to sharpen the digits again: λ 1 to step 6146 (the old file's length), λ 0.25
# to 7550, λ 0.1 to 8954 (fidelity 85.4 % → 94.3 % → 97.3 %); each stage continues the run folder.
"$PY" -m gan_core train --preset dcgan-sn-conditional --max-steps 6146 --mode-seeking 1 --out "$WORK/dcgan-conditional-mnist"
"$PY" -m gan_core train --resume "$WORK/dcgan-conditional-mnist" --max-steps 7550 --mode-seeking 0.25 \
  --out "$WORK/dcgan-conditional-mnist"
ship dcgan-conditional-mnist --resume "$WORK/dcgan-conditional-mnist" --max-steps 8954 --mode-seeking 0.1
ship dcgan-mnist --preset dcgan-sn-info --epochs 150
ship dcgan-fashion-mnist --preset dcgan-sn --dataset fashion_mnist --epochs 30
ship dense-mnist --preset dense-ema --epochs 200
# Mode seeking (issue 29): 80 epochs at λ 1 spread each class over its styles, then 10 at λ 0.25 sharpened them
# (fidelity 96.9 % → 98.8 %, recall kept); the second stage continues the first one's run folder.
"$PY" -m gan_core train --preset dense-conditional --epochs 80 --mode-seeking 1 --out "$WORK/dense-conditional-mnist"
ship dense-conditional-mnist --resume "$WORK/dense-conditional-mnist" --epochs 90 --mode-seeking 0.25

# The files shipped before exports carried D (all five above, as first trained) got the GAN's own D afterwards, fitted
# against the frozen G so that rejection (`--reject`, Generate's "Rejection" slider) works on them; G's tensors stay
# bit-identical. New exports from `train` already carry D, so this is only for files exported without one:
#   "$PY" scripts/fit_discriminator.py gan_core/assets/generators/dcgan-mnist.safetensors --steps 1000 --every 250
#   for name in dcgan-conditional-mnist dcgan-fashion-mnist; do
#     "$PY" scripts/fit_discriminator.py "gan_core/assets/generators/$name.safetensors" --steps 500 --every 250; done
#   for name in dense-mnist dense-conditional-mnist; do
#     "$PY" scripts/fit_discriminator.py "gan_core/assets/generators/$name.safetensors" --steps 3000 --every 500; done
