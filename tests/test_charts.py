import math

import plotly.graph_objects as go
import pytest

from gan_core.web import charts


def rows(n: int) -> list[dict]:
    return [dict(step=i, epoch=1 + i // 10, d_loss=1.0 + (i % 3) / 10, g_loss=2.0 - (i % 5) / 10, d_real=0.7,
                 d_fake=0.3, images_per_sec=1000.0 + i) for i in range(1, n + 1)]


def point_count(fig: go.Figure) -> int:
    """Points in the figure's longest trace (what a live chart has drawn so far)."""
    return max((len(t.x) for t in fig.data if t.x is not None), default=0)


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
    assert point_count(fig) == 50 and list(fig.data[0].x) == list(range(1, 51))
    assert len(charts.loss_figure(rows(50), smoothing=0).data) == 2  # nothing faint to draw when raw


def test_d_output_and_speed_figures():
    fig = charts.d_output_figure(rows(20))
    assert [t.name for t in fig.data if t.showlegend is not False] == ["D(x)", "D(G(z))"]
    assert tuple(fig.layout.yaxis.range) == (0, 1)
    assert point_count(charts.speed_figure(rows(20))) == 20


def test_compare_figure_one_colour_per_run():
    fig = charts.compare_figure({"#1 a": rows(30), "#2 b": rows(40)}, smoothing=0.5)
    assert [t.name for t in fig.data] == ["#1 a · G", "#1 a · D", "#2 b · G", "#2 b · D"]
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color
    assert fig.data[1].line.dash == "dash"
    assert point_count(fig) == 40


def test_empty_figures_do_not_fail():
    assert point_count(charts.loss_figure([])) == 0


def test_quality_figure_plots_fd_and_is_side_by_side_each_with_its_labelled_floor():
    from gan_core.web.charts import quality_figure
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
    ([7.0, 8.0], ["7.0", "7.2", "7.4", "7.6", "7.8", "8.0"]),  # was 5 and 10: both off the axis, no label at all
    ([0.3, 0.9], ["0.4", "0.6", "0.8"]),
    ([10.0, 500.0], ["10", "20", "50", "100", "200", "500"]),
    ([800.0], ["800"]),
    ([], []),
])
def test_log_ticks(values, expected):
    assert charts.log_ticks(values)[1] == expected


@pytest.mark.parametrize("fds", [[799.9, 800.4, 800.1], [250.0, 290.0], [799.93, 799.95], [7.0, 8.0]])
def test_fd_charts_label_a_narrow_band_with_ticks_inside_it(fds):
    """Issue 26: a sweep whose FDs all lay in 799.9..800.4 drew its FD chart with one tick label or none: the ticks
    were 500 and 1,000, outside the axis, which Plotly fits to the data. Now at least two ticks lie inside the data's
    range, every label distinct and readable."""
    rows = {f"#{i}": [{"epoch": 1, "fd": fd, "inception_score": 2.0, "n": 100}] for i, fd in enumerate(fds)}
    for fig in (charts.curves_figure(rows, "fd", "FD"), charts.fd_figure(rows)):
        axis = fig.layout.yaxis
        inside = [v for v in axis.tickvals if min(fds) <= v <= max(fds)]
        assert len(inside) >= 2 and len(set(axis.ticktext)) == len(axis.ticktext), (axis.tickvals, axis.ticktext)
        assert len(axis.tickvals) <= 7 and all(len(t) <= 8 for t in axis.ticktext)


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


# --- issue 18: fidelity vs diversity, KID, best epoch, per-class numbers, training health ---------------------
def new_rows(epochs=(1, 2, 3), n=500, **extra) -> list[dict]:
    return [dict(epoch=e, step=100 * e, n=n, fd=100.0 / e, inception_score=1.0 + e, precision=0.3 * e,
                 recall=0.2 * e, density=0.5 * e, coverage=0.1 * e, kid=90.0 / e, **extra) for e in epochs]


OLD_ROWS = [dict(epoch=e, step=100 * e, n=500, fd=100.0 / e, inception_score=1.0 + e) for e in (1, 2)]
FLOOR = dict(n=500, fd=8.0, inception_score=9.5, precision=0.94, recall=0.93, density=1.0, coverage=0.72, kid=9.0,
             per_class=[dict(n=50, precision=0.95, recall=0.9, density=1.0, coverage=0.4, fd=30.0)] * 10)


def test_fidelity_diversity_plots_four_scores_with_real_lines_only_at_the_same_n():
    fig = charts.fidelity_diversity_figure(new_rows(), FLOOR)
    names = [t.name for t in fig.data]
    assert names == ["precision", "real precision 0.94", "recall", "real recall 0.93", "density", "real density 1.00",
                     "coverage", "real coverage 0.72"]
    assert list(fig.data[0].y) == pytest.approx([0.3, 0.6, 0.9]) and list(fig.data[0].x) == [1, 2, 3]
    real_recall = fig.data[3]
    assert real_recall.line.dash == "dash" and list(real_recall.y) == [0.93, 0.93] and list(real_recall.x) == [1, 3]
    assert real_recall.line.color == fig.data[2].line.color  # a floor in its score's colour
    assert fig.layout.yaxis.range[0] == 0 and fig.layout.yaxis.range[1] >= 1.5  # density 1.5 is not cut off
    # a floor without a key draws no line for it; a floor at another sample count draws none at all
    partial = {k: v for k, v in FLOOR.items() if k != "coverage"}
    assert "real coverage 0.72" not in [t.name for t in charts.fidelity_diversity_figure(new_rows(), partial).data]
    other_n = charts.fidelity_diversity_figure(new_rows(), dict(FLOOR, n=2000))
    assert [t.name for t in other_n.data] == ["precision", "recall", "density", "coverage"]
    assert tuple(charts.fidelity_diversity_figure(new_rows(epochs=(1,))).layout.yaxis.range) == (0, 1.05)


def test_fidelity_diversity_of_old_rows_is_empty_but_valid_and_mixed_counts_keep_the_newest():
    fig = charts.fidelity_diversity_figure(OLD_ROWS, FLOOR)
    assert isinstance(fig, go.Figure) and not fig.data and fig.to_plotly_json()["layout"]["title"]["text"]
    mixed = new_rows((1, 2), n=2000) + new_rows((3, 4))
    kept, left_out = charts.same_n(mixed)
    assert [r["epoch"] for r in kept] == [3, 4] and left_out == [1, 2]
    assert list(charts.fidelity_diversity_figure(mixed, FLOOR).data[0].x) == [3, 4]
    assert charts.same_n([]) == ([], [])


def test_kid_figure_skips_rows_without_kid_and_labels_the_floor():
    fig = charts.kid_figure({"#1": OLD_ROWS + new_rows((3, 4))}, FLOOR)
    assert [t.name for t in fig.data] == ["#1 · KID", "real data · KID"]
    assert list(fig.data[0].x) == [3, 4] and list(fig.data[1].y) == [9.0, 9.0] and fig.layout.yaxis.type == "log"
    assert fig.layout.title.text == "KID (lower is better)"
    assert not charts.kid_figure({"#1": OLD_ROWS}).data
    below_zero = [dict(r, kid=v) for r, v in zip(new_rows((1, 2)), (-0.5, 3.0))]  # unbiased KID can dip below 0
    assert charts.kid_figure({"#1": below_zero}).layout.yaxis.type != "log"


def test_best_fd_is_starred_at_the_newest_marked_epoch():
    rows = new_rows((1, 2, 3, 4))
    rows[0]["best"] = rows[2]["best"] = True  # epoch 3 set the newest best; epoch 4 was worse
    rows[3]["fd"] = 80.0
    fig = charts.fd_figure({"#1": rows})
    best = charts.mark_best(fig, rows)
    assert best["epoch"] == 3
    star = fig.data[-1]
    assert star.marker.symbol == "star" and list(star.x) == [3] and list(star.y) == [pytest.approx(100 / 3)]
    assert "epoch 3" in star.name
    plain = charts.fd_figure({"#1": OLD_ROWS})
    assert charts.mark_best(plain, OLD_ROWS) is None and len(plain.data) == 1


def health_rows(n=30, sigma=True) -> list[dict]:
    return [dict(r, d_grad_norm=2.0 / r["step"], g_grad_norm=0.1 * r["step"], d_sigma=1 + r["step"] / 10
                 if sigma else None) for r in rows(n)]


def test_health_figure_draws_gradient_norms_on_a_log_axis_and_sigma_only_when_logged():
    fig = charts.health_figure(health_rows(), smoothing=0.0)
    assert [t.name for t in fig.data] == ["D grad norm", "G grad norm", "D σ (right axis)"]
    assert fig.layout.yaxis.type == "log" and fig.data[2].yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
    assert list(fig.data[0].y) == pytest.approx([2.0 / s for s in range(1, 31)])
    assert fig.layout.yaxis2.tickmode == "auto"  # not synced to the log grid's ticks
    ticks = list(fig.layout.yaxis.ticktext)
    assert ticks and [float(t.replace(",", "")) for t in ticks] == sorted(float(t.replace(",", "")) for t in ticks)
    no_sigma = charts.health_figure(health_rows(sigma=False))
    assert not any(t.yaxis == "y2" for t in no_sigma.data)
    old = charts.health_figure(rows(30))  # rows stored before issue 18: nothing to draw, and no error
    assert isinstance(old, go.Figure) and not old.data
    assert charts.health_figure(health_rows(), x="time").layout.xaxis.title.text == "seconds since start"


def test_per_class_table_flags_a_class_far_below_real_recall():
    per = [dict(n=50, precision=0.9, recall=0.8, density=1.0, coverage=0.35, fd=40.0 + c) for c in range(10)]
    per[5] = dict(per[5], recall=0.3)
    per[7] = {"n": 2}  # too few samples for the numbers
    last = dict(new_rows((3,))[0], per_class=per, fidelity_per_class=[0.9] * 10)
    table = charts.per_class_table(last, FLOOR)
    assert [r["digit"] for r in table] == list(range(10))
    assert table[5]["note"].startswith("low variety") and "0.60" in table[5]["note"]
    assert [r["digit"] for r in table if r["note"].startswith("low variety")] == [5]
    assert table[7]["note"] == "too few samples" and table[7]["recall"] is None and table[7]["samples"] == 2
    assert table[0]["real recall"] == 0.9 and table[0]["FD"] == 40.0 and table[0]["right class"] == 0.9
    other_n = charts.per_class_table(last, dict(FLOOR, n=2000))  # real data at another count: not beside it
    assert "real recall" not in other_n[0] and all(r["note"] in ("", "too few samples") for r in other_n)
    assert charts.per_class_table(OLD_ROWS[-1], FLOOR) == []


def test_fidelity_scatter_one_point_per_run_and_the_real_point():
    newest = {"#1 a": new_rows((2,))[0], "#2 <b>": new_rows((3,))[0], "#3 old": OLD_ROWS[-1]}
    fig = charts.fidelity_scatter(newest, FLOOR)
    assert [t.name for t in fig.data] == ["#1 a", "#2 &lt;b&gt;", "real data"]  # user text escaped; old run skipped
    assert (fig.data[0].x[0], fig.data[0].y[0]) == pytest.approx((0.6, 0.4))
    assert (fig.data[-1].x[0], fig.data[-1].y[0]) == (0.94, 0.93) and fig.data[-1].marker.symbol == "diamond"
    assert fig.layout.xaxis.title.text.startswith("precision") and fig.layout.yaxis.title.text.startswith("recall")
    assert [t.name for t in charts.fidelity_scatter(newest).data] == ["#1 a", "#2 &lt;b&gt;"]


def test_quality_summary_and_grouping_by_sample_count():
    rows_a = new_rows((1, 2, 3))
    summary = charts.quality_summary({"#1": rows_a, "#2": OLD_ROWS, "#3": []})
    assert [r["run"] for r in summary] == ["#1", "#2"]
    assert summary[0]["n"] == 500 and summary[0]["KID"] == 30.0 and summary[0]["recall"] == pytest.approx(0.6)
    assert summary[0]["best FD"] == pytest.approx(100 / 3) and summary[0]["best epoch"] == 3
    assert summary[1]["precision"] is None and summary[1]["KID"] is None  # old rows: blank, not an error
    groups = charts.group_by_n({1: rows_a, 2: new_rows(n=2000), 3: OLD_ROWS, 4: []})
    assert groups == {500: [1, 3], 2000: [2]}


def test_a_flat_throughput_is_drawn_flat_not_as_rounding_noise():
    flat = [dict(r, images_per_sec=2000.0) for r in rows(50)]
    lo, hi = charts.speed_figure(flat).layout.yaxis.range
    assert lo < 2000 < hi and hi - lo >= 200  # ±10 %, not the EMA's 1e-13 wobble
    assert charts.speed_figure(rows(50)).layout.yaxis.range is None  # a varying rate keeps Plotly's autorange
