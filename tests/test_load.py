"""Load: ten browser sessions (Playwright contexts in real Chromium) watch one live run at once.

The run is live the way a worker makes it live: a thread claims it, heartbeats and appends step metrics through the
Store every half second, so the test measures the dashboard, not training. Every session must keep updating with no
error, and the Streamlit server's CPU must stay bounded; the numbers go to BENCHMARKS.md.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from pathlib import Path


from test_e2e_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, wait_http  # skips without Chromium

SESSIONS = 10
WINDOW_S = 20.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_ten_sessions_watch_one_live_run(tmp_path):
    from playwright.sync_api import sync_playwright

    from gan_core.config import TrainConfig
    from gan_core.store import Store

    home = tmp_path / "home"
    store = Store(home=home)
    run_id = store.submit(TrainConfig(epochs=50), name="watched by ten", owner="load")
    store.claim("load-writer", cap=1)
    stop = threading.Event()

    def writer() -> None:  # what a worker's StoreSink does, at twice its usual rate
        step = 0
        while not stop.wait(0.5):
            store.add_step_metrics(run_id, [dict(step=step + i, epoch=1, d_loss=1.0, g_loss=1.0 + (step + i) % 7 / 10,
                                            d_real=0.7, d_fake=0.3, images_per_sec=5000.0) for i in range(1, 11)])
            step += 10
            store.set_progress(run_id, step=step)
            store.beat_and_check_stop(run_id, "load-writer")

    port = free_port()
    env = {**os.environ, "GAN_HOME": str(home), "GAN_NO_AUTOWORKER": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("GAN_DB_URL", None)
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=writer, daemon=True)
    errors: list[str] = []
    try:
        wait_http(url, proc)
        thread.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = []
            for i in range(SESSIONS):
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.on("pageerror", lambda e, i=i: errors.append(f"session {i}: {e}"))
                page.goto(f"{url}/runs?run={run_id}", wait_until="commit", timeout=120_000)
                pages.append(page)
            step_value = '[data-testid="stMetric"]:has-text("step") [data-testid="stMetricValue"]'
            # Ten first loads at once on two cores, shared with ten Chromium tabs that redraw Plotly every 2 s (the
            # tabs took 1.2 of the 2 cores, the server 0.65-0.75): the first charts come after one to two minutes.
            for page in pages:
                page.locator(step_value).first.wait_for(timeout=300_000)
                page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=300_000)

            def steps() -> list[int]:
                return [int(pg.locator(step_value).first.inner_text().replace(",", "")) for pg in pages]

            before, cpu0, t0 = steps(), cpu_seconds(proc.pid), time.monotonic()
            time.sleep(WINDOW_S)
            after, cpu1, t1 = steps(), cpu_seconds(proc.pid), time.monotonic()
            server_cores = (cpu1 - cpu0) / (t1 - t0)
            memory = rss_mb(proc.pid)
            exceptions = sum(pg.locator('[data-testid="stException"]').count() for pg in pages)
            ARTIFACTS = ROOT / "test-artifacts"
            ARTIFACTS.mkdir(exist_ok=True)
            pages[-1].screenshot(path=str(ARTIFACTS / "load-session-10.png"), full_page=True)
            browser.close()
    finally:
        stop.set()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
        store.dispose()

    result = {"sessions": SESSIONS, "window_s": round(t1 - t0, 1), "server_cpu_cores": round(server_cores, 3),
              "server_rss_mb": round(memory), "steps_before": before, "steps_after": after}
    print("LOAD", json.dumps(result))
    (ROOT / "test-artifacts" / "load.json").write_text(json.dumps(result, indent=2))
    assert not errors and exceptions == 0, errors
    # Every session kept updating: the live fragment reran and showed newer steps in each of the ten.
    assert all(a > b for a, b in zip(after, before)), (before, after)
    # The server's CPU share is recorded for BENCHMARKS.md, not asserted: on two shared cores it measures the
    # machine's load as much as the dashboard (a Streamlit server is one process and cannot use more than ~1 core).
