"""The 2-D mode-collapse benchmark: the mixtures, the three numbers on hand-worked cases, packing's shapes, a short
run that learns, and the `toy` verb."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from gan_core.cli import main
from gan_core.config import ConfigError
from gan_core.toy import MIXTURES, ToyConfig, ToyGAN, build_toy_models, packed, score


def test_the_mixtures_are_pacgans():
    grid, ring = MIXTURES["grid"], MIXTURES["ring"]
    assert len(grid.means) == 25 and {x for x, _ in grid.means} == {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert grid.sigma == 0.05 and ring.sigma == 0.01
    assert len(ring.means) == 8 and all(math.isclose(math.hypot(x, y), 1.0) for x, y in ring.means)
    points = grid.sample(10_000, torch.Generator().manual_seed(0))
    assert points.shape == (10_000, 2)
    # The data scores as real data should: every mode, about 1 - e^(-9/2) = 98.9 % within 3σ (2-D), near-zero KL
    s = score(points, grid)
    assert s.modes == 25 and s.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.005) and s.reverse_kl < 0.01


def test_score_on_hand_worked_cases():
    ring = MIXTURES["ring"]
    on_two = torch.tensor([ring.means[0]] * 3 + [ring.means[1]] * 1 + [(0.0, 0.0)] * 4)  # 4 hits, 4 far from all
    s = score(on_two, ring)
    assert (s.modes, s.high_quality, s.counts[:2]) == (2, 0.5, (3, 1))
    # p = (3/4, 1/4) over K = 8 modes: Σ p log(p K)
    assert s.reverse_kl == pytest.approx(0.75 * math.log(0.75 * 8) + 0.25 * math.log(0.25 * 8))
    assert score(on_two, ring, min_count=2).modes == 1  # a mode needs min_count high-quality samples
    collapsed = score(torch.tensor([MIXTURES["grid"].means[7]] * 100), MIXTURES["grid"])
    assert (collapsed.modes, collapsed.reverse_kl) == (1, pytest.approx(math.log(25)))
    just_outside = torch.tensor([[1.0 + 3.01 * ring.sigma, 0.0], [1.0 + 2.99 * ring.sigma, 0.0]])
    assert score(just_outside, ring).counts[0] == 1  # 3σ is the line


def test_packing_puts_samples_side_by_side_for_d():
    cfg = ToyConfig(pack=3, g_width=8, d_width=6, maxout=2)
    g, d = build_toy_models(cfg)
    points = g(torch.randn(12, cfg.noise_dim))                       # (12, 2)
    packs = packed(points, cfg.pack)                                 # (4, 6)
    assert packs.shape == (4, 6) and torch.equal(packs[1, 2:4], points[4])
    assert d(packs).shape == (4, 1)
    assert d[0].linear.in_features == 6  # only D's first layer grows with the pack


@pytest.mark.parametrize("bad", [dict(mixture="spiral"), dict(pack=0), dict(pack=9), dict(steps=-1),
                                 dict(lr=0.0), dict(lr=float("nan")), dict(beta1=1.0), dict(loss="wgan_gp"),
                                 dict(g_width=True), dict(batch_size=2.5)])
def test_toy_config_refuses_bad_values_in_words(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        ToyConfig(**bad)


def test_a_short_run_learns_the_ring_and_is_reproducible():
    cfg = ToyConfig(mixture="ring", g_width=64, g_layers=2, d_width=32, d_layers=2, batch_size=64, lr=1e-3,
                    beta1=0.5, train_points=5_000, seed=1)
    gan = ToyGAN(cfg)
    before = gan.score()
    for _ in range(300):
        gan.train_step()
    after = gan.score()
    assert after.high_quality > before.high_quality and after.modes > before.modes
    again = ToyGAN(cfg)
    for _ in range(300):
        again.train_step()
    assert torch.equal(again.sample(50), gan.sample(50))  # the seed fixes data, weights and every noise draw


def test_the_toy_verb_prints_every_trial_and_the_mean(capsys):
    assert main(["toy", "--mixture", "ring", "--seeds", "2", "--steps", "20", "--g-width", "16", "--d-width", "8",
                 "--train-points", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["seed"] for t in out["trials"]] == [0, 1] and out["config"]["steps"] == 20
    modes = [t["modes"] for t in out["trials"]]
    assert out["summary"]["modes"][0] == pytest.approx(sum(modes) / 2)
    assert main(["toy", "--lr", "nan", "--steps", "1"]) == 2  # refused before any trial trains
    assert "lr" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["toy", "--pack", "0"])


def test_lr_decay_falls_linearly_to_zero_over_the_steps():
    cfg = ToyConfig(mixture="ring", g_width=8, g_layers=1, d_width=8, d_layers=1, lr=1e-3, steps=4, lr_decay=True,
                    train_points=100)
    gan = ToyGAN(cfg)
    lrs = []
    for _ in range(4):
        gan.train_step()
        lrs.append([o.param_groups[0]["lr"] for o in (gan.opt_g, gan.opt_d)])
    # after update i (1-based) the next update uses lr · (1 - i/4): 0.75, 0.5, 0.25, then 0 once the run is over
    assert lrs == [[pytest.approx(1e-3 * f)] * 2 for f in (0.75, 0.5, 0.25, 0.0)]
    flat = ToyGAN(dataclasses.replace(cfg, lr_decay=False))
    flat.train_step()
    assert flat.opt_g.param_groups[0]["lr"] == 1e-3
