#!/usr/bin/env bash
# Every number in BENCHMARKS.md, one JSON line each, on whatever machine runs it. Run on a quiet machine:
# the ratios are measured within one process, but two threads sharing two cores with anything else get noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
for arch in "dense --steps 200" "dcgan --steps 40"; do
  for p in fp32 bf16; do $PY -m gan_core bench --arch $arch --precision $p --json; done
done
$PY -m gan_core bench --arch dcgan --steps 40 --precision bf16 --store --json
for t in 1 2; do
  $PY -m gan_core bench --arch dense --generate --threads $t --json
  $PY -m gan_core bench --arch dcgan --generate --threads $t --json
done
$PY -m gan_core bench --arch dense --steps 200 --precision bf16 --store --json
$PY -m gan_core bench --arch dense --steps 100 --precision bf16 --quality --json
$PY -m gan_core bench --arch dcgan --steps 20 --precision bf16 --quality --json
