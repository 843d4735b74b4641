"""`python -m gan_core train | sample | bench | gpu-check | ...`: the command line over the same TrainConfig the
dashboard uses. Each verb imports what it needs when it runs: `gpu-check` must work on a machine without the store's
SQLAlchemy (and the dashboard's Streamlit and Plotly)."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import MIN_EVAL_SAMPLES, PRECISIONS, PRESETS, ConfigError, TrainConfig, coerce_value, config_fields
from ..checkpoint import CheckpointError, atomic_write, atomic_write_text, json_depth, read_header
from ..runs.sweep import METRICS, PRUNE_RULES

SEED_MAX = TrainConfig.most("seed")  # seeds are 0..2**31-1, as in TrainConfig
EPOCHS_MAX = TrainConfig.most("epochs")
RUN_ID_MAX = 2**63 - 1  # the store's 64-bit id column
MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes
MAX_CONFIG_DEPTH = 4  # an object of fields, some of them lists: 2 levels


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `lo` to `hi` (argparse puts the flag's name before the message)."""
    def parse(text: str) -> int:
        shown = text if len(text) <= 40 else text[:37] + "..."
        try:
            value = int(text)
        except ValueError:  # not a number, or more digits than int() converts
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo} to {hi}, got {shown!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{shown} is out of range; allowed {lo} to {hi}")
        return value
    return parse


def float_in(lo: float, hi: float) -> Callable[[str], float]:
    """An argparse type: a number from `lo` to `hi` (nan and inf are out of every range)."""
    def parse(text: str) -> float:
        shown = text if len(text) <= 40 else text[:37] + "..."
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number from {lo:g} to {hi:g}, got {shown!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{shown} is out of range; allowed {lo:g} to {hi:g}")
        return value
    return parse


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One `--field-name` flag per TrainConfig field, help and choices from the field's metadata."""
    g = p.add_argument_group("config fields (override the preset)")
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        if isinstance(f.default, bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=meta["help"])
        else:
            rng = f" [{meta['min']:g}..{meta['max']:g}]" if meta["min"] is not None else ""
            g.add_argument(flag, default=None, choices=meta["choices"], metavar=None if meta["choices"] else "V",
                           help=f"{meta['help']}{rng} (default {_show(f.default)})")


def _show(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line, coerced to their types."""
    return {f.name: coerce_value(f.name, getattr(args, f.name)) for f in config_fields()
            if getattr(args, f.name, None) is not None}


def read_config_file(name: str) -> dict[str, Any]:
    """The JSON object of config fields in file `name`; anything else (a folder, binary bytes, a list, JSON nested
    deeper than a config needs) is a ConfigError that names --config."""
    path = Path(name)
    if path.is_dir():
        raise ConfigError(f"--config: {name} is a folder; give a JSON file of config fields like {{\"epochs\": 5}}")
    if not path.is_file():
        raise ConfigError(f"--config: {name}: no such file" if not path.exists() else
                          f"--config: {name} is not a regular file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"--config: {name} is {path.stat().st_size / 2**20:.1f} MB; a config file is a few hundred "
                          f"bytes (at most {MAX_CONFIG_BYTES // 2**20} MB accepted)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"--config: {name} is not UTF-8 text; give a JSON file of config fields") from None
    if json_depth(text) > MAX_CONFIG_DEPTH:  # refused before parsing: json recurses once per level
        raise ConfigError(f"--config: {name} nests deeper than {MAX_CONFIG_DEPTH} levels; a config is one object "
                          f"of fields")
    try:
        data = json.loads(text)
    except ValueError as e:  # JSONDecodeError, or a number too long for int()
        raise ConfigError(f"--config: {name} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {name} holds a JSON {type(data).__name__}, not an object of config fields "
                          f"like {{\"epochs\": 5}}")
    return data


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Preset (or defaults) + `--config FILE` + individual flags, validated."""
    base = read_config_file(args.config) if args.config else {}
    if args.preset:
        return TrainConfig.from_preset(args.preset, **{**base, **config_overrides(args)})
    return TrainConfig.from_dict({**base, **config_overrides(args)})


def check_new_path(path: Path, flag: str, folder: bool) -> None:
    """Refuse, before any work, an output path that cannot be created: a folder where a file goes or a file where a
    folder goes, a path under a file, or one inside a folder this user cannot write."""
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag}: {path} is a file; train writes a run folder (config.json, checkpoints/, "
                          f"samples/) there, so give a folder")
    if not folder and path.is_dir():
        raise ConfigError(f"{flag}: {path} is a folder; give a file name")
    here = path.absolute()
    for at in ([here] if folder else []) + list(here.parents):  # the nearest folder that exists must take writes
        if at.exists():
            if not at.is_dir():
                raise ConfigError(f"{flag}: {path} lies under {at}, which is a file, not a folder")
            if not os.access(at, os.W_OK | os.X_OK):
                raise ConfigError(f"{flag}: cannot write {path}: {at} is not writable")
            return


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
        resume = latest_checkpoint(resume)
        if resume is None:
            raise CheckpointError("no checkpoints to resume from", args.resume)
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
    # Flushed inside tqdm's write mode, not after: stdout to a pipe or file is block-buffered, so tqdm.write's text
    # reached a log `2>&1` only later, into the middle of a bar line drawn since (issue 26).
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


def rejected_draw(args: argparse.Namespace, g: Any, cfg: TrainConfig, n: int, seed: int,
                  label: int | None) -> Any:
    """With --reject above 0: n digits that the generator's own D keeps (gan_core.rejection.DEFAULT_METHOD after
    recalibrating D on training images), a rejection.Rejected; None for the raw draw."""
    if not args.reject:
        return None
    from .. import rejection
    from ..checkpoint import load_discriminator

    d = load_discriminator(args.checkpoint)
    if d is None:
        raise ConfigError("--reject: this generator file carries no discriminator to reject with; use the run's "
                          "checkpoints/ckpt-*.safetensors, or a generator.safetensors written by this version")
    cal = rejection.training_calibration(g, d, cfg)
    return rejection.sample(g, d, cfg, n, seed, args.reject, rejection.DEFAULT_METHOD, cal, label)


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
    kept = rejected_draw(args, g, cfg, args.n, args.seed, args.label)
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


def cmd_bench(args: argparse.Namespace) -> int:
    """Time the tutorial-style loop and the product trainer on the same data; print img/s and the ratio."""
    from ..tools.bench import generation_latency, profile_steps, run_bench
    from ..data import load_dataset
    from ..device import resolve_device

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
    """The prepared device check (issue 16): CUDA tests, bench, latency, scoring cost and a scored training run,
    into --out/gpu_check.json and gpu_check.log; exit 1 if any part failed."""
    from ..tools.gpucheck import run_check

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} is a file; gpu-check writes gpu_check.json and gpu_check.log into a folder")
    check_new_path(out, "--out", folder=True)
    return run_check(out, device=args.device, tiny=args.tiny, minutes=args.minutes, data_dir=args.data_dir)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print the quality numbers of a checkpoint's generator beside those of real test data, and the copy test:
    how many samples sit closer to a training image than real images do (issue 18, memorisation)."""
    from .. import neighbours as nb
    from ..checkpoint import load_generator
    from ..metrics import measure, measure_generator, real_floor

    g, cfg, header = load_generator(args.checkpoint)
    floor = real_floor(cfg.dataset, min(args.n, 10_000))  # first: missing test data fails before the long part
    kept = rejected_draw(args, g, cfg, args.n, args.seed, None)
    q = measure_generator(g, cfg, args.n, seed=args.seed) if kept is None else measure(kept.images, cfg.dataset,
                                                                                        kept.labels)
    copy = None
    if not args.no_copy_test and cfg.dataset in nb.DATASETS:
        limit = nb.default_limit() if args.train_limit is None else args.train_limit
        if not nb.is_cached(cfg.dataset, limit):
            print(f"Embedding {'all' if not limit else f'the first {limit:,}'} {cfg.dataset} training images for "
                  f"the copy test, once (about a minute for all 60,000 on a CPU; cached in "
                  f"{nb.cache_path(cfg.dataset, limit, nb.classifier_digest(cfg.dataset)).parent})...",
                  file=sys.stderr, flush=True)
        feats = (nb.sample_features(g, cfg, args.n, seed=args.seed) if kept is None
                 else nb.image_features(kept.images, cfg.dataset))
        copy = nb.copy_test(feats, cfg.dataset,
                            real_n=min(args.n, 10_000), limit=limit)
    gen, real = q.to_dict(), floor.to_dict()
    # train's numbering: a checkpoint records completed epochs and steps into the next (pos); its G belongs to that
    # next epoch when pos > 0, as the samples and scores taken then do (a generator export records that already)
    epoch = header["epoch"] + (1 if header.get("pos") else 0)
    result = {"checkpoint": str(args.checkpoint), "dataset": cfg.dataset, "epoch": epoch,
              "generated": gen, "real_test": real, "fd_ratio": q.fd / floor.fd,
              "copy_test": None if copy is None else copy.to_dict(),
              "reject": None if kept is None else {"strength": args.reject, "candidates": kept.candidates,
                                                   "seconds": kept.seconds}}
    if args.json:
        print(json.dumps(result))
        return 0
    how = "" if kept is None else (f", rejection {args.reject:g} by its own D (kept of {kept.candidates} "
                                   f"candidates, {kept.seconds:.1f} s)")
    print(f"{args.checkpoint} ({cfg.arch}, {cfg.dataset}, epoch {epoch}), {args.n} samples{how}")
    print(f"{'':24}{'generated':>12}{'real test':>12}")
    for label, key in EVALUATE_ROWS:
        if gen.get(key) is not None:  # precision..kid arrive with metrics' newer Quality; older dicts lack them
            b = real.get(key)
            print(f"{label:24}{gen[key]:>12.3f}" + (f"{b:>12.3f}" if b is not None else f"{'-':>12}"))
    print(f"FD ratio to the real floor: {q.fd / floor.fd:.2f}x")
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
    return 0


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


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a worker that trains queued runs from the store; SIGTERM/SIGINT: the runs checkpoint, then it exits."""
    from ..runs.dispatcher import dispatch
    from ..runs.executor import executor_name
    from ..runs.settings import WorkerSettings
    from ..runs.store import Store

    settings = WorkerSettings.from_env()  # a malformed GAN_* setting or executor is refused before anything starts
    executor = executor_name()
    shutdown = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: shutdown.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        store = Store()
        print(f"worker {os.getpid()}: store {store.home}, cap {args.cap or settings.max_concurrent}, executor "
              f"{executor}", flush=True)
        n = dispatch(store, executor, cap=args.cap, once=args.once, max_runs=args.max_runs, shutdown=shutdown,
                     settings=settings)
    finally:
        for sig, handler in handlers.items():  # main() may be called again in this process (tests, scripts)
            signal.signal(sig, handler)
    print(f"worker {os.getpid()}: trained {n} run(s), exiting", flush=True)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate a config and queue it as a run in the store; prints the run id."""
    from ..runs.store import Store, check_submission

    cfg = config_from_args(args)
    check_submission(cfg, name=args.name or "", owner=args.owner or "")  # refused here: not even a database file
    run_id = Store().submit(cfg, name=args.name or "", owner=args.owner or "")
    print(run_id)
    return 0


def sweep_spec_from_args(args: argparse.Namespace) -> Any:
    """The sweep.SweepSpec the `sweep` flags describe (ConfigError for a bad one)."""
    from ..runs.sweep import SweepSpec, parse_param

    return SweepSpec(params=tuple(parse_param(t) for t in args.param), mode="random" if args.random else "grid",
                     draws=args.random or 0, seeds=args.seeds, prune=args.prune, grace=args.grace, eta=args.eta,
                     draw_seed=args.draw_seed)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Plan a sweep, print its points and planned compute, and queue it (nothing with --dry-run or a bad point)."""
    from ..budget import check_fits
    from ..runs.sweep import plan, point_text, total_steps

    base, spec = config_from_args(args), sweep_spec_from_args(args)
    runs = plan(base, spec)  # ConfigError naming every bad point: nothing queued
    flops = sum(check_fits(r.config).train_flops for r in runs)
    print(f"sweep: {spec.describe()}")
    for r in runs:
        if r.repeat == 0:
            print(f"  point {r.point + 1:>2}: {point_text(r.values)}")
    print(f"{len(runs)} runs, {total_steps(runs):,} steps, about {flops / 1e12:.3g} TFLOP in all (before pruning)")
    if args.dry_run:
        return 0
    from ..runs.store import Store, check_sweep_submission

    check_sweep_submission(args.name or "sweep", args.owner or "", [r.config for r in runs])  # before any file
    store = Store()
    sweep_id = store.submit_sweep(args.name or "sweep", spec.to_dict(), base, [(r.point, r.config) for r in runs],
                                  spec.points(), owner=args.owner or "")
    print(f"queued sweep {sweep_id}: runs {', '.join(str(r.id) for r in store.sweep_runs(sweep_id))}")
    return 0


def cmd_sweeps(args: argparse.Namespace) -> int:
    """List sweeps, or with --sweep ID print its leaderboard ranked by --metric (mean ± std over seeds)."""
    from ..runs.store import Store
    from ..runs.sweep import leaderboard, point_text

    store = Store()
    if args.sweep is None:
        for sw in store.list_sweeps():
            runs = store.sweep_runs(sw.id)
            states = ", ".join(f"{n} {s}" for s, n in sorted(
                {s: sum(r.status == s for r in runs) for s in {r.status for r in runs}}.items()))
            print(f"{sw.id:>5}  {sw.name}  {len(runs)} runs ({states or 'none left'})")
        return 0
    sw = store.get_sweep(args.sweep)
    if sw is None:
        raise ConfigError(f"--sweep {args.sweep}: no such sweep (see `sweeps`)")
    runs = store.sweep_runs(sw.id)
    board = leaderboard(sw.points, [(r.id, r.sweep_point, r.status) for r in runs],
                        {r.id: store.quality(r.id) for r in runs}, args.metric)
    print(f"sweep {sw.id} {sw.name}: ranked by {args.metric} (mean over seeds)")
    for e in board:
        score = "-" if e.mean is None else f"{e.mean:.3f}" + ("" if e.std is None else f" ± {e.std:.3f}")
        rank = "-" if e.rank is None else e.rank
        print(f"{rank:>3}. {score:>18}  runs {','.join(map(str, e.run_ids)):<12} {'/'.join(e.statuses):<20} "
              f"{point_text(e.values)}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List the store's runs."""
    from ..runs.store import Store

    unreadable: list = []
    for r in Store().list_runs(unreadable=unreadable):
        print(f"{r.id:>5}  {r.status:<11} {r.step:>8}/{r.total_steps:<8} {r.name}  {r.error or ''}")
    for u in unreadable:  # one damaged row never hides the others
        print(f"warning: {u.text()}", file=sys.stderr)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Ask a queued or running run (or every live run of a sweep) to stop (each checkpoints first)."""
    from ..runs.store import Store

    if args.sweep is not None:
        store = Store()
        if store.get_sweep(args.sweep) is None:
            raise ConfigError(f"--sweep {args.sweep}: no such sweep (see `sweeps`)")
        print(f"stop requested for {store.stop_sweep(args.sweep)} run(s) of sweep {args.sweep}")
        return 0
    if not Store().request_stop(args.run):
        raise ConfigError(f"run {args.run} is not queued or running")
    print(f"stop requested for run {args.run}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Queue a stopped, interrupted or failed run again (or every stopped or interrupted run of a sweep); a worker
    continues each from its newest checkpoint."""
    from ..runs.store import Store

    if args.sweep is not None:
        from ..runs.sweep import RESUME_STATUSES

        store = Store()
        if store.get_sweep(args.sweep) is None:
            raise ConfigError(f"--sweep {args.sweep}: no such sweep (see `sweeps`)")
        if args.extra_epochs:
            raise ConfigError("--extra-epochs is for one run (--run); a sweep's runs resume to their planned end")
        ids = store.resume_sweep(args.sweep, [r.id for r in store.sweep_runs(args.sweep)
                                              if r.status in RESUME_STATUSES])
        print(f"queued {len(ids)} run(s) of sweep {args.sweep} to resume" + (f": {', '.join(map(str, ids))}" if ids
              else " (none is stopped or interrupted)"))
        return 0
    if not Store().request_resume(args.run, extra_epochs=args.extra_epochs):
        raise ConfigError(f"run {args.run} cannot be resumed (it must exist and be stopped, interrupted or failed; "
                          f"a done run needs --extra-epochs)")
    print(f"run {args.run} queued to resume")
    return 0


def _train_verb(sub: Any) -> None:
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


def _sample_verb(sub: Any) -> None:
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


def _bench_verb(sub: Any) -> None:
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


def _gpu_check_verb(sub: Any) -> None:
    gc = sub.add_parser("gpu-check", help="the prepared device check: CUDA tests, bench, generation latency, "
                        "scoring cost and a scored training run, into one JSON and one log")
    gc.add_argument("--out", required=True, help="folder for gpu_check.json and gpu_check.log")
    gc.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda when torch sees a GPU, else cpu")
    gc.add_argument("--tiny", action="store_true", help="a few steps of every part (CI on a CPU): well under a minute")
    gc.add_argument("--minutes", type=float_in(0.5, 600),
                    help="total budget [0.5..600] (default 8; tiny: 2, a ceiling)")
    gc.add_argument("--data-dir", help="folder(s) with the idx files (default: $GAN_DATA_DIR)")
    gc.set_defaults(func=cmd_gpu_check)


def _evaluate_verb(sub: Any) -> None:
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


def queue_flags(p: argparse.ArgumentParser, what: str) -> argparse.ArgumentParser:
    """The flags of a verb that queues work (`submit` a run, `sweep` a group): its config (preset, JSON file, one
    flag per field), name and owner."""
    p.add_argument("--preset", choices=list(PRESETS), help="a seed tutorial's recipe" + (
        " (the base every point changes)" if what == "sweep" else ""))
    p.add_argument("--config", help="a JSON file of config fields")
    p.add_argument("--name", help=f"{what} name")
    p.add_argument("--owner", help=f"who the {what} belongs to")
    add_config_flags(p)
    return p


def _store_verbs(sub: Any) -> None:
    # The verbs over the run store: the worker that trains queued runs, and the operator's queue commands.
    w = sub.add_parser("worker", help="train queued runs from the store ($GAN_HOME / $GAN_DB_URL)")
    w.add_argument("--once", action="store_true", help="exit when the queue is empty")
    w.add_argument("--max-runs", type=int_in(0, 2**31 - 1), default=0, help="exit after this many runs (0 = never)")
    w.add_argument("--cap", type=int_in(1, 10_000),
                   help="concurrency cap across workers, at least 1 (default $GAN_MAX_CONCURRENT or 1)")
    w.set_defaults(func=cmd_worker)

    queue_flags(sub.add_parser("submit", help="validate a config and queue it as a run for the workers"),
                "run").set_defaults(func=cmd_submit)

    sw = sub.add_parser("sweep", help="queue a sweep: one run per point of a grid or random search (see README)")
    sw.add_argument("--param", action="append", default=[], required=True, metavar="NAME=VALUES",
                    help="a swept field: lr_g=1e-4,2e-4 (values), d_dropout=0..0.5 or lr_g=1e-5..1e-3:log (ranges, "
                         "random search only); list fields separate values with '|'. Repeat for more fields.")
    sw.add_argument("--random", type=int_in(1, 64), help="random search: this many draws (default: the full grid)")
    sw.add_argument("--seeds", type=int_in(1, 10), default=1, help="repeat every point over this many seeds")
    sw.add_argument("--prune", choices=PRUNE_RULES, default="none",
                    help="stop runs early whose FD at an epoch is worse than their sweep's median (median) or not "
                         "in the best 1/eta at a rung (asha); needs eval_samples on")
    sw.add_argument("--grace", type=int_in(1, 10_000), default=1, help="first epoch pruning may act (ASHA's rung)")
    sw.add_argument("--eta", type=int_in(2, 10), default=3, help="ASHA: keep the best 1/eta at each rung")
    sw.add_argument("--draw-seed", type=int_in(0, SEED_MAX), default=0, help="random search's own seed")
    sw.add_argument("--dry-run", action="store_true", help="print the points and planned compute; queue nothing")
    queue_flags(sw, "sweep").set_defaults(func=cmd_sweep)
    ls = sub.add_parser("sweeps", help="list sweeps, or one sweep's leaderboard")
    ls.add_argument("--sweep", type=int_in(1, RUN_ID_MAX), help="print this sweep's leaderboard")
    ls.add_argument("--metric", default="best FD", choices=list(METRICS), help="what the leaderboard ranks by (default: best FD)")
    ls.set_defaults(func=cmd_sweeps)

    sub.add_parser("runs", help="list runs in the store").set_defaults(func=cmd_runs)
    st = sub.add_parser("stop", help="ask a run (or a sweep's runs) to stop after a checkpoint")
    which = st.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", type=int_in(1, RUN_ID_MAX), help="the run's id (see `runs`)")
    which.add_argument("--sweep", type=int_in(1, RUN_ID_MAX), help="stop every live run of this sweep")
    st.set_defaults(func=cmd_stop)
    rs = sub.add_parser("resume", help="queue a stopped or interrupted run (or a sweep's) to continue from its "
                                       "checkpoint")
    which = rs.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", type=int_in(1, RUN_ID_MAX), help="the run's id (see `runs`)")
    which.add_argument("--sweep", type=int_in(1, RUN_ID_MAX),
                       help="every stopped or interrupted run of this sweep (pruned, failed and done ones stay)")
    rs.add_argument("--extra-epochs", type=int_in(0, EPOCHS_MAX), default=0,
                    help=f"train this many epochs more than planned [0..{EPOCHS_MAX}]")
    rs.set_defaults(func=cmd_resume)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every subcommand, one helper per verb (or group of verbs), in `--help` order."""
    p = argparse.ArgumentParser(prog="python -m gan_core", description="GAN Studio engine")
    sub = p.add_subparsers(dest="cmd", required=True)
    for add in (_train_verb, _sample_verb, _bench_verb, _gpu_check_verb, _evaluate_verb, _store_verbs):
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, and turn a person's mistakes into one `error:` line and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    # Only the errors a person's input or machine causes (OSError: missing data, unwritable paths, a full disk);
    # anything else is a bug and keeps its traceback.
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that are a person's mistake or their machine's state, not a bug.

    StoreError counts only once the store was imported (nothing else raises it), so that verbs without a store
    never import SQLAlchemy.
    """
    store = sys.modules.get("gan_core.runs.store")
    return (ConfigError, CheckpointError, OSError, json.JSONDecodeError, UnicodeDecodeError) + (
        (store.StoreError,) if store is not None else ())
