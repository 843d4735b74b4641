"""The worker as it really runs: separate processes sharing a real SQLite or PostgreSQL store."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import tiny, wait_for
from gan_core.checkpoint import read_header
from gan_core.store import Store

ROOT = Path(__file__).resolve().parents[1]


def start_worker(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gan_core", "worker", *args], cwd=ROOT,
                            env={**os.environ, "GAN_HEARTBEAT_S": "0.3", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(p: subprocess.Popen, timeout=120) -> str:
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # no orphan worker left training (and holding the store) after the test
        p.kill()
        out, _ = p.communicate()
        raise AssertionError(f"worker still running after {timeout} s:\n{out[-3000:]}") from None
    assert p.returncode == 0, out
    return out


def test_worker_trains_a_submitted_run_to_done(store):
    run_id = store.submit(tiny(eval_samples=100), name="tiny")
    finish(start_worker("--once"))
    r = store.get(run_id)
    assert r.status == "done" and r.step == 16 and r.epoch == 2 and r.error is None
    assert [m["step"] for m in store.step_metrics(run_id)] == list(range(1, 17))
    samples = store.samples(run_id)
    assert [s["epoch"] for s in samples] == [1, 2]
    assert all(s["path"].read_bytes()[:4] == b"\x89PNG" for s in samples)
    assert (store.artifacts_dir(r) / "generator.safetensors").is_file()
    quality = store.quality(run_id)  # scored after every epoch by the worker and kept with the run
    assert [q["epoch"] for q in quality] == [1, 2] and all(q["n"] == r.config.eval_samples for q in quality)
    assert all(q["fd"] > 0 and 1.0 <= q["inception_score"] <= 10.0 and q["seconds"] > 0 for q in quality)


def test_stop_request_ends_stopped_within_one_step_batch_with_a_checkpoint(store):
    run_id = store.submit(tiny(epochs=1000, checkpoint_every=1000), name="long")
    w = start_worker("--once")
    wait_for(lambda: store.get(run_id).step >= 20)
    assert store.request_stop(run_id)
    asked_at = store.get(run_id).step
    wait_for(lambda: store.get(run_id).status == "stopped", timeout=30)
    finish(w)
    r = store.get(run_id)
    ckpt = read_header(sorted((store.artifacts_dir(r) / "checkpoints").glob("*.safetensors"))[-1])
    assert ckpt["step"] == r.step and ckpt["epoch"] < 1000
    # The flag is polled every 0.3 s and checked every step: the run goes on for well under one epoch of steps.
    assert r.step - asked_at < 200


def test_kill_9_marks_interrupted_and_resume_finishes_without_duplicates(store):
    run_id = store.submit(tiny(epochs=60), name="victim")
    w = start_worker(env={"GAN_HEARTBEAT_TIMEOUT": "1.5"})
    wait_for(lambda: store.get(run_id).epoch >= 3)  # a few checkpoints written
    os.kill(w.pid, signal.SIGKILL)
    w.wait()
    killed_at = store.get(run_id).step
    assert store.get(run_id).status == "running"  # nobody has noticed yet
    wait_for(lambda: store.mark_interrupted(stale_after=1.5) or store.get(run_id).status == "interrupted", 10)
    r = store.get(run_id)
    assert r.status == "interrupted" and "heartbeat" in r.error
    ckpts = sorted((store.artifacts_dir(r) / "checkpoints").glob("*.safetensors"))
    for c in ckpts:
        read_header(c)  # every file on disk is whole: atomic writes
    assert not list(store.artifacts_dir(r).rglob("*.tmp"))
    from gan_core.worker import durable_checkpoint
    resume_step = read_header(durable_checkpoint(store, r))["step"]
    # Lost at most one checkpoint interval (8 steps) past what the store had recorded when the worker died.
    assert killed_at - resume_step <= 8, (killed_at, resume_step)

    p = subprocess.run([sys.executable, "-m", "gan_core", "resume", "--run", str(run_id)], cwd=ROOT,
                       capture_output=True, text=True, env=os.environ.copy())
    assert p.returncode == 0, p.stderr
    finish(start_worker("--once"))
    r = store.get(run_id)
    assert r.status == "done" and r.step == 60 * 8
    steps = [m["step"] for m in store.step_metrics(run_id)]
    assert steps == list(range(1, 481)), sorted(set(range(1, 481)) ^ set(steps))  # none lost, none duplicated
    assert [s["epoch"] for s in store.samples(run_id)] == list(range(1, 61))


def test_two_workers_three_runs_cap_two(store):
    ids = [store.submit(tiny(epochs=12), name=f"r{i}") for i in range(3)]
    seen_running: list[int] = []
    watching = threading.Event()

    def watch():
        s = Store()
        while not watching.is_set():
            seen_running.append(len(s.list_runs(["running", "stopping"])))
            time.sleep(0.02)
        s.dispose()
    t = threading.Thread(target=watch)
    t.start()
    env = {"GAN_MAX_CONCURRENT": "2"}
    workers = [start_worker("--once", env=env), start_worker("--once", env=env)]
    for w in workers:
        finish(w)
    watching.set()
    t.join()
    assert max(seen_running) <= 2 and max(seen_running) >= 1
    runs = [store.get(i) for i in ids]
    assert all(r.status == "done" for r in runs)
    for r in runs:  # each trained exactly once: one contiguous set of steps
        assert [m["step"] for m in store.step_metrics(r.id)] == list(range(1, 12 * 8 + 1))


def test_cli_submit_rejects_bad_input_and_writes_no_row(store):
    for args, msg in ((["--preset", "seed999"], "invalid choice"), (["--epochs", "0"], "epochs: 0 is out of range"),
                      (["--arch", "dense", "--d-widths", "a,b"], "d_widths: expected a non-empty list")):
        p = subprocess.run([sys.executable, "-m", "gan_core", "submit", *args], cwd=ROOT, capture_output=True,
                           text=True, env=os.environ.copy())
        assert p.returncode == 2 and msg in p.stderr
    assert store.list_runs() == []
    p = subprocess.run([sys.executable, "-m", "gan_core", "submit", "--preset", "seed000-dense", "--name", "ok"],
                       cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    assert p.returncode == 0 and store.get(int(p.stdout)).name == "ok"


def test_resume_skips_a_checkpoint_newer_than_the_stored_metrics(store, tmp_path):
    # The worker died after writing ckpt at step 16 but before its metrics for steps 9..16 reached the store.
    from gan_core.events import ListSink
    from gan_core.trainer import train
    from gan_core.worker import durable_checkpoint
    run_id = store.submit(tiny(), name="race")
    r = store.get(run_id)
    train(r.config, ListSink(), out_dir=store.artifacts_dir(r))
    store.add_step_metrics(run_id, [dict(step=s, epoch=1, d_loss=1.0, g_loss=1.0, d_real=0.5, d_fake=0.5,
                                    images_per_sec=1.0) for s in range(1, 9)])
    assert read_header(durable_checkpoint(store, r))["step"] == 8
    store.rewind(run_id, 0, 0)
    assert durable_checkpoint(store, r) is None
