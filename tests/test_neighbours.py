"""Nearest training digits and the copy test on real MNIST slices with the shipped classifier."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gan_core import neighbours as nb
from gan_core.data import load_dataset, to_float

N_TRAIN = 2000


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private data cache for this module (the disk cache files land here), and an empty in-process cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GAN_CACHE_DIR", str(tmp_path_factory.mktemp("nbcache")))
    nb._features.cache_clear()
    yield
    nb._features.cache_clear()
    mp.undo()


@pytest.fixture(scope="module")
def train(cache) -> torch.Tensor:
    """Features (2000, 64) of the first 2,000 MNIST training images."""
    return nb.train_features("mnist", N_TRAIN)


def test_a_training_image_is_its_own_nearest_neighbour_at_distance_zero(train):
    idx, dist = nb.nearest(train[:50], train, k=5)
    assert idx.shape == dist.shape == (50, 5)
    assert (idx[:, 0] == np.arange(50)).all() and (dist[:, 0] == 0).all()
    assert (np.diff(dist, axis=1) >= 0).all() and (dist[:, 1] > 0).all()
    # the same answer as brute force in float64
    full = torch.cdist(train[:50].double(), train.double(), compute_mode="donot_use_mm_for_euclid_dist")  # (50, 2000)
    want_d, want_i = full.topk(5, dim=1, largest=False)
    assert np.allclose(dist, want_d.numpy(), atol=1e-9) and (idx == want_i.numpy()).all()


def test_exclude_finds_the_nearest_other_image_and_chunks_agree(train, monkeypatch):
    rows = np.arange(10, 40)
    idx, dist = nb.nearest(train[rows], train, k=3, exclude=rows)
    full = torch.cdist(train[rows].double(), train.double(), compute_mode="donot_use_mm_for_euclid_dist")
    full[torch.arange(30), torch.from_numpy(rows)] = float("inf")
    assert (idx[:, 0] != rows).all() and np.allclose(dist[:, 0], full.min(1).values.numpy(), atol=1e-9)
    monkeypatch.setattr(nb, "CHUNK_FLOATS", 7 * N_TRAIN)  # 7 queries a chunk: 5 chunks, the last one short
    idx2, dist2 = nb.nearest(train[rows], train, k=3, exclude=rows)
    assert (idx2 == idx).all() and np.array_equal(dist2, dist)


def test_exact_copies_are_flagged_and_real_test_digits_much_less(train):
    images, _ = load_dataset("mnist", "train", limit=300)  # the first 300 training digits, handed back as samples
    copies = nb.image_features(to_float(images), "mnist")  # embedded afresh, as a generator's samples would be
    ct = nb.copy_test(copies, "mnist", real_n=300, limit=N_TRAIN)
    assert ct.n == 300 and ct.real_n == 300 and ct.train_n == N_TRAIN
    assert ct.flagged >= 0.99 and ct.median_distance < 1e-3
    # Real new digits also land closer than some training digit's own neighbour, but far less often.
    assert 0.05 < ct.real_flagged < 0.6 and ct.real_flagged < ct.flagged - 0.4
    assert ct.real_median_distance > 1.0
    assert set(ct.to_dict()) == {"n", "flagged", "median_distance", "real_n", "real_flagged",
                                 "real_median_distance", "train_n"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        ct.flagged = 0.0  # type: ignore[misc]


def test_slightly_noisy_copies_are_still_flagged_but_fresh_noise_is_not(train):
    images, _ = load_dataset("mnist", "train", limit=200)
    x = to_float(images)
    g = torch.Generator().manual_seed(0)
    near = nb.image_features((x + 0.05 * torch.randn(x.shape, generator=g)).clamp(-1, 1), "mnist")
    flags, _ = nb.authenticity(near, train)
    assert flags.mean() > 0.9
    noise = nb.image_features(torch.rand((200, 1, 28, 28), generator=g) * 2 - 1, "mnist")
    flags, dist = nb.authenticity(noise, train)
    assert flags.mean() < 0.1 and np.median(dist) > 1.0


def _counting_builds(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = nb.build_features

    def counted(dataset, limit=0, data_dir=None):
        calls.append(limit)
        return real(dataset, limit, data_dir)
    monkeypatch.setattr(nb, "build_features", counted)
    return calls


def test_the_disk_cache_is_reused_and_a_new_classifier_invalidates_it(cache, monkeypatch):
    calls = _counting_builds(monkeypatch)
    first = nb.train_features("mnist", 200)
    path = nb.cache_path("mnist", 200, nb.classifier_digest("mnist"))
    assert calls == [200] and path.is_file() and nb.is_cached("mnist", 200)
    mtime = path.stat().st_mtime_ns
    nb._features.cache_clear()  # a new process: only the disk cache is left
    again = nb.train_features("mnist", 200)
    assert calls == [200] and path.stat().st_mtime_ns == mtime and torch.equal(first, again)
    assert first.dtype == torch.float32 and first.shape == (200, 64)
    monkeypatch.setattr(nb, "classifier_digest", lambda dataset: "0123456789abcdef")  # a retrained classifier
    assert not nb.is_cached("mnist", 200)
    nb.train_features("mnist", 200)
    assert calls == [200, 200] and nb.cache_path("mnist", 200, "0123456789abcdef").is_file()


@pytest.mark.parametrize("damage", [b"", b"not a safetensors file at all", None])
def test_a_corrupt_cache_file_is_rebuilt_not_crashed_on(cache, monkeypatch, damage):
    good = nb.train_features("mnist", 100)
    path = nb.cache_path("mnist", 100, nb.classifier_digest("mnist"))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage is None else damage)  # None: a truncated file
    nb._features.cache_clear()
    calls = _counting_builds(monkeypatch)
    assert not nb.is_cached("mnist", 100)
    assert torch.equal(nb.train_features("mnist", 100), good) and calls == [100]
    assert nb.is_cached("mnist", 100)


def test_a_cache_file_claiming_another_classifier_is_not_trusted(cache, monkeypatch, tmp_path):
    from safetensors.torch import save_file
    digest = nb.classifier_digest("mnist")
    path = nb.cache_path("mnist", 50, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"features": torch.zeros(50, 64)}, str(path), metadata={"classifier": "other", "n": "50"})
    nb._features.cache_clear()
    feats = nb.train_features("mnist", 50)
    assert feats.abs().sum() > 0  # rebuilt, not the zeros


def test_bad_input_is_refused_in_words(monkeypatch):
    with pytest.raises(nb.NeighboursError, match="has none"):
        nb.train_features("cifar10")
    with pytest.raises(nb.NeighboursError, match="≥ 0"):
        nb.train_features("mnist", -1)
    monkeypatch.setenv("GAN_NEIGHBOURS_LIMIT", "lots")
    with pytest.raises(nb.NeighboursError, match="GAN_NEIGHBOURS_LIMIT='lots'"):
        nb.default_limit()
    monkeypatch.setenv("GAN_NEIGHBOURS_LIMIT", "300")
    assert nb.default_limit() == 300
    with pytest.raises(ValueError, match=r"\(Q, 64\)"):
        nb.nearest(torch.zeros(3, 10), torch.zeros(20, 64))


def test_check_shown_flags_a_training_digit_shown_as_is_and_not_a_fresh_test_digit(train):
    # Home's grid goes through check_shown: uint8 images exactly as shown.
    images, _ = load_dataset("mnist", "train", limit=8)
    copies = nb.check_shown(images.numpy(), "mnist", train)
    assert copies.n == 8 and copies.flagged == 8 and copies.nearest < 1e-3 and copies.closest_ratio < 1e-3
    assert copies.train_n == N_TRAIN
    fresh, _ = load_dataset("mnist", "test", limit=64)
    found = nb.check_shown(fresh.numpy(), "mnist", train)
    flags, dist = nb.authenticity(nb.image_features(to_float(fresh), "mnist"), train)
    assert found.flagged == int(flags.sum()) < 32 and found.nearest == pytest.approx(dist.min())
    assert (found.closest_ratio < 1) == (found.flagged > 0)


def test_train_features_nowait_builds_once_in_the_background_and_then_answers(cache, monkeypatch):
    calls = _counting_builds(monkeypatch)
    nb._builds.clear()
    limit = 321  # a slice no other test has cached
    nb._build_errors.pop(("mnist", limit), None)
    first = nb.train_features_nowait("mnist", limit)
    nb._builds[("mnist", limit)].join(timeout=120)
    assert first is None or len(first) == limit  # a fast machine may finish within the first call's short wait
    again = nb.train_features_nowait("mnist", limit)
    assert again is not None and len(again) == limit and calls == [limit]
    nb._builds.clear()
    assert nb.train_features_nowait("mnist", limit) is not None and calls == [limit]  # the disk cache, no thread


def test_a_failed_background_build_is_reported_and_not_retried_per_visit(cache, monkeypatch):
    from gan_core.data import DataNotFoundError
    calls: list[int] = []

    def missing(dataset, limit=0, data_dir=None):
        calls.append(limit)
        raise DataNotFoundError("no MNIST training images in /nowhere")
    monkeypatch.setattr(nb, "build_features", missing)
    key = ("mnist", 322)
    nb._builds.pop(key, None)
    nb._build_errors.pop(key, None)
    try:
        nb.train_features_nowait(*key)
    except DataNotFoundError:
        pass
    nb._builds[key].join(timeout=60)
    for _ in range(2):  # every later visit hears why, and nothing is tried again
        with pytest.raises(DataNotFoundError, match="/nowhere"):
            nb.train_features_nowait(*key)
    assert calls == [322]
    nb._builds.pop(key, None)
    nb._build_errors.pop(key, None)
