"""Sweeps: a sweep's leaderboard (points ranked by a quality metric, mean ± std over seeds, each with its final grid
and a link to its live view), its parallel coordinates, the best score so far, every run's curve on one chart, and
one epoch slider over the top runs' sample grids. "Clone" fills the Train form with a run's config.

Laid out top to bottom by `main`: the sweep picker, the `board` (a fragment that refreshes while a run is live:
caption, actions, leaderboard, charts), then the top points' sample grids. The sweep's runs and their quality rows
are read once a page run (`read_runs`), and once a refresh of the board.
"""
import time
from typing import Any

import streamlit as st

import ui
from gan_core.config import ConfigError
from gan_core.runs import policy
from gan_core.runs.status import LIVE
from gan_core.runs.store import RunView, Store, SweepView
from gan_core.runs.sweep import METRICS, RESUME_STATUSES, SweepSpec, best_so_far, run_metric
from gan_core.web import charts, sweep_tables, text

REFRESH_S = 3.0
#: The sweep's runs and each one's quality rows ({run id: rows}), as one read of the store gives them.
Runs = tuple[list[RunView], dict[int, list[dict[str, Any]]]]


def read_runs(store: Store, sweep_id: int) -> Runs:
    """The sweep's runs and each one's quality rows."""
    runs = store.sweep_runs(sweep_id)
    return runs, {r.id: store.quality(r.id) for r in runs}


def no_sweeps_yet() -> None:
    """The empty state: what a sweep is and where to start one; stops the page."""
    st.info("No sweeps yet. A sweep queues one run per point of a grid or random search over the fields you choose, "
            "and ranks them here. Start one on the Train page (mode: Sweep) or with `python -m gan_core sweep`.")
    if st.button("Go to Train", type="primary"):
        st.session_state["train_mode"] = "Sweep"
        st.switch_page(ui.PAGES["train"])
    st.stop()


def pick_sweep(store: Store, sweeps: list[SweepView]) -> SweepView:
    """The sweep picker: the one the URL names, else the newest sweep that still has runs (an emptied sweep has
    nothing to show); the URL follows the choice."""
    by_id = {s.id: s for s in sweeps}
    left = store.sweep_run_counts()  # runs each sweep still has (pruned from the demo or deleted: none)
    want = text.parse_id(st.query_params.get("sweep"))
    ids = list(by_id)
    index = (ids.index(want) if want in by_id
             else next((i for i, sid in enumerate(ids) if left.get(sid)), 0))
    chosen = st.selectbox("Sweep", ids, index=index, key="sweep_picker",
                          format_func=lambda i: f"#{i} {by_id[i].name} ({by_id[i].owner or 'no owner'}) · "
                                                + (f"{left[i]} run{'' if left[i] == 1 else 's'}" if left.get(i)
                                                   else "no runs left"))
    ui.warn_unknown_link("sweep", want in by_id, chosen)
    if st.query_params.get("sweep") != str(chosen):
        st.query_params["sweep"] = str(chosen)
    return by_id[chosen]


def sweep_caption(sweep: SweepView, spec: SweepSpec, runs: list[RunView]) -> None:
    """What the sweep searches over, its base config, its owner and how many runs are in each status."""
    counts = {s: sum(r.status == s for r in runs) for s in dict.fromkeys(r.status for r in runs)}
    st.caption(f"{text.plain(spec.describe())} · base {sweep.base.arch} on {sweep.base.dataset}, {sweep.base.epochs} "
               f"epoch{'' if sweep.base.epochs == 1 else 's'} · owner {text.plain(sweep.owner or '–')} · "
               + (", ".join(f"{n} {s}" for s, n in counts.items()) or "no runs left"))


def resume_button(sweep_id: int, runs: list[RunView], mine: bool) -> None:
    """Resume the sweep's stopped and interrupted runs (the owner's or an admin's), then rerun the whole page."""
    resumable = [r for r in runs if r.status in RESUME_STATUSES]
    if not resumable:
        return
    n = len(resumable)
    if not st.button(f"Resume the sweep ({n} stopped or interrupted run{'' if n == 1 else 's'})",
                     key=f"resume-sweep-{sweep_id}", icon=":material/play_arrow:", disabled=not mine,
                     help="Queues them again, each to continue from its newest checkpoint. Pruned, failed and done "
                          "runs stay as they are (resume one of those on the Runs page)."
                          + ("" if mine else " Only the sweep's owner or an admin may resume it.")):
        return
    try:
        queued = policy.resume_sweep(ui.get_store(), sweep_id, ui.identity(), ui.settings())
    except (policy.PolicyError, ConfigError) as e:
        st.error(f"Nothing was resumed: {text.plain(str(e))}")
        return
    if queued:
        ui.ensure_worker()
    st.session_state["sweep_flash"] = (f"Queued {len(queued)} run(s) to resume: " + ", ".join(f"#{i}" for i in queued)
                                       if queued else "Nothing was left to resume.")
    st.rerun()  # the whole page: its refresh timer starts again now that runs are live


def stop_button(sweep_id: int, runs: list[RunView], mine: bool) -> None:
    """Stop every live run of the sweep (the owner's or an admin's); each checkpoints first."""
    live = [r for r in runs if r.status in LIVE]
    if not live or not st.button(f"Stop the sweep ({len(live)} live runs)", key=f"stop-sweep-{sweep_id}",
                                 disabled=not mine,
                                 help=None if mine else "Only the sweep's owner or an admin may stop it."):
        return
    try:
        asked = policy.stop_sweep(ui.get_store(), sweep_id, ui.identity(), ui.settings())
    except policy.PolicyError as e:
        st.error(text.plain(str(e)))  # may name the owner: user text
    else:
        st.success(f"Asked {asked} run(s) to stop; each checkpoints first.")


def leaderboard(sweep: SweepView, runs: list[RunView], quality: dict[int, list[dict[str, Any]]],
                metric: str) -> tuple[dict[str, Any], bool]:
    """The points ranked by `metric`, one row selectable: (the selected row, True), or (the first row, False)."""
    table = sweep_tables.sweep_table(ui.get_store(), sweep, runs, quality, metric)
    # One seed a point: the std is always empty and "scores" repeats the mean (rounded harder), so both go.
    hide = {"± std", "scores", "seeds"} if all(r["seeds"] <= 1 for r in table) else set()
    st.subheader("Leaderboard")
    picked = st.dataframe(
        table, hide_index=True, width="stretch", key=f"leaderboard-{sweep.id}", on_select="rerun",
        placeholder=sweep_tables.TABLE_PLACEHOLDER,  # an unscored point's rank and score: "–", never "None"
        selection_mode="single-row", row_height=90, column_order=[k for k in table[0] if k not in hide],
        # every point visible without scrolling inside the table (its default 400 px showed 4 of 8), up to 10
        height=38 + 90 * min(len(table), 10) + 2,
        column_config={"samples": st.column_config.ImageColumn("final samples", width="small"),
                       "live view": st.column_config.LinkColumn("live view", display_text=r"/runs\?run=(\d+)"),
                       # 4 digits: FDs of 799.9 and 800.4 both read "800" at 3, tied to the eye but ranked 1 and 2
                       metric: st.column_config.NumberColumn(f"{metric} (mean)", format="%.4g"),
                       "± std": st.column_config.NumberColumn("± std", format="%.2g"),
                       "rank": st.column_config.NumberColumn("rank", width="small")})
    rows = picked.selection.rows if picked is not None else []
    return (table[rows[0]], True) if rows else (table[0], False)


def clone_row(row: dict[str, Any], selected: bool) -> None:
    """Clone the row's best run into the Train form, or open its live view."""
    which = "selected" if selected else ("the best" if row["rank"] is not None else "none scored yet")
    # A row that wraps, the button as wide as its label: half of it at 800 px cut the label to "Clone run #2 (…".
    actions = st.container(horizontal=True, vertical_alignment="center", key="sweep_clone_row")
    if actions.button(f"Clone run #{row['best run']} ({which}) into the Train form",
                      key="clone-run", type="primary", width="content", wrap=True,
                      help="Fills every field of the Train form with that run's config; change what you like, "
                           "then Start."):
        ui.clone_into_train(row["best run"])
    actions.page_link(ui.PAGES["runs"], label=f"Open run #{row['best run']}'s live view",
                      icon=":material/monitoring:", query_params={"run": str(row["best run"])})
    st.caption("Select a row to clone or open another point. Pruned runs stopped early because their FD was worse "
               "than their sweep's at the same epoch; they rank on what they reached.")


def parallel_coordinates(sweep_id: int, spec: SweepSpec, runs: list[RunView],
                         quality: dict[int, list[dict[str, Any]]], metric: str) -> None:
    """Each run as a line through its swept values to its score, once two runs have one."""
    fields = [p.name for p in spec.params]
    per_run = [{**{f: r.config.to_dict()[f] for f in fields}, metric: run_metric(quality[r.id], metric)}
               for r in runs]
    if sum(isinstance(p[metric], (int, float)) for p in per_run) < 2:
        st.caption("The parallel-coordinates chart appears once two runs have a score.")
        return
    fig = charts.parallel_figure(per_run, fields, metric, METRICS[metric][2])
    # Parcoords writes its axis names above the plot, inside the top margin: at 60 px the first one ("lr_g")
    # sat on the title. The title goes to the very top and the axes' names get a band of their own below it.
    fig.update_layout(margin={"t": 95}, title={"y": 0.98, "yanchor": "top"})
    st.plotly_chart(fig, width="stretch", key=f"parcoords-{sweep_id}")


def best_so_far_chart(sweep: SweepView, runs: list[RunView], quality: dict[int, list[dict[str, Any]]],
                      metric: str) -> None:
    """The best score of the runs finished so far, against when each finished."""
    lower = METRICS[metric][2]
    finished = [(r.finished_at, run_metric(quality[r.id], metric)) for r in runs if r.finished_at]
    steps = best_so_far(finished, lower)
    if steps:
        fig = charts.best_so_far_figure(steps, metric, sweep.created_at, lower)
        st.plotly_chart(fig, width="stretch", key=f"best-so-far-{sweep.id}")
    elif finished:  # an empty chart said nothing: these runs ended before their first score
        st.caption(f"Best so far: none of the {len(finished)} finished run(s) has a {metric} yet (each ended "
                   f"before its first scored epoch).")
    else:
        st.caption("Best so far: no run has finished yet.")


def curves(sweep_id: int, spec: SweepSpec, runs: list[RunView], quality: dict[int, list[dict[str, Any]]],
           metric: str) -> None:
    """Every scored run's `metric` per epoch on one chart, each named by its swept values."""
    fields = [p.name for p in spec.params]
    series = {f"#{r.id} " + ", ".join(text.value_text(r.config.to_dict()[f]) for f in fields): quality[r.id]
              for r in runs if quality[r.id]}
    if series:
        st.plotly_chart(charts.curves_figure(series, METRICS[metric][0],
                                             metric.replace("final ", "").replace("best ", "")),
                        width="stretch", key=f"curves-{sweep_id}")
    else:
        st.caption("No run has a quality score yet (scored after each epoch).")


def board(sweep: SweepView, drawn: Runs) -> None:
    """Everything that changes while the sweep trains (a fragment: it refreshes while any run is live). `drawn`:
    the runs and quality rows the page run read; a refresh of the fragment alone reads them again."""
    runs, quality = read_runs(ui.get_store(), sweep.id) if ui.in_fragment_run() else drawn
    spec = SweepSpec.from_dict(sweep.spec)
    sweep_caption(sweep, spec, runs)
    mine = policy.can_manage(runs[0], ui.identity(), ui.settings()) if runs else False
    if flash := st.session_state.pop("sweep_flash", None):
        st.success(flash)
    resume_button(sweep.id, runs, mine)
    stop_button(sweep.id, runs, mine)
    if not runs:
        st.info("This sweep has no runs left (deleted or pruned from the demo).")
        return
    metric = st.selectbox("Rank by", list(METRICS), key="sweep_metric",
                          help="Mean over each point's seeds; best FD is the lowest FD of any epoch (the epoch whose "
                               "generator is kept as best-generator).")
    clone_row(*leaderboard(sweep, runs, quality, metric))
    parallel_coordinates(sweep.id, spec, runs, quality, metric)
    left, right = st.columns(2)
    with left:
        best_so_far_chart(sweep, runs, quality, metric)
    with right:
        curves(sweep.id, spec, runs, quality, metric)


def top_grids(sweep: SweepView, runs: list[RunView], quality: dict[int, list[dict[str, Any]]]) -> None:
    """The four best points by best FD (each at its best seed), their sample grids under one epoch slider."""
    st.subheader("Sample grids, epoch by epoch")
    store = ui.get_store()
    ranked = sweep_tables.sweep_board(sweep, runs, quality, "best FD")[:4] if runs else []
    top = [r for r in (store.get(best) for _, best in ranked) if r is not None]
    if not top:
        return
    scored = any(e.rank is not None for e, _ in ranked)
    st.caption(f"The {'best point' if len(top) == 1 else f'{len(top)} best points'} by best FD (each at its best "
               f"seed), side by side." if scored else "No point has a score yet: the first points, side by side.")
    ui.epoch_grids(top, key=f"sweep-epoch-{sweep.id}", per_row=4)  # four in a row: 28 px digits still read


def main() -> None:
    """The page: the sweep picker, the board (refreshed every REFRESH_S while a run of the sweep is live, else every
    ui.IDLE_REFRESH_S, so a sweep resumed from another tab or the CLI starts moving here), the top points' grids."""
    ui.bootstrap()
    st.header("Sweeps")
    store = ui.get_store()
    ui.recent_runs()  # marks silent workers' runs interrupted and names damaged rows, as every list does
    sweeps = store.list_sweeps()
    if not sweeps:
        no_sweeps_yet()
    sweep = pick_sweep(store, sweeps)
    runs, quality = read_runs(store, sweep.id)
    live = any(r.status in LIVE for r in runs)
    st.fragment(run_every=REFRESH_S if live else ui.IDLE_REFRESH_S)(board)(sweep, (runs, quality))
    top_grids(sweep, runs, quality)
    st.caption(f"Updated {time.strftime('%H:%M:%S')}.")


main()
