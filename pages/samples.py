"""Samples: a run's fixed-noise grids epoch by epoch, a play button, and the progression as an animated GIF."""
import time
from pathlib import Path

import numpy as np
import streamlit as st

import ui
from gan_core.web import images, text
from gan_core.sampling import gif_bytes, png_at_width
from gan_core.runs.status import LIVE, RunStatus

ui.bootstrap()

PLAY_S = 0.5
UNREADABLE = "This sample image is unreadable: its file is damaged or not an image."


@st.cache_data(show_spinner="Building the GIF…", max_entries=16)
def _gif(paths: tuple[str, ...], mtimes: tuple[float, ...]) -> bytes:
    return images.progression_gif(list(paths))


@st.cache_data(show_spinner=False, max_entries=16)
def _play_gif(paths: tuple[str, ...], mtimes: tuple[float, ...]) -> bytes:
    """The frames Play shows: PLAY_S a frame, played once, stopping on the last."""
    return gif_bytes([images.read_grid(p) for p in paths], ms_per_frame=int(PLAY_S * 1000), loop=False)


@st.cache_data(show_spinner=False, max_entries=256)
def _grid(path: str, mtime: float) -> np.ndarray | None:
    """A grid's pixels, or None if the file is not a readable image (cached per file version, for play and GIF)."""
    try:
        return images.read_grid(path)
    except ValueError:
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # gone since it was listed: read_grid reports it as unreadable
        return 0.0


st.header("Samples")
runs = ui.recent_runs()  # the newest runs and the one the link names: never every row
if not runs:
    ui.no_runs_yet("No samples yet")
    st.stop()

run = ui.select_run(runs)
store = ui.get_store()
key = f"sample_epoch-{run.id}"
playing_key = f"playing-{run.id}"


def _shown() -> tuple[tuple[int, ...], bool]:
    """What this page draws from: the run's saved grids (anything at the path is listed, a damaged file gets a note
    in its place; a missing file is not a sample yet) and whether the run is live. Unchanged while Play runs:
    its GIF is not cut short by a new epoch, which comes with the next look after it."""
    if st.session_state.get(playing_key):
        return drawn
    r = store.get(run.id)
    return (tuple(s["epoch"] for s in store.samples(run.id) if s["path"].exists()),
            r is not None and r.status in LIVE)


samples = [s for s in store.samples(run.id) if s["path"].exists()]
drawn = (tuple(s["epoch"] for s in samples), run.status in LIVE)
# New epochs of a live run show by themselves (and one resumed from another tab starts being watched).
ui.rerun_on_change(_shown, drawn, live=run.status in LIVE)
if not samples:
    later = {RunStatus.QUEUED: "It is queued: its first grid shows here once a worker has trained an epoch.",
             RunStatus.RUNNING: "It is training: its first grid shows here when it is saved."}
    if run.status in LIVE:
        st.info(f"Run #{run.id} has no sample grids yet: one is saved after every {run.config.sample_every} "
                f"epoch(s). {later.get(run.status, '')}")
    else:
        st.info(f"Run #{run.id} has no sample grids: it ended ({run.status}) before it saved one.")
    st.stop()

epochs = [s["epoch"] for s in samples]
by_epoch = {s["epoch"]: s for s in samples}
newest_key = f"sample_newest-{run.id}"
# Someone looking at the newest grid keeps looking at the newest as epochs arrive; an earlier one chosen stays.
if st.session_state.get(key) not in epochs or st.session_state.get(key) == st.session_state.get(newest_key):
    st.session_state[key] = epochs[-1]
st.session_state[newest_key] = epochs[-1]


def _play_state() -> tuple[list[int], float] | None:
    """(the epochs being played, when playback started) while playing, else None."""
    return st.session_state.get(playing_key)


def _frame_now(played: list[int], t0: float) -> int:
    """The epoch the browser's GIF shows now (it keeps its own time: PLAY_S a frame from t0)."""
    return played[min(len(played) - 1, max(0, int((time.time() - t0) / PLAY_S)))]


playing = _play_state()
# Play shows the epochs as one animated GIF at PLAY_S a frame, played by the browser: it keeps time however busy the
# server is (a fragment rerun per frame took 1.0-2.2 s a frame for 0.5 s on a training machine). One fragment rerun
# when it ends (or Pause) puts the slider on the epoch the animation reached.
@st.fragment(run_every=max(0.5, playing[1] + len(playing[0]) * PLAY_S - time.time() + 0.3) if playing else None)
def viewer() -> None:
    playing = _play_state()
    if playing and time.time() >= playing[1] + len(playing[0]) * PLAY_S:
        st.session_state[key] = playing[0][-1]
        st.session_state.pop(playing_key)
        st.rerun()  # the end: a full rerun switches the timer off
    c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
    with c1:
        if playing:
            st.caption(f"Playing epochs {playing[0][0]}–{playing[0][-1]} at {PLAY_S:g} s an epoch")
        elif len(epochs) > 1:
            st.select_slider("Epoch", options=epochs, key=key)
        else:
            st.caption(f"Epoch {epochs[0]} (the only grid so far)")
    with c2:
        if playing:
            if st.button("Pause", icon=":material/pause:", key="pause", width="stretch"):
                st.session_state[key] = _frame_now(*playing)
                st.session_state.pop(playing_key)
                st.rerun()
        elif st.button("Play", icon=":material/play_arrow:", key="play", width="stretch", disabled=len(epochs) < 2):
            i = epochs.index(st.session_state[key])
            start = 0 if i + 1 == len(epochs) else i  # Play at the last epoch starts over
            st.session_state[playing_key] = (epochs[start:], time.time())
            st.rerun()
    what = ("one row per class, the same noise down each column" if run.config.conditional
            else "one row per InfoGAN code, the same noise down each column" if run.config.info_code
            else "the same 64 noise vectors every epoch")
    if playing:
        shown = [(str(by_epoch[e]["path"]), _mtime(by_epoch[e]["path"])) for e in playing[0]]
        shown = [(p, t) for p, t in shown if _grid(p, t) is not None]
        if shown:
            gif = _play_gif(tuple(p for p, _ in shown), tuple(t for _, t in shown))
            st.image(gif, caption=f"epochs {playing[0][0]}–{playing[0][-1]} · {what}")  # its own size: a GIF
            # Streamlit had to shrink would lose its animation
        return
    s = by_epoch[st.session_state[key]]
    pixels = _grid(str(s["path"]), _mtime(s["path"]))
    if pixels is None:
        st.warning(f"Epoch {s['epoch']}: {UNREADABLE}", icon=":material/broken_image:")
    else:
        st.image(png_at_width(pixels, pixels.shape[1] * 2), output_format="PNG",
                 caption=f"epoch {s['epoch']} · step {s['step']:,} · {what}")  # the size the GIF plays at


viewer()
# The GIF animates the readable grids only: one damaged file must not cost the whole progression.
frames = [(str(s["path"]), _mtime(s["path"])) for s in samples]
frames = [(p, t) for p, t in frames if _grid(p, t) is not None]
left_out = len(samples) - len(frames)
if not frames:
    st.caption("No GIF: every sample image of this run is unreadable.")
elif len(frames) == 1:
    st.caption("The progression GIF comes once a second epoch's grid is saved.")
else:
    try:
        data = _gif(tuple(p for p, _ in frames), tuple(t for _, t in frames))
    except ValueError:  # a file damaged after it was read above: the next rerun leaves it out
        st.error("Could not build the GIF: a sample image became unreadable. Reload the page.")
    else:
        st.download_button(f"Download the progression ({text.grid_caption_epochs(len(frames))}) as GIF", data,
                           file_name=f"run-{run.id}-progression.gif", mime="image/gif", key="gif")
        if left_out:
            st.caption(f"{left_out} unreadable sample image(s) left out of the GIF.")
