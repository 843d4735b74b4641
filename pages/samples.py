"""Samples: a run's fixed-noise grids epoch by epoch, a play button, and the progression as an animated GIF.

Laid out by `main`: the run picker, the `viewer` (a fragment: the epoch slider or the playing GIF, and the grid),
then the progression's download. New epochs of a live run redraw the page by themselves (`watch_for_grids`).
"""
import time
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

import ui
from gan_core.runs.status import LIVE, RunStatus
from gan_core.runs.store import RunView, Store
from gan_core.sampling import gif_bytes, png_at_width
from gan_core.web import images, text

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


def epoch_key(run_id: int) -> str:
    """The session key of the epoch the slider shows."""
    return f"sample_epoch-{run_id}"


def playing_key(run_id: int) -> str:
    """The session key of the playback under way: (the epochs played, when it started)."""
    return f"playing-{run_id}"


def saved_samples(store: Store, run: RunView) -> list[dict[str, Any]]:
    """The run's saved grids: anything at the path is listed (a damaged file gets a note in its place); a missing
    file is not a sample yet."""
    return [s for s in store.samples(run.id) if s["path"].exists()]


def watch_for_grids(store: Store, run: RunView, samples: list[dict[str, Any]]) -> None:
    """Rerun the page when the run saves a new grid or starts or stops being live (one resumed from another tab
    starts being watched). Unchanged while Play runs: its GIF is not cut short by a new epoch, which comes with the
    next look after it."""
    drawn = (tuple(s["epoch"] for s in samples), run.status in LIVE)

    def read() -> tuple[tuple[int, ...], bool]:
        if st.session_state.get(playing_key(run.id)):
            return drawn
        now = store.get(run.id)
        return tuple(s["epoch"] for s in saved_samples(store, run)), now is not None and now.status in LIVE
    ui.rerun_on_change(read, drawn, live=run.status in LIVE)


def no_grids_yet(run: RunView) -> None:
    """Why the run has no grid to show (yet, or ever); stops the page."""
    later = {RunStatus.QUEUED: "It is queued: its first grid shows here once a worker has trained an epoch.",
             RunStatus.RUNNING: "It is training: its first grid shows here when it is saved."}
    if run.status in LIVE:
        st.info(f"Run #{run.id} has no sample grids yet: one is saved after every {run.config.sample_every} "
                f"epoch(s). {later.get(run.status, '')}")
    else:
        st.info(f"Run #{run.id} has no sample grids: it ended ({run.status}) before it saved one.")
    st.stop()


def follow_newest(run_id: int, epochs: list[int]) -> None:
    """Someone looking at the newest grid keeps looking at the newest as epochs arrive; an earlier one chosen
    stays."""
    key, newest_key = epoch_key(run_id), f"sample_newest-{run_id}"
    if st.session_state.get(key) not in epochs or st.session_state.get(key) == st.session_state.get(newest_key):
        st.session_state[key] = epochs[-1]
    st.session_state[newest_key] = epochs[-1]


def play_state(run_id: int) -> tuple[list[int], float] | None:
    """(the epochs being played, when playback started) while playing, else None."""
    return st.session_state.get(playing_key(run_id))


def frame_now(played: list[int], t0: float) -> int:
    """The epoch the browser's GIF shows now (it keeps its own time: PLAY_S a frame from t0)."""
    return played[min(len(played) - 1, max(0, int((time.time() - t0) / PLAY_S)))]


def controls(run_id: int, epochs: list[int], playing: tuple[list[int], float] | None) -> None:
    """The epoch slider and Play, or while playing what plays and Pause (which keeps the epoch it reached)."""
    key = epoch_key(run_id)
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
                st.session_state[key] = frame_now(*playing)
                st.session_state.pop(playing_key(run_id))
                st.rerun()
        elif st.button("Play", icon=":material/play_arrow:", key="play", width="stretch", disabled=len(epochs) < 2):
            i = epochs.index(st.session_state[key])
            start = 0 if i + 1 == len(epochs) else i  # Play at the last epoch starts over
            st.session_state[playing_key(run_id)] = (epochs[start:], time.time())
            st.rerun()


def what_rows_show(run: RunView) -> str:
    """What the grid's rows and columns hold, for its caption."""
    return ("one row per class, the same noise down each column" if run.config.conditional
            else "one row per InfoGAN code, the same noise down each column" if run.config.info_code
            else "the same 64 noise vectors every epoch")


def viewer(run: RunView, samples: list[dict[str, Any]]) -> None:
    """The controls and the chosen epoch's grid, or the played epochs as one GIF. A fragment: while playing it
    reruns once when the animation ends, to put the slider on the epoch it reached."""
    by_epoch = {s["epoch"]: s for s in samples}
    playing = play_state(run.id)
    if playing and time.time() >= playing[1] + len(playing[0]) * PLAY_S:
        st.session_state[epoch_key(run.id)] = playing[0][-1]
        st.session_state.pop(playing_key(run.id))
        st.rerun()  # the end: a full rerun switches the timer off
    controls(run.id, [s["epoch"] for s in samples], playing)
    what = what_rows_show(run)
    if playing:
        shown = [(str(by_epoch[e]["path"]), _mtime(by_epoch[e]["path"])) for e in playing[0]]
        shown = [(p, t) for p, t in shown if _grid(p, t) is not None]
        if shown:
            gif = _play_gif(tuple(p for p, _ in shown), tuple(t for _, t in shown))
            # At its own size: a GIF Streamlit had to shrink would lose its animation.
            st.image(gif, caption=f"epochs {playing[0][0]}–{playing[0][-1]} · {what}")
        return
    s = by_epoch[st.session_state[epoch_key(run.id)]]
    pixels = _grid(str(s["path"]), _mtime(s["path"]))
    if pixels is None:
        st.warning(f"Epoch {s['epoch']}: {UNREADABLE}", icon=":material/broken_image:")
    else:
        st.image(png_at_width(pixels, pixels.shape[1] * 2), output_format="PNG",
                 caption=f"epoch {s['epoch']} · step {s['step']:,} · {what}")  # the size the GIF plays at


def gif_download(run: RunView, samples: list[dict[str, Any]]) -> None:
    """The progression as one GIF to download, of the readable grids only: one damaged file must not cost the whole
    progression."""
    frames = [(str(s["path"]), _mtime(s["path"])) for s in samples]
    frames = [(p, t) for p, t in frames if _grid(p, t) is not None]
    left_out = len(samples) - len(frames)
    if not frames:
        st.caption("No GIF: every sample image of this run is unreadable.")
        return
    if len(frames) == 1:
        st.caption("The progression GIF comes once a second epoch's grid is saved.")
        return
    try:
        data = _gif(tuple(p for p, _ in frames), tuple(t for _, t in frames))
    except ValueError:  # a file damaged after it was read above: the next rerun leaves it out
        st.error("Could not build the GIF: a sample image became unreadable. Reload the page.")
        return
    st.download_button(f"Download the progression ({text.grid_caption_epochs(len(frames))}) as GIF", data,
                       file_name=f"run-{run.id}-progression.gif", mime="image/gif", key="gif")
    if left_out:
        st.caption(f"{left_out} unreadable sample image(s) left out of the GIF.")


def main() -> None:
    """The page. Play shows the epochs as one animated GIF at PLAY_S a frame, played by the browser: it keeps time
    however busy the server is (a fragment rerun per frame cannot keep PLAY_S a frame on a machine that trains;
    BENCHMARKS.md); the viewer reruns once when it ends."""
    ui.bootstrap()
    st.header("Samples")
    runs = ui.recent_runs()  # the newest runs and the one the link names: never every row
    if not runs:
        ui.no_runs_yet("No samples yet")
        st.stop()
    run = ui.select_run(runs)
    store = ui.get_store()
    samples = saved_samples(store, run)
    watch_for_grids(store, run, samples)
    if not samples:
        no_grids_yet(run)
    follow_newest(run.id, [s["epoch"] for s in samples])
    playing = play_state(run.id)
    ends_in = playing[1] + len(playing[0]) * PLAY_S - time.time() + 0.3 if playing else None
    st.fragment(run_every=max(0.5, ends_in) if ends_in is not None else None)(viewer)(run, samples)
    gif_download(run, samples)


main()
