"""`bench` (the trainer against a tutorial-style loop, and the costs around it) and `gpu-check` (the prepared
device check): gan_core.tools' measurements, printed."""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import PRECISIONS, PRESETS, ConfigError, TrainConfig
from .flags import check_new_path, float_in, int_in


def register(sub: Any) -> None:
    """Add `bench` and `gpu-check` to the subcommands."""
    b = sub.add_parser("bench", help="product trainer vs. tutorial-style loop, images/s and ratio")
    b.add_argument("--arch", choices=["dense", "dcgan"], default="dense")
    b.add_argument("--preset", choices=list(PRESETS), help="default: seed000-dense or seed003-dcgan")
    b.add_argument("--steps", type=int_in(1, 1_000_000), default=200, help="timed steps for each loop")
    b.add_argument("--device", choices=["auto", "cpu", "cuda"])
    b.add_argument("--precision", choices=PRECISIONS)
    b.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    b.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="replay the step as a CUDA graph (default on; CUDA only)")
    b.add_argument("--batch-size", type=int)
    b.add_argument("--data-dir", help="folder(s) with the idx files (default: $GAN_DATA_DIR)")
    b.add_argument("--threads", type=int_in(1, 1024),
                   help="torch CPU threads (default: torch's choice, one per core)")
    b.add_argument("--scale-lr", action="store_true", help="scale both learning rates with --batch-size "
                   "relative to the preset's batch (linear scaling rule)")
    b.add_argument("--generate", action="store_true", help="instead: warm latency of sampling 64 digits")
    b.add_argument("--profile", action="store_true", help="instead: torch.profiler table of --steps trainer steps")
    b.add_argument("--roofline", action="store_true",
                   help="instead: achieved GFLOP/s against a large matmul's in the same precision")
    b.add_argument("--quality", action="store_true", help="instead: cost of the per-epoch quality scoring")
    b.add_argument("--store", action="store_true",
                   help="instead: cost of writing metrics and sample grids to the store (worker's sink)")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=cmd_bench)

    gc = sub.add_parser("gpu-check", help="the prepared device check: CUDA tests, bench, generation latency, "
                        "scoring cost and a scored training run, into one JSON and one log")
    gc.add_argument("--out", required=True, help="folder for gpu_check.json and gpu_check.log")
    gc.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda when torch sees a GPU, else cpu")
    gc.add_argument("--tiny", action="store_true", help="a few steps of every part (CI on a CPU): well under a minute")
    gc.add_argument("--minutes", type=float_in(0.5, 600),
                    help="total budget [0.5..600] (default 8; tiny: 2, a ceiling)")
    gc.add_argument("--data-dir", help="folder(s) with the idx files (default: $GAN_DATA_DIR)")
    gc.set_defaults(func=cmd_gpu_check)


def cmd_bench(args: argparse.Namespace) -> int:
    """Time the tutorial-style loop and the product trainer on the same data; print img/s and the ratio."""
    from ..data import load_dataset
    from ..device import resolve_device
    from ..tools.bench import generation_latency, profile_steps, run_bench

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    preset, cfg = bench_config(args)
    if args.generate:
        r = {"preset": preset, "device": str(resolve_device(cfg)), **generation_latency(cfg)}
        print(json.dumps(r) if args.json else
              f"{preset}: {r['n']} digits in {r['median_ms']:.1f} ms (median, warm), p90 {r['p90_ms']:.1f} ms")
        return 0
    images, _ = load_dataset(cfg.dataset, "train", args.data_dir)
    if args.profile:
        print(profile_steps(cfg, images, steps=args.steps))
        return 0
    for mode, (measure, report) in bench_overheads(preset).items():
        if getattr(args, mode):
            r = {"preset": preset, "precision": cfg.precision, **measure(cfg, images, args.steps)}
            print(json.dumps(r) if args.json else report(r))
            return 0
    result = {"preset": preset, **run_bench(cfg, images, args.steps)}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{preset} on {result['device']} ({result['precision']}, batch {cfg.batch_size}, "
          f"{result['threads']} threads, torch {result['torch']}), {result['steps']} timed steps")
    print(f"  reference (tutorial loop): {result['reference_img_s']:>10.0f} img/s  "
          f"{result['reference_s_per_epoch']:>7.2f} s/epoch")
    print(f"  gan_core trainer:          {result['product_img_s']:>10.0f} img/s  "
          f"{result['product_s_per_epoch']:>7.2f} s/epoch")
    print(f"  speedup: {result['speedup']:.2f}x")
    return 0


def bench_config(args: argparse.Namespace) -> tuple[str, TrainConfig]:
    """`bench`'s preset name and config: --preset (default by --arch) with --device, --precision, --compile,
    --cuda-graph and --batch-size on top, learning rates scaled with the batch under --scale-lr."""
    preset = args.preset or ("seed003-dcgan" if args.arch == "dcgan" else "seed000-dense")
    overrides = {k: v for k, v in dict(device=args.device, precision=args.precision, compile=args.compile,
                                       cuda_graph=args.cuda_graph, batch_size=args.batch_size).items()
                 if v is not None}
    cfg = TrainConfig.from_preset(preset, **overrides)
    if cfg.arch != args.arch:
        raise ConfigError(f"--preset {preset} is a {cfg.arch} recipe, but --arch is {args.arch}")
    if args.scale_lr:  # linear scaling rule: a k-times larger batch takes k-times larger steps
        base = TrainConfig.from_preset(preset).batch_size
        cfg = cfg.replace(lr_g=cfg.lr_g * cfg.batch_size / base, lr_d=cfg.lr_d * cfg.batch_size / base)
    return preset, cfg


def bench_overheads(preset: str) -> dict[str, tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], str]]]:
    """`bench --quality | --roofline | --store`: flag → (measurement, its one-line report)."""
    from ..tools.bench import quality_overhead, roofline, store_overhead

    return {
        "quality": (quality_overhead, lambda r: f"{preset}: scoring {r['eval_samples']} samples takes "
                    f"{r['score_s']:.2f} s after an epoch of {r['epoch_s']:.1f} s: {r['quality_overhead_pct']:.1f} % "
                    f"extra"),
        "roofline": (roofline, lambda r: f"{preset}: {r['mflop_per_image']} MFLOP/image × {r['img_s']:.0f} img/s = "
                     f"{r['achieved_gflops']:.0f} GFLOP/s, {r['fraction_of_peak']:.0%} of the measured matmul peak "
                     f"({r['matmul_peak_gflops']:.0f} GFLOP/s)"),
        "store": (store_overhead, lambda r: f"{preset}: {r['no_store_img_s']:.0f} img/s without the store, "
                  f"{r['with_store_img_s']:.0f} with it: overhead {r['store_overhead_pct']:.1f} %"),
    }


def cmd_gpu_check(args: argparse.Namespace) -> int:
    """The prepared device check: CUDA tests, bench, latency, scoring cost and a scored training run,
    into --out/gpu_check.json and gpu_check.log; exit 1 if any part failed."""
    from ..tools.gpucheck import run_check

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} is a file; gpu-check writes gpu_check.json and gpu_check.log into a folder")
    check_new_path(out, "--out", folder=True)
    return run_check(out, device=args.device, tiny=args.tiny, minutes=args.minutes, data_dir=args.data_dir)
