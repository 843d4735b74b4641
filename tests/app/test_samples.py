"""Samples: a run's grids by epoch, played as a GIF, and grids that cannot be read."""
from __future__ import annotations

import pytest

from gan_core.config import TrainConfig

from .pages import app, fast, fragment_periods, grid_file, image_bytes, texts, trained_run


def test_samples_page_has_an_epoch_slider_play_and_gif(store, trained):
    at = app("pages/samples.py", run_id=trained)
    slider = at.select_slider(key=f"sample_epoch-{trained}")
    assert list(slider.options) == ["1", "2", "3"] and slider.value == 3
    first = at.image[0].value[0]
    slider.set_value(1).run()
    assert at.image[0].value[0] != first
    assert any(b.label.endswith("Play") for b in at.button)
    assert at.get("download_button")


@pytest.mark.slow
def test_samples_play_shows_the_epochs_as_a_gif_that_keeps_time(store, trained, media):
    import io
    import time as _time

    from PIL import Image
    at = app("pages/samples.py", run_id=trained)
    at.button(key="play").click().run()
    assert any("Playing epochs 1–3" in c.value for c in at.caption)
    gif = image_bytes(at, media)
    with Image.open(io.BytesIO(gif)) as im:
        assert im.format == "GIF" and im.n_frames == 3 and im.info["duration"] == 500
        assert "loop" not in im.info  # plays once and stops on the last epoch
    _time.sleep(1.7)
    at.button(key="pause").click().run()
    assert not at.exception
    slider = at.select_slider(key=f"sample_epoch-{trained}")
    assert slider.value == 3  # the animation had reached the last epoch


def test_a_single_grid_run_offers_no_gif(store, tiny_cfg, mnist_slice, train_cache):
    one = trained_run(store, fast(tiny_cfg, epochs=1), mnist_slice, train_cache, name="one")
    at = app("pages/samples.py", run_id=one)
    assert not at.get("download_button") and not at.exception
    assert any("second epoch" in c.value for c in at.caption)
    assert not any("(1 epochs)" in c.value for c in at.caption)


def test_samples_follows_a_live_runs_new_epochs(home, store, monkeypatch):
    import ui
    run_id = store.submit(TrainConfig(epochs=5), name="live", owner="ada")
    run = store.claim("w1", cap=1)
    for epoch in (1, 2):
        grid_file(store, run, epoch)
    periods = fragment_periods(monkeypatch)
    at = app("pages/samples.py", run_id=run_id)
    assert at.select_slider(key=f"sample_epoch-{run_id}").value == 2
    assert ("check", ui.LIVE_REFRESH_S) in periods  # the page re-reads the run's grids while it trains
    grid_file(store, run, 3)  # the worker saves epoch 3
    at.run()
    assert at.select_slider(key=f"sample_epoch-{run_id}").value == 3  # on the newest, it follows the newest
    assert "epoch 3 · step 24" in at.image[0].captions[0]
    at.select_slider(key=f"sample_epoch-{run_id}").set_value(1).run()
    grid_file(store, run, 4)
    at.run()
    assert at.select_slider(key=f"sample_epoch-{run_id}").value == 1  # an earlier epoch chosen stays chosen
    assert at.select_slider(key=f"sample_epoch-{run_id}").options[-1] == "4"
    store.finish(run_id, "done")
    periods.clear()
    at.run()
    assert ("check", ui.IDLE_REFRESH_S) in periods  # ended: only a slow look (it may be resumed elsewhere)


@pytest.mark.slow
@pytest.mark.parametrize("garbage", ["random bytes", "empty", "a directory"])
def test_unreadable_sample_images_show_a_note_not_a_traceback(store, trained, garbage):
    import os
    bad = store.samples(trained)[-1]["path"]  # the newest grid: the one both pages open first
    bad.unlink()
    if garbage == "a directory":
        bad.mkdir()
    else:
        bad.write_bytes(os.urandom(2048) if garbage == "random bytes" else b"")
    runs = app("pages/runs.py", run_id=trained)  # app() asserts no exception
    assert any("unreadable" in w for w in texts(runs, "warning"))
    at = app("pages/samples.py", run_id=trained)
    assert any("unreadable" in w for w in texts(at, "warning")) and not at.image
    assert at.get("download_button")  # the GIF of the readable grids
    assert any("1 unreadable sample image(s) left out" in c for c in texts(at, "caption"))
    at.select_slider(key=f"sample_epoch-{trained}").set_value(1).run()
    assert len(at.image) == 1 and not at.warning
    at.button(key="play").click().run()  # the readable epochs as a GIF, 0.5 s each, played by the browser
    assert not at.exception and len(at.image) == 1
    import time as _time
    _time.sleep(3 * 0.5 + 0.2)
    at.run()  # the end: back on the slider, at the damaged last epoch
    assert not at.exception
    assert at.select_slider(key=f"sample_epoch-{trained}").value == 3
    assert any("unreadable" in w for w in texts(at, "warning"))
