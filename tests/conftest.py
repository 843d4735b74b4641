"""Shared fixtures: the real MNIST files from ../shared/datasets (or $GAN_DATA_DIR) and a private data cache."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "datasets"

if not os.environ.get("GAN_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["GAN_DATA_DIR"] = str(SHARED_DATA)
# Subprocesses inherit these too, so CLI tests find the data without touching the user's home cache.
os.environ.setdefault("GAN_CACHE_DIR", str(ROOT / ".cache" / "test-data"))

from gan_core.config import TrainConfig  # noqa: E402
from gan_core.data import load_dataset  # noqa: E402


@pytest.fixture(scope="session")
def mnist_slice() -> torch.Tensor:
    """The first 512 MNIST training images, uint8 (512, 28, 28)."""
    return load_dataset("mnist", limit=512)[0]


@pytest.fixture(scope="session")
def mnist_labels() -> torch.Tensor:
    """The labels of `mnist_slice`, int64 (512,)."""
    return load_dataset("mnist", limit=512)[1]


def tiny(preset: str = "seed000-dense", **over) -> TrainConfig:
    """The one tiny test config: 8 steps of 64 images an epoch, a dense GAN small enough for ~100 steps/s on two
    cores, quality scoring off unless a test asks (even 100 samples an epoch were half of a 60-epoch run's time)."""
    base = dict(g_widths=(64, 128), d_widths=(128, 64), batch_size=64, train_subset=512, epochs=2, log_every=1,
                device="cpu", eval_samples=0)
    return TrainConfig.from_preset(preset, **{**base, **over})


def wait_for(pred, timeout: float = 120.0, every: float = 0.05):
    """Poll `pred` until it returns something truthy (returned); AssertionError after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s")


@pytest.fixture
def tiny_cfg() -> TrainConfig:
    """`tiny` on seed 004's dense recipe (tqdm, label smoothing), two epochs."""
    return tiny("seed004-dense")


PG_URL = os.environ.get("GAN_TEST_PG_URL")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def store_env(request, tmp_path, monkeypatch):
    """GAN_HOME (and GAN_DB_URL for PostgreSQL) for a fresh, empty store; the env reaches worker subprocesses."""
    monkeypatch.setenv("GAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GAN_DB_URL", raising=False)
    if request.param == "postgresql":
        if not PG_URL:
            if os.environ.get("CI"):
                pytest.fail("CI must test PostgreSQL: .ci/run sets GAN_TEST_PG_URL")
            pytest.skip("GAN_TEST_PG_URL not set (bash .ci/run starts PostgreSQL)")
        from sqlalchemy import create_engine
        from gan_core.store import Base
        engine = create_engine(PG_URL)
        Base.metadata.drop_all(engine)
        engine.dispose()
        monkeypatch.setenv("GAN_DB_URL", PG_URL)
    return request.param


@pytest.fixture
def store(store_env):
    """A Store on the backend of `store_env`."""
    from gan_core.store import Store
    s = Store()
    yield s
    s.dispose()


BROWSER_FILES = ("test_e2e_", "test_load")


def pytest_collection_modifyitems(config, items):
    """Marks by what a test needs, so `make test-fast` can leave the slow kinds out: Chromium, Ray, PostgreSQL."""
    for item in items:
        name = item.path.name
        if name.startswith(BROWSER_FILES):
            item.add_marker(pytest.mark.browser)
        if name == "test_executor.py":
            item.add_marker(pytest.mark.ray)
        if "[postgresql" in item.name:
            item.add_marker(pytest.mark.postgres)
