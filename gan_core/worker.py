"""The worker: claims queued runs from the store, trains them, heartbeats, obeys stop requests.

`python -m gan_core worker` runs one; the dashboard starts one itself when none is alive. Several workers may share
a store: `Store.claim` is atomic and honours the concurrency cap, so no run is trained twice and no more than
`GAN_MAX_CONCURRENT` run at once. A worker killed mid-run leaves its run 'running' with a stale heartbeat; the next
worker (or dashboard) to look marks it 'interrupted', and resuming it continues from its newest checkpoint.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from . import policy
from .budget import check_fits
from .config import ConfigError
from .checkpoint import atomic_write, atomic_write_text, read_header
from .events import (CheckpointWritten, Done, EpochQuality, EpochSamples, Event, Failed, Started, StepMetrics,
                     Stopped)
from .sampling import grid, png_bytes
from .store import RunView, Store
from .trainer import train


PRUNE_EVERY_S = 600  # how often a worker removes old uploads (and on the demo, runs older than GAN_DEMO_PRUNE_DAYS)


def _setting(name: str, default: int | float) -> int | float:
    """A positive number from the environment; a malformed one is a ConfigError naming the variable."""
    from .config import ConfigError

    try:
        return policy._env_number(name, default)
    except ValueError as e:  # "abc", nan, inf, 0 or negative
        raise ConfigError(str(e)) from None


def heartbeat_every() -> float:
    """Seconds between heartbeats (`GAN_HEARTBEAT_S`, default 2)."""
    return float(_setting("GAN_HEARTBEAT_S", 2.0))


def stale_after() -> float:
    """A heartbeat older than this many seconds means the worker is gone (`GAN_HEARTBEAT_TIMEOUT`, default 30)."""
    return float(_setting("GAN_HEARTBEAT_TIMEOUT", 30.0))


def max_concurrent() -> int:
    """The concurrency cap (`GAN_MAX_CONCURRENT`, default 1: two CPU cores train one run well, not two)."""
    return int(_setting("GAN_MAX_CONCURRENT", 1))


class StoreSink:
    """Trainer events → store. Step metrics are buffered and written in one insert every `flush_s` seconds."""

    def __init__(self, store: Store, run: RunView, flush_s: float = 2.0) -> None:
        self.store, self.run, self.flush_s = store, run, flush_s
        self.out = store.artifacts_dir(run)
        self.buffer: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()
        self.outcome: Event | None = None

    def flush(self) -> None:
        """Write buffered metrics now."""
        self.store.add_step_metrics(self.run.id, self.buffer)
        self.buffer = []
        self.last_flush = time.monotonic()

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, Started):
            self.store.set_progress(self.run.id, ran_on=f"{ev.device}, {ev.precision}")
        elif isinstance(ev, StepMetrics):
            self.buffer.append({k: getattr(ev, k) for k in ("step", "epoch", "d_loss", "g_loss", "d_real",
                                                            "d_fake", "images_per_sec")})
            if time.monotonic() - self.last_flush >= self.flush_s:
                self.flush()
        elif isinstance(ev, EpochSamples):
            rel = f"{self.store.artifacts_dir(self.run).name}/samples/epoch-{ev.epoch:04d}.png"
            png = png_bytes(grid(ev.images))
            atomic_write(self.store.home / rel, lambda tmp: Path(tmp).write_bytes(png))
            self.flush()
            self.store.add_sample(self.run.id, ev.epoch, ev.step, rel)
        elif isinstance(ev, EpochQuality):
            self.store.add_quality(self.run.id, ev.epoch, ev.step, {**ev.quality, "seconds": ev.seconds})
        elif isinstance(ev, CheckpointWritten):
            self.flush()  # every metric up to the checkpoint is durable before the run row says so
            self.store.set_progress(self.run.id, epoch=ev.epoch, step=ev.step)
        elif isinstance(ev, (Done, Stopped, Failed)):
            self.flush()
            self.outcome = ev


def durable_checkpoint(store: Store, run: RunView) -> Path | None:
    """The newest checkpoint whose metrics all reached the store.

    A worker killed between writing a checkpoint file and flushing its metric buffer leaves a checkpoint newer than
    the stored metrics; resuming from it would leave a gap, so the one before it is used (two are kept).
    """
    durable = store.last_metric_step(run.id)
    for path in sorted((store.artifacts_dir(run) / "checkpoints").glob("ckpt-*.safetensors"), reverse=True):
        if read_header(path)["step"] <= durable:
            return path
    return None


def run_one(store: Store, run: RunView, worker_id: str, shutdown: threading.Event | None = None) -> str:
    """Train one claimed run to its end; returns the final status written to the store."""
    try:  # checked again at claim: a row written by an older version, or by hand, never reaches the allocator
        check_fits(run.config)
    except ConfigError as e:
        store.finish(run.id, "failed", f"refused before training: {e}")
        return "failed"
    out = store.artifacts_dir(run)
    out.mkdir(parents=True, exist_ok=True)
    resume_from = durable_checkpoint(store, run) if run.resume else None
    if resume_from is not None:
        h = read_header(resume_from)
        store.rewind(run.id, h["step"], h["epoch"])  # metrics after the checkpoint are recomputed, not doubled
    else:
        store.rewind(run.id, 0, 0)
    atomic_write_text(out / "config.json", json.dumps(run.config.to_dict(), indent=2))

    stop = threading.Event()
    beating = threading.Event()

    def beat() -> None:
        while not beating.wait(min(0.5, heartbeat_every())):
            if store.beat_and_check_stop(run.id, worker_id) or (shutdown is not None and shutdown.is_set()):
                stop.set()
    hb = threading.Thread(target=beat, name=f"heartbeat-{run.id}", daemon=True)
    hb.start()
    sink = StoreSink(store, run)
    try:
        train(run.config, sink, stop, resume_from=resume_from, out_dir=out)
    except Exception as e:  # config/data problems surface before the loop starts
        sink.outcome = Failed(f"{type(e).__name__}: {e}", run.step)
    finally:
        beating.set()
        hb.join()
    ev = sink.outcome
    if isinstance(ev, Done):
        status, error = "done", None
    elif isinstance(ev, Stopped):
        if shutdown is not None and shutdown.is_set() and not store.beat_and_check_stop(run.id, worker_id):
            status, error = "interrupted", "the worker was shut down; resume continues from the last checkpoint"
        else:
            status, error = "stopped", None
    else:
        status, error = "failed", ev.reason if isinstance(ev, Failed) else "training ended without an outcome"
    store.finish(run.id, status, error)
    return status


def run_worker(store: Store, worker_id: str | None = None, cap: int | None = None, poll: float = 1.0,
               once: bool = False, max_runs: int = 0, shutdown: threading.Event | None = None) -> int:
    """Claim and train runs until `shutdown` is set (or, with `once`, until the queue is empty); returns runs done."""
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    shutdown = shutdown or threading.Event()
    settings = policy.Settings.from_env()
    cap = policy.worker_cap(cap or max_concurrent(), settings)
    done, pruned_at = 0, 0.0
    try:
        while not shutdown.is_set():
            store.worker_beat(worker_id, os.getpid(), socket.gethostname())
            store.mark_interrupted(stale_after())
            if time.time() - pruned_at > PRUNE_EVERY_S:  # old uploads in every mode, old runs on the demo
                policy.prune(store, settings)
                pruned_at = time.time()
            run = store.claim(worker_id, cap)
            if run is not None:
                run_one(store, run, worker_id, shutdown)
                done += 1
                if max_runs and done >= max_runs:
                    break
                continue
            if once:
                break
            shutdown.wait(poll)
    finally:
        store.worker_gone(worker_id)
    return done


def worker_main(once: bool = False, max_runs: int = 0, cap: int | None = None) -> int:
    """Entry point of `python -m gan_core worker`: SIGTERM/SIGINT finish the current step, checkpoint, exit."""
    from .executor import executor_name, ray_dispatch  # executor imports this module: import it late

    executor = executor_name()  # a wrong GAN_EXECUTOR fails before anything starts
    shutdown = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: shutdown.set())
    store = Store()
    print(f"worker {os.getpid()}: store {store.home}, cap {cap or max_concurrent()}, executor {executor}", flush=True)
    if executor == "ray":
        n = ray_dispatch(store, cap=cap, once=once, max_runs=max_runs, shutdown=shutdown)
    else:
        n = run_worker(store, cap=cap, once=once, max_runs=max_runs, shutdown=shutdown)
    print(f"worker {os.getpid()}: trained {n} run(s), exiting", flush=True)
    return 0


def ensure_worker(store: Store) -> bool:
    """Start a detached worker process if none is alive; returns whether one was started."""
    if store.live_workers(stale_after()) > 0:
        return False
    log = open(store.home / "worker.log", "ab")
    env = {**os.environ, "GAN_HOME": str(store.home)}
    if not store.is_sqlite or "GAN_DB_URL" in os.environ:
        env["GAN_DB_URL"] = store.url
    # A new session: the worker outlives the Streamlit process and browser tabs; that is the point.
    subprocess.Popen([sys.executable, "-m", "gan_core", "worker"], stdout=log, stderr=subprocess.STDOUT,
                     stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                     cwd=Path(__file__).resolve().parents[1])
    store.worker_beat(f"starting-{os.getpid()}", 0, socket.gethostname())  # no second spawn while it boots
    return True
