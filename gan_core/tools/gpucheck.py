"""The prepared device check: one call on a lent GPU measures everything, into one JSON file and one log.

A GPU is lent to this project only now and then, for minutes, so the check is written and tested before one is at
hand. Its parts, each recorded on its own (one failing keeps the others' results):

- environment: torch, the device, CUDA capability, native bf16, TF32 and which optional packages exist;
- cuda_tests: `pytest -m cuda` in a subprocess, counted from its JUnit XML;
- bench: dense (seed000-dense) and DCGAN (seed003-dcgan) eager in fp32 and bf16, as CUDA graphs (the default) and
  with torch.compile (tiny: the default configuration only), against the tutorial-style reference loop of the same
  run, with peak GPU memory per config;
- generation: warm latency of sampling 64 digits;
- quality_cost: scoring `eval_samples` images as a share of one epoch's training;
- training: dcgan-sn-info at full width, scored every epoch, until the budget ends; its best epoch's generator (G
  and D, ~10 MB) comes back as best-generator.safetensors.

The JSON is rewritten atomically after every part and every bench config, so a run cut off by its time limit still
leaves what it measured. Only what the GPU machine has is imported (torch, numpy, scipy, safetensors; pytest in a
subprocess): never the store, SQLAlchemy, Streamlit or Plotly, and torchvision / Pillow only for the reference loop,
whose absence is recorded, not fatal. `tiny` runs every part in seconds on a CPU, so CI keeps the script alive.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import atomic_write, atomic_write_text
from ..config import TrainConfig

SCHEMA = 1
ROOT = Path(__file__).resolve().parents[2]
JSON_NAME, LOG_NAME = "gpu_check.json", "gpu_check.log"
BENCH_PRESETS = {"dense": "seed000-dense", "dcgan": "seed003-dcgan"}
TRAIN_PRESET = "dcgan-sn-info"
# Distribution names, read from metadata only: importing torchvision just to ask its version is what must not happen.
PACKAGES = ("torch", "numpy", "scipy", "safetensors", "torchvision", "Pillow", "pytest", "pandas", "tqdm")


@dataclass(frozen=True)
class Plan:
    """How much each part does: the full check (default 8 minutes), or tiny (seconds on a CPU, for CI)."""
    tiny: bool
    budget_s: float
    bench_steps: int
    bench_overrides: dict[str, Any]            # applied to both bench presets' training
    model_overrides: dict[str, Any]            # applied to every bench preset (generation and scoring too)
    bench_images: int | None                   # None: all 60,000 training images
    variants: tuple[tuple[str, str, bool, bool], ...]  # (name, precision, compile, cuda_graph), eager ones first
    skipped_variants: dict[str, str]           # name → why it does not run in this plan
    tests_share: float                         # cuda_tests' time limit, as a share of the budget
    bench_until: float                         # bench configs start only before this share of the budget
    gen_repeats: int
    train_overrides: dict[str, Any] = field(default_factory=dict)
    margin_s: float = 20.0                     # training stops this long before the budget ends

    @staticmethod
    def make(tiny: bool, minutes: float | None) -> Plan:
        """The plan for `tiny` or the full check, within `minutes` (default 8 full, 2 tiny)."""
        # Tiny's budget is only a ceiling: its parts are bounded by their step counts and take well under a minute.
        budget = 60.0 * (minutes if minutes is not None else (2.0 if tiny else 8.0))
        if tiny:
            why = ("not in tiny mode: only the configuration a run uses by default (precision auto, CUDA graph "
                   "where it applies), which quality_cost divides by; a precision auto does not pick is emulated "
                   "(5x slower)")
            # Quarter-width DCGANs (width_mult only touches the DCGAN): every code path, a fraction of the FLOPs.
            # The one variant is the default configuration, not a fixed fp32: auto picks bf16 on a CPU with bf16
            # units, and a fixed-fp32 row left quality_cost nothing to divide by there.
            return Plan(True, budget, bench_steps=4, bench_overrides=dict(batch_size=32, eval_samples=0),
                        model_overrides=dict(width_mult=0.25), bench_images=2048,
                        variants=(("default", "auto", False, True),),
                        skipped_variants={"fp32": why, "bf16": why, "graph-fp32": why, "graph": why,
                                          "compile": "not in tiny mode: compiling takes minutes"},
                        tests_share=0.5, bench_until=0.8, gen_repeats=5, margin_s=0.0,
                        train_overrides=dict(width_mult=0.125, train_subset=64, batch_size=32, epochs=2,
                                             eval_samples=100, log_every=1))
        # graph and compile run in "auto" precision: bf16 where native (every GPU since Ampere), as a user's run would.
        return Plan(False, budget, bench_steps=200, bench_overrides=dict(eval_samples=0), model_overrides={},
                    bench_images=None,
                    variants=(("fp32", "fp32", False, False), ("bf16", "bf16", False, False),
                              ("graph-fp32", "fp32", False, True), ("graph", "auto", False, True),
                              ("compile", "auto", True, False)),
                    skipped_variants={}, tests_share=0.25, bench_until=0.55, gen_repeats=30,
                    train_overrides=dict(width_mult=1.0, epochs=TrainConfig.most("epochs"),
                                         checkpoint_every=TrainConfig.most("checkpoint_every")))  # one, at the end


class Check:
    """The report under construction: parts, log lines, and the atomic JSON write after each step."""

    def __init__(self, out: Path, device: str, plan: Plan) -> None:
        self.out, self.device, self.plan = out, device, plan
        self.t0 = time.monotonic()
        self.deadline = self.t0 + plan.budget_s
        # Set by SIGTERM (a time limit closing in) or by the training's timer: finish the current step, report.
        self.stop = threading.Event()
        self.images: torch.Tensor | None = None  # the bench's training images, loaded once
        out.mkdir(parents=True, exist_ok=True)
        self.log_file = open(out / LOG_NAME, "a", encoding="utf-8", buffering=1)
        self.data: dict[str, Any] = {
            "schema": SCHEMA, "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "tiny" if plan.tiny else "full", "device": device, "budget_s": plan.budget_s,
            "elapsed_s": 0.0, "finished": False, "parts": {}}

    def remaining(self) -> float:
        """Seconds left of the budget."""
        return self.deadline - time.monotonic()

    def at(self, share: float) -> float:
        """Seconds left until `share` of the budget has passed."""
        return self.t0 + share * self.plan.budget_s - time.monotonic()

    def log(self, message: str) -> None:
        """One timestamped line to the log file and stdout."""
        line = f"[{time.monotonic() - self.t0:7.1f}s] {message}"
        self.log_file.write(line + "\n")
        print(line, flush=True)

    def save(self) -> None:
        """Rewrite the JSON whole (atomic rename), so a kill at any moment leaves the last complete state."""
        self.data["elapsed_s"] = round(time.monotonic() - self.t0, 2)
        atomic_write_text(self.out / JSON_NAME, json.dumps(_finite_json(self.data), indent=2))

    def part(self, name: str, fn: Callable[[Check, dict[str, Any]], str | None]) -> None:
        """Run part `name`: `fn` fills its result dict (saving as it goes) and may return a status; an exception
        becomes status "error" with its traceback, and the next part runs regardless."""
        entry: dict[str, Any] = {"status": "running", "result": {}}
        self.data["parts"][name] = entry
        self.log(f"{name}: start ({self.remaining():.0f} s of the budget left)")
        self.save()
        t = time.monotonic()
        try:
            entry["status"] = fn(self, entry["result"]) or "ok"
            if entry["status"] != "ok" and "error" in entry["result"]:  # why it was skipped or failed, up front
                entry["error"] = entry["result"]["error"]
        except Exception as e:  # one part's failure must not cost the others' results
            entry["status"], entry["error"] = "error", f"{type(e).__name__}: {e}"
            entry["traceback"] = traceback.format_exc()[-4000:]
            self.log(f"{name}: ERROR {entry['error']}\n{entry['traceback']}")
        entry["seconds"] = round(time.monotonic() - t, 2)
        self.log(f"{name}: {entry['status']} in {entry['seconds']:.1f} s")
        self.save()

    def close(self) -> None:
        """Mark the report finished and close the log."""
        self.data["finished"] = True
        self.save()
        self.log_file.close()


def _finite_json(x: Any) -> Any:
    """`x` with NaN / ±inf floats as null: the file stays strict JSON that any reader accepts."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_json(v) for v in x]
    return x


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _tf32() -> dict[str, Any]:
    return {"matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark}


def reference_unavailable() -> str | None:
    """Why the tutorial-style reference loop cannot run here (it needs torchvision and Pillow), or None."""
    missing = [name for name, module in (("torchvision", "torchvision"), ("Pillow", "PIL"))
               if importlib.util.find_spec(module) is None]
    return f"reference loop unavailable: no {' and no '.join(missing)}" if missing else None


# --- the parts -----------------------------------------------------------------------------------------------------
def part_environment(c: Check, r: dict[str, Any]) -> str | None:
    """Python, torch, the device and its capabilities, the TF32 settings before any run, and the packages present."""
    from ..device import cpu_bf16_override, native_bf16

    dev = torch.device(c.device)
    r.update(python=platform.python_version(), torch=torch.__version__, cuda_runtime=torch.version.cuda,
             cuda_available=torch.cuda.is_available(), device=c.device, cpu=platform.processor() or platform.machine(),
             cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(), packages=_versions(),
             data_dir=os.environ.get("GAN_DATA_DIR"), tf32_before_any_run=_tf32())
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            r["error"] = "--device cuda, but torch sees no CUDA GPU"
            return "error"
        props = torch.cuda.get_device_properties(dev)
        r.update(device_name=props.name, capability=f"{props.major}.{props.minor}",
                 memory_gib=round(props.total_memory / 2**30, 1), multiprocessors=props.multi_processor_count,
                 device_count=torch.cuda.device_count(), cudnn=torch.backends.cudnn.version())
    else:
        r["device_name"] = r["cpu"]
    r["bf16_native"] = native_bf16(dev.type)
    r["cpu_bf16_override"] = cpu_bf16_override()  # GAN_CPU_BF16: None, or what auto was told about this CPU
    r["reference_loop"] = reference_unavailable() or "available"
    return None


def part_cuda_tests(c: Check, r: dict[str, Any]) -> str | None:
    """`pytest -m cuda` over the test files that hold such tests; passed / failed / skipped from its JUnit XML."""
    if importlib.util.find_spec("pytest") is None:
        r["error"] = "pytest is not installed in this Python"
        return "skipped"
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                   if "pytest.mark.cuda" in p.read_text(encoding="utf-8"))
    if not files:
        r["error"] = f"no test file under {ROOT / 'tests'} marks a test pytest.mark.cuda"
        return "skipped"
    xml = c.out / "cuda_tests.xml"
    limit = max(10.0, min(c.plan.tests_share * c.plan.budget_s, c.remaining() - 30))
    # Only the files with CUDA tests: the others import the store and dashboard packages this machine may lack.
    # Plugin autoload off: the same plugins (none) on every machine, whatever its site-packages hold.
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *files]
    # CUBLAS_WORKSPACE_CONFIG: cuBLAS's deterministic mode, which the graph-vs-eager test needs, is chosen when CUDA
    # starts, so it is set before the tests' process begins.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1",
           "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG", ":4096:8")}
    r.update(command=" ".join(cmd[1:]), timeout_s=round(limit, 1))
    c.log("cuda_tests: " + r["command"])
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
        output, r["returncode"] = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        r["error"] = f"pytest ran past {limit:.0f} s and was killed"
    c.log("cuda_tests output:\n" + output[-8000:])
    r["output_tail"] = output[-3000:]
    if not xml.is_file():
        r.setdefault("error", "pytest wrote no JUnit XML (see output_tail)")
        return "error"
    root = ET.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    count = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    r.update(passed=count["tests"] - count["failures"] - count["errors"] - count["skipped"],
             failed=count["failures"], errors=count["errors"], skipped=count["skipped"], collected=count["tests"])
    r["problems"] = [{"test": f"{case.get('classname')}::{case.get('name')}",
                      "message": (bad.get("message") or bad.text or "")[:500]}
                     for case in ET.parse(xml).getroot().iter("testcase")
                     for bad in list(case) if bad.tag in ("failure", "error")]
    if "error" in r:
        return "error"
    return "failed" if count["failures"] or count["errors"] else None


def _bench_images(c: Check, data_dir: str | None) -> torch.Tensor:
    from ..data import load_dataset

    if c.images is None:
        c.images = load_dataset("mnist", "train", data_dir, limit=c.plan.bench_images or 0)[0]
    return c.images


def _bench_cfg(c: Check, arch: str, **changes: Any) -> TrainConfig:
    return TrainConfig.from_preset(BENCH_PRESETS[arch], device=c.device,
                                   **{**c.plan.model_overrides, **c.plan.bench_overrides, **changes})


def _reference(cfg: TrainConfig, images: torch.Tensor, steps: int, warmup: int) -> dict[str, Any]:
    """Images/s, s/epoch and peak memory of the tutorial-style loop, or its error."""
    from ..device import resolve_device
    from .bench import reference_throughput

    device = resolve_device(cfg)
    try:
        _reset_peak(device)
        img_s = reference_throughput(cfg, images, steps, warmup)
        _sync(device)
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
    return {"reference_img_s": round(img_s, 1), "peak_mib": _peak_mib(device),
            "reference_s_per_epoch": round((60_000 // cfg.batch_size) * cfg.batch_size / img_s, 3)}


def part_bench(c: Check, r: dict[str, Any], data_dir: str | None = None) -> str | None:
    """Images/s and s/epoch of each (arch, variant) and its ratio to the reference loop of this run; peak memory."""
    from ..device import resolve_device, resolve_precision, uses_cuda_graph
    from .bench import product_throughput

    images = _bench_images(c, data_dir)
    steps = c.plan.bench_steps
    warmup = max(1, steps // 4)  # as run_bench: the first log interval (compile, cuDNN autotuning) is not timed
    steps = warmup * max(1, round(steps / warmup))
    no_reference = reference_unavailable()
    r.update(steps=steps, warmup=warmup, images=len(images), configs=[],
             skipped=dict(c.plan.skipped_variants), reference={})
    status = None
    for name, precision, compiled, graph in c.plan.variants:
        for arch in BENCH_PRESETS:
            cfg = _bench_cfg(c, arch, precision=precision, compile=compiled, cuda_graph=graph)
            device = resolve_device(cfg)
            row: dict[str, Any] = {"arch": arch, "preset": BENCH_PRESETS[arch], "variant": name,
                                   "precision": resolve_precision(cfg, device), "compile": compiled,
                                   "cuda_graph": uses_cuda_graph(cfg, device),
                                   "batch_size": cfg.batch_size}
            r["configs"].append(row)
            need = 120 if compiled else 15  # rough seconds a config takes on a GPU, compiling included
            if not c.plan.tiny and (c.at(c.plan.bench_until) < need or c.stop.is_set()):
                row["status"] = "skipped: the bench's share of the budget is spent"
                c.save()
                continue
            c.log(f"bench: {arch} {name} ({row['precision']}{', compiled' if compiled else ''}"
                  f"{', CUDA graph' if row['cuda_graph'] else ''})")
            if arch not in r["reference"]:
                # Once per arch, before its first config, as run_bench does: the tutorial-style loop in fp32 (it
                # ignores precision and compile), so every config of the arch divides by the same number.
                ref = {"error": no_reference} if no_reference else _reference(cfg, images, steps, warmup)
                r["reference"][arch] = ref
                if "traceback" in ref:  # it ran and failed (an absent torchvision is recorded, not a failure)
                    status = "partial"
                c.log(f"bench: {arch} reference: " + (f"{ref['reference_img_s']:.0f} img/s" if "error" not in ref
                                                      else ref["error"]))
                c.save()
            try:
                t = time.monotonic()
                _reset_peak(device)
                img_s = product_throughput(cfg, images, steps, warmup)
                _sync(device)
                epoch_s = (60_000 // cfg.batch_size) * cfg.batch_size / img_s
                ref = r["reference"][arch].get("reference_img_s")
                row.update(status="ok", product_img_s=round(img_s, 1), product_s_per_epoch=round(epoch_s, 3),
                           ratio_to_reference=round(img_s / ref, 2) if ref else None,
                           peak_mib=_peak_mib(device), wall_s=round(time.monotonic() - t, 2))
                c.log(f"bench: {arch} {name}: {img_s:.0f} img/s, {epoch_s:.2f} s/epoch"
                      + (f", {img_s / ref:.2f}x the reference" if ref else ""))
            except Exception as e:
                row.update(status="error", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-2000:])
                c.log(f"bench: {arch} {name}: ERROR {row['error']}")
                status = "partial"
            c.save()
    if status is None and not any(row.get("status") == "ok" for row in r["configs"]):
        r["error"] = "no config ran: the bench's share of the budget was spent before it began"
        return "skipped"
    return status


def part_generation(c: Check, r: dict[str, Any]) -> str | None:
    """Warm latency of sampling 64 digits per bench preset (median, p90); the copy to host ends each timing, so
    the GPU's work is inside it (as torch.cuda.synchronize would ensure)."""
    from .bench import generation_latency

    for arch, preset in BENCH_PRESETS.items():
        cfg = TrainConfig.from_preset(preset, device=c.device, **c.plan.model_overrides)
        _sync(torch.device(c.device))
        r[arch] = {"preset": preset, **generation_latency(cfg, n=64, repeats=c.plan.gen_repeats)}
        c.log(f"generation: {arch}: 64 digits in {r[arch]['median_ms']} ms (median)")
        c.save()
    return None


def part_quality_cost(c: Check, r: dict[str, Any]) -> str | None:
    """Seconds to score `eval_samples` images on the device, as a share of one epoch measured by the bench in the
    configuration a run uses by default (precision auto, CUDA graph where it applies)."""
    from ..device import resolve_device, resolve_precision, uses_cuda_graph
    from ..metrics import classifier_path, measure_generator
    from ..models import build_generator

    if not classifier_path("mnist").is_file():
        r["error"] = f"no quality classifier at {classifier_path('mnist')}"
        return "skipped"
    bench = c.data["parts"].get("bench", {}).get("result", {}).get("configs", [])
    for arch, preset in BENCH_PRESETS.items():
        cfg = TrainConfig.from_preset(preset, device=c.device, **c.plan.model_overrides)
        if c.plan.tiny:
            cfg = cfg.replace(eval_samples=c.plan.train_overrides["eval_samples"])
        device = resolve_device(cfg)
        g = build_generator(cfg).to(device)  # untrained: scoring costs the same whatever G has learned
        # Warm-up at the same count: loads the classifier and its statistics once, as a run does, and lets cuDNN
        # time its algorithms for these batch shapes, which a run pays in its first epoch only (warmed at another
        # count, the timing was mostly that autotuning: BENCHMARKS.md).
        measure_generator(g, cfg, cfg.eval_samples)
        _sync(device)
        t = time.monotonic()
        measure_generator(g, cfg, cfg.eval_samples)  # returns host floats: the device's work is inside the timing
        score_s = time.monotonic() - t
        # The epoch the scoring follows: the bench row of this arch as a run trains by default here.
        auto, graph = resolve_precision(cfg, device), uses_cuda_graph(cfg, device)
        epoch = next((b for b in bench if b["arch"] == arch and b.get("status") == "ok" and not b["compile"]
                      and bool(b.get("cuda_graph")) == graph and b["precision"] == auto), None)
        r[arch] = {"eval_samples": cfg.eval_samples, "score_s": round(score_s, 3)}
        if epoch:
            r[arch].update(epoch_s=epoch["product_s_per_epoch"], epoch_precision=auto, epoch_cuda_graph=graph,
                           share_of_epoch_pct=round(100 * score_s / epoch["product_s_per_epoch"], 1))
        else:
            r[arch]["epoch_s"] = None  # the bench has no row of the default configuration to divide by
        c.log(f"quality_cost: {arch}: {cfg.eval_samples} samples scored in {score_s:.2f} s"
              + (f", {r[arch]['share_of_epoch_pct']} % of an epoch" if epoch else ""))
        c.save()
    return None


def _fast_path(cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """The fast-path settings a run of `cfg` turns on: TF32 flags and whether its conv weights are NHWC."""
    from ..step import build_gan

    m = build_gan(cfg, device)  # what the run builds
    convs = [p for p in (*m.g.parameters(), *m.d.parameters()) if p.dim() == 4]
    # A one-channel kernel is contiguous in both layouts, so NHWC shows as: all are, and some are not also NCHW.
    nhwc = all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    return {**_tf32(), "channels_last": bool(convs) and nhwc and not all(p.is_contiguous() for p in convs)}


def _training_sink(c: Check, r: dict[str, Any], events: Callable[[Any], None], t0: float) -> Callable[[Any], None]:
    """A sink that keeps every event in `events` and records, as they come, the device, each epoch's scores (times
    from `t0`, the training's start) and the newest sample grid (training_grid.npy)."""
    from ..events import EpochQuality, EpochSamples, Started

    last = t0

    def sink(ev: Any) -> None:
        nonlocal last
        events(ev)
        if isinstance(ev, Started):
            r.update(device=ev.device, precision=ev.precision, cuda_graph=ev.cuda_graph)
        elif isinstance(ev, EpochQuality):
            now = time.monotonic()
            q = ev.quality
            r["epochs"].append({
                "epoch": ev.epoch, "step": ev.step, "fd": q["fd"], "inception_score": q["inception_score"],
                "class_share_min": min(q["class_shares"]), "class_share_max": max(q["class_shares"]),
                "score_s": round(ev.seconds, 3),
                "epoch_s": round(now - last, 3),  # since the previous scores: training, grid and scoring
                "wall_s": round(now - t0, 2)})
            last = now
            c.log(f"training: epoch {ev.epoch}: FD {q['fd']:.2f}, IS {q['inception_score']:.2f} "
                  f"({now - t0:.1f} s)")
            c.save()
        elif isinstance(ev, EpochSamples):
            r["last_grid_epoch"] = ev.epoch
            grid = ev.images
            atomic_write(c.out / "training_grid.npy", lambda tmp: _save_npy(tmp, grid))
    return sink


def part_training(c: Check, r: dict[str, Any], data_dir: str | None = None) -> str | None:
    """dcgan-sn-info (full width; tiny: a few steps of a small one) scored every epoch until the budget's end."""
    from ..data import load_dataset
    from ..device import resolve_device
    from ..events import Done, Failed, ListSink, StepMetrics, Stopped
    from ..trainer import BEST_GENERATOR, train

    cfg = TrainConfig.from_preset(TRAIN_PRESET, device=c.device, **c.plan.train_overrides)
    device = resolve_device(cfg)
    left = c.remaining() - c.plan.margin_s
    r.update(preset=TRAIN_PRESET, config=cfg.to_dict(), epochs=[])
    if not c.plan.tiny and left < 30:
        r["error"] = f"only {max(left, 0):.0f} s of the budget left"
        return "skipped"
    r["fast_path"] = _fast_path(cfg, device)
    images, labels = load_dataset(cfg.dataset, "train", data_dir, limit=cfg.train_subset)
    _reset_peak(device)
    events = ListSink()
    t0 = time.monotonic()
    sink = _training_sink(c, r, events, t0)
    # The last part: its timer may set the check's own stop event, which SIGTERM sets too.
    timer = threading.Timer(max(0.0, left), c.stop.set)
    timer.start()
    try:
        # Checkpoints go to a scratch folder; what comes back is the best epoch's generator (G and D, ~10 MB at
        # full width), so a GPU run's result can be scored, sampled and shipped here.
        train(cfg, sink, c.stop, images=images, labels=labels, out_dir=c.out / "training-run")
    finally:
        timer.cancel()
        best = c.out / "training-run" / BEST_GENERATOR
        if best.is_file():
            os.replace(best, c.out / BEST_GENERATOR)
            r["best_generator"] = {"file": BEST_GENERATOR, "mib": round((c.out / BEST_GENERATOR).stat().st_size
                                                                       / 2**20, 1)}
        shutil.rmtree(c.out / "training-run", ignore_errors=True)
    end = events[-1]
    steps = events.of(StepMetrics)
    r.update(outcome=type(end).__name__, stopped_at_epoch=end.epoch if isinstance(end, (Done, Stopped)) else None,
             steps=end.step, wall_s=round(time.monotonic() - t0, 2), peak_mib=_peak_mib(device),
             mean_img_s=round(sum(s.images_per_sec for s in steps) / len(steps), 1) if steps else None)
    if isinstance(end, Failed):
        r["error"] = end.reason
        return "error"
    if r["epochs"]:
        best = min(r["epochs"], key=lambda e: e["fd"] if math.isfinite(e["fd"]) else math.inf)
        r["best"] = {"epoch": best["epoch"], "fd": best["fd"], "wall_s": best["wall_s"]}
    return None


def _save_npy(tmp: str, array: Any) -> None:
    import numpy as np

    with open(tmp, "wb") as f:
        np.save(f, array)


PARTS: dict[str, Callable[..., str | None]] = {
    "environment": part_environment, "cuda_tests": part_cuda_tests, "bench": part_bench,
    "generation": part_generation, "quality_cost": part_quality_cost, "training": part_training}


@contextlib.contextmanager
def _sigterm_sets(event: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM (a time limit about to kill this process) sets `event` instead of killing at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, lambda *_: event.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_check(out: Path, device: str | None = None, tiny: bool = False, minutes: float | None = None,
              data_dir: str | None = None) -> int:
    """Run every part into `out`/gpu_check.json and gpu_check.log; 0 if all passed, 1 if any failed."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    shared = ROOT.parent / "shared" / "datasets"  # the GPU machine's checkout travels with ../shared
    if data_dir is None and not os.environ.get("GAN_DATA_DIR") and shared.is_dir():
        data_dir = str(shared)
    plan = Plan.make(tiny, minutes)
    c = Check(out, device, plan)
    c.log(f"gpu-check: {c.data['mode']} on {device}, budget {plan.budget_s:.0f} s, writing {out / JSON_NAME}")
    with _sigterm_sets(c.stop):
        for name, fn in PARTS.items():
            if c.stop.is_set():
                c.data["parts"][name] = {"status": "stopped", "error": "SIGTERM came before this part"}
                continue
            if name != "environment" and c.data["parts"]["environment"]["status"] != "ok":
                c.data["parts"][name] = {"status": "skipped", "error": "the environment part failed"}
                continue
            if name in ("bench", "training"):
                c.part(name, partial(fn, data_dir=data_dir))
            else:
                c.part(name, fn)
    statuses = {name: p["status"] for name, p in c.data["parts"].items()}
    c.data["ok"] = all(s in ("ok", "skipped") for s in statuses.values())
    c.log("gpu-check: " + ", ".join(f"{k} {v}" for k, v in statuses.items())
          + f"; {time.monotonic() - c.t0:.1f} s in all")
    c.close()
    return 0 if c.data["ok"] else 1
