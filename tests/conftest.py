"""Shared fixtures: the real MNIST files from ../shared/datasets (or $GAN_DATA_DIR) and a private data cache."""
from __future__ import annotations

import os
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


@pytest.fixture
def tiny_cfg() -> TrainConfig:
    """A dense config small enough to train a few epochs in well under a second: 8 steps of 64 per epoch."""
    return TrainConfig.from_preset("seed004-dense", g_widths=(64, 128), d_widths=(128, 64), batch_size=64,
                                   train_subset=512, epochs=2, log_every=1, device="cpu", eval_samples=0)


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
