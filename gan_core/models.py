"""The generators and discriminators of the seed tutorials, as plain nn.Modules.

Images are (N, 1, 28, 28) in [-1, 1]; discriminators return raw logits (N,), never probabilities, so every loss
can use the numerically stable *_with_logits forms.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig

IMG_SHAPE = (1, 28, 28)
IMG_PIXELS = 28 * 28


class DenseGenerator(nn.Module):
    """Seeds 000/002/004: z → [Linear → LeakyReLU]* → Linear(784) → tanh."""

    def __init__(self, latent_dim: int, widths: tuple[int, ...], slope: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = latent_dim
        for w in widths:
            layers += [nn.Linear(prev, w), nn.LeakyReLU(slope)]
            prev = w
        layers += [nn.Linear(prev, IMG_PIXELS), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (N, latent) → (N, 1, 28, 28)
        return self.net(z).view(-1, *IMG_SHAPE)


class DenseDiscriminator(nn.Module):
    """Seeds 000/002/004: flatten → [Linear → LeakyReLU → Dropout]* → Linear(1) logit."""

    def __init__(self, widths: tuple[int, ...], slope: float, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        prev = IMG_PIXELS
        for w in widths:
            layers += [nn.Linear(prev, w), nn.LeakyReLU(slope)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            prev = w
        layers.append(nn.Linear(prev, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 28, 28) → (N,)
        return self.net(x).squeeze(1)


class DCGANGenerator(nn.Module):
    """Seed 003: Dense 7·7·256 (ReLU) → ConvT 128 5×5 s1 → ConvT 64 5×5 s2 → ConvT 1 5×5 s2 tanh.

    As in the seed, each hidden ConvT is followed by ReLU then BatchNorm; `mult` scales every channel count.
    """

    def __init__(self, latent_dim: int, mult: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = (max(1, round(c * mult)) for c in (256, 128, 64))
        self.c1 = c1
        self.fc = nn.Sequential(nn.Linear(latent_dim, 7 * 7 * c1), nn.ReLU())
        # padding=2 keeps 'same' size at stride 1; output_padding=1 makes stride 2 exactly double (7→14→28).
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c1, c2, 5, stride=1, padding=2), nn.ReLU(), nn.BatchNorm2d(c2),  # (N, c2, 7, 7)
            nn.ConvTranspose2d(c2, c3, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
            nn.BatchNorm2d(c3),                                                                 # (N, c3, 14, 14)
            nn.ConvTranspose2d(c3, 1, 5, stride=2, padding=2, output_padding=1), nn.Tanh(),     # (N, 1, 28, 28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (N, latent) → (N, 1, 28, 28)
        return self.net(self.fc(z).view(-1, self.c1, 7, 7))


class DCGANDiscriminator(nn.Module):
    """Seed 003: Conv 64 5×5 s2 → LeakyReLU → BN → Conv 128 5×5 s2 → LeakyReLU → BN → Dense 1 logit."""

    def __init__(self, slope: float, mult: float = 1.0, dropout: float = 0.0) -> None:
        super().__init__()
        c1, c2 = (max(1, round(c * mult)) for c in (64, 128))
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 5, stride=2, padding=2), nn.LeakyReLU(slope), nn.BatchNorm2d(c1),   # (N, c1, 14, 14)
            nn.Dropout(dropout) if dropout else nn.Identity(),
            nn.Conv2d(c1, c2, 5, stride=2, padding=2), nn.LeakyReLU(slope), nn.BatchNorm2d(c2),  # (N, c2, 7, 7)
            nn.Dropout(dropout) if dropout else nn.Identity(),
            nn.Flatten(), nn.Linear(c2 * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 28, 28) → (N,)
        return self.net(x).squeeze(1)


def build_generator(cfg: TrainConfig) -> nn.Module:
    """The generator `cfg` describes, initialised as `cfg.init_std` says."""
    if cfg.arch == "dense":
        g: nn.Module = DenseGenerator(cfg.latent_dim, cfg.g_widths, cfg.leaky_slope)
    else:
        g = DCGANGenerator(cfg.latent_dim, cfg.width_mult)
    return _init(g, cfg.init_std)


def build_discriminator(cfg: TrainConfig) -> nn.Module:
    """The discriminator `cfg` describes, initialised as `cfg.init_std` says."""
    if cfg.arch == "dense":
        d: nn.Module = DenseDiscriminator(cfg.d_widths, cfg.leaky_slope, cfg.d_dropout)
    else:
        d = DCGANDiscriminator(cfg.leaky_slope, cfg.width_mult, cfg.d_dropout)
    return _init(d, cfg.init_std)


def _init(model: nn.Module, std: float) -> nn.Module:
    """Seed 004's RandomNormal(0.02) kernels and zero biases; std 0 keeps PyTorch's default."""
    if std:
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)
    return model


def sample_noise(cfg: TrainConfig, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """z of shape (n, latent_dim) from the config's noise distribution."""
    if cfg.noise == "uniform":
        return torch.rand(n, cfg.latent_dim, generator=generator, device=device) * 2 - 1
    return torch.randn(n, cfg.latent_dim, generator=generator, device=device)
