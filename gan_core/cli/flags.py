"""What every verb's flags share: argparse types for bounded numbers, one flag per TrainConfig field, the config
they describe (preset + `--config FILE` + flags) and the checks on an output path before any work."""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..checkpoint import json_depth
from ..config import ConfigError, TrainConfig, coerce_value, config_fields

SEED_MAX = TrainConfig.most("seed")  # seeds are 0..2**31-1, as in TrainConfig
EPOCHS_MAX = TrainConfig.most("epochs")
RUN_ID_MAX = 2**63 - 1  # the store's 64-bit id column
MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes
MAX_CONFIG_DEPTH = 4  # an object of fields, some of them lists: 2 levels


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `lo` to `hi` (argparse puts the flag's name before the message)."""
    def parse(text: str) -> int:
        shown = text if len(text) <= 40 else text[:37] + "..."
        try:
            value = int(text)
        except ValueError:  # not a number, or more digits than int() converts
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo} to {hi}, got {shown!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{shown} is out of range; allowed {lo} to {hi}")
        return value
    return parse


def float_in(lo: float, hi: float) -> Callable[[str], float]:
    """An argparse type: a number from `lo` to `hi` (nan and inf are out of every range)."""
    def parse(text: str) -> float:
        shown = text if len(text) <= 40 else text[:37] + "..."
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number from {lo:g} to {hi:g}, got {shown!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{shown} is out of range; allowed {lo:g} to {hi:g}")
        return value
    return parse


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One `--field-name` flag per TrainConfig field, help and choices from the field's metadata."""
    g = p.add_argument_group("config fields (override the preset)")
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        if isinstance(f.default, bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=meta["help"])
        else:
            rng = f" [{meta['min']:g}..{meta['max']:g}]" if meta["min"] is not None else ""
            g.add_argument(flag, default=None, choices=meta["choices"], metavar=None if meta["choices"] else "V",
                           help=f"{meta['help']}{rng} (default {_show(f.default)})")


def _show(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line, coerced to their types."""
    return {f.name: coerce_value(f.name, getattr(args, f.name)) for f in config_fields()
            if getattr(args, f.name, None) is not None}


def read_config_file(name: str) -> dict[str, Any]:
    """The JSON object of config fields in file `name`; anything else (a folder, binary bytes, a list, JSON nested
    deeper than a config needs) is a ConfigError that names --config."""
    path = Path(name)
    if path.is_dir():
        raise ConfigError(f"--config: {name} is a folder; give a JSON file of config fields like {{\"epochs\": 5}}")
    if not path.is_file():
        raise ConfigError(f"--config: {name}: no such file" if not path.exists() else
                          f"--config: {name} is not a regular file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"--config: {name} is {path.stat().st_size / 2**20:.1f} MB; a config file is a few hundred "
                          f"bytes (at most {MAX_CONFIG_BYTES // 2**20} MB accepted)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"--config: {name} is not UTF-8 text; give a JSON file of config fields") from None
    if json_depth(text) > MAX_CONFIG_DEPTH:  # refused before parsing: json recurses once per level
        raise ConfigError(f"--config: {name} nests deeper than {MAX_CONFIG_DEPTH} levels; a config is one object "
                          f"of fields")
    try:
        data = json.loads(text)
    except ValueError as e:  # JSONDecodeError, or a number too long for int()
        raise ConfigError(f"--config: {name} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {name} holds a JSON {type(data).__name__}, not an object of config fields "
                          f"like {{\"epochs\": 5}}")
    return data


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Preset (or defaults) + `--config FILE` + individual flags, validated."""
    base = read_config_file(args.config) if args.config else {}
    if args.preset:
        return TrainConfig.from_preset(args.preset, **{**base, **config_overrides(args)})
    return TrainConfig.from_dict({**base, **config_overrides(args)})


def check_new_path(path: Path, flag: str, folder: bool) -> None:
    """Refuse, before any work, an output path that cannot be created: a folder where a file goes or a file where a
    folder goes, a path under a file, or one inside a folder this user cannot write."""
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag}: {path} is a file; train writes a run folder (config.json, checkpoints/, "
                          f"samples/) there, so give a folder")
    if not folder and path.is_dir():
        raise ConfigError(f"{flag}: {path} is a folder; give a file name")
    here = path.absolute()
    for at in ([here] if folder else []) + list(here.parents):  # the nearest folder that exists must take writes
        if at.exists():
            if not at.is_dir():
                raise ConfigError(f"{flag}: {path} lies under {at}, which is a file, not a folder")
            if not os.access(at, os.W_OK | os.X_OK):
                raise ConfigError(f"{flag}: cannot write {path}: {at} is not writable")
            return
