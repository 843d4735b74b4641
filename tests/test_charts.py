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


def test_quality_figure_plots_fd_and_is_side_by_side_each_with_its_labelled_floor():
    from gan_core.charts import quality_figure
    rows = [{"epoch": e, "fd": 100.0 / e, "inception_score": 1 + e} for e in (1, 2, 3)]
    fig = quality_figure({"#1": rows, "#2": rows[:2]}, floor={"fd": 2.0, "inception_score": 9.8})
    names = [t.name for t in fig.data]
    assert names == ["#1 · FD", "#2 · FD", "real data · FD", "#1 · IS", "#2 · IS", "real data · IS"]
    assert list(fig.data[0].y) == [100.0, 50.0, 100.0 / 3] and fig.data[3].yaxis == "y2"
    # The floor lines span every epoch at the real values, in data units (no shapes: a log axis reads those in log10),
    # each on its own chart, in a style no run has, with its value written beside it.
    fd_floor, is_floor = fig.data[2], fig.data[5]
    assert list(fd_floor.x) == [1, 3] and list(fd_floor.y) == [2.0, 2.0] and fd_floor.yaxis == "y"
    assert list(is_floor.y) == [9.8, 9.8] and is_floor.yaxis == "y2"
    assert fd_floor.line.dash == "dashdot" and fd_floor.line.color not in charts.RUN_COLORS
    assert "real data 2" in fd_floor.text[-1] and "real data 9.8" in is_floor.text[-1]
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type != "log" and not fig.layout.shapes
    assert list(fig.layout.yaxis.ticktext) == ["2", "5", "10", "20", "50", "100"]


def test_fd_and_is_are_two_small_charts():
    rows = [{"epoch": e, "fd": 600.0 / e ** 2, "inception_score": 1 + e} for e in (1, 2, 3, 4)]
    fd = charts.fd_figure({"#1": rows}, {"fd": 7.6, "inception_score": 9.8})
    is_ = charts.is_figure({"#1": rows}, {"fd": 7.6, "inception_score": 9.8})
    assert [t.name for t in fd.data] == ["#1 · FD", "real data · FD"] and fd.layout.yaxis.type == "log"
    assert [t.name for t in is_.data] == ["#1 · IS", "real data · IS"] and tuple(is_.layout.yaxis.range) == (0.5, 10.5)
    assert fd.layout.title.text == "FD (lower is better)" and is_.layout.title.text == "IS (higher is better)"
    assert fd.layout.yaxis.title.text == "Fréchet distance" and is_.layout.yaxis.title.text == "Inception Score"
    # Readable log ticks: increasing, written out in full; never "1000, 5, 2, 100"
    assert list(fd.layout.yaxis.ticktext) == ["10", "20", "50", "100", "200", "500"]
    assert list(fd.layout.yaxis.tickvals) == sorted(fd.layout.yaxis.tickvals)
    assert charts.fd_figure({"#1": rows}).data[-1].name == "#1 · FD"  # no floor without real data


@pytest.mark.parametrize("values,expected", [
    ([3000.0, 4.0], ["10", "30", "100", "300", "1,000", "3,000"]),
    ([7.0, 8.0], ["5", "10"]),
    ([0.3, 0.9], ["0.5", "1"]),
    ([], []),
])
def test_log_ticks(values, expected):
    assert charts.log_ticks(values)[1] == expected


def test_legends_sit_below_the_plot_where_the_toolbar_cannot_cover_them():
    for fig in (charts.loss_figure(rows(20)), charts.d_output_figure(rows(20)), charts.speed_figure(rows(20)),
                charts.compare_figure({"#1": rows(20)}), charts.quality_figure({"#1": [{"epoch": 1, "fd": 9.0,
                                                                                        "inception_score": 2.0}]})):
        assert fig.layout.legend.y < 0 and fig.layout.legend.yanchor == "top"


def test_loss_figure_log_scale_and_wall_clock_axis():
    r = rows(30)
    for row in r:  # three stored batches, 2 s apart, of 10 steps each
        row["created_at"] = 1000.0 + 2.0 * ((row["step"] - 1) // 10 + 1)
    fig = charts.loss_figure(r, 0.0, log_y=True, x="time")
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.title.text == "seconds since start"
    xs = list(fig.data[0].x)
    assert xs[0] == 0 and xs == sorted(xs) and len(set(xs)) == 30  # spread within a batch, not stacked
    assert xs[9] == pytest.approx(1.8) and xs[-1] == pytest.approx(5.8)
    assert charts.d_output_figure(r, x="time").layout.xaxis.title.text == "seconds since start"
    assert charts.speed_figure(r, x="step").layout.xaxis.title.text == "step"
    long = [dict(row, created_at=row["step"] * 60.0) for row in r]
    assert charts.loss_figure(long, x="time").layout.xaxis.title.text == "minutes since start"
    with pytest.raises(ValueError):
        charts.loss_figure(r, x="epoch")
