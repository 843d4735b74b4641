"""Sweeps: a sweep's leaderboard (points ranked by a quality metric, mean ± std over seeds, each with its final grid
and a link to its live view), its parallel coordinates, the best score so far, every run's curve on one chart, and
one epoch slider over the top runs' sample grids. "Clone" fills the Train form with a run's config."""
import time

import streamlit as st

import ui
from gan_core.web import charts, sweep_tables, text
from gan_core.runs import policy
from gan_core.config import ConfigError
from gan_core.runs.status import LIVE
from gan_core.runs.sweep import METRICS, RESUME_STATUSES, SweepSpec, best_so_far, run_metric

ui.bootstrap()
REFRESH_S = 3.0


st.header("Sweeps")
store = ui.get_store()
ui.recent_runs()  # marks silent workers' runs interrupted and names damaged rows, as every list does
sweeps = store.list_sweeps()
if not sweeps:
    st.info("No sweeps yet. A sweep queues one run per point of a grid or random search over the fields you choose, "
            "and ranks them here. Start one on the Train page (mode: Sweep) or with `python -m gan_core sweep`.")
    if st.button("Go to Train", type="primary"):
        st.session_state["train_mode"] = "Sweep"
        st.switch_page(ui.PAGES["train"])
    st.stop()

by_id = {s.id: s for s in sweeps}
left = store.sweep_run_counts()  # runs each sweep still has (pruned from the demo or deleted: none)
want = text.parse_id(st.query_params.get("sweep"))
ids = list(by_id)
# The newest sweep that still has runs, unless the URL names one: an emptied sweep has nothing to show.
index = (ids.index(want) if want in by_id
         else next((i for i, sid in enumerate(ids) if left.get(sid)), 0))
chosen = st.selectbox("Sweep", ids, index=index, key="sweep_picker",
                      format_func=lambda i: f"#{i} {by_id[i].name} ({by_id[i].owner or 'no owner'}) · "
                                            + (f"{left[i]} run{'' if left[i] == 1 else 's'}" if left.get(i)
                                               else "no runs left"))
ui.warn_unknown_link("sweep", want in by_id, chosen)
if st.query_params.get("sweep") != str(chosen):
    st.query_params["sweep"] = str(chosen)
sweep = by_id[chosen]
spec = SweepSpec.from_dict(sweep.spec)


def board(sweep_id: int) -> None:
    """Everything that changes while the sweep trains (a fragment: it refreshes while any run is live)."""
    runs = store.sweep_runs(sweep_id)
    counts = {s: sum(r.status == s for r in runs) for s in dict.fromkeys(r.status for r in runs)}
    st.caption(f"{text.plain(spec.describe())} · base {sweep.base.arch} on {sweep.base.dataset}, {sweep.base.epochs} "
               f"epoch{'' if sweep.base.epochs == 1 else 's'} · owner {text.plain(sweep.owner or '–')} · "
               + (", ".join(f"{n} {s}" for s, n in counts.items()) or "no runs left"))
    live = [r for r in runs if r.status in LIVE]
    mine = policy.can_manage(runs[0], ui.identity(), ui.settings()) if runs else False
    if flash := st.session_state.pop("sweep_flash", None):
        st.success(flash)
    resumable = [r for r in runs if r.status in RESUME_STATUSES]
    if resumable:
        n = len(resumable)
        if st.button(f"Resume the sweep ({n} stopped or interrupted run{'' if n == 1 else 's'})",
                     key=f"resume-sweep-{sweep_id}", icon=":material/play_arrow:", disabled=not mine,
                     help="Queues them again, each to continue from its newest checkpoint. Pruned, failed and done "
                          "runs stay as they are (resume one of those on the Runs page)."
                          + ("" if mine else " Only the sweep's owner or an admin may resume it.")):
            try:
                queued = policy.resume_sweep(store, sweep_id, ui.identity(), ui.settings())
            except (policy.PolicyError, ConfigError) as e:
                st.error(f"Nothing was resumed: {text.plain(str(e))}")
            else:
                if queued:
                    ui.ensure_worker()
                st.session_state["sweep_flash"] = (
                    f"Queued {len(queued)} run(s) to resume: " + ", ".join(f"#{i}" for i in queued) if queued
                    else "Nothing was left to resume.")
                st.rerun()  # the whole page: its refresh timer starts again now that runs are live
    if live:
        if st.button(f"Stop the sweep ({len(live)} live runs)", key=f"stop-sweep-{sweep_id}", disabled=not mine,
                     help=None if mine else "Only the sweep's owner or an admin may stop it."):
            try:
                asked = policy.stop_sweep(store, sweep_id, ui.identity(), ui.settings())
            except policy.PolicyError as e:
                st.error(text.plain(str(e)))  # may name the owner: user text
            else:
                st.success(f"Asked {asked} run(s) to stop; each checkpoints first.")
    if not runs:
        st.info("This sweep has no runs left (deleted or pruned from the demo).")
        return
    metric = st.selectbox("Rank by", list(METRICS), key="sweep_metric",
                          help="Mean over each point's seeds; best FD is the lowest FD of any epoch (the epoch whose "
                               "generator is kept as best-generator).")
    lower = METRICS[metric][2]
    quality = {r.id: store.quality(r.id) for r in runs}
    table = sweep_tables.sweep_table(store, sweep, runs, quality, metric)
    # One seed a point: the std is always empty and "scores" repeats the mean (rounded harder), so both go.
    hide = {"± std", "scores", "seeds"} if all(r["seeds"] <= 1 for r in table) else set()
    st.subheader("Leaderboard")
    picked = st.dataframe(
        table, hide_index=True, width="stretch", key=f"leaderboard-{sweep_id}", on_select="rerun",
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
    row = table[rows[0]] if rows else table[0]
    which = "selected" if rows else ("the best" if row["rank"] is not None else "none scored yet")
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

    fields = [p.name for p in spec.params]
    per_run = [{**{f: r.config.to_dict()[f] for f in fields}, metric: run_metric(quality[r.id], metric)}
               for r in runs]
    if sum(isinstance(p[metric], (int, float)) for p in per_run) >= 2:
        fig = charts.parallel_figure(per_run, fields, metric, lower)
        # Parcoords writes its axis names above the plot, inside the top margin: at 60 px the first one ("lr_g")
        # sat on the title. The title goes to the very top and the axes' names get a band of their own below it.
        fig.update_layout(margin={"t": 95}, title={"y": 0.98, "yanchor": "top"})
        st.plotly_chart(fig, width="stretch", key=f"parcoords-{sweep_id}")
    else:
        st.caption("The parallel-coordinates chart appears once two runs have a score.")
    finished = [(r.finished_at, run_metric(quality[r.id], metric)) for r in runs if r.finished_at]
    steps = best_so_far(finished, lower)
    left, right = st.columns(2)
    with left:
        if steps:
            fig = charts.best_so_far_figure(steps, metric, sweep.created_at, lower)
            st.plotly_chart(fig, width="stretch", key=f"best-so-far-{sweep_id}")
        elif finished:  # an empty chart said nothing: these runs ended before their first score
            st.caption(f"Best so far: none of the {len(finished)} finished run(s) has a {metric} yet (each ended "
                       f"before its first scored epoch).")
        else:
            st.caption("Best so far: no run has finished yet.")
    with right:
        key = METRICS[metric][0]
        series = {f"#{r.id} " + ", ".join(text.value_text(r.config.to_dict()[f]) for f in fields): quality[r.id]
                  for r in runs if quality[r.id]}
        if series:
            st.plotly_chart(charts.curves_figure(series, key, metric.replace("final ", "").replace("best ", "")),
                            width="stretch", key=f"curves-{sweep_id}")
        else:
            st.caption("No run has a quality score yet (scored after each epoch).")


# Idle, the board still looks every ui.IDLE_REFRESH_S: a sweep resumed from another tab or the CLI starts moving here.
st.fragment(run_every=REFRESH_S if any(r.status in LIVE for r in store.sweep_runs(chosen)) else ui.IDLE_REFRESH_S
            )(board)(chosen)

st.subheader("Sample grids, epoch by epoch")
runs = store.sweep_runs(chosen)
board_best = sweep_tables.sweep_board(sweep, runs, {r.id: store.quality(r.id) for r in runs}, "best FD") if runs else []
top = [r for r in (store.get(best) for _, best in board_best[:4]) if r is not None]
if top:
    scored = any(e.rank is not None for e, _ in board_best[:4])
    st.caption(f"The {'best point' if len(top) == 1 else f'{len(top)} best points'} by best FD (each at its best "
               f"seed), side by side." if scored else "No point has a score yet: the first points, side by side.")
    ui.epoch_grids(top, key=f"sweep-epoch-{chosen}", per_row=4)  # four in a row: 28 px digits still read
st.caption(f"Updated {time.strftime('%H:%M:%S')}.")
