import json
import math
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from gan_core import trainer
from gan_core.checkpoint import (
    CheckpointError,
    check_resumable,
    check_upload,
    load_generator,
    load_tensors,
    read_header,
    save_generator,
    saved_order_size,
)
from gan_core.config import ConfigError, TrainConfig
from gan_core.events import Failed, ListSink, StepMetrics
from gan_core.models import build_generator
from gan_core.sampling import generate
from gan_core.step import build_gan
from gan_core.trainer import latest_checkpoint, train

# conftest's tiny_cfg without the per-epoch quality scoring, which these tests do not look at
RUN_CFG = TrainConfig.from_preset("seed004-dense", g_widths=(64, 128), d_widths=(128, 64), batch_size=64,
                                  train_subset=512, epochs=2, log_every=1, device="cpu", eval_samples=0)


@pytest.fixture(scope="module")
def run(mnist_slice, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(RUN_CFG, ListSink(), images=mnist_slice, out_dir=out)
    return out


def test_header_has_config_epoch_step_and_version(run):
    path = latest_checkpoint(run)
    h = read_header(path)
    assert (h["config"], h["epoch"], h["step"], h["format_version"]) == (RUN_CFG, 2, 16, 1)
    assert path.with_suffix(".json").is_file()  # human-readable copy beside it
    names = load_tensors(path).keys()
    assert {n.split(".")[0] for n in names} == {"G", "D", "opt_g", "opt_d", "rng"}


def test_generator_export_loads_without_d_and_matches_the_full_checkpoint(run):
    g_export, cfg, header = load_generator(run / "generator.safetensors")
    g_full, _, _ = load_generator(latest_checkpoint(run))
    assert header["kind"] == "gan-studio/generator" and header["discriminator"] is True
    from gan_core.models import build_discriminator

    names = set(load_tensors(run / "generator.safetensors"))
    # D travels with G for rejection (gan_core.rejection); no optimizer, RNG or second G copy does.
    d_names = {n for n in names if n.startswith("D.")}
    assert {n[2:] for n in d_names} == set(build_discriminator(cfg).state_dict())
    assert names - d_names == set(g_export.state_dict())
    assert (generate(g_export, cfg, 16, seed=5) == generate(g_full, cfg, 16, seed=5)).all()


def test_a_pickle_is_refused_without_being_unpickled(tmp_path):
    evil = tmp_path / "evil.safetensors"

    class Boom:
        def __reduce__(self):
            return (exec, ("open('" + str(tmp_path / "pwned") + "', 'w').write('x')",))
    evil.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        load_generator(evil)
    torch.save({"w": torch.zeros(2)}, tmp_path / "torch.pt")
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        load_generator(tmp_path / "torch.pt")
    assert not (tmp_path / "pwned").exists()


def test_truncated_and_foreign_files_are_refused(run, tmp_path):
    data = (run / "generator.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_generator(cut)
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(3)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="not a GAN Studio checkpoint"):
        load_generator(tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_generator(tmp_path / "missing.safetensors")


def _export(tmp_path):
    cfg = TrainConfig(g_widths=(32,), d_widths=(32,), latent_dim=8)
    path = tmp_path / "g.safetensors"
    save_generator(path, cfg, build_generator(cfg), 1, 10)
    return path, cfg


def test_uploads_accept_only_complete_safetensors_within_the_size_limit(tmp_path):
    path, _ = _export(tmp_path)
    good = path.read_bytes()
    check_upload(good, max_mb=1)  # no exception
    import io
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)  # a pickle: torch.load could run code from it
    with pytest.raises(CheckpointError, match="pickle"):
        check_upload(buf.getvalue(), max_mb=1)
    with pytest.raises(CheckpointError, match="truncated"):
        check_upload(good[:-100], max_mb=1)
    with pytest.raises(CheckpointError, match="truncated"):
        check_upload(b"\x00" * 3, max_mb=1)
    with pytest.raises(CheckpointError, match="accepted up to 0.01 MB"):
        check_upload(good + b" " * 20_000, max_mb=0.01)


def test_a_header_that_lies_about_the_architecture_is_refused_before_building_it(tmp_path):
    path, cfg = _export(tmp_path)
    tensors = load_tensors(path)
    # Same tensors, but a header claiming 8192-wide layers: refused from the shapes alone, nothing allocated.
    meta = {"gan_studio": json.dumps({"kind": "gan-studio/generator", "format_version": 1, "epoch": 1, "step": 1,
                                      "config": cfg.replace(g_widths=(8192, 8192, 8192)).to_dict()})}
    liar = tmp_path / "liar.safetensors"
    save_file(tensors, str(liar), metadata=meta)
    with pytest.raises(CheckpointError, match="do not fit the dense generator"):
        load_generator(liar)


# --- issue 14: resume checks, bounded headers, weights that draw nothing, uploads checked whole -------------------

TINY = dict(g_widths=(32,), d_widths=(32,), batch_size=64, train_subset=512, log_every=1, device="cpu", eval_samples=0)


def rewrite(src: Path, dst: Path, drop: tuple[str, ...] = (), tensors: dict | None = None,
            header: dict | None = None, meta: str | None = None) -> Path:
    """A copy of `src` with tensors dropped or replaced, header fields replaced (None removes one), or the whole
    gan_studio metadata string replaced by `meta`."""
    with safe_open(str(src), framework="pt") as f:
        head = json.loads(f.metadata()["gan_studio"])
    for k, v in (header or {}).items():
        head.pop(k, None) if v is None else head.__setitem__(k, v)
    t = {k: v for k, v in load_tensors(src).items() if k not in drop}
    save_file({**t, **(tensors or {})}, str(dst),
              metadata={"gan_studio": meta if meta is not None else json.dumps(head)})
    return dst


@pytest.fixture(scope="module")
def mid_epoch(mnist_slice, tmp_path_factory):
    """A full checkpoint saved 3 steps into an epoch of 8 (so with its data order), with an EMA of G."""
    cfg = TrainConfig.from_preset("seed004-dense", **TINY, g_ema=0.99, epochs=1, max_steps=3)
    out = tmp_path_factory.mktemp("mid")
    train(cfg, ListSink(), images=mnist_slice, out_dir=out)
    return latest_checkpoint(out), cfg


def test_check_resumable_accepts_what_the_trainer_wrote(mid_epoch):
    path, cfg = mid_epoch
    header = check_resumable(path)
    assert (header["epoch"], header["step"], header["pos"], header["config"]) == (0, 3, 3, cfg)
    assert check_resumable(path, cfg.replace(epochs=2, lr_g=1e-4))["step"] == 3  # non-architecture changes are fine
    assert saved_order_size(path) == 512


def _groups(path: Path) -> dict:
    return read_header(path)["param_groups"]


HOSTILE = {  # what is wrong → (how to make it from a good checkpoint, what the refusal says)
    "generator export": (lambda p, d: p.parent.parent / "generator.safetensors", "this is a generator export"),
    "D weight of another shape": (lambda p, d: rewrite(p, d, tensors={"D.net.1.weight": torch.zeros(3, 784)}),
                                  "do not fit the dense discriminator"),
    "extra G tensor": (lambda p, d: rewrite(p, d, tensors={"G.extra": torch.zeros(1)}),
                       "do not fit the dense generator"),
    "EMA without its counter": (lambda p, d: rewrite(p, d, drop=("G_ema.n_averaged",)), "dense generator's EMA"),
    "float64 D weight": (lambda p, d: rewrite(p, d, tensors={
        "D.net.1.weight": torch.zeros(32, 784, dtype=torch.float64)}), "'net.1.weight' is float64, not float32"),
    "NaN in D": (lambda p, d: rewrite(p, d, tensors={"D.net.1.bias": torch.full((32,), math.nan)}),
                 "'D.net.1.bias' holds NaN or infinite values"),
    "inf in Adam's state": (lambda p, d: rewrite(p, d, tensors={"opt_d.state.1.exp_avg": torch.full((32,), math.inf)}),
                            "'opt_d.state.1.exp_avg' holds NaN or infinite values"),
    "no rng.torch_cpu": (lambda p, d: rewrite(p, d, drop=("rng.torch_cpu",)), "rng.torch_cpu is missing"),
    "no rng.loop": (lambda p, d: rewrite(p, d, drop=("rng.loop",)), "rng.loop is missing"),
    "garbage rng.torch_cpu": (lambda p, d: rewrite(p, d, tensors={
        "rng.torch_cpu": torch.zeros(5056, dtype=torch.uint8)}), "rng.torch_cpu is not a valid CPU RNG state"),
    "float rng.loop": (lambda p, d: rewrite(p, d, tensors={"rng.loop": torch.zeros(5056)}), "rng.loop is not an RNG"),
    "no param_groups": (lambda p, d: rewrite(p, d, header={"param_groups": None}), "param_groups are missing"),
    "groups over one parameter": (lambda p, d: rewrite(p, d, header={"param_groups": {
        **_groups(p), "opt_g": [{**_groups(p)["opt_g"][0], "params": [0]}]}}), "opt_g: its optimizer param_groups"),
    "Adam told to maximize": (lambda p, d: rewrite(p, d, header={"param_groups": {
        **_groups(p), "opt_d": [{**_groups(p)["opt_d"][0], "maximize": True}]}}), "opt_d: its optimizer settings"),
    "NaN eps": (lambda p, d: rewrite(p, d, header={"param_groups": {
        **_groups(p), "opt_d": [{**_groups(p)["opt_d"][0], "eps": math.nan}]}}), "opt_d: its optimizer settings"),
    "Adam state of another shape": (lambda p, d: rewrite(p, d, tensors={"opt_g.state.0.exp_avg": torch.zeros(2)}),
                                    "optimizer tensor 'opt_g.state.0.exp_avg' is float32 [2], not float32 [32, 100]"),
    "Adam state of no parameter": (lambda p, d: rewrite(p, d, tensors={"opt_g.state.99.step": torch.zeros(())}),
                                   "unexpected optimizer tensor 'opt_g.state.99.step'"),
    "incomplete Adam state": (lambda p, d: rewrite(p, d, drop=("opt_g.state.0.exp_avg_sq",)), "state is incomplete"),
    "unknown tensor": (lambda p, d: rewrite(p, d, tensors={"junk": torch.zeros(1)}), "unexpected tensor 'junk'"),
    "mid-epoch without its order": (lambda p, d: rewrite(p, d, drop=("rng.perm",)), "without that epoch's data order"),
    "order that is no permutation": (lambda p, d: rewrite(p, d, tensors={
        "rng.perm": torch.zeros(512, dtype=torch.long)}), "rng.perm is not a permutation"),
    "position past the epoch": (lambda p, d: rewrite(p, d, header={"pos": 8}), "past the end of an epoch"),
    "negative position": (lambda p, d: rewrite(p, d, header={"pos": -1}), "(pos) is not a whole number"),
    "negative step": (lambda p, d: rewrite(p, d, header={"step": -5}), "header is malformed"),
}


@pytest.mark.parametrize("what", list(HOSTILE))
def test_what_cannot_resume_is_refused_before_training_by_cli_and_worker_alike(what, mid_epoch, mnist_slice, tmp_path):
    good, cfg = mid_epoch
    make, message = HOSTILE[what]
    bad = make(good, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match=re.escape(message)) as e:
        check_resumable(bad, cfg)
    assert e.value.path == str(bad) and str(e.value) == f"{bad}: {e.value.reason}"
    sink = ListSink()  # the trainer (so the worker) refuses through the same check, before a single step
    with pytest.raises(CheckpointError, match=re.escape(message)):
        train(cfg.replace(epochs=2), sink, images=mnist_slice, resume_from=bad, out_dir=tmp_path / "out")
    # ...and, as every outcome, with exactly one terminal event: Failed, and nothing before it
    assert [type(ev) for ev in sink] == [Failed] and message in sink[0].reason
    assert not (tmp_path / "out").exists()


def test_an_architecture_change_is_a_config_error(mid_epoch):
    path, cfg = mid_epoch
    with pytest.raises(ConfigError, match="the config differs in latent_dim: checkpoint has 100, config has 64"):
        check_resumable(path, cfg.replace(latent_dim=64))


def _export(tmp_path, **over):
    cfg = TrainConfig(**{"g_widths": (32,), "d_widths": (32,), "latent_dim": 8, **over})
    path = tmp_path / "g.safetensors"
    save_generator(path, cfg, build_generator(cfg), 1, 10)
    return path, cfg


def _header(cfg: TrainConfig, **extra) -> dict:
    return {"kind": "gan-studio/generator", "format_version": 1, "epoch": 1, "step": 10, "config": cfg.to_dict(),
            **extra}


@pytest.mark.parametrize("meta,message", [
    ("[" * 20_000 + "]" * 20_000, "header nests deeper than 16 levels"),  # within 64 KiB, 20x the recursion limit
    ("{" + '"a":{' * 5000 + "}" * 5000 + "}", "header nests deeper than 16 levels"),
    (None, "header is 74 KiB; a real one is a few KiB (at most 64 KiB accepted)"),
])
def test_deep_or_huge_headers_are_refused_not_a_recursion_error(meta, message, tmp_path):
    path, cfg = _export(tmp_path)
    text = meta if meta is not None else json.dumps(_header(cfg, note="x" * 75_000))
    bad = rewrite(path, tmp_path / "bad.safetensors", meta=text)
    for load in (read_header, load_generator, lambda p: check_upload(p.read_bytes(), max_mb=1)):
        with pytest.raises(CheckpointError, match=re.escape(message)):
            load(bad)
    nested = rewrite(path, tmp_path / "nested.safetensors",
                     meta=json.dumps(_header(cfg, x=[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]])))
    with pytest.raises(CheckpointError, match="nests deeper than 16"):  # deep inside an otherwise good header too
        read_header(nested)


@pytest.mark.parametrize("kind", ["nan", "inf", "int8", "float64"])
def test_generators_whose_weights_draw_nothing_are_refused(kind, tmp_path):
    path, cfg = _export(tmp_path)
    w = load_tensors(path)["net.0.weight"]
    bad = {"nan": w.clone().fill_(math.nan), "inf": w.clone().fill_(-math.inf), "int8": w.to(torch.int8),
           "float64": w.double()}[kind]
    out = rewrite(path, tmp_path / "bad.safetensors", tensors={"net.0.weight": bad})
    message = "holds NaN or infinite values" if kind in ("nan", "inf") else f"is {kind}, not float32"
    with pytest.raises(CheckpointError, match=message):
        load_generator(out)
    with pytest.raises(CheckpointError, match=message) as e:
        check_upload(out.read_bytes(), max_mb=1)
    assert e.value.path is None and str(e.value) == e.value.reason


def test_batchnorm_counters_are_int64_and_fine(tmp_path):
    path, cfg = _export(tmp_path, arch="dcgan", width_mult=0.25)
    assert load_tensors(path)["net.2.num_batches_tracked"].dtype == torch.int64
    g, _, _ = load_generator(path)
    assert check_upload(path.read_bytes(), max_mb=1)["config"] == cfg


@pytest.mark.parametrize("what,message", [
    ("no header", "not a GAN Studio checkpoint (no header)"),
    ("a full checkpoint's kind with a bare generator", "do not fit the dense generator"),
    ("another format version", "checkpoint format 2 is not supported"),
    ("an invalid config", "its config is invalid: lr_g: 5.0 is out of range"),
    ("a config value of no field's type", "its config is invalid"),
    ("a lying architecture", "do not fit the dense generator its header describes"),
    ("an extra tensor", "do not fit the dense generator"),
    ("a header that is not JSON", "header is malformed"),
])
def test_uploads_are_checked_whole_in_memory_and_name_no_path(what, message, tmp_path):
    path, cfg = _export(tmp_path)
    tensors, header = load_tensors(path), _header(cfg)
    if what == "no header":
        save_file(tensors, str(path))
    elif what == "an extra tensor":
        save_file({**tensors, "extra": torch.zeros(1)}, str(path), metadata={"gan_studio": json.dumps(header)})
    else:
        header.update({
            "a full checkpoint's kind with a bare generator": {"kind": "gan-studio/checkpoint"},
            "another format version": {"format_version": 2},
            "an invalid config": {"config": {**cfg.to_dict(), "lr_g": 5}},
            "a config value of no field's type": {"config": {**cfg.to_dict(), "eval_samples": [1]}},
            "a lying architecture": {"config": {**cfg.to_dict(), "g_widths": [8192, 8192]}},
            "a header that is not JSON": {},
        }[what])
        meta = "{not json" if what == "a header that is not JSON" else json.dumps(header)
        save_file(tensors, str(path), metadata={"gan_studio": meta})
    data = path.read_bytes()
    path.unlink()
    with pytest.raises(CheckpointError, match=re.escape(message)) as e:
        check_upload(data, max_mb=1)
    assert e.value.path is None and str(e.value) == e.value.reason
    for server_path in (str(tmp_path), os.getcwd(), str(Path.home())):
        assert server_path not in str(e.value)


def test_checkpoint_error_keeps_reason_and_path_apart(tmp_path):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(CheckpointError) as e:
        read_header(missing)
    assert (e.value.reason, e.value.path, str(e.value)) == ("no such checkpoint file", str(missing),
                                                            f"{missing}: no such checkpoint file")
    again = pickle.loads(pickle.dumps(e.value))  # crosses process boundaries (Ray) intact
    assert (again.reason, again.path, str(again)) == (e.value.reason, e.value.path, str(e.value))


def test_a_generator_export_can_carry_d_for_rejection_and_still_refuses_a_bad_d(run, tmp_path):
    from gan_core.checkpoint import discriminator_state, load_discriminator
    from gan_core.models import build_discriminator

    full = load_tensors(latest_checkpoint(run))
    d = build_discriminator(RUN_CFG)
    d.load_state_dict(discriminator_state(full, d))
    g, cfg, _ = load_generator(run / "generator.safetensors")
    path = tmp_path / "with-d.safetensors"
    save_generator(path, cfg, g, 2, 16, d=d)
    g2, _, header = load_generator(path)
    d2 = load_discriminator(path)
    assert header["discriminator"] is True and not d2.training
    assert (generate(g2, cfg, 8, seed=3) == generate(g, cfg, 8, seed=3)).all()
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(d2(x), d.eval()(x))
    save_generator(tmp_path / "bare.safetensors", cfg, g, 2, 16)
    assert load_discriminator(tmp_path / "bare.safetensors") is None          # exports without D still load
    assert read_header(tmp_path / "bare.safetensors")["discriminator"] is False
    assert load_discriminator(latest_checkpoint(run)) is not None             # a full checkpoint has one
    check_upload(path.read_bytes(), 50)
    tensors = load_tensors(path)
    meta = {"gan_studio": json.dumps({**{k: v for k, v in header.items() if k != "config"},
                                      "config": cfg.to_dict()})}
    bad = dict(tensors)
    bad["D.head.linear.weight"] = torch.full_like(bad["D.head.linear.weight"], float("nan"))
    save_file(bad, str(tmp_path / "nan-d.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="discriminator tensor .* NaN"):
        load_discriminator(tmp_path / "nan-d.safetensors")
    short = {k: v for k, v in tensors.items() if k != "D.head.linear.bias"}
    save_file(short, str(tmp_path / "short-d.safetensors"), metadata=meta)
    for load in (load_generator, load_discriminator):
        with pytest.raises(CheckpointError, match="discriminator its header describes"):
            load(tmp_path / "short-d.safetensors")


def test_resume_uses_this_runs_adam_switches_not_the_files(mid_epoch, mnist_slice, tmp_path):
    # A CUDA-graph run writes capturable=True; an older file may say fused=False. Neither changes fused Adam's
    # update, so both resume, with the resuming run's own switches and the very weights of the untouched file.
    path, cfg = mid_epoch
    groups = {name: [{**g[0], "fused": False, "capturable": True}] for name, g in _groups(path).items()}
    other = rewrite(path, tmp_path / "other-switches.safetensors", header={"param_groups": groups})
    assert check_resumable(other)["param_groups"]["opt_g"][0]["capturable"] is True
    for src in (path, other):
        m = build_gan(cfg, torch.device("cpu"))
        trainer._restore(m, src)
        assert all(g["fused"] is True and g["capturable"] is False for opt in (m.opt_g, m.opt_d)
                   for g in opt.param_groups)
    sink = [ListSink(), ListSink()]
    for s, src in zip(sink, (path, other)):
        train(cfg.replace(max_steps=6), s, images=mnist_slice, resume_from=src)
    assert [e.d_loss for e in sink[0].of(StepMetrics)] == [e.d_loss for e in sink[1].of(StepMetrics)]
    assert len(sink[0].of(StepMetrics)) == 3


# --- issue 27: a full checkpoint is uploaded whole or not at all; a header's tensor count is capped --------------

UPLOAD_HOSTILE = {
    "int64 junk.evil": (lambda p, d: rewrite(p, d, tensors={"junk.evil": torch.zeros(3, dtype=torch.int64)}),
                        "unexpected tensor 'junk.evil'"),
    "NaN D.whatever": (lambda p, d: rewrite(p, d, tensors={"D.whatever": torch.full((4,), math.nan)}),
                       "do not fit the dense discriminator"),
    **{k: v for k, v in HOSTILE.items() if k != "generator export"},  # a generator export is a fine upload
}


@pytest.mark.parametrize("what", list(UPLOAD_HOSTILE))
def test_a_full_checkpoint_upload_is_checked_in_every_tensor(what, mid_epoch, tmp_path):
    """Issue 27: a full checkpoint with an int64 `junk.evil` or a NaN `D.whatever` was accepted and written, and
    Generate crashed on it: only its G was checked."""
    good, _ = mid_epoch
    make, message = UPLOAD_HOSTILE[what]
    data = make(good, tmp_path / "bad.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match=re.escape(message)) as e:
        check_upload(data, max_mb=5)
    assert e.value.path is None and str(tmp_path) not in str(e.value)


def test_real_full_checkpoints_and_exports_carrying_d_are_still_accepted(mid_epoch, run, tmp_path):
    from gan_core.checkpoint import load_discriminator

    good, cfg = mid_epoch
    assert check_upload(good.read_bytes(), max_mb=5)["config"] == cfg
    end_of_run = latest_checkpoint(run)  # between epochs (no data order), without an EMA
    assert check_upload(end_of_run.read_bytes(), max_mb=5)["kind"] == "gan-studio/checkpoint"
    export = run / "generator.safetensors"
    assert check_upload(export.read_bytes(), max_mb=5)["discriminator"] is True
    assert load_discriminator(good) is not None and load_discriminator(export) is not None


def _many_tensors(tmp_path: Path, n: int, **meta: str) -> bytes:
    path, cfg = _export(tmp_path)
    tensors = {**load_tensors(path), **{f"t{i}": torch.zeros(0) for i in range(n)}}
    save_file(tensors, str(path), metadata={"gan_studio": json.dumps(_header(cfg)), **meta})
    return path.read_bytes()


def test_the_tensor_count_and_size_a_header_declares_are_capped_before_any_tensor_is_read(tmp_path, monkeypatch):
    """Issue 27: a header may declare as many tensors as 20 MB holds, each parsed and allocated before a check."""
    import gan_core.checkpoint as ckpt

    def never(*_a, **_k):
        raise AssertionError("tensors were read before the header's caps were checked")

    many = _many_tensors(tmp_path, 5000)
    big = _many_tensors(tmp_path, 0, note="x" * (ckpt.MAX_SAFETENSORS_HEADER + 10))
    monkeypatch.setattr(ckpt, "safetensors_load", never)
    with pytest.raises(CheckpointError, match=r"its header declares 5,\d{3} tensors; .* \(1,024 accepted\)") as e:
        check_upload(many, max_mb=5)
    # Said in words as what it is (the walk-through saw "not written by GAN Studio" for a GAN Studio header).
    from gan_core.web import text
    assert text.plain_checkpoint_error(e.value.reason).startswith("This file declares far more tensors than any")
    with pytest.raises(CheckpointError, match=r"its safetensors header is 1,0\d\d KiB; .* \(at most 1,024 KiB"):
        check_upload(big, max_mb=5)
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="do not fit the dense generator"):  # under the cap: checked as ever
        check_upload(_many_tensors(tmp_path, 10), max_mb=5)


def test_the_widest_full_checkpoint_declares_far_fewer_tensors_than_the_cap():
    from torch.optim.swa_utils import AveragedModel

    from gan_core.checkpoint import MAX_UPLOAD_TENSORS
    from gan_core.models import build_discriminator

    for arch in ("dense", "dcgan"):
        cfg = TrainConfig(arch=arch, g_widths=(64,) * 8, d_widths=(64,) * 8, spectral_norm=True, d_batchnorm=True,
                          g_ema=0.999)
        with torch.device("meta"):
            g, d = build_generator(cfg), build_discriminator(cfg)
            ema = AveragedModel(g)
        params = len(list(g.parameters())) + len(list(d.parameters()))
        count = len(g.state_dict()) + len(d.state_dict()) + len(ema.state_dict()) + 3 * params + 4
        assert count * 4 < MAX_UPLOAD_TENSORS, (arch, count)


def test_an_export_carries_pack_and_mode_seeking_and_its_packed_d(tmp_path):
    from gan_core.checkpoint import load_discriminator
    from gan_core.models import build_discriminator, build_generator
    cfg = TrainConfig(conditional=True, g_widths=(16,), d_widths=(16,), pack=2, mode_seeking=0.5, batch_size=8)
    torch.manual_seed(0)
    g, d = build_generator(cfg), build_discriminator(cfg)
    path = tmp_path / "packed.safetensors"
    save_generator(path, cfg, g, 1, 10, d=d)
    with safe_open(path, "pt") as f:  # the file's own JSON header holds both fields
        written = json.loads(f.metadata()["gan_studio"])["config"]
    assert (written["pack"], written["mode_seeking"]) == (2, 0.5)
    header = read_header(path)  # and reads them back into the config
    assert (header["config"].pack, header["config"].mode_seeking) == (2, 0.5)
    _, loaded_cfg, _ = load_generator(path)
    assert loaded_cfg == cfg
    loaded_d = load_discriminator(path)
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([1, 2, 3, 4])
    assert loaded_d.pack == 2 and torch.equal(loaded_d(x, y), d.eval()(x, y))  # (2,): one logit per pack
