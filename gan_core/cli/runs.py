"""The operator's verbs over the store's runs: list them, `stop` and `resume` a run or a sweep's runs."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..config import ConfigError
from .flags import EPOCHS_MAX, RUN_ID_MAX, int_in


def register(sub: Any) -> None:
    """Add `runs`, `stop` and `resume` to the subcommands."""
    sub.add_parser("runs", help="list runs in the store").set_defaults(func=cmd_runs)
    st = sub.add_parser("stop", help="ask a run (or a sweep's runs) to stop after a checkpoint")
    which = st.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", type=int_in(1, RUN_ID_MAX), help="the run's id (see `runs`)")
    which.add_argument("--sweep", type=int_in(1, RUN_ID_MAX), help="stop every live run of this sweep")
    st.set_defaults(func=cmd_stop)
    rs = sub.add_parser("resume", help="queue a stopped or interrupted run (or a sweep's) to continue from its "
                                       "checkpoint")
    which = rs.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", type=int_in(1, RUN_ID_MAX), help="the run's id (see `runs`)")
    which.add_argument("--sweep", type=int_in(1, RUN_ID_MAX),
                       help="every stopped or interrupted run of this sweep (pruned, failed and done ones stay)")
    rs.add_argument("--extra-epochs", type=int_in(0, EPOCHS_MAX), default=0,
                    help=f"train this many epochs more than planned [0..{EPOCHS_MAX}]")
    rs.set_defaults(func=cmd_resume)


def cmd_runs(args: argparse.Namespace) -> int:
    """List the store's runs."""
    from ..runs.store import Store

    unreadable: list = []
    for r in Store().list_runs(unreadable=unreadable):
        print(f"{r.id:>5}  {r.status:<11} {r.step:>8}/{r.total_steps:<8} {r.name}  {r.error or ''}")
    for u in unreadable:  # one damaged row never hides the others
        print(f"warning: {u.text()}", file=sys.stderr)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Ask a queued or running run (or every live run of a sweep) to stop (each checkpoints first)."""
    from ..runs.store import Store

    if args.sweep is not None:
        store = Store()
        if store.get_sweep(args.sweep) is None:
            raise ConfigError(f"--sweep {args.sweep}: no such sweep (see `sweeps`)")
        print(f"stop requested for {store.stop_sweep(args.sweep)} run(s) of sweep {args.sweep}")
        return 0
    if not Store().request_stop(args.run):
        raise ConfigError(f"run {args.run} is not queued or running")
    print(f"stop requested for run {args.run}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Queue a stopped, interrupted or failed run again (or every stopped or interrupted run of a sweep); a worker
    continues each from its newest checkpoint."""
    from ..runs.store import Store

    if args.sweep is not None:
        from ..runs.sweep import RESUME_STATUSES

        store = Store()
        if store.get_sweep(args.sweep) is None:
            raise ConfigError(f"--sweep {args.sweep}: no such sweep (see `sweeps`)")
        if args.extra_epochs:
            raise ConfigError("--extra-epochs is for one run (--run); a sweep's runs resume to their planned end")
        ids = store.resume_sweep(args.sweep, [r.id for r in store.sweep_runs(args.sweep)
                                              if r.status in RESUME_STATUSES])
        print(f"queued {len(ids)} run(s) of sweep {args.sweep} to resume" + (f": {', '.join(map(str, ids))}" if ids
              else " (none is stopped or interrupted)"))
        return 0
    if not Store().request_resume(args.run, extra_epochs=args.extra_epochs):
        raise ConfigError(f"run {args.run} cannot be resumed (it must exist and be stopped, interrupted or failed; "
                          f"a done run needs --extra-epochs)")
    print(f"run {args.run} queued to resume")
    return 0
