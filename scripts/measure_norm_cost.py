"""The cost of the training-health gradient norms (issue 18): in one process, interleaved, the seconds of a
train_step against the seconds of the two norms it takes, for three presets on one CPU thread.

    python scripts/measure_norm_cost.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core.config import TrainConfig  # noqa: E402
from gan_core.step import build_gan, grad_norm, train_step  # noqa: E402


def main() -> None:
    """Print each preset's median step time, norm time and their ratio."""
    torch.set_num_threads(1)  # a second thread spinning beside other processes made both numbers noise
    for preset in ("seed000-dense", "dense-ema", "dcgan-sn"):
        cfg = TrainConfig.from_preset(preset, device="cpu")
        m = build_gan(cfg, torch.device("cpu"))
        real = torch.rand(cfg.batch_size, 1, 28, 28) * 2 - 1  # (B, 1, 28, 28) in [-1, 1]
        for _ in range(5):
            train_step(m, real, None, True)
        steps, norms = [], []
        for _ in range(30 if cfg.arch == "dense" else 6):
            t = time.perf_counter()
            train_step(m, real, None, True, norms=(False, False))
            steps.append(time.perf_counter() - t)
            t = time.perf_counter()
            for model in (m.d, m.g):
                grad_norm(model)
            norms.append(time.perf_counter() - t)
        s, n = statistics.median(steps), statistics.median(norms)
        print(f"{preset}: step {s * 1e3:.2f} ms, both norms {n * 1e3:.3f} ms = {100 * n / s:.2f} % of a step")


if __name__ == "__main__":
    main()
