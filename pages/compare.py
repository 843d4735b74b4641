"""Compare: two or more runs side by side: losses on one chart, quality, sample grids moved by one epoch slider, and
the config fields that differ."""
import streamlit as st

import ui
from gan_core.web import charts, compare, real_floor, text
from gan_core.runs.status import LIVE

ui.bootstrap()

st.header("Compare runs")
runs = ui.recent_runs(also=st.session_state.get("compare_runs") or [])  # never every row
if len(runs) < 2:
    if not runs:
        ui.no_runs_yet("Nothing to compare")
    else:
        st.info("Comparing needs at least two runs; queue another one on the Train page.")
        if st.button("Go to Train", type="primary"):
            st.switch_page(ui.PAGES["train"])
    st.stop()

by_id = {r.id: r for r in runs}
chosen = st.multiselect("Runs", list(by_id), default=list(by_id)[:2], key="compare_runs",
                        format_func=lambda i: text.run_label(by_id[i]))
if len(chosen) < 2:
    st.info("Pick at least two runs.")
    st.stop()

store = ui.get_store()
# A chosen run's new epoch (its grid and scores, and its losses up to there) or a run starting or ending redraws
# the page by itself: epoch by epoch, not at every step, which the live view on Runs is for.
ui.rerun_on_change(lambda: compare.epoch_marks(store, chosen), compare.epoch_marks(store, chosen),
                   live=any(by_id[i].status in LIVE for i in chosen))
label = {i: f"#{i} {by_id[i].name}" for i in chosen}
smoothing = st.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="compare_smoothing")
series = {label[i]: store.step_metrics(i) for i in chosen}
if any(series.values()):
    st.plotly_chart(charts.compare_figure({k: v for k, v in series.items() if v}, smoothing), width="stretch",
                    key="compare-loss")
    empty = [k for k, v in series.items() if not v]
    if empty:
        st.caption(f"No metrics yet for {text.plain(', '.join(empty))}.")
else:
    st.info("None of these runs has recorded metrics yet.")

quality = {label[i]: store.quality(i) for i in chosen}
if any(quality.values()):
    st.subheader("Quality")
    st.dataframe(charts.quality_summary(quality), hide_index=True, width="stretch", key="compare-summary",
                 column_config={k: st.column_config.NumberColumn(k, format=f)
                                for k, f in charts.SUMMARY_FORMATS.items()})
    # KID, precision, recall and coverage move with the sample count (and FD's bias too): one chart, one floor per n
    groups = charts.group_by_n({i: quality[label[i]] for i in chosen})
    waiting = []
    for n, ids in groups.items():
        if len(groups) > 1:
            st.markdown(f"**Runs scored with {n:,} samples**: {text.plain(', '.join(label[i] for i in ids))}")
        floor, why_none, pending = real_floor.shared_floor_nowait([by_id[i] for i in ids],
                                                                  [quality[label[i]] for i in ids])
        if pending:
            waiting.append(pending)
        group = {label[i]: quality[label[i]] for i in ids}
        # One above the other: side by side, each was under 300 px wide in an 800 px window
        st.plotly_chart(charts.quality_figure(group, floor), width="stretch", key=f"compare-quality-{n}")
        newest = {k: v[-1] for k, v in group.items()}
        if any(r.get("precision") is not None for r in newest.values()):
            st.plotly_chart(charts.fidelity_scatter(newest, floor if charts.floor_matches(
                next(iter(group.values())), floor) else None), width="stretch", key=f"compare-pr-{n}")
            old = [k for k, r in newest.items() if r.get("precision") is None]
            if old:
                st.caption(f"Not in the scatter: {text.plain(', '.join(old))} (scored before precision and "
                           f"recall were measured).")
        else:
            st.caption("These runs were scored before precision and recall were measured: no fidelity vs "
                       "diversity scatter.")
        if why_none:
            st.caption(why_none)
    if len(groups) > 1:
        st.caption("Runs scored with different sample counts are drawn apart: precision, recall, coverage and KID "
                   "move with the sample count, so only numbers at the same count compare.")
    if waiting:  # drawn without the floor now; a full rerun adds it once measured (once per machine, then on disk)
        @st.fragment(run_every=2)
        def _floor_when_ready() -> None:
            if not any(real_floor.quality_floor_nowait(*key)[1] for key in waiting):
                st.rerun()
            st.caption("Measuring the real-data floor on this server (once); it appears here when ready.")
        _floor_when_ready()

st.subheader("Sample grids")
ui.epoch_grids([by_id[i] for i in chosen], key="compare_epoch")

st.subheader("Config differences")
diff = compare.config_diff({label[i]: by_id[i].config for i in chosen})
if diff:
    st.dataframe(diff, hide_index=True, width="stretch")
else:
    st.success("The configs are identical.")
