"""A run's progress in words: epoch and step against its real budget, the ETA at the current stretch's rate, its
place in the queue, and what the live view says where there is no sample grid yet."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import capped_by_max_steps, steps_per_epoch
from ..runs.status import ACTIVE, LIVE, RunStatus
from ..runs.store import RunView, Store
from .text import ordinal


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


def latest(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The newest metric row, or an empty dict."""
    return dict(rows[-1]) if rows else {}
