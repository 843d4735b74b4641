"""Checkpoints: safetensors for every tensor, a JSON header for everything else, written atomically.

One file holds G, D, both Adam states and the RNG states, so resume is exact. The JSON header (config, epoch, step,
format version, optimizer hyper-parameters) lives in the safetensors metadata, and a copy is written beside the
file for people to read. Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as safetensors_load
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ConfigError, TrainConfig

FORMAT_VERSION = 1
KIND_FULL, KIND_GENERATOR = "gan-studio/checkpoint", "gan-studio/generator"
# A real header is a few KiB and nests 5 deep (param_groups → opt_g → group → betas); anything far beyond that is
# hostile, and Python's json would recurse once per level of nesting.
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_DEPTH = 16
ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")  # what torch's Adam keeps per parameter (amsgrad is never on)
# torch dtype ↔ safetensors' dtype tag ↔ the name people read.
_DTYPES = ((torch.float32, "F32", "float32"), (torch.float64, "F64", "float64"), (torch.float16, "F16", "float16"),
           (torch.bfloat16, "BF16", "bfloat16"), (torch.int64, "I64", "int64"), (torch.int32, "I32", "int32"),
           (torch.int16, "I16", "int16"), (torch.int8, "I8", "int8"), (torch.uint8, "U8", "uint8"),
           (torch.bool, "BOOL", "bool"))
_TAG = {t: tag for t, tag, _ in _DTYPES}
_READABLE = {tag: name for _, tag, name in _DTYPES}


SHIPPED_DIR = Path(__file__).resolve().parent / "assets" / "generators"


def shipped_generators() -> dict[str, Path]:
    """The pretrained generators that ship with the package, by name (their file stem)."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.safetensors"))}


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint. `reason` says why and names no path, so a web page can show it to a
    visitor; `path` is the file when there is one, and str() is "path: reason" for the command line."""

    def __init__(self, reason: str, path: str | os.PathLike | None = None) -> None:
        self.reason, self.path = reason, None if path is None else str(path)
        super().__init__(reason if self.path is None else f"{self.path}: {reason}")

    def __reduce__(self) -> tuple:  # pickled across processes (Ray) with both parts, not the joined message
        return type(self), (self.reason, self.path)


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


def remove_partial_writes(folder: Path) -> int:
    """Delete the temp files of atomic writes cut short under `folder` (a writer killed by kill -9 or a power cut
    never reaches its cleanup); returns how many. Only for a folder no live process writes to."""
    partial = list(folder.rglob("*.tmp")) if folder.is_dir() else []
    for tmp in partial:
        tmp.unlink(missing_ok=True)
    return len(partial)


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


def save_generator(path: Path, cfg: TrainConfig, g: nn.Module, epoch: int, step: int,
                   d: nn.Module | None = None) -> None:
    """A generator-only export: G's weights and the config, loadable without D; with `d`, D's weights travel in the
    same file under "D." (what gan_core.rejection needs to reject G's least convincing samples)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in g.state_dict().items()}
    if d is not None:
        tensors.update({f"D.{k}": v.detach().cpu().contiguous() for k, v in d.state_dict().items()})
    header = {"kind": KIND_GENERATOR, "format_version": FORMAT_VERSION, "config": cfg.to_dict(), "epoch": epoch,
              "step": step, "discriminator": d is not None}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"gan_studio": json.dumps(header)}))


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON `text` nest, found without parsing it (so without recursion)."""
    depth = deepest = 0
    for ch in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if ch in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _count(v: Any) -> bool:
    """A whole number ≥ 0 that fits the store's 64-bit columns (epoch, step, position in the epoch)."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _name(key: str) -> str:
    """A tensor name for a message: quoted and cut short, since the file chose it."""
    return repr(key if len(key) <= 60 else key[:57] + "...")


def _parse_header(meta: dict[str, str], path: Path | None) -> dict[str, Any]:
    """The checked GAN Studio header from a safetensors file's metadata; `path` only labels errors (None: upload)."""
    text = meta.get("gan_studio")
    if not isinstance(text, str):
        raise CheckpointError("a safetensors file, but not a GAN Studio checkpoint (no header)", path)
    if len(text) > MAX_HEADER_BYTES:
        raise CheckpointError(f"its GAN Studio header is {len(text) / 1024:.0f} KiB; a real one is a few KiB "
                              f"(at most {MAX_HEADER_BYTES // 1024} KiB accepted)", path)
    if json_depth(text) > MAX_HEADER_DEPTH:
        raise CheckpointError(f"its GAN Studio header nests deeper than {MAX_HEADER_DEPTH} levels; a real one "
                              f"nests 5", path)
    try:
        header = json.loads(text)
    except ValueError:  # not JSON, or a number too long for int()
        header = None
    if not (isinstance(header, dict) and header.get("kind") in (KIND_FULL, KIND_GENERATOR)
            and all(_count(header.get(k)) for k in ("epoch", "step")) and isinstance(header.get("config"), dict)):
        raise CheckpointError("its GAN Studio header is malformed (kind, epoch, step or config missing)", path)
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format {str(header.get('format_version'))[:20]} is not supported "
                              f"(this version reads {FORMAT_VERSION})", path)
    try:
        header["config"] = TrainConfig.from_stored(header["config"])
    except (ConfigError, TypeError) as e:  # TypeError: a value of a type no config field takes
        raise CheckpointError(f"its config is invalid: {e}", path) from None
    return header


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a checkpoint or generator file, checked for size, nesting, kind, version and config."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError("is a folder, not a checkpoint file", path)
    if not path.is_file():
        raise CheckpointError("no such checkpoint file", path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"not a safetensors checkpoint ({e}); checkpoints are .safetensors files written by "
                              f"GAN Studio", path) from None
    return _parse_header(meta, path)


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, on the CPU."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"unreadable checkpoint ({e})", path) from None


Layout = dict[str, tuple[tuple[int, ...], str]]  # tensor name → (shape, safetensors dtype tag)


def _file_layout(path: Path) -> Layout:
    """Every tensor's shape and dtype from the file's safetensors header, without reading any tensor."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"unreadable checkpoint ({e})", path) from None


def _layout(tensors: dict[str, torch.Tensor]) -> Layout:
    return {k: (tuple(v.shape), _TAG.get(v.dtype, str(v.dtype))) for k, v in tensors.items()}


def _check_layout(have: Layout, want: Layout, what: str, path: Path | None) -> None:
    """Refuse tensors missing from, extra to, or of another shape or dtype than `want` (a model's state_dict)."""
    bad = sorted(set(have) ^ set(want)) or sorted(k for k in want if have[k][0] != want[k][0])
    if bad:
        raise CheckpointError(f"weights do not fit the {what} its header describes ({len(bad)} tensor(s) missing, "
                              f"extra or of the wrong shape, e.g. {_name(bad[0])})", path)
    for k in sorted(want):
        if have[k][1] != want[k][1]:
            raise CheckpointError(f"{what} tensor {_name(k)} is {_READABLE.get(have[k][1], have[k][1])}, not "
                                  f"{_READABLE.get(want[k][1], want[k][1])}: GAN Studio writes weights as float32 "
                                  f"(only BatchNorm's counter num_batches_tracked is int64)", path)


def _check_finite(tensors: Iterable[tuple[str, torch.Tensor]], what: str, path: Path | None) -> None:
    for k, v in tensors:
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise CheckpointError(f"{what} tensor {_name(k)} holds NaN or infinite values (its training diverged, "
                                  f"or the file was altered); such weights draw nothing", path)


def _check_generator(header: dict[str, Any], layout: Layout, path: Path | None) -> str:
    """Check a file's generator tensors against the architecture its header describes; returns their prefix."""
    from .models import build_generator

    cfg: TrainConfig = header["config"]
    with torch.device("meta"):  # shapes only, no memory: a hostile header cannot make us allocate a huge model
        want = _layout(build_generator(cfg).state_dict())
    # A full checkpoint's samples come from the EMA copy when the run kept one, as its exports do.
    prefix = "" if header["kind"] == KIND_GENERATOR else (
        "G_ema.module." if any(k.startswith("G_ema.module.") for k in layout) else "G.")
    _check_layout({k[len(prefix):]: v for k, v in layout.items() if k.startswith(prefix) and not _is_d(k, header)},
                  want, f"{cfg.arch} generator", path)
    if header["kind"] == KIND_GENERATOR and any(_is_d(k, header) for k in layout):
        _check_discriminator(cfg, {k[2:]: v for k, v in layout.items() if _is_d(k, header)}, path)
    return prefix


def _is_d(name: str, header: dict[str, Any]) -> bool:
    """Whether tensor `name` of a generator export is D's (exports that carry D keep it under "D.")."""
    return header["kind"] == KIND_GENERATOR and name.startswith("D.")


def _check_discriminator(cfg: TrainConfig, layout: Layout, path: Path | None) -> None:
    """Check D's tensors (names without "D.") against the discriminator the config describes."""
    from .models import build_discriminator

    with torch.device("meta"):
        d = build_discriminator(cfg)
    names = _d_names(layout, d)
    _check_layout({names[k]: v for k, v in layout.items()}, _layout(d.state_dict()), f"{cfg.arch} discriminator",
                  path)


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix.`, with the prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _d_names(names: Iterable[str], d: nn.Module) -> dict[str, str]:
    """D's tensor names in a file → this version's names. Files from before the projection head (conditional
    generation) kept D's last Linear as `net.<K>` at the end of the body; it is now `head.linear`."""
    names = list(names)
    if any(k.startswith("head.") for k in names):
        return {k: k for k in names}
    # the slot right after the body's last layer: where the logit layer used to be
    old = f"net.{len(cast(nn.Sequential, d.net))}."
    return {k: "head.linear." + k[len(old):] if k.startswith(old) else k for k in names}


def discriminator_state(tensors: dict[str, torch.Tensor], d: nn.Module) -> dict[str, torch.Tensor]:
    """D's weights from a checkpoint, for `d`, old files' logit layer renamed (see _d_names)."""
    state = split_prefix(tensors, "D")
    names = _d_names(state, d)
    return {names[k]: v for k, v in state.items()}


def optimizer_state(tensors: dict[str, torch.Tensor], header: dict[str, Any], name: str) -> dict:
    """The optimizer state_dict stored under `name` ('opt_g' or 'opt_d')."""
    return _unflatten_optimizer(name, tensors, header["param_groups"][name])


# Adam's switches as GAN Studio sets them; another value would change or break the update on resume. capturable
# (a CUDA-graph run's optimizers) may be either: fused Adam's update is the same, and resume sets the run's own.
_ADAM_FLAGS = {"amsgrad": False, "maximize": False, "differentiable": False, "decoupled_weight_decay": False}


def _check_optimizer(name: str, groups: Any, state: Layout, shapes: list[tuple[int, ...]], path: Path | None) -> None:
    """One Adam's param_groups (from the header) and state tensors (`state.<i>.<key>`) against the model's
    parameters, so that load_state_dict and the first step cannot fail half-way into a resume."""
    n = len(shapes)
    if not (isinstance(groups, list) and len(groups) == 1 and isinstance(groups[0], dict)
            and groups[0].get("params") == list(range(n))):
        raise CheckpointError(f"{name}: its optimizer param_groups are missing or malformed (the model's optimizer "
                              f"has 1 group over its {n} parameters); it cannot resume exactly", path)
    group = groups[0]
    betas = group.get("betas", (0.9, 0.999))
    if not (all(_number(group.get(k, 0)) and group.get(k, 0) >= 0 for k in ("lr", "weight_decay"))
            and _number(group.get("eps", 1e-8)) and group.get("eps", 1e-8) > 0
            and isinstance(betas, (list, tuple)) and len(betas) == 2 and all(_number(b) and 0 <= b < 1 for b in betas)
            and all(group.get(k, v) is v for k, v in _ADAM_FLAGS.items())
            and all(group.get(k) in (None, True, False) for k in ("fused", "foreach", "capturable"))
            and not (group.get("fused") and group.get("foreach"))):
        raise CheckpointError(f"{name}: its optimizer settings are malformed (lr, betas, eps, weight_decay or "
                              f"Adam's switches are not what GAN Studio writes)", path)
    seen: dict[int, set[str]] = {}
    for rest, (shape, dtype) in state.items():
        kind, idx, key = (rest.split(".") + ["", "", ""])[:3]
        if not (kind == "state" and idx.isdecimal() and idx == str(int(idx)) and int(idx) < n and key in ADAM_STATE
                and rest.count(".") == 2):
            raise CheckpointError(f"unexpected optimizer tensor {_name(name + '.' + rest)}", path)
        want = () if key == "step" else shapes[int(idx)]
        if (shape, dtype) != (want, "F32"):
            raise CheckpointError(f"optimizer tensor {_name(name + '.' + rest)} is {_READABLE.get(dtype, dtype)} "
                                  f"{list(shape)}, not float32 {list(want)} as parameter {idx} needs", path)
        seen.setdefault(int(idx), set()).add(key)
    partial = sorted(i for i, keys in seen.items() if len(keys) != len(ADAM_STATE))
    if partial:
        raise CheckpointError(f"{name}: parameter {partial[0]}'s optimizer state is incomplete (Adam keeps "
                              f"{', '.join(ADAM_STATE)})", path)


def _check_rng(rng: Layout, header: dict[str, Any], cfg: TrainConfig, path: Path | None) -> None:
    """The RNG states and the saved position in the epoch: present, well-formed and consistent."""
    unknown = sorted(set(rng) - {"torch_cpu", "loop", "torch_cuda", "perm"})
    if unknown:
        raise CheckpointError(f"unexpected tensor {_name('rng.' + unknown[0])}", path)
    for key in ("torch_cpu", "loop"):
        if key not in rng:
            raise CheckpointError(f"its RNG state rng.{key} is missing, so it cannot resume exactly; resume from a "
                                  f"checkpoint GAN Studio wrote", path)
    for key in ("torch_cpu", "loop", "torch_cuda"):
        if key in rng and (rng[key][1] != "U8" or len(rng[key][0]) != 1 or not rng[key][0][0]):
            raise CheckpointError(f"its RNG state rng.{key} is not an RNG state (a flat uint8 tensor)", path)
    pos = header.get("pos", 0)
    if not _count(pos):
        raise CheckpointError("its position in the epoch (pos) is not a whole number ≥ 0", path)
    if "perm" in rng:
        shape, dtype = rng["perm"]
        if dtype != "I64" or len(shape) != 1:
            raise CheckpointError("its saved data order rng.perm is not a flat int64 tensor", path)
        if pos >= shape[0] // cfg.batch_size:  # the loop would never reach the epoch's end
            raise CheckpointError(f"it was saved {pos} steps into an epoch of {shape[0]} images, past the end of an "
                                  f"epoch at batch_size {cfg.batch_size}; resume with the batch size it was saved "
                                  f"with ({header['config'].batch_size})", path)
    elif pos:
        raise CheckpointError(f"it was saved {pos} steps into an epoch but without that epoch's data order "
                              f"(rng.perm)", path)


def check_resumable(path: str | os.PathLike, cfg: TrainConfig | None = None) -> dict[str, Any]:
    """The header of a full checkpoint that `cfg` (default: the config it was saved with) can resume exactly.

    Refused with CheckpointError: a generator export; G, D or EMA tensors missing, extra, misshapen, not float32
    or not finite; optimizer groups or state that do not fit the models; missing or malformed RNG state; a position
    in the epoch without its data order. A config that changes the architecture is a ConfigError. Shapes are checked
    against models built on the meta device, so a hostile header allocates nothing, and nothing is trained or
    written before all of it passes.
    """
    path = Path(path)
    header = read_header(path)
    if header["kind"] != KIND_FULL:
        raise CheckpointError("this is a generator export, not a full checkpoint; it cannot be resumed (resume from "
                              "a run folder or one of its checkpoints/ckpt-*.safetensors)", path)
    old: TrainConfig = header["config"]
    cfg = cfg or old
    problems = cfg.incompatible_with(old)
    if problems:
        raise ConfigError(f"cannot resume from {path}: the config differs in " + "; ".join(problems))
    layout = _file_layout(path)
    _check_full(header, cfg, layout, path)
    try:
        with safe_open(str(path), framework="pt") as f:
            _check_values(f.get_tensor, layout, path)  # values last: only now is every tensor what it claims to be
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"unreadable checkpoint ({e})", path) from None
    return header


def _check_full(header: dict[str, Any], cfg: TrainConfig, layout: Layout, path: Path | None) -> None:
    """Every tensor of a full checkpoint, from its layout: G, D and G_ema against the models `cfg` builds (on the
    meta device), Adam's state against their parameters, the RNG states and the saved position; nothing else."""
    from torch.optim.swa_utils import AveragedModel

    from .models import build_discriminator, build_generator

    parts: dict[str, Layout] = {p: {} for p in ("G", "D", "G_ema", "opt_g", "opt_d", "rng")}
    for k, v in layout.items():
        prefix, _, rest = k.partition(".")
        if prefix not in parts or not rest:
            raise CheckpointError(f"unexpected tensor {_name(k)}; a full checkpoint holds G, D, G_ema, opt_g, opt_d "
                                  f"and rng tensors", path)
        parts[prefix][rest] = v
    with torch.device("meta"):  # shapes only, no memory
        g, d = build_generator(cfg), build_discriminator(cfg)
        ema = AveragedModel(g)
    _check_layout(parts["G"], _layout(g.state_dict()), f"{cfg.arch} generator", path)
    names = _d_names(parts["D"], d)
    _check_layout({names[k]: v for k, v in parts["D"].items()}, _layout(d.state_dict()),
                  f"{cfg.arch} discriminator", path)
    if parts["G_ema"]:  # absent: the run had no EMA, and resume starts one from G if the config asks for it
        _check_layout(parts["G_ema"], _layout(ema.state_dict()), f"{cfg.arch} generator's EMA", path)
    groups = header.get("param_groups")
    groups = groups if isinstance(groups, dict) else {}
    for name, model in (("opt_g", g), ("opt_d", d)):
        _check_optimizer(name, groups.get(name), parts[name], [tuple(p.shape) for p in model.parameters()], path)
    _check_rng(parts["rng"], header, cfg, path)


def _check_values(get: Callable[[str], torch.Tensor], layout: Layout, path: Path | None) -> None:
    """A full checkpoint's values, one tensor at a time (`get(name)`): finite weights and moments, a CPU RNG state
    torch accepts, and a saved data order that is a permutation."""
    _check_finite(((k, get(k)) for k in sorted(layout) if not k.startswith("rng.")), "checkpoint", path)
    try:
        torch.Generator().set_state(get("rng.torch_cpu"))  # the one torch would set process-wide
    except RuntimeError:
        raise CheckpointError("its RNG state rng.torch_cpu is not a valid CPU RNG state", path) from None
    if "rng.perm" in layout:
        perm = get("rng.perm")
        if not torch.equal(perm.sort().values, torch.arange(perm.numel())):
            raise CheckpointError("its saved data order rng.perm is not a permutation of the training images", path)


def saved_order_size(path: str | os.PathLike) -> int | None:
    """How many training images the mid-epoch data order saved in a checkpoint covers (None: saved between epochs);
    a resume must train on that many."""
    shape = _file_layout(Path(path)).get("rng.perm", ((), ""))[0]
    return shape[0] if len(shape) == 1 else None


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, TrainConfig,
                                                                                          dict[str, Any]]:
    """(G in eval mode, its config, header) from a full checkpoint or a generator-only export; weights that do not
    fit the header's architecture, are not float32 or are not finite are refused."""
    from .models import build_generator

    path = Path(path)
    header = read_header(path)
    cfg: TrainConfig = header["config"]
    prefix = _check_generator(header, _file_layout(path), path)
    state = {k[len(prefix):]: v for k, v in load_tensors(path).items() if k.startswith(prefix) and not _is_d(k, header)}
    _check_finite(state.items(), f"{cfg.arch} generator", path)
    g = build_generator(cfg)
    g.load_state_dict(state)
    return g.to(device).eval(), cfg, header


def load_discriminator(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module | None:
    """D in eval mode from a full checkpoint or a generator export that carries one (save_generator(d=...)); None
    when the file has no D. Weights that do not fit the header's architecture or are not finite are refused."""
    from .models import build_discriminator

    path = Path(path)
    header = read_header(path)
    cfg: TrainConfig = header["config"]
    layout = _file_layout(path)
    _check_generator(header, layout, path)  # the file as a whole first, so a broken G is refused here too
    d_layout = {k[2:]: v for k, v in layout.items() if k.startswith("D.")}
    if not d_layout:
        return None
    _check_discriminator(cfg, d_layout, path)
    d = build_discriminator(cfg)
    state = discriminator_state(load_tensors(path), d)
    _check_finite(state.items(), f"{cfg.arch} discriminator", path)
    d.load_state_dict(state)
    return d.to(device).eval()


# What a safetensors header (the JSON before the tensors) may declare in an upload. A full checkpoint of the widest
# architecture GAN Studio builds (8 layers, spectral norm, EMA, both Adam states) holds a few hundred tensors and a
# header of a few dozen KiB; a hostile one could declare hundreds of thousands of empty tensors in 20 MB, each
# parsed and allocated before any other check.
MAX_UPLOAD_TENSORS = 1024
MAX_SAFETENSORS_HEADER = 1024 * 1024


def _declared(data: bytes) -> dict[str, Any] | None:
    """The safetensors header of `data` as JSON, its size and its count of tensors capped before it is parsed or any
    tensor read; None when the framing is not safetensors' (safetensors' own parse then says why)."""
    if len(data) < 8:
        return None
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        return None
    if n > MAX_SAFETENSORS_HEADER:
        raise CheckpointError(f"its safetensors header is {n / 1024:,.0f} KiB; a GAN Studio file's is a few dozen "
                              f"KiB (at most {MAX_SAFETENSORS_HEADER // 1024:,} KiB accepted)")
    try:
        text = data[8:8 + n].decode("utf-8")
        if json_depth(text) > MAX_HEADER_DEPTH:
            return None
        head = json.loads(text)
    except ValueError:  # not UTF-8, not JSON
        return None
    if not isinstance(head, dict):
        return None
    count = len(head) - ("__metadata__" in head)
    if count > MAX_UPLOAD_TENSORS:
        raise CheckpointError(f"its header declares {count:,} tensors; a GAN Studio checkpoint holds a few hundred "
                              f"at most ({MAX_UPLOAD_TENSORS:,} accepted)")
    return head


def check_upload(data: bytes, max_mb: float) -> dict[str, Any]:
    """Check an uploaded generator wholly in memory, before it is written anywhere: size, the safetensors header's
    size and tensor count (before any tensor is read), framing (not a pickle, not truncated), GAN Studio header
    (size, nesting, kind, version, config), then every tensor: a generator export's G (and D when it carries one),
    a full checkpoint's G, D, G_ema, optimizer and RNG tensors as check_resumable checks them, each against the
    architecture the header describes (names, shapes, dtypes), unknown tensors refused, values finite. Returns
    the header. No message names a path."""
    if len(data) > max_mb * 1024 * 1024:
        raise CheckpointError(f"the file is {len(data) / 2**20:.1f} MB; generators are accepted up to {max_mb:g} MB")
    head = _declared(data)
    try:
        tensors = safetensors_load(data)  # parses the header and checks every tensor lies inside the bytes
    except (SafetensorError, ValueError) as e:
        if data[:1] == b"\x80" or data[:4] == b"PK\x03\x04":  # pickle protocol 2+ / torch.save's zip
            raise CheckpointError("this is a pickle (torch.save) file, which can run code when loaded; only "
                                  ".safetensors files written by GAN Studio are accepted") from None
        raise CheckpointError(f"not a complete safetensors file (truncated upload, or another format): {e}") from None
    meta = (head or {}).get("__metadata__")
    header = _parse_header(meta if isinstance(meta, dict) else {}, None)
    layout = _layout(tensors)
    _check_generator(header, layout, None)  # G first: a bare generator under a full checkpoint's kind says so
    if header["kind"] == KIND_FULL:  # every other tensor too: Generate loads D from it, and a resume all of it
        _check_full(header, header["config"], layout, None)
        _check_values(tensors.__getitem__, layout, None)
    else:
        _check_finite(tensors.items(), f"{header['config'].arch} generator", None)
    return header
