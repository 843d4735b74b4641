"""Plotly figures for the dashboard, and the smoothing behind them. No Streamlit here: pages only place figures.

Metric rows are the dicts `Store.metrics` returns (step, epoch, d_loss, g_loss, d_real, d_fake, images_per_sec).
"""
from __future__ import annotations

import html

import math
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

Rows = Sequence[Mapping[str, Any]]
D_COLOR, G_COLOR = "#38bdf8", "#f97316"          # D blue, G orange (the theme's primary colour)
REAL_COLOR, FAKE_COLOR = "#22c55e", "#e879f9"
RUN_COLORS = ("#f97316", "#38bdf8", "#22c55e", "#e879f9", "#facc15", "#f87171", "#a78bfa", "#2dd4bf")
MAX_POINTS = 2000


def ema(values: Sequence[float], smoothing: float) -> list[float]:
    """Bias-corrected exponential moving average (TensorBoard's slider): 0 = raw values, 0.99 = very smooth."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    out, acc, weight = [], 0.0, 0.0
    for v in values:
        if not math.isfinite(v):  # a diverged point must not poison every later one
            out.append(out[-1] if out else v)
            continue
        acc = smoothing * acc + (1 - smoothing) * v
        weight = smoothing * weight + (1 - smoothing)
        out.append(acc / weight)
    return out


def downsample(rows: Rows, max_points: int = MAX_POINTS) -> list[Mapping[str, Any]]:
    """At most `max_points` rows, evenly spaced, always keeping the newest (a browser draws 2000 points fast)."""
    n = len(rows)
    if n <= max_points:
        return list(rows)
    stride = math.ceil(n / max_points)
    picked = list(rows[::stride])
    if picked[-1] is not rows[-1]:
        picked.append(rows[-1])
    return picked


def _layout(fig: go.Figure, title: str, y_title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01), height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="step", yaxis_title=y_title, hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
                      uirevision="keep")  # keep the user's zoom while live updates redraw the chart
    return fig


def _pair(fig: go.Figure, rows: Rows, key: str, name: str, color: str, smoothing: float,
          dash: str | None = None, raw: bool = True) -> None:
    """The raw series faint, its EMA bold, both under one legend entry."""
    steps = [r["step"] for r in rows]
    values = [float(r[key]) for r in rows]
    if raw and smoothing > 0:
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=f"{name} (raw)", legendgroup=name,
                                 showlegend=False, hoverinfo="skip", opacity=0.25,
                                 line=dict(color=color, width=1, dash=dash)))
    fig.add_trace(go.Scatter(x=steps, y=ema(values, smoothing), mode="lines", name=name, legendgroup=name,
                             line=dict(color=color, width=2, dash=dash)))


def loss_figure(rows: Rows, smoothing: float = 0.6) -> go.Figure:
    """D and G loss against step, raw (faint) and EMA-smoothed."""
    rows = downsample(rows)
    fig = go.Figure()
    _pair(fig, rows, "d_loss", "D loss", D_COLOR, smoothing)
    _pair(fig, rows, "g_loss", "G loss", G_COLOR, smoothing)
    return _layout(fig, "Losses", "loss")


def d_output_figure(rows: Rows, smoothing: float = 0.6) -> go.Figure:
    """Mean D(x) on real and D(G(z)) on fake images, as probabilities in [0, 1]."""
    rows = downsample(rows)
    fig = go.Figure()
    _pair(fig, rows, "d_real", "D(x)", REAL_COLOR, smoothing)
    _pair(fig, rows, "d_fake", "D(G(z))", FAKE_COLOR, smoothing)
    fig.add_hline(y=0.5, line=dict(color="gray", width=1, dash="dot"))
    fig = _layout(fig, "Discriminator outputs", "probability")
    fig.update_yaxes(range=[0, 1])
    return fig


def speed_figure(rows: Rows, smoothing: float = 0.6) -> go.Figure:
    """Training throughput in images per second."""
    rows = downsample(rows)
    fig = go.Figure()
    _pair(fig, rows, "images_per_sec", "images/s", "#a3a3a3", smoothing)
    fig = _layout(fig, "Throughput", "images/s", height=260)
    fig.update_yaxes(tickformat=",.0f")  # a steady rate otherwise gets ticks like 999.99999999
    return fig


def compare_figure(series: Mapping[str, Rows], smoothing: float = 0.6) -> go.Figure:
    """Several runs' losses on one chart: one colour per run, G solid, D dashed, EMA-smoothed."""
    fig = go.Figure()
    for i, (label, rows) in enumerate(series.items()):
        label = html.escape(label)  # run names are user text; Plotly renders <a>, <b>… tags in trace names
        rows = downsample(rows)
        color = RUN_COLORS[i % len(RUN_COLORS)]
        _pair(fig, rows, "g_loss", f"{label} · G", color, smoothing, raw=False)
        _pair(fig, rows, "d_loss", f"{label} · D", color, smoothing, dash="dash", raw=False)
    return _layout(fig, "Losses (G solid, D dashed)", "loss", height=420)


def point_count(fig: go.Figure) -> int:
    """Points in the figure's longest trace (what a live chart has drawn so far)."""
    return max((len(t.x) for t in fig.data if t.x is not None), default=0)


def quality_figure(series: Mapping[str, Rows], floor: Mapping[str, Any] | None = None) -> go.Figure:
    """Fréchet distance (left axis, log) and Inception Score (right axis) per epoch, one colour per run;
    dotted lines mark real test data's values, the floor to compare with."""
    fig = go.Figure()
    for i, (label, rows) in enumerate(series.items()):
        label = html.escape(label)  # user text, see compare_figure
        color = RUN_COLORS[i % len(RUN_COLORS)]
        epochs = [r["epoch"] for r in rows]
        fig.add_trace(go.Scatter(x=epochs, y=[r["fd"] for r in rows], mode="lines+markers", name=f"{label} · FD",
                                 line=dict(color=color, width=2)))
        fig.add_trace(go.Scatter(x=epochs, y=[r["inception_score"] for r in rows], mode="lines+markers",
                                 name=f"{label} · IS", yaxis="y2", line=dict(color=color, width=2, dash="dash")))
    seen = sorted({r["epoch"] for rows in series.values() for r in rows})  # every run's epochs together
    if floor and seen:
        # Traces, not add_hline: plotly.js places shapes on a log axis in log10 units, so a shape at FD 7.6 lands at
        # 10^7.6 and stretches the autorange to millions.
        span = [seen[0], seen[-1]] if len(seen) > 1 else [seen[0] - 0.5, seen[0] + 0.5]  # never a dot
        for key, name, axis in (("fd", "real data · FD", "y"), ("inception_score", "real data · IS", "y2")):
            fig.add_trace(go.Scatter(x=span, y=[floor[key]] * 2, mode="lines", name=name, yaxis=axis,
                                     line=dict(color="gray", width=1, dash="dot"), hoverinfo="skip"))
    fig = _layout(fig, "Quality (FD lower is better, IS higher)", "Fréchet distance", height=380)
    # Two entries per run plus the floor: above the plot they ran into the title, so they go below the axis.
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0),
                      margin=dict(l=10, r=10, t=40, b=10), xaxis=dict(title="epoch", dtick=1 if len(seen) <= 15 else None), hovermode="x unified",
                      yaxis=dict(type="log"), yaxis2=dict(title="Inception Score", overlaying="y", side="right",
                                                          range=[1, 10.5], showgrid=False, tickmode="linear",
                                                          dtick=1))
    return fig
