"""Streamlit glue shared by app.py and the pages: the per-process Store, the worker start, page handles, pickers.

Only session-level UI state (the owner name, which run is selected) lives in st.session_state / st.query_params;
everything about a run is read from the store on every render, so every browser tab sees the same numbers.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Hashable, Sequence
from urllib.parse import unquote

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from gan_core.config import ConfigError, TrainConfig
from gan_core.runs import capability, policy, worker
from gan_core.runs.settings import WorkerSettings
from gan_core.runs.status import FINISHED, RunStatus
from gan_core.runs.store import RunView, Store, StoreError, gan_home
from gan_core.web import alerts, forms, images, text

PAGES = {
    "home": "pages/home.py",
    "train": "pages/train.py",
    "runs": "pages/runs.py",
    "samples": "pages/samples.py",
    "generate": "pages/generate.py",
    "compare": "pages/compare.py",
    "sweeps": "pages/sweeps.py",
    "playground": "pages/playground.py",
}


#: How often a view re-reads the store while something in it can change (a run is queued or training) ...
LIVE_REFRESH_S = 2.0
#: ... and otherwise, only to notice what another tab, browser or the command line does (a run queued or resumed).
IDLE_REFRESH_S = 10.0


def refresh_s(live: bool) -> float:
    """The polling period of a view: LIVE_REFRESH_S while something it shows can change, else IDLE_REFRESH_S."""
    return LIVE_REFRESH_S if live else IDLE_REFRESH_S


def rerun_on_change(read: Callable[[], Hashable], drawn: Hashable, live: bool) -> None:
    """A fragment that calls `read()` every refresh_s(live) seconds and reruns the whole page once it differs from
    `drawn`, what the page was drawn from: a page that is not a live view itself (Samples, Compare, an empty state)
    redraws when its runs move, at the cost of one small read per period while nothing changes."""
    def check() -> None:
        if read() != drawn:
            st.rerun()
    st.fragment(run_every=refresh_s(live))(check)()


@st.cache_resource(show_spinner=False)
def _store(home: str, url: str) -> Store:
    return Store(url or None, home)


def get_store() -> Store:
    """The process-wide Store; on a database problem, an st.error saying what to do, then stop the page."""
    try:
        # Keyed on where the store lives, so a process only ever holds one Store per database.
        return _store(str(gan_home()), os.environ.get("GAN_DB_URL", ""))
    except StoreError as e:
        st.error(f"The run database cannot be used: {text.shown_error(e)}")
        st.stop()
        raise  # unreachable: st.stop raises


def app_pages() -> list[StreamlitPage]:
    """The app's navigation: every page under pages/ with its title and icon, Home the default."""
    return [
        st.Page(PAGES["home"], title="Home", icon=":material/home:", default=True),
        st.Page(PAGES["train"], title="Train", icon=":material/model_training:"),
        st.Page(PAGES["runs"], title="Runs", icon=":material/monitoring:"),
        st.Page(PAGES["samples"], title="Samples", icon=":material/grid_view:"),
        st.Page(PAGES["generate"], title="Generate", icon=":material/auto_awesome:"),
        st.Page(PAGES["compare"], title="Compare", icon=":material/compare:"),
        st.Page(PAGES["sweeps"], title="Sweeps", icon=":material/leaderboard:"),
        st.Page(PAGES["playground"], title="Playground", icon=":material/scatter_plot:"),
    ]


def frame() -> None:
    """What every page runs inside: page settings, the store, one worker per machine, the sidebar."""
    import torch

    # The server only samples small batches; two OpenMP threads contending with a worker that trains on both cores
    # made a 4 ms generator call take ~100 ms. One thread keeps Generate fast while training runs.
    torch.set_num_threads(1)
    st.set_page_config(page_title="GAN Studio", page_icon=":material/tune:", layout="wide")
    apply_server_profile()
    get_store()  # a database problem stops here with an st.error, before any page runs
    ensure_worker_once()
    with st.sidebar:
        identity_sidebar()
        if settings().demo_mode:
            st.caption("Public demo: runs are small and capped, and old runs are removed automatically.")
        run_toasts()


_MY_LIVE = "_my_live_runs"  # {run id: name}: this session's runs that were queued or training when last looked at
_TOASTS = "_pending_toasts"  # toasts a watcher found just before it reran the page, shown by that full run
TOASTS_AT_ONCE = 3  # more runs ending at once (a sweep) get one toast that counts them
#: A toast a fragment showed is shown again by a full run that follows within this many seconds (which drops it).
TOAST_REPLAY_S = 2 * LIVE_REFRESH_S + 1


def _my_live_runs(store: Store, key: str) -> dict[int, str]:
    """{id: name} of the queued or training runs of owner `key`; none while a damaged row makes the runs unreadable
    (the pages that list runs say so; a toast watcher must not turn it into a traceback on every page)."""
    try:
        return store.live_run_names(key)  # ids and names only: no row's config is parsed every poll
    except ConfigError:
        return {}


def run_toasts() -> None:
    """A toast on whatever page is open when one of this session's runs (its owner key: the signed-in user, the
    demo's browser, the team's typed name) finishes, fails or otherwise ends. A fragment in the sidebar polls the
    store: every LIVE_REFRESH_S while such a run is live, every IDLE_REFRESH_S otherwise (to notice one queued from
    another tab, which then reruns the page to poll at the faster pace)."""
    for message, icon, at in st.session_state.pop(_TOASTS, []):
        if time.time() - at < TOAST_REPLAY_S:
            st.toast(message, icon=icon, duration="long")
    key = owner_key()
    if not key:  # signed out: no runs of one's own
        return
    fast = bool(_my_live_runs(get_store(), key))
    st.fragment(run_every=refresh_s(fast))(_watch_my_runs)(key, fast)


def _watch_my_runs(key: str, fast: bool) -> None:
    """One look at this session's runs: toasts for those that were live and have ended since the last look."""
    store = get_store()
    before = st.session_state.get(_MY_LIVE, {})
    now = _my_live_runs(store, key)
    st.session_state[_MY_LIVE] = now
    ended = [r for r in (store.get(i) for i in before if i not in now) if r is not None and r.status in FINISHED]
    toasts = [alerts.ended_notice(r) for r in ended]
    if len(toasts) > TOASTS_AT_ONCE:
        toasts = [alerts.ended_summary(ended)]
    # A full run replays them once: the one this fragment starts below, or the one a page's own fragment starts when
    # it sees the same run end (the Runs table and live view do), which would drop a toast shown only here.
    if toasts and in_fragment_run():
        st.session_state[_TOASTS] = [(message, icon, time.time()) for message, icon in toasts]
    if bool(now) != fast:  # the pace no longer fits: a full rerun registers this fragment again at the right one
        st.rerun()
    for message, icon in toasts:
        st.toast(message, icon=icon, duration="long")


def in_fragment_run() -> bool:
    """Whether this script run reruns fragments only (a fragment's timer), not the whole page."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


_IN_APP = "_ran_through_app"  # set by run_app for the page it runs, read once by bootstrap


def run_app() -> None:
    """What app.py runs: the navigation, the frame around every page, then the page the URL names."""
    page = st.navigation(app_pages())  # first: the frame's widgets then get the same ids on every path here
    frame()
    st.session_state[_IN_APP] = True
    page.run()


def bootstrap() -> None:
    """First call of every page (`ui.bootstrap()`). Until some session has called st.navigation, Streamlit treats
    pages/ as a legacy multipage folder: a deep link on a freshly started server (/runs?run=3) runs pages/runs.py
    alone, without app.py. Such a run does what app.py does instead (`run_app`: st.navigation, the frame, this page
    again), then stops; once st.navigation has run, Streamlit ignores pages/ for every session (its documented
    rule). The widgets get the ids app.py gives them, so nothing typed on the first page is lost on the next run.
    Then a malformed worker setting (`WorkerSettings.problems`) is an st.error at the top of the page."""
    if not st.session_state.pop(_IN_APP, False):
        run_app()
        st.stop()  # and nothing more of this legacy-mode run
    for var, problem in WorkerSettings.problems().items():
        also = (" Until then the dashboard cannot tell a worker that went silent from a busy one, so it marks no run "
                "interrupted." if var == "GAN_HEARTBEAT_TIMEOUT" else "")
        st.error(f"**Bad setting `{var}`:** {text.plain(problem)}. A training worker refuses to start with it, so the "
                 f"dashboard starts none.{also} Fix it in the dashboard's environment and restart the dashboard.",
                 icon=":material/settings_alert:")


def stale_after() -> float | None:
    """WorkerSettings.stale_after (GAN_HEARTBEAT_TIMEOUT), or None when that variable is malformed: then nothing can
    tell a silent worker from a busy one, and `bootstrap` has already said so at the top of the page."""
    try:
        return WorkerSettings.read("stale_after")
    except ConfigError:
        return None


def apply_server_profile() -> None:
    """Streamlit's own settings that this deployment's settings decide: uploads no larger than GAN_MAX_UPLOAD_MB
    (Streamlit's server checks `server.maxUploadSize` on every upload request), and on the demo the viewer toolbar
    and no error details. Settings are process-wide: `make demo` sets them before the first page too."""
    import math

    from streamlit import config

    s = policy.Settings.from_env()
    want = {"server.maxUploadSize": math.ceil(s.max_upload_mb)}
    if s.demo_mode:
        want |= {"client.toolbarMode": "viewer",        # no "deploy", no settings menu for strangers
                 "client.showErrorDetails": "none"}     # a traceback leaks paths and code
    for key, value in want.items():
        if config.get_option(key) != value:  # setting an option, even to its value, made the frontend reset
            config.set_option(key, value, "GAN Studio's settings (ui.apply_server_profile)")


def autoworker_enabled() -> bool:
    """False when GAN_NO_AUTOWORKER is set (tests; or workers you run yourself with `python -m gan_core worker`)."""
    return os.environ.get("GAN_NO_AUTOWORKER", "").strip().lower() not in ("1", "true", "yes")


@st.cache_resource(show_spinner=False)
def _worker_once(home: str) -> bool:
    return ensure_worker()


def ensure_worker() -> bool:
    """Start a detached training worker if none is alive (never trains in this process); True if one started."""
    if not autoworker_enabled():
        return False
    if WorkerSettings.problems():  # the worker would exit at once; every page's top says why (bootstrap)
        return False
    try:
        return worker.ensure_worker(get_store())
    except OSError as e:
        st.warning(f"Could not start a training worker ({text.shown_error(e)}); run `python -m gan_core worker` "
                   "yourself.")
        return False


def ensure_worker_once() -> None:
    """ensure_worker, once per server process (st.cache_resource)."""
    _worker_once(str(get_store().home))


@st.cache_resource(show_spinner=False)
def _this_machine() -> capability.Capabilities:
    return capability.detect_local()


def live_workers() -> list[dict]:
    """The workers whose heartbeat is fresh (Store.workers rows with their capabilities); [] when
    GAN_HEARTBEAT_TIMEOUT is malformed (the top of the page says so)."""
    stale = stale_after()
    return get_store().workers(live=stale) if stale is not None else []


def worker_note(cfg: TrainConfig) -> None:
    """Before Start: which live workers can train `cfg`, or that it would wait in the queue for one that can."""
    if stale_after() is None:
        return
    here = _this_machine() if autoworker_enabled() else None  # the worker Start would start on this machine
    level, note = capability.form_note(cfg, live_workers(), here)
    note = text.plain(note)  # host and GPU names come from the workers' rows: shown as text, never markdown
    if level == "warning":
        st.warning(note, icon=":material/hourglass_top:")
    else:
        st.caption(f":material/memory: {note}")


def waiting_reasons(runs: Sequence[RunView]) -> dict[int, str]:
    """{run id: why it waits} for the queued runs that no live worker can train (capability.waiting_reason)."""
    queued = [r for r in runs if r.status == RunStatus.QUEUED]
    workers = live_workers() if queued else []
    return {r.id: why for r in queued if (why := capability.waiting_reason(r.config, workers))}


def mark_interrupted() -> None:
    """Mark runs whose worker went silent as interrupted, as every run list does first (unless
    GAN_HEARTBEAT_TIMEOUT is malformed: no guessing which runs lost their worker)."""
    stale = stale_after()
    if stale is not None:
        get_store().mark_interrupted(stale)


#: How many of the newest runs a page's run picker offers (the run a link names is offered too, however old).
RECENT_RUNS = 200


def recent_runs(also: Sequence[int] = (), warn: bool = True) -> list[RunView]:
    """The newest RECENT_RUNS runs and the selected one (?run= or this session's), and those in `also`, newest
    first, after `mark_interrupted`: a picker's choices without reading every row. A run whose stored settings no
    longer read is left out, and (with `warn`) named in a warning: one damaged row never hides the others."""
    mark_interrupted()
    want = selected_run_id()
    unreadable: list = []
    runs = get_store().recent_runs(RECENT_RUNS, [*also, *([want] if want is not None else [])], unreadable)
    if warn:
        warn_unreadable(unreadable)
    return runs


def warn_unreadable(unreadable: Sequence) -> None:
    """One warning naming every run the store could not read (store.UnreadableRun), and what to do about it."""
    if unreadable:
        st.warning("Left out of the lists: " + "; ".join(text.plain(u.text()) for u in unreadable)
                   + ". Repair or remove " + ("that row" if len(unreadable) == 1 else "those rows")
                   + " in the run database; every other run is shown.", icon=":material/report:")


def auth_configured() -> bool:
    """Whether `.streamlit/secrets.toml` has an `[auth]` section, i.e. OIDC sign-in via st.login is on."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: Streamlit raises rather than returning empty
        return False


def identity() -> policy.Identity:
    """Who is using this session. With OIDC sign-in: the provider's subject (nobody until signed in). On a demo
    without sign-in: this browser's server-issued visitor token, the typed name only a label. In a trusted team:
    the typed display name ('anonymous' by default)."""
    s = policy.Settings.from_env()
    if auth_configured():
        me = policy.oidc_identity(st.user.to_dict(), s) if st.user.is_logged_in else policy.Identity("", "")
    else:
        name = (st.session_state.get("owner") or "").strip() or "anonymous"
        me = policy.visitor_identity(visitor_token(), name) if s.demo_mode else policy.Identity.named(name)
    return dataclasses.replace(me, address=client_address(s))  # a typed name is never an admin


def client_address(s: policy.Settings) -> str:
    """This session's client IP address ('' when not known: Streamlit gives none for a browser on localhost)."""
    return policy.client_address(st.context.ip_address, st.context.headers.get_all("X-Forwarded-For"),
                                 s.trusted_proxy_hops)


def owner() -> str:
    """The name this session's runs are shown under ('' until signed in, when sign-in is configured)."""
    return identity().label


def owner_key() -> str:
    """What ownership, caps and upload quotas key on for this session ('' = may watch, not act)."""
    return identity().key


VISITOR_COOKIE = "gan_studio_visitor"


def visitor_token() -> str:
    """This browser's visitor token on a demo without sign-in: read from its signed cookie, else issued now (and
    the cookie set), kept in the session. Clearing cookies gives a new token, which the demo's global caps bound."""
    if st.session_state.get("_visitor_token"):
        return st.session_state["_visitor_token"]
    key = policy.secret_key(get_store().home)
    token = policy.read_visitor_token(key, st.context.cookies.get(VISITOR_COOKIE))
    if token is None:
        token, signed = policy.visitor_token(key)
        _set_cookie(VISITOR_COOKIE, signed, max_age=policy.VISITOR_TOKEN_DAYS * 86400)
    st.session_state["_visitor_token"] = token
    return token


def settings() -> policy.Settings:
    """This deployment's demo caps and admins (environment; see gan_core.runs.policy.Settings.from_env)."""
    s = policy.Settings.from_env()
    # A typed display name proves nothing: admin rights only for identities that signed in (OIDC).
    return s if auth_configured() else dataclasses.replace(s, admins=frozenset())


def can_manage(run: RunView) -> bool:
    """Whether this session may stop, resume, edit or delete `run` (owner or admin)."""
    return policy.can_manage(run, identity(), settings())


def identity_sidebar() -> None:
    """Sign-in (OIDC) or the trusted team's display name, shown in the sidebar of every page."""
    if auth_configured():
        if st.user.is_logged_in:
            st.caption(f"Signed in as {text.plain(owner())}")
            st.button("Log out", on_click=st.logout, key="logout")
        else:
            st.caption("Sign in to start and manage runs; everyone can watch.")
            st.button("Log in", on_click=st.login, key="login", type="primary")
        return
    demo = policy.Settings.from_env().demo_mode
    if not st.session_state.get("owner"):  # a new session: the name this browser chose before, if any
        st.session_state["owner"] = remembered_name() or DEFAULT_NAME
    # The widget's own state is never written from here: its starting value is `value=` (the session's name), and
    # what it returns is the name. Writing st.session_state["owner_input"] before creating it (as before) let a
    # widget state the browser sent on a new session (the first run after a server restart, or the first keystroke
    # of a fresh page) meet a value the server had set, and the box came back empty: "Queued as anonymous".
    if demo:
        name = st.text_input("Your name (a label)", value=st.session_state["owner"], key="owner_input",
                             max_chars=100,
                             help="Shown beside the runs you start. It proves nothing: what you may stop or resume is "
                                  "tied to this browser (a signed cookie), not to the name.")
        st.caption("Public demo: your runs belong to this browser. Clearing its cookies hands them back to the demo.")
    else:
        name = st.text_input("Your name", value=st.session_state["owner"], key="owner_input", max_chars=100,
                             help="Shown as the owner of the runs you start. Team mode trusts names: anyone who types "
                                  "your name can stop or edit your runs. This browser remembers it.")
        st.caption("Team mode: names are trusted, not checked. Use sign-in (OIDC) or demo mode for strangers.")
    st.session_state["owner"] = name  # plain key: survives the widget's cleanup (a page run without the sidebar)
    if demo:  # issued (its cookie set) on the first page this browser opens; after the input, which a component
        visitor_token()  # placed before it would remount, and a remounted input forgets what was typed
    # Only a name someone typed is remembered: "anonymous" in the cookie would outlive the name typed next.
    if (name.strip() and name.strip() != DEFAULT_NAME and remembered_name() != name
            and st.session_state.get("_cookie_set") != name):
        _remember_name(name)
        st.session_state["_cookie_set"] = name


DEFAULT_NAME = "anonymous"


def remembered_name() -> str:
    """The display name this browser's cookie remembers ('' if none)."""
    cookie = st.context.cookies.get(NAME_COOKIE)
    return unquote(cookie).strip()[:100] if isinstance(cookie, str) else ""  # set percent-encoded


NAME_COOKIE = "gan_studio_name"


def _remember_name(name: str) -> None:
    """Store the display name in a cookie of this site, so the next tab or visit of this browser starts with it."""
    _set_cookie(NAME_COOKIE, name, max_age=31536000)


def _set_cookie(name: str, value: str, max_age: int) -> None:
    """Set a cookie of this site. Streamlit reads cookies (st.context.cookies) but cannot set them; a script does,
    in st.html with JavaScript allowed: it runs in the app's own page (no iframe) and shows nothing."""
    import json

    text = json.dumps(value).replace("<", "\\u003c")  # a JS string literal that cannot close the script tag
    secure = "; Secure" if (st.context.url or "").startswith("https:") else ""
    st.html(f"<script>document.cookie = '{name}=' + encodeURIComponent({text}) + "
            f"'; path=/; max-age={max_age}; SameSite=Strict{secure}';</script>", unsafe_allow_javascript=True)


def warn_unknown_link(kind: str, found: bool, shown: int) -> None:
    """Say, once, that the URL's ?run= / ?sweep= (`kind`) names nothing in the list (`found` False) and which one
    is shown instead: a shared link to something gone (or a typo) must not quietly show another as if it were it."""
    asked, told = st.query_params.get(kind), f"_link_{kind}_told"  # told: the value the refused link was replaced by
    if asked is None or found or st.session_state.get(told) == asked:
        return
    named = asked if len(asked) <= 20 else asked[:19] + "…"
    st.warning(f"The link names {kind} {text.plain(named)}, which is not in the {kind} list (deleted, never queued, "
               f"or not a {kind} number): showing #{shown} instead.", icon=":material/link_off:")
    st.session_state[told] = str(shown)  # said once: the URL now names the one shown




def selected_run_id() -> int | None:
    """The run named by ?run= in the URL (shared links open the same run), else the session's last choice."""
    return text.parse_id(st.query_params.get("run") or st.session_state.get("run_id"))


def select_run(runs: Sequence[RunView], label: str = "Run", key: str = "run_picker") -> RunView:
    """A selectbox over `runs` (and the run ?run= names, read alone when `runs` leave it out: a page of the runs
    table, the newest runs) that remembers the choice in ?run= and session_state; returns the chosen run."""
    want = selected_run_id()
    if want is not None and want not in {r.id for r in runs}:  # a page's runs: the run a link names is added
        try:
            named = get_store().get(want)
        except (ConfigError, ValueError, TypeError):  # its settings do not read: the lists name such rows
            named = None
        if named is not None and named.deleted_at is None:
            runs = sorted([*runs, named], key=lambda r: r.id, reverse=True)
    ids = [r.id for r in runs]
    index = ids.index(want) if want in ids else 0
    by_id = {r.id: r for r in runs}
    warn_unknown_link("run", want in ids, ids[index])
    # A fresh key per page keeps Streamlit from clearing the choice between pages; the index carries it over.
    chosen = st.selectbox(label, ids, index=index, key=key,
                          format_func=lambda i: f"#{i} {by_id[i].name} ({by_id[i].owner or 'no owner'})")  # plain text
    st.session_state["run_id"] = chosen
    if st.query_params.get("run") != str(chosen):
        st.query_params["run"] = str(chosen)
    return by_id[chosen]


def no_runs_yet(what: str = "Nothing to show yet") -> None:
    """The empty state: say so, offer the pretrained generators (digits at once) and the way to the Train page."""
    st.info(f"{what}: no runs in the store. Queue one on the Train page; a worker trains it in the background. "
            "Meanwhile, the pretrained generators on the Generate page draw digits right away.")
    c1, c2, _ = st.columns([1, 1, 2])
    with c1:
        if st.button("Go to Train", type="primary", key="empty_go_train", width="stretch"):
            st.switch_page(PAGES["train"])
    with c2:
        if st.button("Try a pretrained generator", key="empty_go_pretrained", width="stretch"):
            st.session_state["gen_open_pretrained"] = True  # read once by pages/generate.py
            st.switch_page(PAGES["generate"])
    rerun_on_change(get_store().count_runs, 0, live=False)  # a run queued from another tab: the page fills itself


def epoch_grids(runs: Sequence[RunView], key: str, per_row: int = 2) -> None:
    """One epoch slider that moves the sample grids of all `runs` together, side by side at full size. A run without
    a grid at that epoch shows its newest one before it. Runs with the same noise size and distribution draw their
    grids from the same noise (trainer.GRID_SEED, whatever their seed), which the caption says."""
    store = get_store()
    grids = {r.id: {s["epoch"]: s["path"] for s in store.samples(r.id)} for r in runs}
    epochs = sorted({e for g in grids.values() for e in g})
    if not epochs:
        st.caption("No sample grids yet.")
        return
    # The slider starts on the newest epoch and, while it is left there, follows the newest as live runs add epochs.
    newest = f"{key}-newest"
    if st.session_state.get(key) not in epochs or st.session_state.get(key) == st.session_state.get(newest):
        st.session_state[key] = epochs[-1]
    st.session_state[newest] = epochs[-1]
    epoch = epochs[0] if len(epochs) == 1 else st.select_slider("Epoch (moves every grid)", options=epochs, key=key)
    noise = {(r.config.latent_dim, r.config.noise, r.config.conditional or r.config.info_code) for r in runs}
    st.caption("Every grid is drawn from the same noise." if len(noise) == 1 else
               "Runs with the same noise size and distribution draw the same noise; these differ in it, so compare "
               "their overall look, not digit by digit.")
    for n, r in enumerate(runs):
        if n % per_row == 0:
            cols = st.columns(per_row)
        with cols[n % per_row]:
            have = [e for e in grids[r.id] if e <= epoch]
            label = f"#{r.id} {text.plain(r.name)}"
            if not have:
                st.caption(f"{label}: no grid by epoch {epoch}")
                continue
            shown = max(have)
            try:
                pixels = images.read_grid(grids[r.id][shown])
            except ValueError:
                st.caption(f"{label}: this sample image is unreadable")
                continue
            st.image(pixels, output_format="PNG", width="stretch",
                     caption=f"{label} · epoch {shown}" + ("" if shown == epoch else f" (its newest by {epoch})"))


TRAIN_FORM = "train_form"  # pages/train.py's form dict (it outlives the page's widgets): Clone writes it


def clone_into_train(run_id: int) -> None:
    """Fill the Train form with run `run_id`'s config (every field) and open the Train page ("Clone")."""
    run = get_store().get(run_id)
    if run is None or run.deleted_at is not None:
        st.error("That run is gone.")
        return
    st.session_state[TRAIN_FORM] = forms.form_values(cfg=run.config)
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith("cfg.")]:
        del st.session_state[key]  # the form's widgets restore themselves from the form dict
    st.session_state["train_mode"] = "Single run"
    st.session_state["cloned_from"] = f"run #{run.id} {run.name}"  # user text: shown through text.plain
    st.session_state["clone_note"] = True  # the Train page says so once
    st.switch_page(PAGES["train"])
