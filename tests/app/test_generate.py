"""Generate: grids from a run's, a pretrained or an uploaded generator; rejection, neighbours."""
from __future__ import annotations

import re
from pathlib import Path

import conftest
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import TrainConfig
from gan_core.web import images

from .pages import app, fast, image_bytes, no_data_here, page_text, png_size, texts, trained_run

pytestmark = conftest.sqlite_only  # the pages are the subject, not the database


# --- drawing from a run ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_generate_is_deterministic_for_a_seed(store, trained, media):
    at = app("pages/generate.py", run_id=trained)
    assert not at.error and not at.info
    at.number_input(key="gen_seed").set_value(5).run()
    a = image_bytes(at, media)
    at2 = app("pages/generate.py", run_id=trained)
    at2.number_input(key="gen_seed").set_value(5).run()
    assert image_bytes(at2, media) == a and a[:8] == b"\x89PNG\r\n\x1a\n"
    from gan_core.checkpoint import load_generator
    from gan_core.sampling import generate, grid, png_at_width
    g, cfg, _ = load_generator(store.artifacts_dir(store.get(trained)) / "generator.safetensors")
    assert a == png_at_width(grid(generate(g, cfg, 64, 5), ncol=8), 768)  # exactly what gan_core draws
    at2.number_input(key="gen_seed").set_value(6).run()
    assert image_bytes(at2, media) != a
    at2.button(key="gen_random").click().run()
    assert not at2.exception
    drawn = at2.number_input(key="gen_seed").value
    assert drawn != 6  # a new seed (random: 1 in 2**31 to draw 6 again)
    assert image_bytes(at2, media) == png_at_width(grid(generate(g, cfg, 64, drawn), ncol=8), 768)
    assert len(at2.image) == 2  # the grid and the slerp strip
    assert len(at2.get("download_button")) == 2


def test_generate_grid_size(store, trained):
    at = app("pages/generate.py", run_id=trained)
    at.slider(key="gen_side").set_value(3).run()
    assert "3×3" in at.image[0].captions[0]


@pytest.mark.slow
def test_generate_a_bigger_grid_is_never_drawn_smaller(store, trained, media):
    at = app("pages/generate.py", run_id=trained)
    widths = {}
    for side in (1, 4, 8, 9, 12, 16):
        at.slider(key="gen_side").set_value(side).run()
        widths[side] = png_size(image_bytes(at, media))[0]
    assert widths[16] > widths[8] and list(widths.values()) == sorted(widths.values()), widths
    assert widths[8] == 768 and widths[16] == 1024


def test_generate_downloads_are_scaled(store, trained, media):
    at = app("pages/generate.py", run_id=trained)
    at.slider(key="gen_steps").set_value(24).run()
    downloads = at.get("download_button")
    assert at.selectbox(key="gen_dl_scale").value == 4
    strip = media[downloads[1].proto.url.rsplit("/", 1)[-1].split(".")[0]]
    assert png_size(strip) == (722 * 4, 32 * 4)
    at.selectbox(key="gen_dl_scale").set_value(8).run()
    grid_png = media[at.get("download_button")[0].proto.url.rsplit("/", 1)[-1].split(".")[0]]
    assert png_size(grid_png) == (242 * 8, 242 * 8)


def test_generate_to_seed_follows_the_seed_until_set(store, trained):
    at = app("pages/generate.py", run_id=trained)
    assert at.number_input(key="gen_seed_b").value == 1
    at.button(key="gen_random").click().run()
    seed = at.number_input(key="gen_seed").value
    assert seed != 0 and at.number_input(key="gen_seed_b").value == seed + 1
    at.number_input(key="gen_seed").set_value(41).run()
    assert at.number_input(key="gen_seed_b").value == 42
    at.number_input(key="gen_seed_b").set_value(7).run()
    at.button(key="gen_random").click().run()
    assert at.number_input(key="gen_seed_b").value == 7  # the user's own choice stays
    assert "to seed 7" in at.image[1].captions[0]


def test_demo_mode_caps_the_generate_grid(store, trained, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_MODE", "1")
    monkeypatch.setenv("GAN_DEMO_MAX_GRID", "4")
    at = app("pages/generate.py", run_id=trained)
    assert at.slider(key="gen_side").max == 4 and "4×4" in at.image[0].captions[0]


def test_generate_offers_a_runs_best_generator_beside_the_newest(store, tiny_cfg, mnist_slice, train_cache, media,
                                                                 monkeypatch):
    from conftest import scripted_fd

    from gan_core.checkpoint import load_generator
    from gan_core.sampling import generate, grid, png_at_width
    with monkeypatch.context() as m:  # (not monkeypatch.undo(): that would also undo the home fixture's GAN_HOME)
        scripted_fd(m, [40.0, 30.0, 35.0])  # epoch 2 the best: older than the newest
        run_id = trained_run(store, tiny_cfg.replace(epochs=3, eval_samples=100, seed=7), mnist_slice, train_cache,
                             name="scored")
    folder = store.artifacts_dir(store.get(run_id))
    best = [q for q in store.quality(run_id) if q.get("best")][-1]
    assert (best["epoch"], best["fd"]) == (2, 30.0)
    at = app("pages/generate.py", run_id=run_id)
    which = at.radio(key="gen_which")
    assert which.value == "best" and f"best: epoch {best['epoch']}, FD {best['fd']:.2f}" in which.options[0]
    assert "best-generator.safetensors" in at.caption[0].value and not at.exception

    def drawn_by(name: str) -> bytes:
        g, cfg, _ = load_generator(folder / name)
        return png_at_width(grid(generate(g, cfg, 64, 0), ncol=8), 768)
    assert image_bytes(at, media) == drawn_by("best-generator.safetensors")
    which.set_value("newest").run()
    assert "`generator.safetensors`" in at.caption[0].value
    assert image_bytes(at, media) == drawn_by("generator.safetensors") != drawn_by("best-generator.safetensors")


def test_generate_names_the_newest_generators_epoch_as_its_samples_do(store, tiny_cfg, mnist_slice, train_cache):
    """Issue 26: a run that ended mid-epoch 3 (max_steps) offered "newest: epoch 2", the store's count of completed
    epochs, beside samples and scores that say epoch 3 for the same generator."""
    run_id = trained_run(store, tiny_cfg.replace(epochs=4, max_steps=19, eval_samples=100, seed=3), mnist_slice,
                         train_cache, name="mid-epoch")  # 8 steps an epoch: step 19 is in epoch 3
    assert store.get(run_id).epoch == 2 and store.latest_sample(run_id)["epoch"] == 3
    at = app("pages/generate.py", run_id=run_id)
    assert at.radio(key="gen_which").options[1] == "newest: epoch 3" and not at.exception


def test_generate_has_no_best_choice_for_a_run_scored_before_it_existed(store, trained):
    at = app("pages/generate.py", run_id=trained)  # eval_samples 0: no best generator
    assert not at.get("radio") or all(r.key != "gen_which" for r in at.radio)


# --- conditional and InfoGAN generators, the pretrained ones --------------------------------------------------------
def test_generate_class_picker_and_one_row_per_class(store, tiny_cfg, mnist_slice, mnist_labels, train_cache,
                                                     media):
    cfg = fast(tiny_cfg, conditional=True, epochs=1)
    run_id = trained_run(store, cfg, mnist_slice, train_cache, name="cond", labels=mnist_labels)
    at = app("pages/generate.py", run_id=run_id)
    picker = at.selectbox(key="gen_label")
    assert list(picker.options) == [str(i) for i in range(10)]
    picker.set_value(7).run()
    at.slider(key="gen_side").set_value(3).run()
    assert "class 7" in at.image[0].captions[0]
    from gan_core.checkpoint import load_generator
    from gan_core.sampling import class_rows, generate, grid, png_at_width
    g, gcfg, _ = load_generator(store.artifacts_dir(store.get(run_id)) / "generator.safetensors")
    seed = at.number_input(key="gen_seed").value
    assert image_bytes(at, media) == png_at_width(grid(generate(g, gcfg, 9, seed, label=7), ncol=3), 768)
    at.toggle(key="gen_rows").set_value(True).run()
    assert "one row per class" in at.image[0].captions[0]
    assert image_bytes(at, media) == png_at_width(grid(class_rows(g, gcfg, seed, 3), ncol=3), 768)
    assert "class 7 (the Class picker above)" in at.image[1].captions[0]  # the picker still drives the strip


def test_generate_rows_per_code_for_an_infogan_generator(store, tiny_cfg, mnist_slice, train_cache, media):
    cfg = fast(tiny_cfg, info_code=True, epochs=1)
    run_id = trained_run(store, cfg, mnist_slice, train_cache, name="info")
    at = app("pages/generate.py", run_id=run_id)
    assert "InfoGAN dense generator" in at.caption[0].value
    assert not [s for s in at.selectbox if s.key == "gen_label"]  # no classes to pick: it learned its own modes
    at.slider(key="gen_side").set_value(3).run()
    at.toggle(key="gen_rows").set_value(True).run()
    assert "one row per code" in at.image[0].captions[0]
    from gan_core.checkpoint import load_generator
    from gan_core.sampling import class_rows, grid, png_at_width
    g, gcfg, _ = load_generator(store.artifacts_dir(store.get(run_id)) / "generator.safetensors")
    seed = at.number_input(key="gen_seed").value
    assert image_bytes(at, media) == png_at_width(grid(class_rows(g, gcfg, seed, 3), ncol=3), 768)
    assert not at.exception


def test_unconditional_generator_has_no_class_picker(store, trained):
    at = app("pages/generate.py", run_id=trained)
    assert not [s for s in at.selectbox if s.key == "gen_label"]


def test_a_fresh_install_opens_generate_on_the_pretrained_generators(home, store):
    from gan_core.checkpoint import shipped_generators
    shipped = shipped_generators()
    assert "dcgan-conditional-mnist" in shipped  # shipped in the package, trained by scripts/pretrain.sh
    at = app("pages/generate.py")
    assert at.radio(key="gen_source").value == "a pretrained generator" and not at.error
    assert sorted(at.selectbox(key="gen_shipped").options) == sorted(shipped)
    at.selectbox(key="gen_shipped").set_value("dcgan-conditional-mnist").run()
    assert at.selectbox(key="gen_label") is not None and "conditional dcgan" in at.caption[0].value
    assert len(at.image) == 2 and not at.exception


def test_generate_falls_back_to_a_pretrained_generator_for_a_run_without_a_checkpoint(store):
    run_id = store.submit(TrainConfig(epochs=2), name="fresh")
    at = app("pages/generate.py", run_id=run_id)
    assert at.radio(key="gen_source").value == "a pretrained generator"
    assert any("no checkpoint yet" in t and "pretrained" in t for t in texts(at, "info"))
    assert len(at.image) == 2 and not at.error
    at.radio(key="gen_source").set_value("a run").run()  # chosen on purpose: explained, with a way out
    assert any("no checkpoint yet" in t for t in texts(at, "info"))
    at.button(key="gen_use_shipped").click().run()
    assert at.radio(key="gen_source").value == "a pretrained generator" and len(at.image) == 2


# --- rejection sampling and nearest training digits -----------------------------------------------------------------
@pytest.mark.slow
def test_generate_rejection_slider_draws_what_gan_core_rejection_keeps(store, trained, media):
    at = app("pages/generate.py", run_id=trained)
    slider = at.select_slider(key="gen_reject")
    assert slider.value == 0.0 and not slider.disabled  # runs' exports carry D; raw by default
    at.slider(key="gen_side").set_value(3).run()
    raw = image_bytes(at, media)
    at.select_slider(key="gen_reject").set_value(1.0).run()
    assert not at.exception and "rejection 1: kept 9 of 36" in at.image[0].captions[0]
    from gan_core import rejection
    from gan_core.checkpoint import load_discriminator, load_generator
    from gan_core.sampling import grid, png_at_width, to_uint8
    path = store.artifacts_dir(store.get(trained)) / "generator.safetensors"
    g, cfg, _ = load_generator(path)
    d = load_discriminator(path)
    # The calibration the page made, kept on disk: one computed again here can differ in the 8th digit (threaded
    # float sums), enough to swap a borderline sample.
    cal = rejection.cached_calibration(path, g, d, cfg, rejection.calibrations_dir(store.home))
    assert len(list(rejection.calibrations_dir(store.home).iterdir())) == 1  # read back, not made again
    kept = rejection.sample(g, d, cfg, 9, 0, 1.0, rejection.DEFAULT_METHOD, cal)
    shown = image_bytes(at, media)
    assert shown != raw and shown == png_at_width(grid(to_uint8(kept.images), ncol=3), images.grid_display_px(3))
    # The pretrained generators now carry the D fitted against them (scripts/fit_discriminator.py): the slider is on.
    at.radio(key="gen_source").set_value("a pretrained generator").run()
    assert not at.select_slider(key="gen_reject").disabled and not at.exception
    # A file without D (an export from before rejection) leaves the slider off and says why.
    from gan_core.checkpoint import save_generator
    save_generator(path, cfg, g, 2, 16)  # the run's export, rewritten without D
    at.radio(key="gen_source").set_value(at.radio(key="gen_source").options[0]).run()
    off = at.select_slider(key="gen_reject")
    assert off.disabled and "carries no discriminator" in off.help and "rejection" not in at.image[0].captions[0]
    # A file stored before uploads were checked tensor by tensor, whose D is broken: the slider is off, no crash.
    import time

    import torch

    from gan_core.models import build_discriminator
    bad = build_discriminator(cfg)
    with torch.no_grad():
        next(bad.parameters()).fill_(float("nan"))
    time.sleep(0.01)  # a new mtime: the page's rejector cache is keyed on it
    save_generator(path, cfg, g, 2, 16, d=bad)
    at.run()
    off = at.select_slider(key="gen_reject")
    assert not at.exception and off.disabled and "discriminator cannot be used" in off.help


def test_generate_shows_a_samples_nearest_training_digits_with_distances(home, store, monkeypatch):
    monkeypatch.setenv("GAN_NEIGHBOURS_LIMIT", "500")  # the first 500 training digits: an index built in a second
    at = app("pages/generate.py")  # a fresh install: the pretrained dense-mnist generator
    assert "Nearest training digits" in [s.value for s in at.subheader]
    assert len(at.image) == 2 and at.toggle(key="gen_nn_on").value is False  # nothing searched until asked
    at.toggle(key="gen_nn_on").set_value(True).run()
    assert not at.exception and not at.error

    def shown() -> tuple[list[str], list[tuple[int, float]]]:
        captions = [c for im in at.image for c in im.captions]
        near = [re.fullmatch(r"train #([\d,]+) · distance (\d+\.\d\d)", c) for c in captions]
        return captions, [(int(m[1].replace(",", "")), float(m[2])) for m in near if m]
    captions, near = shown()
    assert "sample #1" in captions and len(near) == 5
    assert all(0 <= i < 500 for i, _ in near) and len({i for i, _ in near}) == 5
    dists = [d for _, d in near]
    assert dists == sorted(dists) and dists[0] > 0  # a generator's sample is no training digit
    note = [c.value for c in at.caption if "Real test digits lie a median" in c.value][0]
    typical = float(re.search(r"a median (\d+\.\d\d) from", note)[1])
    assert typical > 0 and f"lies {dists[0]:.2f} from train #{near[0][0]}," in note and "500 training" in note
    at.number_input(key="gen_nn_pick").set_value(7).run()
    captions, near7 = shown()
    assert "sample #7" in captions and len(near7) == 5 and near7 != near
    assert at.number_input(key="gen_nn_pick").max == 64  # the 8×8 grid above


# --- errors in words, never a server path ---------------------------------------------------------------------------
def rendered(at: AppTest) -> str:
    """Every element the script sent, as protobuf text: bodies, labels, help, captions (what a browser receives)."""
    out: list[str] = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            out.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)
    walk(at._tree)
    return "\n".join(out)


def assert_no_server_path(at: AppTest, *paths: Path) -> None:
    text = rendered(at)
    for p in paths:
        assert str(p) not in text and str(p.resolve()) not in text


def test_generate_explains_a_run_without_a_checkpoint(store):
    run_id = store.submit(TrainConfig(epochs=2), name="fresh")
    at = app("pages/generate.py", run_id=run_id)
    assert any("no checkpoint yet" in t for t in texts(at, "info"))
    assert not at.error


def test_generate_reports_a_broken_checkpoint_without_a_traceback(store, trained):
    path = store.artifacts_dir(store.get(trained)) / "generator.safetensors"
    path.write_bytes(b"not a checkpoint")
    at = app("pages/generate.py", run_id=trained)
    assert any("Cannot load this generator" in t for t in texts(at, "error"))


def test_generate_errors_are_in_plain_words_with_the_reason_in_an_expander(store, trained):
    path = store.artifacts_dir(store.get(trained)) / "generator.safetensors"
    path.write_bytes(b"\xff" * 64)  # safetensors reads a header length of ~1.8e19: "HeaderTooLarge"
    at = app("pages/generate.py", run_id=trained)
    error = texts(at, "error")[0]
    assert "Cannot load this generator" in error and "not a complete .safetensors file" in error
    assert "too large" not in error and "header" not in error.lower()
    assert at.expander[0].label == "Technical details" and "header too large" in at.code[0].value


def test_generate_errors_name_no_server_path(home, store, trained, tmp_path):
    path = store.artifacts_dir(store.get(trained)) / "generator.safetensors"
    path.write_bytes(b"not a checkpoint")
    at = app("pages/generate.py", run_id=trained)
    assert any("Cannot load this generator" in t for t in texts(at, "error"))
    assert_no_server_path(at, home, tmp_path)


@pytest.mark.slow
def test_generate_without_training_data_names_no_server_path(home, store, monkeypatch, tmp_path):
    """Issue 27 §3: with no MNIST on the web host, the rejection tooltip and the nearest-images error listed the
    folders searched."""
    import streamlit as st
    no_data_here(monkeypatch, tmp_path)
    monkeypatch.setenv("GAN_NEIGHBOURS_LIMIT", "323")  # a limit no other test indexes: nothing cached in-process
    st.cache_resource.clear()  # the rejector calibrated by other tests, with data, is cached per file
    try:
        at = app("pages/generate.py")  # a fresh install: a pretrained generator, which carries its D
        off = at.select_slider(key="gen_reject")
        assert off.disabled and "the mnist training images are not on this server" in off.help, off.help
        at.toggle(key="gen_nn_on").set_value(True).run()
        (error,) = texts(at, "error")
        assert error.startswith("Nearest training images need mnist's training and test images: the mnist "), error
        shown = page_text(at)
        for path in (tmp_path, conftest.ROOT, Path.home()):
            assert str(path) not in shown, path
    finally:
        from gan_core import neighbours
        st.cache_resource.clear()  # this test's "no data" calibration must not outlive it
        neighbours._build_errors.pop(("mnist", 323), None)  # nor its failed background build


# --- uploads --------------------------------------------------------------------------------------------------------
def tiny_generator(folder: Path, seed: int) -> bytes:
    """A real GAN Studio generator export (~100 KB); another seed, other bytes of the same size."""
    import torch

    from gan_core.checkpoint import save_generator
    from gan_core.models import build_generator
    cfg = TrainConfig(g_widths=(32,), d_widths=(32,), latent_dim=8)
    torch.manual_seed(seed)
    path = folder / f"g{seed}.safetensors"
    save_generator(path, cfg, build_generator(cfg), 1, 10)
    return path.read_bytes()


def upload_page(**who) -> AppTest:
    at = app("pages/generate.py", **who)
    at.radio(key="gen_source").set_value("an uploaded file").run()
    return at


def stored_uploads(home: Path) -> list[Path]:
    root = home / "uploads"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in (".lock", ".ledger.json")) \
        if root.exists() else []


def test_signed_out_visitors_may_not_upload(home, store):
    at = upload_page(oidc_user={"is_logged_in": False})
    assert any("sign in to upload" in t.lower() for t in texts(at, "info"))
    assert not at.file_uploader and not at.exception
    assert stored_uploads(home) == []


def test_an_upload_is_stored_per_person_within_the_quota_and_names_no_server_path(home, store, tmp_path,
                                                                                   monkeypatch):
    good, other = tiny_generator(tmp_path, 0), tiny_generator(tmp_path, 1)
    monkeypatch.setenv("GAN_UPLOAD_QUOTA_MB_PER_USER", str(1.5 * len(good) / 2**20))  # room for one file
    at = upload_page(user="ada")
    at.file_uploader[0].set_value(("../../mine.safetensors", good, "application/octet-stream")).run()
    assert not at.error and not at.exception and len(at.image) == 2
    [kept] = stored_uploads(home)
    assert kept.read_bytes() == good and "mine" not in str(kept) and kept.parent.parent == home / "uploads"
    assert at.caption[0].value.endswith(f"`{kept.name}`")  # the base name only
    at.slider(key="gen_side").set_value(3).run()  # a rerun reuses the stored file
    assert stored_uploads(home) == [kept] and "3×3" in at.image[0].captions[0]
    at.file_uploader[0].set_value(("second.safetensors", other, "application/octet-stream")).run()
    assert any("quota" in e and "per person" in e for e in texts(at, "error"))
    assert stored_uploads(home) == [kept]  # refused: nothing written
    assert_no_server_path(at, home, tmp_path)


def test_uploads_from_one_address_share_its_limit_on_the_page(home, store, tmp_path, monkeypatch):
    """Issue 27: the upload limits were per cookie. AppTest cannot send a client address, so ui.client_address
    answers what a trusted proxy's X-Forwarded-For would (policy.client_address has its own tests)."""
    import ui

    monkeypatch.setattr(ui, "client_address", lambda s: "203.0.113.7")
    monkeypatch.setenv("GAN_UPLOADS_PER_HOUR_PER_ADDRESS", "1")
    good, other = tiny_generator(tmp_path, 0), tiny_generator(tmp_path, 1)
    ada = upload_page(user="ada")
    ada.file_uploader[0].set_value(("a.safetensors", good, "application/octet-stream")).run()
    assert not ada.error and len(stored_uploads(home)) == 1
    bob = upload_page(user="bob")  # another person, the same address
    bob.file_uploader[0].set_value(("b.safetensors", other, "application/octet-stream")).run()
    assert any("GAN_UPLOADS_PER_HOUR_PER_ADDRESS" in e for e in texts(bob, "error")), texts(bob, "error")
    assert not bob.exception
    assert len(stored_uploads(home)) == 1


def test_an_uploaded_d_is_calibrated_once_per_file_content_on_fewer_digits(home, store, tmp_path,
                                                                           counted_calibrations):
    """Issue 27: every new upload of an export carrying D calibrated it on 5,000 digits (68 s of CPU for 20 MB)."""
    import torch

    from gan_core import rejection
    from gan_core.checkpoint import save_generator
    from gan_core.models import build_discriminator, build_generator

    cfg = TrainConfig(g_widths=(32,), d_widths=(32,), latent_dim=8)
    torch.manual_seed(0)
    save_generator(tmp_path / "gd.safetensors", cfg, build_generator(cfg), 1, 10, d=build_discriminator(cfg))
    data = (tmp_path / "gd.safetensors").read_bytes()
    calls = counted_calibrations
    uploaded: list[int] = []
    for who in ("ada", "bob"):  # the same file from two people: two uploads, one calibration
        at = upload_page(user=who)
        calls.clear()  # the page opened on a pretrained generator (calibrated on all 5,000 digits)
        at.file_uploader[0].set_value(("gd.safetensors", data, "application/octet-stream")).run()
        assert not at.error and not at.exception and not at.select_slider(key="gen_reject").disabled
        uploaded += calls
    assert uploaded == [rejection.UPLOAD_CALIBRATION_N]
    assert len(stored_uploads(home)) == 2


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pickle", "truncated", "random bytes", "plain safetensors"])
def test_hostile_uploads_write_nothing_and_name_no_server_path(home, store, tmp_path, kind):
    import io
    import os

    import torch
    from safetensors.torch import save_file
    good = tiny_generator(tmp_path, 0)
    if kind == "pickle":
        buf = io.BytesIO()
        torch.save({"w": torch.zeros(3)}, buf)
        data = buf.getvalue()
    elif kind == "plain safetensors":  # a valid safetensors file that GAN Studio did not write
        save_file({"x": torch.zeros(3)}, str(tmp_path / "plain.safetensors"))
        data = (tmp_path / "plain.safetensors").read_bytes()
    else:
        data = good[:-100] if kind == "truncated" else os.urandom(4096)
    at = upload_page(user="ada")
    at.file_uploader[0].set_value(("x.safetensors", data, "application/octet-stream")).run()
    assert any("not accepted" in e for e in texts(at, "error")) and not at.exception
    assert stored_uploads(home) == []
    assert_no_server_path(at, home, tmp_path)
