"""The real-data quality floor: measured once per machine in the background, never downloaded from a page
(gan_core.web.real_floor)."""
import time

from gan_core.config import TrainConfig
from gan_core.web import real_floor


def test_quality_floor_is_none_without_test_data_and_never_downloads(tmp_path, monkeypatch):
    from gan_core import metrics
    monkeypatch.setenv("GAN_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    real_floor.quality_floor.cache_clear()
    metrics.real_floor.cache_clear()
    try:
        assert real_floor.quality_floor("mnist", 500) is None
        assert not (tmp_path / "cache").exists()  # no torchvision download was started from the dashboard
    finally:
        real_floor.quality_floor.cache_clear()
        metrics.real_floor.cache_clear()


def test_shared_floor_only_for_runs_on_one_dataset():
    from gan_core.runs.store import RunView

    def run(dataset):
        return RunView(1, "r", "", TrainConfig(dataset=dataset), "done", None, 0.0, None, None, None, None, False,
                       False, 0, 9, 100, "run-000001")
    rows = [{"epoch": 1, "n": 500}]
    floor, why, pending = real_floor.shared_floor_nowait([run("mnist"), run("fashion_mnist")], [rows, rows])
    assert floor is None and "different datasets" in why and pending is None
    assert real_floor.shared_floor_nowait([run("mnist")], [[]]) == (None, None, None)  # nothing scored: nothing to say
    # The unscored run does not count: mnist's floor, measured in the background while Compare draws without it.
    for _ in range(6000):
        floor, why, pending = real_floor.shared_floor_nowait([run("mnist"), run("fashion_mnist")], [rows, []])
        if pending is None:
            break
        assert (floor, why, pending) == (None, None, ("mnist", 500))
        time.sleep(0.1)
    assert pending is None and why is None and floor["n"] == 500 and floor["inception_score"] > 9.0


def test_the_real_data_floor_is_cached_on_disk_and_never_makes_a_page_wait(tmp_path, monkeypatch):
    import threading

    from gan_core import metrics
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    gate, calls = threading.Event(), []

    def slow_floor(dataset, n, download=True):  # scoring real images took 15-25 s beside a training worker
        calls.append((dataset, n))
        gate.wait(10)
        return metrics.Quality(n, 1.5, 9.7, 0.98, (0.1,) * 10, 20.0)

    monkeypatch.setattr(metrics, "real_floor", slow_floor)
    real_floor.quality_floor.cache_clear()
    try:
        assert real_floor.quality_floor_nowait("mnist", 321) == (None, True)  # the page goes on without the floor
        gate.set()
        for _ in range(100):
            floor, pending = real_floor.quality_floor_nowait("mnist", 321)
            if not pending:
                break
            time.sleep(0.05)
        assert floor["fd"] == 1.5 and calls == [("mnist", 321)]
        assert list((tmp_path / "cache" / "floors").glob("mnist-321-*.json"))
        real_floor.quality_floor.cache_clear()  # a new server process: read from disk, not scored again
        assert real_floor.quality_floor("mnist", 321)["inception_score"] == 9.7 and len(calls) == 1
    finally:
        real_floor.quality_floor.cache_clear()
