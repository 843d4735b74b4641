"""The run database itself: its tables, its schema version and the in-place upgrades, the engines that connect to
it, and the PostgreSQL advisory locks that serialise writers. The queries on these tables are in store.py.

SQLite in WAL mode under `GAN_HOME` by default, PostgreSQL when `GAN_DB_URL` says so. Timestamps are Unix seconds
(floats): no time-zone arithmetic differs between the two backends.
"""
from __future__ import annotations

import re
from enum import IntEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .status import RunStatus

# 2: runs.tags, runs.description, runs.deleted_at; 3: runs.owner_key; 4: runs.ran_on; 5: metrics.d_grad_norm,
# g_grad_norm, d_sigma; 6: the sweeps table, runs.sweep_id and runs.sweep_point (each added in place to an older
# database by _upgrade; create_all adds new tables); 7: workers.capabilities; 8: runs.address, runs.subnet and
# runs.queued_at (the demo's caps per network and the fair-share claim order), and the submissions table
SCHEMA_VERSION = 8


class StoreError(RuntimeError):
    """The database cannot be used (unreachable, newer schema); the message says what to do."""


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"
    # Store.claim's fair share asks, for each queued run, when its subnet, address and owner last had a run start:
    # each is the newest started_at of one index range.
    __table_args__ = (Index("ix_runs_owner_started", "owner_key", "started_at"),
                      Index("ix_runs_address_started", "address", "started_at"),
                      Index("ix_runs_subnet_started", "subnet", "started_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200), default="")  # the label shown; proves nothing
    # Who may manage the run and whose caps it counts against (policy.Identity.key): "oidc:<issuer>|<subject>",
    # "anon:<server-issued token id>" on a demo without sign-in, "name:<display name>" in a trusted team.
    owner_key: Mapped[str] = mapped_column(String(300), default="", index=True)
    config_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True, default=RunStatus.QUEUED.value)  # a RunStatus
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    resume: Mapped[bool] = mapped_column(Boolean, default=False)  # continue from the newest checkpoint
    epoch: Mapped[int] = mapped_column(Integer, default=0)          # completed epochs
    step: Mapped[int] = mapped_column(Integer, default=0)           # newest step seen
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    artifacts: Mapped[str] = mapped_column(String(500), default="")  # folder under GAN_HOME
    tags: Mapped[str] = mapped_column(String(500), default="")          # comma-separated, normalised by clean_tags
    description: Mapped[str] = mapped_column(Text, default="")
    deleted_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)  # soft delete
    ran_on: Mapped[str] = mapped_column(String(100), default="")  # "cuda, bf16": device and precision "auto" chose
    # A run queued by a sweep: its sweep and the index of its point in the sweep's `points_json` (NULL otherwise).
    # No foreign key: SQLite cannot add (or drop) one in place, and a sweep row is never deleted before its runs.
    sweep_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    sweep_point: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The client address (policy.Identity.address) and its subnet (policy.subnet) of whoever queued the run last
    # ('' when not known: the CLI, a team without a proxy): the demo caps live runs per address and subnet.
    address: Mapped[str] = mapped_column(String(64), default="")
    subnet: Mapped[str] = mapped_column(String(64), default="")
    # When the run last joined the queue (submit, resume): the claim order within one owner, so a resumed old run
    # queues behind the runs queued before it (rows from before schema 8: their created_at).
    queued_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Submission(Base):
    """One accepted demo submission (a run, or a sweep's `runs`), for the per-minute caps. Kept apart from the runs
    because a run stopped before it trained is deleted, and a submission must still count after that."""
    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    owner_key: Mapped[str] = mapped_column(String(300), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    subnet: Mapped[str] = mapped_column(String(64), default="")
    runs: Mapped[int] = mapped_column(Integer, default=1)


class SweepRow(Base):
    """A named group of runs over a search space (sweep.SweepSpec over a base config); its runs carry its id."""
    __tablename__ = "sweeps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200), default="")
    owner_key: Mapped[str] = mapped_column(String(300), default="", index=True)
    spec_json: Mapped[str] = mapped_column(Text)     # sweep.SweepSpec.to_dict()
    base_json: Mapped[str] = mapped_column(Text)     # the base TrainConfig every point changes
    points_json: Mapped[str] = mapped_column(Text)   # [{field: value}, ...]: the planned points, in order
    created_at: Mapped[float] = mapped_column(Float)


class StepMetric(Base):
    """One training step's losses and D outputs (the per-epoch quality scores are QualityRow)."""
    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("run_id", "step"),)  # a resumed run can never write a step twice
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    d_loss: Mapped[float] = mapped_column(Float)
    g_loss: Mapped[float] = mapped_column(Float)
    d_real: Mapped[float] = mapped_column(Float)
    d_fake: Mapped[float] = mapped_column(Float)
    images_per_sec: Mapped[float] = mapped_column(Float)
    # Training health (events.StepMetrics); NULL in rows written before they were logged.
    d_grad_norm: Mapped[float | None] = mapped_column(Float, nullable=True)
    g_grad_norm: Mapped[float | None] = mapped_column(Float, nullable=True)
    d_sigma: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class _PerEpoch:
    """Columns of a row recorded once per run and epoch (a rewound, resumed run replaces it)."""
    __table_args__ = (UniqueConstraint("run_id", "epoch"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)


class Sample(_PerEpoch, Base):
    __tablename__ = "samples"
    path: Mapped[str] = mapped_column(String(500))  # relative to GAN_HOME


class QualityRow(_PerEpoch, Base):
    __tablename__ = "quality"
    data: Mapped[str] = mapped_column(Text)  # JSON of metrics.Quality.to_dict() + measurement seconds


class Worker(Base):
    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
    # capability.Capabilities as JSON: what the worker can train. '{}': not known (a worker still starting, or one
    # from before schema 7), which is taken to train anything.
    capabilities: Mapped[str] = mapped_column(Text, default="{}")


class Meta(Base):
    __tablename__ = "gan_meta"
    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class AdvisoryLock(IntEnum):
    """PostgreSQL advisory lock ids, each held for one transaction around a check-then-write that two processes
    must not interleave. SQLite needs none: its writers take the database lock up front (BEGIN IMMEDIATE)."""

    CLAIM = 731504  # claim counts the active runs, then takes one: two workers must not both see room under the cap
    GUARD = 731505  # a submit or resume guard counts runs, then queues one: parallel submissions must not pass a cap
    MIGRATE = 731506  # two processes starting at once must not both upgrade the schema
    WORKER_START = 731507  # two dashboards must not both see no live worker, then both start one


def lock(c: Connection, which: AdvisoryLock) -> None:
    """Take advisory lock `which` until `c`'s transaction ends (PostgreSQL; nothing to do on SQLite)."""
    if c.dialect.name != "sqlite":
        c.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": int(which)})


def connect(url: str) -> tuple[Engine, Engine]:
    """(writer, reader) engines for `url`; one pooled engine serves both on PostgreSQL. StoreError, with any
    password cut out, for a URL that cannot be used."""
    try:
        if url.startswith("sqlite"):
            # Writers take the lock up front (BEGIN IMMEDIATE), so claim's check-then-update is atomic across
            # processes; readers use a deferred BEGIN and, with WAL, never wait for a writer.
            return _sqlite_engine(url, "BEGIN IMMEDIATE"), _sqlite_engine(url, "BEGIN")
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        return engine, engine
    except (ArgumentError, ValueError, ImportError) as e:  # unparseable, a port that is no number, no such driver
        # The URL could not be parsed, so SQLAlchemy cannot hide its password: cut it out here.
        secret = re.search(r"://[^/@]*?:([^/@]*)@", url)
        shown, reason = url, " ".join(str(e).split())
        if secret and secret.group(1):
            shown, reason = shown.replace(secret.group(1), "***"), reason.replace(secret.group(1), "***")
        raise StoreError(f"the run database URL {shown} (GAN_DB_URL) is not usable: {reason}. It looks like "
                         f"postgresql+psycopg://user:PASSWORD@host:5432/dbname or sqlite:///path/to/file.db"
                         ) from None


def migrate(engine: Engine) -> None:
    """Create missing tables and bring an older schema up to SCHEMA_VERSION; StoreError for a newer schema or an
    unreachable database."""
    safe_url = engine.url.render_as_string(hide_password=True)
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as c:
            lock(c, AdvisoryLock.MIGRATE)
            row = c.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar()
            if row is None:
                c.execute(insert(Meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(row) > SCHEMA_VERSION:
                raise StoreError(f"database {safe_url} has schema {row}, newer than this GAN Studio "
                                 f"({SCHEMA_VERSION}); upgrade GAN Studio")
            elif int(row) < SCHEMA_VERSION:
                _upgrade(c, int(row))
    except OperationalError as e:
        raise StoreError(f"cannot reach the run database {safe_url}: {str(e.orig).strip().splitlines()[0]}. "
                         f"Check GAN_DB_URL, that the server runs and accepts this user.") from None


def _upgrade(c: Connection, version: int) -> None:
    """Bring an older database's tables up to SCHEMA_VERSION in place (create_all adds tables, not columns)."""
    if version < 2:
        have = {col["name"] for col in inspect(c).get_columns("runs")}
        for name, ddl in (("tags", "VARCHAR(500) DEFAULT '' NOT NULL"), ("description", "TEXT DEFAULT '' NOT NULL"),
                          ("deleted_at", "FLOAT")):
            if name not in have:
                c.execute(text(f"ALTER TABLE runs ADD COLUMN {name} {ddl}"))
        c.execute(text("CREATE INDEX IF NOT EXISTS ix_runs_deleted_at ON runs (deleted_at)"))
    if version < 3:  # runs of a trusted team, or of an older demo: owned by the name they were started under
        if "owner_key" not in {col["name"] for col in inspect(c).get_columns("runs")}:
            c.execute(text("ALTER TABLE runs ADD COLUMN owner_key VARCHAR(300) DEFAULT '' NOT NULL"))
        c.execute(text("CREATE INDEX IF NOT EXISTS ix_runs_owner_key ON runs (owner_key)"))
        c.execute(update(Run).where(Run.owner != "").values(owner_key="name:" + Run.owner))
    if version < 4 and "ran_on" not in {col["name"] for col in inspect(c).get_columns("runs")}:
        c.execute(text("ALTER TABLE runs ADD COLUMN ran_on VARCHAR(100) DEFAULT '' NOT NULL"))
    if version < 5:
        have = {col["name"] for col in inspect(c).get_columns("metrics")}
        for name in ("d_grad_norm", "g_grad_norm", "d_sigma"):
            if name not in have:
                c.execute(text(f"ALTER TABLE metrics ADD COLUMN {name} FLOAT"))
    if version < 6:  # the sweeps table itself came with create_all; the runs' links to it are new columns
        have = {col["name"] for col in inspect(c).get_columns("runs")}
        for name, ddl in (("sweep_id", "INTEGER"), ("sweep_point", "INTEGER")):
            if name not in have:
                c.execute(text(f"ALTER TABLE runs ADD COLUMN {name} {ddl}"))
        c.execute(text("CREATE INDEX IF NOT EXISTS ix_runs_sweep_id ON runs (sweep_id)"))
    if version < 7 and "capabilities" not in {col["name"] for col in inspect(c).get_columns("workers")}:
        c.execute(text("ALTER TABLE workers ADD COLUMN capabilities TEXT DEFAULT '{}' NOT NULL"))
    if version < 8:  # the submissions table came with create_all; the runs' columns and indexes are new
        have = {col["name"] for col in inspect(c).get_columns("runs")}
        for name, ddl in (("address", "VARCHAR(64) DEFAULT '' NOT NULL"), ("subnet", "VARCHAR(64) DEFAULT '' NOT NULL"),
                          ("queued_at", "FLOAT")):
            if name not in have:
                c.execute(text(f"ALTER TABLE runs ADD COLUMN {name} {ddl}"))
        c.execute(update(Run).where(Run.queued_at.is_(None)).values(queued_at=Run.created_at))
        for index in Base.metadata.tables[Run.__tablename__].indexes:
            if index.name in {"ix_runs_owner_started", "ix_runs_address_started", "ix_runs_subnet_started"}:
                index.create(c, checkfirst=True)
    c.execute(update(Meta).where(Meta.key == "schema_version").values(value=str(SCHEMA_VERSION)))


def _sqlite_engine(url: str, begin: str) -> Engine:
    # timeout: wait for another process's write instead of failing with "database is locked".
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
    return engine


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE itself (pysqlite's own BEGIN is deferred).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, so many viewers are cheap
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
