"""What the Playground page computes besides the game itself (gan_core/playground.py): the demo's caps and the
process-wide count of sessions playing, the plane's Plotly figures, and reading a click on the plot as a point."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..playground import DEFAULT_CLICKS, PlaneView, PlayConfig
from ..runs.settings import env_number
from .charts import D_COLOR, G_COLOR, LEGEND_BELOW

REAL_COLOR, FAKE_COLOR = "#16a34a", "#c026d3"  # green real, purple generated: the heatmap's two ends
HEAT_SCALE = [[0.0, "#c026d3"], [0.5, "rgba(128,128,128,0.15)"], [1.0, "#16a34a"]]  # D: 0 generated … 1 real
TICK_S = 0.5          # a playing session's views redraw this often (a tick took ~0.3 s on a busy 2-core host)
STEP_BUDGET_S = 0.15  # of which stepping the models may take at most this (drawing takes the rest)
PLACE_GRID = 41       # the invisible points a click on the "place points" plot lands on, per side
ESTIMATE_S = 2.0      # while playing, JS, EMD, the benchmark and D* are estimated this often (each costs ~0.1 s)
MAX_STEP_BUDGET_S = 1.0  # stepping never takes longer than this in one tick, however slow the redraw was
SPEED_WINDOW_S = 5.0  # the speed shown is measured over this much of the latest playing


@dataclass(frozen=True)
class PlayCaps:
    """What one session may spend: steps a second, hidden layers and units of each net, sessions playing at once
    in this process (0: no limit)."""

    steps_per_s: int
    max_layers: int
    max_width: int
    sessions: int

    @classmethod
    def for_mode(cls, demo: bool) -> PlayCaps:
        """The public demo's caps (GAN_DEMO_PLAY_STEPS_PER_S, _MAX_WIDTH, _SESSIONS override them), else the
        config's own bounds and a speed no two-core server reaches."""
        if not demo:
            return cls(steps_per_s=5000, max_layers=4, max_width=128, sessions=0)
        return cls(steps_per_s=int(env_number("GAN_DEMO_PLAY_STEPS_PER_S", 100)), max_layers=2,
                   max_width=int(env_number("GAN_DEMO_PLAY_MAX_WIDTH", 32)),
                   sessions=int(env_number("GAN_DEMO_PLAY_SESSIONS", 4)))


def apply_caps(cfg: PlayConfig, caps: PlayCaps) -> tuple[PlayConfig, list[str]]:
    """(`cfg` within `caps`, a sentence for each field lowered)."""
    changes: dict[str, Any] = {}
    for name, most in (("g_layers", caps.max_layers), ("d_layers", caps.max_layers), ("g_width", caps.max_width),
                       ("d_width", caps.max_width)):
        if getattr(cfg, name) > most:
            changes[name] = most
    notes = [f"{name} {getattr(cfg, name)} is over this demo's limit; using {v}." for name, v in changes.items()]
    return replace(cfg, **changes), notes


def steps_per_tick(caps: PlayCaps) -> int:
    """The most steps one tick may take so that a session stays under its steps-a-second cap."""
    return max(1, int(caps.steps_per_s * TICK_S))


def step_budget(draw_s: float) -> float:
    """Seconds one tick may step: as long as the last redraw took (so at least half of a tick trains), at least
    STEP_BUDGET_S, at most MAX_STEP_BUDGET_S."""
    return min(MAX_STEP_BUDGET_S, max(STEP_BUDGET_S, draw_s))


def recent(marks: Sequence[tuple[float, int]], window_s: float) -> list[tuple[float, int]]:
    """The (time, steps) marks of the last `window_s` seconds before the newest, and the one just before them."""
    if not marks:
        return []
    newest = marks[-1][0]
    first = next((i for i, (t, _) in enumerate(marks) if newest - t <= window_s), len(marks) - 1)
    return list(marks[max(0, first - 1):])


def speed_text(marks: Sequence[tuple[float, int]], playing: bool) -> str:
    """The speed metric: steps per second of wall time between the first and last marks, "paused", or "measuring…"
    before two ticks have landed."""
    if not playing:
        return "paused"
    if len(marks) < 2 or marks[-1][0] <= marks[0][0]:
        return "measuring…"
    return f"{(marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0]):.0f} steps/s"


def kl_text(kl: float) -> tuple[str, str | None]:
    """Reverse KL as shown, and a note under it: two decimals, or a dash and "none yet" for an infinite one (no
    sample is near any mode yet, so there is no histogram of modes to compare; the page's caption says so)."""
    return (f"{kl:.2f}", None) if math.isfinite(kl) else ("—", "none yet")


class PlaySlots:
    """Sessions playing now in this process, each held while it ticks: one that stops ticking (paused, tab closed)
    frees its slot after `expiry_s`."""

    def __init__(self, expiry_s: float = 3.0) -> None:
        self.expiry_s = expiry_s
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}

    def hold(self, session: str, limit: int, now: float | None = None) -> bool:
        """Whether `session` may play this tick (limit 0: always); holding or taking its slot if so."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._seen = {s: t for s, t in self._seen.items() if now - t < self.expiry_s}
            if limit and session not in self._seen and len(self._seen) >= limit:
                return False
            self._seen[session] = now
            return True

    def release(self, session: str) -> None:
        """Free `session`'s slot now (Pause)."""
        with self._lock:
            self._seen.pop(session, None)

    def playing(self, now: float | None = None) -> int:
        """Sessions holding a slot now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return sum(1 for t in self._seen.values() if now - t < self.expiry_s)


SLOTS = PlaySlots()  # this process's; every session of this server shares it


def _square(fig: go.Figure, bound: float, height: int, title: str) -> go.Figure:
    """An equal-axis square of ±bound with the project's small title and the legend below."""
    fig.update_layout(title=dict(text=title, x=0.01, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=40, b=10), legend=LEGEND_BELOW, uirevision="keep",
                      xaxis=dict(range=[-bound, bound], zeroline=False, constrain="domain"),
                      yaxis=dict(range=[-bound, bound], zeroline=False, scaleanchor="x", scaleratio=1))
    return fig


def _heat(xs: torch.Tensor, grid: torch.Tensor, name: str, show_scale: bool) -> go.Heatmap:
    return go.Heatmap(x=xs.numpy(), y=xs.numpy(), z=grid.numpy(), zmin=0, zmax=1, colorscale=HEAT_SCALE,
                      name=name, showscale=show_scale, colorbar=dict(thickness=10, len=0.8),
                      hovertemplate="%{z:.2f}<extra></extra>")


def _lines(lines: torch.Tensor) -> tuple[list[float | None], list[float | None]]:
    """Polylines (lines, L, 2) as one trace's x and y, each line ended by None."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for line in lines.tolist():
        xs += [p[0] for p in line] + [None]
        ys += [p[1] for p in line] + [None]
    return xs, ys


def plane_figure(view: PlaneView, show: Sequence[str], height: int = 480) -> go.Figure:
    """Real and generated points over D's heatmap, with G's noise manifold and the push on each point as `show`
    asks ("heatmap", "manifold", "push")."""
    fig = go.Figure()
    if "heatmap" in show:
        fig.add_trace(_heat(view.xs, view.d_grid, "D(x)", True))
    if "manifold" in show:
        x, y = _lines(view.manifold)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="G's noise grid", hoverinfo="skip",
                                 line=dict(color=G_COLOR, width=1)))
    fig.add_trace(go.Scatter(x=view.real[:, 0].tolist(), y=view.real[:, 1].tolist(), mode="markers", name="real",
                             marker=dict(color=REAL_COLOR, size=5, line=dict(width=0.5, color="white"))))
    fig.add_trace(go.Scatter(x=view.fake[:, 0].tolist(), y=view.fake[:, 1].tolist(), mode="markers",
                             name="generated", marker=dict(color=FAKE_COLOR, size=5, line=dict(width=0.5,
                                                                                             color="white"))))
    if "push" in show:
        fig.add_trace(_arrows(view))
    return _square(fig, view.bound, height, "Real and generated points over D(x)")


def _arrows(view: PlaneView, count: int = 128) -> go.Scatter:
    """The push on the first `count` generated points as segments, the longest 8 % of the square."""
    push = view.push[:count]                                                          # (count, 2)
    scale = 0.08 * 2 * view.bound / float(push.norm(dim=1).max().clamp_min(1e-12))
    start, end = view.fake[:count], view.fake[:count] + scale * push
    segments = torch.stack([start, end], 1)                                           # (count, 2, 2)
    x, y = _lines(segments)
    return go.Scatter(x=x, y=y, mode="lines", name="G's push", hoverinfo="skip", line=dict(color=D_COLOR, width=1.5))


def d_star_figure(view: PlaneView, height: int = 480) -> go.Figure:
    """D*'s closed form over the plane, with the real points for reference; only where view.d_star_grid exists."""
    assert view.d_star_grid is not None
    fig = go.Figure([_heat(view.xs, view.d_star_grid, "D*(x)", True),
                     go.Scatter(x=view.real[:, 0].tolist(), y=view.real[:, 1].tolist(), mode="markers", name="real",
                                marker=dict(color=REAL_COLOR, size=4))])
    return _square(fig, view.bound, height, "D* = p_data / (p_data + p_g)")


HISTORY_PANELS = (("Losses", (("d_loss", "D loss", D_COLOR), ("g_loss", "G loss", G_COLOR))),
                  ("D's mean output", (("d_real", "D(x)", REAL_COLOR), ("d_fake", "D(G(z))", FAKE_COLOR))),
                  ("Distance to the data", (("js", "JS (nats)", "#ca8a04"), ("emd", "EMD", "#e11d48"))))
HISTORY_DRAWN = 300  # records drawn at most: thinned evenly (the newest kept), so a long game redraws as fast


def history_figure(history: Sequence[Mapping[str, float]], height: int = 520) -> go.Figure:
    """Losses, D(x) and D(G(z)), and the JS and EMD estimates over steps, one panel each; an estimate missing from a
    record (they are made every few ticks) is bridged."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[title for title, _ in HISTORY_PANELS])
    rows = thinned(history, HISTORY_DRAWN)
    steps = np.array([r["step"] for r in rows])
    for row, (_, series) in enumerate(HISTORY_PANELS, start=1):
        for key, name, color in series:
            y = np.array([r.get(key, np.nan) for r in rows], dtype=float)
            fig.add_trace(go.Scatter(x=steps, y=y, mode="lines", name=name, connectgaps=True,
                                     line=dict(color=color, width=1.5)), row=row, col=1)
    # The legend sits under the x title: at y=-0.08 "step" was drawn over it.
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), legend=dict(LEGEND_BELOW, y=-0.12),
                      uirevision="keep", hovermode="x unified")
    fig.update_annotations(font_size=13)
    fig.update_xaxes(title_text="step", row=3, col=1)
    return fig


def thinned(rows: Sequence[Mapping[str, float]], most: int) -> list[Mapping[str, float]]:
    """At most `most` of `rows`, evenly spaced, the last always kept."""
    if len(rows) <= most:
        return list(rows)
    every = -(-len(rows) // most)
    return list(rows[len(rows) - 1::-every][::-1])


def place_figure(points: Sequence[tuple[float, float]], bound: float = 2.0, height: int = 440,
                 stand_in: Sequence[tuple[float, float]] = DEFAULT_CLICKS) -> go.Figure:
    """The plot a visitor clicks to place points: Streamlit reports clicks on points only, so an invisible grid of
    PLACE_GRID² points (trace 0) catches each click at the grid point nearest it (markers smaller than the grid's
    spacing: Plotly picks the first of the markers under the cursor, not the nearest); the placed points are trace 1,
    or, faint, the `stand_in` points the data uses until there are any."""
    shown = points or stand_in
    ticks = torch.linspace(-bound * 0.95, bound * 0.95, PLACE_GRID)
    yy, xx = torch.meshgrid(ticks, ticks, indexing="ij")
    fig = go.Figure([go.Scatter(x=xx.flatten().tolist(), y=yy.flatten().tolist(), mode="markers", name="",
                                marker=dict(size=4, opacity=0), hovertemplate="click to place (%{x:.2f}, %{y:.2f})"
                                "<extra></extra>", showlegend=False, unselected=dict(marker=dict(opacity=0)),
                                selected=dict(marker=dict(opacity=0))),
                     go.Scatter(x=[p[0] for p in shown], y=[p[1] for p in shown], mode="markers",
                                name="your points" if points else "stand-in points", hoverinfo="skip", showlegend=False,
                                marker=dict(color=REAL_COLOR, size=10, opacity=1 if points else 0.3),
                                unselected=dict(marker=dict(opacity=1 if points else 0.3)))])
    fig.update_layout(clickmode="event+select", dragmode=False)  # no legend: its band left a 230 px square
    return _square(fig, bound, height, "Click to place a point")


def clicked_points(selection: Mapping[str, Any]) -> list[tuple[float, float]]:
    """The grid points a plotly_chart selection event names (trace 0 of `place_figure`), rounded to 0.01."""
    return [(round(float(p["x"]), 2), round(float(p["y"]), 2)) for p in selection.get("points", [])
            if p.get("curve_number", 0) == 0 and "x" in p and "y" in p]


MARKDOWN_SPECIALS = set("\\`*_{}[]()<>#+-.!|~:$=")


def plain(text: str) -> str:
    """`text` with every Markdown-special character escaped, so a link's value shown in an alert is read as typed:
    `__import__` is not bold, `[x](http://…)` is no link, `:red[x]` no colour."""
    return "".join("\\" + c if c in MARKDOWN_SPECIALS else c for c in text)


def query_differs(query: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """Whether the page's query parameters of the setup differ from `wanted` (other pages' parameters aside)."""
    names = {f.name for f in fields(PlayConfig)}
    return {k: v for k, v in query.items() if k in names} != dict(wanted)
