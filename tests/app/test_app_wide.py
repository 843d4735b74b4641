"""What every page shares: empty states, the sidebar's sign-in and name, settings errors, links, toasts."""
from __future__ import annotations

import json

import pytest
from conftest import sqlite_only
from streamlit.testing.v1 import AppTest

from gan_core.config import TrainConfig
from gan_core.web import text

from .pages import PAGES, ROOT, app, fragment_periods, lr_sweep, texts

pytestmark = sqlite_only  # the pages are the subject, not the database


# --- empty states and the worker ------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES[1:])
def test_every_page_has_an_empty_state_that_leads_to_train(home, store, page):
    at = app(page)
    # AppTest runs a switched-to page the way a fresh server runs a deep link (pages/ as a legacy folder, without
    # app.py); ui.bootstrap then does what app.py does, so the page has the app's sidebar and its name box.
    assert [t.key for t in at.sidebar.text_input] == ["owner_input"]
    if page == "pages/generate.py":  # a fresh install opens Generate on the pretrained generators instead
        at.radio(key="gen_source").set_value("a run").run()
    assert any("no runs" in t for t in texts(at, "info"))
    assert not at.error
    button = [b for b in at.button if b.label == "Go to Train"]
    assert button
    button[0].click().run()
    assert at.header[0].value == "Train a GAN"


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES[1:])
def test_every_empty_state_offers_the_pretrained_generators(home, store, page):
    at = app(page)
    if page == "pages/generate.py":
        at.radio(key="gen_source").set_value("a run").run()
    assert any("pretrained generators" in t for t in texts(at, "info"))
    [b for b in at.button if b.label == "Try a pretrained generator"][0].click().run()
    assert at.header[0].value == "Generate" and at.radio(key="gen_source").value == "a pretrained generator"
    assert len(at.image) == 2 and not at.error


@pytest.mark.slow
def test_app_does_not_spawn_a_worker_when_told_not_to(home, store):
    app("pages/train.py")
    assert store.workers() == []


# --- who is who: sign-in, typed names, admins -----------------------------------------------------------------------
def at_button(at: AppTest, label: str) -> bool:
    return any(b.label == label for b in at.button)


def test_oidc_sign_in_mode(home, store):
    run_id = store.submit(TrainConfig(epochs=2), name="theirs", owner="ada@example.com")
    store.claim("w1", cap=1)
    out = app(oidc_user={"is_logged_in": False})  # Home, the default page, with app.py's sidebar
    assert at_button(out, "Log in") and not out.sidebar.text_input  # no free-typed names with sign-in configured
    assert app("pages/train.py", oidc_user={"is_logged_in": False}).button(key="start").disabled  # watch only
    ada = {"is_logged_in": True, "sub": "1001", "iss": "https://idp.example", "email": "ada@example.com",
           "email_verified": True, "name": "Ada"}
    signed = app(oidc_user=ada)
    assert at_button(signed, "Log out")
    assert any(text.plain("ada@example.com") in c.value for c in signed.caption)
    assert not app("pages/train.py", oidc_user=ada).button(key="start").disabled
    who = app("pages/runs.py", run_id=run_id, oidc_user=ada)  # her verified email owns the run named after it
    assert not who.button(key=f"stop-{run_id}").disabled
    other = app("pages/runs.py", run_id=run_id, oidc_user={"is_logged_in": True, "sub": "1002",
                                                            "email": "bob@example.com", "email_verified": True})
    assert other.button(key=f"stop-{run_id}").disabled


@pytest.mark.parametrize("claims", [
    {"sub": "666", "email": "ada@example.com"},                             # email_verified missing
    {"sub": "666", "email": "ada@example.com", "email_verified": False},
    {"sub": "666", "email": "ada@example.com", "email_verified": "false"},
    {"sub": "666", "name": "ada@example.com"},                              # a name that looks like an email
])
@pytest.mark.slow
def test_an_unverified_email_or_an_email_like_name_owns_nothing(home, store, monkeypatch, claims):
    monkeypatch.setenv("GAN_ADMINS", "ada@example.com")
    run_id = store.submit(TrainConfig(epochs=2), name="theirs", owner="ada@example.com")
    store.claim("w1", cap=1)
    mallory = app("pages/runs.py", run_id=run_id, oidc_user={"is_logged_in": True, **claims})
    assert mallory.button(key=f"stop-{run_id}").disabled  # neither the owner nor, through GAN_ADMINS, an admin
    train = app(oidc_user={"is_logged_in": True, **claims})  # the default page runs app.py's sidebar
    shown = [c.value.replace("\\", "").replace("\u2060", "") for c in train.caption]  # plain() undone
    assert any("Signed in as" in c for c in shown) and not any("ada@example.com" in c for c in shown)


def test_a_typed_name_never_grants_admin_rights(home, store, monkeypatch):
    monkeypatch.setenv("GAN_ADMINS", "root@example.com")
    run_id = store.submit(TrainConfig(epochs=2), name="theirs", owner="ada")
    store.claim("w1", cap=1)
    at = app("pages/runs.py", run_id=run_id, user="root@example.com")  # anyone can type it without sign-in
    assert at.button(key=f"stop-{run_id}").disabled
    admin = app("pages/runs.py", run_id=run_id, oidc_user={"is_logged_in": True, "sub": "1", "email":
                                                            "root@example.com", "email_verified": True})
    assert not admin.button(key=f"stop-{run_id}").disabled  # a signed-in admin may


def test_the_sidebar_name_is_kept_and_only_a_typed_name_is_remembered(home, store, monkeypatch):
    import ui
    remembered = []
    monkeypatch.setattr(ui, "_remember_name", remembered.append)
    at = app()  # app.py draws the sidebar
    assert at.text_input(key="owner_input").value == "anonymous" and remembered == []  # the default: not kept
    at = app(user="ada")  # a session that has a name: the box starts with it and the browser remembers it
    assert at.text_input(key="owner_input").value == "ada" and remembered == ["ada"]
    # The box's value comes from value=, never from writing the widget's key (the empty-box bug; see Chromium)
    assert 'st.session_state["owner_input"] =' not in (ROOT / "ui.py").read_text()


# --- malformed settings and damaged rows: words on the page, never a traceback --------------------------------------
def test_a_malformed_heartbeat_timeout_is_named_and_the_runs_page_keeps_working(home, store, monkeypatch):
    monkeypatch.setenv("GAN_HEARTBEAT_TIMEOUT", "abc")
    run_id = store.submit(TrainConfig(epochs=2), name="waiting")
    at = app("pages/runs.py", run_id=run_id)  # app() asserts no exception
    bad = [e.value for e in at.error if "`GAN_HEARTBEAT_TIMEOUT`" in e.value]
    assert len(bad) == 1 and "is not a number" in bad[0] and "restart the dashboard" in bad[0]
    assert at.subheader[0].value.startswith(f"#{run_id} waiting")  # the live view still renders
    assert at.dataframe and store.get(run_id).status == "queued"
    at = app("pages/home.py")  # every page says it once, at the top
    assert [e.value for e in at.error if "`GAN_HEARTBEAT_TIMEOUT`" in e.value] == bad


def test_a_malformed_worker_setting_starts_no_worker_and_says_why(home, store, monkeypatch):
    monkeypatch.delenv("GAN_NO_AUTOWORKER")  # the dashboard would start a worker: it must check the settings first
    monkeypatch.setenv("GAN_HEARTBEAT_TIMEOUT", "-5")
    monkeypatch.setenv("GAN_MAX_CONCURRENT", "two")
    at = app()
    errors = " ".join(e.value for e in at.error)
    assert "`GAN_HEARTBEAT_TIMEOUT`" in errors and "`GAN_MAX_CONCURRENT`" in errors
    assert store.workers() == []  # no worker spawned (it would refuse these settings and exit)


def test_a_damaged_run_row_is_named_and_every_page_lists_the_other_runs(home, store):
    from sqlalchemy import update

    from gan_core.runs.store import Run
    run_id = store.submit(TrainConfig(epochs=2), name="damaged")
    with store.engine.begin() as c:  # eval_samples as no version ever stored it
        c.execute(update(Run).where(Run.id == run_id).values(
            config_json=json.dumps({**TrainConfig(epochs=2).to_dict(), "eval_samples": "abc"})))
    fine = store.submit(TrainConfig(epochs=2), name="fine", owner="ada")
    for page in ("pages/runs.py", "pages/compare.py", "pages/samples.py", "pages/generate.py", "pages/sweeps.py"):
        at = app(page)  # app() asserts no exception
        warned = [w.value.replace("\\", "") for w in at.warning if "cannot be read" in w.value]  # text.plain's \
        assert len(warned) == 1 and f"run #{run_id} (damaged, owner" in warned[0] and "eval" in warned[0], page
        assert not at.error
    at = app("pages/runs.py")  # issue 26: the rest of the list is still there, not a page-wide error
    assert list(at.dataframe[0].value["id"]) == [fine] and at.subheader[0].value.startswith(f"#{fine} fine")


# --- links and run pickers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("link", ["²", "١", "٣", "-1", "1e3", "+1", " 1", "9" * 30, str(2**63)])
def test_an_id_in_a_link_is_ascii_digits_or_names_nothing(home, store, link):
    """Issue 27: /sweeps?sweep=² raised (str.isdigit accepts '²', int() does not), and int() read '١' (an Arabic-
    Indic one) or ' 1' as run 1. Every page reads ?run= and ?sweep= one way (text.parse_id)."""
    older = lr_sweep(store, points=1)  # sweep 1 and run 1: what the odd spellings of 1 were read as
    newer = lr_sweep(store, points=1)
    at = app("pages/sweeps.py", query={"sweep": link})
    assert at.selectbox(key="sweep_picker").value == newer != older  # the default sweep, not one the link names
    said = " ".join(w.value for w in at.warning)  # ... and says so (the walk-through saw it fall back silently)
    assert "which is not in the sweep list" in said and f"showing #{newer} instead" in said, said
    at.run()
    assert not any("not in the sweep list" in w.value for w in at.warning)  # said once; the URL names it now
    for page in ("pages/runs.py", "pages/samples.py"):
        at = app(page, query={"run": link})
        said = " ".join(w.value for w in at.warning)
        assert "which is not in the run list" in said, (page, said)
    at = app("pages/runs.py", query={"sweep": link})
    said = " ".join(w.value.replace("\\", "") for w in at.warning)
    assert "is not a sweep with runs here" in said, said


@pytest.mark.parametrize("link", ["999999", "-1'", "abc"])
def test_a_link_to_a_run_that_is_not_there_says_so_instead_of_showing_another(home, store, link):
    """Issue 26 walk-through: /runs?run=999999 (a deleted run's shared link, or a typo) quietly showed run #N as if
    the link had named it."""
    kept = store.submit(TrainConfig(epochs=2), name="kept", owner="ada")
    for page in ("pages/runs.py", "pages/samples.py"):
        at = app(page, query={"run": link})
        said = " ".join(w.value for w in at.warning)
        assert "which is not in the run list" in said and f"showing #{kept} instead" in said, (page, said)
        at.run()
        assert not any("not in the run list" in w.value for w in at.warning)  # said once; the URL names #kept now


def test_the_other_pages_pickers_offer_the_newest_runs_and_the_linked_one_not_every_row(home, store, monkeypatch):
    from conftest import many_runs

    import ui
    ids = many_runs(store, 30)
    monkeypatch.setattr(ui, "RECENT_RUNS", 10, raising=False)
    for page in ("pages/samples.py", "pages/generate.py"):
        at = app(page, run_id=ids[0])  # a link to the oldest run
        if page == "pages/generate.py":
            at.radio(key="gen_source").set_value("a run").run()
        options = at.selectbox(key="run_picker").options
        assert len(options) == 11 and options[-1].startswith(f"#{ids[0]} ") and options[0].startswith(f"#{ids[-1]} ")
    at = app("pages/compare.py")
    assert len(at.multiselect(key="compare_runs").options) == 10


# --- toasts when my runs end ----------------------------------------------------------------------------------------
def test_a_toast_when_one_of_my_runs_ends_on_any_page(home, store, monkeypatch):
    import ui
    mine = store.submit(TrainConfig(epochs=2), name="mine", owner="ada", owner_key="name:ada")
    theirs = store.submit(TrainConfig(epochs=2), name="theirs", owner="bob", owner_key="name:bob")
    store.claim("w1", cap=2)
    store.claim("w1", cap=2)
    periods = fragment_periods(monkeypatch)
    at = app("pages/train.py", user="ada")
    assert not at.toast and ("_watch_my_runs", ui.LIVE_REFRESH_S) in periods  # ada has a live run: a close watch
    store.finish(theirs, "done")
    at.run()
    assert not at.toast  # someone else's run is not news to ada
    store.finish(mine, "failed", "refused before training: batch_size: 64 is larger than the 32 training images")
    periods.clear()
    at.run()
    (toast,) = at.toast
    assert toast.value.startswith(f"Run #{mine} mine failed: refused before training\\: batch\\_size") and \
        f"/runs?run={mine}" in toast.value
    assert ("_watch_my_runs", ui.IDLE_REFRESH_S) in periods  # nothing of ada's is live now: a slow watch
    at.run()
    assert not at.toast  # told once


def test_the_toast_survives_the_runs_pages_own_rerun_when_my_run_ends(home, store):
    """Issue 26 walk-through: on the Runs page (where Start leads) the toast never showed: the table and live view
    rerun the whole page when a run ends, and that full run dropped the toast the sidebar's watcher had just shown."""
    mine = store.submit(TrainConfig(epochs=2), name="mine", owner="ada", owner_key="name:ada")
    store.claim("w1", cap=1)
    at = app("pages/runs.py", run_id=mine, user="ada")
    assert not at.toast
    store.finish(mine, "done")
    at.run()
    (toast,) = at.toast
    assert toast.value.startswith(f"Run #{mine} mine finished") and not at.exception
    at.run()
    assert not at.toast  # told once
