"""The page tests' fixtures: an empty GAN_HOME with no worker, a trained run, real data's numbers, the media sent."""
from __future__ import annotations

from pathlib import Path

import pytest

from gan_core.web import real_floor

from .pages import FLOOR_500, fast, trained_run


@pytest.fixture(autouse=True)
def home(store_env, tmp_path, monkeypatch) -> Path:
    """The empty GAN_HOME of `store_env` (SQLite: every page module is `sqlite_only`), which conftest's `store`
    opens, and no worker processes spawned by the app."""
    monkeypatch.setenv("GAN_NO_AUTOWORKER", "1")
    return tmp_path / "home"


@pytest.fixture(scope="session")
def train_cache(tmp_path_factory) -> Path:
    """Where each distinct config is trained once per session (pytest removes old basetemps itself)."""
    return tmp_path_factory.mktemp("trained")


@pytest.fixture
def trained(store, tiny_cfg, mnist_slice, train_cache) -> int:
    return trained_run(store, fast(tiny_cfg, epochs=3), mnist_slice, train_cache)


@pytest.fixture
def media(monkeypatch) -> dict[str, bytes]:
    """Media file id → the bytes st.image/st.download_button handed to Streamlit (AppTest keeps only URLs)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    seen: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        seen[file_id] = self._files_by_id[file_id].content
        return file_id
    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen


@pytest.fixture
def floor_500(monkeypatch):
    """Real data's numbers at n=500 without scoring 500 test digits (test_real_floor measures them)."""
    monkeypatch.setattr(real_floor, "quality_floor_nowait",
                        lambda dataset, n: (FLOOR_500 if n == 500 else None, False))
