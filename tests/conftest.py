"""Shared fixtures: the real MNIST files from ../shared/datasets (or $GAN_DATA_DIR) and a private data cache."""
from __future__ import annotations

import contextlib
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


# --- real Chromium against `streamlit run app.py` (test_e2e_*.py, test_load.py) ---------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"  # screenshots for people to look at


def browser_api():
    """playwright.sync_api, called at the top of a browser test module: skips the module where Chromium or
    Playwright is missing, and fails it on CI, which must run the browser tests."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {CHROMIUM} is missing (.ci/run installs chromium)",
                        pytrace=False)
        pytest.skip(f"{CHROMIUM} not installed", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    """A TCP port nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc, timeout: float = 60) -> None:
    """Wait until the Streamlit server at `url` answers its health check; RuntimeError if `proc` exits first."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


def start_streamlit(home: Path, log: Path, **env: str):
    """`streamlit run app.py` on a free port with GAN_HOME=`home` and `env` added to this environment (less the
    store, worker and demo settings a developer may have set), in its own process group; (process, url)."""
    import subprocess
    import sys

    port = free_port()
    base = {k: v for k, v in os.environ.items() if k not in ("GAN_DB_URL", "GAN_NO_AUTOWORKER", "GAN_DEMO_MODE")}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                 "--server.port", str(port), "--server.address", "127.0.0.1",
                                 "--browser.gatherUsageStats", "false"],
                                cwd=ROOT, env={**base, "GAN_HOME": str(home), "PYTHONUNBUFFERED": "1", **env},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def _kill(pid: int, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is as good as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


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
            _kill(pid)  # SIGTERM: the worker (its own session) checkpoints and exits
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        for pid in pids:
            _kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        print((tmp_path / "streamlit.log").read_text()[-3000:])
        if (home / "worker.log").exists():
            print((home / "worker.log").read_text()[-3000:])


def settle(page) -> None:
    """Wait until Streamlit has finished the rerun a widget change started."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000)


def fill(page, label: str, value: str) -> None:
    """Type `value` into the text or number box labelled `label`, press Enter, wait for the rerun."""
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    settle(page)


def shot(page, name: str, height: int = 2000) -> None:
    """A screenshot to test-artifacts/<name>.png. Streamlit scrolls inside its own container, so a tall viewport
    (not full_page) shows the whole page."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(800)  # let Plotly and images re-layout to the new size
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size(size)


def no_exception(page) -> None:
    """Assert the page shows no Streamlit exception box."""
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]').first.inner_text()


def stop_button(page):
    """The run's Stop button (Streamlit's own header shows a "Stop" button while a script runs)."""
    return page.locator('[data-testid="stMain"]').get_by_role("button", name="Stop")


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
