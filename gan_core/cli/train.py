"""`train`: a run into a folder, with a tqdm bar of live losses; `--resume` continues one from its checkpoint."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..checkpoint import CheckpointError, atomic_write, atomic_write_text, read_header
from ..config import PRESETS, ConfigError, TrainConfig
from .flags import add_config_flags, check_new_path, config_from_args, config_overrides, read_config_file


def register(sub: Any) -> None:
    """Add `train` to the subcommands."""
    t = sub.add_parser("train", help="train a GAN, writing checkpoints and sample grids to --out")
    t.add_argument("--preset", choices=list(PRESETS), help="a seed tutorial's recipe")
    t.add_argument("--config", help="a JSON file of config fields")
    t.add_argument("--out", required=True, help="run folder for checkpoints, samples and the generator")
    t.add_argument("--resume", help="checkpoint file or run folder (its newest checkpoint) to continue from, with "
                   "its own config: --config and config flags change fields that keep the architecture; --preset "
                   "is refused")
    t.add_argument("--data-dir", help="folder(s) with the idx files (default: $GAN_DATA_DIR)")
    add_config_flags(t)
    t.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) a run into --out with a tqdm bar of live losses; Ctrl-C checkpoints and stops."""
    from ..budget import check_fits
    from ..checkpoint import saved_order_size
    from ..data import load_dataset
    from ..device import resolve_device, resolve_precision
    from ..trainer import latest_checkpoint

    # Every check comes before the first write: a refused command leaves --out exactly as it was.
    out = Path(args.out)
    check_new_path(out, "--out", folder=True)
    cfg, resume = train_config(args)
    theirs = latest_checkpoint(out)
    if theirs is not None and (resume is None or resume.resolve().parent != theirs.resolve().parent):
        # Two runs' checkpoints in one folder: the newest-step file would win every later resume.
        raise ConfigError(f"--out: {out} already holds a run's checkpoints ({theirs.name}); continue it with "
                          f"--resume {out}, or choose an empty folder")
    resolve_precision(cfg, resolve_device(cfg))  # a malformed GAN_CPU_BF16 is refused here, before --out is made
    check_fits(cfg)  # sized on the meta device: a run that cannot fit in memory is refused with the estimate
    images, labels = load_dataset(cfg.dataset, "train", args.data_dir, limit=cfg.train_subset)
    seen = saved_order_size(resume) if resume is not None else None
    if seen is not None and seen != images.shape[0]:
        raise ConfigError(f"cannot resume: the checkpoint saw {seen} images, this run has {images.shape[0]} "
                          f"(train_subset or dataset changed)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2))
    return train_with_bar(cfg, out, resume, images, labels)


def train_config(args: argparse.Namespace) -> tuple[TrainConfig, Path | None]:
    """`train`'s config and the checkpoint it resumes from (None: a new run from --preset, --config and flags)."""
    from ..checkpoint import check_resumable
    from ..trainer import latest_checkpoint

    if not args.resume:
        return config_from_args(args), None
    resume = Path(args.resume)
    if resume.is_dir():
        newest = latest_checkpoint(resume)
        if newest is None:
            raise CheckpointError("no checkpoints to resume from", args.resume)
        resume = newest
    if args.preset:  # a preset is a whole recipe, architecture included: it cannot half-apply to a run
        raise ConfigError(f"--preset {args.preset} cannot be combined with --resume: a resumed run keeps its "
                          f"checkpoint's recipe. Drop --preset; to change fields such as --epochs or --lr-g, "
                          f"give those flags (or --config FILE) instead")
    # --config's fields, then the flags, on top of the checkpoint's config; an architecture change is refused by
    # check_resumable with the fields named.
    changes = {**(read_config_file(args.config) if args.config else {}), **config_overrides(args)}
    cfg = TrainConfig.from_dict({**read_header(resume)["config"].to_dict(), **changes})
    check_resumable(resume, cfg)
    return cfg, resume


def train_with_bar(cfg: TrainConfig, out: Path, resume: Path | None, images: Any, labels: Any) -> int:
    """Run the trainer under a tqdm bar, SIGINT/SIGTERM asking it to checkpoint and stop; 1 if it failed."""
    from tqdm import tqdm

    from ..events import Done, Failed, Stopped
    from ..trainer import train

    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    n = cfg.train_subset or 60_000
    total = cfg.epochs * (n // cfg.batch_size)
    bar = tqdm(total=min(total, cfg.max_steps) if cfg.max_steps else total, unit="step", dynamic_ncols=True,
               mininterval=0.5)
    outcome: list[Done | Stopped | Failed] = []
    try:  # Ctrl-C: checkpoint, then stop
        train(cfg, progress_sink(cfg, out, bar, outcome), stop, resume_from=resume, out_dir=out, images=images,
              labels=labels)
    finally:
        bar.close()
        for sig, handler in handlers.items():  # main() may be called again in this process (tests, scripts)
            signal.signal(sig, handler)
    ev = outcome[-1]
    if isinstance(ev, Failed):
        print(f"failed: {ev.reason}", file=sys.stderr)
        return 1
    why = f" ({ev.reason})" if isinstance(ev, Done) and ev.reason else ""
    best = out / "best-generator.safetensors"
    print(f"{'stopped' if isinstance(ev, Stopped) else 'done'} at epoch {ev.epoch}, step {ev.step}{why}; "
          f"generator: {out / 'generator.safetensors'}" + (f", best epoch's: {best}" if best.is_file() else ""))
    return 0


def above_bar(bar: Any, line: str) -> None:
    """Print `line` to stdout above the live tqdm `bar` (which draws on stderr): the bar is cleared, the line
    written and flushed, then the bar redrawn."""
    # Flushed inside tqdm's write mode, not after: stdout to a pipe or file is block-buffered, so text written
    # without the flush would reach a log `2>&1` only later, in the middle of a bar line drawn since.
    with bar.external_write_mode(file=sys.stdout):
        print(line, file=sys.stdout, flush=True)


def progress_sink(cfg: TrainConfig, out: Path, bar: Any, outcome: list[Any]) -> Callable[[Any], None]:
    """Trainer events → the tqdm `bar`, sample grids in `out`/samples, and the final event appended to `outcome`."""
    from ..events import CheckpointWritten, Done, EpochQuality, EpochSamples, Failed, Started, StepMetrics, Stopped
    from ..sampling import grid, png_bytes

    def sink(ev: Any) -> None:
        if isinstance(ev, Started):
            why = " (auto)" if cfg.precision == "auto" else ""
            above_bar(bar, f"training on {ev.device} in {ev.precision}{why}"
                      + (" as a CUDA graph" if ev.cuda_graph else "") + (f" from step {ev.step}" if ev.step else ""))
        elif isinstance(ev, StepMetrics):
            bar.update(ev.step - bar.n)
            bar.set_postfix(epoch=ev.epoch, d=f"{ev.d_loss:.3f}", g=f"{ev.g_loss:.3f}", Dx=f"{ev.d_real:.2f}",
                            DGz=f"{ev.d_fake:.2f}", img_s=f"{ev.images_per_sec:.0f}", refresh=False)
        elif isinstance(ev, EpochSamples):
            path = out / "samples" / f"epoch-{ev.epoch:04d}.png"
            atomic_write(path, lambda tmp: Path(tmp).write_bytes(png_bytes(grid(ev.images), scale=2)))
        elif isinstance(ev, EpochQuality):
            q = ev.quality
            fid = f", fidelity {q['fidelity']:.1%}" if "fidelity" in q else ""
            pr = f", precision {q['precision']:.2f}, recall {q['recall']:.2f}" if "recall" in q else ""
            pr = (f", realism {q['realism']:.2f}" if q.get("realism") is not None else "") + pr
            above_bar(bar, f"epoch {ev.epoch}: FD {q['fd']:.2f}, IS {q['inception_score']:.2f}{pr}, classes "
                      f"{min(q['class_shares']):.1%}..{max(q['class_shares']):.1%}{fid} ({ev.seconds:.1f} s)"
                      + (" · best so far" if ev.best else ""))
        elif isinstance(ev, CheckpointWritten):
            above_bar(bar, f"checkpoint: {ev.path}")
        elif isinstance(ev, (Done, Stopped, Failed)):
            outcome.append(ev)
    return sink
