"""Playground: the GAN game on a plane, live (issue 29 §1). G learns to draw 2-D points like the real data while D
learns to tell them apart, in this session: nothing is queued, and nothing runs once the tab is closed.

Laid out by `main`: the setup (kept in the link), the points a visitor places, the controls, then a fragment that
advances the game a bounded number of steps each tick while playing and redraws the views.
"""
import math
import time
import uuid
from dataclasses import fields, replace

import streamlit as st

import ui
from gan_core.playground import DATASETS, PlayConfig, Playground, from_query, to_query, with_points
from gan_core.toy import TOY_LOSSES
from gan_core.web import playground as web

STATE, PLAYING, CFG, LINKED, REFUSED = "pg_state", "pg_playing", "pg_cfg", "pg_linked", "pg_refused"
NAMES = [f.name for f in fields(PlayConfig) if f.metadata]


def link_setup(caps: web.PlayCaps) -> None:
    """Load the widgets from the link when it names a setup not loaded yet (refusing bad values in words), else
    from this session's last setup when they were cleared (another page was open)."""
    mine = {k: st.query_params[k] for k in st.query_params if k in NAMES or k == "points"}
    if mine and mine != st.session_state.get(LINKED):
        cfg, refused = from_query(mine)
        cfg, capped = web.apply_caps(cfg, caps)
        st.session_state[REFUSED] = (refused + capped, cfg)
        st.session_state[LINKED] = mine
    elif "pg.data" in st.session_state:
        return
    else:
        cfg = st.session_state.get(CFG) or web.apply_caps(PlayConfig(), caps)[0]
    for name in NAMES:
        st.session_state[f"pg.{name}"] = getattr(cfg, name)
    st.session_state["pg_points"] = cfg.points


# Below NARROW px (800 px with the sidebar open leaves ~470 px) the setup's rows of four wrap into two rows of two and
# the plane and D* stack, each full width: side by side, each was a 130 px square with its labels crowded.
NARROW = 1000
LAYOUT_CSS = f"""<style>@media (max-width: {NARROW}px) {{
  .st-key-pg_setup [data-testid="stHorizontalBlock"], .st-key-pg_views [data-testid="stHorizontalBlock"] {{
    flex-wrap: wrap; }}
  .st-key-pg_setup [data-testid="stColumn"] {{ min-width: calc(50% - 1rem); flex: 1 1 calc(50% - 1rem); }}
  .st-key-pg_views [data-testid="stColumn"] {{ min-width: 100%; flex: 1 1 100%; }}
}}</style>"""


def setup(caps: web.PlayCaps) -> PlayConfig:
    """The setup's widgets; the PlayConfig they make."""
    with st.container(key="pg_setup"):
        return _setup(caps)


def _setup(caps: web.PlayCaps) -> PlayConfig:
    c = st.columns(4)
    c[0].selectbox("Data", DATASETS, key="pg.data", help="The real distribution G must learn to draw.")
    c[1].radio("Noise dimensions", (1, 2), key="pg.noise_dim", horizontal=True,
               help="G turns this much random noise into a point.")
    c[2].selectbox("Loss", TOY_LOSSES, key="pg.loss", help="The GAN objective, as on the Train page.")
    c[3].radio("Optimiser", ("adam", "sgd"), key="pg.optimizer", horizontal=True)
    with st.expander("Networks and training"):
        c = st.columns(4)
        c[0].number_input("G hidden layers", 1, caps.max_layers, key="pg.g_layers")
        c[1].number_input("G units per layer", 2, caps.max_width, key="pg.g_width")
        c[2].number_input("D hidden layers", 1, caps.max_layers, key="pg.d_layers")
        c[3].number_input("D units per layer", 2, caps.max_width, key="pg.d_width")
        c = st.columns(4)
        c[0].number_input("G learning rate", 1e-5, 1.0, step=1e-4, format="%.5f", key="pg.lr_g")
        c[1].number_input("D learning rate", 1e-5, 1.0, step=1e-4, format="%.5f", key="pg.lr_d")
        c[2].slider("D steps per G step", 1, 10, key="pg.d_steps")
        c[3].number_input("Batch", 8, 1024, step=8, key="pg.batch")
        c = st.columns(4)
        c[0].slider("Pack (PacGAN)", 1, 4, key="pg.pack",
                    help="D judges this many points at once, so a G that draws one spot over and over is caught.")
        c[1].slider("Instance noise σ", 0.0, 1.0, step=0.05, key="pg.instance_noise",
                    help="Blur every point D sees (0: off), so D cannot be sure too early and G still learns.")
        c[2].number_input("Seed", 0, 99_999, key="pg.seed")
    values = {name: st.session_state[f"pg.{name}"] for name in NAMES}
    return PlayConfig(**values, points=tuple(st.session_state.get("pg_points", ())))


def _undo_point() -> None:
    st.session_state["pg_points"] = tuple(st.session_state.get("pg_points", ()))[:-1]


def _clear_points() -> None:
    st.session_state["pg_points"] = ()


def place_points(cfg: PlayConfig) -> PlayConfig:
    """The plot a visitor clicks to place real points (data 'clicks'), Undo and Clear; the setup with them.

    Each click is read from the chart's state before it is drawn, then the chart gets a new key: a fresh chart's
    selection is empty, so the next click is always new (on one chart every other click was lost, read as the
    deselection of the last), and the point shows in the same rerun."""
    n = st.session_state.setdefault("pg_place_n", 0)
    event = st.session_state.get(f"pg_place_{n}")
    picked = web.clicked_points(event["selection"]) if event else []
    if picked:
        n = st.session_state["pg_place_n"] = n + 1
        cfg = with_points(cfg, cfg.points + tuple(picked))
    st.session_state["pg_points"] = cfg.points
    left, right = st.columns([2, 1])
    with left:
        st.plotly_chart(web.place_figure(cfg.points), on_select="rerun", selection_mode="points",
                        key=f"pg_place_{n}", width="stretch", config={"displayModeBar": False})
    with right:
        st.caption("Click the plot to place a real point. Each point is a small Gaussian blob (σ 0.1), so the real "
                   "density is known and D*'s closed form can be drawn. Until you place one, the three faint points "
                   "stand in.")
        st.button("Undo last point", disabled=not cfg.points, width="stretch", on_click=_undo_point)
        st.button("Clear points", disabled=not cfg.points, width="stretch", on_click=_clear_points)
        st.caption(f"{len(cfg.points)} point{'s' if len(cfg.points) != 1 else ''} placed.")
    return cfg


def keep_in_link(cfg: PlayConfig) -> None:
    """Write the setup into the URL, so a copied link reproduces it, and say once what the link asked for that was
    refused."""
    wanted = to_query(cfg)
    if web.query_differs({k: st.query_params[k] for k in st.query_params}, wanted):
        for name in [k for k in st.query_params if k in NAMES or k == "points"]:
            del st.query_params[name]
        st.query_params.update(wanted)
    st.session_state[LINKED] = wanted
    st.session_state[CFG] = cfg
    refused, for_cfg = st.session_state.get(REFUSED, ([], None))
    if refused and for_cfg == cfg:
        for message in refused:
            st.error(web.plain(message), icon=":material/link_off:")


def game(cfg: PlayConfig) -> Playground:
    """This session's game for `cfg`: kept while the setup stays, started over when it changes."""
    pg = st.session_state.get(STATE)
    if pg is None or pg.cfg != cfg:
        pg = st.session_state[STATE] = Playground(cfg)
    return pg


def _reset() -> None:
    st.session_state[STATE] = Playground(st.session_state[STATE].cfg)
    st.session_state[PLAYING] = False


def _toggled() -> None:
    st.session_state["pg_marks"] = []  # the speed is measured afresh over each stretch of playing
    if not st.session_state[PLAYING]:
        web.SLOTS.release(st.session_state["pg_session"])


def _step(which: str) -> None:
    pg = st.session_state[STATE]
    {"d": pg.step_d, "g": pg.step_g, "both": pg.step}[which]()
    pg.record()


def controls() -> None:
    """Play / Pause, Step D, Step G, Step both, Reset."""
    # A toggle, not a button: its state outlives a rerun the browser's ticks crowd out, so Pause always lands.
    st.toggle("Play", key=PLAYING, on_change=_toggled,
              help="Play the game on its own, a few ticks a second; switch off to pause.")
    c = st.columns(4)  # four, not five: at 800 px five cut "Step both" and "Reset" short
    c[0].button("Step D", on_click=_step, args=("d",), width="stretch", key="pg_step_d",
                help="One update of D alone: watch the heatmap move.")
    c[1].button("Step G", on_click=_step, args=("g",), width="stretch", key="pg_step_g",
                help="One update of G alone: the purple points move along the blue strokes.")
    c[2].button("Step both", on_click=_step, args=("both",), width="stretch", key="pg_step_both",
                help="D's updates (D steps per G step), then one of G: one step of the game.")
    c[3].button("Reset", on_click=_reset, width="stretch", key="pg_reset", icon=":material/restart_alt:")


def tick(caps: web.PlayCaps) -> None:
    """While playing: a bounded number of steps within this tick's time, if this session holds a playing slot; the
    costly estimates (JS, EMD, the benchmark, D*) only every web.ESTIMATE_S seconds."""
    pg: Playground = st.session_state[STATE]
    st.session_state["pg_fresh"] = True  # paused: every view is of this moment
    if not st.session_state.get(PLAYING):
        return
    if not web.SLOTS.hold(st.session_state["pg_session"], caps.sessions):
        st.warning(f"{caps.sessions} sessions are playing on this server now, this demo's limit: yours waits for a "
                   "free slot (Step still works).", icon=":material/hourglass_top:")
        return
    # Stepping gets at least as long as the last redraw took, so a slow host still spends half its time training.
    pg.advance(web.steps_per_tick(caps), web.step_budget(st.session_state.get("pg_draw_s", 0.0)))
    now = time.monotonic()
    fresh = now - st.session_state.get("pg_estimated", 0.0) >= web.ESTIMATE_S
    pg.record(estimates=fresh)
    if fresh:
        st.session_state["pg_estimated"] = now
    st.session_state["pg_fresh"] = fresh
    marks = [*st.session_state.get("pg_marks", []), (now, pg.steps)]
    st.session_state["pg_marks"] = web.recent(marks, web.SPEED_WINDOW_S)


def status(pg: Playground) -> None:
    """The step counts, the speed, and the toy benchmark's numbers on ring and grid."""
    c = [*st.columns(3), *st.columns(3)]  # two rows of three: six in a row were cut to "5…" at 800 px
    c[0].metric("Step", pg.steps)
    c[1].metric("D / G updates", f"{pg.d_updates} / {pg.g_updates}")
    c[2].metric("Speed", web.speed_text(st.session_state.get("pg_marks", []), bool(st.session_state.get(PLAYING))),
                help="Steps of the game per second of wall time while playing, drawing included, over the last "
                     f"{web.SPEED_WINDOW_S:.0f} seconds.")
    last = pg.latest("modes")
    if pg.data.benchmark is not None and last:
        c[3].metric("Modes captured", f"{last['modes']:.0f} of {len(pg.data.benchmark.means)}")
        c[4].metric("High quality", f"{last['high_quality']:.1%}")
        kl, note = web.kl_text(last["reverse_kl"])
        c[5].metric("Reverse KL", kl, note, delta_color="off", delta_arrow="off",
                    help="Needs at least one high-quality sample: before that there is no mode histogram to compare.")
        st.caption(f"The mode-collapse benchmark (PacGAN): a mode is captured when at least one of 2,500 generated "
                   f"points lands within 3σ of it (σ is {pg.data.benchmark.sigma:g} here, so very near); high "
                   "quality is the share that land that near any mode; reverse KL is 0 when every mode gets its "
                   f"fair share. Updated every {web.ESTIMATE_S:.0f} seconds while playing."
                   + ("" if math.isfinite(last["reverse_kl"]) else " No high-quality sample yet: no generated point "
                      "is that near a mode, so there is no share of modes for reverse KL to compare."))


def plane_views(pg: Playground, show: list[str]) -> None:
    """The plane with D's heatmap, and D*'s closed form beside it where the real density is known."""
    view = pg.view(with_star=bool(st.session_state.get("pg_fresh", True)))
    kept = st.session_state.get("pg_star")
    if view.d_star_grid is not None or kept is None or kept[0] is not pg:
        st.session_state["pg_star"] = (pg, view.d_star_grid)
    else:  # between estimates: the last D*, computed at most ESTIMATE_S ago
        view = replace(view, d_star_grid=kept[1])
    left, right = st.container(key="pg_views").columns(2)
    with left:
        st.plotly_chart(web.plane_figure(view, show), width="stretch", key="pg_plane")
        st.caption("Green dots are real data, purple dots are what G draws now. The background is D's verdict: green "
                   "where it thinks points are real, purple where it thinks they are generated. Orange lines show "
                   "where G sends a grid of noise; blue strokes, which way G's loss pushes each purple point.")
    with right:
        if view.d_star_grid is None:
            st.info("D*'s closed form needs the real density, which only the mixtures (ring, grid) and your clicked "
                    "points have.")
        else:
            st.plotly_chart(web.d_star_figure(view), width="stretch", key="pg_dstar")
            st.caption("The best D possible against today's G: the real density over the real plus G's (estimated by "
                       "smoothing its points). Green: only real points fall here; purple: only G's; grey: both "
                       "equally, or neither (far from all points). When G draws exactly like the data, it is ½, grey, "
                       "everywhere. Modes narrower than a cell are drawn one cell wide.")


def numbers(pg: Playground) -> None:
    """Losses, D's mean outputs and the distance estimates over steps."""
    if not pg.history:
        st.caption("Press Play or a Step button: the numbers appear here.")
        return
    st.plotly_chart(web.history_figure(pg.history), width="stretch", key="pg_history")
    st.caption("At the game's equilibrium D(x) and D(G(z)) both sit at ½. JS divergence is estimated from kernel "
               "densities of 256 real and 256 generated points (0 is identical, log 2 ≈ 0.69 is no overlap); the "
               "earth mover's distance is exact between 256 points of each: how far, on average, generated points "
               "must move to lie on real ones.")


def live(caps: web.PlayCaps, show: list[str]) -> None:
    """One tick: step if playing, then redraw the numbers and views."""
    tick(caps)
    start = time.monotonic()
    pg = st.session_state[STATE]
    status(pg)
    plane_views(pg, show)
    numbers(pg)
    st.session_state["pg_draw_s"] = time.monotonic() - start


def main() -> None:
    """Setup (from the link), points, controls, then the live views."""
    ui.bootstrap()
    st.html(LAYOUT_CSS)
    st.title("Playground")
    st.caption("The GAN game on a plane: G turns random noise into 2-D points, D learns to tell them from real "
               "ones, and each improves against the other. Runs in this browser tab; nothing is queued.")
    demo = ui.settings().demo_mode
    caps = web.PlayCaps.for_mode(demo)
    if demo:
        st.caption(f"Public demo: at most {caps.steps_per_s} steps a second, networks of at most {caps.max_layers} "
                   f"layers of {caps.max_width} units, and {caps.sessions} sessions playing at once on this server.")
    st.session_state.setdefault("pg_session", uuid.uuid4().hex)
    st.session_state.setdefault(PLAYING, False)
    link_setup(caps)
    cfg = setup(caps)
    if cfg.data == "clicks":
        cfg = place_points(cfg)
    keep_in_link(cfg)
    game(cfg)
    controls()
    show = st.pills("Show", ["heatmap", "manifold", "push"], selection_mode="multi",
                    default=["heatmap", "manifold", "push"], key="pg_show") or []
    playing = bool(st.session_state.get(PLAYING))
    st.fragment(run_every=web.TICK_S if playing else None)(live)(caps, list(show))


main()
