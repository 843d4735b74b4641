"""What the dashboard pages compute, without Streamlit: form specs from TrainConfig metadata, form values ↔
config, ETA, run tables, config diffs, sample progressions. Pages only lay these out, so all of it is testable here.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from .config import (MIN_EVAL_SAMPLES, PRESETS, ConfigError, TrainConfig, _check_field, capped_by_max_steps,
                     coerce_value, config_fields, steps_per_epoch)
from .sampling import gif_bytes
from .status import ACTIVE, RunStatus
from .store import RunView, Store, SweepView

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
    from .store import MAX_DESCRIPTION, MAX_NAME, clean_tags, clean_text
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


def eta_seconds(run: RunView, rows: Sequence[Mapping[str, Any]], steps_per_sec: float | None = None,
                window: int = 20) -> float | None:
    """Seconds left: at `steps_per_sec` (wall clock: pass the recent rate, Store.step_rates()[0]) when known, else
    at the recent images/s of the last `window` metric rows (which leaves out sampling and checkpoints); None if
    unknown."""
    if run.status not in ACTIVE or not run.total_steps:
        return None
    left = max(0, run.total_steps - run.step)
    if steps_per_sec:
        return left / steps_per_sec
    recent = [float(r["images_per_sec"]) for r in rows[-window:] if r["images_per_sec"] > 0]
    if not recent:
        return None
    return left * run.config.batch_size / (sum(recent) / len(recent))


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
    """'3/10'; for a run that max_steps caps, epochs as fractions of its real budget: '0.13/0.25 (max_steps 150)'."""
    cfg = run.config
    if capped_by_max_steps(cfg):
        per = steps_per_epoch(cfg)
        return f"{_epochs(run.step / per)}/{_epochs(run.total_steps / per)} (max_steps {cfg.max_steps:,})"
    return f"{min(run.epoch + (run.status in ACTIVE), cfg.epochs)}/{cfg.epochs}"


def progress_text(run: RunView, eta: float | None = None, recent: float | None = None,
                  earlier: float | None = None, queue_position: int | None = None) -> str:
    """The live view's progress line: epoch and steps against the real budget, %, ETA (at the recent rate, with
    'slowed down' when it dropped), or the place in the queue."""
    capped = capped_by_max_steps(run.config)
    parts = [f"{'epochs' if capped else 'epoch'} {epoch_progress(run)}",
             f"step {run.step:,}/{run.total_steps:,}", f"{run.progress:.0%}"]
    if run.status == RunStatus.QUEUED:
        parts.append("next in queue" if queue_position == 1 else
                     f"{ordinal(queue_position)} in queue" if queue_position else "queued")
    elif run.status in ACTIVE:
        eta_text = f"ETA {format_duration(eta)}"
        if slowed_down(recent, earlier):
            eta_text += f" (slowed down: {recent:,.1f} steps/s now, {earlier:,.1f} before)"
        parts.append(eta_text)
    return " · ".join(parts)


_MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>~:$=")


# GFM turns bare URLs and emails into links after escapes are resolved (seen in Chromium: "http\\://x" became a
# link), so an invisible word joiner (U+2060) goes where those patterns need two characters side by side.
_AUTOLINK = re.compile(r"(?i)(https?|ftp|mailto|www)(?=[:.])|@")


def plain(text: str) -> str:
    """User text (run names, tags, descriptions) made safe for st.markdown/caption/subheader: every markdown,
    emoji-shortcode (:x:), colour directive and LaTeX character is backslash-escaped, bare URLs and emails are kept
    from becoming links, and newlines become spaces, so it shows literally; Streamlit already refuses raw HTML
    without unsafe_allow_html, which we never pass."""
    text = _AUTOLINK.sub(lambda m: m.group(0) + "\u2060", str(text))
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else (" " if ch in "\r\n" else ch) for ch in text)


def run_label(run: RunView) -> str:
    """'#12 dense-mnist · running' for pickers."""
    return f"#{run.id} {run.name} · {run.status}"


NAME_CHARS = 40  # the runs table's name column: longer names end in "…" (the live view shows them in full)


def runs_table(runs: Sequence[RunView], now: float | None = None) -> list[dict[str, Any]]:
    """One row per run for the runs table: id, name, owner, status (with the place in the queue), progress,
    epoch, step, arch, age."""
    now = now or time.time()
    queued = sorted(r.id for r in runs if r.status == RunStatus.QUEUED)  # workers claim the oldest first

    def short(text: str) -> str:
        return text if len(text) <= NAME_CHARS else text[:NAME_CHARS - 1] + "…"

    return [{"id": r.id, "name": short(r.name), "owner": short(r.owner or "–"), "tags": ", ".join(r.tags),
             "status": f"queued ({ordinal(queued.index(r.id) + 1)})" if r.status == RunStatus.QUEUED else r.status,
             "progress": round(r.progress, 4), "epoch": epoch_progress(r), "step": f"{r.step}/{r.total_steps}",
             "arch": r.config.arch, "dataset": r.config.dataset,
             "created": format_duration(now - r.created_at) + " ago"} for r in runs]


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
    from .trainer import BEST_GENERATOR

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
    (r"MB; generators are accepted up to|upload quota|sign in", None),  # already written for people: shown as is
    (r"not a complete safetensors|not a safetensors|HeaderTooLarge|header too large",
     "This is not a generator file GAN Studio can open: it is not a complete .safetensors file (cut short while "
     "uploading, or another kind of file renamed)."),
    (r"not a GAN Studio checkpoint|GAN Studio header|nests deeper",
     "This .safetensors file was not written by GAN Studio, so it does not say which model it holds."),
    (r"format .* is not supported", "This file was written by a different version of GAN Studio."),
    (r"config is invalid", "The training settings saved in this file are not ones GAN Studio accepts."),
    (r"NaN or infinite", "This generator's weights are broken (not-a-number values): its training diverged. Use an "
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
    from . import metrics
    from .data import DataNotFoundError

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
    from .data import cache_dir

    from .metrics import SCORES_VERSION

    st = classifier.stat()  # and the version of measure()'s numbers: a floor cached before realism has none
    return cache_dir() / "floors" / f"{dataset}-{n}-{st.st_size}-{st.st_mtime_ns}-v{SCORES_VERSION}.json"


_floor_jobs: dict[tuple[str, int], threading.Thread] = {}
_floor_lock = threading.Lock()


def quality_floor_nowait(dataset: str, n: int) -> tuple[dict[str, Any] | None, bool]:
    """(floor, pending): the floor if it is known (memory or disk), else None, with its computation started in a
    background thread, so a page never waits for it; pending is True until that thread is done."""
    from . import metrics

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
    from . import metrics

    loss = run.config.loss
    found = [metrics.detect_divergence(rows, run.error, loss), metrics.detect_d_overpowering(rows, loss)]
    if quality:
        if floor is _WAIT:
            floor = quality_floor(run.config.dataset, int(quality[-1]["n"]))
        if floor:
            history = [(int(r.get("step") or 0), metrics.Quality.from_dict(r)) for r in quality]
            found.append(metrics.judge_collapse(history, metrics.Quality.from_dict(floor), run.config.g_ema))
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
    from .sweep import METRICS, leaderboard

    board = leaderboard(sweep.points, [(r.id, r.sweep_point, r.status) for r in runs], quality, metric)
    return [(e, _best_of(e, METRICS[metric][2])) for e in board]


def sweep_table(store: Store, sweep: SweepView, runs: Sequence[RunView],
                quality: Mapping[int, Sequence[Mapping[str, Any]]], metric: str) -> list[dict[str, Any]]:
    """The Sweeps page's leaderboard: one row per point, ranked by the mean of `metric` over its seeds, with the
    swept fields, mean and std, each seed's score, statuses, the final grid of its best run and a link to it."""
    fields = [k for p in sweep.points[:1] for k in p]
    out = []
    for e, best in sweep_board(sweep, runs, quality, metric):
        sample = store.latest_sample(best)
        out.append({"rank": e.rank, **{f: value_text(e.values.get(f)) for f in fields}, metric: e.mean,
                    "± std": e.std, "seeds": len(e.run_ids),
                    "scores": ", ".join("–" if s is None else f"{s:.4g}" for s in e.scores),
                    "status": ", ".join(sorted(set(e.statuses))), "best run": best,
                    "samples": grid_data_uri(sample["path"]) if sample else None,
                    "live view": f"/runs?run={best}"})
    return out


def sweep_plan(cfg: TrainConfig | None, params_text: str, mode: str, draws: int | None, seeds: int | None,
               prune: str, grace: int | None) -> tuple[Any, list[Any], list[str]]:
    """The Train page's Sweep mode: (spec, planned runs, []) for what the form says over base `cfg`, or (None, [],
    [problems]) naming each thing to fix. One swept field per line of `params_text` (sweep.parse_param)."""
    from .sweep import SweepSpec, parse_param, plan

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
