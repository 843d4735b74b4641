"""Playground: the controls step this session's models and the counts shown follow, Reset starts over, the setup
lives in the link both ways, a bad link is refused in words, and the demo's caps are applied and said."""
from __future__ import annotations

import math
import re

import pytest
import torch
from conftest import sqlite_only

from gan_core.web import playground as web

from .pages import app, fragment_periods, page_text

pytestmark = sqlite_only  # the page keeps nothing in the store

SMALL = {"g_width": "8", "d_width": "8", "batch": "32"}  # a fast game: these tests look at the page


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as ui.frame does; AppTest may run the page before it
    yield
    torch.set_num_threads(before)


def read(markdown: str) -> str:
    """An alert's Markdown source as the visitor reads it: the page escapes what a link put in it."""
    return re.sub(r"\\(.)", r"\1", markdown)


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_the_controls_step_the_models_and_the_counts_follow(home):
    at = app("pages/playground.py", query={"data": "moons", **SMALL})
    assert metric(at, "Step") == "0" and metric(at, "D / G updates") == "0 / 0"
    at.button(key="pg_step_d").click().run()
    assert metric(at, "D / G updates") == "1 / 0" and metric(at, "Step") == "0"
    at.button(key="pg_step_g").click().run()
    assert metric(at, "D / G updates") == "1 / 1"
    at.button(key="pg_step_both").click().run()
    assert metric(at, "Step") == "1" and metric(at, "D / G updates") == "2 / 2"
    assert len(at.get("plotly_chart")) == 2  # the plane and the numbers over steps (moons has no known density)
    at.button(key="pg_reset").click().run()
    assert metric(at, "Step") == "0" and metric(at, "D / G updates") == "0 / 0"
    assert not at.exception


def test_play_advances_each_tick_and_pause_stops(home, monkeypatch):
    periods = fragment_periods(monkeypatch)
    at = app("pages/playground.py", query={"data": "ring", **SMALL})
    assert ("live", None) in periods  # paused: no timer
    at.toggle(key="pg_playing").set_value(True).run()
    assert ("live", web.TICK_S) in periods
    first = int(metric(at, "Step"))
    at.run()  # AppTest runs no fragment timers: a rerun is one more tick
    assert int(metric(at, "Step")) > first > 0
    assert "Modes captured" in [m.label for m in at.metric]  # the ring is a benchmark mixture
    assert len(at.get("plotly_chart")) == 3  # the plane, D* beside it, the numbers
    at.toggle(key="pg_playing").set_value(False).run()
    paused = metric(at, "Step")
    at.run()
    assert metric(at, "Step") == paused


def test_the_setup_round_trips_through_the_link(home):
    at = app("pages/playground.py", query={"data": "grid", "noise_dim": "1", "loss": "lsgan", "lr_d": "0.0003",
                                           "pack": "2", "seed": "12"})
    assert at.selectbox(key="pg.data").value == "grid" and at.selectbox(key="pg.loss").value == "lsgan"
    assert at.radio(key="pg.noise_dim").value == 1 and at.slider(key="pg.pack").value == 2
    assert at.number_input(key="pg.lr_d").value == pytest.approx(3e-4) and at.number_input(key="pg.seed").value == 12
    assert not at.error
    at.selectbox(key="pg.data").set_value("spiral").run()
    at.slider(key="pg.d_steps").set_value(3).run()
    assert at.query_params["data"] == ["spiral"] or at.query_params["data"] == "spiral"
    q = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert (q["data"], q["d_steps"], q["loss"], q["lr_d"], q["seed"]) == ("spiral", "3", "lsgan", "0.0003", "12")
    again = app("pages/playground.py", query=q)  # the link, opened in a new session, gives the same setup
    assert again.selectbox(key="pg.data").value == "spiral" and again.slider(key="pg.d_steps").value == 3


def test_clicked_points_are_in_the_link(home):
    at = app("pages/playground.py", query={"data": "clicks", "points": "0.5,0.5;-1,1", **SMALL})
    assert "2 points placed." in [c.value for c in at.caption]
    at.button(key="pg_step_both").click().run()  # D* is drawn from the clicked points' density
    assert len(at.get("plotly_chart")) == 4  # the place-points plot, the plane, D*, the numbers
    at.button[[b.label for b in at.button].index("Undo last point")].click().run()
    q = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert q["points"] == "0.5,0.5" and "1 point placed." in [c.value for c in at.caption]


@pytest.mark.parametrize(("query", "words", "default"), [
    ({"lr_g": "fast"}, ["lr_g='fast'", "expected a number", "default '0.001'"], "0.001"),
    ({"data": "circle"}, ["data='circle'", "ring, grid, moons, spiral, line, clicks"], "ring"),
    ({"g_layers": "99"}, ["g_layers='99'", "allowed 1 to 4"], "2"),
    ({"lr_d": "nan"}, ["lr_d='nan'", "expected a number"], "0.001"),
    ({"g_width": "100000"}, ["g_width='100000'", "allowed 2 to 128"], "32"),
    ({"points": "garbage;1,2,3"}, ["'garbage' is not a point x,y"], None),
    ({"lr_g": "9" * 100_000}, ["lr_g is refused (100,000 characters, more than the 40"], "0.001"),
    # Shown as typed, not as Markdown: no link, no bold, no colour.
    ({"loss": "[x](http://e.com):red[y]__b__"}, ["loss='[x](http://e.com):red[y]__b__'"], "non_saturating"),
])
def test_a_bad_link_is_refused_in_words_and_the_defaults_used(home, query, words, default):
    at = app("pages/playground.py", query={**query, "seed": "5"})
    assert not at.exception
    sources = [e.value for e in at.error]
    errors = [read(e) for e in sources]
    assert len(errors) == 1 and all(w in errors[0] for w in words), errors
    assert len(errors[0]) < 300 and "](" not in sources[0] and "__" not in sources[0]
    name = next(iter(query))
    if default is None:
        assert name not in at.query_params  # no points: the link drops them
    else:
        assert at.query_params[name] in (default, [default])  # the link now says what is used
    assert at.number_input(key="pg.seed").value == 5  # the good parameters are kept


def test_demo_mode_caps_the_nets_the_speed_and_the_sessions_and_says_so(home, monkeypatch):
    monkeypatch.setenv("GAN_DEMO_MODE", "1")
    monkeypatch.setenv("GAN_DEMO_PLAY_SESSIONS", "1")
    monkeypatch.setattr(web, "SLOTS", web.PlaySlots(expiry_s=60))
    at = app("pages/playground.py", query={"g_width": "128", "d_layers": "4", **{k: v for k, v in SMALL.items()
                                                                               if k != "g_width"}})
    text = page_text(at)
    assert "Public demo: at most 100 steps a second, networks of at most 2 layers of 32 units, and 1 sessions" in text
    errors = [read(e.value) for e in at.error]
    assert any("g_width 128 is over this demo's limit; using 32" in e for e in errors), errors
    assert at.number_input(key="pg.g_width").value == 32 and at.number_input(key="pg.d_layers").value == 2
    web.SLOTS.hold("someone else", limit=1)  # another visitor is playing
    at.toggle(key="pg_playing").set_value(True).run()
    assert metric(at, "Step") == "0"
    assert any("sessions are playing on this server now" in w.value for w in at.warning)
    web.SLOTS.release("someone else")
    at.run()
    assert 0 < int(metric(at, "Step")) <= web.steps_per_tick(web.PlayCaps.for_mode(True))


def test_play_slots_expire_when_a_session_stops_ticking():
    slots = web.PlaySlots(expiry_s=3.0)
    assert slots.hold("a", limit=1, now=0.0) and not slots.hold("b", limit=1, now=1.0)
    assert slots.hold("a", limit=1, now=2.0)  # the holder renews its slot each tick
    assert not slots.hold("b", limit=1, now=4.5) and slots.hold("b", limit=1, now=5.5)  # a closed tab's slot frees
    assert slots.playing(now=5.5) == 1 and slots.hold("c", limit=0, now=5.5)  # 0: no limit


def test_the_speed_is_steps_over_wall_time_and_reverse_kl_is_never_inf():
    assert web.speed_text([], playing=False) == "paused"
    assert web.speed_text([(10.0, 5)], playing=True) == "measuring…"
    assert web.speed_text([(10.0, 5), (11.0, 25), (12.0, 45)], playing=True) == "20 steps/s"
    marks = [(float(t), t * 10) for t in range(20)]
    assert web.recent(marks, 5.0) == marks[13:]  # the last 5 s, and the mark just before them
    assert web.kl_text(math.inf) == ("—", "none yet") and web.kl_text(0.456) == ("0.46", None)
    assert web.step_budget(0.0) == web.STEP_BUDGET_S and web.step_budget(0.4) == 0.4
    assert web.step_budget(9.0) == web.MAX_STEP_BUDGET_S
    rows = [{"step": float(i)} for i in range(1000)]
    drawn = web.thinned(rows, 300)
    assert len(drawn) <= 300 and drawn[-1] is rows[-1] and web.thinned(rows[:5], 300) == rows[:5]


def test_reverse_kl_before_any_high_quality_sample_reads_in_words(home):
    at = app("pages/playground.py", query={"data": "ring", **SMALL})
    at.button(key="pg_step_both").click().run()  # one step: no generated point is within 3σ (0.03) of a mode yet
    kl = next(m for m in at.metric if m.label == "Reverse KL")
    assert (kl.value, kl.delta) == ("—", "none yet") and metric(at, "High quality") == "0.0%"
    assert any("No high-quality sample yet" in c.value for c in at.caption)
    assert all("inf" not in str(m.value) for m in at.metric)
