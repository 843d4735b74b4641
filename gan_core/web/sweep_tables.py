"""The Sweeps page's leaderboard: one row per point, ranked by a quality metric's mean over its seeds."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from ..runs.status import LIVE
from ..runs.store import RunView, Store, SweepView
from .images import grid_data_uri, note_image_uri
from .text import value_text


def _best_of(entry: Any, lower: bool) -> int:
    """The run id of a leaderboard entry's best-scoring seed (its first run when none is scored yet)."""
    scored = [(s, rid) for s, rid in zip(entry.scores, entry.run_ids) if s is not None]
    return (min(scored) if lower else max(scored))[1] if scored else entry.run_ids[0]


def sweep_board(sweep: SweepView, runs: Sequence[RunView], quality: Mapping[int, Sequence[Mapping[str, Any]]],
                metric: str) -> list[tuple[Any, int]]:
    """The sweep's leaderboard entries (sweep.leaderboard), each with the id of its best-scoring run."""
    from ..runs.sweep import METRICS, leaderboard

    # Every run of a sweep has its point (sweep_point is None only outside sweeps).
    board = leaderboard(sweep.points, [(r.id, cast(int, r.sweep_point), r.status) for r in runs], quality, metric)
    return [(e, _best_of(e, METRICS[metric][2])) for e in board]


def sweep_table(store: Store, sweep: SweepView, runs: Sequence[RunView],
                quality: Mapping[int, Sequence[Mapping[str, Any]]], metric: str) -> list[dict[str, Any]]:
    """The Sweeps page's leaderboard: one row per point, ranked by the mean of `metric` over its seeds, with the
    swept fields, mean and std, each seed's score, statuses, the final grid of its best run and a link to it."""
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
