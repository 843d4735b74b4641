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
