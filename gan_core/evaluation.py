"""A checkpoint's generator scored beside real test data, with the copy test: what `python -m gan_core evaluate`
prints. Rejection by the file's own D (`--reject`) draws the digits that are scored, as it draws `sample`'s."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from .config import ConfigError, TrainConfig
from .metrics import Quality, measure, measure_generator, real_floor

if TYPE_CHECKING:
    from .neighbours import CopyTest
    from .rejection import Rejected

REAL_FLOOR_MAX = 10_000  # real test images: the test split holds 10,000


def rejected_draw(checkpoint: str | os.PathLike, g: nn.Module, cfg: TrainConfig, n: int, seed: int, strength: float,
                  label: int | None) -> Rejected | None:
    """With `strength` above 0: n digits that the generator's own D (read from `checkpoint`) keeps
    (rejection.DEFAULT_METHOD after recalibrating D on training images); None for the raw draw."""
    if not strength:
        return None
    from . import rejection
    from .checkpoint import load_discriminator

    d = load_discriminator(checkpoint)
    if d is None:
        raise ConfigError("--reject: this generator file carries no discriminator to reject with; use the run's "
                          "checkpoints/ckpt-*.safetensors, or a generator.safetensors written by this version")
    cal = rejection.training_calibration(g, d, cfg)
    return rejection.sample(g, d, cfg, n, seed, strength, rejection.DEFAULT_METHOD, cal, label)


@dataclass(frozen=True)
class Evaluation:
    """One checkpoint's scores: its generator's and real test data's Quality, the copy test (None: skipped, or no
    classifier for the dataset) and the rejection draw (None: raw)."""
    checkpoint: str
    cfg: TrainConfig
    epoch: int  # the epoch its G belongs to, numbered as `train` numbers them
    n: int
    generated: Quality
    real_test: Quality
    copy: CopyTest | None
    kept: Rejected | None
    reject: float

    @property
    def fd_ratio(self) -> float:
        """The generated samples' Fréchet distance over real test data's own (1 = as good as real)."""
        return self.generated.fd / self.real_test.fd

    def to_dict(self) -> dict[str, Any]:
        """The JSON `evaluate --json` prints."""
        return {"checkpoint": self.checkpoint, "dataset": self.cfg.dataset, "epoch": self.epoch,
                "generated": self.generated.to_dict(), "real_test": self.real_test.to_dict(),
                "fd_ratio": self.fd_ratio, "copy_test": None if self.copy is None else self.copy.to_dict(),
                "reject": None if self.kept is None else {"strength": self.reject, "candidates": self.kept.candidates,
                                                          "seconds": self.kept.seconds}}


def evaluate_checkpoint(checkpoint: str | os.PathLike, n: int, seed: int = 12345, reject: float = 0.0,
                        copy_test: bool = True, train_limit: int | None = None,
                        on_embedding: Callable[[str, int, Path], None] | None = None) -> Evaluation:
    """Score n samples of the checkpoint's generator (kept by its own D at `reject` above 0) against real test
    data and, with `copy_test`, against the training set (first `train_limit` images; None: neighbours'
    default). `on_embedding(dataset, limit, cache folder)` is called before the training images are embedded for the
    first time, which takes a minute on a CPU."""
    from . import neighbours as nb
    from .checkpoint import load_generator

    g, cfg, header = load_generator(checkpoint)
    floor = real_floor(cfg.dataset, min(n, REAL_FLOOR_MAX))  # first: missing test data fails before the long part
    kept = rejected_draw(checkpoint, g, cfg, n, seed, reject, None)
    q = measure_generator(g, cfg, n, seed=seed) if kept is None else measure(kept.images, cfg.dataset, kept.labels)
    copy = None
    if copy_test and cfg.dataset in nb.DATASETS:
        limit = nb.default_limit() if train_limit is None else train_limit
        if not nb.is_cached(cfg.dataset, limit) and on_embedding is not None:
            cache = nb.cache_path(cfg.dataset, limit, nb.classifier_digest(cfg.dataset)).parent
            on_embedding(cfg.dataset, limit, cache)
        feats = (nb.sample_features(g, cfg, n, seed=seed) if kept is None
                 else nb.image_features(kept.images, cfg.dataset))
        copy = nb.copy_test(feats, cfg.dataset, real_n=min(n, REAL_FLOOR_MAX), limit=limit)
    # train's numbering: a checkpoint records completed epochs and steps into the next (pos); its G belongs to that
    # next epoch when pos > 0, as the samples and scores taken then do (a generator export records that already)
    epoch = header["epoch"] + (1 if header.get("pos") else 0)
    return Evaluation(str(checkpoint), cfg, epoch, n, q, floor, copy, kept, reject)
