"""The verbs that queue work for the workers: `submit` a run, `sweep` a group of them, list `sweeps` and rank a
sweep's runs."""
from __future__ import annotations

import argparse
from typing import Any

from ..config import PRESETS, ConfigError
from ..runs.sweep import METRICS, PRUNE_RULES
from .flags import RUN_ID_MAX, SEED_MAX, add_config_flags, config_from_args, int_in


def register(sub: Any) -> None:
    """Add `submit`, `sweep` and `sweeps` to the subcommands."""
    queue_flags(sub.add_parser("submit", help="validate a config and queue it as a run for the workers"),
                "run").set_defaults(func=cmd_submit)

    sw = sub.add_parser("sweep", help="queue a sweep: one run per point of a grid or random search (see README)")
    sw.add_argument("--param", action="append", default=[], required=True, metavar="NAME=VALUES",
                    help="a swept field: lr_g=1e-4,2e-4 (values), d_dropout=0..0.5 or lr_g=1e-5..1e-3:log (ranges, "
                         "random search only); list fields separate values with '|'. Repeat for more fields.")
    sw.add_argument("--random", type=int_in(1, 64), help="random search: this many draws (default: the full grid)")
    sw.add_argument("--seeds", type=int_in(1, 10), default=1, help="repeat every point over this many seeds")
    sw.add_argument("--prune", choices=PRUNE_RULES, default="none",
                    help="stop runs early whose FD at an epoch is worse than their sweep's median (median) or not "
                         "in the best 1/eta at a rung (asha); needs eval_samples on")
    sw.add_argument("--grace", type=int_in(1, 10_000), default=1, help="first epoch pruning may act (ASHA's rung)")
    sw.add_argument("--eta", type=int_in(2, 10), default=3, help="ASHA: keep the best 1/eta at each rung")
    sw.add_argument("--draw-seed", type=int_in(0, SEED_MAX), default=0, help="random search's own seed")
    sw.add_argument("--dry-run", action="store_true", help="print the points and planned compute; queue nothing")
    queue_flags(sw, "sweep").set_defaults(func=cmd_sweep)
    ls = sub.add_parser("sweeps", help="list sweeps, or one sweep's leaderboard")
    ls.add_argument("--sweep", type=int_in(1, RUN_ID_MAX), help="print this sweep's leaderboard")
    ls.add_argument("--metric", default="best FD", choices=list(METRICS),
                    help="what the leaderboard ranks by (default: best FD)")
    ls.set_defaults(func=cmd_sweeps)


def queue_flags(p: argparse.ArgumentParser, what: str) -> argparse.ArgumentParser:
    """The flags of a verb that queues work (`submit` a run, `sweep` a group): its config (preset, JSON file, one
    flag per field), name and owner."""
    p.add_argument("--preset", choices=list(PRESETS), help="a seed tutorial's recipe" + (
        " (the base every point changes)" if what == "sweep" else ""))
    p.add_argument("--config", help="a JSON file of config fields")
    p.add_argument("--name", help=f"{what} name")
    p.add_argument("--owner", help=f"who the {what} belongs to")
    add_config_flags(p)
    return p


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate a config and queue it as a run in the store; prints the run id."""
    from ..runs.store import Store, check_submission

    cfg = config_from_args(args)
    check_submission(cfg, name=args.name or "", owner=args.owner or "")  # refused here: not even a database file
    run_id = Store().submit(cfg, name=args.name or "", owner=args.owner or "")
    print(run_id)
    return 0


def sweep_spec_from_args(args: argparse.Namespace) -> Any:
    """The sweep.SweepSpec the `sweep` flags describe (ConfigError for a bad one)."""
    from ..runs.sweep import SweepSpec, parse_param

    return SweepSpec(params=tuple(parse_param(t) for t in args.param), mode="random" if args.random else "grid",
                     draws=args.random or 0, seeds=args.seeds, prune=args.prune, grace=args.grace, eta=args.eta,
                     draw_seed=args.draw_seed)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Plan a sweep, print its points and planned compute, and queue it (nothing with --dry-run or a bad point)."""
    from ..budget import check_fits
    from ..runs.sweep import plan, point_text, total_steps

    base, spec = config_from_args(args), sweep_spec_from_args(args)
    runs = plan(base, spec)  # ConfigError naming every bad point: nothing queued
    flops = sum(check_fits(r.config).train_flops for r in runs)
    print(f"sweep: {spec.describe()}")
    for r in runs:
        if r.repeat == 0:
            print(f"  point {r.point + 1:>2}: {point_text(r.values)}")
    print(f"{len(runs)} runs, {total_steps(runs):,} steps, about {flops / 1e12:.3g} TFLOP in all (before pruning)")
    if args.dry_run:
        return 0
    from ..runs.store import Store, check_sweep_submission

    check_sweep_submission(args.name or "sweep", args.owner or "", [r.config for r in runs])  # before any file
    store = Store()
    sweep_id = store.submit_sweep(args.name or "sweep", spec.to_dict(), base, [(r.point, r.config) for r in runs],
                                  spec.points(), owner=args.owner or "")
    print(f"queued sweep {sweep_id}: runs {', '.join(str(r.id) for r in store.sweep_runs(sweep_id))}")
    return 0


def cmd_sweeps(args: argparse.Namespace) -> int:
    """List sweeps, or with --sweep ID print its leaderboard ranked by --metric (mean ± std over seeds)."""
    from ..runs.store import Store
    from ..runs.sweep import leaderboard, point_text

    store = Store()
    if args.sweep is None:
        for sw in store.list_sweeps():
            runs = store.sweep_runs(sw.id)
            states = ", ".join(f"{n} {s}" for s, n in sorted(
                {s: sum(r.status == s for r in runs) for s in {r.status for r in runs}}.items()))
            print(f"{sw.id:>5}  {sw.name}  {len(runs)} runs ({states or 'none left'})")
        return 0
    sweep = store.get_sweep(args.sweep)
    if sweep is None:
        raise ConfigError(f"--sweep {args.sweep}: no such sweep (see `sweeps`)")
    runs = store.sweep_runs(sweep.id)
    board = leaderboard(sweep.points, [(r.id, r.sweep_point, r.status) for r in runs if r.sweep_point is not None],
                        {r.id: store.quality(r.id) for r in runs}, args.metric)
    print(f"sweep {sweep.id} {sweep.name}: ranked by {args.metric} (mean over seeds)")
    for e in board:
        score = "-" if e.mean is None else f"{e.mean:.3f}" + ("" if e.std is None else f" ± {e.std:.3f}")
        rank = "-" if e.rank is None else e.rank
        print(f"{rank:>3}. {score:>18}  runs {','.join(map(str, e.run_ids)):<12} {'/'.join(e.statuses):<20} "
              f"{point_text(e.values)}")
    return 0
