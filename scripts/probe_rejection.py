"""Measure rejection by the GAN's own D (gan_core.rejection) against raw sampling, as a markdown table.

    python scripts/probe_rejection.py RUN_DIR_OR_CHECKPOINT [--n 5000] [--methods topk,drs,strata,strata-drs]
                                      [--strengths 0.1,0.33,1] [--calib 5000] [--seed 12345]

G is the checkpoint's sampler (its EMA copy when the run kept one, as exports are), D the checkpoint's D. D is
recalibrated on real TRAINING images and fresh fakes (never test images); the quality classifier only measures.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_core import metrics, rejection
from gan_core.checkpoint import discriminator_state, load_generator, load_tensors
from gan_core.data import load_dataset, to_float
from gan_core.models import build_discriminator


def newest_checkpoint(path: Path) -> Path:
    """The newest ckpt-*.safetensors of a run folder, or `path` itself when it is a file."""
    if path.is_file():
        return path
    found = sorted((path / "checkpoints").glob("ckpt-*.safetensors"))
    if not found:
        raise SystemExit(f"{path}: no checkpoints/ckpt-*.safetensors")
    return found[-1]


def row(name: str, strength: float, q: metrics.Quality, seconds: float, n_cand: int, conditional: bool) -> str:
    """One markdown table row of a Quality."""
    shares = q.class_shares
    cells = [name, f"{strength:g}", f"{n_cand}", f"{q.fd:.2f}", f"{q.inception_score:.3f}", f"{q.precision:.3f}",
             f"{q.recall:.3f}", f"{q.density:.3f}", f"{q.coverage:.3f}", f"{min(shares):.3f}", f"{max(shares):.3f}",
             str(int(torch.tensor(shares).argmax())), f"{q.confidence:.4f}"]
    if conditional:
        cells.append("" if q.fidelity is None else f"{q.fidelity:.3f}")
    cells.append(f"{seconds:.2f}")
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    """Probe every method × strength on one checkpoint; print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--methods", default=",".join(rejection.METHODS))
    ap.add_argument("--strengths", default="0.1,0.33,1")
    ap.add_argument("--calib", type=int, default=5000, help="real training images (and as many fakes) to calibrate")
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--head", action="store_true", help="recalibrate with a refitted linear head on D's features")
    ap.add_argument("--floor", action="store_true", help="also measure n real test images (the floor)")
    args = ap.parse_args(argv)

    ckpt = newest_checkpoint(args.run)
    g, cfg, header = load_generator(ckpt)
    d = build_discriminator(cfg)
    d.load_state_dict(discriminator_state(load_tensors(ckpt), d))
    d.eval()
    # Calibration reals: a seeded random slice of the training set (the metrics' ruler uses training statistics
    # too, but never selects; test images stay for the floor).
    images, labels = load_dataset(cfg.dataset, "train")
    pick = torch.randperm(len(images),
                          generator=torch.Generator().manual_seed(rejection.CALIBRATION_SEED))[: args.calib]
    t0 = time.perf_counter()
    cal = rejection.calibrate(g, d, cfg, to_float(images[pick]), labels[pick], clusters=args.clusters,
                              head=args.head)
    t_cal = time.perf_counter() - t0
    print(f"checkpoint {ckpt} (epoch {header['epoch']}, {cfg.arch}, conditional={cfg.conditional}, "
          f"info_code={cfg.info_code}); n={args.n}; calibration on {args.calib} real train + {args.calib} fakes "
          f"in {t_cal:.1f} s (head refit: {args.head}): F = {cal.scale:.3f}·logit + {cal.bias:.3f}, "
          f"M = {cal.max_f:.2f}, calibrated D's "
          f"accuracy real {cal.real_accuracy:.3f} / fake {cal.fake_accuracy:.3f}", flush=True)
    head = ["method", "strength", "candidates", "FD", "IS", "precision", "recall", "density", "coverage",
            "min share", "max share", "argmax class", "confidence"]
    if cfg.conditional:
        head.append("fidelity")
    head.append("seconds")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head), flush=True)
    if args.floor:
        q = metrics.real_floor(cfg.dataset, args.n)
        print(row("real test (floor)", 0, q, 0.0, args.n, cfg.conditional), flush=True)
    # A second raw draw from another seed: how far FD & co. move by chance alone at this n.
    r = rejection.sample(g, d, cfg, args.n, args.seed + 1, 0.0, "topk")
    print(row("raw, other seed", 0, metrics.measure(r.images, cfg.dataset, r.labels), r.seconds, r.candidates,
              cfg.conditional), flush=True)
    runs = [("raw", 0.0)] + [(m, float(s)) for m in args.methods.split(",") for s in args.strengths.split(",")]
    for method, strength in runs:
        r = rejection.sample(g, d, cfg, args.n, args.seed, strength, "topk" if method == "raw" else method, cal)
        q = metrics.measure(r.images, cfg.dataset, r.labels)
        print(row(method, strength, q, r.seconds, r.candidates, cfg.conditional), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
