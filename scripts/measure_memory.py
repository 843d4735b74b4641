"""Peak RSS of the worker and of the Streamlit server while a DCGAN run trains and three browsers watch it.

    python scripts/measure_memory.py [--seconds 90]

Starts `streamlit run app.py` on a free port with a fresh GAN_HOME (it starts its own worker), queues a
seed003-dcgan run (bf16), opens the live view in three Chromium pages and reads VmHWM (peak RSS) from /proc.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan_core.config import TrainConfig  # noqa: E402
from gan_core.runs.store import Store  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    """Run the scenario and print one JSON line."""
    from playwright.sync_api import sync_playwright

    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=90)
    args = p.parse_args()
    home = tempfile.mkdtemp(prefix="gan-mem-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GAN_HOME": home}
    store = Store(home=home)
    run_id = store.submit(TrainConfig.from_preset("seed003-dcgan", precision="bf16", epochs=50), name="memory")
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                               "--server.port", str(port), "--server.address", "127.0.0.1"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker_pid = None
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            pages = []
            for _ in range(3):
                page = browser.new_context().new_page()
                for _ in range(60):
                    try:
                        page.goto(f"http://127.0.0.1:{port}/runs?run={run_id}", timeout=10_000)
                        break
                    except Exception:
                        time.sleep(1)
                pages.append(page)
            end = time.time() + args.seconds
            while time.time() < end:
                worker_pid = next((w["pid"] for w in store.workers() if w["pid"]), worker_pid)
                time.sleep(2)
            step = store.get(run_id).step
            result = {"seconds": args.seconds, "viewers": len(pages), "run_step": step,
                      "server_peak_rss_mb": round(peak_rss_mb(server.pid), 1),
                      "worker_peak_rss_mb": round(peak_rss_mb(worker_pid), 1) if worker_pid else None}
            browser.close()
    finally:
        server.terminate()
        if worker_pid:
            try:
                os.kill(worker_pid, 15)
            except ProcessLookupError:
                pass
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
