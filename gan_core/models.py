"""The generators and discriminators of the seed tutorials, as plain nn.Modules.

Images are (N, 1, 28, 28) in [-1, 1]; discriminators return raw logits (N,), never probabilities, so every loss
can use the numerically stable *_with_logits forms. A packed D (PacGAN, `pack` m > 1) returns one logit per pack of
m consecutive images, (N/m,); see Discriminator.

Conditional models take class labels y (N,) int64 in 0..9. G gets a learned class embedding: concatenated
to z (dense) or to the first 7×7 feature map as one extra channel (DCGAN). D uses a projection head (Miyato &
Koyama 2018): logit = w·h + ⟨embed(y), h⟩ on its penultimate features h. Projection rather than concatenating
labels to the input because it keeps D's output a single unconstrained logit (so every loss in losses.py applies
unchanged) and it is the variant that gave the better class fidelity and FID in that paper.

InfoGAN mode (`info_code`, Chen et al. 2016) uses no labels: G's label path is fed a code c = argmax z[:, :10] read
from the noise itself, so G stays a function of z alone (every sampler works unchanged), and D gets a Q head that
must recover c from the image. An unconditional G maps a connected latent space onto ten disconnected digit
manifolds, so it spends samples on ambiguous in-between shapes; the code gives it a discrete switch instead.
"""
from __future__ import annotations

from typing import TypeVar, cast

import torch
from torch import nn

from .config import TrainConfig

IMG_SHAPE = (1, 28, 28)
IMG_PIXELS = 28 * 28
N_CLASSES = 10   # MNIST digits and Fashion-MNIST's ten garments
EMBED_DIM = 32   # dense G's label embedding, concatenated to z

_M = TypeVar("_M", bound=nn.Module)  # _sn gives back the layer's own type


def info_code(z: torch.Tensor) -> torch.Tensor:
    """InfoGAN's categorical code (N,) in 0..9, read from z (N, latent): uniform for N(0, 1) and U(-1, 1) noise."""
    return z[:, :N_CLASSES].argmax(1)


def force_code(z: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """z (N, latent) with two of its first ten entries swapped so that info_code(z) == code (N,); a permutation, so
    the noise keeps its distribution and everything but the chosen mode stays as drawn."""
    z, rows, cur = z.clone(), torch.arange(len(z)), info_code(z)
    z[rows, cur], z[rows, code] = z[rows, code], z[rows, cur]
    return z


def _g_label(g: DenseGenerator | DCGANGenerator, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor | None:
    """What a generator's label path embeds: the class y (conditional), the code read from z (InfoGAN), or None."""
    _check_labels(g.conditional, y)
    return info_code(z) if g.code else y


def _check_labels(conditional: bool, y: torch.Tensor | None) -> None:
    """Models refuse a missing label when conditional and a label when not; callers validate earlier."""
    if conditional and y is None:
        raise ValueError("this model is conditional: pass class labels y (N,) in 0..9")
    if not conditional and y is not None:
        raise ValueError("this model is unconditional: it takes no class labels")


class DenseGenerator(nn.Module):
    """Seeds 000/002/004: z (⊕ label embedding) → [Linear → LeakyReLU]* → Linear(784) → tanh."""

    def __init__(self, latent_dim: int, widths: tuple[int, ...], slope: float, conditional: bool = False,
                 code: bool = False) -> None:
        super().__init__()
        self.conditional, self.code = conditional, code
        self.embed = nn.Embedding(N_CLASSES, EMBED_DIM) if conditional or code else None
        layers: list[nn.Module] = []
        prev = latent_dim + (EMBED_DIM if self.embed is not None else 0)
        for w in widths:
            layers += [nn.Linear(prev, w), nn.LeakyReLU(slope)]
            prev = w
        layers += [nn.Linear(prev, IMG_PIXELS), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # (N, latent) → (N, 1, 28, 28)
        y = _g_label(self, z, y)
        if y is not None and self.embed is not None:  # one implies the other: _g_label checked
            z = torch.cat([z, self.embed(y).to(z.dtype)], 1)  # (N, latent + EMBED_DIM)
        return self.net(z).view(-1, *IMG_SHAPE)


class _ProjectionHead(nn.Module):
    """logit = Linear(h) (+ ⟨embed(y), h⟩ when conditional) on penultimate features h (N, F).

    Packed (m > 1): h (N/m, F) describes a pack of m images and y (N,) holds one label per member. The class term is
    the projection summed over the members, each member's label embedded by its place in the pack:
    Σ_j ⟨E[j, y_j], h⟩. Why: the optimal packed D's logit is the sum of the members' log-ratios (they are drawn
    independently), and projection models each one's class part as ⟨E[y_j], φ(x_j)⟩; h mixes the members, so a
    label table per place lets D tie a class to the member in that place (a single shared table would only see the
    pack's bag of classes, and could not tell a 3-then-7 pack from a 7-then-3 one). It keeps one unconstrained
    logit, so every loss applies unchanged, packs need no class sorting of the data, and m = 1 is today's head
    exactly (the table is then (10, F), the same tensor as before).
    """

    def __init__(self, features: int, conditional: bool, sn: bool, pack: int = 1) -> None:
        super().__init__()
        self.pack = pack
        self.linear = _sn(nn.Linear(features, 1), sn)
        self.embed = _sn(nn.Embedding(N_CLASSES * pack, features), sn) if conditional else None  # row j·10 + class
        if self.embed is not None and not sn:
            # Start as the unconditional D; the class term grows as it helps. (Under spectral norm a zero weight
            # has no spectral norm to divide by, so there it starts small and random instead.)
            nn.init.zeros_(self.embed.weight)

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:  # (N/m, F), (N,) → (N/m,)
        _check_labels(self.embed is not None, y)
        out = self.linear(h).squeeze(1)
        if self.embed is not None and y is not None:  # one implies the other: _check_labels checked
            if self.pack > 1:  # member j of each pack reads row j·10 + y_j; the m rows summed: (N/m, F)
                places = torch.arange(self.pack, device=y.device).repeat(len(y) // self.pack)        # (N,)
                e = self.embed(y + N_CLASSES * places).view(-1, self.pack, h.shape[1]).sum(1)
            else:
                e = self.embed(y)                                                                 # (N, F)
            out = out + (e.to(h.dtype) * h).sum(1)
        return out


def _sn(layer: _M, on: bool) -> _M:
    """Spectral normalisation (Miyato et al. 2018) of a layer's weight when `on`."""
    return cast(_M, nn.utils.parametrizations.spectral_norm(layer)) if on else layer  # the same layer, parametrized


class Discriminator(nn.Module):
    """What both discriminators share: a body `net` to features h (N, F), a logit `head` and InfoGAN's `q`.

    Packing (PacGAN, Lin et al. 2018; `pack` m > 1): D judges m images at once, and one logit is given per pack of
    m consecutive images of the batch. The pack is the m images concatenated along channels, (N/m, m, 28, 28): a
    DCGAN body reads it as an m-channel image (as PacGAN's image experiments), a dense body flattens it to the m
    images side by side, (N/m, m·784). Only the first layer grows; m = 1 is the plain D, untouched.
    """

    net: nn.Module
    pack: int = 1

    def _heads(self, features: int, conditional: bool, sn: bool, code: bool) -> None:
        """The logit head and, for InfoGAN, Q (code logits) on the body's `features` outputs."""
        self.head = _ProjectionHead(features, conditional, sn, self.pack)
        self.q = nn.Linear(features, N_CLASSES) if code else None

    def packed(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 1, 28, 28) as the body reads them: packs (N/m, m, 28, 28) of m consecutive images."""
        if self.pack == 1:
            return x
        if len(x) % self.pack:  # shapes only: no host sync, the same branch on every step of a CUDA graph
            raise ValueError(f"this D judges packs of {self.pack} images; got {len(x)} images, not a multiple")
        return x.reshape(len(x) // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def copies(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each image (N, 1, 28, 28) as a pack of m copies of itself, (N·m, 1, 28, 28), its label repeated (N·m,).

        How a packed D judges ONE image (rejection, D's features): packs are drawn independently, so the optimal
        packed D's logit is the sum of its members' log p_data/p_g, and a pack of m copies of x scores m times x's
        own: the same order, and rejection's Platt scaling absorbs the factor. m = 1: x and y as they are."""
        if self.pack == 1:
            return x, y
        return x.repeat_interleave(self.pack, 0), None if y is None else y.repeat_interleave(self.pack)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, with_code: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (N/m,) of images x (N, 1, 28, 28) in packs of m; with_code also Q's code logits (N, 10), None
        without a Q head (config refuses InfoGAN with m > 1)."""
        h = self.net(self.packed(x))                                          # (N/m, F)
        if with_code:
            return self.head(h, y), None if self.q is None else self.q(h)
        return self.head(h, y)


class DenseDiscriminator(Discriminator):
    """Seeds 000/002/004: flatten → [Linear → LeakyReLU → Dropout]* → logit (projection head when conditional)."""

    def __init__(self, widths: tuple[int, ...], slope: float, dropout: float, conditional: bool = False,
                 sn: bool = False, code: bool = False, pack: int = 1) -> None:
        super().__init__()
        self.pack = pack
        layers: list[nn.Module] = [nn.Flatten()]                         # packs (N/m, m, 28, 28) → (N/m, m·784)
        prev = IMG_PIXELS * pack
        for w in widths:
            layers += [_sn(nn.Linear(prev, w), sn), nn.LeakyReLU(slope)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            prev = w
        self.net = nn.Sequential(*layers)
        self._heads(prev, conditional, sn, code)


class DCGANGenerator(nn.Module):
    """Seed 003: Dense 7·7·256 (ReLU) → ConvT 128 5×5 s1 → ConvT 64 5×5 s2 → ConvT 1 5×5 s2 tanh.

    As in the seed, each hidden ConvT is followed by ReLU then BatchNorm; `mult` scales every channel count.
    Conditional: a 7×7 label map (embedding of 49) joins the first feature map as one more channel.
    """

    def __init__(self, latent_dim: int, mult: float = 1.0, conditional: bool = False, code: bool = False) -> None:
        super().__init__()
        c1, c2, c3 = (max(1, round(c * mult)) for c in (256, 128, 64))
        self.c1, self.conditional, self.code = c1, conditional, code
        self.fc = nn.Sequential(nn.Linear(latent_dim, 7 * 7 * c1), nn.ReLU())
        self.embed = nn.Embedding(N_CLASSES, 7 * 7) if conditional or code else None
        # padding=2 keeps 'same' size at stride 1; output_padding=1 makes stride 2 exactly double (7→14→28).
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c1 + (1 if self.embed is not None else 0), c2, 5, stride=1, padding=2), nn.ReLU(),
            nn.BatchNorm2d(c2),                                                                 # (N, c2, 7, 7)
            nn.ConvTranspose2d(c2, c3, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
            nn.BatchNorm2d(c3),                                                                 # (N, c3, 14, 14)
            nn.ConvTranspose2d(c3, 1, 5, stride=2, padding=2, output_padding=1), nn.Tanh(),     # (N, 1, 28, 28)
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # (N, latent) → (N, 1, 28, 28)
        y = _g_label(self, z, y)
        h = self.fc(z).view(-1, self.c1, 7, 7)                                     # (N, c1, 7, 7)
        if y is not None and self.embed is not None:  # one implies the other: _g_label checked
            h = torch.cat([h, self.embed(y).view(-1, 1, 7, 7).to(h.dtype)], 1)   # (N, c1 + 1, 7, 7)
        return self.net(h)


class DCGANDiscriminator(Discriminator):
    """Seed 003: Conv 64 5×5 s2 → LeakyReLU → BN → Conv 128 5×5 s2 → LeakyReLU → BN → Dense 1 logit.

    `batchnorm=False` drops the BN layers (the TF tutorial's later revision uses Dropout 0.3 instead), `sn` puts
    spectral norm on every weight; both are the usual cures for the seed's collapse.
    """

    def __init__(self, slope: float, mult: float = 1.0, dropout: float = 0.0, conditional: bool = False,
                 batchnorm: bool = True, sn: bool = False, code: bool = False, pack: int = 1) -> None:
        super().__init__()
        self.pack = pack
        c1, c2 = (max(1, round(c * mult)) for c in (64, 128))

        def norm(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if batchnorm else nn.Identity()

        self.net = nn.Sequential(
            # packs (N/m, m, 28, 28): the m images as the first conv's m input channels
            _sn(nn.Conv2d(pack, c1, 5, stride=2, padding=2), sn), nn.LeakyReLU(slope), norm(c1),  # (N/m, c1, 14, 14)
            nn.Dropout(dropout) if dropout else nn.Identity(),
            _sn(nn.Conv2d(c1, c2, 5, stride=2, padding=2), sn), nn.LeakyReLU(slope), norm(c2),  # (N/m, c2, 7, 7)
            nn.Dropout(dropout) if dropout else nn.Identity(),
            nn.Flatten(),                                                                          # (N/m, c2·49)
        )
        self._heads(c2 * 7 * 7, conditional, sn, code)


def build_generator(cfg: TrainConfig) -> nn.Module:
    """The generator `cfg` describes, initialised as `cfg.init_std` says."""
    if cfg.arch == "dense":
        g: nn.Module = DenseGenerator(cfg.latent_dim, cfg.g_widths, cfg.leaky_slope, cfg.conditional,
                                      cfg.info_code)
    else:
        g = DCGANGenerator(cfg.latent_dim, cfg.width_mult, cfg.conditional, cfg.info_code)
    return _init(g, cfg.init_std)


def build_discriminator(cfg: TrainConfig) -> nn.Module:
    """The discriminator `cfg` describes, initialised as `cfg.init_std` says."""
    if cfg.arch == "dense":
        d: nn.Module = DenseDiscriminator(cfg.d_widths, cfg.leaky_slope, cfg.d_dropout, cfg.conditional,
                                          cfg.spectral_norm, cfg.info_code, cfg.pack)
    else:
        d = DCGANDiscriminator(cfg.leaky_slope, cfg.width_mult, cfg.d_dropout, cfg.conditional, cfg.d_batchnorm,
                               cfg.spectral_norm, cfg.info_code, cfg.pack)
    return _init(d, cfg.init_std)


def _init(model: nn.Module, std: float) -> nn.Module:
    """Seed 004's RandomNormal(0.02) kernels and zero biases; std 0 keeps PyTorch's default."""
    if std:
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                # under spectral norm `weight` is computed: initialise the raw weight it normalises
                w = "parametrizations.weight.original" if hasattr(m, "parametrizations") else "weight"
                nn.init.normal_(m.get_parameter(w), 0.0, std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return model


def sample_noise(cfg: TrainConfig, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """z of shape (n, latent_dim) from the config's noise distribution."""
    if cfg.noise == "uniform":
        return torch.rand(n, cfg.latent_dim, generator=generator, device=device) * 2 - 1
    return torch.randn(n, cfg.latent_dim, generator=generator, device=device)


def sample_labels(cfg: TrainConfig, n: int, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> torch.Tensor | None:
    """Uniform class labels (n,) for a conditional config, None for an unconditional one."""
    if not cfg.conditional:
        return None
    return torch.randint(0, N_CLASSES, (n,), generator=generator, device=device)
