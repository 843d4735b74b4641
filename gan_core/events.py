"""Typed events the trainer emits, and the sink protocol that receives them.

The trainer knows nothing about who listens: the CLI prints them with tqdm, the worker writes them to the store,
tests collect them in a list.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Started:
    """The loop is about to run: on which device, in which precision ("auto" resolved), from which step, and whether
    its steps replay as a CUDA graph."""
    device: str
    precision: str
    step: int
    cuda_graph: bool = False


@dataclass(frozen=True)
class StepMetrics:
    """Means over the `log_every` steps ending at `step` (1-based, counted over the whole run)."""
    step: int
    epoch: int
    d_loss: float
    g_loss: float
    d_real: float   # mean D(x), as a probability
    d_fake: float   # mean D(G(z)), as a probability
    images_per_sec: float
    # Training health: collapse and divergence show in the gradients before the samples. L2 norm over all of a
    # model's parameter gradients, at the interval's first step (D) and first G step (G): a sample, since taking it
    # every step cost 2.7 % of a dense step on one CPU thread.
    d_grad_norm: float = 0.0
    g_grad_norm: float = 0.0
    d_sigma: float | None = None  # spectral_norm on: the largest σ(W) D's layers divide by (their raw scale)


@dataclass(frozen=True)
class EpochSamples:
    """The fixed-noise grid after `epoch` (1-based): uint8 (n, 28, 28), 0 = black; n = 64 (8×8) for an
    unconditional run, 100 (10×10, row r drawn as class or InfoGAN code r) for a conditional or info_code one."""
    epoch: int
    step: int
    images: np.ndarray


@dataclass(frozen=True)
class EpochQuality:
    """Quality numbers of `eval_samples` generated images after `epoch` (see metrics.Quality.to_dict)."""
    epoch: int
    step: int
    quality: dict
    seconds: float  # time the measurement took, to keep its cost visible
    best: bool = False  # the best Fréchet distance of the run so far: best-generator.safetensors now holds this G


@dataclass(frozen=True)
class CheckpointWritten:
    epoch: int
    step: int
    path: str


@dataclass(frozen=True)
class Done:
    """Finished every epoch (or max_steps), or stopped early by early_stop_patience (`reason` says so)."""
    epoch: int
    step: int
    reason: str = ""


@dataclass(frozen=True)
class Stopped:
    """Stopped on request, after writing a checkpoint to resume from."""
    epoch: int
    step: int


@dataclass(frozen=True)
class Failed:
    """Ended by an error: a diverged loss, an exception in the loop, or one in setting up (then also raised).
    `reason` is stored with the run and shown to whoever opens it: it names no server path (trainer.failure_reason;
    the full error goes to the server's log)."""
    reason: str
    step: int
    detail: str = ""  # the whole error (folders searched, traceback) for the server's log; never stored or shown


# An absolute path (/srv/gan/run-000001/x, ~/data), or a URL's path (sqlite:////srv/gan.db), that no word
# character or path character comes right before: "images/s", "D/G" and "1/2" stay.
_SERVER_PATH = re.compile(r"(?<![\w.~/:-])(?:[A-Za-z][\w+.-]*:/+|~)?/+[^\s'\"`,;()\[\]<>]+")


def redact_paths(text: str) -> str:
    """`text` with every absolute path in it cut to its last part ('/srv/gan/MNIST/raw' -> 'raw'): a failed run's
    reason, and an error a page shows, are read by visitors, who must learn no folder of the server."""
    return _SERVER_PATH.sub(lambda m: PurePosixPath(m.group(0).rstrip("/")).name or "…", str(text))


Event = Started | StepMetrics | EpochSamples | EpochQuality | CheckpointWritten | Done | Stopped | Failed


class Sink(Protocol):
    def __call__(self, event: Event, /) -> None: ...  # positional: any one-argument callable is a sink


class ListSink(list):
    """Collects events in order; handy for tests and short scripts."""

    def __call__(self, event: Event) -> None:
        self.append(event)

    def of(self, kind: type) -> list:
        """The collected events of one type."""
        return [e for e in self if isinstance(e, kind)]
