"""The Playground's GAN game on a plane (issue 29 §1): data sets, small MLPs stepped one update at a time, what the
page draws (D over the plane, D*'s closed form, G's noise manifold, the push on each generated point) and the
numbers it tracks (JS divergence and earth mover's distance estimates, the toy benchmark's score).

Everything here is plain torch: the page keeps a `Playground` in its session and calls `advance` a few times a
second. A setup (`PlayConfig`) is read from and written to a link's query parameters by `from_query` / `to_query`.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from .config import ConfigError, _coerce, _f, check_field
from .losses import LOSSES
from .toy import MIXTURES, TOY_LOSSES, Mixture, ModeScore, packed, score

DATASETS = ("ring", "grid", "moons", "spiral", "line", "clicks")
BOUNDS = {"ring": 1.6, "grid": 5.5}  # half the side of the square shown; the others fit in ±2
CLICK_SIGMA = 0.1        # a clicked point is a Gaussian of this σ, so the clicked data's density is known
MAX_CLICKS = 40
MAX_PARAM_CHARS = 40     # a link's value of one setting is refused unread when longer (the longest good one: 12)
MAX_POINTS_CHARS = MAX_CLICKS * 12  # "-1.95,-1.95;" for each of the most points a link may place
DEFAULT_CLICKS = ((-1.0, -0.6), (1.0, -0.6), (0.0, 1.0))  # shown until the visitor places points of their own
SHOWN = 512              # real and generated points drawn, and the samples the estimates read
HISTORY = 600            # metric records kept (the oldest dropped)
PROBABILITY_LOSSES = ("non_saturating", "minimax")  # D's output is a probability: sigmoid of the logit
NEGLIGIBLE = 0.01        # the D* view shows ½ where p_data + p_g is under this share of a uniform density


@dataclass(frozen=True)
class PlayConfig:
    """One Playground setup; every field is a query parameter of the page's link, checked with config's metadata."""

    data: str = _f("ring", "The real data on the plane.", choices=DATASETS)
    noise_dim: int = _f(2, "Noise dimensions G draws from.", lo=1, hi=2)
    loss: str = _f("non_saturating", "GAN objective, as on Train.", choices=TOY_LOSSES)
    optimizer: str = _f("adam", "Optimiser of both networks.", choices=("adam", "sgd"))
    lr_g: float = _f(1e-3, "G's learning rate.", lo=1e-5, hi=1.0)
    lr_d: float = _f(1e-3, "D's learning rate.", lo=1e-5, hi=1.0)
    d_steps: int = _f(1, "D updates per G update.", lo=1, hi=10)
    g_layers: int = _f(2, "G hidden layers.", lo=1, hi=4)
    g_width: int = _f(32, "Units of each G hidden layer.", lo=2, hi=128)
    d_layers: int = _f(2, "D hidden layers.", lo=1, hi=4)
    d_width: int = _f(32, "Units of each D hidden layer.", lo=2, hi=128)
    batch: int = _f(128, "Points of each kind per update (whole packs: rounded down to a multiple of pack).", lo=8,
                    hi=1024)
    pack: int = _f(1, "Samples D judges at once (PacGAN); 1 is the plain GAN.", lo=1, hi=4)
    instance_noise: float = _f(0.0, "σ of Gaussian noise added to every point D reads (0: off).", lo=0.0, hi=1.0)
    seed: int = _f(0, "Seed of the weights, the data and the noise.", lo=0, hi=99_999)
    points: tuple[tuple[float, float], ...] = field(default=(), metadata={})  # clicked points (data "clicks")

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.metadata:
                check_field(f, getattr(self, f.name))
        check_points(self.points)


def check_points(points: tuple[tuple[float, float], ...]) -> None:
    """Raise ConfigError unless `points` are at most MAX_CLICKS finite pairs inside the clicks' ±2 square."""
    if len(points) > MAX_CLICKS:
        raise ConfigError(f"points: {len(points)} points is too many; allowed up to {MAX_CLICKS}")
    for p in points:
        if len(p) != 2 or not all(isinstance(v, float) and math.isfinite(v) and abs(v) <= 2.0 for v in p):
            raise ConfigError(f"points: {p!r} is not a point x,y with both in -2 to 2")


def _parse_points(text: str) -> tuple[tuple[float, float], ...]:
    """'0.5,1;-1,0.25' → ((0.5, 1.0), (-1.0, 0.25)); ConfigError naming what does not read."""
    out = []
    for part in filter(None, text.split(";")):
        try:
            x, y = (float(v) for v in part.split(","))
        except ValueError:
            raise ConfigError(f"points: {part!r} is not a point x,y (points are x,y pairs joined by ;)") from None
        out.append((x, y))
    pts = tuple(out)
    check_points(pts)
    return pts


def to_query(cfg: PlayConfig) -> dict[str, str]:
    """The setup as query parameters: every field, numbers as short as they read back exactly."""
    out = {f.name: (f"{v:g}" if isinstance(v, float) else str(v))
           for f in fields(cfg) if f.metadata and (v := getattr(cfg, f.name)) is not None}
    if cfg.points:
        out["points"] = ";".join(f"{x:g},{y:g}" for x, y in cfg.points)
    return out


def from_query(params: Mapping[str, str]) -> tuple[PlayConfig, list[str]]:
    """(the setup a link's query parameters give, what was refused in words): each bad value is named with what is
    allowed, and that field keeps its default; unknown parameters are left to other pages."""
    values: dict[str, Any] = {}
    refused: list[str] = []
    defaults = PlayConfig()
    for f in fields(PlayConfig):
        if f.name not in params:
            continue
        raw, most = params[f.name], MAX_POINTS_CHARS if f.name == "points" else MAX_PARAM_CHARS
        if len(raw) > most:  # refused unread: a 100,000-digit seed is not parsed, nor echoed back
            refused.append(f"The link's {f.name} is refused ({len(raw):,} characters, more than the {most} it may "
                           f"have); using the default {to_query(defaults).get(f.name, 'none')!r}.")
            continue
        try:
            value = _parse_points(raw) if f.name == "points" else _coerce(f, raw)
            if f.metadata:
                check_field(f, value)
            values[f.name] = value
        except ConfigError as e:
            shown = raw if len(raw) <= 40 else raw[:39] + "…"
            refused.append(f"The link's {f.name}={shown!r} is refused ({_reason(e, f.name)}); "
                           f"using the default {to_query(defaults).get(f.name, 'none')!r}.")
    return PlayConfig(**values), refused


def _reason(e: ConfigError, name: str) -> str:
    """check_field's message without the field name it starts with."""
    return str(e).removeprefix(f"{name}: ")


# --- data ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaneData:
    """A data set on the plane: how to sample it, its log density where known (None: only samples), the half side
    of the square that shows it, and the benchmark mixture it is (ring, grid) or None."""

    name: str
    sample: Callable[[int, torch.Generator], torch.Tensor]
    log_density: Callable[[torch.Tensor], torch.Tensor] | None
    bound: float
    benchmark: Mixture | None = None
    mixture: Mixture | None = None  # the Gaussian mixture it is (ring, grid, clicks), whose σ the view may widen


def mixture_log_density(means: torch.Tensor, sigma: float, x: torch.Tensor) -> torch.Tensor:
    """log p(x) (N,) of an equally weighted isotropic mixture with means (K, 2), at points x (N, 2)."""
    sq = torch.cdist(x.double(), means.double()) ** 2                                   # (N, K)
    log_k = -sq / (2 * sigma ** 2) - math.log(2 * math.pi * sigma ** 2) - math.log(len(means))
    return torch.logsumexp(log_k, dim=1).to(x.dtype)


def _mixture_data(m: Mixture, bound: float, benchmark: bool = True) -> PlaneData:
    means = torch.tensor(m.means)                                                       # (K, 2)
    return PlaneData(m.name, m.sample, lambda x: mixture_log_density(means, m.sigma, x), bound,
                     m if benchmark else None, m)


def _moons(n: int, g: torch.Generator) -> torch.Tensor:
    """Two interleaved half circles of radius 1 (scikit-learn's make_moons), centred, σ 0.06."""
    t = math.pi * torch.rand(n, generator=g)                                            # (n,)
    upper = torch.rand(n, generator=g) < 0.5
    x = torch.where(upper, torch.cos(t), 1 - torch.cos(t)) - 0.5
    y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t)) - 0.25
    return torch.stack([x, y], 1) + 0.06 * torch.randn(n, 2, generator=g)


def _spiral(n: int, g: torch.Generator) -> torch.Tensor:
    """One arm turning 1.5 times out to radius 1.8, σ 0.04."""
    t = torch.rand(n, generator=g).sqrt()                                               # (n,) more points outside
    angle = 3 * math.pi * t
    return torch.stack([1.8 * t * torch.cos(angle), 1.8 * t * torch.sin(angle)], 1) + \
        0.04 * torch.randn(n, 2, generator=g)


def _line(n: int, g: torch.Generator) -> torch.Tensor:
    """A segment from (-1.5, -0.9) to (1.5, 0.9), σ 0.03 across it."""
    t = 3 * torch.rand(n, generator=g) - 1.5
    return torch.stack([t, 0.6 * t], 1) + 0.03 * torch.randn(n, 2, generator=g)


def plane_data(cfg: PlayConfig) -> PlaneData:
    """The data set `cfg` names; clicked points are a mixture of σ CLICK_SIGMA (DEFAULT_CLICKS until there are any)."""
    if cfg.data in MIXTURES:
        return _mixture_data(MIXTURES[cfg.data], BOUNDS[cfg.data])
    if cfg.data == "clicks":
        return _mixture_data(Mixture("clicks", cfg.points or DEFAULT_CLICKS, CLICK_SIGMA), 2.0, benchmark=False)
    sample = {"moons": _moons, "spiral": _spiral, "line": _line}[cfg.data]
    return PlaneData(cfg.data, sample, None, 2.0)


# --- densities and distances -----------------------------------------------------------------------------------


def bandwidth(*samples: torch.Tensor) -> float:
    """A Gaussian kernel's σ for 2-D samples: half Scott's rule (σ̄ n^(-1/6)) on them pooled, since Scott's own
    smooths the grid's modes, 2 apart, into one blur."""
    pooled = torch.cat(samples)
    return 0.5 * float(pooled.std(0).mean()) * len(samples[0]) ** (-1 / 6) + 1e-6


def kde_log_density(samples: torch.Tensor, x: torch.Tensor, h: float) -> torch.Tensor:
    """log of a Gaussian kernel density of `samples` (M, 2) with σ `h`, at points x (N, 2): (N,)."""
    sq = torch.cdist(x.double(), samples.double()) ** 2                                 # (N, M)
    return (torch.logsumexp(-sq / (2 * h * h), dim=1) - math.log(len(samples) * 2 * math.pi * h * h)).to(x.dtype)


def d_star(log_p_data: torch.Tensor, log_p_g: torch.Tensor) -> torch.Tensor:
    """The optimal discriminator p_data / (p_data + p_g) from log densities; ½ where both densities are 0."""
    star = torch.sigmoid(log_p_data - log_p_g)
    return torch.where(torch.isnan(star), torch.full_like(star, 0.5), star)  # -inf - -inf: neither has mass


def js_estimate(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Jensen–Shannon divergence (nats, 0 to log 2) between the distributions behind two samples (N, 2): kernel
    densities of the same bandwidth fitted on each sample's first half, averaged over the second halves, so a
    point never sees its own kernel."""
    r_fit, r_eval = real.chunk(2)
    f_fit, f_eval = fake.chunk(2)
    h = bandwidth(r_fit, f_fit)

    def log_ratio(x: torch.Tensor, own: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        a, b = kde_log_density(own, x, h), kde_log_density(other, x, h)                # (n,), (n,)
        return a - (torch.logaddexp(a, b) - math.log(2))                                # log p / ((p + q) / 2)

    js = 0.5 * float(log_ratio(r_eval, r_fit, f_fit).mean()) + 0.5 * float(log_ratio(f_eval, f_fit, r_fit).mean())
    return min(max(js, 0.0), math.log(2))


def emd(a: torch.Tensor, b: torch.Tensor) -> float:
    """The exact earth mover's distance (Wasserstein-1, Euclidean) between two equal-size point sets (N, 2): the
    mean length of the optimal one-to-one assignment (scipy's linear_sum_assignment); O(N³), so N of a few hundred."""
    from scipy.optimize import linear_sum_assignment
    cost = torch.cdist(a.double(), b.double()).numpy()                                 # (N, N)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


# --- the models and their game ---------------------------------------------------------------------------------


def mlp(inputs: int, width: int, layers: int, outputs: int) -> nn.Sequential:
    """inputs → `layers` × (Linear, LeakyReLU 0.2) of `width` units → outputs; leaky so no unit of a small net dies."""
    parts: list[nn.Module] = []
    for _ in range(layers):
        parts += [nn.Linear(inputs, width), nn.LeakyReLU(0.2)]
        inputs = width
    return nn.Sequential(*parts, nn.Linear(inputs, outputs))


def d_output(logits: torch.Tensor, loss: str) -> torch.Tensor:
    """D's output on the 0..1 scale the views use: sigmoid for the cross-entropy losses; least squares' own output
    (targets 1 real, 0 fake) and hinge's (-1 to 1, shifted) clipped onto it."""
    if loss in PROBABILITY_LOSSES:
        return torch.sigmoid(logits)
    if loss == "lsgan":
        return logits.clamp(0, 1)
    return ((logits + 1) / 2).clamp(0, 1)


@dataclass(frozen=True)
class PlaneView:
    """What the plane's views draw at one moment (tensors on the CPU)."""

    bound: float
    xs: torch.Tensor                 # (R,) the heatmap's coordinates on both axes
    d_grid: torch.Tensor             # (R, R) D's output at (xs[j], xs[i]) in row i, column j
    d_star_grid: torch.Tensor | None  # (R, R) D* where the real density is known
    real: torch.Tensor               # (SHOWN, 2)
    fake: torch.Tensor               # (SHOWN, 2) G of the fixed shown noise
    push: torch.Tensor               # (SHOWN, 2) minus the gradient of G's loss at each generated point
    manifold: torch.Tensor           # (lines, L, 2) G of a line (1-D noise) or a grid of lines (2-D) of noise


class Playground:
    """A Playground session's models, optimisers and counters; `step_d`, `step_g`, `step` and `advance` play."""

    def __init__(self, cfg: PlayConfig) -> None:
        self.cfg, self.data = cfg, plane_data(cfg)
        with torch.random.fork_rng():  # the server's global RNG is left alone
            torch.manual_seed(cfg.seed)
            self.g = mlp(cfg.noise_dim, cfg.g_width, cfg.g_layers, 2)
            self.d = mlp(2 * cfg.pack, cfg.d_width, cfg.d_layers, 1)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        make = (lambda p, lr: torch.optim.Adam(p, lr=lr, betas=(0.5, 0.999))) if cfg.optimizer == "adam" else \
            (lambda p, lr: torch.optim.SGD(p, lr=lr))
        self.opt_g, self.opt_d = make(self.g.parameters(), cfg.lr_g), make(self.d.parameters(), cfg.lr_d)
        self.loss = LOSSES[cfg.loss]
        shown = torch.Generator().manual_seed(cfg.seed + 1)
        self.shown_z = torch.randn(SHOWN, cfg.noise_dim, generator=shown)                # (SHOWN, noise_dim)
        self.shown_real = self.data.sample(SHOWN, shown)                                 # (SHOWN, 2)
        self.batch = cfg.batch - cfg.batch % cfg.pack  # whole packs
        self.steps = self.d_updates = self.g_updates = 0
        self.last: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self.speed = 0.0  # steps a second over the last `advance`

    def _d_logits(self, points: torch.Tensor) -> torch.Tensor:
        """D's logits (B,) for points (B·pack, 2), with instance noise while training when it is on."""
        if self.cfg.instance_noise > 0 and self.d.training:
            points = points + self.cfg.instance_noise * torch.randn(points.shape, generator=self.rng)
        return self.d(packed(points, self.cfg.pack)).squeeze(1)

    def step_d(self) -> float:
        """One D update on a batch of real and generated points; returns D's loss."""
        real = self.data.sample(self.batch, self.rng)                                    # (B, 2)
        with torch.no_grad():
            fake = self.g(torch.randn(self.batch, self.cfg.noise_dim, generator=self.rng))
        real_logits, fake_logits = self._d_logits(real), self._d_logits(fake)           # (B/pack,) each
        loss = self.loss.d(real_logits, fake_logits, 1.0)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        self.d_updates += 1
        with torch.no_grad():
            self.last.update(d_loss=loss.item(), d_real=float(d_output(real_logits, self.cfg.loss).mean()),
                             d_fake=float(d_output(fake_logits, self.cfg.loss).mean()))
        return loss.item()

    def step_g(self) -> float:
        """One G update against the current D; returns G's loss."""
        fake = self.g(torch.randn(self.batch, self.cfg.noise_dim, generator=self.rng))    # (B, 2)
        loss = self.loss.g(self._d_logits(fake))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()  # D's gradients from this backward are cleared by its next zero_grad
        self.g_updates += 1
        self.last["g_loss"] = loss.item()
        return loss.item()

    def step(self) -> None:
        """One step of the game: `d_steps` D updates, then one G update."""
        for _ in range(self.cfg.d_steps):
            self.step_d()
        self.step_g()
        self.steps += 1

    def advance(self, most: int, budget_s: float) -> int:
        """Up to `most` steps, stopping once `budget_s` seconds are spent; the steps done (and `speed` measured)."""
        start, done = time.perf_counter(), 0
        while done < most and (done == 0 or time.perf_counter() - start < budget_s):
            self.step()
            done += 1
        elapsed = time.perf_counter() - start
        self.speed = done / elapsed if elapsed > 0 else 0.0
        return done

    def record(self, estimates: bool = True) -> dict[str, float]:
        """The numbers now (losses, D's means; with `estimates` also JS and EMD estimates and the benchmark's on ring
        and grid, the costly part), kept in `history` (the newest HISTORY)."""
        row = {"step": float(self.steps), **self.last}
        if estimates:
            row.update(self.estimates())
        self.history = [*self.history[-(HISTORY - 1):], row]
        return row

    def estimates(self) -> dict[str, float]:
        """JS and EMD estimates from fresh samples, and the benchmark's three numbers on ring and grid."""
        with torch.no_grad():
            fake = self.g(torch.randn(SHOWN, self.cfg.noise_dim, generator=self.rng))      # (SHOWN, 2)
            real = self.data.sample(SHOWN, self.rng)
        row = {"js": js_estimate(real, fake), "emd": emd(real[:256], fake[:256])}
        if self.data.benchmark is not None:
            s = self.score()
            row.update(modes=float(s.modes), high_quality=s.high_quality, reverse_kl=s.reverse_kl)
        return row

    def latest(self, key: str) -> dict[str, float]:
        """The newest history row that has `key` (an estimate is not made every record), or {}."""
        return next((r for r in reversed(self.history) if key in r), {})

    @torch.no_grad()
    def score(self) -> ModeScore:
        """The toy benchmark's modes, high-quality share and reverse KL of 2,500 samples (ring and grid only)."""
        if self.data.benchmark is None:
            raise ValueError(f"{self.data.name} is not a benchmark mixture")
        z = torch.randn(2500, self.cfg.noise_dim, generator=torch.Generator().manual_seed(2333))
        return score(self.g(z), self.data.benchmark)

    def view(self, resolution: int = 48, with_star: bool = True) -> PlaneView:
        """What the views draw now; D* (the costly part, skipped without `with_star`) from the real density and a
        kernel density of the shown generated points."""
        b = self.data.bound
        xs = torch.linspace(-b, b, resolution)                                           # (R,)
        yy, xx = torch.meshgrid(xs, xs, indexing="ij")
        plane = torch.stack([xx.flatten(), yy.flatten()], 1)                             # (R², 2)
        self.d.eval()
        try:
            with torch.no_grad():
                # A pack of `pack` copies of the point: D's judgement of that point alone.
                d_grid = d_output(self.d(plane.repeat(1, self.cfg.pack)).squeeze(1), self.cfg.loss)
                fake = self.g(self.shown_z)                                              # (SHOWN, 2)
                manifold = self.g(noise_lines(self.cfg.noise_dim).reshape(-1, self.cfg.noise_dim))
            star = None
            if with_star and self.data.log_density is not None:
                star = self.star_on(plane, fake, cell=float(xs[1] - xs[0])).reshape(resolution, resolution)
            push = self.push(fake)
        finally:
            self.d.train()
        return PlaneView(b, xs, d_grid.reshape(resolution, resolution), star, self.shown_real, fake, push,
                         manifold.reshape(-1, noise_lines(self.cfg.noise_dim).shape[1], 2))

    def star_on(self, plane: torch.Tensor, fake: torch.Tensor, cell: float) -> torch.Tensor:
        """D* at points plane (N, 2) as a heatmap of `cell` spacing can show it: a mixture's modes widened to σ of at
        least half a cell (the ring's σ 0.01 would fall between the cells), and ½ where neither density reaches
        NEGLIGIBLE of the uniform density over the square (there D* is a ratio of two vanishing numbers)."""
        m = self.data.mixture
        if m is not None:
            log_p = mixture_log_density(torch.tensor(m.means), max(m.sigma, cell / 2), plane)
        else:
            assert self.data.log_density is not None
            log_p = self.data.log_density(plane)
        log_g = kde_log_density(fake, plane, bandwidth(fake))                            # (N,)
        floor = math.log(NEGLIGIBLE / (2 * self.data.bound) ** 2)
        return torch.where(torch.logaddexp(log_p, log_g) < floor, 0.5, d_star(log_p, log_g))

    def push(self, fake: torch.Tensor) -> torch.Tensor:
        """Minus the gradient of G's loss with respect to each generated point (N, 2): where G is told to move it."""
        n = len(fake) - len(fake) % self.cfg.pack  # whole packs; a leftover point (pack 3) is not pushed
        x = fake[:n].detach().clone().requires_grad_(True)                               # (n, 2)
        (grad,) = torch.autograd.grad(self.loss.g(self.d(packed(x, self.cfg.pack)).squeeze(1)), x)
        # The loss is a mean over n / pack packs: undo the 1/n so the size reads per point.
        return torch.cat([-grad * n, torch.zeros(len(fake) - n, 2)])


def noise_lines(noise_dim: int, lines: int = 11, points: int = 40) -> torch.Tensor:
    """Noise along lines of the noise space, (lines, L, noise_dim): one line from -3 to 3 for 1-D noise; for 2-D a
    grid of `lines` lines each way from -2.5 to 2.5, so G's image is the grid bent."""
    if noise_dim == 1:
        return torch.linspace(-3, 3, 4 * points).reshape(1, -1, 1)
    t = torch.linspace(-2.5, 2.5, points)                                                # (L,)
    across = torch.linspace(-2.5, 2.5, lines)                                            # (lines,)
    rows = torch.stack([t.expand(lines, -1), across[:, None].expand(-1, points)], 2)     # (lines, L, 2)
    return torch.cat([rows, rows.flip(2)])                                               # (2·lines, L, 2)


def with_points(cfg: PlayConfig, points: tuple[tuple[float, float], ...]) -> PlayConfig:
    """`cfg` with the clicked points replaced (rounded to 0.01, the last MAX_CLICKS kept)."""
    kept = tuple((round(float(x), 2), round(float(y), 2)) for x, y in points)[-MAX_CLICKS:]
    return replace(cfg, points=kept)


def config_dict(cfg: PlayConfig) -> dict[str, Any]:
    """The setup as plain values (for tests and the page's widgets)."""
    return asdict(cfg)
