import math

import plotly.graph_objects as go
import pytest

from gan_core import charts


def rows(n: int) -> list[dict]:
    return [dict(step=i, epoch=1 + i // 10, d_loss=1.0 + (i % 3) / 10, g_loss=2.0 - (i % 5) / 10, d_real=0.7,
                 d_fake=0.3, images_per_sec=1000.0 + i) for i in range(1, n + 1)]


def test_ema_zero_smoothing_is_the_raw_series():
    assert charts.ema([1.0, 5.0, 3.0], 0.0) == [1.0, 5.0, 3.0]


def test_ema_is_bias_corrected_and_smooths():
    out = charts.ema([4.0] * 5, 0.9)
    assert out == pytest.approx([4.0] * 5)  # no pull towards 0 at the start
    noisy = [0.0, 10.0] * 50
    smooth = charts.ema(noisy, 0.95)
    assert max(smooth[20:]) - min(smooth[20:]) < 3 and smooth[-1] == pytest.approx(5, abs=1.5)


def test_ema_skips_non_finite_points_and_rejects_bad_smoothing():
    out = charts.ema([1.0, math.nan, 3.0], 0.5)
    assert all(math.isfinite(v) for v in out)
    with pytest.raises(ValueError):
        charts.ema([1.0], 1.0)


def test_downsample_keeps_the_newest_point_and_caps_the_count():
    r = rows(10_001)
    d = charts.downsample(r, 2000)
    assert len(d) <= 2001 and d[0] is r[0] and d[-1] is r[-1]
    assert charts.downsample(r[:10], 2000) == r[:10]


def test_loss_figure_has_raw_and_smoothed_d_and_g():
    fig = charts.loss_figure(rows(50), smoothing=0.6)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert names == ["D loss (raw)", "D loss", "G loss (raw)", "G loss"]
    assert charts.point_count(fig) == 50 and list(fig.data[0].x) == list(range(1, 51))
    assert len(charts.loss_figure(rows(50), smoothing=0).data) == 2  # nothing faint to draw when raw


def test_d_output_and_speed_figures():
    fig = charts.d_output_figure(rows(20))
    assert [t.name for t in fig.data if t.showlegend is not False] == ["D(x)", "D(G(z))"]
    assert tuple(fig.layout.yaxis.range) == (0, 1)
    assert charts.point_count(charts.speed_figure(rows(20))) == 20


def test_compare_figure_one_colour_per_run():
    fig = charts.compare_figure({"#1 a": rows(30), "#2 b": rows(40)}, smoothing=0.5)
    assert [t.name for t in fig.data] == ["#1 a · G", "#1 a · D", "#2 b · G", "#2 b · D"]
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color
    assert fig.data[1].line.dash == "dash"
    assert charts.point_count(fig) == 40


def test_empty_figures_do_not_fail():
    assert charts.point_count(charts.loss_figure([])) == 0


def test_quality_figure_plots_fd_and_is_per_run_with_the_real_floor():
    from gan_core.charts import quality_figure
    rows = [{"epoch": e, "fd": 100.0 / e, "inception_score": 1 + e} for e in (1, 2, 3)]
    fig = quality_figure({"#1": rows, "#2": rows[:2]}, floor={"fd": 2.0, "inception_score": 9.8})
    names = [t.name for t in fig.data]
    assert names == ["#1 · FD", "#1 · IS", "#2 · FD", "#2 · IS", "real data · FD", "real data · IS"]
    assert list(fig.data[0].y) == [100.0, 50.0, 100.0 / 3] and fig.data[1].yaxis == "y2"
    # The floor lines span every epoch at the real values, in data units (no shapes: a log axis reads those in log10).
    assert list(fig.data[4].x) == [1, 3] and list(fig.data[4].y) == [2.0, 2.0] and fig.data[4].yaxis == "y"
    assert list(fig.data[5].y) == [9.8, 9.8] and fig.data[5].yaxis == "y2"
    assert fig.layout.yaxis.type == "log" and not fig.layout.shapes
