"""Issue 15 in real Chromium: the sidebar name is kept (typed as the very first action, and remembered by a new
tab), and the Runs live view shows what a user must see: the place in the queue, FD and IS as two charts with their
real-data floors, legends clear of Plotly's toolbar, and Stop / Resume at full width at 800 px with a long name.
Screenshots go to test-artifacts/live-*.png."""
from __future__ import annotations

import time

import pytest
from browser import browser_api, no_exception, own_contexts, settle, shot, stop_button

pytestmark = pytest.mark.browser
sync_api = browser_api()  # skips this module without Chromium (fails on CI)

LONG = "a-very-long-run-name-" * 7  # 147 characters, few places to wrap


def _edit_tags_and_keep_the_name(page, tags: str) -> None:
    """Edit another field (Tags); the sidebar name must survive the rerun."""
    box = page.get_by_role("textbox", name="Tags")
    box.fill(tags)
    box.press("Enter")
    settle(page)
    page.get_by_text("Queued as ada").first.wait_for()
    assert _name_box(page).input_value() == "ada"


def _name_box(page):
    return page.get_by_role("textbox", name="Your name")


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_name_memory_and_the_live_view_as_a_user_sees_them(server, chromium):
    url, home = server
    with own_contexts(chromium) as browser:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        # 1. A fresh page: typing the name is the very first thing done
        page.goto(f"{url}/train")
        _name_box(page).wait_for()
        settle(page)
        assert _name_box(page).input_value() == "anonymous"
        assert "gan_studio_name" not in {c["name"] for c in ctx.cookies()}  # the default is not remembered
        _name_box(page).fill("ada")
        _name_box(page).press("Enter")
        settle(page)
        page.wait_for_timeout(500)
        assert _name_box(page).input_value() == "ada"
        _edit_tags_and_keep_the_name(page, "first")
        # 2. A new tab of this browser (a new session, as after a server restart) starts with the remembered
        # name, and keeps it when another field is edited first
        other = ctx.new_page()
        other.goto(f"{url}/train")
        _name_box(other).wait_for()
        settle(other)
        assert _name_box(other).input_value() == "ada"
        _edit_tags_and_keep_the_name(other, "second")
        shot(other, "live-0-name-remembered", height=1000)
        other.close()

        # 3. Two queued runs (no worker here), the second scored for two epochs
        from gan_core.config import TrainConfig
        from gan_core.runs.store import Store
        store = Store(home=home)
        store.submit(TrainConfig(epochs=2), name="first in line", owner="ada", owner_key="name:ada")
        run_id = store.submit(TrainConfig(epochs=3), name=LONG, owner="ada", owner_key="name:ada")
        for epoch, (fd, inception) in enumerate([(180.0, 3.1), (42.0, 7.4)], start=1):
            store.add_quality(run_id, epoch, 900 * epoch, dict(
                n=500, fd=fd, inception_score=inception, confidence=0.9, class_shares=[0.1] * 10,
                diversity=20.0, seconds=0.5))
        store.dispose()
        started = time.monotonic()
        page.goto(f"{url}/runs?run={run_id}")
        page.wait_for_function("() => document.body.innerText.includes('2nd in queue')", timeout=60_000)
        print(f"Runs showed the queue position {time.monotonic() - started:.1f} s after the click")
        page.get_by_text("real data", exact=False).first.wait_for()  # the floor lines' labels, in the SVG
        for axis, title in (("Fréchet distance", "FD (lower is better)"),
                            ("Inception Score", "IS (higher is better)")):
            page.locator(".js-plotly-plot", has_text=title).filter(has_text=axis).first.wait_for()  # one each
        # Plotly draws a legend after the plot itself: wait for every chart's legend and toolbar (a rerun under
        # load showed the charts a moment without them)
        page.wait_for_function("""() => { const ps = [...document.querySelectorAll('.js-plotly-plot')];
            return ps.length >= 2 && ps.every(p => p.querySelector('.legend') && p.querySelector('.modebar')); }""")
        legends = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(p => {
            const l = p.querySelector('.legend'), m = p.querySelector('.modebar');
            if (!l || !m) return false;
            const a = l.getBoundingClientRect(), b = m.getBoundingClientRect();
            return a.bottom <= b.top || a.top >= b.bottom || a.right <= b.left || a.left >= b.right; })""")
        assert legends and all(legends), legends  # no legend under the toolbar
        no_exception(page)
        shot(page, "live-1-queued-quality")
        # 4. At 800 px wide, with a 147-character name, Stop and Resume keep their labels
        page.set_viewport_size({"width": 800, "height": 1000})
        page.wait_for_timeout(1000)
        for button in (stop_button(page), page.locator('[data-testid="stMain"]').get_by_role(
                "button", name="Resume")):
            fits = button.evaluate("b => { const p = b.querySelector('p') || b;"
                                   " return p.scrollWidth <= p.clientWidth + 1; }")
            assert fits, "a button label is cut short"
        width = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollWidth")
        assert width <= 800, f"the page scrolls sideways ({width} px)"
        shot(page, "live-2-800px", height=1400)


def _legends_clear_of_the_toolbar(page) -> list[bool]:
    """Per Plotly chart: whether its legend stays clear of its toolbar (modebar)."""
    page.wait_for_function("""() => { const ps = [...document.querySelectorAll('.js-plotly-plot')];
        return ps.length >= 8 && ps.every(p => p.querySelector('.legend') && p.querySelector('.modebar')); }""",
                           timeout=60_000)
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(p => {
        const a = p.querySelector('.legend').getBoundingClientRect(), b = p.querySelector('.modebar')
            .getBoundingClientRect();
        return a.bottom <= b.top || a.top >= b.bottom || a.right <= b.left || a.left >= b.right; })""")


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_quality_you_can_see_into(server, chromium):
    """Issue 18: an early-stopped conditional run shows training health, KID, the best FD epoch, fidelity vs
    diversity with real data's lines, and the per-class table; Compare keeps sample counts apart. 1400 and 800 px."""
    from gan_core.config import TrainConfig
    from gan_core.runs.store import Store
    from gan_core.web import real_floor

    url, home = server
    floor = real_floor.quality_floor("mnist", 500)  # on disk once per machine: the server reads it instead of scoring
    store = Store(home=home)
    run_id = store.submit(TrainConfig(epochs=9, conditional=True, spectral_norm=True, eval_samples=500,
                                      early_stop_patience=2), name="conditional", owner="ada", owner_key="name:ada")
    store.claim("e2e", cap=1)
    store.add_step_metrics(run_id, [dict(step=s, epoch=1 + s // 100, d_loss=1.2, g_loss=0.9 + s / 1000, d_real=0.7,
                                         d_fake=0.3, images_per_sec=2000.0, d_grad_norm=3.0 / s ** 0.5,
                                         g_grad_norm=0.05 + 1 / s, d_sigma=1 + s / 500) for s in range(1, 401)])
    for epoch in range(1, 5):
        per_class = [dict(n=50, precision=0.9, recall=0.25 if c == 5 else 0.85, density=1.0, coverage=0.3,
                          fd=40.0 + c) for c in range(10)]
        store.add_quality(run_id, epoch, 100 * epoch, dict(
            n=500, fd=[150.0, 60.0, 70.0, 75.0][epoch - 1], inception_score=2.0 + epoch, confidence=0.9,
            class_shares=[0.1] * 10, diversity=21.0, seconds=1.0, fidelity=0.9, fidelity_per_class=[0.9] * 10,
            precision=0.4 + 0.1 * epoch, recall=0.3 + 0.1 * epoch, density=0.4 * epoch, coverage=0.1 * epoch,
            kid=200.0 / epoch, per_class=per_class, **({"best": True} if epoch <= 2 else {})))
    store.finish(run_id, "done", "stopped early: the Fréchet distance has not improved for 2 epochs (best 60.00 "
                                 "at epoch 2; best-generator.safetensors holds that generator)")
    other = store.submit(TrainConfig(epochs=2, eval_samples=2000), name="bigger sample", owner="ada")
    store.add_quality(other, 1, 100, dict(n=2000, fd=30.0, inception_score=8.0, confidence=0.9,
                                          class_shares=[0.1] * 10, diversity=22.0, precision=0.8, recall=0.6,
                                          density=0.9, coverage=0.5, kid=40.0))
    store.dispose()
    with own_contexts(chromium) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(f"{url}/runs?run={run_id}")
        for title in ("Training health", "KID (lower is better)", "Fidelity vs diversity"):
            page.locator(".js-plotly-plot", has_text=title).first.wait_for()
        page.get_by_text("has not improved for 2 epochs").first.wait_for()
        page.get_by_text("Best FD 60 at epoch 2").first.wait_for()
        if floor:  # real data's dashed lines and per-class numbers at the same n
            page.locator(".js-plotly-plot", has_text="real recall").first.wait_for()
            page.get_by_text("Little variety in class 5").first.wait_for()
        settle(page)
        clear = _legends_clear_of_the_toolbar(page)
        assert all(clear), clear
        no_exception(page)
        shot(page, "live-3-quality-1400", height=3600)
        page.set_viewport_size({"width": 800, "height": 1000})
        page.wait_for_timeout(1500)
        width = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollWidth")
        assert width <= 800, f"the page scrolls sideways ({width} px)"
        narrow = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')]"
                               ".map(p => p.getBoundingClientRect().width).filter(w => w < 200)")
        assert not narrow, f"charts squeezed under 200 px: {narrow}"
        shot(page, "live-4-quality-800", height=5000)

        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(f"{url}/compare")
        page.get_by_text("Runs scored with 2,000 samples").first.wait_for()
        page.locator(".js-plotly-plot", has_text="Precision vs recall").nth(1).wait_for()
        no_exception(page)
        shot(page, "compare-quality-by-n", height=2600)


def _write_grid(store, run, epoch: int) -> None:
    """A sample grid for `epoch`, written and recorded the way the worker's StoreSink does."""
    import numpy as np

    from gan_core.sampling import grid, png_bytes
    rel = f"{store.artifacts_dir(run).name}/samples/epoch-{epoch:04d}.png"
    (store.home / rel).parent.mkdir(parents=True, exist_ok=True)
    (store.home / rel).write_bytes(png_bytes(grid(np.full((64, 28, 28), 60 * epoch, dtype=np.uint8))))
    store.add_sample(run.id, epoch, 8 * epoch, rel)


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_views_move_by_themselves(server, chromium):
    """Issue 26: an open Runs tab lists a run queued elsewhere, Samples shows a live run's new epoch, and the
    browser whose run ends gets a toast, all without a reload (the fragments' own timers, in real Chromium)."""
    import threading

    from gan_core.config import TrainConfig
    from gan_core.runs.store import Store

    url, home = server
    store = Store(home=home)
    done = store.submit(TrainConfig(epochs=2), name="finished before", owner="anonymous")
    store.claim("e2e", cap=1)
    store.finish(done, "done")  # nothing live: the Runs table polls at its slow pace
    beating, stop = [], threading.Event()

    def heartbeat() -> None:  # what a worker does for the run it trains, so the dashboard never calls it dead
        while not stop.wait(0.5):
            for run_id in beating:
                store.beat_and_check_stop(run_id, "e2e")
    threading.Thread(target=heartbeat, daemon=True).start()
    with own_contexts(chromium) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{url}/runs?run={done}")
            table = page.locator('[data-testid="stDataFrame"] table tbody').first
            # the grid draws on a canvas: its rows are read from the table it keeps for screen readers
            table.filter(has_text="finished before").wait_for(state="attached")
            settle(page)
            # 1. Another tab (or the CLI) queues a run: it is a row of this open table within the slow period
            queued = store.submit(TrainConfig(epochs=2), name="queued elsewhere", owner="bob")
            started = time.monotonic()
            table.filter(has_text="queued elsewhere").wait_for(state="attached", timeout=40_000)
            print(f"the queued run showed {time.monotonic() - started:.1f} s after it was queued")
            store.request_stop(queued)

            # 2. Samples of a live run of this browser ("anonymous"): epoch 2's grid shows when it is saved
            live = store.submit(TrainConfig(epochs=5), name="training", owner="anonymous",
                                owner_key="name:anonymous")
            run = store.claim("e2e", cap=1)
            beating.append(live)
            _write_grid(store, run, 1)
            page.goto(f"{url}/samples?run={live}")
            page.get_by_text("Epoch 1 (the only grid so far)").wait_for()
            settle(page)
            _write_grid(store, run, 2)
            started = time.monotonic()
            page.get_by_text("epoch 2 · step 16").wait_for(timeout=30_000)
            print(f"the new epoch showed {time.monotonic() - started:.1f} s after it was saved")
            no_exception(page)
            shot(page, "live-5-samples-new-epoch", height=1200)

            # 3. The run ends: a toast on whatever page this browser shows
            beating.clear()
            store.finish(live, "failed", "refused before training: batch_size: 64 is larger than the 32 training "
                                         "images")
            toast = page.locator('[data-testid="stToast"]').filter(has_text=f"Run #{live} training failed")
            toast.wait_for(timeout=30_000)
            assert "refused before training" in toast.inner_text()
            shot(page, "live-6-toast", height=1000)
            no_exception(page)

            # 4. On the Runs page, which Start leads to, the table and the live view rerun the whole page when the
            # run ends: the toast the sidebar's watcher showed a moment before must survive that (it did not)
            again = store.submit(TrainConfig(epochs=5), name="watched", owner="anonymous", owner_key="name:anonymous")
            store.claim("e2e", cap=1)
            beating.append(again)
            page.goto(f"{url}/runs?run={again}")
            page.get_by_text(f"#{again} watched").first.wait_for()
            page.wait_for_timeout(3000)  # the watcher has seen the run live
            beating.clear()
            store.finish(again, "done")
            page.locator('[data-testid="stToast"]').filter(has_text=f"Run #{again} watched finished").wait_for(
                timeout=30_000)
            no_exception(page)
        finally:
            stop.set()
            store.dispose()
