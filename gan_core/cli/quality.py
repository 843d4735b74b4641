"""`evaluate`: a checkpoint's quality numbers beside real test data's, and the copy test; gan_core.evaluation
computes them, this module prints them."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import MIN_EVAL_SAMPLES, TrainConfig
from .flags import SEED_MAX, float_in, int_in

if TYPE_CHECKING:
    from ..evaluation import Evaluation


def register(sub: Any) -> None:
    """Add `evaluate` to the subcommands."""
    e = sub.add_parser("evaluate", help="quality of a checkpoint's samples vs. real test data")
    e.add_argument("--checkpoint", required=True, help="a .safetensors checkpoint or generator export")
    most = TrainConfig.most("eval_samples")
    e.add_argument("--n", type=int_in(MIN_EVAL_SAMPLES, most), default=5000,
                   help=f"samples to score [{MIN_EVAL_SAMPLES}..{most}]")
    e.add_argument("--seed", type=int_in(0, SEED_MAX), default=12345)
    e.add_argument("--json", action="store_true")
    e.add_argument("--train-limit", type=int_in(0, 60_000), default=None,
                   help="copy test: search only the first N training images (default $GAN_NEIGHBOURS_LIMIT or 0 = "
                        "all; the first run embeds them once, about a minute on a CPU, then they are cached)")
    e.add_argument("--no-copy-test", action="store_true", help="skip the nearest-training-image copy test")
    e.add_argument("--reject", type=float_in(0, 1), default=0.0,
                   help="reject the digits the generator's own D finds least real: 0 = raw (default) .. 1 = strict "
                        "(draws 4 candidates a digit); needs a file that carries D")
    e.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print the quality numbers of a checkpoint's generator beside those of real test data, and the copy test:
    how many samples sit closer to a training image than real images do (memorisation)."""
    from ..evaluation import evaluate_checkpoint

    def embedding_notice(dataset: str, limit: int, cache: Path) -> None:
        print(f"Embedding {'all' if not limit else f'the first {limit:,}'} {dataset} training images for the copy "
              f"test, once (about a minute for all 60,000 on a CPU; cached in {cache})...", file=sys.stderr,
              flush=True)
    result = evaluate_checkpoint(args.checkpoint, args.n, seed=args.seed, reject=args.reject,
                                 copy_test=not args.no_copy_test, train_limit=args.train_limit,
                                 on_embedding=embedding_notice)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print_evaluation(result)
    return 0


def print_evaluation(result: Evaluation) -> None:
    """`evaluate`'s text: the generated-vs-real table, class shares (and fidelity), the per-class table of a
    conditional generator and the copy test."""
    cfg, kept, copy, q = result.cfg, result.kept, result.copy, result.generated
    gen, real = q.to_dict(), result.real_test.to_dict()
    how = "" if kept is None else (f", rejection {result.reject:g} by its own D (kept of {kept.candidates} "
                                   f"candidates, {kept.seconds:.1f} s)")
    print(f"{result.checkpoint} ({cfg.arch}, {cfg.dataset}, epoch {result.epoch}), {result.n} samples{how}")
    print(f"{'':24}{'generated':>12}{'real test':>12}")
    for label, key in EVALUATE_ROWS:
        if gen.get(key) is not None:  # to_dict leaves out what was not measured (fidelity: unconditional G)
            b = real.get(key)
            print(f"{label:24}{gen[key]:>12.3f}" + (f"{b:>12.3f}" if b is not None else f"{'-':>12}"))
    print(f"FD ratio to the real floor: {result.fd_ratio:.2f}x")
    print("class shares: " + " ".join(f"{i}:{s:.1%}" for i, s in enumerate(q.class_shares)))
    if q.fidelity is not None:
        print(f"class fidelity (classifier agrees with the requested class): {q.fidelity:.2%}")
        print("per class: " + " ".join(f"{i}:{s:.1%}" for i, s in enumerate(q.fidelity_per_class or ())))
    if gen.get("per_class"):
        print(per_class_table(gen["per_class"], cfg.dataset))
    if copy is not None:
        what = "digit" if cfg.dataset == "mnist" else "image"
        print(f"copy test: closer to a training {what} than real {what}s are: {copy.flagged:.1%} of samples vs "
              f"{copy.real_flagged:.1%} of real test {what}s (median nearest-{what} distance {copy.median_distance:.2f}"
              f" vs {copy.real_median_distance:.2f}; {copy.train_n:,} training {what}s searched)")


# evaluate's generated-vs-real rows: (label, Quality.to_dict() key), printed when the dict has the key.
EVALUATE_ROWS = (("Fréchet distance", "fd"), ("inception score", "inception_score"),
                 ("mean confidence", "confidence"), ("feature diversity", "diversity"), ("realism", "realism"),
                 ("precision", "precision"),
                 ("recall", "recall"), ("density", "density"), ("coverage", "coverage"), ("KID", "kid"))
PER_CLASS_KEYS = ("precision", "recall", "density", "coverage", "fd")


def per_class_table(rows: Sequence[dict[str, Any]], dataset: str) -> str:
    """A conditional generator's per-class numbers (one dict a class) as a compact text table, one row a class."""
    from ..data import CLASS_NAMES

    names = CLASS_NAMES.get(dataset, ())
    lines = [f"{'per requested class':<24}" + "".join(f"{k:>11}" for k in PER_CLASS_KEYS)]
    for i, row in enumerate(rows):
        name = names[i] if i < len(names) else str(i)
        label = str(i) if name == str(i) else f"{i} {name[:12]}"  # MNIST's names are the digits themselves
        cells = "".join(f"{row[k]:>11.3f}" if isinstance(row.get(k), (int, float)) else f"{'-':>11}"
                        for k in PER_CLASS_KEYS)
        lines.append(f"  {label:<22}{cells}")
    return "\n".join(lines)
