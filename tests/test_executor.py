"""GAN_EXECUTOR=ray: a dispatcher claims runs from a real SQLite or PostgreSQL store and trains them in tasks on a
real local Ray cluster that this module starts (and shuts down)."""
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import sqlite_only, tiny, wait_for

from gan_core.checkpoint import read_header
from gan_core.config import ConfigError

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray (2 CPUs, no dashboard) for this module; its address is what RAY_ADDRESS names."""
    # A per-session token in the environment (inherited by Ray's processes and the dispatcher subprocesses) rather
    # than one Ray would write to ~/.ray. Set before Ray is imported: it reads its auth mode once, at import.
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    import ray

    ctx = ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
    try:
        yield ctx.address_info["address"]
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@sqlite_only
def test_ray_dispatcher_trains_a_submitted_run_to_done(store, ray_address):
    run_id = store.submit(tiny(), name="tiny")
    env = {**os.environ, "GAN_EXECUTOR": "ray", "RAY_ADDRESS": ray_address, "GAN_HEARTBEAT_S": "0.3"}
    p = subprocess.run([sys.executable, "-m", "gan_core", "worker", "--once"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"run {run_id} → a Ray task on the Ray cluster at {ray_address} (num_cpus=1)" in p.stdout, p.stdout
    r = store.get(run_id)
    assert r.status == "done" and r.step == 16 and r.epoch == 2 and r.error is None, r
    assert r.worker_id.startswith("ray-")
    assert [m["step"] for m in store.step_metrics(run_id)] == list(range(1, 17))  # each step once
    samples = store.samples(run_id)
    assert [s["epoch"] for s in samples] == [1, 2]
    assert all(s["path"].read_bytes()[:4] == b"\x89PNG" for s in samples)
    assert (store.artifacts_dir(r) / "generator.safetensors").is_file()
    assert store.live_workers(30) == 0  # the dispatcher unregistered itself


@sqlite_only
def test_stop_request_reaches_a_run_in_a_ray_task(store, ray_address, monkeypatch):
    from gan_core.runs.dispatcher import dispatch

    monkeypatch.setenv("GAN_HEARTBEAT_S", "0.3")  # passed to the task, which polls the stop flag this often
    run_id = store.submit(tiny(epochs=1000, checkpoint_every=1000), name="long")
    ended: list[int] = []
    t = threading.Thread(target=lambda: ended.append(dispatch(store, "ray", once=True, poll=0.2)))
    t.start()
    try:
        wait_for(lambda: store.get(run_id).step >= 20)
        assert store.get(run_id).status == "running" and store.live_workers(30) == 1
        [w] = store.workers()  # what it registered is the cluster's: this one has 2 CPUs and no GPU
        assert (w["capabilities"].executor, w["capabilities"].cpu, w["capabilities"].gpus) == ("ray", "2 CPUs", ())
        assert store.request_stop(run_id)
        asked_at = store.get(run_id).step
        wait_for(lambda: store.get(run_id).status == "stopped", timeout=30)
    finally:
        t.join(60)
    assert ended == [1]
    r = store.get(run_id)
    ckpt = read_header(sorted((store.artifacts_dir(r) / "checkpoints").glob("*.safetensors"))[-1])
    assert ckpt["step"] == r.step and ckpt["epoch"] < 1000
    assert r.step - asked_at < 200  # stopped within a fraction of an epoch, as a local worker does
    assert [m["step"] for m in store.step_metrics(run_id)] == list(range(1, r.step + 1))


def test_dispatcher_shutdown_checkpoints_and_leaves_the_run_interrupted(store, ray_address, monkeypatch):
    from gan_core.runs.dispatcher import dispatch

    monkeypatch.setenv("GAN_HEARTBEAT_S", "0.3")
    run_id = store.submit(tiny(epochs=1000, checkpoint_every=1000), name="long")
    shutdown = threading.Event()  # what SIGTERM sets in `python -m gan_core worker`
    t = threading.Thread(target=dispatch, kwargs=dict(store=store, executor="ray", poll=0.2, shutdown=shutdown))
    t.start()
    try:
        wait_for(lambda: store.get(run_id).step >= 20)
    finally:
        shutdown.set()
        t.join(60)
    r = store.get(run_id)
    assert r.status == "interrupted" and "shut down" in r.error and store.live_workers(30) == 0
    ckpt = read_header(sorted((store.artifacts_dir(r) / "checkpoints").glob("*.safetensors"))[-1])
    assert ckpt["step"] == r.step  # it checkpointed on the way out: resume loses nothing
    assert store.request_resume(run_id)


def test_task_resources_follow_the_device():
    from types import SimpleNamespace

    from gan_core.runs.executor import task_resources

    def run(device):
        return SimpleNamespace(config=tiny(device=device))  # all task_resources reads of a RunView
    assert task_resources(run("cuda"), cluster_gpus=0) == {"num_gpus": 1}
    assert task_resources(run("cpu"), cluster_gpus=4) == {"num_cpus": 1}
    assert task_resources(run("auto"), cluster_gpus=4) == {"num_gpus": 1}
    assert task_resources(run("auto"), cluster_gpus=0) == {"num_cpus": 1}


def test_unknown_executor_is_refused_with_a_clear_message(tmp_path, monkeypatch):
    from gan_core.runs.executor import executor_name

    monkeypatch.delenv("GAN_EXECUTOR", raising=False)
    assert executor_name() == "local"
    monkeypatch.setenv("GAN_EXECUTOR", "Ray ")
    assert executor_name() == "ray"
    monkeypatch.setenv("GAN_EXECUTOR", "bogus")
    with pytest.raises(ConfigError, match="GAN_EXECUTOR: 'bogus' is not an executor; use 'local'"):
        executor_name()
    home = tmp_path / "home"
    p = subprocess.run([sys.executable, "-m", "gan_core", "worker", "--once"], cwd=ROOT, capture_output=True,
                       text=True, env={**os.environ, "GAN_HOME": str(home), "GAN_EXECUTOR": "bogus"}, timeout=60)
    assert p.returncode == 2 and "error: GAN_EXECUTOR: 'bogus' is not an executor" in p.stderr, p.stderr
    assert not home.exists()  # refused before the store was touched


def test_the_local_executor_never_imports_ray(tmp_path):
    code = ("import sys, gan_core.cli, gan_core.runs.dispatcher as d, gan_core.runs.store as s\n"
            "d.dispatch(s.Store(), 'local', once=True)\nprint('ray' in sys.modules)")  # a whole round of the loop
    env = {k: v for k, v in os.environ.items() if k != "GAN_DB_URL"} | {"GAN_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"
