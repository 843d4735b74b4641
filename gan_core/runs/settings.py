"""Every setting this deployment reads from the environment, in one place: the limits of who may run what
(`Settings`, checked by policy.py) and how a worker paces itself (`WorkerSettings`, read by the dispatcher and the
worker). Both are frozen and read with `from_env()` when needed, not at import, so tests can change the environment.

A malformed value is a ConfigError that names the variable, the value and what is allowed: `python -m gan_core`
prints it as one `error:` line, and the dashboard shows it at the top of every page (ui.bootstrap).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, cast

from ..config import ConfigError


def env_text(name: str, default: str) -> str:
    """The environment variable `name`, stripped; `default` when it is unset or blank."""
    return os.environ.get(name, "").strip() or default


def env_number(name: str, default: int | float) -> int | float:
    """A positive number from the environment, of `default`'s type; a malformed one is a ConfigError naming it."""
    text = env_text(name, str(default))
    try:
        value = type(default)(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a {'whole ' if isinstance(default, int) else ''}number; "
                          f"unset it or give one like {default}") from None
    if not math.isfinite(value) or value <= 0:  # nan would switch a limit off; 0 leaves nothing allowed
        raise ConfigError(f"{name}={text!r} must be a positive number (default {default})")
    return value


def env_count(name: str, default: int, most: int = 10) -> int:
    """A whole number 0..`most` from the environment (0 is allowed, unlike `env_number`); ConfigError naming it."""
    text = env_text(name, str(default))
    if not (text.isascii() and text.isdigit()) or int(text) > most:
        raise ConfigError(f"{name}={text!r} must be a whole number from 0 to {most} (default {default})")
    return int(text)


@dataclass(frozen=True)
class Settings:
    """Limits of this deployment. `demo_mode` switches the caps on; admins may manage every run."""
    demo_mode: bool = False
    admins: frozenset[str] = field(default_factory=frozenset)
    max_epochs: int = 5
    max_steps: int = 3000
    max_params: int = 5_000_000       # G and D together; seed 004's dense GAN has 2.9 M, seed 003's DCGAN 2.5 M
    max_train_tflop: float = 60.0     # a run's whole training compute: dcgan-sn for 5 epochs is about 47
    max_queued_per_user: int = 2
    max_queued_total: int = 20
    max_concurrent: int = 1
    max_grid: int = 8
    submissions_per_minute: int = 3
    submissions_per_minute_total: int = 10  # all visitors together: no number of new visitor tokens gets past it
    # The same caps per client address and per subnet (/24, /64; policy.subnet), whatever cookies it sends: a new
    # visitor token is free, an address is not. A little above one person's, for a household or an office behind
    # one address. No address known (a local browser, no trusted proxy): these do not apply.
    max_queued_per_address: int = 4
    max_queued_per_subnet: int = 6
    submissions_per_minute_per_address: int = 6
    submissions_per_minute_per_subnet: int = 8
    prune_days: float = 7.0
    max_upload_mb: float = 20.0
    upload_quota_mb_per_user: float = 100.0  # every mode: what one person's uploads may take on disk
    upload_quota_mb_total: float = 1000.0    # every mode: what all uploads together may take
    upload_keep_days: float = 2.0            # every mode: uploads older than this are removed
    # Every mode: what all identities behind one client address may keep on disk (new cookies share it).
    upload_quota_mb_per_address: float = 200.0
    # Every mode: upload attempts an hour, refused ones included (each costs seconds of CPU to check), per person,
    # per client address and per subnet (addresses.subnet), counted before the file is parsed.
    uploads_per_hour_per_user: int = 10
    uploads_per_hour_per_address: int = 20
    uploads_per_hour_per_subnet: int = 40
    max_run_memory_gb: float = 2.0           # demo: a run's estimated peak memory (budget.estimate)
    # Proxies in front of the dashboard whose X-Forwarded-For is trusted for the client's address (0: none; the
    # connection's own peer is the client). Trust only proxies you run: a client can send the header itself.
    trusted_proxy_hops: int = 0

    @classmethod
    def from_env(cls) -> Settings:
        """GAN_DEMO_MODE=1, GAN_ADMINS=a,b and GAN_DEMO_<CAP> (e.g. GAN_DEMO_MAX_EPOCHS=3) override the defaults."""
        d = cls()
        caps = ("max_epochs", "max_steps", "max_params", "max_train_tflop", "max_queued_per_user", "max_queued_total",
                "max_concurrent", "max_grid", "submissions_per_minute", "submissions_per_minute_total",
                "max_queued_per_address", "max_queued_per_subnet", "submissions_per_minute_per_address",
                "submissions_per_minute_per_subnet", "prune_days")
        num: dict[str, Any] = {f: env_number(f"GAN_DEMO_{f.upper()}", getattr(d, f)) for f in caps}
        return cls(demo_mode=env_text("GAN_DEMO_MODE", "0").lower() in ("1", "true", "yes"),
                   admins=frozenset(a.strip() for a in env_text("GAN_ADMINS", "").split(",") if a.strip()),
                   max_upload_mb=env_number("GAN_MAX_UPLOAD_MB", d.max_upload_mb),
                   upload_quota_mb_per_user=env_number("GAN_UPLOAD_QUOTA_MB_PER_USER", d.upload_quota_mb_per_user),
                   upload_quota_mb_total=env_number("GAN_UPLOAD_QUOTA_MB_TOTAL", d.upload_quota_mb_total),
                   upload_keep_days=env_number("GAN_UPLOAD_KEEP_DAYS", d.upload_keep_days),
                   upload_quota_mb_per_address=env_number("GAN_UPLOAD_QUOTA_MB_PER_ADDRESS",
                                                          d.upload_quota_mb_per_address),
                   **cast("dict[str, Any]", {f: env_number(f"GAN_{f.upper()}", getattr(d, f)) for f in (
                       "uploads_per_hour_per_user", "uploads_per_hour_per_address", "uploads_per_hour_per_subnet")}),
                   max_run_memory_gb=env_number("GAN_DEMO_MAX_RUN_MEMORY_GB", d.max_run_memory_gb),
                   trusted_proxy_hops=env_count("GAN_TRUSTED_PROXY_HOPS", d.trusted_proxy_hops), **num)


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker paces itself. Each field's metadata names the environment variable that sets it."""
    heartbeat_s: float = field(default=2.0, metadata={"env": "GAN_HEARTBEAT_S"})  # and stop-flag polls
    # A run or worker whose heartbeat is older than this is gone: its runs become 'interrupted'.
    stale_after: float = field(default=30.0, metadata={"env": "GAN_HEARTBEAT_TIMEOUT"})
    # Runs training at once across all workers: two CPU cores train one run well, not two.
    max_concurrent: int = field(default=1, metadata={"env": "GAN_MAX_CONCURRENT"})

    @classmethod
    def from_env(cls) -> WorkerSettings:
        """GAN_HEARTBEAT_S, GAN_HEARTBEAT_TIMEOUT and GAN_MAX_CONCURRENT over the defaults; ConfigError if malformed."""
        defaults = cls()
        values: dict[str, Any] = {f.name: env_number(f.metadata["env"], getattr(defaults, f.name)) for f in fields(cls)}
        return cls(**values)

    @classmethod
    def read(cls, name: str) -> int | float:
        """One field from the environment, whatever the others hold (the dashboard needs `stale_after` alone)."""
        return env_number(cls.__dataclass_fields__[name].metadata["env"], getattr(cls(), name))

    @classmethod
    def problems(cls) -> dict[str, str]:
        """{environment variable: what is wrong with it} for every malformed one ({} when all are fine)."""
        found, defaults = {}, cls()
        for f in fields(cls):
            try:
                env_number(f.metadata["env"], getattr(defaults, f.name))
            except ConfigError as e:
                found[f.metadata["env"]] = str(e)
        return found
