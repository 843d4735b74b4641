"""`sample`: seeded digits from a checkpoint as .npy floats or a .png grid, kept by the file's own D with `--reject`."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import atomic_write
from ..config import ConfigError
from .flags import SEED_MAX, check_new_path, float_in, int_in


def register(sub: Any) -> None:
    """Add `sample` to the subcommands."""
    s = sub.add_parser("sample", help="generate digits from a checkpoint")
    s.add_argument("--checkpoint", required=True, help="a .safetensors checkpoint or generator export")
    s.add_argument("--n", type=int_in(1, 10_000), default=64, help="how many digits [1..10000]")
    s.add_argument("--seed", type=int_in(0, SEED_MAX), default=0, help=f"same seed, same digits [0..{SEED_MAX}]")
    s.add_argument("--label", type=int, default=None,
                   help="class to draw (0-9); required by conditional generators, refused by others")
    s.add_argument("--out", required=True, help=".npy (float32 N×28×28 in [-1, 1]) or .png (grid)")
    s.add_argument("--reject", type=float_in(0, 1), default=0.0,
                   help="reject the digits the generator's own D finds least real: 0 = raw (default) .. 1 = strict "
                        "(draws 4 candidates a digit); needs a file that carries D")
    s.set_defaults(func=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    """Write --n seeded samples from a checkpoint as .npy floats or a .png grid (--reject: kept by its own D)."""
    from ..checkpoint import load_generator
    from ..data import CLASS_NAMES
    from ..sampling import generate, generate_float, grid, label_tensor, png_bytes, to_uint8

    out = Path(args.out)
    if out.suffix not in (".npy", ".png"):
        raise ConfigError(f"--out: {out} must end in .npy (float32 N×28×28 in [-1, 1]) or .png (a grid)")
    check_new_path(out, "--out", folder=False)
    g, cfg, _ = load_generator(args.checkpoint)
    label_tensor(cfg, args.label, 1)  # refuse a wrong or missing label before writing anything
    kept = None
    if args.reject:
        from ..evaluation import rejected_draw

        kept = rejected_draw(args.checkpoint, g, cfg, args.n, args.seed, args.reject, args.label)
    if out.suffix == ".npy":
        arr = (generate_float(g, cfg, args.n, args.seed, args.label) if kept is None
               else kept.images.squeeze(1).numpy()).astype(np.float32)

        def save(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, arr)
        atomic_write(out, save)
    else:
        img = grid(generate(g, cfg, args.n, args.seed, args.label) if kept is None else to_uint8(kept.images))
        atomic_write(out, lambda tmp: Path(tmp).write_bytes(png_bytes(img, scale=2)))
    of = "" if args.label is None else f" of class {args.label} ({CLASS_NAMES[cfg.dataset][args.label]})"
    how = "" if kept is None else (f", rejection {args.reject:g}: kept {args.n} of {kept.candidates} candidates "
                                   f"in {kept.seconds:.1f} s")
    print(f"wrote {args.n} samples{of} (seed {args.seed}{how}) to {out}")
    return 0
