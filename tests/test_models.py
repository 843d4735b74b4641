import pytest
import torch
from torch import nn

from gan_core.config import TrainConfig
from gan_core.data import load_dataset, to_float
from gan_core.models import (
    DCGANDiscriminator,
    DCGANGenerator,
    build_discriminator,
    build_generator,
    info_code,
    sample_noise,
)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("preset", ["seed000-dense", "seed002-dense", "seed003-dcgan", "seed004-dense"])
def test_shapes_for_every_arch_and_dataset(preset, dataset):
    cfg = TrainConfig.from_preset(preset, dataset=dataset)
    g, d = build_generator(cfg), build_discriminator(cfg)
    real = to_float(load_dataset(dataset, limit=8)[0])
    assert real.shape == (8, 1, 28, 28) and real.min() >= -1 and real.max() <= 1
    fake = g(torch.randn(8, cfg.latent_dim))
    assert fake.shape == (8, 1, 28, 28)
    assert fake.min() >= -1 and fake.max() <= 1  # tanh output, same range as the data
    assert d(real).shape == (8,) and d(fake).shape == (8,)


def _shapes(model: nn.Module, x: torch.Tensor, kinds: tuple) -> list[tuple]:
    out: list[tuple] = []
    hooks = [m.register_forward_hook(lambda m, i, o: out.append(tuple(o.shape[1:])))
             for m in model.modules() if isinstance(m, kinds)]
    model(x)
    for h in hooks:
        h.remove()
    return out


def test_dcgan_matches_seed_003_exactly():
    g = DCGANGenerator(100)
    assert _shapes(g, torch.randn(2, 100), (nn.Linear, nn.ConvTranspose2d)) == [
        (7 * 7 * 256,), (128, 7, 7), (64, 14, 14), (1, 28, 28)]
    assert all(m.kernel_size == (5, 5) for m in g.modules() if isinstance(m, nn.ConvTranspose2d))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 2
    d = DCGANDiscriminator(0.3)
    assert _shapes(d, torch.randn(2, 1, 28, 28), (nn.Conv2d, nn.Linear)) == [(64, 14, 14), (128, 7, 7), (1,)]
    assert [m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)] == [0.3, 0.3]


def test_width_multiplier_scales_channels():
    g = DCGANGenerator(100, mult=0.5)
    assert _shapes(g, torch.randn(2, 100), (nn.ConvTranspose2d,)) == [(64, 7, 7), (32, 14, 14), (1, 28, 28)]


def test_dense_layer_sizes_follow_config():
    cfg = TrainConfig.from_preset("seed004-dense")
    g, d = build_generator(cfg), build_discriminator(cfg)
    assert [m.out_features for m in g.modules() if isinstance(m, nn.Linear)] == [256, 512, 1024, 784]
    assert [m.out_features for m in d.modules() if isinstance(m, nn.Linear)] == [1024, 512, 256, 1]
    assert [m.p for m in d.modules() if isinstance(m, nn.Dropout)] == [0.3, 0.3, 0.3]


def test_init_std_draws_weights_from_that_normal():
    g = build_generator(TrainConfig(init_std=0.02, seed=0))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.Linear)])
    assert abs(w.std().item() - 0.02) < 0.001
    assert all(torch.all(m.bias == 0) for m in g.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize("arch", ["dense", "dcgan"])
def test_conditional_models_take_labels_and_refuse_to_go_without(arch):
    cfg = TrainConfig(arch=arch, conditional=True, width_mult=0.25, latent_dim=16)
    g, d = build_generator(cfg), build_discriminator(cfg)
    z, y = torch.randn(6, 16), torch.tensor([0, 1, 2, 7, 8, 9])
    x = g(z, y)
    assert x.shape == (6, 1, 28, 28) and d(x, y).shape == (6,)
    # The label really steers G: same noise, other classes, other images.
    assert not torch.allclose(g.eval()(z, y), g.eval()(z, (y + 1) % 10))
    with pytest.raises(ValueError, match="conditional"):
        g(z)
    with pytest.raises(ValueError, match="conditional"):
        d(x)
    plain = TrainConfig(arch=arch, width_mult=0.25, latent_dim=16)
    with pytest.raises(ValueError, match="unconditional"):
        build_generator(plain)(z, y)
    with pytest.raises(ValueError, match="unconditional"):
        build_discriminator(plain)(x, y)


def test_projection_head_starts_as_the_unconditional_discriminator():
    # The class embedding starts at zero, so at init every label gives the same logit; it can only learn to help.
    d = build_discriminator(TrainConfig(arch="dcgan", conditional=True, width_mult=0.25))
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(d(x, torch.zeros(4, dtype=torch.long)), d(x, torch.full((4,), 9)))
    assert d.head.embed.weight.shape == (10, 32 * 7 * 7)


def test_discriminator_normalisation_options():
    d = build_discriminator(TrainConfig(arch="dcgan", d_batchnorm=False, spectral_norm=True))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    convs = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert convs and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    d(torch.randn(3, 1, 28, 28))  # one power iteration
    w = convs[0].weight.flatten(1)
    assert torch.linalg.matrix_norm(w, 2).item() == pytest.approx(1.0, rel=0.1)  # spectral norm ≈ 1


@pytest.mark.parametrize("noise", ["normal", "uniform"])
def test_info_code_is_read_from_z_and_uniform(noise):
    cfg = TrainConfig(noise=noise, info_code=True)
    z = sample_noise(cfg, 20_000, torch.Generator().manual_seed(0))
    c = info_code(z)
    assert torch.equal(c, z[:, :10].argmax(1))
    shares = torch.bincount(c, minlength=10) / 20_000
    assert shares.min() > 0.09 and shares.max() < 0.11  # every code equally likely


@pytest.mark.parametrize("arch", ["dense", "dcgan"])
def test_info_models_steer_g_by_the_code_and_give_d_a_q_head(arch):
    cfg = TrainConfig(arch=arch, info_code=True, width_mult=0.25, latent_dim=16)
    g, d = build_generator(cfg).eval(), build_discriminator(cfg)
    z = torch.randn(6, 16)
    x = g(z)  # unconditional from outside: the code comes from z itself
    assert x.shape == (6, 1, 28, 28)
    logits, q = d(x, with_code=True)
    assert logits.shape == (6,) and q.shape == (6, 10)
    assert torch.equal(d(x), logits)  # Q does not change D's judgement
    # The code read from z picks G's embedding row: nudging code k's row changes exactly the samples with code k.
    code = info_code(z)
    with torch.no_grad():
        g.embed.weight[code[0]] += 1.0
    x2, other = g(z), code != code[0]
    assert not torch.allclose(x2[0], x[0]) and torch.allclose(x2[other], x[other])
    with pytest.raises(ValueError, match="unconditional"):
        g(z, torch.zeros(6, dtype=torch.long))  # callers cannot pick the class: it is not a conditional model
    plain = build_discriminator(TrainConfig(arch=arch, width_mult=0.25))
    assert plain.q is None and plain(x, with_code=True)[1] is None


# --- issue 29: packing (PacGAN) --------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditional", [False, True], ids=["plain", "conditional"])
@pytest.mark.parametrize("arch", ["dense", "dcgan"])
def test_a_packed_d_judges_m_images_at_once_and_only_its_first_layer_grows(arch, conditional):
    base = TrainConfig(arch=arch, conditional=conditional, width_mult=0.25, d_widths=(32, 16), batch_size=8)
    d1, d2 = build_discriminator(base), build_discriminator(base.replace(pack=2))
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    y = torch.randint(0, 10, (8,)) if conditional else None
    assert d1(x, y).shape == (8,) and d2(x, y).shape == (4,)  # one logit per pack of 2
    packs = d2.packed(x)                                      # consecutive images as channels: (4, 2, 28, 28)
    assert packs.shape == (4, 2, 28, 28) and torch.equal(packs[1, 0], x[2, 0]) and torch.equal(packs[1, 1], x[3, 0])
    if arch == "dense":  # the dense body sees the pack's two images side by side: (4, 2·784)
        assert torch.equal(d2.net[0](packs)[1], torch.cat([x[2].flatten(), x[3].flatten()]))
    s1, s2 = d1.state_dict(), d2.state_dict()
    assert s1.keys() == s2.keys()
    first = "net.1.weight" if arch == "dense" else "net.0.weight"  # dense: Flatten, then the first Linear
    grown = {k for k in s1 if s1[k].shape != s2[k].shape}
    assert grown == {first} | ({"head.embed.weight"} if conditional else set())
    assert s2[first].shape[1] == 2 * s1[first].shape[1]          # 784 → 1568 inputs, or 1 → 2 input channels
    if conditional:
        assert s2["head.embed.weight"].shape == (20, s1["head.embed.weight"].shape[1])  # a label table per place
    with pytest.raises(ValueError, match="packs of 2 images; got 7"):
        d2(x[:7], None if y is None else y[:7])


def test_pack_one_is_the_plain_d_and_the_shipped_ds_load_unchanged():
    from gan_core.checkpoint import load_discriminator
    d = build_discriminator(TrainConfig())
    x = torch.rand(4, 1, 28, 28)
    assert d.packed(x) is x and d.copies(x)[0] is x
    assert d.state_dict()["net.1.weight"].shape == (512, 784)  # seed 000's first layer, as before packing
    from pathlib import Path
    for path in sorted((Path(__file__).parents[1] / "gan_core/assets/generators").glob("*.safetensors")):
        shipped = load_discriminator(path)
        if shipped is not None:
            assert shipped.pack == 1, path.name
            y = torch.zeros(4, dtype=torch.long) if shipped.head.embed is not None else None
            assert shipped(x, y).shape == (4,)


def test_the_conditional_packed_head_sums_each_members_label_embedded_by_its_place():
    d = build_discriminator(TrainConfig(conditional=True, d_widths=(8,), pack=2, batch_size=8)).eval()
    with torch.no_grad():
        d.head.linear.weight.zero_()
        d.head.linear.bias.zero_()
        d.head.embed.weight.copy_(torch.randn_like(d.head.embed.weight))
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([3, 7, 7, 3])
    h = d.net(d.packed(x))                                                                   # (2, 8)
    e = d.head.embed.weight                                                                  # (20, 8): row j·10 + c
    want = torch.stack([(e[3] + e[10 + 7]) @ h[0], (e[7] + e[10 + 3]) @ h[1]])
    torch.testing.assert_close(d(x, y), want)
    # a member's place matters: the same classes in the other order are judged otherwise
    assert not torch.allclose(d(x, torch.tensor([7, 3, 7, 3])), want)
    # one image, judged as a pack of copies of itself: each place reads the same class
    xc, yc = d.copies(x[:1], y[:1])
    assert xc.shape == (2, 1, 28, 28) and yc.tolist() == [3, 3]
