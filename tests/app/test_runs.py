"""Runs: the runs table, a run's live view, and the owner's tools."""
from __future__ import annotations

import dataclasses
import json
import re

import pytest
from conftest import sqlite_only
from streamlit.testing.v1 import AppTest

from gan_core.config import TrainConfig
from gan_core.runs.store import Store
from gan_core.web import forms, real_floor, text

from .pages import (
    app,
    fragment_periods,
    lr_sweep,
    metric_rows,
    no_data_here,
    page_text,
    plotly_charts,
    quality_row,
    rich_quality,
    texts,
)

pytestmark = sqlite_only  # the pages are the subject, not the database


# --- the live view: metrics, quality, health ------------------------------------------------------------------------
def test_live_view_shows_a_runs_metrics(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="watched", owner="bob")
    assert store.claim("w1", cap=1).id == run_id
    store.add_step_metrics(run_id, metric_rows(40))
    at = app("pages/runs.py", run_id=run_id)
    assert len(plotly_charts(at)) == 3
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["step"] == "40" and metrics["D loss"] == "1.4000" and metrics["G loss"] == "1.6000"
    assert metrics["D(x)"] == "0.750" and metrics["D(G(z))"] == "0.250" and metrics["images/s"] == "1,234"
    assert at.dataframe[0].value["status"].str.contains("running").all()
    # another "browser session" sees the same numbers, and new rows once the worker writes them
    store.add_step_metrics(run_id, metric_rows(50)[40:])
    other = app("pages/runs.py", run_id=run_id)
    assert {m.label: m.value for m in other.metric}["step"] == "50"
    # what the worker's Started event recorded: device, precision, and the CUDA graph when the steps replay as one
    captions = lambda at: " ".join(c.value for c in at.caption)  # noqa: E731
    store.set_progress(run_id, ran_on="cpu, fp32")
    at = app("pages/runs.py", run_id=run_id)
    assert "Trains on CPU in fp32 (precision auto" in captions(at) and "CUDA graph" not in captions(at)
    store.set_progress(run_id, ran_on="cuda, bf16, CUDA graph")
    at = app("pages/runs.py", run_id=run_id)
    assert "Trains on CUDA in bf16 (precision auto: bf16 only where the hardware has bf16 units), each step " \
           "replayed as a CUDA graph" in captions(at)
    store.finish(run_id, "done")  # a finished run: the same facts, in the past tense
    assert "Trained on CUDA in bf16" in captions(app("pages/runs.py", run_id=run_id))


def test_live_view_metric_tooltips_log_scale_and_wall_clock_axis(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="watched", owner="bob")
    store.claim("w1", cap=1)
    store.add_step_metrics(run_id, metric_rows(40))
    at = app("pages/runs.py", run_id=run_id)
    assert all(m.proto.help for m in at.metric) and "probability" in [m for m in at.metric
                                                                      if m.label == "D(x)"][0].proto.help
    loss = json.loads(plotly_charts(at)[0].proto.spec)
    assert loss["layout"]["xaxis"]["title"]["text"] == "step" and loss["layout"]["yaxis"].get("type") != "log"
    at.toggle(key="log_losses").set_value(True).run()
    at.get("button_group")[0].set_value("time").run()
    loss = json.loads(plotly_charts(at)[0].proto.spec)
    assert loss["layout"]["yaxis"]["type"] == "log" and "since start" in loss["layout"]["xaxis"]["title"]["text"]
    assert loss["layout"]["legend"]["y"] < 0  # below the plot, where the toolbar cannot cover it


@pytest.mark.slow
def test_live_view_plots_quality_and_warns_of_mode_collapse(home, store):
    real_floor.quality_floor("mnist", 500)  # scored in the background on a page; here ready before the first render
    run_id = store.submit(TrainConfig(epochs=5), name="collapsing", owner="bob")
    store.claim("w1", cap=1)
    store.add_step_metrics(run_id, metric_rows(40))
    store.add_quality(run_id, 1, 20, quality_row([0.1] * 10))
    at = app("pages/runs.py", run_id=run_id)
    assert len(plotly_charts(at)) == 5 and not any("mode collapse" in w.value for w in at.warning)
    assert any("Mean confidence 0.900" in c.value and "real data" in c.value for c in at.caption)
    store.add_quality(run_id, 2, 40, quality_row([0.82] + [0.02] * 9, fd=300.0, inception=1.8))
    at = app("pages/runs.py", run_id=run_id)  # 40 steps: noise, which the classifier calls one class
    assert not any("mode collapse" in w.value for w in at.warning)
    assert any("Too early to judge mode collapse" in i.value for i in at.info)
    assert not any("learning rates" in i.value for i in at.info)
    store.add_quality(run_id, 3, 900, quality_row([0.82] + [0.02] * 9, fd=300.0, inception=1.8))
    at = app("pages/runs.py", run_id=run_id)  # one judged epoch is watched, not yet a warning (issue 26)
    assert not any("mode collapse" in w.value for w in at.warning)
    assert any("Watching for mode collapse: 82% of samples are one class" in i.value for i in at.info)
    store.add_quality(run_id, 4, 1000, quality_row([0.82] + [0.02] * 9, fd=310.0, inception=1.8))
    store.add_quality(run_id, 5, 1100, quality_row([0.83] + [0.02] * 9, fd=295.0, inception=1.8))
    at = app("pages/runs.py", run_id=run_id)  # three epochs in a row, FD stuck near 300: collapsed
    warning = [w.value for w in at.warning if "mode collapse" in w.value]
    assert warning and "83% of samples are one class" in warning[0] and "learning rates" in warning[0]


def test_live_view_draws_fd_and_is_as_two_charts_with_their_floors(home, store):
    real_floor.quality_floor("mnist", 500)
    run_id = store.submit(TrainConfig(epochs=3), name="scored", owner="bob")
    store.claim("w1", cap=1)
    store.add_step_metrics(run_id, metric_rows(40))
    store.add_quality(run_id, 1, 20, quality_row([0.1] * 10))
    at = app("pages/runs.py", run_id=run_id)
    specs = [json.loads(c.proto.spec) for c in plotly_charts(at)]
    fd = [sp for sp in specs if sp["layout"]["title"]["text"].startswith("FD")]
    is_ = [sp for sp in specs if sp["layout"]["title"]["text"].startswith("IS")]
    assert len(fd) == len(is_) == 1
    assert [t["name"] for t in fd[0]["data"]] == [f"#{run_id} · FD", "real data · FD"]
    assert [t["name"] for t in is_[0]["data"]] == [f"#{run_id} · IS", "real data · IS"]
    assert fd[0]["layout"]["yaxis"]["type"] == "log" and fd[0]["layout"]["yaxis"]["ticktext"]


def test_runs_page_never_waits_for_the_real_data_floor(home, store, monkeypatch):
    import threading
    import time as _time

    from gan_core import metrics
    gate = threading.Event()

    def slow(dataset, n, download=True):  # scoring real images beside a training worker took 15-25 s
        gate.wait(20)
        return metrics.Quality(n, 1.5, 9.7, 0.98, (0.1,) * 10, 20.0)

    monkeypatch.setattr(metrics, "real_floor", slow)
    monkeypatch.setenv("GAN_CACHE_DIR", str(home / "cache"))  # no floor on disk yet
    real_floor.quality_floor.cache_clear()
    run_id = store.submit(TrainConfig(epochs=3), name="scored", owner="bob")
    store.claim("w1", cap=1)
    store.add_quality(run_id, 1, 20, quality_row([0.1] * 10, fd=40.0) | {"n": 777})
    try:
        t = _time.perf_counter()
        at = app("pages/runs.py", run_id=run_id)
        assert _time.perf_counter() - t < 15
        assert any("appear in a moment" in c.value for c in at.caption)
        specs = [json.loads(c.proto.spec) for c in plotly_charts(at)]
        fd = [sp for sp in specs if sp["layout"]["title"]["text"].startswith("FD")][0]
        assert [t["name"] for t in fd["data"]] == [f"#{run_id} · FD"]  # the run's numbers, without the floor yet
    finally:
        gate.set()
        real_floor.quality_floor.cache_clear()


def _titles(at: AppTest) -> dict[str, dict]:
    specs = [json.loads(c.proto.spec) for c in plotly_charts(at)]
    return {s["layout"]["title"]["text"]: s for s in specs}


def test_live_view_shows_kid_fidelity_diversity_best_epoch_per_class_and_health(home, store, floor_500):
    run_id = store.submit(TrainConfig(epochs=3, conditional=True, spectral_norm=True), name="rich", owner="bob")
    store.claim("w1", cap=1)
    store.add_step_metrics(run_id, [dict(r, d_grad_norm=1.5, g_grad_norm=0.2, d_sigma=1.1) for r in metric_rows(40)])
    store.add_quality(run_id, 1, 20, rich_quality(1, best=True))
    store.add_quality(run_id, 2, 40, dict(rich_quality(2), fd=120.0))  # worse: epoch 1 stays the best
    at = app("pages/runs.py", run_id=run_id)
    charts_by_title = _titles(at)
    assert {"Training health", "KID (lower is better)", "Fidelity vs diversity (higher is better)",
            "FD (lower is better)"} <= set(charts_by_title)
    health = [t["name"] for t in charts_by_title["Training health"]["data"]]
    assert [n for n in health if "raw" not in n] == ["D grad norm", "G grad norm", "D σ (right axis)"]
    star = [t for t in charts_by_title["FD (lower is better)"]["data"] if t.get("marker", {}).get("symbol") == "star"]
    assert len(star) == 1 and star[0]["x"] == [1]
    assert any("Best FD 90 at epoch 1" in c.value and "best-generator.safetensors" in c.value for c in at.caption)
    prdc = [t["name"] for t in charts_by_title["Fidelity vs diversity (higher is better)"]["data"]]
    assert "recall" in prdc and "real recall 0.93" in prdc  # the floor is at the run's n (500)
    kid = [t["name"] for t in charts_by_title["KID (lower is better)"]["data"]]
    assert kid == ["#%d · KID" % run_id, "real data · KID"]
    table = [d.value for d in at.dataframe if "digit" in d.value.columns][0]
    flagged = table[table["note"].str.startswith("low variety")]
    assert list(flagged["digit"]) == [5] and table["real recall"].iloc[0] == pytest.approx(0.92)
    assert any("Little variety in class 5" in c.value for c in at.caption)


def test_live_view_of_rows_without_kid_precision_or_health_has_no_new_charts(home, store, floor_500):
    run_id = store.submit(TrainConfig(epochs=3), name="old", owner="bob")
    store.claim("w1", cap=1)
    store.add_step_metrics(run_id, metric_rows(40))  # no gradient norms, no σ
    store.add_quality(run_id, 1, 20, quality_row([0.1] * 10))  # no KID, precision, per_class, best
    at = app("pages/runs.py", run_id=run_id)
    titles = set(_titles(at))
    assert titles == {"Losses", "Discriminator outputs", "Throughput", "FD (lower is better)", "IS (higher is better)"}
    assert not any("Best FD" in c.value for c in at.caption) and not any("digit" in d.value.columns
                                                                         for d in at.dataframe)


# --- progress, queue and what a run ended with ----------------------------------------------------------------------
def _progress_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def test_a_run_that_max_steps_ended_shows_its_real_budget_and_resumes_for_more_steps(home, store, monkeypatch):
    run_id = store.submit(TrainConfig(epochs=30, batch_size=100, max_steps=150), name="capped", owner="ada")
    store.claim("w1", cap=1)
    store.set_progress(run_id, epoch=0, step=150)
    store.finish(run_id, "done")
    at = app("pages/runs.py", run_id=run_id, user="ada")
    text = _progress_text(at)
    assert "0/30" not in text and "epochs 0.25/0.25 (max_steps 150) · step 150/150 · 100%" in text
    box = at.number_input(key=f"extra-steps-{run_id}")
    assert box.label == "More steps" and "max_steps (150)" in box.help  # labelled, and says what it raises
    box.set_value(100)
    at.button(key=f"resume-{run_id}").click().run()
    run = store.get(run_id)
    assert (run.status, run.config.max_steps, run.total_steps) == ("queued", 250, 250)  # never "done at once"
    # On the demo, a resume past its step cap says why it cannot (the page shows policy's message as an error)
    from gan_core.runs import policy
    store.claim("w1", cap=1)  # the resume queued it again: it trains before it can be done
    store.finish(run_id, "done")
    demo = dataclasses.replace(policy.Settings.from_env(), demo_mode=True, max_steps=300, max_epochs=50)
    with pytest.raises(policy.PolicyError, match="demo limit: 1,250 steps is more than the 300"):
        policy.resume(store, run_id, "ada", demo, extra_steps=1000)
    assert store.get(run_id).status == "done"


def test_an_epoch_bound_done_run_offers_more_epochs(home, store):
    run_id = store.submit(TrainConfig(epochs=2, batch_size=100), name="plain", owner="ada")
    store.claim("w1", cap=1)
    store.finish(run_id, "done")
    at = app("pages/runs.py", run_id=run_id, user="ada")
    assert at.number_input(key=f"extra-{run_id}").label == "More epochs"
    at.button(key=f"resume-{run_id}").click().run()
    assert store.get(run_id).config.epochs == 7


def test_queued_runs_show_their_place_in_the_queue(home, store):
    first, second = (store.submit(TrainConfig(epochs=2), name=n) for n in ("first", "second"))
    at = app("pages/runs.py", run_id=second)
    assert "2nd in queue" in _progress_text(at)
    assert list(at.dataframe[0].value["status"]) == ["queued (2nd)", "queued (1st)"]
    assert "next in queue" in _progress_text(app("pages/runs.py", run_id=first))


def test_queued_run_without_a_worker_says_how_to_start_one(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="waiting")
    at = app("pages/runs.py", run_id=run_id)
    assert any("No training worker is running" in w.value for w in at.warning)
    store.worker_beat("w1", 1, "host")
    at = app("pages/runs.py", run_id=run_id)
    assert not any("No training worker" in w.value for w in at.warning)


def test_an_early_stopped_run_is_done_with_its_reason_as_information(home, store):
    run_id = store.submit(TrainConfig(epochs=20, early_stop_patience=3), name="patient", owner="bob")
    store.claim("w1", cap=1)
    reason = ("stopped early: the Fréchet distance has not improved for 3 epochs (best 41.20 at epoch 4; "
              "best-generator.safetensors holds that generator)")
    store.finish(run_id, "done", reason)
    at = app("pages/runs.py", run_id=run_id)
    assert any("has not improved for 3 epochs" in i.value for i in at.info)
    assert not any("improved" in e.value for e in at.error)
    assert at.dataframe[0].value["status"].tolist() == ["done (stopped early)"]
    assert any("done (stopped early)" in c.value for c in at.caption)


def test_failed_run_shows_its_error(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="broken")
    store.claim("w1", cap=1)
    store.finish(run_id, "failed", "ValueError: the data folder is empty")
    at = app("pages/runs.py", run_id=run_id)
    assert any("data folder is empty" in t for t in texts(at, "error"))


def test_a_failed_run_says_why_in_words_and_promises_no_grid(home, store, monkeypatch, tmp_path, caplog):
    from gan_core.runs.worker import run_one
    no_data_here(monkeypatch, tmp_path)  # the data is nowhere: the worker's run fails
    run_id = store.submit(TrainConfig(epochs=2, device="cpu"), name="doomed", owner="ada")
    assert run_one(store, store.claim("w1", cap=1), "w1") == "failed"
    # Issue 27 §3: the stored reason, which any visitor may read, named the folders searched; the log has them.
    assert store.get(run_id).error == "could not load the training data: the mnist training images are not on this " \
                                      "server"
    assert str(tmp_path / "no-data" / "MNIST" / "raw") in caplog.text and f"run {run_id} failed" in caplog.text
    at = app("pages/runs.py", run_id=run_id)
    (error,) = texts(at, "error")
    assert error == text.plain(store.get(run_id).error) and "Error:" not in error
    assert str(tmp_path) not in page_text(at)
    captions = texts(at, "caption")
    assert not any("appears" in c for c in captions), captions  # no grid or score is coming
    assert "No sample grid: this run ended (failed) before it saved one." in captions
    at.switch_page("pages/samples.py").run()
    assert texts(at, "info") == [f"Run #{run_id} has no sample grids: it ended (failed) before it saved one."]


def test_a_stored_error_is_shown_as_text_without_server_paths(home, store):
    # A row written before reasons were kept free of paths (or by a worker of an older version), with markdown in it.
    run_id = store.submit(TrainConfig(epochs=2), name="old", owner="ada")
    store.claim("w1", cap=1)
    store.finish(run_id, "failed", "could not load the training data: mnist train data not found. Looked in:\n"
                                   "  /srv/gan/data/MNIST/raw\n  /home/op/.cache/gan_studio/MNIST/raw\n"
                                   "and **sqlite:////srv/gan/gan_studio.db** [see](http://evil.example/x)")
    at = app("pages/runs.py", run_id=run_id)
    (error,) = texts(at, "error")
    assert "/srv" not in error and "/home" not in error and ".cache" not in error and "evil" not in error, error
    assert " ".join(error.split()) == text.plain("could not load the training data: mnist train data not found. "
                                                 "Looked in: raw raw and **gan_studio.db** [see](x)")  # not markdown


# --- the owner's tools: stop, resume, edit, delete, clone -----------------------------------------------------------
def test_stop_and_resume_buttons_for_the_owner_only(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="stoppable", owner="ada")
    store.claim("w1", cap=1)
    at = app("pages/runs.py", run_id=run_id)  # this browser is "anonymous": it may watch, not stop
    assert at.button(key=f"stop-{run_id}").disabled and "Only ada or an admin" in at.button(key=f"stop-{run_id}").help
    assert not at.expander  # no edit/delete tools for someone else's run
    at = app("pages/runs.py", run_id=run_id, user="ada")
    assert not at.button(key=f"stop-{run_id}").disabled and at.button(key=f"resume-{run_id}").disabled
    at.button(key=f"stop-{run_id}").click().run()
    assert store.get(run_id).status == "stopping" and store.get(run_id).stop_requested
    store.finish(run_id, "stopped")
    at = app("pages/runs.py", run_id=run_id, user="ada")
    at.button(key=f"resume-{run_id}").click().run()
    run = store.get(run_id)
    assert run.status == "queued" and run.resume


def test_greyed_out_stop_and_resume_say_why_on_the_page(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="someone else's", owner="ada")
    store.claim("w1", cap=1)
    at = app("pages/runs.py", run_id=run_id, user="bob")
    assert at.button(key=f"stop-{run_id}").disabled
    assert any("Only ada or an admin can stop or resume it." in c.value for c in at.caption)
    at = app("pages/runs.py", run_id=run_id, user="ada")
    assert not any("can stop or resume it" in c.value for c in at.caption)


def test_owner_edits_tags_and_soft_deletes_then_restores(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="mine", owner="ada")
    store.request_stop(run_id)
    at = app("pages/runs.py", run_id=run_id, user="ada")
    form = [t for t in at.text_input if t.label == "Tags"][0]
    form.set_value("baseline, dcgan")
    [t for t in at.text_area if t.label == "Description"][0].set_value("first try")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    run = store.get(run_id)
    assert run.tags == ("baseline", "dcgan") and run.description == "first try"
    at.button(key=f"delete-{run_id}").click().run()
    assert store.get(run_id).deleted_at is not None and store.list_runs() == []
    at = app("pages/runs.py", user="ada")
    assert any("no runs" in t for t in texts(at, "info"))


def test_delete_forever_asks_first_and_is_not_the_highlighted_button(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="old", owner="ada")
    store.request_stop(run_id)
    store.soft_delete(run_id)
    keep = store.submit(TrainConfig(epochs=2), name="keep", owner="ada")
    at = app("pages/runs.py", run_id=keep, user="ada")
    purge = at.button(key=f"purge-{run_id}")
    assert purge.proto.type != "primary"
    purge.click().run()
    assert store.get(run_id) is not None  # one click removes nothing ...
    assert any("forever?" in w.value and "cannot be undone" in w.value for w in at.warning)
    at.button(key=f"purge-no-{run_id}").click().run()
    assert store.get(run_id) is not None and not [b for b in at.button if b.key == f"purge-yes-{run_id}"]
    at.button(key=f"purge-{run_id}").click().run()
    at.button(key=f"purge-yes-{run_id}").click().run()  # ... the second, confirming one does
    assert store.get(run_id) is None and store.get(keep) is not None


def test_clone_on_a_runs_live_view_fills_the_train_form_for_anyone(store, trained):
    at = app("pages/runs.py", run_id=trained, user="someone-else")  # not the owner: cloning changes no run
    clone = at.button(key=f"clone-{trained}")
    assert not clone.disabled
    clone.click().run()
    assert not at.exception
    assert forms.form_problems(at.session_state["train_form"]) == (store.get(trained).config, [])
    assert at.session_state["cloned_from"].startswith(f"run #{trained} ")


@pytest.mark.parametrize("hostile", ["<img src=x onerror=alert(1)>", "[click](javascript:alert(1))",
                                     ":red[**HUGE**] $\\frac{1}{0}$ ![p](http://evil.example/t.png)",
                                     "http&colon;//evil.example/e1 www&period;evil.example/e2 x&commat;evil.example"])
def test_hostile_run_names_render_as_plain_text(home, store, hostile):
    run_id = store.submit(TrainConfig(epochs=2), name=hostile, owner="ada", tags="x", description=hostile)
    at = app("pages/runs.py", run_id=run_id)
    sub = at.subheader[0].value
    assert sub == f"#{run_id} " + text.plain(hostile)  # every markdown character escaped
    assert not re.search(r"(?<!\\)[<>\[\]():$!*&]", sub.split(" ", 1)[1])  # no markup character left unescaped
    assert hostile in [t.value for t in at.text]  # the description is st.text: shown literally
    assert not at.exception


# --- the runs table: sweeps folded, filters, pages, polling ---------------------------------------------------------
def _team(store: Store) -> dict[str, int]:
    """A team's runs: ada's two (one stopped, tagged), bob's one, and ada's 3-point sweep."""
    ids = {"a1": store.submit(TrainConfig(epochs=2), name="a1", owner="ada", tags="baseline"),
           "a2": store.submit(TrainConfig(epochs=2), name="a2", owner="ada"),
           "b1": store.submit(TrainConfig(epochs=2), name="b1", owner="bob", tags="baseline, dcgan")}
    store.request_stop(ids["a2"])
    ids["sweep"] = lr_sweep(store, points=3)
    return ids


def test_runs_table_folds_each_sweep_and_filters_and_groups_from_the_url(home, store):
    ids = _team(store)
    sweep_runs = [r.id for r in store.sweep_runs(ids["sweep"])]
    at = app("pages/runs.py")
    # The default: runs outside sweeps in the table, the sweep's three runs folded under one line
    assert list(at.dataframe[0].value["id"]) == [ids["b1"], ids["a2"], ids["a1"]]
    (fold,) = at.expander
    assert fold.label == f"Sweep \\#{ids['sweep']} lr sweep · 3 runs" and not fold.proto.expanded
    assert sorted(at.dataframe[1].value["id"]) == sweep_runs
    assert not [k for k in at.query_params if k != "run"]  # the default view needs nothing in the URL
    # A link reproduces a view: bob's baseline runs, grouped by status
    at = app("pages/runs.py", query={"owner": "bob", "tag": "baseline", "group": "status"})
    assert [list(d.value["id"]) for d in at.dataframe] == [[ids["b1"]]]
    assert at.selectbox(key="runs_owner").value == "bob" and at.selectbox(key="runs_group").value == "status"
    assert any(c.startswith("1 of 6 runs match") for c in texts(at, "caption"))
    # Choosing a filter on the page puts it in the URL, and "every" takes it out again
    at = app("pages/runs.py")
    at.selectbox(key="runs_status").set_value("stopped").run()
    assert at.query_params.get("status") == "stopped"
    assert [list(d.value["id"]) for d in at.dataframe] == [[ids["a2"]]]
    at.selectbox(key="runs_status").set_value("").run()  # "every status"
    at.selectbox(key="runs_sweep").set_value(ids["sweep"]).run()
    assert "status" not in at.query_params and at.query_params.get("sweep") == str(ids["sweep"])
    assert at.expander[0].proto.expanded  # the view is that sweep: shown open
    at.selectbox(key="runs_group").set_value("owner").run()
    assert at.query_params.get("group") == "owner" and [m.value for m in at.markdown if m.value.startswith("**Owner")]
    assert not at.exception


def test_the_runs_filters_show_owners_and_tags_as_typed(home, store):
    # A selectbox's options are plain text, not markdown: escaping them showed the backslashes.
    store.submit(TrainConfig(epochs=2), name="a", owner="ada.l & co [x]", tags="v1.2")
    at = app("pages/runs.py")
    assert "ada.l & co [x]" in at.selectbox(key="runs_owner").options
    assert "v1.2" in at.selectbox(key="runs_tag").options


def test_runs_table_refuses_bad_link_values_in_words_and_shows_every_run(home, store):
    _team(store)
    at = app("pages/runs.py", query={"status": "finished", "sweep": "abc", "group": "colour", "owner": "nobody",
                                     "tag": "x" * 300})
    said = " ".join(w.value.replace("\\", "") for w in at.warning)
    assert "“finished” is not a run status (one of queued, running," in said
    assert "“abc” is not a sweep with runs here" in said and "grouped by “colour”" in said
    assert "no run has the owner “nobody”" in said and "no run has the tag “xxx" in said and "x" * 60 not in said
    assert len(at.dataframe) == 2 and len(at.dataframe[0].value) == 3 and not at.exception  # every run shown


def test_the_runs_page_reads_one_page_of_a_big_store_and_pages_to_its_last_run(home, store, monkeypatch):
    from conftest import many_runs

    from gan_core.runs import store as store_module
    from gan_core.web import run_list
    ids = many_runs(store, 260)
    parsed = []
    real_view = store_module._view
    monkeypatch.setattr(store_module, "_view", lambda r: parsed.append(r.id) or real_view(r))
    at = app("pages/runs.py")

    def shown() -> list[int]:
        return [int(i) for d in at.dataframe for i in d.value["id"]]
    # One page of rows (50) is read, parsed and sent, not the 260 (each full run read every row twice: 520 parsed)
    assert shown() == ids[::-1][:50]
    assert len(parsed) <= 3 * 50, len(parsed)
    assert "260 runs; showing 1–50." in texts(at, "caption") and run_list.PAGE_SIZE == 50
    assert len(at.selectbox(key="run_picker").options) == 50  # the picker offers this page's runs
    at.button(key="runs-page-last").click().run()
    assert at.query_params["page"] == "6" and shown() == ids[9::-1]  # the oldest run is reached
    assert "260 runs; showing 251–260." in texts(at, "caption")
    at.button(key="runs-page-newer").click().run()
    assert at.query_params["page"] == "5" and shown() == ids[59:9:-1]
    # A link with a filter and a page: the filter in SQL, the page within the matches
    at = app("pages/runs.py", query={"tag": "flood", "page": "2"})
    flood = [i for i in ids[::-1] if (i - ids[0] + 1) % 3 == 0]
    assert shown() == flood[50:] and "86 of 260 runs match; showing 51–86." in texts(at, "caption")
    at.selectbox(key="runs_owner").set_value("visitor3").run()  # another filter: from its first page
    assert "page" not in at.query_params and not at.exception
    # A name search, in SQL over the whole store: found however old the run, and kept in the URL
    at = app("pages/runs.py", query={"page": "3"})
    at.text_input(key="runs_q").input("FLOOD 2").run()
    assert at.query_params["q"] == "FLOOD 2" and "page" not in at.query_params
    assert shown() == [i for i in ids[::-1] if f"flood {i - ids[0] + 1}".startswith("flood 2")][:50]
    assert "72 of 260 runs match; showing 1–50." in texts(at, "caption")  # 2, 20-29, 200-260


def test_the_runs_table_polls_slowly_when_nothing_is_live_and_fast_when_a_run_is(home, store, monkeypatch):
    import ui
    done = store.submit(TrainConfig(epochs=2), name="done before", owner="ada")
    store.claim("w1", cap=1)
    store.finish(done, "done")
    periods = fragment_periods(monkeypatch)
    at = app("pages/runs.py", run_id=done)
    # Nothing live: only the change watcher looks, every IDLE_REFRESH_S, so a run queued from another tab shows up
    # (issue 26: it polled never, and the run appeared only on a reload); nothing is redrawn on a timer.
    assert ("check", ui.IDLE_REFRESH_S) in periods
    assert ("runs_table", None) in periods and ("live_view", None) in periods
    other = store.submit(TrainConfig(epochs=2), name="queued in another tab", owner="bob")
    periods.clear()
    at.run()
    assert [r["name"] for r in at.dataframe[0].value.to_dict("records")][0] == "queued in another tab"
    assert at.selectbox(key="run_picker").options[0].startswith(f"#{other} ")
    # Issue 27: a queued run that no worker can take is not redrawn every 2 s (it was: table and live view), only
    # looked at slowly; with a live worker it is watched closely (one small read), still not redrawn
    assert ("check", ui.IDLE_REFRESH_S) in periods and ("runs_table", None) in periods
    assert ("live_view", None) in periods
    store.worker_beat("w1", 1, "host")
    periods.clear()
    at.run()
    assert ("check", ui.LIVE_REFRESH_S) in periods and ("runs_table", None) in periods
    store.claim("w1", cap=1)  # the worker takes it: its progress is drawn every LIVE_REFRESH_S
    periods.clear()
    at.run()
    assert ("runs_table", ui.LIVE_REFRESH_S) in periods
