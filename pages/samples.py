"""Samples: a run's fixed-noise grids epoch by epoch, a play button, and the progression as an animated GIF."""
from pathlib import Path

import numpy as np
import streamlit as st

import ui
from gan_core import dashboard as dash

ui.bootstrap(__file__)

PLAY_S = 0.5
UNREADABLE = "This sample image is unreadable: its file is damaged or not an image."


@st.cache_data(show_spinner="Building the GIF…", max_entries=16)
def _gif(paths: tuple[str, ...], mtimes: tuple[float, ...]) -> bytes:
    return dash.progression_gif(list(paths))


@st.cache_data(show_spinner=False, max_entries=256)
def _grid(path: str, mtime: float) -> np.ndarray | None:
    """A grid's pixels, or None if the file is not a readable image (cached per file version, for play and GIF)."""
    try:
        return dash.read_grid(path)
    except ValueError:
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # gone since it was listed: read_grid reports it as unreadable
        return 0.0


st.header("Samples")
runs = ui.list_runs()
if not runs:
    ui.no_runs_yet("No samples yet")
    st.stop()

run = ui.select_run(runs)
# Anything at the path is listed (a damaged file gets a note in its place); a missing file is not a sample yet.
samples = [s for s in ui.get_store().samples(run.id) if s["path"].exists()]
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
    pixels = _grid(str(s["path"]), _mtime(s["path"]))
    if pixels is None:
        st.warning(f"Epoch {s['epoch']}: {UNREADABLE}", icon=":material/broken_image:")
    else:
        st.image(pixels, output_format="PNG", caption=f"epoch {s['epoch']} · step {s['step']:,} · {what}",
                 width=480)


viewer()
# The GIF animates the readable grids only: one damaged file must not cost the whole progression.
frames = [(str(s["path"]), _mtime(s["path"])) for s in samples]
frames = [(p, t) for p, t in frames if _grid(p, t) is not None]
left_out = len(samples) - len(frames)
if not frames:
    st.caption("No GIF: every sample image of this run is unreadable.")
else:
    try:
        data = _gif(tuple(p for p, _ in frames), tuple(t for _, t in frames))
    except ValueError:  # a file damaged after it was read above: the next rerun leaves it out
        st.error("Could not build the GIF: a sample image became unreadable. Reload the page.")
    else:
        st.download_button(f"Download the progression ({len(frames)} epochs) as GIF", data,
                           file_name=f"run-{run.id}-progression.gif", mime="image/gif", key="gif")
        if left_out:
            st.caption(f"{left_out} unreadable sample image(s) left out of the GIF.")
