"""The Train form: widget specs from TrainConfig's metadata, form values <-> config, which fields apply, the origin
caption and the values a loss expects beside it (gan_core.web.forms)."""
import re

import pytest

from gan_core.config import PRESETS, TrainConfig, config_fields
from gan_core.web import forms, text


def test_every_field_has_a_spec_with_metadata_bounds():
    specs = {s.name: s for s in forms.field_specs()}
    assert list(specs) == [f.name for f in config_fields()]
    assert specs["arch"].kind == "select" and specs["arch"].choices == ("dense", "dcgan")
    assert specs["compile"].kind == "bool"
    assert specs["g_widths"].kind == "list" and specs["g_widths"].max == 8192
    assert (specs["batch_size"].kind, specs["batch_size"].min, specs["batch_size"].max) == ("int", 1, 8192)
    assert specs["lr_g"].kind == "float" and specs["lr_g"].format == "%.2e" and specs["lr_g"].step == 1e-5
    assert all(s.help for s in specs.values())
    grouped = forms.specs_by_group()
    known = [g for g in grouped if g in forms.GROUPS]
    assert list(grouped)[:len(known)] == known == [g for g in forms.GROUPS if g in grouped]
    names = [s.name for g in grouped.values() for s in g] + [s.name for s in forms.basic_specs()]
    assert sorted(names + list(forms.TOP_FIELDS)) == sorted(specs)
    assert [s.name for s in forms.basic_specs()] == ["conditional", "loss", "lr_g", "lr_d", "batch_size", "epochs",
                                                    "train_subset"]
    assert specs["lr_g"].label == "Learning rate of G" and specs["lr_g"].tooltip.endswith("(`lr_g`)")
    assert "Allowed 1e-07 to 1." in specs["lr_g"].tooltip
    assert "Used with arch dcgan." in specs["width_mult"].tooltip
    assert "Used with info_code on." in specs["info_weight"].tooltip
    assert specs["g_ema"].format == "%.6g" and "%.6g" % 0.99999 == "0.99999"  # no allowed value shown rounded


@pytest.mark.parametrize("preset", [None, *PRESETS])
def test_form_values_round_trip_to_the_preset(preset):
    values = forms.form_values(preset)
    want = TrainConfig.from_preset(preset) if preset else TrainConfig()
    assert forms.form_problems(values) == (want, [])
    assert isinstance(values["g_widths"], str)


def test_the_first_problem_names_the_bad_field():
    values = forms.form_values(None)
    for bad, named in (({**values, "train_subset": 10}, "train_subset"),
                       ({**values, "d_widths": " "}, "d_widths: empty"),
                       ({k: v for k, v in values.items() if k != "epochs"}, "epochs: missing")):
        cfg, problems = forms.form_problems(bad)
        assert cfg is None and re.search(named, problems[0][1]), problems


def test_form_problems_names_every_bad_field_with_trainconfigs_message():
    values = forms.form_values(None)
    cfg, problems = forms.form_problems(values)
    assert cfg == TrainConfig() and problems == []
    cfg, problems = forms.form_problems({**values, "epochs": 0, "lr_g": -0.001, "batch_size": None})
    assert cfg is None and problems == [
        ("lr_g", "lr_g: -0.001 is out of range; allowed 1e-07 to 1"),
        ("batch_size", "batch_size: empty; enter a value"),
        ("epochs", "epochs: 0 is out of range; allowed 1 to 10000")]
    _, problems = forms.form_problems({**values, "loss": "wgan_gp"})  # each alone is fine: the rule between them
    assert problems == [("gp_weight", "gp_weight: wgan_gp needs a gradient penalty, got 0; set gp_weight > 0 (10 "
                                      "is usual)")]
    assert forms.problem_markdown(*problems[0]) == ("**Gradient penalty weight \\(λ\\)** (`gp_weight`): wgan\\_gp "
                                                   "needs a gradient penalty, got 0; set gp\\_weight \\> 0 \\(10 is "
                                                   "usual\\)")
    assert forms.problem_markdown("run_tags", "tags: 'a b' is not a tag").startswith("**Tags**: 'a b' is not a tag")
    assert forms.problem_markdown("", "demo limit: too big") == text.plain("demo limit: too big")


@pytest.mark.parametrize("changes,shown,hidden", [
    ({}, {"g_widths", "d_widths", "label_smoothing"}, {"width_mult", "d_batchnorm", "gp_weight", "n_critic",
                                                       "info_weight"}),
    ({"arch": "dcgan"}, {"width_mult", "d_batchnorm"}, {"g_widths", "d_widths"}),
    ({"loss": "wgan_gp", "gp_weight": 10.0}, {"gp_weight", "n_critic"}, {"label_smoothing"}),
    ({"loss": "hinge"}, {"gp_weight", "n_critic"}, {"label_smoothing"}),
    ({"loss": "minimax"}, {"label_smoothing"}, {"gp_weight", "n_critic"}),
    ({"info_code": True}, {"info_weight"}, set()),
    ({"n_critic": 5}, {"n_critic"}, {"gp_weight"}),  # a changed value is never hidden: it is queued
    ({"arch": "dcgan", "g_widths": "64"}, {"g_widths"}, {"d_widths"}),
])
def test_fields_apply_per_arch_loss_and_code(changes, shown, hidden):
    values = {**forms.form_values(None), **changes}
    gone = set(forms.hidden_names(values))
    assert not shown & gone and hidden <= gone
    every = {s.name for g in forms.specs_by_group(values).values() for s in g}
    assert not every & gone and set(forms.specs_by_group(values)) == set(forms.specs_by_group())


def test_a_field_named_by_a_problem_is_shown():
    values = {**forms.form_values("seed002-dense"), "loss": "hinge"}
    _, problems = forms.form_problems(values)
    assert problems[0][0] == "label_smoothing"
    assert "label_smoothing" not in forms.hidden_names(values, problems)


@pytest.mark.parametrize("preset", forms.preset_names())
def test_every_loss_picked_on_every_preset_leaves_a_valid_form(preset):
    """Picking wgan_gp or hinge must not leave the form invalid (gp_weight 0, label smoothing 0.1)."""
    from gan_core.config import LOSS_NAMES

    for loss in LOSS_NAMES:
        values = forms.form_values(preset)
        changes = forms.loss_companions(values["loss"], loss, values)
        values.update({name: new for name, (_, new) in changes.items()}, loss=loss)
        assert forms.form_problems(values)[1] == [], (preset, loss, changes)


def test_the_origin_caption_is_made_from_the_form():
    values = forms.form_values("seed003-dcgan")
    assert forms.form_origin(values, "seed003-dcgan").startswith("Preset seed003-dcgan as it is: arch=dcgan")
    values.update(epochs=10, g_widths="64, 128")  # a hidden field changed counts too: it is queued
    assert forms.form_origin(values, "seed003-dcgan") == (
        "Preset seed003-dcgan, with g_widths=64, 128 (preset 256, 512, 1024), epochs=10 (preset 50).")
    values.update(lr_g=None, seed=3, beta2=0.9)
    assert forms.form_origin(values, "seed003-dcgan", limit=2).endswith("and 3 more changes.")
    assert "lr_g=– (preset 0.0001)" in forms.form_origin(values, "seed003-dcgan")  # an emptied box
    assert forms.form_origin(forms.form_values(None), forms.DEFAULTS_LABEL) == "Every field at its TrainConfig default."
