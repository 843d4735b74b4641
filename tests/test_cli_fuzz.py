"""Random command lines at every verb: exit code 0 or 2, and never a traceback (issue 14).

Each example runs `gan_core.cli.main(argv)` in this process with a throwaway GAN_HOME and data cache, an empty data
folder and a download mirror on a refusing loopback port: nothing can train (the data step refuses first), nothing
leaves this machine, and `worker` always runs with --once. Flags come from the real parser plus junk; values are
numbers (huge, negative, nan, inf), junk text, and files: empty, random bytes, JSON of random shapes, truncated
safetensors and safetensors with hostile headers.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import pickle
import signal
import socket
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from gan_core import cli, data
from gan_core.checkpoint import load_tensors, save_generator
from gan_core.config import PRESETS, TrainConfig, config_fields
from gan_core.events import ListSink
from gan_core.models import build_generator
from gan_core.trainer import latest_checkpoint, train

VERBS = ("train", "sample", "bench", "evaluate", "worker", "submit", "runs", "stop", "resume")
FUZZ = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TINY = TrainConfig.from_preset("seed004-dense", g_widths=(16,), d_widths=(16,), latent_dim=10, batch_size=32,
                               train_subset=128, epochs=1, max_steps=2, eval_samples=0, device="cpu")
# Settings a person may get wrong; none names a host that would be looked up (the database URLs fail to parse).
ENV_VALUES = {
    "GAN_DB_URL": ["postgresql+psycopg://gan:hunter2@db:abc/gan", "nosuchdb://gan:hunter2@db/gan", "not a url",
                   "postgresql://gan:hunter2@[::1/gan"],
    "GAN_MAX_CONCURRENT": ["abc", "0", "-1", "nan", "1e400", "2"],
    "GAN_HEARTBEAT_S": ["soon", "inf", "-1", "0.5"],
    "GAN_HEARTBEAT_TIMEOUT": ["x", "nan", "0", "30"],
}


def _actions() -> dict[str, dict[str, argparse.Action]]:
    """Every option string of every subcommand, with its argparse action, from the real parser."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {verb: {s: a for a in p._actions for s in a.option_strings} for verb, p in sub.choices.items()}


ACTIONS = _actions()
del ACTIONS["bench"]["--generate"]  # times generation without data; everything else stops at the data step


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    """A scratch world: environment, working folder and a shelf of good and bad files."""
    root = tmp_path_factory.mktemp("fuzz")
    for d in ("cwd", "no-data", "drawn", "a-folder"):
        (root / d).mkdir()
    refusing = socket.socket()  # bound, never listening: the download fallback is refused at once, on loopback
    refusing.bind(("127.0.0.1", 0))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GAN_HOME", str(root / "home"))
        mp.setenv("GAN_CACHE_DIR", str(root / "cache"))
        mp.setenv("GAN_DATA_DIR", str(root / "no-data"))
        mp.setenv("GAN_DATA_MIRROR", f"http://127.0.0.1:{refusing.getsockname()[1]}/")
        for name in ("GAN_DB_URL", "GAN_EXECUTOR", "GAN_DATA_DOWNLOAD", "GAN_DEMO_MODE", *ENV_VALUES):
            mp.delenv(name, raising=False)
        mp.setitem(data.SYSTEM_DIRS, "fashion_mnist", [])  # Debian's Fashion-MNIST would let a run start
        mp.chdir(root / "cwd")  # relative names from the fuzzer land here
        yield _shelf(root)
    refusing.close()


def _shelf(root: Path) -> dict[str, Path]:
    gen = root / "gen.safetensors"
    save_generator(gen, TINY, build_generator(TINY), 1, 2)
    cond = root / "cond.safetensors"
    save_generator(cond, TINY.replace(conditional=True), build_generator(TINY.replace(conditional=True)), 1, 2)
    run = root / "run"  # a real run folder; trained on noise, since no dataset is reachable here by design
    train(TINY, ListSink(), images=torch.randint(0, 256, (128, 28, 28), dtype=torch.uint8), out_dir=run)
    full = latest_checkpoint(run)
    tensors, header = load_tensors(gen), json.loads(json.dumps(_header(gen)))

    def hostile(name: str, meta: str, t: dict | None = None) -> Path:
        save_file(t if t is not None else tensors, str(root / name), metadata={"gan_studio": meta})
        return root / name

    shelf = {
        "gen": gen, "cond": cond, "run": run, "full": full, "folder": root / "a-folder", "missing": root / "missing",
        "empty": root / "empty.safetensors", "random": root / "random.bin", "pickle": root / "pickle.safetensors",
        "cut": root / "cut.safetensors", "under-file": root / "empty.safetensors" / "x",
        "deep": hostile("deep.safetensors", "[" * 20_000 + "]" * 20_000),
        "huge": hostile("huge.safetensors", json.dumps({**header, "pad": "x" * 100_000})),
        "liar": hostile("liar.safetensors", json.dumps({**header, "config": {**header["config"], "g_widths": [8192]}})),
        "nan": hostile("nan.safetensors", json.dumps(header), {k: v.clone().fill_(float("nan")) for k, v in
                                                               tensors.items()}),
        "int8": hostile("int8.safetensors", json.dumps(header), {k: v.to(torch.int8) for k, v in tensors.items()}),
        "v2": hostile("v2.safetensors", json.dumps({**header, "format_version": 2})),
    }
    shelf["empty"].write_bytes(b"")
    shelf["random"].write_bytes(os.urandom(4096))
    shelf["pickle"].write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    shelf["cut"].write_bytes(full.read_bytes()[:3000])
    return shelf


def _header(path: Path) -> dict:
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["gan_studio"])


# --- what the fuzzer draws ------------------------------------------------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=12)
FIELD_NAMES = [f.name for f in config_fields()]
CONFIGISH = st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=6), JSON, max_size=5)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)  # argv-able
NUMBERS = st.one_of(st.integers(-10, 300).map(str), st.integers(-2**70, 2**70).map(str), st.floats().map(str),
                    st.sampled_from(["nan", "inf", "-inf", "1e400", "-0", "0x10", "1_000", "", " 7 ", "9" * 5000,
                                     str(2**31), str(2**63), str(2**64)]))
SHELF = st.sampled_from(["gen", "cond", "run", "full", "folder", "missing", "empty", "random", "pickle", "cut",
                         "under-file", "deep", "huge", "liar", "nan", "int8", "v2"]).map(lambda k: ("shelf", k))
DRAWN = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=300)),
    st.tuples(st.just("json"), JSON | CONFIGISH),
    st.tuples(st.just("cut"), st.integers(0, 6000)),
    st.tuples(st.just("header"), JSON | CONFIGISH | st.text(max_size=30)),
    st.tuples(st.just("config"), CONFIGISH),
)
OUTS = st.sampled_from(["out.png", "out.npy", "out.jpg", "run-dir", "a/b/c.png", "", ".", "../cwd/x.npy"])
VALUES = st.one_of(NUMBERS, TEXT, SHELF, DRAWN, OUTS, st.sampled_from(list(PRESETS) + ["dense", "dcgan", "cpu",
                                                                                    "cuda", "bf16", "mnist"]))


FIELDS = {"--" + f.name.replace("_", "-"): f for f in config_fields()}


def _field_value(f) -> st.SearchStrategy:
    """Mostly a value the field allows (so a command gets past validation to the next check), else anything."""
    meta, kind = f.metadata, type(f.default)
    if meta["choices"]:
        good = st.sampled_from(list(meta["choices"]))
    elif kind is tuple:
        good = st.lists(st.integers(int(meta["min"] or 1), int(meta["max"] or 64)), min_size=1, max_size=3).map(
            lambda xs: ",".join(map(str, xs)))
    elif kind is int:
        good = st.integers(int(meta["min"] or 0), int(min(meta["max"] or 100, 2**40))).map(str)
    elif kind is float:
        good = st.floats(meta["min"] or 0.0, meta["max"] or 1.0).map(str)
    else:
        good = st.sampled_from(["true", "false", "yes", "0"])
    return st.one_of(good, good, good, NUMBERS, TEXT)


def _value(flag: str, action: argparse.Action) -> st.SearchStrategy:
    """What to put after `flag`: shaped by the flag's kind, with junk mixed in."""
    if flag in ("--checkpoint", "--resume", "--config"):
        return SHELF | DRAWN | TEXT
    if flag == "--out":
        return OUTS | SHELF
    if flag == "--data-dir":
        return st.sampled_from(["/nonexistent", "", "a:b", "../no-data"]) | TEXT
    if flag in FIELDS:
        return _field_value(FIELDS[flag])
    if action.choices:
        return st.sampled_from(list(action.choices)) | TEXT
    if action.type is not None:  # the ranged whole numbers
        return NUMBERS
    return VALUES


@st.composite
def command(draw, verb: str) -> tuple[list, dict[str, str]]:
    """(argv with file placeholders, environment overrides) for `verb`."""
    actions = ACTIONS[verb]
    argv: list = [verb]
    required = {"sample": ["--checkpoint", "--out"], "evaluate": ["--checkpoint"], "train": ["--out"],
                "stop": ["--run"], "resume": ["--run"]}.get(verb, [])
    mostly = st.sampled_from([True] * 5 + [False])  # (hypothesis leans to the first choice)
    flags = [f for f in required if draw(mostly)]  # the required ones, mostly
    flags += draw(st.lists(st.sampled_from(sorted(actions)), max_size=5))
    for flag in flags:
        action = actions[flag]
        if action.nargs == 0:  # switches (--once, --conditional, --no-compile, --help)
            if flag in ("-h", "--help") and draw(mostly):
                continue  # help exits 0 before anything else: keep it rare
            argv.append(flag)
        else:
            argv += [flag, draw(_value(flag, action))]
    if not draw(mostly):  # junk flags and values now and then
        argv += draw(st.lists(st.sampled_from(["--nope", "-x", "--", "--n=", "---"]) | VALUES, min_size=1,
                              max_size=2))
    if verb == "train":  # a safety net only: without data no run starts, but a short one could not take long either
        argv += ["--epochs", "1", "--max-steps", "2", "--eval-samples", "0"]
    if verb == "worker":
        argv += ["--once", "--max-runs", "1"]
    env = {}
    if verb in ("worker", "submit", "runs", "stop", "resume"):
        names = draw(st.lists(st.sampled_from(sorted(ENV_VALUES)), max_size=2, unique=True))
        env = {k: draw(st.sampled_from(ENV_VALUES[k])) for k in names}
    return argv, env


_counter = itertools.count()


def _materialise(value, shelf: dict[str, Path]) -> str:
    """A drawn argv item as text: shelf entries by path, drawn files written to a fresh name first."""
    if isinstance(value, str):
        return value
    kind, payload = value
    if kind == "shelf":
        return str(shelf[payload])
    path = shelf["folder"].parent / "drawn" / f"{next(_counter)}.{'json' if kind in ('json', 'config') else 'st'}"
    if kind == "bytes":
        path.write_bytes(payload)
    elif kind in ("json", "config"):
        path.write_text(json.dumps(payload))
    elif kind == "cut":
        path.write_bytes(shelf["full"].read_bytes()[:payload])
    else:  # a generator whose header was replaced by the drawn JSON (or text)
        meta = payload if isinstance(payload, str) else json.dumps(payload)
        save_file(load_tensors(shelf["gen"]), str(path), metadata={"gan_studio": meta})
    return str(path)


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """`main(argv)` with stdout/stderr captured; process-wide state (env, torch threads, signals) restored after."""
    saved = {k: os.environ.get(k) for k in env}
    threads = torch.get_num_threads()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(argv)
            except SystemExit as e:  # argparse: --help (0) or a refused flag (2)
                rc = 0 if e.code is None else e.code
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        torch.set_num_threads(threads)
        for s, h in handlers.items():
            signal.signal(s, h)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("verb", VERBS)
@FUZZ
@given(st.data())
def test_random_command_lines_exit_0_or_2_without_a_traceback(verb, arena, choice):
    drawn, env = choice.draw(command(verb), label="command")
    argv = [_materialise(v, arena) for v in drawn]
    choice.draw(st.just(argv), label="argv")  # shown with a failing example
    rc, out, err = _run(argv, env)  # an uncaught exception fails the test with its traceback
    assert "Traceback" not in err and "Traceback" not in out, err
    assert rc in (0, 2), (rc, err)
    if rc == 2 and not err.startswith("usage:"):
        assert err.startswith("error: "), err  # our refusals: one `error:` line first
    assert "hunter2" not in err  # a database password never reaches the screen


def test_junk_verbs_are_argparse_errors(arena):
    for argv in ([], ["trian"], ["--out", "x"], ["sample", "--checkpoint"]):
        rc, _, err = _run(argv, {})
        assert rc == 2 and err.startswith("usage:") and "Traceback" not in err
