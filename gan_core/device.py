"""Where a run computes and in which number format: the device a config names, whether it has bf16 units, whether
its step runs as a CUDA graph, and the CUDA math settings. Its own module because the step, the trainer, the quality
scorer, bench and the GPU check all ask it."""
from __future__ import annotations

import functools
import os

import torch

from .config import ConfigError, TrainConfig


def resolve_device(cfg: TrainConfig) -> torch.device:
    """The torch device `cfg.device` names; a clear error if CUDA is asked for but absent."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but no CUDA GPU is visible; use 'auto' or 'cpu'")
    return torch.device("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")


# "1" / "0": decide as if the CPU had / lacked bf16 units. Development and CI machines of this project come with
# either kind of CPU, so the tests run both of auto's CPU paths on any machine with it.
CPU_BF16_ENV = "GAN_CPU_BF16"
_YES, _NO = ("1", "true", "yes"), ("0", "false", "no")


def cpu_bf16_override() -> bool | None:
    """What GAN_CPU_BF16 says about this CPU's bf16 units: True, False, or None when unset (ask the hardware)."""
    text = os.environ.get(CPU_BF16_ENV, "").strip().lower()
    if not text:
        return None
    if text not in _YES + _NO:
        raise ConfigError(f"{CPU_BF16_ENV}={text!r} must be 1 (decide as if the CPU had bf16 units) or 0 (as if it "
                          "lacked them); unset it to ask the hardware")
    return text in _YES


@functools.lru_cache(maxsize=4)
def _hardware_bf16(device_type: str) -> bool:
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def native_bf16(device_type: str) -> bool:
    """Whether `device_type` ("cpu"/"cuda") has bf16 units (for a CPU, GAN_CPU_BF16 overrides); emulated bf16 is
    about 5× slower than fp32 on an AVX2-only CPU (BENCHMARKS.md), so "auto" must not pick it there."""
    # Read on every call, not cached with the hardware's answer: a test's monkeypatch.setenv must take effect.
    forced = cpu_bf16_override() if device_type == "cpu" else None
    return _hardware_bf16(device_type) if forced is None else forced


def resolve_precision(cfg: TrainConfig, device: torch.device) -> str:
    """"fp32" or "bf16": what `cfg.precision` means on `device` ("auto" = bf16 where native)."""
    if cfg.precision == "auto":
        return "bf16" if native_bf16(device.type) else "fp32"
    return cfg.precision


def uses_cuda_graph(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether a run of `cfg` on `device` records its step as a CUDA graph (cfg.cuda_graph, on CUDA, not compiled)."""
    return cfg.cuda_graph and device.type == "cuda" and not cfg.compile


def cuda_fast_math() -> None:
    """cuDNN autotuning and TF32 for what stays fp32: set for the whole process when a run trains on CUDA."""
    # benchmark: the DCGAN's conv shapes never change within a run, so timing cuDNN's algorithms once at the first
    # step pays back on every later one. TF32: tensor cores for fp32 matmuls/convs (10-bit mantissa, fp32 range);
    # bf16 runs keep their fp32 parts (losses, norms) fast, and GAN training does not need fp32's last bits. CPU
    # math is untouched by either flag.
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
