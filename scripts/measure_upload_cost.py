"""Measure the server CPU one uploaded generator export carrying D costs Generate, before and after issue 27.

    python scripts/measure_upload_cost.py [--width-mult 1.5] [--repeat 1]

Builds a DCGAN export with D (about 20 MB, the upload limit) and times, in CPU seconds of this process (every
thread), what Generate does with a new upload: check_upload, load G and D, then calibrate D for rejection.
"before": calibrated on rejection.CALIBRATION_N digits, every time (the old page's cache key was the file's path and
mtime, both new for every upload). "after, new file": on UPLOAD_CALIBRATION_N digits, written to the cache. "after,
same file again": the cache read back. All three in one run, so their ratio holds on whatever machine runs it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_core import rejection  # noqa: E402
from gan_core.checkpoint import check_upload, load_discriminator, load_generator, save_generator  # noqa: E402
from gan_core.config import TrainConfig  # noqa: E402
from gan_core.models import build_discriminator, build_generator  # noqa: E402


def cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width-mult", type=float, default=1.5)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    cfg = TrainConfig(arch="dcgan", width_mult=args.width_mult)
    with tempfile.TemporaryDirectory() as tmp:
        path, cache = Path(tmp) / "generator.safetensors", Path(tmp) / "calibrations"
        torch.manual_seed(0)
        save_generator(path, cfg, build_generator(cfg), 1, 10, d=build_discriminator(cfg))
        data = path.read_bytes()
        print(f"export: {len(data) / 2**20:.1f} MB, torch threads {torch.get_num_threads()}")

        def upload(n: int | None) -> None:
            check_upload(data, 20)
            g, c, _ = load_generator(path)
            d = load_discriminator(path)
            if n is None:
                rejection.training_calibration(g, d, c)  # the old page: always, on CALIBRATION_N digits
            else:
                rejection.cached_calibration(path, g, d, c, cache, n)
        # one untimed warm-up: MNIST loaded and cached, first-call costs of torch paid by neither side
        rejection.training_calibration(*load_generator(path)[:1], load_discriminator(path), cfg, 100)
        for _ in range(args.repeat):
            for p in cache.glob("*"):
                p.unlink()
            before = cpu(lambda: upload(None))
            fresh = cpu(lambda: upload(rejection.UPLOAD_CALIBRATION_N))
            again = cpu(lambda: upload(rejection.UPLOAD_CALIBRATION_N))
            print(f"before: {before:.1f} CPU s ({rejection.CALIBRATION_N} digits) | after, new file: {fresh:.1f} CPU s "
                  f"({rejection.UPLOAD_CALIBRATION_N} digits, {before / fresh:.1f}x less) | after, same file again: "
                  f"{again:.2f} CPU s ({before / again:.0f}x less)")


if __name__ == "__main__":
    main()
