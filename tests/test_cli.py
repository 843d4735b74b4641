import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Should a command miss the data, its download fallback knocks on a closed loopback port, never the internet.
LOOPBACK_MIRROR = {"GAN_DATA_MIRROR": "http://127.0.0.1:9/"}


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "gan_core", *args], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1", **LOOPBACK_MIRROR}, timeout=300)
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


@pytest.mark.slow
def test_train_writes_config_samples_checkpoints_and_generator(trained):
    assert json.loads((trained / "config.json").read_text())["arch"] == "dcgan"
    assert sorted(p.name for p in (trained / "samples").iterdir()) == ["epoch-0001.png", "epoch-0002.png"]
    assert (trained / "generator.safetensors").is_file() and len(list((trained / "checkpoints").glob("*.safetensors")))


@pytest.mark.slow
def test_resume_from_a_run_folder_extends_training(trained, tmp_path):
    p = cli("train", "--resume", str(trained), "--epochs", "3", "--out", str(trained))
    assert "done at epoch 3, step 12" in p.stdout


@pytest.mark.slow
def test_sample_npy_is_float32_in_range_and_seeded(trained, tmp_path):
    for name in ("a", "b", "c"):
        seed = "7" if name != "c" else "8"
        cli("sample", "--checkpoint", str(trained / "generator.safetensors"), "--n", "10", "--seed", seed,
            "--out", str(tmp_path / f"{name}.npy"))
    a, b, c = (np.load(tmp_path / f"{n}.npy") for n in "abc")
    assert a.shape == (10, 28, 28) and a.dtype == np.float32 and a.min() >= -1 and a.max() <= 1
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.slow
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
@pytest.mark.slow
def test_bad_input_is_one_clear_line_and_exit_2(args, message, tmp_path):
    p = cli(*args, check=False)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr
    assert not (ROOT / "X").exists()


@pytest.mark.slow
def test_bench_reports_both_loops_and_their_ratio():
    p = cli("bench", "--arch", "dense", "--steps", "8", "--json")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["reference_img_s"] > 0 and r["product_img_s"] > 0
    assert r["speedup"] == pytest.approx(r["product_img_s"] / r["reference_img_s"], rel=0.01)
    assert r["arch"] == "dense" and r["device"] == "cpu" and r["steps"] == 8


@pytest.mark.slow
def test_bench_store_reports_the_cost_of_the_worker_sink():
    p = cli("bench", "--arch", "dense", "--steps", "20", "--store", "--json")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["no_store_img_s"] > 0 and r["with_store_img_s"] > 0
    assert r["store_overhead_pct"] == pytest.approx(100 * (1 - r["with_store_img_s"] / r["no_store_img_s"]), abs=0.01)


@pytest.mark.slow
def test_bench_roofline_counts_the_flops_of_a_real_step():
    """--roofline once raised TypeError (train_step's signature changed under it): FLOPs/image of the tiny dense
    step must match its matmuls, and the achieved fraction is achieved / peak. (With GAN_CPU_BF16=1 on a CPU without
    bf16 units, emulated bf16's small peak once made the fraction miss the printed numbers' by 1 %, issue 26; not
    run both ways here: emulated, the 2048² matmul peak alone takes ~25 s.)"""
    p = cli("bench", "--arch", "dense", "--steps", "8", "--roofline", "--json")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["mflop_per_image"] > 0 and r["img_s"] > 0 and r["matmul_peak_gflops"] > 0
    assert r["fraction_of_peak"] == pytest.approx(r["achieved_gflops"] / r["matmul_peak_gflops"], abs=2e-3)


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "cond"
    cli("train", "--arch", "dense", "--conditional", "--g-widths", "32", "--d-widths", "32", "--epochs", "1",
        "--train-subset", "256", "--batch-size", "64", "--eval-samples", "0", "--device", "cpu", "--out", str(out))
    return out / "generator.safetensors"


@pytest.mark.slow
def test_sample_label_draws_the_class_asked_for(conditional, tmp_path):
    p = cli("sample", "--checkpoint", str(conditional), "--n", "4", "--label", "7", "--out", str(tmp_path / "7.npy"))
    assert "of class 7 (7)" in p.stdout
    cli("sample", "--checkpoint", str(conditional), "--n", "4", "--label", "3", "--out", str(tmp_path / "3.npy"))
    assert not np.array_equal(np.load(tmp_path / "7.npy"), np.load(tmp_path / "3.npy"))  # same seed, other class


@pytest.mark.slow
def test_sample_label_is_required_by_conditional_and_refused_by_unconditional(conditional, trained, tmp_path,
                                                                              capsys):
    # One real process, for the exit code and stderr a shell sees; the other refusals in this process (a torch
    # import each took ~5 s of the test's 18).
    out = tmp_path / "x.png"
    p = cli("sample", "--checkpoint", str(conditional), "--out", str(out), check=False)
    assert p.returncode == 2 and "error: label: this generator is conditional; choose a class 0-9" in p.stderr
    assert "Traceback" not in p.stderr and not out.exists()  # refused before anything was written
    for args, message in (
            ([str(conditional), "--label", "10"], "error: label: 10 is not a class"),
            ([str(trained / "generator.safetensors"), "--label", "7"], "error: label: this generator is "
                                                                        "unconditional")):
        rc, _, err = run_main(["sample", "--checkpoint", *args, "--out", str(out)], capsys)
        assert rc == 2 and message in err and "Traceback" not in err
        assert not out.exists()  # refused before anything was written


@pytest.mark.slow
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


@pytest.mark.slow
def test_evaluate_refuses_too_few_samples_and_a_missing_file():
    from gan_core.config import TrainConfig
    most = TrainConfig.__dataclass_fields__["eval_samples"].metadata["max"]  # the bound comes from the field
    p = cli("evaluate", "--checkpoint", "nope.safetensors", "--n", "5", check=False)
    assert p.returncode == 2 and f"--n: 5 is out of range; allowed 100 to {most}" in p.stderr
    p = cli("evaluate", "--checkpoint", "nope.safetensors", check=False)
    assert p.returncode == 2 and "nope.safetensors: no such checkpoint" in p.stderr


# --- refusals, in-process: one `error:` line (or argparse's usage + error), exit 2, no traceback, nothing written ---

def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """`python -m gan_core ARGV` in this process: (exit code, stdout, stderr)."""
    from gan_core.cli import main
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own refusals
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.slow
def test_cli_submit_rejects_bad_input_and_writes_no_row(store, capsys):
    # One real process, for the exit code a shell sees; the other refusals in this process (no torch import each).
    p = subprocess.run([sys.executable, "-m", "gan_core", "submit", "--preset", "seed999"], cwd=ROOT,
                       capture_output=True, text=True, env=os.environ.copy())
    assert p.returncode == 2 and "invalid choice" in p.stderr
    for args, msg in ((["--epochs", "0"], "epochs: 0 is out of range"),
                      (["--arch", "dense", "--d-widths", "a,b"], "d_widths: expected a non-empty list")):
        rc, _, err = run_main(["submit", *args], capsys)
        assert rc == 2 and msg in err
    assert store.list_runs() == []
    rc, out, _ = run_main(["submit", "--preset", "seed000-dense", "--name", "ok"], capsys)
    assert rc == 0 and store.get(int(out)).name == "ok"


def snapshot(folder: Path) -> dict[str, bytes | None] | None:
    """Every path under `folder` with its bytes (None for folders); None if `folder` does not exist."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.fixture
def places(tmp_path):
    """A file, a folder and a JSON file or three to point flags at."""
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "binary.json").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "deep-field.json").write_text('{"g_widths": ' + "[" * 200 + "1" + "]" * 200 + "}")
    return tmp_path


@pytest.mark.parametrize("argv,message", [
    (["sample", "--checkpoint", "g.safetensors", "--seed", "18446744073709551616", "--out", "x.png"],
     "argument --seed: 18446744073709551616 is out of range; allowed 0 to 2147483647"),
    (["sample", "--checkpoint", "g.safetensors", "--seed", "-1", "--out", "x.png"],
     "argument --seed: -1 is out of range; allowed 0 to 2147483647"),
    (["sample", "--checkpoint", "g.safetensors", "--n", "0", "--out", "x.png"],
     "argument --n: 0 is out of range; allowed 1 to 10000"),
    (["sample", "--checkpoint", "g.safetensors", "--n", "-64", "--out", "x.png"],
     "argument --n: -64 is out of range; allowed 1 to 10000"),
    (["evaluate", "--checkpoint", "g.safetensors", "--seed", str(2**31)],
     "argument --seed: 2147483648 is out of range; allowed 0 to 2147483647"),
    (["stop", "--run", str(2**70)], "argument --run: 1180591620717411303424 is out of range; allowed 1 to "
                                   "9223372036854775807"),
    (["resume", "--run", str(2**70)], "argument --run: 1180591620717411303424 is out of range"),
    (["resume", "--run", "0"], "argument --run: 0 is out of range; allowed 1 to 9223372036854775807"),
    (["resume", "--run", "1", "--extra-epochs", "-3"], "argument --extra-epochs: -3 is out of range; allowed 0 to"),
    (["worker", "--once", "--cap", "-1"], "argument --cap: -1 is out of range; allowed 1 to"),
    (["worker", "--once", "--cap", "many"], "argument --cap: expected a whole number from 1 to"),
    (["bench", "--threads", "0"], "argument --threads: 0 is out of range; allowed 1 to 1024"),
    (["gpu-check", "--out", "new", "--minutes", "nan"], "argument --minutes: nan is out of range; allowed 0.5 to 600"),
    (["gpu-check", "--out", "new", "--minutes", "soon"], "argument --minutes: expected a number from 0.5 to 600"),
    (["gpu-check", "--tiny", "--out", "a-file"], "error: --out: a-file is a file"),
    (["train", "--config", "a-folder", "--out", "new"], "error: --config: a-folder is a folder; give a JSON file"),
    (["train", "--config", "list.json", "--out", "new"], "error: --config: list.json holds a JSON list, not an "
                                                         "object of config fields"),
    (["train", "--config", "binary.json", "--out", "new"], "error: --config: binary.json is not UTF-8 text"),
    (["train", "--config", "deep.json", "--out", "new"], "error: --config: deep.json nests deeper than 4 levels"),
    (["submit", "--config", "deep-field.json"], "error: --config: deep-field.json nests deeper than 4 levels"),
    (["train", "--config", "missing.json", "--out", "new"], "error: --config: missing.json: no such file"),
    (["train", "--out", "a-file"], "error: --out: a-file is a file; train writes a run folder"),
    (["train", "--out", "a-file/run"], "error: --out: a-file/run lies under"),
    (["sample", "--checkpoint", "g.safetensors", "--out", "a-folder/x.png/"], "error: --out: a-folder/x.png"),
    (["sample", "--checkpoint", "g.safetensors", "--out", "a-file/x.png"], "error: --out: a-file/x.png lies under"),
])
def test_bad_flags_and_files_are_refused_at_the_edge(argv, message, places, capsys, monkeypatch):
    monkeypatch.chdir(places)
    monkeypatch.setenv("GAN_HOME", str(places / "home"))
    (places / "a-folder" / "x.png").mkdir()
    before = snapshot(places)
    rc, out, err = run_main(argv, capsys)
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert snapshot(places) == before  # refused before anything was written


def _rewrite(src: Path, dst: Path, drop: tuple[str, ...] = (), tensors: dict | None = None,
             header: dict | None = None) -> Path:
    """A copy of checkpoint `src` with tensors dropped or replaced and header fields replaced (None removes one)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from gan_core.checkpoint import load_tensors
    with safe_open(str(src), framework="pt") as f:
        head = json.loads(f.metadata()["gan_studio"])
    for k, v in (header or {}).items():
        head.pop(k, None) if v is None else head.__setitem__(k, v)
    t = {k: v for k, v in load_tensors(src).items() if k not in drop}
    save_file({**t, **(tensors or {})}, str(dst), metadata={"gan_studio": json.dumps(head)})
    return dst


@pytest.fixture
def hostile_resumes(trained, tmp_path):
    """Files `train --resume` must refuse, by what is wrong with them."""
    import torch

    from gan_core.trainer import latest_checkpoint
    ckpt = latest_checkpoint(trained)
    return {
        "generator export": trained / "generator.safetensors",
        "wrong D shape": _rewrite(ckpt, tmp_path / "d.safetensors",
                                  tensors={"D.net.0.weight": torch.zeros(3, 1, 5, 5)}),
        "no torch RNG": _rewrite(ckpt, tmp_path / "rng.safetensors", drop=("rng.torch_cpu",)),
        "no loop RNG": _rewrite(ckpt, tmp_path / "loop.safetensors", drop=("rng.loop",)),
        "no optimizer groups": _rewrite(ckpt, tmp_path / "groups.safetensors", header={"param_groups": None}),
        "two optimizer groups": _rewrite(ckpt, tmp_path / "two.safetensors", header={"param_groups": {
            "opt_g": [{"params": [0]}, {"params": [1]}], "opt_d": []}}),
    }


@pytest.mark.parametrize("what,message", [
    ("generator export", "this is a generator export, not a full checkpoint; it cannot be resumed"),
    ("wrong D shape", "weights do not fit the dcgan discriminator its header describes"),
    ("no torch RNG", "its RNG state rng.torch_cpu is missing"),
    ("no loop RNG", "its RNG state rng.loop is missing"),
    ("no optimizer groups", "opt_g: its optimizer param_groups are missing or malformed"),
    ("two optimizer groups", "opt_g: its optimizer param_groups are missing or malformed"),
])
def test_resume_of_a_file_that_cannot_resume_is_refused_before_writing(what, message, hostile_resumes, tmp_path,
                                                                      capsys):
    out = tmp_path / "new-run"
    rc, _, err = run_main(["train", "--resume", str(hostile_resumes[what]), "--out", str(out)], capsys)
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert err.startswith("error: ") and not out.exists()


def test_a_refused_resume_into_its_own_folder_rewrites_nothing(trained, capsys):
    before = snapshot(trained)
    rc, _, err = run_main(["train", "--resume", str(trained), "--out", str(trained), "--latent-dim", "64"], capsys)
    assert rc == 2 and "latent_dim: checkpoint has 100, config has 64" in err
    assert snapshot(trained) == before  # config.json included: it used to be rewritten before the check


def test_resume_refuses_a_preset_instead_of_ignoring_it(trained, tmp_path, capsys):
    # A preset is a whole recipe; a resumed run keeps its checkpoint's. It used to be dropped without a word.
    before = snapshot(trained)
    rc, _, err = run_main(["train", "--resume", str(trained), "--preset", "seed000-dense", "--epochs", "9",
                           "--out", str(tmp_path / "run")], capsys)
    assert rc == 2 and "--preset seed000-dense cannot be combined with --resume" in err and "Traceback" not in err
    assert "--config FILE" in err and snapshot(trained) == before and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_resume_applies_a_config_file_and_refuses_an_architecture_change_in_it(trained, tmp_path, capsys):
    (tmp_path / "wider.json").write_text('{"latent_dim": 64}')
    rc, _, err = run_main(["train", "--resume", str(trained), "--config", str(tmp_path / "wider.json"),
                           "--out", str(tmp_path / "refused")], capsys)
    assert rc == 2 and "latent_dim: checkpoint has 100, config has 64" in err and not (tmp_path / "refused").exists()
    (tmp_path / "longer.json").write_text('{"epochs": 5, "lr_g": 0.0005}')
    out = tmp_path / "continued"
    p = cli("train", "--resume", str(trained), "--config", str(tmp_path / "longer.json"), "--lr-g", "0.0003",
            "--out", str(out))
    assert "done at epoch 5" in p.stdout  # the file's epochs applied...
    saved = json.loads((out / "config.json").read_text())
    assert saved["epochs"] == 5 and saved["lr_g"] == 0.0003 and saved["arch"] == "dcgan"  # ...flags over the file


def test_a_fresh_run_into_a_folder_with_checkpoints_is_refused(trained, capsys):
    before = snapshot(trained)
    rc, _, err = run_main(["train", "--preset", "seed000-dense", "--out", str(trained)], capsys)
    assert rc == 2 and f"--out: {trained} already holds a run's checkpoints" in err and f"--resume {trained}" in err
    assert snapshot(trained) == before


@pytest.mark.slow
def test_train_without_data_gives_up_within_seconds_and_says_where_it_looked(tmp_path, capsys, monkeypatch):
    import socket
    import time

    from gan_core import data
    silent = socket.socket()  # a mirror that accepts the connection and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    monkeypatch.setenv("GAN_DATA_MIRROR", f"http://127.0.0.1:{silent.getsockname()[1]}/mnist/")
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(data.SYSTEM_DIRS, "mnist", [])
    monkeypatch.delenv("GAN_DATA_DIR")  # no folder named: the cache, then the download (a named one is all there is)
    out = tmp_path / "run"
    t = time.monotonic()
    try:
        rc, _, err = run_main(["train", "--preset", "seed000-dense", "--out", str(out)], capsys)
    finally:
        silent.close()
    assert time.monotonic() - t < 15  # it used to wait minutes in torchvision's download
    assert rc == 2 and err.startswith("error: mnist train data not found") and "Traceback" not in err
    for expected in (str(tmp_path / "cache" / "MNIST" / "raw"), "timed out",
                     "--data-dir", "GAN_DATA_DIR", "GAN_DATA_MIRROR", "GAN_DATA_DOWNLOAD=0"):
        assert expected in err, expected
    assert not out.exists()  # nothing written for a run that could not start


def test_train_refuses_a_data_dir_that_does_not_exist_or_lacks_the_data_though_data_is_found_elsewhere(tmp_path,
                                                                                                      capsys):
    # `train --data-dir /nonexistent` trained on the MNIST of GAN_DATA_DIR (set here by conftest) or of the cache
    # (issue 26): the folder a person names must exist and hold the dataset, or the run is refused before it trains.
    empty = tmp_path / "empty"
    empty.mkdir()
    for named, message in ((tmp_path / "nonexistent", f"error: {tmp_path / 'nonexistent'} does not exist or is not "
                                                      f"a folder (named by --data-dir)"),
                           (empty, "error: mnist train data is not in the folder(s) --data-dir names")):
        out = tmp_path / f"run-{named.name}"
        rc, stdout, err = run_main(["train", "--arch", "dense", "--g-widths", "32", "--d-widths", "32",
                                    "--max-steps", "1", "--device", "cpu", "--data-dir", str(named), "--out",
                                    str(out)], capsys)
        assert rc == 2 and err.startswith(message) and str(named) in err, err
        assert "Traceback" not in err and "training on" not in stdout and not out.exists()
    assert list(empty.iterdir()) == []  # the named folder is only read


@pytest.mark.slow
def test_status_lines_sit_above_the_bar_and_every_line_counts_epochs_alike(tmp_path):
    # One pipe for both streams, block-buffered stdout (no PYTHONUNBUFFERED), as `train ... 2>&1 | tee log` gets:
    # tqdm.write's lines reached the log only at exit, after bar lines drawn since (issue 26). And a 2-step run said
    # "epoch 1: FD ..." then "done at epoch 0": the end events counted completed epochs, the rest the epoch in hand.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "gan_core", "train", "--arch", "dense", "--g-widths", "32",
                        "--d-widths", "32", "--batch-size", "64", "--train-subset", "256", "--max-steps", "2",
                        "--eval-samples", "100", "--device", "cpu", "--out", str(out)],
                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                       env={**env, **LOOPBACK_MIRROR})
    log = p.stdout
    assert p.returncode == 0, log
    status = [line for line in log.replace("\r", "\n").split("\n")
              if line.startswith(("training on", "epoch ", "checkpoint:", "done at"))]
    assert [s.split(" ")[0] for s in status] == ["training", "epoch", "checkpoint:", "done"], log
    for line in status:  # each a whole line of its own: begun after the bar was cleared, ended by a newline
        at = log.index(line)
        assert (at == 0 or log[at - 1] in "\r\n") and log[at + len(line)] == "\n", repr(log)
    # ...written when it happened: before the bar's last drawing (at its close), not flushed at exit after it
    assert log.index("epoch 1: FD") < log.rindex("2/2 [") < log.index("done at"), repr(log)
    assert status[1].startswith("epoch 1: FD ") and status[3].startswith("done at epoch 1, step 2;"), status
    from gan_core.checkpoint import load_generator, read_header
    assert load_generator(out / "generator.safetensors")[2]["epoch"] == 1  # the export says the same epoch
    ckpt = read_header(out / "checkpoints" / "ckpt-00000002.safetensors")
    assert (ckpt["epoch"], ckpt["pos"]) == (0, 2)  # the checkpoint keeps what resume needs: 0 done, 2 steps into 1
    p = cli("evaluate", "--checkpoint", str(out / "checkpoints" / "ckpt-00000002.safetensors"), "--n", "100",
            "--no-copy-test")
    assert "epoch 1)" in p.stdout.splitlines()[0], p.stdout


def test_malformed_store_and_worker_settings_are_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GAN_DB_URL", "postgresql+psycopg://gan:hunter2@db-host:fivefour/gan")
    rc, _, err = run_main(["runs"], capsys)
    assert rc == 2 and err.startswith("error: the run database URL postgresql+psycopg://gan:***@db-host:fivefour/gan")
    assert "hunter2" not in err and "Traceback" not in err
    monkeypatch.setenv("GAN_DB_URL", "nosuchdb://gan:hunter2@db-host/gan")
    rc, _, err = run_main(["submit", "--preset", "seed000-dense"], capsys)
    assert rc == 2 and "not usable: Can't load plugin" in err and "hunter2" not in err
    monkeypatch.delenv("GAN_DB_URL")
    for name, value, message in (("GAN_MAX_CONCURRENT", "abc", "GAN_MAX_CONCURRENT='abc' is not a whole number"),
                                 ("GAN_HEARTBEAT_S", "soon", "GAN_HEARTBEAT_S='soon' is not a number"),
                                 ("GAN_HEARTBEAT_TIMEOUT", "-5", "GAN_HEARTBEAT_TIMEOUT='-5' must be a positive")):
        monkeypatch.setenv(name, value)
        rc, out, err = run_main(["worker", "--once"], capsys)
        assert rc == 2 and err.startswith(f"error: {message}") and "Traceback" not in err, err
        assert "trained" not in out  # refused before the worker started
        monkeypatch.delenv(name)


# --- evaluate's copy test (issue 18, memorisation) and the newer quality keys ---------------------------------------

@pytest.mark.slow
def test_evaluate_reports_the_copy_test_beside_real_test_digits(trained, capsys):
    ckpt = str(trained / "generator.safetensors")
    rc, out, _ = run_main(["evaluate", "--checkpoint", ckpt, "--n", "100", "--train-limit", "500", "--json"], capsys)
    ct = json.loads(out.strip().splitlines()[-1])["copy_test"]
    assert ct["n"] == 100 and ct["real_n"] == 100 and ct["train_n"] == 500
    assert 0.0 <= ct["flagged"] <= 1.0 and 0.0 < ct["real_flagged"] < 1.0
    # Two epochs on 256 images draw blobs, far from every training digit: farther than real digits are.
    assert ct["median_distance"] > ct["real_median_distance"] > 0 and ct["flagged"] < 0.5
    rc, text, _ = run_main(["evaluate", "--checkpoint", ckpt, "--n", "100", "--train-limit", "500"], capsys)
    line = next(s for s in text.splitlines() if s.startswith("copy test:"))
    assert rc == 0 and "closer to a training digit than real digits are: " in line
    assert f"{ct['flagged']:.1%} of samples vs {ct['real_flagged']:.1%} of real test digits" in line


@pytest.mark.slow
def test_evaluate_prints_precision_recall_and_the_per_class_table_when_metrics_has_them(trained, capsys,
                                                                                        monkeypatch):
    from gan_core.metrics import Quality
    plain = Quality.to_dict
    per_class = [{"precision": 0.1 * c, "recall": 0.5, "density": 1.0, "coverage": 0.25, "fd": 3.0 + c}
                 for c in range(10)]

    def newer(self):
        return {**plain(self), "realism": 0.4375, "precision": 0.625, "recall": 0.375, "density": 0.875,
                "coverage": 0.5, "kid": 0.0125,
                "per_class": per_class}  # the table is the generated side's; the real side's is not printed
    monkeypatch.setattr(Quality, "to_dict", newer)
    rc, out, err = run_main(["evaluate", "--checkpoint", str(trained / "generator.safetensors"), "--n", "100",
                             "--no-copy-test"], capsys)
    assert rc == 0, err
    rows = {line[:24].strip(): line[24:].split() for line in out.splitlines()}
    assert rows["precision"][0] == "0.625" and rows["recall"][0] == "0.375" and rows["KID"][0] == "0.013"
    assert rows["density"][0] == "0.875" and rows["coverage"][0] == "0.500"
    assert rows["realism"][0] == "0.438"  # the fidelity that ranks blank images below real digits (issue 26)
    table = out[out.index("per requested class"):].splitlines()[:11]
    assert table[0].split()[3:] == ["precision", "recall", "density", "coverage", "fd"]
    assert table[8].split() == ["7", "0.700", "0.500", "1.000", "0.250", "10.000"]
    keys = ("realism", "precision", "recall", "density", "coverage", "kid", "per_class")
    monkeypatch.setattr(Quality, "to_dict", lambda self: {k: v for k, v in plain(self).items() if k not in keys})
    rc, out, _ = run_main(["evaluate", "--checkpoint", str(trained / "generator.safetensors"), "--n", "100",
                           "--no-copy-test"], capsys)  # a dict without them (metrics before issue 18): no rows
    assert rc == 0 and "Fréchet distance" in out and "precision" not in out and "per requested" not in out
    assert "copy test" not in out  # --no-copy-test


def test_train_says_why_it_stopped_early_and_where_the_best_generator_is(monkeypatch, capsys, tmp_path):
    from conftest import scripted_fd

    from gan_core.cli import main
    scripted_fd(monkeypatch, [20.0, 25.0, 30.0])  # the FD is scripted; the run is real
    out = tmp_path / "run"
    assert main(["train", "--arch", "dense", "--g-widths", "32", "--d-widths", "32", "--epochs", "9",
                 "--train-subset", "128", "--batch-size", "64", "--eval-samples", "100", "--early-stop-patience", "2",
                 "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "precision" in printed.err + printed.out and "best so far" in printed.err + printed.out
    assert "realism " in printed.err + printed.out  # each epoch's line names the fidelity that means "real"
    assert ("done at epoch 3, step 6 (stopped early: the Fréchet distance has not improved for 2 epochs (best 20.00 "
            "at epoch 1") in printed.out
    assert f"best epoch's: {out / 'best-generator.safetensors'}" in printed.out


# --- --reject: the generator's own D drops its least convincing digits (issue 18) ----------------------------------

@pytest.mark.slow
def test_sample_and_evaluate_reject_with_the_files_own_d(trained, tmp_path, capsys):
    from gan_core.checkpoint import load_generator, save_generator

    export = str(trained / "generator.safetensors")  # the trainer's export carries D
    rc, out, err = run_main(["sample", "--checkpoint", export, "--n", "8", "--reject", "1", "--out",
                             str(tmp_path / "kept.npy")], capsys)
    assert rc == 0, err
    assert "rejection 1: kept 8 of 32 candidates" in out
    kept = np.load(tmp_path / "kept.npy")
    assert kept.shape == (8, 28, 28) and kept.dtype == np.float32
    run_main(["sample", "--checkpoint", export, "--n", "8", "--reject", "0", "--out", str(tmp_path / "r0.npy")], capsys)
    run_main(["sample", "--checkpoint", export, "--n", "8", "--out", str(tmp_path / "raw.npy")], capsys)
    assert np.array_equal(np.load(tmp_path / "r0.npy"), np.load(tmp_path / "raw.npy"))  # 0 is the raw draw
    assert not np.array_equal(kept, np.load(tmp_path / "raw.npy"))
    rc, out, err = run_main(["evaluate", "--checkpoint", export, "--n", "100", "--reject", "0.5", "--no-copy-test",
                             "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out.strip().splitlines()[-1])["reject"]["candidates"] == 250
    # A file without D (older exports) is refused with what to use instead, before anything is written.
    g, cfg, _ = load_generator(export)
    bare = tmp_path / "bare.safetensors"
    save_generator(bare, cfg, g, 2, 8)
    rc, _, err = run_main(["sample", "--checkpoint", str(bare), "--n", "4", "--reject", "0.5", "--out",
                           str(tmp_path / "no.png")], capsys)
    assert rc == 2 and "--reject: this generator file carries no discriminator" in err
    assert not (tmp_path / "no.png").exists()
    rc, _, err = run_main(["sample", "--checkpoint", export, "--reject", "1.5", "--out", str(tmp_path / "x.png")],
                          capsys)
    assert rc == 2 and "--reject" in err


# --- sweeps (issue 19): the CLI verbs in this process, on a real store -------------------------------------------
SWEEP_BASE = ["--preset", "seed000-dense", "--epochs", "1", "--train-subset", "256", "--eval-samples", "100"]


@pytest.mark.parametrize("store_env", ["sqlite"], indirect=True)  # the store's sweeps are tested on both backends
def test_sweep_dry_run_prints_the_points_and_queues_nothing(store, capsys):
    rc, out, err = run_main(["sweep", *SWEEP_BASE, "--param", "lr_g=1e-4,2e-4", "--param", "loss=hinge,non_saturating",
                             "--seeds", "2", "--prune", "median", "--dry-run"], capsys)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "sweep: grid over lr_g × loss, 4 points × 2 seed(s), median pruning from epoch 1"
    assert lines[1:5] == ["  point  1: lr_g=0.0001, loss=hinge", "  point  2: lr_g=0.0001, loss=non_saturating",
                          "  point  3: lr_g=0.0002, loss=hinge", "  point  4: lr_g=0.0002, loss=non_saturating"]
    assert lines[5].startswith("8 runs, 16 steps, about ") and lines[5].endswith("TFLOP in all (before pruning)")
    assert store.list_sweeps() == [] and store.list_runs() == []


@pytest.mark.parametrize("store_env", ["sqlite"], indirect=True)
@pytest.mark.parametrize("argv, message", [
    (["--param", "lr_g=1e-4,-1"],
     "error: sweep refused, nothing was queued: point 2 (lr_g=-1): lr_g: -1.0 is out of range"),
    (["--param", "lr_g=1e-4,2e-4", "--prune", "median", "--eval-samples", "0"], "eval_samples must be on"),
    (["--param", "lr_g=1e-5..1e-3"], "error: sweep: a grid needs values, not ranges (lr_g)"),
    (["--param", "nope=1"], "error: sweep: 'nope' is not a config field"),
    (["--param", "lr_g=1e-4,2e-4", "--seeds", "11"], "--seeds"),
    (["--param", "lr_g=1e-5..1e-3:log", "--random", "40", "--seeds", "2"],
     "error: sweep: 40 points × 2 seed(s) = 80 runs, more than the 64"),
])
def test_a_bad_sweep_is_one_error_line_exit_2_and_queues_nothing(store, capsys, argv, message):
    rc, out, err = run_main(["sweep", *SWEEP_BASE, *argv], capsys)
    assert rc == 2 and message in err and "Traceback" not in err and "queued sweep" not in out
    assert store.list_sweeps() == [] and store.list_runs() == []


@pytest.mark.parametrize("store_env", ["sqlite"], indirect=True)
def test_sweep_queues_its_runs_and_sweeps_ranks_them_and_stop_stops_them(store, capsys):
    rc, out, _ = run_main(["sweep", *SWEEP_BASE, "--param", "lr_g=1e-4,2e-4,4e-4", "--seeds", "2", "--name", "lr",
                           "--owner", "ada"], capsys)
    assert rc == 0
    (sweep,) = store.list_sweeps()
    runs = store.sweep_runs(sweep.id)
    assert out.splitlines()[-1] == f"queued sweep {sweep.id}: runs {', '.join(str(r.id) for r in runs)}"
    assert (sweep.name, sweep.owner, len(runs)) == ("lr", "ada", 6)
    assert [(r.sweep_point, r.config.lr_g, r.config.seed) for r in runs] == [
        (p, lr, s) for p, lr in enumerate((1e-4, 2e-4, 4e-4)) for s in (0, 1)]
    # Scores: point 2 (4e-4) best FD mean 10 ± 2.828, point 0 mean 20 ± 0, point 1 scored on one seed only
    for run, fd in zip(runs, (20.0, 20.0, 35.0, None, 12.0, 8.0)):
        if fd is not None:
            store.add_quality(run.id, 1, 2, {"fd": fd, "inception_score": 2.0})
    rc, out, _ = run_main(["sweeps"], capsys)
    assert rc == 0 and out.split() == [str(sweep.id), "lr", "6", "runs", "(6", "queued)"]
    rc, out, _ = run_main(["sweeps", "--sweep", str(sweep.id)], capsys)
    lines = out.splitlines()
    assert rc == 0 and lines[0] == f"sweep {sweep.id} lr: ranked by best FD (mean over seeds)"
    assert [ln.split()[0] for ln in lines[1:]] == ["1.", "2.", "3."]
    assert "10.000 ± 2.828" in lines[1] and lines[1].endswith("lr_g=0.0004")
    assert "20.000 ± 0.000" in lines[2] and lines[2].endswith("lr_g=0.0001")
    assert "35.000" in lines[3] and "±" not in lines[3] and lines[3].endswith("lr_g=0.0002")
    assert f"runs {runs[4].id},{runs[5].id}" in lines[1] and "queued/queued" in lines[1]
    rc, _, err = run_main(["sweeps", "--sweep", str(sweep.id), "--metric", "FID"], capsys)
    assert rc == 2 and "invalid choice: 'FID'" in err
    rc, _, err = run_main(["sweeps", "--sweep", str(sweep.id + 1)], capsys)
    assert rc == 2 and f"error: --sweep {sweep.id + 1}: no such sweep" in err

    lone = store.submit(store.get(runs[0].id).config, name="lone")
    store.claim("w", cap=1)  # the sweep's first run is training
    rc, out, _ = run_main(["stop", "--sweep", str(sweep.id)], capsys)
    assert rc == 0 and out.strip() == f"stop requested for 6 run(s) of sweep {sweep.id}"
    assert [r.status for r in store.sweep_runs(sweep.id)] == ["stopping"] + ["stopped"] * 5
    assert store.get(lone).status == "queued"
    rc, _, err = run_main(["stop", "--sweep", str(sweep.id + 1)], capsys)
    assert rc == 2 and "no such sweep" in err
    rc, _, err = run_main(["stop", "--sweep", str(sweep.id), "--run", str(lone)], capsys)
    assert rc == 2 and "not allowed with argument" in err
    assert store.get(lone).status == "queued"


@pytest.mark.parametrize("store_env", ["sqlite"], indirect=True)
def test_resume_sweep_queues_its_stopped_and_interrupted_runs(store, capsys):
    """Issue 26: `resume --sweep ID`, the CLI's Resume sweep (through the store's one transaction)."""
    rc, _, _ = run_main(["sweep", *SWEEP_BASE, "--param", "lr_g=1e-4,2e-4,4e-4", "--name", "lr"], capsys)
    (sweep,) = store.list_sweeps()
    a, b, c = (r.id for r in store.sweep_runs(sweep.id))
    store.claim("w", cap=5)
    store.finish(a, "pruned", "pruned at epoch 1")
    store.stop_sweep(sweep.id)
    rc, out, _ = run_main(["resume", "--sweep", str(sweep.id)], capsys)
    assert rc == 0 and out.strip() == f"queued 2 run(s) of sweep {sweep.id} to resume: {b}, {c}"
    assert [(r.status, r.resume) for r in store.sweep_runs(sweep.id)] == [("pruned", False), ("queued", True),
                                                                          ("queued", True)]
    rc, out, _ = run_main(["resume", "--sweep", str(sweep.id)], capsys)
    assert rc == 0 and "queued 0 run(s)" in out and "none is stopped or interrupted" in out
    for argv, message in ((["--sweep", str(sweep.id + 1)], "no such sweep"),
                          (["--sweep", str(sweep.id), "--run", str(a)], "not allowed with argument"),
                          (["--sweep", str(sweep.id), "--extra-epochs", "2"], "--extra-epochs is for one run"),
                          ([], "one of the arguments --run --sweep is required")):
        rc, _, err = run_main(["resume", *argv], capsys)
        assert rc == 2 and message in err, (argv, err)


@pytest.mark.parametrize("store_env", ["sqlite"], indirect=True)
def test_runs_lists_every_readable_run_and_names_a_damaged_one(store, capsys):
    from sqlalchemy import update

    from gan_core.config import TrainConfig
    from gan_core.runs.store import Run
    good, bad = store.submit(TrainConfig(epochs=1), name="good"), store.submit(TrainConfig(epochs=1), name="bad")
    with store.engine.begin() as c:
        c.execute(update(Run).where(Run.id == bad).values(config_json="{not json"))
    rc, out, err = run_main(["runs"], capsys)
    assert rc == 0 and [ln.split()[0] for ln in out.splitlines()] == [str(good)]
    assert f"warning: run #{bad} (bad, owner –, queued): its stored settings cannot be read" in err


@pytest.mark.parametrize("verb", [["submit"], ["sweep", "--param", "lr_g=1e-4,2e-4"]])
@pytest.mark.parametrize("flags, message", [(["--name", "x" * 300], "name: 300 characters is too long"),
                                            (["--owner", "y" * 300], "owner: 300 characters is too long")])
def test_a_refused_submit_or_sweep_creates_no_database(tmp_path, monkeypatch, capsys, verb, flags, message):
    home = tmp_path / "home"
    monkeypatch.setenv("GAN_HOME", str(home))
    monkeypatch.delenv("GAN_DB_URL", raising=False)
    rc, _, err = run_main([*verb, "--epochs", "1", *flags], capsys)
    assert rc == 2 and message in err
    assert not (home / "gan_studio.db").exists()


def test_pack_and_mode_seeking_flags_reach_the_config():
    from gan_core import cli as cli_package
    from gan_core.cli.flags import config_from_args
    parser = cli_package.build_parser()
    args = parser.parse_args(["train", "--preset", "dense-conditional", "--pack", "2", "--mode-seeking", "1",
                              "--out", "unused"])
    cfg = config_from_args(args)
    assert (cfg.pack, cfg.mode_seeking, cfg.conditional) == (2, 1.0, True)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train_help = sub.choices["train"].format_help()
    assert "--pack" in train_help and "--mode-seeking" in train_help
