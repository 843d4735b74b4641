"""Plotly figures for the dashboard, and the smoothing behind them. No Streamlit here: pages only place figures.

Metric rows are the dicts `Store.step_metrics` returns (step, epoch, d_loss, g_loss, d_real, d_fake,
images_per_sec).
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

Rows = Sequence[Mapping[str, Any]]
D_COLOR, G_COLOR = "#38bdf8", "#f97316"          # D blue, G orange (the theme's primary colour)
REAL_COLOR, FAKE_COLOR = "#22c55e", "#e879f9"
RUN_COLORS = ("#f97316", "#38bdf8", "#22c55e", "#e879f9", "#facc15", "#f87171", "#a78bfa", "#2dd4bf")
MAX_POINTS = 2000


def ema(values: Sequence[float] | np.ndarray, smoothing: float) -> list[float]:
    """Bias-corrected exponential moving average (TensorBoard's slider): 0 = raw values, 0.99 = very smooth."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    out: list[float] = []
    acc, weight = 0.0, 0.0
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


def _layout(fig: go.Figure, title: str, y_title: str, height: int = 320, x_title: str = "step") -> go.Figure:
    # The legend goes below the axis: at the top right, Plotly's toolbar (modebar) covered it.
    # 14 px titles: Plotly never wraps a title, and at the default 17 px "Fréchet distance (lower is better)" was cut
    # in a half-width column of an 800 px window.
    fig.update_layout(title=dict(text=title, x=0.01, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title=x_title, yaxis_title=y_title, hovermode="x unified",
                      legend=LEGEND_BELOW, uirevision="keep")  # keep the user's zoom while live updates redraw
    return fig


LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0)
X_AXES = ("step", "time")  # what the step charts put on x: the step, or wall-clock time since the first metric


def elapsed(rows: Rows) -> list[float]:
    """Seconds since the run's first metric row, per row. Rows are stored in batches that share one `created_at`
    (the worker writes every ~2 s), so the steps between two batch times are spread evenly between them."""
    if not rows:
        return []
    anchors: list[tuple[int, float]] = []  # (last step of a batch, its time)
    for r in rows:
        t = float(r.get("created_at") or 0.0)
        if anchors and anchors[-1][1] == t:
            anchors[-1] = (r["step"], t)
        else:
            anchors.append((r["step"], t))
    out, i = [], 0
    for r in rows:
        s = r["step"]
        while i < len(anchors) - 1 and anchors[i][0] < s:
            i += 1
        s1, t1 = anchors[i]
        if i > 0:
            s0, t0 = anchors[i - 1]
        elif len(anchors) > 1:  # the first batch: at the rate of the next one
            s0, t0 = s1 - (anchors[1][0] - s1), t1 - (anchors[1][1] - t1)
        else:
            s0, t0 = s1, t1
        out.append(t1 - (s1 - s) / (s1 - s0) * (t1 - t0) if s1 > s0 else t1)
    start = min(out)
    return [t - start for t in out]


def _x(rows: Rows, x: str) -> tuple[list[float], str]:
    """The x values of step rows and the axis title: steps, or time since start in seconds or minutes."""
    if x not in X_AXES:
        raise ValueError(f"x must be one of {X_AXES}, got {x!r}")
    if x == "step":
        return [r["step"] for r in rows], "step"
    secs = elapsed(rows)
    if secs and secs[-1] > 600:
        return [v / 60 for v in secs], "minutes since start"
    return secs, "seconds since start"


def _pair(fig: go.Figure, rows: Rows, key: str, name: str, color: str, smoothing: float,
          dash: str | None = None, raw: bool = True, steps: Sequence[float] | None = None) -> None:
    """The raw series faint, its EMA bold, both under one legend entry (x: `steps`, default the step)."""
    # numpy arrays, not lists: Plotly validates and deep-copies a list element by element (0.27 s for a two-trace
    # chart of 1000 points), an array at once; ten viewers rebuild every chart every 2 s.
    xs = np.asarray([r["step"] for r in rows] if steps is None else steps, dtype=float)
    values = np.asarray([r[key] for r in rows], dtype=float)
    if raw and smoothing > 0:
        fig.add_trace(go.Scatter(x=xs, y=values, mode="lines", name=f"{name} (raw)", legendgroup=name,
                                 showlegend=False, hoverinfo="skip", opacity=0.25,
                                 line=dict(color=color, width=1, dash=dash)))
    fig.add_trace(go.Scatter(x=xs, y=np.asarray(ema(values, smoothing)), mode="lines", name=name, legendgroup=name,
                             line=dict(color=color, width=2, dash=dash)))


def loss_figure(rows: Rows, smoothing: float = 0.6, log_y: bool = False, x: str = "step") -> go.Figure:
    """D and G loss against step (or time since start), raw (faint) and EMA-smoothed; `log_y` for a log scale
    (a loss at or below 0, as a WGAN or hinge critic has, cannot be drawn on it)."""
    rows = downsample(rows)
    xs, x_title = _x(rows, x)
    fig = go.Figure()
    _pair(fig, rows, "d_loss", "D loss", D_COLOR, smoothing, steps=xs)
    _pair(fig, rows, "g_loss", "G loss", G_COLOR, smoothing, steps=xs)
    fig = _layout(fig, "Losses" + (" (log scale)" if log_y else ""), "loss", x_title=x_title)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def d_output_figure(rows: Rows, smoothing: float = 0.6, x: str = "step") -> go.Figure:
    """Mean D(x) on real and D(G(z)) on fake images, as probabilities in [0, 1]."""
    rows = downsample(rows)
    xs, x_title = _x(rows, x)
    fig = go.Figure()
    _pair(fig, rows, "d_real", "D(x)", REAL_COLOR, smoothing, steps=xs)
    _pair(fig, rows, "d_fake", "D(G(z))", FAKE_COLOR, smoothing, steps=xs)
    fig.add_hline(y=0.5, line=dict(color="gray", width=1, dash="dot"))
    fig = _layout(fig, "Discriminator outputs", "probability", x_title=x_title)
    fig.update_yaxes(range=[0, 1])
    return fig


def speed_figure(rows: Rows, smoothing: float = 0.6, x: str = "step") -> go.Figure:
    """Training throughput in images per second."""
    rows = downsample(rows)
    xs, x_title = _x(rows, x)
    fig = go.Figure()
    _pair(fig, rows, "images_per_sec", "images/s", "#a3a3a3", smoothing, steps=xs)
    fig = _layout(fig, "Throughput", "images/s", height=260, x_title=x_title)
    fig.update_yaxes(tickformat=",.0f")  # a steady rate otherwise gets ticks like 999.99999999
    rates = [r["images_per_sec"] for r in rows if math.isfinite(r["images_per_sec"])]
    if rates and max(rates) - min(rates) < 0.01 * max(abs(max(rates)), 1.0):
        # a flat rate: autorange zoomed into the EMA's 1e-13 rounding and drew it as a saw between two ticks
        mid = (max(rates) + min(rates)) / 2
        fig.update_yaxes(range=[mid * 0.9, mid * 1.1 + 1])
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


FLOOR_COLOR = "#94a3b8"  # slate: the real-data line, drawn dash-dot and thicker, unlike any run's line
QUALITY = {"fd": ("Fréchet distance", "FD", "lower is better"), "inception_score": ("Inception Score", "IS",
                                                                                       "higher is better")}


def log_ticks(values: Sequence[float]) -> tuple[list[float], list[str]]:
    """Tick positions and labels for a log axis over `values`: 1-2-5 steps of each decade (only powers of ten when
    that makes too many), written out in full ("1,000", "0.5"), so a log axis never reads "1000, 5, 2, 100"."""
    vals = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not vals:
        return [], []
    lo, hi = min(vals), max(vals)
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if sum(lo <= m * 10.0 ** k <= hi for k in range(k0, k1 + 1) for m in (1, 2, 5)) < 2:
        # A narrow band (FDs of 799.9..800.4): fewer than two 1-2-5 ticks inside it. Ticks outside the data lie
        # outside the axis too (Plotly's autorange follows the data, not the ticks), which left such a chart with
        # one label or none; on so short a span a log axis is as good as linear, so round linear steps.
        return band_ticks(lo, hi)
    for mults in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0 ** k for k in range(k0, k1 + 1) for m in mults]
        inside = [t for t in ticks if lo / 1.2 <= t <= hi * 1.2]
        if len(inside) <= 7:
            break
    return inside, [f"{t:,.0f}" if t >= 1 else f"{t:g}" for t in inside]


def band_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Two to six round ticks (steps of 1, 2 or 5 × 10^k) inside lo..hi, labelled with the decimals their step needs
    ('799.9', '800.0', …); the value itself, to four significant digits, when lo == hi."""
    if not hi > lo:
        return [lo], [f"{lo:,.4g}" if lo < 1e4 else f"{lo:,.0f}"]
    raw = (hi - lo) / 5  # a step at least this long gives 2..6 ticks inside the band
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    ticks = [round(k * step, decimals + 3) for k in range(first, last + 1)]
    return ticks, [f"{t:,.{decimals}f}" for t in ticks]


def _quality_traces(fig: go.Figure, series: Mapping[str, Rows], key: str, floor: Mapping[str, Any] | None,
                    **where: Any) -> tuple[list[float], list[Any]]:
    """Each run's `key` per epoch, one colour per run, and real data's value as a labelled floor line; returns the
    y values drawn and the epochs seen."""
    ys: list[float] = []
    for i, (label, rows) in enumerate(series.items()):
        label = html.escape(label)  # run names are user text, see compare_figure
        color = RUN_COLORS[i % len(RUN_COLORS)]
        y = [r[key] for r in rows]
        ys += y
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in rows], y=y, mode="lines+markers",
                                 name=f"{label} · {QUALITY[key][1]}", line=dict(color=color, width=2),
                                 legendgroup=label), **where)
    seen = sorted({r["epoch"] for rows in series.values() for r in rows})  # every run's epochs together
    if floor and seen and floor.get(key) is not None:
        # A trace, not add_hline: plotly.js places shapes on a log axis in log10 units, so a shape at FD 7.6 lands
        # at 10^7.6 and stretches the autorange to millions.
        span = [seen[0], seen[-1]] if len(seen) > 1 else [seen[0] - 0.5, seen[0] + 0.5]  # never a dot
        fig.add_trace(go.Scatter(x=span, y=[floor[key]] * 2, mode="lines+text",
                                 name=f"real data · {QUALITY[key][1]}",
                                 text=["", f"real data {floor[key]:.3g}"], textposition="top left",
                                 textfont=dict(color=FLOOR_COLOR, size=11),
                                 line=dict(color=FLOOR_COLOR, width=2, dash="dashdot"), hoverinfo="skip"), **where)
        ys.append(floor[key])
    return ys, seen


def _quality_one(series: Mapping[str, Rows], floor: Mapping[str, Any] | None, key: str) -> go.Figure:
    fig = go.Figure()
    ys, seen = _quality_traces(fig, series, key, floor)
    title, short, better = QUALITY[key]
    # The short name in the title, the long one on the y axis: Plotly never wraps a title, and in a third of an
    # 800 px window "Fréchet distance (lower is better)" was cut after "lower is".
    fig = _layout(fig, f"{short} ({better})", title, height=300, x_title="epoch")
    fig.update_xaxes(dtick=1 if len(seen) <= 15 else None)
    if key == "fd" or (key == "kid" and ys and min(ys) > 0):  # KID's unbiased estimate can dip below 0: linear then
        vals, text = log_ticks(ys)
        fig.update_yaxes(type="log", tickvals=vals, ticktext=text)
    elif key == "kid":
        fig.update_yaxes(rangemode="tozero")
    else:
        fig.update_yaxes(range=[0.5, 10.5], tickmode="linear", dtick=1)  # IS on 10 classes lies in 1..10
    return fig


def fd_figure(series: Mapping[str, Rows], floor: Mapping[str, Any] | None = None) -> go.Figure:
    """Fréchet distance per epoch (log axis with readable ticks), one colour per run, real data's FD labelled."""
    return _quality_one(series, floor, "fd")


def is_figure(series: Mapping[str, Rows], floor: Mapping[str, Any] | None = None) -> go.Figure:
    """Inception Score per epoch (1..10), one colour per run, real data's IS labelled."""
    return _quality_one(series, floor, "inception_score")


def quality_figure(series: Mapping[str, Rows], floor: Mapping[str, Any] | None = None) -> go.Figure:
    """Fréchet distance (left, log) and Inception Score (right) per epoch as two side-by-side charts in one figure,
    one colour per run, each with real data's value as its own labelled floor line."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("Fréchet distance (lower is better)", "Inception Score (higher is better)"))
    fd, seen = _quality_traces(fig, series, "fd", floor, row=1, col=1)
    _quality_traces(fig, series, "inception_score", floor, row=1, col=2)
    fig.update_layout(title=dict(text="Quality", x=0.01), height=380, margin=dict(l=10, r=10, t=60, b=10),
                      hovermode="x unified", legend=LEGEND_BELOW, uirevision="keep")
    vals, text = log_ticks(fd)
    fig.update_xaxes(title="epoch", dtick=1 if len(seen) <= 15 else None)
    fig.update_yaxes(type="log", tickvals=vals, ticktext=text, title="FD", row=1, col=1)
    fig.update_yaxes(range=[0.5, 10.5], tickmode="linear", dtick=1, title="IS", row=1, col=2)
    return fig


# --- fidelity vs diversity, KID, the best epoch, per-class numbers, training health ------------------------------
QUALITY["kid"] = ("Kernel inception distance", "KID", "lower is better")
# key: (legend name, colour). Realism says "looks real" (garbage scores 0); recall and coverage say "varied";
# precision and density are the papers' k-NN numbers, which a few wide real balls let blank images pass.
FIDELITY_DIVERSITY = {
    "realism": ("realism", "#ef4444"), "precision": ("precision", "#f97316"), "recall": ("recall", "#38bdf8"),
    "density": ("density", "#facc15"), "coverage": ("coverage", "#22c55e")}


def has_key(rows: Rows, key: str) -> bool:
    """Whether any row holds a number under `key` (rows scored before KID and precision/recall were measured have
    none of these keys)."""
    return any(r.get(key) is not None for r in rows)


def same_n(rows: Rows) -> tuple[list[Mapping[str, Any]], list[int]]:
    """The quality rows scored with the newest row's sample count, and the epochs left out for another count:
    precision, recall, coverage and KID move with n, so one line never mixes counts."""
    if not rows:
        return [], []
    n = rows[-1].get("n")
    kept = [r for r in rows if r.get("n") == n]
    return kept, [r["epoch"] for r in rows if r.get("n") != n]


def floor_matches(rows: Rows, floor: Mapping[str, Any] | None) -> bool:
    """Whether `floor` was measured with the sample count of the newest row (only then are they comparable)."""
    return bool(floor and rows and floor.get("n") is not None and floor.get("n") == rows[-1].get("n"))


def best_row(rows: Rows) -> Mapping[str, Any] | None:
    """The epoch whose generator best-generator.safetensors holds: the newest row marked best (each new best FD
    is marked), or None for rows stored before the mark existed."""
    marked = [r for r in rows if r.get("best")]
    return marked[-1] if marked else None


def fidelity_diversity_figure(rows: Rows, floor: Mapping[str, Any] | None = None) -> go.Figure:
    """Realism, precision, recall, density and coverage per epoch (higher is better), each with real data's value as
    a dashed line in its colour when `floor` was measured with the same sample count. Old rows: no traces."""
    rows, _ = same_n(rows)
    fig = go.Figure()
    epochs = [r["epoch"] for r in rows]
    top = 0.0
    comparable = floor_matches(rows, floor)
    for key, (name, color) in FIDELITY_DIVERSITY.items():
        pts = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
        if not pts:
            continue
        fig.add_trace(go.Scatter(x=[e for e, _ in pts], y=[v for _, v in pts], mode="lines+markers", name=name,
                                 legendgroup=key, line=dict(color=color, width=2)))
        top = max(top, *(v for _, v in pts))
        if comparable and floor.get(key) is not None:  # type: ignore[union-attr]
            real = float(floor[key])  # type: ignore[index]
            span = [epochs[0], epochs[-1]] if epochs[0] != epochs[-1] else [epochs[0] - 0.5, epochs[0] + 0.5]
            fig.add_trace(go.Scatter(x=span, y=[real, real], mode="lines", name=f"real {name} {real:.2f}",
                                     legendgroup=key, hoverinfo="name",
                                     line=dict(color=color, width=1.5, dash="dash")))
            top = max(top, real)
    fig = _layout(fig, "Fidelity vs diversity (higher is better)", "score", height=340,
                  x_title="epoch")
    # 0 to just above 1, or above the highest density (density counts real balls around a sample and can pass 1)
    fig.update_yaxes(range=[0, max(1.05, top * 1.08)])
    fig.update_xaxes(dtick=1 if len(epochs) <= 15 else None)
    return fig


def kid_figure(series: Mapping[str, Rows], floor: Mapping[str, Any] | None = None) -> go.Figure:
    """Kernel inception distance per epoch (lower is better; log axis while every value is positive), one colour per
    run, real data's KID labelled; rows without KID are skipped."""
    series = {k: [r for r in rows if r.get("kid") is not None] for k, rows in series.items()}
    return _quality_one({k: v for k, v in series.items() if v}, floor, "kid")


def mark_best(fig: go.Figure, rows: Rows) -> Mapping[str, Any] | None:
    """Add a star at the best-FD epoch (best_row) to an FD figure; returns that row, or None when none is marked."""
    best = best_row(rows)
    if best is not None and best.get("fd") is not None:
        fig.add_trace(go.Scatter(x=[best["epoch"]], y=[best["fd"]], mode="markers",
                                 name=f"best FD {best['fd']:.3g} (epoch {best['epoch']})",
                                 marker=dict(symbol="star", size=16, color="#facc15",
                                             line=dict(color="#0f172a", width=1))))
    return best


def health_figure(rows: Rows, smoothing: float = 0.6, x: str = "step") -> go.Figure:
    """G's and D's gradient norms (log axis) against step or time, and D's largest spectral σ on a second axis when
    spectral_norm logged it; rows without these numbers (logged before gradient norms were) are
    skipped."""
    rows = downsample([r for r in rows if r.get("d_grad_norm") is not None or r.get("g_grad_norm") is not None])
    fig = go.Figure()
    for key, name, color in (("d_grad_norm", "D grad norm", D_COLOR), ("g_grad_norm", "G grad norm", G_COLOR)):
        part = [r for r in rows if r.get(key) is not None and r[key] > 0]  # a log axis draws no 0
        if part:
            _pair(fig, part, key, name, color, smoothing, steps=_x(part, x)[0])
    sigma = [r for r in rows if r.get("d_sigma") is not None]
    if sigma:
        fig.add_trace(go.Scatter(x=np.asarray(_x(sigma, x)[0], dtype=float),
                                 y=np.asarray([r["d_sigma"] for r in sigma], dtype=float), mode="lines",
                                 name="D σ (right axis)", yaxis="y2", line=dict(color="#a78bfa", width=2,
                                                                                   dash="dot")))
        # No axis title (the legend names it: a second title squeezed the plot to 70 px in half an 800 px window);
        # tickmode auto, since plotly.js syncs an overlaying axis's ticks to the log grid (σ ticks 0.996, 1.39…).
        fig.update_layout(yaxis2=dict(overlaying="y", side="right", showgrid=False, tickmode="auto", nticks=5,
                                      tickformat=".2~f", rangemode="tozero"))
    fig = _layout(fig, "Training health", "gradient norm (log)",
                  x_title=_x(rows, x)[1] if rows else x)
    # norms span decades (a D that wins drives G's gradient down 100×); ticks written out, never "2, 1, 5, 2, 0.1"
    vals, text = log_ticks([v for t in fig.data if t.yaxis in (None, "y") for v in t.y])
    fig.update_layout(yaxis={"type": "log", "tickvals": vals, "ticktext": text})
    return fig


def per_class_table(last: Mapping[str, Any], floor: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per digit of a conditional run's newest epoch: its recall, coverage, precision and FD within the
    class beside real data's (same sample count only), and a flag where recall is far below real (little variety in
    that class). [] for rows without per-class numbers."""
    from ..metrics import CLASS_RECALL_GAP

    mine = last.get("per_class") or []
    real = (floor or {}).get("per_class") if floor_matches([last], floor) else None
    right = last.get("fidelity_per_class") or []
    out = []
    for c, m in enumerate(mine):
        r = real[c] if real and c < len(real) else {}
        thin = (m.get("recall") is not None and r.get("recall") is not None
                and m["recall"] < r["recall"] - CLASS_RECALL_GAP)
        # the note second: at 800 px the last columns scroll out of sight, and it is what the table is for
        row: dict[str, Any] = {"digit": c, "note": ("too few samples" if m.get("recall") is None else
                                                    f"low variety (recall −{r['recall'] - m['recall']:.2f})"
                                                    if thin else "")}
        for key, name in (("recall", "recall"), ("coverage", "coverage"), ("precision", "precision"), ("fd", "FD")):
            row[name] = m.get(key)
            if real:
                row[f"real {name}"] = r.get(key)
        if c < len(right):
            row["right class"] = right[c]
        row["samples"] = int(m.get("n", 0))
        out.append(row)
    return out


def fidelity_scatter(points: Mapping[str, Mapping[str, Any]], floor: Mapping[str, Any] | None = None) -> go.Figure:
    """Precision (x) against recall (y) of each run's newest epoch, one colour per run, and real data's point:
    up-right is better; runs scored with another sample count than the floor's must not be passed together."""
    fig = go.Figure()
    for i, (label, row) in enumerate(points.items()):
        if row.get("precision") is None or row.get("recall") is None:
            continue
        label = html.escape(label)
        fig.add_trace(go.Scatter(x=[row["precision"]], y=[row["recall"]], mode="markers+text", name=label,
                                 text=[label], textposition="top center",
                                 marker=dict(size=13, color=RUN_COLORS[i % len(RUN_COLORS)])))
    if floor and floor.get("precision") is not None and floor.get("recall") is not None:
        fig.add_trace(go.Scatter(x=[floor["precision"]], y=[floor["recall"]], mode="markers+text",
                                 name="real data", text=["real data"], textposition="bottom center",
                                 marker=dict(size=14, symbol="diamond", color=FLOOR_COLOR)))
    fig = _layout(fig, "Precision vs recall, newest epoch (up-right is better)", "recall (variety)", height=360,
                  x_title="precision (inside any real k-NN ball)")
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(range=[0, 1.05])
    fig.update_yaxes(range=[0, 1.05])
    return fig


SUMMARY_FORMATS = {"FD": "%.1f", "best FD": "%.1f", "IS": "%.2f", "KID": "%.1f", "realism": "%.2f", "precision": "%.2f",
                   "recall": "%.2f", "coverage": "%.2f"}


def quality_summary(quality: Mapping[str, Rows]) -> list[dict[str, Any]]:
    """One row per run for Compare: its newest epoch's n, FD, IS, KID, realism, precision, recall and coverage (None
    where the row predates them), and its best FD with that epoch."""
    out = []
    for label, rows in quality.items():
        if not rows:
            continue
        last = rows[-1]
        best = min((r for r in rows if r.get("fd") is not None and r["fd"] == r["fd"]), key=lambda r: r["fd"],
                   default=None)
        out.append({"run": label, "epoch": last["epoch"], "n": int(last["n"]), "FD": last.get("fd"),
                    "best FD": best["fd"] if best else None, "best epoch": best["epoch"] if best else None,
                    "IS": last.get("inception_score"), "KID": last.get("kid"), "realism": last.get("realism"),
                    "precision": last.get("precision"),
                    "recall": last.get("recall"), "coverage": last.get("coverage")})
    return out


def group_by_n(quality: Mapping[Any, Rows]) -> dict[int, list[Any]]:
    """Runs (keys) with quality rows grouped by their newest row's sample count, the most common count first."""
    groups: dict[int, list[Any]] = {}
    for key, rows in quality.items():
        if rows:
            groups.setdefault(int(rows[-1]["n"]), []).append(key)
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


def parallel_figure(rows: Sequence[Mapping[str, Any]], fields: Sequence[str], metric: str,
                    lower_better: bool) -> go.Figure:
    """A sweep's runs as lines across one axis per swept field and a last axis for `metric`, coloured by it (the
    best runs brightest). `rows` are {field: value, ..., metric: number or None}; runs without a score are left
    out. Text and list values get one tick per distinct value."""
    scored = [r for r in rows if isinstance(r.get(metric), (int, float)) and r[metric] == r[metric]]
    dims = []
    for name in fields:
        values = [r[name] for r in scored]
        if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dims.append(dict(label=name, values=values))
        else:
            # categories in first-seen order; strings shown as they are typed ("256, 512" for a width list)
            cats = list(dict.fromkeys(_category(v) for v in values))
            dims.append(dict(label=name, values=[cats.index(_category(v)) for v in values],
                             tickvals=list(range(len(cats))), ticktext=[html.escape(c) for c in cats]))
    scores = [r[metric] for r in scored]
    dims.append(dict(label=metric, values=scores))
    fig = go.Figure(go.Parcoords(
        line=dict(color=scores, colorscale="Viridis", reversescale=lower_better, showscale=True,
                  colorbar=dict(title=dict(text=metric))),
        dimensions=dims, labelfont=dict(size=12), tickfont=dict(size=11)))
    fig.update_layout(height=360, margin=dict(l=60, r=60, t=60, b=20),
                      title=dict(text=f"Swept fields → {metric}", x=0.01, font=dict(size=14)))
    return fig


def _category(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return str(v).lower() if isinstance(v, bool) else str(v)


def best_so_far_figure(points: Sequence[tuple[float, float]], metric: str, t0: float | None = None,
                       lower_better: bool = True) -> go.Figure:
    """The best `metric` among the sweep's finished runs over wall-clock time (minutes since `t0`), as steps."""
    t0 = t0 if t0 is not None else (points[0][0] if points else 0.0)
    fig = go.Figure(go.Scatter(x=[(t - t0) / 60 for t, _ in points], y=[b for _, b in points], mode="lines+markers",
                               line=dict(color=RUN_COLORS[0], width=2, shape="hv"), name=f"best {metric}"))
    better = "lower" if lower_better else "higher"
    return _layout(fig, f"Best so far ({metric}, {better} is better)", metric, height=300,
                   x_title="minutes since the sweep started")


def curves_figure(series: Mapping[str, Rows], key: str, title: str) -> go.Figure:
    """One quality number (`key` of the quality rows) per epoch for many runs on one chart; FD on a log axis."""
    fig = go.Figure()
    ys: list[float] = []
    for i, (label, rows) in enumerate(series.items()):
        pts = [(r["epoch"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        ys += [y for _, y in pts]
        fig.add_trace(go.Scatter(x=[e for e, _ in pts], y=[y for _, y in pts], mode="lines+markers",
                                 name=html.escape(label), line=dict(color=RUN_COLORS[i % len(RUN_COLORS)], width=2)))
    fig = _layout(fig, f"{title} of every run", title, height=340, x_title="epoch")
    if key in ("fd", "kid") and ys and min(ys) > 0:
        vals, text = log_ticks(ys)
        fig.update_yaxes(type="log", tickvals=vals, ticktext=text)
    return fig
