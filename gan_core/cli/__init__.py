"""`python -m gan_core train | sample | bench | gpu-check | ...`: the command line over the same TrainConfig the
dashboard uses. One module per group of verbs, each with `register(subparsers)` beside its handlers. Each verb
imports what it needs when it runs: `gpu-check` must work on a machine without the store's SQLAlchemy (and the
dashboard's Streamlit and Plotly)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ..checkpoint import CheckpointError
from ..config import ConfigError
from . import generate, quality, queue, runs, tools, toy, train, worker

# In `--help` order.
GROUPS = (train, generate, tools, quality, worker, queue, runs, toy)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every subcommand, each group's verbs added by its module's `register`."""
    p = argparse.ArgumentParser(prog="python -m gan_core", description="GAN Studio engine")
    sub = p.add_subparsers(dest="cmd", required=True)
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, and turn a person's mistakes into one `error:` line and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    # Only the errors a person's input or machine causes (OSError: missing data, unwritable paths, a full disk);
    # anything else is a bug and keeps its traceback.
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that are a person's mistake or their machine's state, not a bug.

    StoreError counts only once the store was imported (nothing else raises it), so that verbs without a store
    never import SQLAlchemy.
    """
    store = sys.modules.get("gan_core.runs.store")
    return (ConfigError, CheckpointError, OSError, json.JSONDecodeError, UnicodeDecodeError) + (
        (store.StoreError,) if store is not None else ())
