"""The Train form, from TrainConfig's own field metadata: a widget spec per field, which fields apply, form values
<-> config with TrainConfig's messages per field, where the values came from, the values a loss expects beside it,
and the form's Sweep mode."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from ..config import LOSS_COMPANIONS, PRESETS, ConfigError, TrainConfig, check_field, coerce_value, config_fields
from .text import plain

GROUPS = ("model", "data", "loss", "optimizer", "training", "performance")
GROUP_TITLES = {"model": "Model", "data": "Data", "loss": "Loss", "optimizer": "Optimizer",
                "training": "Training", "performance": "Performance"}
TOP_FIELDS = ("arch", "dataset")  # shown above the grouped expanders
DEFAULTS_LABEL = "(TrainConfig defaults)"


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """How one TrainConfig field is drawn as a widget: kind, bounds, step, format, choices, help, group, and for
    people: label (with unit), basic (always visible) and applies ((other field, allowed values) pairs, all must
    hold; empty: always applies)."""
    name: str
    kind: str  # "select" | "bool" | "int" | "float" | "list"
    group: str
    help: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    format: str | None = None
    choices: tuple[str, ...] = ()
    label: str = ""
    basic: bool = False
    applies: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    default: Any = None

    @property
    def tooltip(self) -> str:
        """The widget's help: the field's help, its range, when it applies, and its name (as in the CLI and JSON)."""
        parts = [self.help]
        if self.kind == "list":
            parts.append(f"Comma-separated, each {self.min:g} to {self.max:g}.")
        elif self.kind in ("int", "float"):
            parts.append(f"Allowed {self.min:g} to {self.max:g}.")
        if self.applies:
            parts.append("Used with " + " and ".join(f"{k} {' or '.join(map(_word, v))}" for k, v in self.applies)
                         + ".")
        return " ".join(parts) + f" (`{self.name}`)"


def _word(v: Any) -> str:
    return ("on" if v else "off") if isinstance(v, bool) else str(v)


def field_specs() -> list[FieldSpec]:
    """One FieldSpec per TrainConfig field, in declaration order, from the fields' own metadata."""
    specs = []
    for f in config_fields():
        meta, default = f.metadata, cast(Any, f.default)  # every TrainConfig field has a plain default
        common = dict(name=f.name, group=meta["group"], help=meta["help"], label=meta.get("label") or f.name,
                      basic=bool(meta.get("basic")), applies=tuple((meta.get("applies") or {}).items()),
                      default=_form_value(default))
        if meta.get("choices"):
            specs.append(FieldSpec(kind="select", choices=tuple(meta["choices"]), **common))
        elif isinstance(default, bool):
            specs.append(FieldSpec(kind="bool", **common))
        elif isinstance(default, tuple):
            specs.append(FieldSpec(kind="list", min=meta["min"], max=meta["max"], **common))
        elif isinstance(default, int):
            specs.append(FieldSpec(kind="int", min=meta["min"], max=meta["max"], step=1, format="%d", **common))
        else:
            specs.append(FieldSpec(kind="float", min=float(meta["min"]), max=float(meta["max"]),
                                   step=_float_step(f.name, default), format=_float_format(f.name), **common))
    return specs


def _float_step(name: str, default: float) -> float:
    """Arrow-key step of a float input: learning rates move by 1e-5, the rest by 0.01 (or 0.125 for width)."""
    if name.startswith("lr_"):
        return 1e-5
    if name == "width_mult":
        return 0.125
    if name in ("beta1", "beta2"):
        return 0.001
    return 0.01 if default < 10 else 1.0


def _float_format(name: str) -> str:
    """printf format of a float input: learning rates in scientific notation, the rest with enough digits that no
    allowed value is shown rounded (g_ema's 0.99999 read "1" with 4 digits)."""
    return "%.2e" if name.startswith("lr_") else "%.6g"


def specs_by_group(values: Mapping[str, Any] | None = None,
                   problems: Sequence[tuple[str, str]] = ()) -> dict[str, list[FieldSpec]]:
    """The advanced (not `basic`) field specs, grouped by metadata['group']: GROUPS order first, then any group a
    newer TrainConfig adds, in declaration order. With the form's `values`, only the fields `shown` for them; every
    group that has advanced fields is kept, empty or not, so the page's expanders stay where they are."""
    out: dict[str, list[FieldSpec]] = {g: [] for g in GROUPS}
    for s in field_specs():
        if s.basic or s.name in TOP_FIELDS:
            continue
        out.setdefault(s.group, [])
        if values is None or shown(s, values, problems):
            out[s.group].append(s)
    groups = {s.group for s in field_specs() if not s.basic and s.name not in TOP_FIELDS}
    return {g: v for g, v in out.items() if g in groups}


def basic_specs() -> list[FieldSpec]:
    """The always-visible fields below the top row (arch, dataset), in declaration order."""
    return [s for s in field_specs() if s.basic and s.name not in TOP_FIELDS]


def applies(spec: FieldSpec, values: Mapping[str, Any]) -> bool:
    """Whether the field matters for the form's current values (its metadata's `applies`)."""
    for other, allowed in spec.applies:
        try:
            v = coerce_value(other, values.get(other))
        except ConfigError:
            return False
        if v not in allowed:
            return False
    return True


def shown(spec: FieldSpec, values: Mapping[str, Any], problems: Sequence[tuple[str, str]] = ()) -> bool:
    """A field is on the form when it applies, when its value differs from the default (a hidden value is still
    queued, so a changed one is never hidden), or when a problem names it (so it can be fixed)."""
    if applies(spec, values) or any(name == spec.name for name, _ in problems):
        return True
    try:
        return coerce_value(spec.name, values.get(spec.name)) != coerce_value(spec.name, spec.default)
    except ConfigError:
        return True


def hidden_names(values: Mapping[str, Any], problems: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The fields the form leaves out for these values (they keep their values, at the defaults)."""
    return [s.name for s in field_specs() if not shown(s, values, problems)]


def label_of(name: str) -> str:
    """A field's label for people ('Learning rate of G'), or the name itself for anything that is not a field."""
    return _LABELS.get(name, name)


_LABELS = {f.name: f.metadata.get("label") or f.name for f in config_fields()}


def preset_names() -> list[str]:
    """The preset picker's options: the plain defaults first, then every seed recipe."""
    return [DEFAULTS_LABEL, *PRESETS]


def _form_value(v: Any) -> Any:
    return ", ".join(map(str, v)) if isinstance(v, tuple) else v


def form_values(preset: str | None = None, cfg: TrainConfig | None = None) -> dict[str, Any]:
    """Widget values for a preset (or the defaults, or a given config: "Clone"): lists become '256, 512' text,
    everything else as is."""
    if cfg is None:
        cfg = TrainConfig() if preset in (None, "", DEFAULTS_LABEL) else TrainConfig.from_preset(preset)
    return {k: _form_value(v) for k, v in dataclasses.asdict(cfg).items()}


def form_problems(values: Mapping[str, Any]) -> tuple[TrainConfig | None, list[tuple[str, str]]]:
    """The form's values checked as TrainConfig checks them: (config, []) when valid, else (None, [(field, TrainConfig's
    message), ...]) for every field that is bad on its own (empty, wrong type, out of range), or, when each is fine
    alone, the first rule between fields that fails. A number field may be empty (None) in the browser."""
    problems: list[tuple[str, str]] = []
    data: dict[str, Any] = {}
    for f in config_fields():
        if f.name not in values:
            problems.append((f.name, f"{f.name}: missing from the form"))
            continue
        v = values[f.name]
        if v is None or (isinstance(v, str) and not v.strip()):
            problems.append((f.name, f"{f.name}: empty; enter a value"))
            continue
        v = coerce_value(f.name, v)
        try:
            check_field(f, v)
        except ConfigError as e:
            problems.append((f.name, str(e)))
            continue
        data[f.name] = v
    if problems:
        return None, problems
    try:
        return TrainConfig(**data), []
    except ConfigError as e:
        return None, [(problem_field(str(e)), str(e))]


def problem_field(message: str) -> str:
    """The field a ConfigError message names ('epochs: 0 is out of range' -> 'epochs'), or '' if none."""
    head = message.split(":", 1)[0].strip()
    return head if head in _LABELS else ""


def run_text_problems(name: str, tags: str, description: str) -> list[tuple[str, str]]:
    """The run's name, tags and description checked as the store will check them when the run is queued."""
    from ..runs.store import MAX_DESCRIPTION, MAX_NAME, clean_tags, clean_text
    problems = []
    for field, check in (("run_name", lambda: clean_text(name or "", "name", MAX_NAME)),
                         ("run_tags", lambda: clean_tags(tags or "")),
                         ("run_description", lambda: clean_text(description or "", "description", MAX_DESCRIPTION))):
        try:
            check()
        except ConfigError as e:
            problems.append((field, str(e)))
    return problems


RUN_TEXT_LABELS = {"run_name": "Run name", "run_tags": "Tags", "run_description": "Description"}


def problem_markdown(field: str, message: str) -> str:
    """One problem as a markdown line for the Check panel: the field's label, its name, and TrainConfig's (or the
    store's) message with the field prefix dropped; the message is escaped (it may quote typed text)."""
    label = RUN_TEXT_LABELS.get(field) or label_of(field)
    head, sep, rest = message.partition(":")
    why = rest.strip() if sep else message
    if field in RUN_TEXT_LABELS or not field:
        return f"**{plain(label)}**: {plain(why)}" if field else plain(message)
    return f"**{plain(label)}** (`{field}`): {plain(why)}"


def preset_summary(preset: str) -> str:
    """What a preset changes relative to the defaults, as 'field=value' text."""
    if preset in PRESETS:
        items = PRESETS[preset].items()
        return ", ".join(f"{k}={', '.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in items)
    return "every field at its TrainConfig default"


def _shown_value(name: str, v: Any) -> str:
    """A form value as the origin caption writes it: lists '256, 512', numbers shortest ('0.0001'), empty '–'."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return "–"
    try:
        v = coerce_value(name, v)
    except ConfigError:
        return str(v)
    if isinstance(v, tuple):
        return ", ".join(map(str, v))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def form_changes(values: Mapping[str, Any], base: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(field, form's value, base's value) for each field whose form value differs from `base` (a preset's, the
    defaults', a cloned run's form values), in declaration order; values as the caption writes them."""
    out = []
    for f in config_fields():
        now, was = _shown_value(f.name, values.get(f.name)), _shown_value(f.name, base.get(f.name))
        if now != was:
            out.append((f.name, now, was))
    return out


def form_origin(values: Mapping[str, Any], preset: str | None = None,
                cloned: tuple[str, Mapping[str, Any]] | None = None, limit: int = 4) -> str:
    """The caption under the Check panel: where the form's values came from and how the form differs from it now,
    from the values themselves ('Preset seed003-dcgan, with epochs=10 (preset 50)'), never a fixed text. `cloned`
    is (what was cloned, its form values); otherwise `preset` (a preset_names() entry). Plain text."""
    if cloned is not None:
        head, base, word = f"Filled from {cloned[0]}", cloned[1], "was"
    elif preset in PRESETS:
        head, base, word = f"Preset {preset}", form_values(preset), "preset"
    else:
        head, base, word = "TrainConfig defaults", form_values(None), "default"
    changes = form_changes(values, base)
    if not changes:
        if cloned is not None:
            return f"{head}: every field is that run's config."
        return (f"{head} as it is: {preset_summary(preset)}" if preset in PRESETS
                else "Every field at its TrainConfig default.")
    shown = [f"{name}={now} ({word} {was})" for name, now, was in changes[:limit]]
    more = len(changes) - limit
    tail = f" and {more} more change{'s' * (more != 1)}" if more > 0 else ""
    return f"{head}, with " + ", ".join(shown) + tail + "."


def loss_companions(old_loss: str, new_loss: str, values: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{field: (value now, value to set)} for the fields the form sets beside a newly picked loss
    (config.LOSS_COMPANIONS): each where TrainConfig would refuse the value with the new loss, where it is still at
    its TrainConfig default (gp_weight 0 for wgan_gp), or where it holds what another loss's companions set (n_critic
    5 after wgan_gp, also by way of hinge). A value the person chose themselves (gp_weight 5 under wgan_gp) is kept."""
    if old_loss == new_loss:
        return {}
    want = LOSS_COMPANIONS.get(new_loss, {})
    out = {}
    for name, target in want.items():
        raw = values.get(name)
        try:
            now = coerce_value(name, raw)
            TrainConfig(**{**want, "loss": new_loss, name: now})  # this value beside the new loss and its companions
            refused = False
        except (ConfigError, TypeError):
            refused, now = True, raw  # TrainConfig refuses it with this loss (or it is empty or malformed)
        if now == target:
            continue
        default = TrainConfig.__dataclass_fields__[name].default
        others = {c[name] for loss, c in LOSS_COMPANIONS.items() if loss != new_loss and name in c}
        if refused or now == default or now in others:
            out[name] = (raw, target)
    return out


def companions_note(loss: str, changes: Mapping[str, tuple[Any, Any]]) -> str:
    """The visible note after loss_companions set values: which fields, from what to what, and where they are."""
    parts = [f"**{plain(label_of(name))}** (`{name}`) {plain(_shown_value(name, was))} → "
             f"{plain(_shown_value(name, now))}" for name, (was, now) in changes.items()]
    groups = sorted({GROUP_TITLES.get(_GROUP[name], _GROUP[name]) for name in changes})
    return (f"Loss **{plain(loss)}**: the form also set " + ", ".join(parts) + ", the values this loss expects "
            f"(under Advanced → {' and '.join(groups)}; change them there).")


_GROUP = {f.name: f.metadata["group"] for f in config_fields()}


def sweep_plan(cfg: TrainConfig | None, params_text: str, mode: str, draws: int | None, seeds: int | None,
               prune: Literal["none", "median", "asha"], grace: int | None) -> tuple[Any, list[Any], list[str]]:
    """The Train page's Sweep mode: (spec, planned runs, []) for what the form says over base `cfg`, or (None, [],
    [problems]) naming each thing to fix. One swept field per line of `params_text` (sweep.parse_param)."""
    from ..runs.sweep import SweepSpec, parse_param, plan

    lines = [ln.strip() for ln in (params_text or "").splitlines() if ln.strip() and not ln.strip().startswith("#")]
    problems: list[str] = []
    params = []
    for ln in lines:
        try:
            params.append(parse_param(ln))
        except ConfigError as e:
            problems.append(str(e))
    if not lines:
        problems.append("sweep: write at least one field to sweep, one a line, e.g. lr_g=1e-4,2e-4")
    if cfg is None:
        problems.append("the base config above has problems: fix them first")
    if problems or cfg is None:
        return None, [], problems
    try:
        spec = SweepSpec(params=tuple(params), mode="random" if mode == "random" else "grid",
                         draws=(draws or 0) if mode == "random" else 0, seeds=seeds or 1, prune=prune,
                         grace=grace or 1)
        return spec, plan(cfg, spec), []
    except ConfigError as e:
        return None, [], [str(e)]
