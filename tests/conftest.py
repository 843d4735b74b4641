"""Shared fixtures: the real MNIST files from ../shared/datasets (or $GAN_DATA_DIR) and a private data cache."""
from __future__ import annotations

import os
import signal
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
# evaluate and Generate search the training set for nearest digits: 2,000 of them keep a first (uncached) index at
# seconds, where all 60,000 took 70-85 s on two cores. Tests that care set their own limit.
os.environ.setdefault("GAN_NEIGHBOURS_LIMIT", "2000")

from browser import CHROMIUM, CHROMIUM_ARGS, alive, browser_api, kill, start_streamlit, wait_http  # noqa: E402

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


def scripted_fd(patcher, fds) -> None:
    """Make metrics.measure_generator return these Fréchet distances in turn, the rest of each Quality real (the real
    FD cannot be steered into a shape); `patcher` is a monkeypatch or one of its contexts."""
    import dataclasses

    from gan_core import metrics
    it, real = iter(fds), metrics.measure_generator
    patcher.setattr(metrics, "measure_generator", lambda *a, **k: dataclasses.replace(real(*a, **k), fd=next(it)))


def wait_for(pred, timeout: float = 120.0, every: float = 0.05):
    """Poll `pred` until it returns something truthy (returned); AssertionError after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s")


def many_runs(store, n: int, queued: int = 1) -> list[int]:
    """`n` runs in `store` in a few core INSERTs (submit one by one takes minutes at 30,000), as issue 27's flood
    left them: stopped before they trained, ten owners, a tag on every third; the newest `queued` still queued.
    Returns their ids, oldest first."""
    from sqlalchemy import insert, select

    from gan_core.config import planned_steps
    from gan_core.runs.schema import Run
    cfg = TrainConfig(epochs=2)
    cfg_json, steps, now = cfg.to_json(), planned_steps(cfg), time.time()
    rows = [dict(name=f"flood {i}", owner=f"visitor{i % 10}", owner_key=f"anon:v{i % 10}", config_json=cfg_json,
                 status="stopped" if i <= n - queued else "queued", created_at=now - (n - i),
                 finished_at=now - (n - i) if i <= n - queued else None,
                 queued_at=None if i <= n - queued else now - (n - i), total_steps=steps,
                 tags="flood" if i % 3 == 0 else "", description="") for i in range(1, n + 1)]
    with store.engine.begin() as c:
        first = (c.execute(select(Run.id).order_by(Run.id.desc()).limit(1)).scalar() or 0) + 1
        for start in range(0, n, 5000):
            c.execute(insert(Run), rows[start:start + 5000])
    return list(range(first, first + n))


@pytest.fixture
def tiny_cfg() -> TrainConfig:
    """`tiny` on seed 004's dense recipe (tqdm, label smoothing), two epochs."""
    return tiny("seed004-dense")


@pytest.fixture(params=[False, True], ids=["cpu-without-bf16", "cpu-with-bf16"])
def cpu_bf16(request, monkeypatch) -> bool:
    """Both of precision auto's CPU paths on any machine (issue 26: development and CI CPUs come with and without
    bf16 units): GAN_CPU_BF16 makes auto decide as if this CPU lacked / had them. The value: whether it had."""
    monkeypatch.setenv("GAN_CPU_BF16", "1" if request.param else "0")
    return request.param


PG_URL = os.environ.get("GAN_TEST_PG_URL")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


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

        from gan_core.runs.store import Base
        engine = create_engine(PG_URL)
        Base.metadata.drop_all(engine)
        engine.dispose()
        monkeypatch.setenv("GAN_DB_URL", PG_URL)
    return request.param


# For tests whose subject is not the database (Ray dispatch, stop polling, kill -9 recovery): SQLite only. The store's
# PostgreSQL behaviour (claim and guard locks, heartbeats, interruption) has its own tests on both backends, and each
# of these end-to-end runs cost CI 15-30 s a backend.
sqlite_only = pytest.mark.parametrize("store_env", ["sqlite"], indirect=True)


@pytest.fixture
def store(store_env):
    """A Store on the backend of `store_env`."""
    from gan_core.runs.store import Store
    s = Store()
    yield s
    s.dispose()


# --- the app in a real Chromium (helpers in browser.py) ------------------------------------------------------------
@pytest.fixture
def server(tmp_path, request):
    """`streamlit run app.py` on a free port with its own GAN_HOME; stops it and the worker it spawned after.
    Parametrize it indirectly with a dict to add environment variables (GAN_DEMO_MODE, GAN_NO_AUTOWORKER...)."""
    home = tmp_path / "home"
    proc, url = start_streamlit(home, tmp_path / "streamlit.log", GAN_HEARTBEAT_S="0.5",
                                **getattr(request, "param", {}))
    try:
        wait_http(url, proc)
        yield url, home
    finally:
        from gan_core.runs.store import Store
        pids = set()
        try:
            store = Store(home=home)
            pids = {w["pid"] for w in store.workers() if w["pid"]}
            store.dispose()
        except Exception:  # the store may not exist if the app never started
            pass
        # The server keeps nothing a test reads after it, and its clean shutdown took 4-5 s a test: SIGKILL.
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in pids:
            kill(pid)  # SIGTERM: the worker (its own session) checkpoints and exits
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.2)
        for pid in pids:
            kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        print((tmp_path / "streamlit.log").read_text()[-3000:])
        if (home / "worker.log").exists():
            print((home / "worker.log").read_text()[-3000:])


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the browser tests of a module (a launch and its Playwright driver took ~2 CPU-s a
    test); each test opens its own contexts on it through browser.own_contexts. Not one per session: between its
    calls, Playwright's sync API leaves its asyncio loop marked running, and asyncio.run() in any later test fails."""
    sync_api = browser_api()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def counted_calibrations(monkeypatch) -> list[int]:
    """The digit count of every rejection calibration computed during the test (those read back from the cache on
    disk are not computed, so not counted)."""
    from gan_core import rejection

    calls: list[int] = []
    real = rejection.training_calibration

    def counted(g, d, cfg, n=rejection.CALIBRATION_N, data_dir=None):
        calls.append(n)
        return real(g, d, cfg, n, data_dir)
    monkeypatch.setattr(rejection, "training_calibration", counted)
    return calls
