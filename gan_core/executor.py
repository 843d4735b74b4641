"""Where claimed runs execute: in the worker process (`local`, the default) or on a Ray cluster (`GAN_EXECUTOR=ray`).

With Ray, `python -m gan_core worker` is a dispatcher: it claims queued runs exactly as a local worker does (atomic
claim under `GAN_MAX_CONCURRENT`, worker heartbeat, stale runs marked interrupted) and hands each to a Ray task.
The task builds its own Store from the GAN_DB_URL and GAN_HOME passed to it and trains with `worker.run_one`, so
run heartbeats and stop requests work as they do locally. Every Ray node must reach the same database and mount
GAN_HOME at the same path. Ray is imported only here, and only when GAN_EXECUTOR=ray.
"""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

from . import policy
from .config import ConfigError
from .store import ACTIVE, RunView, Store
from .worker import PRUNE_EVERY_S, heartbeat_every, max_concurrent, run_one, stale_after

EXECUTORS = ("local", "ray")


def executor_name() -> str:
    """The executor `GAN_EXECUTOR` names: 'local' (default) or 'ray'; anything else is a ConfigError."""
    raw = os.environ.get("GAN_EXECUTOR", "")
    name = raw.strip().lower() or "local"
    if name not in EXECUTORS:
        raise ConfigError(f"GAN_EXECUTOR: {raw!r} is not an executor; use 'local' (train in the worker process, "
                          f"the default) or 'ray' (hand runs to the Ray cluster at RAY_ADDRESS)")
    return name


def connect_ray() -> str:
    """Connect this process to the Ray cluster at `RAY_ADDRESS` (unset: start a local Ray); returns a description."""
    import ray

    address = os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        ours = signal.getsignal(signal.SIGTERM)  # ray.init replaces it with sys.exit: keep the graceful one
        ray.init(address=address, **({} if address else {"include_dashboard": False}))
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, ours)
    return f"the Ray cluster at {address}" if address else "a local Ray"


def task_resources(run: RunView, cluster_gpus: float) -> dict[str, float]:
    """Ray resources of a run's task: a GPU for device 'cuda' (or 'auto' when the cluster has GPUs), else a CPU."""
    if run.config.device == "cuda" or (run.config.device == "auto" and cluster_gpus > 0):
        return {"num_gpus": 1}
    return {"num_cpus": 1}


def task_env(store: Store) -> dict[str, str]:
    """The env a Ray task needs to reach this store and beat like a local worker (GAN_DB_URL, GAN_HOME, ...)."""
    return {"GAN_DB_URL": store.url, "GAN_HOME": str(store.home), "GAN_HEARTBEAT_S": str(heartbeat_every())}


def _train_in_ray(env: dict[str, str], run_id: int, worker_id: str) -> str:
    # Runs inside a Ray worker process, on any node. Arguments rather than runtime_env carry the database URL, so
    # its password never shows in Ray's dashboard; Ray workers run one task at a time, so setting env is safe.
    os.environ.update(env)
    store = Store(url=env["GAN_DB_URL"], home=env["GAN_HOME"])
    try:
        run = store.get(run_id)
        if run is None or run.status not in ACTIVE or run.worker_id != worker_id:
            return "skipped"  # stopped or declared interrupted while the task waited for a free GPU/CPU
        return run_one(store, run, worker_id)
    finally:
        store.dispose()


def ray_dispatch(store: Store, worker_id: str | None = None, cap: int | None = None, poll: float = 1.0,
                 once: bool = False, max_runs: int = 0, shutdown: threading.Event | None = None) -> int:
    """Claim runs like `run_worker` but train each in a Ray task; returns the runs that ended."""
    import ray

    where = connect_ray()
    worker_id = worker_id or f"ray-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    shutdown = shutdown or threading.Event()
    settings = policy.Settings.from_env()
    cap = policy.worker_cap(cap or max_concurrent(), settings)
    env = task_env(store)
    train = ray.remote(max_retries=0)(_train_in_ray)  # a retry would retrain from scratch; resume is explicit
    inflight: dict[Any, RunView] = {}
    claimed = ended = 0
    pruned_at = 0.0
    try:
        while not shutdown.is_set():
            store.worker_beat(worker_id, os.getpid(), socket.gethostname())
            for run in inflight.values():  # a run whose task waits in Ray's queue for a GPU is not stale
                store.beat_and_check_stop(run.id, worker_id)
            store.mark_interrupted(stale_after())
            if settings.demo_mode and time.time() - pruned_at > PRUNE_EVERY_S:
                policy.prune(store, settings)
                pruned_at = time.time()
            while not (max_runs and claimed >= max_runs):
                run = store.claim(worker_id, cap)
                if run is None:
                    break
                res = task_resources(run, ray.cluster_resources().get("GPU", 0))
                inflight[train.options(**res).remote(env, run.id, worker_id)] = run
                claimed += 1
                print(f"dispatcher {os.getpid()}: run {run.id} → a Ray task on {where} "
                      f"({', '.join(f'{k}={v}' for k, v in res.items())})", flush=True)
            if not inflight:
                if once or (max_runs and claimed >= max_runs):
                    break
                shutdown.wait(poll)
                continue
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=poll)
            for ref in ready:
                _collect(store, inflight.pop(ref), ref, worker_id)
                ended += 1
        if inflight:
            ended += _drain(store, inflight, worker_id)
    finally:
        store.worker_gone(worker_id)
    return ended


def _collect(store: Store, run: RunView, ref: Any, worker_id: str) -> None:
    # A task that raised or died (node lost, process killed, out of memory) leaves its run active: say why.
    import ray

    try:
        ray.get(ref)
    except Exception as e:
        now = store.get(run.id)
        if now is not None and now.status in ACTIVE and now.worker_id == worker_id:
            reason = (str(e).strip().splitlines() or [""])[0][:300]
            store.finish(run.id, "interrupted", f"its Ray task ended early ({type(e).__name__}: {reason}); "
                                                "resume continues from the last checkpoint")


def _drain(store: Store, inflight: dict[Any, RunView], worker_id: str) -> int:
    # Shutdown: ask each run to checkpoint and stop, then record it as interrupted (resumable), as a local worker
    # does. Ray ends a driver's tasks when it exits, so whatever has not stopped in time is cancelled.
    import ray

    asked = {run.id for run in inflight.values() if store.request_stop(run.id)}
    ready, rest = ray.wait(list(inflight), num_returns=len(inflight), timeout=stale_after())
    for ref in ready:
        _collect(store, inflight[ref], ref, worker_id)
    for ref in rest:
        ray.cancel(ref, force=True)
    for run in inflight.values():
        now = store.get(run.id)
        if now is not None and (now.status in ACTIVE or (now.status == "stopped" and run.id in asked)):
            store.finish(run.id, "interrupted", "the dispatcher was shut down; resume continues from the last "
                                                "checkpoint")
    return len(ready)
