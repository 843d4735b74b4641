"""TrainConfig: the one description of a training run, and the seed tutorials' recipes as presets.

Every field carries its own help text and bounds in `metadata`; the dashboard form, the CLI flags, the checkpoint
header and the stored run row are all generated from this class, so a default lives in exactly one place.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

ARCHS = ("dense", "dcgan")
DATASETS = ("mnist", "fashion_mnist")
LOSS_NAMES = ("non_saturating", "minimax", "lsgan", "hinge", "wgan_gp")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
NOISES = ("normal", "uniform")
BCE_LOSSES = ("non_saturating", "minimax")  # D's output read as a probability: label smoothing applies
CRITIC_LOSSES = ("hinge", "wgan_gp")  # D as an unbounded critic: several D steps per G step and a penalty are usual
# What a user of a loss expects beside it; the form sets these when the loss is picked (web.forms.loss_companions).
# TrainConfig refuses label smoothing with a loss that is not BCE and wgan_gp without a penalty; n_critic 5 and
# λ = 10 are WGAN-GP's recipe (Gulrajani et al. 2017). The other losses' entries take a critic's values back.
LOSS_COMPANIONS: dict[str, dict[str, Any]] = {
    "non_saturating": {"gp_weight": 0.0, "n_critic": 1},
    "minimax": {"gp_weight": 0.0, "n_critic": 1},
    "lsgan": {"label_smoothing": 0.0, "gp_weight": 0.0, "n_critic": 1},
    "hinge": {"label_smoothing": 0.0},
    "wgan_gp": {"label_smoothing": 0.0, "gp_weight": 10.0, "n_critic": 5},
}
MIN_EVAL_SAMPLES = 100  # fewer make the feature covariance of the Fréchet distance meaningless (1 gives NaN)

# Changing any of these makes old weights or optimizer state meaningless, so resume refuses it.
ARCH_FIELDS = (
    "arch", "dataset", "conditional", "latent_dim", "noise", "g_widths", "d_widths", "width_mult", "leaky_slope",
    "d_dropout", "d_batchnorm", "spectral_norm", "info_code", "pack")


class ConfigError(ValueError):
    """A config value a person must fix; the message names the field, the bad value and what is allowed."""


def _f(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
       choices: tuple[str, ...] | None = None, group: str = "training", max_len: int | None = None,
       label: str = "", basic: bool = False, applies: dict[str, tuple[Any, ...]] | None = None) -> Any:
    """A dataclass field whose metadata drives validation, the UI form and the CLI flag (`max_len`: list fields).

    For people (the form, CLI help): `label` is the name they read, with its unit; `basic` puts the field in the
    form's always-visible part; `applies` says when the field matters, as {other field: allowed values} (all must
    hold; None: always), e.g. {"arch": ("dcgan",)}. The form hides a field that does not apply unless its value
    differs from the default; hidden fields keep their values and are validated and queued as they are."""
    return field(default=default, metadata={"help": help, "min": lo, "max": hi, "choices": choices, "group": group,
                                            "max_len": max_len, "label": label, "basic": basic,
                                            "applies": applies})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run does. Frozen: change it with `replace`."""

    arch: Literal["dense", "dcgan"] = _f("dense", "Model family: fully connected (seeds 000/002/004) or DCGAN "
                                         "(seed 003).", choices=ARCHS, group="model", label="Architecture", basic=True)
    dataset: Literal["mnist", "fashion_mnist"] = _f("mnist", "Training images: MNIST digits or Fashion-MNIST.",
                                                     choices=DATASETS, group="data", label="Dataset", basic=True)
    conditional: bool = _f(False, "Class-conditional: G takes the class to draw, D judges (image, class) pairs "
                                  "with a projection head; Generate then lets you pick the class.", group="model",
                                  label="Class-conditional", basic=True)
    latent_dim: int = _f(128, "Size of the noise vector z fed to the generator.", lo=1, hi=1024, group="model",
                         label="Noise size (z dimensions)")
    noise: Literal["normal", "uniform"] = _f("normal", "Distribution of z: N(0, 1) or U(-1, 1) (seed 002).",
                                             choices=NOISES, group="model", label="Noise distribution")
    g_widths: tuple[int, ...] = _f((256, 512, 1024), "Dense generator hidden layer widths, input side first.",
                                   lo=1, hi=8192, group="model", max_len=8,
                                   label="Generator layer widths (units)", applies={"arch": ("dense",)})
    d_widths: tuple[int, ...] = _f((512, 256), "Dense discriminator hidden layer widths, input side first.",
                                   lo=1, hi=8192, group="model", max_len=8,
                                   label="Discriminator layer widths (units)", applies={"arch": ("dense",)})
    width_mult: float = _f(1.0, "DCGAN channel multiplier (1.0 = seed 003's 256/128/64 channels).",
                           lo=0.125, hi=4.0, group="model",
                           label="DCGAN width multiplier (×)", applies={"arch": ("dcgan",)})
    leaky_slope: float = _f(0.2, "Negative slope of the LeakyReLU activations.", lo=0.0, hi=1.0, group="model",
                            label="LeakyReLU slope")
    d_dropout: float = _f(0.0, "Dropout after each discriminator hidden layer (seed 004 uses 0.3).",
                          lo=0.0, hi=0.9, group="model", label="Dropout in D (fraction)")
    d_batchnorm: bool = _f(True, "DCGAN discriminator: BatchNorm after each conv, as seed 003 (dense D has none).",
                           group="model", label="BatchNorm in D", applies={"arch": ("dcgan",)})
    spectral_norm: bool = _f(False, "Spectral norm on every discriminator weight (Miyato et al. 2018): bounds D's "
                             "slope, a common cure for collapse.", group="model", label="Spectral norm in D")
    info_code: bool = _f(False, "InfoGAN (Chen et al. 2016) without labels: a 10-way code read from z picks G's "
                         "mode and a Q head on D must recover it, which pushes G to split the data into sharp, "
                         "distinct modes (on MNIST: the digits).", group="model", label="InfoGAN code (10 modes)")
    info_weight: float = _f(1.0, "Weight λ of InfoGAN's code-recovery loss, added to both D's and G's loss "
                            "(used when info_code is on).", lo=0.0, hi=100.0, group="loss",
                            label="InfoGAN loss weight (λ)", applies={"info_code": (True,)})
    pack: int = _f(1, "PacGAN (Lin et al. 2018): D judges this many samples at once, all real or all generated, "
                   "so a G that draws few styles is caught by the packs' lack of variety; 1 = an ordinary D. Only "
                   "D's first layer grows; batch_size must be a multiple of it.", lo=1, hi=8, group="model",
                   label="Packing: samples D judges at once (PacGAN)",
                   applies={"info_code": (False,)})
    mode_seeking: float = _f(0.0, "MSGAN's mode-seeking term (Mao et al. 2019) with this weight λ: G's loss gains "
                             "λ / (d_images / d_noise + 1e-5) for pairs of noise vectors with the same class, so G "
                             "is rewarded when different noise gives different images (0 = off; 1 is the paper's).",
                             lo=0.0, hi=10.0, group="loss", label="Mode-seeking weight (λ, 0 = off)")
    init_std: float = _f(0.0, "Initialise weights from N(0, init_std); 0 keeps PyTorch's default init.",
                         lo=0.0, hi=1.0, group="model", label="Initial weight std (0 = default)")
    loss: str = _f("non_saturating", "GAN objective.", choices=LOSS_NAMES, group="loss",
                   label="Loss function", basic=True)
    label_smoothing: float = _f(0.0, "One-sided label smoothing: real label = 1 - value (BCE losses only).",
                                lo=0.0, hi=0.5, group="loss",
                                label="Label smoothing (1 − real label)", applies={"loss": BCE_LOSSES})
    gp_weight: float = _f(0.0, "Gradient penalty weight λ (seed 003's formula); wgan_gp needs it > 0.",
                          lo=0.0, hi=1000.0, group="loss",
                          label="Gradient penalty weight (λ)", applies={"loss": CRITIC_LOSSES})
    n_critic: int = _f(1, "Discriminator steps per generator step (WGAN-GP uses 5).", lo=1, hi=10, group="loss",
                       label="D steps per G step", applies={"loss": CRITIC_LOSSES})
    g_ema: float = _f(0.0, "Keep an exponential moving average of G's weights with this decay and use it for "
                      "samples, scores and exports (0 = off; 0.999 is usual).", lo=0.0, hi=0.99999,
                      group="optimizer", label="EMA decay of G (0 = off)")
    lr_g: float = _f(2e-4, "Generator Adam learning rate.", lo=1e-7, hi=1.0, group="optimizer",
                     label="Learning rate of G", basic=True)
    lr_d: float = _f(2e-4, "Discriminator Adam learning rate.", lo=1e-7, hi=1.0, group="optimizer",
                     label="Learning rate of D", basic=True)
    beta1: float = _f(0.5, "Adam β1.", lo=0.0, hi=0.999, group="optimizer", label="Adam β1")
    beta2: float = _f(0.999, "Adam β2.", lo=0.0, hi=0.9999, group="optimizer", label="Adam β2")
    batch_size: int = _f(128, "Images per batch.", lo=1, hi=8192, group="training",
                         label="Batch size (images)", basic=True)
    epochs: int = _f(20, "Passes over the training set.", lo=1, hi=10000, group="training", label="Epochs",
                     basic=True)
    max_steps: int = _f(0, "Stop after this many steps in total (0 = no limit).", lo=0, hi=10_000_000,
                        group="training", label="Step limit (steps, 0 = none)")
    train_subset: int = _f(0, "Train on the first N images only (0 = all); for quick tries.", lo=0,
                           hi=10_000_000, group="data", label="Training images (0 = all)", basic=True)
    seed: int = _f(0, "Random seed: same seed, config and device give the same run.", lo=0, hi=2**31 - 1,
                   group="training", label="Random seed")
    device: Literal["auto", "cpu", "cuda"] = _f("auto", "Where to train; auto picks CUDA when present.",
                                                choices=DEVICES, group="performance", label="Device")
    precision: Literal["auto", "fp32", "bf16"] = _f("auto", "bf16 autocast runs matmuls/convs in bfloat16; auto "
                                                    "uses it where the hardware has bf16 units (CUDA with bf16, "
                                                    "CPUs with AVX-512 BF16 or AMX), fp32 elsewhere.",
                                            choices=PRECISIONS, group="performance", label="Precision")
    compile: bool = _f(False, "torch.compile the models (slow first steps, faster after).", group="performance",
                       label="torch.compile")
    cuda_graph: bool = _f(True, "On CUDA, record the whole training step once as a CUDA graph and replay it: one "
                          "launch per step instead of hundreds (no effect on CPU or with torch.compile).",
                          group="performance", label="CUDA graph",
                          applies={"device": ("auto", "cuda"), "compile": (False,)})
    log_every: int = _f(10, "Report step metrics every N steps (the only host syncs in the loop).", lo=1,
                        hi=100_000, group="performance", label="Log every (steps)")
    eval_samples: int = _f(2000, "Samples scored by the quality classifier after each epoch (0 = off); the real "
                           "floor uses at most the 10,000 test images.", lo=0, hi=10_000, group="quality",
                           label="Quality samples per epoch (0 = off)")
    early_stop_patience: int = _f(0, "Stop when the Fréchet distance has not improved for this many epochs (0 = "
                                  "never); the best epoch's generator is kept as best-generator.safetensors either "
                                  "way. Needs quality scoring on.", lo=0, hi=10_000, group="quality",
                                  label="Stop after epochs without improvement (0 = never)")
    sample_every: int = _f(1, "Save a fixed-noise sample grid every N epochs.", lo=1, hi=10000, group="training",
                           label="Sample grid every (epochs)")
    checkpoint_every: int = _f(1, "Write a resumable checkpoint every N epochs.", lo=1, hi=10000,
                               group="training", label="Checkpoint every (epochs)")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_field(f, getattr(self, f.name))
        if self.loss == "wgan_gp" and self.gp_weight <= 0:
            raise ConfigError("gp_weight: wgan_gp needs a gradient penalty, got 0; set gp_weight > 0 (10 is usual)")
        if self.label_smoothing and self.loss not in ("non_saturating", "minimax"):
            raise ConfigError(f"label_smoothing: only the BCE losses (non_saturating, minimax) use it, "
                              f"got {self.label_smoothing} with loss={self.loss}; set it to 0")
        if self.info_code and self.conditional:
            raise ConfigError("info_code: a conditional run is already told the class; turn one of conditional "
                              "and info_code off")
        if self.info_code and self.latent_dim < 10:
            raise ConfigError(f"info_code: the code is read from the first 10 entries of z; latent_dim must be at "
                              f"least 10, got {self.latent_dim}")
        if self.batch_size % self.pack:
            raise ConfigError(f"pack: D judges packs of {self.pack} images, so batch_size must be a multiple of "
                              f"pack; got batch_size {self.batch_size} with pack {self.pack}")
        if self.pack > 1 and self.info_code:
            raise ConfigError(f"pack: InfoGAN's Q head reads the code of one image, and a packed D sees "
                              f"{self.pack} at once; use pack 1 with info_code, or turn info_code off")
        if self.mode_seeking and self.batch_size % 2:
            raise ConfigError(f"mode_seeking: the term pairs the first half of the generated batch with the second, "
                              f"so batch_size must be even; got {self.batch_size}")
        if 0 < self.eval_samples < MIN_EVAL_SAMPLES:
            raise ConfigError(f"eval_samples: a Fréchet distance needs a covariance of many samples; use 0 (off) or "
                              f"at least {MIN_EVAL_SAMPLES}, got {self.eval_samples}")
        if self.early_stop_patience and not self.eval_samples:
            raise ConfigError(f"early_stop_patience: stopping when the Fréchet distance stops improving needs it "
                              f"measured; set eval_samples ≥ {MIN_EVAL_SAMPLES} or early_stop_patience 0")
        if self.train_subset and self.train_subset < self.batch_size:
            raise ConfigError(f"train_subset: {self.train_subset} images make no full batch of "
                              f"{self.batch_size}; use 0 (all) or at least batch_size")

    # --- conversions -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_json(self) -> str:
        """JSON text of `to_dict`, keys sorted so equal configs give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, refusing unknown keys with a message that lists the known ones."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return cls(**{k: _coerce(known[k], v) for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Inverse of `to_json`, for stored records (see `from_stored`)."""
        return cls.from_stored(json.loads(text))

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> TrainConfig:
        """A config written by this or an earlier version (run rows, checkpoint headers): values that earlier
        versions accepted and this one refuses are moved to the nearest allowed value, so old runs stay readable.
        Anything no version accepted (a damaged row or header: "abc" or a list where a number belongs, a config
        that is not a JSON object) is a ConfigError naming the field, never a TypeError."""
        if not isinstance(data, dict):
            raise ConfigError(f"stored config: expected a JSON object of fields, got {type(data).__name__}")
        # The same spellings from_dict takes ("50", 50.0), so the moves below see the number they stand for.
        data = {k: _coerce(_FIELDS[k], v) if k in _FIELDS else v for k, v in data.items()}
        eval_samples = data.get("eval_samples")
        if _is_int(eval_samples) and 0 < eval_samples < MIN_EVAL_SAMPLES:  # 1..99: stored rows may hold them
            data["eval_samples"] = MIN_EVAL_SAMPLES
        for name in ("eval_samples", "n_critic"):  # stored rows may exceed today's upper bounds: clamp to them
            hi = _FIELDS[name].metadata["max"]
            if _is_int(data.get(name)) and data[name] > hi:
                data[name] = hi
        return cls.from_dict(data)  # any other bad value: from_dict's ConfigError, naming field and value

    @staticmethod
    def most(name: str) -> Any:
        """The largest value field `name` accepts (its metadata's max)."""
        return _FIELDS[name].metadata["max"]

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """A seed recipe by name, with any field overridden."""
        if name not in PRESETS:
            raise ConfigError(f"preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **{k: _coerce(_FIELDS[k], v) for k, v in changes.items()})

    def incompatible_with(self, other: TrainConfig) -> list[str]:
        """Fields that differ in ways a checkpoint of `other` cannot be resumed under (empty = compatible)."""
        return [f"{k}: checkpoint has {getattr(other, k)!r}, config has {getattr(self, k)!r}"
                for k in ARCH_FIELDS if getattr(self, k) != getattr(other, k)]


def check_field(f: dataclasses.Field, value: Any) -> None:
    """Raise ConfigError if `value` breaks the type, choices or bounds in the field's metadata."""
    meta, name = f.metadata, f.name
    want = type(f.default)
    if want is tuple:
        if not isinstance(value, tuple) or not value or not all(_is_int(v) for v in value):
            raise ConfigError(f"{name}: expected a non-empty list of whole numbers like 256,512, got {value!r}")
        if len(value) > meta["max_len"]:
            raise ConfigError(f"{name}: {len(value)} layers is too many; allowed 1 to {meta['max_len']}")
        items = value
    elif want is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return
    elif want is int:
        if not _is_int(value):
            raise ConfigError(f"{name}: expected a whole number, got {value!r}")
        items = (value,)
    elif want is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        items = (value,)
    else:
        if value not in meta["choices"]:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(meta['choices'])}")
        return
    lo, hi = meta["min"], meta["max"]
    for v in items:
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(f"{name}: {value!r} is out of range; allowed {lo:g} to {hi:g}")


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """Turn JSON/CLI/form spellings into the field's type; leave anything odd for validation to reject."""
    want = type(f.default)
    if want is tuple:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return tuple(int(p) for p in parts)
            except ValueError:
                return value
        if isinstance(value, list):
            return tuple(value)
        return value
    if want is float and _is_int(value):
        return float(value)
    if want is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if want is int and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    if want is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if want is bool and isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    return value


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def config_fields() -> list[dataclasses.Field]:
    """The fields in declaration order, for generating forms and flags."""
    return list(dataclasses.fields(TrainConfig))


def coerce_value(name: str, value: Any) -> Any:
    """Public form of the type coercion, for the CLI and the dashboard form."""
    if name not in _FIELDS:
        raise ConfigError(f"unknown config field {name!r}")
    return _coerce(_FIELDS[name], value)


# The seed tutorials' recipes. Only what differs from the TrainConfig defaults is written down.
# 000 Keras dense GAN: G 256-512-1024-784 tanh, D 512-256-1, LeakyReLU 0.2, latent 128, Adam 2e-4 β1 0.5.
_SEED000 = dict(arch="dense", latent_dim=128, g_widths=(256, 512, 1024), d_widths=(512, 256), leaky_slope=0.2,
                lr_g=2e-4, lr_d=2e-4, beta1=0.5, batch_size=128)
# Seed 003's shapes at half width with the field's cures for its collapse: no BatchNorm but spectral norm in D
# (Miyato et al. 2018), Adam 2e-4 β1 0.5 (DCGAN paper), batch 128, an EMA of G's weights for samples. Precision is
# the default "auto" for every preset: bf16 where it is native, fp32 where bf16 would be emulated (5× slower).
_DCGAN_SN = dict(arch="dcgan", latent_dim=100, width_mult=0.5, d_batchnorm=False, spectral_norm=True, lr_g=2e-4,
                 lr_d=2e-4, beta1=0.5, batch_size=128, g_ema=0.999, epochs=30)

QUICK_START = "quick-start"  # Home's "Train your first GAN" and the demo's Train form open on it
PRESETS: dict[str, dict[str, Any]] = {
    "seed000-dense": _SEED000,
    # 002 TF1 dense GAN: one hidden layer of 128 (leak 0.01), smoothing 0.1, Adam 2e-3 (TF defaults β1 0.9),
    # z ~ U(-1, 1) of size 100, batch 100.
    "seed002-dense": dict(arch="dense", latent_dim=100, noise="uniform", g_widths=(128,), d_widths=(128,),
                          leaky_slope=0.01, label_smoothing=0.1, lr_g=2e-3, lr_d=2e-3, beta1=0.9,
                          batch_size=100),
    # 003 TF DCGAN: Dense 7·7·256 → ConvT 128 → ConvT 64 → ConvT 1, BCE from logits, Adam 1e-4 (Keras defaults
    # β1 0.9), batch 256, noise 100, 50 epochs; Keras LeakyReLU's default slope is 0.3.
    "seed003-dcgan": dict(arch="dcgan", latent_dim=100, leaky_slope=0.3, lr_g=1e-4, lr_d=1e-4, beta1=0.9,
                          batch_size=256, epochs=50),
    # 004 Keras GAN with tqdm: G 256-512-1024, D 1024-512-256 with dropout 0.3, init N(0, 0.02), real label 0.9,
    # latent 100, Adam 2e-4 β1 0.5, batch 128.
    "seed004-dense": dict(arch="dense", latent_dim=100, g_widths=(256, 512, 1024), d_widths=(1024, 512, 256),
                          d_dropout=0.3, init_std=0.02, label_smoothing=0.1, leaky_slope=0.2, lr_g=2e-4,
                          lr_d=2e-4, beta1=0.5, batch_size=128),
    # The shipped Fashion-MNIST DCGAN was trained with it (README, BENCHMARKS.md).
    "dcgan-sn": _DCGAN_SN,
    # The same, class-conditional (label map into G, projection D): the shipped "draw a 7" generator.
    "dcgan-sn-conditional": {**_DCGAN_SN, "conditional": True},
    # dcgan-sn plus InfoGAN's code (no labels): G picks one of ten modes from z, which cuts the ambiguous in-between
    # digits; the best unconditional MNIST DCGAN shipped (BENCHMARKS.md).
    "dcgan-sn-info": {**_DCGAN_SN, "info_code": True, "epochs": 60},
    # Seed 000's dense GAN with seed 004's dropout 0.3 in D and an EMA of G: the shipped unconditional dense-mnist.
    # Dropout keeps D from memorising, which kept the class shares even and FD falling for 200 epochs where the
    # dropout-free base got worse after 60 (BENCHMARKS.md).
    "dense-ema": {**_SEED000, "d_dropout": 0.3, "g_ema": 0.999, "epochs": 200},
    # Seed 000's dense shapes and recipe, class-conditional, with an EMA of G: the shipped dense generator that meets
    # the dense targets (BENCHMARKS.md).
    "dense-conditional": {**_SEED000, "conditional": True, "g_ema": 0.999, "epochs": 60},
    # A first run that shows digits within a minute on a two-core CPU, inside the demo's caps: seed 000's dense
    # shapes told the class (so every digit is drawn from the start), 5× seed 000's learning rates with batch 64
    # (twice the steps a second), and an EMA of G (0.995; in 1,500 steps its warm-up ramp keeps it at about the
    # last tenth of the run) that follows a G moving this fast. The sweep that found it and its scores are in
    # BENCHMARKS.md ("A first run in a minute").
    QUICK_START: {**_SEED000, "conditional": True, "lr_g": 1e-3, "lr_d": 1e-3, "batch_size": 64, "g_ema": 0.995,
                  "epochs": 2, "max_steps": 1500},
    # WGAN-GP on the DCGAN shapes (seed 003's gradient penalty section), n_critic 5 as in Gulrajani et al.
    "dcgan-wgan-gp": dict(arch="dcgan", latent_dim=100, loss="wgan_gp", gp_weight=10.0, n_critic=5,
                          lr_g=1e-4, lr_d=1e-4, beta1=0.5, beta2=0.9, batch_size=64),
}


def steps_per_epoch(cfg: TrainConfig, n_images: int = 60_000) -> int:
    """Full batches in one epoch."""
    return max(1, (cfg.train_subset or n_images) // cfg.batch_size)


def planned_steps(cfg: TrainConfig, n_images: int = 60_000) -> int:
    """Steps the run will take: epochs × full batches, capped by max_steps."""
    total = cfg.epochs * steps_per_epoch(cfg, n_images)
    return min(total, cfg.max_steps) if cfg.max_steps else total


def capped_by_max_steps(cfg: TrainConfig, n_images: int = 60_000) -> bool:
    """Whether max_steps, not the epochs, ends the run."""
    return bool(cfg.max_steps) and cfg.max_steps < cfg.epochs * steps_per_epoch(cfg, n_images)


def extended(cfg: TrainConfig, extra_epochs: int = 0, extra_steps: int = 0) -> TrainConfig:
    """The config of a run resumed for more: epochs + extra_epochs; max_steps + extra_steps (only where max_steps
    is set), with enough epochs that they do not end it first."""
    cfg = cfg.replace(epochs=cfg.epochs + extra_epochs)
    if extra_steps and cfg.max_steps:
        steps = cfg.max_steps + extra_steps
        cfg = cfg.replace(max_steps=steps, epochs=max(cfg.epochs, -(-steps // steps_per_epoch(cfg))))
    elif extra_steps:
        raise ConfigError("this run has no max_steps to raise; add epochs instead")
    return cfg
