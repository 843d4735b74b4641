"""The training loop: `train(config, sink, stop_event, resume_from)`.

Shaped like nanoGPT's train.py: `_setup` builds everything, then `train` runs one loop you read top to bottom, with
the per-step bookkeeping in `Progress` and what an epoch's end leaves (sample grid, quality, checkpoint) in
`_epoch_end`. The loop knows nothing about who listens: it emits typed events to `sink`.

Fast by design (pytorch/examples dcgan, tuned): the whole dataset sits on the device as one uint8 tensor and a
batch is a slice of a per-epoch permutation (no DataLoader); D sees real and fake in one forward pass; the fake
batch of the D step is reused for the G step with D's weights frozen; fused Adam. A step only queues work on the
device and its stats are summed there: the host waits for the device once per `log_every` steps, to read them, and
at an epoch's end (grid, scores, checkpoint). The exception is `g_ema` on CUDA: torch's AveragedModel copies its
step counter, kept on the CPU, to the device at every G update, and that copy waits for the device. On CUDA the
step itself is replayed as a CUDA graph (`GraphedStep`, cfg.cuda_graph): one launch instead of hundreds.
"""
from __future__ import annotations

import contextlib
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from . import checkpoint as ckpt
from .config import ConfigError, TrainConfig
from .data import DataNotFoundError, load_dataset, to_float
from .device import cuda_fast_math, resolve_device, resolve_precision
from .events import (CheckpointWritten, Done, EpochQuality, EpochSamples, Failed, Sink, Started, StepMetrics,
                     Stopped, redact_paths)
from .losses import LOSSES, Loss, gradient_penalty, info_loss
from .models import N_CLASSES, build_discriminator, info_code, build_generator, sample_labels, sample_noise
from .sampling import class_row_inputs, render, seeded_noise

# The fixed sample grid's noise seed: beyond every config seed (0..2**31-1), so it never shares noise with a run's
# training; and the same for every run, so runs with the same noise size (a sweep's points and seed repeats, any
# runs in Compare) draw their grids from the same z and compare digit by digit.
GRID_SEED = 2**31 + 1
KEEP_CHECKPOINTS = 2
BEST_GENERATOR = "best-generator.safetensors"  # beside generator.safetensors (the newest) in a run's folder


@dataclass
class GAN:
    """Everything one training step touches."""
    cfg: TrainConfig
    g: nn.Module
    d: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: Loss
    rng: torch.Generator  # data order and noise, on the training device
    device: torch.device
    split_d: bool = False  # D has BatchNorm: run it on real and fake separately (see train_step)
    g_ema: AveragedModel | None = None  # moving average of G's weights (cfg.g_ema > 0)

    @property
    def sampler(self) -> nn.Module:
        """The G that samples, scores and exports use: the EMA copy when there is one."""
        return self.g_ema.module if self.g_ema is not None else self.g

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when the config's precision resolves to bf16 on this device, else a no-op."""
        # No cast cache under a CUDA graph (torch's rule for autocast in a capture): the weights' bf16 copies made
        # in the capture would be freed with the cache, yet the graph would go on reading them.
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=resolve_precision(self.cfg, self.device) == "bf16",
                              cache_enabled=not uses_cuda_graph(self.cfg, self.device))


def build_gan(cfg: TrainConfig, device: torch.device, channels_last: bool | None = None) -> GAN:
    """Models, optimizers and RNG for `cfg`, seeded so the same config gives the same run; `channels_last` (None:
    on for a DCGAN on CUDA) stores conv weights NHWC."""
    if device.type == "cuda":
        cuda_fast_math()
    torch.manual_seed(cfg.seed)  # weight init and dropout masks
    g, d = build_generator(cfg).to(device), build_discriminator(cfg).to(device)
    if channels_last is None:
        channels_last = cfg.arch == "dcgan" and device.type == "cuda"
    if channels_last:
        # NHWC is the layout cuDNN's tensor-core convs read natively; NCHW weights cost a transpose per conv. Done
        # before the optimizers and the EMA copy exist, so their state follows this layout. Input batches need no
        # change: a (B, 1, 28, 28) batch has one channel, so its memory is already NHWC.
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)

    def adam(params, lr: float) -> torch.optim.Optimizer:
        # fused=True runs the whole update as one kernel per device (CPU too, torch ≥ 2.4). capturable: the step
        # may be recorded in a CUDA graph (its step count already lives on the device when fused: same update).
        return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), fused=True,
                                capturable=uses_cuda_graph(cfg, device))

    rng = torch.Generator(device).manual_seed(cfg.seed)
    split_d = any(isinstance(mod, nn.modules.batchnorm._BatchNorm) for mod in d.modules())
    # EMA of the weights only; BatchNorm running stats are copied from the live G (use_buffers=False).
    ema = AveragedModel(g, multi_avg_fn=ema_update(cfg.g_ema)) if cfg.g_ema else None
    return GAN(cfg, g, d, adam(g.parameters(), cfg.lr_g), adam(d.parameters(), cfg.lr_d), LOSSES[cfg.loss], rng,
               device, split_d, ema)


def match_param_layout(opt: torch.optim.Optimizer) -> None:
    """Give the optimizer's per-parameter state its parameter's memory layout (after loading a checkpoint).

    A checkpoint stores contiguous tensors; fused Adam walks param, grad and moments as flat memory, so moments left
    NCHW beside NHWC (channels_last) weights would be paired with the wrong elements, silently. A no-op when the
    layouts already agree (every CPU run), so exact resume is untouched.
    """
    for p, state in opt.state.items():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def ema_update(decay: float) -> Callable[[list, list, torch.Tensor], None]:
    """AveragedModel's multi_avg_fn for an EMA whose decay ramps up as min(decay, (1 + n) / (10 + n)).

    A fixed 0.999 from step 0 would keep ~40 % of the random initial weights after 500 steps; averaging weights
    that far apart gives noise, not digits. The ramp (as in timm's ModelEma warm-up) makes the average follow G
    closely early on and smooth it later.
    """
    @torch.no_grad()
    def update(ema: list, current: list, n_averaged: torch.Tensor) -> None:
        n = float(n_averaged)
        torch._foreach_lerp_(ema, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))
    return update


def uses_cuda_graph(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether a run of `cfg` on `device` records its step as a CUDA graph (cfg.cuda_graph, on CUDA, not compiled)."""
    return cfg.cuda_graph and device.type == "cuda" and not cfg.compile


class GraphedStep:
    """train_step recorded once per kind of step (D only; D and G) as a CUDA graph, then replayed: one launch per
    step instead of hundreds. The eager dense step is launch-bound: 4.4 ms on an H200 (BENCHMARKS.md), nearly all of
    it Python and kernel launches, for 128 images the GPU handles in a fraction of that.

    A graph reads and writes fixed addresses, so each step's batch is copied into fixed buffers; the graph always
    takes both gradient norms and the caller's `norms` masks them, so the stats sum exactly as train_step's do. Each
    kind's first WARMUP steps run eagerly on a side stream (cuDNN autotuning, Adam's lazy state, cuBLAS workspaces:
    nothing may be allocated for the first time inside a capture); the capture is the next step of that kind, and
    replaying it right away is that step, so the run takes the same steps as an eager one. The EMA update stays
    outside the graph: AveragedModel reads its counter on the host. A capture that fails fails the run (resumable
    with cuda_graph off): after a failed capture torch's generators and allocator are not fit to go on eagerly.
    With `capture` False (CPU) the same buffers, masks and order run eagerly, which is what the CPU tests compare
    against train_step.
    """
    WARMUP = 3

    def __init__(self, m: GAN, batch_size: int, capture: bool) -> None:
        self.m, self.capture = m, capture
        self.no_ema = replace(m, g_ema=None)  # the same models and optimizers; the graph must not hold the EMA
        self.real = torch.zeros(batch_size, 1, 28, 28, device=m.device)                     # (B, 1, 28, 28)
        self.y = torch.zeros(batch_size, dtype=torch.long, device=m.device) if m.cfg.conditional else None  # (B,)
        self.masks = {(a, b): torch.tensor([True, True, True, True, a, b], device=m.device)
                      for a in (False, True) for b in (False, True)}
        self.graphs: dict[bool, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}  # g_step → (graph, its stats)
        self.warm = {False: 0, True: 0}
        self.side = torch.cuda.Stream(m.device) if capture else None

    def __call__(self, real: torch.Tensor, y_real: torch.Tensor | None, g_step: bool,
                 norms: tuple[bool, bool]) -> torch.Tensor:
        """train_step(m, real, y_real, g_step, norms): the same update and stats (6,), through the graph when there
        is one."""
        self.real.copy_(real)
        if self.y is not None:
            self.y.copy_(y_real)
        if g_step in self.graphs:
            graph, stats = self.graphs[g_step]
            graph.replay()
        elif not self.capture:
            stats = train_step(self.no_ema, self.real, self.y, g_step)
        elif self.warm[g_step] < self.WARMUP:
            self.warm[g_step] += 1
            self.side.wait_stream(torch.cuda.current_stream(self.m.device))
            with torch.cuda.stream(self.side):
                stats = train_step(self.no_ema, self.real, self.y, g_step)
            torch.cuda.current_stream(self.m.device).wait_stream(self.side)
        else:
            stats = self._record(g_step)
        if g_step and self.m.g_ema is not None:
            self.m.g_ema.update_parameters(self.m.g)
        return torch.where(self.masks[norms], stats, 0.0)  # not a product: a NaN norm not asked for stays 0

    def _record(self, g_step: bool) -> torch.Tensor:
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.m.rng)  # z, labels and GP's ε come from the run's own generator
        torch.cuda.synchronize(self.m.device)
        try:
            # On the warm-up's stream: cuBLAS keeps its workspace per stream, and one first made inside the capture
            # would live in the graph's private pool (pytorch#187745). thread_local: a CUDA call from another thread
            # of this process (a worker's sink) does not void the capture.
            with torch.cuda.graph(graph, stream=self.side, capture_error_mode="thread_local"):
                stats = train_step(self.no_ema, self.real, self.y, g_step)
        except RuntimeError as e:
            # Not an eager fallback: a failed capture leaves the generators (torch < 2.13), the allocator and the
            # current stream in capture state. The run fails here with its last checkpoint intact, and resumes.
            raise RuntimeError(f"CUDA graph capture failed ({e}); train or resume this run with cuda_graph off "
                               f"(--no-cuda-graph, or the form's CUDA graph switch)") from e
        self.graphs[g_step] = (graph, stats)
        graph.replay()  # the capture only recorded: this is the step
        return stats


def train_step(m: GAN, real: torch.Tensor, y_real: torch.Tensor | None, g_step: bool,
               norms: tuple[bool, bool] = (True, True)) -> torch.Tensor:
    """One D update and, if `g_step`, one G update on real images (B, 1, 28, 28) with labels (B,) if conditional.

    Returns the detached stats [d_loss, g_loss, D(x), D(G(z)), |∇D|, |∇G|] (6,), left on the device so the caller
    can sum them there without waiting for it; g_loss and |∇G| are 0 on a step without a G update, and each
    gradient norm 0 unless `norms` (D's, G's) asks for it (see grad_norm).
    """
    cfg, b = m.cfg, real.shape[0]
    z = sample_noise(cfg, b, m.rng, m.device)                      # (B, latent)
    y_fake = sample_labels(cfg, b, m.rng, m.device)                # (B,) uniform classes, or None
    code = info_code(z) if cfg.info_code else None                # (B,) InfoGAN code G was given, or None
    with m.autocast(), torch.set_grad_enabled(g_step):            # G's graph only matters if G steps now
        fake = m.g(z, y_fake)                                      # (B, 1, 28, 28)

    ############################
    # (1) Update D network. With the default loss (non_saturating, as with minimax: the BCE form of dcgan) this is
    # maximize log(D(x)) + log(1 - D(G(z))), real targets at 1 - label_smoothing. The loss is picked by name
    # (cfg.loss → LOSSES): lsgan regresses D(x) to 1 and D(G(z)) to 0, hinge and wgan_gp make D a critic that
    # widens D(x) - D(G(z)) (hinge with margins). Added on top: the gradient penalty (gp_weight) and InfoGAN's
    # code loss (info_code). D steps every step; G only every n_critic-th.
    ###########################
    with m.autocast():
        if m.split_d:  # BatchNorm in D: statistics must come from one kind of image, so two passes (as seed 003)
            real_l, (fake_l, q_fake) = m.d(real, y_real), m.d(fake.detach(), y_fake, with_code=True)
            logits = torch.cat([real_l, fake_l]).float()                                    # (2B,)
        else:          # no batch statistics: one D pass over both halves
            y_both = None if y_real is None else torch.cat([y_real, y_fake])
            logits, q = m.d(torch.cat([real, fake.detach()]), y_both, with_code=True)
            logits, q_fake = logits.float(), None if q is None else q[b:]                  # (2B,), (B, 10)
    real_l, fake_l = logits.split(b)                                                        # (B,), (B,)
    d_loss = m.loss.d(real_l, fake_l, 1.0 - cfg.label_smoothing)
    if cfg.gp_weight:  # interpolates keep the real labels: the penalty is on D's slope in x, per class
        d_loss = d_loss + cfg.gp_weight * gradient_penalty(lambda x: m.d(x, y_real), real, fake.detach().float(),
                                                           generator=m.rng)
    if code is not None:  # Q (sharing D's body) learns to read the code back from the fake
        d_loss = d_loss + cfg.info_weight * info_loss(q_fake, code)
    m.opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    d_norm = grad_norm(m.d, norms[0])
    m.opt_d.step()

    ############################
    # (2) Update G network, when `g_step`: with non_saturating, maximize log(D(G(z))) (minimax minimizes
    # log(1 - D(G(z))) instead; lsgan regresses D(G(z)) to 1; hinge and wgan_gp maximize D(G(z))). The same fake
    # batch, judged by the D just updated; plus InfoGAN's code loss, so G draws the code legibly.
    ###########################
    g_loss = g_norm = torch.zeros((), device=m.device)  # a fill on the device, not a copy from the host
    if g_step:
        m.d.requires_grad_(False)  # G's step needs gradients through D, not of D's weights
        with m.autocast():
            fake_l, q_fake = m.d(fake, y_fake, with_code=True)                              # (B,), (B, 10) or None
            g_loss = m.loss.g(fake_l.float())
        if code is not None:
            g_loss = g_loss + cfg.info_weight * info_loss(q_fake, code)
        m.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        g_norm = grad_norm(m.g, norms[1])
        m.opt_g.step()
        m.d.requires_grad_(True)
        if m.g_ema is not None:  # on CUDA a host sync: AveragedModel copies its CPU step counter to the device
            m.g_ema.update_parameters(m.g)
    probs = torch.sigmoid(logits.detach())                                                  # (2B,)
    return torch.stack([d_loss.detach(), g_loss.detach(), probs[:b].mean(), probs[b:].mean(), d_norm.float(),
                        g_norm.float()])


def grad_norm(model: nn.Module, take: bool = True) -> torch.Tensor:
    """The L2 norm over all of `model`'s parameter gradients (as clip_grad_norm_ measures it), on the device; a 0
    fill when not `take`n. It reads every gradient once more: 2.7 % of a dense step on one CPU thread, so the loop
    takes it once per log interval."""
    if not take:
        return torch.zeros((), device=next(model.parameters()).device)
    return torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])


@torch.no_grad()
def spectral_sigma(d: nn.Module) -> float | None:
    """The largest σ(W) among D's spectrally normalised weights (the power-iteration estimate each layer divides
    by), or None without spectral norm: a σ that keeps growing means D's raw weights are running away."""
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import _SpectralNorm

    sigmas = [torch.vdot(fn._u, fn._reshape_weight_to_matrix(mod.parametrizations.weight.original) @ fn._v)
              for mod in d.modules() if parametrize.is_parametrized(mod, "weight")
              for fn in mod.parametrizations.weight if isinstance(fn, _SpectralNorm)]
    return max(torch.stack(sigmas).float().tolist()) if sigmas else None


def _rng_state(m: GAN) -> dict[str, torch.Tensor]:
    state = {"torch_cpu": torch.get_rng_state(), "loop": m.rng.get_state()}
    if m.device.type == "cuda":
        state["torch_cuda"] = torch.cuda.get_rng_state(m.device)
    return state


def _restore(m: GAN, path: Path) -> tuple[int, int, torch.Tensor | None, int, dict]:
    """Load weights, optimizers and RNG from a checkpoint; returns (epoch, step, permutation, position, header)."""
    # Everything that could fail half-way (a generator export, missing RNG state, optimizer groups or tensors that
    # do not fit, an incompatible config) is refused here first: the CLI and the worker both come through this.
    header = ckpt.check_resumable(path, m.cfg)
    t = ckpt.load_tensors(path)
    m.g.load_state_dict(ckpt.split_prefix(t, "G"))
    m.d.load_state_dict(ckpt.discriminator_state(t, m.d))
    if m.g_ema is not None:
        ema = ckpt.split_prefix(t, "G_ema")
        if ema:
            m.g_ema.load_state_dict(ema)
        else:  # EMA switched on at resume: start the average from the current G
            m.g_ema.module.load_state_dict(m.g.state_dict())
    for name, opt, lr in (("opt_g", m.opt_g, m.cfg.lr_g), ("opt_d", m.opt_d, m.cfg.lr_d)):
        # this run's switches, not the checkpoint's: fused always, capturable when it records CUDA graphs
        own = {k: opt.param_groups[0][k] for k in ("fused", "capturable")}
        opt.load_state_dict(ckpt.optimizer_state(t, header, name))
        match_param_layout(opt)  # moments in the weights' layout (channels_last on CUDA)
        for group in opt.param_groups:  # a resumed run may change the learning rate or betas on purpose
            group.update(lr=lr, betas=(m.cfg.beta1, m.cfg.beta2), **own)
        for p, state in opt.state.items():  # fused Adam counts on the parameter's device (a non-fused file: CPU)
            state["step"] = state["step"].to(p.device, torch.float32)
    torch.set_rng_state(t["rng.torch_cpu"])
    if m.device.type == "cuda" and "rng.torch_cuda" in t:
        torch.cuda.set_rng_state(t["rng.torch_cuda"], m.device)
    try:
        m.rng.set_state(t["rng.loop"])
    except RuntimeError:  # saved on another device type: stay deterministic, though no longer bit-exact
        m.rng.manual_seed(m.cfg.seed + header["step"])
    perm = t.get("rng.perm")
    return (header["epoch"], header["step"], None if perm is None else perm.to(m.device), header.get("pos", 0),
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
    m: GAN                           # the eager models: checkpoints, sample grids and scores use these
    step_model: GAN                  # the same models, compiled when cfg.compile: what train_step runs
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
    labels = labels.to(device) if cfg.conditional else None  # (N,) int64
    n, b = images.shape[0], cfg.batch_size
    if n // b == 0:
        raise ConfigError(f"batch_size: {b} is larger than the {n} training images")
    m = build_gan(cfg, device)
    epoch, step, perm, pos, header = 0, 0, None, 0, {}
    if resume_from is not None:
        epoch, step, perm, pos, header = _restore(m, Path(resume_from))
        if perm is not None and perm.numel() != n:
            raise ConfigError(f"cannot resume: the checkpoint saw {perm.numel()} images, this run has {n} "
                              f"(train_subset or dataset changed)")
    step_model = replace(m, g=torch.compile(m.g), d=torch.compile(m.d)) if cfg.compile else m
    graphed = GraphedStep(m, b, capture=True) if uses_cuda_graph(cfg, device) else None
    s = Setup(m, step_model, graphed, images, labels, n // b, None if out_dir is None else Path(out_dir),
              sample_grid_inputs(cfg))
    best_fd, best_epoch = header.get("best_fd"), header.get("best_epoch")
    if not (isinstance(best_fd, float) and _finite(best_fd) and type(best_epoch) is int and 0 < best_epoch <= epoch + 1):
        best_fd, best_epoch = None, 0  # an older checkpoint (or a damaged header): the best starts again from here
    return s, Progress(epoch, step, pos, perm, torch.zeros(6, device=device), best_fd=best_fd, best_epoch=best_epoch)


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
        s, p = _setup(cfg, resume_from, out_dir, images, data_dir, labels)
        sink(Started(s.m.device.type, resolve_precision(cfg, s.m.device), p.step, s.graphed is not None))
    except Exception as e:
        sink(failed(e, 0, setting_up=True))
        raise
    b, end = cfg.batch_size, None
    step = s.graphed or partial(train_step, s.step_model)
    try:
        while p.epoch < cfg.epochs:
            if p.pos == 0:  # a new epoch: a new data order
                p.perm = torch.randperm(len(s.images), generator=s.m.rng, device=s.m.device)  # (N,)
            if not (stop_event.is_set() or p.at_max_steps(cfg)):
                idx = p.perm[p.pos * b:(p.pos + 1) * b]         # (B,)
                real = to_float(s.images[idx])                  # (B, 1, 28, 28) in [-1, 1]
                g_step = (p.step + 1) % cfg.n_critic == 0
                # gradient norms: sampled on the interval's first step (D) and first G step (G), not averaged
                norms = (p.acc_steps == 0, p.acc_g_steps == 0)
                p.add(step(real, None if s.labels is None else s.labels[idx], g_step, norms), g_step)
                if p.step % cfg.log_every == 0 and (reason := p.flush(sink, b, s.m.d)):
                    end = Failed(reason, p.step)
                    break
                if p.pos < s.steps_per_epoch:
                    continue  # mid-epoch: the next step
            # The epoch is over, or the run stops here (stop_event, max_steps).
            if reason := p.flush(sink, b, s.m.d):
                end = Failed(reason, p.step)
                break
            if p.pos == s.steps_per_epoch:
                p.epoch, p.pos = p.epoch + 1, 0
                last = p.epoch == cfg.epochs or p.at_max_steps(cfg)
                _epoch_end(s, p, sink, grid=p.epoch % cfg.sample_every == 0 or last,
                           checkpoint=p.epoch % cfg.checkpoint_every == 0 or last)
                if not last and (reason := _peaked(cfg, p)):
                    _save(s, p, sink)  # a run that peaked can still be resumed (with a larger patience)
                    end = Done(p.shown_epoch, p.step, reason)
                    break
            if stop_event.is_set():
                _save(s, p, sink)
                end = Stopped(p.shown_epoch, p.step)
                break
            if p.at_max_steps(cfg):
                if p.pos:  # ended mid-epoch: still leave a sample grid, its quality and a checkpoint
                    _epoch_end(s, p, sink, grid=True, checkpoint=True)
                end = Done(p.shown_epoch, p.step)
                break
        else:
            end = Done(p.shown_epoch, p.step)
    except Exception as e:  # a crash in the loop must reach the sink, not vanish with a thread
        end = failed(e, p.step)
    sink(end)  # outside the try: a sink that fails on the terminal event cannot make it two


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


def _peaked(cfg: TrainConfig, p: Progress) -> str | None:
    """Why the run stops here if its FD has not improved for early_stop_patience epochs, else None."""
    patience = cfg.early_stop_patience
    if not patience or p.best_fd is None or p.epoch - p.best_epoch < patience:
        return None
    return (f"stopped early: the Fréchet distance has not improved for {p.epoch - p.best_epoch} epochs (best "
            f"{p.best_fd:.2f} at epoch {p.best_epoch}; early_stop_patience {patience})")


def _epoch_end(s: Setup, p: Progress, sink: Sink, grid: bool, checkpoint: bool) -> None:
    """What an epoch's end leaves: the sample grid if `grid`, quality scores (every epoch, so the chart has no
    gaps) and a checkpoint if `checkpoint`."""
    if grid:
        sink(EpochSamples(p.shown_epoch, p.step, render(s.m.sampler, *s.grid)))
    _measure(s, p, sink)
    if checkpoint:
        _save(s, p, sink)


def _measure(s: Setup, p: Progress, sink: Sink) -> None:
    """Score eval_samples images with the shipped classifier, when there is one for this dataset; a new best
    Fréchet distance also writes this G to best-generator.safetensors (seed 001: G can get worse after D wins)."""
    from . import metrics

    cfg = s.m.cfg
    if not cfg.eval_samples or not metrics.classifier_path(cfg.dataset).is_file():
        return
    t = time.perf_counter()
    q = metrics.measure_generator(s.m.sampler, cfg, cfg.eval_samples)
    best = q.fd == q.fd and (p.best_fd is None or q.fd < p.best_fd)  # a NaN score is never the best
    if best:
        p.best_fd, p.best_epoch = q.fd, p.shown_epoch
        if s.out is not None:
            ckpt.save_generator(s.out / BEST_GENERATOR, cfg, s.m.sampler, p.shown_epoch, p.step, d=s.m.d)  # D: --reject
    sink(EpochQuality(p.shown_epoch, p.step, q.to_dict(), time.perf_counter() - t, best))


def _save(s: Setup, p: Progress, sink: Sink) -> None:
    """Write a checkpoint (keeping the newest KEEP_CHECKPOINTS) and the generator export, at most once a step."""
    if s.out is None or p.saved_at == p.step:
        return
    p.saved_at = p.step
    m = s.m
    path = s.out / "checkpoints" / f"ckpt-{p.step:08d}.safetensors"
    rng = _rng_state(m)
    if p.perm is not None and p.pos:
        rng["perm"] = p.perm  # mid-epoch: keep this epoch's order so resume continues it exactly
    ckpt.save_checkpoint(path, m.cfg, m.g, m.d, m.opt_g, m.opt_d, p.epoch, p.step, rng,
                         {"pos": p.pos, "best_fd": p.best_fd, "best_epoch": p.best_epoch}, m.g_ema)
    # The export's epoch is the one its samples and scores carry (1-based, an epoch ended mid-way counts); the
    # checkpoint keeps completed epochs and `pos`, which resume needs. D travels along for --reject.
    ckpt.save_generator(s.out / "generator.safetensors", m.cfg, m.sampler, p.shown_epoch, p.step, d=m.d)
    for old in sorted(path.parent.glob("ckpt-*.safetensors"))[:-KEEP_CHECKPOINTS]:
        old.unlink()
        old.with_suffix(".json").unlink(missing_ok=True)
    sink(CheckpointWritten(p.epoch, p.step, str(path)))


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")
