"""Checkpoints: safetensors for every tensor, a JSON header for everything else, written atomically.

One file holds G, D, both Adam states and the RNG states, so resume is exact. The JSON header (config, epoch, step,
format version, optimizer hyper-parameters) lives in the safetensors metadata, and a copy is written beside the
file for people to read. Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import load_file, save_file
from safetensors import safe_open
from torch import nn

from .config import ConfigError, TrainConfig

FORMAT_VERSION = 1
KIND_FULL, KIND_GENERATOR = "gan-studio/checkpoint", "gan-studio/generator"


SHIPPED_DIR = Path(__file__).resolve().parent / "assets" / "generators"


def shipped_generators() -> dict[str, Path]:
    """The pretrained generators that ship with the package, by name (their file stem)."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.safetensors"))}


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message says why."""


def atomic_write(path: Path, write: Any) -> None:
    """Call `write(tmp_path)`, then rename over `path`, so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; other processes of the team (dashboard, workers) read these
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Atomic version of Path.write_text."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> list:
    sd = opt.state_dict()
    for idx, state in sd["state"].items():
        for key, value in state.items():
            tensors[f"{prefix}.state.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return sd["param_groups"]


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], groups: list) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + ".state."):
            idx, key = name[len(prefix) + 7:].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": groups}


def save_checkpoint(path: Path, cfg: TrainConfig, g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer,
                    opt_d: torch.optim.Optimizer, epoch: int, step: int, rng: dict[str, torch.Tensor],
                    extra: dict[str, Any] | None = None, g_ema: nn.Module | None = None) -> None:
    """Write everything needed to resume exactly; `epoch` counts completed epochs."""
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("G", g), ("D", d), ("G_ema", g_ema)):
        if module is None:
            continue
        for k, v in module.state_dict().items():
            tensors[f"{prefix}.{k}"] = v.detach().cpu().contiguous()
    groups = {"opt_g": _flatten_optimizer("opt_g", opt_g, tensors),
              "opt_d": _flatten_optimizer("opt_d", opt_d, tensors)}
    for k, v in rng.items():
        tensors[f"rng.{k}"] = v.detach().cpu().contiguous()
    header = {"kind": KIND_FULL, "format_version": FORMAT_VERSION, "config": cfg.to_dict(), "epoch": epoch,
              "step": step, "param_groups": groups, **(extra or {})}
    meta = {"gan_studio": json.dumps(header)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    atomic_write_text(path.with_suffix(".json"), json.dumps(header, indent=2))


def save_generator(path: Path, cfg: TrainConfig, g: nn.Module, epoch: int, step: int) -> None:
    """A generator-only export: G's weights and the config, loadable without D."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in g.state_dict().items()}
    header = {"kind": KIND_GENERATOR, "format_version": FORMAT_VERSION, "config": cfg.to_dict(), "epoch": epoch,
              "step": step}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"gan_studio": json.dumps(header)}))


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a checkpoint or generator file, checked for kind and version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({e}); checkpoints are .safetensors files "
                              f"written by GAN Studio") from None
    if "gan_studio" not in meta:
        raise CheckpointError(f"{path}: a safetensors file, but not a GAN Studio checkpoint (no header)")
    try:
        header = json.loads(meta["gan_studio"])
        ok = isinstance(header, dict) and header.get("kind") in (KIND_FULL, KIND_GENERATOR) and all(
            isinstance(header.get(k), int) for k in ("epoch", "step")) and isinstance(header.get("config"), dict)
    except ValueError:
        ok = False
    if not ok:
        raise CheckpointError(f"{path}: its GAN Studio header is malformed (kind, epoch, step or config missing)")
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {header.get('format_version')} is not supported "
                              f"(this version reads {FORMAT_VERSION})")
    try:
        header["config"] = TrainConfig.from_stored(header["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its config is invalid: {e}") from None
    return header


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, on the CPU."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable checkpoint ({e})") from None


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix.`, with the prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def discriminator_state(tensors: dict[str, torch.Tensor], d: nn.Module) -> dict[str, torch.Tensor]:
    """D's weights from a checkpoint, for `d`; files from before the projection head (conditional generation) kept
    D's last Linear as `net.<K>` at the end of the body, and it is renamed to `head.linear` so they still resume."""
    state = split_prefix(tensors, "D")
    if any(k.startswith("head.") for k in state):
        return state
    old = f"net.{len(d.net)}."  # the slot right after the body's last layer: where the logit layer used to be
    return {("head.linear." + k[len(old):] if k.startswith(old) else k): v for k, v in state.items()}


def optimizer_state(tensors: dict[str, torch.Tensor], header: dict[str, Any], name: str) -> dict:
    """The optimizer state_dict stored under `name` ('opt_g' or 'opt_d')."""
    return _unflatten_optimizer(name, tensors, header["param_groups"][name])


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, TrainConfig,
                                                                                          dict[str, Any]]:
    """(G in eval mode, its config, header) from a full checkpoint or a generator-only export."""
    from .models import build_generator

    header = read_header(path)
    cfg: TrainConfig = header["config"]
    with torch.device("meta"):  # shapes only, no memory: a hostile header cannot make us allocate a huge model
        want = {k: tuple(v.shape) for k, v in build_generator(cfg).state_dict().items()}
    with safe_open(str(path), framework="pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    # A full checkpoint's samples come from the EMA copy when the run kept one, as its exports do.
    prefix = "" if header["kind"] == KIND_GENERATOR else (
        "G_ema.module." if any(k.startswith("G_ema.module.") for k in shapes) else "G.")
    have = {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}
    if have != want:
        bad = sorted(set(have) ^ set(want)) or sorted(k for k in want if have[k] != want[k])
        raise CheckpointError(f"{path}: weights do not fit the {cfg.arch} generator its header describes "
                              f"({len(bad)} tensor(s) missing, extra or of the wrong shape, e.g. {bad[0]})")
    tensors = load_tensors(path)
    g = build_generator(cfg)
    g.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    return g.to(device).eval(), cfg, header


def check_upload(data: bytes, max_mb: float) -> None:
    """Refuse an uploaded generator before it is written anywhere: too large, or not a safetensors file
    (a pickle, a truncated file, random bytes). Shapes are checked when it is loaded (load_generator)."""
    if len(data) > max_mb * 1024 * 1024:
        raise CheckpointError(f"the file is {len(data) / 2**20:.1f} MB; generators are accepted up to {max_mb:g} MB")
    try:
        safetensors_load(data)  # parses the header and checks every tensor lies inside the bytes
    except (SafetensorError, ValueError) as e:
        if data[:1] == b"\x80" or data[:4] == b"PK\x03\x04":  # pickle protocol 2+ / torch.save's zip
            raise CheckpointError("this is a pickle (torch.save) file, which can run code when loaded; only "
                                  ".safetensors files written by GAN Studio are accepted") from None
        raise CheckpointError(f"not a complete safetensors file (truncated upload, or another format): {e}") from None
