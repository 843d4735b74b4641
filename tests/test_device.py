"""Precision auto's CPU decision and GAN_CPU_BF16, which makes it decide as if the CPU had or lacked bf16 units
(issue 26: development and CI machines come with either kind of CPU, and both paths must be tested on each)."""
from __future__ import annotations

import pytest
import torch

from gan_core.config import ConfigError, TrainConfig
from gan_core.device import _hardware_bf16, cpu_bf16_override, native_bf16, resolve_precision

CPU = torch.device("cpu")


def test_unset_asks_the_cpu(monkeypatch):
    monkeypatch.delenv("GAN_CPU_BF16", raising=False)
    assert cpu_bf16_override() is None
    hardware = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert native_bf16("cpu") is hardware
    assert resolve_precision(TrainConfig(device="cpu"), CPU) == ("bf16" if hardware else "fp32")
    monkeypatch.setenv("GAN_CPU_BF16", "  ")  # blank counts as unset, as every GAN_ variable
    assert native_bf16("cpu") is hardware


@pytest.mark.parametrize("value, has", [("1", True), ("true", True), ("Yes", True), ("0", False), ("false", False),
                                        ("no", False)])
def test_gan_cpu_bf16_decides_for_auto_and_only_for_auto(monkeypatch, value, has):
    monkeypatch.setenv("GAN_CPU_BF16", value)
    assert native_bf16("cpu") is has  # read on every call: the hardware's answer is cached, the variable is not
    assert resolve_precision(TrainConfig(device="cpu"), CPU) == ("bf16" if has else "fp32")
    # a precision asked for by name is what runs, whatever the variable says
    assert {resolve_precision(TrainConfig(device="cpu", precision=p), CPU) for p in ("fp32", "bf16")} == {"fp32",
                                                                                                          "bf16"}
    assert native_bf16("cuda") is _hardware_bf16("cuda")  # a GPU's own units are never overridden


def test_a_malformed_value_is_a_config_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("GAN_CPU_BF16", "maybe")
    with pytest.raises(ConfigError, match=r"GAN_CPU_BF16='maybe' must be 1 .* or 0 .*; unset it to ask the hardware"):
        native_bf16("cpu")


def test_the_fixture_runs_both_paths(cpu_bf16):
    # tests/conftest.py's cpu_bf16: every test that takes it runs once as on a CPU without bf16 units, once with
    assert resolve_precision(TrainConfig(device="cpu"), CPU) == ("bf16" if cpu_bf16 else "fp32")


def test_train_refuses_a_malformed_value_before_writing_anything(monkeypatch, tmp_path, capsys):
    from gan_core.cli import main
    monkeypatch.setenv("GAN_CPU_BF16", "maybe")
    assert main(["train", "--arch", "dense", "--g-widths", "32", "--d-widths", "32", "--max-steps", "1",
                 "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith("error: GAN_CPU_BF16='maybe' must be 1")
    assert not (tmp_path / "run").exists()
