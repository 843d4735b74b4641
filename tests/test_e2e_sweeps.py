"""The Sweeps page in real Chromium over a sweep trained for real: the leaderboard in the stored metric's order, the
parallel-coordinates chart, and Clone filling the Train form with the chosen run's learning rate."""
from __future__ import annotations

import os
import signal

import pytest
from browser import browser_api, no_exception, own_contexts, settle, shot, start_streamlit, wait_http
from conftest import tiny

from gan_core.runs.store import Store
from gan_core.runs.sweep import SweepSpec, parse_param, plan, run_metric
from gan_core.runs.worker import StoreSink
from gan_core.trainer import train

pytestmark = pytest.mark.browser
sync_api = browser_api()

LRS = ("0.0001", "0.0005", "0.002")


def make_sweep(home, images) -> tuple[int, dict[int, float]]:
    """One finished 3-point sweep over lr_g (owner ada) in the store at `home`, each run trained for real for one
    tiny epoch with its FD scored (100 samples), its events written by the worker's StoreSink: (sweep id,
    {run id: best FD})."""
    store = Store(home=home)
    base = tiny(eval_samples=100, epochs=1)
    spec = SweepSpec(params=(parse_param("lr_g=" + ",".join(LRS)),), mode="grid", seeds=1, prune="none")
    runs = plan(base, spec)
    sweep_id = store.submit_sweep("e2e lr sweep", spec.to_dict(), base, [(r.point, r.config) for r in runs],
                                  spec.points(), owner="ada")
    best = {}
    for _ in runs:
        run = store.claim("e2e-worker", cap=10)
        sink = StoreSink(store, run)
        train(run.config, sink, out_dir=store.artifacts_dir(run), images=images)
        sink.flush()
        store.finish(run.id, "done")
        best[run.id] = run_metric(store.quality(run.id), "best FD")
    store.dispose()
    assert all(isinstance(v, float) for v in best.values()), best  # every run was scored: the board has an order
    return sweep_id, best


def test_sweeps_leaderboard_parcoords_and_clone(tmp_path, mnist_slice, chromium):
    home = tmp_path / "home"
    Store(home=home).dispose()  # the schema first, so the server and the training below never race to create it
    proc, url = start_streamlit(home, tmp_path / "streamlit.log", GAN_NO_AUTOWORKER="1")
    try:
        with own_contexts(chromium) as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # The server boots and its first session imports torch while the sweep trains here (Chromium and the
            # server are other processes): about 10 s of the test's time on two cores.
            wait_http(url, proc)
            page.goto(f"{url}/sweeps", wait_until="commit")
            sweep_id, best = make_sweep(home, mnist_slice)
            page.goto(f"{url}/sweeps?sweep={sweep_id}")
            page.wait_for_selector("text=Leaderboard", timeout=60_000)
            settle(page)
            # Plotly draws after the page: wait for the parcoords trace itself, not just the chart's frame.
            page.wait_for_selector(".js-plotly-plot .parcoords", timeout=30_000)
            no_exception(page)

            # The leaderboard (the data grid's accessible table) lists the runs by their stored best FD, lowest
            # first, each beside that score.
            order = sorted(best, key=best.get)
            grid = page.locator('[data-testid="stDataFrame"]').first
            # the grid's screen-reader table fills in after the canvas: read it once its rows are there
            grid.locator("table tbody tr").first.wait_for(state="attached", timeout=30_000)
            rows = _grid_rows(grid)
            assert [int(r["best run"]) for r in rows] == order, (rows, best)
            assert [float(r["best FD (mean)"]) for r in rows] == pytest.approx([best[i] for i in order])
            assert [r["rank"] for r in rows] == ["1", "2", "3"]
            main = page.locator('[data-testid="stMain"]').inner_text()
            assert "3 done" in main and "owner ada" in main

            # Select the last (worst) row and clone it: the Train form shows that run's learning rate.
            worst = order[-1]
            box = grid.bounding_box()
            page.mouse.click(box["x"] + 15, box["y"] + 38 + 90 * 2 + 45)  # header 38 px, rows 90 px: row 3's box
            settle(page)
            clone = page.get_by_role("button", name=f"Clone run #{worst} (selected) into the Train form")
            clone.wait_for(timeout=15_000)
            shot(page, "sweeps-leaderboard")
            clone.click()
            page.wait_for_selector("text=Check", timeout=60_000)
            settle(page)
            assert "/train" in page.url
            assert f"Filled from run #{worst}" in page.locator('[data-testid="stMain"]').inner_text()
            lr = page.get_by_role("spinbutton", name="Learning rate of G")
            sync_api.expect(lr).not_to_have_value("", timeout=30_000)  # the form's widgets come after its header
            store = Store(home=home)
            want = store.get(worst).config.lr_g
            store.dispose()
            assert float(lr.input_value()) == pytest.approx(want, rel=1e-3), (lr.input_value(), want)
            no_exception(page)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _grid_rows(grid) -> list[dict[str, str]]:
    """The rows of a Streamlit data grid as {column header: cell text}, from the table it keeps for screen readers
    (the grid itself is drawn on a canvas)."""
    header = [h.inner_text().strip() for h in grid.locator("table thead th").all()]
    return [dict(zip(header, (c.inner_text().strip() for c in r.locator("td").all())))
            for r in grid.locator("table tbody tr").all()]


def test_runs_filters_live_in_the_url_and_a_stopped_sweep_resumes(tmp_path, chromium):
    """Issue 26 in Chromium: a link with filters shows those runs and picking another filter changes the link; a
    stopped sweep shows "–" (not "None") in its leaderboard, and Resume sweep queues its runs again. Nothing trains:
    the runs are queued and stopped in the store."""
    from gan_core.config import TrainConfig

    home = tmp_path / "home"
    store = Store(home=home)
    solo = store.submit(TrainConfig(epochs=1), name="solo", owner="anonymous", tags="baseline")
    store.request_stop(solo)
    store.submit(TrainConfig(epochs=1), name="bobs", owner="bob")
    base = tiny(eval_samples=100, epochs=1)
    spec = SweepSpec(params=(parse_param("lr_g=1e-4,2e-4"),))
    sweep_id = store.submit_sweep("lr", spec.to_dict(), base, [(r.point, r.config) for r in plan(base, spec)],
                                  spec.points(), owner="anonymous")  # the sidebar's default name owns it
    store.stop_sweep(sweep_id)
    swept = [r.id for r in store.sweep_runs(sweep_id)]
    proc, url = start_streamlit(home, tmp_path / "streamlit.log", GAN_NO_AUTOWORKER="1")
    try:
        with own_contexts(chromium) as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            wait_http(url, proc)
            page.goto(f"{url}/runs?status=stopped&tag=baseline")
            page.wait_for_selector('[data-testid="stDataFrame"]', timeout=60_000)
            settle(page)
            no_exception(page)
            grid = page.locator('[data-testid="stDataFrame"]').first
            assert [int(r["id"]) for r in _grid_rows(grid)] == [solo]
            assert "1 of 4 runs match" in page.locator('[data-testid="stMain"]').inner_text()
            # Pick "every tag" in the Tag box: the link loses tag= and keeps status=
            page.locator('[data-testid="stSelectbox"]').filter(has_text="Tag").click()
            page.get_by_role("option", name="every tag").click()
            settle(page)
            assert "status=stopped" in page.url and "tag=" not in page.url, page.url
            # The rerun may still be drawing when settle() returns on a busy machine (it once read "1 of 4"): wait
            # for the new table's words, up to 30 s, instead of reading the page once.
            main = page.locator('[data-testid="stMain"]')
            sync_api.expect(main).to_contain_text("3 of 4 runs match", timeout=30_000)
            sync_api.expect(main).to_contain_text(f"Sweep #{sweep_id} lr · 2 runs", timeout=30_000)
            shot(page, "runs-filtered")

            page.goto(f"{url}/sweeps")
            page.wait_for_selector("text=Leaderboard", timeout=60_000)
            settle(page)
            board = page.locator('[data-testid="stDataFrame"]').first
            board.locator("table tbody tr").first.wait_for(state="attached", timeout=30_000)
            rows = _grid_rows(board)  # (the grid's canvas draws "–" in the empty cells; its screen-reader table
            # leaves them empty, so the words are what can be read here)
            assert [r["status"] for r in rows] == ["stopped before scoring"] * 2, rows
            shot(page, "sweeps-stopped")
            page.get_by_role("button", name="Resume the sweep (2 stopped or interrupted runs)").click()
            page.wait_for_selector("text=Queued 2 run(s) to resume", timeout=30_000)
            no_exception(page)
            assert [(r.id, r.status) for r in store.sweep_runs(sweep_id)] == [(i, "queued") for i in swept]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        store.dispose()
