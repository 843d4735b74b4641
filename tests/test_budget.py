"""A config's size and cost on the meta device, and the bounds and caps built on it (issue 14)."""
import time

import pytest

from gan_core import budget
from gan_core.config import QUICK_START, ConfigError, TrainConfig, planned_steps
from gan_core.models import build_discriminator, build_generator
from gan_core.runs import policy
from gan_core.runs.policy import PolicyError, Settings

DEMO = Settings(demo_mode=True)
HUGE_DENSE = TrainConfig(g_widths=(8192,) * 8, d_widths=(8192,) * 8, batch_size=8192)


def test_parameter_counts_match_the_real_models():
    for cfg in (TrainConfig.from_preset("seed000-dense"), TrainConfig.from_preset("dcgan-sn-conditional")):
        est = budget.estimate(cfg)
        real = [sum(p.numel() for p in m.parameters()) for m in (build_generator(cfg), build_discriminator(cfg))]
        assert [est.g_params, est.d_params] == real


def test_flops_follow_the_work():
    base = TrainConfig.from_preset("seed000-dense")
    est = budget.estimate(base)
    # One dense matmul of (in, out) costs 2·in·out FLOPs per image: G's forward alone is twice its weights.
    g_fwd = 2 * sum(a * b for a, b in zip((128, 256, 512, 1024), (256, 512, 1024, 784)))
    assert est.step_flops > base.batch_size * 3 * g_fwd  # G's forward and backward at least
    assert budget.estimate(base.replace(batch_size=256)).step_flops == pytest.approx(2 * est.step_flops)
    assert budget.estimate(base.replace(n_critic=5)).step_flops > 2 * est.step_flops
    more = budget.estimate(base.replace(epochs=base.epochs * 2))
    assert more.train_flops == pytest.approx(2 * est.train_flops, rel=0.01)
    assert est.train_flops >= planned_steps(base) * est.step_flops


def test_a_huge_config_is_sized_without_allocating_it():
    t = time.perf_counter()
    est = budget.estimate(HUGE_DENSE)
    assert time.perf_counter() - t < 30  # meta tensors: 1 G parameters would take minutes and 16 GB to build
    assert est.params > 500e6 and est.memory_bytes > 8 * est.params


def test_a_run_that_cannot_fit_in_memory_is_refused_in_every_mode(monkeypatch):
    monkeypatch.setenv("GAN_MAX_RUN_MEMORY_GB", "4")
    with pytest.raises(ConfigError, match=r"would need about \d+\.\d GB of memory .* more than GAN_MAX_RUN_MEMORY_GB"):
        budget.check_fits(HUGE_DENSE)
    with pytest.raises(ConfigError, match="would need about"):
        policy.check_resources(HUGE_DENSE, Settings())  # team mode too
    assert budget.check_fits(TrainConfig.from_preset("seed000-dense")).params < 3e6
    monkeypatch.setenv("GAN_MAX_RUN_MEMORY_GB", "lots")
    with pytest.raises(ConfigError, match="GAN_MAX_RUN_MEMORY_GB='lots' is not a number"):
        budget.check_fits(TrainConfig())


@pytest.mark.parametrize("changes, message", [
    (dict(g_widths=(8192,) * 60), "g_widths: 60 layers is too many; allowed 1 to 8"),
    (dict(d_widths=(64,) * 9), "d_widths: 9 layers is too many; allowed 1 to 8"),
    (dict(n_critic=20), "n_critic: 20 is out of range; allowed 1 to 10"),
    (dict(eval_samples=50_000), "eval_samples: 50000 is out of range; allowed 0 to 10000"),
    (dict(width_mult=8.0), "width_mult: 8.0 is out of range; allowed 0.125 to 4"),
    (dict(batch_size=100_000), "batch_size: 100000 is out of range; allowed 1 to 8192"),
])
def test_hard_bounds_in_every_mode_name_the_field_and_the_bound(changes, message):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**changes)
    assert message in str(e.value)


@pytest.mark.parametrize("changes, message", [
    (dict(arch="dcgan", width_mult=4.0, batch_size=64, epochs=1, train_subset=640),
     "M parameters, more than the 5.0 M this demo allows"),
    (dict(arch="dcgan", batch_size=512, epochs=5), "TFLOP of compute, more than the 60 this demo allows"),
    (dict(arch="dcgan", n_critic=10, epochs=5, max_steps=1000), "TFLOP of compute"),
])
def test_demo_caps_parameters_and_compute(changes, message):
    cfg = TrainConfig(**changes)
    with pytest.raises(PolicyError, match=message):
        policy.check_resources(cfg, DEMO)
    policy.check_resources(cfg, Settings())  # the same run is fine for a team that owns its machine


def test_the_demo_caps_a_runs_memory_itself_not_at_the_hosts_ram(monkeypatch):
    """Issue 27: the demo's only memory bound was 80 % of the host's RAM, and a DCGAN at batch 8192 (16 GB) queued."""
    monkeypatch.setenv("GAN_MAX_RUN_MEMORY_GB", "64")  # a big host: its own bound lets the run through
    cfg = TrainConfig(arch="dcgan", batch_size=8192, epochs=1)  # within every other demo cap (35 TFLOP, 140 steps)
    assert budget.estimate(cfg).memory_bytes > 16e9
    with pytest.raises(PolicyError, match=r"demo limit: this run would need about 16\.2 GB of memory, more than the "
                                          r"2 GB a run this demo allows \(GAN_DEMO_MAX_RUN_MEMORY_GB\)"):
        policy.check_resources(cfg, DEMO)
    assert policy.check_resources(cfg, Settings()).memory_bytes > 16e9  # team mode: the host's bound only
    monkeypatch.setenv("GAN_DEMO_MAX_RUN_MEMORY_GB", "20")
    assert Settings.from_env().max_run_memory_gb == 20.0
    policy.check_resources(cfg, Settings(demo_mode=True, max_run_memory_gb=20.0))
    monkeypatch.setenv("GAN_DEMO_MAX_RUN_MEMORY_GB", "0")
    with pytest.raises(ConfigError, match="GAN_DEMO_MAX_RUN_MEMORY_GB='0' must be a positive number"):
        Settings.from_env()


def test_the_demo_refuses_torch_compile_whose_compile_time_no_cap_counts():
    """Issue 27: an 8-step run took 29.6 s instead of 3.4 s with torch.compile on, time no demo cap counted."""
    cfg = TrainConfig(compile=True, epochs=1)
    with pytest.raises(PolicyError, match=r"compile: torch\.compile is off on this demo"):
        policy.check_resources(cfg, DEMO)
    policy.check_resources(cfg, Settings())  # a team may compile
    policy.check_resources(cfg.replace(compile=False), DEMO)


def test_every_demo_sized_preset_fits_the_demo_caps():
    for name in ("seed000-dense", "seed002-dense", "seed004-dense", "dense-ema", "dense-conditional", "dcgan-sn",
                 "dcgan-sn-conditional", "dcgan-sn-info"):
        cfg = TrainConfig.from_preset(name, epochs=DEMO.max_epochs)
        if planned_steps(cfg) <= DEMO.max_steps:
            policy.check_resources(cfg, DEMO)


def test_quick_start_fits_the_demo_caps_as_it_is():
    # Issue 30: the demo's default and Home's first run; its epochs and steps are the preset's own, not lowered.
    cfg = TrainConfig.from_preset(QUICK_START)
    assert cfg.epochs <= DEMO.max_epochs and planned_steps(cfg) == cfg.max_steps <= DEMO.max_steps
    assert policy.check_resources(cfg, DEMO).train_flops > 0


def test_the_store_and_the_worker_refuse_what_does_not_fit(store, monkeypatch):
    from sqlalchemy import update

    from gan_core.runs.store import Run
    from gan_core.runs.worker import run_one

    monkeypatch.setenv("GAN_MAX_RUN_MEMORY_GB", "4")
    with pytest.raises(ConfigError, match="would need about"):
        store.submit(HUGE_DENSE, owner="ada")  # whoever calls the store: the CLI, a script
    assert store.list_runs() == []
    run_id = store.submit(TrainConfig(epochs=1), owner="ada")
    with store.engine.begin() as c:  # a row written by hand, or by an older version without the check
        c.execute(update(Run).where(Run.id == run_id).values(config_json=HUGE_DENSE.to_json()))
    run = store.claim("w", cap=1)
    assert run_one(store, run, "w") == "failed"
    assert "refused before training" in store.get(run_id).error and "GB of memory" in store.get(run_id).error
    assert not store.artifacts_dir(run).exists()  # nothing was allocated or written


def test_the_cli_refuses_a_run_that_cannot_fit_before_writing_anything(tmp_path, monkeypatch, capsys):
    from gan_core.cli import main

    monkeypatch.setenv("GAN_MAX_RUN_MEMORY_GB", "4")
    out = tmp_path / "run"
    argv = ["--g-widths", ",".join(["8192"] * 8), "--d-widths", ",".join(["8192"] * 8), "--batch-size", "8192"]
    assert main(["train", *argv, "--out", str(out)]) == 2
    assert "would need about" in capsys.readouterr().err and not out.exists()
    home = tmp_path / "home"
    monkeypatch.setenv("GAN_HOME", str(home))
    monkeypatch.delenv("GAN_DB_URL", raising=False)
    assert main(["submit", *argv]) == 2  # through Store.submit
    assert "would need about" in capsys.readouterr().err


@pytest.mark.parametrize("flops, text", [
    (7e14, "700 TFLOP"), (7.123e14, "712 TFLOP"), (1.2e15, "1.2 PFLOP"), (3.5e10, "35 GFLOP"),
    (999.7e9, "1 TFLOP"), (2.6e13, "26 TFLOP"), (0.0, "0 FLOP"),
])
def test_flops_are_written_to_be_read(flops, text):
    """Issue 26: the form said '7e+02 TFLOP'."""
    assert budget.format_flops(flops) == text
    assert "e+" not in budget.estimate(TrainConfig.from_preset("dense-ema")).describe()


# --- the wall-clock estimate before Start (issue 26), from runs measured in a real store -------------------------
def measured(store, cfg, images, flush_s: float = 0.05) -> int:
    """Train `cfg` for real as a worker does (its StoreSink writing step metrics every `flush_s` s): its run id."""
    from gan_core.runs.worker import StoreSink
    from gan_core.trainer import train

    run_id = store.submit(cfg, owner="ada")
    run = store.claim("w", cap=1)
    sink = StoreSink(store, run, flush_s=flush_s)
    train(cfg, sink, out_dir=store.artifacts_dir(run), images=images)
    sink.flush()
    store.finish(run_id, "done")
    return run_id


@pytest.mark.parametrize("store_env", ["sqlite"], indirect=True)
def test_the_estimate_comes_from_a_measured_run_and_says_which(store, mnist_slice):
    from conftest import tiny

    from gan_core.web import estimate

    cfg = tiny(epochs=6)
    fresh = estimate.start_estimate(store, cfg)  # nothing measured: says so, invents nothing
    assert fresh.seconds is None and fresh.describe().startswith("No measurement yet on cpu, ")
    assert fresh.describe().endswith("; next in queue.")
    run_id = measured(store, cfg, mnist_slice)
    rate = estimate.measured_rate(store, store.get(run_id))
    steps = planned_steps(cfg)
    rows = store.step_metrics(run_id)  # the stored flushes: one run without a pause, so first to last flush
    first, last = min(r["created_at"] for r in rows), max(r["created_at"] for r in rows)
    at = {t: max(r["step"] for r in rows if r["created_at"] == t) for t in (first, last)}
    assert rate == pytest.approx((at[last] - at[first]) / (last - first))

    est = estimate.start_estimate(store, cfg.replace(epochs=60))  # the same run, ten times longer
    assert est.seconds == pytest.approx(10 * steps / rate)
    assert f"(as run #{run_id} trained: " in est.describe() and est.describe().startswith("≈ ")
    wider = estimate.start_estimate(store, cfg.replace(g_widths=(128, 256)))  # same arch and batch, more work a step
    assert wider.seconds > est.seconds / 10 and "scaled by the work per step" in wider.source
    other = estimate.start_estimate(store, cfg.replace(arch="dcgan", batch_size=32))  # only a FLOP rate to go on
    assert other.seconds and f"roughly (from the FLOP rate of run #{run_id}" in other.source
    assert estimate.start_estimate(store, cfg.replace(device="cuda")).seconds is None  # never measured on a GPU

    for _ in range(2):  # two runs queued ahead of it, one training
        store.submit(cfg, owner="bob")
    store.claim("w", cap=1)
    assert est.describe().endswith("; next in queue.")
    assert estimate.start_estimate(store, cfg).describe().endswith("; 2nd in queue, 1 run training now.")


@pytest.mark.parametrize("store_env", ["sqlite"], indirect=True)
def test_a_pause_is_not_counted_and_the_newest_of_equal_runs_is_used(store, monkeypatch):
    from gan_core.web import estimate

    cfg = TrainConfig(epochs=1, device="cpu", precision="fp32")
    row = dict(epoch=0, d_loss=1.0, g_loss=1.0, d_real=0.5, d_fake=0.5, images_per_sec=1.0)
    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])  # the flushes' times, as a worker 2 s apart would write them
    ids = []
    for per_flush, gaps in ((10, (0, 2, 4, 3604, 3606)), (20, (0, 2, 4))):  # the first stopped for an hour
        run_id = store.submit(cfg, owner="ada")
        store.claim("w", cap=1)
        store.set_progress(run_id, ran_on="cpu, fp32")
        for i, t in enumerate(gaps):
            clock[0] = 1000.0 + t
            store.add_step_metrics(run_id, [{**row, "step": per_flush * (i + 1)}])
        store.finish(run_id, "done")
        ids.append(run_id)
    monkeypatch.undo()
    assert estimate.measured_rate(store, store.get(ids[0])) == pytest.approx(5.0)  # 30 steps in 6 s, not 40 in 3606 s
    assert estimate.measured_rate(store, store.get(ids[1])) == pytest.approx(10.0)
    est = estimate.start_estimate(store, cfg)  # two runs of the same config: the newest one's speed
    assert est.seconds == pytest.approx(planned_steps(cfg) / 10.0) and f"as run #{ids[1]} trained" in est.source


def test_the_estimate_reads_only_runs_that_trained_and_counts_the_queue_in_sql(store, monkeypatch):
    """Issue 27: the Train page's estimate parsed every run of the store (30,000 after a queue flood) on each draw."""
    from conftest import many_runs

    from gan_core.runs import store as store_module
    from gan_core.web import estimate
    many_runs(store, 300, queued=3)
    parsed = []
    real_view = store_module._view
    monkeypatch.setattr(store_module, "_view", lambda r: parsed.append(r.id) or real_view(r))
    est = estimate.start_estimate(store, TrainConfig(epochs=2, device="cpu"))
    assert parsed == [] and est.seconds is None  # none of them trained: nothing to parse, nothing to go on
    assert est.describe().endswith("; 4th in queue.")  # the three queued runs, counted
