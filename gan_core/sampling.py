"""Turning generators into pictures: seeded sampling, slerp interpolation, grids, PNG and GIF."""
from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .config import ConfigError, TrainConfig
from .models import N_CLASSES, force_code, sample_noise

if TYPE_CHECKING:
    from PIL import Image


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 1, 28, 28) in [-1, 1] → uint8 (N, 28, 28), the inverse of data.to_float."""
    return ((x.detach().float().squeeze(1).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


@torch.no_grad()
def render_float(g: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """G(z[, y]) as float (N, 1, 28, 28) in [-1, 1] on the CPU, in eval mode (BatchNorm running stats)."""
    was_training = g.training
    g.eval()
    device = next(g.parameters()).device
    try:
        return g(z.to(device), None if y is None else y.to(device)).float().cpu()
    finally:
        g.train(was_training)


def render(g: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None) -> np.ndarray:
    """G(z[, y]) as uint8 (N, 28, 28)."""
    return to_uint8(render_float(g, z, y))


def label_tensor(cfg: TrainConfig, label: int | None, n: int) -> torch.Tensor | None:
    """Labels (n,) for `label`, checked against the generator: a conditional one needs a class, others refuse it."""
    if cfg.conditional:
        if label is None:
            raise ConfigError("label: this generator is conditional; choose a class 0-9 to draw "
                              "(e.g. --label 7)")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < N_CLASSES:
            raise ConfigError(f"label: {label!r} is not a class; choose a whole number from 0 to {N_CLASSES - 1}")
        return torch.full((n,), label, dtype=torch.long)
    if label is not None:
        raise ConfigError("label: this generator is unconditional and cannot draw a chosen class; train with "
                          "conditional on, or leave the label out")
    return None


def seeded_noise(cfg: TrainConfig, n: int, seed: int) -> torch.Tensor:
    """z of shape (n, latent_dim) drawn on the CPU from `seed` alone, so every device sees the same digits."""
    return sample_noise(cfg, n, torch.Generator().manual_seed(seed))


def generate(g: nn.Module, cfg: TrainConfig, n: int, seed: int, label: int | None = None) -> np.ndarray:
    """n digits (of class `label` for a conditional G) as uint8 (n, 28, 28); the same seed gives the same digits."""
    return render(g, seeded_noise(cfg, n, seed), label_tensor(cfg, label, n))


def generate_float(g: nn.Module, cfg: TrainConfig, n: int, seed: int, label: int | None = None) -> np.ndarray:
    """n digits as float32 (n, 28, 28) in [-1, 1], unquantised."""
    return render_float(g, seeded_noise(cfg, n, seed), label_tensor(cfg, label, n)).squeeze(1).numpy()


def class_rows(g: nn.Module, cfg: TrainConfig, seed: int, ncol: int) -> np.ndarray:
    """A conditional G's classes (an InfoGAN G's codes) as uint8 (10·ncol, 28, 28): row r is class (code) r,
    column c reuses one noise vector for every row, so a column carries one style across all ten."""
    if not (cfg.conditional or cfg.info_code):
        raise ConfigError("this generator is unconditional: it has no classes to lay out in rows")
    return render(g, *class_row_inputs(cfg, seed, ncol))


def class_row_inputs(cfg: TrainConfig, seed: int, ncol: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z (10·ncol, latent), y (10·ncol,)) for `class_rows`: row r is class r, column c one noise vector; for an
    InfoGAN config y is None and row r's noise is permuted to carry code r instead."""
    z = seeded_noise(cfg, ncol, seed).repeat(N_CLASSES, 1)
    rows = torch.arange(N_CLASSES).repeat_interleave(ncol)
    return (force_code(z, rows), None) if cfg.info_code else (z, rows)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors a, b of shape (D,) at fractions t (T,) → (T, D)."""
    an, bn = a / a.norm(), b / b.norm()
    omega = torch.arccos((an * bn).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolate(g: nn.Module, cfg: TrainConfig, seed_a: int, seed_b: int, steps: int,
                label: int | None = None) -> np.ndarray:
    """A strip of `steps` digits morphing from seed_a's digit to seed_b's, uint8 (steps, 28, 28)."""
    za, zb = seeded_noise(cfg, 1, seed_a)[0], seeded_noise(cfg, 1, seed_b)[0]
    return render(g, slerp(za, zb, torch.linspace(0, 1, steps)), label_tensor(cfg, label, steps))


def grid(images: np.ndarray, ncol: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile uint8 (N, H, W) into one uint8 image with `ncol` columns (default: square) and a black gutter."""
    n, h, w = images.shape
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    out = np.zeros((nrow * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = images[i]
    return out


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    """A uint8 (H, W) image as PNG bytes, optionally enlarged with nearest-neighbour pixels."""
    from PIL import Image  # imported here: the trainer imports this module, and a GPU box may lack Pillow
    im = Image.fromarray(image)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def resized(image: np.ndarray, width: int) -> Image.Image:
    """A uint8 (H, W) image at exactly `width` pixels wide (height in proportion), for any width: BOX resampling is
    nearest-neighbour where a source pixel covers whole output pixels and an area average on the seams, so digits
    stay sharp and every tile of a grid gets the same size (a whole-number scale could not reach every width)."""
    from PIL import Image  # imported here: the trainer imports this module, and a GPU box may lack Pillow
    im = Image.fromarray(image)
    width = max(1, int(width))
    if width == im.width:
        return im
    return im.resize((width, max(1, round(im.height * width / im.width))), Image.Resampling.BOX)


def png_at_width(image: np.ndarray, width: int) -> bytes:
    """A uint8 (H, W) image as PNG bytes exactly `width` pixels wide (see `resized`)."""
    buf = io.BytesIO()
    resized(image, width).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def gif_bytes(frames: list[np.ndarray], ms_per_frame: int = 200, scale: int = 2, loop: bool = True) -> bytes:
    """An animated GIF of uint8 (H, W) frames (seed 003's per-epoch progression); `loop=False` plays it once and
    stops on the last frame."""
    from PIL import Image  # imported here: the trainer imports this module, and a GPU box may lack Pillow
    ims = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.Resampling.NEAREST)
           for f in frames]
    buf = io.BytesIO()
    extra = {"loop": 0} if loop else {}
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=ms_per_frame, **extra)
    return buf.getvalue()
