"""Before Start: how long a config will train, from the speed runs in the store trained at on the same device and
precision, and where in the queue it will wait."""
from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Sequence

from ..config import TrainConfig, planned_steps
from ..runs.status import ACTIVE, RunStatus
from ..runs.store import RunView, Store
from .text import ordinal

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

    device: str = cfg.device
    if device == "auto":
        picked = [_ran(r)[0] for r in runs if r.config.device == "auto" and _ran(r)[0]]
        device = picked[0] if picked else ("cuda" if torch.cuda.is_available() else "cpu")
    precision: str = cfg.precision
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
