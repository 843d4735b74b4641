"""The Runs page's table: one row per run, its filters and groups (kept in the URL: ?owner=ada&status=running),
and one page of it read from the store with LIMIT/OFFSET."""
from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..runs.status import RunStatus
from ..runs.store import RunView, RunWhere, Store
from .progress import epoch_progress
from .text import ordinal, parse_id

STATUS_ICONS = {RunStatus.QUEUED: ":material/schedule:", RunStatus.RUNNING: ":material/play_circle:",
                RunStatus.STOPPING: ":material/pause_circle:", RunStatus.STOPPED: ":material/stop_circle:",
                RunStatus.DONE: ":material/check_circle:", RunStatus.FAILED: ":material/error:",
                RunStatus.INTERRUPTED: ":material/warning:",
                RunStatus.PRUNED: ":material/content_cut:"}  # StrEnum keys: a plain status string finds its icon


NAME_CHARS = 40  # the runs table's name column: longer names end in "…" (the live view shows them in full)


def runs_table(runs: Sequence[RunView], places: Mapping[int, int | None] | None = None) -> list[dict[str, Any]]:
    """One row per run for the runs table: id, name, owner, status (with the place in the queue: `places`, run id
    → place, as the store's queue_position says; else counted among `runs`), progress (whole %), epoch, step, arch,
    and when it was created (a UTC datetime: the browser shows its age, which stays true while the table is not
    redrawn)."""
    queued = sorted(r.id for r in runs if r.status == RunStatus.QUEUED)  # workers claim the oldest first
    if places is None:
        places = {i: n + 1 for n, i in enumerate(queued)}

    def status(r: RunView) -> str:
        place = places.get(r.id) if r.status == RunStatus.QUEUED else None
        return f"queued ({ordinal(place)})" if place else r.status

    def short(text: str) -> str:
        return text if len(text) <= NAME_CHARS else text[:NAME_CHARS - 1] + "…"

    return [{"id": r.id, "name": short(r.name), "owner": short(r.owner or "–"), "tags": ", ".join(r.tags),
             "status": status(r),
             "progress": round(100 * r.progress), "epoch": epoch_progress(r), "step": f"{r.step}/{r.total_steps}",
             "arch": r.config.arch, "dataset": r.config.dataset,
             "created": datetime.datetime.fromtimestamp(r.created_at, datetime.UTC)} for r in runs]


# --- the runs table's filters and groups (kept in the URL: ?owner=ada&status=running&group=owner) -----------
RUN_FILTERS = ("owner", "tag", "status", "sweep")


RUN_GROUPS = ("sweep", "none", "owner", "tag", "status")  # "sweep" (the default) folds each sweep's runs
NO_SWEEP = "none"  # ?sweep=none: the runs outside every sweep
NO_OWNER = "–"     # how the table shows a run started without a name
_MAX_SHOWN = 40    # characters of a refused URL value quoted back
MAX_SEARCH = 100   # characters of a name search (?q=) kept


@dataclasses.dataclass(frozen=True)
class RunFilter:
    """Which runs the runs table shows (None: every value) and how it groups them (one of RUN_GROUPS)."""
    owner: str | None = None
    tag: str | None = None
    status: str | None = None
    sweep: int | str | None = None  # a sweep id, or NO_SWEEP
    group: str = "sweep"
    text: str | None = None  # words the run's name contains (any case): ?q=

    def query(self) -> dict[str, str]:
        """The URL query parameters that reproduce this view (defaults left out)."""
        q = {k: str(getattr(self, k)) for k in RUN_FILTERS if getattr(self, k) is not None}
        return q | ({"group": self.group} if self.group != "sweep" else {}) | ({"q": self.text} if self.text else {})

    @property
    def narrowed(self) -> bool:
        """Whether any filter is set."""
        return bool(self.text) or any(getattr(self, k) is not None for k in RUN_FILTERS)


def run_filter_options(runs: Sequence[RunView]) -> dict[str, list[Any]]:
    """The values each filter offers: the owners, tags and sweeps of `runs`, every status."""
    return {"owner": sorted({r.owner or NO_OWNER for r in runs}, key=lambda s: (s.lower(), s)),
            "tag": sorted({t for r in runs for t in r.tags}),
            "status": [s.value for s in RunStatus],
            "sweep": [*sorted({r.sweep_id for r in runs if r.sweep_id is not None}, reverse=True), NO_SWEEP]}


def filter_options(store: Store, limit: int | None = None) -> dict[str, list[Any]]:
    """What `run_filter_options` gives, read from the store without reading every run: the owners and tags of
    the newest runs (at most `limit`, default FACET_LIMIT, each), every sweep with runs, every status."""
    got = store.run_facets(limit or FACET_LIMIT)
    return {"owner": sorted({o or NO_OWNER for o in got["owner"]}, key=lambda s: (s.lower(), s)),
            "tag": sorted(got["tag"]),
            "status": [s.value for s in RunStatus],
            "sweep": [*got["sweep"], NO_SWEEP]}


def run_where(f: RunFilter) -> RunWhere:
    """The filter as the store's WHERE clauses (`filter_runs` in SQL; the group changes no row)."""
    return RunWhere(owners=None if f.owner is None else (("", NO_OWNER) if f.owner == NO_OWNER else (f.owner,)),
                    tag=f.tag, status=f.status,
                    sweep=None if f.sweep is None else (0 if f.sweep == NO_SWEEP else int(f.sweep)),
                    text=f.text or None)


def has_runs(store: Store) -> Callable[[str, Any], bool]:
    """For `parse_run_filter`: whether any (not deleted) run has this owner, tag or sweep (a value past the
    options' limit is still a value)."""
    return lambda key, value: store.count_matching(run_where(RunFilter(**{key: value}))) > 0


PAGE_SIZE = 50      # rows of the runs table a page: what one load reads, parses and sends
FACET_LIMIT = 200   # owners and tags a filter offers at most (of the newest runs); a link may name any other


@dataclasses.dataclass(frozen=True)
class RunPage:
    """One page of the runs table: its runs (newest first), the total that matches, and where it is."""
    runs: tuple[RunView, ...]
    total: int
    page: int  # 1-based, within 1..pages
    size: int

    @property
    def pages(self) -> int:
        """How many pages the matching runs fill (1 when none match)."""
        return max(1, math.ceil(self.total / self.size))

    def caption(self, every: int | None = None) -> str:
        """'1,234 of 30,000 runs match; showing 51–100.' (`every`: the runs in all, when a filter is set), '6 runs.'
        when one page holds them all."""
        first = (self.page - 1) * self.size + 1
        shown = f"; showing {first:,}–{min(self.total, first + self.size - 1):,}" if self.pages > 1 else ""
        if every is None:
            return f"{self.total:,} run{'' if self.total == 1 else 's'}{shown}."
        if not self.total:
            return f"No run matches these filters ({every:,} runs in all)."
        return f"{self.total:,} of {every:,} runs match{shown}."


def read_page(store: Store, f: RunFilter, page: int, size: int = PAGE_SIZE,
              unreadable: list | None = None) -> RunPage:
    """Page `page` (1-based; past the last: the last) of the runs that `f` keeps: a COUNT and one LIMIT/OFFSET
    read, whatever the number of rows."""
    where = run_where(f)
    total = store.count_matching(where)
    page = min(max(1, page), max(1, math.ceil(total / size)))
    return RunPage(tuple(store.runs_page(where, size, (page - 1) * size, unreadable)), total, page, size)


def parse_page(params: Mapping[str, Any]) -> tuple[int, str | None]:
    """The runs table's page from ?page= (1-based): (page, why a value was refused or None)."""
    raw = params.get("page")
    if isinstance(raw, (list, tuple)):
        raw = raw[-1] if raw else None
    if raw is None or not str(raw).strip():
        return 1, None
    value = str(raw).strip()
    if (page := parse_id(value)) is not None:  # as every id: ASCII digits only, '²' is no page number
        return page, None
    shown = value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN - 1] + "…"
    return 1, f"“{shown}” is not a page number: showing the first page."


def parse_run_filter(params: Mapping[str, Any], options: Mapping[str, Sequence[Any]],
                     exists: Callable[[str, Any], bool] | None = None) -> tuple[RunFilter, list[str]]:
    """The runs table's view from URL query parameters: (filter, [why each refused value was ignored]). A value
    that names nothing here (a status that does not exist, an owner with no runs, a sweep id that is not a number)
    is refused in words and that filter left off; nothing raises. `exists(key, value)` is asked about an owner, tag
    or sweep the options leave out (they list only the newest runs')."""
    got: dict[str, Any] = {}
    problems = []
    text = params.get("q")
    if isinstance(text, (list, tuple)):
        text = text[-1] if text else None
    if text and " ".join(str(text).split()):  # free words, matched literally: nothing to refuse, only a length
        got["text"] = " ".join(str(text).split())[:MAX_SEARCH]
    for key in (*RUN_FILTERS, "group"):
        raw = params.get(key)
        if isinstance(raw, (list, tuple)):  # ?status=a&status=b: the last, as st.query_params.get gives it
            raw = raw[-1] if raw else None
        if raw is None or not str(raw).strip():
            continue
        words = " ".join(str(raw).split())
        shown = words if len(words) <= _MAX_SHOWN else words[:_MAX_SHOWN - 1] + "…"
        value: int | str = words.lower() if key == "tag" else words
        if key == "sweep" and value != NO_SWEEP:
            value = parse_id(str(raw)) or value  # the raw value: " 1" names no sweep here either
        allowed = RUN_GROUPS if key == "group" else options.get(key, ())
        if value in allowed or (exists is not None and key in ("owner", "tag", "sweep") and value != NO_SWEEP
                                and (key != "sweep" or isinstance(value, int)) and exists(key, value)):
            got[key] = value
        elif key == "status":
            problems.append(f"“{shown}” is not a run status (one of {', '.join(allowed)}): showing every status.")
        elif key == "sweep":
            problems.append(f"“{shown}” is not a sweep with runs here (a sweep's number, or {NO_SWEEP} for the runs "
                            f"outside sweeps): showing every sweep.")
        elif key == "group":
            problems.append(f"runs cannot be grouped by “{shown}” (only by {', '.join(RUN_GROUPS[1:])}, or "
                            f"sweep): grouped by sweep.")
        else:
            problems.append(f"no run has the {key} “{shown}”: showing every {key}.")
    return RunFilter(**got), problems


def filter_runs(runs: Sequence[RunView], f: RunFilter) -> list[RunView]:
    """The runs that pass every filter of `f`, in their order (what `read_page` asks the store for, in Python)."""
    def keep(r: RunView) -> bool:
        return ((f.owner is None or (r.owner or NO_OWNER) == f.owner) and (f.tag is None or f.tag in r.tags)
                and (not f.text or f.text.lower() in r.name.lower())
                and (f.status is None or r.status == f.status)
                and (f.sweep is None or (r.sweep_id is None if f.sweep == NO_SWEEP else r.sweep_id == f.sweep)))
    return [r for r in runs if keep(r)]


@dataclasses.dataclass(frozen=True)
class RunGroup:
    """One group of the runs table: a stable key, its heading, its runs; `folded` for a sweep's runs (shown closed
    under one line, so a 12-run sweep is one line of the page until opened)."""
    key: str
    label: str
    runs: tuple[RunView, ...]
    folded: bool = False

    def summary(self) -> str:
        """'4 done, 2 pruned'."""
        counts: dict[str, int] = {}
        for r in self.runs:
            counts[r.status] = counts.get(r.status, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in counts.items())


def group_runs(runs: Sequence[RunView], by: str, sweep_names: Mapping[int, str] | None = None) -> list[RunGroup]:
    """The runs in groups for the table, each group's runs in their order: by sweep (runs outside sweeps first,
    then one folded group a sweep, newest first), owner, tag (a run under each of its tags, untagged last), status
    (in RunStatus order), or "none" (one group)."""
    names = sweep_names or {}
    if by == "sweep":
        alone = tuple(r for r in runs if r.sweep_id is None)
        ids = sorted({r.sweep_id for r in runs if r.sweep_id is not None}, reverse=True)
        groups = [RunGroup(NO_SWEEP, "Runs outside sweeps", alone)] if alone else []
        for i in ids:
            members = tuple(r for r in runs if r.sweep_id == i)
            groups.append(RunGroup(f"sweep-{i}", f"Sweep #{i} {names.get(i, '')}".rstrip()
                                   + f" · {len(members)} run{'' if len(members) == 1 else 's'}", members, folded=True))
        return groups
    if by == "owner":
        keys = sorted({r.owner or NO_OWNER for r in runs}, key=lambda s: (s.lower(), s))
        return [RunGroup(f"owner-{k}", f"Owner {k}", tuple(r for r in runs if (r.owner or NO_OWNER) == k))
                for k in keys]
    if by == "tag":
        keys = sorted({t for r in runs for t in r.tags})
        groups = [RunGroup(f"tag-{k}", f"Tag {k}", tuple(r for r in runs if k in r.tags)) for k in keys]
        untagged = tuple(r for r in runs if not r.tags)
        return groups + ([RunGroup("tag-", "No tags", untagged)] if untagged else [])
    if by == "status":
        return [RunGroup(f"status-{s}", str(s).capitalize(), tuple(r for r in runs if r.status == s))
                for s in RunStatus if any(r.status == s for r in runs)]
    return [RunGroup("all", "All runs", tuple(runs))] if runs else []
