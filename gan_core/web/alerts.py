"""What the dashboard tells about a run without being asked: the live view's warnings (divergence, D overpowering,
mode collapse judged against the real-data floor) and the toast when one of your runs ends."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..events import redact_paths
from ..runs.status import LIVE, RunStatus
from ..runs.store import RunView
from . import real_floor
from .text import clip, plain

# status → (what happened, Material icon) for the toast that says one of your runs ended
_ENDED: dict[str, tuple[str, str]] = {
    RunStatus.DONE: ("finished", ":material/check_circle:"),
    RunStatus.FAILED: ("failed", ":material/error:"),
    RunStatus.STOPPED: ("stopped", ":material/stop_circle:"),
    RunStatus.INTERRUPTED: ("was interrupted", ":material/warning:"),
    RunStatus.PRUNED: ("was pruned by its sweep", ":material/content_cut:"),
}


def ended_notice(run: RunView) -> tuple[str, str]:
    """(markdown, icon) of the toast saying that `run` ended: how, why when it failed, and a link to it."""
    what, icon = _ENDED.get(run.status, (str(run.status), ":material/info:"))
    why = f": {plain(clip(redact_paths(run.error), 160))}" if run.error and run.status != RunStatus.PRUNED else ""
    return f"Run #{run.id} {plain(clip(run.name, 60))} {what}{why} · [open it](/runs?run={run.id})", icon


def ended_summary(runs: Sequence[RunView]) -> tuple[str, str]:
    """(markdown, icon) of one toast for several of your runs that ended at once: how many ended how."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    failed = counts.get(RunStatus.FAILED, 0)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (f"{len(runs)} of your runs ended ({parts}) · [Runs](/runs)",
            ":material/error:" if failed else ":material/check_circle:")


_WAIT = object()


def alerts(run: RunView, rows: Sequence[dict[str, Any]],
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
            floor = real_floor.quality_floor(run.config.dataset, int(quality[-1]["n"]))
        if floor:
            history = [(int(r.get("step") or 0), metrics.Quality.from_dict(r)) for r in quality]
            found.append(metrics.judge_collapse(history, metrics.Quality.from_dict(floor), run.config.g_ema))
    if run.status not in LIVE:  # "look again later" is for a run that trains on; an ended one gets no later
        found = [dataclasses.replace(a, message="Mode collapse was not judged before this run ended: "
                                     + a.message.split(": ", 1)[-1],
                                     suggestion="Resume it with more epochs to have it judged.")
                 if a is not None and a.kind == "too_early" else a for a in found]
    return [a for a in found if a is not None]
