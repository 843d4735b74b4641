"""The queries on the run database: submit, claim and finish runs, record step metrics, samples, quality and
workers, read them back for the pages. The tables, schema version, migrations and engines are in schema.py.

Every browser session and every worker reads and writes the same rows, so a run belongs to the server, not to a tab.
A run's status changes only here, and only along status.TRANSITIONS (see `_may_become`).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from ..budget import check_fits
from ..config import ConfigError, TrainConfig, extended, planned_steps
from .capability import Capabilities, can_take_json
from .schema import (  # noqa: F401  (not used here: re-exported for the tests that import them from here)
    AdvisoryLock,
    Base,
    Meta,
    QualityRow,
    Run,
    Sample,
    StepMetric,
    StoreError,
    Submission,
    SweepRow,
    Worker,
    connect,
    lock,
    migrate,
)
from .status import ACTIVE, FINISHED, LIVE, RESUMABLE, TRANSITIONS, RunStatus


@dataclass(frozen=True)
class RunView:
    """A plain, detached snapshot of a run row, safe to hand to any thread or page."""
    id: int
    name: str
    owner: str
    config: TrainConfig
    status: str
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    worker_id: str | None
    stop_requested: bool
    resume: bool
    epoch: int
    step: int
    total_steps: int
    artifacts: str
    tags: tuple[str, ...] = ()
    description: str = ""
    deleted_at: float | None = None
    owner_key: str = ""
    ran_on: str = ""
    sweep_id: int | None = None
    sweep_point: int | None = None
    address: str = ""
    subnet: str = ""
    queued_at: float | None = None

    @property
    def progress(self) -> float:
        """Fraction of the planned steps done, 0..1."""
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


@dataclass(frozen=True)
class UnreadableRun:
    """A run row whose stored config no longer reads as a TrainConfig (edited by hand, damaged): the lists leave it
    out and name it here, so one bad row never hides the others."""
    id: int
    name: str
    owner: str
    status: str
    reason: str

    def text(self) -> str:
        """'run #7 (lr test, owner ada, stopped): eval_samples: expected …'."""
        return (f"run #{self.id} ({self.name}, owner {self.owner or '–'}, {self.status}): its stored settings cannot "
                f"be read ({self.reason})")


def _views(rows: Iterable[Any], unreadable: list[UnreadableRun] | None) -> list[RunView]:
    """RunViews of the rows whose config reads; each other row is appended to `unreadable` (when given) instead of
    failing the whole list."""
    out = []
    for r in rows:
        try:
            out.append(_view(r))
        except (ConfigError, ValueError, TypeError) as e:  # ValueError: JSON that does not parse at all
            if unreadable is not None:
                unreadable.append(UnreadableRun(r.id, r.name, r.owner or "", r.status, str(e)))
    return out


def _view(r: Any) -> RunView:
    """A RunView from a core result row of `select(Run)`; ConfigError where its stored config does not read."""
    return RunView(r.id, r.name, r.owner, TrainConfig.from_json(r.config_json), r.status, r.error, r.created_at,
                   r.started_at, r.finished_at, r.heartbeat_at, r.worker_id, r.stop_requested, r.resume, r.epoch,
                   r.step, r.total_steps, r.artifacts, tuple(t for t in (r.tags or "").split(",") if t),
                   r.description or "", r.deleted_at, r.owner_key or "", r.ran_on or "", r.sweep_id, r.sweep_point,
                   r.address or "", r.subnet or "", r.queued_at)


@dataclass(frozen=True)
class RunWhere:
    """Which (not deleted) runs a listing holds, as SQL: each field None for any. `owners`: owner labels, '' for a
    run without one; `tag`: one tag of the run's tags; `sweep`: a sweep id, or 0 for the runs outside every sweep;
    `text`: words in the name."""
    owners: tuple[str, ...] | None = None
    tag: str | None = None
    status: str | None = None
    sweep: int | None = None
    text: str | None = None  # words the name contains, any case; '%' and '_' in them are literal

    def clauses(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses, soft-deleted runs left out."""
        out: list[ColumnElement[bool]] = [Run.deleted_at.is_(None)]
        if self.owners is not None:
            out.append(func.coalesce(Run.owner, "").in_(list(self.owners)))
        if self.tag is not None:  # tags are stored "a,b,c": the tag between commas, its '_' not a LIKE wildcard
            out.append(("," + func.coalesce(Run.tags, "") + ",").contains(f",{self.tag},", autoescape=True))
        if self.status is not None:
            out.append(Run.status == self.status)
        if self.sweep is not None:
            out.append(Run.sweep_id.is_(None) if self.sweep == 0 else Run.sweep_id == self.sweep)
        if self.text:
            out.append(Run.name.icontains(self.text, autoescape=True))
        return out


@dataclass(frozen=True)
class SweepView:
    """A detached snapshot of a sweep row: its spec (sweep.SweepSpec as a dict), base config and planned points."""
    id: int
    name: str
    owner: str
    owner_key: str
    spec: dict[str, Any]
    base: TrainConfig
    points: tuple[dict[str, Any], ...]
    created_at: float


def _sweep_view(r: Any) -> SweepView:
    return SweepView(r.id, r.name, r.owner, r.owner_key, json.loads(r.spec_json), TrainConfig.from_json(r.base_json),
                     tuple(json.loads(r.points_json)), r.created_at)


MAX_NAME, MAX_TAGS, MAX_TAG, MAX_DESCRIPTION, MAX_OWNER = 200, 10, 40, 2000, 100


def clean_text(value: str, field: str, limit: int) -> str:
    """A name or description: stripped, no control characters, at most `limit` characters (else ConfigError).

    Kept as plain text: every page renders it as text, never as HTML or markdown (see web.text.plain)."""
    # isprintable() is False for control characters (ESC, NUL) and for format characters such as U+202E (right-to-
    # left override), which would make a name display as something else.
    value = "".join(ch for ch in str(value) if ch in "\n\t" or ch.isprintable()).strip()
    if len(value) > limit:
        raise ConfigError(f"{field}: {len(value)} characters is too long; allowed up to {limit}")
    return value


def clean_tags(tags: str | Iterable[str]) -> tuple[str, ...]:
    """Tags from 'a, b' or a list: lower-case words of letters, digits, '-', '_' or '.', deduplicated."""
    parts = tags.split(",") if isinstance(tags, str) else list(tags)
    out: list[str] = []
    for t in (str(p).strip().lower() for p in parts):
        if not t:
            continue
        if len(t) > MAX_TAG or not all(ch.isalnum() or ch in "-_." for ch in t):
            raise ConfigError(f"tags: {t[:MAX_TAG]!r} is not a tag; use up to {MAX_TAG} letters, digits, '-', '_' "
                              f"or '.'")
        if t not in out:
            out.append(t)
    if len(out) > MAX_TAGS:
        raise ConfigError(f"tags: {len(out)} tags is too many; allowed up to {MAX_TAGS}")
    return tuple(out)


def _insert_run(c: Connection, cfg: TrainConfig, **values: Any) -> int:
    """Insert one queued run row (values already cleaned) inside transaction `c`; returns its id."""
    now = time.time()
    run_id = c.execute(insert(Run).values(config_json=cfg.to_json(), status=RunStatus.QUEUED, created_at=now,
                                          queued_at=now, total_steps=planned_steps(cfg), **values)
                       .returning(Run.id)).scalar_one()
    c.execute(update(Run).where(Run.id == run_id).values(artifacts=f"run-{run_id:06d}"))  # see artifacts_dir
    return run_id


@dataclass(frozen=True)
class NewRun:
    """A run submission checked and cleaned (see `check_submission`), ready to insert."""
    cfg: TrainConfig
    name: str
    owner: str
    owner_key: str
    tags: str
    description: str


def check_submission(cfg: TrainConfig | dict[str, Any], name: str = "", owner: str = "", preset: str | None = None,
                     tags: str | Iterable[str] = (), description: str = "", owner_key: str | None = None) -> NewRun:
    """Everything `Store.submit` refuses, checked without a store: ConfigError for bad input. The CLI calls it
    before it opens the store, so a refused submission writes nothing, not even the database file."""
    if not isinstance(cfg, TrainConfig):
        cfg = TrainConfig.from_preset(preset, **cfg) if preset else TrainConfig.from_dict(cfg)
    elif preset:
        raise ConfigError("preset: give either a preset and overrides, or a full TrainConfig")
    check_fits(cfg)  # in every mode, whoever submits: a run that cannot fit in memory is never queued
    name = clean_text(name, "name", MAX_NAME) or f"{cfg.arch}-{cfg.dataset}"
    owner = clean_owner(owner)
    owner_key = owner_key if owner_key is not None else (f"name:{owner}" if owner else "")
    return NewRun(cfg, name, owner, owner_key, ",".join(clean_tags(tags)),
                  clean_text(description, "description", MAX_DESCRIPTION))


def clean_owner(owner: str) -> str:
    """An owner label: `clean_text`, on one line (it is a label in tables)."""
    return " ".join(clean_text(owner, "owner", MAX_OWNER).split())


def check_sweep_submission(name: str, owner: str, configs: Sequence[TrainConfig]) -> tuple[str, str]:
    """Everything `Store.submit_sweep` refuses, checked without a store (as `check_submission`): the sweep's cleaned
    (name, owner); ConfigError for no runs, a run that cannot fit, or a bad name or owner."""
    if not configs:
        raise ConfigError("sweep: it has no runs to queue")
    for cfg in configs:
        check_fits(cfg)
    return clean_text(name, "name", MAX_NAME) or "sweep", clean_owner(owner)


def gan_home() -> Path:
    """Root folder for the database and run artifacts: `GAN_HOME`, default ./runs."""
    return Path(os.environ.get("GAN_HOME") or "runs").resolve()


def _where_from(address: str | None, subnet: str | None) -> dict[str, str]:
    """The address and subnet columns to set on a resume ({} where the caller gave none: they stay)."""
    return {k: v for k, v in (("address", address), ("subnet", subnet)) if v is not None}


def _fair_share() -> list[ColumnElement[Any]]:
    """The ORDER BY terms of `Store.claim`'s fair share, for each queued run: when a run of its subnet, of its
    address and of its owner last started (-1: never). Each is one lookup in an (x, started_at) index."""
    terms: list[ColumnElement[Any]] = []
    for name in ("subnet", "address", "owner_key"):
        other = aliased(Run)
        last = (select(func.max(other.started_at)).where(getattr(other, name) == getattr(Run, name))
                .scalar_subquery())
        terms.append(func.coalesce(last, -1.0))
    return terms


def _may_become(new: RunStatus, *old: RunStatus) -> ColumnElement[bool]:
    """The WHERE clause of an UPDATE that moves a run to `new`: its status is one of `old` (default: every status
    TRANSITIONS lets move to `new`). A move TRANSITIONS forbids is a bug in the store: ValueError."""
    allowed = {s for s, targets in TRANSITIONS.items() if new in targets}
    if not set(old) <= allowed:
        raise ValueError(f"a run cannot go from {', '.join(sorted(set(old) - allowed))} to {new}")
    return Run.status.in_(sorted(old or allowed))


class Store:
    """All reads and writes of runs, metrics, samples and workers; one instance per process is enough."""

    def __init__(self, url: str | None = None, home: str | os.PathLike | None = None) -> None:
        self.home = Path(home).resolve() if home else gan_home()
        self.url = url or os.environ.get("GAN_DB_URL") or f"sqlite:///{self.home / 'gan_studio.db'}"
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.home.mkdir(parents=True, exist_ok=True)
        self.engine, self.reader = connect(self.url)  # StoreError for a URL that cannot be used
        migrate(self.engine)

    def dispose(self) -> None:
        """Close pooled connections (before fork, at exit)."""
        self.engine.dispose()
        self.reader.dispose()

    # --- runs ------------------------------------------------------------------------------------------------
    def submit(self, cfg: TrainConfig | dict[str, Any], name: str = "", owner: str = "",
               preset: str | None = None, tags: str | Iterable[str] = (), description: str = "",
               guard: Callable[[Connection, TrainConfig], None] | None = None, owner_key: str | None = None,
               address: str = "", subnet: str = "") -> int:
        """Validate (`check_submission`) and queue a run; returns its id. Bad input raises ConfigError and writes
        nothing. `address` and `subnet`: the submitter's (policy.Identity.address, policy.subnet), '' if not known.

        `guard(conn, cfg)` runs inside the write transaction, after the lock, so limits it checks (runs queued,
        submissions per minute) cannot be raced past by two submissions at once; it raises to refuse."""
        new = check_submission(cfg, name, owner, preset, tags, description, owner_key)
        with self.engine.begin() as c:
            if guard is not None:
                lock(c, AdvisoryLock.GUARD)
                guard(c, new.cfg)
            return _insert_run(c, new.cfg, name=new.name, owner=new.owner, owner_key=new.owner_key, tags=new.tags,
                               description=new.description, address=address, subnet=subnet)

    def submit_sweep(self, name: str, spec: dict[str, Any], base: TrainConfig,
                     runs: Sequence[tuple[int, TrainConfig]], points: Sequence[dict[str, Any]], owner: str = "",
                     owner_key: str | None = None, tags: str | Iterable[str] = (),
                     guard: Callable[[Connection, TrainConfig], None] | None = None, address: str = "",
                     subnet: str = "") -> int:
        """Queue a sweep and all its runs ((point index, config) each, already planned by sweep.plan) in one
        transaction: all or nothing. Every config is checked again here (`check_sweep_submission`); `guard`,
        `address` and `subnet` as in `submit`, the guard once for the lot. Returns the sweep's id."""
        name, owner = check_sweep_submission(name, owner, [cfg for _, cfg in runs])
        owner_key = owner_key if owner_key is not None else (f"name:{owner}" if owner else "")
        tag_text = ",".join(clean_tags([*clean_tags(tags), "sweep"]))
        with self.engine.begin() as c:
            if guard is not None:
                lock(c, AdvisoryLock.GUARD)
                guard(c, runs[0][1])
            sweep_id = c.execute(insert(SweepRow).values(
                name=name, owner=owner, owner_key=owner_key, spec_json=json.dumps(spec), base_json=base.to_json(),
                points_json=json.dumps([{k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}
                                        for p in points]), created_at=time.time()).returning(SweepRow.id)).scalar_one()
            for point, cfg in runs:
                _insert_run(c, cfg, name=f"{name} #{point + 1} s{cfg.seed}", owner=owner, owner_key=owner_key,
                            tags=tag_text, description="", sweep_id=sweep_id, sweep_point=point, address=address,
                            subnet=subnet)
        return sweep_id

    def get_sweep(self, sweep_id: int) -> SweepView | None:
        """One sweep, or None."""
        with self.reader.connect() as c:
            row = c.execute(select(SweepRow).where(SweepRow.id == sweep_id)).first()
        return _sweep_view(row) if row else None

    def list_sweeps(self) -> list[SweepView]:
        """Every sweep, newest first."""
        with self.reader.connect() as c:
            return [_sweep_view(r) for r in c.execute(select(SweepRow).order_by(SweepRow.id.desc()))]

    def sweep_run_counts(self) -> dict[int, int]:
        """How many (not deleted) runs each sweep has left: sweep id → count, sweeps with none left out."""
        with self.reader.connect() as c:
            rows = c.execute(select(Run.sweep_id, func.count()).where(
                Run.sweep_id.is_not(None), Run.deleted_at.is_(None)).group_by(Run.sweep_id)).all()
        return {sweep_id: count for sweep_id, count in rows if sweep_id is not None}

    def sweep_runs(self, sweep_id: int, unreadable: list[UnreadableRun] | None = None) -> list[RunView]:
        """The runs of a sweep (soft-deleted ones left out), in the order they were queued; rows whose config does
        not read are left out and appended to `unreadable`."""
        with self.reader.connect() as c:
            return _views(c.execute(select(Run).where(Run.sweep_id == sweep_id, Run.deleted_at.is_(None))
                                    .order_by(Run.id)), unreadable)

    def resume_sweep(self, sweep_id: int, run_ids: Iterable[int],
                     guard: Callable[[Connection, TrainConfig], None] | None = None, address: str | None = None,
                     subnet: str | None = None) -> list[int]:
        """Queue again, in one transaction, those of `run_ids` that are still runs of the sweep a person stopped or
        a dead worker interrupted (sweep.RESUME_STATUSES), each to continue from its newest checkpoint, at the back
        of the queue; `guard` as in `submit`, once for the lot; `address` and `subnet`, when given, are the
        resumer's, whose caps the runs now count against. Returns the ids queued (none: nothing was left to
        resume)."""
        from .sweep import RESUME_STATUSES

        with self.engine.begin() as c:
            if guard is not None:
                lock(c, AdvisoryLock.GUARD)
            rows = c.execute(select(Run.id, Run.config_json).where(
                Run.sweep_id == sweep_id, Run.id.in_(list(run_ids)), Run.deleted_at.is_(None),
                Run.status.in_(sorted(RESUME_STATUSES))).order_by(Run.id)).all()
            if not rows:
                return []
            if guard is not None:
                guard(c, TrainConfig.from_json(rows[0].config_json))
            # As in request_resume: the WHERE allows again only moves into queued from these statuses, in case
            # another writer moved a run since the read (PostgreSQL reads committed rows).
            done = c.execute(update(Run).where(Run.id.in_([r.id for r in rows]),
                                               _may_become(RunStatus.QUEUED, *RESUME_STATUSES))
                             .values(status=RunStatus.QUEUED, resume=True, stop_requested=False, error=None,
                                     finished_at=None, queued_at=time.time(), **_where_from(address, subnet))
                             .returning(Run.id))
            return sorted(done.scalars())

    def sweep_fds_at(self, sweep_id: int, epoch: int, exclude: int) -> list[float]:
        """The Fréchet distances the sweep's other runs (not `exclude`) recorded at `epoch`, for the pruning rule."""
        with self.reader.connect() as c:
            rows = c.execute(select(QualityRow.data).join(Run, Run.id == QualityRow.run_id).where(
                Run.sweep_id == sweep_id, Run.id != exclude, QualityRow.epoch == epoch)).scalars().all()
        fds = [json.loads(d).get("fd") for d in rows]
        return [float(f) for f in fds if isinstance(f, (int, float))]

    def stop_sweep(self, sweep_id: int, remove_unstarted: bool = False) -> int:
        """Ask every queued or running run of the sweep to stop (`remove_unstarted` as in `request_stop`); returns
        how many were asked."""
        return sum(self.request_stop(r.id, remove_unstarted) for r in self.sweep_runs(sweep_id) if r.status in LIVE)

    def get(self, run_id: int) -> RunView | None:
        """One run, or None."""
        with self.reader.connect() as c:
            row = c.execute(select(Run).where(Run.id == run_id)).first()
        return _view(row) if row else None

    def list_runs(self, statuses: Iterable[str] | None = None, deleted: bool = False,
                  unreadable: list[UnreadableRun] | None = None) -> list[RunView]:
        """Runs, newest first, optionally only those in `statuses`; soft-deleted ones only if `deleted`. A row whose
        stored config does not read is left out (appended to `unreadable`), never failing the whole list."""
        q = select(Run).order_by(Run.id.desc())
        if not deleted:
            q = q.where(Run.deleted_at.is_(None))
        if statuses:
            q = q.where(Run.status.in_(list(statuses)))
        with self.reader.connect() as c:
            return _views(c.execute(q), unreadable)

    # --- the runs table: one page at a time, however many rows -------------------------------------------------
    def runs_page(self, where: RunWhere, limit: int, offset: int = 0,
                  unreadable: list[UnreadableRun] | None = None) -> list[RunView]:
        """At most `limit` (not deleted) runs that match `where`, newest first, after skipping `offset` of them:
        one page of the runs table, read and parsed alone. Unreadable rows as in `list_runs`."""
        q = select(Run).where(*where.clauses()).order_by(Run.id.desc()).limit(limit).offset(offset)
        with self.reader.connect() as c:
            return _views(c.execute(q), unreadable)

    def count_matching(self, where: RunWhere) -> int:
        """How many (not deleted) runs match `where`: the runs table's total."""
        with self.reader.connect() as c:
            return int(c.execute(select(func.count()).select_from(Run).where(*where.clauses())).scalar_one())

    def recent_runs(self, limit: int, also: Iterable[int] = (),
                    unreadable: list[UnreadableRun] | None = None) -> list[RunView]:
        """The newest `limit` (not deleted) runs, then those of the ids in `also` that are older (a run a link or a
        picker names), newest first: what a page's run picker offers without reading every row."""
        recent = self.runs_page(RunWhere(), limit, 0, unreadable)
        seen = {r.id for r in recent} | {u.id for u in unreadable or ()}
        extra = sorted({int(i) for i in also} - seen, reverse=True)
        if not extra:
            return recent
        with self.reader.connect() as c:
            older = _views(c.execute(select(Run).where(Run.id.in_(extra), Run.deleted_at.is_(None))
                                     .order_by(Run.id.desc())), unreadable)
        return recent + older

    def run_facets(self, limit: int) -> dict[str, list[Any]]:
        """What the runs table's filters can offer, from the (not deleted) runs: owner labels ('' for none) and tags
        of the runs with the newest ids (at most `limit` distinct values each) and every sweep id with runs."""
        live = Run.deleted_at.is_(None)
        with self.reader.connect() as c:
            # Grouped on the column itself: PostgreSQL does not match a GROUP BY coalesce(owner, $2) to the SELECT's
            # coalesce(owner, $1). NULL (rows from before owners) and '' both read as '' below.
            owners = c.execute(select(Run.owner).where(live).group_by(Run.owner)
                               .order_by(func.max(Run.id).desc()).limit(limit)).scalars().all()
            tag_sets = c.execute(select(Run.tags).where(live, Run.tags.is_not(None), Run.tags != "")
                                 .group_by(Run.tags).order_by(func.max(Run.id).desc()).limit(limit)).scalars().all()
            sweeps = c.execute(select(Run.sweep_id).where(live, Run.sweep_id.is_not(None)).distinct()).scalars().all()
        tags: list[str] = []
        for text in tag_sets:
            tags.extend(t for t in text.split(",") if t and t not in tags)
        return {"owner": list(dict.fromkeys(o or "" for o in owners)), "tag": tags[:limit],
                "sweep": sorted(sweeps, reverse=True)}

    def listing_token(self, where: RunWhere, limit: int, offset: int = 0, also: Iterable[int] = (),
                      stale_after: float | None = None) -> tuple:
        """What a Runs page drawn from this listing shows, apart from the progress of active runs, in a few small
        reads (no config parsed): the total that matches, each row of the page and of `also` (id, status, name,
        owner, tags, stop asked, deleted), how many runs are queued and active in the store (queue places), and how
        many workers are live (`stale_after`). Equal tokens: nothing to redraw."""
        cols = (Run.id, Run.status, Run.name, Run.owner, Run.tags, Run.stop_requested, Run.deleted_at)
        page = select(*cols).where(*where.clauses()).order_by(Run.id.desc()).limit(limit).offset(offset)
        counts = select(func.count()).select_from(Run).where(*where.clauses()).scalar_subquery(), \
            select(func.count()).select_from(Run).where(Run.status == RunStatus.QUEUED).scalar_subquery(), \
            select(func.count()).select_from(Run).where(Run.status.in_(ACTIVE)).scalar_subquery()
        with self.reader.connect() as c:
            rows = tuple(tuple(r) for r in c.execute(page))
            named = tuple(tuple(r) for r in c.execute(select(*cols).where(Run.id.in_([int(i) for i in also]))))
            total, queued, active = c.execute(select(*counts)).one()
            workers = (c.execute(select(func.count()).select_from(Worker)
                                 .where(Worker.heartbeat_at >= time.time() - stale_after)).scalar_one()
                       if stale_after is not None else None)
        return total, rows, named, queued, active, workers

    def trained_runs(self, limit: int) -> list[RunView]:
        """The newest `limit` (not deleted) runs that a worker started (ran_on set: they have speeds to learn
        from), newest first; unreadable rows left out."""
        q = (select(Run).where(Run.deleted_at.is_(None), Run.ran_on.is_not(None), Run.ran_on != "")
             .order_by(Run.id.desc()).limit(limit))
        with self.reader.connect() as c:
            return _views(c.execute(q), None)

    def deleted_runs(self, owner_keys: Iterable[str] | None = None, limit: int = 100) -> list[RunView]:
        """Soft-deleted runs, newest first, at most `limit`; only those of `owner_keys` unless None (an admin)."""
        q = select(Run).where(Run.deleted_at.is_not(None)).order_by(Run.id.desc()).limit(limit)
        if owner_keys is not None:
            q = q.where(Run.owner_key.in_([k for k in owner_keys if k]))
        with self.reader.connect() as c:
            return _views(c.execute(q), None)

    def live_run_names(self, owner_key: str) -> dict[int, str]:
        """{id: name} of the queued or active runs of `owner_key`: a toast watcher's look, no config parsed."""
        with self.reader.connect() as c:
            return dict(c.execute(select(Run.id, Run.name).where(Run.owner_key == owner_key, Run.status.in_(LIVE),
                                                                 Run.deleted_at.is_(None))).all())

    def artifacts_dir(self, run: RunView) -> Path:
        """Absolute artifacts folder of a run: the row's `artifacts` folder (`run-<id>`, as submit writes it) inside
        GAN_HOME; StoreError for a row that leads anywhere else."""
        return self._artifacts_path(run.artifacts, run.id)

    def _artifacts_path(self, artifacts: str, run_id: int) -> Path:
        # A row from before the column was filled (or a RunView made by hand) has "": its folder was always run-<id>.
        path = (self.home / (artifacts or f"run-{run_id:06d}")).resolve()
        if path.parent != self.home:  # a row is data, not a trusted path: "../x" or "/etc" must not become a folder
            raise StoreError(f"run {run_id}: artifacts folder {path} is outside {self.home}")
        return path

    def update_info(self, run_id: int, name: str | None = None, tags: str | Iterable[str] | None = None,
                    description: str | None = None) -> None:
        """Rename, retag or redescribe a run (validated like submit)."""
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = clean_text(name, "name", MAX_NAME) or "unnamed"
        if tags is not None:
            values["tags"] = ",".join(clean_tags(tags))
        if description is not None:
            values["description"] = clean_text(description, "description", MAX_DESCRIPTION)
        if values:
            with self.engine.begin() as c:
                c.execute(update(Run).where(Run.id == run_id).values(**values))

    def soft_delete(self, run_id: int) -> bool:
        """Hide a run that is not training (stop it first); its rows and files stay until `purge`."""
        with self.engine.begin() as c:
            return bool(c.execute(update(Run).where(Run.id == run_id, Run.deleted_at.is_(None),
                                                    Run.status.not_in(LIVE))
                                  .values(deleted_at=time.time())).rowcount)

    def restore(self, run_id: int) -> bool:
        """Undo a soft delete."""
        with self.engine.begin() as c:
            return bool(c.execute(update(Run).where(Run.id == run_id, Run.deleted_at.is_not(None))
                                  .values(deleted_at=None)).rowcount)

    def purge(self, run_id: int) -> bool:
        """Delete a soft-deleted run for good: its rows (metrics, samples, quality cascade) and artifacts folder."""
        import shutil

        run = self.get(run_id)
        if run is None or run.deleted_at is None:
            return False
        shutil.rmtree(self.artifacts_dir(run), ignore_errors=True)
        with self.engine.begin() as c:
            for table in (StepMetric, Sample, QualityRow):  # explicit: SQLite enforces no cascade without a pragma
                c.execute(delete(table).where(table.run_id == run_id))
            c.execute(delete(Run).where(Run.id == run_id))
        return True

    def count_runs(self, conn: Connection | None = None, owner_key: str | None = None,
                   statuses: Iterable[str] | None = None, since: float | None = None, address: str | None = None,
                   subnet: str | None = None) -> int:
        """How many (not deleted) runs match; pass `conn` to count inside a submit guard's transaction."""
        q = select(func.count()).select_from(Run).where(Run.deleted_at.is_(None))
        for column, value in ((Run.owner_key, owner_key), (Run.address, address), (Run.subnet, subnet)):
            if value is not None:
                q = q.where(column == value)
        if statuses is not None:
            q = q.where(Run.status.in_(list(statuses)))
        if since is not None:
            q = q.where(Run.created_at >= since)
        if conn is not None:
            return int(conn.execute(q).scalar_one())
        with self.reader.connect() as c:
            return int(c.execute(q).scalar_one())

    # --- submissions: what the demo's per-minute caps count ---------------------------------------------------
    @staticmethod
    def record_submission(conn: Connection, at: float, runs: int, owner_key: str, address: str = "",
                          subnet: str = "") -> None:
        """Log an accepted submission of `runs` runs inside a submit guard's transaction `conn` (a refused or
        failed submission rolls back with it); entries older than an hour go."""
        conn.execute(delete(Submission).where(Submission.at < at - 3600))
        conn.execute(insert(Submission).values(at=at, runs=runs, owner_key=owner_key, address=address,
                                               subnet=subnet))

    @staticmethod
    def count_submitted(conn: Connection, since: float, owner_key: str | None = None, address: str | None = None,
                        subnet: str | None = None) -> int:
        """Runs submitted at or after `since` (by `owner_key`, from `address` or `subnet` when given), whether or
        not they still exist: a run stopped before it trained is deleted but still counts here."""
        q = select(func.coalesce(func.sum(Submission.runs), 0)).where(Submission.at >= since)
        for column, value in ((Submission.owner_key, owner_key), (Submission.address, address),
                              (Submission.subnet, subnet)):
            if value is not None:
                q = q.where(column == value)
        return int(conn.execute(q).scalar_one())

    # --- the queue: fair share ------------------------------------------------------------------------------
    def queue_position(self, run_id: int) -> int | None:
        """1 for the next run a worker claims, 2 for the one after…, in `claim`'s order (were nothing else to
        change); None if not queued."""
        order = self.queue_order(until=run_id)
        return order.index(run_id) + 1 if run_id in order else None

    def queue_order(self, until: int | None = None) -> list[int]:
        """The queued runs' ids in the order successive claims would take them (stopping at `until`, when given):
        `claim`'s rule replayed, each claim making its run's subnet, address and owner the most recently served.
        Reads only the queued rows' keys and, per key, one index lookup."""
        with self.reader.connect() as c:
            rows = c.execute(select(Run.id, Run.subnet, Run.address, Run.owner_key)
                             .where(Run.status == RunStatus.QUEUED).order_by(Run.queued_at, Run.id)).all()
            if until is not None and until not in {r.id for r in rows}:
                return []
            served = [{k: v for k, v in c.execute(select(col, func.max(Run.started_at))
                                                  .where(col.in_({getattr(r, col.key) for r in rows}))
                                                  .group_by(col))}
                      for col in (Run.subnet, Run.address, Run.owner_key)]
        # One line per (subnet, address, owner), oldest first: a claim takes the head of one line, so only the
        # heads compete, and serving one changes the keys of only the lines that share its subnet, address or owner.
        lines: dict[tuple[str, str, str], list[int]] = {}
        for r in reversed(rows):  # newest first: each line's head, its oldest, is its last item
            lines.setdefault((r.subnet, r.address, r.owner_key), []).append(r.id)
        rank = {r.id: i for i, r in enumerate(rows)}
        sharing: list[dict[str, set[tuple[str, str, str]]]] = [{}, {}, {}]
        for line in lines:
            for level in range(3):
                sharing[level].setdefault(line[level], set()).add(line)

        def key(line: tuple[str, str, str]) -> tuple[float, float, float, int]:
            ls_sub, ls_addr, ls_own = (served[level].get(line[level]) or -1.0 for level in range(3))
            return ls_sub, ls_addr, ls_own, rank[lines[line][-1]]

        keys = {line: key(line) for line in lines}
        # A claim stamps started_at with the time: later than every start so far.
        clock = max([time.time(), *(v for d in served for v in d.values() if v is not None)])
        order: list[int] = []
        while keys and (not order or order[-1] != until):
            line = min(keys, key=keys.__getitem__)
            order.append(lines[line].pop())
            clock += 1.0
            for level in range(3):
                served[level][line[level]] = clock
            if not lines[line]:
                del keys[line]
                for level in range(3):
                    sharing[level][line[level]].discard(line)
            for other in set().union(*(sharing[level][line[level]] for level in range(3))):
                keys[other] = key(other)
        return order

    # --- lifecycle: every status change ----------------------------------------------------------------------
    def claim(self, worker_id: str, cap: int, caps: Capabilities | None = None) -> RunView | None:
        """Atomically take the next queued run that a worker with `caps` can train (None: any run), if fewer than
        `cap` runs are active; None otherwise. A run it cannot train (device cuda on a CPU-only worker) stays
        queued for a worker that can.

        The next run is fair share, as cluster schedulers do it: of the subnet whose runs last started longest ago
        (never first), of its address likewise, of its owner likewise, the run queued longest ago. So one owner's
        (or one network's) flood takes turns with a newcomer instead of keeping them waiting behind it all."""
        with self.engine.begin() as c:
            lock(c, AdvisoryLock.CLAIM)
            active = c.execute(select(func.count()).select_from(Run).where(Run.status.in_(ACTIVE))).scalar_one()
            if active >= cap:
                return None
            queued = (select(Run.id, Run.config_json).where(Run.status == RunStatus.QUEUED)
                      .order_by(*_fair_share(), Run.queued_at, Run.id))
            res = c.execute(queued if caps is not None else queued.limit(1))
            run_id = next((i for i, cfg_json in res if caps is None or can_take_json(caps, cfg_json)), None)
            res.close()  # read lazily: a CPU worker past a long line of GPU runs stops at the first it can train
            if run_id is None:
                return None
            now = time.time()
            done = c.execute(update(Run).where(Run.id == run_id, _may_become(RunStatus.RUNNING)).values(
                status=RunStatus.RUNNING, worker_id=worker_id, started_at=now, heartbeat_at=now, error=None,
                finished_at=None, stop_requested=False))
            if done.rowcount != 1:
                return None
            row = c.execute(select(Run).where(Run.id == run_id)).first()
        return _view(row)

    def beat_and_check_stop(self, run_id: int, worker_id: str) -> bool:
        """Refresh the run's heartbeat (if `worker_id` still holds it) and return its stop_requested flag, in one
        transaction: the worker's beat thread is also how it hears about a stop."""
        with self.engine.begin() as c:
            c.execute(update(Run).where(Run.id == run_id, Run.worker_id == worker_id)
                      .values(heartbeat_at=time.time()))
            return bool(c.execute(select(Run.stop_requested).where(Run.id == run_id)).scalar())

    def request_stop(self, run_id: int, remove_unstarted: bool = False) -> bool:
        """Ask a queued or running run to stop; a queued one stops at once. False if it was not stoppable.

        `remove_unstarted` (the demo): a queued run that never started is deleted instead, row and folder (it has
        nothing to resume from), and its sweep too if that leaves the sweep no runs."""
        gone = None
        with self.engine.begin() as c:
            if remove_unstarted:
                # One statement with its own WHERE: a run a worker claimed meanwhile is stopped below instead.
                gone = c.execute(delete(Run).where(Run.id == run_id, Run.status == RunStatus.QUEUED,
                                                   Run.started_at.is_(None))
                                 .returning(Run.artifacts, Run.sweep_id)).first()
            if gone is None:
                if c.execute(update(Run).where(Run.id == run_id, _may_become(RunStatus.STOPPED, RunStatus.QUEUED))
                             .values(status=RunStatus.STOPPED, finished_at=time.time())).rowcount:
                    return True
                return bool(c.execute(update(Run).where(Run.id == run_id, _may_become(RunStatus.STOPPING))
                                      .values(status=RunStatus.STOPPING, stop_requested=True)).rowcount)
            if gone.sweep_id is not None and not c.execute(
                    select(func.count()).select_from(Run).where(Run.sweep_id == gone.sweep_id)).scalar_one():
                c.execute(delete(SweepRow).where(SweepRow.id == gone.sweep_id))
        import shutil

        shutil.rmtree(self._artifacts_path(gone.artifacts, run_id), ignore_errors=True)  # never started: empty
        return True

    def request_resume(self, run_id: int, extra_epochs: int = 0,
                       guard: Callable[[Connection, TrainConfig], None] | None = None, extra_steps: int = 0,
                       address: str | None = None, subnet: str | None = None) -> bool:
        """Queue a stopped, interrupted or failed run again, at the back of the queue, to continue from its newest
        checkpoint; `guard`, `address` and `subnet` as in `resume_sweep`. A done run needs more to do:
        `extra_epochs`, or for a run that max_steps ended, `extra_steps` (max_steps rises by that much, and epochs
        too where they would end it sooner). Adding epochs to a run that max_steps caps adds no steps: ConfigError
        says so."""
        with self.engine.begin() as c:
            row = c.execute(select(Run).where(Run.id == run_id)).first()
            if row is None or row.status not in RESUMABLE:
                return False
            cfg = TrainConfig.from_json(row.config_json)
            if extra_epochs or extra_steps:
                cfg = extended(cfg, extra_epochs, extra_steps)
                if planned_steps(cfg) <= row.total_steps and row.status == RunStatus.DONE:
                    raise ConfigError(f"max_steps {cfg.max_steps:,} ends this run, so more epochs add no steps; "
                                      f"add steps instead")
            elif row.status == RunStatus.DONE:
                return False
            if guard is not None:
                lock(c, AdvisoryLock.GUARD)
                guard(c, cfg)
            values: dict[str, Any] = dict(status=RunStatus.QUEUED, resume=True, stop_requested=False, error=None,
                                          finished_at=None, queued_at=time.time(), **_where_from(address, subnet))
            if extra_epochs or extra_steps:
                values.update(config_json=cfg.to_json(), total_steps=planned_steps(cfg))
            # PostgreSQL reads committed rows: another writer may have moved the run since the read above, so the
            # WHERE again allows only the moves TRANSITIONS has into queued (from RESUMABLE).
            return bool(c.execute(update(Run).where(Run.id == run_id, _may_become(RunStatus.QUEUED))
                                  .values(**values)).rowcount)

    def finish(self, run_id: int, status: str, error: str | None = None) -> bool:
        """Record a run's final status, one of status.FINISHED (ValueError for any other), where TRANSITIONS allows
        the move from the run's status now (from interrupted too: a worker reports how training ended even where
        the store already marked the run interrupted). False, and nothing written, for a run that has moved on,
        e.g. queued again by a person."""
        if status not in FINISHED:
            raise ValueError(f"{status!r} is not a final status; one of {', '.join(sorted(FINISHED))}")
        with self.engine.begin() as c:
            return bool(c.execute(update(Run).where(Run.id == run_id, _may_become(RunStatus(status))).values(
                status=status, error=error, finished_at=time.time(), stop_requested=False)).rowcount)

    def set_progress(self, run_id: int, epoch: int | None = None, step: int | None = None,
                     ran_on: str | None = None) -> None:
        """Update the run row's epoch/step counters, or where it runs ("cpu, fp32")."""
        values = {k: v for k, v in (("epoch", epoch), ("step", step), ("ran_on", ran_on)) if v is not None}
        with self.engine.begin() as c:
            c.execute(update(Run).where(Run.id == run_id).values(**values))

    def mark_interrupted(self, stale_after: float) -> list[int]:
        """Active runs whose heartbeat is older than `stale_after` seconds become interrupted; returns their ids."""
        cutoff = time.time() - stale_after
        with self.engine.begin() as c:
            ids = list(c.execute(select(Run.id).where(Run.status.in_(ACTIVE), Run.heartbeat_at < cutoff)).scalars())
            if ids:
                c.execute(update(Run).where(Run.id.in_(ids), _may_become(RunStatus.INTERRUPTED, *ACTIVE)).values(
                    status=RunStatus.INTERRUPTED, error="the worker stopped sending heartbeats (crashed or killed); "
                                                "resume continues from the last checkpoint",
                    finished_at=time.time()))
            c.execute(delete(Worker).where(Worker.heartbeat_at < cutoff))
        return ids

    def rewind(self, run_id: int, step: int, epoch: int) -> None:
        """Forget metrics after `step` and samples after `epoch`: a resume recomputes them."""
        with self.engine.begin() as c:
            c.execute(delete(StepMetric).where(StepMetric.run_id == run_id, StepMetric.step > step))
            c.execute(delete(Sample).where(Sample.run_id == run_id, Sample.epoch > epoch))
            c.execute(delete(QualityRow).where(QualityRow.run_id == run_id, QualityRow.epoch > epoch))
            c.execute(update(Run).where(Run.id == run_id).values(step=step, epoch=epoch))

    # --- step metrics, samples and quality -------------------------------------------------------------------
    def add_step_metrics(self, run_id: int, rows: Sequence[dict[str, Any]]) -> None:
        """Append a batch of step metrics in one statement and move the run's step counter."""
        if not rows:
            return
        now = time.time()
        with self.engine.begin() as c:
            c.execute(insert(StepMetric), [{**r, "run_id": run_id, "created_at": now} for r in rows])
            c.execute(update(Run).where(Run.id == run_id).values(step=max(r["step"] for r in rows)))

    def step_metrics(self, run_id: int, after_step: int = 0) -> list[dict[str, Any]]:
        """A run's per-step rows (losses, D outputs, images/s, gradient norms and D's spectral σ, None where not
        logged; per-epoch scores are `quality`) in step order, only those after `after_step` for incremental
        polling."""
        m = StepMetric
        cols = [m.step, m.epoch, m.d_loss, m.g_loss, m.d_real, m.d_fake, m.images_per_sec, m.d_grad_norm,
                m.g_grad_norm, m.d_sigma, m.created_at]
        with self.reader.connect() as c:
            res = c.execute(select(*cols).where(StepMetric.run_id == run_id, StepMetric.step > after_step)
                            .order_by(StepMetric.step))
            return [dict(r._mapping) for r in res]

    def last_metric_step(self, run_id: int) -> int:
        """The newest step whose metrics are stored (0 if none)."""
        with self.reader.connect() as c:
            return c.execute(select(func.max(StepMetric.step)).where(StepMetric.run_id == run_id)).scalar() or 0

    def step_rates(self, run_id: int, recent_s: float = 30.0,
                   since: float | None = None) -> tuple[float | None, float | None]:
        """(recent, earlier) steps per wall-clock second: over the newest `recent_s` seconds of stored metrics, and
        over everything before them; only metrics stored at or after `since` (a run's started_at: the stretch since
        its latest start or resume, so a pause between a stop and a resume is not counted as training time). Rows
        arrive in batches sharing one time, so each span starts at a batch."""
        mine = [StepMetric.run_id == run_id] + ([StepMetric.created_at >= since] if since is not None else [])
        with self.reader.connect() as c:
            last = c.execute(select(StepMetric.step, StepMetric.created_at).where(*mine)
                             .order_by(StepMetric.step.desc()).limit(1)).first()
            if last is None:
                return None, None
            cutoff = last[1] - recent_s
            before = c.execute(select(StepMetric.step, StepMetric.created_at)
                               .where(*mine, StepMetric.created_at < cutoff)
                               .order_by(StepMetric.step.desc()).limit(1)).first()
            first = c.execute(select(StepMetric.step, StepMetric.created_at).where(*mine)
                              .order_by(StepMetric.step).limit(1)).first()
            if before is None and first is not None:  # a young run (or stretch): from its first batch
                before = c.execute(select(StepMetric.step, StepMetric.created_at)
                                   .where(*mine, StepMetric.created_at == first[1])
                                   .order_by(StepMetric.step.desc()).limit(1)).first()

        def rate(a: Any, b: Any) -> float | None:
            return (b[0] - a[0]) / (b[1] - a[1]) if b[1] > a[1] and b[0] > a[0] else None

        return rate(before, last), rate(first, before)

    def add_sample(self, run_id: int, epoch: int, step: int, rel_path: str) -> None:
        """Record an epoch's sample grid (the PNG is already on disk)."""
        with self.engine.begin() as c:
            c.execute(delete(Sample).where(Sample.run_id == run_id, Sample.epoch == epoch))
            c.execute(insert(Sample).values(run_id=run_id, epoch=epoch, step=step, path=rel_path))

    def samples(self, run_id: int) -> list[dict[str, Any]]:
        """The run's epoch sample grids in epoch order: epoch, step, absolute path (only paths inside GAN_HOME)."""
        with self.reader.connect() as c:
            rows = c.execute(select(Sample.epoch, Sample.step, Sample.path).where(Sample.run_id == run_id)
                             .order_by(Sample.epoch)).all()
        out = []
        for e, s, p in rows:
            # A row is data, not a trusted path: `../x`, an absolute path or a link out of GAN_HOME would make the
            # pages read any file of the server, so each resolves (links followed) and must stay inside home.
            try:
                path = (self.home / p).resolve()
            except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
                continue
            if self.home in path.parents:
                out.append({"epoch": e, "step": s, "path": path})
        return out

    def latest_sample(self, run_id: int) -> dict[str, Any] | None:
        """The run's newest epoch sample grid (epoch, step, absolute path), or None before the first epoch ends.

        Paths that lead out of GAN_HOME are skipped as in `samples`, which is the one place that checks them."""
        rows = self.samples(run_id)
        return rows[-1] if rows else None

    def add_quality(self, run_id: int, epoch: int, step: int, data: dict[str, Any]) -> None:
        """Record an epoch's quality numbers (replacing an earlier row for the same epoch)."""
        with self.engine.begin() as c:
            c.execute(delete(QualityRow).where(QualityRow.run_id == run_id, QualityRow.epoch == epoch))
            c.execute(insert(QualityRow).values(run_id=run_id, epoch=epoch, step=step, data=json.dumps(data)))

    def quality(self, run_id: int) -> list[dict[str, Any]]:
        """The run's per-epoch quality numbers in epoch order, each a dict with epoch and step added."""
        with self.reader.connect() as c:
            res = c.execute(select(QualityRow.epoch, QualityRow.step, QualityRow.data)
                            .where(QualityRow.run_id == run_id).order_by(QualityRow.epoch))
            return [{"epoch": e, "step": s, **json.loads(d)} for e, s, d in res]

    def last_quality_epoch(self, run_id: int) -> int | None:
        """The newest epoch with quality numbers (None before the first): a cheap look for views that poll."""
        with self.reader.connect() as c:
            return c.execute(select(func.max(QualityRow.epoch)).where(QualityRow.run_id == run_id)).scalar()

    # --- workers ---------------------------------------------------------------------------------------------
    def worker_beat(self, worker_id: str, pid: int, host: str, caps: Capabilities | None = None) -> None:
        """Register or refresh a worker process, with what it can train (`caps`; None: not known)."""
        now = time.time()
        values: dict[str, Any] = {"heartbeat_at": now} | ({"capabilities": caps.to_json()} if caps else {})
        with self.engine.begin() as c:
            if not c.execute(update(Worker).where(Worker.id == worker_id).values(**values)).rowcount:
                c.execute(insert(Worker).values(id=worker_id, pid=pid, host=host, started_at=now,
                                                **{"capabilities": "{}", **values}))

    def reserve_worker_start(self, worker_id: str, host: str, stale_after: float) -> bool:
        """If no worker is live (heartbeat fresher than `stale_after` s), register `worker_id` as one that is
        starting and return True; else False. One locked transaction: of two dashboards asking at once, one wins."""
        now = time.time()
        with self.engine.begin() as c:
            lock(c, AdvisoryLock.WORKER_START)
            if c.execute(select(func.count()).select_from(Worker)
                         .where(Worker.heartbeat_at >= now - stale_after)).scalar_one():
                return False
            c.execute(delete(Worker).where(Worker.id == worker_id))  # a stale row of the same name
            c.execute(insert(Worker).values(id=worker_id, pid=0, host=host, started_at=now, heartbeat_at=now,
                                            capabilities="{}"))
            return True

    def worker_gone(self, worker_id: str) -> None:
        """Remove a worker that exits cleanly."""
        with self.engine.begin() as c:
            c.execute(delete(Worker).where(Worker.id == worker_id))

    def live_workers(self, stale_after: float) -> int:
        """Workers whose heartbeat is fresher than `stale_after` seconds."""
        with self.reader.connect() as c:
            return c.execute(select(func.count()).select_from(Worker)
                             .where(Worker.heartbeat_at >= time.time() - stale_after)).scalar_one()

    def workers(self, live: float | None = None) -> list[dict[str, Any]]:
        """Registered workers (id, pid, host, started_at, heartbeat_at, capabilities: a Capabilities or None when
        not known), newest heartbeat first; with `live`, only those whose heartbeat is fresher than `live` s."""
        q = select(Worker.id, Worker.pid, Worker.host, Worker.started_at, Worker.heartbeat_at, Worker.capabilities)
        if live is not None:
            q = q.where(Worker.heartbeat_at >= time.time() - live)
        with self.reader.connect() as c:
            rows = [dict(r._mapping) for r in c.execute(q.order_by(Worker.heartbeat_at.desc()))]
        return [{**r, "capabilities": Capabilities.from_json(r["capabilities"])} for r in rows]
