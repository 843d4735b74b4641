"""Generate: digits from a run's trained generator; the same seed always draws the same grid; slerp strips.

Laid out top to bottom by `main`: where the generator comes from (a run, a pretrained generator, an upload), its
class and seed controls, rejection, the grid and its download, a sample's nearest training digits, then a latent
interpolation.
"""
import random
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

import ui
from gan_core import neighbours, rejection
from gan_core.checkpoint import CheckpointError, load_discriminator, load_generator, read_header, shipped_generators
from gan_core.config import TrainConfig
from gan_core.data import CLASS_NAMES
from gan_core.runs import policy, uploads
from gan_core.runs.status import RunStatus
from gan_core.runs.store import RunView
from gan_core.sampling import class_rows, generate, grid, interpolate, png_at_width, png_bytes, to_uint8
from gan_core.web import images, text


@st.cache_resource(show_spinner="Loading the generator…", max_entries=8)
def _generator(path: str, mtime: float):
    """(G, config, header); the mtime in the key reloads a generator the worker has since overwritten."""
    return load_generator(path)


@st.cache_resource(show_spinner="Calibrating the discriminator on training digits…", max_entries=4)
def _rejector(path: str, mtime: float):
    """(D, its calibration) for rejection, or (None, why not) when the file carries no D or calibration failed."""
    try:  # a file stored before uploads were checked tensor by tensor may carry a broken D: refused, not a crash
        d = load_discriminator(path)
    except CheckpointError as e:
        return None, f"its discriminator cannot be used ({text.plain(e.reason)})"
    if d is None:
        return None, "this file carries no discriminator (exports written before rejection existed do not)"
    g, cfg, _ = load_generator(path)
    home = ui.get_store().home
    try:  # once per file content (kept on disk), on fewer digits for an upload
        return d, rejection.cached_calibration(path, g, d, cfg, rejection.calibrations_dir(home),
                                               uploads.calibration_digits(home, Path(path)))
    except (OSError, ValueError, RuntimeError) as e:  # no training data here to calibrate D on
        return None, f"its discriminator could not be calibrated on training digits here ({text.shown_error(e)})"


REJECT_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _random_seed() -> None:
    st.session_state["gen_seed"] = random.randrange(0, 2**31 - 1)


def _seed_b_set() -> None:
    """"to seed" follows seed + 1 until the user types another value (typing seed + 1 itself follows again)."""
    st.session_state["gen_seed_b_own"] = st.session_state["gen_seed_b"] != _next(st.session_state["gen_seed"])


def _next(seed: int) -> int:
    return min(int(seed) + 1, 2**31 - 1)


def _refused(what: str, reason: str) -> None:
    """An error in words for people, the technical reason one click away."""
    st.error(f"{what}. {text.plain_checkpoint_error(reason)}")
    with st.expander("Technical details"):
        st.code(reason, language=None, wrap_lines=True)


def uploaded_generator() -> Path:
    """The uploader, and the path of the generator it holds (checked and stored by gan_core.runs.uploads, once per
    upload); stops the page with a note until there is one."""
    me = ui.identity()  # the key and the client's address: the upload limits and quotas count both
    owner_key = me.key
    if not owner_key:  # uploads cost the server disk: only people it can hold to a quota may send them
        st.info("Sign in to upload a generator. Runs and pretrained generators need no account.")
        st.stop()
    up = st.file_uploader("A GAN Studio `generator.safetensors` (or a full checkpoint)", type=["safetensors"])
    if up is None:
        st.info("Upload a `.safetensors` file written by GAN Studio; nothing is ever unpickled.")
        st.stop()
    home = ui.get_store().home
    try:  # checked in memory, then stored within the quotas; a rerun (seed, grid size...) reuses the stored file
        path, kept = uploads.kept_or_stored(home, owner_key, up.file_id, up.getvalue(), ui.settings(),
                                            st.session_state.get("gen_upload"), address=me.address)
    except (CheckpointError, uploads.UploadError) as e:
        _refused("This file was not accepted", uploads.public_reason(e, home))
        st.stop()
    st.session_state["gen_upload"] = kept
    return path


NN_PX = 112  # on-screen size of the sample and of each nearest training image


@st.cache_resource(show_spinner=False, max_entries=4)
def _train_index(dataset: str, limit: int, digest: str):
    """(features (N, 64), images uint8 (N, 28, 28), typical nearest distance of real test images); `digest` (the
    classifier's hash) in the key so a retrained classifier re-indexes."""
    feats = neighbours.train_features(dataset, limit)
    return feats, neighbours.train_images(dataset, limit), neighbours.typical_distance(dataset, feats)


def nearest_training_digits(samples, dataset: str, ncol: int) -> None:
    """One sample of the grid beside its nearest training images, to see whether G copies them."""
    st.subheader("Nearest training digits" if dataset == "mnist" else "Nearest training images")
    if dataset not in neighbours.DATASETS:
        st.info(f"Not available for {dataset}: distances are measured in the features of a shipped quality "
                f"classifier, and only {' and '.join(neighbours.DATASETS)} have one.")
        return
    try:
        limit = neighbours.default_limit()
        digest = neighbours.classifier_digest(dataset)
    except (neighbours.NeighboursError, OSError) as e:  # a malformed GAN_NEIGHBOURS_LIMIT, a missing classifier
        st.error(f"Nearest training images are not available: {text.shown_error(e)}")
        return
    cached = neighbours.is_cached(dataset, limit)
    on = st.toggle("Compare a sample with its nearest training images", key="gen_nn_on",
                   help="Does the generator draw new digits, or hand back ones it was trained on? Distances are "
                        "measured in the quality classifier's features." + (
                            "" if cached else " The first time, every training image is embedded once (about a "
                                              "minute for 60,000 on a CPU); cached on disk after that."))
    if not on:
        return
    with st.columns([1, 3])[0]:
        pick = int(st.number_input("Sample #", min_value=1, max_value=len(samples), value=1, step=1,
                                   key="gen_nn_pick",
                                   help=f"Counted row by row from the top left of the grid above ({ncol} a row)."))
    try:
        with st.spinner("Indexing the training images with the quality classifier (once; about a minute)…"):
            feats, images, typical = _train_index(dataset, limit, digest)
    except OSError as e:  # the training or test images are missing (the log says where it looked)
        st.error(f"Nearest training images need {dataset}'s training and test images: {text.shown_error(e)}.")
        return
    found = neighbours.neighbours_of(samples[pick - 1], dataset, feats)
    cols = st.columns(len(found.indices) + 1)
    # Every tile drawn at the same 112 px (4 screen pixels a digit pixel), PNG so nothing is re-encoded.
    cols[0].image(png_at_width(samples[pick - 1], NN_PX), caption=f"sample #{pick}", width=NN_PX,
                  output_format="PNG")
    for col, i, d in zip(cols[1:], found.indices, found.distances):
        col.image(png_at_width(images[i].numpy(), NN_PX), caption=f"train #{i:,} · distance {d:.2f}", width=NN_PX,
                  output_format="PNG")
    what = "digit" if dataset == "mnist" else "image"
    verdict = ("closer than that, so the copy test flags it as a likely copy" if found.flagged
               else "not a copy by the copy test")
    st.caption(f"Distances between the quality classifier's 64 features, over {len(images):,} training {what}s. "
               f"Real test {what}s lie a median {typical:.2f} from their nearest training {what}. This sample lies "
               f"{found.distances[0]:.2f} from train #{found.indices[0]:,}, whose own nearest training neighbour "
               f"lies {found.own_distance:.2f} away: {verdict}.")


SOURCES = ("a run", "a pretrained generator", "an uploaded file")


def pick_source(runs: list[RunView], shipped: dict[str, Path]) -> str:
    """Where the generator comes from: a run, a pretrained generator or an upload. A fresh install (no runs) opens
    on the pretrained generators; so does a first visit whose run has no checkpoint yet, saying why."""
    sources = list(SOURCES) if runs else ["a pretrained generator", "a run", "an uploaded file"]
    note = None
    if st.session_state.pop("gen_open_pretrained", False) and shipped:  # "Generate digits now" / an empty state
        st.session_state["gen_source"] = "a pretrained generator"
    elif "gen_source" not in st.session_state and runs and shipped:
        # Opening on a run that has no generator yet (queued, or before its first checkpoint) would show nothing but
        # a note: open on a pretrained generator instead and say why.
        want = ui.selected_run_id()
        first = next((r for r in runs if r.id == want), runs[0])
        if images.generator_path(ui.get_store(), first) is None:
            st.session_state["gen_source"] = "a pretrained generator"
            note = (f"Run #{first.id} ({first.name}) has no checkpoint yet, so these digits come from a pretrained "
                    f"generator. Choose \"a run\" once it has finished an epoch.")
    source = st.radio("Generator from", sources, horizontal=True, key="gen_source", label_visibility="collapsed")
    if note:
        st.info(text.plain(note), icon=":material/info:")
    return source


def pretrained_generator(shipped: dict[str, Path]) -> Path:
    """The pretrained generator picked (dense-mnist first); stops the page when the install ships none."""
    if not shipped:
        st.info("This install ships no pretrained generators; train one on the Train page.")
        st.stop()
    name = st.selectbox("Pretrained generator", list(shipped), key="gen_shipped",
                        index=list(shipped).index("dense-mnist") if "dense-mnist" in shipped else 0,
                        help="Trained with GAN Studio's own trainer; the command is in the README.")
    return shipped[name]


def best_or_newest(run: RunView, path: Path) -> Path:
    """The run's best generator (by Fréchet distance) or its newest, once it has a best one; else the newest."""
    best = images.best_generator(ui.get_store(), run)
    if best is None:
        return path
    try:  # the export's own epoch (1-based, an epoch ended mid-way counts), as its samples and scores say
        newest_epoch = read_header(path)["epoch"]
    except (OSError, CheckpointError, KeyError):
        newest_epoch = run.epoch
    which = st.radio("Which generator", ("best", "newest"), horizontal=True, key="gen_which",
                     format_func=lambda w: (f"best: epoch {best[1]['epoch']}, FD {best[1]['fd']:.2f}" if w == "best"
                                            else f"newest: epoch {newest_epoch}"),
                     help="Training on after the discriminator wins can make the generator worse (seed 001): "
                          "the run keeps the generator of its best epoch by Fréchet distance beside the newest.")
    return best[0] if which == "best" else path


def run_generator(runs: list[RunView], shipped: dict[str, Path]) -> Path:
    """The picked run's generator; stops the page with a note (and a way to a pretrained one) until it has one."""
    if not runs:
        ui.no_runs_yet("No generators yet")
        st.stop()
    run = ui.select_run(runs)
    path = images.generator_path(ui.get_store(), run)
    if path is not None:
        return best_or_newest(run, path)
    st.info(f"Run #{run.id} has no checkpoint yet: `generator.safetensors` is written at the end of every "
            f"{run.config.checkpoint_every} epoch(s)"
            + (", so wait for its first epoch to finish." if run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
               else ". This run ended before its first checkpoint; resume it or pick another run."))
    if shipped and st.button("Use a pretrained generator meanwhile", key="gen_use_shipped"):
        st.session_state["gen_open_pretrained"] = True
        st.rerun()
    st.stop()
    raise AssertionError("unreachable: st.stop raises")


def load(path: Path) -> tuple[Any, TrainConfig, dict[str, Any]]:
    """(G, its config, the file's header), with a caption saying what it is; stops the page if it cannot load."""
    try:
        g, cfg, header = _generator(str(path), path.stat().st_mtime)
    except (CheckpointError, OSError) as e:
        # The reason only: the messages name the file, and visitors must not see the server's folders.
        _refused("Cannot load this generator", uploads.public_reason(e, path, path.parent, ui.get_store().home))
        st.caption("Pick a run that finished an epoch, a pretrained generator, or upload a file that GAN Studio "
                   "wrote.")
        st.stop()
    kind = "conditional " if cfg.conditional else "InfoGAN " if cfg.info_code else ""
    st.caption(f"{kind}{cfg.arch} generator on {cfg.dataset}, latent "
               f"{cfg.latent_dim} ({cfg.noise}), trained {header['epoch']} epoch(s) · {header['step']:,} steps · "
               f"`{path.name}`")
    return g, cfg, header


def class_controls(cfg: TrainConfig) -> tuple[int | None, bool]:
    """(the class asked for, one row per class or code): a conditional generator's class picker and rows toggle,
    an InfoGAN's rows toggle."""
    names = CLASS_NAMES[cfg.dataset]
    if cfg.info_code and not cfg.conditional:
        return None, st.toggle("One row per code", key="gen_rows",
                               help="This generator learned ten modes without labels (InfoGAN): row r forces code "
                                    "r, each column reuses one noise vector. Codes often settle on digits, not "
                                    "always.")
    if not cfg.conditional:
        return None, False
    k1, k2 = st.columns([1, 2], vertical_alignment="bottom")
    with k1:
        label = st.selectbox("Class", range(len(names)), format_func=lambda i: f"{i} · {names[i]}"
                             if names[i] != str(i) else str(i), key="gen_label",
                             help="A conditional generator draws the class you ask for. With one row per class "
                                  "on, this picks the class of the interpolation strip below.")
    with k2:
        by_class = st.toggle("One row per class", key="gen_rows",
                             help="Every class in its own row; each column reuses one noise vector, so a column "
                                  "shows the same style (stroke, slant, width) carried across all classes.")
    return label, by_class


def seed_row() -> tuple[int, int]:
    """(seed, grid side): the seed box, Random seed and the grid size, checked as the server checks it."""
    if "gen_seed" not in st.session_state:
        st.session_state["gen_seed"] = 0
    # A row that wraps (not fixed columns): at 800 px with the sidebar open a third of it cut the button to "Ra…".
    # The seed box is wide enough for any seed (10 digits) beside its +/- buttons; the button as wide as its label.
    with st.container(horizontal=True, vertical_alignment="bottom", key="gen_seed_row"):
        seed = int(st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="gen_seed", width=220,
                                   help="The same seed always draws the same digits."))
        st.button("Random seed", icon=":material/casino:", on_click=_random_seed, key="gen_random", width="content")
        settings = ui.settings()
        max_side = settings.max_grid if settings.demo_mode else 16
        side = st.slider("Grid size", 1, max_side, min(8, max_side), key="gen_side", help="Digits per row and column.")
    try:
        policy.check_grid(side, settings)  # the server's own check: a widget's bounds are not a limit
    except policy.PolicyError as e:
        st.error(str(e))
        st.stop()
    return seed, side


def rejection_control(path: Path, by_class: bool) -> tuple[Any, Any, float]:
    """(D, its calibration, strength): the rejection slider, off (0) for rows per class or a file without a usable
    D, saying why."""
    d, cal = _rejector(str(path), path.stat().st_mtime)
    why_not = "" if d is not None else f" Off: {cal}." if not by_class else " Off for one row per class or code."
    strength = st.select_slider(
        "Rejection", REJECT_LEVELS, value=0.0, key="gen_reject", disabled=d is None or by_class,
        format_func=lambda v: "raw" if v == 0 else "strict" if v == 1 else f"{v:g}",
        help="Draw more digits than shown and drop those the GAN's own discriminator finds least real (DRS on a "
             "recalibrated D, within groups of similar digits so the mix of digits stays). Strict draws 4 "
             "candidates a digit. On a dense run it lowered the Fréchet distance by about a quarter; see "
             "BENCHMARKS.md." + why_not)
    return d, cal, 0.0 if by_class or d is None else strength


def draw(g: Any, cfg: TrainConfig, seed: int, side: int, label: int | None, by_class: bool,
         rejector: tuple[Any, Any, float]) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(samples uint8 (N, 28, 28), their grid, caption, file name): one row per class or code, or side² digits,
    through rejection when its strength is set."""
    if by_class:
        samples = class_rows(g, cfg, seed, side)  # uint8 (10·side, 28, 28)
        rows = "class" if cfg.conditional else "code"
        caption = f"seed {seed} · one row per {rows} (0 at the top) · {side} styles"
        return samples, grid(samples, ncol=side), caption, f"{rows}s-seed{seed}.png"
    d, cal, strength = rejector
    kept = None
    if strength:
        kept = rejection.sample(g, d, cfg, side * side, seed, strength, rejection.DEFAULT_METHOD, cal, label)
        samples = to_uint8(kept.images)  # uint8 (side², 28, 28)
    else:
        samples = generate(g, cfg, side * side, seed, label)  # uint8 (side², 28, 28)
    of = "" if label is None else f" · class {CLASS_NAMES[cfg.dataset][label]}"
    rej = "" if kept is None else f" · rejection {strength:g}: kept {side * side} of {kept.candidates}"
    fname = f"digits-seed{seed}-{side}x{side}" + ("" if kept is None else f"-reject{strength:g}") + ".png"
    return samples, grid(samples, ncol=side), f"seed {seed} · {side}×{side}{of}{rej}", fname


def grid_view(tiles: np.ndarray, side: int, caption: str, fname: str) -> int:
    """The grid on screen and its PNG download at the size picked; returns that download scale."""
    png = png_at_width(tiles, images.grid_display_px(side))
    st.image(png, output_format="PNG", caption=caption)  # drawn at its own size: Streamlit never resamples it
    with st.container(horizontal=True, vertical_alignment="bottom", key="gen_download_row"):  # as the seed row
        scale = st.selectbox("Download size", images.DOWNLOAD_SCALES, index=2, key="gen_dl_scale", width=230,
                             format_func=lambda k: f"×{k} ({28 * k} px a digit)",
                             help="The PNG files below, enlarged with sharp (nearest-neighbour) pixels. ×1 is the "
                                  "generator's own 28 × 28 pixels a digit.")
        big = png_bytes(tiles, scale=scale)
        st.download_button("Download PNG", big, file_name=fname.replace(".png", f"-x{scale}.png"),
                           mime="image/png", key="gen_png", help=f"{tiles.shape[1] * scale} × {tiles.shape[0] * scale} "
                                                                  "px", width="content")
    return scale


def interpolation(g: Any, cfg: TrainConfig, seed: int, label: int | None, scale: int) -> None:
    """A slerp strip from the seed to a second one (seed + 1 until the user types another) and its download."""
    st.subheader("Latent interpolation")
    if "gen_seed_b" not in st.session_state:  # a new visit of the page: widget state was cleared, follow again
        st.session_state["gen_seed_b_own"] = False
    if not st.session_state.get("gen_seed_b_own"):
        st.session_state["gen_seed_b"] = _next(seed)  # follows the seed (Random seed too) until the user sets it
    i1, i2 = st.columns([1, 2])
    with i1:
        seed_b = int(st.number_input("to seed", min_value=0, max_value=2**31 - 1, step=1, key="gen_seed_b",
                                     on_change=_seed_b_set,
                                     help="Walk on the sphere (slerp) from the seed above to this. Follows seed + 1 "
                                          "until you type another number."))
    with i2:
        steps = st.slider("Steps", 2, 24, 10, key="gen_steps")
    tiles = grid(interpolate(g, cfg, seed, seed_b, steps, label), ncol=steps)
    strip = png_at_width(tiles, images.strip_display_px(steps))
    of = "" if label is None else f" · class {CLASS_NAMES[cfg.dataset][label]} (the Class picker above)"
    st.image(strip, output_format="PNG", caption=f"slerp from seed {seed} to seed {seed_b} in {steps} steps{of}")
    big = png_bytes(tiles, scale=scale)
    st.download_button("Download strip PNG", big, file_name=f"slerp-{seed}-to-{seed_b}-x{scale}.png",
                       mime="image/png", key="gen_strip_png",
                       help=f"{tiles.shape[1] * scale} × {tiles.shape[0] * scale} px, at the download size chosen "
                            f"above")


def main() -> None:
    """The page: where the generator comes from, the generator's class and seed controls, rejection, the grid and
    its download, the nearest training digits of a sample, then a latent interpolation."""
    ui.bootstrap()
    st.header("Generate")
    runs = ui.recent_runs()  # the newest runs and the one the link names: never every row
    shipped = shipped_generators()
    source = pick_source(runs, shipped)
    if source == "a pretrained generator":
        path = pretrained_generator(shipped)
    elif source == "a run":
        path = run_generator(runs, shipped)
    else:
        path = uploaded_generator()
    g, cfg, _ = load(path)
    label, by_class = class_controls(cfg)
    seed, side = seed_row()
    rejector = rejection_control(path, by_class)
    samples, tiles, caption, fname = draw(g, cfg, seed, side, label, by_class, rejector)
    scale = grid_view(tiles, side, caption, fname)
    nearest_training_digits(samples, cfg.dataset, side)
    interpolation(g, cfg, seed, label, scale)


main()
