"""Sweeps: a sweep's leaderboard, its charts, Clone and Resume."""
from __future__ import annotations

import pytest
from conftest import sqlite_only

from gan_core.config import TrainConfig
from gan_core.runs.store import Store
from gan_core.web import forms

from .pages import app, fragment_periods, lr_sweep, plotly_charts, texts

pytestmark = sqlite_only  # the pages are the subject, not the database


def _finished_sweep(store: Store, fds: dict[tuple[int, int], list[float]], iss: dict[int, float]) -> tuple[int, list]:
    """A sweep over lr_g (3 points × 2 seeds) whose runs finished with the given FD per epoch ((point, seed
    repeat) → FDs) and final IS per point, each with a real sample grid; returns (sweep id, its runs)."""
    import numpy as np

    from gan_core.runs.sweep import SweepSpec, parse_param, plan
    from gan_core.sampling import grid, png_bytes
    base = TrainConfig(epochs=2, batch_size=64, train_subset=512, eval_samples=100)
    spec = SweepSpec(params=(parse_param("lr_g=1e-4,2e-4,3e-4"),), seeds=2, prune="median")
    planned = plan(base, spec)
    sweep_id = store.submit_sweep("lr sweep", spec.to_dict(), base, [(r.point, r.config) for r in planned],
                                  spec.points(), owner="ada")
    png = png_bytes(grid(np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)))
    for run in store.sweep_runs(sweep_id):
        claimed = store.claim("w", cap=100)
        assert claimed.id == run.id
        repeat = run.config.seed - base.seed
        for epoch, fd in enumerate(fds[(run.sweep_point, repeat)], 1):
            store.add_quality(run.id, epoch, epoch * 8, {"fd": fd, "inception_score": iss[run.sweep_point],
                                                         "n": 100})
        rel = f"{run.artifacts}/samples/epoch-0001.png"
        (store.home / rel).parent.mkdir(parents=True, exist_ok=True)
        (store.home / rel).write_bytes(png)
        store.add_sample(run.id, 1, 8, rel)
        store.finish(run.id, "pruned" if run.sweep_point == 2 else "done")
    return sweep_id, store.sweep_runs(sweep_id)


def test_sweeps_page_ranks_points_by_the_stored_metric_and_clone_fills_the_train_form(home, store):
    # best FD means over seeds: point 0 (50+30)/2 = 40, point 1 (20+24)/2 = 22, point 2 (60+80)/2 = 70
    fds = {(0, 0): [60, 50], (0, 1): [30, 35], (1, 0): [25, 20], (1, 1): [24, 26], (2, 0): [60, 90], (2, 1): [80]}
    sweep_id, runs = _finished_sweep(store, fds, iss={0: 9.0, 1: 7.0, 2: 8.0})
    at = app("pages/sweeps.py", user="ada")
    board = at.dataframe[0].value
    assert list(board["lr_g"]) == ["0.0002", "0.0001", "0.0003"] and list(board["rank"]) == [1, 2, 3]
    assert list(board["best FD"]) == pytest.approx([22.0, 40.0, 70.0])
    assert board["± std"][0] == pytest.approx(8 ** 0.5)  # sample std of 20 and 24
    assert list(board["status"]) == ["done", "done", "pruned"]
    assert all(str(u).startswith("data:image/png;base64,") for u in board["samples"])
    assert len(plotly_charts(at)) == 3  # parallel coordinates, best so far, every run's FD curve
    assert '"parcoords"' in plotly_charts(at)[0].proto.spec
    at.selectbox(key="sweep_metric").set_value("final IS").run()  # higher is better: point 0 (IS 9) first
    assert list(at.dataframe[0].value["lr_g"]) == ["0.0001", "0.0003", "0.0002"]
    best_run = int(at.dataframe[0].value["best run"][0])
    at.button(key="clone-run").click().run()
    cloned = store.get(best_run).config
    form = at.session_state["train_form"]
    assert forms.form_problems(form) == (cloned, [])  # every field, not just the swept one
    assert not at.exception


def test_sweeps_empty_state_leads_to_train_in_sweep_mode(home, store):
    at = app("pages/sweeps.py")
    assert any("No sweeps yet" in t for t in texts(at, "info")) and not at.error
    [b for b in at.button if b.label == "Go to Train"][0].click().run()
    assert at.header[0].value == "Train a GAN" and at.segmented_control(key="train_mode").value == "Sweep"
    assert at.text_area(key="sweep_params")  # the sweep panel is open


def test_a_stopped_sweep_shows_words_not_none_and_resumes_as_one(home, store):
    sweep_id = lr_sweep(store)
    assert store.stop_sweep(sweep_id) == 2  # stopped before any run trained: no score, no grid
    at = app("pages/sweeps.py", user="ada")
    board = at.dataframe[0]
    assert board.proto.placeholder == "–"  # the empty rank and score cells; Streamlit's own is the word "None"
    assert list(board.value["status"]) == ["stopped before scoring"] * 2
    assert all(u.startswith("data:image/svg+xml;base64,") for u in board.value["samples"])  # words, not "None"
    assert not plotly_charts(at)  # no empty best-so-far chart ...
    captions = " ".join(texts(at, "caption"))
    assert "none of the 2 finished run(s) has a best FD yet" in captions  # ... but why there is none
    assert "appears once two runs have a score" in captions
    at.button(key=f"resume-sweep-{sweep_id}").click().run()
    runs = store.sweep_runs(sweep_id)
    assert [(r.status, r.resume) for r in runs] == [("queued", True)] * 2
    assert any(s.startswith("Queued 2 run(s) to resume") for s in texts(at, "success"))
    assert not at.get("button") or all(b.key != f"resume-sweep-{sweep_id}" for b in at.button)  # none left


def test_resume_sweep_is_the_owners_and_leaves_pruned_and_done_runs(home, store):
    fds = {(0, 0): [60, 50], (0, 1): [30, 35], (1, 0): [25, 20], (1, 1): [24, 26], (2, 0): [60, 90], (2, 1): [80]}
    sweep_id, runs = _finished_sweep(store, fds, iss={0: 9.0, 1: 7.0, 2: 8.0})  # 4 done, 2 pruned
    lone = lr_sweep(store, points=1)  # a newer sweep: the page opens on it, so pick this one in the URL
    store.stop_sweep(lone)
    at = app("pages/sweeps.py", user="ada", query={"sweep": str(sweep_id)})
    assert not [b for b in at.button if b.key == f"resume-sweep-{sweep_id}"]  # nothing stopped or interrupted
    store.claim("w", cap=100)  # the lone sweep's run, claimed ...
    store.mark_interrupted(-1)  # ... and its worker gone
    at = app("pages/sweeps.py", user="bob", query={"sweep": str(lone)})
    assert at.button(key=f"resume-sweep-{lone}").disabled  # bob may watch, not resume
    at = app("pages/sweeps.py", user="ada", query={"sweep": str(lone)})
    at.button(key=f"resume-sweep-{lone}").click().run()
    assert [r.status for r in store.sweep_runs(lone)] == ["queued"]
    assert [r.status for r in store.sweep_runs(sweep_id)] == [r.status for r in runs]  # the other sweep: untouched


def test_the_sweeps_page_opens_on_the_newest_sweep_that_has_runs(home, store):
    older = lr_sweep(store)
    emptied = lr_sweep(store)  # newer, but its runs were deleted (the demo prunes old runs the same way)
    store.stop_sweep(emptied)
    for r in store.sweep_runs(emptied):
        store.soft_delete(r.id)
    at = app("pages/sweeps.py", user="ada")
    picker = at.selectbox(key="sweep_picker")
    assert picker.value == older and picker.options[0].endswith("no runs left")
    assert picker.options[1].endswith("· 2 runs") and at.dataframe


def test_a_stopped_sweeps_board_still_looks_now_and_then(home, store, monkeypatch):
    """Issue 26 §3: a sweep's board polled only while a run was live when the page loaded, so a sweep resumed from
    another tab or the CLI stood still here until a reload."""
    import ui
    sweep_id = lr_sweep(store)
    store.stop_sweep(sweep_id)
    periods = fragment_periods(monkeypatch)
    at = app("pages/sweeps.py", user="ada")
    assert ("board", ui.IDLE_REFRESH_S) in periods and not at.exception
    store.resume_sweep(sweep_id, [r.id for r in store.sweep_runs(sweep_id)])
    periods.clear()
    at.run()
    assert ("board", 3.0) in periods  # live again: the board follows its runs closely
