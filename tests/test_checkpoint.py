import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from gan_core.checkpoint import CheckpointError, check_upload, load_generator, load_tensors, read_header, save_generator
from gan_core.config import TrainConfig
from gan_core.models import build_generator
from gan_core.events import ListSink
from gan_core.sampling import generate
from gan_core.trainer import latest_checkpoint, train


@pytest.fixture
def run(tiny_cfg, mnist_slice, tmp_path):
    train(tiny_cfg, ListSink(), images=mnist_slice, out_dir=tmp_path)
    return tmp_path


def test_header_has_config_epoch_step_and_version(run, tiny_cfg):
    path = latest_checkpoint(run)
    h = read_header(path)
    assert (h["config"], h["epoch"], h["step"], h["format_version"]) == (tiny_cfg, 2, 16, 1)
    assert path.with_suffix(".json").is_file()  # human-readable copy beside it
    names = load_tensors(path).keys()
    assert {n.split(".")[0] for n in names} == {"G", "D", "opt_g", "opt_d", "rng"}


def test_generator_export_loads_without_d_and_matches_the_full_checkpoint(run):
    g_export, cfg, header = load_generator(run / "generator.safetensors")
    g_full, _, _ = load_generator(latest_checkpoint(run))
    assert header["kind"] == "gan-studio/generator"
    assert not any(k.startswith("D.") for k in load_tensors(run / "generator.safetensors"))
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
