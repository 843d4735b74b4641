"""Who may do what: run ownership, admins, and the hosted demo's caps, all checked here on the server side.

The dashboard's widgets mirror these limits so people see them, but every dashboard action goes through a function
of this module, which checks again, so a crafted request or a stale form cannot pass a limit. (The CLI is the
operator's tool on the server and uses the Store directly.) Settings come from the environment, read once per call
so tests can change them.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from sqlalchemy.engine import Connection

from .config import TrainConfig
from .store import ACTIVE, RunView, Store, planned_steps


class PolicyError(PermissionError):
    """An action this person may not take, or a demo cap it would break; the message says which and why."""


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _env_number(name: str, default: int | float) -> int | float:
    """A numeric setting from the environment; a malformed one is refused with the variable's name."""
    text = _env(name, str(default))
    try:
        value = type(default)(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a {'whole ' if isinstance(default, int) else ''}number; "
                         f"unset it or give one like {default}") from None
    if not math.isfinite(value) or value <= 0:  # nan would switch a limit off; 0 leaves nothing allowed
        raise ValueError(f"{name}={text!r} must be a positive number (default {default})")
    return value


@dataclass(frozen=True)
class Settings:
    """Limits of this deployment. `demo_mode` switches the caps on; admins may manage every run."""
    demo_mode: bool = False
    admins: frozenset[str] = field(default_factory=frozenset)
    max_epochs: int = 5
    max_steps: int = 3000
    max_queued_per_user: int = 2
    max_queued_total: int = 20
    max_concurrent: int = 1
    max_grid: int = 8
    submissions_per_minute: int = 3
    prune_days: float = 7.0
    max_upload_mb: float = 20.0

    @classmethod
    def from_env(cls) -> Settings:
        """GAN_DEMO_MODE=1, GAN_ADMINS=a,b and GAN_DEMO_<CAP> (e.g. GAN_DEMO_MAX_EPOCHS=3) override the defaults."""
        d = cls()
        num = {f: _env_number(f"GAN_DEMO_{f.upper()}", getattr(d, f))
               for f in ("max_epochs", "max_steps", "max_queued_per_user", "max_queued_total", "max_concurrent",
                         "max_grid", "submissions_per_minute", "prune_days")}
        return cls(demo_mode=_env("GAN_DEMO_MODE", "0").lower() in ("1", "true", "yes"),
                   admins=frozenset(a.strip() for a in _env("GAN_ADMINS", "").split(",") if a.strip()),
                   max_upload_mb=_env_number("GAN_MAX_UPLOAD_MB", d.max_upload_mb), **num)


def is_admin(user: str, settings: Settings) -> bool:
    """Whether `user` is listed in GAN_ADMINS."""
    return bool(user) and user in settings.admins


def can_manage(run: RunView, user: str, settings: Settings) -> bool:
    """Owner or admin: who may stop, resume, edit or delete `run`. Everyone may watch."""
    return bool(user) and (run.owner == user or is_admin(user, settings))


def _require(run: RunView | None, user: str, settings: Settings, action: str) -> RunView:
    if run is None or run.deleted_at is not None:
        raise PolicyError(f"cannot {action}: no such run")
    if not can_manage(run, user, settings):
        raise PolicyError(f"cannot {action} run #{run.id}: it belongs to {run.owner or 'nobody'}; only its owner "
                          f"or an admin may")
    return run


def submit(store: Store, cfg: TrainConfig, user: str, settings: Settings, name: str = "",
           tags: str | Iterable[str] = (), description: str = "", now: float | None = None) -> int:
    """Queue `cfg` for `user` after checking the demo caps inside the store's write transaction; returns the id."""
    if not user:
        raise PolicyError("cannot start a run without a name: sign in, or enter your name in the sidebar")
    guard = None
    if settings.demo_mode:
        check_demo_config(cfg, settings)
        guard = _queue_guard(store, user, settings, now, rate=True)
    return store.submit(cfg, name=name, owner=user, tags=tags, description=description, guard=guard)


def _queue_guard(store: Store, user: str, settings: Settings, now: float | None,
                 rate: bool) -> Callable[[Connection, TrainConfig], None]:
    """The demo's queue caps, checked inside the store's write transaction (so parallel requests cannot race)."""
    def guard(conn: Connection, cfg: TrainConfig) -> None:
        t = time.time() if now is None else now
        waiting = ("queued",) + ACTIVE
        if store.count_runs(conn, owner=user, statuses=waiting) >= settings.max_queued_per_user:
            raise PolicyError(f"demo limit: you already have {settings.max_queued_per_user} run(s) queued or "
                              f"training; wait for one to finish or stop one")
        if store.count_runs(conn, statuses=waiting) >= settings.max_queued_total:
            raise PolicyError(f"demo limit: {settings.max_queued_total} runs are queued or training on this demo; "
                              f"try again in a few minutes")
        if rate and store.count_runs(conn, owner=user, since=t - 60) >= settings.submissions_per_minute:
            raise PolicyError(f"demo limit: at most {settings.submissions_per_minute} runs a minute per person; "
                              f"try again in a minute")
    return guard


def check_demo_config(cfg: TrainConfig, settings: Settings) -> None:
    """The per-run caps of demo mode: epochs and total steps."""
    if cfg.epochs > settings.max_epochs:
        raise PolicyError(f"demo limit: epochs {cfg.epochs} is more than the {settings.max_epochs} this demo allows")
    if planned_steps(cfg) > settings.max_steps:
        raise PolicyError(f"demo limit: {planned_steps(cfg):,} steps is more than the {settings.max_steps:,} this "
                          f"demo allows; lower epochs or train_subset, or raise batch_size")


def stop(store: Store, run_id: int, user: str, settings: Settings) -> bool:
    """Ask a run to stop, as its owner or an admin."""
    _require(store.get(run_id), user, settings, "stop")
    return store.request_stop(run_id)


def resume(store: Store, run_id: int, user: str, settings: Settings, extra_epochs: int = 0) -> bool:
    """Queue a run again from its checkpoint, as its owner or an admin (within the demo caps)."""
    run = _require(store.get(run_id), user, settings, "resume")
    guard = None
    if settings.demo_mode:  # a resumed run joins the queue again: the same queue caps as a new one
        check_demo_config(run.config.replace(epochs=run.config.epochs + extra_epochs), settings)
        guard = _queue_guard(store, user, settings, None, rate=False)
    return store.request_resume(run_id, extra_epochs=extra_epochs, guard=guard)


def edit(store: Store, run_id: int, user: str, settings: Settings, name: str | None = None,
         tags: str | Iterable[str] | None = None, description: str | None = None) -> None:
    """Rename, retag or redescribe a run, as its owner or an admin."""
    _require(store.get(run_id), user, settings, "edit")
    store.update_info(run_id, name, tags, description)


def delete(store: Store, run_id: int, user: str, settings: Settings) -> bool:
    """Soft-delete a run, as its owner or an admin; refused in demo mode, where destructive actions are off."""
    if settings.demo_mode and not is_admin(user, settings):
        raise PolicyError("cannot delete runs on the demo; old runs are pruned automatically")
    _require(store.get(run_id), user, settings, "delete")
    return store.soft_delete(run_id)


def restore(store: Store, run_id: int, user: str, settings: Settings) -> bool:
    """Undo a soft delete, as the owner or an admin."""
    run = store.get(run_id)
    if run is None or not can_manage(run, user, settings):
        raise PolicyError(f"cannot restore run #{run_id}: only its owner or an admin may")
    return store.restore(run_id)


def purge(store: Store, run_id: int, user: str, settings: Settings) -> bool:
    """Delete a soft-deleted run and its files for good, as the owner or an admin (admins only on the demo)."""
    run = store.get(run_id)
    if run is None or not can_manage(run, user, settings) or (settings.demo_mode and not is_admin(user, settings)):
        raise PolicyError(f"cannot purge run #{run_id}: only its owner or an admin may")
    return store.purge(run_id)


def check_grid(side: int, settings: Settings) -> int:
    """A Generate grid side length within the demo cap (and 1..16 always)."""
    limit = settings.max_grid if settings.demo_mode else 16
    if not 1 <= side <= limit:
        raise PolicyError(f"grid size {side} is not allowed here; choose 1 to {limit}")
    return side


def worker_cap(cap: int, settings: Settings) -> int:
    """Concurrent runs a worker may train: its own cap, and at most the demo's."""
    return min(cap, settings.max_concurrent) if settings.demo_mode else cap


def prune(store: Store, settings: Settings, now: float | None = None) -> list[int]:
    """Demo mode: soft-delete and purge finished runs older than `prune_days`; returns the ids removed."""
    if not settings.demo_mode:
        return []
    cutoff = (time.time() if now is None else now) - settings.prune_days * 86400
    gone = []
    for run in store.list_runs(deleted=True):
        if run.status in ACTIVE + ("queued",) or (run.finished_at or run.created_at) >= cutoff:
            continue
        store.soft_delete(run.id)
        if store.purge(run.id):
            gone.append(run.id)
    for upload in (store.home / "uploads").glob("*.safetensors"):  # uploads age out too: they cost disk
        if upload.stat().st_mtime < cutoff:
            upload.unlink(missing_ok=True)
    return gone
