"""The prepared GPU check in its tiny CPU mode (issue 16: the CI run that keeps it from rotting), and the GPU fast-path
settings it will measure, checked for correctness on the CPU."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_core.config import TrainConfig
from gan_core.device import resolve_precision
from gan_core.step import build_gan, match_param_layout, train_step
from gan_core.tools import gpucheck
from gan_core.tools.gpucheck import (
    JSON_NAME,
    LOG_NAME,
    PARTS,
    Check,
    Plan,
    part_bench,
    part_environment,
    part_quality_cost,
    part_training,
)

ROOT = Path(__file__).resolve().parents[1]
# What the GPU machine lacks (issue 16): importing any of them anywhere in the check must fail it.
ABSENT = ("sqlalchemy", "streamlit", "plotly", "torchvision", "PIL")
# sys.modules[name] = None is Python's own "not installed": `import` raises ModuleNotFoundError and
# importlib.util.find_spec answers None, as on a machine without the package.
BLOCKER = f"import sys\nsys.modules.update(dict.fromkeys({ABSENT!r}))\n"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable, "PYTHONUNBUFFERED": "1",
            "GAN_DATA_MIRROR": "http://127.0.0.1:9/", **extra}  # a missing file must not reach for the internet


def _check_report(out: Path, reference: bool) -> dict:
    """The JSON of a tiny CPU run, asserted to hold every part with real numbers."""
    assert (out / LOG_NAME).is_file() and "gpu-check: environment ok" in (out / LOG_NAME).read_text()
    report = json.loads((out / JSON_NAME).read_text())
    parts = report["parts"]
    assert report["finished"] and report["ok"] and report["mode"] == "tiny" and list(parts) == list(PARTS)
    assert {name: p["status"] for name, p in parts.items()} == dict.fromkeys(PARTS, "ok")
    env = parts["environment"]["result"]
    assert env["torch"] == torch.__version__ and env["device"] == "cpu" and env["bf16_native"] in (True, False)
    assert set(env["tf32_before_any_run"]) >= {"matmul_allow_tf32", "cudnn_allow_tf32", "cudnn_benchmark"}
    tests = parts["cuda_tests"]["result"]  # no GPU here: every CUDA test is collected, and skips
    assert tests["collected"] >= 2 and tests["failed"] == tests["errors"] == 0
    assert tests["passed"] + tests["skipped"] == tests["collected"]
    bench = parts["bench"]["result"]
    rows = {(b["arch"], b["variant"]): b for b in bench["configs"]}
    assert set(rows) == {("dense", "default"), ("dcgan", "default")}
    assert set(bench["skipped"]) == {"fp32", "bf16", "graph-fp32", "graph", "compile"}
    for row in rows.values():
        assert row["status"] == "ok" and row["product_img_s"] > 0 and row["product_s_per_epoch"] > 0
        assert row["precision"] == ("bf16" if env["bf16_native"] else "fp32")  # what auto picks on this CPU
        assert (row["ratio_to_reference"] > 0) if reference else row["ratio_to_reference"] is None
    gen = parts["generation"]["result"]
    assert gen["dense"]["median_ms"] > 0 and gen["dcgan"]["median_ms"] > 0 and gen["dcgan"]["n"] == 64
    cost = parts["quality_cost"]["result"]
    assert all(cost[a]["score_s"] > 0 and cost[a]["share_of_epoch_pct"] >= 0 for a in ("dense", "dcgan"))
    training = parts["training"]["result"]
    assert training["outcome"] == "Done" and training["preset"] == "dcgan-sn-info" and len(training["epochs"]) >= 1
    assert all(math.isfinite(e["fd"]) and e["inception_score"] >= 1 and e["wall_s"] > 0 for e in training["epochs"])
    assert training["fast_path"]["channels_last"] is False  # CPU: the layout stays as it was
    assert (out / "training_grid.npy").is_file()
    # the best epoch's generator comes back (with D, for --reject) and loads; the scratch run folder does not
    from gan_core.checkpoint import load_generator
    assert training["best_generator"]["file"] == "best-generator.safetensors"
    g, cfg = load_generator(out / "best-generator.safetensors")[:2]
    assert cfg.info_code and sum(p.numel() for p in g.parameters()) > 0
    assert not (out / "training-run").exists()
    return report


@pytest.mark.slow
def test_the_tiny_gpu_check_runs_every_part_on_the_cpu_without_store_dashboard_torchvision_or_pillow(tmp_path):
    # The CI run of scripts/gpu_check.sh: the same code as on a GPU, with a few steps of each part. As on the GPU
    # machine, which has no SQLAlchemy, Streamlit or Plotly and maybe no torchvision, those are unimportable (in this
    # process and the pytest it starts): the check still passes, and records that the tutorial-style reference loop
    # could not run instead of failing. (One run for both: each took CI 20-30 s; `bench` tests the reference loop.)
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(BLOCKER)
    out = tmp_path / "check"
    p = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--device", "cpu", "--tiny", "--out", str(out)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=_env(PYTHONPATH=f"{block}{os.pathsep}{ROOT}"))
    # An import of any of them anywhere (the CLI's, a part's, the pytest run's) would have failed a part.
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    report = _check_report(out, reference=False)
    # The tutorial loop needs both; the product neither.
    why = "reference loop unavailable: no torchvision and no Pillow"
    assert report["parts"]["environment"]["result"]["reference_loop"] == why
    assert report["parts"]["bench"]["result"]["reference"]["dense"] == {"error": why}
    assert (out / "cuda_tests.xml").is_file()


def test_the_tiny_bench_measures_the_default_configuration_so_quality_cost_has_an_epoch_to_divide_by(
        tmp_path, monkeypatch, cpu_bf16):
    # On a CPU with bf16 units auto picks bf16: a tiny bench of fixed fp32 left quality_cost no row of the default
    # configuration, and the check had no share_of_epoch_pct there (issue 26). Both of auto's paths, on any CPU.
    # Smaller still than tiny: the tutorial-style loop is bench's own test's business, and tiny's widths for dense
    monkeypatch.setattr(gpucheck, "reference_unavailable", lambda: "not measured by this test")
    tiny = Plan.make(tiny=True, minutes=None)
    plan = dataclasses.replace(tiny, bench_steps=2, bench_images=256,
                               model_overrides={**tiny.model_overrides, "g_widths": (64, 128), "d_widths": (128, 64)})
    c = Check(tmp_path, "cpu", plan)
    c.part("environment", part_environment)
    c.part("bench", part_bench)
    c.part("quality_cost", part_quality_cost)
    c.close()
    parts = json.loads((tmp_path / JSON_NAME).read_text())["parts"]
    assert {name: p["status"] for name, p in parts.items()} == dict.fromkeys(parts, "ok")
    env = parts["environment"]["result"]
    assert env["bf16_native"] is cpu_bf16 and env["cpu_bf16_override"] is cpu_bf16
    precision = "bf16" if cpu_bf16 else "fp32"
    assert [(b["arch"], b["precision"]) for b in parts["bench"]["result"]["configs"]] == [("dense", precision),
                                                                                         ("dcgan", precision)]
    cost = parts["quality_cost"]["result"]
    for arch in ("dense", "dcgan"):
        assert cost[arch]["epoch_precision"] == precision and cost[arch]["epoch_s"] > 0
        assert cost[arch]["share_of_epoch_pct"] >= 0


def test_a_failing_part_is_recorded_and_the_next_part_still_runs(tmp_path):
    c = Check(tmp_path, "cpu", Plan.make(tiny=True, minutes=None))
    c.part("first", lambda check, r: r.update(half=1) or 1 / 0)
    saved = json.loads((tmp_path / JSON_NAME).read_text())  # written after the failure, before anything else runs
    assert saved["parts"]["first"]["status"] == "error" and saved["parts"]["first"]["result"] == {"half": 1}
    assert saved["parts"]["first"]["error"] == "ZeroDivisionError: division by zero" and not saved["finished"]
    c.part("second", lambda check, r: r.update(value=2))
    c.close()
    done = json.loads((tmp_path / JSON_NAME).read_text())
    assert done["finished"] and done["parts"]["second"] == {"status": "ok", "result": {"value": 2},
                                                           "seconds": done["parts"]["second"]["seconds"]}
    assert "first: ERROR ZeroDivisionError" in (tmp_path / LOG_NAME).read_text()


@pytest.mark.slow
def test_the_training_part_stops_cleanly_when_the_budget_ends(tmp_path):
    # On the GPU the training runs "until the budget ends": here a 10,000-epoch tiny run with 15 s of budget.
    tiny = Plan.make(tiny=True, minutes=None)
    plan = dataclasses.replace(tiny, budget_s=15.0, train_overrides={**tiny.train_overrides, "epochs": 10_000})
    c = Check(tmp_path, "cpu", plan)
    c.part("training", part_training)
    c.close()
    part = json.loads((tmp_path / JSON_NAME).read_text())["parts"]["training"]
    r = part["result"]
    assert part["status"] == "ok" and r["outcome"] == "Stopped" and len(r["epochs"]) >= 1
    assert part["seconds"] < 15 + 10  # stopped at the budget (plus the step and scoring under way), not at the end


# --- the fast-path settings the GPU check measures, proven on the CPU ------------------------------------------
def _dcgan() -> TrainConfig:
    return TrainConfig.from_preset("dcgan-sn-info", width_mult=0.25, batch_size=16, device="cpu", eval_samples=0)


def _steps(m, batches) -> list[float]:
    """[d_loss, g_loss, D(x), D(G(z))] of each step, one flat list (pytest.approx compares flat lists); not the
    gradient norms, whose sums of squares over every weight round differently in each layout (6e-5 relative)."""
    return [x for real in batches for x in train_step(m, real, None, g_step=True)[:4].tolist()]


# How far the same steps may drift between layouts: conv kernels sum in another order per layout, which bf16's 8-bit
# mantissa rounds far more coarsely (measured over five steps: 2e-7 relative in fp32, 4e-4 in bf16). Both stay well
# inside these, and far from what mispaired Adam moments do (8e-3 in either precision, the resume test's hazard).
LAYOUT_TOLERANCE = {"fp32": dict(rel=1e-5, abs=1e-6), "bf16": dict(rel=2e-3, abs=1e-4)}


def _tolerance(cfg: TrainConfig) -> dict[str, float]:
    """The layout tolerance of the precision `cfg` actually trains in on the CPU (auto's choice included)."""
    return LAYOUT_TOLERANCE[resolve_precision(cfg, torch.device("cpu"))]


def _batches(n: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return [torch.rand(16, 1, 28, 28, generator=gen) * 2 - 1 for _ in range(n)]


def test_channels_last_gives_the_losses_of_the_default_layout(cpu_bf16):
    # On CUDA a DCGAN trains with NHWC weights; forced here on the CPU, the same steps give the same losses, in the
    # precision auto picks on either kind of CPU.
    cfg = _dcgan()
    plain, nhwc = build_gan(cfg, torch.device("cpu")), build_gan(cfg, torch.device("cpu"), channels_last=True)
    convs = [p for p in nhwc.g.parameters() if p.dim() == 4] + [p for p in nhwc.d.parameters() if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert any(not p.is_contiguous() for p in convs)  # a one-channel kernel is both layouts at once; the rest differ
    assert all(p.is_contiguous() for p in plain.g.parameters())  # default on the CPU: the layout is untouched
    # Five steps: conv kernels sum in another order per layout, and later Adam steps amplify that rounding where a
    # gradient is near zero (measured: 1e-7 relative for five steps, 3e-5 by the eighth).
    batches = _batches(5)
    a, b = _steps(plain, batches), _steps(nhwc, batches)
    assert a != _steps(build_gan(cfg.replace(seed=1), torch.device("cpu")), batches)  # the steps are not trivial
    assert b == pytest.approx(a, **_tolerance(cfg))


def test_resuming_into_channels_last_weights_keeps_adam_moments_paired_with_their_weights(cpu_bf16):
    # A checkpoint's tensors are contiguous; fused Adam reads param and moments as flat memory, so moments left
    # NCHW beside NHWC weights would update the wrong elements. match_param_layout (run by train on resume) fixes
    # the layout; the resumed steps then match the uninterrupted run.
    cfg, batches = _dcgan(), _batches(5)
    run = build_gan(cfg, torch.device("cpu"))
    _steps(run, batches[:3])
    # deepcopy: state_dict() hands out the live tensors, which the next steps update in place
    saved = copy.deepcopy({"g": run.g.state_dict(), "d": run.d.state_dict(), "opt_g": run.opt_g.state_dict(),
                           "opt_d": run.opt_d.state_dict(), "ema": run.g_ema.state_dict(), "rng": run.rng.get_state()})
    expected = _steps(run, batches[3:])

    def resumed(fix: bool) -> list[float]:
        m = build_gan(cfg, torch.device("cpu"), channels_last=True)
        m.g.load_state_dict(saved["g"]), m.d.load_state_dict(saved["d"]), m.g_ema.load_state_dict(saved["ema"])
        for opt, name in ((m.opt_g, "opt_g"), (m.opt_d, "opt_d")):
            opt.load_state_dict(saved[name])
            if fix:
                match_param_layout(opt)
        m.rng.set_state(saved["rng"])
        return _steps(m, batches[3:])
    assert resumed(fix=True) == pytest.approx(expected, **_tolerance(cfg))
    assert resumed(fix=False) != pytest.approx(expected, **_tolerance(cfg))  # the hazard is real


def test_match_param_layout_leaves_a_contiguous_run_alone():
    # Every CPU run: moments already share their weights' layout, so exact resume sees the very same tensors.
    m = build_gan(_dcgan(), torch.device("cpu"))
    _steps(m, _batches(1))
    before = {id(v) for s in m.opt_d.state.values() for v in s.values()}
    match_param_layout(m.opt_d)
    assert {id(v) for s in m.opt_d.state.values() for v in s.values()} == before


def test_building_on_the_cpu_leaves_the_cuda_math_settings_alone():
    def flags() -> tuple:
        return (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
                torch.get_float32_matmul_precision())
    before = flags()
    build_gan(_dcgan(), torch.device("cpu"))
    assert flags() == before
