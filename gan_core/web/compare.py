"""What the Compare page computes: what to watch to redraw epoch by epoch, and the config fields that differ."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..config import TrainConfig, config_fields
from ..runs.status import LIVE
from ..runs.store import Store
from .text import value_text


def epoch_marks(store: Store, run_ids: Sequence[int]) -> tuple[tuple[Any, ...], ...]:
    """Per run: whether it is live, its newest sample grid's epoch and its newest scored epoch. Views drawn epoch by
    epoch (Samples, Compare) redraw when this changes, not at every step."""
    out = []
    for i in run_ids:
        run, sample = store.get(i), store.latest_sample(i)
        out.append((i, run is not None and run.status in LIVE, sample["epoch"] if sample else None,
                    store.last_quality_epoch(i)))
    return tuple(out)


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
