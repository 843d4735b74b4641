"""Runs: every run with status, owner and progress; the selected run's live view (fragment polling the store).

The live view is laid out top to bottom by `live_view`: header, actions (Stop / Resume), notices, the numbers,
the step charts beside the newest sample grid, then the quality scores. Each part reads what it shows from the
store on every rerun, so every browser tab sees the same run.
"""
from collections.abc import Callable

import streamlit as st

import ui
from gan_core.config import ConfigError, capped_by_max_steps
from gan_core.runs import policy
from gan_core.runs.status import ACTIVE, LIVE, RESUMABLE, RunStatus
from gan_core.runs.store import RunView, Store, StoreError
from gan_core.web import alerts, charts, images, progress, real_floor, run_list, text

REFRESH_S = ui.LIVE_REFRESH_S
#: Stop applies to a run that has not reached its end yet; a stopping one is already on its way.
STOPPABLE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})

METRIC_HELP = {
    "step": "Training steps done: one step is one batch through D and G.",
    "D loss": "The discriminator's loss on the newest logged step. Its level depends on the loss function; watch "
              "its trend, not its value.",
    "G loss": "The generator's loss on the newest logged step. Rising without end while D loss falls means D is "
              "winning.",
    "D(x)": "D's mean output on real images, as a probability (BCE losses): 1 = sure they are real. Around 0.5-0.8 "
            "is a healthy fight.",
    "D(G(z))": "D's mean output on generated images, as a probability: 0 = sure they are fake. Stuck near 0 means "
               "G gets no useful gradient.",
    "images/s": "Training throughput at the newest logged step (images through G and D per second).",
}


def stopped_early(run: RunView) -> bool:
    """Whether a done run ended by early stopping (its reason is in run.error, which for a done run is no error)."""
    return run.status == RunStatus.DONE and bool(run.error) and run.error.startswith("stopped early")


FILTER_LABELS = {"owner": "Owner", "tag": "Tag", "status": "Status", "sweep": "Sweep", "group": "Group by"}
EVERY = ""  # the filters' "every owner" (tag, status, sweep) choice
GROUP_WORDS = {"sweep": "sweep (folded)", "none": "nothing", "owner": "owner", "tag": "tag", "status": "status"}


@st.cache_data(ttl=ui.IDLE_REFRESH_S, show_spinner=False, max_entries=4)
def _filter_options(url: str) -> dict:
    """run_list.filter_options of the store at `url`, read at most every IDLE_REFRESH_S: its DISTINCT reads take
    ~0.15 s at 30,000 runs, and a live table reruns every REFRESH_S. A newer owner or tag is offered a little later;
    a link naming it works at once (looked up alone)."""
    return run_list.filter_options(ui.get_store())


def asked_view(store: Store, with_options: bool = True) -> tuple[run_list.RunFilter, int, list[str], dict]:
    """What the URL asks the runs table for: (filter, page, why values were refused, the filter options; without
    `with_options`, only the statuses, every other value looked up alone). Values past the options' bounded lists
    are looked up alone."""
    params = st.query_params.to_dict()
    options = _filter_options(store.url) if with_options else {"status": [s.value for s in RunStatus]}
    asked, problems = run_list.parse_run_filter(params, options, run_list.has_runs(store))
    page, problem = run_list.parse_page(params)
    return asked, page, problems + ([problem] if problem else []), options


def page_key(listing: run_list.RunPage) -> tuple:
    """What about the page the rest of the Runs page depends on: which runs it holds, which of them are live."""
    return listing.page, tuple((r.id, r.status in LIVE) for r in listing.runs)


def _go_to(page: int) -> None:
    """The pager's buttons: the page goes in the URL, as the filters do."""
    if page <= 1:
        st.query_params.pop("page", None)
    else:
        st.query_params["page"] = str(page)


def runs_table(drawn: tuple = ()) -> None:
    """One page of the runs (newest first, PAGE_SIZE a page, read with LIMIT/OFFSET and counted with COUNT, however
    many rows there are) with a progress bar, filtered in SQL by owner, tag, status, sweep and words of the name,
    and grouped (each sweep's runs folded under one line by default), the view and page kept in the URL so a link
    reproduces it. A fragment: every REFRESH_S while a run of the page trains, else only when asked (the page's
    change watcher reruns the page when something it shows changes). A page that now holds other runs, or whose
    runs start or end, reruns the page (`drawn`: the page_key it was drawn with), so the picker lists them."""
    store = ui.get_store()  # runs whose worker went silent: the page's change watcher marks them
    asked, page_no, problems, options = asked_view(store)
    for problem in problems:  # a link with a value that names nothing here: said, and that filter left off
        st.warning(f"Link filter ignored: {text.plain(problem)}", icon=":material/filter_alt_off:")
    names = {s.id: s.name for s in store.list_sweeps()}
    # A selectbox shows its options as typed (no markdown): plain() here showed "ada.l" as "ada\.l".
    words = {"owner": str, "tag": str, "status": str, "group": GROUP_WORDS.get,
             "sweep": lambda v: "outside sweeps" if v == run_list.NO_SWEEP else f"#{v} {names.get(v, '')}".rstrip()}
    chosen = {}
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
        for key in (*run_list.RUN_FILTERS, "group"):
            if key == "group":
                choices, now = list(run_list.RUN_GROUPS), asked.group
            else:  # EVERY, not None: a selectbox offers to "clear" a None choice, which here means the same
                now = getattr(asked, key) or EVERY
                choices = [EVERY, *options[key]] + ([now] if now not in (EVERY, *options[key]) else [])
            chosen[key] = st.selectbox(
                FILTER_LABELS[key], choices, index=choices.index(now), key=f"runs_{key}", width=145,
                format_func=lambda v, k=key: f"every {k}" if v == EVERY else words[k](v))
        search = st.text_input("Name contains", asked.text or "", key="runs_q", width=180,
                               max_chars=run_list.MAX_SEARCH, placeholder="words of a run's name",
                               help="Shows the runs whose name contains these words (any case), from the whole "
                                    "store, not only this page.")
    chosen["text"] = " ".join(search.split()) or None
    view = run_list.RunFilter(**{k: None if v == EVERY else v for k, v in chosen.items()})
    if view.query() != asked.query():  # changed here: the URL follows, so a copied link shows this view
        for key in (*run_list.RUN_FILTERS, "group", "q"):
            if key in view.query():
                st.query_params[key] = view.query()[key]
            elif key in asked.query():
                st.query_params.pop(key, None)
        if run_list.run_where(view) != run_list.run_where(asked):
            st.query_params.pop("page", None)  # other rows: from their first page
            page_no = 1
    listing = run_list.read_page(store, view, page_no)
    if drawn and page_key(listing) != drawn:
        st.rerun()
    st.caption(listing.caption(store.count_runs() if view.narrowed else None))
    runs = listing.runs
    early = {r.id for r in runs if stopped_early(r)}
    waiting = ui.waiting_reasons(runs)  # queued runs no live worker can train: a GPU run among CPU workers
    places = {r.id: store.queue_position(r.id) for r in runs if r.status == RunStatus.QUEUED}
    for group in run_list.group_runs(runs, view.group, names):
        if group.folded:  # one line a sweep until opened; opened at once when the view is that sweep
            with st.expander(text.plain(group.label), expanded=view.sweep is not None):
                st.caption(group.summary())
                _table(group, early, waiting, places)
        elif view.group in ("sweep", "none"):
            _table(group, early, waiting, places)
        else:
            st.markdown(f"**{text.plain(group.label)}** · {group.summary()}")
            _table(group, early, waiting, places)
    pager(listing)


def pager(listing: run_list.RunPage) -> None:
    """First / Newer / Older / Last under the table, and where this page is; nothing when one page holds all."""
    if listing.pages <= 1:
        return
    now, last = listing.page, listing.pages
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        for label, to, icon in (("First", 1, ":material/first_page:"), ("Newer", now - 1, ":material/chevron_left:"),
                                ("Older", now + 1, ":material/chevron_right:"), ("Last", last, ":material/last_page:")):
            st.button(label, key=f"runs-page-{label.lower()}", icon=icon, disabled=not 1 <= to <= last or to == now,
                      on_click=_go_to, args=(to,), width="content")
        st.caption(f"Page {now:,} of {last:,} · {run_list.PAGE_SIZE} runs a page, newest first")


def _table(group: "run_list.RunGroup", early: set[int], waiting: dict[int, str],
           places: dict[int, int | None]) -> None:
    """One group's runs as a table with a progress bar; a queued run no live worker can train says so."""
    table = run_list.runs_table(group.runs, places=places)
    for row in table:
        if row["id"] in early:
            row["status"] = f"{row['status']} (stopped early)"
        if row["id"] in waiting:
            row["status"] = f"{row['status']}: no live worker can train it"
    st.dataframe(table, hide_index=True, width="stretch", key=f"runs-table-{group.key}",
                 column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=100,
                                                                           format="%d%%"),  # whole %
                                "name": st.column_config.TextColumn("name", width="medium"),
                                # its age, drawn by the browser: an idle page is not redrawn to keep "2 min ago" true
                                "created": st.column_config.DatetimeColumn("created", format="distance"),
                                "id": st.column_config.NumberColumn("id", width="small")})


def view_controls() -> tuple[float, str, bool]:
    """The chart controls above the live view: (smoothing, x axis, log-scale losses)."""
    with st.container(horizontal=True, vertical_alignment="bottom", gap="medium"):
        smoothing = st.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="smoothing", width=260,
                              help="Exponential moving average of the curves (0 = raw points).")
        x_axis = st.segmented_control("x axis", ["step", "time"], default="step", key="x_axis", required=True,
                                      format_func={"step": "step", "time": "time since start"}.get,
                                      help="Plot against the training step, or wall-clock time since the first "
                                           "metric.")
        log_losses = st.toggle("Log scale (losses)", key="log_losses",
                               help="Losses on a log axis. A loss at or below 0 (a WGAN or hinge critic's) is not "
                                    "drawn.")
    return smoothing, x_axis, log_losses


def live_view(run_id: int, smoothing: float, x_axis: str = "step", log_losses: bool = False) -> None:
    """The selected run, top to bottom; run as a fragment that polls the store while the run is live."""
    store = ui.get_store()
    run = store.get(run_id)
    if run is None:
        st.warning(f"Run #{run_id} no longer exists.")
        return
    rows = store.step_metrics(run_id)
    header(run)
    actions(store, run)
    quality = store.quality(run_id)
    floor, floor_pending = (real_floor.quality_floor_nowait(run.config.dataset, int(quality[-1]["n"])) if quality
                            else (None, False))
    notices(store, run, rows, quality, floor)
    numbers(store, run, rows)
    step_charts(store, run, rows, smoothing, x_axis, log_losses)
    quality_panel(run, quality, floor, floor_pending)
    end_polling(run, floor_pending)


def header(run: RunView) -> None:
    """Name, status line (status, owner, model, data, batch, loss, tags) and description."""
    # The title on its own row: a long name wraps there instead of squeezing the buttons to "S…" / "R…".
    st.subheader(f"#{run.id} {text.plain(run.name)}")  # user text: escaped, never markdown or HTML
    status = f"{run.status} (stopped early)" if stopped_early(run) else run.status
    st.caption(f"{run_list.STATUS_ICONS.get(run.status, '')} **{status}** · owner {text.plain(run.owner or '–')}"
               f" · {run.config.arch} on {run.config.dataset} · batch {run.config.batch_size} · "
               f"loss {run.config.loss}" + (f" · tags {text.plain(', '.join(run.tags))}" if run.tags else ""))
    if run.description:
        st.text(run.description)


def _locked_reason(run: RunView, mine: bool, settings: policy.Settings) -> str:
    """Why this session may not stop or resume `run` ('' when it may)."""
    if mine:
        return ""
    if settings.demo_mode and not ui.auth_configured():
        return "Only the browser that started it (a visitor token, not the name) or an admin can stop or resume it."
    return f"Only {text.plain(run.owner or 'its owner')} or an admin can stop or resume it."


def actions(store: Store, run: RunView) -> None:
    """Stop and Resume (a done run asks how many more epochs or steps), greyed out with the reason for others."""
    mine, settings = ui.can_manage(run), ui.settings()
    who = _locked_reason(run, mine, settings)
    why = " " + who if who else ""
    capped = capped_by_max_steps(run.config)
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
        stop = st.button("Stop", key=f"stop-{run.id}", disabled=not mine or run.status not in STOPPABLE,
                         width="content", icon=":material/stop:",
                         help="Finish the current step, checkpoint, stop." + why)
        extra = _more_to_do(run, capped) if run.status == RunStatus.DONE and mine else 0
        resume = st.button("Resume", key=f"resume-{run.id}", icon=":material/play_arrow:",
                           disabled=not mine or run.status not in RESUMABLE,
                           width="content", help="Continue from the newest checkpoint." + why)
        clone = st.button("Clone", key=f"clone-{run.id}", icon=":material/content_copy:", width="content",
                          help="Fill the Train form with this run's config, to start a new run from it.")
    if who:  # greyed-out buttons say why on the page, not only on hover
        st.caption(f":material/lock: {who}")
    if clone:  # anyone may: it only copies the config into this session's form
        ui.clone_into_train(run.id)
    if stop:
        try:
            if not policy.stop(store, run.id, ui.identity(), settings):
                st.error("This run is not running any more, so there is nothing to stop.")
        except policy.PolicyError as e:
            st.error(text.plain(str(e)))  # names user text (the owner)
        else:
            st.rerun()
    if resume:
        more = ({"extra_steps": int(extra)} if capped and run.status == RunStatus.DONE
                else {"extra_epochs": int(extra)})
        try:
            if policy.resume(store, run.id, ui.identity(), settings, **more):
                ui.ensure_worker()
            else:
                st.error("Could not resume: the run is not stopped, interrupted, failed or done.")
        except (policy.PolicyError, ConfigError) as e:
            st.error(f"Could not resume: {text.plain(str(e))}")
        else:
            st.rerun()


def _more_to_do(run: RunView, capped: bool) -> int:
    """How much a finished run continues by: more steps if max_steps ended it, else more epochs."""
    if capped:
        return st.number_input("More steps", 1, 1_000_000, min(1000, run.config.max_steps),
                               key=f"extra-steps-{run.id}", width=150,
                               help=f"max_steps ({run.config.max_steps:,}) ended this run: resuming raises it by "
                                    f"this many steps.")
    return st.number_input("More epochs", 1, 10000, 5, key=f"extra-{run.id}", width=150,
                           help="Epochs to add when resuming.")


def notices(store: Store, run: RunView, rows: list, quality: list, floor: dict | None) -> None:
    """What needs attention: no worker for a queued run, the run's error, and the training alerts."""
    stale = ui.stale_after()  # None: GAN_HEARTBEAT_TIMEOUT is malformed, which the top of the page says
    if run.status == RunStatus.QUEUED and stale is not None and store.live_workers(stale) == 0:
        st.warning("No training worker is running, so this run waits in the queue. Start one with "
                   "`python -m gan_core worker` (the dashboard starts one itself unless GAN_NO_AUTOWORKER is set).")
    elif run.status == RunStatus.QUEUED and (why := ui.waiting_reasons([run]).get(run.id)):
        st.warning(f"This run waits in the queue: {text.plain(why)}. It starts once a worker that can train it "
                   f"registers; to train it elsewhere now, Stop it, Clone it and pick another device.",
                   icon=":material/hourglass_top:")
    if run.error:  # a done run's "error" is why it ended before its last epoch (early stopping): news, not a fault
        show = {RunStatus.INTERRUPTED: st.warning, RunStatus.DONE: st.info, RunStatus.PRUNED: st.info}.get(
            run.status, st.error)
        show(text.shown_error(run.error),
             icon=":material/flag:" if run.status in (RunStatus.DONE, RunStatus.PRUNED) else None)
    for alert in alerts.alerts(run, rows, quality, floor):
        if alert.kind == "too_early":
            st.info(f"**{alert.message}** {alert.suggestion}", icon=":material/hourglass_top:")
        else:
            st.warning(f"**{alert.message}** {alert.suggestion}", icon=":material/report:")


def numbers(store: Store, run: RunView, rows: list) -> None:
    """Progress bar (with ETA or queue place), the newest step's six numbers, and the hardware it trains on."""
    st.progress(run.progress, text=progress.live_progress_text(store, run, rows))
    last = progress.latest(rows)
    values = {"step": f"{last.get('step', 0):,}",
              "D loss": f"{last['d_loss']:.4f}" if last else "–", "G loss": f"{last['g_loss']:.4f}" if last else "–",
              "D(x)": f"{last['d_real']:.3f}" if last else "–", "D(G(z))": f"{last['d_fake']:.3f}" if last else "–",
              "images/s": f"{last['images_per_sec']:,.0f}" if last else "–"}
    m = [*st.columns(3), *st.columns(3)]  # two rows of three: six in a row cut "1.0539" to "1.…" at 800 px
    for col, (label, value) in zip(m, values.items()):
        col.metric(label, value, help=METRIC_HELP[label])
    if run.ran_on:  # what precision "auto" chose on the worker's hardware
        device, _, precision = run.ran_on.partition(", ")
        precision, _, graph = precision.partition(", ")  # "cuda, bf16, CUDA graph"
        st.caption(f"{'Trained' if run.status not in LIVE else 'Trains'} on {device.upper()} in {precision}"
                   + (" (precision auto: bf16 only where the hardware has bf16 units)"
                      if run.config.precision == "auto" else "")
                   + (", each step replayed as a CUDA graph" if graph else ""))


def step_charts(store: Store, run: RunView, rows: list, smoothing: float, x_axis: str, log_losses: bool) -> None:
    """Losses beside training health (gradient norms, D's σ) when logged, else beside D's outputs; below them D's
    outputs and throughput beside the newest sample grid."""
    health = any(r.get("d_grad_norm") is not None or r.get("g_grad_norm") is not None for r in rows)
    if not rows:
        st.info("No metrics yet: the run is queued or still loading its data." if run.status in STOPPABLE
                else "This run recorded no metrics.")
    else:
        c1, c2 = st.columns(2)
        with c1:
            st.plotly_chart(charts.loss_figure(rows, smoothing, log_y=log_losses, x=x_axis), width="stretch",
                            key="live-loss")
        with c2:
            if health:  # rows logged before gradient norms were have none: D's outputs take this place then
                st.plotly_chart(charts.health_figure(rows, smoothing, x=x_axis), width="stretch", key="live-health")
            else:
                st.plotly_chart(charts.d_output_figure(rows, smoothing, x=x_axis), width="stretch", key="live-dout")
    c3, c4 = st.columns([3, 2])
    with c3:
        if rows:
            if health:
                st.plotly_chart(charts.d_output_figure(rows, smoothing, x=x_axis), width="stretch", key="live-dout")
            st.plotly_chart(charts.speed_figure(rows, smoothing, x=x_axis), width="stretch", key="live-speed")
    with c4:
        sample_grid(store, run)


def sample_grid(store: Store, run: RunView) -> None:
    """The newest fixed-noise grid; a note if there is none yet or its file is unreadable."""
    sample = store.latest_sample(run.id)
    if not (sample and sample["path"].exists()):
        st.caption(progress.no_grid_text(run, has_row=sample is not None))
        return
    try:
        pixels = images.read_grid(sample["path"])
    except ValueError:  # a damaged file or not an image: a note, and the rest of the view still updates
        st.warning(f"Epoch {sample['epoch']}: this sample image is unreadable.", icon=":material/broken_image:")
    else:
        st.image(pixels, output_format="PNG", caption=f"fixed-noise samples after epoch {sample['epoch']}",
                 width="stretch")


def quality_panel(run: RunView, quality: list, floor: dict | None, floor_pending: bool) -> None:
    """FD (best epoch starred), KID and IS per epoch with the real-data floor when measured; precision, recall,
    density and coverage per epoch; the newest epoch's class shares, and a conditional run's per-class numbers.
    Rows scored before KID and precision/recall were measured show FD, IS and the class shares only."""
    if not quality:
        if run.config.eval_samples and run.status in LIVE:  # an ended run gets no more: nothing to promise
            st.caption("Quality numbers (Fréchet distance, KID, Inception Score, precision/recall, class shares) "
                       "appear after each epoch.")
        return
    last = quality[-1]
    series = {f"#{run.id}": quality}
    new_style = charts.has_key(quality, "kid") or charts.has_key(quality, "precision")
    same_n = charts.floor_matches(quality, floor)  # KID, P/R/D/C move with n: their floor only at the same n
    # New-style rows: FD beside KID, IS beside the class shares, then fidelity vs diversity across the page (three
    # charts in a row were 150 px each in an 800 px window).
    if new_style:
        fd_col, kid_col = st.columns(2)
        is_col, shares_col = st.columns(2)
    else:  # rows without KID and precision/recall: FD, IS and the shares in one row
        fd_col, is_col, shares_col = st.columns([2, 2, 1.4])
        kid_col = None
    with fd_col:
        fd = charts.fd_figure(series, floor)
        best = charts.mark_best(fd, quality)
        st.plotly_chart(fd, width="stretch", key="live-fd")
        if best is not None:
            st.caption(f":material/star: Best FD {best['fd']:.3g} at epoch {best['epoch']}: kept as "
                       "best-generator.safetensors")
    if kid_col is not None and charts.has_key(quality, "kid"):
        with kid_col:
            st.plotly_chart(charts.kid_figure(series, floor if same_n else None), width="stretch", key="live-kid")
    with is_col:
        st.plotly_chart(charts.is_figure(series, floor), width="stretch", key="live-is")
    with shares_col:
        st.caption(f"Epoch {last['epoch']}: {int(last['n']):,} samples scored by the {run.config.dataset} "
                   f"classifier in {last.get('seconds', 0):.1f} s")
        real = f" (real data {floor['confidence']:.3f} / {floor['diversity']:.2f})" if floor else ""
        st.caption(f"Mean confidence {last['confidence']:.3f}, feature diversity {last['diversity']:.2f}{real}")
        if floor_pending:
            st.caption("Scoring real test data for the floor lines; they appear in a moment.")
        st.bar_chart({"share of samples": last["class_shares"]}, height=200)
    if new_style:
        fidelity_diversity(quality, floor, floor_pending)
    if last.get("per_class"):
        per_class(last, floor, floor_pending)


def fidelity_diversity(quality: list, floor: dict | None, floor_pending: bool) -> None:
    """Realism, precision, recall, density and coverage per epoch, real data's as dashed lines at the same sample
    count."""
    st.plotly_chart(charts.fidelity_diversity_figure(quality, floor), width="stretch", key="live-prdc")
    kept, left_out = charts.same_n(quality)
    notes = []
    if left_out:
        notes.append(f"Epochs {', '.join(map(str, left_out))} were scored with another sample count than the "
                     f"newest ({int(kept[-1]['n']):,}) and are left out.")
    if floor and not charts.floor_matches(quality, floor):
        notes.append(f"No real-data lines: real data was scored with {int(floor.get('n') or 0):,} samples, this "
                     f"run with {int(quality[-1]['n']):,}, and these numbers move with the sample count.")
    st.caption(" ".join(notes) or "Realism: do samples look real? The share inside the tighter half of real digits' "
                                  "k-NN balls: blank, noisy or blurred images score 0, real test digits about 0.5. "
                                  "Recall and coverage: is every real style drawn? Precision and density are the "
                                  "papers' k-NN numbers: a few wide real balls let even blank images pass them, and "
                                  "density counts real neighbours, so it can pass 1.")


def per_class(last: dict, floor: dict | None, floor_pending: bool) -> None:
    """A conditional run's newest epoch per digit beside real data's, rows far below real recall highlighted."""
    table = charts.per_class_table(last, floor)
    st.markdown(f"**Per class, epoch {last['epoch']}**")
    thin = [r["digit"] for r in table if r["note"].startswith("low variety")]
    if thin:
        st.caption(f":material/report: Little variety in class{'es' if len(thin) > 1 else ''} "
                   f"{', '.join(map(str, thin))}: recall more than 0.2 below real digits' (highlighted).")
    elif floor_pending:
        st.caption("Real data's per-class numbers appear when the floor is scored.")
    elif not charts.floor_matches([last], floor):
        st.caption("No real data's per-class numbers at this sample count.")
    fmt: dict = {k: st.column_config.NumberColumn(k, format="%.1f" if "FD" in k else "%.2f")
                 for row in table[:1] for k in row if k not in ("digit", "samples", "note")}
    fmt["note"] = st.column_config.TextColumn("note", width="medium")

    def highlight(row):  # pandas Styler: the whole row of a class with little variety
        bad = str(row["note"]).startswith("low variety")
        return ["background-color: rgba(248, 113, 113, 0.25)" if bad else ""] * len(row)

    import pandas as pd
    st.dataframe(pd.DataFrame(table).style.apply(highlight, axis=1), hide_index=True, width="stretch",
                 column_config=fmt, key="live-per-class")


def end_polling(run: RunView, floor_pending: bool) -> None:
    """A full rerun once there is nothing left to poll for (the run ended, or its floor came in): it switches the
    fragment's timer off and refreshes the table."""
    # Only from the fragment's own timer: a full run has just set the timer from the same state, and rerunning it
    # again would drop what it showed (the toast saying this very run ended).
    if not floor_pending and st.session_state.get("floor_wait") == run.id:
        st.session_state.pop("floor_wait")
        if ui.in_fragment_run():
            st.rerun()
    if run.status not in LIVE and st.session_state.get("live_was_active") == run.id:
        st.session_state.pop("live_was_active")
        if ui.in_fragment_run():
            st.rerun()
    if run.status in LIVE:
        st.session_state["live_was_active"] = run.id


def live_polls(run: RunView) -> bool:
    """Whether the live view polls: while a worker trains the run (running, stopping), and after it while its
    real-data floor is still being scored in the background (`end_polling` stops it when the floor is in). A queued
    run has nothing new to show until a worker claims it, which the page's change watcher notices."""
    if run.status in ACTIVE:
        return True
    try:
        done_quality = ui.get_store().quality(run.id)
    except StoreError:
        done_quality = []
    if done_quality and real_floor.quality_floor_nowait(run.config.dataset, int(done_quality[-1]["n"]))[1]:
        st.session_state["floor_wait"] = run.id
        return True
    return False


def manage(run: RunView) -> None:
    """Owner/admin tools: name, tags, description; delete (soft, hidden on the demo)."""
    settings = ui.settings()
    if not ui.can_manage(run):
        return
    with st.expander("Edit or delete this run"):
        with st.form(f"edit-{run.id}"):
            name = st.text_input("Name", run.name, max_chars=200)
            tags = st.text_input("Tags", ", ".join(run.tags), help="Comma-separated words, e.g. baseline, dcgan")
            description = st.text_area("Description", run.description, max_chars=2000)
            if st.form_submit_button("Save"):
                try:
                    policy.edit(ui.get_store(), run.id, ui.identity(), settings, name, tags, description)
                except (policy.PolicyError, ConfigError) as e:
                    st.error(f"Nothing was changed: {text.plain(str(e))}")
                else:
                    st.rerun()
        if not settings.demo_mode or policy.is_admin(ui.identity(), settings):
            busy = run.status in LIVE
            if st.button("Delete run", key=f"delete-{run.id}", disabled=busy, icon=":material/delete:",
                         help="Stop it first. " if busy else "Hides the run at once; its files are removed when "
                                                             "an admin purges deleted runs."):
                try:
                    policy.delete(ui.get_store(), run.id, ui.identity(), settings)
                except policy.PolicyError as e:
                    st.error(text.plain(str(e)))
                else:
                    st.query_params.pop("run", None)
                    st.session_state.pop("run_id", None)
                    st.rerun()


DELETED_SHOWN = 100  # the newest deleted runs listed for restoring; older ones stay until purged


def deleted_runs() -> None:
    """Soft-deleted runs this person may restore or remove for good."""
    store, settings, me = ui.get_store(), ui.settings(), ui.identity()
    if not me.key or (settings.demo_mode and not policy.is_admin(me, settings)):
        return
    # Only the deleted rows, and only this person's unless an admin: never every run of the store.
    keys = None if policy.is_admin(me, settings) else [me.key, *me.aliases]
    mine = [r for r in store.deleted_runs(keys, limit=DELETED_SHOWN) if policy.can_manage(r, me, settings)]
    if not mine:
        return
    with st.expander(f"Deleted runs ({len(mine)})"):
        for r in mine:
            c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="center")
            c1.text(f"#{r.id} {r.name}")
            try:
                if c2.button("Restore", key=f"restore-{r.id}"):
                    policy.restore(store, r.id, me, settings)
                    st.rerun()
                # Not the highlighted button, and a second click to confirm: nothing brings the run back.
                if c3.button("Delete forever", key=f"purge-{r.id}",
                             help="Removes its metrics, samples, checkpoints and generator."):
                    st.session_state["purge_confirm"] = r.id
                if st.session_state.get("purge_confirm") == r.id:
                    st.warning(f"Delete run #{r.id} forever? Its metrics, samples, checkpoints and generator are "
                               f"removed, and this cannot be undone.")
                    y, n, _ = st.columns([1, 1, 2])
                    if y.button("Yes, delete it forever", key=f"purge-yes-{r.id}", icon=":material/delete_forever:"):
                        st.session_state.pop("purge_confirm", None)
                        policy.purge(store, r.id, me, settings)
                        st.rerun()
                    if n.button("Cancel", key=f"purge-no-{r.id}"):
                        st.session_state.pop("purge_confirm", None)
                        st.rerun()
            except policy.PolicyError as e:
                st.error(text.plain(str(e)))


def watch_token(store: Store, view: "run_list.RunFilter", page: int, run_id: int | None) -> Callable[[], tuple]:
    """What the page's change watcher reads: store.listing_token for this page and the selected run (after marking
    silent workers' runs interrupted, which only matters while a run is active)."""
    where, stale = run_list.run_where(view), ui.stale_after()
    also = [run_id] if run_id is not None else []

    def read() -> tuple:
        token = store.listing_token(where, run_list.PAGE_SIZE, (page - 1) * run_list.PAGE_SIZE, also, stale)
        if token[4] and stale is not None and store.mark_interrupted(stale):  # token[4]: active runs
            token = store.listing_token(where, run_list.PAGE_SIZE, (page - 1) * run_list.PAGE_SIZE, also, stale)
        return token
    return read


def main() -> None:
    """The page: one page of the runs table, the run picker and chart controls, the live view, then the owner's
    tools. Only a training run's parts poll at REFRESH_S; the rest redraws when the change watcher (one small read
    of what the page shows) sees something change: every REFRESH_S while a run shown trains or is queued with a
    worker live to take it, every ui.IDLE_REFRESH_S otherwise."""
    ui.bootstrap()
    st.header("Runs")
    store = ui.get_store()
    ui.mark_interrupted()
    if not store.count_runs():
        ui.no_runs_yet("No runs yet")
        st.stop()
    view, page, _, _ = asked_view(store, with_options=False)  # the table's fragment reads the options
    guess = ui.selected_run_id()
    read = watch_token(store, view, page, guess)
    drawn = read()  # before the rows are read: a change in between is seen by the first look, never missed
    unreadable: list = []
    listing = run_list.read_page(store, view, page, unreadable=unreadable)
    ui.warn_unreadable(unreadable)
    active = any(r.status in ACTIVE for r in listing.runs)
    st.fragment(run_every=REFRESH_S if active else None)(runs_table)(page_key(listing))
    runs = listing.runs or store.recent_runs(1)  # no run matches the filters: the picker offers the newest
    if not runs:  # every row is unreadable: the warning above names them
        st.stop()
    run = ui.select_run(runs)
    if listing.page != page or run.id != guess:  # a page past the last, a run picked for a link
        read = watch_token(store, view, listing.page, run.id)
        drawn = read()
    # Watched closely while something shown can move on its own: a run trains, or one is queued and a worker is
    # live to take it (drawn[-1]: live workers). A queued run with no worker waits for one to start, which the
    # slow look notices too.
    shown = [run, *listing.runs]
    ui.rerun_on_change(read, drawn, live=any(r.status in ACTIVE for r in shown)
                       or bool(drawn[-1] and any(r.status == RunStatus.QUEUED for r in shown)))
    smoothing, x_axis, log_losses = view_controls()
    try:
        st.fragment(run_every=REFRESH_S if live_polls(run) else None)(live_view)(run.id, smoothing, x_axis,
                                                                                 log_losses)
    except StoreError as e:
        st.error(f"Could not read the run from the database: {text.shown_error(e)}. Check that the database is "
                 f"reachable, then reload.")
    manage(run)
    deleted_runs()


main()
