"""Compare: two or more runs side by side: losses on one chart, quality, sample grids moved by one epoch slider, and
the config fields that differ.

Laid out by `main`: the run picker, the losses, the quality (one chart and one real-data floor per sample count),
the sample grids, then the config differences. The page redraws by itself epoch by epoch (`ui.rerun_on_change`
on `compare.epoch_marks`), not at every step, which the live view on Runs is for.
"""
from typing import Any

import streamlit as st

import ui
from gan_core.runs.status import LIVE
from gan_core.runs.store import RunView
from gan_core.web import charts, compare, real_floor, text


def pick_runs() -> tuple[dict[int, RunView], list[int]]:
    """(the runs offered by id, the ids chosen): at least two, or a note and the page stops."""
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
    return by_id, chosen


def losses(series: dict[str, list[dict[str, Any]]]) -> None:
    """Every chosen run's G and D losses on one chart, smoothed alike."""
    smoothing = st.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="compare_smoothing")
    if not any(series.values()):
        st.info("None of these runs has recorded metrics yet.")
        return
    st.plotly_chart(charts.compare_figure({k: v for k, v in series.items() if v}, smoothing), width="stretch",
                    key="compare-loss")
    empty = [k for k, v in series.items() if not v]
    if empty:
        st.caption(f"No metrics yet for {text.plain(', '.join(empty))}.")


def quality_group(n: int, group: dict[str, list[dict[str, Any]]], floor: dict[str, Any] | None) -> None:
    """The runs scored with `n` samples: their quality per epoch against the floor, and their newest epoch's
    fidelity against diversity."""
    # One above the other: side by side, each was under 300 px wide in an 800 px window
    st.plotly_chart(charts.quality_figure(group, floor), width="stretch", key=f"compare-quality-{n}")
    newest = {k: v[-1] for k, v in group.items()}
    if not any(r.get("precision") is not None for r in newest.values()):
        st.caption("These runs were scored before precision and recall were measured: no fidelity vs "
                   "diversity scatter.")
        return
    st.plotly_chart(charts.fidelity_scatter(newest, floor if charts.floor_matches(
        next(iter(group.values())), floor) else None), width="stretch", key=f"compare-pr-{n}")
    old = [k for k, r in newest.items() if r.get("precision") is None]
    if old:
        st.caption(f"Not in the scatter: {text.plain(', '.join(old))} (scored before precision and "
                   f"recall were measured).")


def floor_when_ready(waiting: list[tuple[str, int]]) -> None:
    """Polls until every floor still being measured is known, then reruns the page to draw it (once per machine,
    then on disk)."""
    if not any(real_floor.quality_floor_nowait(*key)[1] for key in waiting):
        st.rerun()
    st.caption("Measuring the real-data floor on this server (once); it appears here when ready.")


def quality(by_id: dict[int, RunView], chosen: list[int], label: dict[int, str],
            rows: dict[str, list[dict[str, Any]]]) -> None:
    """The quality summary, then one group of charts per sample count: KID, precision, recall and coverage move
    with the sample count (and FD's bias too), so one chart and one floor per n. Drawn without a floor still being
    measured; it is added when known."""
    if not any(rows.values()):
        return
    st.subheader("Quality")
    st.dataframe(charts.quality_summary(rows), hide_index=True, width="stretch", key="compare-summary",
                 column_config={k: st.column_config.NumberColumn(k, format=f)
                                for k, f in charts.SUMMARY_FORMATS.items()})
    groups = charts.group_by_n({i: rows[label[i]] for i in chosen})
    waiting = []
    for n, ids in groups.items():
        if len(groups) > 1:
            st.markdown(f"**Runs scored with {n:,} samples**: {text.plain(', '.join(label[i] for i in ids))}")
        floor, why_none, pending = real_floor.shared_floor_nowait([by_id[i] for i in ids],
                                                                  [rows[label[i]] for i in ids])
        if pending:
            waiting.append(pending)
        quality_group(n, {label[i]: rows[label[i]] for i in ids}, floor)
        if why_none:
            st.caption(why_none)
    if len(groups) > 1:
        st.caption("Runs scored with different sample counts are drawn apart: precision, recall, coverage and KID "
                   "move with the sample count, so only numbers at the same count compare.")
    if waiting:
        st.fragment(run_every=2)(floor_when_ready)(waiting)


def config_differences(by_id: dict[int, RunView], chosen: list[int], label: dict[int, str]) -> None:
    """The config fields whose values differ between the chosen runs."""
    st.subheader("Config differences")
    diff = compare.config_diff({label[i]: by_id[i].config for i in chosen})
    if diff:
        st.dataframe(diff, hide_index=True, width="stretch")
    else:
        st.success("The configs are identical.")


def main() -> None:
    """The page: the runs picked, their losses, quality, sample grids and config differences."""
    ui.bootstrap()
    st.header("Compare runs")
    by_id, chosen = pick_runs()
    store = ui.get_store()
    # A chosen run's new epoch (its grid and scores, and its losses up to there) or a run starting or ending redraws
    # the page by itself.
    ui.rerun_on_change(lambda: compare.epoch_marks(store, chosen), compare.epoch_marks(store, chosen),
                       live=any(by_id[i].status in LIVE for i in chosen))
    label = {i: f"#{i} {by_id[i].name}" for i in chosen}
    losses({label[i]: store.step_metrics(i) for i in chosen})
    quality(by_id, chosen, label, {label[i]: store.quality(i) for i in chosen})
    st.subheader("Sample grids")
    ui.epoch_grids([by_id[i] for i in chosen], key="compare_epoch")
    config_differences(by_id, chosen, label)


main()
