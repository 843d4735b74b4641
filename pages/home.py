"""Home: what GAN Studio is, digits drawn live by a pretrained generator, and the two ways in.

Laid out by `main`: the title, then the live digits (with the copy test's verdict on them) beside "Start here".
"""
import random
from pathlib import Path

import streamlit as st

import ui
from gan_core import neighbours
from gan_core.checkpoint import CheckpointError, load_generator, shipped_generators
from gan_core.config import QUICK_START, TrainConfig, planned_steps
from gan_core.runs import policy
from gan_core.sampling import generate, grid, png_at_width
from gan_core.web import forms, text

HOME_GENERATOR = "dense-mnist"  # unconditional, so one grid shows every digit; a dense G draws 64 digits in ms
# "Train your first GAN" opens the Train form on the quick-start preset: the recipe swept for recognisable digits
# within a minute on a two-core CPU, inside the demo's caps (BENCHMARKS.md, "A first run in a minute").
FIRST_PRESET = QUICK_START
TRAIN_FORM = "train_form"  # pages/train.py's remembered form (a plain dict) and its widgets' "cfg.<field>" keys


@st.cache_resource(show_spinner="Loading a pretrained generator…", max_entries=2)
def _shipped(name: str):
    """(G, config) of a shipped generator, loaded once per server process."""
    g, cfg, _ = load_generator(shipped_generators()[name])
    return g, cfg


HOME_DIGITS = 64  # the grid: 8 rows of 8


@st.cache_data(show_spinner=False, max_entries=32)
def _copy_check(name: str, seed: int, limit: int, digest: str) -> dict:
    """The product's copy test (gan_core.neighbours) on exactly the grid Home shows for `seed`: cached per grid,
    with the classifier's `digest` in the key. Only called once the training features are at hand."""
    g, cfg = _shipped(name)
    shown = generate(g, cfg, HOME_DIGITS, seed, 0 if cfg.conditional else None)
    found = neighbours.check_shown(shown, cfg.dataset, neighbours.train_features(cfg.dataset, limit))
    return {**found.__dict__, "no_more_than_real": found.no_more_than_real()}


def copy_caption(name: str, dataset: str, seed: int) -> str | None:
    """What the copy test found on the grid, in words; None while the training set is still being indexed."""
    if dataset not in neighbours.DATASETS:
        return None
    try:
        limit = neighbours.default_limit()
        if neighbours.train_features_nowait(dataset, limit) is None:
            return None
        found = _copy_check(name, seed, limit, neighbours.classifier_digest(dataset))
    except neighbours.NeighboursError as e:  # a malformed GAN_NEIGHBOURS_LIMIT, told in one line
        return f"These digits could not be compared with the training set: {e}"
    except OSError:  # no training or test images (or classifier) here; the error names server paths, so not shown
        return ("These digits could not be compared with the training set: its images are not on this server, so "
                "the copy test did not run.")
    what = "digit" if dataset == "mnist" else "image"
    over = f"{found['train_n']:,} training {what}s" + (f" (the first {limit:,}: GAN_NEIGHBOURS_LIMIT)" if limit else "")
    if not found["flagged"]:
        return (f"Copy test over {over}: it flags none of these {found['n']} as a copy. Each lies "
                f"farther from its nearest training {what} than that {what} lies from its own nearest training "
                f"neighbour (the closest call: {found['closest_ratio']:.2f}× that distance; the nearest any of them "
                f"comes to a training {what} is {found['nearest']:.2f}, in the quality classifier's features).")
    verdict = (f"no more often than new {what}s are, so the test finds no sign of copying"
               if found["no_more_than_real"] else f"more often than new {what}s are: some of them may be copies")
    return (f"Copy test over {over}: {found['flagged']} of these {found['n']} lie closer to a training {what} than "
            f"that {what}'s own nearest training neighbour does ({found['flagged'] / found['n']:.0%}), and so do "
            f"{found['real_flagged']:.0%} of {found['real_n']:,} real test {what}s, which are new by construction: "
            f"{verdict}. Generate → Nearest training digits shows any sample beside its nearest training {what}s.")


def _train_first() -> None:
    """Open Train with FIRST_PRESET filled in (within the demo's caps)."""
    values = _first_values()
    st.session_state["preset"] = FIRST_PRESET
    st.session_state[TRAIN_FORM] = values
    for k in [k for k in st.session_state if isinstance(k, str) and k.startswith("cfg.")]:
        del st.session_state[k]  # the Train page restores its widgets from the form above


def _first_values() -> dict:
    """The Train form's values of FIRST_PRESET, lowered to the demo's caps where it has any."""
    return policy.demo_form_values(forms.form_values(FIRST_PRESET), ui.settings())


def _generate_now() -> None:
    st.session_state["gen_open_pretrained"] = True  # read once by pages/generate.py


def await_copy_test(name: str, dataset: str, seed: int) -> None:
    """While the training set is being indexed in the background (once): a note, then the whole page once the
    copy test has a result, which then stops polling."""
    if copy_caption(name, dataset, seed) is not None:
        st.rerun()
    st.caption("Comparing these digits with the training set (the copy test; the first time the training digits are "
               "indexed once, about a minute)…")


def live_digits(shipped: dict[str, Path]) -> None:
    """A grid drawn just now by the pretrained HOME_GENERATOR (different digits on every visit), what the copy test
    found on it, and a button for new digits."""
    name = HOME_GENERATOR if HOME_GENERATOR in shipped else next(iter(shipped), None)
    if name is None:
        st.info("This install ships no pretrained generators: train one to see digits here.")
        return
    if "home_seed" not in st.session_state:
        st.session_state["home_seed"] = random.randrange(0, 2**31 - 1)  # different digits on every visit
    try:
        g, cfg = _shipped(name)
    except (CheckpointError, OSError) as e:
        st.warning(f"The pretrained generator could not be loaded: {text.plain_checkpoint_error(str(e))}")
        return
    seed = st.session_state["home_seed"]
    label = 0 if cfg.conditional else None
    tiles = grid(generate(g, cfg, HOME_DIGITS, seed, label), ncol=8)
    st.image(png_at_width(tiles, 640), output_format="PNG",
             caption=f"Drawn just now by the pretrained `{name}` generator from random noise (seed {seed}).")
    found = copy_caption(name, cfg.dataset, seed)
    if found:
        st.caption(found)
    elif cfg.dataset in neighbours.DATASETS:  # the training set is being indexed in the background, once
        st.fragment(run_every=2)(await_copy_test)(name, cfg.dataset, seed)
    if st.button("Draw new digits", icon=":material/casino:", key="home_new"):
        st.session_state["home_seed"] = random.randrange(0, 2**31 - 1)
        st.rerun()


def start_here() -> None:
    """The two ways in: draw digits now with a pretrained generator, or train a first GAN."""
    st.subheader("Start here")
    st.markdown("**Draw digits now** with a pretrained generator: pick a seed, a grid size, or walk between two "
                "digits.")
    if st.button("Generate digits now", type="primary", icon=":material/auto_awesome:", key="home_generate",
                 on_click=_generate_now, width="stretch"):
        st.switch_page(ui.PAGES["generate"])
    steps = planned_steps(TrainConfig.from_dict(_first_values()))  # the demo may allow fewer
    st.markdown(f"**Train your first GAN**: the form opens on the `{FIRST_PRESET}` recipe, a dense GAN told which "
                f"digit to draw, for {steps:,} steps: recognisable digits in about a minute on a two-core CPU. "
                "Watch its losses and samples live on Runs.")
    if st.button("Train your first GAN", icon=":material/model_training:", key="home_train", on_click=_train_first,
                 width="stretch"):
        st.switch_page(ui.PAGES["train"])
    st.caption("Samples shows a run's grids epoch by epoch; Compare puts runs side by side.")


def main() -> None:
    """The page: what GAN Studio is, then the live digits beside the two ways in."""
    ui.bootstrap()
    st.title("GAN Studio")
    st.markdown("GAN Studio trains generative adversarial networks (GANs) that learn to draw handwritten digits and "
                "clothing from the MNIST datasets, and lets you watch them learn, compare them and draw with them.")
    shipped = shipped_generators()
    left, right = st.columns([3, 2], gap="large")
    with left:
        live_digits(shipped)
    with right:
        start_here()


main()
