"""Samples: a run's fixed-noise grids epoch by epoch, a play button, and the progression as an animated GIF."""
from pathlib import Path

import streamlit as st

import ui
from gan_core import dashboard as dash

ui.bootstrap(__file__)

PLAY_S = 0.5


@st.cache_data(show_spinner="Building the GIF…", max_entries=16)
def _gif(paths: tuple[str, ...], mtimes: tuple[float, ...]) -> bytes:
    return dash.progression_gif(list(paths))


st.header("Samples")
runs = ui.list_runs()
if not runs:
    ui.no_runs_yet("No samples yet")
    st.stop()

run = ui.select_run(runs)
samples = [s for s in ui.get_store().samples(run.id) if Path(s["path"]).is_file()]
if not samples:
    st.info(f"Run #{run.id} has no sample grids yet: one is saved after every {run.config.sample_every} "
            f"epoch(s). {'It is still training; come back in a moment.' if run.status in ('queued', 'running') else ''}")
    st.stop()

epochs = [s["epoch"] for s in samples]
by_epoch = {s["epoch"]: s for s in samples}
key = f"sample_epoch-{run.id}"
playing_key = f"playing-{run.id}"
if st.session_state.get(key) not in epochs:
    st.session_state[key] = epochs[-1]


@st.fragment(run_every=PLAY_S if st.session_state.get(playing_key) else None)
def viewer() -> None:
    if st.session_state.get(playing_key):
        i = epochs.index(st.session_state[key])
        if st.session_state.pop("play_restart", False) and i + 1 == len(epochs):
            st.session_state[key] = epochs[0]  # Play at the last epoch starts over
        elif i + 1 < len(epochs):
            st.session_state[key] = epochs[i + 1]
        else:
            st.session_state[playing_key] = False
            st.rerun()  # end of the progression: a full rerun switches the timer off
    c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
    with c1:
        if len(epochs) > 1:
            st.select_slider("Epoch", options=epochs, key=key)
        else:
            st.caption(f"Epoch {epochs[0]} (the only grid so far)")
    with c2:
        if st.session_state.get(playing_key):
            if st.button("Pause", icon=":material/pause:", key="pause", width="stretch"):
                st.session_state[playing_key] = False
                st.rerun()
        elif st.button("Play", icon=":material/play_arrow:", key="play", width="stretch", disabled=len(epochs) < 2):
            st.session_state[playing_key] = True
            st.session_state["play_restart"] = True
            st.rerun()
    s = by_epoch[st.session_state[key]]
    what = ("one row per class, the same noise down each column" if run.config.conditional
            else "one row per InfoGAN code, the same noise down each column" if run.config.info_code
            else "the same 64 noise vectors every epoch")
    st.image(str(s["path"]), output_format="PNG", caption=f"epoch {s['epoch']} · step {s['step']:,} · {what}",
             width=480)


viewer()
paths = tuple(str(s["path"]) for s in samples)
try:
    data = _gif(paths, tuple(Path(p).stat().st_mtime for p in paths))
except (OSError, ValueError) as e:
    st.error(f"Could not build the GIF ({e}); the sample files may have been moved. Reload the page.")
else:
    st.download_button(f"Download the progression ({len(paths)} epochs) as GIF", data,
                       file_name=f"run-{run.id}-progression.gif", mime="image/gif", key="gif")
