"""What the page tests share: the app under AppTest, a trained run, and rows as the worker stores them."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from gan_core.config import TrainConfig
from gan_core.runs.store import Store
from gan_core.runs.worker import StoreSink
from gan_core.trainer import train

ROOT = Path(__file__).resolve().parents[2]


PAGES = ["pages/train.py", "pages/runs.py", "pages/samples.py", "pages/generate.py", "pages/compare.py"]


def app(page: str | None = None, run_id: int | None = None, user: str | None = None,
        oidc_user: dict | None = None, query: dict[str, str] | None = None) -> AppTest:
    """The app, run once, then switched to `page` (with ?run= if given, and the `query` parameters) and run again.
    `user` is the sidebar display name; `oidc_user` turns on OIDC sign-in ([auth] secrets) with that st.user."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(query or {})
    if run_id is not None:
        at.query_params["run"] = str(run_id)
    if user is not None:
        at.session_state["owner"] = user
    if oidc_user is not None:
        at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                              "client_id": "c", "client_secret": "s",
                              "server_metadata_url": "https://example.invalid/.well-known/openid-configuration"}
        at.user = oidc_user
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


_TRAINED: dict[str, tuple[Path, list]] = {}


def trained_run(store: Store, cfg: TrainConfig, images, cache: Path, name: str = "tiny", labels=None) -> int:
    """A finished run with real metrics, samples and checkpoints in `store`, as the worker would leave it.

    Each config is trained once per test session (in a cache folder); later calls replay its events through the
    worker's StoreSink and copy its checkpoints, which gives the same rows and files in a fraction of the time.
    """
    import shutil

    from gan_core.events import ListSink
    key = cfg.to_json()
    if key not in _TRAINED:
        out = cache / f"cfg-{len(_TRAINED)}"
        events = ListSink()
        train(cfg, events, out_dir=out, images=images, labels=labels)
        _TRAINED[key] = (out, list(events))
    out, events = _TRAINED[key]
    run_id = store.submit(cfg, name=name, owner="tester")
    run = store.claim("test-worker", cap=10)
    assert run is not None and run.id == run_id
    shutil.copytree(out, store.artifacts_dir(run), dirs_exist_ok=True)
    sink = StoreSink(store, run)
    for ev in events:
        sink(ev)
    sink.flush()
    store.finish(run_id, "done")
    return run_id


def fast(cfg: TrainConfig, **changes) -> TrainConfig:
    """The config without per-epoch quality scoring: these tests look at pages."""
    return cfg.replace(**{"eval_samples": 0, **changes})


def texts(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def plotly_charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def image_bytes(at: AppTest, media: dict[str, bytes], index: int = 0) -> bytes:
    """The bytes behind the index-th st.image."""
    url = at.image[index].value[0]
    return media[url.rsplit("/", 1)[-1].split(".")[0]]


def png_size(data: bytes) -> tuple[int, int]:
    import io

    from PIL import Image
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def metric_rows(n: int) -> list[dict]:
    return [dict(step=i, epoch=1, d_loss=1.0 + i / 100, g_loss=2.0 - i / 100, d_real=0.75, d_fake=0.25,
                 images_per_sec=1234.0) for i in range(1, n + 1)]


def quality_row(shares, fd=40.0, inception=8.0) -> dict:
    return dict(n=500, fd=fd, inception_score=inception, confidence=0.9, class_shares=shares, diversity=22.0,
                seconds=0.4)


def rich_quality(epoch: int, best: bool = False) -> dict:
    """A conditional run's quality row as the worker stores it since issue 18 (n=500)."""
    per_class = [dict(n=50, precision=0.9, recall=0.3 if c == 5 else 0.85, density=1.0, coverage=0.35, fd=40.0)
                 for c in range(10)]
    return dict(quality_row([0.1] * 10, fd=90.0 / epoch), precision=0.5 + 0.1 * epoch, recall=0.4 + 0.1 * epoch,
                density=0.6 * epoch, coverage=0.2, kid=60.0 / epoch, fidelity=0.9, fidelity_per_class=[0.9] * 10,
                per_class=per_class, **({"best": True} if best else {}))


FLOOR_500 = dict(quality_row([0.1] * 10, fd=8.0, inception=9.5), precision=0.94, recall=0.93, density=1.0,
                  coverage=0.72, kid=9.0, confidence=0.98, diversity=24.0,
                  per_class=[dict(n=50, precision=0.95, recall=0.92, density=1.0, coverage=0.4, fd=30.0)] * 10)


def fragment_periods(monkeypatch) -> list[tuple[str, float | None]]:
    """(function name, run_every) of every st.fragment a page sets up, in order. AppTest runs no fragment timers,
    so what a test can check is the period each live part of a page asked the browser for."""
    import streamlit
    real, seen = streamlit.fragment, []

    def recording(func=None, *, run_every=None, **kw):
        def wrap(f):
            seen.append((f.__name__, run_every))
            return real(f, run_every=run_every, **kw)
        return wrap(func) if func is not None else wrap
    monkeypatch.setattr(streamlit, "fragment", recording)
    return seen


def grid_file(store, run, epoch: int) -> None:
    """A sample grid for `epoch`, written and recorded the way the worker's StoreSink does."""
    import numpy as np

    from gan_core.sampling import grid, png_bytes
    rel = f"{store.artifacts_dir(run).name}/samples/epoch-{epoch:04d}.png"
    (store.home / rel).parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((64, 28, 28), 40 * epoch, dtype=np.uint8)
    (store.home / rel).write_bytes(png_bytes(grid(pixels)))
    store.add_sample(run.id, epoch, 8 * epoch, rel)


def page_text(at: AppTest) -> str:
    """Every text of the page as its elements carry it: bodies, labels, help tooltips, options, captions."""
    def walk(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)
    return "\n".join(str(n.proto) for n in walk(at._tree) if getattr(n, "proto", None) is not None)


def no_data_here(monkeypatch, tmp_path) -> None:
    """No MNIST on this host (the README's deploy layout allows it): an empty GAN_DATA_DIR, no cache, no download."""
    (tmp_path / "no-data").mkdir()
    monkeypatch.setenv("GAN_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "no-cache"))
    monkeypatch.setenv("GAN_DATA_DOWNLOAD", "0")


def lr_sweep(store: Store, owner: str = "ada", points: int = 2) -> int:
    """A queued sweep of `points` learning rates (nothing trained), as the Train page queues one."""
    from gan_core.runs.sweep import SweepSpec, parse_param, plan
    base = TrainConfig(epochs=2, batch_size=64, train_subset=512, eval_samples=100)
    spec = SweepSpec(params=(parse_param("lr_g=" + ",".join(f"{i + 1}e-4" for i in range(points))),))
    planned = plan(base, spec)
    return store.submit_sweep("lr sweep", spec.to_dict(), base, [(r.point, r.config) for r in planned],
                              spec.points(), owner=owner)
