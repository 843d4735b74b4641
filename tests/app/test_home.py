"""Home, the default page: a live grid from a pretrained generator and two ways in."""
from __future__ import annotations

from conftest import sqlite_only

from .pages import app, image_bytes, png_size

pytestmark = sqlite_only  # the pages are the subject, not the database


def test_home_is_the_default_page_with_a_live_grid_and_two_ways_in(home, store, media):
    at = app()
    assert at.title[0].value == "GAN Studio"
    assert "generative adversarial networks" in at.markdown[0].value
    assert len(at.image) == 1 and "pretrained" in at.image[0].captions[0]
    assert png_size(image_bytes(at, media)) == (640, 640)
    seed = at.session_state["home_seed"]
    at.button(key="home_new").click().run()
    assert at.session_state["home_seed"] != seed and not at.exception
    at.button(key="home_generate").click().run()
    assert at.header[0].value == "Generate" and at.radio(key="gen_source").value == "a pretrained generator"
    assert len(at.image) == 2 and not at.error


def test_home_says_what_the_copy_test_found_on_the_grid_it_shows(home, store, monkeypatch, tmp_path):
    # Issue 26: "None of these digits exists in the training data" was never measured. Home now runs the product's
    # copy test on the very grid it shows and says what it found, or that it is still indexing the training set.
    import time

    import numpy as np

    from gan_core import neighbours as nb
    from gan_core.checkpoint import load_generator, shipped_generators
    from gan_core.sampling import generate
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))  # nothing indexed yet
    monkeypatch.setenv("GAN_NEIGHBOURS_LIMIT", "1500")
    at = app()
    captions = " ".join(c.value for c in at.caption)
    assert "None of these digits exists" not in captions + at.image[0].captions[0]
    if "Comparing these digits with the training set" in captions:  # indexing in the background: wait for it
        nb._builds[("mnist", 1500)].join(timeout=120)
        time.sleep(0.1)
        at.run()
    [found] = [c.value for c in at.caption if c.value.startswith("Copy test")]
    assert "over 1,500 training digits (the first 1,500: GAN_NEIGHBOURS_LIMIT)" in found
    # The same test by hand on the seed's 64 digits: the caption reports its count, not a promise.
    g, cfg, _ = load_generator(shipped_generators()["dense-mnist"])
    shown = generate(g, cfg, 64, at.session_state["home_seed"])
    flags, dist = nb.authenticity(nb.image_features(shown.astype(np.float32) / 127.5 - 1, "mnist"),
                                  nb.train_features("mnist", 1500))
    if flags.sum():
        assert f"{int(flags.sum())} of these 64 lie closer to a training digit" in found
    else:
        assert "it flags none of these 64 as a copy" in found and f"{dist.min():.2f}" in found
    nb._builds.clear()


def test_train_your_first_gan_opens_train_on_the_fast_preset(home, store):
    at = app()
    at.button(key="home_train").click().run()
    assert at.header[0].value == "Train a GAN" and not at.exception
    assert at.selectbox(key="preset").value == "quick-start"
    form = at.session_state["train_form"]
    assert (form["arch"], form["conditional"], form["epochs"], form["max_steps"]) == ("dense", True, 2, 1500)
