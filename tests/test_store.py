import json
import threading
import time

import pytest
from sqlalchemy.exc import IntegrityError

from gan_core.config import ConfigError, TrainConfig
from gan_core.runs.capability import Capabilities
from gan_core.runs.store import Store, StoreError


def test_submit_queues_a_validated_run(store):
    run_id = store.submit({"epochs": 3, "batch_size": 100}, name="first", owner="ada")
    r = store.get(run_id)
    assert (r.name, r.owner, r.status, r.total_steps, r.config.epochs) == ("first", "ada", "queued", 1800, 3)
    assert r.artifacts == f"run-{run_id:06d}" and store.artifacts_dir(r).parent == store.home


@pytest.mark.parametrize("cfg,preset,message", [
    ({"epochs": 0}, None, "epochs: 0 is out of range"),
    ({"arch": "vit"}, None, "arch: 'vit' is not one of dense, dcgan"),
    ({}, "seed999", "unknown preset 'seed999'"),
    ({"lr": 1}, "seed000-dense", "unknown config field(s) lr"),
])
def test_bad_submission_is_rejected_and_writes_no_row(store, cfg, preset, message):
    with pytest.raises(ConfigError) as e:
        store.submit(cfg, preset=preset)
    assert message in str(e.value)
    assert store.list_runs() == []


def test_claim_is_atomic_and_honours_the_cap(store):
    ids = [store.submit(TrainConfig(epochs=1)) for _ in range(6)]
    got: list = []
    barrier = threading.Barrier(6)

    def claimer(i):
        barrier.wait()
        r = store.claim(f"w{i}", cap=3)
        if r:
            got.append(r.id)
    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 3 and len(set(got)) == 3 and sorted(got) == ids[:3]  # oldest first, each once
    assert len(store.list_runs(["running"])) == 3
    assert store.claim("late", cap=3) is None


def test_stop_requests(store):
    queued, running = store.submit(TrainConfig()), store.submit(TrainConfig())
    store.claim("w", cap=5)  # takes `queued` (the older)
    assert store.request_stop(queued)
    assert store.get(queued).status == "stopping" and store.beat_and_check_stop(queued, "w") is True
    assert store.request_stop(running) and store.get(running).status == "stopped"  # never started
    assert not store.request_stop(running)


def test_stale_heartbeat_marks_interrupted_and_resume_requeues(store):
    a = store.submit(TrainConfig())
    store.claim("w", cap=1)
    assert store.mark_interrupted(stale_after=60) == []
    time.sleep(0.05)
    assert store.mark_interrupted(stale_after=0.01) == [a]
    r = store.get(a)
    assert r.status == "interrupted" and "heartbeat" in r.error
    assert store.request_resume(a) and store.get(a).status == "queued" and store.get(a).resume
    assert not store.request_resume(a)  # already queued


def test_metrics_are_append_only_per_step_and_rewind_forgets_the_tail(store):
    a = store.submit(TrainConfig())
    rows = [dict(step=s, epoch=1, d_loss=1.0, g_loss=0.5, d_real=0.6, d_fake=0.4, images_per_sec=100.0)
            for s in (10, 20, 30)]
    store.add_step_metrics(a, rows)
    assert [m["step"] for m in store.step_metrics(a)] == [10, 20, 30] and store.get(a).step == 30
    assert [m["step"] for m in store.step_metrics(a, after_step=10)] == [20, 30]
    with pytest.raises(IntegrityError):
        store.add_step_metrics(a, rows[:1])
    store.add_sample(a, 1, 10, "run/samples/epoch-0001.png")
    store.add_sample(a, 2, 30, "run/samples/epoch-0002.png")
    store.rewind(a, step=20, epoch=1)
    assert [m["step"] for m in store.step_metrics(a)] == [10, 20]
    assert [s["epoch"] for s in store.samples(a)] == [1]


def test_schema_is_versioned(store):
    from sqlalchemy import update

    from gan_core.runs.store import Meta
    with store.engine.begin() as c:
        c.execute(update(Meta).where(Meta.key == "schema_version").values(value="99"))
    with pytest.raises(StoreError, match="schema 99, newer than this GAN Studio"):
        Store()


def _undo_schema_6(c, table: bool = False) -> None:
    """Turn a database back into one from before sweeps: no runs.sweep_id/sweep_point (and no sweeps table)."""
    from sqlalchemy import text
    if table:
        c.execute(text("DROP TABLE sweeps"))
    c.execute(text("DROP INDEX ix_runs_sweep_id"))
    for col in ("sweep_id", "sweep_point"):
        c.execute(text(f"ALTER TABLE runs DROP COLUMN {col}"))


def _undo_schema_7(c) -> None:
    """Turn a database back into one from before workers registered what they have: no workers.capabilities."""
    from sqlalchemy import text
    c.execute(text("ALTER TABLE workers DROP COLUMN capabilities"))


def test_a_schema_3_database_gains_ran_on_and_the_health_columns_in_place_and_keeps_its_rows(store):
    # A database written before runs.ran_on (schema 4), the metrics' gradient norms and σ (schema 5) and the runs'
    # sweep columns (schema 6) existed: the next Store adds the columns and keeps every row; old metric rows read
    # back with None for the new numbers, old runs belong to no sweep.
    from sqlalchemy import text, update

    from gan_core.runs.schema import SCHEMA_VERSION
    from gan_core.runs.store import Meta
    run_id = store.submit(TrainConfig(epochs=2), name="old", owner="ada")
    old = {"step": 10, "epoch": 1, "d_loss": 1.0, "g_loss": 2.0, "d_real": 0.6, "d_fake": 0.4, "images_per_sec": 5.0}
    store.add_step_metrics(run_id, [old])
    with store.engine.begin() as c:
        c.execute(text("ALTER TABLE runs DROP COLUMN ran_on"))
        for col in ("d_grad_norm", "g_grad_norm", "d_sigma"):
            c.execute(text(f"ALTER TABLE metrics DROP COLUMN {col}"))
        _undo_schema_6(c)
        _undo_schema_7(c)
        _undo_schema_8(c)
        c.execute(update(Meta).where(Meta.key == "schema_version").values(value="3"))
    store.dispose()
    s = Store()
    assert s.get(run_id).name == "old" and s.get(run_id).ran_on == "" and s.get(run_id).sweep_id is None
    s.set_progress(run_id, ran_on="cpu, fp32")
    assert s.get(run_id).ran_on == "cpu, fp32"
    s.add_step_metrics(run_id, [{**old, "step": 20, "d_grad_norm": 3.5, "g_grad_norm": 0.25, "d_sigma": None}])
    rows = s.step_metrics(run_id)
    assert [(r["step"], r["d_grad_norm"], r["g_grad_norm"], r["d_sigma"]) for r in rows] == [
        (10, None, None, None), (20, 3.5, 0.25, None)]
    with s.engine.connect() as c:
        assert c.execute(text("SELECT value FROM gan_meta WHERE key = 'schema_version'")).scalar() == str(
            SCHEMA_VERSION)
    s.dispose()


def test_unreachable_database_is_a_clear_error_without_the_password(tmp_path):
    with pytest.raises(StoreError) as e:
        Store("postgresql+psycopg://bob:hunter2@127.0.0.1:1/none", home=tmp_path)
    assert "cannot reach the run database" in str(e.value) and "GAN_DB_URL" in str(e.value)
    assert "hunter2" not in str(e.value)


def test_sample_paths_that_lead_out_of_gan_home_are_never_returned(store, tmp_path):
    import os
    run_id = store.submit(TrainConfig(epochs=6), name="paths")
    folder = store.artifacts_dir(store.get(run_id)) / "samples"
    folder.mkdir(parents=True)
    (folder / "epoch-001.png").write_bytes(b"grid")
    secret = tmp_path / "secret.png"  # a file of the server outside GAN_HOME
    secret.write_bytes(b"secret")
    (folder / "epoch-004.png").symlink_to(secret)
    rows = {1: f"run-{run_id:06d}/samples/epoch-001.png",
            2: os.path.relpath(secret, store.home),          # ../secret.png
            3: str(secret),                                   # absolute: joining to home keeps it absolute
            4: f"run-{run_id:06d}/samples/epoch-004.png",    # inside home, but a link that points outside
            5: f"run-{run_id:06d}/../../secret.png",          # in, then out again
            6: "."}                                           # GAN_HOME itself
    for epoch, rel in rows.items():
        store.add_sample(run_id, epoch, epoch * 10, rel)
    assert [(s["epoch"], s["path"]) for s in store.samples(run_id)] == [(1, folder / "epoch-001.png")]
    assert store.latest_sample(run_id)["epoch"] == 1  # the newer rows lead outside: skipped, not returned


def test_resuming_a_run_that_max_steps_ended_raises_max_steps_or_says_why_not(store):
    from gan_core.config import capped_by_max_steps
    a = store.submit(TrainConfig(epochs=30, batch_size=100, max_steps=150))  # 600 steps an epoch: 150 cap it
    run = store.get(a)
    assert capped_by_max_steps(run.config) and run.total_steps == 150
    store.claim("w", cap=1)
    store.set_progress(a, epoch=0, step=150)
    store.finish(a, "done")
    with pytest.raises(ConfigError, match="more epochs add no steps"):  # never "queued, then done at once"
        store.request_resume(a, extra_epochs=5)
    assert store.get(a).status == "done"
    assert store.request_resume(a, extra_steps=100)
    run = store.get(a)
    assert (run.status, run.config.max_steps, run.total_steps, run.config.epochs) == ("queued", 250, 250, 30)
    b = store.submit(TrainConfig(epochs=1, batch_size=100, max_steps=500))  # 1 epoch = 600 steps
    store.request_stop(b)  # queued → stopped
    assert store.request_resume(b, extra_steps=400)  # 900 steps need 2 epochs: epochs rise too
    assert (store.get(b).config.epochs, store.get(b).total_steps) == (2, 900)
    c = store.submit(TrainConfig(epochs=1, batch_size=100))
    store.request_stop(c)
    with pytest.raises(ConfigError, match="no max_steps"):
        store.request_resume(c, extra_steps=10)


def test_queue_position_counts_the_older_queued_runs(store):
    ids = [store.submit(TrainConfig(epochs=1)) for _ in range(4)]
    assert [store.queue_position(i) for i in ids] == [1, 2, 3, 4]
    store.claim("w", cap=1)  # the oldest starts
    store.request_stop(ids[2])
    assert [store.queue_position(i) for i in ids] == [None, 1, None, 2]


def test_step_rates_are_recent_and_earlier(store, monkeypatch):
    import gan_core.runs.store as store_mod
    a = store.submit(TrainConfig(epochs=1))
    assert store.step_rates(a) == (None, None)
    now = [1000.0]
    monkeypatch.setattr(store_mod.time, "time", lambda: now[0])
    step = 0
    for t, steps in [(1000 + 2 * i, 100) for i in range(30)] + [(1060 + 2 * i, 4) for i in range(1, 21)]:
        now[0] = float(t)
        store.add_step_metrics(a, [dict(step=step + k, epoch=1, d_loss=1.0, g_loss=1.0, d_real=0.5, d_fake=0.5,
                                   images_per_sec=1.0) for k in range(1, steps + 1)])
        step += steps
    recent, earlier = store.step_rates(a, recent_s=30.0)
    assert recent == pytest.approx(2.0, rel=0.05) and earlier == pytest.approx(44.3, rel=0.05)  # through t=1068
    assert "created_at" in store.step_metrics(a)[0]  # for the wall-clock axis


def test_status_moves_follow_the_lifecycle(store):
    from gan_core.runs.status import RunStatus
    from gan_core.runs.store import _may_become
    a = store.submit(TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="not a final status"):  # a real check, not an assert: runs under -O too
        store.finish(a, "running")
    assert store.get(a).status == "queued" and not store.request_resume(a)  # queued is not resumable
    store.claim("w", cap=1)
    assert not store.request_resume(a)  # nor is running
    store.finish(a, RunStatus.DONE)
    assert not store.request_stop(a) and store.get(a).status == "done"  # a finished run has nothing to stop
    with pytest.raises(ValueError, match="cannot go from done to running"):  # a move status.TRANSITIONS forbids
        _may_become(RunStatus.RUNNING, RunStatus.DONE)


def test_finish_moves_a_run_only_along_the_lifecycle(store):
    """finish goes through the same check as every other status change: a queued run never becomes done, a finished
    run is not finished again as something else, a late report never overwrites a run queued again; an interrupted
    run's worker may still report how the run ended, and a stop the Ray executor's shutdown asked for is an
    interruption."""
    a = store.submit(TrainConfig(epochs=1))
    assert not store.finish(a, "done") and store.get(a).status == "queued"  # nothing trained it
    store.claim("w", cap=1)
    assert store.finish(a, "done") and store.get(a).status == "done"
    assert not store.finish(a, "failed", "late") and (store.get(a).status, store.get(a).error) == ("done", None)
    b = store.submit(TrainConfig(epochs=1))
    store.claim("w", cap=1)
    time.sleep(0.05)
    assert store.mark_interrupted(stale_after=0.01) == [b]
    assert store.finish(b, "stopped") and store.get(b).status == "stopped"  # its worker reported after all
    assert store.finish(b, "interrupted", "the dispatcher was shut down") and store.get(b).status == "interrupted"
    assert store.request_resume(b)
    assert not store.finish(b, "done") and store.get(b).status == "queued"  # the old worker's report comes too late
    assert store.finish(b, "stopped") and store.get(b).status == "stopped"  # a queued run may be stopped


def test_artifacts_dir_is_the_stored_folder_inside_gan_home(store):
    import dataclasses
    run = store.get(store.submit(TrainConfig(epochs=1)))
    assert store.artifacts_dir(run) == store.home / run.artifacts == store.home / f"run-{run.id:06d}"
    assert store.artifacts_dir(dataclasses.replace(run, artifacts="")) == store.home / f"run-{run.id:06d}"  # old row
    for outside in ("../elsewhere", "/etc", "run-000001/../..", "."):  # a row is data: never a folder outside home
        with pytest.raises(StoreError, match="outside"):
            store.artifacts_dir(dataclasses.replace(run, artifacts=outside))


# --- sweeps (issue 19) ---------------------------------------------------------------------------------------------
def _planned_sweep(seeds: int = 1):
    """A 3-point grid over lr_g × (seeds) on a small base: (spec, base, planned runs)."""
    from gan_core.runs.sweep import SweepSpec, parse_param, plan
    base = TrainConfig(epochs=1, train_subset=1280, seed=5, eval_samples=100)
    # g_widths=64,128 is one list value (list fields separate values with "|"): 3 points, a tuple in each
    spec = SweepSpec(params=(parse_param("lr_g=1e-4,2e-4,4e-4"), parse_param("g_widths=64,128")), seeds=seeds,
                     prune="median", grace=2)
    return spec, base, plan(base, spec)


def _submit_sweep(store, seeds: int = 1, **kw) -> int:
    spec, base, runs = _planned_sweep(seeds)
    return store.submit_sweep("lr", spec.to_dict(), base, [(r.point, r.config) for r in runs], spec.points(), **kw)


def test_submit_sweep_queues_the_sweep_and_all_its_runs_and_get_sweep_round_trips(store):
    from gan_core.runs.sweep import SweepSpec
    spec, base, planned = _planned_sweep(seeds=2)
    other = store.submit(TrainConfig(epochs=1), name="not in the sweep")
    sweep_id = store.submit_sweep("lr", spec.to_dict(), base, [(r.point, r.config) for r in planned],
                                  spec.points(), owner="ada", tags="team-a")
    sw = store.get_sweep(sweep_id)
    assert (sw.name, sw.owner, sw.owner_key) == ("lr", "ada", "name:ada")
    assert sw.base == base and SweepSpec.from_dict(sw.spec) == spec and sw.spec == spec.to_dict()
    # points keep their order and values; a list field comes back as a JSON list, which the config reads as the tuple
    assert [{**p, "g_widths": tuple(p["g_widths"])} for p in sw.points] == spec.points()
    assert base.replace(**sw.points[1]) == base.replace(**spec.points()[1])
    runs = store.sweep_runs(sweep_id)
    assert len(runs) == 6 and other not in [r.id for r in runs]
    assert [(r.sweep_id, r.sweep_point, r.config.seed) for r in runs] == [
        (sweep_id, i, s) for i in range(3) for s in (5, 6)]
    assert [r.config for r in runs] == [r.config for r in planned]
    assert all(r.status == "queued" and r.owner == "ada" and r.owner_key == "name:ada" for r in runs)
    assert all(set(r.tags) == {"team-a", "sweep"} for r in runs)
    assert [r.name for r in runs] == ["lr #1 s5", "lr #1 s6", "lr #2 s5", "lr #2 s6", "lr #3 s5", "lr #3 s6"]
    assert all(r.total_steps == 10 and r.artifacts == f"run-{r.id:06d}" for r in runs)
    assert store.get(other).sweep_id is None and store.get(other).sweep_point is None
    assert store.get_sweep(sweep_id + 1) is None
    second = _submit_sweep(store)
    assert [s.id for s in store.list_sweeps()] == [second, sweep_id]  # newest first
    assert len(store.sweep_runs(second)) == 3 and not set(store.sweep_runs(second)) & set(runs)


def test_a_failing_guard_or_insert_leaves_no_sweep_and_no_runs(store, monkeypatch):
    import gan_core.runs.store as store_module
    from gan_core.runs.policy import PolicyError

    def refuse(conn, cfg):
        raise PolicyError("demo limit: no")
    with pytest.raises(PolicyError, match="demo limit: no"):
        _submit_sweep(store, guard=refuse)
    assert store.list_sweeps() == [] and store.list_runs() == []
    # The third run's insert fails after the sweep row and two runs were written: the transaction takes them back
    real, calls = store_module._insert_run, []

    def third_fails(c, cfg, **values):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(c, cfg, **values)
    monkeypatch.setattr(store_module, "_insert_run", third_fails)
    with pytest.raises(RuntimeError, match="disk full"):
        _submit_sweep(store)
    assert len(calls) == 3 and store.list_sweeps() == [] and store.list_runs() == []
    monkeypatch.undo()
    sweep_id = _submit_sweep(store)  # and the store is fine afterwards
    assert len(store.sweep_runs(sweep_id)) == 3 and [s.id for s in store.list_sweeps()] == [sweep_id]


def test_submit_sweep_refuses_no_runs_and_a_config_that_cannot_fit(store):
    spec, base, _ = _planned_sweep()
    with pytest.raises(ConfigError, match="no runs to queue"):
        store.submit_sweep("empty", spec.to_dict(), base, [], spec.points())
    huge = TrainConfig.__new__(TrainConfig)  # past validation, as a row written by hand would be
    object.__setattr__(huge, "__dict__", {**base.__dict__, "g_widths": (1_000_000, 1_000_000)})
    with pytest.raises(ConfigError):
        store.submit_sweep("huge", spec.to_dict(), base, [(0, base), (1, huge)], spec.points())
    assert store.list_sweeps() == [] and store.list_runs() == []


def test_sweep_fds_at_reads_the_other_runs_fds_at_one_epoch(store):
    sweep_id = _submit_sweep(store)
    a, b, c = (r.id for r in store.sweep_runs(sweep_id))
    outsider = store.submit(TrainConfig(epochs=1))
    for run_id, fds in ((a, [30.0, 20.0]), (b, [40.0]), (c, [50.0, 10.0]), (outsider, [1.0, 1.0])):
        for epoch, fd in enumerate(fds, 1):
            store.add_quality(run_id, epoch, epoch * 10, {"fd": fd, "inception_score": 2.0})
    store.add_quality(b, 2, 20, {"inception_score": 2.0})  # no FD at all: not a peer's number
    assert sorted(store.sweep_fds_at(sweep_id, 1, exclude=a)) == [40.0, 50.0]   # not its own, not the outsider's
    assert sorted(store.sweep_fds_at(sweep_id, 2, exclude=a)) == [10.0]
    assert sorted(store.sweep_fds_at(sweep_id, 2, exclude=c)) == [20.0]
    assert store.sweep_fds_at(sweep_id, 3, exclude=a) == []
    assert store.sweep_fds_at(sweep_id + 1, 1, exclude=a) == []


def test_stop_sweep_stops_queued_runs_at_once_and_asks_running_ones(store):
    sweep_id = _submit_sweep(store)
    lone = store.submit(TrainConfig(epochs=1))  # queued after the sweep: claimed after its runs
    first = store.claim("w", cap=1)
    assert first.sweep_id == sweep_id and first.sweep_point == 0
    ids = [r.id for r in store.sweep_runs(sweep_id)]
    assert store.stop_sweep(sweep_id) == 3
    assert [store.get(i).status for i in ids] == ["stopping", "stopped", "stopped"]
    assert store.get(lone).status == "queued"  # another run is not touched
    store.finish(first.id, "stopped")
    assert store.stop_sweep(sweep_id) == 0  # nothing live is left
    assert [r.status for r in store.sweep_runs(sweep_id)] == ["stopped"] * 3


def test_pruned_is_a_final_resumable_status(store):
    sweep_id = _submit_sweep(store)
    run = store.claim("w", cap=1)
    store.finish(run.id, "pruned", "pruned at epoch 2: FD 9.0 was worse than the median")
    r = store.get(run.id)
    assert r.status == "pruned" and r.error.startswith("pruned at epoch 2") and r.finished_at is not None
    assert store.stop_sweep(sweep_id) == 2  # the pruned run is not live
    assert store.request_resume(run.id) and store.get(run.id).status == "queued"


def test_a_schema_5_database_gains_the_sweeps_table_and_columns(store):
    from sqlalchemy import update

    from gan_core.runs.store import Meta
    run_id = store.submit(TrainConfig(epochs=1), name="old")
    with store.engine.begin() as c:
        _undo_schema_6(c, table=True)
        _undo_schema_7(c)
        _undo_schema_8(c)
        c.execute(update(Meta).where(Meta.key == "schema_version").values(value="5"))
    store.dispose()
    s = Store()
    try:
        assert s.get(run_id).name == "old" and s.get(run_id).sweep_id is None and s.list_sweeps() == []
        sweep_id = _submit_sweep(s)
        assert [r.sweep_point for r in s.sweep_runs(sweep_id)] == [0, 1, 2]
    finally:
        s.dispose()


# --- issue 26: resuming a sweep, runs left per sweep, a damaged row among many ----------------------------------
def _damage(store, run_id: int, config_json: str) -> None:
    """Overwrite a run's stored config as a hand edit or a broken disk would."""
    from sqlalchemy import update

    from gan_core.runs.store import Run
    with store.engine.begin() as c:
        c.execute(update(Run).where(Run.id == run_id).values(config_json=config_json))


def test_resume_sweep_queues_its_stopped_and_interrupted_runs_only_in_one_transaction(store):
    sweep_id = _submit_sweep(store, seeds=2)  # six runs
    lone = store.submit(TrainConfig(epochs=1))
    a, b, c, d, e, f = (r.id for r in store.sweep_runs(sweep_id))
    for run_id, status in ((a, "stopped"), (b, "interrupted"), (c, "pruned"), (d, "done"), (e, "failed")):
        store.claim("w", cap=10)
        store.finish(run_id, status, "why" if status != "done" else None)
    store.request_stop(f)  # queued → stopped at once, never trained
    store.request_stop(lone)
    ids = [r.id for r in store.sweep_runs(sweep_id)]
    assert store.resume_sweep(sweep_id, ids) == [a, b, f]
    after = {r.id: r for r in store.sweep_runs(sweep_id)}
    assert [after[i].status for i in ids] == ["queued", "queued", "pruned", "done", "failed", "queued"]
    assert all(after[i].resume and after[i].error is None and after[i].finished_at is None for i in (a, b, f))
    assert store.get(lone).status == "stopped"  # not of the sweep: untouched, even when its id is passed
    assert store.resume_sweep(sweep_id, [lone]) == [] and store.get(lone).status == "stopped"
    assert store.resume_sweep(sweep_id, ids) == []  # nothing left to resume


def test_resume_sweep_is_all_or_nothing_when_its_guard_refuses(store):
    sweep_id = _submit_sweep(store)
    store.stop_sweep(sweep_id)
    ids = [r.id for r in store.sweep_runs(sweep_id)]
    seen = []

    def refuse(conn, cfg):
        seen.append(cfg)
        raise PermissionError("queue full")
    with pytest.raises(PermissionError, match="queue full"):
        store.resume_sweep(sweep_id, ids, guard=refuse)
    assert len(seen) == 1 and [r.status for r in store.sweep_runs(sweep_id)] == ["stopped"] * 3
    assert store.resume_sweep(sweep_id, ids, guard=lambda conn, cfg: None) == ids


def test_sweep_run_counts_leave_out_deleted_runs_and_empty_sweeps(store):
    first, second = _submit_sweep(store), _submit_sweep(store)
    store.submit(TrainConfig(epochs=1))
    store.stop_sweep(second)
    for r in store.sweep_runs(second):
        assert store.soft_delete(r.id)
    store.stop_sweep(first)
    store.soft_delete(store.sweep_runs(first)[0].id)
    assert store.sweep_run_counts() == {first: 2}


@pytest.mark.parametrize("damage", [
    json.dumps({**TrainConfig(epochs=2).to_dict(), "eval_samples": "abc"}),  # a value no version stored
    "{not json",                                                              # not JSON at all
    "[1, 2]",                                                                 # JSON, but not an object
])
def test_a_run_whose_config_no_longer_reads_is_named_and_the_rest_are_listed(store, damage):
    """Issue 26: one damaged row made list_runs raise, and every page's run list with it."""
    from gan_core.runs.store import UnreadableRun
    sweep_id = _submit_sweep(store)
    good = store.submit(TrainConfig(epochs=1), name="fine")
    bad = store.sweep_runs(sweep_id)[1].id
    _damage(store, bad, damage)
    found: list[UnreadableRun] = []
    assert [r.id for r in store.list_runs(unreadable=found)] == [good, bad + 1, bad - 1]
    (problem,) = found
    assert (problem.id, problem.name, problem.status) == (bad, "lr #2 s5", "queued") and problem.reason
    assert f"run #{bad} (lr #2 s5, owner –, queued): its stored settings cannot be read (" in problem.text()
    found.clear()
    assert [r.id for r in store.sweep_runs(sweep_id, unreadable=found)] == [bad - 1, bad + 1]
    assert [u.id for u in found] == [bad]
    assert len(store.list_runs()) == 3  # without a list to report to: still the readable ones


# --- workers register what they have; a run waits for one that can train it (issue 26) ---------------------------
CPU = Capabilities(host="laptop", cpu="x86", cpu_bf16=False)
GPU = Capabilities(host="gpu-box", gpus=("NVIDIA H100",))


def test_a_schema_6_database_gains_worker_capabilities_and_keeps_its_workers(store):
    from sqlalchemy import update

    from gan_core.runs.store import Meta
    store.worker_beat("old", 7, "host")
    with store.engine.begin() as c:
        _undo_schema_7(c)
        _undo_schema_8(c)
        c.execute(update(Meta).where(Meta.key == "schema_version").values(value="6"))
    store.dispose()
    s = Store()
    try:
        [old] = s.workers()
        assert (old["id"], old["pid"], old["capabilities"]) == ("old", 7, None)  # not known: takes any run
        s.worker_beat("old", 7, "host", GPU)
        assert s.workers()[0]["capabilities"] == GPU
    finally:
        s.dispose()


def test_a_cpu_worker_skips_a_cuda_run_which_waits_for_a_gpu_worker(store):
    gpu_run = store.submit(TrainConfig(epochs=1, device="cuda"), name="needs a GPU")
    cpu_run, any_run = store.submit(TrainConfig(epochs=1, device="cpu")), store.submit(TrainConfig(epochs=1))
    assert store.claim("laptop", cap=5, caps=CPU).id == cpu_run  # the oldest it can train; the GPU run stays first
    assert store.claim("laptop", cap=5, caps=CPU).id == any_run
    assert store.claim("laptop", cap=5, caps=CPU) is None and store.get(gpu_run).status == "queued"
    assert store.get(gpu_run).error is None and store.queue_position(gpu_run) == 1
    assert store.claim("gpu-box", cap=5, caps=GPU).id == gpu_run


def test_claim_order_and_cap_are_unchanged_by_capabilities(store):
    ids = [store.submit(TrainConfig(epochs=1, device=d)) for d in ("cpu", "auto", "cuda", "cpu")]
    assert [store.claim("g", cap=3, caps=GPU).id for _ in range(3)] == ids[:3]  # oldest first, as before
    assert store.claim("g", cap=3, caps=GPU) is None  # the cap holds
    store.finish(ids[0], "done")
    assert store.claim("old worker", cap=3).id == ids[3]  # caps=None (a worker that registered none): any run


def test_waiting_reason_and_the_forms_note_say_which_live_workers_can_take_a_run(store):
    from gan_core.runs import capability
    cuda, auto = TrainConfig(device="cuda"), TrainConfig(device="auto")
    assert capability.waiting_reason(cuda, store.workers(live=30)) is None  # no worker: the pages say that instead
    level, text = capability.form_note(cuda, store.workers(live=30), here=GPU)
    assert level == "info" and text == ("No training worker is live: Start queues the run and the dashboard starts "
                                        "one on gpu-box.")
    level, text = capability.form_note(cuda, store.workers(live=30), here=CPU)  # the dashboard host has no GPU
    assert level == "warning" and text == ("No training worker is live, and the one the dashboard would start here "
                                           "(laptop: CPU only) has no CUDA GPU: Start queues the run anyway; it "
                                           "waits in the queue until a worker with a CUDA GPU registers.")
    assert "it waits until one starts" in capability.form_note(cuda, [], here=None)[1]  # GAN_NO_AUTOWORKER
    store.worker_beat("laptop-1", 1, "laptop", CPU)
    live = store.workers(live=30)
    assert capability.waiting_reason(cuda, live) == "no live worker has a CUDA GPU (live: laptop: CPU only)"
    assert capability.waiting_reason(auto, live) is None
    level, text = capability.form_note(cuda, live, here=None)
    assert level == "warning" and text.startswith("No live worker has a CUDA GPU (live: laptop: CPU only). Start "
                                                  "queues the run anyway: it waits in the queue until a worker with")
    assert capability.form_note(auto, live, here=None) == ("info", "Live workers that can train it: laptop: "
                                                                        "CPU only.")
    store.worker_beat("gpu-box-1", 2, "gpu-box", GPU)
    live = store.workers(live=30)
    assert capability.waiting_reason(cuda, live) is None
    assert capability.form_note(cuda, live, here=None) == ("info", "Live workers that can train it: gpu-box: "
                                                                        "1 GPU (NVIDIA H100).")
    assert "gpu-box: 1 GPU (NVIDIA H100) → CUDA" in capability.form_note(auto, live, here=None)[1]
    time.sleep(0.05)
    assert store.workers(live=0.01) == [] and len(store.workers()) == 2  # `live` leaves stale rows out


def test_a_worker_still_starting_is_not_said_to_be_unable():
    from gan_core.runs import capability
    cuda = TrainConfig(device="cuda")
    workers = [{"id": "starting-x", "capabilities": None}, {"id": "laptop-1", "capabilities": CPU}]
    assert capability.waiting_reason(cuda, workers) is None
    assert capability.form_note(cuda, workers, here=None) == (
        "info", "1 worker(s) starting; what they have is not known yet.")
    assert Capabilities.from_json("{}") is None and Capabilities.from_json("not json") is None
    assert Capabilities.from_json(GPU.to_json()) == GPU


def test_a_page_of_runs_is_read_and_counted_in_sql_with_the_tables_filters(store):
    """Issue 27: the runs table reads one page (LIMIT/OFFSET) and a COUNT, its filters in SQL, the same runs the
    Python filter keeps."""
    from conftest import many_runs
    from sqlalchemy import update

    from gan_core.runs.schema import Run
    from gan_core.runs.store import RunWhere
    from gan_core.web import run_list
    ids = many_runs(store, 130, queued=2)
    odd = store.submit(TrainConfig(epochs=2), name="odd", owner="", tags="a_b")
    like = store.submit(TrainConfig(epochs=2), name="like", owner="ada", tags="axb, flood")
    with store.engine.begin() as c:
        c.execute(update(Run).where(Run.id.in_(ids[:5])).values(sweep_id=7))
    store.request_stop(odd)
    store.soft_delete(ids[10])  # a deleted run is in no page and no count
    every = RunWhere()
    assert store.count_matching(every) == 131
    first, last = store.runs_page(every, 50, 0), store.runs_page(every, 50, 100)
    assert [r.id for r in first][:2] == [like, odd] and len(first) == 50
    assert len(last) == 31 and last[-1].id == ids[0]
    everyone = store.list_runs()
    for view in (run_list.RunFilter(tag="a_b"), run_list.RunFilter(tag="flood"),
                 run_list.RunFilter(owner=run_list.NO_OWNER),
                 run_list.RunFilter(owner="visitor3", status="stopped"), run_list.RunFilter(status="queued"),
                 run_list.RunFilter(sweep=7), run_list.RunFilter(sweep=run_list.NO_SWEEP, tag="flood"),
                 run_list.RunFilter(text="FLOOD 12"), run_list.RunFilter(text="%"), run_list.RunFilter(text="o_d")):
        kept = [r.id for r in run_list.filter_runs(everyone, view)]
        page = run_list.read_page(store, view, 1, size=500)
        assert [r.id for r in page.runs] == kept and page.total == len(kept), view
    assert [r.id for r in store.runs_page(RunWhere(tag="a_b"), 10)] == [odd]  # '_' is no wildcard: not axb
    assert run_list.filter_options(store) == run_list.run_filter_options(everyone)  # the same choices, no row parsed
    assert len(run_list.filter_options(store, limit=3)["owner"]) == 3  # the newest runs' owners, bounded
    assert run_list.read_page(store, run_list.RunFilter(), 99, size=50).page == 3  # past the last page: the last


def test_the_listing_token_changes_with_what_the_runs_page_shows_not_with_training_steps(store):
    """Issue 27: an idle Runs tab polls this small read and redraws only when it changes."""
    from gan_core.runs.store import RunWhere
    queued = store.submit(TrainConfig(epochs=2), name="waits", owner="ada")
    other = store.submit(TrainConfig(epochs=2), name="other", owner="bob")

    def token():
        return store.listing_token(RunWhere(), 50, 0, [queued], stale_after=30)
    before = token()
    assert token() == before  # nothing happened: nothing to redraw
    store.claim("w1", cap=1)  # the older one, `queued`, starts
    claimed = token()
    assert claimed != before
    store.add_step_metrics(queued, [{"step": 5, "epoch": 0, "d_loss": 1.0, "g_loss": 1.0, "d_real": 0.5,
                                     "d_fake": 0.5, "images_per_sec": 10.0}])
    assert token() == claimed  # a training step is the live table's business, not a reason to redraw the page
    store.update_info(other, name="renamed")
    assert token() != claimed
    store.worker_beat("w2", 1, "host")
    assert token()[-1] == 1  # a worker coming up changes what a queued run's notice says


# --- issue 27: fair share, the queue by when a run joined it, schema 8 ----------------------------------------
def _queue(store, owner: str, n: int, address: str = "", subnet: str = "") -> list[int]:
    where = {"address": address, "subnet": subnet} if address else {}
    return [store.submit(TrainConfig(epochs=1), owner_key=f"anon:{owner}", **where) for _ in range(n)]


def test_a_newcomers_run_is_claimed_second_not_behind_a_flood(store):
    flood = _queue(store, "a", 5)
    [newcomer] = _queue(store, "b", 1)
    assert [store.queue_position(i) for i in (*flood, newcomer)] == [1, 3, 4, 5, 6, 2]
    assert [store.claim("w", cap=10).id for _ in range(3)] == [flood[0], newcomer, flood[1]]


def test_queue_positions_are_the_order_claims_take_the_runs(store):
    earlier = _queue(store, "e", 1, "198.51.100.7", "198.51.100.0/24")  # e trained before: it goes after newcomers
    store.claim("w", cap=1)
    store.finish(earlier[0], "done")
    ids = (_queue(store, "e", 2, "198.51.100.7", "198.51.100.0/24")
           + _queue(store, "a", 3, "203.0.113.9", "203.0.113.0/24")      # a and b: one subnet, two addresses
           + _queue(store, "b", 2, "203.0.113.10", "203.0.113.0/24")
           + _queue(store, "c", 2, "203.0.113.10", "203.0.113.0/24")     # c: b's address
           + _queue(store, "d", 2))                                       # d: no address known
    positions = {i: store.queue_position(i) for i in ids}
    assert sorted(positions.values()) == list(range(1, len(ids) + 1))
    claimed = [store.claim("w", cap=100).id for _ in ids]
    assert claimed == sorted(ids, key=positions.get)
    assert claimed[:2] == [ids[2], ids[-2]]  # the never-served networks first (203.0.113.0/24, then none), then e's


def test_a_resumed_run_queues_behind_the_runs_queued_before_it(store):
    old = store.submit(TrainConfig(epochs=1))
    store.claim("w", cap=1)
    store.finish(old, "stopped")
    later = [store.submit(TrainConfig(epochs=1)) for _ in range(2)]
    assert store.request_resume(old)
    assert store.queue_position(old) == 3
    assert [store.claim("w", cap=10).id for _ in range(3)] == [*later, old]


def _undo_schema_8(c) -> None:
    """Turn a database back into one from before the demo knew addresses: no runs.address/subnet/queued_at, no
    fair-share indexes, no submissions table."""
    from sqlalchemy import text
    c.execute(text("DROP TABLE submissions"))
    for index in ("ix_runs_owner_started", "ix_runs_address_started", "ix_runs_subnet_started"):
        c.execute(text(f"DROP INDEX {index}"))
    for col in ("address", "subnet", "queued_at"):
        c.execute(text(f"ALTER TABLE runs DROP COLUMN {col}"))


def test_a_schema_7_database_gains_addresses_and_queue_times_in_place(store):
    from sqlalchemy import update

    from gan_core.runs.store import Meta
    first, second = store.submit(TrainConfig(epochs=1), name="old"), store.submit(TrainConfig(epochs=1))
    with store.engine.begin() as c:
        _undo_schema_8(c)
        c.execute(update(Meta).where(Meta.key == "schema_version").values(value="7"))
    store.dispose()
    s = Store()
    try:
        old = s.get(first)
        assert (old.name, old.address, old.subnet, old.queued_at) == ("old", "", "", old.created_at)
        assert s.queue_position(second) == 2 and s.claim("w", cap=1).id == first
        new = s.submit(TrainConfig(epochs=1), address="203.0.113.9", subnet="203.0.113.0/24")
        assert s.get(new).address == "203.0.113.9" and s.queue_position(new) == 1  # a network never served
    finally:
        s.dispose()


def test_store_step_rates_and_latest_sample(tmp_path, monkeypatch):
    import gan_core.runs.store as store_mod
    from gan_core.runs.store import Store
    store = Store(url=None, home=tmp_path)
    run_id = store.submit(TrainConfig(epochs=1))
    assert store.step_rates(run_id) == (None, None) and store.latest_sample(run_id) is None
    row = dict(epoch=1, d_loss=1.0, g_loss=1.0, d_real=0.5, d_fake=0.5, images_per_sec=10.0)
    # Rows stamped at known times (the store stamps each batch with time.time()), so the rate is exact on any load.
    for t, step in ((1000.0, 1), (1002.5, 11), (1003.0, 31)):
        monkeypatch.setattr(store_mod.time, "time", lambda t=t: t)
        store.add_step_metrics(run_id, [dict(row, step=step)])
        if step == 11:
            assert store.step_rates(run_id)[0] == 4.0  # 10 steps in 2.5 s
    monkeypatch.undo()
    # 30 steps in 3 s; over the newest 0.4 s, 20 in 0.5 (from the batch before), and 10 in 2.5 before that
    assert store.step_rates(run_id)[0] == 10.0 and store.step_rates(run_id, recent_s=0.4) == (40.0, 4.0)
    store.add_sample(run_id, 1, 11, "run-000001/samples/epoch-0001.png")
    store.add_sample(run_id, 2, 22, "run-000001/samples/epoch-0002.png")
    assert store.latest_sample(run_id)["epoch"] == 2
    assert store.workers() == []
    store.worker_beat("w", 123, "host")
    assert [w["pid"] for w in store.workers()] == [123]
    store.dispose()
