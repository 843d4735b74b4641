"""The real-data quality floor: real test images' quality numbers at a run's sample count, the line a run's scores
are drawn against. Measured once per machine (cached on disk) in a background thread, so no page waits for it."""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import MIN_EVAL_SAMPLES
from ..runs.store import RunView


def shared_floor_nowait(runs: Sequence[RunView], quality: Sequence[Sequence[Mapping[str, Any]]]
                        ) -> tuple[dict[str, Any] | None, str | None, tuple[str, int] | None]:
    """One real-data floor for several runs' quality rows (same order), without waiting: (floor, why none, pending)
    where pending is the (dataset, n) whose floor is still being measured in the background (quality_floor_nowait),
    so Compare draws at once and adds the floor when it is known (scoring 2000 real images takes seconds on a CPU a
    worker trains on; BENCHMARKS.md). A floor is per dataset and sample count: runs on different datasets share
    none, and runs not scored yet do not count."""
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
    images takes many seconds on a CPU a worker trains on (BENCHMARKS.md): once per machine, not per server start.
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
