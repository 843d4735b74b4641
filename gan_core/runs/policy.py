"""Who may do what: identities, run ownership, admins, and the hosted demo's caps, all checked here on the server.

An `Identity` is what caps and ownership key on. In a trusted team it is the typed display name; on a public demo it
never is: it is the OIDC subject when sign-in is configured, else a server-issued, signed visitor token (see
`visitor_token`), and the typed name is only a label.

The dashboard's widgets mirror these limits so people see them, but every dashboard action goes through a function
of this module, which checks again, so a crafted request or a stale form cannot pass a limit. (The CLI is the
operator's tool on the server and uses the Store directly.) The limits are `settings.Settings` (also reachable as
`policy.Settings`), read from the environment once per call so tests can change them.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from ..budget import Estimate, check_fits
from ..config import ConfigError, TrainConfig, planned_steps

# The client's address and subnet live in .addresses so that uploads (which policy imports to prune) can key its
# limits on them too; re-exported here, where the caps use them.
from .addresses import SUBNET_BITS, client_address, subnet  # noqa: F401
from .settings import Settings
from .status import LIVE
from .store import RunView, Store


class PolicyError(PermissionError):
    """An action this person may not take, or a demo cap it would break; the message says which and why."""


@dataclass(frozen=True)
class Identity:
    """Who acts. `key` is what ownership and caps compare ('' = nobody: may watch, not act); `label` is the name
    shown; `admin` is decided when the identity is built, from a verified identity only; `aliases` are older keys
    this person's runs may carry (a signed-in, verified email owns the runs started under that name before);
    `address` is the client's IP address as `client_address` found it ('' when not known: the CLI, a local
    browser), which the demo's caps also key on."""
    key: str
    label: str
    admin: bool = False
    aliases: frozenset[str] = frozenset()
    address: str = ""

    @classmethod
    def named(cls, name: str, settings: Settings | None = None) -> Identity:
        """A trusted display name (team mode, the operator's CLI); admin when GAN_ADMINS lists it."""
        name = name.strip()
        return cls(f"name:{name}" if name else "", name, bool(name) and settings is not None
                   and name in settings.admins)


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def oidc_identity(claims: Mapping[str, Any], settings: Settings) -> Identity:
    """The identity of a signed-in OIDC user: keyed on the provider's subject; an email counts (for admin rights
    and for runs started under it) only when the provider says it is verified, and a `name` claim never does."""
    sub, iss = str(claims.get("sub") or "").strip(), str(claims.get("iss") or "").strip()
    verified = claims.get("email_verified") in (True, "true")  # some providers send the string
    email = str(claims.get("email") or "").strip().lower() if verified else ""
    email = email if _EMAIL.fullmatch(email) else ""
    key = f"oidc:{iss}|{sub}" if sub else (f"email:{email}" if email else "")
    name = " ".join(str(claims.get("name") or "").split())[:100]
    # A name claim that looks like an email could pose as someone's address in the runs table: never shown as is.
    label = email or (name if name and "@" not in name else "") or (
        f"user-{hashlib.sha256(key.encode()).hexdigest()[:8]}" if key else "")
    admins = {a.lower() for a in settings.admins}
    return Identity(key, label, admin=bool(email) and email in admins,
                    aliases=frozenset({f"name:{email}"}) if email else frozenset())


def visitor_identity(token: str, label: str) -> Identity:
    """A demo visitor without sign-in: keyed on the visitor token's id (see `visitor_token`), never on `label`."""
    return Identity(f"anon:{token}" if token else "", " ".join(label.split())[:100] or "anonymous")


def secret_key(home: Path) -> bytes:
    """The key that signs visitor tokens: `GAN_SECRET_KEY`, else one made once in GAN_HOME/.secret_key (0600).
    Replicas behind one proxy must share it (the same GAN_HOME or the same variable)."""
    if os.environ.get("GAN_SECRET_KEY", "").strip():
        return os.environ["GAN_SECRET_KEY"].strip().encode()
    path = home / ".secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # exactly one process creates it
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    except FileExistsError:
        pass
    for _ in range(50):  # another process may be between creating and writing it
        key = path.read_text().strip()
        if key:
            return key.encode()
        time.sleep(0.01)
    raise RuntimeError(f"{path.name} in GAN_HOME is empty; delete it or set GAN_SECRET_KEY")


VISITOR_TOKEN_DAYS = 30


def _signer(key: bytes) -> Any:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(key, salt="gan-studio-visitor")


def visitor_token(key: bytes) -> tuple[str, str]:
    """A new visitor: (token id, signed cookie value). Only this server can issue a value `read_visitor_token`
    accepts, so a visitor can drop their token but never pick someone else's."""
    token = secrets.token_urlsafe(16)
    return token, _signer(key).dumps(token)


def read_visitor_token(key: bytes, signed: str | None) -> str | None:
    """The token id in a signed cookie value, or None if it is missing, forged or older than 30 days."""
    from itsdangerous import BadData

    if not signed or len(signed) > 200:
        return None
    try:
        token = _signer(key).loads(signed, max_age=VISITOR_TOKEN_DAYS * 86400)
    except BadData:
        return None
    return token if isinstance(token, str) and token else None


def _who(who: Identity | str, settings: Settings) -> Identity:
    """A plain string is a trusted display name (team mode, the CLI); the dashboard always passes an Identity."""
    return who if isinstance(who, Identity) else Identity.named(who, settings)


def is_admin(who: Identity | str, settings: Settings) -> bool:
    """Whether `who` is an admin (GAN_ADMINS, matched when the identity was built)."""
    return _who(who, settings).admin


def can_manage(run: RunView, who: Identity | str, settings: Settings) -> bool:
    """Owner or admin: who may stop, resume, edit or delete `run`. Everyone may watch."""
    me = _who(who, settings)
    return bool(me.key) and (run.owner_key in {me.key, *me.aliases} or me.admin)


def _require(run: RunView | None, who: Identity | str, settings: Settings, action: str) -> RunView:
    if run is None or run.deleted_at is not None:
        raise PolicyError(f"cannot {action}: no such run")
    if not can_manage(run, who, settings):
        raise PolicyError(f"cannot {action} run #{run.id}: it belongs to {run.owner or 'nobody'}; only its owner "
                          f"or an admin may")
    return run


def submit(store: Store, cfg: TrainConfig, who: Identity | str, settings: Settings, name: str = "",
           tags: str | Iterable[str] = (), description: str = "", now: float | None = None) -> int:
    """Queue `cfg` for `who` after checking the demo caps inside the store's write transaction; returns the id."""
    me = _who(who, settings)
    if not me.key:
        raise PolicyError("cannot start a run without a name: sign in, or enter your name in the sidebar")
    check_resources(cfg, settings)
    guard = None
    if settings.demo_mode:
        guard = _queue_guard(store, me, settings, now, rate=True)
    return store.submit(cfg, name=name, owner=me.label, owner_key=me.key, tags=tags, description=description,
                        guard=guard, address=me.address, subnet=subnet(me.address))


def _capped(text: str, cap: int) -> str:
    """A cap's refusal with its number in words that agree with it: '1 run is queued', '3 runs are queued'."""
    runs = f"{cap} run{'s' * (cap != 1)}"
    return text.format(cap=cap, runs=runs, runs_are=f"{runs} {'are' if cap != 1 else 'is'}", s="s" * (cap != 1))


def _queue_guard(store: Store, me: Identity, settings: Settings, now: float | None,
                 rate: bool, adding: int = 1) -> Callable[[Connection, TrainConfig], None]:
    """The demo's queue caps for `adding` new runs (a sweep queues several at once), checked inside the store's
    write transaction (so parallel requests cannot race): per person, per client address and subnet (when the
    address is known), and in total; with `rate`, also per minute (and the submission is logged for those)."""
    def refuse(single: str, cap: int, what: str, then: str) -> PolicyError:
        # one run: the message of old ("you already have 2 run(s) queued…"); a sweep: how its size passes the cap
        return PolicyError(f"demo limit: {single}; {then}" if adding == 1 else
                           f"demo limit: this sweep's {adding} runs would exceed the {cap} {what}; {then}")

    net = subnet(me.address)
    # (cap, who, single-run text, sweep text): one row per group that the caps count; '' address: no such group.
    wait, later, minute = "wait for one to finish or stop one", "try again in a few minutes", "try again in a minute"
    live: list[tuple[int, dict[str, Any], str, str, str]]  # `who` splats into count_runs' keyword arguments
    live = [(settings.max_queued_per_user, {"owner_key": me.key}, "you already have {runs} queued or training",
             "runs a person may have queued or training", wait)]
    per_minute = [(settings.submissions_per_minute, {"owner_key": me.key}, "at most {runs} a minute per person",
                   "runs a person may start a minute", minute)]
    if me.address:  # the client's address and its subnet: the same two caps as a person's, higher
        for who, place, queued, started in (
                ({"address": me.address}, "network address", settings.max_queued_per_address,
                 settings.submissions_per_minute_per_address),
                ({"subnet": net}, f"network ({net})", settings.max_queued_per_subnet,
                 settings.submissions_per_minute_per_subnet)):
            live.append((queued, who, f"{{runs_are}} queued or training from your {place}",
                         f"runs one {place} may have queued or training", wait))
            per_minute.append((started, who, f"at most {{runs}} a minute from one {place}",
                               f"runs one {place} may start a minute", minute))
    live.append((settings.max_queued_total, {}, "{runs_are} queued or training on this demo",
                 "runs this demo queues at once", later))
    per_minute.append((settings.submissions_per_minute_total, {},
                       "this demo takes at most {cap} new run{s} a minute from everyone together",
                       "new runs a minute this demo takes from everyone", minute))

    def guard(conn: Connection, cfg: TrainConfig) -> None:
        t = time.time() if now is None else now
        for cap, who, single, what, then in live:
            if store.count_runs(conn, statuses=LIVE, **who) + adding > cap:
                raise refuse(_capped(single, cap), cap, what, then)
        if not rate:
            return
        for cap, who, single, what, then in per_minute:
            if store.count_submitted(conn, since=t - 60, **who) + adding > cap:
                raise refuse(_capped(single, cap), cap, what, then)
        store.record_submission(conn, t, adding, me.key, me.address, net)
    return guard


def submit_sweep(store: Store, base: TrainConfig, spec: Any, who: Identity | str, settings: Settings,
                 name: str = "", now: float | None = None) -> int:
    """Plan, check and queue a sweep (sweep.SweepSpec over `base`) for `who`: every point validated and within the
    demo's per-run caps, and all its runs within the queue caps, or nothing is queued. Returns the sweep's id."""
    from .sweep import plan

    me = _who(who, settings)
    if not me.key:
        raise PolicyError("cannot start a sweep without a name: sign in, or enter your name in the sidebar")
    runs = plan(base, spec)  # ConfigError naming every bad point
    check_sweep(runs, settings)
    guard = _queue_guard(store, me, settings, now, rate=True, adding=len(runs)) if settings.demo_mode else None
    return store.submit_sweep(name, spec.to_dict(), base, [(r.point, r.config) for r in runs], spec.points(),
                              owner=me.label, owner_key=me.key, guard=guard, address=me.address,
                              subnet=subnet(me.address))


def check_sweep(runs: Sequence[Any], settings: Settings) -> list[Estimate]:
    """`check_resources` for every planned run of a sweep (sweep.PlannedRun): their estimates, or the first refusal,
    of the same type, naming the point ('sweep point 3: demo limit: … (epochs=4, seed 0)')."""
    from .sweep import point_text

    out = []
    for r in runs:
        try:
            out.append(check_resources(r.config, settings))
        except (ConfigError, PolicyError) as e:
            raise type(e)(f"sweep point {r.point + 1}: {e} ({point_text(r.values)}, seed {r.config.seed})") from None
    return out


def _require_sweep(store: Store, sweep_id: int, who: Identity | str, settings: Settings, action: str) -> Identity:
    """`who`, if the sweep exists and `who` is its owner or an admin; PolicyError naming `action` otherwise."""
    sweep = store.get_sweep(sweep_id)
    me = _who(who, settings)
    if sweep is None:
        raise PolicyError(f"cannot {action}: no such sweep")
    if not (me.key and (sweep.owner_key in {me.key, *me.aliases} or me.admin)):
        raise PolicyError(f"cannot {action} sweep #{sweep_id}: it belongs to {sweep.owner or 'nobody'}; only its "
                          f"owner or an admin may")
    return me


def stop_sweep(store: Store, sweep_id: int, who: Identity | str, settings: Settings) -> int:
    """Ask every live run of a sweep to stop, as the sweep's owner or an admin; returns how many were asked. On
    the demo its runs that never started are removed (see `stop`), and the sweep with them if none is left."""
    _require_sweep(store, sweep_id, who, settings, "stop")
    return store.stop_sweep(sweep_id, remove_unstarted=settings.demo_mode)


def resume_sweep(store: Store, sweep_id: int, who: Identity | str, settings: Settings) -> list[int]:
    """Queue again every stopped or interrupted run of a sweep (sweep.RESUME_STATUSES), each from its checkpoint, as
    the sweep's owner or an admin: each run within the per-run caps and all of them within the demo's queue caps
    (as one resume each would be), or none is queued. Returns the run ids queued ([]: nothing to resume)."""
    from .sweep import RESUME_STATUSES

    me = _require_sweep(store, sweep_id, who, settings, "resume")
    runs = [r for r in store.sweep_runs(sweep_id) if r.status in RESUME_STATUSES]
    if not runs:
        return []
    for r in runs:
        try:
            check_resources(r.config, settings)
        except (ConfigError, PolicyError) as e:
            raise type(e)(f"run #{r.id}: {e}") from None
    guard = _queue_guard(store, me, settings, None, rate=False, adding=len(runs)) if settings.demo_mode else None
    return store.resume_sweep(sweep_id, [r.id for r in runs], guard=guard, address=me.address,
                              subnet=subnet(me.address))


# Switches a demo run may not turn on, and why (the Train form disables them there). torch.compile's compile time
# is several times a demo-sized run's training (BENCHMARKS.md) and is compute none of the caps counts.
DEMO_OFF = {"compile": "torch.compile is off on this demo: compiling takes longer than a demo-sized run trains, and "
                       "no demo cap counts that time; untick it (Performance)"}


def check_resources(cfg: TrainConfig, settings: Settings) -> Estimate:
    """What a run may cost, before it is queued: it must fit in memory (every mode); on the demo, also the caps on
    a run's memory, epochs, steps, parameters and total training compute, and no torch.compile. Returns the
    estimate."""
    est = check_fits(cfg)  # ConfigError: the config itself must change
    if not settings.demo_mode:
        return est
    for name, why in DEMO_OFF.items():  # "compile: …": the Train form shows the problem on that field
        if getattr(cfg, name):
            raise PolicyError(f"{name}: {why}")
    if est.memory_bytes > settings.max_run_memory_gb * 1e9:  # the host's bound (check_fits) is for its owner's runs
        raise PolicyError(f"demo limit: this run would need about {est.memory_bytes / 1e9:.1f} GB of memory, more "
                          f"than the {settings.max_run_memory_gb:g} GB a run this demo allows "
                          f"(GAN_DEMO_MAX_RUN_MEMORY_GB); lower the batch size or make the model narrower")
    if cfg.epochs > settings.max_epochs:
        raise PolicyError(f"demo limit: epochs {cfg.epochs} is more than the {settings.max_epochs} this demo allows")
    if planned_steps(cfg) > settings.max_steps:
        raise PolicyError(f"demo limit: {planned_steps(cfg):,} steps is more than the {settings.max_steps:,} this "
                          f"demo allows; lower epochs or train_subset, or raise batch_size")
    if est.params > settings.max_params:
        raise PolicyError(f"demo limit: G and D have {est.params / 1e6:.1f} M parameters, more than the "
                          f"{settings.max_params / 1e6:.1f} M this demo allows; make the model narrower")
    if est.train_flops > settings.max_train_tflop * 1e12:
        raise PolicyError(f"demo limit: this run needs about {est.train_flops / 1e12:.0f} TFLOP of compute, more than "
                          f"the {settings.max_train_tflop:g} this demo allows; lower epochs, the batch size, n_critic, "
                          f"eval_samples or the width")
    return est


def stop(store: Store, run_id: int, who: Identity | str, settings: Settings) -> bool:
    """Ask a run to stop, as its owner or an admin. On the demo a run stopped before it ever started is removed,
    row and folder: it has nothing to resume from, and a stranger's stream of submit-and-stop must not pile up rows
    (the per-minute caps still count it). A team keeps it, stopped, to resume or to see in its sweep."""
    _require(store.get(run_id), who, settings, "stop")
    return store.request_stop(run_id, remove_unstarted=settings.demo_mode)


def resume(store: Store, run_id: int, who: Identity | str, settings: Settings, extra_epochs: int = 0,
           extra_steps: int = 0) -> bool:
    """Queue a run again from its checkpoint, as its owner or an admin (within the demo caps); `extra_steps` raises
    the max_steps of a run that max_steps ended (see Store.request_resume)."""
    from ..config import extended

    run = _require(store.get(run_id), who, settings, "resume")
    check_resources(extended(run.config, extra_epochs, extra_steps), settings)
    me, guard = _who(who, settings), None
    if settings.demo_mode:  # a resumed run joins the queue again: the same queue caps as a new one
        guard = _queue_guard(store, me, settings, None, rate=False)
    return store.request_resume(run_id, extra_epochs=extra_epochs, guard=guard, extra_steps=extra_steps,
                                address=me.address, subnet=subnet(me.address))


def edit(store: Store, run_id: int, who: Identity | str, settings: Settings, name: str | None = None,
         tags: str | Iterable[str] | None = None, description: str | None = None) -> None:
    """Rename, retag or redescribe a run, as its owner or an admin."""
    _require(store.get(run_id), who, settings, "edit")
    store.update_info(run_id, name, tags, description)


def delete(store: Store, run_id: int, who: Identity | str, settings: Settings) -> bool:
    """Soft-delete a run, as its owner or an admin; refused in demo mode, where destructive actions are off."""
    if settings.demo_mode and not is_admin(who, settings):
        raise PolicyError("cannot delete runs on the demo; old runs are pruned automatically")
    _require(store.get(run_id), who, settings, "delete")
    return store.soft_delete(run_id)


def restore(store: Store, run_id: int, who: Identity | str, settings: Settings) -> bool:
    """Undo a soft delete, as the owner or an admin."""
    run = store.get(run_id)
    if run is None or not can_manage(run, who, settings):
        raise PolicyError(f"cannot restore run #{run_id}: only its owner or an admin may")
    return store.restore(run_id)


def purge(store: Store, run_id: int, who: Identity | str, settings: Settings) -> bool:
    """Delete a soft-deleted run and its files for good, as the owner or an admin (admins only on the demo)."""
    run = store.get(run_id)
    if run is None or not can_manage(run, who, settings) or (settings.demo_mode and not is_admin(who, settings)):
        raise PolicyError(f"cannot purge run #{run_id}: only its owner or an admin may")
    return store.purge(run_id)


def demo_form_values(values: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """Form values (web.forms.form_values) with epochs lowered to the demo's cap, so a stranger's form opens on a run
    the demo accepts (the defaults and every preset train longer than a demo allows); unchanged off the demo."""
    out = dict(values)
    if settings.demo_mode and isinstance(out.get("epochs"), int) and out["epochs"] > settings.max_epochs:
        out["epochs"] = settings.max_epochs
    return out


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
    """Uploads, and cached rejection calibrations unused for `upload_keep_days`, in every mode; in demo mode also
    soft-delete and purge finished runs older than `prune_days`. Returns the run ids removed."""
    from ..rejection import calibrations_dir, prune_calibrations
    from .uploads import prune_uploads  # here, not at the top: uploads → checkpoint loads torch, policy need not

    prune_uploads(store.home, settings, now=now)  # every mode: anyone may upload, so uploads always age out
    prune_calibrations(calibrations_dir(store.home), settings.upload_keep_days * 86400, now=now)  # theirs too
    if not settings.demo_mode:
        return []
    cutoff = (time.time() if now is None else now) - settings.prune_days * 86400
    gone = []
    for run in store.list_runs(deleted=True):
        if run.status in LIVE or (run.finished_at or run.created_at) >= cutoff:
            continue
        store.soft_delete(run.id)
        if store.purge(run.id):
            gone.append(run.id)
    return gone
