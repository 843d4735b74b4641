"""A worker's work: train one claimed run, with its events written to the store, a heartbeat, and stop requests.

`python -m gan_core worker` (cli/worker.py) runs the dispatcher (dispatcher.py), which claims queued runs and hands
each to an executor (executor.py); either executor trains a run with `run_one`, here. The dashboard starts a worker
itself when none is alive (`ensure_worker`). A worker killed mid-run leaves its run 'running' with a stale heartbeat;
the next worker (or dashboard) to look marks it 'interrupted', and resuming it continues from its newest checkpoint.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..budget import check_fits
from ..checkpoint import atomic_write, atomic_write_text, read_header, remove_partial_writes
from ..config import ConfigError, planned_steps
from ..events import CheckpointWritten, Done, EpochQuality, EpochSamples, Event, Failed, Started, StepMetrics, Stopped
from ..sampling import grid, png_bytes
from ..trainer import failed, train
from .settings import WorkerSettings
from .status import RunStatus
from .store import RunView, Store
from .sweep import SweepSpec, prune_verdict

logger = logging.getLogger(__name__)


class StoreSink:
    """Trainer events → store. Step metrics are buffered and written in one insert every `flush_s` seconds. A run of
    a sweep with a pruning rule is judged after each epoch's quality score: if its sweep says prune, `pruned` holds
    why and `stop` is set (the trainer checkpoints and ends at its next step)."""

    def __init__(self, store: Store, run: RunView, flush_s: float = 2.0, stop: threading.Event | None = None) -> None:
        self.store, self.run, self.flush_s, self.stop = store, run, flush_s, stop
        self.out = store.artifacts_dir(run)
        self.buffer: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()
        self.outcome: Event | None = None
        self.pruned: str | None = None
        sweep = store.get_sweep(run.sweep_id) if run.sweep_id is not None else None
        self.spec = SweepSpec.from_dict(sweep.spec) if sweep is not None else None

    def flush(self) -> None:
        """Write buffered metrics now."""
        self.store.add_step_metrics(self.run.id, self.buffer)
        self.buffer = []
        self.last_flush = time.monotonic()

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, Started):
            graph = ", CUDA graph" if ev.cuda_graph else ""
            self.store.set_progress(self.run.id, ran_on=f"{ev.device}, {ev.precision}{graph}")
        elif isinstance(ev, StepMetrics):
            self.buffer.append({k: getattr(ev, k) for k in ("step", "epoch", "d_loss", "g_loss", "d_real", "d_fake",
                                                            "images_per_sec", "d_grad_norm", "g_grad_norm",
                                                            "d_sigma")})
            if time.monotonic() - self.last_flush >= self.flush_s:
                self.flush()
        elif isinstance(ev, EpochSamples):
            rel = f"{self.store.artifacts_dir(self.run).name}/samples/epoch-{ev.epoch:04d}.png"
            png = png_bytes(grid(ev.images))
            atomic_write(self.store.home / rel, lambda tmp: Path(tmp).write_bytes(png))
            self.flush()
            self.store.add_sample(self.run.id, ev.epoch, ev.step, rel)
        elif isinstance(ev, EpochQuality):
            self.store.add_quality(self.run.id, ev.epoch, ev.step,
                                   {**ev.quality, "seconds": ev.seconds, **({"best": True} if ev.best else {})})
            self._judge(ev.epoch, ev.step, ev.quality.get("fd"))
        elif isinstance(ev, CheckpointWritten):
            self.flush()  # every metric up to the checkpoint is durable before the run row says so
            self.store.set_progress(self.run.id, epoch=ev.epoch, step=ev.step)
        elif isinstance(ev, (Done, Stopped, Failed)):
            self.flush()
            self.outcome = ev

    def _judge(self, epoch: int, step: int, fd: Any) -> None:
        """Apply the sweep's pruning rule to this epoch's FD against its peers' at the same epoch."""
        if self.spec is None or self.spec.prune == "none" or self.stop is None or not isinstance(fd, (int, float)) \
                or self.run.sweep_id is None:
            return
        if step >= planned_steps(self.run.config):  # its last epoch: every step is trained, nothing left to save;
            return                                  # stopping now would end a finished run as 'pruned', not done
        verdict = prune_verdict(self.spec, epoch, float(fd),
                                self.store.sweep_fds_at(self.run.sweep_id, epoch, exclude=self.run.id))
        if verdict:
            self.pruned = verdict
            self.stop.set()


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


def run_one(store: Store, run: RunView, worker_id: str, shutdown: threading.Event | None = None,
            settings: WorkerSettings | None = None) -> RunStatus:
    """Train one claimed run to its end; returns the final status written to the store."""
    try:  # checked again at claim: a row written by an older version, or by hand, never reaches the allocator
        check_fits(run.config)
    except ConfigError as e:
        store.finish(run.id, RunStatus.FAILED, f"refused before training: {e}")
        return RunStatus.FAILED
    beat_s = min(0.5, (settings or WorkerSettings.from_env()).heartbeat_s)
    out = store.artifacts_dir(run)
    out.mkdir(parents=True, exist_ok=True)
    remove_partial_writes(out)  # a worker killed mid-write left them; the claim says no one else trains this run
    resume_from = durable_checkpoint(store, run) if run.resume else None
    if resume_from is not None:
        header = read_header(resume_from)
        # metrics after the checkpoint are recomputed, not doubled
        store.rewind(run.id, header["step"], header["epoch"])
    else:
        store.rewind(run.id, 0, 0)
    atomic_write_text(out / "config.json", json.dumps(run.config.to_dict(), indent=2))

    stop = threading.Event()  # set: the trainer checkpoints and ends at its next step
    stop_beating = threading.Event()  # set: the heartbeat thread ends (the run has)

    def beat() -> None:
        while not stop_beating.wait(beat_s):
            if store.beat_and_check_stop(run.id, worker_id) or (shutdown is not None and shutdown.is_set()):
                stop.set()
    hb = threading.Thread(target=beat, name=f"heartbeat-{run.id}", daemon=True)
    hb.start()
    sink = StoreSink(store, run, stop=stop)
    try:
        train(run.config, sink, stop, resume_from=resume_from, out_dir=out)
    except Exception as e:  # config/data problems surface before the loop starts, already sent as Failed
        if not isinstance(sink.outcome, Failed):
            sink.outcome = failed(e, run.step)
    finally:
        stop_beating.set()
        hb.join()
    status, error = _outcome(store, run, worker_id, sink.outcome, shutdown)
    if isinstance(sink.outcome, Failed):  # the stored reason names no server path; the operator's log has it all
        logger.error("run %d failed: %s", run.id, sink.outcome.detail or sink.outcome.reason)
    if status == RunStatus.STOPPED and sink.pruned:  # stopped by its sweep's rule, not by a person
        status, error = RunStatus.PRUNED, sink.pruned
    store.finish(run.id, status, error)
    return status


def _outcome(store: Store, run: RunView, worker_id: str, ev: Event | None,
             shutdown: threading.Event | None) -> tuple[RunStatus, str | None]:
    # The trainer's last event → the run's final status and error. A stop that came from shutting the worker down
    # (not from a person's stop request) leaves the run resumable as 'interrupted', not 'stopped'.
    if isinstance(ev, Done):
        return RunStatus.DONE, ev.reason or None  # early_stop_patience says why it ended before its epochs
    if isinstance(ev, Stopped):
        if shutdown is not None and shutdown.is_set() and not store.beat_and_check_stop(run.id, worker_id):
            return RunStatus.INTERRUPTED, "the worker was shut down; resume continues from the last checkpoint"
        return RunStatus.STOPPED, None
    return RunStatus.FAILED, ev.reason if isinstance(ev, Failed) else "training ended without an outcome"


#: Set by `ensure_worker` for the worker it starts: the id of the "starting" row that kept other dashboards from
#: starting one too; the dispatcher removes that row once the worker has registered itself.
STARTED_AS_ENV = "GAN_WORKER_STARTED_AS"


def ensure_worker(store: Store) -> bool:
    """Start a detached worker process if none is alive; returns whether one was started.

    "Alive" is a fresh worker heartbeat, which a worker sends from its own thread while it trains (dispatcher.py).
    The check and a "starting-…" row that stands for the new worker until it registers itself are one locked
    transaction (`Store.reserve_worker_start`): two dashboards, or two tabs of one, never both start one."""
    host = socket.gethostname()
    started_as = f"starting-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    if not store.reserve_worker_start(started_as, host, WorkerSettings.from_env().stale_after):
        return False
    env = {**os.environ, "GAN_HOME": str(store.home), STARTED_AS_ENV: started_as}
    if not store.is_sqlite or "GAN_DB_URL" in os.environ:
        env["GAN_DB_URL"] = store.url
    try:
        store.home.mkdir(parents=True, exist_ok=True)  # on PostgreSQL nothing else may have made it yet
        with open(store.home / "worker.log", "ab") as log:
            # A new session: the worker outlives the Streamlit process and browser tabs; that is the point.
            subprocess.Popen([sys.executable, "-m", "gan_core", "worker"], stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                             cwd=Path(__file__).resolve().parents[2])
    except OSError:
        store.worker_gone(started_as)  # nothing is starting: the next page may try again
        raise
    return True
