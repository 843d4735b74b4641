"""Train: the config form, its live checks, presets, demo limits, sweep mode and Start."""
from __future__ import annotations

import conftest
import pytest
from streamlit.testing.v1 import AppTest

from gan_core.config import TrainConfig
from gan_core.web import forms, text

from .pages import app, texts

pytestmark = conftest.sqlite_only  # the pages are the subject, not the database


# --- the form and its live checks -----------------------------------------------------------------------------------
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
    hidden = set(forms.hidden_names(forms.form_values(None)))
    assert set(shown) == {f.name for f in config_fields()} - hidden
    assert {"width_mult", "d_batchnorm", "gp_weight", "n_critic", "info_weight"} <= hidden  # not for dense + NS
    specs = {s.name: s for s in forms.field_specs()}
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
    label = forms.label_of(field)
    assert errors and f"**{text.plain(label)}** (`{field}`): {text.plain(why)}" in errors[0], errors
    assert not at.success  # no "Valid" beside it
    assert at.button(key="start").disabled  # AppTest, like a browser, cannot click it
    _set(at, field, forms.form_values(None)[field])
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
    assert errors and f"**Tags**: {text.plain(why)}" in errors[0], errors
    assert not at.success and at.button(key="start").disabled
    at.text_input(key=key).set_value("baseline, dcgan").run()
    assert not _check_errors(at) and not at.button(key="start").disabled


def test_run_name_and_description_limits_are_checked_live():
    assert forms.run_text_problems("x" * 201, "", "") == [("run_name", "name: 201 characters is too long; allowed "
                                                                     "up to 200")]
    assert forms.run_text_problems("ok", "a, b", "d" * 2001)[0][0] == "run_description"
    assert forms.run_text_problems("ok", "a, b", "fine") == []


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
    (forms.DEFAULTS_LABEL, "wgan_gp", {"gp_weight": 10.0, "n_critic": 5}),  # gp_weight 0: refused with wgan_gp
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
    ("pack", 3, "pack: D judges packs of 3 images, so batch_size must be a multiple of pack; got batch_size 128 "
                "with pack 3"),
])
def test_bad_values_show_the_config_error_and_queue_nothing(home, store, field, value, message):
    at = app("pages/train.py")
    _set(at, field, value)
    at.run()
    why = text.plain(message.split(": ", 1)[1])  # shown escaped: the message may quote what was typed
    assert any(f"(`{field}`): {why}" in t for t in _check_errors(at)), texts(at, "error")
    assert at.button(key="start").disabled
    assert not at.exception


def test_the_remedies_packing_and_mode_seeking_are_in_the_form_and_checked(home, store):
    at = app("pages/train.py")
    shown = _widgets(at)
    assert shown["pack"].label == "Packing: samples D judges at once (PacGAN)" and shown["pack"].value == 1
    assert shown["mode_seeking"].label == "Mode-seeking weight (λ, 0 = off)" and shown["mode_seeking"].value == 0.0
    _set(at, "pack", 2)
    _set(at, "mode_seeking", 1.0)
    at.run()
    assert not _check_errors(at) and not at.button(key="start").disabled
    _set(at, "pack", 9)
    at.run()
    assert any("(`pack`): 9 is out of range; allowed 1 to 8" in t for t in _check_errors(at)), texts(at, "error")
    assert at.button(key="start").disabled


def test_cross_field_rule_wgan_gp_needs_gp_weight(home, store):
    at = app("pages/train.py")
    _set(at, "loss", "wgan_gp")
    at.run()
    _set(at, "gp_weight", 0.0)  # the form set 10 beside wgan_gp; typed back to 0, TrainConfig's rule still holds
    at.run()
    assert any(text.plain("wgan_gp needs a gradient penalty") in t and "(`gp_weight`)" in t
               for t in _check_errors(at))
    assert at.button(key="start").disabled


# --- presets, clones and Start --------------------------------------------------------------------------------------
def test_preset_fills_the_form(home, store):
    at = app("pages/train.py")
    at.selectbox(key="preset").set_value("seed003-dcgan").run()
    assert _value(at, "arch") == "dcgan" and _value(at, "batch_size") == 256 and _value(at, "lr_g") == 1e-4
    at.selectbox(key="preset").set_value("seed002-dense").run()
    assert _value(at, "g_widths") == "128" and _value(at, "noise") == "uniform"


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
    at.button(key="home_train").click().run()  # Home's first run: quick-start as it is
    assert _origin(at).startswith(text.plain("Preset quick-start as it is: "))
    _set(at, "arch", "dcgan")
    _set(at, "epochs", 3)
    at.run()
    assert _origin(at) == text.plain("Preset quick-start, with arch=dcgan (preset dense), epochs=3 (preset 2).")
    at.switch_page("pages/compare.py").run()
    at.switch_page("pages/train.py").run()  # the picker's own state went with the page: it still names the preset
    assert at.selectbox(key="preset").value == "quick-start" and text.plain("arch=dcgan (preset dense)") in _origin(at)
    at.selectbox(key="preset").set_value("seed003-dcgan").run()
    assert _origin(at).startswith(text.plain("Preset seed003-dcgan as it is: arch=dcgan,"))
    at.selectbox(key="preset").set_value(forms.DEFAULTS_LABEL).run()
    assert _origin(at) == text.plain("Every field at its TrainConfig default.")
    _set(at, "lr_g", 0.001)
    at.run()
    assert _origin(at) == text.plain("TrainConfig defaults, with lr_g=0.001 (default 0.0002).")

    run_id = store.submit(TrainConfig(epochs=3, arch="dcgan"), name="to clone", owner="ada")
    at.switch_page("pages/runs.py")
    at.query_params["run"] = str(run_id)
    at.run()
    at.button(key=f"clone-{run_id}").click().run()
    assert at.header[0].value == "Train a GAN"
    assert at.selectbox(key="preset").value == f"cloned: run #{run_id} to clone"  # not "(TrainConfig defaults)"
    assert _origin(at) == text.plain(f"Filled from run #{run_id} to clone: every field is that run's config.")
    at.switch_page("pages/train.py").run()  # AppTest's next run() would rerun the Runs page that switched here
    _set(at, "epochs", 10)
    at.run()
    assert _origin(at) == text.plain(f"Filled from run #{run_id} to clone, with epochs=10 (was 3).")
    at.selectbox(key="preset").set_value("quick-start").run()  # a preset again: the clone is over
    assert _origin(at).startswith(text.plain("Preset quick-start as it is")) and "cloned_from" not in at.session_state


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
    for name, value in forms.form_values(cfg=cfg).items():
        if value != _value(at, name):
            _set(at, name, value)  # every field tiny() changes is on the form for a dense GAN
            assert name in shown
    at.run()
    line = estimate_line(at)
    assert line.startswith("≈ ") and f"as run \\#{run_id} trained" in line and "2nd in queue" in line, line


# --- demo mode ------------------------------------------------------------------------------------------------------
def test_demo_mode_caps_the_form_and_hides_delete(home, store, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_MODE", "1")
    monkeypatch.setenv("GAN_DEMO_MAX_EPOCHS", "2")
    at = app("pages/train.py", user="ada")
    assert any("Demo limits" in t for t in texts(at, "info"))
    _set(at, "epochs", 3)
    at.run()
    assert any(text.plain("demo limit: epochs 3 is more than the 2") in t for t in texts(at, "error"))
    assert at.button(key="start").disabled  # policy.submit would refuse it on the server side too
    assert store.list_runs() == []
    run_id = store.submit(TrainConfig(epochs=2), name="mine", owner="ada")
    store.request_stop(run_id)
    at = app("pages/runs.py", run_id=run_id, user="ada")
    assert not [b for b in at.button if b.key == f"delete-{run_id}"]  # destructive actions hidden on the demo


def test_the_demo_form_opens_on_a_run_the_demo_accepts(home, store, monkeypatch):
    """Issue 27 walk-through: the demo's Train form opened on 20 epochs (TrainConfig's default) against a cap of 5,
    so a stranger's first sight was "Fix this before starting" and a disabled Start; Home promised 10 epochs.
    Issue 30: the demo's form opens on quick-start, the recipe that draws digits within the caps."""
    monkeypatch.setenv("GAN_DEMO_MODE", "1")
    at = app("pages/train.py", user="ada")
    assert at.selectbox(key="preset").value == "quick-start" and not texts(at, "error")
    assert (at.number_input(key="cfg.epochs").value, at.number_input(key="cfg.max_steps").value) == (2, 1500)
    assert not at.button(key="start").disabled
    monkeypatch.setenv("GAN_DEMO_MAX_EPOCHS", "1")  # a demo with tighter caps than the preset's
    at = app("pages/train.py", user="ada")
    assert at.number_input(key="cfg.epochs").value == 1 and not texts(at, "error")
    at.selectbox(key="preset").set_value("seed003-dcgan").run()  # a preset of 50 epochs, lowered too
    assert (at.number_input(key="cfg.epochs").value == 1
            and text.plain("epochs=1 (preset 50)") in " ".join(texts(at, "caption")))
    at = app(None, user="ada")  # Home: its promise and its button fit the demo (one epoch: 937 of the 1,500 steps)
    assert any("for 937 steps" in t for t in texts(at, "markdown")), texts(at, "markdown")
    at.button(key="home_train").click().run()
    assert at.session_state["train_form"]["epochs"] == 1
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
    assert any(text.plain("more than the 2 GB a run this demo allows (GAN_DEMO_MAX_RUN_MEMORY_GB)") in t
               for t in texts(at, "error"))
    assert at.button(key="start").disabled
    _set(at, "batch_size", 64)
    at.run()
    assert not texts(at, "error") and not at.button(key="start").disabled
    at.session_state["cfg.compile"] = True  # ticked before (a Clone of a team run): it can be unticked, and says why
    at.run()
    assert not at.checkbox(key="cfg.compile").disabled and at.button(key="start").disabled
    assert any(text.plain("torch.compile is off on this demo") in t for t in texts(at, "error")), texts(at, "error")
    monkeypatch.setenv("GAN_DEMO_MODE", "0")
    assert not app("pages/train.py", user="ada").checkbox(key="cfg.compile").disabled  # a team may compile
    assert store.list_runs() == []


# --- sweep mode -----------------------------------------------------------------------------------------------------
def test_train_sweep_mode_shows_the_points_and_queues_the_sweep_or_nothing(home, store):
    at = app("pages/train.py", user="ada")
    at.segmented_control(key="train_mode").set_value("Sweep").run()
    at.text_area(key="sweep_params").set_value("lr_g=1e-4,7").run()  # 7 is out of range: the sweep is refused
    shown = [e.value.replace("\\", "") for e in at.error]  # user text is markdown-escaped (text.plain)
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
