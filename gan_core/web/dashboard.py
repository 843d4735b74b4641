"""What the dashboard pages compute, without Streamlit: form specs from TrainConfig metadata, form values ↔
config, ETA, run tables, config diffs, sample progressions. Pages only lay these out, so all of it is testable here.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import os
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from ..config import (LOSS_COMPANIONS, MIN_EVAL_SAMPLES, PRESETS, ConfigError, TrainConfig, _check_field,
                     capped_by_max_steps, coerce_value, config_fields, planned_steps, steps_per_epoch)
from ..events import redact_paths
from ..sampling import gif_bytes
from ..runs.status import ACTIVE, LIVE, RunStatus
from ..runs.store import RunView, RunWhere, Store, SweepView

log = logging.getLogger(__name__)
GROUPS = ("model", "data", "loss", "optimizer", "training", "performance")
GROUP_TITLES = {"model": "Model", "data": "Data", "loss": "Loss", "optimizer": "Optimizer",
                "training": "Training", "performance": "Performance"}
TOP_FIELDS = ("arch", "dataset")  # shown above the grouped expanders
DEFAULTS_LABEL = "(TrainConfig defaults)"
STATUS_ICONS = {RunStatus.QUEUED: ":material/schedule:", RunStatus.RUNNING: ":material/play_circle:",
                RunStatus.STOPPING: ":material/pause_circle:", RunStatus.STOPPED: ":material/stop_circle:",
                RunStatus.DONE: ":material/check_circle:", RunStatus.FAILED: ":material/error:",
                RunStatus.INTERRUPTED: ":material/warning:",
                RunStatus.PRUNED: ":material/content_cut:"}  # StrEnum keys: a plain status string finds its icon


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
        meta, default = f.metadata, f.default
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
            _check_field(f, v)
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


def config_from_form(values: Mapping[str, Any]) -> TrainConfig:
    """Validate the form's values into a TrainConfig; raises ConfigError naming the first bad field."""
    cfg, problems = form_problems(values)
    if problems:
        raise ConfigError(problems[0][1])
    return cfg


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


# --- before Start: how long, and where in the queue -----------------------------------------------------------
PAUSE_S = 120.0  # a gap this long between two metric flushes (every 2 s while training) is a stop, not training


@dataclasses.dataclass(frozen=True)
class StartEstimate:
    """What the Train page says before Start: the wall-clock estimate (None: nothing measured to base it on), where
    it comes from, in words, and the queue a new run joins."""
    seconds: float | None
    source: str
    queued_ahead: int
    training: int

    def describe(self) -> str:
        """'≈ 3 min to train on cpu, fp32 (as run #12 trained: 41 steps/s); 2nd in queue, 1 run training now.'"""
        head = f"≈ {rough_duration(self.seconds)} to train {self.source}" if self.seconds is not None \
            else self.source[:1].upper() + self.source[1:]
        pos = self.queued_ahead + 1
        queue = "next in queue" if pos == 1 else f"{ordinal(pos)} in queue"
        now = f", {self.training} run{'s' * (self.training != 1)} training now" if self.training else ""
        return f"{head}; {queue}{now}."


def rough_duration(seconds: float) -> str:
    """'40 s', '3 min', '2.5 h', '3.1 days': an estimate's precision, not a stopwatch's."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


_rate_cache: dict[tuple[str, int], tuple[int, list[tuple[float, int]]]] = {}
_rate_lock = threading.Lock()


def measured_rate(store: Store, run: RunView) -> float | None:
    """Steps per wall-clock second that `run` trained at, from its stored metric rows: the worker writes them every
    2 s of training, each flush with its time, so the steps between flushes over the time between them is the
    speed, epoch-end work (scores, grids, checkpoints) included; gaps over PAUSE_S (a stop before a resume) are
    left out. None with fewer than two flushes. Cached per run, read on from the newest step seen."""
    key = (str(store.home), run.id)
    with _rate_lock:
        last, batches = _rate_cache.get(key, (0, []))
    if run.step < last:  # rewound on resume: its later rows were replaced
        last, batches = 0, []
    rows = store.step_metrics(run.id, after_step=last)
    if rows:
        flushes: dict[float, int] = {}
        for r in rows:
            flushes[r["created_at"]] = max(flushes.get(r["created_at"], 0), r["step"])
        batches = sorted(batches + list(flushes.items()))
        last = max(last, max(r["step"] for r in rows))
        with _rate_lock:
            _rate_cache[key] = (last, batches)
    steps = seconds = 0.0
    for (t0, s0), (t1, s1) in zip(batches, batches[1:]):
        if s1 > s0 and 0 < t1 - t0 <= PAUSE_S:
            steps, seconds = steps + s1 - s0, seconds + t1 - t0
    return steps / seconds if seconds > 0 else None


def _ran(run: RunView) -> tuple[str, str]:
    """(device, precision) a run trained on, from its ran_on ('cuda, bf16, CUDA graph'); ('', '') before it started."""
    parts = [p.strip() for p in (run.ran_on or "").split(",")]
    return (parts[0], parts[1]) if len(parts) >= 2 else ("", "")


def _will_run_on(cfg: TrainConfig, runs: Sequence[RunView]) -> tuple[str, str]:
    """(device, precision) `cfg` will train on: what it names, and for "auto" what auto chose for the newest run
    that asked for it (the workers' hardware, which the dashboard's host may lack), else what it would choose
    here."""
    import torch

    from ..device import native_bf16

    device = cfg.device
    if device == "auto":
        picked = [_ran(r)[0] for r in runs if r.config.device == "auto" and _ran(r)[0]]
        device = picked[0] if picked else ("cuda" if torch.cuda.is_available() else "cpu")
    precision = cfg.precision
    if precision == "auto":
        picked = [_ran(r)[1] for r in runs if r.config.precision == "auto" and _ran(r)[0] == device]
        precision = picked[0] if picked else ("bf16" if native_bf16(device) else "fp32")
    return device, precision


ESTIMATE_FROM = 500  # the newest runs that trained, whose speeds an estimate may use


def start_estimate(store: Store, cfg: TrainConfig, runs: Sequence[RunView] | None = None) -> StartEstimate:
    """How long `cfg` will train, from the speed runs in the store measured on the device and precision it will
    get: a run of the same architecture and batch size first (its steps/s, scaled by FLOPs per step if the model
    differs), else any run there (its FLOP rate, a rough guide); and its place in the queue. Never a guess: with
    no measured run there it says so."""
    from ..budget import estimate

    if runs is None:  # counted in SQL, and only runs that trained read: a flood of queued runs is never parsed
        queued, training = store.count_runs(statuses=[RunStatus.QUEUED]), store.count_runs(statuses=ACTIVE)
        runs = store.trained_runs(ESTIMATE_FROM)  # newest first
    else:
        queued = sum(r.status == RunStatus.QUEUED for r in runs)
        training = sum(r.status in ACTIVE for r in runs)
    device, precision = _will_run_on(cfg, runs)
    where = f"on {device}, {precision}"
    flops = estimate(cfg).step_flops
    def rank(r: RunView) -> tuple[int, float]:
        """Same architecture and batch first, then the closest work per step (a FLOP rate depends on the sizes);
        among equals the newest (runs come newest first, the sort is stable). The first with a rate is used."""
        return (0 if (r.config.arch, r.config.batch_size) == (cfg.arch, cfg.batch_size) else 1,
                abs(math.log(estimate(r.config).step_flops / flops)))

    ranked = sorted(((rank(r), r) for r in runs if _ran(r) == (device, precision)), key=lambda pair: pair[0])
    found = next(((at, r, rate) for at, r in ranked for rate in [measured_rate(store, r)] if rate), None)
    if found is None:
        return StartEstimate(None, f"no measurement yet {where}: the first run there gives one", queued, training)
    (tier, gap), r, rate = found
    ratio = flops / estimate(r.config).step_flops
    seconds = planned_steps(cfg) * ratio / rate
    if gap < 0.01:
        source = f"{where} (as run #{r.id} trained: {rate:,.3g} steps/s)"
    elif tier == 0:
        source = (f"{where} (run #{r.id}, {r.config.arch} with batch {r.config.batch_size}, trained {rate:,.3g} "
                  f"steps/s; scaled by the work per step)")
    else:
        source = (f"{where}, roughly (from the FLOP rate of run #{r.id}, {r.config.arch} with batch "
                  f"{r.config.batch_size}; no run like this one has trained there yet)")
    return StartEstimate(seconds, source, queued, training)


# --- runs ----------------------------------------------------------------------------------------------------
def format_duration(seconds: float | None) -> str:
    """'1h 02m', '3m 05s', '12s', or '–' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


ESTIMATE_AFTER_S = 20.0  # seconds of metrics a stretch of training needs before its rate gives an ETA


def stretch(run: RunView, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The metric rows of the run's current stretch of training: stored since its latest start or resume
    (run.started_at). Rows from before a stop, and the pause after it, say nothing about the speed now."""
    return [r for r in rows if run.started_at is None or r.get("created_at", 0.0) >= run.started_at]


def eta_seconds(run: RunView, rows: Sequence[Mapping[str, Any]], steps_per_sec: float | None = None) -> float | None:
    """Seconds left at `steps_per_sec`, the wall-clock rate of the current stretch (pass
    Store.step_rates(run.id, since=run.started_at)[0]); None, shown as "estimating", until that stretch has
    ESTIMATE_AFTER_S of metrics. A rate from the run's whole history counted the pause between a stop and a resume
    ("ETA 2h 31m" for a run that ended 95 s later); images/s of the first log interval, which also holds the
    warm-up (first allocations, compilation), gave estimates several times too long."""
    if run.status not in ACTIVE or not run.total_steps or not steps_per_sec:
        return None
    times = [float(r["created_at"]) for r in stretch(run, rows) if r.get("created_at") is not None]
    if not times or times[-1] - times[0] < ESTIMATE_AFTER_S:
        return None
    return max(0, run.total_steps - run.step) / steps_per_sec


SLOWED_FACTOR = 0.5  # "slowed down" when the recent rate is below half the earlier one


def slowed_down(recent: float | None, earlier: float | None, factor: float = SLOWED_FACTOR) -> bool:
    """Whether the recent step rate dropped well below the run's earlier rate."""
    return bool(recent and earlier and recent < factor * earlier)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st…"""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _epochs(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.2f}" if x < 1 else f"{x:.1f}"


def epoch_progress(run: RunView) -> str:
    """'3/10': the epoch the run's newest step belongs to (a running run's next one once an epoch is complete); for a
    run that max_steps caps, epochs as fractions of its real budget: '0.13/0.25 (max_steps 150)'."""
    cfg = run.config
    per = steps_per_epoch(cfg)
    if capped_by_max_steps(cfg):
        return f"{_epochs(run.step / per)}/{_epochs(run.total_steps / per)} (max_steps {cfg.max_steps:,})"
    # From the step, not only from run.epoch: the row's epoch counts completed epochs and moves at checkpoints, so
    # a run stopped at step 873 of epoch 2 read "epoch 1/6" after "epoch 2/6" while it ran.
    under_way = -(-run.step // per)
    return f"{min(max(run.epoch + (run.status in ACTIVE), under_way), cfg.epochs)}/{cfg.epochs}"


def progress_text(run: RunView, eta: float | None = None, recent: float | None = None,
                  earlier: float | None = None, queue_position: int | None = None) -> str:
    """The live view's progress line: epoch and steps against the real budget, %, ETA (at the recent rate, with
    'slowed down' when it dropped; 'estimating' while `eta` is None), or the place in the queue."""
    capped = capped_by_max_steps(run.config)
    parts = [f"{'epochs' if capped else 'epoch'} {epoch_progress(run)}",
             f"step {run.step:,}/{run.total_steps:,}", f"{run.progress:.0%}"]
    if run.status == RunStatus.QUEUED:
        parts.append("next in queue" if queue_position == 1 else
                     f"{ordinal(queue_position)} in queue" if queue_position else "queued")
    elif run.status in ACTIVE:
        eta_text = f"ETA {format_duration(eta)}" if eta is not None else "ETA estimating…"
        if slowed_down(recent, earlier):
            eta_text += f" (slowed down: {recent:,.1f} steps/s now, {earlier:,.1f} before)"
        parts.append(eta_text)
    return " · ".join(parts)


def live_progress_text(store: Store, run: RunView, rows: Sequence[Mapping[str, Any]]) -> str:
    """The live view's progress line for `run` as the store has it now (`rows`: its step metrics): the ETA at the
    current stretch's rate, or the place in the queue."""
    recent, earlier = store.step_rates(run.id, since=run.started_at) if run.status in ACTIVE else (None, None)
    position = store.queue_position(run.id) if run.status == RunStatus.QUEUED else None
    return progress_text(run, eta_seconds(run, rows, recent), recent, earlier, position)


def no_grid_text(run: RunView, has_row: bool = False) -> str:
    """What the live view says where a run has no sample grid to show: a promise only while the run can still make
    one (a failed run said "The first sample grid appears when the first epoch ends" for good)."""
    if has_row:  # recorded, but its file is gone (removed by hand, or a copy of the database without the files)
        return "The newest sample grid's file is missing on this server."
    every = run.config.sample_every
    if run.status in LIVE:
        return f"The first sample grid appears when {'the first epoch' if every == 1 else f'epoch {every}'} ends."
    return f"No sample grid: this run ended ({run.status}) before it saved one."


_ENDED = {  # status → (what happened, Material icon) for the toast that says one of your runs ended
    RunStatus.DONE: ("finished", ":material/check_circle:"),
    RunStatus.FAILED: ("failed", ":material/error:"),
    RunStatus.STOPPED: ("stopped", ":material/stop_circle:"),
    RunStatus.INTERRUPTED: ("was interrupted", ":material/warning:"),
    RunStatus.PRUNED: ("was pruned by its sweep", ":material/content_cut:"),
}


def ended_notice(run: RunView) -> tuple[str, str]:
    """(markdown, icon) of the toast saying that `run` ended: how, why when it failed, and a link to it."""
    what, icon = _ENDED.get(run.status, (str(run.status), ":material/info:"))
    why = f": {plain(_clip(redact_paths(run.error), 160))}" if run.error and run.status != RunStatus.PRUNED else ""
    return f"Run #{run.id} {plain(_clip(run.name, 60))} {what}{why} · [open it](/runs?run={run.id})", icon


def ended_summary(runs: Sequence[RunView]) -> tuple[str, str]:
    """(markdown, icon) of one toast for several of your runs that ended at once: how many ended how."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    failed = counts.get(RunStatus.FAILED, 0)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (f"{len(runs)} of your runs ended ({parts}) · [Runs](/runs)",
            ":material/error:" if failed else ":material/check_circle:")


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


# "&" too: the renderer decodes character references (&colon; &#64;) before GFM autolinks the text, so
# "http&colon;//x" became a link in Chromium; "\&" shows the "&" itself and nothing is decoded.
_MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>~:$=&")


# GFM turns bare URLs and emails into links after escapes are resolved (seen in Chromium: "http\\://x" became a
# link), so an invisible word joiner (U+2060) goes where those patterns need two characters side by side.
_AUTOLINK = re.compile(r"(?i)(https?|ftp|mailto|www)(?=[:.])|@")


def plain(text: str) -> str:
    """User text (run names, tags, descriptions) made safe for st.markdown/caption/subheader: every markdown,
    emoji-shortcode (:x:), colour directive, LaTeX and entity (&) character is backslash-escaped, bare URLs and emails
    are kept from becoming links, and newlines become spaces, so it shows literally; Streamlit already refuses raw HTML
    without unsafe_allow_html, which we never pass."""
    text = _AUTOLINK.sub(lambda m: m.group(0) + "\u2060", str(text))
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else (" " if ch in "\r\n" else ch) for ch in text)


def shown_error(error: BaseException | str) -> str:
    """An error, or a run's stored error, as markdown any visitor may read: its words for people (an exception's
    `reason` or errno message, as uploads.public_reason gives them), every server path cut to its last part
    (events.redact_paths: a row stored before paths were kept out still has them), escaped (plain). What was cut
    goes to the server's log."""
    from ..runs.uploads import public_reason

    full = error if isinstance(error, str) else str(error)
    text = redact_paths(error if isinstance(error, str) else public_reason(error))
    if text != full:
        log.warning("shown as %r: %s", text, full)
    return plain(text)


def run_label(run: RunView) -> str:
    """'#12 dense-mnist · running' for pickers."""
    return f"#{run.id} {run.name} · {run.status}"


NAME_CHARS = 40  # the runs table's name column: longer names end in "…" (the live view shows them in full)


def runs_table(runs: Sequence[RunView], places: Mapping[int, int | None] | None = None) -> list[dict[str, Any]]:
    """One row per run for the runs table: id, name, owner, status (with the place in the queue: `places`, run id
    → place, as the store's queue_position says; else counted among `runs`), progress, epoch, step, arch, and when
    it was created (a UTC datetime: the browser shows its age, which stays true while the table is not redrawn)."""
    queued = sorted(r.id for r in runs if r.status == RunStatus.QUEUED)  # workers claim the oldest first
    if places is None:
        places = {i: n + 1 for n, i in enumerate(queued)}

    def status(r: RunView) -> str:
        place = places.get(r.id) if r.status == RunStatus.QUEUED else None
        return f"queued ({ordinal(place)})" if place else r.status

    def short(text: str) -> str:
        return text if len(text) <= NAME_CHARS else text[:NAME_CHARS - 1] + "…"

    return [{"id": r.id, "name": short(r.name), "owner": short(r.owner or "–"), "tags": ", ".join(r.tags),
             "status": status(r),
             "progress": round(r.progress, 4), "epoch": epoch_progress(r), "step": f"{r.step}/{r.total_steps}",
             "arch": r.config.arch, "dataset": r.config.dataset,
             "created": datetime.datetime.fromtimestamp(r.created_at, datetime.timezone.utc)} for r in runs]


# --- the runs table's filters and groups (kept in the URL: ?owner=ada&status=running&group=owner) -----------
RUN_FILTERS = ("owner", "tag", "status", "sweep")
MAX_ID = 2**63 - 1  # the largest BIGINT of SQLite and PostgreSQL: no run or sweep id is bigger


def parse_id(raw: Any) -> int | None:
    """A run or sweep id as a URL (?run=, ?sweep=) or the session gives it: ASCII digits only, 1 to MAX_ID, else
    None. The one way every page reads an id: str.isdigit() is True for '²' (then int() raised) and int() reads
    '٣', ' 7', '+7' and '1_0' as other ids."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 1 <= raw <= MAX_ID else None
    text = raw if isinstance(raw, str) else ""
    if not (0 < len(text) <= len(str(MAX_ID)) and text.isascii() and text.isdigit()):
        return None
    n = int(text)
    return n if 1 <= n <= MAX_ID else None

RUN_GROUPS = ("sweep", "none", "owner", "tag", "status")  # "sweep" (the default) folds each sweep's runs
NO_SWEEP = "none"  # ?sweep=none: the runs outside every sweep
NO_OWNER = "–"     # how the table shows a run started without a name
_MAX_SHOWN = 40    # characters of a refused URL value quoted back
MAX_SEARCH = 100   # characters of a name search (?q=) kept


@dataclasses.dataclass(frozen=True)
class RunFilter:
    """Which runs the runs table shows (None: every value) and how it groups them (one of RUN_GROUPS)."""
    owner: str | None = None
    tag: str | None = None
    status: str | None = None
    sweep: int | str | None = None  # a sweep id, or NO_SWEEP
    group: str = "sweep"
    text: str | None = None  # words the run's name contains (any case): ?q=

    def query(self) -> dict[str, str]:
        """The URL query parameters that reproduce this view (defaults left out)."""
        q = {k: str(getattr(self, k)) for k in RUN_FILTERS if getattr(self, k) is not None}
        return q | ({"group": self.group} if self.group != "sweep" else {}) | ({"q": self.text} if self.text else {})

    @property
    def narrowed(self) -> bool:
        """Whether any filter is set."""
        return bool(self.text) or any(getattr(self, k) is not None for k in RUN_FILTERS)


def run_filter_options(runs: Sequence[RunView]) -> dict[str, list[Any]]:
    """The values each filter offers: the owners, tags and sweeps of `runs`, every status."""
    return {"owner": sorted({r.owner or NO_OWNER for r in runs}, key=lambda s: (s.lower(), s)),
            "tag": sorted({t for r in runs for t in r.tags}),
            "status": [s.value for s in RunStatus],
            "sweep": [*sorted({r.sweep_id for r in runs if r.sweep_id is not None}, reverse=True), NO_SWEEP]}


def filter_options(store: Store, limit: int | None = None) -> dict[str, list[Any]]:
    """What `run_filter_options` gives, read from the store without reading every run: the owners and tags of
    the newest runs (at most `limit`, default FACET_LIMIT, each), every sweep with runs, every status."""
    got = store.run_facets(limit or FACET_LIMIT)
    return {"owner": sorted({o or NO_OWNER for o in got["owner"]}, key=lambda s: (s.lower(), s)),
            "tag": sorted(got["tag"]),
            "status": [s.value for s in RunStatus],
            "sweep": [*got["sweep"], NO_SWEEP]}


def run_where(f: RunFilter) -> RunWhere:
    """The filter as the store's WHERE clauses (`filter_runs` in SQL; the group changes no row)."""
    return RunWhere(owners=None if f.owner is None else (("", NO_OWNER) if f.owner == NO_OWNER else (f.owner,)),
                    tag=f.tag, status=f.status,
                    sweep=None if f.sweep is None else (0 if f.sweep == NO_SWEEP else int(f.sweep)),
                    text=f.text or None)


def has_runs(store: Store) -> Callable[[str, Any], bool]:
    """For `parse_run_filter`: whether any (not deleted) run has this owner, tag or sweep (a value past the
    options' limit is still a value)."""
    return lambda key, value: store.count_matching(run_where(RunFilter(**{key: value}))) > 0


PAGE_SIZE = 50      # rows of the runs table a page: what one load reads, parses and sends
FACET_LIMIT = 200   # owners and tags a filter offers at most (of the newest runs); a link may name any other


@dataclasses.dataclass(frozen=True)
class RunPage:
    """One page of the runs table: its runs (newest first), the total that matches, and where it is."""
    runs: tuple[RunView, ...]
    total: int
    page: int  # 1-based, within 1..pages
    size: int

    @property
    def pages(self) -> int:
        """How many pages the matching runs fill (1 when none match)."""
        return max(1, math.ceil(self.total / self.size))

    def caption(self, every: int | None = None) -> str:
        """'1,234 of 30,000 runs match; showing 51–100.' (`every`: the runs in all, when a filter is set), '6 runs.'
        when one page holds them all."""
        first = (self.page - 1) * self.size + 1
        shown = f"; showing {first:,}–{min(self.total, first + self.size - 1):,}" if self.pages > 1 else ""
        if every is None:
            return f"{self.total:,} run{'' if self.total == 1 else 's'}{shown}."
        if not self.total:
            return f"No run matches these filters ({every:,} runs in all)."
        return f"{self.total:,} of {every:,} runs match{shown}."


def read_page(store: Store, f: RunFilter, page: int, size: int = PAGE_SIZE,
              unreadable: list | None = None) -> RunPage:
    """Page `page` (1-based; past the last: the last) of the runs that `f` keeps: a COUNT and one LIMIT/OFFSET
    read, whatever the number of rows."""
    where = run_where(f)
    total = store.count_matching(where)
    page = min(max(1, page), max(1, math.ceil(total / size)))
    return RunPage(tuple(store.runs_page(where, size, (page - 1) * size, unreadable)), total, page, size)


def parse_page(params: Mapping[str, Any]) -> tuple[int, str | None]:
    """The runs table's page from ?page= (1-based): (page, why a value was refused or None)."""
    raw = params.get("page")
    if isinstance(raw, (list, tuple)):
        raw = raw[-1] if raw else None
    if raw is None or not str(raw).strip():
        return 1, None
    value = str(raw).strip()
    if (page := parse_id(value)) is not None:  # as every id: ASCII digits only, '²' is no page number
        return page, None
    shown = value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN - 1] + "…"
    return 1, f"“{shown}” is not a page number: showing the first page."


def parse_run_filter(params: Mapping[str, Any], options: Mapping[str, Sequence[Any]],
                     exists: Callable[[str, Any], bool] | None = None) -> tuple[RunFilter, list[str]]:
    """The runs table's view from URL query parameters: (filter, [why each refused value was ignored]). A value
    that names nothing here (a status that does not exist, an owner with no runs, a sweep id that is not a number)
    is refused in words and that filter left off; nothing raises. `exists(key, value)` is asked about an owner, tag
    or sweep the options leave out (they list only the newest runs')."""
    got: dict[str, Any] = {}
    problems = []
    text = params.get("q")
    if isinstance(text, (list, tuple)):
        text = text[-1] if text else None
    if text and " ".join(str(text).split()):  # free words, matched literally: nothing to refuse, only a length
        got["text"] = " ".join(str(text).split())[:MAX_SEARCH]
    for key in (*RUN_FILTERS, "group"):
        raw = params.get(key)
        if isinstance(raw, (list, tuple)):  # ?status=a&status=b: the last, as st.query_params.get gives it
            raw = raw[-1] if raw else None
        if raw is None or not str(raw).strip():
            continue
        value = " ".join(str(raw).split())
        shown = value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN - 1] + "…"
        if key == "tag":
            value = value.lower()
        if key == "sweep" and value != NO_SWEEP:
            value = parse_id(str(raw)) or value  # the raw value: " 1" names no sweep here either
        allowed = RUN_GROUPS if key == "group" else options.get(key, ())
        if value in allowed or (exists is not None and key in ("owner", "tag", "sweep") and value != NO_SWEEP
                                and (key != "sweep" or isinstance(value, int)) and exists(key, value)):
            got[key] = value
        elif key == "status":
            problems.append(f"“{shown}” is not a run status (one of {', '.join(allowed)}): showing every status.")
        elif key == "sweep":
            problems.append(f"“{shown}” is not a sweep with runs here (a sweep's number, or {NO_SWEEP} for the runs "
                            f"outside sweeps): showing every sweep.")
        elif key == "group":
            problems.append(f"runs cannot be grouped by “{shown}” (only by {', '.join(RUN_GROUPS[1:])}, or "
                            f"sweep): grouped by sweep.")
        else:
            problems.append(f"no run has the {key} “{shown}”: showing every {key}.")
    return RunFilter(**got), problems


def filter_runs(runs: Sequence[RunView], f: RunFilter) -> list[RunView]:
    """The runs that pass every filter of `f`, in their order (what `read_page` asks the store for, in Python)."""
    def keep(r: RunView) -> bool:
        return ((f.owner is None or (r.owner or NO_OWNER) == f.owner) and (f.tag is None or f.tag in r.tags)
                and (not f.text or f.text.lower() in r.name.lower())
                and (f.status is None or r.status == f.status)
                and (f.sweep is None or (r.sweep_id is None if f.sweep == NO_SWEEP else r.sweep_id == f.sweep)))
    return [r for r in runs if keep(r)]


@dataclasses.dataclass(frozen=True)
class RunGroup:
    """One group of the runs table: a stable key, its heading, its runs; `folded` for a sweep's runs (shown closed
    under one line, so a 12-run sweep is one line of the page until opened)."""
    key: str
    label: str
    runs: tuple[RunView, ...]
    folded: bool = False

    def summary(self) -> str:
        """'4 done, 2 pruned'."""
        counts: dict[str, int] = {}
        for r in self.runs:
            counts[r.status] = counts.get(r.status, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in counts.items())


def group_runs(runs: Sequence[RunView], by: str, sweep_names: Mapping[int, str] | None = None) -> list[RunGroup]:
    """The runs in groups for the table, each group's runs in their order: by sweep (runs outside sweeps first,
    then one folded group a sweep, newest first), owner, tag (a run under each of its tags, untagged last), status
    (in RunStatus order), or "none" (one group)."""
    names = sweep_names or {}
    if by == "sweep":
        alone = tuple(r for r in runs if r.sweep_id is None)
        ids = sorted({r.sweep_id for r in runs if r.sweep_id is not None}, reverse=True)
        groups = [RunGroup(NO_SWEEP, "Runs outside sweeps", alone)] if alone else []
        for i in ids:
            members = tuple(r for r in runs if r.sweep_id == i)
            groups.append(RunGroup(f"sweep-{i}", f"Sweep #{i} {names.get(i, '')}".rstrip()
                                   + f" · {len(members)} run{'' if len(members) == 1 else 's'}", members, folded=True))
        return groups
    if by == "owner":
        keys = sorted({r.owner or NO_OWNER for r in runs}, key=lambda s: (s.lower(), s))
        return [RunGroup(f"owner-{k}", f"Owner {k}", tuple(r for r in runs if (r.owner or NO_OWNER) == k))
                for k in keys]
    if by == "tag":
        keys = sorted({t for r in runs for t in r.tags})
        groups = [RunGroup(f"tag-{k}", f"Tag {k}", tuple(r for r in runs if k in r.tags)) for k in keys]
        untagged = tuple(r for r in runs if not r.tags)
        return groups + ([RunGroup("tag-", "No tags", untagged)] if untagged else [])
    if by == "status":
        return [RunGroup(f"status-{s}", str(s).capitalize(), tuple(r for r in runs if r.status == s))
                for s in RunStatus if any(r.status == s for r in runs)]
    return [RunGroup("all", "All runs", tuple(runs))] if runs else []


def epoch_marks(store: Store, run_ids: Sequence[int]) -> tuple[tuple[Any, ...], ...]:
    """Per run: whether it is live, its newest sample grid's epoch and its newest scored epoch. Views drawn epoch by
    epoch (Samples, Compare) redraw when this changes, not at every step."""
    out = []
    for i in run_ids:
        run, sample = store.get(i), store.latest_sample(i)
        out.append((i, run is not None and run.status in LIVE, sample["epoch"] if sample else None,
                    store.last_quality_epoch(i)))
    return tuple(out)


def latest(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The newest metric row, or an empty dict."""
    return dict(rows[-1]) if rows else {}


def config_diff(configs: Mapping[str, TrainConfig]) -> list[dict[str, Any]]:
    """Rows {'field': name, label: value, ...} for the fields whose values differ between the configs."""
    if not configs:
        return []
    dicts = {label: cfg.to_dict() for label, cfg in configs.items()}
    out = []
    for f in config_fields():
        values = [d[f.name] for d in dicts.values()]
        if any(v != values[0] for v in values[1:]):
            out.append({"field": f.name, **{label: value_text(d[f.name]) for label, d in dicts.items()}})
    return out


def value_text(v: Any) -> str:
    """A config value as the tables show it: lists as '256, 512'."""
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


# --- artifacts -----------------------------------------------------------------------------------------------
def generator_path(store: Store, run: RunView) -> Path | None:
    """The run's generator.safetensors if training has written one yet."""
    p = store.artifacts_dir(run) / "generator.safetensors"
    return p if p.is_file() else None


def best_generator(store: Store, run: RunView) -> tuple[Path, dict[str, Any]] | None:
    """The run's best-generator.safetensors and the quality row of the epoch that wrote it (the newest row marked
    best), or None before the first scored epoch."""
    from ..trainer import BEST_GENERATOR

    p = store.artifacts_dir(run) / BEST_GENERATOR
    best = [q for q in store.quality(run.id) if q.get("best")]
    return (p, best[-1]) if p.is_file() and best else None


def read_grid(path: str | Path) -> np.ndarray:
    """A saved sample grid PNG as uint8 (H, W); ValueError, naming no path, if it is not a readable image."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except Exception as e:  # PIL's decoders raise many types for a damaged file (OSError, SyntaxError, EOFError,
        # struct.error, DecompressionBombError...); all mean the same to a page: a note instead of the image, never
        # a traceback with the server's path in it.
        raise ValueError("this sample image is unreadable") from e


def progression_gif(paths: Sequence[str | Path], ms_per_frame: int = 300) -> bytes:
    """The epoch grids in order as one looping animated GIF."""
    if not paths:
        raise ValueError("no sample grids to animate")
    return gif_bytes([read_grid(p) for p in paths], ms_per_frame=ms_per_frame)


def display_scale(width_px: int, target_px: int = 768) -> int:
    """The whole-number enlargement that brings an image of `width_px` closest to `target_px` without passing it."""
    return max(1, target_px // max(1, width_px))


GRID_PX = 768         # an 8×8 grid (or smaller) on screen
TILE_PX = 64          # at least this many pixels a digit once a grid is wider than 12 digits (16×16: 1024 px)
STRIP_TILE_PX = 120   # a slerp strip's digits, until the strip reaches STRIP_MAX_PX
STRIP_MAX_PX = 1200


def grid_display_px(ncol: int) -> int:
    """On-screen width of a grid `ncol` digits wide: never less for more digits (a 16×16 grid used to be drawn at
    482 px beside an 8×8 grid's 726 px, because only whole-number scales were used)."""
    return max(GRID_PX, TILE_PX * max(1, int(ncol)))


def strip_display_px(steps: int) -> int:
    """On-screen width of a slerp strip of `steps` digits: grows with the steps, up to STRIP_MAX_PX."""
    return min(STRIP_MAX_PX, STRIP_TILE_PX * max(1, int(steps)))


_PLAIN_REASONS = (  # (pattern in a CheckpointError / UploadError reason, what a person is told), first match wins
    (r"pickle", "This is a PyTorch pickle file (torch.save). GAN Studio opens only .safetensors files, which cannot "
                "run code when they are loaded."),
    (r"MB; generators are accepted up to|upload quota|upload limit|sign in", None),  # written for people: as is
    (r"not a complete safetensors|not a safetensors|HeaderTooLarge|header too large",
     "This is not a generator file GAN Studio can open: it is not a complete .safetensors file (cut short while "
     "uploading, or another kind of file renamed)."),
    (r"header declares [\d,]+ tensors", "This file declares far more tensors than any GAN Studio generator holds, "
                                        "so it is not opened."),
    (r"not a GAN Studio checkpoint|GAN Studio header|nests deeper|header declares|safetensors header is",
     "This .safetensors file was not written by GAN Studio, so it does not say which model it holds."),
    (r"format .* is not supported", "This file was written by a different version of GAN Studio."),
    (r"config is invalid", "The training settings saved in this file are not ones GAN Studio accepts."),
    (r"NaN or infinite", "Weights in this file are broken (not-a-number values): its training diverged. Use an "
                         "earlier checkpoint or another run."),
    (r"do not fit|tensor .* is |unexpected tensor", "The weights in this file do not match the model its settings "
                                                    "describe (edited, or written by another program)."),
    (r"no such checkpoint|folder", "The generator file is missing."),
    (r"unreadable", "The file could not be read."),
)


def plain_checkpoint_error(reason: str) -> str:
    """A checkpoint or upload error's reason in words for people (no "header too large"); show the technical reason
    beside it for whoever wants it (an expander)."""
    for pattern, message in _PLAIN_REASONS:
        if re.search(pattern, reason, re.IGNORECASE):
            return (message or reason[:1].upper() + reason[1:]).rstrip(".") + "."
    return "This file cannot be used as a generator."


DOWNLOAD_SCALES = (1, 2, 4, 8)  # ×1 is the generator's own 28 px a digit


def grid_caption_epochs(n: int) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{n:,} epoch" + ("" if n == 1 else "s")


def shared_floor_nowait(runs: Sequence[RunView], quality: Sequence[Sequence[Mapping[str, Any]]]
                        ) -> tuple[dict[str, Any] | None, str | None, tuple[str, int] | None]:
    """shared_floor without waiting: (floor, why none, pending) where pending is the (dataset, n) whose floor is
    still being measured in the background (quality_floor_nowait), so Compare draws at once and adds the floor when
    it is known. Measuring it (2000 real images through the classifier) was 21.7 s of Compare's first load on a
    machine a worker trained on."""
    scored = [(run, rows) for run, rows in zip(runs, quality) if rows]
    datasets = {run.config.dataset for run, _ in scored}
    if len(datasets) != 1:
        return None, ("These runs are on different datasets, so no real-data floor is drawn." if datasets
                      else None), None
    key = (datasets.pop(), int(scored[0][1][-1]["n"]))
    floor, pending = quality_floor_nowait(*key)
    if pending:
        return None, None, key
    return floor, None if floor else "No real test data on this server, so no real-data floor is drawn.", None


@lru_cache(maxsize=16)
def quality_floor(dataset: str, n: int) -> dict[str, Any] | None:
    """Real test data's quality numbers for n samples (the floor), or None without a shipped classifier or test data.

    Cached, the None too: a server without the test images must not retry (or try to download) on every refresh.
    Also cached on disk (beside the data cache, keyed by the classifier file), since scoring thousands of real
    images on a CPU that a worker is training on took 15-25 s: once per machine, not once per server start.
    """
    from .. import metrics
    from ..data import DataNotFoundError

    n = max(MIN_EVAL_SAMPLES, min(n, 10_000))
    path = metrics.classifier_path(dataset)
    if not path.is_file():
        return None
    disk = _floor_file(dataset, n, path)
    try:
        return json.loads(disk.read_text())
    except (OSError, ValueError):
        pass
    try:
        floor = metrics.real_floor(dataset, n, download=False).to_dict()
    except DataNotFoundError:  # the run's own numbers still show, without the floor
        return None
    try:
        disk.parent.mkdir(parents=True, exist_ok=True)
        tmp = disk.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(floor))
        tmp.replace(disk)  # atomic: another process never reads half a file
    except OSError:
        pass
    return floor


def _floor_file(dataset: str, n: int, classifier: Path) -> Path:
    from ..data import cache_dir

    from ..metrics import SCORES_VERSION

    st = classifier.stat()  # and the version of measure()'s numbers: a floor cached before realism has none
    return cache_dir() / "floors" / f"{dataset}-{n}-{st.st_size}-{st.st_mtime_ns}-v{SCORES_VERSION}.json"


_floor_jobs: dict[tuple[str, int], threading.Thread] = {}
_floor_lock = threading.Lock()


def quality_floor_nowait(dataset: str, n: int) -> tuple[dict[str, Any] | None, bool]:
    """(floor, pending): the floor if it is known (memory or disk), else None, with its computation started in a
    background thread, so a page never waits for it; pending is True until that thread is done."""
    from .. import metrics

    clf = metrics.classifier_path(dataset)
    if clf.is_file() and _floor_file(dataset, max(MIN_EVAL_SAMPLES, min(n, 10_000)), clf).is_file():
        return quality_floor(dataset, n), False  # on disk (or in memory): no thread, no race with the join below
    key = (dataset, n)
    with _floor_lock:
        job = _floor_jobs.get(key)
        if job is None:
            job = threading.Thread(target=quality_floor, args=key, daemon=True, name=f"floor-{dataset}-{n}")
            _floor_jobs[key] = job
            job.start()
    job.join(timeout=0.05)  # a cached floor (memory or disk) is there at once
    if job.is_alive():
        return None, True
    return quality_floor(dataset, n), False


def shared_floor(runs: Sequence[RunView], quality: Sequence[Sequence[Mapping[str, Any]]]
                 ) -> tuple[dict[str, Any] | None, str | None]:
    """One real-data floor for several runs' quality rows (same order), or None and the reason to show: a floor is
    per dataset (and per sample count), so runs on different datasets share none."""
    scored = [(run, rows) for run, rows in zip(runs, quality) if rows]
    datasets = {run.config.dataset for run, _ in scored}
    if len(datasets) != 1:
        return None, "These runs are on different datasets, so no real-data floor is drawn." if datasets else None
    floor = quality_floor(datasets.pop(), int(scored[0][1][-1]["n"]))
    return floor, None if floor else "No real test data on this server, so no real-data floor is drawn."


_WAIT = object()


def alerts(run: RunView, rows: Sequence[Mapping[str, Any]],
           quality: Sequence[Mapping[str, Any]], floor: Any = _WAIT) -> list[Any]:
    """The warnings the live view shows for a run: divergence, D overpowering, and mode collapse judged on the run's
    whole quality history (metrics.judge_collapse: evidence that persists over epochs while FD stalls, after the
    steps an EMA generator trails G by) against `floor` (default: quality_floor, computed if need be; None: not
    judged)."""
    from .. import metrics

    loss = run.config.loss
    found = [metrics.detect_divergence(rows, run.error, loss), metrics.detect_d_overpowering(rows, loss)]
    if quality:
        if floor is _WAIT:
            floor = quality_floor(run.config.dataset, int(quality[-1]["n"]))
        if floor:
            history = [(int(r.get("step") or 0), metrics.Quality.from_dict(r)) for r in quality]
            found.append(metrics.judge_collapse(history, metrics.Quality.from_dict(floor), run.config.g_ema))
    if run.status not in LIVE:  # "look again later" is for a run that trains on; an ended one gets no later
        found = [dataclasses.replace(a, message="Mode collapse was not judged before this run ended: "
                                     + a.message.split(": ", 1)[-1],
                                     suggestion="Resume it with more epochs to have it judged.")
                 if a is not None and a.kind == "too_early" else a for a in found]
    return [a for a in found if a is not None]


# --- sweeps --------------------------------------------------------------------------------------------------
def grid_data_uri(path: str | Path) -> str | None:
    """A saved sample grid as a data: URI for a table's image column (None if unreadable or over 512 KB)."""
    import base64

    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if len(data) > 512 * 1024 or not data.startswith(b"\x89PNG"):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _best_of(entry: Any, lower: bool) -> int:
    """The run id of a leaderboard entry's best-scoring seed (its first run when none is scored yet)."""
    scored = [(s, rid) for s, rid in zip(entry.scores, entry.run_ids) if s is not None]
    return (min(scored) if lower else max(scored))[1] if scored else entry.run_ids[0]


def sweep_board(sweep: SweepView, runs: Sequence[RunView], quality: Mapping[int, Sequence[Mapping[str, Any]]],
                metric: str) -> list[tuple[Any, int]]:
    """The sweep's leaderboard entries (sweep.leaderboard), each with the id of its best-scoring run."""
    from ..runs.sweep import METRICS, leaderboard

    board = leaderboard(sweep.points, [(r.id, r.sweep_point, r.status) for r in runs], quality, metric)
    return [(e, _best_of(e, METRICS[metric][2])) for e in board]


def sweep_table(store: Store, sweep: SweepView, runs: Sequence[RunView],
                quality: Mapping[int, Sequence[Mapping[str, Any]]], metric: str) -> list[dict[str, Any]]:
    """The Sweeps page's leaderboard: one row per point, ranked by the mean of `metric` over its seeds, with the
    swept fields, mean and std, each seed's score, statuses, the final grid of its best run and a link to it."""
    from ..runs.status import LIVE

    fields = [k for p in sweep.points[:1] for k in p]
    out = []
    for e, best in sweep_board(sweep, runs, quality, metric):
        sample = store.latest_sample(best)
        live = any(s in LIVE for s in e.statuses)
        status = ", ".join(sorted(set(e.statuses)))
        if e.mean is None:  # the table's placeholder ("–") stands in the empty numbers; the words say why
            status += " · not scored yet" if live else " before scoring"
        grid = grid_data_uri(sample["path"]) if sample else None
        out.append({"rank": e.rank, **{f: value_text(e.values.get(f)) for f in fields}, metric: e.mean,
                    "± std": e.std, "seeds": len(e.run_ids),
                    "scores": ", ".join("–" if s is None else f"{s:.4g}" for s in e.scores),
                    "status": status, "best run": best,
                    "samples": grid or note_image_uri(*(("no grid yet", "(after epoch 1)") if live
                                                        else ("stopped before", "its first grid"))),
                    "live view": f"/runs?run={best}"})
    return out


TABLE_PLACEHOLDER = "–"  # what a table shows in an empty cell (Streamlit's own is the word "None")


def note_image_uri(*lines: str) -> str:
    """A few words as a small SVG data: URI, for a table's image column where there is no image (an empty image
    cell reads "None"); grey text, readable on light and dark backgrounds."""
    import base64
    import html as _html

    top = 45 - 8 * (len(lines) - 1)
    text = "".join(f'<text x="60" y="{top + 16 * i}" text-anchor="middle">{_html.escape(line)}</text>'
                   for i, line in enumerate(lines))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="90" viewBox="0 0 120 90" '
           f'font-family="sans-serif" font-size="12" fill="#8a8f98">{text}</svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def sweep_plan(cfg: TrainConfig | None, params_text: str, mode: str, draws: int | None, seeds: int | None,
               prune: str, grace: int | None) -> tuple[Any, list[Any], list[str]]:
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
    if problems:
        return None, [], problems
    try:
        spec = SweepSpec(params=tuple(params), mode="random" if mode == "random" else "grid",
                         draws=(draws or 0) if mode == "random" else 0, seeds=seeds or 1, prune=prune,
                         grace=grace or 1)
        return spec, plan(cfg, spec), []
    except ConfigError as e:
        return None, [], [str(e)]
