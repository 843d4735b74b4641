"""Generate: digits from a run's trained generator; the same seed always draws the same grid; slerp strips."""
import random
from pathlib import Path

import streamlit as st

import ui
from gan_core import dashboard as dash
from gan_core import policy, uploads
from gan_core.checkpoint import CheckpointError, load_generator, shipped_generators
from gan_core.data import CLASS_NAMES
from gan_core.sampling import class_rows, generate, grid, interpolate, png_bytes

ui.bootstrap(__file__)

@st.cache_resource(show_spinner="Loading the generator…", max_entries=8)
def _generator(path: str, mtime: float):
    """(G, config, header); the mtime in the key reloads a generator the worker has since overwritten."""
    return load_generator(path)


def _random_seed() -> None:
    st.session_state["gen_seed"] = random.randrange(0, 2**31 - 1)


st.header("Generate")
runs = ui.list_runs()
shipped = shipped_generators()
# A fresh install has no runs: open on the pretrained generators then, on the user's runs otherwise.
sources = ["a run", "a pretrained generator", "an uploaded file"] if runs else \
    ["a pretrained generator", "a run", "an uploaded file"]
source = st.radio("Generator from", sources, horizontal=True, key="gen_source", label_visibility="collapsed")
path: Path | None = None
if source == "a pretrained generator":
    if not shipped:
        st.info("This install ships no pretrained generators; train one on the Train page.")
        st.stop()
    name = st.selectbox("Pretrained generator", list(shipped), key="gen_shipped",
                        help="Trained with GAN Studio's own trainer; the command is in the README.")
    path = shipped[name]
elif source == "a run":
    if not runs:
        ui.no_runs_yet("No generators yet")
        st.stop()
    run = ui.select_run(runs)
    path = dash.generator_path(ui.get_store(), run)
    if path is None:
        st.info(f"Run #{run.id} has no checkpoint yet: `generator.safetensors` is written at the end of every "
                f"{run.config.checkpoint_every} epoch(s)"
                + (", so wait for its first epoch to finish." if run.status in ("queued", "running")
                   else ". This run ended before its first checkpoint; resume it or pick another run."))
        st.stop()
else:
    owner_key = ui.owner_key()
    if not owner_key:  # uploads cost the server disk: only people it can hold to a quota may send them
        st.info("Sign in to upload a generator. Runs and pretrained generators need no account.")
        st.stop()
    up = st.file_uploader("A GAN Studio `generator.safetensors` (or a full checkpoint)", type=["safetensors"])
    if up is None:
        st.info("Upload a `.safetensors` file written by GAN Studio; nothing is ever unpickled.")
        st.stop()
    kept = st.session_state.get("gen_upload")
    if kept and kept[:2] == (up.file_id, owner_key) and Path(kept[2]).is_file():
        path = Path(kept[2])  # this upload was checked and stored on an earlier rerun (seed, grid size...)
    else:
        try:  # checked in memory, then stored within the quotas: see gan_core/uploads.py
            path = uploads.store_upload(ui.get_store().home, owner_key, up.getvalue(), ui.settings())
        except (CheckpointError, uploads.UploadError) as e:
            st.error(f"This file was not accepted: {uploads.public_reason(e, ui.get_store().home)}")
            st.stop()
        st.session_state["gen_upload"] = (up.file_id, owner_key, str(path))

try:
    g, cfg, header = _generator(str(path), path.stat().st_mtime)
except (CheckpointError, OSError) as e:
    # The reason only: the messages name the file, and visitors must not see the server's folders.
    st.error(f"Cannot load this generator: {uploads.public_reason(e, path, path.parent, ui.get_store().home)}. "
             f"Pick a run that finished an epoch, or upload a file that GAN Studio wrote.")
    st.stop()
kind = "conditional " if cfg.conditional else "InfoGAN " if cfg.info_code else ""
st.caption(f"{kind}{cfg.arch} generator on {cfg.dataset}, latent "
           f"{cfg.latent_dim} ({cfg.noise}), trained {header['epoch']} epoch(s) · {header['step']:,} steps · "
           f"`{path.name}`")
names = CLASS_NAMES[cfg.dataset]
label: int | None = None
by_class = False
if cfg.conditional:
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
elif cfg.info_code:
    by_class = st.toggle("One row per code", key="gen_rows",
                         help="This generator learned ten modes without labels (InfoGAN): row r forces code r, "
                              "each column reuses one noise vector. Codes often settle on digits, not always.")

if "gen_seed" not in st.session_state:
    st.session_state["gen_seed"] = 0
c1, c2, c3 = st.columns([2, 1, 2], vertical_alignment="bottom")
with c1:
    seed = int(st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="gen_seed",
                               help="The same seed always draws the same digits."))
with c2:
    st.button("Random seed", icon=":material/casino:", on_click=_random_seed, key="gen_random", width="stretch")
with c3:
    settings = ui.settings()
    max_side = settings.max_grid if settings.demo_mode else 16
    side = st.slider("Grid size", 1, max_side, min(8, max_side), key="gen_side", help="Digits per row and column.")
try:
    policy.check_grid(side, settings)  # the server's own check: a widget's bounds are not a limit
except policy.PolicyError as e:
    st.error(str(e))
    st.stop()

if by_class:
    tiles = grid(class_rows(g, cfg, seed, side), ncol=side)
    rows = "class" if cfg.conditional else "code"
    caption, fname = f"seed {seed} · one row per {rows} (0 at the top) · {side} styles", f"{rows}s-seed{seed}.png"
else:
    tiles = grid(generate(g, cfg, side * side, seed, label), ncol=side)
    of = "" if label is None else f" · class {names[label]}"
    caption, fname = f"seed {seed} · {side}×{side}{of}", f"digits-seed{seed}-{side}x{side}.png"
png = png_bytes(tiles, scale=dash.display_scale(tiles.shape[1]))  # enlarged here: Streamlit never resamples it
st.image(png, output_format="PNG", caption=caption)
st.download_button("Download PNG", png, file_name=fname, mime="image/png", key="gen_png")

st.subheader("Latent interpolation")
i1, i2 = st.columns([1, 2])
with i1:
    seed_b = int(st.number_input("to seed", min_value=0, max_value=2**31 - 1, value=min(seed + 1, 2**31 - 1),
                                 step=1,
                                 key="gen_seed_b", help="Walk on the sphere (slerp) from the seed above to this."))
with i2:
    steps = st.slider("Steps", 2, 24, 10, key="gen_steps")
tiles = grid(interpolate(g, cfg, seed, seed_b, steps, label), ncol=steps)
strip = png_bytes(tiles, scale=dash.display_scale(tiles.shape[1], 1200))
of = "" if label is None else f" · class {names[label]} (the Class picker above)"
st.image(strip, output_format="PNG", caption=f"slerp from seed {seed} to seed {seed_b} in {steps} steps{of}")
st.download_button("Download strip PNG", strip, file_name=f"slerp-{seed}-to-{seed_b}.png", mime="image/png",
                   key="gen_strip_png")
