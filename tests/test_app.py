"""The dashboard's pages through Streamlit's AppTest: no browser, the real Store on a temporary GAN_HOME."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import conftest
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.web import dashboard as dash
from gan_core.config import TrainConfig
from gan_core.runs.store import Store
from gan_core.trainer import train
from gan_core.runs.worker import StoreSink

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["pages/train.py", "pages/runs.py", "pages/samples.py", "pages/generate.py", "pages/compare.py"]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty GAN_HOME on SQLite, and no worker processes spawned by the app."""
    monkeypatch.setenv("GAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GAN_DB_URL", raising=False)
    monkeypatch.setenv("GAN_NO_AUTOWORKER", "1")
    return tmp_path / "home"


@pytest.fixture
def store(home):
    s = Store()
    yield s
    s.dispose()


def app(page: str | None = None, run_id: int | None = None, user: str | None = None,
        oidc_user: dict | None = None, query: dict[str, str] | None = None) -> AppTest:
    """The app, run once, then switched to `page` (with ?run= if given, and the `query` parameters) and run again.
    `user` is the sidebar display name; `oidc_user` turns on OIDC sign-in ([auth] secrets) with that st.user."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(query or {})
    if run_id is not None:
        at.query_params["run"] = str(run_id)
    if user is not None:
        at.session_state["owner"] = user
    if oidc_user is not None:
        at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                              "client_id": "c", "client_secret": "s",
                              "server_metadata_url": "https://example.invalid/.well-known/openid-configuration"}
        at.user = oidc_user
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


_TRAINED: dict[str, tuple[Path, list]] = {}


@pytest.fixture(scope="session")
def train_cache(tmp_path_factory) -> Path:
    """Where each distinct config is trained once per session (pytest removes old basetemps itself)."""
    return tmp_path_factory.mktemp("trained")


def trained_run(store: Store, cfg: TrainConfig, images, cache: Path, name: str = "tiny", labels=None) -> int:
    """A finished run with real metrics, samples and checkpoints in `store`, as the worker would leave it.

    Each config is trained once per test session (in a cache folder); later calls replay its events through the
    worker's StoreSink and copy its checkpoints, which gives the same rows and files in a fraction of the time.
    """
    import shutil

    from gan_core.events import ListSink
    key = cfg.to_json()
    if key not in _TRAINED:
        out = cache / f"cfg-{len(_TRAINED)}"
        events = ListSink()
        train(cfg, events, out_dir=out, images=images, labels=labels)
        _TRAINED[key] = (out, list(events))
    out, events = _TRAINED[key]
    run_id = store.submit(cfg, name=name, owner="tester")
    run = store.claim("test-worker", cap=10)
    assert run is not None and run.id == run_id
    shutil.copytree(out, store.artifacts_dir(run), dirs_exist_ok=True)
    sink = StoreSink(store, run)
    for ev in events:
        sink(ev)
    sink.flush()
    store.finish(run_id, "done")
    return run_id


def texts(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def plotly_charts(at: AppTest) -> list:
    return at.get("plotly_chart")


# --- empty states --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES[1:])
def test_every_page_has_an_empty_state_that_leads_to_train(home, store, page):
    at = app(page)
    # AppTest runs a switched-to page the way a fresh server runs a deep link (pages/ as a legacy folder, without
    # app.py); ui.bootstrap then does what app.py does, so the page has the app's sidebar and its name box.
    assert [t.key for t in at.sidebar.text_input] == ["owner_input"]
    if page == "pages/generate.py":  # a fresh install opens Generate on the pretrained generators instead
        at.radio(key="gen_source").set_value("a run").run()
    assert any("no runs" in t for t in texts(at, "info"))
    assert not at.error
    button = [b for b in at.button if b.label == "Go to Train"]
    assert button
    button[0].click().run()
    assert at.header[0].value == "Train a GAN"


@pytest.mark.slow
def test_app_does_not_spawn_a_worker_when_told_not_to(home, store):
    app("pages/train.py")
    assert store.workers() == []


# --- Train ---------------------------------------------------------------------------------------------------
def _set(at: AppTest, name: str, value) -> None:
    for kind in ("number_input", "text_input", "selectbox", "checkbox"):
        for w in getattr(at, kind):
            if w.key == f"cfg.{name}":
                w.set_value(value)
                return
    raise KeyError(name)


def _value(at: AppTest, name: str):
    return at.session_state[f"cfg.{name}"]


def _widgets(at: AppTest) -> dict:
    """The form's config widgets by field name."""
    return {w.key[4:]: w for kind in ("number_input", "text_input", "selectbox", "checkbox")
            for w in getattr(at, kind) if w.key and w.key.startswith("cfg.")}


def _check_errors(at: AppTest) -> list[str]:
    return [t for t in texts(at, "error") if t.startswith("Fix this before starting")]


def test_form_has_every_applicable_field_with_label_help_and_no_client_side_bounds(home, store):
    at = app("pages/train.py")
    shown = _widgets(at)
    from gan_core.config import config_fields
    hidden = set(dash.hidden_names(dash.form_values(None)))
    assert set(shown) == {f.name for f in config_fields()} - hidden
    assert {"width_mult", "d_batchnorm", "gp_weight", "n_critic", "info_weight"} <= hidden  # not for dense + NS
    specs = {s.name: s for s in dash.field_specs()}
    for name, w in shown.items():  # a label for people, the field's name in the help
        assert w.label == specs[name].label and w.label != name, (name, w.label)
        assert f"(`{name}`)" in w.help, (name, w.help)
    lr = shown["lr_g"]
    assert lr.label == "Learning rate of G" and "learning rate" in lr.help and "Allowed 1e-07 to 1." in lr.help
    assert lr.min is None and lr.max is None  # the browser would keep the last in-range value instead
    assert shown["batch_size"].label == "Batch size (images)"
    assert [e.label for e in at.expander] == ["Model", "Loss", "Optimizer", "Training", "Performance", "Quality"]


@pytest.mark.parametrize("field,value,why", [
    ("epochs", 0, "0 is out of range; allowed 1 to 10000"),
    ("batch_size", 10_000_000, "10000000 is out of range; allowed 1 to 8192"),
    ("lr_g", -0.001, "-0.001 is out of range; allowed 1e-07 to 1"),
    ("epochs", None, "empty; enter a value"),  # a cleared box
])
@pytest.mark.slow
def test_a_typed_bad_number_is_what_is_checked_and_start_is_disabled(home, store, field, value, why):
    at = app("pages/train.py", user="ada")
    assert not at.button(key="start").disabled
    _set(at, field, value)
    at.run()
    assert _value(at, field) == value  # not snapped back to the last valid value
    errors = _check_errors(at)
    label = dash.label_of(field)
    assert errors and f"**{dash.plain(label)}** (`{field}`): {dash.plain(why)}" in errors[0], errors
    assert not at.success  # no "Valid" beside it
    assert at.button(key="start").disabled  # AppTest, like a browser, cannot click it
    _set(at, field, dash.form_values(None)[field])
    at.run()
    assert not _check_errors(at) and at.success[0].value.startswith("Valid")
    assert not at.button(key="start").disabled


def test_every_bad_field_is_named_at_once(home, store):
    at = app("pages/train.py")
    _set(at, "epochs", 0)
    _set(at, "lr_d", 5.0)
    at.run()
    error = _check_errors(at)[0]
    assert "**Epochs** (`epochs`)" in error and "**Learning rate of D** (`lr_d`)" in error


@pytest.mark.parametrize("key,value,why", [
    ("run_tags", "good, bad tag!", "'bad tag!' is not a tag"),
    ("run_tags", ", ".join(f"t{i}" for i in range(11)), "11 tags is too many; allowed up to 10"),
])
def test_tags_are_checked_live(home, store, key, value, why):
    at = app("pages/train.py", user="ada")
    at.text_input(key=key).set_value(value).run()
    errors = _check_errors(at)
    assert errors and f"**Tags**: {dash.plain(why)}" in errors[0], errors
    assert not at.success and at.button(key="start").disabled
    at.text_input(key=key).set_value("baseline, dcgan").run()
    assert not _check_errors(at) and not at.button(key="start").disabled


def test_run_name_and_description_limits_are_checked_live():
    assert dash.run_text_problems("x" * 201, "", "") == [("run_name", "name: 201 characters is too long; allowed "
                                                                     "up to 200")]
    assert dash.run_text_problems("ok", "a, b", "d" * 2001)[0][0] == "run_description"
    assert dash.run_text_problems("ok", "a, b", "fine") == []


def test_fields_shown_follow_arch_loss_and_info_code_and_hidden_ones_keep_their_values(home, store):
    at = app("pages/train.py", user="ada")
    shown = set(_widgets(at))
    assert {"g_widths", "d_widths", "label_smoothing"} <= shown
    assert not shown & {"width_mult", "d_batchnorm", "gp_weight", "n_critic", "info_weight"}
    _set(at, "arch", "dcgan")
    at.run()
    shown = set(_widgets(at))
    assert {"width_mult", "d_batchnorm"} <= shown and not shown & {"g_widths", "d_widths"}
    _set(at, "loss", "hinge")
    _set(at, "info_code", True)
    at.run()
    shown = set(_widgets(at))
    assert {"gp_weight", "n_critic", "info_weight"} <= shown and "label_smoothing" not in shown
    _set(at, "n_critic", 3)
    _set(at, "width_mult", 0.5)
    at.run()
    _set(at, "loss", "lsgan")  # n_critic no longer applies, but 3 is not its default: still shown, never hidden
    _set(at, "arch", "dense")
    at.run()
    shown = set(_widgets(at))
    assert {"n_critic", "width_mult", "g_widths"} <= shown and not shown & {"gp_weight", "d_batchnorm"}
    _set(at, "arch", "dcgan")
    at.run()
    assert _value(at, "d_batchnorm") is True  # hidden while dense, kept
    at.button(key="start").click().run()
    cfg = store.list_runs()[0].config
    assert (cfg.arch, cfg.loss, cfg.n_critic, cfg.width_mult, cfg.info_code, cfg.g_widths) == (
        "dcgan", "lsgan", 3, 0.5, True, (256, 512, 1024))


@pytest.mark.parametrize("preset,loss,companions", [
    ("seed002-dense", "hinge", {"label_smoothing": 0.0}),  # smoothing 0.1: TrainConfig refuses it with hinge
    ("seed002-dense", "wgan_gp", {"label_smoothing": 0.0, "gp_weight": 10.0, "n_critic": 5}),
    (dash.DEFAULTS_LABEL, "wgan_gp", {"gp_weight": 10.0, "n_critic": 5}),  # gp_weight 0: refused with wgan_gp
])
def test_picking_a_loss_sets_what_it_expects_beside_it_and_says_so(home, store, preset, loss, companions):
    """Issue 26: choosing wgan_gp or hinge left the form invalid, the fix inside a collapsed section."""
    at = app("pages/train.py", user="ada")
    at.selectbox(key="preset").set_value(preset).run()
    _set(at, "loss", loss)
    at.run()
    assert not _check_errors(at) and at.success[0].value.startswith("Valid"), _check_errors(at)
    assert not at.button(key="start").disabled
    assert {n: _value(at, n) for n in companions} == companions
    assert {n: at.session_state["train_form"][n] for n in companions} == companions  # what Start queues
    note = [i.value for i in at.info if "the form also set" in i.value]
    assert len(note) == 1 and all(f"(`{n}`)" in note[0] for n in companions) and "Advanced → Loss" in note[0]
    at.button(key="start").click().run()
    assert store.list_runs()[0].config.loss == loss


def test_a_loss_keeps_values_chosen_for_it_and_takes_back_what_it_set(home, store):
    at = app("pages/train.py")
    _set(at, "loss", "wgan_gp")
    at.run()
    _set(at, "gp_weight", 5.0)  # the person's own penalty: kept by the next critic loss
    at.run()
    _set(at, "loss", "hinge")
    at.run()
    assert (_value(at, "gp_weight"), _value(at, "n_critic")) == (5.0, 5)
    _set(at, "loss", "non_saturating")  # n_critic 5 was the form's doing: back to 1; the penalty 5 was not
    at.run()
    assert (_value(at, "gp_weight"), _value(at, "n_critic")) == (5.0, 1) and not _check_errors(at)
    assert "`n_critic`" in [i.value for i in at.info if "the form also set" in i.value][0]


@pytest.mark.parametrize("field,value,message", [
    ("train_subset", 100, "train_subset: 100 images make no full batch of 128"),
    ("g_widths", "256, lots", "g_widths: expected a non-empty list of whole numbers"),
    ("g_widths", "256, 99999", "g_widths: (256, 99999) is out of range"),
])
def test_bad_values_show_the_config_error_and_queue_nothing(home, store, field, value, message):
    at = app("pages/train.py")
    _set(at, field, value)
    at.run()
    why = dash.plain(message.split(": ", 1)[1])  # shown escaped: the message may quote what was typed
    assert any(f"(`{field}`): {why}" in t for t in _check_errors(at)), texts(at, "error")
    assert at.button(key="start").disabled
    assert not at.exception


def test_cross_field_rule_wgan_gp_needs_gp_weight(home, store):
    at = app("pages/train.py")
    _set(at, "loss", "wgan_gp")
    at.run()
    _set(at, "gp_weight", 0.0)  # the form set 10 beside wgan_gp; typed back to 0, TrainConfig's rule still holds
    at.run()
    assert any(dash.plain("wgan_gp needs a gradient penalty") in t and "(`gp_weight`)" in t
               for t in _check_errors(at))
    assert at.button(key="start").disabled


def test_preset_fills_the_form(home, store):
    at = app("pages/train.py")
    at.selectbox(key="preset").set_value("seed003-dcgan").run()
    assert _value(at, "arch") == "dcgan" and _value(at, "batch_size") == 256 and _value(at, "lr_g") == 1e-4
    at.selectbox(key="preset").set_value("seed002-dense").run()
    assert _value(at, "g_widths") == "128" and _value(at, "noise") == "uniform"


def test_valid_form_queues_a_run_and_opens_its_live_view(home, store):
    at = app("pages/train.py", user="ada")  # the sidebar's name box starts with the session's name
    at.selectbox(key="preset").set_value("seed003-dcgan").run()
    _set(at, "epochs", 3)
    _set(at, "train_subset", 1024)
    at.text_input(key="run_name").set_value("my dcgan")
    at.run()
    assert not at.error
    at.button(key="start").click().run()
    assert not at.exception
    runs = store.list_runs()
    assert len(runs) == 1
    run = runs[0]
    assert (run.name, run.owner, run.status) == ("my dcgan", "ada", "queued")
    assert run.config == TrainConfig.from_preset("seed003-dcgan", epochs=3, train_subset=1024)
    assert at.header[0].value == "Runs"  # switched to the live view of the new run
    assert at.query_params["run"] == [str(run.id)] or at.query_params["run"] == str(run.id)
    assert any("my dcgan" in s.value for s in at.subheader)


def test_form_values_survive_a_page_switch(home, store):
    at = app("pages/train.py")
    _set(at, "epochs", 7)
    at.run()
    at.switch_page("pages/compare.py").run()
    at.switch_page("pages/train.py").run()
    assert _value(at, "epochs") == 7


# --- Runs / live view ----------------------------------------------------------------------------------------
def _metric_rows(n: int) -> list[dict]:
    return [dict(step=i, epoch=1, d_loss=1.0 + i / 100, g_loss=2.0 - i / 100, d_real=0.75, d_fake=0.25,
                 images_per_sec=1234.0) for i in range(1, n + 1)]


def test_live_view_shows_a_runs_metrics(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="watched", owner="bob")
    assert store.claim("w1", cap=1).id == run_id
    store.add_step_metrics(run_id, _metric_rows(40))
    at = app("pages/runs.py", run_id=run_id)
    assert len(plotly_charts(at)) == 3
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["step"] == "40" and metrics["D loss"] == "1.4000" and metrics["G loss"] == "1.6000"
    assert metrics["D(x)"] == "0.750" and metrics["D(G(z))"] == "0.250" and metrics["images/s"] == "1,234"
    assert at.dataframe[0].value["status"].str.contains("running").all()
    # another "browser session" sees the same numbers, and new rows once the worker writes them
    store.add_step_metrics(run_id, _metric_rows(50)[40:])
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


def _quality_row(shares, fd=40.0, inception=8.0) -> dict:
    return dict(n=500, fd=fd, inception_score=inception, confidence=0.9, class_shares=shares, diversity=22.0,
                seconds=0.4)


@pytest.mark.slow
def test_live_view_plots_quality_and_warns_of_mode_collapse(home, store):
    dash.quality_floor("mnist", 500)  # scored in the background on a page; here ready before the first render
    run_id = store.submit(TrainConfig(epochs=5), name="collapsing", owner="bob")
    store.claim("w1", cap=1)
    store.add_step_metrics(run_id, _metric_rows(40))
    store.add_quality(run_id, 1, 20, _quality_row([0.1] * 10))
    at = app("pages/runs.py", run_id=run_id)
    assert len(plotly_charts(at)) == 5 and not any("mode collapse" in w.value for w in at.warning)
    assert any("Mean confidence 0.900" in c.value and "real data" in c.value for c in at.caption)
    store.add_quality(run_id, 2, 40, _quality_row([0.82] + [0.02] * 9, fd=300.0, inception=1.8))
    at = app("pages/runs.py", run_id=run_id)  # 40 steps: noise, which the classifier calls one class
    assert not any("mode collapse" in w.value for w in at.warning)
    assert any("Too early to judge mode collapse" in i.value for i in at.info)
    assert not any("learning rates" in i.value for i in at.info)
    store.add_quality(run_id, 3, 900, _quality_row([0.82] + [0.02] * 9, fd=300.0, inception=1.8))
    at = app("pages/runs.py", run_id=run_id)  # one judged epoch is watched, not yet a warning (issue 26)
    assert not any("mode collapse" in w.value for w in at.warning)
    assert any("Watching for mode collapse: 82% of samples are one class" in i.value for i in at.info)
    store.add_quality(run_id, 4, 1000, _quality_row([0.82] + [0.02] * 9, fd=310.0, inception=1.8))
    store.add_quality(run_id, 5, 1100, _quality_row([0.83] + [0.02] * 9, fd=295.0, inception=1.8))
    at = app("pages/runs.py", run_id=run_id)  # three epochs in a row, FD stuck near 300: collapsed
    warning = [w.value for w in at.warning if "mode collapse" in w.value]
    assert warning and "83% of samples are one class" in warning[0] and "learning rates" in warning[0]


def test_compare_plots_quality_with_the_real_floor(home, store):
    ids = [store.submit(TrainConfig(epochs=2), name=n) for n in ("a", "b")]
    for i, run_id in enumerate(ids):
        store.add_quality(run_id, 1, 10, _quality_row([0.1] * 10, fd=50.0 - i))
    dash.quality_floor("mnist", 10)  # Compare never waits for the floor (measured in the background): measure it first
    at = app("pages/compare.py")
    quality = [c for c in plotly_charts(at) if "Quality" in c.proto.spec]
    names = [t["name"] for t in json.loads(quality[0].proto.spec)["data"]] if len(quality) == 1 else []
    assert "real data · FD" in names and "real data · IS" in names  # the floor lines of real MNIST test data
    fashion = store.submit(TrainConfig(epochs=2, dataset="fashion_mnist"), name="c")
    store.add_quality(fashion, 1, 10, _quality_row([0.1] * 10))
    at = app("pages/compare.py")
    at.multiselect(key="compare_runs").set_value([ids[0], fashion]).run()
    quality = [c for c in plotly_charts(at) if "Quality" in c.proto.spec]
    assert not any(t["name"].startswith("real data") for t in json.loads(quality[0].proto.spec)["data"])
    assert any("different datasets" in c.value for c in at.caption)  # one floor would be wrong for one of them


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


def test_failed_run_shows_its_error(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="broken")
    store.claim("w1", cap=1)
    store.finish(run_id, "failed", "ValueError: the data folder is empty")
    at = app("pages/runs.py", run_id=run_id)
    assert any("data folder is empty" in t for t in texts(at, "error"))


# --- Samples, Generate, Compare with a really trained run -----------------------------------------------------
def fast(cfg: TrainConfig, **changes) -> TrainConfig:
    """The config without per-epoch quality scoring: these tests look at pages."""
    return cfg.replace(**{"eval_samples": 0, **changes})


@pytest.fixture
def trained(store, tiny_cfg, mnist_slice, train_cache) -> int:
    return trained_run(store, fast(tiny_cfg, epochs=3), mnist_slice, train_cache)


def test_samples_page_has_an_epoch_slider_play_and_gif(store, trained):
    at = app("pages/samples.py", run_id=trained)
    slider = at.select_slider(key=f"sample_epoch-{trained}")
    assert list(slider.options) == ["1", "2", "3"] and slider.value == 3
    first = at.image[0].value[0]
    slider.set_value(1).run()
    assert at.image[0].value[0] != first
    assert any(b.label.endswith("Play") for b in at.button)
    assert at.get("download_button")


@pytest.fixture
def media(monkeypatch) -> dict[str, bytes]:
    """Media file id → the bytes st.image/st.download_button handed to Streamlit (AppTest keeps only URLs)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    seen: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        seen[file_id] = self._files_by_id[file_id].content
        return file_id
    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen


def _image_bytes(at: AppTest, media: dict[str, bytes], index: int = 0) -> bytes:
    """The bytes behind the index-th st.image."""
    url = at.image[index].value[0]
    return media[url.rsplit("/", 1)[-1].split(".")[0]]


@pytest.mark.slow
def test_generate_is_deterministic_for_a_seed(store, trained, media):
    at = app("pages/generate.py", run_id=trained)
    assert not at.error and not at.info
    at.number_input(key="gen_seed").set_value(5).run()
    a = _image_bytes(at, media)
    at2 = app("pages/generate.py", run_id=trained)
    at2.number_input(key="gen_seed").set_value(5).run()
    assert _image_bytes(at2, media) == a and a[:8] == b"\x89PNG\r\n\x1a\n"
    from gan_core.checkpoint import load_generator
    from gan_core.sampling import generate, grid, png_at_width
    g, cfg, _ = load_generator(store.artifacts_dir(store.get(trained)) / "generator.safetensors")
    assert a == png_at_width(grid(generate(g, cfg, 64, 5), ncol=8), 768)  # exactly what gan_core draws
    at2.number_input(key="gen_seed").set_value(6).run()
    assert _image_bytes(at2, media) != a
    at2.button(key="gen_random").click().run()
    assert not at2.exception
    drawn = at2.number_input(key="gen_seed").value
    assert drawn != 6  # a new seed (random: 1 in 2**31 to draw 6 again)
    assert _image_bytes(at2, media) == png_at_width(grid(generate(g, cfg, 64, drawn), ncol=8), 768)
    assert len(at2.image) == 2  # the grid and the slerp strip
    assert len(at2.get("download_button")) == 2


@pytest.mark.slow
def test_generate_rejection_slider_draws_what_gan_core_rejection_keeps(store, trained, media):
    at = app("pages/generate.py", run_id=trained)
    slider = at.select_slider(key="gen_reject")
    assert slider.value == 0.0 and not slider.disabled  # runs' exports carry D; raw by default
    at.slider(key="gen_side").set_value(3).run()
    raw = _image_bytes(at, media)
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
    shown = _image_bytes(at, media)
    assert shown != raw and shown == png_at_width(grid(to_uint8(kept.images), ncol=3), dash.grid_display_px(3))
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


def test_generate_grid_size(store, trained):
    at = app("pages/generate.py", run_id=trained)
    at.slider(key="gen_side").set_value(3).run()
    assert "3×3" in at.image[0].captions[0]


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


def test_compare_two_runs(store, tiny_cfg, mnist_slice, train_cache):
    a = trained_run(store, fast(tiny_cfg), mnist_slice, train_cache, name="a")
    b = trained_run(store, fast(tiny_cfg, lr_g=1e-3, seed=4), mnist_slice, train_cache, name="b")
    at = app("pages/compare.py")
    assert sorted(at.multiselect(key="compare_runs").value) == [a, b]
    assert len(plotly_charts(at)) == 1
    diff = at.dataframe[0].value
    assert sorted(diff["field"]) == ["lr_g", "seed"]
    assert len(at.image) == 2


def test_queued_run_without_a_worker_says_how_to_start_one(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="waiting")
    at = app("pages/runs.py", run_id=run_id)
    assert any("No training worker is running" in w.value for w in at.warning)
    store.worker_beat("w1", 1, "host")
    at = app("pages/runs.py", run_id=run_id)
    assert not any("No training worker" in w.value for w in at.warning)


# --- people, ownership, demo mode, hostile text ----------------------------------------------------------------
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


def test_oidc_sign_in_mode(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="theirs", owner="ada@example.com")
    store.claim("w1", cap=1)
    out = app(oidc_user={"is_logged_in": False})  # Home, the default page, with app.py's sidebar
    assert at_button(out, "Log in") and not out.sidebar.text_input  # no free-typed names with sign-in configured
    assert app("pages/train.py", oidc_user={"is_logged_in": False}).button(key="start").disabled  # watch only
    ada = {"is_logged_in": True, "sub": "1001", "iss": "https://idp.example", "email": "ada@example.com",
           "email_verified": True, "name": "Ada"}
    signed = app(oidc_user=ada)
    assert at_button(signed, "Log out")
    assert any(dash.plain("ada@example.com") in c.value for c in signed.caption)
    assert not app("pages/train.py", oidc_user=ada).button(key="start").disabled
    who = app("pages/runs.py", run_id=run_id, oidc_user=ada)  # her verified email owns the run named after it
    assert not who.button(key=f"stop-{run_id}").disabled
    other = app("pages/runs.py", run_id=run_id, oidc_user={"is_logged_in": True, "sub": "1002",
                                                            "email": "bob@example.com", "email_verified": True})
    assert other.button(key=f"stop-{run_id}").disabled


@pytest.mark.parametrize("claims", [
    {"sub": "666", "email": "ada@example.com"},                             # email_verified missing
    {"sub": "666", "email": "ada@example.com", "email_verified": False},
    {"sub": "666", "email": "ada@example.com", "email_verified": "false"},
    {"sub": "666", "name": "ada@example.com"},                              # a name that looks like an email
])
@pytest.mark.slow
def test_an_unverified_email_or_an_email_like_name_owns_nothing(home, store, monkeypatch, claims):
    monkeypatch.setenv("GAN_ADMINS", "ada@example.com")
    run_id = store.submit(TrainConfig(epochs=2), name="theirs", owner="ada@example.com")
    store.claim("w1", cap=1)
    mallory = app("pages/runs.py", run_id=run_id, oidc_user={"is_logged_in": True, **claims})
    assert mallory.button(key=f"stop-{run_id}").disabled  # neither the owner nor, through GAN_ADMINS, an admin
    train = app(oidc_user={"is_logged_in": True, **claims})  # the default page runs app.py's sidebar
    shown = [c.value.replace("\\", "").replace("\u2060", "") for c in train.caption]  # plain() undone
    assert any("Signed in as" in c for c in shown) and not any("ada@example.com" in c for c in shown)


def at_button(at: AppTest, label: str) -> bool:
    return any(b.label == label for b in at.button)


def test_demo_mode_caps_the_form_and_hides_delete(home, store, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_MODE", "1")
    monkeypatch.setenv("GAN_DEMO_MAX_EPOCHS", "2")
    at = app("pages/train.py", user="ada")
    assert any("Demo limits" in t for t in texts(at, "info"))
    _set(at, "epochs", 3)
    at.run()
    assert any(dash.plain("demo limit: epochs 3 is more than the 2") in t for t in texts(at, "error"))
    assert at.button(key="start").disabled  # policy.submit would refuse it on the server side too
    assert store.list_runs() == []
    run_id = store.submit(TrainConfig(epochs=2), name="mine", owner="ada")
    store.request_stop(run_id)
    at = app("pages/runs.py", run_id=run_id, user="ada")
    assert not [b for b in at.button if b.key == f"delete-{run_id}"]  # destructive actions hidden on the demo


def test_the_demo_form_opens_on_a_run_the_demo_accepts(home, store, monkeypatch):
    """Issue 27 walk-through: the demo's Train form opened on 20 epochs (TrainConfig's default) against a cap of 5,
    so a stranger's first sight was "Fix this before starting" and a disabled Start; Home promised 10 epochs."""
    monkeypatch.setenv("GAN_DEMO_MODE", "1")
    monkeypatch.setenv("GAN_DEMO_MAX_EPOCHS", "3")
    at = app("pages/train.py", user="ada")
    assert at.number_input(key="cfg.epochs").value == 3 and not texts(at, "error")
    assert not at.button(key="start").disabled
    at.selectbox(key="preset").set_value("seed003-dcgan").run()  # a preset of 50 epochs, lowered too
    assert at.number_input(key="cfg.epochs").value == 3 and dash.plain("epochs=3 (preset 50)") in " ".join(texts(at, "caption"))
    at = app(None, user="ada")  # Home: its promise and its button fit the demo
    assert any("recipe for 3 epochs" in t for t in texts(at, "markdown"))
    at.button(key="home_train").click().run()
    assert at.session_state["train_form"]["epochs"] == 3
    monkeypatch.setenv("GAN_DEMO_MODE", "0")
    assert app("pages/train.py", user="ada").number_input(key="cfg.epochs").value == TrainConfig().epochs


def test_demo_mode_refuses_a_runs_memory_past_its_cap_and_torch_compile_in_the_form(home, store, monkeypatch):
    """Issue 27: a DCGAN at batch 8192 (16 GB) passed the form and queued on the demo; torch.compile could be ticked."""
    monkeypatch.setenv("GAN_MAX_RUN_MEMORY_GB", "64")  # the host's own bound lets it through
    monkeypatch.setenv("GAN_DEMO_MODE", "1")
    at = app("pages/train.py", user="ada")
    box = at.checkbox(key="cfg.compile")
    assert box.disabled and not box.value and "Off here: torch.compile is off on this demo" in box.help
    assert any("GB of memory" in t and "no torch.compile" in t for t in texts(at, "info"))
    _set(at, "arch", "dcgan")
    at.run()
    _set(at, "batch_size", 8192)
    _set(at, "epochs", 1)
    at.run()
    assert any(dash.plain("more than the 2 GB a run this demo allows (GAN_DEMO_MAX_RUN_MEMORY_GB)") in t
               for t in texts(at, "error"))
    assert at.button(key="start").disabled
    _set(at, "batch_size", 64)
    at.run()
    assert not texts(at, "error") and not at.button(key="start").disabled
    at.session_state["cfg.compile"] = True  # ticked before (a Clone of a team run): it can be unticked, and says why
    at.run()
    assert not at.checkbox(key="cfg.compile").disabled and at.button(key="start").disabled
    assert any(dash.plain("torch.compile is off on this demo") in t for t in texts(at, "error")), texts(at, "error")
    monkeypatch.setenv("GAN_DEMO_MODE", "0")
    assert not app("pages/train.py", user="ada").checkbox(key="cfg.compile").disabled  # a team may compile
    assert store.list_runs() == []


def test_demo_mode_caps_the_generate_grid(store, trained, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_MODE", "1")
    monkeypatch.setenv("GAN_DEMO_MAX_GRID", "4")
    at = app("pages/generate.py", run_id=trained)
    assert at.slider(key="gen_side").max == 4 and "4×4" in at.image[0].captions[0]


@pytest.mark.parametrize("hostile", ["<img src=x onerror=alert(1)>", "[click](javascript:alert(1))",
                                     ":red[**HUGE**] $\\frac{1}{0}$ ![p](http://evil.example/t.png)",
                                     "http&colon;//evil.example/e1 www&period;evil.example/e2 x&commat;evil.example"])
def test_hostile_run_names_render_as_plain_text(home, store, hostile):
    run_id = store.submit(TrainConfig(epochs=2), name=hostile, owner="ada", tags="x", description=hostile)
    at = app("pages/runs.py", run_id=run_id)
    sub = at.subheader[0].value
    assert sub == f"#{run_id} " + dash.plain(hostile)  # every markdown character escaped
    assert not re.search(r"(?<!\\)[<>\[\]():$!*&]", sub.split(" ", 1)[1])  # no markup character left unescaped
    assert hostile in [t.value for t in at.text]  # the description is st.text: shown literally
    assert not at.exception


# --- conditional generation and the pretrained generators -----------------------------------------------------
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
    assert _image_bytes(at, media) == png_at_width(grid(generate(g, gcfg, 9, seed, label=7), ncol=3), 768)
    at.toggle(key="gen_rows").set_value(True).run()
    assert "one row per class" in at.image[0].captions[0]
    assert _image_bytes(at, media) == png_at_width(grid(class_rows(g, gcfg, seed, 3), ncol=3), 768)
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
    assert _image_bytes(at, media) == png_at_width(grid(class_rows(g, gcfg, seed, 3), ncol=3), 768)
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


def test_a_typed_name_never_grants_admin_rights(home, store, monkeypatch):
    monkeypatch.setenv("GAN_ADMINS", "root@example.com")
    run_id = store.submit(TrainConfig(epochs=2), name="theirs", owner="ada")
    store.claim("w1", cap=1)
    at = app("pages/runs.py", run_id=run_id, user="root@example.com")  # anyone can type it without sign-in
    assert at.button(key=f"stop-{run_id}").disabled
    admin = app("pages/runs.py", run_id=run_id, oidc_user={"is_logged_in": True, "sub": "1", "email":
                                                            "root@example.com", "email_verified": True})
    assert not admin.button(key=f"stop-{run_id}").disabled  # a signed-in admin may


# --- issue 14: uploads, server paths, unreadable sample images --------------------------------------------------
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


def test_generate_errors_name_no_server_path(home, store, trained, tmp_path):
    path = store.artifacts_dir(store.get(trained)) / "generator.safetensors"
    path.write_bytes(b"not a checkpoint")
    at = app("pages/generate.py", run_id=trained)
    assert any("Cannot load this generator" in t for t in texts(at, "error"))
    assert_no_server_path(at, home, tmp_path)


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


# --- issue 15: the landing page, empty states, Generate / Samples / Compare ----------------------------------------
def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image
    import io
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def test_home_is_the_default_page_with_a_live_grid_and_two_ways_in(home, store, media):
    at = app()
    assert at.title[0].value == "GAN Studio"
    assert "generative adversarial networks" in at.markdown[0].value
    assert len(at.image) == 1 and "pretrained" in at.image[0].captions[0]
    assert _png_size(_image_bytes(at, media)) == (640, 640)
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
    assert at.selectbox(key="preset").value == "dense-ema"
    assert at.session_state["train_form"]["epochs"] == 10
    assert at.session_state["train_form"]["arch"] == "dense"


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES[1:])
def test_every_empty_state_offers_the_pretrained_generators(home, store, page):
    at = app(page)
    if page == "pages/generate.py":
        at.radio(key="gen_source").set_value("a run").run()
    assert any("pretrained generators" in t for t in texts(at, "info"))
    [b for b in at.button if b.label == "Try a pretrained generator"][0].click().run()
    assert at.header[0].value == "Generate" and at.radio(key="gen_source").value == "a pretrained generator"
    assert len(at.image) == 2 and not at.error


@pytest.mark.slow
def test_generate_a_bigger_grid_is_never_drawn_smaller(store, trained, media):
    at = app("pages/generate.py", run_id=trained)
    widths = {}
    for side in (1, 4, 8, 9, 12, 16):
        at.slider(key="gen_side").set_value(side).run()
        widths[side] = _png_size(_image_bytes(at, media))[0]
    assert widths[16] > widths[8] and list(widths.values()) == sorted(widths.values()), widths
    assert widths[8] == 768 and widths[16] == 1024


def test_generate_downloads_are_scaled(store, trained, media):
    at = app("pages/generate.py", run_id=trained)
    at.slider(key="gen_steps").set_value(24).run()
    downloads = at.get("download_button")
    assert at.selectbox(key="gen_dl_scale").value == 4
    strip = media[downloads[1].proto.url.rsplit("/", 1)[-1].split(".")[0]]
    assert _png_size(strip) == (722 * 4, 32 * 4)
    at.selectbox(key="gen_dl_scale").set_value(8).run()
    grid_png = media[at.get("download_button")[0].proto.url.rsplit("/", 1)[-1].split(".")[0]]
    assert _png_size(grid_png) == (242 * 8, 242 * 8)


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


def test_generate_errors_are_in_plain_words_with_the_reason_in_an_expander(store, trained):
    path = store.artifacts_dir(store.get(trained)) / "generator.safetensors"
    path.write_bytes(b"\xff" * 64)  # safetensors reads a header length of ~1.8e19: "HeaderTooLarge"
    at = app("pages/generate.py", run_id=trained)
    error = texts(at, "error")[0]
    assert "Cannot load this generator" in error and "not a complete .safetensors file" in error
    assert "too large" not in error and "header" not in error.lower()
    assert at.expander[0].label == "Technical details" and "header too large" in at.code[0].value


@pytest.mark.slow
def test_samples_play_shows_the_epochs_as_a_gif_that_keeps_time(store, trained, media):
    import time as _time

    from PIL import Image
    import io
    at = app("pages/samples.py", run_id=trained)
    at.button(key="play").click().run()
    assert any("Playing epochs 1–3" in c.value for c in at.caption)
    gif = _image_bytes(at, media)
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


def test_compare_shows_grids_two_a_row(store, tiny_cfg, mnist_slice, train_cache, media):
    trained_run(store, fast(tiny_cfg), mnist_slice, train_cache, name="a")
    trained_run(store, fast(tiny_cfg, lr_g=1e-3, seed=4), mnist_slice, train_cache, name="b")
    at = app("pages/compare.py")
    assert len(at.image) == 2
    src = Path(__file__).resolve().parents[1] / "ui.py"  # compare's grids are ui.epoch_grids, two a row
    assert "per_row: int = 2" in src.read_text() and "ui.epoch_grids(" in (ROOT / "pages" / "compare.py").read_text()


# --- issue 15: numbers that are true, charts people can read (Runs) --------------------------------------------
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


def test_greyed_out_stop_and_resume_say_why_on_the_page(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="someone else's", owner="ada")
    store.claim("w1", cap=1)
    at = app("pages/runs.py", run_id=run_id, user="bob")
    assert at.button(key=f"stop-{run_id}").disabled
    assert any("Only ada or an admin can stop or resume it." in c.value for c in at.caption)
    at = app("pages/runs.py", run_id=run_id, user="ada")
    assert not any("can stop or resume it" in c.value for c in at.caption)


def test_live_view_metric_tooltips_log_scale_and_wall_clock_axis(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="watched", owner="bob")
    store.claim("w1", cap=1)
    store.add_step_metrics(run_id, _metric_rows(40))
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


def test_live_view_draws_fd_and_is_as_two_charts_with_their_floors(home, store):
    dash.quality_floor("mnist", 500)
    run_id = store.submit(TrainConfig(epochs=3), name="scored", owner="bob")
    store.claim("w1", cap=1)
    store.add_step_metrics(run_id, _metric_rows(40))
    store.add_quality(run_id, 1, 20, _quality_row([0.1] * 10))
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
    dash.quality_floor.cache_clear()
    run_id = store.submit(TrainConfig(epochs=3), name="scored", owner="bob")
    store.claim("w1", cap=1)
    store.add_quality(run_id, 1, 20, _quality_row([0.1] * 10, fd=40.0) | {"n": 777})
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
        dash.quality_floor.cache_clear()


def test_compare_never_waits_for_the_real_data_floor(home, store, monkeypatch):
    """Measuring the floor (2000 real images through the classifier) was 21.7 s of Compare's first load on a busy
    machine: Compare draws at once without it and adds it when the background measurement is done."""
    calls = []
    monkeypatch.setattr(dash, "quality_floor_nowait", lambda d, n: calls.append((d, n)) or (None, True))
    ids = [store.submit(TrainConfig(epochs=2), name=n) for n in ("a", "b")]
    for i, run_id in enumerate(ids):
        store.add_quality(run_id, 1, 10, _quality_row([0.1] * 10, fd=50.0 - i))
    at = app("pages/compare.py")
    assert calls and calls[0][0] == "mnist"
    assert any("Measuring the real-data floor" in c.value for c in at.caption)
    specs = [json.loads(c.proto.spec) for c in plotly_charts(at) if "Quality" in c.proto.spec]
    assert specs and not any(t.get("name", "").startswith("real data") for s in specs for t in s["data"])


def test_the_sidebar_name_is_kept_and_only_a_typed_name_is_remembered(home, store, monkeypatch):
    import ui
    remembered = []
    monkeypatch.setattr(ui, "_remember_name", remembered.append)
    at = app()  # app.py draws the sidebar
    assert at.text_input(key="owner_input").value == "anonymous" and remembered == []  # the default: not kept
    at = app(user="ada")  # a session that has a name: the box starts with it and the browser remembers it
    assert at.text_input(key="owner_input").value == "ada" and remembered == ["ada"]
    # The box's value comes from value=, never from writing the widget's key (the empty-box bug; see Chromium)
    assert 'st.session_state["owner_input"] =' not in (ROOT / "ui.py").read_text()


# --- malformed settings and damaged rows: words on the page, never a traceback ----------------------------------
def test_a_malformed_heartbeat_timeout_is_named_and_the_runs_page_keeps_working(home, store, monkeypatch):
    monkeypatch.setenv("GAN_HEARTBEAT_TIMEOUT", "abc")
    run_id = store.submit(TrainConfig(epochs=2), name="waiting")
    at = app("pages/runs.py", run_id=run_id)  # app() asserts no exception
    bad = [e.value for e in at.error if "`GAN_HEARTBEAT_TIMEOUT`" in e.value]
    assert len(bad) == 1 and "is not a number" in bad[0] and "restart the dashboard" in bad[0]
    assert at.subheader[0].value.startswith(f"#{run_id} waiting")  # the live view still renders
    assert at.dataframe and store.get(run_id).status == "queued"
    at = app("pages/home.py")  # every page says it once, at the top
    assert [e.value for e in at.error if "`GAN_HEARTBEAT_TIMEOUT`" in e.value] == bad


def test_a_malformed_worker_setting_starts_no_worker_and_says_why(home, store, monkeypatch):
    monkeypatch.delenv("GAN_NO_AUTOWORKER")  # the dashboard would start a worker: it must check the settings first
    monkeypatch.setenv("GAN_HEARTBEAT_TIMEOUT", "-5")
    monkeypatch.setenv("GAN_MAX_CONCURRENT", "two")
    at = app()
    errors = " ".join(e.value for e in at.error)
    assert "`GAN_HEARTBEAT_TIMEOUT`" in errors and "`GAN_MAX_CONCURRENT`" in errors
    assert store.workers() == []  # no worker spawned (it would refuse these settings and exit)


def test_a_damaged_run_row_is_named_and_every_page_lists_the_other_runs(home, store):
    from sqlalchemy import update

    from gan_core.runs.store import Run
    run_id = store.submit(TrainConfig(epochs=2), name="damaged")
    with store.engine.begin() as c:  # eval_samples as no version ever stored it
        c.execute(update(Run).where(Run.id == run_id).values(
            config_json=json.dumps({**TrainConfig(epochs=2).to_dict(), "eval_samples": "abc"})))
    fine = store.submit(TrainConfig(epochs=2), name="fine", owner="ada")
    for page in ("pages/runs.py", "pages/compare.py", "pages/samples.py", "pages/generate.py", "pages/sweeps.py"):
        at = app(page)  # app() asserts no exception
        warned = [w.value.replace("\\", "") for w in at.warning if "cannot be read" in w.value]  # dash.plain's \
        assert len(warned) == 1 and f"run #{run_id} (damaged, owner" in warned[0] and "eval" in warned[0], page
        assert not at.error
    at = app("pages/runs.py")  # issue 26: the rest of the list is still there, not a page-wide error
    assert list(at.dataframe[0].value["id"]) == [fine] and at.subheader[0].value.startswith(f"#{fine} fine")


# --- issue 18: a sample's nearest training digits on Generate ---------------------------------------------------------
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


# --- issue 18: quality you can see into (live view) -------------------------------------------------------------------
def _rich_quality(epoch: int, best: bool = False) -> dict:
    """A conditional run's quality row as the worker stores it since issue 18 (n=500)."""
    per_class = [dict(n=50, precision=0.9, recall=0.3 if c == 5 else 0.85, density=1.0, coverage=0.35, fd=40.0)
                 for c in range(10)]
    return dict(_quality_row([0.1] * 10, fd=90.0 / epoch), precision=0.5 + 0.1 * epoch, recall=0.4 + 0.1 * epoch,
                density=0.6 * epoch, coverage=0.2, kid=60.0 / epoch, fidelity=0.9, fidelity_per_class=[0.9] * 10,
                per_class=per_class, **({"best": True} if best else {}))


_FLOOR_500 = dict(_quality_row([0.1] * 10, fd=8.0, inception=9.5), precision=0.94, recall=0.93, density=1.0,
                  coverage=0.72, kid=9.0, confidence=0.98, diversity=24.0,
                  per_class=[dict(n=50, precision=0.95, recall=0.92, density=1.0, coverage=0.4, fd=30.0)] * 10)


def _titles(at: AppTest) -> dict[str, dict]:
    specs = [json.loads(c.proto.spec) for c in plotly_charts(at)]
    return {s["layout"]["title"]["text"]: s for s in specs}


@pytest.fixture
def floor_500(monkeypatch):
    """Real data's numbers at n=500 without scoring 500 test digits (dashboard's own tests measure them)."""
    monkeypatch.setattr(dash, "quality_floor_nowait", lambda dataset, n: (_FLOOR_500 if n == 500 else None, False))


def test_live_view_shows_kid_fidelity_diversity_best_epoch_per_class_and_health(home, store, floor_500):
    run_id = store.submit(TrainConfig(epochs=3, conditional=True, spectral_norm=True), name="rich", owner="bob")
    store.claim("w1", cap=1)
    store.add_step_metrics(run_id, [dict(r, d_grad_norm=1.5, g_grad_norm=0.2, d_sigma=1.1) for r in _metric_rows(40)])
    store.add_quality(run_id, 1, 20, _rich_quality(1, best=True))
    store.add_quality(run_id, 2, 40, dict(_rich_quality(2), fd=120.0))  # worse: epoch 1 stays the best
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


def test_live_view_of_rows_stored_before_issue_18_has_no_new_charts(home, store, floor_500):
    run_id = store.submit(TrainConfig(epochs=3), name="old", owner="bob")
    store.claim("w1", cap=1)
    store.add_step_metrics(run_id, _metric_rows(40))  # no gradient norms, no σ
    store.add_quality(run_id, 1, 20, _quality_row([0.1] * 10))  # no KID, precision, per_class, best
    at = app("pages/runs.py", run_id=run_id)
    titles = set(_titles(at))
    assert titles == {"Losses", "Discriminator outputs", "Throughput", "FD (lower is better)", "IS (higher is better)"}
    assert not any("Best FD" in c.value for c in at.caption) and not any("digit" in d.value.columns
                                                                         for d in at.dataframe)


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


def test_compare_summarises_precision_recall_kid_and_never_mixes_sample_counts(home, store, floor_500):
    ids = [store.submit(TrainConfig(epochs=2), name=n) for n in ("a", "b", "big")]
    store.add_quality(ids[0], 1, 10, _rich_quality(1))
    store.add_quality(ids[1], 1, 10, _quality_row([0.1] * 10))  # stored before issue 18
    store.add_quality(ids[2], 1, 10, dict(_rich_quality(1), n=2000))
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
    assert _image_bytes(at, media) == drawn_by("best-generator.safetensors")
    which.set_value("newest").run()
    assert "`generator.safetensors`" in at.caption[0].value
    assert _image_bytes(at, media) == drawn_by("generator.safetensors") != drawn_by("best-generator.safetensors")


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


# --- issue 19: sweeps ------------------------------------------------------------------------------------------
def _finished_sweep(store: Store, fds: dict[tuple[int, int], list[float]], iss: dict[int, float]) -> tuple[int, list]:
    """A sweep over lr_g (3 points × 2 seeds) whose runs finished with the given FD per epoch ((point, seed
    repeat) → FDs) and final IS per point, each with a real sample grid; returns (sweep id, its runs)."""
    import numpy as np

    from gan_core.sampling import grid, png_bytes
    from gan_core.runs.sweep import SweepSpec, parse_param, plan
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
    assert dash.config_from_form(form) == cloned  # every field, not just the swept one
    assert not at.exception


def test_train_sweep_mode_shows_the_points_and_queues_the_sweep_or_nothing(home, store):
    at = app("pages/train.py", user="ada")
    at.segmented_control(key="train_mode").set_value("Sweep").run()
    at.text_area(key="sweep_params").set_value("lr_g=1e-4,7").run()  # 7 is out of range: the sweep is refused
    shown = [e.value.replace("\\", "") for e in at.error]  # user text is markdown-escaped (dash.plain)
    assert any("point 2 (lr_g=7)" in e and "out of range" in e for e in shown), shown
    assert at.button(key="start_sweep").disabled
    at.text_area(key="sweep_params").set_value("lr_g=1e-4,2e-4\nloss=non_saturating,hinge").run()
    assert not at.error and any(s.value.startswith("4 runs (4 points × 1 seed(s))") for s in at.success)
    assert len(at.dataframe[0].value) == 4
    at.number_input(key="sweep_seeds").set_value(2).run()
    assert len(at.dataframe[0].value) == 8
    at.button(key="start_sweep").click().run()
    (sweep,) = store.list_sweeps()
    runs = store.sweep_runs(sweep.id)
    assert len(runs) == 8 and {r.status for r in runs} == {"queued"} and {r.owner for r in runs} == {"ada"}
    assert sorted({(r.config.lr_g, r.config.loss) for r in runs}) == [
        (1e-4, "hinge"), (1e-4, "non_saturating"), (2e-4, "hinge"), (2e-4, "non_saturating")]


def test_compare_epoch_slider_moves_every_grid_together(store, tiny_cfg, mnist_slice, train_cache):
    trained_run(store, fast(tiny_cfg, epochs=3), mnist_slice, train_cache, name="a")
    trained_run(store, fast(tiny_cfg, epochs=3, lr_g=1e-3), mnist_slice, train_cache, name="b")
    at = app("pages/compare.py")
    assert [c.value for c in at.caption if "Every grid is drawn from the same noise" in c.value]
    slider = at.select_slider(key="compare_epoch")
    assert slider.value == 3 and len(at.image) == 2
    slider.set_value(1).run()
    assert sorted(i.captions[0].split(" · ")[-1] for i in at.image) == ["epoch 1", "epoch 1"]


def test_clone_on_a_runs_live_view_fills_the_train_form_for_anyone(store, trained):
    at = app("pages/runs.py", run_id=trained, user="someone-else")  # not the owner: cloning changes no run
    clone = at.button(key=f"clone-{trained}")
    assert not clone.disabled
    clone.click().run()
    assert not at.exception
    assert dash.config_from_form(at.session_state["train_form"]) == store.get(trained).config
    assert at.session_state["cloned_from"].startswith(f"run #{trained} ")


def test_the_clone_notice_shows_a_hostile_run_name_literally(home, store):
    # The name is user text: in the Train page's notice a markdown link or image must stay characters, not fetch.
    name = "[click](http://127.0.0.1:9/x) ![img](http://127.0.0.1:9/i.png) **bold**"
    run_id = store.submit(TrainConfig(epochs=2), name=name, owner="mallory")
    at = app("pages/runs.py", run_id=run_id, user="someone-else")
    at.button(key=f"clone-{run_id}").click().run()  # st.switch_page: AppTest is on the Train page now
    assert at.header[0].value == "Train a GAN"
    notice = [t for t in texts(at, "info") if t.startswith("Filled from run")]
    assert len(notice) == 1 and "\\[click\\]" in notice[0] and "\\!\\[img\\]" in notice[0], notice
    assert any(c.startswith("Filled from run") and "\\*\\*bold" in c for c in texts(at, "caption"))


def test_train_says_how_long_a_run_will_take_here_and_its_place_in_the_queue(home, store, mnist_slice):
    """Issue 26: before Start, a wall-clock estimate from what this machine measured, not only '7e+02 TFLOP'."""
    from test_budget import measured

    def estimate_line(at: AppTest) -> str:
        found = [c for c in texts(at, "caption") if "in queue" in c]
        assert len(found) == 1, texts(at, "caption")
        return found[0]

    at = app("pages/train.py", user="ada")
    assert "TFLOP to train" in at.success[0].value and "e+" not in at.success[0].value
    assert estimate_line(at).startswith("No measurement yet on cpu") and "next in queue" in estimate_line(at)
    cfg = conftest.tiny(epochs=4)
    run_id = measured(store, cfg, mnist_slice)
    store.submit(cfg, owner="bob")  # one run waits ahead
    at.selectbox(key="preset").set_value("seed000-dense").run()
    shown = _widgets(at)
    for name, value in dash.form_values(cfg=cfg).items():
        if value != _value(at, name):
            _set(at, name, value)  # every field tiny() changes is on the form for a dense GAN
            assert name in shown
    at.run()
    line = estimate_line(at)
    assert line.startswith("≈ ") and f"as run \\#{run_id} trained" in line and "2nd in queue" in line, line


def _origin(at: AppTest) -> str:
    """The Train page's caption of where the form came from (the Check panel's)."""
    found = [c for c in texts(at, "caption") if c.startswith(("Preset ", "TrainConfig defaults", "Every field",
                                                              "Filled from"))]
    assert len(found) == 1, texts(at, "caption")
    return found[0]


def test_the_preset_caption_describes_the_form_as_it_is(home, store):
    """Issue 26: it said epochs=200 over a form with 10, arch=dense after switching to DCGAN, and '(TrainConfig
    defaults)' after Clone."""
    at = app()
    at.button(key="home_train").click().run()  # Home's first run: dense-ema at 10 epochs
    assert _origin(at) == dash.plain("Preset dense-ema, with epochs=10 (preset 200).")
    _set(at, "arch", "dcgan")
    at.run()
    assert _origin(at) == dash.plain("Preset dense-ema, with arch=dcgan (preset dense), epochs=10 (preset 200).")
    at.switch_page("pages/compare.py").run()
    at.switch_page("pages/train.py").run()  # the picker's own state went with the page: it still names the preset
    assert at.selectbox(key="preset").value == "dense-ema" and dash.plain("arch=dcgan (preset dense)") in _origin(at)
    at.selectbox(key="preset").set_value("seed003-dcgan").run()
    assert _origin(at).startswith(dash.plain("Preset seed003-dcgan as it is: arch=dcgan,"))
    at.selectbox(key="preset").set_value(dash.DEFAULTS_LABEL).run()
    assert _origin(at) == dash.plain("Every field at its TrainConfig default.")
    _set(at, "lr_g", 0.001)
    at.run()
    assert _origin(at) == dash.plain("TrainConfig defaults, with lr_g=0.001 (default 0.0002).")

    run_id = store.submit(TrainConfig(epochs=3, arch="dcgan"), name="to clone", owner="ada")
    at.switch_page("pages/runs.py")
    at.query_params["run"] = str(run_id)
    at.run()
    at.button(key=f"clone-{run_id}").click().run()
    assert at.header[0].value == "Train a GAN"
    assert at.selectbox(key="preset").value == f"cloned: run #{run_id} to clone"  # not "(TrainConfig defaults)"
    assert _origin(at) == dash.plain(f"Filled from run #{run_id} to clone: every field is that run's config.")
    at.switch_page("pages/train.py").run()  # AppTest's next run() would rerun the Runs page that switched here
    _set(at, "epochs", 10)
    at.run()
    assert _origin(at) == dash.plain(f"Filled from run #{run_id} to clone, with epochs=10 (was 3).")
    at.selectbox(key="preset").set_value("dense-ema").run()  # a preset again: the clone is over
    assert _origin(at).startswith(dash.plain("Preset dense-ema as it is")) and "cloned_from" not in at.session_state


def test_sweeps_empty_state_leads_to_train_in_sweep_mode(home, store):
    at = app("pages/sweeps.py")
    assert any("No sweeps yet" in t for t in texts(at, "info")) and not at.error
    [b for b in at.button if b.label == "Go to Train"][0].click().run()
    assert at.header[0].value == "Train a GAN" and at.segmented_control(key="train_mode").value == "Sweep"
    assert at.text_area(key="sweep_params")  # the sweep panel is open


# --- issue 26: sweeps and runs at team scale -------------------------------------------------------------------
def _lr_sweep(store: Store, owner: str = "ada", points: int = 2) -> int:
    """A queued sweep of `points` learning rates (nothing trained), as the Train page queues one."""
    from gan_core.runs.sweep import SweepSpec, parse_param, plan
    base = TrainConfig(epochs=2, batch_size=64, train_subset=512, eval_samples=100)
    spec = SweepSpec(params=(parse_param("lr_g=" + ",".join(f"{i + 1}e-4" for i in range(points))),))
    planned = plan(base, spec)
    return store.submit_sweep("lr sweep", spec.to_dict(), base, [(r.point, r.config) for r in planned],
                              spec.points(), owner=owner)


def test_a_stopped_sweep_shows_words_not_none_and_resumes_as_one(home, store):
    sweep_id = _lr_sweep(store)
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
    lone = _lr_sweep(store, points=1)  # a newer sweep: the page opens on it, so pick this one in the URL
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
    older = _lr_sweep(store)
    emptied = _lr_sweep(store)  # newer, but its runs were deleted (the demo prunes old runs the same way)
    store.stop_sweep(emptied)
    for r in store.sweep_runs(emptied):
        store.soft_delete(r.id)
    at = app("pages/sweeps.py", user="ada")
    picker = at.selectbox(key="sweep_picker")
    assert picker.value == older and picker.options[0].endswith("no runs left")
    assert picker.options[1].endswith("· 2 runs") and at.dataframe


def _team(store: Store) -> dict[str, int]:
    """A team's runs: ada's two (one stopped, tagged), bob's one, and ada's 3-point sweep."""
    ids = {"a1": store.submit(TrainConfig(epochs=2), name="a1", owner="ada", tags="baseline"),
           "a2": store.submit(TrainConfig(epochs=2), name="a2", owner="ada"),
           "b1": store.submit(TrainConfig(epochs=2), name="b1", owner="bob", tags="baseline, dcgan")}
    store.request_stop(ids["a2"])
    ids["sweep"] = _lr_sweep(store, points=3)
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


@pytest.mark.parametrize("link", ["²", "١", "٣", "-1", "1e3", "+1", " 1", "9" * 30, str(2**63)])
def test_an_id_in_a_link_is_ascii_digits_or_names_nothing(home, store, link):
    """Issue 27: /sweeps?sweep=² raised (str.isdigit accepts '²', int() does not), and int() read '١' (an Arabic-
    Indic one) or ' 1' as run 1. Every page reads ?run= and ?sweep= one way (dash.parse_id)."""
    older = _lr_sweep(store, points=1)  # sweep 1 and run 1: what the odd spellings of 1 were read as
    newer = _lr_sweep(store, points=1)
    at = app("pages/sweeps.py", query={"sweep": link})
    assert at.selectbox(key="sweep_picker").value == newer != older  # the default sweep, not one the link names
    said = " ".join(w.value for w in at.warning)  # ... and says so (the walk-through saw it fall back silently)
    assert "which is not in the sweep list" in said and f"showing #{newer} instead" in said, said
    at.run()
    assert not any("not in the sweep list" in w.value for w in at.warning)  # said once; the URL names it now
    for page in ("pages/runs.py", "pages/samples.py"):
        at = app(page, query={"run": link})
        said = " ".join(w.value for w in at.warning)
        assert "which is not in the run list" in said, (page, said)
    at = app("pages/runs.py", query={"sweep": link})
    said = " ".join(w.value.replace("\\", "") for w in at.warning)
    assert "is not a sweep with runs here" in said, said


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


# --- issue 26: views that move by themselves; what a failed run says --------------------------------------------
def _fragment_periods(monkeypatch) -> list[tuple[str, float | None]]:
    """(function name, run_every) of every st.fragment a page sets up, in order. AppTest runs no fragment timers,
    so what a test can check is the period each live part of a page asked the browser for."""
    import streamlit
    real, seen = streamlit.fragment, []

    def recording(func=None, *, run_every=None, **kw):
        def wrap(f):
            seen.append((f.__name__, run_every))
            return real(f, run_every=run_every, **kw)
        return wrap(func) if func is not None else wrap
    monkeypatch.setattr(streamlit, "fragment", recording)
    return seen


def _grid_file(store, run, epoch: int) -> None:
    """A sample grid for `epoch`, written and recorded the way the worker's StoreSink does."""
    import numpy as np

    from gan_core.sampling import grid, png_bytes
    rel = f"{store.artifacts_dir(run).name}/samples/epoch-{epoch:04d}.png"
    (store.home / rel).parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((64, 28, 28), 40 * epoch, dtype=np.uint8)
    (store.home / rel).write_bytes(png_bytes(grid(pixels)))
    store.add_sample(run.id, epoch, 8 * epoch, rel)


def test_the_runs_table_polls_slowly_when_nothing_is_live_and_fast_when_a_run_is(home, store, monkeypatch):
    import ui
    done = store.submit(TrainConfig(epochs=2), name="done before", owner="ada")
    store.claim("w1", cap=1)
    store.finish(done, "done")
    periods = _fragment_periods(monkeypatch)
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


def test_samples_follows_a_live_runs_new_epochs(home, store, monkeypatch):
    import ui
    run_id = store.submit(TrainConfig(epochs=5), name="live", owner="ada")
    run = store.claim("w1", cap=1)
    for epoch in (1, 2):
        _grid_file(store, run, epoch)
    periods = _fragment_periods(monkeypatch)
    at = app("pages/samples.py", run_id=run_id)
    assert at.select_slider(key=f"sample_epoch-{run_id}").value == 2
    assert ("check", ui.LIVE_REFRESH_S) in periods  # the page re-reads the run's grids while it trains
    _grid_file(store, run, 3)  # the worker saves epoch 3
    at.run()
    assert at.select_slider(key=f"sample_epoch-{run_id}").value == 3  # on the newest, it follows the newest
    assert "epoch 3 · step 24" in at.image[0].captions[0]
    at.select_slider(key=f"sample_epoch-{run_id}").set_value(1).run()
    _grid_file(store, run, 4)
    at.run()
    assert at.select_slider(key=f"sample_epoch-{run_id}").value == 1  # an earlier epoch chosen stays chosen
    assert at.select_slider(key=f"sample_epoch-{run_id}").options[-1] == "4"
    store.finish(run_id, "done")
    periods.clear()
    at.run()
    assert ("check", ui.IDLE_REFRESH_S) in periods  # ended: only a slow look (it may be resumed elsewhere)


def test_compare_follows_the_newest_epoch_of_a_live_run(home, store, monkeypatch):
    import ui
    a = store.submit(TrainConfig(epochs=5), name="a", owner="ada")
    run_a = store.claim("w1", cap=1)
    b = store.submit(TrainConfig(epochs=5), name="b", owner="ada")
    run_b = store.claim("w1", cap=2)
    for epoch in (1, 2):
        _grid_file(store, run_a, epoch)
        _grid_file(store, run_b, epoch)
    periods = _fragment_periods(monkeypatch)
    at = app("pages/compare.py")
    assert at.select_slider(key="compare_epoch").value == 2 and ("check", ui.LIVE_REFRESH_S) in periods
    _grid_file(store, run_a, 3)
    at.run()
    assert at.select_slider(key="compare_epoch").value == 3
    assert sorted(i.captions[0].split(" · ")[-1] for i in at.image) == ["epoch 2 (its newest by 3)", "epoch 3"]
    assert {a, b} == set(at.multiselect(key="compare_runs").value)


def test_a_toast_when_one_of_my_runs_ends_on_any_page(home, store, monkeypatch):
    import ui
    mine = store.submit(TrainConfig(epochs=2), name="mine", owner="ada", owner_key="name:ada")
    theirs = store.submit(TrainConfig(epochs=2), name="theirs", owner="bob", owner_key="name:bob")
    store.claim("w1", cap=2)
    store.claim("w1", cap=2)
    periods = _fragment_periods(monkeypatch)
    at = app("pages/train.py", user="ada")
    assert not at.toast and ("_watch_my_runs", ui.LIVE_REFRESH_S) in periods  # ada has a live run: a close watch
    store.finish(theirs, "done")
    at.run()
    assert not at.toast  # someone else's run is not news to ada
    store.finish(mine, "failed", "refused before training: batch_size: 64 is larger than the 32 training images")
    periods.clear()
    at.run()
    (toast,) = at.toast
    assert toast.value.startswith(f"Run #{mine} mine failed: refused before training\\: batch\\_size") and \
        f"/runs?run={mine}" in toast.value
    assert ("_watch_my_runs", ui.IDLE_REFRESH_S) in periods  # nothing of ada's is live now: a slow watch
    at.run()
    assert not at.toast  # told once


def page_text(at: AppTest) -> str:
    """Every text of the page as its elements carry it: bodies, labels, help tooltips, options, captions."""
    def walk(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)
    return "\n".join(str(n.proto) for n in walk(at._tree) if getattr(n, "proto", None) is not None)


def no_data_here(monkeypatch, tmp_path) -> None:
    """No MNIST on this host (the README's deploy layout allows it): an empty GAN_DATA_DIR, no cache, no download."""
    (tmp_path / "no-data").mkdir()
    monkeypatch.setenv("GAN_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "no-cache"))
    monkeypatch.setenv("GAN_DATA_DOWNLOAD", "0")


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
    assert error == dash.plain(store.get(run_id).error) and "Error:" not in error
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
    assert " ".join(error.split()) == dash.plain("could not load the training data: mnist train data not found. "
                                                 "Looked in: raw raw and **gan_studio.db** [see](x)")  # not markdown


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


def test_a_stopped_sweeps_board_still_looks_now_and_then(home, store, monkeypatch):
    """Issue 26 §3: a sweep's board polled only while a run was live when the page loaded, so a sweep resumed from
    another tab or the CLI stood still here until a reload."""
    import ui
    sweep_id = _lr_sweep(store)
    store.stop_sweep(sweep_id)
    periods = _fragment_periods(monkeypatch)
    at = app("pages/sweeps.py", user="ada")
    assert ("board", ui.IDLE_REFRESH_S) in periods and not at.exception
    store.resume_sweep(sweep_id, [r.id for r in store.sweep_runs(sweep_id)])
    periods.clear()
    at.run()
    assert ("board", 3.0) in periods  # live again: the board follows its runs closely


def test_the_toast_survives_the_runs_pages_own_rerun_when_my_run_ends(home, store):
    """Issue 26 walk-through: on the Runs page (where Start leads) the toast never showed: the table and live view
    rerun the whole page when a run ends, and that full run dropped the toast the sidebar's watcher had just shown."""
    mine = store.submit(TrainConfig(epochs=2), name="mine", owner="ada", owner_key="name:ada")
    store.claim("w1", cap=1)
    at = app("pages/runs.py", run_id=mine, user="ada")
    assert not at.toast
    store.finish(mine, "done")
    at.run()
    (toast,) = at.toast
    assert toast.value.startswith(f"Run #{mine} mine finished") and not at.exception
    at.run()
    assert not at.toast  # told once


@pytest.mark.parametrize("link", ["999999", "-1'", "abc"])
def test_a_link_to_a_run_that_is_not_there_says_so_instead_of_showing_another(home, store, link):
    """Issue 26 walk-through: /runs?run=999999 (a deleted run's shared link, or a typo) quietly showed run #N as if
    the link had named it."""
    kept = store.submit(TrainConfig(epochs=2), name="kept", owner="ada")
    for page in ("pages/runs.py", "pages/samples.py"):
        at = app(page, query={"run": link})
        said = " ".join(w.value for w in at.warning)
        assert "which is not in the run list" in said and f"showing #{kept} instead" in said, (page, said)
        at.run()
        assert not any("not in the run list" in w.value for w in at.warning)  # said once; the URL names #kept now


# --- issue 27: the runs table is paged on the server; an idle tab polls one small read -------------------------
def test_the_runs_page_reads_one_page_of_a_big_store_and_pages_to_its_last_run(home, store, monkeypatch):
    from conftest import many_runs
    from gan_core.web import dashboard as dash
    from gan_core.runs import store as store_module
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
    assert "260 runs; showing 1–50." in texts(at, "caption") and dash.PAGE_SIZE == 50
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


def test_the_other_pages_pickers_offer_the_newest_runs_and_the_linked_one_not_every_row(home, store, monkeypatch):
    import ui
    from conftest import many_runs
    ids = many_runs(store, 30)
    monkeypatch.setattr(ui, "RECENT_RUNS", 10, raising=False)
    for page in ("pages/samples.py", "pages/generate.py"):
        at = app(page, run_id=ids[0])  # a link to the oldest run
        if page == "pages/generate.py":
            at.radio(key="gen_source").set_value("a run").run()
        options = at.selectbox(key="run_picker").options
        assert len(options) == 11 and options[-1].startswith(f"#{ids[0]} ") and options[0].startswith(f"#{ids[-1]} ")
    at = app("pages/compare.py")
    assert len(at.multiselect(key="compare_runs").options) == 10
