"""`worker`: train the store's queued runs until stopped (or the queue is empty, with --once)."""
from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

from .flags import int_in


def register(sub: Any) -> None:
    """Add `worker` to the subcommands."""
    w = sub.add_parser("worker", help="train queued runs from the store ($GAN_HOME / $GAN_DB_URL)")
    w.add_argument("--once", action="store_true", help="exit when the queue is empty")
    w.add_argument("--max-runs", type=int_in(0, 2**31 - 1), default=0, help="exit after this many runs (0 = never)")
    w.add_argument("--cap", type=int_in(1, 10_000),
                   help="concurrency cap across workers, at least 1 (default $GAN_MAX_CONCURRENT or 1)")
    w.set_defaults(func=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a worker that trains queued runs from the store; SIGTERM/SIGINT: the runs checkpoint, then it exits."""
    from ..runs.dispatcher import dispatch
    from ..runs.executor import executor_name
    from ..runs.settings import WorkerSettings
    from ..runs.store import Store

    settings = WorkerSettings.from_env()  # a malformed GAN_* setting or executor is refused before anything starts
    executor = executor_name()
    shutdown = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: shutdown.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        store = Store()
        print(f"worker {os.getpid()}: store {store.home}, cap {args.cap or settings.max_concurrent}, executor "
              f"{executor}", flush=True)
        n = dispatch(store, executor, cap=args.cap, once=args.once, max_runs=args.max_runs, shutdown=shutdown,
                     settings=settings)
    finally:
        for sig, handler in handlers.items():  # main() may be called again in this process (tests, scripts)
            signal.signal(sig, handler)
    print(f"worker {os.getpid()}: trained {n} run(s), exiting", flush=True)
    return 0
