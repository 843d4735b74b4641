"""The worker's loop: claim queued runs under the concurrency cap and hand them to an executor, whichever it is.

Several workers may share a store: `Store.claim` is atomic and honours the cap, so no run is trained twice and no
more than `GAN_MAX_CONCURRENT` train at once across all workers. A worker registers what it can train
(capability.py) and claims only runs it can. Its heartbeat (`worker_beat`) comes from a thread of its own for its
whole life, every GAN_HEARTBEAT_S: the local executor trains a whole run inside one call of the loop, and a busy
worker must count as alive (or a dashboard would start a second one beside it). Each round the loop marks runs whose
worker went silent 'interrupted' and now and then prunes old uploads (and on the demo, old runs). The executor
decides where a run trains: here, one at a time (`local`), or in Ray tasks (`ray`).
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from . import policy
from .capability import Capabilities
from .executor import EXECUTORS
from .settings import Settings, WorkerSettings
from .store import Store
from .worker import STARTED_AS_ENV

CAPS_EVERY_S = 60  # how often a worker looks again at what it has (GPU nodes join and leave a Ray cluster)
PRUNE_EVERY_S = 600  # how often a worker removes old uploads (and on the demo, runs older than GAN_DEMO_PRUNE_DAYS)


def dispatch(store: Store, executor: str = "local", worker_id: str | None = None, cap: int | None = None,
             poll: float = 1.0, once: bool = False, max_runs: int = 0, shutdown: threading.Event | None = None,
             settings: WorkerSettings | None = None) -> int:
    """Claim runs and train them on `executor` ('local' or 'ray') until `shutdown` is set, with `once` until the
    queue is empty and this worker's runs have ended, or after `max_runs` runs; returns the runs that ended. `cap`
    overrides GAN_MAX_CONCURRENT (the demo's cap still applies)."""
    settings = settings or WorkerSettings.from_env()
    limits = Settings.from_env()
    cap = policy.worker_cap(cap or settings.max_concurrent, limits)
    shutdown = shutdown or threading.Event()
    kind = EXECUTORS[executor]
    worker_id = worker_id or f"{kind.id_prefix}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    ex = kind(store, worker_id, settings, shutdown)
    caps = [ex.capabilities(cap)]  # the newest, shared with the heartbeat thread (which reads caps[0])
    caps_at = time.time()
    claimed = ended = 0
    pruned_at = 0.0
    store.worker_beat(worker_id, os.getpid(), socket.gethostname(), caps[0])
    if os.environ.get(STARTED_AS_ENV):
        store.worker_gone(os.environ[STARTED_AS_ENV])
    stop_beating = threading.Event()
    beater = threading.Thread(target=_beat, args=(store, worker_id, caps, settings.heartbeat_s, stop_beating),
                              name=f"worker-heartbeat-{worker_id}", daemon=True)
    beater.start()
    try:
        while not shutdown.is_set():
            if time.time() - caps_at > CAPS_EVERY_S:
                caps[0], caps_at = ex.capabilities(cap), time.time()
            ex.keep_alive()
            store.mark_interrupted(settings.stale_after)
            if time.time() - pruned_at > PRUNE_EVERY_S:  # old uploads in every mode, old runs on the demo
                policy.prune(store, limits)
                pruned_at = time.time()
            while ex.has_room() and not (max_runs and claimed >= max_runs):
                run = store.claim(worker_id, cap, caps[0])
                if run is None:
                    break
                ex.start(run)
                claimed += 1
            if ex.busy():
                ended += ex.wait(poll)
            elif once or (max_runs and claimed >= max_runs):
                break
            else:
                shutdown.wait(poll)
        ended += ex.drain()
    finally:
        stop_beating.set()
        beater.join()  # before the row goes: a late beat would register the worker again
        store.worker_gone(worker_id)
    return ended


def _beat(store: Store, worker_id: str, caps: list[Capabilities], every: float, stop: threading.Event) -> None:
    """Refresh this worker's row, with its newest capabilities (`caps[0]`), every `every` seconds until `stop`."""
    pid, host = os.getpid(), socket.gethostname()
    while not stop.wait(every):
        try:
            store.worker_beat(worker_id, pid, host, caps[0])
        except Exception as e:  # a database hiccup must not end the beating for good: the next beat tries again
            print(f"worker {worker_id}: heartbeat failed ({type(e).__name__}: {e})", flush=True)
