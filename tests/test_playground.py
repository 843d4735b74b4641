"""The Playground's computations (gan_core/playground.py): the theory of the game on Gaussians (D against a fixed G
reaches D*'s closed form; at a perfect G, D → ½), the JS and earth mover's estimates on cases with known answers,
the data sets' densities, the controls' updates, and the setup's query parameters."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from gan_core.playground import (
    DATASETS,
    MAX_CLICKS,
    PlayConfig,
    Playground,
    d_star,
    emd,
    from_query,
    js_estimate,
    kde_log_density,
    mixture_log_density,
    noise_lines,
    plane_data,
    to_query,
    with_points,
)

SIGMA_REAL = 0.5
MEAN_G, SIGMA_G = torch.tensor([0.5, 0.0]), 0.8
# Test points where both Gaussians have mass (within about 2σ of the real one): D is only taught where samples fall.
TEST_POINTS = torch.tensor([[x, y] for x in (-0.8, -0.4, 0.0, 0.4, 0.8, 1.2) for y in (-0.8, 0.0, 0.8)])
D_STAR_TOLERANCE = 0.06  # |D(x) - D*(x)| at every test point, after 1,000 D updates of 256 points


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the dashboard runs (ui.frame): these nets are tiny, and two threads on a shared two-core
    machine made a D update 40× slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, sigma: float) -> torch.Tensor:
    return -((x - mean) ** 2).sum(1) / (2 * sigma ** 2) - math.log(2 * math.pi * sigma ** 2)


def fixed_g(scale: float, shift: torch.Tensor) -> nn.Linear:
    """A G that does not learn: noise z ~ N(0, I) (2-D) → scale·z + shift, i.e. N(shift, scale² I)."""
    g = nn.Linear(2, 2)
    with torch.no_grad():
        g.weight.copy_(scale * torch.eye(2))
        g.bias.copy_(shift)
    g.requires_grad_(False)
    return g


def trained_d_against(g: nn.Module, steps: int = 1000) -> Playground:
    """D trained by the Playground's own `step_d` against the fixed `g`, on real data N(0, SIGMA_REAL² I)."""
    pg = Playground(PlayConfig(data="clicks", points=((0.0, 0.0),), noise_dim=2, d_layers=2, d_width=32, batch=256,
                               lr_d=3e-3, seed=1))
    pg.data = replace(pg.data, sample=lambda n, gen: SIGMA_REAL * torch.randn(n, 2, generator=gen))
    pg.g = g
    for i in range(steps):
        if i == steps * 2 // 3:  # a smaller step at the end: D settles instead of jittering around D*
            for group in pg.opt_d.param_groups:
                group["lr"] = 5e-4
        pg.step_d()
    return pg


def d_at(pg: Playground, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.sigmoid(pg.d(x).squeeze(1))


def test_d_against_a_fixed_g_reaches_d_star():
    """Goodfellow et al. 2014, Prop. 1: for a fixed G the best D is p_data / (p_data + p_g)."""
    torch.manual_seed(0)
    pg = trained_d_against(fixed_g(SIGMA_G, MEAN_G))
    want = d_star(gaussian_log_density(TEST_POINTS, torch.zeros(2), SIGMA_REAL),
                  gaussian_log_density(TEST_POINTS, MEAN_G, SIGMA_G))
    got = d_at(pg, TEST_POINTS)
    assert want.min() < 0.3 and want.max() > 0.7  # the test points see D* far from ½ both ways
    assert (got - want).abs().max() < D_STAR_TOLERANCE, torch.stack([want, got], 1)
    assert pg.g_updates == 0 and pg.d_updates == 1000


def test_at_a_perfect_g_d_is_one_half_everywhere():
    """When G's samples are drawn from the data distribution itself, D cannot tell them apart: D → ½."""
    torch.manual_seed(0)
    pg = trained_d_against(fixed_g(SIGMA_REAL, torch.zeros(2)))
    got = d_at(pg, TEST_POINTS)
    assert (got - 0.5).abs().max() < 0.05, got


def test_js_estimate_is_zero_for_one_distribution_and_log_2_for_two_far_apart():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1000, 2, generator=g), torch.randn(1000, 2, generator=g)
    assert js_estimate(a, b) < 0.03
    assert js_estimate(a, b + 100.0) == pytest.approx(math.log(2), abs=1e-6)
    mid = js_estimate(a, b + torch.tensor([2.0, 0.0]))  # N(0, I) against N((2, 0), I): JS ≈ 0.35 nats
    assert 0.25 < mid < 0.45


def test_emd_of_a_shift_is_the_shift_and_of_itself_zero():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 2, generator=g)
    c = torch.tensor([0.3, -0.4])  # |c| = 0.5
    assert emd(a, a + c) == pytest.approx(0.5, abs=1e-6)  # float32 points
    assert emd(a, a[torch.randperm(200, generator=g)]) == pytest.approx(0.0, abs=1e-12)
    assert emd(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.tensor([[1.0, 1.0], [0.0, 1.0]])) == pytest.approx(1.0)


def test_densities_integrate_to_one_and_d_star_is_a_ratio():
    xs = torch.linspace(-3, 3, 301, dtype=torch.float64)
    yy, xx = torch.meshgrid(xs, xs, indexing="ij")
    plane = torch.stack([xx.flatten(), yy.flatten()], 1)
    cell = float(xs[1] - xs[0]) ** 2
    means = torch.tensor([[-1.0, 0.0], [1.0, 0.5]], dtype=torch.float64)
    assert float(mixture_log_density(means, 0.3, plane).exp().sum()) * cell == pytest.approx(1.0, abs=1e-3)
    assert float(kde_log_density(means, plane, 0.4).exp().sum()) * cell == pytest.approx(1.0, abs=1e-3)
    p, q = torch.tensor([0.2, 0.0, 3.0]), torch.tensor([0.6, 0.0, 1.0])
    assert d_star(p.log(), q.log()).tolist() == pytest.approx([0.25, 0.5, 0.75])  # 0/0 reads ½, not nan


@pytest.mark.parametrize("data", DATASETS)
def test_every_data_set_samples_inside_its_square_and_knows_its_density_where_it_can(data):
    d = plane_data(PlayConfig(data=data))
    x = d.sample(2000, torch.Generator().manual_seed(0))
    assert x.shape == (2000, 2) and float(x.abs().quantile(0.99)) < d.bound
    assert (d.log_density is not None) == (data in ("ring", "grid", "clicks"))
    assert (d.benchmark is not None) == (data in ("ring", "grid"))


def test_the_controls_update_only_what_they_say():
    pg = Playground(PlayConfig(data="moons", batch=32, g_width=8, d_width=8))
    g0 = [p.clone() for p in pg.g.parameters()]
    d0 = [p.clone() for p in pg.d.parameters()]
    pg.step_d()
    assert all(torch.equal(a, b) for a, b in zip(g0, pg.g.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d0, pg.d.parameters()))
    d1 = [p.clone() for p in pg.d.parameters()]
    pg.step_g()
    assert all(torch.equal(a, b) for a, b in zip(d1, pg.d.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g0, pg.g.parameters()))
    pg3 = Playground(PlayConfig(data="moons", batch=32, d_steps=3))
    pg3.step()
    assert (pg3.steps, pg3.d_updates, pg3.g_updates) == (1, 3, 1)
    assert pg.advance(5, budget_s=60) == 5 and pg.steps == 5 and pg.speed > 0


def test_one_setup_plays_the_same_game_twice():
    cfg = PlayConfig(data="ring", batch=32, g_width=8, d_width=8, seed=7, pack=2, instance_noise=0.1)
    a, b = Playground(cfg), Playground(cfg)
    a.advance(5, 60)
    b.advance(5, 60)
    assert torch.equal(a.view().fake, b.view().fake)
    assert not torch.equal(a.view().fake, Playground(cfg).view().fake)


def test_the_view_and_the_push_lowers_gs_loss():
    pg = Playground(PlayConfig(data="grid", batch=64, pack=3, noise_dim=1))
    pg.advance(20, 60)
    v = pg.view(resolution=20)
    assert v.d_grid.shape == (20, 20) and v.d_star_grid is not None and v.d_star_grid.shape == (20, 20)
    assert ((v.d_grid >= 0) & (v.d_grid <= 1)).all() and ((v.d_star_grid >= 0) & (v.d_star_grid <= 1)).all()
    assert v.manifold.shape == (1, 160, 2) and v.fake.shape == v.push.shape == (512, 2)
    assert Playground(PlayConfig(noise_dim=2)).view(8).manifold.shape == (22, 40, 2)
    assert noise_lines(2)[0, :, 1].unique().numel() == 1  # a line of the noise grid holds one coordinate
    n = 510  # whole packs of 3
    x = v.fake[:n]
    loss = lambda pts: float(pg.loss.g(pg.d(pts.reshape(-1, 6)).squeeze(1)))  # noqa: E731
    assert loss(x + 1e-3 * v.push[:n] / v.push[:n].norm(dim=1).max()) < loss(x)
    row = pg.record()
    assert {"step", "d_loss", "g_loss", "d_real", "d_fake", "js", "emd", "modes", "high_quality",
            "reverse_kl"} <= row.keys() and pg.history[-1] is row


def test_a_setup_survives_its_link():
    cfg = PlayConfig(data="clicks", noise_dim=1, loss="hinge", optimizer="sgd", lr_g=0.0125, lr_d=3e-4, d_steps=3,
                     g_layers=3, d_width=16, pack=2, instance_noise=0.05, seed=42, points=((0.5, -1.25), (2.0, 0.0)))
    q = to_query(cfg)
    assert q["lr_d"] == "0.0003" and q["points"] == "0.5,-1.25;2,0"
    assert from_query(q) == (cfg, [])
    assert from_query({}) == (PlayConfig(), [])
    assert from_query({"run": "3"}) == (PlayConfig(), [])  # other pages' parameters are not this page's business


@pytest.mark.parametrize(("params", "words"), [
    ({"lr_g": "fast"}, ["lr_g='fast'", "expected a number", "default '0.001'"]),
    ({"g_width": "4096"}, ["g_width='4096'", "allowed 2 to 128"]),
    ({"loss": "wgan_gp"}, ["loss='wgan_gp'", "non_saturating, minimax, lsgan, hinge"]),
    ({"data": "<script>"}, ["data='<script>'", "ring, grid, moons, spiral, line, clicks"]),
    ({"noise_dim": "3"}, ["noise_dim='3'", "allowed 1 to 2"]),
    ({"lr_d": "nan"}, ["lr_d='nan'", "expected a number"]),
    ({"points": "1,2,3"}, ["points='1,2,3'", "x,y pairs joined by ;"]),
    ({"points": "5,0"}, ["points='5,0'", "both in -2 to 2"]),
])
def test_a_bad_link_is_refused_in_words_and_the_default_used(params, words):
    cfg, refused = from_query({**params, "seed": "9"})
    assert len(refused) == 1 and all(w in refused[0] for w in words), refused
    assert cfg.seed == 9  # the good parameters are kept
    for name in params:
        assert getattr(cfg, name) == getattr(PlayConfig(), name)


def test_clicked_points_are_rounded_and_bounded():
    cfg = with_points(PlayConfig(data="clicks"), tuple((0.123456, -1.0) for _ in range(MAX_CLICKS + 5)))
    assert len(cfg.points) == MAX_CLICKS and cfg.points[0] == (0.12, -1.0)
    data = plane_data(cfg)
    assert data.log_density is not None
    assert float(data.log_density(torch.tensor([[0.12, -1.0]]))) > float(data.log_density(torch.tensor([[1.0, 1.0]])))


def test_a_long_value_is_refused_unread():
    cfg, refused = from_query({"seed": "9" * 100_000, "points": "1,1;" * 200, "lr_g": "0.0001"})
    assert refused == ["The link's seed is refused (100,000 characters, more than the 40 it may have); using the "
                       "default '0'.",
                       "The link's points is refused (800 characters, more than the 480 it may have); using the "
                       "default 'none'."]
    assert cfg.lr_g == 1e-4 and cfg.seed == 0 and cfg.points == ()
    longest = to_query(PlayConfig(data="clicks", points=tuple((-1.95, -1.95) for _ in range(MAX_CLICKS))))
    assert from_query(longest)[1] == []  # the most points a link may place still fit


def test_the_costly_estimates_come_only_when_asked_and_the_latest_is_found():
    pg = Playground(PlayConfig(data="ring", batch=32, g_width=8, d_width=8))
    pg.step()
    first = pg.record()
    pg.step()
    cheap = pg.record(estimates=False)
    assert "js" in first and "modes" in first and not {"js", "emd", "modes"} & cheap.keys() and "d_loss" in cheap
    assert pg.latest("modes") is first and pg.latest("d_loss") is cheap and pg.latest("nothing") == {}
    assert pg.view(with_star=False).d_star_grid is None and pg.view(resolution=8).d_star_grid is not None


def test_d_star_is_grey_where_neither_density_reaches_and_the_ring_modes_show():
    """The ring's σ 0.01 is a seventh of a 48-cell heatmap's cell: D* shows each mode at least half a cell wide, and
    ½ far from every real and generated point rather than the sign of a ratio of two vanishing densities."""
    pg = Playground(PlayConfig(data="ring"))
    v = pg.view(resolution=48)
    assert v.d_star_grid is not None
    far = v.d_star_grid[0, 0]  # the corner (-1.6, -1.6): 0.6 from the ring, far from G's points at the start
    assert float(far) == 0.5
    cell = float(v.xs[1] - v.xs[0])
    modes = torch.tensor(plane_data(pg.cfg).benchmark.means)                                   # (8, 2)
    yy, xx = torch.meshgrid(v.xs, v.xs, indexing="ij")
    near = torch.cdist(torch.stack([xx.flatten(), yy.flatten()], 1), modes).min(1).values < cell  # (R²,)
    assert float(v.d_star_grid.flatten()[near].max()) > 0.9  # every mode shows green on some cell near it
    assert (v.d_star_grid.flatten()[near] > 0.9).sum() >= 8
