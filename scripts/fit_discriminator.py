"""Give a generator export that carries no D one: fit the GAN's own D against the frozen G and write it into the file.

    python scripts/fit_discriminator.py gan_core/assets/generators/NAME.safetensors [--steps N] [--seed S]
                                        [--every K]

Exports written by `train` already carry D (save_generator(d=...)); this is for files exported before that, such as
the shipped generators, so that rejection (`--reject`, Generate's slider) works on them. D is built from the file's
config and trained with its loss against the frozen G (gan_core.rejection.fit_discriminator: why that estimates the
D rejection needs is in its docstring) on cfg.dataset's training images, minus FIT_HOLDOUT held out to report D's
accuracy on. The file is rewritten atomically with the same header epoch and step; G's tensors are checked
bit-identical to before, so every number measured on G alone still holds.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_core import rejection
from gan_core.checkpoint import load_discriminator, load_generator, save_generator
from gan_core.data import load_dataset


def main(argv: list[str] | None = None) -> int:
    """Fit D for one generator export, print its held-out accuracy, rewrite the file with D in it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="a generator export (.safetensors)")
    ap.add_argument("--steps", type=int, default=3000, help="D updates (batch = the config's batch_size)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=500, help="measure D's held-out accuracy every this many steps")
    ap.add_argument("--force", action="store_true", help="replace a D the file already carries")
    args = ap.parse_args(argv)

    path = args.checkpoint
    g, cfg, header = load_generator(path)
    if load_discriminator(path) is not None and not args.force:
        raise SystemExit(f"{path}: already carries a D (pass --force to refit it)")
    before = {k: v.clone() for k, v in g.state_dict().items()}
    images, labels = load_dataset(cfg.dataset, "train")
    # A seeded shuffle, so the held-out images (the last FIT_HOLDOUT) are a fair sample of every class.
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))
    images, labels = images[order], labels[order]
    print(f"{path}: {cfg.arch} {cfg.dataset} epoch {header['epoch']} step {header['step']} "
          f"(conditional={cfg.conditional}, info_code={cfg.info_code}, loss={cfg.loss}); fitting D for "
          f"{args.steps} steps on {len(images) - rejection.FIT_HOLDOUT} training images", flush=True)
    t0 = time.perf_counter()

    def log(step: int, real: float, fake: float) -> None:
        print(f"  step {step:>6}: held-out accuracy real {real:.3f} fake {fake:.3f} mean {(real + fake) / 2:.3f}"
              f"  ({time.perf_counter() - t0:.0f} s)", flush=True)

    report = rejection.FitReport()
    d = rejection.fit_discriminator(g, cfg, images, labels if cfg.conditional else None, args.steps,
                                    seed=args.seed, every=args.every, log=log, report=report)
    for k, v in g.state_dict().items():
        if not torch.equal(v, before[k]):
            raise SystemExit(f"{path}: G's {k} changed while fitting D; file left as it was")
    save_generator(path, cfg, g, header["epoch"], header["step"], d=d)
    g2, _, header2 = load_generator(path)
    same = all(torch.equal(v, before[k]) for k, v in g2.state_dict().items()) and set(g2.state_dict()) == set(before)
    if not same or (header2["epoch"], header2["step"]) != (header["epoch"], header["step"]):
        raise SystemExit(f"{path}: the rewritten file's G or header differs from before")
    d2 = load_discriminator(path)
    assert d2 is not None and all(torch.equal(v, d.state_dict()[k]) for k, v in d2.state_dict().items())
    _, real, fake = report.last
    print(f"{path}: rewritten with D ({time.perf_counter() - t0:.0f} s); G bit-identical, epoch/step kept; "
          f"D's held-out accuracy real {real:.3f} fake {fake:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
