"""Where claimed runs train: in the worker process (`local`, the default) or in Ray tasks (`GAN_EXECUTOR=ray`).

The dispatcher (dispatcher.py) claims runs and hands each to an `Executor`; it asks the executor whether it has room
for another run, starts runs, waits for them to end, and at shutdown drains the rest. Both executors train a run with
`worker.run_one`, so run heartbeats and stop requests work the same way in both.

With Ray, each run is a Ray task that builds its own Store from the GAN_DB_URL and GAN_HOME passed to it. Every Ray
node must reach the same database and mount GAN_HOME at the same path. Ray is imported only here, and only when
GAN_EXECUTOR=ray.
"""
from __future__ import annotations

import os
import signal
import threading
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ..config import ConfigError
from .capability import Capabilities, detect_local
from .settings import WorkerSettings
from .status import ACTIVE, RunStatus
from .store import RunView, Store
from .worker import run_one


class Executor(ABC):
    """Trains the runs a dispatcher claimed as `worker_id`. `shutdown` set: runs checkpoint and end, resumable."""

    id_prefix: ClassVar[str] = ""  # begins the worker ids of dispatchers that use this executor

    def __init__(self, store: Store, worker_id: str, settings: WorkerSettings, shutdown: threading.Event) -> None:
        self.store, self.worker_id, self.settings, self.shutdown = store, worker_id, settings, shutdown

    @abstractmethod
    def has_room(self) -> bool:
        """Whether the dispatcher may claim another run for this executor now (the store's cap still applies)."""

    @abstractmethod
    def start(self, run: RunView) -> None:
        """Train a run the dispatcher has just claimed."""

    @abstractmethod
    def busy(self) -> bool:
        """Whether a started run has not yet been reported by `wait`."""

    @abstractmethod
    def wait(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for started runs to end; returns how many ended."""

    def capabilities(self, cap: int) -> Capabilities:
        """What runs this executor can train, as the dispatcher registers it (`cap`: its concurrency cap)."""
        return detect_local("local", cap)

    def keep_alive(self) -> None:  # noqa: B027 (a hook: most executors have nothing to keep alive)
        """Called once a dispatcher round: keep started runs from looking stale while they wait to train."""

    def drain(self) -> int:
        """At shutdown: end every started run, resumable; returns how many ended."""
        return 0


class LocalExecutor(Executor):
    """Trains each run in this process, one at a time: `start` returns when the run has ended. Until `wait` has
    reported it, `has_room` is False, so the dispatcher goes round its loop (shutdown, heartbeat, stale runs) between
    two runs, as a worker always has."""

    def __init__(self, store: Store, worker_id: str, settings: WorkerSettings, shutdown: threading.Event) -> None:
        super().__init__(store, worker_id, settings, shutdown)
        self.ended = 0

    def has_room(self) -> bool:
        """Room for one run once the last one was reported."""
        return self.ended == 0

    def start(self, run: RunView) -> None:
        """Train `run` to its end here; run_one's own thread beats and listens for a stop request meanwhile."""
        run_one(self.store, run, self.worker_id, self.shutdown, self.settings)
        self.ended += 1

    def busy(self) -> bool:
        """An ended run not yet reported."""
        return self.ended > 0

    def wait(self, timeout: float) -> int:
        """The runs that ended since the last call (never waits: `start` did)."""
        n, self.ended = self.ended, 0
        return n


class RayExecutor(Executor):
    """Trains each run in a Ray task, as many at once as the store's cap lets the dispatcher claim; Ray gives each
    task a GPU or a CPU (`task_resources`) and queues it until one is free."""

    id_prefix = "ray-"

    def __init__(self, store: Store, worker_id: str, settings: WorkerSettings, shutdown: threading.Event) -> None:
        import ray

        super().__init__(store, worker_id, settings, shutdown)
        self.ray, self.where = ray, connect_ray()
        self.env = task_env(store)
        self.train = ray.remote(max_retries=0)(_train_in_ray)  # a retry would retrain from scratch; resume is explicit
        self.inflight: dict[Any, RunView] = {}  # Ray object ref → the run its task trains

    def capabilities(self, cap: int) -> Capabilities:
        """The Ray cluster's, not this process's: its GPUs (Ray knows their count, not their names) and CPUs."""
        res = self.ray.cluster_resources()
        return Capabilities(executor="ray", host=self.where, cpu=f"{int(res.get('CPU', 0))} CPUs",
                            gpus=("GPU",) * int(res.get("GPU", 0)), max_concurrent=cap)

    def has_room(self) -> bool:
        """Always: the store's cap decides how many runs are claimed, Ray where and when each trains."""
        return True

    def start(self, run: RunView) -> None:
        """Submit a Ray task for `run` with the resources its device needs."""
        res = task_resources(run, self.ray.cluster_resources().get("GPU", 0))
        self.inflight[self.train.options(**res).remote(self.env, run.id, self.worker_id, self.settings)] = run
        print(f"dispatcher {os.getpid()}: run {run.id} → a Ray task on {self.where} "
              f"({', '.join(f'{k}={v}' for k, v in res.items())})", flush=True)

    def busy(self) -> bool:
        """Tasks submitted and not yet collected."""
        return bool(self.inflight)

    def wait(self, timeout: float) -> int:
        """Collect the tasks that end within `timeout` seconds (at most one a call, as Ray hands them back)."""
        ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
        for ref in ready:
            self._collect(self.inflight.pop(ref), ref)
        return len(ready)

    def keep_alive(self) -> None:
        """Beat for each run: one whose task waits in Ray's queue for a GPU is not stale."""
        for run in self.inflight.values():
            self.store.beat_and_check_stop(run.id, self.worker_id)

    def drain(self) -> int:
        """Ask each run to checkpoint and stop, then record it as interrupted (resumable), as a local worker does.
        Ray ends a driver's tasks when it exits, so whatever has not stopped within the staleness limit is
        cancelled."""
        if not self.inflight:
            return 0
        asked = {run.id for run in self.inflight.values() if self.store.request_stop(run.id)}
        ready, rest = self.ray.wait(list(self.inflight), num_returns=len(self.inflight),
                                    timeout=self.settings.stale_after)
        for ref in ready:
            self._collect(self.inflight[ref], ref)
        for ref in rest:
            self.ray.cancel(ref, force=True)
        for run in self.inflight.values():
            now = self.store.get(run.id)
            if now is not None and (now.status in ACTIVE or (now.status == RunStatus.STOPPED and run.id in asked)):
                self.store.finish(run.id, RunStatus.INTERRUPTED, "the dispatcher was shut down; resume continues "
                                                                 "from the last checkpoint")
        self.inflight.clear()
        return len(ready)

    def _collect(self, run: RunView, ref: Any) -> None:
        # A task that raised or died (node lost, process killed, out of memory) leaves its run active: say why.
        try:
            self.ray.get(ref)
        except Exception as e:
            now = self.store.get(run.id)
            if now is not None and now.status in ACTIVE and now.worker_id == self.worker_id:
                reason = (str(e).strip().splitlines() or [""])[0][:300]
                self.store.finish(run.id, RunStatus.INTERRUPTED, f"its Ray task ended early ({type(e).__name__}: "
                                  f"{reason}); resume continues from the last checkpoint")


EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "ray": RayExecutor}


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
        local: dict[str, Any] = {} if address else {"include_dashboard": False}
        ray.init(address=address, **local)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, ours)
    return f"the Ray cluster at {address}" if address else "a local Ray"


def task_resources(run: RunView, cluster_gpus: float) -> dict[str, float]:
    """Ray resources of a run's task: a GPU for device 'cuda' (or 'auto' when the cluster has GPUs), else a CPU."""
    if run.config.device == "cuda" or (run.config.device == "auto" and cluster_gpus > 0):
        return {"num_gpus": 1}
    return {"num_cpus": 1}


def task_env(store: Store) -> dict[str, str]:
    """The env a Ray task needs to reach this store (GAN_DB_URL, GAN_HOME)."""
    return {"GAN_DB_URL": store.url, "GAN_HOME": str(store.home)}


def _train_in_ray(env: dict[str, str], run_id: int, worker_id: str, settings: WorkerSettings) -> str:
    # Runs inside a Ray worker process, on any node. Arguments rather than runtime_env carry the database URL, so
    # its password never shows in Ray's dashboard; Ray workers run one task at a time, so setting env is safe.
    # `settings` are the dispatcher's: the task beats (and hears stop requests) as often as a local worker would.
    os.environ.update(env)
    store = Store(url=env["GAN_DB_URL"], home=env["GAN_HOME"])
    try:
        run = store.get(run_id)
        if run is None or run.status not in ACTIVE or run.worker_id != worker_id:
            return "skipped"  # stopped or declared interrupted while the task waited for a free GPU/CPU
        return run_one(store, run, worker_id, settings=settings)
    finally:
        store.dispose()
