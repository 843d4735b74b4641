"""Nearest training digits and a copy test (memorisation): a GAN that hands back its training digits
scores well on every quality number, so we also ask how close each sample sits to the training set.

Distances live in the shipped quality classifier's 64-wide feature space (metrics.embed), where two drawings of the
same digit in the same style are close and pixel shifts matter little. The features of the whole training set are
computed once per dataset and classifier and cached on disk in the product's data cache as safetensors (float32),
keyed by the dataset, the number of images and a hash of the classifier file, so retraining the classifier
invalidates them; a process keeps them in an lru_cache too.

The copy test is the plain version of "authenticity" (Alaa et al. 2022, "How faithful is your synthetic data?"): a
sample g whose nearest training image is x_j is flagged when d(g, x_j) < d(x_j, NN(x_j)), the distance from x_j to
its own nearest *other* training image; i.e. g is closer to a training digit than that digit's nearest real
neighbour. Real new digits (the test split) are flagged at some rate too: that rate is the floor to compare with.

`GAN_NEIGHBOURS_LIMIT=N` makes the dashboard search only the first N training images (0 or unset: all of them), for
small servers and for tests.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import ConfigError, TrainConfig
from .models import N_CLASSES

DATASETS = ("mnist", "fashion_mnist")  # the datasets with a shipped quality classifier
K = 5
CHUNK_FLOATS = 1 << 22  # distance block per query chunk: 4 M floats (16 MB) whatever the training set's size
RERANK_SLACK = 4  # candidates beyond k re-ranked with exact distances: the matmul form is only accurate to ~1e-3
REAL_N = 500  # real test digits check_shown compares a page's images with (the floor of the copy test)


class NeighboursError(ConfigError):
    """A dataset without a shipped classifier, or a malformed limit: a person's input, told in one line."""


def default_limit() -> int:
    """`GAN_NEIGHBOURS_LIMIT` (first N training images to search), 0 = all; a bad value is a NeighboursError."""
    text = os.environ.get("GAN_NEIGHBOURS_LIMIT", "").strip() or "0"
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise NeighboursError(f"GAN_NEIGHBOURS_LIMIT={text!r} must be a whole number ≥ 0 (0 = all training images)")
    return value


def check_dataset(dataset: str) -> None:
    """NeighboursError unless `dataset` has a shipped classifier to measure distances with."""
    if dataset not in DATASETS:
        raise NeighboursError(f"nearest training digits need a shipped quality classifier; {dataset!r} has none "
                              f"(only {', '.join(DATASETS)})")


def classifier_digest(dataset: str) -> str:
    """sha256 (first 16 hex digits) of the shipped classifier file: the cache key part a retrained one changes."""
    from .metrics import classifier_path

    check_dataset(dataset)
    h = hashlib.sha256()
    with open(classifier_path(dataset), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def cache_path(dataset: str, limit: int, digest: str) -> Path:
    """Where the training features of `dataset` (first `limit` images, 0 = all) under classifier `digest` live."""
    from .data import cache_dir

    return cache_dir() / "neighbours" / f"{dataset}-{limit or 'all'}-{digest}.safetensors"


def _read_cache(path: Path, digest: str) -> torch.Tensor | None:
    """The cached features (N, 64) float32, or None when the file is missing, unreadable or not what it claims."""
    from safetensors import SafetensorError, safe_open

    from .metrics import FEATURES

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            feats = f.get_tensor("features")
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError):  # truncated, garbage, another layout
        return None
    if (meta.get("classifier") != digest or feats.dtype != torch.float32 or feats.ndim != 2
            or feats.shape[1] != FEATURES or str(len(feats)) != meta.get("n") or not torch.isfinite(feats).all()):
        return None
    return feats


def build_features(dataset: str, limit: int = 0, data_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """Embed the first `limit` (0 = all) training images of `dataset`: features (N, 64) float32, not cached."""
    from .data import load_dataset, to_float
    from .metrics import embed, load_classifier

    images, _ = load_dataset(dataset, "train", data_dir=data_dir, limit=limit)  # uint8 (N, 28, 28)
    model = load_classifier(dataset)
    # to_float in slices: the whole set as float (60000, 1, 28, 28) would be 188 MB at once.
    feats = [embed(model, to_float(images[i:i + 5000]))[0] for i in range(0, len(images), 5000)]
    return torch.from_numpy(np.concatenate(feats)).float()


def train_features(dataset: str, limit: int = 0, data_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """Classifier features (N, 64) float32 of the first `limit` (0 = all) training images: from this process's
    cache, else the disk cache, else embedded now (about a minute for all 60,000 on a CPU) and cached. Read-only."""
    check_dataset(dataset)
    if limit < 0:
        raise NeighboursError(f"limit must be ≥ 0 (0 = all training images), got {limit}")
    return _features(dataset, limit, None if data_dir is None else str(data_dir), classifier_digest(dataset))


@lru_cache(maxsize=4)
def _features(dataset: str, limit: int, data_dir: str | None, digest: str) -> torch.Tensor:
    from safetensors.torch import save_file

    from .checkpoint import atomic_write

    path = cache_path(dataset, limit, digest)
    feats = _read_cache(path, digest)
    if feats is None:
        feats = build_features(dataset, limit, data_dir)
        meta = {"dataset": dataset, "classifier": digest, "n": str(len(feats)), "limit": str(limit)}
        try:
            atomic_write(path, lambda tmp: save_file({"features": feats.contiguous()}, tmp, metadata=meta))
        except OSError as e:  # a read-only or full cache costs the next process a rebuild, not this answer
            print(f"warning: could not cache training features at {path}: {e}", file=sys.stderr)
    return feats


_builds: dict[tuple[str, int], threading.Thread] = {}
_build_errors: dict[tuple[str, int], Exception] = {}
_builds_lock = threading.Lock()


def train_features_nowait(dataset: str, limit: int = 0) -> torch.Tensor | None:
    """`train_features(dataset, limit)` when it is at hand (this process or the disk cache), else None with the
    build started in a background thread (once), so a page never waits a minute for it. The thread also loads the
    real test digits the copy test compares with (check_shown). A build that failed (no training or test images
    here) raises its error on every later call, without trying again: a page must not retry a download per visit."""
    check_dataset(dataset)
    key = (dataset, limit)
    with _builds_lock:
        job = _builds.get(key)
        if job is None:
            if is_cached(dataset, limit):
                return train_features(dataset, limit)
            job = threading.Thread(target=_build, args=key, daemon=True, name=f"features-{dataset}-{limit}")
            _builds[key] = job
            job.start()
    job.join(timeout=0.05)
    if job.is_alive():
        return None
    if key in _build_errors:
        raise _build_errors[key]
    return train_features(dataset, limit)  # from the lru_cache the thread filled


def _build(dataset: str, limit: int) -> None:
    try:
        train_features(dataset, limit)
        real_test_features(dataset, REAL_N)
    except Exception as e:  # noqa: BLE001 - kept, and raised to the page by train_features_nowait
        _build_errors[(dataset, limit)] = e


def is_cached(dataset: str, limit: int = 0) -> bool:
    """Whether a valid disk cache of `train_features(dataset, limit)` exists, i.e. no minute of embedding ahead."""
    from safetensors import SafetensorError, safe_open

    digest = classifier_digest(dataset)
    path = cache_path(dataset, limit, digest)
    try:  # the header only: a 15 MB read per dashboard rerun would be waste (train_features checks the tensor)
        with safe_open(str(path), framework="pt") as f:
            meta, shape = f.metadata() or {}, f.get_slice("features").get_shape()
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError):
        return False
    return meta.get("classifier") == digest and [meta.get("n")] == [str(s) for s in shape[:1]]


def timed_build(dataset: str, limit: int = 0) -> dict[str, float]:
    """Seconds for a first build (disk cache removed) and for a load from the disk cache: the numbers for docs."""
    digest = classifier_digest(dataset)
    path = cache_path(dataset, limit, digest)
    path.unlink(missing_ok=True)
    _features.cache_clear()
    t0 = time.perf_counter()
    n = len(train_features(dataset, limit))
    t1 = time.perf_counter()
    _features.cache_clear()
    train_features(dataset, limit)
    t2 = time.perf_counter()
    return {"n": n, "build_s": t1 - t0, "cached_load_s": t2 - t1, "bytes": path.stat().st_size}


def nearest(query: torch.Tensor | np.ndarray, train: torch.Tensor, k: int = K,
            exclude: torch.Tensor | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices int64 (Q, k), Euclidean distances float64 (Q, k)) of each query's k nearest rows of `train`
    (N, 64), nearest first; `exclude` (Q,) is one training index per query that may not be its answer (itself).

    Squared distances by matmul in query chunks (≤ CHUNK_FLOATS floats at a time), then the best k + RERANK_SLACK
    re-ranked with exact differences in float64, so an identical feature vector is at distance exactly 0."""
    q = torch.as_tensor(query, dtype=torch.float32)
    if q.ndim != 2 or q.shape[1] != train.shape[1]:
        raise ValueError(f"query features must be (Q, {train.shape[1]}), got {tuple(q.shape)}")
    n = len(train)
    if not 1 <= k <= n - (exclude is not None):
        raise ValueError(f"k={k} neighbours asked of {n} training images")
    ex = None if exclude is None else torch.as_tensor(exclude, dtype=torch.long)
    cand_k = min(k + RERANK_SLACK, n)
    t_sq = (train * train).sum(1)  # (N,)
    t64 = train.double()
    chunk = max(1, CHUNK_FLOATS // n)
    out_i, out_d = [], []
    for s in range(0, len(q), chunk):
        qc = q[s:s + chunk]  # (C, 64)
        # (C, N) squared distances, approximately: ‖t‖² - 2 q·t in one addmm, + ‖q‖² in place (one block alive)
        d2 = torch.addmm(t_sq, qc, train.T, alpha=-2).add_((qc * qc).sum(1, keepdim=True))
        rows = torch.arange(len(qc))
        if ex is not None:
            d2[rows, ex[s:s + chunk]] = float("inf")
        cand = d2.topk(min(cand_k, n), dim=1, largest=False).indices  # (C, k + slack)
        exact = (qc.double()[:, None, :] - t64[cand]).norm(dim=2)  # (C, k + slack)
        if ex is not None:
            exact[cand == ex[s:s + chunk, None]] = float("inf")  # only reachable when n ≤ k + slack
        d, order = exact.sort(dim=1)
        out_i.append(cand.gather(1, order[:, :k]))
        out_d.append(d[:, :k])
    return torch.cat(out_i).numpy(), torch.cat(out_d).numpy()


def copy_radii(query: torch.Tensor | np.ndarray, train: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(nearest distances float64 (Q,), copy radii float64 (Q,)): each query's distance to its nearest training row
    x_j, and x_j's distance to its own nearest other training row. Only the x_j's that are someone's nearest are
    searched again (a few thousand rows, never an N × N matrix)."""
    idx, dist = nearest(query, train, k=1)
    idx, dist = idx[:, 0], dist[:, 0]
    js = np.unique(idx)  # (U,)
    _, own = nearest(train[torch.from_numpy(js)], train, k=1, exclude=js)  # (U, 1): x_j to its nearest other x
    own_of = dict(zip(js.tolist(), own[:, 0].tolist()))
    return dist, np.array([own_of[j] for j in idx.tolist()])  # (Q,), (Q,)


def authenticity(query: torch.Tensor | np.ndarray, train: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(flags bool (Q,), nearest distances float64 (Q,)): a query is flagged when it is closer to its nearest
    training row x_j than x_j is to its own nearest other training row."""
    dist, radius = copy_radii(query, train)
    return dist < radius, dist


@dataclass(frozen=True)
class CopyTest:
    """How many samples sit closer to a training digit than real digits do, beside the same for real test digits."""
    n: int                        # generated samples tested
    flagged: float                # fraction of them closer to their nearest training digit than its own neighbour
    median_distance: float        # median distance of a sample to its nearest training digit
    real_n: int                   # real test digits tested (the floor)
    real_flagged: float
    real_median_distance: float
    train_n: int                  # training images searched

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@lru_cache(maxsize=4)
def real_test_features(dataset: str, n: int, data_dir: str | None = None) -> np.ndarray:
    """Classifier features (n, 64) float64 of the first n real test digits (the copy test's floor)."""
    from .data import load_dataset, to_float
    from .metrics import embed, load_classifier

    check_dataset(dataset)
    images, _ = load_dataset(dataset, "test", data_dir=data_dir, limit=n)
    return embed(load_classifier(dataset), to_float(images))[0]


def copy_test(features: np.ndarray | torch.Tensor, dataset: str, real_n: int | None = None, limit: int = 0,
              data_dir: str | os.PathLike | None = None) -> CopyTest:
    """The copy test of generated `features` (Q, 64) against `dataset`'s training set (first `limit`, 0 = all),
    with the first `real_n` test digits (default Q, at most 10,000) as the floor."""
    train = train_features(dataset, limit, data_dir)
    real_n = min(real_n or len(features), 10_000)
    real = real_test_features(dataset, real_n, None if data_dir is None else str(data_dir))
    flags, dist = authenticity(features, train)
    rflags, rdist = authenticity(real, train)
    return CopyTest(len(flags), float(flags.mean()), float(np.median(dist)), len(rflags), float(rflags.mean()),
                    float(np.median(rdist)), len(train))


@torch.no_grad()
def sample_features(g: nn.Module, cfg: TrainConfig, n: int, seed: int = 12345) -> np.ndarray:
    """Classifier features (n, 64) float64 of the n samples metrics.measure_generator scores (same seed, same
    classes), so the copy test and the quality numbers are about the same digits."""
    from .metrics import embed, load_classifier
    from .sampling import render_float, seeded_noise

    check_dataset(cfg.dataset)
    z = seeded_noise(cfg, n, seed)  # (n, latent_dim)
    y = torch.arange(n) % N_CLASSES if cfg.conditional else None
    images = torch.cat([render_float(g, z[i:i + 1000], None if y is None else y[i:i + 1000])
                        for i in range(0, n, 1000)])  # (n, 1, 28, 28) in [-1, 1]
    return embed(load_classifier(cfg.dataset), images)[0]


def image_features(images: torch.Tensor | np.ndarray, dataset: str) -> np.ndarray:
    """Classifier features (N, 64) float64 of float images (N, 28, 28) or (N, 1, 28, 28) in [-1, 1]."""
    from .metrics import embed, load_classifier

    x = torch.as_tensor(images, dtype=torch.float32)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    return embed(load_classifier(dataset), x)[0]


def train_images(dataset: str, limit: int = 0, data_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """The training images uint8 (N, 28, 28) that `train_features(dataset, limit)` indexes, row for row."""
    from .data import load_dataset

    check_dataset(dataset)
    return load_dataset(dataset, "train", data_dir=data_dir, limit=limit)[0]


def typical_distance(dataset: str, train: torch.Tensor, n: int = 500) -> float:
    """Median distance of the first n real test images to their nearest image in `train` (N, 64): the scale a
    sample's nearest distance is read against (much smaller means a near copy)."""
    _, dist = nearest(real_test_features(dataset, n), train, k=1)
    return float(np.median(dist))


@dataclass(frozen=True)
class ShownCheck:
    """The copy test of a few images a page shows (Home's grid): how many it flags, and the closest call."""
    n: int                 # images tested
    flagged: int           # how many sit closer to a training image than that image's own nearest neighbour
    nearest: float         # the smallest distance of any of them to a training image
    closest_ratio: float   # min over them of d(image, x_j) / d(x_j, its nearest other training image); < 1 flags
    train_n: int           # training images searched
    real_n: int            # real test digits put through the same test: new by construction, the floor
    real_flagged: float    # the share of them flagged (against a small training slice, far from 0)

    def no_more_than_real(self) -> bool:
        """Whether the flagged count is within two standard errors of what n new real digits would get."""
        r = self.real_flagged
        return self.flagged / self.n <= r + 2 * math.sqrt(r * (1 - r) / self.n)


def check_shown(images: torch.Tensor | np.ndarray, dataset: str, train: torch.Tensor,
                real_n: int = REAL_N) -> ShownCheck:
    """The copy test of uint8 images (N, 28, 28), exactly as shown, against training features `train` (M, 64),
    beside the share of the first `real_n` real test digits it flags against the same training features."""
    from .data import to_float

    x = to_float(torch.as_tensor(np.asarray(images, dtype=np.uint8)))  # (N, 1, 28, 28) in [-1, 1]
    dist, radius = copy_radii(image_features(x, dataset), train)
    ratio = dist / np.maximum(radius, 1e-12)
    real_flags, _ = authenticity(real_test_features(dataset, real_n), train)
    return ShownCheck(len(dist), int((dist < radius).sum()), float(dist.min()), float(ratio.min()), len(train),
                      len(real_flags), float(real_flags.mean()))


@dataclass(frozen=True)
class Neighbours:
    """One sample's k nearest training images: their indices, distances, and whether the copy test flags it."""
    indices: tuple[int, ...]
    distances: tuple[float, ...]
    own_distance: float      # the nearest training image's distance to its own nearest other training image
    flagged: bool            # distances[0] < own_distance: closer to it than any real training neighbour is

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def neighbours_of(image: torch.Tensor | np.ndarray, dataset: str, train: torch.Tensor, k: int = K) -> Neighbours:
    """The k nearest training images (rows of `train` (N, 64)) of one uint8 image (28, 28), as the page shows it."""
    from .data import to_float

    x = to_float(torch.as_tensor(np.asarray(image, dtype=np.uint8))[None])  # (1, 1, 28, 28) in [-1, 1]
    idx, dist = nearest(image_features(x, dataset), train, k=k)
    j = idx[0, 0]
    _, own = nearest(train[j:j + 1], train, k=1, exclude=np.array([j]))
    return Neighbours(tuple(int(i) for i in idx[0]), tuple(float(d) for d in dist[0]), float(own[0, 0]),
                      bool(dist[0, 0] < own[0, 0]))
