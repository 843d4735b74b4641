"""One training step of the GAN: `GanModels` (what a step touches), `build_gan` and `train_step`.

Fast by design (pytorch/examples dcgan, tuned): D sees real and fake in one forward pass (two when it has
BatchNorm); the fake batch of the D step is reused for the G step, which takes gradients of G's weights only;
fused Adam. A step only queues work on the device and returns its stats there, so the loop can sum them without
waiting for the device.
The exception is `g_ema` on CUDA: torch's AveragedModel copies its step counter, kept on the CPU, to the device at
every G update, and that copy waits for the device. `update_d` is the D step alone, shared with
`rejection.fit_discriminator`, which trains a D against a frozen G.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from .config import TrainConfig
from .device import cuda_fast_math, resolve_precision, uses_cuda_graph
from .losses import LOSSES, Loss, gradient_penalty, info_loss, mode_seeking_term
from .models import N_CLASSES, build_discriminator, build_generator, info_code, sample_labels, sample_noise

TensorList = list[torch.Tensor] | tuple[torch.Tensor, ...]  # what AveragedModel hands its multi_avg_fn


@dataclass
class GanModels:
    """Everything one training step touches: both networks, their optimizers, the loss, the RNG and the device."""
    cfg: TrainConfig
    g: nn.Module
    d: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: Loss
    rng: torch.Generator  # data order and noise, on the training device
    device: torch.device
    split_d: bool = False  # D has BatchNorm: run it on real and fake separately (see update_d)
    g_ema: AveragedModel | None = None  # moving average of G's weights (cfg.g_ema > 0)

    @property
    def sampler(self) -> nn.Module:
        """The G that samples, scores and exports use: the EMA copy when there is one."""
        return self.g_ema.module if self.g_ema is not None else self.g

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when the config's precision resolves to bf16 on this device, else a no-op."""
        # No cast cache under a CUDA graph (torch's rule for autocast in a capture): the weights' bf16 copies made
        # in the capture would be freed with the cache, yet the graph would go on reading them.
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=resolve_precision(self.cfg, self.device) == "bf16",
                              cache_enabled=not uses_cuda_graph(self.cfg, self.device))


def build_gan(cfg: TrainConfig, device: torch.device, channels_last: bool | None = None) -> GanModels:
    """Models, optimizers and RNG for `cfg`, seeded so the same config gives the same run; `channels_last` (None:
    on for a DCGAN on CUDA) stores conv weights NHWC."""
    if device.type == "cuda":
        cuda_fast_math()
    torch.manual_seed(cfg.seed)  # weight init and dropout masks
    g, d = build_generator(cfg).to(device), build_discriminator(cfg).to(device)
    if channels_last is None:
        channels_last = cfg.arch == "dcgan" and device.type == "cuda"
    if channels_last:
        # NHWC is the layout cuDNN's tensor-core convs read natively; NCHW weights cost a transpose per conv. Done
        # before the optimizers and the EMA copy exist, so their state follows this layout. Input batches need no
        # change: a (B, 1, 28, 28) batch has one channel, so its memory is already NHWC.
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)

    def adam(params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        # fused=True runs the whole update as one kernel per device (CPU too, torch ≥ 2.4). capturable: the step
        # may be recorded in a CUDA graph (its step count already lives on the device when fused: same update).
        return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), fused=True,
                                capturable=uses_cuda_graph(cfg, device))

    rng = torch.Generator(device).manual_seed(cfg.seed)
    # EMA of the weights only; BatchNorm running stats are copied from the live G (use_buffers=False).
    ema = AveragedModel(g, multi_avg_fn=ema_update(cfg.g_ema)) if cfg.g_ema else None
    return GanModels(cfg, g, d, adam(g.parameters(), cfg.lr_g), adam(d.parameters(), cfg.lr_d), LOSSES[cfg.loss],
                     rng, device, has_batchnorm(d), ema)


def has_batchnorm(d: nn.Module) -> bool:
    """Whether D has BatchNorm layers: then update_d runs it on real and fake separately."""
    return any(isinstance(mod, nn.modules.batchnorm._BatchNorm) for mod in d.modules())


def match_param_layout(opt: torch.optim.Optimizer) -> None:
    """Give the optimizer's per-parameter state its parameter's memory layout (after loading a checkpoint).

    A checkpoint stores contiguous tensors; fused Adam walks param, grad and moments as flat memory, so moments left
    NCHW beside NHWC (channels_last) weights would be paired with the wrong elements, silently. A no-op when the
    layouts already agree (every CPU run), so exact resume is untouched.
    """
    for p, state in opt.state.items():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def ema_update(decay: float) -> Callable[[TensorList, TensorList, torch.Tensor | int], None]:
    """AveragedModel's multi_avg_fn for an EMA whose decay ramps up as min(decay, (1 + n) / (10 + n)).

    A fixed 0.999 from step 0 would keep ~40 % of the random initial weights after 500 steps; averaging weights
    that far apart gives noise, not digits. The ramp (as in timm's ModelEma warm-up) makes the average follow G
    closely early on and smooth it later.
    """
    @torch.no_grad()
    def update(ema: TensorList, current: TensorList, n_averaged: torch.Tensor | int) -> None:
        n = float(n_averaged)
        torch._foreach_lerp_(ema, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))
    return update


def train_step(models: GanModels, real: torch.Tensor, y_real: torch.Tensor | None, g_step: bool,
               norms: tuple[bool, bool] = (True, True)) -> torch.Tensor:
    """One D update and, if `g_step`, one G update on real images (B, 1, 28, 28) with labels (B,) if conditional.

    Returns the detached stats [d_loss, g_loss, D(x), D(G(z)), |∇D|, |∇G|] (6,), left on the device so the caller
    can sum them there without waiting for it; g_loss and |∇G| are 0 on a step without a G update, and each
    gradient norm 0 unless `norms` (D's, G's) asks for it (see grad_norm). With packing (cfg.pack m) D(x) and
    D(G(z)) are D's mean over the B/m packs.
    """
    cfg, b = models.cfg, real.shape[0]
    z, y_fake = _draw(models, b)                                   # (B, latent), (B,) uniform classes or None
    code = info_code(z) if cfg.info_code else None                # (B,) InfoGAN code G was given, or None
    with models.autocast(), torch.set_grad_enabled(g_step):       # G's graph only matters if G steps now
        fake = models.g(z, y_fake)                                 # (B, 1, 28, 28)

    ############################
    # (1) Update D network. With the default loss (non_saturating, as with minimax: the BCE form of dcgan) this is
    # maximize log(D(x)) + log(1 - D(G(z))), real targets at 1 - label_smoothing. D steps every step; G only every
    # n_critic-th.
    ###########################
    d_loss, logits, d_norm = update_d(models.d, models.opt_d, models.loss, cfg, real, y_real, fake, y_fake,
                                      models.rng, split=models.split_d, autocast=models.autocast, code=code,
                                      take_norm=norms[0])

    ############################
    # (2) Update G network, when `g_step`: with non_saturating, maximize log(D(G(z))) (minimax minimizes
    # log(1 - D(G(z))) instead; lsgan regresses D(G(z)) to 1; hinge and wgan_gp maximize D(G(z))). The same fake
    # batch, judged by the D just updated; plus InfoGAN's code loss, so G draws the code legibly.
    ###########################
    g_loss = g_norm = torch.zeros((), device=models.device)  # a fill on the device, not a copy from the host
    if g_step:
        g_loss = _g_loss(models, fake, y_fake, z, code)
        models.opt_g.zero_grad(set_to_none=True)
        # Gradients through D into G's weights only: autograd skips D's weight gradients, as it would with D frozen,
        # without toggling requires_grad (a toggle changes D's state every step, and torch.compile recompiles on it).
        g_loss.backward(inputs=list(models.g.parameters()))
        g_norm = grad_norm(models.g, norms[1])
        models.opt_g.step()
        if models.g_ema is not None:  # on CUDA a host sync: AveragedModel copies its CPU step counter to the device
            models.g_ema.update_parameters(models.g)
    probs, n = torch.sigmoid(logits.detach()), b // cfg.pack                               # (2B/m,), packs of reals
    return torch.stack([d_loss.detach(), g_loss.detach(), probs[:n].mean(), probs[n:].mean(), d_norm.float(),
                        g_norm.float()])


def _draw(models: GanModels, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One step's noise z (B, latent) and G's labels (B,) or None, from the run's generator.

    With the mode-seeking term (cfg.mode_seeking > 0) the batch is two halves of H = B/2 that share their labels,
    y = [y_h; y_h], and for InfoGAN their code entries z[:, :10] too, so each pair (i, H + i) differs only in the
    noise the term compares. Off, the draws are exactly those of a run without the term."""
    cfg, rng, device = models.cfg, models.rng, models.device
    z = sample_noise(cfg, b, rng, device)                                      # (B, latent)
    if not cfg.mode_seeking:
        return z, sample_labels(cfg, b, rng, device)                           # (B,) or None
    h = b // 2  # config keeps B even when the term is on
    y = sample_labels(cfg, h, rng, device)                                     # (H,) or None
    if cfg.info_code:  # the code is read from z[:, :10]: the second half takes the first half's
        z = torch.cat([z[:h], torch.cat([z[:h, :N_CLASSES], z[h:, N_CLASSES:]], 1)])
    return z, None if y is None else torch.cat([y, y])


def _g_loss(models: GanModels, fake: torch.Tensor, y_fake: torch.Tensor | None, z: torch.Tensor,
            code: torch.Tensor | None) -> torch.Tensor:
    """G's loss on its batch fake (B, 1, 28, 28) of noise z (B, latent), judged by D (the caller takes gradients
    of G's weights only): the loss's G term, plus InfoGAN's code loss given the `code` (B,) and the mode-seeking
    term."""
    cfg = models.cfg
    with models.autocast():
        fake_l, q_fake = models.d(fake, y_fake, with_code=True)                             # (B/m,), (B, 10) or None
        g_loss = models.loss.g(fake_l.float())
    if code is not None:
        g_loss = g_loss + cfg.info_weight * info_loss(q_fake, code)
    if cfg.mode_seeking:  # a config constant, so a CUDA graph records the same branch every step
        h = len(z) // 2  # pairs (i, H + i): halves (H, 1, 28, 28) of noise halves (H, latent), same labels (_draw)
        g_loss = g_loss + cfg.mode_seeking * mode_seeking_term(fake[:h].float(), fake[h:].float(), z[:h], z[h:])
    return g_loss


def update_d(d: nn.Module, opt: torch.optim.Optimizer, loss: Loss, cfg: TrainConfig, real: torch.Tensor,
             y_real: torch.Tensor | None, fake: torch.Tensor, y_fake: torch.Tensor | None, rng: torch.Generator, *,
             split: bool, autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
             code: torch.Tensor | None = None, take_norm: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One D step on real images (B, 1, 28, 28) vs fakes (B, 1, 28, 28), labels (B,) each when conditional.

    The loss is picked by name (cfg.loss → LOSSES): non_saturating and minimax are dcgan's BCE, lsgan regresses D(x)
    to 1 and D(G(z)) to 0, hinge and wgan_gp make D a critic that widens D(x) - D(G(z)) (hinge with margins). Added
    on top: the gradient penalty (cfg.gp_weight, its ε drawn from `rng`) and, given G's `code` (B,), InfoGAN's code
    loss. `split`: D has BatchNorm, so real and fake go through it in two passes (`has_batchnorm`). Returns
    (D's loss, its logits (2B/m,) real then fake, |∇D| or a 0 unless `take_norm`), all on the device; m is
    cfg.pack, and a packed D gives one logit per m consecutive images (B is a multiple of m, so no pack mixes real
    and fake images).
    """
    b, fake = real.shape[0], fake.detach()
    with autocast():
        if split:  # BatchNorm in D: statistics must come from one kind of image, so two passes (as seed 003)
            real_l, (fake_l, q_fake) = d(real, y_real), d(fake, y_fake, with_code=True)
            logits = torch.cat([real_l, fake_l]).float()                                    # (2B/m,)
        else:      # no batch statistics: one D pass over both halves
            y_both = None if y_real is None or y_fake is None else torch.cat([y_real, y_fake])
            logits, q = d(torch.cat([real, fake]), y_both, with_code=True)
            logits, q_fake = logits.float(), None if q is None else q[b:]                  # (2B/m,), (B, 10)
    real_l, fake_l = logits.split(b // cfg.pack)                                            # (B/m,), (B/m,)
    d_loss = loss.d(real_l, fake_l, 1.0 - cfg.label_smoothing)
    if cfg.gp_weight:  # interpolates keep the real labels: the penalty is on D's slope in x, per class (and pack)
        d_loss = d_loss + cfg.gp_weight * gradient_penalty(lambda x: d(x, y_real), real, fake.float(), generator=rng,
                                                           pack=cfg.pack)
    if code is not None:  # Q (sharing D's body) learns to read the code back from the fake
        d_loss = d_loss + cfg.info_weight * info_loss(q_fake, code)
    opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_norm = grad_norm(d, take_norm)
    opt.step()
    return d_loss, logits, d_norm


def grad_norm(model: nn.Module, take: bool = True) -> torch.Tensor:
    """The L2 norm over all of `model`'s parameter gradients (as clip_grad_norm_ measures it), on the device; a 0
    fill when not `take`n. It reads every gradient once more: 2.7 % of a dense step on one CPU thread, so the loop
    takes it once per log interval."""
    if not take:
        return torch.zeros((), device=next(model.parameters()).device)
    return torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])


@torch.no_grad()
def spectral_sigma(d: nn.Module) -> float | None:
    """The largest σ(W) among D's spectrally normalised weights (the power-iteration estimate each layer divides
    by), or None without spectral norm: a σ that keeps growing means D's raw weights are running away."""
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import _SpectralNorm

    weights = [cast(parametrize.ParametrizationList, cast(nn.ModuleDict, mod.parametrizations)["weight"])
               for mod in d.modules() if parametrize.is_parametrized(mod, "weight")]
    sigmas = [torch.vdot(fn._u, fn._reshape_weight_to_matrix(w.original) @ fn._v)
              for w in weights for fn in w if isinstance(fn, _SpectralNorm)]
    return max(torch.stack(sigmas).float().tolist()) if sigmas else None
