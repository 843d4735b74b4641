"""What a config costs before it runs: parameters, peak memory and training FLOPs, measured on the meta device.

Building G and D under `torch.device("meta")` allocates nothing, so a hostile config (60 layers of 8192 units) is
sized in milliseconds and refused before any worker tries to allocate it. FLOPs come from torch's FlopCounterMode
over one meta forward pass; memory from the parameter count (weights, gradients, Adam's two moments, the EMA copy)
plus the activations a step keeps for backward.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .config import ARCH_FIELDS, ConfigError, TrainConfig

BYTES = 4  # float32 master weights; bf16 autocast keeps them fp32 too
TRAIN_IMAGES = 60_000


@dataclass(frozen=True)
class Estimate:
    """A config's size and cost: parameter counts, peak training memory (bytes) and compute (FLOPs)."""
    g_params: int
    d_params: int
    memory_bytes: int
    step_flops: float     # one optimisation step: n_critic D updates and one G update, on a whole batch
    train_flops: float    # every planned step plus the per-epoch quality scoring

    @property
    def params(self) -> int:
        """Parameters of G and D together."""
        return self.g_params + self.d_params

    def describe(self) -> str:
        """'3.1 M parameters, 0.2 GB peak memory, 12 TFLOP to train'."""
        return (f"{self.params / 1e6:.1f} M parameters, {self.memory_bytes / 1e9:.2f} GB peak memory, "
                f"{format_flops(self.train_flops)} to train")


_FLOP_UNITS = ("FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP")


def format_flops(flops: float) -> str:
    """A FLOP count people read at a glance: at most three significant digits in the unit that keeps the number
    between 1 and 999 ('712 TFLOP', '1.2 PFLOP', '35 GFLOP'); '{:.2g} TFLOP' printed 7e+02 TFLOP."""
    if not math.isfinite(flops) or flops <= 0:
        return "0 FLOP"
    unit = min(len(_FLOP_UNITS) - 1, max(0, int(math.floor(math.log10(flops) / 3))))
    value = float(f"{flops / 1000 ** unit:.3g}")  # rounded first: 999.7 GFLOP reads 1 TFLOP, not 1e+03 GFLOP
    if value >= 1000 and unit < len(_FLOP_UNITS) - 1:
        unit, value = unit + 1, value / 1000
    return f"{value:.3g} {_FLOP_UNITS[unit]}" if value < 1000 else f"{value:,.0f} {_FLOP_UNITS[unit]}"


def _forward_cost(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[float, int]:
    """(FLOPs, activation elements kept for backward) of one meta forward pass."""
    kept = [0]

    def count(_m: nn.Module, _i: object, out: object) -> None:
        if isinstance(out, torch.Tensor):
            kept[0] += out.numel()
    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with FlopCounterMode(display=False) as fc:
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return float(fc.get_total_flops()), kept[0]


@lru_cache(maxsize=256)
def _per_image(cfg_json: str) -> tuple[int, int, float, float, int, int]:
    """(G params, D params, G FLOPs, D FLOPs, G activations, D activations) per image, for a config."""
    from .models import build_discriminator, build_generator

    cfg = TrainConfig.from_json(cfg_json)
    n = 2 * cfg.pack  # BatchNorm needs more than one value per channel in training mode: two packs of m images
    with torch.device("meta"):
        g, d = build_generator(cfg), build_discriminator(cfg)
        z = torch.empty(n, cfg.latent_dim)
        y = (torch.zeros(n, dtype=torch.long),) if cfg.conditional else ()  # the labels, when the models take them
        g_args = (z, *y)
        x = torch.empty(n, 1, 28, 28)
        d_args = (x, *y)
        fg, ag = _forward_cost(g, g_args)
        fd, ad = _forward_cost(d, d_args)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return count(g), count(d), fg / n, fd / n, ag // n, ad // n


def estimate(cfg: TrainConfig) -> Estimate:
    """Parameters, peak memory and training FLOPs of `cfg`, without allocating its models."""
    from .config import planned_steps

    # Keyed on the model's shape only (ARCH_FIELDS), so configs that differ in epochs, rates or batch share one
    # entry: the Train page's estimate sizes every measured run in the store on each render.
    shape = TrainConfig(**{k: getattr(cfg, k) for k in ARCH_FIELDS})
    pg, pd, fg, fd, ag, ad = _per_image(shape.to_json())
    b = cfg.batch_size
    # A D update: G forward without grad, D forward on real + fake (2b images), backward ≈ 2× forward; the gradient
    # penalty adds a forward and a double backward on b interpolates. A G update: G and D forward, then backward.
    d_update = fg + 3 * 2 * fd + (4 * fd if cfg.gp_weight > 0 else 0)
    step = b * (cfg.n_critic * d_update + 3 * (fg + fd))
    epochs = max(1, math.ceil(planned_steps(cfg) / max(1, (cfg.train_subset or TRAIN_IMAGES) // b)))
    scoring = epochs * cfg.eval_samples * fg * 2  # G forward plus a classifier of about G's size, per sample
    weights = BYTES * (4 * (pg + pd) + (pg if cfg.g_ema else 0))  # weights, grads, Adam m and v; EMA copy
    activations = BYTES * b * (ag + 2 * ad) * 2  # G's and D's (real + fake) outputs, and their gradients
    dataset = (cfg.train_subset or TRAIN_IMAGES) * 28 * 28  # uint8, resident on the device for the whole run
    return Estimate(pg, pd, weights + activations + dataset, step, planned_steps(cfg) * step + scoring)


def memory_limit(cfg: TrainConfig) -> tuple[int, str]:
    """(bytes, where) a run of `cfg` may use: `GAN_MAX_RUN_MEMORY_GB`, else the GPU's memory when it will train on
    CUDA, else 80 % of this machine's RAM."""
    text = os.environ.get("GAN_MAX_RUN_MEMORY_GB", "").strip()
    if text:
        try:
            gb = float(text)
        except ValueError:
            raise ConfigError(f"GAN_MAX_RUN_MEMORY_GB={text!r} is not a number; unset it or give one like 8") from None
        if not math.isfinite(gb) or gb <= 0:
            raise ConfigError(f"GAN_MAX_RUN_MEMORY_GB={text!r} must be a positive number of gigabytes")
        return int(gb * 1e9), "GAN_MAX_RUN_MEMORY_GB"
    if cfg.device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory, "the GPU's memory"
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no limit we can know
        return 2**62, "this machine's memory"
    return int(0.8 * ram), "80 % of this machine's memory"


def check_fits(cfg: TrainConfig) -> Estimate:
    """Refuse (ConfigError) a run that would not fit in memory, with the estimate; returns the estimate."""
    est = estimate(cfg)
    limit, where = memory_limit(cfg)
    if est.memory_bytes > limit:
        raise ConfigError(f"this run would need about {est.memory_bytes / 1e9:.1f} GB of memory ({est.describe()}), "
                          f"more than {where} ({limit / 1e9:.1f} GB); make the model narrower or the batch smaller")
    return est
