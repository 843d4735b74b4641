"""What a worker can train: the hardware it registers in the store with its heartbeat, and which live workers can
take a run's config, with the reason when none can.

The dashboard host may have no GPU while the team's workers do, so the dashboard asks the workers (their rows in the
store), never its own torch. A worker claims only runs it can train (`Store.claim`); a run that no live worker can
train waits in the queue, and the pages say why (`waiting_reason`). A worker whose capabilities are unknown (one
still starting, or one from before workers registered them) is taken to train anything, as workers always did.
"""
from __future__ import annotations

import json
import platform
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import TrainConfig


@dataclass(frozen=True)
class Capabilities:
    """What one worker registered: its executor, host, CPU (and whether it has bf16 units), GPUs and run cap."""
    executor: str = "local"
    host: str = ""
    cpu: str = ""
    cpu_bf16: bool = False
    gpus: tuple[str, ...] = field(default_factory=tuple)  # CUDA device names; a Ray cluster's GPUs are "GPU"
    max_concurrent: int = 1

    def to_json(self) -> str:
        """The JSON the workers table keeps."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> Capabilities | None:
        """The capabilities a row holds; None where it holds none ('{}': a starting or older worker) or garbage."""
        try:
            data = json.loads(text or "{}")
        except ValueError:
            return None
        if not isinstance(data, dict) or not data:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**{**known, "gpus": tuple(str(g) for g in known.get("gpus", ()))})
        except TypeError:
            return None

    def describe(self) -> str:
        """'gpu-box: 2 GPUs (NVIDIA H100), CPU' style words for the pages."""
        if self.gpus:
            names = sorted(set(self.gpus))
            hw = f"{len(self.gpus)} GPU{'s' * (len(self.gpus) != 1)} ({', '.join(names)})"
        else:
            hw = "CPU only" + (" (bf16 units)" if self.cpu_bf16 else "")
        return f"{self.host or 'a worker'}{' via Ray' if self.executor == 'ray' else ''}: {hw}"


def detect_local(executor: str = "local", max_concurrent: int = 1) -> Capabilities:
    """This process's hardware as a worker that trains here sees it."""
    import torch

    from ..device import native_bf16

    gpus = tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) \
        if torch.cuda.is_available() else ()
    return Capabilities(executor=executor, host=socket.gethostname(), cpu=_cpu_name(), cpu_bf16=native_bf16("cpu"),
                        gpus=gpus, max_concurrent=max_concurrent)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def why_not(caps: Capabilities | None, device: str) -> str | None:
    """Why a worker with `caps` cannot train a run on `device` ('auto', 'cpu', 'cuda'); None when it can (or its
    capabilities are unknown)."""
    if caps is not None and device == "cuda" and not caps.gpus:
        return "it has no CUDA GPU"
    return None


def can_take_json(caps: Capabilities | None, config_json: str) -> bool:
    """Whether a worker with `caps` can train the run a stored config describes. Only the device is read, so a row
    that does not parse is taken, as before workers had capabilities: training it fails it with the reason."""
    try:
        device = json.loads(config_json).get("device", "auto")
    except (ValueError, AttributeError):
        return True
    return why_not(caps, str(device)) is None


@dataclass(frozen=True)
class Placement:
    """Which live workers can take a config: `able` and `unknown` (capabilities not registered yet) by id,
    `unable` as (id, capabilities, why not)."""
    able: tuple[tuple[str, Capabilities], ...]
    unable: tuple[tuple[str, Capabilities, str], ...]
    unknown: tuple[str, ...]

    @property
    def live(self) -> int:
        """How many live workers were sorted."""
        return len(self.able) + len(self.unable) + len(self.unknown)


def placement(cfg: TrainConfig, workers: Sequence[dict[str, Any]]) -> Placement:
    """Sort live workers (Store.workers(live=...) rows) by whether they can train `cfg`."""
    able, unable, unknown = [], [], []
    for w in workers:
        caps = w.get("capabilities")
        if caps is None:
            unknown.append(w["id"])
        elif (why := why_not(caps, cfg.device)) is None:
            able.append((w["id"], caps))
        else:
            unable.append((w["id"], caps, why))
    return Placement(tuple(able), tuple(unable), tuple(unknown))


def need(cfg: TrainConfig) -> str:
    """What a worker must have to train `cfg`, in words ('a CUDA GPU'); '' when any worker can."""
    return "a CUDA GPU" if cfg.device == "cuda" else ""


def waiting_reason(cfg: TrainConfig, workers: Sequence[dict[str, Any]]) -> str | None:
    """Why a queued run waits although workers are live: none of them can train it. None when one can, when one's
    capabilities are not known yet, or when none is live (the pages say that on its own)."""
    p = placement(cfg, workers)
    if p.able or p.unknown or not p.unable:
        return None
    live = "; ".join(caps.describe() for _, caps, _ in p.unable)
    return f"no live worker has {need(cfg)} (live: {live})"


def form_note(cfg: TrainConfig, workers: Sequence[dict[str, Any]], here: Capabilities | None) -> tuple[str, str]:
    """(level, text) the Train page shows before Start: which live workers can take `cfg`; with none live, whether
    the worker the dashboard would start on its own machine (`here`; None: it starts none) can. Level 'warning'
    when the run would wait in the queue for a worker that can train it, else 'info'."""
    p = placement(cfg, workers)
    wait = f"it waits in the queue until a worker with {need(cfg)} registers."
    if not p.live:
        if here is None:
            return "info", ("No training worker is live: Start queues the run, and it waits until one starts "
                            "(python -m gan_core worker).")
        if why_not(here, cfg.device):
            return "warning", (f"No training worker is live, and the one the dashboard would start here "
                               f"({here.describe()}) has no {need(cfg).removeprefix('a ')}: Start queues the run "
                               f"anyway; {wait}")
        return "info", f"No training worker is live: Start queues the run and the dashboard starts one on {here.host}."
    if p.able:
        where = "; ".join(caps.describe() + (" → CUDA" if cfg.device == "auto" and caps.gpus else "")
                          for _, caps in p.able)
        more = f" ({len(p.unknown)} more starting)" if p.unknown else ""
        return "info", f"Live workers that can train it: {where}{more}."
    if p.unknown:
        return "info", f"{len(p.unknown)} worker(s) starting; what they have is not known yet."
    live = "; ".join(caps.describe() for _, caps, _ in p.unable)
    return "warning", f"No live worker has {need(cfg)} (live: {live}). Start queues the run anyway: {wait}"
