import dataclasses
import json

import pytest

from gan_core.config import PRESETS, ConfigError, TrainConfig, coerce_value


def test_defaults_are_valid_and_json_round_trips():
    cfg = TrainConfig()
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert json.loads(cfg.to_json())["g_widths"] == [256, 512, 1024]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips(name):
    cfg = TrainConfig.from_preset(name)
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_presets_follow_the_seeds():
    s0 = TrainConfig.from_preset("seed000-dense")
    assert (s0.g_widths, s0.d_widths, s0.latent_dim, s0.lr_g, s0.beta1, s0.batch_size) == (
        (256, 512, 1024), (512, 256), 128, 2e-4, 0.5, 128)
    s2 = TrainConfig.from_preset("seed002-dense")
    assert (s2.g_widths, s2.label_smoothing, s2.lr_d, s2.noise, s2.latent_dim, s2.batch_size) == (
        (128,), 0.1, 2e-3, "uniform", 100, 100)
    s3 = TrainConfig.from_preset("seed003-dcgan")
    assert (s3.arch, s3.lr_g, s3.batch_size, s3.latent_dim, s3.epochs) == ("dcgan", 1e-4, 256, 100, 50)
    s4 = TrainConfig.from_preset("seed004-dense")
    assert (s4.d_widths, s4.d_dropout, s4.init_std, 1 - s4.label_smoothing, s4.latent_dim) == (
        (1024, 512, 256), 0.3, 0.02, 0.9, 100)
    # The shipped dense-mnist's recipe is seed 000's with only dropout in D, an EMA of G and its length changed.
    assert TrainConfig.from_preset("dense-ema") == s0.replace(d_dropout=0.3, g_ema=0.999, epochs=200)
    # Every preset runs the precision "auto" picks: bf16 only where the hardware has it (emulated, 5× slower).
    assert {TrainConfig.from_preset(name).precision for name in PRESETS} == {"auto"}


BAD = [
    ("arch", "resnet", "arch: 'resnet' is not one of dense, dcgan"),
    ("dataset", "cifar", "dataset: 'cifar' is not one of mnist, fashion_mnist"),
    ("latent_dim", 0, "latent_dim: 0 is out of range; allowed 1 to 1024"),
    ("latent_dim", 2.5, "latent_dim: expected a whole number, got 2.5"),
    ("g_widths", (), "g_widths: expected a non-empty list"),
    ("d_widths", (512, -1), "d_widths: (512, -1) is out of range"),
    ("width_mult", 9.0, "width_mult: 9.0 is out of range; allowed 0.125 to 4"),
    ("loss", "mse", "loss: 'mse' is not one of"),
    ("label_smoothing", 0.7, "label_smoothing: 0.7 is out of range; allowed 0 to 0.5"),
    ("lr_g", 0.0, "lr_g: 0.0 is out of range"),
    ("lr_d", float("nan"), "lr_d: expected a number, got nan"),
    ("beta1", 1.0, "beta1: 1.0 is out of range"),
    ("batch_size", 0, "batch_size: 0 is out of range; allowed 1 to 8192"),
    ("epochs", -3, "epochs: -3 is out of range"),
    ("n_critic", 0, "n_critic: 0 is out of range"),
    ("device", "tpu", "device: 'tpu' is not one of auto, cpu, cuda"),
    ("precision", "fp8", "precision: 'fp8' is not one of auto, fp32, bf16"),
    ("compile", "yes please", "compile: expected true or false"),
    ("seed", True, "seed: expected a whole number, got True"),
    ("sample_every", 0, "sample_every: 0 is out of range"),
    ("checkpoint_every", 0, "checkpoint_every: 0 is out of range"),
    ("eval_samples", 1, "eval_samples: a Fréchet distance needs a covariance of many samples; use 0 (off) or at "
                        "least 100, got 1"),
]


@pytest.mark.parametrize("field,value,message", BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_each_bad_field_names_field_value_and_range(field, value, message):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**{field: value})
    assert message in str(e.value)


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="gp_weight: wgan_gp needs a gradient penalty"):
        TrainConfig(loss="wgan_gp")
    with pytest.raises(ConfigError, match="label_smoothing: only the BCE losses"):
        TrainConfig(loss="hinge", label_smoothing=0.1)
    with pytest.raises(ConfigError, match="train_subset: 10 images make no full batch"):
        TrainConfig(train_subset=10)
    with pytest.raises(ConfigError, match="info_code: a conditional run is already told the class"):
        TrainConfig(conditional=True, info_code=True)
    with pytest.raises(ConfigError, match="latent_dim must be at least 10, got 8"):
        TrainConfig(info_code=True, latent_dim=8)


def test_stored_configs_of_earlier_versions_stay_readable():
    # eval_samples 1..99 were accepted before the bound: a stored run or checkpoint header with one still loads.
    old = {**TrainConfig().to_dict(), "eval_samples": 50}
    assert TrainConfig.from_json(json.dumps(old)).eval_samples == 100
    assert TrainConfig.from_stored(old).eval_samples == 100
    with pytest.raises(ConfigError, match="eval_samples"):  # ...but new input with it is refused
        TrainConfig.from_dict(old)


@pytest.mark.parametrize("field,value", [
    ("eval_samples", "abc"), ("eval_samples", ["x"]), ("eval_samples", None), ("eval_samples", {"n": 1}),
    ("eval_samples", 50.5), ("eval_samples", True), ("n_critic", "abc"), ("n_critic", []), ("n_critic", None)])
def test_a_damaged_stored_value_is_a_config_error_naming_the_field(field, value):
    # No version ever stored these, so there is no "nearest allowed value" to move them to: refused in words,
    # never a TypeError from comparing a string or a list with a number (which the store's callers do not catch).
    row = {**TrainConfig().to_dict(), field: value}
    with pytest.raises(ConfigError, match=f"^{field}: expected a whole number"):
        TrainConfig.from_stored(row)
    with pytest.raises(ConfigError, match=f"^{field}: expected a whole number"):
        TrainConfig.from_json(json.dumps(row))


@pytest.mark.parametrize("text", ["[]", "[1, 2]", '"abc"', "5", "null"])
def test_a_stored_config_that_is_no_json_object_is_a_config_error(text):
    with pytest.raises(ConfigError, match="stored config: expected a JSON object"):
        TrainConfig.from_json(text)


@pytest.mark.parametrize("field,value,loaded", [
    ("eval_samples", "50", 100), ("eval_samples", 50.0, 100), ("eval_samples", "60000", 10_000),
    ("eval_samples", "0", 0), ("n_critic", "30", 10), ("n_critic", 20.0, 10), ("n_critic", "5", 5)])
def test_old_values_in_other_spellings_are_moved_like_the_numbers_they_stand_for(field, value, loaded):
    # from_dict reads "50" and 50.0 as 50; from_stored must too, before moving old values into today's bounds.
    assert getattr(TrainConfig.from_stored({**TrainConfig().to_dict(), field: value}), field) == loaded


def test_unknown_field_and_preset_are_refused():
    with pytest.raises(ConfigError, match="unknown config field.*lr_gen"):
        TrainConfig.from_dict({"lr_gen": 1e-3})
    with pytest.raises(ConfigError, match="unknown preset 'seed999'"):
        TrainConfig.from_preset("seed999")


def test_strings_from_forms_and_flags_are_coerced():
    assert coerce_value("g_widths", "64, 128") == (64, 128)
    assert coerce_value("lr_g", "1e-3") == 1e-3
    assert coerce_value("epochs", "7") == 7
    assert coerce_value("compile", "true") is True
    cfg = TrainConfig.from_dict({"g_widths": [32], "lr_g": 1})  # JSON gives lists and ints
    assert cfg.g_widths == (32,) and cfg.lr_g == 1.0


def test_frozen_and_replace_validates():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]
    assert cfg.replace(epochs=3).epochs == 3
    with pytest.raises(ConfigError, match="epochs"):
        cfg.replace(epochs=0)


def test_incompatible_configs_are_named():
    a = TrainConfig()
    assert a.incompatible_with(a.replace(epochs=99, lr_g=1e-3)) == []
    problems = a.incompatible_with(a.replace(arch="dcgan", latent_dim=64))
    assert any(p.startswith("arch:") for p in problems) and any(p.startswith("latent_dim:") for p in problems)


def test_every_field_has_a_label_and_well_formed_form_metadata():
    from gan_core.config import config_fields
    fields = {f.name: f for f in config_fields()}
    labels = [f.metadata["label"] for f in fields.values()]
    assert all(labels) and len(set(labels)) == len(labels)  # a name people read, one per field
    assert all(label != name for label, name in zip(labels, fields) if name not in ("dataset", "device"))
    for f in fields.values():
        for other, allowed in (f.metadata["applies"] or {}).items():
            assert other in fields and other != f.name and allowed
            choices = fields[other].metadata["choices"] or (True, False)
            assert set(allowed) <= set(choices), (f.name, other, allowed)
    basic = {n for n, f in fields.items() if f.metadata["basic"]}
    assert {"arch", "epochs", "batch_size", "lr_g"} <= basic and not any(fields[n].metadata["applies"] for n in basic)


# --- issue 29: packing and the mode-seeking term ----------------------------------------------------------------------
@pytest.mark.parametrize("over,message", [
    ({"pack": 3}, "pack: D judges packs of 3 images, so batch_size must be a multiple of pack; got batch_size 128 "
                  "with pack 3"),
    ({"pack": 9}, "pack: 9 is out of range; allowed 1 to 8"),
    ({"pack": 0}, "pack: 0 is out of range; allowed 1 to 8"),
    ({"pack": 2, "info_code": True}, "pack: InfoGAN's Q head reads the code of one image"),
    ({"mode_seeking": 10.5}, "mode_seeking: 10.5 is out of range; allowed 0 to 10"),
    ({"mode_seeking": -1.0}, "mode_seeking: -1.0 is out of range; allowed 0 to 10"),
    ({"mode_seeking": 1.0, "batch_size": 127}, "mode_seeking: the term pairs the first half .* batch_size must be "
                                               "even; got 127"),
])
def test_pack_and_mode_seeking_refusals_name_the_field(over, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**over)


def test_pack_and_mode_seeking_default_off_travel_as_json_and_pack_blocks_resume():
    cfg = TrainConfig()
    assert (cfg.pack, cfg.mode_seeking) == (1, 0.0)
    on = TrainConfig.from_dict({"pack": "4", "mode_seeking": "0.5"})  # the CLI's and the form's spellings
    assert (on.pack, on.mode_seeking) == (4, 0.5) and TrainConfig.from_json(on.to_json()) == on
    assert TrainConfig.from_stored({"arch": "dense"}).pack == 1  # rows and headers from before these fields
    assert on.incompatible_with(cfg) == ["pack: checkpoint has 1, config has 4"]  # D's first layer differs
    assert cfg.replace(mode_seeking=1.0).incompatible_with(cfg) == []  # a loss weight: resume may change it
