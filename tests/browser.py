"""Real Chromium against `streamlit run app.py`: what the browser tests (test_e2e_*.py, test_load.py) and
scripts/screenshots.py share. The `server` fixture in conftest.py starts and stops the app with these."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"  # screenshots for people to look at


def browser_api():
    """playwright.sync_api, called at the top of a browser test module: skips the module where Chromium or
    Playwright is missing, and fails it on CI, which must run the browser tests."""
    import pytest  # here, not at the top: scripts/screenshots.py uses this module without pytest

    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {CHROMIUM} is missing (.ci/run installs chromium)",
                        pytrace=False)
        pytest.skip(f"{CHROMIUM} not installed", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def own_contexts(browser):
    """`browser` (the module's shared Chromium, conftest's `chromium` fixture) for one test: the contexts and pages
    the test opens on it are closed after it, pass or fail, so no tab of a test outlives it (or its server)."""
    before = set(browser.contexts)
    try:
        yield browser
    finally:
        for context in browser.contexts:
            if context not in before:
                context.close()


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


def kill(pid: int, sig: int = signal.SIGTERM) -> None:
    """Send `sig` to `pid`; nothing if it is gone already (or was never ours to signal)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is as good as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
