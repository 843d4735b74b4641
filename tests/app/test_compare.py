"""Compare: runs side by side, their curves, quality summary and grids."""
from __future__ import annotations

import json

from conftest import sqlite_only

from gan_core.config import TrainConfig
from gan_core.web import real_floor

from .pages import ROOT, app, fast, fragment_periods, grid_file, plotly_charts, quality_row, rich_quality, trained_run

pytestmark = sqlite_only  # the pages are the subject, not the database


def test_compare_two_runs(store, tiny_cfg, mnist_slice, train_cache):
    a = trained_run(store, fast(tiny_cfg), mnist_slice, train_cache, name="a")
    b = trained_run(store, fast(tiny_cfg, lr_g=1e-3, seed=4), mnist_slice, train_cache, name="b")
    at = app("pages/compare.py")
    assert sorted(at.multiselect(key="compare_runs").value) == [a, b]
    assert len(plotly_charts(at)) == 1
    diff = at.dataframe[0].value
    assert sorted(diff["field"]) == ["lr_g", "seed"]
    assert len(at.image) == 2


def test_compare_plots_quality_with_the_real_floor(home, store):
    ids = [store.submit(TrainConfig(epochs=2), name=n) for n in ("a", "b")]
    for i, run_id in enumerate(ids):
        store.add_quality(run_id, 1, 10, quality_row([0.1] * 10, fd=50.0 - i))
    # Compare never waits for the floor (measured in the background): measure it first, at the rows' n
    real_floor.quality_floor("mnist", quality_row([])["n"])
    at = app("pages/compare.py")
    quality = [c for c in plotly_charts(at) if "Quality" in c.proto.spec]
    names = [t["name"] for t in json.loads(quality[0].proto.spec)["data"]] if len(quality) == 1 else []
    assert "real data · FD" in names and "real data · IS" in names  # the floor lines of real MNIST test data
    fashion = store.submit(TrainConfig(epochs=2, dataset="fashion_mnist"), name="c")
    store.add_quality(fashion, 1, 10, quality_row([0.1] * 10))
    at = app("pages/compare.py")
    at.multiselect(key="compare_runs").set_value([ids[0], fashion]).run()
    quality = [c for c in plotly_charts(at) if "Quality" in c.proto.spec]
    assert not any(t["name"].startswith("real data") for t in json.loads(quality[0].proto.spec)["data"])
    assert any("different datasets" in c.value for c in at.caption)  # one floor would be wrong for one of them


def test_compare_never_waits_for_the_real_data_floor(home, store, monkeypatch):
    """Measuring the floor (2000 real images through the classifier) was 21.7 s of Compare's first load on a busy
    machine: Compare draws at once without it and adds it when the background measurement is done."""
    calls = []
    monkeypatch.setattr(real_floor, "quality_floor_nowait", lambda d, n: calls.append((d, n)) or (None, True))
    ids = [store.submit(TrainConfig(epochs=2), name=n) for n in ("a", "b")]
    for i, run_id in enumerate(ids):
        store.add_quality(run_id, 1, 10, quality_row([0.1] * 10, fd=50.0 - i))
    at = app("pages/compare.py")
    assert calls and calls[0][0] == "mnist"
    assert any("Measuring the real-data floor" in c.value for c in at.caption)
    specs = [json.loads(c.proto.spec) for c in plotly_charts(at) if "Quality" in c.proto.spec]
    assert specs and not any(t.get("name", "").startswith("real data") for s in specs for t in s["data"])


def test_compare_summarises_precision_recall_kid_and_never_mixes_sample_counts(home, store, floor_500):
    ids = [store.submit(TrainConfig(epochs=2), name=n) for n in ("a", "b", "big")]
    store.add_quality(ids[0], 1, 10, rich_quality(1))
    store.add_quality(ids[1], 1, 10, quality_row([0.1] * 10))  # stored before issue 18
    store.add_quality(ids[2], 1, 10, dict(rich_quality(1), n=2000))
    at = app("pages/compare.py")
    at.multiselect(key="compare_runs").set_value(ids).run()
    assert not at.exception
    summary = [d.value for d in at.dataframe if "KID" in d.value.columns][0]
    assert {"n", "precision", "recall", "coverage", "KID"} <= set(summary.columns)
    assert sorted(summary["n"]) == [500, 500, 2000]
    specs = [json.loads(c.proto.spec) for c in plotly_charts(at)]
    quality = [s for s in specs if s["layout"]["title"]["text"] == "Quality"]
    scatter = [s for s in specs if s["layout"]["title"]["text"].startswith("Precision vs recall")]
    assert len(quality) == 2 and len(scatter) == 2  # one per sample count: 500 (a, b) and 2000 (big)
    names = [[t["name"] for t in s["data"]] for s in scatter]
    assert names == [["#%d a" % ids[0], "real data"], ["#%d big" % ids[2]]]  # no floor measured at 2000
    assert any("Runs scored with 2,000 samples" in m.value for m in at.markdown)
    assert any("scored before precision and recall" in c.value and "#%d b" % ids[1] in c.value for c in at.caption)


def test_compare_shows_grids_two_a_row(store, tiny_cfg, mnist_slice, train_cache, media):
    trained_run(store, fast(tiny_cfg), mnist_slice, train_cache, name="a")
    trained_run(store, fast(tiny_cfg, lr_g=1e-3, seed=4), mnist_slice, train_cache, name="b")
    at = app("pages/compare.py")
    assert len(at.image) == 2
    src = ROOT / "ui.py"  # compare's grids are ui.epoch_grids, two a row
    assert "per_row: int = 2" in src.read_text() and "ui.epoch_grids(" in (ROOT / "pages" / "compare.py").read_text()


def test_compare_epoch_slider_moves_every_grid_together(store, tiny_cfg, mnist_slice, train_cache):
    trained_run(store, fast(tiny_cfg, epochs=3), mnist_slice, train_cache, name="a")
    trained_run(store, fast(tiny_cfg, epochs=3, lr_g=1e-3), mnist_slice, train_cache, name="b")
    at = app("pages/compare.py")
    assert [c.value for c in at.caption if "Every grid is drawn from the same noise" in c.value]
    slider = at.select_slider(key="compare_epoch")
    assert slider.value == 3 and len(at.image) == 2
    slider.set_value(1).run()
    assert sorted(i.captions[0].split(" · ")[-1] for i in at.image) == ["epoch 1", "epoch 1"]


def test_compare_follows_the_newest_epoch_of_a_live_run(home, store, monkeypatch):
    import ui
    a = store.submit(TrainConfig(epochs=5), name="a", owner="ada")
    run_a = store.claim("w1", cap=1)
    b = store.submit(TrainConfig(epochs=5), name="b", owner="ada")
    run_b = store.claim("w1", cap=2)
    for epoch in (1, 2):
        grid_file(store, run_a, epoch)
        grid_file(store, run_b, epoch)
    periods = fragment_periods(monkeypatch)
    at = app("pages/compare.py")
    assert at.select_slider(key="compare_epoch").value == 2 and ("check", ui.LIVE_REFRESH_S) in periods
    grid_file(store, run_a, 3)
    at.run()
    assert at.select_slider(key="compare_epoch").value == 3
    assert sorted(i.captions[0].split(" · ")[-1] for i in at.image) == ["epoch 2 (its newest by 3)", "epoch 3"]
    assert {a, b} == set(at.multiselect(key="compare_runs").value)
