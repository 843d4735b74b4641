import io

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.config import TrainConfig
from gan_core.models import build_generator
from gan_core.sampling import generate, gif_bytes, grid, interpolate, png_bytes, seeded_noise, slerp


def test_same_seed_same_digits_other_seed_other_digits():
    cfg = TrainConfig.from_preset("seed003-dcgan", width_mult=0.25)
    g = build_generator(cfg)
    a, b, c = generate(g, cfg, 9, 42), generate(g, cfg, 9, 42), generate(g, cfg, 9, 43)
    assert a.shape == (9, 28, 28) and a.dtype == np.uint8
    assert (a == b).all() and not (a == c).all()
    assert g.training  # sampling switched to eval mode and back


def test_slerp_hits_both_ends_and_keeps_the_norm_on_the_sphere():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a, atol=1e-6) and torch.allclose(path[-1], b, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)  # a straight line would dip to 0.707


def test_interpolation_strip_starts_and_ends_at_the_seeds_digits():
    cfg = TrainConfig()
    g = build_generator(cfg)
    strip = interpolate(g, cfg, 1, 2, 7)
    assert strip.shape == (7, 28, 28)
    assert (strip[0] == generate(g, cfg, 1, 1)[0]).all() and (strip[-1] == generate(g, cfg, 1, 2)[0]).all()
    assert seeded_noise(cfg, 1, 1).shape == (1, 128)


def test_grid_png_and_gif():
    imgs = np.stack([np.full((28, 28), i * 20, np.uint8) for i in range(10)])
    g = grid(imgs, ncol=5, pad=2)
    assert g.shape == (2 * 30 + 2, 5 * 30 + 2) and g[2, 2 + 30] == 20  # second tile of the first row
    im = Image.open(io.BytesIO(png_bytes(g, scale=2)))
    assert im.size == (g.shape[1] * 2, g.shape[0] * 2)
    gif = Image.open(io.BytesIO(gif_bytes([g, g // 2, g // 3])))
    assert gif.format == "GIF" and gif.n_frames == 3


def test_labels_are_checked_against_the_generator():
    from gan_core.config import ConfigError
    from gan_core.sampling import class_rows

    cond = TrainConfig(conditional=True, g_widths=(32,), latent_dim=8)
    g = build_generator(cond)
    sevens = generate(g, cond, 4, 1, label=7)
    assert sevens.shape == (4, 28, 28) and not (sevens == generate(g, cond, 4, 1, label=3)).all()
    with pytest.raises(ConfigError, match="conditional; choose a class"):
        generate(g, cond, 4, 1)
    for bad in (10, -1, True):
        with pytest.raises(ConfigError, match="not a class"):
            generate(g, cond, 4, 1, label=bad)
    plain = TrainConfig(g_widths=(32,), latent_dim=8)
    with pytest.raises(ConfigError, match="unconditional"):
        generate(build_generator(plain), plain, 4, 1, label=7)
    # One row per class, one style per column: row r is `generate(label=r)` of the same seed's noise.
    rows = class_rows(g, cond, seed=5, ncol=3)
    assert rows.shape == (30, 28, 28)
    assert (rows[21:24] == generate(g, cond, 3, 5, label=7)).all()


def test_infogan_rows_force_each_code_and_keep_the_noise():
    from gan_core.models import force_code, info_code
    from gan_core.sampling import class_row_inputs, class_rows, render
    z = torch.randn(50, 16)
    code = torch.arange(50) % 10
    forced = force_code(z, code)
    assert torch.equal(info_code(forced), code)
    assert torch.equal(forced.sort(1).values, z.sort(1).values)  # a permutation of each row: same values
    assert torch.equal(forced[:, 10:], z[:, 10:]) and (forced != z).sum(1).max() <= 2  # at most one swap
    cfg = TrainConfig(arch="dcgan", info_code=True, width_mult=0.25, latent_dim=16)
    zr, y = class_row_inputs(cfg, seed=3, ncol=4)
    assert y is None and info_code(zr).tolist() == [r for r in range(10) for _ in range(4)]
    g = build_generator(cfg)
    rows = class_rows(g, cfg, 3, 4)
    assert rows.shape == (40, 28, 28) and (rows == render(g, zr)).all()  # G sees only the permuted z
    with pytest.raises(ValueError, match="unconditional: it has no classes"):
        class_rows(g, TrainConfig(arch="dcgan", width_mult=0.25, latent_dim=16), 3, 4)


def test_png_at_width_reaches_any_width_and_keeps_tiles_even():
    from gan_core.sampling import png_at_width, resized
    from gan_core.web import images
    g = grid(np.random.default_rng(0).integers(0, 255, (256, 28, 28), dtype=np.uint8), ncol=16)  # 482 px
    for width in (482, 768, 1024, 1000):
        im = Image.open(io.BytesIO(png_at_width(g, width)))
        assert im.size == (width, width) and im.mode == "L"
    flat = grid(np.full((4, 28, 28), 200, dtype=np.uint8), ncol=2)  # 62 px: a whole multiple stays exact
    assert (np.asarray(resized(flat, 62 * 4))
            == np.asarray(Image.fromarray(flat).resize((248, 248), Image.NEAREST))).all()
    widths = [images.grid_display_px(n) for n in range(1, 17)]
    assert widths == sorted(widths) and widths[7] == 768 and widths[15] == 1024  # never smaller for more digits
    strips = [images.strip_display_px(n) for n in range(2, 25)]
    assert strips == sorted(strips) and max(strips) == images.STRIP_MAX_PX


def test_gif_plays_once_or_loops():
    frames = [np.full((10, 10), v, dtype=np.uint8) for v in (0, 128, 255)]
    once = Image.open(io.BytesIO(gif_bytes(frames, ms_per_frame=500, loop=False)))
    loops = Image.open(io.BytesIO(gif_bytes(frames, ms_per_frame=500)))
    assert once.n_frames == loops.n_frames == 3 and once.info["duration"] == 500
    assert "loop" not in once.info and loops.info["loop"] == 0


def test_checkpoint_errors_in_plain_words():
    from gan_core.web import text
    assert "not a complete .safetensors" in text.plain_checkpoint_error(
        "not a safetensors checkpoint (Error while deserializing header: header too large)")
    assert "pickle" in text.plain_checkpoint_error("this is a pickle (torch.save) file, which can run code")
    assert "diverged" in text.plain_checkpoint_error("G tensor x holds NaN or infinite values (its training")
    # a NaN in D (or an optimiser state) is not "this generator's" fault: the words name no part
    assert text.plain_checkpoint_error("D tensor x holds NaN or infinite values").startswith("Weights in this file")
    assert text.plain_checkpoint_error("the file is 30.0 MB; generators are accepted up to 20 MB").startswith(
        "The file is 30.0 MB")
    assert text.plain_checkpoint_error("???") == "This file cannot be used as a generator."
