"""The GAN game on a plane: 2-D Gaussian mixtures, small MLPs trained with `gan_core.losses`, and the
mode-collapse benchmark of Unrolled GAN, VEEGAN and PacGAN.

The protocol follows PacGAN's own code (github.com/fjxmlzn/PacGAN, synthetic_data_experiments): a grid of 25
Gaussians at {-4, -2, 0, 2, 4}², σ 0.05, and a ring of 8 on the unit circle, σ 0.01, equally weighted; a fixed
training set of 100,000 points; G 2 → 4×400 (BatchNorm, ReLU) → 2, D 3 maxout layers of 200 units (5 pieces) → 1
logit; Adam lr 1e-4, β1 0.8, batch 100; 2,500 samples scored, each high quality within 3σ of its nearest mode, a mode
captured by at least one of them. Packing (PacGAN): D reads `pack` samples at once, side by side, (B, 2·pack).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from .config import _f, check_field
from .losses import LOSSES


@dataclass(frozen=True)
class Mixture:
    """An equally weighted mixture of isotropic 2-D Gaussians."""

    name: str
    means: tuple[tuple[float, float], ...]
    sigma: float

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n points (n, 2): a mode drawn uniformly, then its Gaussian."""
        means = torch.tensor(self.means)                                           # (K, 2)
        k = torch.randint(len(self.means), (n,), generator=generator)              # (n,)
        return means[k] + self.sigma * torch.randn(n, 2, generator=generator)


MIXTURES: dict[str, Mixture] = {
    "grid": Mixture("grid", tuple((float(i), float(j)) for i in range(-4, 5, 2) for j in range(-4, 5, 2)), 0.05),
    "ring": Mixture("ring", tuple((math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8))
                                  for k in range(8)), 0.01),
}
HIGH_QUALITY_SIGMAS = 3.0  # a sample within 3σ of its nearest mode is high quality (VEEGAN, PacGAN)
SCORED_SAMPLES = 2_500


@dataclass(frozen=True)
class ModeScore:
    """The benchmark's three numbers for a set of samples, and the high-quality count of each mode."""

    modes: int             # modes with at least `min_count` high-quality samples
    high_quality: float    # share of the samples within 3σ of their nearest mode
    reverse_kl: float      # KL(generated ‖ data) over the modes, natural log: 0 when every mode is hit as often
    counts: tuple[int, ...]


def score(samples: torch.Tensor, mixture: Mixture, min_count: int = 1) -> ModeScore:
    """Modes captured, high-quality share and reverse KL of samples (N, 2) against `mixture`.

    The reverse KL is Σ p log(p K) over the K modes, p the high-quality samples' share per mode against the data's
    1/K: a mode G misses adds nothing (p log p → 0), a mode G crowds adds much, so collapse onto one mode of the grid
    gives log 25 ≈ 3.22.
    """
    means = torch.tensor(mixture.means, dtype=samples.dtype)                        # (K, 2)
    dist, nearest = torch.cdist(samples, means).min(dim=1)                          # (N,), (N,)
    good = dist < HIGH_QUALITY_SIGMAS * mixture.sigma
    counts = torch.bincount(nearest[good], minlength=len(means))                    # (K,)
    p = counts.double() / max(int(good.sum()), 1)
    nz = p > 0
    kl = float((p[nz] * torch.log(p[nz] * len(means))).sum()) if bool(nz.any()) else math.inf
    return ModeScore(int((counts >= min_count).sum()), float(good.double().mean()), kl,
                     tuple(int(c) for c in counts))


TOY_LOSSES = tuple(k for k in LOSSES if k != "wgan_gp")  # the toy step has no gradient penalty


@dataclass(frozen=True)
class ToyConfig:
    """One toy run; the defaults are PacGAN's protocol (module docstring) except the step count, which fits a CPU.
    Fields carry TrainConfig's metadata (config._f), so one check and the `toy` flags read the same bounds."""

    mixture: str = _f("grid", "The 2-D mixture.", choices=tuple(MIXTURES))
    pack: int = _f(1, "Samples D judges at once (PacGAN's m); 1 is the plain GAN.", lo=1, hi=8)
    loss: str = _f("non_saturating", "GAN objective.", choices=TOY_LOSSES)
    steps: int = _f(20_000, "Training steps (one D and one G update each).", lo=1, hi=1_000_000)
    batch_size: int = _f(100, "Packs per batch.", lo=2, hi=4096)
    lr: float = _f(1e-4, "Adam learning rate of both G and D.", lo=1e-7, hi=1.0)
    beta1: float = _f(0.8, "Adam β1.", lo=0.0, hi=0.999)
    beta2: float = _f(0.999, "Adam β2.", lo=0.0, hi=0.9999)
    lr_decay: bool = _f(False, "Learning rates fall linearly to 0 over the steps: big early steps find the modes, "
                               "small late ones sharpen them.")
    g_width: int = _f(400, "Units of each G hidden layer.", lo=1, hi=1024)
    g_layers: int = _f(4, "G hidden layers.", lo=1, hi=8)
    d_width: int = _f(200, "Maxout units of each D layer.", lo=1, hi=1024)
    d_layers: int = _f(3, "D maxout layers.", lo=1, hi=8)
    maxout: int = _f(5, "Pieces per maxout unit.", lo=1, hi=8)
    noise_dim: int = _f(2, "Noise dimensions.", lo=1, hi=8)
    train_points: int = _f(100_000, "Points in the fixed training set.", lo=1, hi=1_000_000)
    seed: int = _f(0, "Seed of the data, the weights and every noise draw.", lo=0, hi=2**31 - 1)

    def __post_init__(self) -> None:
        for f in fields(self):
            check_field(f, getattr(self, f.name))

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values."""
        return asdict(self)


class Maxout(nn.Module):
    """A linear layer of `width` units, each the max of `pieces` affine maps (Goodfellow et al. 2013)."""

    def __init__(self, inputs: int, width: int, pieces: int) -> None:
        super().__init__()
        self.width, self.pieces = width, pieces
        self.linear = nn.Linear(inputs, width * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, inputs) → (N, width)."""
        # pieces-major (N, pieces, width): the max runs over contiguous rows, 40 % faster forward + backward on a CPU
        return self.linear(x).view(-1, self.pieces, self.width).amax(dim=1)


def build_toy_models(cfg: ToyConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D): G maps noise (N, noise_dim) to points (N, 2); D maps packs (N, 2·pack) to logits (N, 1)."""
    g_layers: list[nn.Module] = []
    width = cfg.noise_dim
    for _ in range(cfg.g_layers):
        g_layers += [nn.Linear(width, cfg.g_width), nn.BatchNorm1d(cfg.g_width), nn.ReLU()]
        width = cfg.g_width
    g = nn.Sequential(*g_layers, nn.Linear(width, 2))
    d_layers: list[nn.Module] = []
    width = 2 * cfg.pack
    for _ in range(cfg.d_layers):
        d_layers.append(Maxout(width, cfg.d_width, cfg.maxout))
        width = cfg.d_width
    d = nn.Sequential(*d_layers, nn.Linear(width, 1))
    for m in [*g.modules(), *d.modules()]:
        if isinstance(m, nn.Linear):  # PacGAN's N(0, 0.02²) initial weights
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
    return g, d


def packed(points: torch.Tensor, pack: int) -> torch.Tensor:
    """Points (B·pack, 2) as D reads them: `pack` independent points side by side, (B, 2·pack)."""
    return points.reshape(-1, 2 * pack)


class ToyGAN:
    """A toy run's models, optimisers and data, stepped one D and one G update at a time."""

    def __init__(self, cfg: ToyConfig) -> None:
        self.cfg, self.step = cfg, 0
        torch.manual_seed(cfg.seed)  # the models' initial weights
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.data = MIXTURES[cfg.mixture].sample(cfg.train_points, self.rng)         # (P, 2)
        self.g, self.d = build_toy_models(cfg)
        betas = (cfg.beta1, cfg.beta2)
        # fused: one kernel for all of a model's tensors; the toy's steps are small enough for per-tensor Adam to cost
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.lr, betas=betas, fused=True)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.lr, betas=betas, fused=True)
        self.loss = LOSSES[cfg.loss]
        # LambdaLR multiplies the base lr by the factor after each scheduler step: 1 → 1/steps at the last update
        factor = (lambda i: 1.0 - i / cfg.steps) if cfg.lr_decay else (lambda i: 1.0)
        self.schedules = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in (self.opt_g, self.opt_d)]

    def noise(self, n: int) -> torch.Tensor:
        """n noise vectors (n, noise_dim) from the run's own generator."""
        return torch.randn(n, self.cfg.noise_dim, generator=self.rng)

    def train_step(self) -> tuple[float, float]:
        """One D update on a batch of real and generated packs, then one G update; returns (D loss, G loss)."""
        b, m = self.cfg.batch_size, self.cfg.pack
        idx = torch.randint(len(self.data), (b * m,), generator=self.rng)
        real = packed(self.data[idx], m)                                             # (B, 2m)
        fake = packed(self.g(self.noise(b * m)), m)                                  # (B, 2m)
        logits = self.d(torch.cat([real, fake.detach()])).squeeze(1)                  # (2B,): one pass, D has no BN
        d_loss = self.loss.d(logits[:b], logits[b:], 1.0)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        g_loss = self.loss.g(self.d(packed(self.g(self.noise(b * m)), m)).squeeze(1))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        for schedule in self.schedules:
            schedule.step()
        self.step += 1
        return d_loss.item(), g_loss.item()

    @torch.no_grad()
    def sample(self, n: int, seed: int = 2333) -> torch.Tensor:
        """n points (n, 2) from G in eval mode (BatchNorm's running statistics), from a fixed noise seed."""
        self.g.eval()
        try:
            return self.g(torch.randn(n, self.cfg.noise_dim, generator=torch.Generator().manual_seed(seed)))
        finally:
            self.g.train()

    def score(self, n: int = SCORED_SAMPLES) -> ModeScore:
        """The benchmark's numbers for n samples of G now."""
        return score(self.sample(n), MIXTURES[self.cfg.mixture])


def run_toy(cfg: ToyConfig) -> ModeScore:
    """Train `cfg` for its steps and score G at the end."""
    gan = ToyGAN(cfg)
    for _ in range(cfg.steps):
        gan.train_step()
    return gan.score()
