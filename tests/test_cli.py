import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "gan_core", *args], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    p = cli("train", "--preset", "seed003-dcgan", "--epochs", "2", "--train-subset", "256", "--batch-size", "64",
            "--width-mult", "0.25", "--device", "cpu", "--out", str(out))
    assert "done at epoch 2, step 8" in p.stdout
    assert "step/s" in p.stderr or "it/s" in p.stderr or "8/8" in p.stderr  # tqdm progress
    return out


def test_train_writes_config_samples_checkpoints_and_generator(trained):
    assert json.loads((trained / "config.json").read_text())["arch"] == "dcgan"
    assert sorted(p.name for p in (trained / "samples").iterdir()) == ["epoch-0001.png", "epoch-0002.png"]
    assert (trained / "generator.safetensors").is_file() and len(list((trained / "checkpoints").glob("*.safetensors")))


def test_resume_from_a_run_folder_extends_training(trained, tmp_path):
    p = cli("train", "--resume", str(trained), "--epochs", "3", "--out", str(trained))
    assert "done at epoch 3, step 12" in p.stdout


def test_sample_npy_is_float32_in_range_and_seeded(trained, tmp_path):
    for name in ("a", "b", "c"):
        seed = "7" if name != "c" else "8"
        cli("sample", "--checkpoint", str(trained / "generator.safetensors"), "--n", "10", "--seed", seed,
            "--out", str(tmp_path / f"{name}.npy"))
    a, b, c = (np.load(tmp_path / f"{n}.npy") for n in "abc")
    assert a.shape == (10, 28, 28) and a.dtype == np.float32 and a.min() >= -1 and a.max() <= 1
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sample_png_grid(trained, tmp_path):
    cli("sample", "--checkpoint", str(trained / "generator.safetensors"), "--n", "16", "--out", str(tmp_path / "g.png"))
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (["train", "--preset", "seed000-dense", "--lr-g", "5", "--out", "X"], "error: lr_g: 5.0 is out of range"),
    (["train", "--batch-size", "many", "--out", "X"], "error: batch_size: expected a whole number, got 'many'"),
    (["train", "--resume", "no/such/dir", "--out", "X"], "no/such/dir: no such checkpoint file"),
    (["sample", "--checkpoint", "nope.safetensors", "--out", "x.npy"], "error: nope.safetensors: no such checkpoint"),
    (["sample", "--checkpoint", "nope.safetensors", "--out", "x.jpg"], "error: --out: x.jpg must end in .npy"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, message, tmp_path):
    p = cli(*args, check=False)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr
    assert not (ROOT / "X").exists()


def test_bench_reports_both_loops_and_their_ratio():
    p = cli("bench", "--arch", "dense", "--steps", "8", "--json")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["reference_img_s"] > 0 and r["product_img_s"] > 0
    assert r["speedup"] == pytest.approx(r["product_img_s"] / r["reference_img_s"], rel=0.01)
    assert r["arch"] == "dense" and r["device"] == "cpu" and r["steps"] == 8


def test_bench_store_reports_the_cost_of_the_worker_sink():
    p = cli("bench", "--arch", "dense", "--steps", "20", "--store", "--json")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["no_store_img_s"] > 0 and r["with_store_img_s"] > 0
    assert r["store_overhead_pct"] == pytest.approx(100 * (1 - r["with_store_img_s"] / r["no_store_img_s"]), abs=0.01)


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "cond"
    cli("train", "--arch", "dense", "--conditional", "--g-widths", "32", "--d-widths", "32", "--epochs", "1",
        "--train-subset", "256", "--batch-size", "64", "--eval-samples", "0", "--device", "cpu", "--out", str(out))
    return out / "generator.safetensors"


def test_sample_label_draws_the_class_asked_for(conditional, tmp_path):
    p = cli("sample", "--checkpoint", str(conditional), "--n", "4", "--label", "7", "--out", str(tmp_path / "7.npy"))
    assert "of class 7 (7)" in p.stdout
    cli("sample", "--checkpoint", str(conditional), "--n", "4", "--label", "3", "--out", str(tmp_path / "3.npy"))
    assert not np.array_equal(np.load(tmp_path / "7.npy"), np.load(tmp_path / "3.npy"))  # same seed, other class


def test_sample_label_is_required_by_conditional_and_refused_by_unconditional(conditional, trained, tmp_path):
    for args, message in (
            ([str(conditional)], "error: label: this generator is conditional; choose a class 0-9"),
            ([str(conditional), "--label", "10"], "error: label: 10 is not a class"),
            ([str(trained / "generator.safetensors"), "--label", "7"], "error: label: this generator is "
                                                                        "unconditional")):
        out = tmp_path / "x.png"
        p = cli("sample", "--checkpoint", *args, "--out", str(out), check=False)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr
        assert not out.exists()  # refused before anything was written


def test_evaluate_scores_the_shipped_generator_against_the_real_floor():
    from gan_core.checkpoint import shipped_generators
    path = shipped_generators()["dcgan-conditional-mnist"]
    r = json.loads(cli("evaluate", "--checkpoint", str(path), "--n", "500", "--json").stdout.strip().splitlines()[-1])
    gen, real = r["generated"], r["real_test"]
    assert gen["n"] == 500 and real["n"] == 500 and r["dataset"] == "mnist"
    assert r["fd_ratio"] == pytest.approx(gen["fd"] / real["fd"])
    assert 9.0 < real["inception_score"] <= 10.0 and sum(gen["class_shares"]) == pytest.approx(1.0)
    assert gen["fidelity"] > 0.9  # a trained conditional generator draws the classes it is asked for
    text = cli("evaluate", "--checkpoint", str(path), "--n", "500").stdout
    assert "Fréchet distance" in text and "FD ratio to the real floor" in text and "class fidelity" in text


def test_evaluate_refuses_too_few_samples_and_a_missing_file():
    p = cli("evaluate", "--checkpoint", "nope.safetensors", "--n", "5", check=False)
    assert p.returncode == 2 and "--n: 5 is out of range; allowed 100 to 50000" in p.stderr
    p = cli("evaluate", "--checkpoint", "nope.safetensors", check=False)
    assert p.returncode == 2 and "nope.safetensors: no such checkpoint" in p.stderr
