"""The README's pictures, made from the real app in Chromium so they stay current:

    .venv/bin/python scripts/screenshots.py            # writes docs/*.png and docs/learning.gif

Starts `streamlit run app.py` on a free port with a throwaway GAN_HOME (the app's own worker trains), queues two
small runs and a three-point sweep with the CLI, and photographs every page (light theme, as most READMEs are read)
plus the live view while the first run learns, as an animated GIF. Images are downscaled and palette-quantised: all
of them together stay well under 1.5 MB. Needs Chromium at /usr/bin/chromium and the MNIST files (GAN_DATA_DIR, see
README).
"""
from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from browser import CHROMIUM, CHROMIUM_ARGS, free_port, kill, settle, wait_http  # noqa: E402
from PIL import Image  # noqa: E402

WIDTH = 1280  # the browser's viewport
OUT_WIDTH = 900  # the PNGs' width in docs/
GIF_WIDTH = 640
# The Home page's "Train your first GAN" recipe, smaller, so the pictures take minutes on a laptop (precision auto:
# bf16 only where the CPU has it).
RUN = ["--preset", "dense-ema", "--batch-size", "64", "--train-subset", "8000", "--eval-samples", "200"]


def save_png(png: bytes, path: Path, width: int = OUT_WIDTH, colours: int = 128) -> None:
    """Downscale (area average) and quantise to a small palette: a UI screenshot stays readable at ~100 KB."""
    im = Image.open(io.BytesIO(png)).convert("RGB")
    im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    im.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KB", flush=True)


def shoot(page, height: int) -> bytes:
    """The page at `height` tall (Streamlit scrolls inside its own container, so a tall viewport shows it all)."""
    page.set_viewport_size({"width": WIDTH, "height": height})
    page.wait_for_timeout(1200)  # Plotly and images re-layout to the new size
    return page.screenshot()


def learning_frame(page) -> bytes:
    """The part of the live view that shows learning: from the progress bar down to the newest sample grid."""
    try:
        top = page.locator('[data-testid="stProgress"]').first.bounding_box()["y"] - 10
        grid = page.locator('[data-testid="stMain"] [data-testid="stImage"]').last.bounding_box()
        bottom = grid["y"] + grid["height"] + 30
        if bottom - top > 200:
            return page.screenshot(clip={"x": 0, "y": max(0, top), "width": WIDTH, "height": bottom - max(0, top)})
    except Exception:  # a layout this script does not know: the whole viewport
        pass
    return page.screenshot()


def submit(env: dict, name: str, epochs: int, *extra: str) -> None:
    subprocess.run([sys.executable, "-m", "gan_core", "submit", *RUN, "--epochs", str(epochs), "--name", name,
                    "--owner", "ada", *extra], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--epochs", type=int, default=16,
                    help="epochs of the run the GIF shows learning (16 × 125 steps: digits, not noise, at the end)")
    ap.add_argument("--frames", type=int, default=14, help="at most this many GIF frames")
    args = ap.parse_args()
    from playwright import sync_api

    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="gan-screens-"))
    port = free_port()
    env = {**os.environ, "GAN_HOME": str(home), "GAN_MAX_CONCURRENT": "2", "PYTHONUNBUFFERED": "1"}
    for k in ("GAN_DB_URL", "GAN_NO_AUTOWORKER", "GAN_DEMO_MODE"):
        env.pop(k, None)
    log = open(home / "streamlit.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # `timeout` too: clean up the server and worker below
    try:
        wait_http(url, proc)
        submit(env, "dense-ema-first", args.epochs)
        submit(env, "dense-ema-lr-x2", max(2, args.epochs // 2), "--lr-g", "0.0004", "--seed", "7")
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": WIDTH, "height": 800}, color_scheme="light")
            page.set_default_timeout(90_000)

            page.goto(url)  # the first page view starts the app's worker, which trains the two queued runs
            page.get_by_text("Start here").wait_for()
            page.locator('[data-testid="stImage"] img').first.wait_for()
            settle(page)
            save_png(shoot(page, 820), args.out / "home.png")

            # the live view while run #1 learns: one frame every few seconds, as an animated GIF
            page.goto(f"{url}/runs?run=1")
            page.wait_for_selector(".js-plotly-plot .main-svg")
            page.get_by_text("fixed-noise samples after epoch").first.wait_for(timeout=240_000)
            frames, deadline = [], time.monotonic() + 600
            page.set_viewport_size({"width": WIDTH, "height": 1700})
            while time.monotonic() < deadline and len(frames) < 60:
                page.wait_for_timeout(2500)
                frames.append(learning_frame(page))
                status = page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
                if any(re.search(r"\bdone\b", t) for t in status):
                    break
            settle(page)
            save_png(shoot(page, 1500), args.out / "runs.png")
            keep = frames[:: max(1, len(frames) // args.frames)][: args.frames] + frames[-1:] * 3  # rest on the end
            ims = []
            for f in keep:  # every frame at the last frame's size (the live view grows while it learns)
                im = Image.open(io.BytesIO(f)).convert("RGB")
                last = Image.open(io.BytesIO(keep[-1]))
                ims.append(im.resize((GIF_WIDTH, round(last.height * GIF_WIDTH / last.width)), Image.LANCZOS))
            palette = ims[-1].quantize(64, method=Image.Quantize.MEDIANCUT)
            gif = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in ims]
            gif[0].save(args.out / "learning.gif", save_all=True, append_images=gif[1:], duration=700, loop=0,
                        optimize=True)
            print(f"docs/learning.gif: {(args.out / 'learning.gif').stat().st_size / 1024:.0f} KB, {len(gif)} frames")

            page.set_viewport_size({"width": WIDTH, "height": 800})
            page.goto(f"{url}/samples?run=1")
            page.get_by_text("Download the progression").wait_for()
            settle(page)
            save_png(shoot(page, 900), args.out / "samples.png")

            page.goto(url)
            page.get_by_role("button", name="Generate digits now").click()
            page.get_by_text("Latent interpolation").wait_for()
            page.locator('[data-testid="stImage"] img').nth(1).wait_for()
            settle(page)
            save_png(shoot(page, 1350), args.out / "generate.png")

            # Compare once run #2 is done too
            from gan_core.runs.store import Store
            store = Store(home=home)
            end = time.monotonic() + 600
            while store.get(2).status not in ("done", "failed") and time.monotonic() < end:
                time.sleep(2)
            store.dispose()
            page.goto(f"{url}/compare")
            page.get_by_text("Sample grids", exact=True).wait_for()
            page.get_by_text("Config differences").wait_for()
            page.wait_for_timeout(3000)
            settle(page)
            save_png(shoot(page, 1900), args.out / "compare.png")

            # Sweeps: three learning rates of the same recipe, small, ranked by FD once they have trained
            subprocess.run([sys.executable, "-m", "gan_core", "sweep", *RUN, "--train-subset", "2000", "--epochs",
                            "3", "--param", "lr_g=1e-4,2e-4,4e-4", "--name", "lr_g sweep", "--owner", "ada"],
                           cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            store = Store(home=home)
            end = time.monotonic() + 900
            while time.monotonic() < end and any(r.status in ("queued", "running") for r in store.list_runs()):
                time.sleep(2)
            store.dispose()
            page.goto(f"{url}/sweeps")
            page.get_by_text("Sample grids, epoch by epoch").wait_for()
            page.wait_for_timeout(3000)
            settle(page)
            save_png(shoot(page, 1900), args.out / "sweeps.png")

            page.goto(url)
            page.get_by_role("button", name="Train your first GAN").click()
            page.get_by_text("Valid: dense on mnist").wait_for()
            settle(page)
            save_png(shoot(page, 900), args.out / "train.png")
            browser.close()
    finally:
        from gan_core.runs.store import Store
        try:
            store = Store(home=home)
            pids = {w["pid"] for w in store.workers() if w["pid"]}
            store.dispose()
        except Exception:
            pids = set()
        kill(proc.pid)
        for pid in pids:
            kill(pid)
        time.sleep(5)
        for pid in pids:
            kill(pid, 9)  # its GAN_HOME is removed below
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()
        shutil.rmtree(home, ignore_errors=True)
    total = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"docs/ total: {total / 1024:.0f} KB")


if __name__ == "__main__":
    main()
