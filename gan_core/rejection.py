"""Rejecting bad samples with the GAN's own discriminator: oversample G, score the candidates with D, keep n.

Methods (the numbers are in BENCHMARKS.md):
- "topk": keep the n candidates D scores highest. D believes some digits more easily than others, so this skews
  the mix (digit 1 from 16 % to 28-39 % of a dense run's samples) and worsens FD.
- "drs": discriminator rejection sampling (Azadi et al. 2019) on a recalibrated D. D's logit is first recalibrated
  by Platt scaling (F = a·logit + b, fitted on real training images against fresh fakes), so that F estimates
  log p_data(x)/p_g(x); a candidate is accepted when sigmoid(F̂ − γ) > u, u ~ U(0, 1), with
  F̂ = F − M − log(1 − exp(F − M − ε)), M the largest F seen on calibration fakes. γ is set so that exactly n of the
  oversampled candidates pass: a candidate passes iff F̂ − logit(u) > γ, so DRS is top-n of F̂ plus logistic noise.
- "strata" / "strata-drs": the same two rules applied within strata, each stratum keeping its share of the
  candidates, so rejection cannot change the mix G draws. Strata are the class label (conditional G), the InfoGAN
  code (info_code runs), or otherwise the nearest of k centres fitted by k-means on D's own penultimate features
  of calibration fakes. Only D (never the quality classifier) decides anything here.
- `head=True` recalibration adds a logistic term on D's features (their top HEAD_DIMS principal directions) to
  Platt scaling. What ships (DEFAULT_METHOD, `--reject`, Generate's slider) is "strata-drs" on that calibration:
  on a 30-epoch dense-ema run at n = 5000 it took FD from 46.8 to 41.8 (strength 0.33) and 35.1 (strength 1) with
  recall 0.627 → 0.626 / 0.608 and the class mix within seed noise, where naive top-k doubled FD. On a
  conditional run (already balanced) it changes nothing measurable. BENCHMARKS.md has the tables.

Strength 0 is the raw draw (exactly `sampling.generate_float`'s digits); strength s > 0 keeps a fraction
1 / (1 + 3 s) of the candidates (s = 1 draws 4 candidates per kept sample).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigError, TrainConfig

# sq_distances: the one matmul form of squared distances (k-means here, k-NN balls there)
from .metrics import sq_distances
from .models import N_CLASSES, Discriminator, build_discriminator, info_code, sample_labels, sample_noise
from .sampling import label_tensor, render_float, seeded_noise
from .step import has_batchnorm, update_d

METHODS = ("topk", "drs", "strata", "strata-drs")
MAX_OVERSAMPLE = 4          # candidates per kept sample at strength 1
_EPS = 1e-6                 # DRS's ε: keeps log(1 − exp(F − M − ε)) finite at the maximum
HEAD_DIMS = 32              # principal directions of D's features a refitted head uses
_BATCH = 1000               # images per forward pass: (1000, 1, 28, 28) float32 is 3 MB


@dataclass(frozen=True)
class Calibration:
    """D recalibrated on held-out real vs fake images: F = scale·logit + bias estimates log p_data/p_g; `max_f` is
    DRS's M; `centres` (k, F) are k-means centres of D's L2-normalised features of fakes (None when G has labels or
    an InfoGAN code to stratify by)."""
    scale: float
    bias: float
    max_f: float
    centres: torch.Tensor | None = field(default=None, repr=False)
    real_accuracy: float = 0.0   # calibrated D's accuracy on the calibration reals / fakes, for the record
    fake_accuracy: float = 0.0
    # head=True: a refitted logistic term on D's features, F = scale·logit + ((h − mu) @ sd)·w + bias, where sd
    # (F, q) projects on the features' top q principal directions scaled to unit variance.
    w: torch.Tensor | None = field(default=None, repr=False)
    mu: torch.Tensor | None = field(default=None, repr=False)
    sd: torch.Tensor | None = field(default=None, repr=False)

    def log_ratio(self, logits: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """F (N,) ≈ log p_data/p_g from D's logits (N,) and features (N, F)."""
        f = self.scale * logits.double() + self.bias
        if self.w is not None and self.mu is not None and self.sd is not None:
            f = f + ((feats.double() - self.mu) @ self.sd) @ self.w
        return f


@dataclass
class Rejected:
    """n kept images (n, 1, 28, 28) in [-1, 1], their labels (conditional G) or None, and what it cost."""
    images: torch.Tensor
    labels: torch.Tensor | None
    candidates: int
    seconds: float


def keep_fraction(strength: float) -> float:
    """The fraction of candidates kept at `strength` in [0, 1]: 1 (raw) … 1/MAX_OVERSAMPLE (strict)."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
        raise ConfigError(f"reject: {strength!r} is not a strength; choose a number from 0 (raw) to 1 (strict)")
    return 1.0 / (1.0 + (MAX_OVERSAMPLE - 1) * float(strength))


@torch.no_grad()
def d_outputs(d: nn.Module, images: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """D's logits (N,) and penultimate features (N, F) of images (N, 1, 28, 28), in eval mode, on the CPU; a packed
    D judges each image as a pack of m copies of itself (Discriminator.copies says why that is a fair score)."""
    disc = cast(Discriminator, d)  # both of models' discriminators: a body `net` and a logit `head`
    was_training = d.training
    d.eval()
    device = next(d.parameters()).device
    logits, feats = [], []
    try:
        for i in range(0, len(images), _BATCH):
            x = images[i:i + _BATCH].to(device)
            yb = None if y is None else y[i:i + _BATCH].to(device)
            if getattr(disc, "pack", 1) > 1:  # stand-in Ds (tests, probes) with a body and head are never packed
                x, yb = disc.copies(x, yb)                                 # (B·m, 1, 28, 28), (B·m,)
                x = disc.packed(x)                                         # (B, m, 28, 28): one pack per image
            h = disc.net(x)                                                # (B, F)
            logits.append(disc.head(h, yb).float().cpu())
            feats.append(h.float().cpu())
    finally:
        d.train(was_training)
    return torch.cat(logits), torch.cat(feats)


def _draw(g: nn.Module, cfg: TrainConfig, m: int, seed: int, label: int | None) -> tuple[torch.Tensor, torch.Tensor,
                                                                                          torch.Tensor | None]:
    """m candidates: z (m, latent), images (m, 1, 28, 28), labels (m,) — `label`, or every class in turn when a
    conditional G is asked for none (as evaluate does)."""
    z = seeded_noise(cfg, m, seed)
    if cfg.conditional and label is None:
        y: torch.Tensor | None = torch.arange(m) % N_CLASSES
    else:
        y = label_tensor(cfg, label, m)
    images = torch.cat([render_float(g, z[i:i + _BATCH], None if y is None else y[i:i + _BATCH])
                        for i in range(0, m, _BATCH)])
    return z, images, y


def _kmeans(x: torch.Tensor, k: int, seed: int, iters: int = 25) -> torch.Tensor:
    """k-means centres (k, F) of rows x (N, F), k-means++ seeded from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=gen)]
    for _ in range(1, k):
        d2 = sq_distances(x, centres).min(1).values                             # (N,)
        centres = torch.cat([centres, x[torch.multinomial(d2 + 1e-12, 1, generator=gen)]])
    for _ in range(iters):
        assign = sq_distances(x, centres).argmin(1)                             # (N,)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)           # (k,)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)          # (k, F)
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centres)
    return centres


def _normalised(feats: torch.Tensor) -> torch.Tensor:
    return F.normalize(feats, dim=1)


def _top_directions(hc: torch.Tensor, q: int, seed: int, power: int = 4) -> torch.Tensor:
    """The top q principal directions (F, q) of centred rows hc (N, F), by seeded subspace iteration: a DCGAN D
    has F = 6272 features, too many for an exact eigendecomposition on two cores, and torch.pca_lowrank would
    draw from the global RNG (a calibration must not depend on what ran before)."""
    gen = torch.Generator().manual_seed(seed)
    basis = torch.randn(hc.shape[1], min(q + 8, hc.shape[1]), generator=gen, dtype=hc.dtype)   # (F, q + 8)
    for _ in range(power):
        basis, _ = torch.linalg.qr(hc.T @ (hc @ basis))
    _, _, vh = torch.linalg.svd(hc @ basis, full_matrices=False)          # Rayleigh-Ritz in the subspace
    return basis @ vh.T[:, :q]


def _logistic(x: torch.Tensor, y: torch.Tensor, ridge: float = 1e-3, steps: int = 30) -> torch.Tensor:
    """Weights (p,) of a logistic regression of y (N,) in {0, 1} on x (N, p) by Newton's method (IRLS), with a
    small ridge on every weight but the bias (column 1) so that a perfectly separating D stays finite. Plain
    torch: torch.optim's first use imports torch._dynamo, which takes seconds."""
    p = torch.zeros(x.shape[1], dtype=torch.float64)
    p[0] = 1.0
    reg = torch.full_like(p, ridge * len(y))
    reg[1] = 0.0
    for _ in range(steps):
        prob = torch.sigmoid(x @ p)                                        # (N,)
        grad = x.T @ (prob - y) + reg * p
        hess = (x.T * (prob * (1 - prob))) @ x + torch.diag(reg) + 1e-9 * torch.eye(len(p), dtype=x.dtype)
        step = torch.linalg.solve(hess, grad)
        p = p - step
        if float(step.abs().max()) < 1e-8:
            break
    return p


def calibrate(g: nn.Module, d: nn.Module, cfg: TrainConfig, real: torch.Tensor,
              real_labels: torch.Tensor | None = None, seed: int = 7_000_001, clusters: int = 10,
              head: bool = False) -> Calibration:
    """Fit Platt scaling of D's logit on `real` training images (N, 1, 28, 28) in [-1, 1] (with their labels (N,)
    for a conditional D) against as many fresh fakes, DRS's M on those fakes, and (for G without labels or code)
    k-means strata on D's features of them; `head` also refits a linear term on D's features (L2-regularised)."""
    n = len(real)
    if n < 10:
        raise ConfigError("reject: calibration needs at least 10 real images")
    if cfg.conditional and real_labels is None:
        raise ConfigError("reject: a conditional D scores (image, label) pairs; pass the real images' labels")
    _, fakes, y_fake = _draw(g, cfg, n, seed, None)
    l_real, h_real = d_outputs(d, real, real_labels if cfg.conditional else None)
    l_fake, h_fake = d_outputs(d, fakes, y_fake)
    logits = torch.cat([l_real, l_fake]).double()
    target = torch.cat([torch.ones(n), torch.zeros(n)]).double()
    mu = sd = w = None
    x = torch.stack([logits, torch.ones_like(logits)], 1)                 # (2n, 2): logit, 1
    if head:
        h = torch.cat([h_real, h_fake]).double()
        # D's features projected on their top principal directions: a few dozen weights to fit, whatever F is.
        mu = h.mean(0)                                                     # (F,)
        v = _top_directions(h - mu, min(HEAD_DIMS, h.shape[1]), seed)      # (F, q)
        proj = (h - mu) @ v                                                # (2n, q)
        sd = v / proj.std(0).clamp_min(1e-6)                               # (F, q): (h − mu) @ sd has unit variance
        x = torch.cat([x, (h - mu) @ sd], 1)                               # (2n, 2 + q)
    p = _logistic(x, target)
    a, b = float(p[0]), float(p[1])
    if head:
        w = p[2:]
    cal = Calibration(scale=a, bias=b, max_f=0.0, w=w, mu=mu, sd=sd)
    f_real, f_fake = cal.log_ratio(l_real, h_real), cal.log_ratio(l_fake, h_fake)
    centres = None
    if not cfg.conditional and not cfg.info_code:
        centres = _kmeans(_normalised(h_fake), clusters, seed)
    return Calibration(scale=a, bias=b, max_f=float(f_fake.max()), centres=centres,
                       real_accuracy=float((f_real > 0).float().mean()),
                       fake_accuracy=float((f_fake <= 0).float().mean()), w=w, mu=mu, sd=sd)


def _drs_key(f: torch.Tensor, max_f: float, gen: torch.Generator) -> torch.Tensor:
    """DRS's acceptance key (N,): candidate i passes at threshold γ iff key_i > γ (see the module docstring)."""
    fm = (f - max(max_f, float(f.max()))).double()                     # ≤ 0; M grows if a candidate beats it
    f_hat = fm - torch.log1p(-torch.exp(fm - _EPS))
    u = torch.rand(len(f), generator=gen, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    return f_hat - torch.log(u / (1 - u))


def _quotas(strata: torch.Tensor, n: int) -> dict[int, int]:
    """Each stratum's share of n (largest remainder), in proportion to its count among the candidates."""
    ids, counts = torch.unique(strata, return_counts=True)
    exact = counts.double() * n / len(strata)
    q = exact.floor().long()
    for j in torch.argsort(exact - q.double(), descending=True)[: n - int(q.sum())]:
        q[j] += 1
    return {int(i): int(c) for i, c in zip(ids, q)}


def select(key: torch.Tensor, n: int, strata: torch.Tensor | None = None) -> torch.Tensor:
    """Indices (n,) of the n largest keys (N,), within each stratum by its quota when `strata` (N,) is given; in
    draw order."""
    if strata is None:
        keep = torch.topk(key, n).indices
    else:
        parts = []
        for s, q in _quotas(strata, n).items():
            idx = torch.nonzero(strata == s).squeeze(1)
            parts.append(idx[torch.topk(key[idx], q).indices])
        keep = torch.cat(parts)
    return keep.sort().values


def strata_of(cfg: TrainConfig, z: torch.Tensor, y: torch.Tensor | None, feats: torch.Tensor,
              cal: Calibration | None) -> torch.Tensor:
    """Stratum of each candidate (N,): its label, its InfoGAN code, or its nearest k-means centre in D's features."""
    if y is not None:
        return y
    if cfg.info_code:
        return info_code(z)
    if cal is None or cal.centres is None:
        raise ConfigError("reject: stratified rejection of an unconditional G without a code needs a calibration")
    return sq_distances(_normalised(feats), cal.centres).argmin(1)


def sample(g: nn.Module, d: nn.Module, cfg: TrainConfig, n: int, seed: int, strength: float, method: str = "strata",
           cal: Calibration | None = None, label: int | None = None) -> Rejected:
    """n digits drawn with rejection at `strength` (0 = raw … 1 = strict) by `method` (one of METHODS); "drs" and
    the strata of an unconditional G without code need `cal` (see calibrate)."""
    if method not in METHODS:
        raise ConfigError(f"reject: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"reject: n must be a positive whole number, not {n!r}")
    frac = keep_fraction(strength)
    if method in ("drs", "strata-drs") and cal is None and frac < 1:
        raise ConfigError("reject: DRS needs a calibrated D (see rejection.calibrate)")
    t0 = time.perf_counter()
    m = n if frac == 1 else math.ceil(n / frac)
    z, images, y = _draw(g, cfg, m, seed, label)
    if m == n:  # strength 0: exactly the raw draw, D never runs
        return Rejected(images, y, m, time.perf_counter() - t0)
    logits, feats = d_outputs(d, images, y)
    if method in ("topk", "strata"):
        key = logits.double()
    else:
        assert cal is not None
        key = _drs_key(cal.log_ratio(logits, feats), cal.max_f, torch.Generator().manual_seed(seed + 1))
    strata = strata_of(cfg, z, y, feats, cal) if method.startswith("strata") else None
    keep = select(key, n, strata)
    return Rejected(images[keep], None if y is None else y[keep], m, time.perf_counter() - t0)


DEFAULT_METHOD = "strata-drs"   # what `--reject` and Generate use (see the module docstring and BENCHMARKS.md)
CALIBRATION_N = 5000            # real training images (and as many fakes) a calibration sees
CALIBRATION_SEED = 99           # which training images: a fixed seeded subset, so a file always calibrates the same


def training_calibration(g: nn.Module, d: nn.Module, cfg: TrainConfig, n: int = CALIBRATION_N,
                         data_dir: str | None = None) -> Calibration:
    """`calibrate` with a refitted head on a seeded subset of n of cfg.dataset's TRAINING images (never test
    images: those measure), as scripts/probe_rejection.py measured it."""
    from .data import load_dataset, to_float

    images, labels = load_dataset(cfg.dataset, "train", data_dir)
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(CALIBRATION_SEED))[:n]
    return calibrate(g, d, cfg, to_float(images[pick]), labels[pick], head=True)


# A calibration costs most of a minute of CPU for a 20 MB DCGAN export on 5,000 digits (BENCHMARKS.md), and
# anyone may upload one: an upload calibrates on fewer digits, and every calibration is kept on disk under the
# generator file's content hash, so the same file (re-uploaded, reloaded, in another process) never pays twice.
UPLOAD_CALIBRATION_N = 1000
_CACHE_VERSION = 1  # part of a cached calibration's name: raise it when calibrate's output changes
_CAL_TENSORS = ("centres", "w", "mu", "sd")
_CAL_NUMBERS = ("scale", "bias", "max_f", "real_accuracy", "fake_accuracy")


def calibrations_dir(home: Path) -> Path:
    """Where cached calibrations live: `GAN_HOME/calibrations` (pruned with the uploads, see policy.prune)."""
    return Path(home) / "calibrations"


def calibration_file(folder: Path, digest: str, n: int) -> Path:
    """Where the calibration of the generator file with content hash `digest` on `n` digits is kept in `folder`."""
    return Path(folder) / f"{digest[:32]}-n{n}-seed{CALIBRATION_SEED}-v{_CACHE_VERSION}.safetensors"


def save_calibration(cal: Calibration, path: Path) -> None:
    """Write a calibration atomically as safetensors: its tensors, and its numbers as metadata."""
    from safetensors.torch import save_file

    from .checkpoint import atomic_write

    tensors = {k: getattr(cal, k).contiguous() for k in _CAL_TENSORS if getattr(cal, k) is not None}
    meta = {"calibration": json.dumps({k: getattr(cal, k) for k in _CAL_NUMBERS})}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_calibration(path: Path) -> Calibration | None:
    """A calibration `save_calibration` wrote, or None when the file is missing or not one (then calibrate again)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            numbers = json.loads((f.metadata() or {})["calibration"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if set(tensors) - set(_CAL_TENSORS) or not all(isinstance(numbers.get(k), (int, float)) for k in _CAL_NUMBERS):
            return None
        fields: dict[str, Any] = {k: float(numbers[k]) for k in _CAL_NUMBERS} | tensors
        return Calibration(**fields)
    except (OSError, SafetensorError, ValueError, KeyError, TypeError):
        return None


def cached_calibration(path: str | os.PathLike, g: nn.Module, d: nn.Module, cfg: TrainConfig, folder: Path,
                       n: int = CALIBRATION_N, data_dir: str | None = None) -> Calibration:
    """`training_calibration` of the generator file at `path` on `n` digits, kept in `folder` under the file's
    content hash: computed once per file content, then read back (and touched, so pruning keeps what is in use)."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    keep = calibration_file(folder, digest, n)
    cal = load_calibration(keep)
    if cal is not None:
        with contextlib.suppress(OSError):
            os.utime(keep)
        return cal
    cal = training_calibration(g, d, cfg, n, data_dir)
    with contextlib.suppress(OSError):  # a read-only GAN_HOME calibrates every time, but still works
        save_calibration(cal, keep)
    return cal


def prune_calibrations(folder: Path, max_age_s: float, now: float | None = None) -> int:
    """Remove cached calibrations (and leftover temporary files) unused for `max_age_s`; returns how many went."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - max_age_s
    gone = 0
    for p in folder.iterdir():
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink() and p.stat().st_mtime < cutoff:
                p.unlink()
                gone += 1
    return gone


FIT_HOLDOUT = 2000   # real training images fit_discriminator keeps out of D's training, to report its accuracy on


@dataclass
class FitReport:
    """What fit_discriminator measured: D's accuracy (logit > 0 means real) on held-out reals and fresh fakes,
    checked every `every` steps, as (step, real accuracy, fake accuracy) rows."""
    history: list[tuple[int, float, float]] = field(default_factory=list)

    @property
    def last(self) -> tuple[int, float, float]:
        """The final (step, real accuracy, fake accuracy)."""
        return self.history[-1]


@torch.no_grad()
def _d_accuracy(d: nn.Module, g: nn.Module, cfg: TrainConfig, real: torch.Tensor, y_real: torch.Tensor | None,
                seed: int) -> tuple[float, float]:
    """D's accuracy on reals (N, 1, 28, 28) (labels (N,) when conditional) and on as many fakes drawn from `seed`."""
    _, fakes, y_fake = _draw(g, cfg, len(real), seed, None)
    l_real, _ = d_outputs(d, real, y_real if cfg.conditional else None)
    l_fake, _ = d_outputs(d, fakes, y_fake)
    return float((l_real > 0).float().mean()), float((l_fake <= 0).float().mean())


def fit_discriminator(g: nn.Module, cfg: TrainConfig, images: torch.Tensor, labels: torch.Tensor | None,
                      steps: int, seed: int = 0, holdout: int = FIT_HOLDOUT, every: int = 0,
                      log: Callable[[int, float, float], None] | None = None,
                      report: FitReport | None = None) -> nn.Module:
    """A freshly built D (the config's architecture and loss) trained against the frozen G for `steps` steps on the
    real training images (N, 28, 28) uint8 (labels (N,) for a conditional G) vs fresh G samples; G never changes.

    Why this is legitimate: discriminator rejection sampling (Azadi et al. 2019) needs D ≈ the optimal discriminator
    for the FINAL G, D*(x) = p_data(x) / (p_data(x) + p_g(x)), whose logit is log p_data/p_g. A D trained to
    convergence against the frozen G estimates exactly that (Azadi et al. also keep training D with G fixed before
    rejecting): it is the GAN's own D architecture and loss, never the quality classifier, and the rejection code
    recalibrates it on training images as it does any D. This is how a generator exported without its D gets one:
    `scripts/fit_discriminator.py`.

    Each step is the trainer's D step (`step.update_d`) without InfoGAN's code loss: a batch of cfg.batch_size real
    images (a seeded permutation per epoch) against as many fakes from G in eval mode (the G that samples, so D
    learns the digits rejection will score), noise and uniform labels drawn as in training; Adam as the trainer's.
    The last `holdout` images are kept out of training; with `every` > 0 D's accuracy on them and on as many fresh
    fakes is measured every `every` steps (and at the end) into `report` and passed to `log(step, real, fake)`.
    Seeded: the same arguments give bit-identical weights. Returns D in eval mode.
    """
    from .data import to_float
    from .losses import LOSSES

    n_train = _fit_size(cfg, images, labels, steps, holdout)
    b = cfg.batch_size
    train_x, train_y = images[:n_train], None if labels is None else labels[:n_train]
    held_x = to_float(images[n_train:])                                     # (holdout, 1, 28, 28)
    held_y = None if labels is None else labels[n_train:]
    with _frozen(g), torch.random.fork_rng(devices=[]):  # D's init (and dropout masks) from `seed`, caller's RNG kept
        torch.manual_seed(seed)
        d = build_discriminator(cfg)
        d.train()
        split, loss = has_batchnorm(d), LOSSES[cfg.loss]
        rng = torch.Generator().manual_seed(seed)                           # data order, noise, labels, GP's ε
        # InfoGAN's Q (d.q) is not part of the real-vs-fake loss: it keeps its initial weights.
        params = [p for name, p in d.named_parameters() if p.requires_grad and not name.startswith("q.")]
        opt = torch.optim.Adam(params, lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2), fused=True)  # as in training
        perm, pos = torch.randperm(n_train, generator=rng), 0
        for step in range(1, steps + 1):
            if pos + b > n_train:  # a new epoch: a new order (the last partial batch is dropped, as in train)
                perm, pos = torch.randperm(n_train, generator=rng), 0
            idx = perm[pos:pos + b]
            pos += b
            real = to_float(train_x[idx])                                   # (B, 1, 28, 28)
            y_real = None if train_y is None else train_y[idx]              # (B,)
            z = sample_noise(cfg, b, rng)                                   # (B, latent)
            y_fake = sample_labels(cfg, b, rng)                             # (B,) or None
            with torch.no_grad():
                fake = g(z, y_fake)                                         # (B, 1, 28, 28), G frozen in eval mode
            update_d(d, opt, loss, cfg, real, y_real, fake, y_fake, rng, split=split)
            if every and (step % every == 0 or step == steps):
                acc = _d_accuracy(d, g, cfg, held_x, held_y, seed + 1_000_003 + step)
                d.train()
                if report is not None:
                    report.history.append((step, *acc))
                if log is not None:
                    log(step, *acc)
    return d.eval()


def _fit_size(cfg: TrainConfig, images: torch.Tensor, labels: torch.Tensor | None, steps: int, holdout: int) -> int:
    """How many of `images` fit_discriminator trains on (the rest are held out); a ConfigError for what it refuses."""
    if cfg.conditional and labels is None:
        raise ConfigError("fit_discriminator: a conditional D scores (image, label) pairs; pass the images' labels")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"fit_discriminator: steps must be a positive whole number, not {steps!r}")
    n_train = len(images) - holdout
    if n_train < cfg.batch_size:
        raise ConfigError(f"fit_discriminator: {len(images)} images leave fewer than batch_size ({cfg.batch_size}) "
                          f"after holding {holdout} out")
    return n_train


@contextlib.contextmanager
def _frozen(g: nn.Module) -> Iterator[None]:
    """G in eval mode with no gradients for its weights, put back as it was afterwards."""
    was_training, wants_grad = g.training, [p.requires_grad for p in g.parameters()]
    g.eval()
    g.requires_grad_(False)
    try:
        yield
    finally:
        for p, r in zip(g.parameters(), wants_grad):
            p.requires_grad_(r)
        g.train(was_training)
