"""Train: a form generated from TrainConfig's field metadata, a preset picker that fills it, and Start.

Laid out by `main`: the mode (one run or a sweep), the form beside the Check panel, which says what is wrong with
the form or what the run will cost, then Start (or the Sweep panel). The form's values live in a plain dict in the
session (FORM), which outlives the page's widgets.
"""
from typing import Any

import streamlit as st

import ui
from gan_core.budget import Estimate, format_flops
from gan_core.config import QUICK_START, ConfigError, TrainConfig
from gan_core.runs import policy
from gan_core.runs.store import StoreError
from gan_core.runs.sweep import PRUNE_RULES, PlannedRun, SweepSpec, point_text, total_steps
from gan_core.web import estimate, forms, text

FORM = ui.TRAIN_FORM  # plain dict of the form's values: survives page switches (widget state does not)
# Narrow windows (800 px with the sidebar open left the form 270 px): the form's columns wrap onto a new line below
# a width that still fits their labels' longest words and their values, instead of breaking "Archit/ectur/e" and
# cutting "(TrainConfig defaults)" to "(TrainConfi". The Check panel stays in view while a long form scrolls:
# sticky in its column, which stretches to the form's height (on the wrapper Streamlit puts around a keyed
# container), and scrolls on its own when a long list of problems makes it taller than the window.
LAYOUT_CSS = """<style>
.st-key-train_form [data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
.st-key-train_form [data-testid="stColumn"] { min-width: min(100%, 11.5rem); }
[data-testid="stLayoutWrapper"]:has(> .st-key-check_panel_sticky) {
  position: sticky; top: 4rem; z-index: 2; max-height: calc(100vh - 5rem); overflow-y: auto; }
</style>"""


def _key(name: str) -> str:
    return f"cfg.{name}"


PRESET = "train_preset"  # the preset picker's choice, kept like FORM (the picker's own state goes with the page)
CLONED = "cloned_values"  # the form values Clone filled in, which the caption compares the form with


def _cloned_option() -> str | None:
    """The preset picker's entry for the run Clone filled the form from (None when the form is not a clone)."""
    return f"cloned: {st.session_state['cloned_from']}" if st.session_state.get("cloned_from") else None


def _apply_preset() -> None:
    """Preset picker callback: overwrite every field with the preset's values (or the cloned run's again)."""
    choice = st.session_state["preset"]
    if choice == _cloned_option():
        values = dict(st.session_state[CLONED])
    else:
        st.session_state.pop("cloned_from", None)
        values = policy.demo_form_values(forms.form_values(choice), ui.settings())
    st.session_state[PRESET] = choice
    st.session_state.pop("companion_note", None)
    st.session_state[FORM] = values
    for name, v in values.items():
        st.session_state[_key(name)] = v


def _loss_changed() -> None:
    """Loss picker callback: set the values the new loss expects beside it (forms.loss_companions), which may sit in
    a collapsed section, and leave a note saying which."""
    form = st.session_state[FORM]
    new = st.session_state[_key("loss")]
    values = {**form, **{n: st.session_state[_key(n)] for n in form if _key(n) in st.session_state}}
    changes = forms.loss_companions(form.get("loss"), new, values)
    for name, (_, v) in changes.items():
        form[name] = st.session_state[_key(name)] = v
    form["loss"] = new
    st.session_state["companion_note"] = forms.companions_note(new, changes) if changes else None


def _widget(spec: forms.FieldSpec) -> None:
    """One field's widget, labelled for people; the help names the field. Number inputs have no min/max in the
    browser: Streamlit keeps the last in-range value when a typed one breaks them, so the form would check and queue
    something other than what it shows. The typed number goes to TrainConfig's own checks instead (the Check panel),
    and `value=None` lets a cleared box stay empty rather than snap back."""
    key = _key(spec.name)
    if key not in st.session_state:  # back on this page, or shown again: restore the widget from the remembered form
        st.session_state[key] = st.session_state[FORM][spec.name]
    if spec.kind == "select":
        st.selectbox(spec.label, spec.choices, key=key, help=spec.tooltip,
                     on_change=_loss_changed if spec.name == "loss" else None)
    elif spec.kind == "bool":
        # Off on the demo (policy.DEMO_OFF): the box cannot be ticked there, and one ticked already (a Clone) can
        # still be unticked; policy.check_resources refuses it at Start either way.
        off = spec.name in policy.DEMO_OFF and ui.settings().demo_mode and not st.session_state[key]
        st.checkbox(spec.label, key=key, disabled=off,
                    help=spec.tooltip + (f"\n\nOff here: {policy.DEMO_OFF[spec.name]}" if off else ""))
    elif spec.kind == "list":
        st.text_input(spec.label, key=key, help=spec.tooltip)
    elif spec.kind == "int":
        st.number_input(spec.label, value=None, step=1, format="%d", key=key, help=spec.tooltip)
    else:
        st.number_input(spec.label, value=None, step=spec.step, format=spec.format, key=key, help=spec.tooltip)
    st.session_state[FORM][spec.name] = st.session_state[key]


def _grid(group_specs: list[forms.FieldSpec]) -> None:
    """Fields two to a row, the boxes and pickers first and the checkboxes after them (a checkbox beside a number
    box leaves a gap under it). One row per pair, so a narrow window that wraps the pair (LAYOUT_CSS) keeps the
    fields in their order."""
    for part in ([s for s in group_specs if s.kind != "bool"], [s for s in group_specs if s.kind == "bool"]):
        for i in range(0, len(part), 2):
            for col, spec in zip(st.columns(2), part[i:i + 2]):
                with col:
                    _widget(spec)


def search_space() -> tuple[str, int, int, str, int]:
    """The Sweep mode's controls: (search, random draws, seeds per point, prune rule, the first epoch it prunes at);
    the fields to sweep are read from their text area's state."""
    st.text_area("Fields to sweep, one a line", key="sweep_params", height=110,
                 placeholder="lr_g=1e-4,2e-4\nloss=non_saturating,hinge\nd_dropout=0..0.5  (random search)",
                 help="NAME=a,b,c tries each value; NAME=lo..hi (random search) draws from the range, "
                      "NAME=lo..hi:log log-uniformly. List fields separate values with '|': g_widths=256,512|512,1024.")
    # Two rows: in three columns of this narrow panel the search control was cut to "grid | rand".
    c1, c2 = st.columns(2)
    search = c1.segmented_control("Search", ["grid", "random"], key="sweep_mode", default="grid", required=True)
    draws = c2.number_input("Random draws", 1, 64, 8, key="sweep_draws", disabled=search != "random")
    c3, c4, c5 = st.columns(3)
    seeds = c3.number_input("Seeds per point", 1, 10, 1, key="sweep_seeds",
                            help="Repeat each point with seeds seed, seed+1, …: the leaderboard ranks the mean.")
    prune = c4.selectbox("Prune weak runs", PRUNE_RULES, key="sweep_prune",
                         help="median: stop a run whose FD at an epoch is worse than the median of its sweep's other "
                              "runs there. asha: successive halving, keep the best third at epochs grace·3^k. Needs "
                              "quality scoring on.")
    grace = c5.number_input("From epoch", 1, 10000, 1, key="sweep_grace", disabled=prune == "none",
                            help="The first epoch at which pruning may stop a run.")
    return search, draws, seeds, prune, grace


def planned_points(spec: SweepSpec, runs: list[PlannedRun], estimates: list[Estimate]) -> None:
    """The runs the sweep will queue, their steps and compute, and its first points in words."""
    flops = sum(e.train_flops for e in estimates)
    st.success(f"{len(runs)} runs ({len(runs) // spec.seeds} points × {spec.seeds} seed(s)), "
               f"{total_steps(runs):,} steps, about {format_flops(flops)} in all before pruning; they wait in "
               f"the same queue as every run.")
    st.dataframe([{"point": r.point + 1, "seed": r.config.seed, **{k: text.value_text(v) for k, v in
                                                                    r.values.items()}} for r in runs],
                 hide_index=True, width="stretch", height=min(400, 38 + 35 * len(runs)), key="sweep_points")
    st.caption(text.plain(spec.describe()) + ". Points: " + text.plain("; ".join(
        point_text(p) for p in spec.points()[:3])) + ("…" if len(spec.points()) > 3 else ""))


def start_sweep_button(cfg: TrainConfig | None, spec: SweepSpec | None, sweep_problems: list[str],
                       settings: policy.Settings, me: policy.Identity) -> None:
    """Start sweep: queues every point as this person and opens the Sweeps page on it."""
    start = st.button("Start sweep", type="primary", key="start_sweep", width="stretch",
                      disabled=not me.key or bool(sweep_problems))
    if not me.key:
        st.caption("Sign in (sidebar) to start sweeps.")
    if not start or sweep_problems:
        return
    try:
        sweep_id = policy.submit_sweep(ui.get_store(), cfg, spec, me, settings,
                                       name=st.session_state.get("run_name", "") or "sweep")
    except (ConfigError, policy.PolicyError) as e:
        st.error(f"Nothing was queued: {text.plain(str(e))}")
    except StoreError as e:
        st.error(f"The run database refused the sweep: {text.shown_error(e)}")
    else:
        ui.ensure_worker()
        st.switch_page(ui.PAGES["sweeps"], query_params={"sweep": str(sweep_id)})


def sweep_panel(cfg: TrainConfig | None, problems: list[tuple[str, str]], settings: policy.Settings,
                me: policy.Identity) -> None:
    """Sweep mode: the search space over the form's config, the points it will queue and their compute, Start."""
    st.subheader("Sweep")
    search, draws, seeds, prune, grace = search_space()
    spec, runs, sweep_problems = forms.sweep_plan(None if problems else cfg, st.session_state.get("sweep_params", ""),
                                                  search, draws, seeds, prune, grace)
    estimates = []
    try:  # each point against the memory check and the demo's per-run caps, as Start will check them
        estimates = policy.check_sweep(runs, settings)
    except (ConfigError, policy.PolicyError) as e:
        sweep_problems.append(str(e))
    if settings.demo_mode and len(runs) > settings.max_queued_per_user:
        # the queue cap, said before Start (policy.submit_sweep refuses it there too, counting runs already queued)
        sweep_problems.append(f"this demo lets a person have {settings.max_queued_per_user} runs queued or training "
                              f"at once and this sweep is {len(runs)} runs: sweep fewer values or seeds")
    if sweep_problems:
        st.error("Fix this before starting the sweep:\n\n" + "\n".join(f"- {text.plain(p)}" for p in sweep_problems))
    else:
        planned_points(spec, runs, estimates)
    start_sweep_button(cfg, spec, sweep_problems, settings, me)


def open_form() -> dict[str, Any]:
    """The form's values: the defaults on a first visit (the demo: quick-start, within its caps), a cloned run's
    once (saying so), and the preset picker showing what filled them; updated with what the browser shows now
    (widgets hidden since keep their remembered values)."""
    if FORM not in st.session_state:  # the demo opens on the recipe that shows digits within its caps
        first = QUICK_START if ui.settings().demo_mode else None
        st.session_state[FORM] = policy.demo_form_values(forms.form_values(first), ui.settings())
        st.session_state.setdefault(PRESET, first or forms.DEFAULTS_LABEL)
    if st.session_state.pop("clone_note", False) and st.session_state.get("cloned_from"):
        st.info(f"Filled from {text.plain(st.session_state['cloned_from'])}: every field is that run's config.",
                icon=":material/content_copy:")
        st.session_state[CLONED] = dict(st.session_state[FORM])  # what the caption compares the form with from now
        st.session_state["preset"] = st.session_state[PRESET] = _cloned_option()
        st.session_state.pop("companion_note", None)
    if "preset" not in st.session_state:  # back on this page: the picker shows what filled the form, not the first
        st.session_state["preset"] = st.session_state.get(PRESET, forms.DEFAULTS_LABEL)
    if st.session_state.get("cloned_from") and st.session_state["preset"] != _cloned_option():
        st.session_state.pop("cloned_from")  # a preset was chosen elsewhere (Home's "Train your first GAN")
    form = st.session_state[FORM]
    for name in form:
        if _key(name) in st.session_state:
            form[name] = st.session_state[_key(name)]
    return form


def check(form: dict[str, Any], settings: policy.Settings
          ) -> tuple[TrainConfig | None, list[tuple[str, str]], Estimate | None]:
    """(config or None, problems as (field, message), resource estimate or None): the form as TrainConfig, the
    memory check and the demo's caps check it, and the run's name, tags and description as the store will."""
    cfg, problems = forms.form_problems(form)
    resources = None
    if cfg is not None:
        try:
            resources = policy.check_resources(cfg, settings)  # memory in every mode; the demo's caps too
        except (ConfigError, policy.PolicyError) as e:
            problems = [(forms.problem_field(str(e)), str(e))]
    problems += forms.run_text_problems(st.session_state.get("run_name", ""), st.session_state.get("run_tags", ""),
                                        st.session_state.get("run_description", ""))
    return cfg, problems, resources


def form_fields(form: dict[str, Any], problems: list[tuple[str, str]]) -> None:
    """The preset picker, the top and basic fields, the run's name, tags and description, then the advanced fields
    that apply, grouped in expanders."""
    specs = {s.name: s for s in forms.field_specs()}
    # The picker on a row of its own: beside two more pickers it had a third of the form, too little for its
    # longest names, and the two beside it had less.
    options = [o for o in [_cloned_option()] if o] + forms.preset_names()
    if st.session_state["preset"] not in options:  # a clone remembered without its run (never a wrong label)
        st.session_state["preset"] = forms.DEFAULTS_LABEL
    st.selectbox("Preset (seed recipe)", options, key="preset", on_change=_apply_preset,
                 help="Fills every field with a seed tutorial's recipe; edit anything afterwards.")
    st.session_state[PRESET] = st.session_state["preset"]
    _grid([specs[name] for name in forms.TOP_FIELDS])
    _grid(forms.basic_specs())
    if st.session_state.get("companion_note"):
        st.info(st.session_state["companion_note"], icon=":material/tune:")
    st.text_input("Run name", key="run_name", placeholder="e.g. dcgan-first-try (default: arch-dataset)",
                  max_chars=200)
    t1, t2 = st.columns([1, 2])
    t1.text_input("Tags", key="run_tags", placeholder="baseline, dcgan",
                  help="Comma-separated words of letters, digits, '-', '_' or '.'; up to 10.")
    t2.text_input("Description", key="run_description", max_chars=2000, placeholder="What this run tries")
    st.markdown("**Advanced**")
    hidden = forms.hidden_names(form, problems)
    st.caption(f"Only what applies to {form['arch']} with the {form['loss']} loss is shown"
               + (f"; {len(hidden)} more fields keep their defaults." if hidden else "."))
    for group, group_specs in forms.specs_by_group(form, problems).items():
        with st.expander(forms.GROUP_TITLES.get(group, group.title())):
            if not group_specs:
                st.caption("Nothing here applies to this architecture and loss.")
            _grid(group_specs)


def check_panel(form: dict[str, Any], cfg: TrainConfig | None, problems: list[tuple[str, str]],
                resources: Estimate | None, mode: str, settings: policy.Settings) -> None:
    """What is wrong with the form (each bad field by its label and name, and why), or what the run costs and where
    it will train; where the form's values came from; the demo's limits."""
    st.subheader("Check")
    if problems:  # what the browser shows is what is checked
        st.error("Fix this before starting:\n\n" + "\n".join(f"- {forms.problem_markdown(f, m)}" for f, m in problems))
    else:
        from gan_core.config import planned_steps
        steps = planned_steps(cfg)
        st.success(f"Valid: {cfg.arch} on {cfg.dataset}, {cfg.epochs} epoch{'s' * (cfg.epochs != 1)}, {steps:,} "
                   f"step{'s' * (steps != 1)} of {cfg.batch_size} images; {resources.describe()}.")
        ui.worker_note(cfg)  # which live workers can take it: the dashboard host may lack the GPU a worker has
        if mode == "Single run":
            st.caption(text.plain(estimate.start_estimate(ui.get_store(), cfg).describe()),
                       help="From the speed runs in the run database trained at on the same device: a run like "
                            "this one if there is one, else the FLOP rate of another run there.")
    cloned = st.session_state.get("cloned_from")  # Clone (Runs, Sweeps) filled the form: it is compared with that run
    st.caption(text.plain(forms.form_origin(form, st.session_state.get("preset"),
                                            (cloned, st.session_state.get(CLONED, {})) if cloned else None)))
    if settings.demo_mode:
        st.info(f"Demo limits: up to {settings.max_epochs} epochs, {settings.max_steps:,} steps, "
                f"{settings.max_params / 1e6:g} M parameters, {settings.max_run_memory_gb:g} GB of memory and "
                f"{settings.max_train_tflop:g} TFLOP a run, no torch.compile; "
                f"{settings.max_queued_per_user} runs queued per person, {settings.submissions_per_minute} a minute.")


def start_button(cfg: TrainConfig | None, problems: list[tuple[str, str]], settings: policy.Settings,
                 me: policy.Identity) -> None:
    """Start: queues the run as this person (the server checks every cap again) and opens its live view."""
    start = st.button("Start", type="primary", key="start", width="stretch", disabled=not me.key or bool(problems))
    if not me.key:
        st.caption("Sign in (sidebar) to start runs; you can watch every run without signing in.")
    else:
        st.caption(("Start is off until the form above is valid. " if problems else "")
                   + f"Queued as **{text.plain(me.label)}**; a background worker trains it, and you can close this "
                     "tab.")
    if not start:
        return
    if problems:
        st.error(f"Nothing was queued: {text.plain(problems[0][1])}")
        return
    try:
        # policy.submit re-checks every demo cap on the server side, inside the store's transaction.
        run_id = policy.submit(ui.get_store(), cfg, me, settings, name=st.session_state.get("run_name", ""),
                               tags=st.session_state.get("run_tags", ""),
                               description=st.session_state.get("run_description", ""))
    except (ConfigError, policy.PolicyError) as e:
        st.error(f"Nothing was queued: {text.plain(str(e))}")  # may quote the name or tags typed
    except StoreError as e:
        st.error(f"The run database refused the run: {text.shown_error(e)}")
    else:
        ui.ensure_worker()  # a crashed worker is replaced the next time someone queues a run
        st.session_state["run_id"] = run_id
        st.switch_page(ui.PAGES["runs"], query_params={"run": str(run_id)})


def main() -> None:
    """The page: the mode, the form beside the Check panel, then Start or the Sweep panel."""
    ui.bootstrap()
    st.header("Train a GAN")
    if "train_mode" not in st.session_state:
        st.session_state["train_mode"] = "Single run"
    mode = st.segmented_control("Mode", ["Single run", "Sweep"], key="train_mode", required=True,
                                help="Sweep: queue one run per point of a grid or random search over fields you "
                                     "choose, on top of this form's config, and rank them on the Sweeps page.")
    form = open_form()
    settings, me = ui.settings(), ui.identity()
    cfg, problems, resources = check(form, settings)
    st.html(LAYOUT_CSS)
    left, right = st.columns([3, 2], gap="large")
    with left, st.container(key="train_form"):
        form_fields(form, problems)
    with right, st.container(key="check_panel_sticky" if mode == "Single run" else "check_panel"):
        check_panel(form, cfg, problems, resources, mode, settings)
        if mode == "Sweep":
            sweep_panel(cfg, problems, settings, me)
        else:
            start_button(cfg, problems, settings, me)


main()
