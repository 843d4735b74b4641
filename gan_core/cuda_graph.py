"""`GraphedStep`: train_step recorded as CUDA graphs and replayed, one launch per step instead of hundreds.

Whether a run uses it is `device.uses_cuda_graph` (cfg.cuda_graph, on CUDA, not compiled).
"""
from __future__ import annotations

from dataclasses import replace
from typing import cast

import torch

from .step import GanModels, train_step


class GraphedStep:
    """train_step recorded once per kind of step (D only; D and G) as a CUDA graph, then replayed: one launch per
    step instead of hundreds. The eager dense step is launch-bound (BENCHMARKS.md): nearly all of its time is Python
    and kernel launches, for 128 images the GPU handles in a fraction of that.

    A graph reads and writes fixed addresses, so each step's batch is copied into fixed buffers; the graph always
    takes both gradient norms and the caller's `norms` masks them, so the stats sum exactly as train_step's do. Each
    kind's first WARMUP steps run eagerly on a side stream (cuDNN autotuning, Adam's lazy state, cuBLAS workspaces:
    nothing may be allocated for the first time inside a capture); the capture is the next step of that kind, and
    replaying it right away is that step, so the run takes the same steps as an eager one. The EMA update stays
    outside the graph: AveragedModel reads its counter on the host. A capture that fails fails the run (resumable
    with cuda_graph off): after a failed capture torch's generators and allocator are not fit to go on eagerly.
    With `capture` False (CPU) the same buffers, masks and order run eagerly, which is what the CPU tests compare
    against train_step.
    """
    WARMUP = 3

    def __init__(self, models: GanModels, batch_size: int, capture: bool) -> None:
        self.models, self.capture = models, capture
        self.no_ema = replace(models, g_ema=None)  # the same models and optimizers; the graph must not hold the EMA
        device = models.device
        self.real = torch.zeros(batch_size, 1, 28, 28, device=device)                               # (B, 1, 28, 28)
        self.y = torch.zeros(batch_size, dtype=torch.long, device=device) if models.cfg.conditional else None  # (B,)
        self.masks = {(a, b): torch.tensor([True, True, True, True, a, b], device=device)
                      for a in (False, True) for b in (False, True)}
        self.graphs: dict[bool, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}  # g_step → (graph, its stats)
        self.warm = {False: 0, True: 0}
        self.side = torch.cuda.Stream(device) if capture else None

    def __call__(self, real: torch.Tensor, y_real: torch.Tensor | None, g_step: bool,
                 norms: tuple[bool, bool]) -> torch.Tensor:
        """train_step(models, real, y_real, g_step, norms): the same update and stats (6,), through the graph when
        there is one."""
        self.real.copy_(real)
        if self.y is not None and y_real is not None:  # a conditional run's labels (B,)
            self.y.copy_(y_real)
        if g_step in self.graphs:
            graph, stats = self.graphs[g_step]
            graph.replay()
        elif not self.capture:
            stats = train_step(self.no_ema, self.real, self.y, g_step)
        elif self.warm[g_step] < self.WARMUP:
            self.warm[g_step] += 1
            side = cast(torch.cuda.Stream, self.side)  # capture is on, so __init__ made it
            side.wait_stream(torch.cuda.current_stream(self.models.device))
            with torch.cuda.stream(side):
                stats = train_step(self.no_ema, self.real, self.y, g_step)
            torch.cuda.current_stream(self.models.device).wait_stream(side)
        else:
            stats = self._record(g_step)
        if g_step and self.models.g_ema is not None:
            self.models.g_ema.update_parameters(self.models.g)
        return torch.where(self.masks[norms], stats, 0.0)  # not a product: a NaN norm not asked for stays 0

    def _record(self, g_step: bool) -> torch.Tensor:
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.models.rng)  # z, labels and GP's ε come from the run's own generator
        torch.cuda.synchronize(self.models.device)
        try:
            # On the warm-up's stream: cuBLAS keeps its workspace per stream, and one first made inside the capture
            # would live in the graph's private pool (pytorch#187745). thread_local: a CUDA call from another thread
            # of this process (a worker's sink) does not void the capture.
            with torch.cuda.graph(graph, stream=self.side, capture_error_mode="thread_local"):
                stats = train_step(self.no_ema, self.real, self.y, g_step)
        except RuntimeError as e:
            # Not an eager fallback: a failed capture leaves the generators (torch < 2.13), the allocator and the
            # current stream in capture state. The run fails here with its last checkpoint intact, and resumes.
            raise RuntimeError(f"CUDA graph capture failed ({e}); train or resume this run with cuda_graph off "
                               f"(--no-cuda-graph, or the form's CUDA graph switch)") from e
        self.graphs[g_step] = (graph, stats)
        graph.replay()  # the capture only recorded: this is the step
        return stats
