"""GAN objectives as pure functions on discriminator logits, picked by name from `LOSSES`.

Each loss is a pair: `d(real_logits, fake_logits, real_label)` → D's loss, `g(fake_logits)` → G's loss, with
logits of shape (N,). BCE forms follow seed 003 (real and fake terms summed); `real_label` < 1 is one-sided label
smoothing (seeds 002 and 004) and is ignored by the losses that have no labels.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F


class Loss(NamedTuple):
    d: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def bce_d(real: torch.Tensor, fake: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))), real targets at `real_label`."""
    return _bce(real, real_label) + _bce(fake, 0.0)


def minimax_g(fake: torch.Tensor) -> torch.Tensor:
    """The original min log(1 - D(G(z))): saturates when D wins, kept for the theory of seed 001."""
    return -F.softplus(fake).mean()  # log(1 - sigmoid(l)) = -softplus(l)


def non_saturating_g(fake: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): the trick every seed actually trains with."""
    return _bce(fake, 1.0)


def lsgan_d(real: torch.Tensor, fake: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Least squares (Mao et al. 2017) with a = 0, b = c = 1."""
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake ** 2).mean()


def lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    """Least squares generator loss."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def wasserstein_d(real: torch.Tensor, fake: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Critic loss E[D(G(z))] - E[D(x)]; the trainer adds the gradient penalty."""
    return fake.mean() - real.mean()


def wasserstein_g(fake: torch.Tensor) -> torch.Tensor:
    """Generator loss -E[D(G(z))] for both hinge and WGAN."""
    return -fake.mean()


LOSSES: dict[str, Loss] = {
    "non_saturating": Loss(bce_d, non_saturating_g),
    "minimax": Loss(bce_d, minimax_g),
    "lsgan": Loss(lsgan_d, lsgan_g),
    "hinge": Loss(hinge_d, wasserstein_g),
    "wgan_gp": Loss(wasserstein_d, wasserstein_g),
}


def info_loss(code_logits: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """InfoGAN's mutual-information bound as a loss: cross-entropy of Q's code logits (N, 10) against the code (N,)."""
    return F.cross_entropy(code_logits.float(), code)


def gradient_penalty(d: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     target_norm: float = 1.0, generator: torch.Generator | None = None,
                     pack: int = 1) -> torch.Tensor:
    """Seed 003's GP = E[(‖∇ D(x̂)‖₂ - k)²] at x̂ = εx + (1-ε)G(z), ε ~ U(0, 1) per sample (unweighted).

    With a packed D (`pack` m > 1) the sample is a pack: real and fake (B, 1, 28, 28) hold B/m packs of m
    consecutive images, one ε per pack (all its members interpolated alike, as PacGAN's packs are one point of
    the joint space) and the norm of D's gradient over the whole pack's m images."""
    n = real.shape[0] // pack
    eps = torch.rand(n, *([1] * (real.dim() - 1)), device=real.device, generator=generator)     # (B/m, 1, 1, 1)
    if pack > 1:
        eps = eps.repeat_interleave(pack, 0)                                                   # (B, 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)                  # (B, 1, 28, 28)
    return ((grad.reshape(n, -1).norm(2, dim=1) - target_norm) ** 2).mean()


MODE_SEEKING_EPS = 1e-5  # MSGAN's ε (their code's eps): keeps the term finite when G ignores its noise


def mode_seeking_term(img1: torch.Tensor, img2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                      eps: float = MODE_SEEKING_EPS) -> torch.Tensor:
    """MSGAN's mode-seeking term (Mao et al. 2019), to add to G's loss: 1 / (mean|img1 − img2| / mean|z1 − z2| + ε).

    img1, img2 (H, ...) are G's images of the noise halves z1, z2 (H, latent) with the same labels. The means run
    over every element of the batch, as in the paper's code (lz = mean|fake1 − fake2| / mean|z1 − z2|,
    loss_lz = 1 / (lz + eps)): G lowers it by drawing images as far apart as their noise is."""
    lz = (img1 - img2).abs().mean() / (z1 - z2).abs().mean()
    return 1.0 / (lz + eps)
