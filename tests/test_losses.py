import math

import pytest
import torch
from torch import nn

from gan_core.losses import LOSSES, gradient_penalty, info_loss

LN2 = math.log(2)
zero = torch.zeros(4)


def test_bce_of_logit_zero_is_ln2():
    assert LOSSES["non_saturating"].d(zero, zero, 1.0).item() == pytest.approx(2 * LN2)  # real + fake terms
    assert LOSSES["non_saturating"].g(zero).item() == pytest.approx(LN2)
    assert LOSSES["minimax"].g(zero).item() == pytest.approx(-LN2)  # log(1 - 1/2)


def test_known_values_of_the_other_losses():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 3.0])
    assert LOSSES["lsgan"].d(real, fake, 1.0).item() == pytest.approx(0.5 * (1 + 9) / 2 + 0.5 * (1 + 9) / 2)
    assert LOSSES["lsgan"].g(fake).item() == pytest.approx(0.5 * (4 + 4) / 2)
    assert LOSSES["hinge"].d(real, fake, 1.0).item() == pytest.approx(0 + (0 + 4) / 2)
    assert LOSSES["hinge"].g(fake).item() == pytest.approx(-1.0)
    assert LOSSES["wgan_gp"].d(real, fake, 1.0).item() == pytest.approx(1.0 - 3.0)


def test_one_sided_label_smoothing_changes_only_the_real_term():
    real, fake = torch.full((3,), 5.0), torch.full((3,), -5.0)
    hard, smooth = (LOSSES["non_saturating"].d(real, fake, lbl).item() for lbl in (1.0, 0.9))
    # BCE(l, 0.9) - BCE(l, 1) = 0.1 * l for any logit l, so the gap at l = 5 is exactly 0.5.
    assert smooth - hard == pytest.approx(0.5, rel=1e-4)


def test_minimax_gradient_saturates_where_non_saturating_does_not():
    fake = torch.tensor([-8.0], requires_grad=True)  # D is sure it is fake
    (g_mm,) = torch.autograd.grad(LOSSES["minimax"].g(fake), fake)
    (g_ns,) = torch.autograd.grad(LOSSES["non_saturating"].g(fake), fake)
    assert abs(g_mm.item()) < 1e-3 < abs(g_ns.item())


def test_gradient_penalty_of_a_linear_critic_is_hand_computable():
    d = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[3.0, 4.0]]))  # ∇x D = w everywhere, ‖w‖ = 5 → GP = (5 - 1)² = 16
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert gradient_penalty(d, real, fake).item() == pytest.approx(16.0)
    assert gradient_penalty(d, real, fake, target_norm=5.0).item() == pytest.approx(0.0, abs=1e-6)


def test_gradient_penalty_is_differentiable_in_d():
    d = nn.Linear(2, 1, bias=False)
    gp = gradient_penalty(d, torch.randn(4, 2), torch.randn(4, 2))
    gp.backward()
    w = d.weight.detach()[0]
    expected = 2 * (w.norm() - 1) * w / w.norm()  # d/dw (‖w‖ - 1)²
    assert torch.allclose(d.weight.grad[0], expected, atol=1e-5)


def test_info_loss_is_cross_entropy_of_the_code():
    code = torch.tensor([0, 3, 9])
    uniform = torch.zeros(3, 10)
    assert info_loss(uniform, code).item() == pytest.approx(math.log(10))  # Q knows nothing: ln 10
    sure = torch.full((3, 10), -20.0)
    sure[torch.arange(3), code] = 20.0
    assert info_loss(sure, code).item() < 1e-6
    assert info_loss(sure, (code + 1) % 10).item() > 39  # confidently wrong costs ~40 nats


# --- issue 29: MSGAN's mode-seeking term ------------------------------------------------------------------------------
def test_the_mode_seeking_term_on_a_hand_worked_case():
    from gan_core.losses import mode_seeking_term
    img1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])   # (H=2, 2 "pixels")
    img2 = torch.zeros(2, 2)                        # mean |img1 − img2| = (1 + 0 + 0 + 1) / 4 = 0.5
    z1 = torch.tensor([[2.0, 0.0], [0.0, 2.0]])     # (H=2, latent 2)
    z2 = torch.zeros(2, 2)                          # mean |z1 − z2| = (2 + 0 + 0 + 2) / 4 = 1.0
    # lz = 0.5 / 1.0 = 0.5, term = 1 / (0.5 + ε): exactly 2 at ε = 0, 1 / 0.50001 = 1.99996… at MSGAN's ε = 1e-5
    assert mode_seeking_term(img1, img2, z1, z2, eps=0.0).item() == 2.0
    assert mode_seeking_term(img1, img2, z1, z2).item() == pytest.approx(1 / 0.50001, rel=1e-6)
    # images twice as far apart for the same noise: lz = 1, term 1 / (1 + ε), lower; G is rewarded for variety
    assert mode_seeking_term(2 * img1, img2, z1, z2).item() == pytest.approx(1 / 1.00001, rel=1e-6)
    # identical images (a collapsed G) are as bad as the term gets: 1 / ε
    assert mode_seeking_term(img2, img2, z1, z2).item() == pytest.approx(1e5)


def test_a_packed_gradient_penalty_is_one_epsilon_and_one_norm_per_pack():
    # A linear D of slope w on every pixel of a pack has gradient w on each of its m·784 pixels: a norm of
    # √(m·784)·w per pack, 1 at w = 1/√(m·784), so the packed penalty is 0; per image the norm is √784·w = 1/√m.
    m = 2
    w = 1 / math.sqrt(m * 784)
    d = lambda x: w * x.reshape(len(x) // m, -1).sum(1)  # noqa: E731  packs (N/m,) of a linear D
    real, fake = torch.rand(8, 1, 28, 28), torch.rand(8, 1, 28, 28)
    assert gradient_penalty(d, real, fake, pack=m).item() == pytest.approx(0.0, abs=1e-10)
    per_image = gradient_penalty(d, real, fake)  # the plain GP's per-image norm: 1/√2, off by (1 − 1/√2)²
    assert per_image.item() == pytest.approx((1 - 1 / math.sqrt(2)) ** 2, rel=1e-5)
