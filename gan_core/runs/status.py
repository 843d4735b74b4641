"""A run's lifecycle: its statuses, the named groups the rest of the code asks about, and the allowed moves.

    queued ──claim──▶ running ──stop asked──▶ stopping
      │                 │  │                      │
      │ stop            │  └── done / failed / stopped / interrupted / pruned ◀──┘
      ▼                 ▼
    stopped ◀───────────┘        stopped / interrupted / failed / done / pruned ──resume──▶ queued

    interrupted ──its worker reports the end after all──▶ done / failed / stopped / interrupted / pruned
    stopped ──the Ray executor's own shutdown asked that stop──▶ interrupted

The store is the only writer of a status; it checks each move against `TRANSITIONS` (store._may_become).
`RunStatus` is a `StrEnum`, so a member equals its stored string ("queued") and the database column stays plain text.
"""
from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run is in its life; the value is what the store's `runs.status` column holds."""

    QUEUED = "queued"  # waiting for a worker
    RUNNING = "running"  # a worker trains it and sends heartbeats
    STOPPING = "stopping"  # a stop was asked; the worker ends it at the next step
    STOPPED = "stopped"  # stopped by a person (resumable)
    DONE = "done"  # trained to its last epoch or max_steps (resumable with more epochs or steps)
    FAILED = "failed"  # the trainer raised (resumable from the last checkpoint)
    INTERRUPTED = "interrupted"  # its worker died: no heartbeat for the staleness limit (resumable)
    PRUNED = "pruned"  # its sweep's early-stopping rule ended it: worse than its peers at an epoch (resumable)


#: A worker holds it: counts against the concurrency cap and must keep beating.
ACTIVE: frozenset[RunStatus] = frozenset({RunStatus.RUNNING, RunStatus.STOPPING})
#: Not finished yet: queued or active. Pages refresh these live; caps on waiting work count them.
LIVE: frozenset[RunStatus] = ACTIVE | {RunStatus.QUEUED}
#: Ended; the trainer sent its last event or the worker is gone.
FINISHED: frozenset[RunStatus] = frozenset({RunStatus.STOPPED, RunStatus.DONE, RunStatus.FAILED,
                                            RunStatus.INTERRUPTED, RunStatus.PRUNED})
#: Can be queued again to continue from its newest checkpoint (a done run only with more epochs or steps).
RESUMABLE: frozenset[RunStatus] = FINISHED

#: Every allowed move, from → to: the store's UPDATEs match only these (store._may_become).
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.STOPPED}),
    RunStatus.RUNNING: frozenset({RunStatus.STOPPING}) | FINISHED,
    RunStatus.STOPPING: FINISHED,
    **{s: frozenset({RunStatus.QUEUED}) for s in (RunStatus.DONE, RunStatus.FAILED, RunStatus.PRUNED)},
    # A worker the store marked interrupted (its heartbeats were late) may still be training: its own report of how
    # the run ended is the truer one.
    RunStatus.INTERRUPTED: frozenset({RunStatus.QUEUED}) | FINISHED,
    # RayExecutor.drain stops its runs to shut down; a run that ended stopped by that request is resumable work the
    # shutdown cut short, not a person's stop.
    RunStatus.STOPPED: frozenset({RunStatus.QUEUED, RunStatus.INTERRUPTED}),
}
