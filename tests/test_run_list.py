"""The Runs page's table: its rows, filters, groups and pages, read back from the URL (gan_core.web.run_list)."""
import dataclasses
import time

from gan_core.config import TrainConfig
from gan_core.runs.store import RunView
from gan_core.web import run_list, text


def _run(status="running", step=100, total=1000, batch=50) -> RunView:
    return RunView(1, "r", "me", TrainConfig(batch_size=batch), status, None, time.time() - 60, None, None, None,
                   None, False, False, 0, step, total, "run-000001")


def test_runs_table_and_label():
    row = run_list.runs_table([_run()])[0]
    assert row["progress"] == 10 and row["status"].endswith("running") and row["step"] == "100/1000"
    assert text.run_label(_run()).startswith("#1 r")


def test_runs_table_shortens_long_names():
    long = dataclasses.replace(_run(), name="x" * 150)
    name = run_list.runs_table([long])[0]["name"]
    assert len(name) == run_list.NAME_CHARS and name.endswith("…")


def test_runs_table_filters_groups_and_reads_its_view_back_from_the_url():
    """The runs table's filters (owner, tag, status, sweep) and groups, kept in the URL."""
    import dataclasses
    base = _run()
    runs = [dataclasses.replace(base, id=6, owner="ada", tags=("baseline", "dcgan"), status="stopped"),
            dataclasses.replace(base, id=5, owner="bob", tags=("baseline",), sweep_id=2),
            dataclasses.replace(base, id=4, owner="ada", sweep_id=2, status="pruned"),
            dataclasses.replace(base, id=3, owner="", sweep_id=1),
            dataclasses.replace(base, id=2, owner="Bob", status="done")]
    options = run_list.run_filter_options(runs)
    assert options["owner"] == ["ada", "Bob", "bob", "–"] and options["tag"] == ["baseline", "dcgan"]
    assert options["sweep"] == [2, 1, "none"] and "pruned" in options["status"]
    view, problems = run_list.parse_run_filter({"owner": "ada", "tag": "BaseLine", "sweep": "none", "group": "tag"},
                                           options)
    assert problems == [] and view == run_list.RunFilter("ada", "baseline", None, "none", "tag")
    assert run_list.parse_run_filter(view.query(), options)[0] == view  # the URL it writes reads back the same
    assert [r.id for r in run_list.filter_runs(runs, view)] == [6]
    assert [r.id for r in run_list.filter_runs(runs, run_list.RunFilter(sweep=2))] == [5, 4]
    assert [r.id for r in run_list.filter_runs(runs, run_list.RunFilter(owner="–"))] == [3]
    by_sweep = run_list.group_runs(runs, "sweep", {2: "lr"})
    assert [(g.label, [r.id for r in g.runs], g.folded) for g in by_sweep] == [
        ("Runs outside sweeps", [6, 2], False), ("Sweep #2 lr · 2 runs", [5, 4], True),
        ("Sweep #1 · 1 run", [3], True)]
    assert by_sweep[1].summary() == "1 running, 1 pruned"
    by_tag = run_list.group_runs(runs, "tag")  # a run under each of its tags, the untagged last
    assert [(g.label, [r.id for r in g.runs]) for g in by_tag] == [
        ("Tag baseline", [6, 5]), ("Tag dcgan", [6]), ("No tags", [4, 3, 2])]
    assert [g.label for g in run_list.group_runs(runs, "status")] == ["Running", "Stopped", "Done", "Pruned"]
    assert run_list.group_runs([], "none") == [] and run_list.RunFilter().query() == {}
    view, problems = run_list.parse_run_filter({"status": ["done", "nope"], "sweep": "99", "group": "x"}, options)
    assert view == run_list.RunFilter() and len(problems) == 3  # the last of repeated values, as st.query_params has it


def test_the_runs_table_page_and_values_past_the_bounded_options_are_read_from_the_url():
    """?page= is a page number or refused in words; an owner the bounded options leave out is asked about."""
    assert run_list.parse_page({}) == (1, None) and run_list.parse_page({"page": "3"}) == (3, None)
    assert run_list.parse_page({"page": ["2", "4"]}) == (4, None)
    for bad in ("0", "²", "-1", "x" * 80):
        page, problem = run_list.parse_page({"page": bad})
        assert page == 1 and "is not a page number" in problem and "x" * 60 not in problem
    options = {"owner": ["ada"], "tag": [], "status": ["queued"], "sweep": [run_list.NO_SWEEP]}
    asked = []

    def exists(key, value):
        asked.append((key, value))
        return value in ("old-owner", 12)
    view, problems = run_list.parse_run_filter({"owner": "old-owner", "sweep": "12", "tag": "nope"}, options, exists)
    assert (view.owner, view.sweep, view.tag) == ("old-owner", 12, None) and len(problems) == 1
    assert ("tag", "nope") in asked
    page = run_list.RunPage((), 121, 3, 50)
    assert page.pages == 3 and page.caption() == "121 runs; showing 101–121."
    assert page.caption(every=300) == "121 of 300 runs match; showing 101–121."
    assert run_list.RunPage((), 0, 1, 50).caption(every=5) == "No run matches these filters (5 runs in all)."
