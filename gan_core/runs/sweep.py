"""Sweeps: a named group of runs over a search space, the rule that prunes its weak runs early, and its leaderboard.

A sweep is a base TrainConfig plus a `SweepSpec`: swept fields (`Param`), grid or random, each point repeated over
`seeds` seeds. `plan` expands and validates every point before anything is queued: one bad point refuses the whole
sweep with its reason. The points are ordinary runs in the store (runs.sweep_id), so they go through the same queue,
workers, concurrency cap and executor as any run. The worker asks `prune_verdict` after each epoch's quality score:
the median rule (Golovin et al. 2017, Vizier) or asynchronous successive halving (ASHA, Li et al. 2020) on the
Fréchet distance ends a run that is worse than its peers at the same epoch, as 'pruned', not failed.
"""
from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, Literal

from ..config import ConfigError, TrainConfig, coerce_value, config_fields, planned_steps
from .status import RunStatus

MODES = ("grid", "random")
PRUNE_RULES = ("none", "median", "asha")
MAX_POINTS = 64        # runs one sweep may queue (points × seeds): a typo like 1e-5..1e-3 with 10,000 draws is refused
MAX_SEEDS = 10
MIN_PEERS = 2          # a run is only compared once this many other runs of its sweep reported the same epoch
# What "Resume sweep" queues again: runs a person stopped or a dead worker interrupted. Not pruned runs (the sweep's
# own rule ended them), done ones (finished), nor failed ones (they would fail again: each resumes on its own).
RESUME_STATUSES = frozenset({RunStatus.STOPPED, RunStatus.INTERRUPTED})
# Fields a sweep may not vary: where a run trains, and what is derived per point.
UNSWEPT = frozenset({"seed", "device"})
_TUPLE_FIELDS = {f.name for f in config_fields() if isinstance(f.default, tuple)}
_NUMERIC = {f.name for f in config_fields() if type(f.default) in (int, float)}
_INT = {f.name for f in config_fields() if type(f.default) is int}

# The leaderboard's metrics: (quality row key, how a run's rows reduce to one number, lower is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "best FD": ("fd", "best", True),
    "final FD": ("fd", "last", True),
    "final IS": ("inception_score", "last", False),
    "final KID": ("kid", "last", True),
    "final precision": ("precision", "last", False),
    "final recall": ("recall", "last", False),
    "final coverage": ("coverage", "last", False),
}


@dataclass(frozen=True)
class Param:
    """One swept field: a list of `choices` (grid, or a random pick), or a range lo..hi (random only), log-uniform
    when `log`. Values are already coerced to the field's type."""
    name: str
    choices: tuple[Any, ...] = ()
    lo: float | None = None
    hi: float | None = None
    log: bool = False

    def __post_init__(self) -> None:
        if self.name not in {f.name for f in config_fields()}:
            raise ConfigError(f"sweep: {self.name!r} is not a config field")
        if self.name == "seed":
            raise ConfigError("sweep: seed cannot be swept; set how many seeds each point repeats over instead "
                              "(--seeds, or 'Seeds per point')")
        if self.name in UNSWEPT:
            raise ConfigError(f"sweep: {self.name} cannot be swept; every run of a sweep trains where its base config "
                              f"says")
        if bool(self.choices) == (self.lo is not None):
            raise ConfigError(f"sweep: {self.name} needs either values a,b,c or a range lo..hi")
        if self.lo is not None:
            if self.name not in _NUMERIC:
                raise ConfigError(f"sweep: {self.name} is not a number, so it takes values a,b,c, not a range")
            lo, hi = self.bounds()
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ConfigError(f"sweep: {self.name} range {lo:g}..{hi:g} must go from a smaller to a "
                                  f"larger finite number")
            if self.log and lo <= 0:
                raise ConfigError(f"sweep: {self.name} log range must be above 0, got {lo:g}..{hi:g}")
        if len(set(map(_key, self.choices))) != len(self.choices):
            raise ConfigError(f"sweep: {self.name} lists a value twice")

    def bounds(self) -> tuple[float, float]:
        """A range's (lo, hi); ConfigError for a param of values, or a range missing an end."""
        if self.lo is None or self.hi is None:
            raise ConfigError(f"sweep: {self.name} needs either values a,b,c or a range lo..hi")
        return self.lo, self.hi

    def text(self) -> str:
        """The form `parse_param` reads back: 'lr_g=1e-4,2e-4' or 'lr_g=1e-5..1e-3:log'."""
        # repr, not :g, for floats: the store keeps this text, and :g's 6 digits would change 1.2345678e-4 on reading
        if self.lo is not None:
            return f"{self.name}={self.lo!r}..{self.hi!r}" + (":log" if self.log else "")
        sep = "|" if self.name in _TUPLE_FIELDS else ","
        return f"{self.name}=" + sep.join(repr(v) if type(v) is float else _show(v) for v in self.choices)

    def draw(self, rng: random.Random) -> Any:
        """One random value: a choice, or uniform (log-uniform) in the range, rounded for an integer field."""
        if self.choices:
            return rng.choice(self.choices)
        lo, hi = self.bounds()
        if self.log:
            v = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        else:
            v = rng.uniform(lo, hi)
        return round(v) if self.name in _INT else float(f"{v:.4g}")  # 4 digits: readable, and enough for a search


def _key(v: Any) -> str:
    return json.dumps(list(v) if isinstance(v, tuple) else v)


def _show(v: Any) -> str:
    if isinstance(v, (tuple, list)):  # a list: a list field's value as the store's points_json gives it back
        return ",".join(map(str, v))
    if isinstance(v, bool):
        return str(v).lower()
    return f"{v:g}" if isinstance(v, float) else str(v)


def parse_param(text: str) -> Param:
    """'lr_g=1e-4,2e-4' (values), 'dropout=0..0.5' (a range), 'lr_g=1e-5..1e-3:log' (log-uniform); list fields
    separate their values with '|' ('g_widths=256,512|512,1024'). ConfigError for anything else."""
    name, sep, values = str(text).partition("=")
    name, values = name.strip(), values.strip()
    if not sep or not name or not values:
        raise ConfigError(f"sweep: {text!r} is not NAME=VALUES (e.g. lr_g=1e-4,2e-4 or lr_g=1e-5..1e-3:log)")
    known = {f.name for f in config_fields()}
    if name not in known:
        raise ConfigError(f"sweep: {name!r} is not a config field; known: {', '.join(sorted(known))}")
    log = values.endswith(":log")
    body = values[:-4].strip() if log else values
    if ".." in body:
        lo, _, hi = body.partition("..")
        try:
            bounds = float(lo), float(hi)
        except ValueError:
            raise ConfigError(f"sweep: {name} range {body!r} is not lo..hi with two numbers") from None
        # Outside the try: Param's own ConfigError (a ValueError) says what is wrong with two good numbers
        return Param(name, lo=bounds[0], hi=bounds[1], log=log)
    if log:
        raise ConfigError(f"sweep: {name}: ':log' only follows a range lo..hi")
    parts = body.split("|") if name in _TUPLE_FIELDS or "|" in body else body.split(",")
    parts = [p.strip() for p in parts if p.strip()]
    if not parts:
        raise ConfigError(f"sweep: {name} has no values")
    return Param(name, choices=tuple(coerce_value(name, p) for p in parts))


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep searches: its params, grid or `draws` random points, each over `seeds` seeds (base seed + i),
    and the pruning rule (median from epoch `grace`; ASHA with rungs at grace·eta^k). Validated on creation."""
    params: tuple[Param, ...]
    mode: Literal["grid", "random"] = "grid"
    draws: int = 0
    seeds: int = 1
    prune: Literal["none", "median", "asha"] = "none"
    grace: int = 1
    eta: int = 3
    draw_seed: int = 0   # the random search's own RNG seed: the same spec always plans the same points

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"sweep: mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.prune not in PRUNE_RULES:
            raise ConfigError(f"sweep: prune {self.prune!r} is not one of {', '.join(PRUNE_RULES)}")
        if not self.params:
            raise ConfigError("sweep: give at least one field to sweep, e.g. lr_g=1e-4,2e-4")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ConfigError(f"sweep: {', '.join(sorted({n for n in names if names.count(n) > 1}))} swept twice")
        if not 1 <= self.seeds <= MAX_SEEDS:
            raise ConfigError(f"sweep: seeds {self.seeds} is out of range; allowed 1 to {MAX_SEEDS}")
        if not (1 <= self.grace <= 10_000 and 2 <= self.eta <= 10):
            raise ConfigError("sweep: grace must be 1 to 10,000 epochs and eta 2 to 10")
        if self.mode == "grid":
            ranged = [p.name for p in self.params if p.lo is not None]
            if ranged:
                raise ConfigError(f"sweep: a grid needs values, not ranges ({', '.join(ranged)}); use random "
                                  f"search for ranges")
            if self.draws:
                raise ConfigError("sweep: draws are for random search; a grid takes every combination")
            count = math.prod(len(p.choices) for p in self.params)
        else:
            if not 1 <= self.draws <= MAX_POINTS:
                raise ConfigError(f"sweep: random search needs 1 to {MAX_POINTS} draws, got {self.draws}")
            count = self.draws
        if count * self.seeds > MAX_POINTS:
            raise ConfigError(f"sweep: {count} points × {self.seeds} seed(s) = {count * self.seeds} runs, more than "
                              f"the {MAX_POINTS} one sweep may queue")

    def points(self) -> list[dict[str, Any]]:
        """The points (field → value), seeds not included: every grid combination, or `draws` random draws."""
        if self.mode == "grid":
            return [dict(zip([p.name for p in self.params], combo))
                    for combo in product(*(p.choices for p in self.params))]
        rng = random.Random(self.draw_seed)
        return [{p.name: p.draw(rng) for p in self.params} for _ in range(self.draws)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the store's sweeps row."""
        return {"params": [p.text() for p in self.params], "mode": self.mode, "draws": self.draws,
                "seeds": self.seeds, "prune": self.prune, "grace": self.grace, "eta": self.eta,
                "draw_seed": self.draw_seed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepSpec:
        """Inverse of `to_dict`; ConfigError for anything malformed."""
        try:
            return cls(params=tuple(parse_param(t) for t in data["params"]),
                       **{k: data[k] for k in ("mode", "draws", "seeds", "prune", "grace", "eta", "draw_seed")
                          if k in data})
        except (KeyError, TypeError) as e:
            raise ConfigError(f"sweep: malformed spec ({e})") from None

    def describe(self) -> str:
        """'grid over lr_g × loss, 4 points × 2 seeds, median pruning from epoch 1'."""
        what = (f"grid over {' × '.join(p.name for p in self.params)}" if self.mode == "grid"
                else f"{self.draws} random draws over {', '.join(p.name for p in self.params)}")
        prune = {"none": "no pruning", "median": f"median pruning from epoch {self.grace}",
                 "asha": f"ASHA pruning (rungs at epoch {self.grace}·{self.eta}^k)"}[self.prune]
        return f"{what}, {len(self.points())} points × {self.seeds} seed(s), {prune}"


@dataclass(frozen=True)
class PlannedRun:
    """One run a sweep queues: its point's index, the swept values, the seed repeat, and the full config."""
    point: int
    values: dict[str, Any]
    repeat: int
    config: TrainConfig


def plan(base: TrainConfig, spec: SweepSpec) -> list[PlannedRun]:
    """Every run of the sweep, validated: ConfigError naming each bad point and why, before anything is queued."""
    runs, bad = [], []
    for i, values in enumerate(spec.points()):
        for r in range(spec.seeds):
            try:
                cfg = base.replace(**values, seed=(base.seed + r) % 2**31)
            except ConfigError as e:
                bad.append(f"point {i + 1} ({point_text(values)}): {e}")
                break
            if spec.prune != "none" and not cfg.eval_samples:  # a point never scored could never be judged
                bad.append(f"point {i + 1} ({point_text(values)}): pruning compares the Fréchet distance each "
                           f"epoch, so eval_samples must be on (≥ 100)")
                break
            runs.append(PlannedRun(i, values, r, cfg))
    if bad:
        raise ConfigError("sweep refused, nothing was queued: " + "; ".join(bad[:5])
                          + (f"; and {len(bad) - 5} more" if len(bad) > 5 else ""))
    return runs


def point_text(values: Mapping[str, Any]) -> str:
    """'lr_g=0.0001, loss=hinge'."""
    return ", ".join(f"{k}={_show(v)}" for k, v in values.items())


def total_steps(runs: Sequence[PlannedRun]) -> int:
    """Steps the whole sweep plans (before any pruning)."""
    return sum(planned_steps(r.config) for r in runs)


# --- pruning -------------------------------------------------------------------------------------------------------
def prune_verdict(spec: SweepSpec, epoch: int, mine: float, peers: Sequence[float]) -> str | None:
    """Why a run whose FD at `epoch` is `mine` should stop, given its sweep's other runs' FDs at that epoch (None:
    keep going). Median: worse than the peers' median from epoch `grace` on. ASHA: at a rung (grace·eta^k), not in
    the best 1/eta of the runs that reached it. Fewer than MIN_PEERS peers decide nothing; a NaN FD is worst."""
    peers = [p if p == p else math.inf for p in peers]
    mine = mine if mine == mine else math.inf
    if spec.prune == "none" or epoch < spec.grace or len(peers) < MIN_PEERS:
        return None
    if spec.prune == "median":
        median = statistics.median(peers)
        if mine > median:
            return (f"pruned at epoch {epoch}: FD {mine:.1f} was worse than the median {median:.1f} of "
                    f"{len(peers)} other runs of its sweep at that epoch")
        return None
    rung = spec.grace
    while rung < epoch:
        rung *= spec.eta
    if rung != epoch:
        return None
    everyone = sorted([*peers, mine])
    keep = max(1, len(everyone) // spec.eta)
    if mine > everyone[keep - 1]:
        return (f"pruned at epoch {epoch} (ASHA rung): FD {mine:.1f} was not in the best {keep} of the "
                f"{len(everyone)} runs of its sweep that reached it")
    return None


# --- leaderboard ---------------------------------------------------------------------------------------------------
def run_metric(rows: Sequence[Mapping[str, Any]], metric: str) -> float | None:
    """One run's number for `metric` (a METRICS key) from its quality rows; None when it has none."""
    key, how, lower = METRICS[metric]
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and r[key] == r[key]]
    if not values:
        return None
    if how == "last":
        return values[-1]
    return min(values) if lower else max(values)


@dataclass(frozen=True)
class Entry:
    """A leaderboard row: one point of the sweep over its seeds; `rank` is None until one of its runs is scored."""
    rank: int | None
    point: int
    values: dict[str, Any]
    run_ids: tuple[int, ...]
    mean: float | None
    std: float | None
    scores: tuple[float | None, ...]
    statuses: tuple[str, ...]


def leaderboard(points: Sequence[Mapping[str, Any]], runs: Iterable[tuple[int, int, str]],
                quality: Mapping[int, Sequence[Mapping[str, Any]]], metric: str = "best FD") -> list[Entry]:
    """The sweep's points ranked by the mean of `metric` over their seeds (best first; points with no score yet
    last, unranked: "1" beside a queued run would read as its winner). `runs` is (run id, point index, status);
    `quality` maps run id → its quality rows."""
    if metric not in METRICS:
        raise ConfigError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    lower = METRICS[metric][2]
    by_point: dict[int, list[tuple[int, str]]] = {}
    for run_id, point, status in runs:
        by_point.setdefault(point, []).append((run_id, status))
    rows = []
    for point, members in by_point.items():
        members.sort()
        scores = tuple(run_metric(quality.get(rid, ()), metric) for rid, _ in members)
        have = [s for s in scores if s is not None]
        mean = statistics.fmean(have) if have else None
        std = statistics.stdev(have) if len(have) > 1 else None
        values = dict(points[point]) if 0 <= point < len(points) else {}
        rows.append((mean, point, values, tuple(r for r, _ in members), std, scores, tuple(s for _, s in members)))
    rows.sort(key=lambda t: (t[0] is None, 0 if t[0] is None else (t[0] if lower else -t[0]), t[1]))
    return [Entry(None if m is None else i + 1, p, v, ids, m, s, sc, st)
            for i, (m, p, v, ids, s, sc, st) in enumerate(rows)]


def best_so_far(finished: Sequence[tuple[float, float | None]], lower: bool = True) -> list[tuple[float, float]]:
    """(time, best score up to then) at each (time, score) in time order, for the "best so far" chart."""
    out, best = [], None
    for t, s in sorted((t, s) for t, s in finished if s is not None):
        best = s if best is None or (s < best if lower else s > best) else best
        out.append((t, best))
    return out
