"""A run's progress in words: epochs against the real budget, the ETA at the current stretch's rate, the place in the
queue (gan_core.web.progress)."""
import dataclasses
import time

import pytest

from gan_core.config import TrainConfig
from gan_core.runs.store import RunView
from gan_core.web import progress, run_list, text


def _run(status="running", step=100, total=1000, batch=50) -> RunView:
    return RunView(1, "r", "me", TrainConfig(batch_size=batch), status, None, time.time() - 60, None, None, None,
                   None, False, False, 0, step, total, "run-000001")


def _rows(seconds: float, every: float = 2.0, start: float = 1000.0) -> list[dict]:
    """Metric rows stored every `every` s for `seconds` (only what the ETA reads)."""
    return [dict(images_per_sec=500.0, created_at=start + t) for t in range(0, int(seconds) + 1, int(every))]


def _capped(step=150, status="done") -> RunView:
    cfg = TrainConfig(epochs=30, batch_size=100, max_steps=600)  # 600 steps an epoch: max_steps ends it after one
    return RunView(2, "capped", "me", cfg, status, None, time.time() - 60, None, None, None, None, False, False, 0,
                   step, 600, "run-000002")


def test_eta_needs_a_wall_clock_rate_and_a_stretch_long_enough_to_trust():
    rows = _rows(30)
    assert progress.eta_seconds(_run(), rows, steps_per_sec=5.0) == pytest.approx(900 / 5)
    assert progress.eta_seconds(_run(status="done"), rows, 5.0) is None
    # no wall-clock rate yet (images/s leaves out epoch ends and, at the start, holds the warm-up): estimating
    assert progress.eta_seconds(_run(), rows) is None and progress.eta_seconds(_run(), [], 5.0) is None
    assert progress.eta_seconds(_run(), _rows(progress.ESTIMATE_AFTER_S - 2), 5.0) is None  # too young a stretch
    assert "ETA estimating…" in progress.progress_text(_run(), None)


def test_format_duration():
    assert [progress.format_duration(s) for s in (None, 5, 65, 3725)] == ["–", "5s", "1m 05s", "1h 02m"]


def test_eta_prefers_the_wall_clock_step_rate():
    assert progress.eta_seconds(_run(), _rows(30), steps_per_sec=3.0) == pytest.approx(300)


def test_eta_uses_the_recent_rate_and_says_when_it_slowed_down():
    run = _run(step=700, total=1000)  # 300 steps left
    # throughput fell from ~140 to ~5 steps/s: the ETA follows the recent rate, not the run's average
    assert progress.eta_seconds(run, _rows(60), steps_per_sec=5.0) == pytest.approx(60)
    text = progress.progress_text(run, progress.eta_seconds(run, _rows(60), 5.0), recent=5.0, earlier=140.0)
    assert "ETA 1m 00s" in text and "slowed down: 5.0 steps/s now, 140.0 before" in text
    steady = progress.progress_text(run, 3.0, recent=100.0, earlier=140.0)
    assert "ETA 3s" in steady and "slowed" not in steady
    assert not progress.slowed_down(None, 100.0) and not progress.slowed_down(10.0, None)
    assert progress.slowed_down(10.0, 30.0)


def test_a_run_capped_by_max_steps_shows_progress_against_its_real_budget():
    run = _capped(step=150, status="running")
    assert progress.epoch_progress(run) == "0.25/1 (max_steps 600)"
    text = progress.progress_text(run, 30.0)
    assert text.startswith("epochs 0.25/1 (max_steps 600) · step 150/600 · 25%") and "0/30" not in text
    row = run_list.runs_table([_capped(step=600)])[0]
    assert row["epoch"] == "1/1 (max_steps 600)" and row["progress"] == 100
    assert progress.epoch_progress(_run()) == "1/20"  # uncapped: the epoch under way of all epochs


def test_queue_position_in_words():
    assert [text.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 102, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "102nd", "111th"]
    queued = _run(status="queued", step=0)
    assert progress.progress_text(queued, queue_position=2).endswith("2nd in queue")
    assert progress.progress_text(queued, queue_position=1).endswith("next in queue")
    a, b = (dataclasses.replace(queued, id=i) for i in (7, 5))
    assert [r["status"] for r in run_list.runs_table([a, b, _run()])] == ["queued (2nd)", "queued (1st)", "running"]


# --- what the live view says is true ----------------------------------------------------------------------------
def _train_into_store(store, cfg, images, on_step=None, stop=None):
    """Train `cfg` for real through the worker's StoreSink (the rows a worker writes); `on_step(ev, run_id)` sees
    each step's metrics after they are stored."""
    from gan_core.events import StepMetrics
    from gan_core.runs.worker import StoreSink
    from gan_core.trainer import train

    run = store.get(store.submit(cfg, name="real", owner="ada"))
    run = store.claim("test-worker", cap=10)
    sink = StoreSink(store, run, flush_s=0.0)

    def watching(ev):
        sink(ev)
        if on_step is not None and isinstance(ev, StepMetrics):
            on_step(ev, run.id)
    train(cfg, watching, stop, out_dir=store.artifacts_dir(run), images=images)
    return run.id


def test_progress_never_goes_back_when_a_run_is_stopped_mid_epoch(tmp_path, mnist_slice):
    import threading

    from conftest import tiny

    from gan_core.runs.store import Store

    store = Store(url=None, home=tmp_path)
    stop, seen = threading.Event(), {}

    def stop_in_epoch_two(ev, run_id):  # 8 steps an epoch: step 11 is in epoch 2
        if ev.step == 11:
            run = store.get(run_id)
            seen["running"] = (progress.epoch_progress(run), progress.live_progress_text(store, run,
                                                                                store.step_metrics(run_id)))
            stop.set()
    run_id = _train_into_store(store, tiny(epochs=3), mnist_slice, stop_in_epoch_two, stop)
    store.finish(run_id, "stopped")
    stopped = store.get(run_id)
    assert stopped.step == 11 and stopped.epoch == 1  # the checkpoint's counters: one whole epoch, 11 steps
    assert seen["running"][0] == progress.epoch_progress(stopped) == "2/3"  # was "2/3" while running, "1/3" stopped
    # a fraction of a second into its stretch the rate means nothing yet (the first interval holds the warm-up)
    assert seen["running"][1].endswith("ETA estimating…"), seen
    assert progress.progress_text(stopped).startswith("epoch 2/3 · step 11/24")
    store.request_resume(run_id)  # queued again: still where it stopped
    assert progress.epoch_progress(store.get(run_id)) == "2/3"
    store.dispose()


def test_eta_after_a_resume_counts_only_the_current_stretch(tmp_path, monkeypatch):
    import gan_core.runs.store as store_mod
    from gan_core.runs.store import Store

    store = Store(url=None, home=tmp_path)
    run_id = store.submit(TrainConfig(epochs=2, batch_size=100))  # 1,200 steps
    now = [1000.0]
    monkeypatch.setattr(store_mod.time, "time", lambda: now[0])  # rows stamped at known times, on any load

    def train_for(seconds: int, step: int) -> int:  # 5 steps/s, a batch of metric rows every 2 s
        for _ in range(seconds // 2):
            now[0] += 2
            step += 10
            store.add_step_metrics(run_id, [dict(step=step, epoch=1, d_loss=1.0, g_loss=1.0, d_real=0.5,
                                                 d_fake=0.5, images_per_sec=500.0)])
        return step

    store.claim("w", cap=1)
    step = train_for(60, 0)
    store.request_stop(run_id)
    store.finish(run_id, "stopped")
    now[0] += 9000  # stopped for two and a half hours
    assert store.request_resume(run_id) and store.claim("w", cap=1).started_at == now[0]
    now[0] += 5  # loading data and models again
    step = train_for(30, step)
    run = store.get(run_id)
    text = progress.live_progress_text(store, run, store.step_metrics(run_id))
    # 750 steps left at 5 steps/s; the pause counted made it "ETA 2h 31m (slowed down: 0.0 steps/s now)"
    assert text == "epoch 1/2 · step 450/1,200 · 38% · ETA 2m 30s", text
    assert store.step_rates(run_id, since=run.started_at) == (pytest.approx(5.0), None)
    now[0] += 1
    train_for(10, step)  # the first rows of a fresh stretch: the rate is known, but on too little to trust
    store.request_stop(run_id)
    store.finish(run_id, "stopped")
    store.request_resume(run_id)
    store.claim("w", cap=1)
    now[0] += 5
    train_for(10, store.get(run_id).step)
    run = store.get(run_id)
    assert progress.live_progress_text(store, run, store.step_metrics(run_id)).endswith("ETA estimating…")
    store.dispose()
