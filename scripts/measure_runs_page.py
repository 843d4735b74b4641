"""What one Runs tab costs the server: a store of N runs (one queued, the rest stopped while queued, as issue 27's
flood left it), one `streamlit run app.py` (no worker), one Chromium tab on /runs.

Prints one JSON line: the seconds until the page has drawn its table (a first, cold load, then a second tab's), the
websocket bytes the second tab received for its load, then over an idle window the server's CPU seconds and the
websocket bytes received. Run it against another checkout with --app-dir to compare code versions on the same
machine and store.

    python scripts/measure_runs_page.py --runs 30000 --idle 20 [--app-dir /path/to/other/checkout]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def fill_store(home: Path, n: int) -> None:
    """`n` runs in GAN_HOME=`home` (tests/conftest.py many_runs: one queued, the rest stopped before they trained),
    unless it already has runs."""
    from conftest import many_runs

    from gan_core.runs.store import Store

    store = Store(home=home)
    if not store.count_runs():
        many_runs(store, n)
    store.dispose()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(app_dir: Path, home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` from `app_dir` on a free port, no worker."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("GAN_DB_URL", "GAN_DEMO_MODE")}
    env.update(GAN_HOME=str(home), GAN_NO_AUTOWORKER="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"], cwd=app_dir, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("streamlit did not come up")


def measure(url: str, pid: int, idle_s: float) -> dict:
    """Load /runs once in a fresh tab (time and bytes), then watch it idle (server CPU and bytes)."""
    from playwright.sync_api import sync_playwright

    got = {"bytes": 0}

    def on_ws(ws) -> None:
        ws.on("framereceived", lambda payload: got.__setitem__("bytes", got["bytes"] + len(payload)))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        cold = {}
        for tab in ("cold", "warm"):  # the first load of a fresh server also imports torch and friends
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(180_000)
            page.on("websocket", on_ws)
            got["bytes"] = 0
            started = time.monotonic()
            page.goto(url + "/runs")
            page.locator('[data-testid="stDataFrame"]').first.wait_for()
            page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
            load_s, load_bytes = time.monotonic() - started, got["bytes"]
            if tab == "cold":
                cold = {"cold_load_s": round(load_s, 2)}
                page.close()
        page.wait_for_timeout(2000)  # whatever the load itself still sends
        got["bytes"] = 0
        cpu0 = cpu_seconds(pid)
        page.wait_for_timeout(idle_s * 1000)
        idle_cpu, idle_bytes = cpu_seconds(pid) - cpu0, got["bytes"]
        browser.close()
    return {**cold, "load_s": round(load_s, 2), "load_bytes": load_bytes, "idle_s": idle_s,
            "idle_server_cpu_s": round(idle_cpu, 2), "idle_bytes": idle_bytes}


def main() -> None:
    """Parse the arguments, fill the store, serve, measure, print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30_000)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle watching")
    ap.add_argument("--home", type=Path, help="GAN_HOME to fill and reuse (default: a temporary folder)")
    ap.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout whose app.py is served")
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="runs-page-"))
    fill_store(home, args.runs)
    proc, url = start_server(args.app_dir, home, home.parent / f"{home.name}-streamlit.log")
    try:
        out = measure(url, proc.pid, args.idle)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    print(json.dumps({"runs": args.runs, "app_dir": str(args.app_dir), **out}))


if __name__ == "__main__":
    main()
