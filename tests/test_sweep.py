"""Sweeps (gan_core.runs.sweep): parsing the search space, planning and validating every point, the pruning rules
and the leaderboard; then a real sweep end to end: two workers, real FDs, median pruning, the leaderboard and clone."""
import itertools
import math
import random
import statistics
import threading

import pytest
from conftest import sqlite_only, tiny

from gan_core.config import ConfigError, TrainConfig
from gan_core.runs.sweep import (
    MAX_POINTS,
    MAX_SEEDS,
    MIN_PEERS,
    Param,
    SweepSpec,
    best_so_far,
    leaderboard,
    parse_param,
    plan,
    point_text,
    prune_verdict,
    run_metric,
    total_steps,
)


# --- parse_param -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("lr_g=1e-4,2e-4", Param("lr_g", choices=(1e-4, 2e-4))),
    (" lr_g = 1e-4 , 2e-4 ", Param("lr_g", choices=(1e-4, 2e-4))),
    ("loss=hinge,non_saturating", Param("loss", choices=("hinge", "non_saturating"))),
    ("batch_size=32,64", Param("batch_size", choices=(32, 64))),
    ("spectral_norm=true,false", Param("spectral_norm", choices=(True, False))),
    ("d_dropout=0..0.5", Param("d_dropout", lo=0.0, hi=0.5)),
    ("lr_g=1e-5..1e-3:log", Param("lr_g", lo=1e-5, hi=1e-3, log=True)),
    ("g_widths=256,512|512,1024", Param("g_widths", choices=((256, 512), (512, 1024)))),
    ("g_widths=128", Param("g_widths", choices=((128,),))),
    ("lr_g=1.2345678e-4,3e-4", Param("lr_g", choices=(1.2345678e-4, 3e-4))),  # every digit survives text()
    ("lr_g=1.2345678e-5..0.00123456789:log", Param("lr_g", lo=1.2345678e-5, hi=0.00123456789, log=True)),
])
def test_parse_param_reads_values_ranges_log_ranges_and_list_fields(text, want):
    got = parse_param(text)
    assert got == want
    assert all(type(a) is type(b) for a, b in zip(got.choices, want.choices))  # coerced: 32 is an int, not "32"
    assert parse_param(got.text()) == got  # the stored form reads back to the same Param


@pytest.mark.parametrize("text, message", [
    ("lr_g", "'lr_g' is not NAME=VALUES"),
    ("lr_g=", "is not NAME=VALUES"),
    ("=1,2", "is not NAME=VALUES"),
    ("nope=1,2", "'nope' is not a config field; known: arch,"),
    ("seed=1,2", "seed cannot be swept; set how many seeds"),
    ("device=cpu,cuda", "device cannot be swept"),
    ("lr_g=,,", "lr_g has no values"),
    ("lr_g=1e-4,1e-4", "lr_g lists a value twice"),
    ("lr_g=a..b", "lr_g range 'a..b' is not lo..hi with two numbers"),
    ("lr_g=1e-4:log", "':log' only follows a range lo..hi"),
    # Two good numbers in a bad range: the message says what is wrong with it, not "not two numbers"
    ("loss=0..1", "loss is not a number, so it takes values a,b,c, not a range"),
    ("lr_g=1e-3..1e-5", "range 0.001..1e-05 must go from a smaller to a larger finite number"),
    ("lr_g=1..inf", "must go from a smaller to a larger finite number"),
    ("lr_g=0..1:log", "lr_g log range must be above 0, got 0..1"),
])
def test_parse_param_refuses_bad_input_with_a_clear_message(text, message):
    with pytest.raises(ConfigError) as e:
        parse_param(text)
    assert message in str(e.value) and str(e.value).startswith("sweep: ")


# --- SweepSpec ---------------------------------------------------------------------------------------------------
def spec(*params: str, **kw) -> SweepSpec:
    return SweepSpec(params=tuple(parse_param(p) for p in params), **kw)


@pytest.mark.parametrize("params, kw, message", [
    (("lr_g=1e-5..1e-3",), {}, "a grid needs values, not ranges (lr_g); use random search"),
    (("lr_g=1e-4,2e-4",), {"draws": 3}, "draws are for random search"),
    (("lr_g=1e-4,2e-4", "lr_g=1e-3,2e-3"), {}, "lr_g swept twice"),
    ((), {}, "give at least one field to sweep"),
    (("lr_g=1e-4,2e-4",), {"seeds": 0}, f"seeds 0 is out of range; allowed 1 to {MAX_SEEDS}"),
    (("lr_g=1e-4,2e-4",), {"seeds": MAX_SEEDS + 1}, f"seeds {MAX_SEEDS + 1} is out of range"),
    (("lr_g=1e-4,2e-4,3e-4,4e-4,5e-4,6e-4,7e-4,8e-4", "lr_d=1e-4,2e-4,3e-4,4e-4,5e-4,6e-4,7e-4,8e-4,9e-4"), {},
     f"72 points × 1 seed(s) = 72 runs, more than the {MAX_POINTS}"),
    (("lr_g=1e-4..1e-3",), {"mode": "random", "draws": 0}, f"random search needs 1 to {MAX_POINTS} draws, got 0"),
    (("lr_g=1e-4..1e-3",), {"mode": "random", "draws": 40, "seeds": 2}, "40 points × 2 seed(s) = 80 runs"),
    (("lr_g=1e-4,2e-4",), {"mode": "bayes"}, "mode 'bayes' is not one of grid, random"),
    (("lr_g=1e-4,2e-4",), {"prune": "hyperband"}, "prune 'hyperband' is not one of none, median, asha"),
    (("lr_g=1e-4,2e-4",), {"grace": 0}, "grace must be 1 to 10,000 epochs and eta 2 to 10"),
    (("lr_g=1e-4,2e-4",), {"eta": 1}, "grace must be 1 to 10,000 epochs and eta 2 to 10"),
])
def test_spec_refuses_what_it_cannot_search(params, kw, message):
    with pytest.raises(ConfigError) as e:
        spec(*params, **kw)
    assert message in str(e.value)


def test_grid_points_are_the_full_product_in_order():
    s = spec("lr_g=1e-4,2e-4", "loss=non_saturating,hinge", "g_widths=64|32,32")
    assert s.points() == [
        {"lr_g": a, "loss": b, "g_widths": c}
        for a in (1e-4, 2e-4) for b in ("non_saturating", "hinge") for c in ((64,), (32, 32))]
    assert "grid over lr_g × loss × g_widths, 8 points × 1 seed(s), no pruning" == s.describe()
    assert SweepSpec.from_dict(s.to_dict()) == s  # what the store keeps plans the same points again


def test_random_points_are_reproducible_from_draw_seed_and_inside_their_ranges():
    s = spec("lr_g=1e-5..1e-1:log", "d_dropout=0.1..0.5", "batch_size=16..128", "loss=hinge,wasserstein_gp",
             mode="random", draws=64, draw_seed=7)
    pts = s.points()
    assert len(pts) == 64 and pts == s.points() == SweepSpec.from_dict(s.to_dict()).points()
    assert pts != spec("lr_g=1e-5..1e-1:log", "d_dropout=0.1..0.5", "batch_size=16..128",
                       "loss=hinge,wasserstein_gp", mode="random", draws=64, draw_seed=8).points()
    assert all(1e-5 <= p["lr_g"] <= 1e-1 and 0.1 <= p["d_dropout"] <= 0.5 for p in pts)
    assert all(type(p["batch_size"]) is int and 16 <= p["batch_size"] <= 128 for p in pts)
    assert {p["loss"] for p in pts} == {"hinge", "wasserstein_gp"}
    # Log-uniform: about half the draws fall below the geometric middle 1e-3 (a uniform draw puts 1% there)
    below = sum(p["lr_g"] < 1e-3 for p in pts)
    assert 16 <= below <= 48, below
    # ... and a linear range is uniform: about half below its middle 0.3
    assert 16 <= sum(p["d_dropout"] < 0.3 for p in pts) <= 48


def test_a_log_draw_spans_its_decades():
    p, rng = parse_param("lr_g=1e-6..1e-2:log"), random.Random(0)
    decades = {math.floor(math.log10(p.draw(rng))) for _ in range(400)}
    assert decades == {-6, -5, -4, -3}  # every decade of 1e-6..1e-2 drawn, none outside


# --- plan --------------------------------------------------------------------------------------------------------
def test_plan_repeats_each_point_over_seeds_base_plus_i():
    base = tiny(seed=40)
    runs = plan(base, spec("lr_g=1e-4,2e-4", "loss=hinge,non_saturating", seeds=3))
    assert len(runs) == 12 and [r.point for r in runs] == [i for i in range(4) for _ in range(3)]
    assert [r.config.seed for r in runs] == [40, 41, 42] * 4 and [r.repeat for r in runs] == [0, 1, 2] * 4
    for r in runs:  # the base with only the point's values and the seed changed
        assert r.config == base.replace(**r.values, seed=40 + r.repeat)
    assert runs[7].values == {"lr_g": 2e-4, "loss": "hinge"} == {"lr_g": runs[7].config.lr_g,
                                                                  "loss": runs[7].config.loss}
    assert total_steps(runs) == 12 * base.epochs * (base.train_subset // base.batch_size)


def test_plan_wraps_seeds_past_the_largest():
    runs = plan(tiny(seed=2**31 - 1), spec("lr_g=1e-4,2e-4", seeds=2))
    assert [r.config.seed for r in runs] == [2**31 - 1, 0] * 2


def test_plan_refuses_the_whole_sweep_naming_each_bad_point():
    with pytest.raises(ConfigError) as e:
        plan(tiny(), spec("lr_g=2e-4,-1,x,-2", "epochs=2,0", seeds=2))
    msg = str(e.value)
    assert msg.startswith("sweep refused, nothing was queued: ")
    # points in grid order: (2e-4,2) ok, then seven bad: (2e-4,0), (-1,2), (-1,0), (x,2), (x,0), (-2,2), (-2,0)
    assert "point 1 " not in msg and "point 2 (lr_g=0.0002, epochs=0): epochs: 0 is out of range" in msg
    assert "point 5 (lr_g=x, epochs=2): lr_g: expected a number, got 'x'" in msg
    for i in (3, 4, 6):
        assert f"point {i} (lr_g=" in msg
    assert "point 7" not in msg and msg.endswith("; and 2 more")  # five reasons shown, the other two counted
    assert msg.count("point 3 (") == 1  # one reason a point, not one a seed


def test_plan_refuses_pruning_without_a_quality_score():
    with pytest.raises(ConfigError, match="eval_samples must be on"):
        plan(tiny(eval_samples=0), spec("lr_g=1e-4,2e-4", prune="median"))
    assert len(plan(tiny(eval_samples=100), spec("lr_g=1e-4,2e-4", prune="median"))) == 2


# --- pruning -----------------------------------------------------------------------------------------------------
MEDIAN = spec("lr_g=1e-4,2e-4", prune="median", grace=2)
ASHA = spec("lr_g=1e-4,2e-4", prune="asha", grace=1, eta=3)


def test_median_rule_prunes_a_run_worse_than_its_peers_median():
    why = prune_verdict(MEDIAN, 2, 30.0, [10.0, 20.0, 40.0])
    assert why == "pruned at epoch 2: FD 30.0 was worse than the median 20.0 of 3 other runs of its sweep at that epoch"
    assert prune_verdict(MEDIAN, 2, 20.0, [10.0, 20.0, 40.0]) is None   # equal to the median: kept
    assert prune_verdict(MEDIAN, 5, 14.0, [10.0, 20.0]) is None          # median of two is their mean, 15
    assert prune_verdict(MEDIAN, 5, 16.0, [10.0, 20.0]) is not None


def test_median_rule_waits_for_grace_and_for_enough_peers():
    assert prune_verdict(MEDIAN, 1, 1e9, [1.0, 2.0, 3.0]) is None           # before epoch `grace`
    assert prune_verdict(MEDIAN, 2, 1e9, [1.0] * (MIN_PEERS - 1)) is None   # too few peers
    assert prune_verdict(MEDIAN, 2, 1e9, [1.0] * MIN_PEERS) is not None
    no_rule = spec("lr_g=1e-4,2e-4", prune="none")
    assert prune_verdict(no_rule, 9, 1e9, [1.0, 1.0, 1.0]) is None


def test_a_nan_fd_counts_as_the_worst():
    assert "FD inf was worse" in prune_verdict(MEDIAN, 2, float("nan"), [10.0, 20.0, 30.0])
    # a diverged peer is worst too: the median of (10, 20, inf) is 20, so 25 goes, 15 stays
    assert prune_verdict(MEDIAN, 2, 25.0, [10.0, 20.0, float("nan")]) is not None
    assert prune_verdict(MEDIAN, 2, 15.0, [10.0, 20.0, float("nan")]) is None


def test_asha_judges_only_at_rungs_and_keeps_the_best_third():
    peers = [10.0, 20.0, 30.0, 40.0, 50.0]          # six runs reached the rung with mine: keep the best 2
    for epoch in (2, 4, 5, 8):                       # rungs are 1, 3, 9, 27 (grace·eta^k)
        assert prune_verdict(ASHA, epoch, 1e9, peers) is None
    for epoch in (1, 3, 9, 27):
        assert prune_verdict(ASHA, epoch, 15.0, peers) is None              # 2nd of 6: kept
        why = prune_verdict(ASHA, epoch, 25.0, peers)                       # 3rd of 6: pruned
        assert why == (f"pruned at epoch {epoch} (ASHA rung): FD 25.0 was not in the best 2 of the 6 runs of its "
                       f"sweep that reached it")
    assert prune_verdict(ASHA, 3, 10.0, [5.0, 20.0]) is not None   # 3 runs: only the best one goes on
    assert prune_verdict(ASHA, 3, 4.0, [5.0, 20.0]) is None
    assert prune_verdict(ASHA, 3, 1e9, [5.0]) is None              # too few peers
    assert prune_verdict(spec("lr_g=1e-4,2e-4", prune="asha", grace=2, eta=2), 4, 9.0, [1.0, 2.0, 3.0]) is not None
    assert prune_verdict(spec("lr_g=1e-4,2e-4", prune="asha", grace=2, eta=2), 6, 9.0, [1.0, 2.0, 3.0]) is None


# --- leaderboard -------------------------------------------------------------------------------------------------
def q(*fds, key="fd"):
    return [{"epoch": i + 1, key: v} for i, v in enumerate(fds)]


POINTS = [{"lr_g": 1e-4}, {"lr_g": 2e-4}, {"lr_g": 4e-4}, {"lr_g": 8e-4}]


def test_leaderboard_ranks_points_by_the_mean_over_seeds_with_std():
    runs = [(1, 0, "done"), (2, 0, "done"), (3, 1, "pruned"), (4, 1, "done"), (5, 2, "running"), (6, 2, "queued"),
            (7, 3, "queued"), (8, 3, "queued")]
    quality = {1: q(30.0, 20.0), 2: q(40.0, 10.0), 3: q(50.0), 4: q(5.0, 6.0), 5: q(12.0), 6: []}
    board = leaderboard(POINTS, runs, quality, "best FD")
    # point 1: best FD (5, 50) → mean 27.5; point 0: (20, 10) → 15; point 2: (12, none) → 12; point 3: none
    assert [e.point for e in board] == [2, 0, 1, 3] and [e.rank for e in board] == [1, 2, 3, None]
    e = board[1]
    assert e.values == {"lr_g": 1e-4} and e.run_ids == (1, 2) and e.scores == (20.0, 10.0)
    assert e.mean == 15.0 and e.std == pytest.approx(statistics.stdev([20.0, 10.0]))
    assert board[0].mean == 12.0 and board[0].std is None and board[0].scores == (12.0, None)  # one score: no std
    assert board[2].statuses == ("pruned", "done")
    assert board[3].mean is None and board[3].scores == (None, None)  # unscored: last
    final = leaderboard(POINTS, runs, quality, "final FD")  # last rows: 20/10 → 15, 50/6 → 28, 12
    assert [e.point for e in final] == [2, 0, 1, 3] and final[2].mean == 28.0


def test_leaderboard_ranks_higher_is_better_metrics_from_the_top():
    runs = [(1, 0, "done"), (2, 1, "done"), (3, 2, "done"), (4, 3, "done")]
    quality = {i + 1: q(*v, key="inception_score") for i, v in enumerate([(2.0, 3.0), (5.0, 4.0), (1.0, 9.0), ()])}
    assert [e.point for e in leaderboard(POINTS, runs, quality, "final IS")] == [2, 1, 0, 3]
    fds = {1: q(9.0), 2: q(3.0), 3: q(5.0), 4: q(1.0)}  # the same runs by FD: lowest first
    assert [e.point for e in leaderboard(POINTS, runs, fds, "best FD")] == [3, 1, 2, 0]


def test_leaderboard_refuses_an_unknown_metric_and_skips_nan():
    with pytest.raises(ConfigError, match="metric 'FID' is not one of best FD"):
        leaderboard(POINTS, [], {}, "FID")
    assert run_metric([{"fd": float("nan")}, {"fd": 7.0}, {"kid": 1.0}], "best FD") == 7.0
    assert run_metric([{"fd": 3.0}, {"fd": float("nan")}], "final FD") == 3.0
    assert run_metric([], "final IS") is None


def test_best_so_far_keeps_the_best_score_in_time_order():
    assert best_so_far([(3.0, 20.0), (1.0, 30.0), (2.0, None), (4.0, 25.0), (5.0, 10.0)]) == [
        (1.0, 30.0), (3.0, 20.0), (4.0, 20.0), (5.0, 10.0)]
    assert best_so_far([(1.0, 2.0), (2.0, 1.0), (3.0, 5.0)], lower=False) == [(1.0, 2.0), (2.0, 2.0), (3.0, 5.0)]
    assert best_so_far([]) == []


def test_point_text_is_what_people_read():
    assert point_text({"lr_g": 2e-4, "g_widths": (64, 128), "spectral_norm": True}) == \
        "lr_g=0.0002, g_widths=64,128, spectral_norm=true"
    assert point_text({"g_widths": [64, 128]}) == "g_widths=64,128"  # as a stored point (JSON) reads back


# --- a real sweep, end to end (the "show it works") ------------------------------------------------------
@pytest.mark.slow
@sqlite_only
def test_a_real_sweep_on_two_workers_prunes_ranks_by_the_stored_fd_and_clones(store, capsys):
    """Five points of a tiny dense GAN (4 epochs × 16 steps each, 320 steps in all), real FDs on 100 samples after
    each epoch, median pruning from epoch 1, trained by two `python -m gan_core worker` processes under a cap of 2.
    The last point's lr_g=0.5 blows the generator up (FD in the thousands where the others are near 800), and it is
    queued last, so by its first epoch at least three runs have an epoch-1 FD: it is pruned there, every time."""
    from sqlalchemy import select

    from gan_core.cli import main
    from gan_core.runs.dispatcher import dispatch
    from gan_core.runs.schema import Run
    from gan_core.runs.store import Store

    base = tiny(eval_samples=100, epochs=4, train_subset=1024, checkpoint_every=1000, seed=3)
    sweep = spec("lr_g=5e-4,1e-3,3e-4,2e-4,0.5", prune="median", grace=1)
    planned = plan(base, sweep)
    sweep_id = store.submit_sweep("lr", sweep.to_dict(), base, [(r.point, r.config) for r in planned],
                                  sweep.points(), owner="ada")
    # Two workers in this process (two dispatch loops, each with its own Store and worker id, as two `python -m
    # gan_core worker` processes would be, less their start-up), sharing the store's cap of 2
    ended: list[int] = []
    workers = [threading.Thread(target=lambda i=i: ended.append(dispatch(Store(), worker_id=f"w{i}", cap=2,
                                                                         once=True, poll=0.1))) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(240)
    assert sum(ended) == 5 and not any(w.is_alive() for w in workers)

    runs = store.sweep_runs(sweep_id)
    assert len(runs) == 5 and {r.status for r in runs} <= {"done", "pruned"}, [(r.status, r.error) for r in runs]
    assert {r.worker_id for r in runs} == {"w0", "w1"}  # both workers trained some
    spans = sorted((r.started_at, r.finished_at) for r in runs)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))  # two runs trained at the same time
    quality = {r.id: store.quality(r.id) for r in runs}
    for r in runs:  # every epoch a run trained was scored, in order
        assert [q["epoch"] for q in quality[r.id]] == list(range(1, len(quality[r.id]) + 1))
        assert all(q["n"] == 100 and q["fd"] > 0 for q in quality[r.id])
        if r.status == "done":
            assert len(quality[r.id]) == 4 and r.error is None and r.step == 64

    # Pruned runs stopped early, said why, and are 'pruned', not failed or stopped
    pruned = [r for r in runs if r.status == "pruned"]
    assert runs[4] in pruned and runs[4].config.lr_g == 0.5
    for r in pruned:
        last = quality[r.id][-1]
        assert last["epoch"] < base.epochs and r.step < 64 and r.epoch <= last["epoch"]
        assert r.error.startswith(f"pruned at epoch {last['epoch']}: FD {last['fd']:.1f} was worse than the "
                                  f"median "), r.error
        median, peers = r.error.split("worse than the median ")[1].split(" other runs")[0].split(" of ")
        assert last["fd"] > float(median) and int(peers) >= MIN_PEERS
    assert len(quality[runs[4].id]) == 1 and quality[runs[4].id][0]["fd"] > 2 * max(
        q["fd"] for r in runs[:4] for q in quality[r.id][:1])

    # The leaderboard ranks the points by the FD read back from the store, and the CLI prints that order
    stored = {r.sweep_point: min(q["fd"] for q in quality[r.id]) for r in runs}
    board = leaderboard(store.get_sweep(sweep_id).points, [(r.id, r.sweep_point, r.status) for r in runs], quality)
    assert [e.point for e in board] == sorted(stored, key=stored.get) and board[-1].point == 4
    assert [e.mean for e in board] == sorted(stored.values())
    final = {r.sweep_point: quality[r.id][-1]["fd"] for r in runs}
    assert [e.point for e in leaderboard(store.get_sweep(sweep_id).points,
                                         [(r.id, r.sweep_point, r.status) for r in runs], quality, "final FD")] == \
        sorted(final, key=final.get)
    assert main(["sweeps", "--sweep", str(sweep_id)]) == 0
    printed = capsys.readouterr().out.splitlines()[1:]
    assert [float(ln.split()[1]) for ln in printed] == pytest.approx([e.mean for e in board], abs=1e-3)
    assert [ln.rsplit("lr_g=", 1)[1] for ln in printed] == [f"{sweep.points()[e.point]['lr_g']:g}" for e in board]

    # Clone: a run's config is the base with its point's values and seed, and queueing it again stores it unchanged
    sw = store.get_sweep(sweep_id)
    for r in runs:
        assert r.config == sw.base.replace(**sw.points[r.sweep_point], seed=sw.base.seed)
    best = next(r for r in runs if r.sweep_point == board[0].point)
    clone = store.submit(best.config, name="clone of the best")
    with store.engine.connect() as c:
        stored_json = dict(c.execute(select(Run.id, Run.config_json).where(Run.id.in_([best.id, clone]))).all())
    original, copied = stored_json[best.id], stored_json[clone]
    assert copied == original and TrainConfig.from_json(copied) == best.config
    assert store.get(clone).sweep_id is None and store.get(clone).status == "queued"
