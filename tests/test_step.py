import math

import pytest
import torch
from conftest import tiny

from gan_core.config import TrainConfig
from gan_core.data import to_float
from gan_core.models import info_code, sample_noise
from gan_core.step import build_gan, train_step


def test_the_norm_logged_is_the_norm_of_the_gradient_of_that_step(mnist_slice):
    # One step, logged alone: recompute D's gradient from the same start and compare with what the step reported.
    cfg = tiny("seed004-dense", max_steps=1)
    m = build_gan(cfg, torch.device("cpu"))
    real = to_float(mnist_slice[:64])
    stats = train_step(m, real, None, g_step=True)
    grads = torch.cat([p.grad.flatten() for p in m.d.parameters() if p.grad is not None])
    assert stats[4].item() == pytest.approx(grads.norm().item(), rel=1e-5)
    grads_g = torch.cat([p.grad.flatten() for p in m.g.parameters() if p.grad is not None])
    assert stats[5].item() == pytest.approx(grads_g.norm().item(), rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["dense", "dcgan"])
def test_info_code_loss_teaches_q_to_read_the_code_g_draws(arch, mnist_slice):
    # 150 steps on 512 digits: G draws each code so that Q reads it back (chance is 0.1). train_step adds the code
    # loss to both halves, D's (Q learns to read the code) and G's (G is rewarded for drawing it legibly); this
    # checks the two together. Without the term, Q stays near chance and the bound below fails.
    def q_accuracy(weight: float) -> float:
        cfg = TrainConfig.from_preset("seed000-dense", arch=arch, g_widths=(64, 128), d_widths=(128, 64),
                                      width_mult=0.25, info_code=True, info_weight=weight, batch_size=64,
                                      lr_g=1e-3, lr_d=1e-3, device="cpu")
        m = build_gan(cfg, torch.device("cpu"))
        for i in range(150):
            idx = torch.arange(i * 64, (i + 1) * 64) % 512
            train_step(m, to_float(mnist_slice[idx]), None, g_step=True)
        z = sample_noise(cfg, 1000, torch.Generator().manual_seed(1))
        with torch.no_grad():
            _, q = m.d(m.g.eval()(z), with_code=True)
        return (q.argmax(1) == info_code(z)).float().mean().item()

    assert q_accuracy(1.0) > 0.6


# --- issue 29: packing and the mode-seeking term ----------------------------------------------------------------------
def _stats(steps: int = 2, **over) -> list[list[float]]:
    """D loss, G loss, D(x), D(G(z)) of `steps` fixed-seed train_steps of a small config, on made-up real images."""
    cfg = TrainConfig(batch_size=8, g_widths=(16,), d_widths=(16,), width_mult=0.125, device="cpu",
                      precision="fp32", **over)
    models, gen = build_gan(cfg, torch.device("cpu")), torch.Generator().manual_seed(1)
    out = []
    for _ in range(steps):
        real = torch.rand(8, 1, 28, 28, generator=gen) * 2 - 1
        y = torch.randint(0, 10, (8,), generator=gen) if cfg.conditional else None
        out.append(train_step(models, real, y, True)[:4].tolist())
    return out


# What these steps gave before packing and the mode-seeking term existed (commit 2b4252e, the same script): pack 1
# and mode_seeking 0 must be that trainer. rel 1e-5 leaves room for another CPU's summation order, not for a change
# in what is computed (another noise draw or another D moves every number in the second digit).
BEFORE = {
    "conditional": ({"conditional": True}, [[1.401362657546997, 0.7173635959625244, 0.4858330190181732,
                                            0.4921029210090637], [1.3957133293151855, 0.7272815704345703,
                                                                  0.4843372106552124, 0.48697999119758606]]),
    "dcgan-bn": ({"arch": "dcgan"}, [[1.463385820388794, 0.9372372627258301, 0.4338805079460144, 0.4202066659927368],
                                     [1.5051859617233276, 0.7214523553848267, 0.5054866075515747,
                                      0.5263620018959045]]),
    "wgan-gp": ({"loss": "wgan_gp", "gp_weight": 10.0, "n_critic": 5},
                [[5.210991859436035, -0.10544247925281525, 0.497903436422348, 0.5289856791496277],
                 [5.3176045417785645, -0.10852603614330292, 0.526180624961853, 0.5291939377784729]]),
}


@pytest.mark.parametrize("case", BEFORE)
def test_pack_one_without_mode_seeking_trains_exactly_as_before(case):
    over, before = BEFORE[case]
    now = _stats(**over, pack=1, mode_seeking=0.0)
    assert [v for row in now for v in row] == pytest.approx([v for row in before for v in row], rel=1e-5)


@pytest.mark.parametrize("over", [{}, {"conditional": True}, {"arch": "dcgan"}, {"arch": "dcgan", "conditional": True},
                                  {"loss": "wgan_gp", "gp_weight": 10.0, "n_critic": 5}])
def test_a_packed_step_trains_every_arch_and_loss(over):
    stats = _stats(steps=1, **over, pack=4)
    assert all(math.isfinite(v) for v in stats[0]) and 0 < stats[0][2] < 1 and 0 < stats[0][3] < 1


def test_the_mode_seeking_weight_scales_only_gs_loss_and_zero_is_off():
    from gan_core.losses import mode_seeking_term
    (off,), (on,), (twice,) = (_stats(steps=1, mode_seeking=lam) for lam in (0.0, 1.0, 2.0))
    assert off[0] == on[0] == twice[0] and off[2:] == on[2:] == twice[2:]  # D's step never sees the term
    term = on[1] - off[1]
    assert term > 0 and twice[1] - off[1] == pytest.approx(2 * term, rel=1e-5)
    # and the difference is the term on G's two halves, z of the same seed's first draw (unconditional: z only)
    cfg = TrainConfig(batch_size=8, g_widths=(16,), d_widths=(16,), device="cpu", precision="fp32")
    models = build_gan(cfg, torch.device("cpu"))
    z = sample_noise(cfg, 8, models.rng)
    with torch.no_grad():
        fake = models.g(z)                                                                   # (8, 1, 28, 28)
    assert term == pytest.approx(mode_seeking_term(fake[:4], fake[4:], z[:4], z[4:]).item(), rel=1e-4)


def test_mode_seeking_pairs_share_their_class_or_infogan_code():
    from gan_core.step import _draw
    cond = build_gan(TrainConfig(conditional=True, mode_seeking=1.0, batch_size=8, device="cpu"),
                     torch.device("cpu"))
    z, y = _draw(cond, 8)
    assert z.shape == (8, 128) and torch.equal(y[:4], y[4:]) and not torch.equal(z[:4], z[4:])
    info = build_gan(TrainConfig(info_code=True, mode_seeking=1.0, batch_size=8, device="cpu"), torch.device("cpu"))
    z, y = _draw(info, 8)
    assert y is None and torch.equal(info_code(z[:4]), info_code(z[4:])) and not torch.equal(z[:4], z[4:])


@pytest.mark.parametrize("preset", ["seed004-dense", "dcgan-sn-info"])
def test_the_g_step_takes_no_gradient_of_d_and_never_toggles_its_weights(preset, mnist_slice):
    # Issue 30: G's step froze D with requires_grad_(False) and back, a change of D's state every step that made
    # torch.compile recompile. Now it asks autograd for G's gradients only: D's weights keep requires_grad, and
    # their gradients are computed once a step (the D step's), never in G's backward (InfoGAN's Q head included).
    m = build_gan(tiny(preset, max_steps=1), torch.device("cpu"))
    d_params = list(m.d.parameters())
    computed = {id(p): 0 for p in d_params}
    for p in d_params:
        p.register_hook(lambda g, p=p: computed.__setitem__(id(p), computed[id(p)] + 1))
    frozen_seen = []
    m.d.register_forward_pre_hook(lambda mod, args: frozen_seen.append(not all(p.requires_grad for p in d_params)))
    train_step(m, to_float(mnist_slice[:64]), None, g_step=True)
    assert len(frozen_seen) >= 2 and not any(frozen_seen)  # D ran in both steps, never frozen
    assert set(computed.values()) == {1}, computed  # each D weight's gradient: the D step's only
    assert all(p.grad is not None for p in m.g.parameters())  # ...while G's step did update G
