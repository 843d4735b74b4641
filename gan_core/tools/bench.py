"""Throughput of the product trainer against a loop written the way the seed tutorials train, same run, same data.

The reference (a) feeds batches through a torchvision DataLoader with ToTensor/Normalize, runs D separately on real
and fake, draws fresh noise and runs G again for the G step through an unfrozen D, steps plain Adam and reads both
losses back every step, as the tutorials' progress bars do. (b) is `trainer.train` with the same config.
"""
from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..config import TrainConfig
from ..device import resolve_device, resolve_precision, uses_cuda_graph
from ..events import Event, ListSink, StepMetrics
from ..losses import LOSSES, gradient_penalty
from ..models import build_discriminator, build_generator, sample_noise
from ..trainer import train


class TutorialMNIST(Dataset):
    """What torchvision.datasets.MNIST does per item: uint8 array → PIL image → transform."""

    def __init__(self, images: torch.Tensor) -> None:
        # Imported here, not at the top: the product's own paths (and the GPU check on a machine without
        # torchvision or Pillow) must not need the tutorials' dependencies.
        from PIL import Image
        from torchvision import transforms

        self.images = images.numpy()
        self.fromarray = Image.fromarray
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.fromarray(self.images[i])), 0


def reference_throughput(cfg: TrainConfig, images: torch.Tensor, steps: int, warmup: int) -> float:
    """Images/s of the tutorial-style loop over `steps` steps after `warmup` untimed ones."""
    device = resolve_device(cfg)
    torch.manual_seed(cfg.seed)
    g, d = build_generator(cfg).to(device), build_discriminator(cfg).to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    loss = LOSSES[cfg.loss]
    loader = DataLoader(TutorialMNIST(images), batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    done, t0 = 0, 0.0
    while done < warmup + steps:
        for real, _ in loader:
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            if done == warmup + steps:
                break
            real = real.to(device)
            fake = g(sample_noise(cfg, cfg.batch_size, device=device))
            d_loss = loss.d(d(real), d(fake.detach()), 1.0 - cfg.label_smoothing)
            if cfg.gp_weight:
                d_loss = d_loss + cfg.gp_weight * gradient_penalty(d, real, fake.detach())
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            if (done + 1) % cfg.n_critic == 0:
                g_loss = loss.g(d(g(sample_noise(cfg, cfg.batch_size, device=device))))
                opt_g.zero_grad()
                g_loss.backward()
                opt_g.step()
                g_loss.item()
            d_loss.item()
            done += 1
    return steps * cfg.batch_size / (time.perf_counter() - t0)


def product_throughput(cfg: TrainConfig, images: torch.Tensor, steps: int, warmup: int,
                       sink: Callable[[Any], None] | None = None) -> float:
    """Images/s of `trainer.train` over `steps` steps after `warmup` (its own metrics, which sync the device).

    `sink`, if given, also receives every event, and its time is part of what is measured.
    """
    events = ListSink()

    def tee(event: Event, /) -> None:
        events(event)
        if sink is not None:
            sink(event)
    train(cfg.replace(max_steps=warmup + steps, log_every=warmup, epochs=10_000), tee, images=images)
    timed = events.of(StepMetrics)[1:]
    seconds = sum(warmup * cfg.batch_size / e.images_per_sec for e in timed)
    return len(timed) * warmup * cfg.batch_size / seconds


def store_overhead(cfg: TrainConfig, images: torch.Tensor, steps: int) -> dict[str, Any]:
    """Throughput with and without the worker's StoreSink (SQLite in a temp GAN_HOME), sample grid every epoch.

    Epochs are cut to 50 steps (train_subset) so that PNG grids and their rows are written often; metrics are
    logged every 10 steps as by default. Runs alternate three times and the best of each is kept (noise).
    """
    from ..runs.store import Store
    from ..runs.worker import StoreSink

    cfg = cfg.replace(train_subset=50 * cfg.batch_size, sample_every=1, log_every=10, eval_samples=0)
    warmup = 10
    best_plain = best_store = 0.0
    with tempfile.TemporaryDirectory() as home:
        store = Store(home=home)
        for _ in range(3):
            best_plain = max(best_plain, product_throughput(cfg, images, steps, warmup))
            run = store.get(store.submit(cfg, name="bench"))
            assert run is not None  # just submitted
            best_store = max(best_store, product_throughput(cfg, images, steps, warmup, StoreSink(store, run)))
        store.dispose()
    plain, with_store = round(best_plain, 1), round(best_store, 1)  # the % from the printed numbers: it adds up
    return {"no_store_img_s": plain, "with_store_img_s": with_store,
            "store_overhead_pct": round(100 * (1 - with_store / plain), 2)}


def run_bench(cfg: TrainConfig, images: torch.Tensor, steps: int) -> dict[str, Any]:
    """Both loops on the same data and config; returns a JSON-ready dict of the numbers."""
    warmup = max(1, steps // 4)
    steps = warmup * max(1, round(steps / warmup))
    ref = reference_throughput(cfg, images, steps, warmup)
    prod = product_throughput(cfg, images, steps, warmup)
    steps_per_epoch = 60_000 // cfg.batch_size
    return {
        "arch": cfg.arch, "device": str(resolve_device(cfg)),
        "precision": resolve_precision(cfg, resolve_device(cfg)), "compile": cfg.compile,
        "cuda_graph": uses_cuda_graph(cfg, resolve_device(cfg)),
        "batch_size": cfg.batch_size, "steps": steps, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "reference_img_s": round(ref, 1), "product_img_s": round(prod, 1), "speedup": round(prod / ref, 2),
        "reference_s_per_epoch": round(steps_per_epoch * cfg.batch_size / ref, 2),
        "product_s_per_epoch": round(steps_per_epoch * cfg.batch_size / prod, 2),
    }


def quality_overhead(cfg: TrainConfig, images: torch.Tensor, steps: int) -> dict[str, Any]:
    """Seconds of one epoch against seconds of scoring `cfg.eval_samples` samples after it, and their ratio."""
    from ..metrics import measure_generator

    img_s = product_throughput(cfg.replace(eval_samples=0), images, steps, max(1, steps // 4))
    epoch_s = (len(images) // cfg.batch_size) * cfg.batch_size / img_s
    g = build_generator(cfg)
    measure_generator(g, cfg, 100)  # load the classifier and its statistics once, as the worker does
    t = time.perf_counter()
    measure_generator(g, cfg, cfg.eval_samples)
    score_s = time.perf_counter() - t
    return {"eval_samples": cfg.eval_samples, "epoch_s": round(epoch_s, 2), "score_s": round(score_s, 3),
            "quality_overhead_pct": round(100 * score_s / epoch_s, 1)}


def generation_latency(cfg: TrainConfig, n: int = 64, repeats: int = 30) -> dict[str, Any]:
    """Warm wall time of sampling n digits (noise, G forward in eval mode, uint8 conversion): median and p90 ms."""
    from ..sampling import generate

    torch.manual_seed(cfg.seed)
    g = build_generator(cfg).to(resolve_device(cfg))
    for _ in range(3):
        generate(g, cfg, n, seed=0)
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        generate(g, cfg, n, seed=i)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"arch": cfg.arch, "n": n, "median_ms": round(times[len(times) // 2], 2),
            "p90_ms": round(times[int(len(times) * 0.9)], 2)}


def profile_steps(cfg: TrainConfig, images: torch.Tensor, steps: int = 10, rows: int = 15) -> str:
    """torch.profiler table of the product trainer's steps: where the time goes, by operator."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if resolve_device(cfg).type == "cuda" else [])
    train(cfg.replace(max_steps=3, epochs=10_000), ListSink(), images=images)  # warm the allocator and kernels
    with profile(activities=activities) as prof:
        train(cfg.replace(max_steps=steps, epochs=10_000, log_every=steps), ListSink(), images=images)
    key = "self_cuda_time_total" if len(activities) > 1 else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """Measured GFLOP/s of a large square matmul: the practical ceiling for this device and dtype."""
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e9


def step_flops(cfg: TrainConfig) -> float:
    """FLOPs of one training step per image, counted by torch's FlopCounterMode (an upper bound: it also counts
    weight gradients that autograd skips for frozen or input layers)."""
    from torch.utils.flop_counter import FlopCounterMode

    from ..step import build_gan, train_step

    m = build_gan(cfg.replace(device="cpu"), torch.device("cpu"))
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(m, torch.rand(cfg.batch_size, 1, 28, 28) * 2 - 1, None, g_step=True)  # (B, 1, 28, 28) in [-1, 1]
    return counter.get_total_flops() / cfg.batch_size


def roofline(cfg: TrainConfig, images: torch.Tensor, steps: int) -> dict[str, Any]:
    """Achieved GFLOP/s of the product trainer against the measured matmul peak in the same precision."""
    device = resolve_device(cfg)
    warmup = max(1, steps // 4)
    img_s = product_throughput(cfg.replace(eval_samples=0), images, warmup * max(1, steps // warmup), warmup)
    flops = step_flops(cfg)
    peak = matmul_peak(torch.bfloat16 if resolve_precision(cfg, device) == "bf16" else torch.float32, device)
    # The fraction from the printed numbers, so that it adds up: where both are small (emulated bf16 on a CPU without
    # bf16 units peaked at ~8 GFLOP/s) the unrounded ratio differed from theirs by 1 %.
    achieved, peak = round(img_s * flops / 1e9, 1), round(peak, 1)
    return {"mflop_per_image": round(flops / 1e6, 1), "img_s": round(img_s, 1), "achieved_gflops": achieved,
            "matmul_peak_gflops": peak, "fraction_of_peak": round(achieved / peak, 3)}
