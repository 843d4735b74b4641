"""The training loop: `train(config, sink, stop_event, resume_from)`.

Shaped like nanoGPT's train.py and pytorch/examples dcgan: `_setup` builds everything, then `train` runs one loop
you read top to bottom (epochs of batches, each epoch's end) and `_final_event` says why the run stopped. The
per-step bookkeeping is in `Progress`, what an epoch's end leaves (sample grid, quality, checkpoint) in
`_epoch_end`, the step itself in `step.train_step`. The loop knows nothing about who listens: it emits typed events
to `sink`.

Fast by design: the whole dataset sits on the device as one uint8 tensor and a batch is a slice of a per-epoch
permutation (no DataLoader). A step only queues work on the device and its stats are summed there: the host waits
for the device once per `log_every` steps, to read them, and at an epoch's end (grid, scores, checkpoint). On CUDA
the step itself is replayed as a CUDA graph (`cuda_graph.GraphedStep`, cfg.cuda_graph): one launch instead of
hundreds.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from . import checkpoint as ckpt
from .config import ConfigError, TrainConfig
from .cuda_graph import GraphedStep
from .data import DataNotFoundError, load_dataset, to_float
from .device import resolve_device, resolve_precision, uses_cuda_graph
from .events import (
    CheckpointWritten,
    Done,
    EpochQuality,
    EpochSamples,
    Failed,
    Sink,
    Started,
    StepMetrics,
    Stopped,
    redact_paths,
)
from .models import N_CLASSES
from .sampling import class_row_inputs, render, seeded_noise
from .step import GanModels, build_gan, match_param_layout, spectral_sigma, train_step

# The fixed sample grid's noise seed: beyond every config seed (0..2**31-1), so it never shares noise with a run's
# training; and the same for every run, so runs with the same noise size (a sweep's points and seed repeats, any
# runs in Compare) draw their grids from the same z and compare digit by digit.
GRID_SEED = 2**31 + 1
KEEP_CHECKPOINTS = 2
BEST_GENERATOR = "best-generator.safetensors"  # beside generator.safetensors (the newest) in a run's folder


def _rng_state(models: GanModels) -> dict[str, torch.Tensor]:
    state = {"torch_cpu": torch.get_rng_state(), "loop": models.rng.get_state()}
    if models.device.type == "cuda":
        state["torch_cuda"] = torch.cuda.get_rng_state(models.device)
    return state


def _restore(models: GanModels, path: Path) -> tuple[int, int, torch.Tensor | None, int, dict]:
    """Load weights, optimizers and RNG from a checkpoint; returns (epoch, step, permutation, position, header)."""
    # Everything that could fail half-way (a generator export, missing RNG state, optimizer groups or tensors that
    # do not fit, an incompatible config) is refused here first: the CLI and the worker both come through this.
    header = ckpt.check_resumable(path, models.cfg)
    t = ckpt.load_tensors(path)
    models.g.load_state_dict(ckpt.split_prefix(t, "G"))
    models.d.load_state_dict(ckpt.discriminator_state(t, models.d))
    if models.g_ema is not None:
        ema = ckpt.split_prefix(t, "G_ema")
        if ema:
            models.g_ema.load_state_dict(ema)
        else:  # EMA switched on at resume: start the average from the current G
            models.g_ema.module.load_state_dict(models.g.state_dict())
    for name, opt, lr in (("opt_g", models.opt_g, models.cfg.lr_g), ("opt_d", models.opt_d, models.cfg.lr_d)):
        # this run's switches, not the checkpoint's: fused always, capturable when it records CUDA graphs
        own = {k: opt.param_groups[0][k] for k in ("fused", "capturable")}
        opt.load_state_dict(ckpt.optimizer_state(t, header, name))
        match_param_layout(opt)  # moments in the weights' layout (channels_last on CUDA)
        for group in opt.param_groups:  # a resumed run may change the learning rate or betas on purpose
            group.update(lr=lr, betas=(models.cfg.beta1, models.cfg.beta2), **own)
        for p, state in opt.state.items():  # fused Adam counts on the parameter's device (a non-fused file: CPU)
            state["step"] = state["step"].to(p.device, torch.float32)
    torch.set_rng_state(t["rng.torch_cpu"])
    if models.device.type == "cuda" and "rng.torch_cuda" in t:
        torch.cuda.set_rng_state(t["rng.torch_cuda"], models.device)
    try:
        models.rng.set_state(t["rng.loop"])
    except RuntimeError:  # saved on another device type: stay deterministic, though no longer bit-exact
        models.rng.manual_seed(models.cfg.seed + header["step"])
    perm = t.get("rng.perm")
    return (header["epoch"], header["step"], None if perm is None else perm.to(models.device), header.get("pos", 0),
            header)


def sample_grid_inputs(cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fixed (z, y) of the per-epoch sample grid: 8×8 random digits, or for a conditional (InfoGAN) run 10×10
    with one row per class (code) and the same noise down each column, so a column shows one style across rows."""
    if not (cfg.conditional or cfg.info_code):
        return seeded_noise(cfg, 64, GRID_SEED), None
    return class_row_inputs(cfg, GRID_SEED, N_CLASSES)  # (100, latent), (100,): row = class


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest checkpoint in `out_dir/checkpoints`, or None."""
    found = sorted((Path(out_dir) / "checkpoints").glob("ckpt-*.safetensors"))
    return found[-1] if found else None


@dataclass
class Progress:
    """Where the loop is and what it has summed since the last log line: all the state that changes per step."""
    epoch: int                             # completed epochs
    step: int                              # optimizer steps over the whole run
    pos: int                               # steps into the current epoch
    perm: torch.Tensor | None              # (N,) int64: this epoch's data order, on the device
    acc: torch.Tensor                      # (6,) train_step's stats summed since the last log line, on the device
                                           # (the two gradient norms: one sample each, see train)
    acc_steps: int = 0                     # steps summed in acc
    acc_g_steps: int = 0                   # ...of which updated G (fewer when n_critic > 1)
    last_g: tuple[float, float] = (0.0, 0.0)  # G's mean loss and |∇G| in the last interval that had a G update
    t0: float = field(default_factory=time.perf_counter)  # when the current log interval began
    saved_at: int = -1                     # the step of the last checkpoint written (never two at one step)
    best_fd: float | None = None           # the run's best Fréchet distance so far (kept across resume)
    best_epoch: int = 0                    # ...and the epoch that scored it: best-generator.safetensors holds its G

    @property
    def shown_epoch(self) -> int:
        """The 1-based epoch that samples and scores taken now belong to: an epoch ended mid-way counts."""
        return self.epoch + (1 if self.pos else 0)

    def at_max_steps(self, cfg: TrainConfig) -> bool:
        """Whether the run has taken the `max_steps` it was given (0: no limit)."""
        return bool(cfg.max_steps) and self.step >= cfg.max_steps

    def add(self, stats: torch.Tensor, g_step: bool) -> None:
        """Count one step and sum its stats (6,) on the device."""
        self.acc += stats
        self.acc_steps, self.acc_g_steps = self.acc_steps + 1, self.acc_g_steps + g_step
        self.pos, self.step = self.pos + 1, self.step + 1

    def flush(self, sink: Sink, batch_size: int, d: nn.Module) -> str | None:
        """Emit the mean stats since the last flush (with D's spectral σ read from `d`); returns a reason instead
        if they are not finite."""
        if self.acc_steps == 0:
            return None
        d_loss, g_loss, d_real, d_fake, d_norm, g_norm = self.acc.tolist()  # the one host sync per log interval
        now = time.perf_counter()
        elapsed, self.t0 = now - self.t0, now  # the sink's own time counts in the next interval: images/s is honest
        if self.acc_g_steps:  # n_critic > log_every: an interval may have no G step; repeat the last G numbers
            self.last_g = (g_loss / self.acc_g_steps, g_norm)  # the norms are one sample each, not a sum
        n = self.acc_steps
        ev = StepMetrics(self.step, self.epoch + 1, d_loss / n, self.last_g[0], d_real / n, d_fake / n,
                         n * batch_size / max(elapsed, 1e-9), d_norm, self.last_g[1], spectral_sigma(d))
        self.acc.zero_()
        self.acc_steps = self.acc_g_steps = 0
        if not all(map(_finite, (ev.d_loss, ev.g_loss))):
            return f"diverged at step {self.step}: d_loss={ev.d_loss}, g_loss={ev.g_loss}"
        sink(ev)
        return None


@dataclass(frozen=True)
class Setup:
    """What the loop reads but never changes: the models, the data on the device, where checkpoints go."""
    models: GanModels                # the eager models: checkpoints, sample grids and scores use these
    step_models: GanModels           # the same models, compiled when cfg.compile: what train_step runs
    graphed: GraphedStep | None      # the step as CUDA graphs (uses_cuda_graph), else None: train_step eagerly
    images: torch.Tensor             # (N, 28, 28) uint8, resident on the device for the whole run
    labels: torch.Tensor | None      # (N,) int64 for a conditional run, else None
    steps_per_epoch: int
    out: Path | None                 # checkpoints go to out/checkpoints; None: none are written
    grid: tuple[torch.Tensor, torch.Tensor | None]  # the fixed (z, y) of the sample grid (sample_grid_inputs)


def _setup(cfg: TrainConfig, resume_from: str | Path | None, out_dir: str | Path | None,
           images: torch.Tensor | None, data_dir: str | None, labels: torch.Tensor | None) -> tuple[Setup, Progress]:
    """Data on the device, the models (restored from `resume_from` if given), and where the loop starts."""
    device = resolve_device(cfg)
    if images is None:
        images, labels = load_dataset(cfg.dataset, "train", data_dir, limit=cfg.train_subset)
    elif cfg.train_subset:
        images = images[:cfg.train_subset]
        labels = labels[:cfg.train_subset] if labels is not None else None
    if cfg.conditional and labels is None:
        raise ConfigError("conditional: a conditional run needs the class labels of its training images")
    images = images.to(device)                               # (N, 28, 28) uint8
    labels = labels.to(device) if cfg.conditional and labels is not None else None  # (N,) int64
    n, b = images.shape[0], cfg.batch_size
    if n // b == 0:
        raise ConfigError(f"batch_size: {b} is larger than the {n} training images")
    models = build_gan(cfg, device)
    epoch, step, perm, pos = 0, 0, None, 0
    header: dict[str, Any] = {}
    if resume_from is not None:
        epoch, step, perm, pos, header = _restore(models, Path(resume_from))
        if perm is not None and perm.numel() != n:
            raise ConfigError(f"cannot resume: the checkpoint saw {perm.numel()} images, this run has {n} "
                              f"(train_subset or dataset changed)")
    step_models = replace(models, g=cast(nn.Module, torch.compile(models.g)),
                          d=cast(nn.Module, torch.compile(models.d))) if cfg.compile else models
    graphed = GraphedStep(models, b, capture=True) if uses_cuda_graph(cfg, device) else None
    setup = Setup(models, step_models, graphed, images, labels, n // b,
                  None if out_dir is None else Path(out_dir), sample_grid_inputs(cfg))
    best_fd, best_epoch = header.get("best_fd"), header.get("best_epoch")
    if not (isinstance(best_fd, float) and _finite(best_fd) and type(best_epoch) is int
            and 0 < best_epoch <= epoch + 1):
        best_fd, best_epoch = None, 0  # an older checkpoint (or a damaged header): the best starts again from here
    return setup, Progress(epoch, step, pos, perm, torch.zeros(6, device=device), best_fd=best_fd,
                           best_epoch=best_epoch)


def train(cfg: TrainConfig, sink: Sink, stop_event: threading.Event | None = None,
          resume_from: str | Path | None = None, out_dir: str | Path | None = None,
          images: torch.Tensor | None = None, data_dir: str | None = None,
          labels: torch.Tensor | None = None) -> None:
    """Train `cfg`, emitting events to `sink`, until done, failed or `stop_event` is set.

    `out_dir` receives checkpoints (none if None); `images` (uint8 (N, 28, 28)) and `labels` (N,) skip loading the
    dataset. Every outcome ends with exactly one Done, Stopped or Failed event: an error while setting up (config,
    data, checkpoint) is sent as Failed and then raised; an error inside the loop is sent as Failed and train returns.
    """
    stop_event = stop_event or threading.Event()
    try:
        setup, progress = _setup(cfg, resume_from, out_dir, images, data_dir, labels)
        sink(Started(setup.models.device.type, resolve_precision(cfg, setup.models.device), progress.step,
                     setup.graphed is not None))
    except Exception as e:
        sink(failed(e, 0, setting_up=True))
        raise
    models, epochs = setup.models, range(progress.epoch, cfg.epochs)  # none left: resumed after its last epoch
    take_step = setup.graphed or partial(train_step, setup.step_models)
    failure = peaked = None  # why the loop broke off, when it was not stop_event or max_steps
    try:
        for epoch in epochs:
            if progress.pos == 0:  # a new epoch: a new data order
                progress.perm = torch.randperm(len(setup.images), generator=models.rng, device=models.device)  # (N,)
            ############################
            # Train on each batch: one D update, and one G update every n_critic-th step (train_step)
            ###########################
            for batch in _batches(cfg, setup, progress, stop_event):     # (B,) indices into setup.images
                real = to_float(setup.images[batch])                         # (B, 1, 28, 28) in [-1, 1]
                y_real = None if setup.labels is None else setup.labels[batch]  # (B,) or None
                g_step = (progress.step + 1) % cfg.n_critic == 0
                # gradient norms: sampled on the interval's first step (D) and first G step (G), not averaged
                norms = (progress.acc_steps == 0, progress.acc_g_steps == 0)
                progress.add(take_step(real, y_real, g_step, norms), g_step)
                if progress.step % cfg.log_every == 0 and (failure := progress.flush(sink, cfg.batch_size, models.d)):
                    break
            failure = failure or progress.flush(sink, cfg.batch_size, models.d)  # the steps since the last log line
            ############################
            # The epoch's end (not when it was cut short): sample grid, quality scores, checkpoint; has FD peaked?
            ###########################
            if not failure and progress.pos == setup.steps_per_epoch:
                progress.epoch, progress.pos = epoch + 1, 0
                last = progress.epoch == cfg.epochs or progress.at_max_steps(cfg)
                _epoch_end(setup, progress, sink, grid=progress.epoch % cfg.sample_every == 0 or last,
                           checkpoint=progress.epoch % cfg.checkpoint_every == 0 or last)
                peaked = None if last else _peaked(cfg, progress)
            if failure or peaked or stop_event.is_set() or progress.at_max_steps(cfg):
                break  # the one way out before the last epoch: _final_event says which of these it was
        end = _final_event(cfg, setup, progress, sink, stop_event, failure, peaked, trained=bool(epochs))
    except Exception as e:  # a crash in the loop must reach the sink, not vanish with a thread
        end = failed(e, progress.step)
    sink(end)  # outside the try: a sink that fails on the terminal event cannot make it two


def _batches(cfg: TrainConfig, setup: Setup, progress: Progress, stop_event: threading.Event
             ) -> Iterator[torch.Tensor]:
    """The rest of this epoch's batches, as indices (B,) into setup.images, from progress.pos on (the loop's
    progress.add moves it); none more once stop_event is set or the run has taken max_steps (asked before each)."""
    b, perm = cfg.batch_size, progress.perm
    assert perm is not None  # drawn at the epoch's start, or restored with the checkpoint
    while progress.pos < setup.steps_per_epoch and not (stop_event.is_set() or progress.at_max_steps(cfg)):
        yield perm[progress.pos * b:(progress.pos + 1) * b]


def _final_event(cfg: TrainConfig, setup: Setup, progress: Progress, sink: Sink, stop_event: threading.Event,
                 failure: str | None, peaked: str | None, trained: bool) -> Done | Stopped | Failed:
    """Why the run stops, as its final event, after what that leaves behind: the checkpoint a stopped or peaked run
    resumes from, the grid, scores and checkpoint of an epoch max_steps cut short. `failure`: why the metrics say it
    diverged; `peaked`: why the FD says it is done (_peaked); `trained` False: it had no epoch left to train."""
    if not trained:
        return Done(progress.shown_epoch, progress.step)
    if failure:
        return Failed(failure, progress.step)
    if peaked:
        _save(setup, progress, sink)  # a run that peaked can still be resumed (with a larger patience)
        return Done(progress.shown_epoch, progress.step, peaked)
    if stop_event.is_set():
        _save(setup, progress, sink)
        return Stopped(progress.shown_epoch, progress.step)
    if progress.at_max_steps(cfg) and progress.pos:  # ended mid-epoch: still leave a sample grid, scores, checkpoint
        _epoch_end(setup, progress, sink, grid=True, checkpoint=True)
    return Done(progress.shown_epoch, progress.step)


def failure_reason(e: Exception, step: int = 0, setting_up: bool = False) -> str:
    """Why a run failed, in words for whoever reads it (the Runs page, the command line's "failed: ..."): the
    project's own errors (a setting, the data, a checkpoint) by their message, which says what to fix, never as
    "ConfigError: ..."; anything else (a bug, the machine out of memory) with its type beside its message, the one
    clue a report of it needs. The reason is stored with the run, which every visitor may open, so it names no
    server path; the whole error travels beside it in the Failed event (`failed`), for the server's log."""
    if isinstance(e, ConfigError):
        reason = f"refused before training: {e}"
    elif isinstance(e, DataNotFoundError):
        reason = f"could not load the training data: {e.reason}"
    elif isinstance(e, ckpt.CheckpointError):  # its reason names no server path: a web page shows it
        reason = f"could not resume from the checkpoint: {e.reason}"
    else:
        where = "while setting up" if setting_up else f"at step {step:,}"
        reason = f"stopped by an unexpected error {where} ({type(e).__name__}: {e})"
    return redact_paths(reason)


def failed(e: Exception, step: int = 0, setting_up: bool = False) -> Failed:
    """The Failed event for `e`: its reason for people (failure_reason) and, for the server's log, the whole error:
    the project's own errors by their full message, anything else with its traceback."""
    ours = isinstance(e, (ConfigError, DataNotFoundError, ckpt.CheckpointError))
    detail = str(e) if ours else "".join(traceback.format_exception(e)).rstrip()
    return Failed(failure_reason(e, step, setting_up), step, detail)


def _peaked(cfg: TrainConfig, progress: Progress) -> str | None:
    """Why the run stops here if its FD has not improved for early_stop_patience epochs, else None."""
    patience = cfg.early_stop_patience
    if not patience or progress.best_fd is None or progress.epoch - progress.best_epoch < patience:
        return None
    return (f"stopped early: the Fréchet distance has not improved for {progress.epoch - progress.best_epoch} "
            f"epochs (best {progress.best_fd:.2f} at epoch {progress.best_epoch}; early_stop_patience {patience})")


def _epoch_end(setup: Setup, progress: Progress, sink: Sink, grid: bool, checkpoint: bool) -> None:
    """What an epoch's end leaves: the sample grid if `grid`, quality scores (every epoch, so the chart has no
    gaps) and a checkpoint if `checkpoint`."""
    if grid:
        sink(EpochSamples(progress.shown_epoch, progress.step, render(setup.models.sampler, *setup.grid)))
    _measure(setup, progress, sink)
    if checkpoint:
        _save(setup, progress, sink)


def _measure(setup: Setup, progress: Progress, sink: Sink) -> None:
    """Score eval_samples images with the shipped classifier, when there is one for this dataset; a new best
    Fréchet distance also writes this G to best-generator.safetensors (seed 001: G can get worse after D wins)."""
    from . import metrics

    cfg = setup.models.cfg
    if not cfg.eval_samples or not metrics.classifier_path(cfg.dataset).is_file():
        return
    t = time.perf_counter()
    q = metrics.measure_generator(setup.models.sampler, cfg, cfg.eval_samples)
    best = q.fd == q.fd and (progress.best_fd is None or q.fd < progress.best_fd)  # a NaN score is never the best
    if best:
        progress.best_fd, progress.best_epoch = q.fd, progress.shown_epoch
        if setup.out is not None:
            ckpt.save_generator(setup.out / BEST_GENERATOR, cfg, setup.models.sampler, progress.shown_epoch,
                                progress.step, d=setup.models.d)  # D: --reject
    sink(EpochQuality(progress.shown_epoch, progress.step, q.to_dict(), time.perf_counter() - t, best))


def _save(setup: Setup, progress: Progress, sink: Sink) -> None:
    """Write a checkpoint (keeping the newest KEEP_CHECKPOINTS) and the generator export, at most once a step."""
    if setup.out is None or progress.saved_at == progress.step:
        return
    progress.saved_at = progress.step
    models = setup.models
    path = setup.out / "checkpoints" / f"ckpt-{progress.step:08d}.safetensors"
    rng = _rng_state(models)
    if progress.perm is not None and progress.pos:
        rng["perm"] = progress.perm  # mid-epoch: keep this epoch's order so resume continues it exactly
    ckpt.save_checkpoint(path, models.cfg, models.g, models.d, models.opt_g, models.opt_d, progress.epoch,
                         progress.step, rng, {"pos": progress.pos, "best_fd": progress.best_fd,
                                              "best_epoch": progress.best_epoch}, models.g_ema)
    # The export's epoch is the one its samples and scores carry (1-based, an epoch ended mid-way counts); the
    # checkpoint keeps completed epochs and `pos`, which resume needs. D travels along for --reject.
    ckpt.save_generator(setup.out / "generator.safetensors", models.cfg, models.sampler, progress.shown_epoch,
                        progress.step, d=models.d)
    for old in sorted(path.parent.glob("ckpt-*.safetensors"))[:-KEEP_CHECKPOINTS]:
        old.unlink()
        old.with_suffix(".json").unlink(missing_ok=True)
    sink(CheckpointWritten(progress.epoch, progress.step, str(path)))


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")
