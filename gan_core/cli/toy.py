"""`toy`: the 2-D mode-collapse benchmark (ring of 8, grid of 25) over several seeds, mean ± std of each number."""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import fields
from typing import Any

from ..toy import MIXTURES, ToyConfig
from .flags import int_in


def register(sub: Any) -> None:
    """Add `toy` to the subcommands: one flag per ToyConfig field, with its default."""
    t = sub.add_parser("toy", help="the 2-D mode-collapse benchmark (PacGAN's protocol) over several seeds")
    t.add_argument("--seeds", type=int_in(1, 100), default=3, help="trials, seeds 0.. N-1 [1..100]")
    t.add_argument("--json", action="store_true", help="one JSON object: every trial and the summary")
    for f in fields(ToyConfig):  # one flag per field, its choices or bounds from the field's metadata
        if f.name == "seed":
            continue
        meta, flag = f.metadata, "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            t.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=meta["help"])
        elif meta["choices"]:
            t.add_argument(flag, choices=meta["choices"], default=f.default, help=meta["help"])
        else:
            kind = int_in(int(meta["min"]), int(meta["max"])) if isinstance(f.default, int) else float
            t.add_argument(flag, type=kind, default=f.default,
                           help=f"{meta['help']} [{meta['min']:g}..{meta['max']:g}] (default {f.default:g})")
    t.set_defaults(func=cmd_toy)


def cmd_toy(args: argparse.Namespace) -> int:
    """Train the toy GAN once per seed and print each trial's score, then mean ± std over the trials."""
    from ..toy import run_toy

    base = {f.name: getattr(args, f.name) for f in fields(ToyConfig) if f.name != "seed"}
    ToyConfig(**base)  # every value checked before the first trial trains
    trials = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        s = run_toy(ToyConfig(**base, seed=seed))
        trials.append({"seed": seed, "modes": s.modes, "high_quality": s.high_quality, "reverse_kl": s.reverse_kl,
                       "seconds": round(time.perf_counter() - t0, 1)})
        if not args.json:
            print(f"seed {seed}: {s.modes} modes, {s.high_quality:.1%} high quality, reverse KL {s.reverse_kl:.3f} "
                  f"({trials[-1]['seconds']} s)", flush=True)
    summary = {k: _mean_std([t[k] for t in trials]) for k in ("modes", "high_quality", "reverse_kl")}
    if args.json:
        print(json.dumps({"config": base, "trials": trials, "summary": summary}))
    else:
        (m, ms), (h, hs), (k, ks) = summary["modes"], summary["high_quality"], summary["reverse_kl"]
        print(f"{args.mixture}, pack {args.pack}, {args.steps:,} steps, {args.seeds} seeds: {m:.1f} ± {ms:.1f} modes "
              f"of {len(MIXTURES[args.mixture].means)}, {h:.1%} ± {hs:.1%} high quality, reverse KL {k:.3f} ± {ks:.3f}")
    return 0


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single trial); both inf when a trial's is (no sample near any
    mode: its reverse KL has no value)."""
    if not all(math.isfinite(v) for v in values):
        return math.inf, math.inf
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
