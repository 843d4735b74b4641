"""Ownership and the demo caps, enforced by gan_core.runs.policy on a real store (SQLite and PostgreSQL)."""
import dataclasses

import pytest

from gan_core.config import ConfigError, TrainConfig
from gan_core.runs import policy
from gan_core.runs.policy import PolicyError, Settings
from gan_core.runs.store import clean_tags

TEAM = Settings(admins=frozenset({"root"}))
DEMO = Settings(demo_mode=True, admins=frozenset({"root"}), max_epochs=3, max_steps=1000, max_queued_per_user=2,
                max_queued_total=3, submissions_per_minute=5, max_grid=6, prune_days=7)
SMALL = TrainConfig(epochs=2, train_subset=12_800)  # 2 × 100 steps of 128


def test_only_the_owner_or_an_admin_may_stop_resume_edit_or_delete(store):
    run_id = policy.submit(store, SMALL, "ada", TEAM, name="mine")
    for action in (lambda u: policy.stop(store, run_id, u, TEAM),
                   lambda u: policy.edit(store, run_id, u, TEAM, name="renamed by " + u)):
        with pytest.raises(PolicyError, match="belongs to ada; only its owner or an admin"):
            action("bob")
    assert store.get(run_id).status == "queued" and store.get(run_id).name == "mine"  # nothing changed
    assert policy.stop(store, run_id, "ada", TEAM) and store.get(run_id).status == "stopped"
    with pytest.raises(PolicyError):
        policy.resume(store, run_id, "bob", TEAM)
    assert policy.resume(store, run_id, "root", TEAM)  # an admin may
    store.finish(run_id, "stopped")
    with pytest.raises(PolicyError):
        policy.delete(store, run_id, "bob", TEAM)
    assert policy.delete(store, run_id, "ada", TEAM)
    assert run_id not in [r.id for r in store.list_runs()]                       # soft: hidden ...
    assert store.get(run_id).deleted_at is not None                             # ... but still there
    assert policy.restore(store, run_id, "ada", TEAM) and store.get(run_id).deleted_at is None


def test_soft_delete_then_purge_removes_rows_and_artifacts(store):
    run_id = policy.submit(store, SMALL, "ada", TEAM)
    folder = store.artifacts_dir(store.get(run_id))
    (folder / "samples").mkdir(parents=True)
    (folder / "generator.safetensors").write_bytes(b"x")
    store.add_step_metrics(run_id, [dict(step=1, epoch=1, d_loss=1.0, g_loss=1.0, d_real=0.5, d_fake=0.5,
                                    images_per_sec=1.0)])
    store.request_stop(run_id)
    assert not policy.purge(store, run_id, "ada", TEAM)  # not soft-deleted yet: purge refuses
    assert folder.exists()
    policy.delete(store, run_id, "ada", TEAM)
    assert policy.purge(store, run_id, "ada", TEAM)
    assert store.get(run_id) is None and not folder.exists() and store.step_metrics(run_id) == []


def test_a_running_run_cannot_be_deleted(store):
    run_id = policy.submit(store, SMALL, "ada", TEAM)
    store.claim("w", cap=1)
    assert not policy.delete(store, run_id, "ada", TEAM)
    assert store.get(run_id).deleted_at is None


@pytest.mark.parametrize("cfg, message", [
    (SMALL.replace(epochs=4), "epochs 4 is more than the 3"),
    (TrainConfig(epochs=3), "steps is more than the 1,000"),
])
def test_demo_caps_per_run(store, cfg, message):
    with pytest.raises(PolicyError, match=message):
        policy.submit(store, cfg, "ada", DEMO)
    assert store.list_runs() == []
    policy.submit(store, cfg, "ada", TEAM)  # the same config is fine for a team without demo mode


def test_demo_caps_on_queued_runs_per_person_and_in_total(store):
    policy.submit(store, SMALL, "ada", DEMO)
    policy.submit(store, SMALL, "ada", DEMO)
    with pytest.raises(PolicyError, match="you already have 2 run"):
        policy.submit(store, SMALL, "ada", DEMO)
    policy.submit(store, SMALL, "bob", DEMO)
    with pytest.raises(PolicyError, match="3 runs are queued or training on this demo"):
        policy.submit(store, SMALL, "cyd", DEMO)
    assert len(store.list_runs()) == 3
    policy.stop(store, store.list_runs()[0].id, "bob", DEMO)  # a queued run stops at once, freeing a slot
    policy.submit(store, SMALL, "cyd", DEMO)


@pytest.mark.parametrize("same_person, cap", [(True, DEMO.max_queued_per_user), (False, DEMO.max_queued_total)])
def test_demo_queue_caps_hold_under_parallel_submissions(store, same_person, cap):
    """Eight submissions at once, each from its own thread with its own Store (its own database connections): the
    per-person cap (one person) or the total cap (eight people) lets exactly `cap` in and refuses the rest."""
    import threading

    from gan_core.runs.store import Store

    caps = dataclasses.replace(DEMO, submissions_per_minute=100, submissions_per_minute_total=100)  # queue caps only
    policy.check_resources(SMALL, caps)  # sizes the models once (cached): the threads then race on the database only
    start = threading.Barrier(8)
    results: list[int | Exception] = []

    def submit(i: int) -> None:
        s = Store()
        try:
            start.wait(timeout=30)
            results.append(policy.submit(s, SMALL, "ada" if same_person else f"user{i}", caps))
        except PolicyError as e:
            results.append(e)
        finally:
            s.dispose()
    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    accepted = sorted(r for r in results if isinstance(r, int))
    assert len(results) == 8 and len(accepted) == cap, results
    assert all(isinstance(r, PolicyError) and "demo limit" in str(r) for r in results if not isinstance(r, int))
    assert sorted(r.id for r in store.list_runs()) == accepted


def test_demo_cap_on_submissions_per_minute(store):
    fast = Settings(demo_mode=True, submissions_per_minute=2, max_queued_per_user=10, max_queued_total=10,
                    max_epochs=3, max_steps=1000)
    for _ in range(2):
        run_id = policy.submit(store, SMALL, "ada", fast)
        policy.stop(store, run_id, "ada", fast)  # not queued any more: only the rate limit is left
    with pytest.raises(PolicyError, match="at most 2 runs a minute"):
        policy.submit(store, SMALL, "ada", fast)
    policy.submit(store, SMALL, "bob", fast)  # per person


def test_demo_resume_cannot_grow_a_run_past_the_cap(store):
    run_id = policy.submit(store, SMALL, "ada", DEMO)
    store.claim("w", cap=1)
    store.finish(run_id, "done")
    with pytest.raises(PolicyError, match="epochs 5 is more than the 3"):
        policy.resume(store, run_id, "ada", DEMO, extra_epochs=3)
    assert store.get(run_id).status == "done"


def test_demo_hides_delete_but_admins_keep_it(store):
    run_id = policy.submit(store, SMALL, "ada", DEMO)
    store.request_stop(run_id)
    with pytest.raises(PolicyError, match="cannot delete runs on the demo"):
        policy.delete(store, run_id, "ada", DEMO)
    assert policy.delete(store, run_id, "root", DEMO)


def test_demo_grid_and_worker_caps():
    assert policy.check_grid(6, DEMO) == 6
    with pytest.raises(PolicyError, match="choose 1 to 6"):
        policy.check_grid(7, DEMO)
    assert policy.check_grid(16, TEAM) == 16
    assert policy.worker_cap(4, DEMO) == 1 and policy.worker_cap(4, TEAM) == 4


def test_demo_prunes_finished_runs_older_than_n_days(store):
    old, new, busy = (policy.submit(store, SMALL, u, TEAM) for u in ("ada", "bob", "cyd"))
    for run_id in (old, new):
        store.request_stop(run_id)
    folder = store.artifacts_dir(store.get(old))
    folder.mkdir(parents=True)
    now = store.get(new).finished_at
    # 8 days later the two stopped runs are old enough; the queued one is never pruned
    assert sorted(policy.prune(store, DEMO, now=now + 8 * 86400)) == [old, new]
    assert store.get(old) is None and not folder.exists() and store.get(busy) is not None
    assert policy.prune(store, TEAM, now=now + 80 * 86400) == []  # never outside demo mode


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("GAN_DEMO_MODE", "1")
    monkeypatch.setenv("GAN_ADMINS", "root, eve")
    monkeypatch.setenv("GAN_DEMO_MAX_EPOCHS", "2")
    monkeypatch.setenv("GAN_DEMO_MAX_QUEUED_PER_SUBNET", "9")
    s = Settings.from_env()
    assert s.demo_mode and s.admins == {"root", "eve"} and s.max_epochs == 2 and s.max_grid == 8
    assert (s.max_queued_per_address, s.max_queued_per_subnet, s.submissions_per_minute_per_address,
            s.submissions_per_minute_per_subnet) == (4, 9, 6, 8)


@pytest.mark.parametrize("var, value, message", [
    ("GAN_DEMO_MAX_EPOCHS", "three", "GAN_DEMO_MAX_EPOCHS='three' is not a whole number"),
    ("GAN_DEMO_MAX_GRID", "2.5", "GAN_DEMO_MAX_GRID='2.5' is not a whole number"),
    ("GAN_DEMO_PRUNE_DAYS", "-1", "GAN_DEMO_PRUNE_DAYS='-1' must be a positive number"),
    ("GAN_DEMO_MAX_GRID", "0", "GAN_DEMO_MAX_GRID='0' must be a positive number"),
    ("GAN_MAX_UPLOAD_MB", "nan", "GAN_MAX_UPLOAD_MB='nan' must be a positive number"),
    ("GAN_MAX_UPLOAD_MB", "lots", "GAN_MAX_UPLOAD_MB='lots' is not a number"),
])
def test_a_malformed_setting_names_its_variable(monkeypatch, var, value, message):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError) as e:
        Settings.from_env()
    assert message in str(e.value)


HOSTILE = ["<script>alert(1)</script>", "[x](javascript:alert(1))", "![t](http://evil.example/p.png)",
           ":red[big] **bold** $x^2$", "../../etc/passwd", "name\u0000with\u0007control\nchars"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_stored_as_plain_text_and_never_become_paths(store, name):
    run_id = policy.submit(store, SMALL, "ada", TEAM, name=name, description=name)
    run = store.get(run_id)
    assert "\u0000" not in run.name and "\u0007" not in run.name
    assert store.artifacts_dir(run) == store.home / f"run-{run_id:06d}"  # the id decides the folder, not the name


def test_tags_and_text_limits():
    assert clean_tags(" Baseline, dcgan ,baseline,,") == ("baseline", "dcgan")
    for bad in ("a b", "<b>", "x" * 41, ",".join(f"t{i}" for i in range(11))):
        with pytest.raises(ConfigError, match="tags"):
            clean_tags(bad)


def test_no_name_no_run(store):
    with pytest.raises(PolicyError, match="sign in"):
        policy.submit(store, SMALL, "", TEAM)


def test_demo_resume_joins_the_queue_under_the_same_caps(store):
    done = policy.submit(store, SMALL, "ada", TEAM)
    store.claim("w", cap=1)
    store.finish(done, "stopped")
    policy.submit(store, SMALL, "ada", DEMO)
    policy.submit(store, SMALL, "ada", DEMO)  # ada now has 2 queued: the demo's per-person cap
    with pytest.raises(PolicyError, match="you already have 2 run"):
        policy.resume(store, done, "ada", DEMO)
    assert store.get(done).status == "stopped"


# --- who is who on a public demo (issue 14) ---------------------------------------------------------------------
def visitor(label: str) -> policy.Identity:
    """A demo visitor as the dashboard builds one: a fresh server-issued token, `label` typed in the sidebar."""
    token, _ = policy.visitor_token(b"k" * 32)
    return policy.visitor_identity(token, label)


def test_on_the_demo_a_typed_name_is_a_label_never_an_identity(store):
    mallory = visitor("mallory")
    for label in ("mallory", "mallory2"):  # retyping the name changes the label, not who it is
        policy.submit(store, SMALL, dataclasses.replace(mallory, label=label), DEMO)
    with pytest.raises(PolicyError, match="you already have 2 run"):
        policy.submit(store, SMALL, dataclasses.replace(mallory, label="mallory3"), DEMO)
    ada = visitor("ada")
    run_id = policy.submit(store, SMALL, ada, DEMO)
    assert store.get(run_id).owner == "ada" and store.get(run_id).owner_key == ada.key
    impostor = visitor("ada")  # types the owner name shown in the runs table
    assert not policy.can_manage(store.get(run_id), impostor, DEMO)
    for action in (lambda: policy.stop(store, run_id, impostor, DEMO),
                   lambda: policy.edit(store, run_id, impostor, DEMO, name="mine now"),
                   lambda: policy.resume(store, run_id, impostor, DEMO)):
        with pytest.raises(PolicyError, match="only its owner or an admin"):
            action()
    assert store.get(run_id).status == "queued" and store.get(run_id).name != "mine now"
    assert policy.stop(store, run_id, ada, DEMO)  # the browser that started it may


def test_new_visitor_tokens_do_not_get_past_the_global_caps(store):
    demo = dataclasses.replace(DEMO, max_queued_total=50, submissions_per_minute_total=4)
    for _ in range(4):
        policy.submit(store, SMALL, visitor("x"), demo, now=1000.0)
    with pytest.raises(PolicyError, match="at most 4 new runs a minute from everyone"):
        policy.submit(store, SMALL, visitor("fresh"), demo, now=1010.0)
    tight = dataclasses.replace(DEMO, max_queued_total=4)  # the queue cap counts every visitor's runs too
    with pytest.raises(PolicyError, match="4 runs are queued or training"):
        policy.submit(store, SMALL, visitor("fresh"), tight)


def test_visitor_tokens_are_signed_by_the_server(tmp_path):
    key = policy.secret_key(tmp_path)
    assert key == policy.secret_key(tmp_path) and (tmp_path / ".secret_key").stat().st_mode & 0o077 == 0
    token, signed = policy.visitor_token(key)
    assert policy.read_visitor_token(key, signed) == token
    _, other = policy.visitor_token(key)
    forged = other.split(".")[0] + "." + signed.split(".", 1)[1]  # someone else's id under this signature
    for bad in (forged, token, signed[:-2] + "xx", "", None, "a" * 500):
        assert policy.read_visitor_token(key, bad) is None
    assert policy.read_visitor_token(b"another server" * 3, signed) is None


def test_oidc_identity_trusts_only_verified_emails():
    s = Settings(admins=frozenset({"Root@Example.com"}))
    root = policy.oidc_identity({"sub": "7", "iss": "https://idp", "email": "root@example.com",
                                 "email_verified": True}, s)
    assert root.admin and root.key == "oidc:https://idp|7" and root.label == "root@example.com"
    for claims in ({"sub": "8", "email": "root@example.com"},
                   {"sub": "8", "email": "root@example.com", "email_verified": False},
                   {"sub": "8", "name": "root@example.com", "email_verified": True}):
        who = policy.oidc_identity(claims, s)
        assert not who.admin and not who.aliases and "root@example.com" not in who.label and who.key == "oidc:|8"
    assert policy.oidc_identity({"name": "no subject, no verified email"}, s).key == ""  # may watch, not act


def test_owners_are_cleaned_like_names(store):
    with pytest.raises(ConfigError, match="owner: 10000 characters is too long"):
        store.submit(SMALL, owner="x" * 10_000)
    run_id = store.submit(SMALL, owner="ev\u202eil\x1b[31m\nname")
    assert store.get(run_id).owner == "evil[31m name"


# --- sweeps (issue 19) ---------------------------------------------------------------------------------------------
def lr_sweep(n: int, **kw):
    """A grid of `n` learning rates (sweep.SweepSpec)."""
    from gan_core.runs.sweep import SweepSpec, parse_param
    return SweepSpec(params=(parse_param("lr_g=" + ",".join(f"{i + 1}e-4" for i in range(n))),), **kw)


def test_demo_refuses_a_sweep_whose_runs_would_pass_the_queue_cap_and_queues_nothing(store):
    caps = dataclasses.replace(DEMO, max_queued_per_user=3, max_queued_total=10, submissions_per_minute=100)
    with pytest.raises(PolicyError, match="demo limit: this sweep's 4 runs would exceed the 3 runs a person may have "
                                          "queued or training"):
        policy.submit_sweep(store, SMALL, lr_sweep(2, seeds=2), "ada", caps)
    assert store.list_sweeps() == [] and store.list_runs() == []
    policy.submit(store, SMALL, "ada", caps)  # one queued run and a 2-run sweep: 3, at the cap
    sweep_id = policy.submit_sweep(store, SMALL, lr_sweep(2), "ada", caps, name="two")
    assert len(store.sweep_runs(sweep_id)) == 2 and len(store.list_runs()) == 3
    with pytest.raises(PolicyError, match="you already have 3 run"):  # a single run counts the sweep's runs too
        policy.submit(store, SMALL, "ada", caps)
    total = dataclasses.replace(caps, max_queued_per_user=50, max_queued_total=5)
    with pytest.raises(PolicyError, match="this sweep's 3 runs would exceed the 5 runs this demo queues at once"):
        policy.submit_sweep(store, SMALL, lr_sweep(3), "bob", total)
    assert len(store.list_sweeps()) == 1 and len(store.list_runs()) == 3
    # outside demo mode there are no queue caps: a team may queue a large sweep
    assert len(store.sweep_runs(policy.submit_sweep(store, SMALL, lr_sweep(4, seeds=2), "ada", TEAM))) == 8


def test_demo_rate_cap_counts_every_run_of_a_sweep(store):
    fast = dataclasses.replace(DEMO, max_queued_per_user=50, max_queued_total=50, submissions_per_minute=3)
    with pytest.raises(PolicyError, match="this sweep's 4 runs would exceed the 3 runs a person may start a minute"):
        policy.submit_sweep(store, SMALL, lr_sweep(4), "ada", fast)
    policy.submit_sweep(store, SMALL, lr_sweep(3), "ada", fast)
    assert len(store.list_runs()) == 3


def test_a_point_over_the_demos_per_run_caps_refuses_the_sweep(store):
    from gan_core.runs.sweep import SweepSpec, parse_param
    sweep = SweepSpec(params=(parse_param("epochs=1,2,4"),))  # DEMO allows 3 epochs a run
    with pytest.raises(PolicyError, match="sweep point 3: .*epochs 4 is more than the 3"):
        policy.submit_sweep(store, SMALL, sweep, "ada", DEMO)
    assert store.list_sweeps() == [] and store.list_runs() == []
    with pytest.raises(ConfigError, match="sweep refused, nothing was queued: point 2 .*epochs: 0 is out of range"):
        policy.submit_sweep(store, SMALL, SweepSpec(params=(parse_param("epochs=1,0"),)), "ada", TEAM)
    with pytest.raises(PolicyError, match="cannot start a sweep without a name"):
        policy.submit_sweep(store, SMALL, lr_sweep(2), "", TEAM)
    assert store.list_sweeps() == [] and store.list_runs() == []


def test_only_the_sweeps_owner_or_an_admin_may_stop_it(store):
    sweep_id = policy.submit_sweep(store, SMALL, lr_sweep(3), "ada", TEAM, name="ada's")
    assert store.get_sweep(sweep_id).owner == "ada"
    with pytest.raises(PolicyError, match=f"cannot stop sweep #{sweep_id}: it belongs to ada; only its owner"):
        policy.stop_sweep(store, sweep_id, "bob", TEAM)
    with pytest.raises(PolicyError, match="cannot stop sweep"):
        policy.stop_sweep(store, sweep_id, "", TEAM)  # no name: may watch, not act
    assert [r.status for r in store.sweep_runs(sweep_id)] == ["queued"] * 3  # nothing changed
    assert policy.stop_sweep(store, sweep_id, "ada", TEAM) == 3
    assert [r.status for r in store.sweep_runs(sweep_id)] == ["stopped"] * 3
    other = policy.submit_sweep(store, SMALL, lr_sweep(2), "ada", TEAM)
    assert policy.stop_sweep(store, other, "root", TEAM) == 2  # an admin may
    with pytest.raises(PolicyError, match="no such sweep"):
        policy.stop_sweep(store, other + 1, "ada", TEAM)


def test_on_the_demo_a_typed_name_cannot_stop_someone_elses_sweep(store):
    ada = visitor("ada")
    sweep_id = policy.submit_sweep(store, SMALL, lr_sweep(2), ada, DEMO)
    with pytest.raises(PolicyError, match="only its owner or an admin"):
        policy.stop_sweep(store, sweep_id, visitor("ada"), DEMO)
    assert policy.stop_sweep(store, sweep_id, ada, DEMO) == 2


# --- issue 26: Resume sweep goes through the same checks as a resume ---------------------------------------------
def test_only_the_sweeps_owner_or_an_admin_may_resume_it_and_only_its_stopped_or_interrupted_runs(store):
    sweep_id = policy.submit_sweep(store, SMALL, lr_sweep(4), "ada", TEAM)
    a, b, c, d = (r.id for r in store.sweep_runs(sweep_id))
    for run_id, status in ((a, "interrupted"), (b, "pruned")):
        store.claim("w", cap=10)
        store.finish(run_id, status, "why")
    policy.stop_sweep(store, sweep_id, "ada", TEAM)  # c, d: queued → stopped
    for who in ("bob", ""):
        with pytest.raises(PolicyError, match=f"cannot resume sweep #{sweep_id}: it belongs to ada"):
            policy.resume_sweep(store, sweep_id, who, TEAM)
    assert [r.status for r in store.sweep_runs(sweep_id)] == ["interrupted", "pruned", "stopped", "stopped"]
    assert policy.resume_sweep(store, sweep_id, "ada", TEAM) == [a, c, d]
    assert [r.status for r in store.sweep_runs(sweep_id)] == ["queued", "pruned", "queued", "queued"]
    assert policy.resume_sweep(store, sweep_id, "ada", TEAM) == []  # nothing left to resume
    policy.stop_sweep(store, sweep_id, "ada", TEAM)
    assert policy.resume_sweep(store, sweep_id, "root", TEAM) == [a, c, d]  # an admin may
    with pytest.raises(PolicyError, match="cannot resume: no such sweep"):
        policy.resume_sweep(store, sweep_id + 1, "ada", TEAM)


def test_resuming_a_sweep_on_the_demo_keeps_to_the_queue_caps_all_or_nothing(store):
    ada = visitor("ada")
    sweep_id = policy.submit_sweep(store, SMALL, lr_sweep(2), ada, DEMO)
    for _ in range(2):  # both train a while (the demo removes a run stopped before it started), then stop
        store.claim("w", cap=2)
    assert policy.stop_sweep(store, sweep_id, ada, DEMO) == 2
    for r in store.sweep_runs(sweep_id):
        store.finish(r.id, "stopped")
    with pytest.raises(PolicyError, match="only its owner or an admin"):
        policy.resume_sweep(store, sweep_id, visitor("ada"), DEMO)  # the same typed name, another browser
    policy.submit(store, SMALL, ada, DEMO)  # one live run: resuming both would make 3, over ada's cap of 2
    with pytest.raises(PolicyError, match="this sweep's 2 runs would exceed the 2 runs a person may have queued"):
        policy.resume_sweep(store, sweep_id, ada, DEMO)
    assert [r.status for r in store.sweep_runs(sweep_id)] == ["stopped", "stopped"]  # neither was queued
    tight = dataclasses.replace(DEMO, max_epochs=1)  # the per-run caps as for one resume
    with pytest.raises(PolicyError, match=r"run #\d+: demo limit: epochs 2 is more than the 1"):
        policy.resume_sweep(store, sweep_id, ada, tight)
    roomy = dataclasses.replace(DEMO, max_queued_per_user=3)
    assert len(policy.resume_sweep(store, sweep_id, ada, roomy)) == 2


@pytest.mark.parametrize("peer, forwarded, hops, expected", [
    ("198.51.100.7", [], 0, "198.51.100.7"),                              # no proxy: the connection's peer
    ("198.51.100.7", ["203.0.113.9"], 0, "198.51.100.7"),                 # an untrusted header is ignored
    (None, ["1.2.3.4, 203.0.113.9"], 1, "203.0.113.9"),                   # the client typed 1.2.3.4 itself
    (None, ["1.2.3.4", "203.0.113.9, 10.0.0.2"], 2, "203.0.113.9"),        # two proxies, repeated header lines
    (None, [], 1, ""),                                                   # a trusted proxy that was bypassed
    (None, ["not-an-ip"], 1, ""),
    ("2001:DB8::1", [], 0, "2001:db8::1"),                               # one spelling per address
    (None, [], 0, ""),                                                   # localhost: Streamlit gives no peer
])
def test_client_address_trusts_only_the_proxies_the_operator_named(peer, forwarded, hops, expected):
    assert policy.client_address(peer, forwarded, hops) == expected


def test_subnet_groups_a_household_and_an_ipv6_allocation():
    assert policy.subnet("203.0.113.9") == policy.subnet("203.0.113.200") == "203.0.113.0/24"
    assert policy.subnet("203.0.114.9") != policy.subnet("203.0.113.9")
    assert policy.subnet("2001:db8:0:1:aaaa::1") == policy.subnet("2001:db8:0:1:ffff::2") == "2001:db8:0:1::/64"
    assert policy.subnet("::ffff:203.0.113.9") == "203.0.113.0/24"  # an IPv4 client on a dual-stack socket
    assert policy.subnet("") == ""


@pytest.mark.parametrize("value, message", [("-1", "from 0 to 10"), ("11", "from 0 to 10"), ("1.5", "whole"),
                                            ("²", "whole")])
def test_trusted_proxy_hops_is_a_small_whole_number(monkeypatch, value, message):
    monkeypatch.setenv("GAN_TRUSTED_PROXY_HOPS", value)
    with pytest.raises(ConfigError, match=f"GAN_TRUSTED_PROXY_HOPS.*{message}"):
        Settings.from_env()
    monkeypatch.setenv("GAN_TRUSTED_PROXY_HOPS", "2")
    assert Settings.from_env().trusted_proxy_hops == 2


# --- issue 27: caps per address and subnet, a run stopped before it trained -------------------------------------
def from_address(label: str, address: str) -> policy.Identity:
    """A fresh visitor (a new cookie) whose requests come from `address`."""
    return dataclasses.replace(visitor(label), address=address)


def test_fresh_visitor_tokens_from_one_network_cannot_fill_the_global_queue(store):
    # The attack: ten browser contexts, a cookie each, one address, two runs each. The per-minute caps are lifted
    # so the queue caps alone are tested; the rest are the defaults (2 a person, 4 an address, 6 a subnet, 20 in all).
    demo = Settings(demo_mode=True, submissions_per_minute=100, submissions_per_minute_total=100)
    early = from_address("early", "203.0.113.50")  # trained a run before the flood, and stopped it
    stopped = policy.submit(store, SMALL, early, demo)
    store.claim("w", cap=1)
    store.finish(stopped, "stopped")
    refused = []
    for i in range(10):
        me = from_address(f"bot{i}", "203.0.113.9")
        for _ in range(2):
            try:
                policy.submit(store, SMALL, me, demo)
            except PolicyError as e:
                refused.append(str(e))
    assert len(store.list_runs(statuses=["queued"])) == 4  # demo.max_queued_per_address
    assert len(refused) == 16 and all("4 runs are queued or training from your network address" in e for e in refused)
    for i in range(5):  # its neighbours in the same /24 add up to the subnet's cap
        try:
            policy.submit(store, SMALL, from_address(f"near{i}", f"203.0.113.{20 + i}"), demo)
        except PolicyError as e:
            assert "6 runs are queued or training from your network (203.0.113.0/24)" in str(e)
    assert len(store.list_runs(statuses=["queued"])) == 6
    # A sweep and a resume from that network go through the same caps.
    with pytest.raises(PolicyError, match="would exceed the 6 runs one network"):
        policy.submit_sweep(store, SMALL, lr_sweep(2), from_address("sweeper", "203.0.113.77"), demo)
    with pytest.raises(PolicyError, match="6 runs are queued or training from your network"):
        policy.resume(store, stopped, early, demo)
    # A newcomer from elsewhere still gets in.
    newcomer = from_address("newcomer", "198.51.100.7")
    assert store.get(policy.submit(store, SMALL, newcomer, demo)).address == "198.51.100.7"


def test_per_minute_caps_per_address_count_runs_stopped_and_removed(store):
    demo = Settings(demo_mode=True, submissions_per_minute_total=100, submissions_per_minute_per_address=3)
    for i in range(3):  # submit and stop at once: each run is removed, yet the submission counts
        me = from_address(f"bot{i}", "203.0.113.9")
        assert policy.stop(store, policy.submit(store, SMALL, me, demo), me, demo)
    assert store.list_runs() == []
    with pytest.raises(PolicyError, match="at most 3 runs a minute from one network address"):
        policy.submit(store, SMALL, from_address("bot9", "203.0.113.9"), demo)
    policy.submit(store, SMALL, from_address("newcomer", "198.51.100.7"), demo)
    with pytest.raises(PolicyError, match=r"at most 3 runs a minute from one network address"):
        policy.submit_sweep(store, SMALL, lr_sweep(1), from_address("bot10", "203.0.113.9"), demo)


def test_no_address_known_means_no_address_caps(store):
    demo = Settings(demo_mode=True, max_queued_per_address=1, max_queued_per_subnet=1)
    for i in range(3):  # a local browser or the CLI: only the per-person and total caps apply
        policy.submit(store, SMALL, visitor(f"local{i}"), demo)
    assert store.count_runs() == 3


def test_on_the_demo_a_run_stopped_before_it_trained_is_removed_with_its_folder(store):
    ada = from_address("ada", "203.0.113.9")
    run_id = policy.submit(store, SMALL, ada, DEMO)
    folder = store.artifacts_dir(store.get(run_id))
    folder.mkdir(parents=True)
    assert policy.stop(store, run_id, ada, DEMO)
    assert store.get(run_id) is None and not folder.exists()
    trained = policy.submit(store, SMALL, ada, DEMO)  # one that started keeps its row: it has a checkpoint to resume
    store.claim("w", cap=1)
    assert policy.stop(store, trained, ada, DEMO) and store.get(trained).status == "stopping"
    # A sweep stopped while queued: its runs go, and the sweep with them (its page would list nothing).
    bob = from_address("bob", "198.51.100.7")
    sweep_id = policy.submit_sweep(store, SMALL, lr_sweep(2), bob, DEMO)
    assert policy.stop_sweep(store, sweep_id, bob, DEMO) == 2
    assert store.sweep_runs(sweep_id) == [] and store.get_sweep(sweep_id) is None


def test_a_team_keeps_a_run_stopped_while_queued_to_resume_it_alone_or_with_its_sweep(store):
    run_id = policy.submit(store, SMALL, "ada", TEAM)
    assert policy.stop(store, run_id, "ada", TEAM) and store.get(run_id).status == "stopped"
    sweep_id = policy.submit_sweep(store, SMALL, lr_sweep(2), "ada", TEAM)
    assert policy.stop_sweep(store, sweep_id, "ada", TEAM) == 2
    assert [r.status for r in store.sweep_runs(sweep_id)] == ["stopped", "stopped"]
    assert len(policy.resume_sweep(store, sweep_id, "ada", TEAM)) == 2


def test_a_cap_of_one_reads_as_one_run(store):
    """Issue 27 walk-through: a cap of 1 read "demo limit: 1 runs are queued or training ..."."""
    one = dataclasses.replace(DEMO, max_queued_per_user=1, max_queued_total=1, submissions_per_minute=1)
    policy.submit(store, SMALL, "ada", one)
    with pytest.raises(PolicyError, match="you already have 1 run queued or training"):
        policy.submit(store, SMALL, "ada", one)
    with pytest.raises(PolicyError, match="demo limit: 1 run is queued or training on this demo"):
        policy.submit(store, SMALL, "bob", one)
