"""Measured generation quality: a small shipped CNN classifier per dataset and the numbers computed on it.

Inception features mean nothing on 28×28 digits, so the classifier plays Inception's part: Fréchet distance on its
penultimate features (scipy's sqrtm, not a hand-written matrix root), KID, classifier Inception Score, mean
confidence, per-class share and feature diversity, and fidelity vs diversity apart: improved precision and recall
(Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020) on k-NN balls around a fixed set of real
training features that ships with the classifier (as many as samples scored, up to REF_SIZE), and realism: precision
on the real balls no larger than the median radius, the pruning of Kynkäänniemi et al.'s realism score. Plain
precision and density are fooled by the few real digits with huge balls (2,000 all-black images scored precision
1.00): realism is the fidelity number that ranks such garbage below real digits. Real test data scored the same
way, with the same sample count, is the floor. Also the detectors behind the dashboard's warnings: mode collapse,
low variety, D overpowering, divergence.
"""
from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn

from .config import TrainConfig
from .models import N_CLASSES

ASSETS = Path(__file__).resolve().parent / "assets"
FEATURES = 64
REF_SIZE = 5000   # real training digits whose features ship with the classifier: the manifold P/R/D/C and KID use
K_NEAREST = 5     # k of the k-NN balls, as both papers recommend
SCORES_VERSION = 2  # raised when measure() gains a number (2: realism), so cached real-data floors are remeasured


class Classifier(nn.Module):
    """Two 3×3 conv blocks and a 64-wide feature layer: ≥ 99 % on MNIST in a few CPU minutes, ~0.9 MB."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # (N, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (N, 64, 7, 7)
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, FEATURES), nn.ReLU(),  # (N, 64) features
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(FEATURES, N_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 28, 28) in [-1, 1] → (N, 10) logits
        return self.head(self.body(x))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate features (N, 64) and logits (N, 10) in one pass."""
        f = self.body(x)
        return f, self.head(f)


def classifier_path(dataset: str) -> Path:
    """Where the shipped classifier weights for `dataset` live."""
    return ASSETS / f"classifier-{dataset}.safetensors"


def train_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = 3, batch_size: int = 128,
                     lr: float = 1e-3, seed: int = 0, augment: bool = True) -> Classifier:
    """Train the classifier on uint8 images (N, 28, 28) with Adam; small random shifts as augmentation."""
    from .data import to_float

    torch.manual_seed(seed)
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr * 3, total_steps=epochs * (len(images) // batch_size))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(images), generator=gen)
        for i in range(len(images) // batch_size):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            x = to_float(images[idx])
            if augment:  # shift by up to 2 pixels: cheap, and makes the features robust to GAN jitter
                dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
                x = torch.roll(x, (dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy on uint8 images."""
    from .data import to_float

    preds = torch.cat([model(to_float(images[i:i + 1000])).argmax(1) for i in range(0, len(images), 1000)])
    return (preds == labels).float().mean().item()


def save_classifier(model: Classifier, path: Path, info: dict[str, Any], train_images: torch.Tensor,
                    train_labels: torch.Tensor) -> None:
    """Weights, the real training set's feature statistics (μ, Σ), the features and labels of REF_SIZE training
    digits drawn with a fixed seed (the real manifold) and `info` (accuracy, command) as safetensors."""
    from safetensors.torch import save_file

    from .checkpoint import atomic_write
    from .data import to_float

    feats, _ = embed(model, to_float(train_images))
    pick = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(0))[:REF_SIZE]
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors["ref.mu"] = torch.from_numpy(feats.mean(0))
    tensors["ref.cov"] = torch.from_numpy(np.cov(feats, rowvar=False))
    tensors["ref.feats"] = torch.from_numpy(feats[pick.numpy()]).float()       # (REF_SIZE, 64)
    tensors["ref.labels"] = train_labels[pick].to(torch.int64).contiguous()     # (REF_SIZE,)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"gan_studio": json.dumps(info)}))


@lru_cache(maxsize=4)
def load_classifier(dataset: str, device: str = "cpu") -> Classifier:
    """The shipped classifier for `dataset`, in eval mode on `device` (cached per process and device)."""
    from .checkpoint import CheckpointError, load_tensors

    path = classifier_path(dataset)
    if not path.is_file():
        raise CheckpointError(f"no classifier for {dataset} at {path}; train one with "
                              f"`python scripts/train_classifier.py --dataset {dataset}`")
    with torch.random.fork_rng(devices=[]):  # init draws random weights: keep the training run's RNG untouched
        model = Classifier()
    model.load_state_dict({k: v for k, v in load_tensors(path).items() if not k.startswith("ref.")})
    return model.eval().to(device)


@torch.no_grad()
def embed(model: Classifier, images: torch.Tensor, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(features float64 (N, 64), class probabilities float64 (N, 10)) of float images (N, 1, 28, 28) in [-1, 1]."""
    feats, probs = [], []
    device = next(model.parameters()).device  # score where the model lives: a GPU run's scoring stays on the GPU
    from .device import native_bf16

    # bf16 where the hardware has it moves FD by ~0.1 % (7.622 vs 7.629 on 2000 real test digits); emulated on an
    # AVX2-only CPU it took 13.6 s for 2000 images against fp32's 2.8 s.
    fast = native_bf16(device.type)
    for i in range(0, len(images), batch):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            f, logits = model.features_and_logits(images[i:i + batch].float().to(device))
        feats.append(f.double().cpu().numpy())
        probs.append(torch.softmax(logits.double(), 1).cpu().numpy())
    return np.concatenate(feats), np.concatenate(probs)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """‖μ1 - μ2‖² + Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½), the FID formula, with scipy's sqrtm."""
    with warnings.catch_warnings():  # a singular product (e.g. one repeated image) is handled just below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(covmean).all():  # singular product: nudge both diagonals, as the FID reference code does
        eps = np.eye(cov1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def inception_score(probs: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))): 10 for confident, evenly spread classes, 1 for one class or pure doubt."""
    p_y = probs.mean(0, keepdims=True)
    kl = (probs * (np.log(probs + 1e-12) - np.log(p_y + 1e-12))).sum(1)
    return float(math.exp(kl.mean()))


def diversity(features: np.ndarray) -> float:
    """Mean distance of features to their centroid: drops when the generator repeats itself."""
    return float(np.linalg.norm(features - features.mean(0), axis=1).mean())


@dataclass(frozen=True)
class Quality:
    """Quality numbers of one set of images, measured against the real training data's feature statistics."""
    n: int
    fd: float                   # Fréchet distance on classifier features (lower is better)
    inception_score: float      # 1..10 (higher is better)
    confidence: float           # mean max class probability
    class_shares: tuple[float, ...]  # fraction of samples per predicted class
    diversity: float            # feature spread, compare with real data's
    # Conditional runs: how often the classifier sees the class that was asked for, overall and per class.
    fidelity: float | None = None
    fidelity_per_class: tuple[float, ...] | None = None
    # Fidelity vs diversity on k-NN manifolds of the REF_SIZE real features, and KID on the same features. None in
    # numbers stored before they existed.
    # precision and density are the papers' numbers, kept to compare with them, but a few real digits with huge
    # balls cover empty images (all-black: precision 1.00, density 0.60): they do not say whether samples look real.
    precision: float | None = None   # share of samples inside any real k-NN ball
    recall: float | None = None      # share of real digits inside the samples' manifold: is every style drawn?
    density: float | None = None     # precision counting how many real balls hold a sample (≈ 1 for real data)
    coverage: float | None = None    # share of real digits with a sample inside their own ball
    kid: float | None = None         # kernel inception distance: unbiased at small n, where FD is not
    # Conditional runs: per requested class, the numbers above and the Fréchet distance within that class.
    per_class: tuple[dict[str, float], ...] | None = None
    # Share of samples whose realism score is ≥ 1: inside a real ball no larger than the median radius. Garbage
    # (blank, grey, noise, blobs, blurred digits) scores 0, real test digits ~0.5. None in rows stored before it.
    realism: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the fidelity and per-class keys only for conditional samples, no None values)."""
        out = {"n": self.n, "fd": self.fd, "inception_score": self.inception_score, "confidence": self.confidence,
               "class_shares": list(self.class_shares), "diversity": self.diversity}
        if self.fidelity is not None:
            out |= {"fidelity": self.fidelity, "fidelity_per_class": list(self.fidelity_per_class or ())}
        for key in ("precision", "recall", "density", "coverage", "kid", "realism"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.per_class is not None:
            out["per_class"] = [dict(c) for c in self.per_class]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Quality:
        """Back from to_dict() (or a stored row, which may predate some keys or carry extra ones)."""
        per_class = d.get("per_class")
        return cls(int(d["n"]), d["fd"], d["inception_score"], d["confidence"], tuple(d["class_shares"]),
                   d["diversity"], d.get("fidelity"),
                   tuple(d["fidelity_per_class"]) if d.get("fidelity_per_class") is not None else None,
                   **{k: d.get(k) for k in ("precision", "recall", "density", "coverage", "kid")},
                   per_class=tuple(per_class) if per_class is not None else None, realism=d.get("realism"))


@lru_cache(maxsize=4)
def reference_stats(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """(μ, Σ) of the classifier features of the whole real training set, shipped beside the weights."""
    from .checkpoint import load_tensors

    t = load_tensors(classifier_path(dataset))
    return t["ref.mu"].numpy(), t["ref.cov"].numpy()


@dataclass(frozen=True)
class Manifold:
    """A set of feature vectors with the radius of each one's k-NN ball (distance to its k-th nearest other point)."""
    feats: torch.Tensor   # (M, 64) float32
    radii: torch.Tensor   # (M,) float32

    @classmethod
    def of(cls, feats: torch.Tensor | np.ndarray, k: int = K_NEAREST) -> Manifold:
        """The k-NN balls of `feats` (M, 64); needs M > k."""
        f = torch.as_tensor(feats, dtype=torch.float32)
        # column 0 of the sorted distances is the point itself (≈ 0), so value k + 1 is its k-th nearest other point
        # (topk: torch's CPU kthvalue took 8× longer on 5000² distances)
        return cls(f, sq_distances(f, f).topk(k + 1, dim=1, largest=False).values[:, k].sqrt())


def sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (A, B) between rows of a (A, 64) and b (B, 64) as one matmul in float32, some 30×
    faster than float64 cdist (BENCHMARKS.md); the error (~0.01 on squared distances in the hundreds) never moves a
    ball's edge by a sample."""
    return ((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T).clamp_min_(0)


@dataclass(frozen=True)
class Reference:
    """The shipped real manifold of a dataset: REF_SIZE real training features, their k-NN balls and labels."""
    manifold: Manifold
    labels: np.ndarray        # (REF_SIZE,) int64
    kid_self: float           # KID's real-vs-real kernel term: constant, so computed once


@lru_cache(maxsize=4)
def _reference_tensors(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (REF_SIZE, 64), labels (REF_SIZE,)) shipped with the classifier (KeyError naming the fix)."""
    from .checkpoint import load_tensors

    t = load_tensors(classifier_path(dataset))
    if "ref.feats" not in t:
        raise KeyError(f"the {dataset} classifier has no reference features; rewrite it with "
                       f"`python scripts/train_classifier.py --dataset {dataset} --stats-only`")
    return t["ref.feats"], t["ref.labels"]


@lru_cache(maxsize=8)
def reference(dataset: str, n: int = REF_SIZE) -> Reference:
    """The real manifold for scoring n samples: the first min(n, REF_SIZE) shipped real features (a random draw of
    the training set). As many real digits as samples, as Naeem et al. advise (recall and coverage depend on both
    counts), and it keeps an epoch's scoring cheap: 2000² distances, not 5000 × 2000 plus 5000²."""
    feats, labels = _reference_tensors(dataset)
    real = Manifold.of(feats[:n])
    return Reference(real, labels[:n].numpy(), _kernel_mean(real.feats, real.feats, pairs_only=True))


def prdc(real: Manifold, fake_feats: torch.Tensor | np.ndarray, k: int = K_NEAREST) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020) of fake
    features (N, 64) against the real manifold, the same k for the fakes' own balls; and realism, precision on the
    real balls no larger than the median radius."""
    fake = Manifold.of(fake_feats, k)
    d = sq_distances(real.feats, fake.feats)                  # (M, N), squared: compared with squared radii
    inside_real = d <= real.radii[:, None] ** 2                # [i, j]: fake j lies in real i's ball
    # The realism score's pruning (Kynkäänniemi et al. 2019, section 5; their code's clamp_to_percentile=50): the
    # real digits with the largest balls are the odd ones, far from the rest, and their balls reach empty space.
    # On the shipped MNIST features the balls that hold an all-black, all-grey or blob image have radii 13.7-16.7
    # against a median of 10.3; without them every such image is outside, while about half of real test digits
    # stay inside (the tighter half of the manifold holds half of it).
    tight = real.radii <= real.radii.median()
    return {"precision": inside_real.any(0).double().mean().item(),
            "recall": (d <= fake.radii[None, :] ** 2).any(1).double().mean().item(),
            "density": inside_real.sum(0).double().mean().item() / k,
            "coverage": (d.min(1).values <= real.radii ** 2).double().mean().item(),
            "realism": inside_real[tight].any(0).double().mean().item()}


def _kernel_mean(a: torch.Tensor, b: torch.Tensor, pairs_only: bool = False) -> float:
    """Mean of the cubic polynomial kernel (x·y / d + 1)³ over rows of a (A, d) and b (B, d); with `pairs_only`
    (a is b) over the pairs i ≠ j. The dot products in float32, the cube and sums in float64: KID is a small
    difference of means near 10⁶, which float32 sums would bury. In row blocks, to keep memory small."""
    a32, b32, dim = a.float(), b.float(), a.shape[1]
    total = sum(((a32[i:i + 1000] @ b32.T).double() / dim + 1).pow(3).sum().item() for i in range(0, len(a), 1000))
    if not pairs_only:
        return total / (len(a) * len(b))
    diag = ((a32 * a32).sum(1).double() / dim + 1).pow(3).sum().item()
    return (total - diag) / (len(a) * (len(a) - 1))


def kid(real_feats: torch.Tensor | np.ndarray, fake_feats: torch.Tensor | np.ndarray,
        real_self: float | None = None) -> float:
    """Kernel inception distance: the unbiased MMD² with the cubic polynomial kernel (Bińkowski et al. 2018, as
    torch-fidelity), on all pairs; 0 in expectation when both come from one distribution. `real_self`: the real
    features' own term, when known (Reference.kid_self)."""
    x, y = torch.as_tensor(real_feats), torch.as_tensor(fake_feats)
    if real_self is None:
        real_self = _kernel_mean(x, x, pairs_only=True)
    return real_self + _kernel_mean(y, y, pairs_only=True) - 2 * _kernel_mean(x, y)


def _per_class(feats: np.ndarray, labels: np.ndarray, dataset: str) -> tuple[dict[str, float], ...]:
    """For each class c: P/R/D/C of the features asked to be c against the real digits of class c, and the Fréchet
    distance between the two (so "class 5 has no variety" is visible as its recall)."""
    ref = reference(dataset, len(feats))
    out: list[dict[str, float]] = []
    for c in range(N_CLASSES):
        f = feats[labels == c]
        r = ref.manifold.feats[torch.from_numpy(ref.labels == c)].numpy()
        if len(f) <= K_NEAREST:  # too few samples of this class for k-NN balls
            out.append({"n": int(len(f))})
            continue
        row = prdc(Manifold.of(r), f)
        row["fd"] = frechet_distance(f.mean(0), np.cov(f, rowvar=False), r.mean(0), np.cov(r, rowvar=False))
        out.append({"n": int(len(f)), **row})
    return tuple(out)


def measure(images: torch.Tensor, dataset: str, labels: torch.Tensor | None = None, device: str = "cpu") -> Quality:
    """Quality of float images (N, 1, 28, 28) in [-1, 1], against `dataset`'s training statistics, with the
    classifier on `device`; with the requested `labels` (N,) also the class fidelity and the per-class numbers."""
    feats, probs = embed(load_classifier(dataset, device), images)
    mu, cov = reference_stats(dataset)
    ref = reference(dataset, len(images))
    pred = probs.argmax(1)
    shares = np.bincount(pred, minlength=N_CLASSES) / len(probs)
    fidelity = per_fidelity = per_class = None
    if labels is not None:
        want = labels.cpu().numpy()
        hit = pred == want
        fidelity = float(hit.mean())
        per_fidelity = tuple(float(hit[want == c].mean()) if (want == c).any() else float("nan")
                             for c in range(N_CLASSES))
        per_class = _per_class(feats, want, dataset)
    return Quality(len(images), frechet_distance(feats.mean(0), np.cov(feats, rowvar=False), mu, cov),
                   inception_score(probs), float(probs.max(1).mean()), tuple(float(s) for s in shares),
                   diversity(feats), fidelity, per_fidelity, **prdc(ref.manifold, feats),
                   kid=kid(ref.manifold.feats, feats, ref.kid_self),
                   per_class=per_class)


@lru_cache(maxsize=8)
def real_floor(dataset: str, n: int, download: bool = True) -> Quality:
    """The same numbers for n real test images, per class too: the best a generator can be expected to score."""
    from .data import load_dataset, to_float

    images, labels = load_dataset(dataset, "test", limit=n, download=download)
    return measure(to_float(images), dataset, labels)


@torch.no_grad()
def measure_generator(g: nn.Module, cfg: TrainConfig, n: int, seed: int = 12345) -> Quality:
    """Quality of n samples of G (eval mode, fixed seed so epochs are comparable); a conditional G is asked for
    every class equally often and also scored on class fidelity."""
    from .sampling import render_float, seeded_noise

    z = seeded_noise(cfg, n, seed)
    y = torch.arange(n) % N_CLASSES if cfg.conditional else None
    images = torch.cat([render_float(g, z[i:i + 1000], None if y is None else y[i:i + 1000])
                        for i in range(0, n, 1000)])
    return measure(images, cfg.dataset, y, str(next(g.parameters()).device))


# --- warnings a user can act on ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Alert:
    """A problem the live view shows: what it is, in one line, and what to try."""
    kind: str
    message: str
    suggestion: str


# Before this many steps a generator still draws noise, which the classifier happily calls "one class"; a collapse
# verdict (and advice to change learning rates) would be about noise.
MIN_COLLAPSE_STEPS = 300
# A verdict needs the same kind of evidence on this many newest scored epochs, each past the steps above. One epoch
# is not enough: the recommended first run (dense-ema, 10 epochs) showed a different one every epoch (one class at
# 31 %, then missing classes, then low diversity...) while its FD fell 826 -> 277 and its grid showed every digit: a
# generator that is still learning moves between uneven states, a collapsed one stays in the same one.
COLLAPSE_EPOCHS = 3
# Class shares and diversity say something about modes only once the samples are digits: blobs of an early
# generator are sorted by the classifier into a few classes whatever G will learn. The recommended first run drew
# such blobs for its first 4 epochs (realism 0.00, 0.01, 0.24, 0.02 against real digits' 0.54; one class at
# 31-43 %). Below this share of real data's realism the shares are not judged, unless the samples are nearly all
# one image (feature diversity below IDENTICAL of real data's: a constant generator is collapsed, digit or not).
DIGITS_REALISM, IDENTICAL = 0.5, 0.05
# ... and no verdict while FD is still falling: the newest FD this share or more below the window's first. A
# collapsed generator's FD stalls, since it cannot come closer to real data without the modes it lost, while a
# learning one's keeps falling, if slowly: one dense run fell 11 % an epoch on average (826 -> 277 in 9
# epochs); here, with its first digits at epoch 5, 569 -> 586 -> 518 (9 % over epochs 3-5). 5 % over the window
# tells those apart and still warns a stuck run (300 -> 310 -> 295 in the tests).
FD_STILL_FALLING = 0.05


# Recall this far below real data's (same sample count) means the samples miss real styles: low variety. Per class
# the gap allowed is larger, since ~n/10 samples per class make each class's recall noisier.
RECALL_GAP, CLASS_RECALL_GAP = 0.15, 0.2


def thin_classes(q: Quality, floor: Quality) -> list[int]:
    """Classes of a conditional run whose recall is CLASS_RECALL_GAP or more below real digits' of that class."""
    if not (q.per_class and floor.per_class) or q.n != floor.n:
        return []
    return [c for c, (mine, real) in enumerate(zip(q.per_class, floor.per_class))
            if "recall" in mine and "recall" in real and mine["recall"] < real["recall"] - CLASS_RECALL_GAP]


def ema_lag(decay: float, step: int) -> float:
    """Steps by which an EMA of G (step.ema_update, `decay`, after `step` updates) trails the training G: its
    decay ramps as (1 + n) / (10 + n), which keeps the lag at step / 10, until it reaches `decay`, where the lag
    settles at decay / (1 - decay) (999 steps for 0.999). 0 without an EMA."""
    if not decay:
        return 0.0
    return min(step / 10, decay / (1 - decay))


def judge_after(decay: float = 0.0) -> int:
    """The first step at which a generator (an EMA of G with `decay`, or G itself for 0) can be judged for collapse:
    where the G it shows has trained MIN_COLLAPSE_STEPS steps, i.e. step - ema_lag(decay, step) ≥ the minimum."""
    if not decay:
        return MIN_COLLAPSE_STEPS
    ramp = math.ceil(MIN_COLLAPSE_STEPS / 0.9)   # lag step / 10 still below decay / (1 - decay) there
    return ramp if ramp / 10 <= decay / (1 - decay) else math.ceil(MIN_COLLAPSE_STEPS + decay / (1 - decay))


def collapse_evidence(q: Quality, floor: Quality) -> tuple[str, Alert] | None:
    """What one scored epoch says against real data's `floor`: None, or the kind of evidence ("one_class",
    "missing_classes", "low_diversity", "low_recall", "thin_classes") and the Alert it would raise; or "not_digits"
    and a "too_early" Alert when there is some but the samples are not digits yet (realism, where both have it)."""
    found = _evidence(q, floor)
    if (found is None or q.realism is None or not floor.realism or q.realism >= DIGITS_REALISM * floor.realism
            or q.diversity < IDENTICAL * floor.diversity):
        return found
    return "not_digits", Alert(
        "too_early", f"Too early to judge mode collapse: the samples are not digits yet (realism {q.realism:.2f} "
                     f"against {floor.realism:.2f} for real digits).",
        "The classifier sorts the blobs of a generator that is still learning into a few classes, so uneven class "
        "shares mean little yet. Watch the realism line climb; the warning waits for digits.")


def _evidence(q: Quality, floor: Quality) -> tuple[str, Alert] | None:
    worst = max(q.class_shares)
    missing = [i for i, s in enumerate(q.class_shares) if s < 0.02]
    collapse_hint = "Lower the learning rates, try the wgan_gp or hinge loss, or add label smoothing."
    if worst > 0.3:
        kind, detail = "one_class", f"{worst:.0%} of samples are one class"
    elif missing:
        kind, detail = "missing_classes", f"classes {missing} almost never appear"
    elif q.diversity < 0.6 * floor.diversity:
        kind, detail = "low_diversity", f"feature diversity is {q.diversity / floor.diversity:.0%} of real data's"
    else:
        kind = ""
    if kind:
        return kind, Alert("mode_collapse", f"Possible mode collapse: {detail}.", collapse_hint)
    variety_hint = ("Look for repeated styles in the samples; lower the learning rates, try the hinge or wgan_gp "
                    "loss, or a larger latent_dim.")
    if (q.recall is not None and floor.recall is not None and q.n == floor.n  # comparable: as many samples
            and q.recall < floor.recall - RECALL_GAP):
        detail = (f"recall {q.recall:.2f} against {floor.recall:.2f} for real digits: the samples cover too few "
                  f"of the real styles")
        return "low_recall", Alert("low_variety", f"Low variety: {detail}.", variety_hint)
    thin = thin_classes(q, floor)
    if thin and q.per_class and floor.per_class:  # thin_classes needs both
        pairs = ", ".join(f"{c} ({q.per_class[c]['recall']:.2f} vs {floor.per_class[c]['recall']:.2f})"
                          for c in thin)
        detail = f"little variety within class{'es' if len(thin) > 1 else ''} {pairs}, recall against real digits"
        return "thin_classes", Alert("low_variety", f"Low variety: {detail}.", variety_hint)
    return None


def _too_early(step: int, min_steps: int, decay: float = 0.0) -> Alert:
    ema = (f" This run samples from an EMA of G (g_ema {decay:g}), which trails G by about "
           f"{ema_lag(decay, step):,.0f} steps here." if decay else "")
    return Alert("too_early", f"Too early to judge mode collapse: {step:,} steps trained.",
                 f"A generator draws noise for its first few hundred steps, and the classifier sorts noise into a "
                 f"few classes.{ema} Look again after {min_steps:,} steps.")


def detect_mode_collapse(q: Quality, floor: Quality, step: int | None = None,
                         min_steps: int = MIN_COLLAPSE_STEPS) -> Alert | None:
    """One epoch's evidence (collapse_evidence) as an Alert: mode collapse (class shares far from uniform, feature
    diversity well below real data's) or low variety (recall well below real data's at the same sample count,
    overall or, for a conditional run, within a class). With `step` (the step the numbers were measured at) below
    `min_steps`, an Alert of kind "too_early" instead: nothing to judge yet. The dashboard judges a run's whole
    history with judge_collapse."""
    found = collapse_evidence(q, floor)
    if found is None:
        return None
    if step is not None and step < min_steps:
        return _too_early(step, min_steps)
    return found[1]


def judge_collapse(history: Sequence[tuple[int, Quality]], floor: Quality, g_ema: float = 0.0) -> Alert | None:
    """The live view's collapse verdict from a run's scored epochs as (step, Quality), oldest first, sampled from an
    EMA of G with decay `g_ema` (0: G itself). A warning only when the newest COLLAPSE_EPOCHS epochs, all past
    judge_after(g_ema) steps, show the same kind of evidence and FD has not fallen by FD_STILL_FALLING across
    them; evidence before that, or on samples that are not digits yet, is "too_early" (said, not warned), and
    evidence while FD falls fast is nothing."""
    if not history:
        return None
    step, q = history[-1]
    found = collapse_evidence(q, floor)
    if found is None:
        return None
    after = judge_after(g_ema)
    if step < after:
        return _too_early(step, after, g_ema)
    if found[0] == "not_digits":
        return found[1]
    window = [(s, x) for s, x in history[-COLLAPSE_EPOCHS:] if s >= after]
    first_fd, last_fd = window[0][1].fd, q.fd
    if len(window) > 1 and last_fd <= (1 - FD_STILL_FALLING) * first_fd:  # NaN compares False: judged
        return None
    same = [collapse_evidence(x, floor) for _, x in window]
    if len(window) == COLLAPSE_EPOCHS and all(e is not None and e[0] == found[0] for e in same):
        return found[1]
    return Alert("too_early", f"Watching for mode collapse: {found[1].message[:-1].split(': ', 1)[1]} at this "
                              f"epoch.",
                 f"One epoch is not a verdict: a generator that is still learning passes through uneven epochs. "
                 f"A warning comes if the same shows on {COLLAPSE_EPOCHS} scored epochs in a row without the "
                 f"Fréchet distance falling.")


# Losses whose D logit is a log-odds, so sigmoid(logit) is D's probability; a hinge or WGAN critic's raw scores have
# no such meaning (sigmoid of a healthy critic can sit near 0 and 1), and an LSGAN's targets are 0 and 1 themselves.
PROBABILITY_LOSSES = ("non_saturating", "minimax")
CRITIC_LOSSES = ("hinge", "wgan_gp")  # G's loss is -E[D(G(z))]: it drifts with the critic's offset in healthy runs


def detect_d_overpowering(rows: Sequence[dict[str, Any]], loss: str = "non_saturating",
                          window: int = 20) -> Alert | None:
    """D(x) → 1 and D(G(z)) → 0 for the last `window` logged intervals: G gets no useful gradient (BCE losses)."""
    if loss not in PROBABILITY_LOSSES:
        return None
    tail = rows[-window:]
    if len(tail) == window and all(r["d_real"] > 0.95 and r["d_fake"] < 0.05 for r in tail):
        return Alert("d_overpowering", "The discriminator is overpowering the generator: D(x) ≈ 1 and "
                       "D(G(z)) ≈ 0 for a long stretch.",
                       "Lower lr_d, add label_smoothing 0.1 or d_dropout, or use n_critic 1 with the "
                       "non_saturating loss.")
    return None


def detect_divergence(rows: Sequence[dict[str, Any]], status_error: str | None = None,
                      loss: str = "non_saturating") -> Alert | None:
    """NaN/inf losses (the trainer fails the run) or losses exploding to 10× their earlier scale (for the hinge and
    WGAN `loss`, D's loss alone)."""
    if status_error and status_error.startswith("diverged"):
        return Alert("divergence", f"Training diverged: {status_error}.",
                       "Resume from the last checkpoint with lower learning rates, or use precision fp32.")
    keys = ("d_loss",) if loss in CRITIC_LOSSES else ("d_loss", "g_loss")
    if len(rows) >= 20:
        half = len(rows) // 2
        early = np.median([sum(abs(r[k]) for k in keys) for r in rows[:half]])
        recent = np.median([sum(abs(r[k]) for k in keys) for r in rows[-5:]])
        if recent > 10 * max(early, 0.1):
            return Alert("divergence", f"Losses are exploding: recent scale {recent:.3g} vs {early:.3g} earlier.",
                           "Stop, lower the learning rates (or add gp_weight), and resume.")
    return None
