"""End to end in real Chromium: `streamlit run app.py`, queue a tiny run through the Train form, watch the live
chart grow while the worker the app spawned trains it, then open Samples and Generate. Screenshots of every page go
to test-artifacts/ for people to look at.
"""
from __future__ import annotations

import re
import time

import pytest
from browser import ARTIFACTS, browser_api, fill, no_exception, own_contexts, settle, shot, stop_button

pytestmark = pytest.mark.browser
sync_api = browser_api()  # skips this module without Chromium (fails on CI)
PLOT = ".js-plotly-plot .main-svg"


def metric(page, label: str) -> str:
    return page.locator(f'[data-testid="stMetric"]:has-text("{label}") [data-testid="stMetricValue"]').first \
        .inner_text()


def test_queue_watch_sample_generate_in_chromium(server, chromium):
    url, home = server
    with own_contexts(chromium) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(f"{url}/train")  # Home is the default page
        page.get_by_text("Train a GAN").wait_for()
        fill(page, "Training images (0 = all)", "512")
        fill(page, "Batch size (images)", "64")
        fill(page, "Epochs", "300")
        page.get_by_text("Model", exact=True).click()
        page.get_by_text("Performance", exact=True).click()
        fill(page, "Generator layer widths (units)", "64, 128")
        fill(page, "Discriminator layer widths (units)", "128, 64")
        fill(page, "Log every (steps)", "1")
        if page.get_by_text("Quality", exact=True).count():  # per-epoch scoring would dwarf 8-step epochs
            page.get_by_text("Quality", exact=True).click()
            fill(page, "Quality samples per epoch (0 = off)", "0")
        page.get_by_text("Valid: dense on mnist, 300 epochs, 2,400 steps of 64 images").wait_for()
        fill(page, "Your name", "e2e")
        page.get_by_text("Queued as e2e").wait_for()
        no_exception(page)
        shot(page, "1-train")

        page.get_by_role("button", name="Start").click()
        page.wait_for_url(re.compile(r".*/runs\?run=1"))
        page.get_by_text("#1 dense-mnist").first.wait_for()
        page.wait_for_selector(PLOT, timeout=90_000)  # worker start + data load + first metric flush
        first = int(metric(page, "step").replace(",", ""))
        deadline = time.monotonic() + 45
        while (now := int(metric(page, "step").replace(",", ""))) <= first and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        assert now > first, f"the live view stayed at step {first}"
        # the chart itself gained points, without a page reload
        # _fullData: the traces as plotly.js decoded them (the figure's x/y travel as base64 typed arrays now)
        points = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData[1].x.length")
        assert points > 0
        page.wait_for_function(f"() => document.querySelector('.js-plotly-plot')._fullData[1].x.length > {points}",
                               timeout=45_000)
        page.get_by_text("fixed-noise samples after epoch").first.wait_for(timeout=60_000)
        from gan_core.runs.store import Store
        store = Store(home=home)
        assert store.get(1).owner == "e2e"  # the sidebar name reached Store.submit
        store.dispose()
        no_exception(page)
        page.wait_for_timeout(1000)  # let Plotly finish the redraw before the picture
        shot(page, "2-live")

        page.goto(f"{url}/samples?run=1")
        page.get_by_text("Download the progression").wait_for()
        page.locator('[data-testid="stImage"] img').first.wait_for()
        no_exception(page)
        shot(page, "3-samples")

        page.goto(f"{url}/generate?run=1")
        page.get_by_text("Latent interpolation").wait_for()
        page.locator('[data-testid="stImage"] img').nth(1).wait_for()
        src = page.locator('[data-testid="stImage"] img').first.get_attribute("src")
        page.get_by_role("button", name="Random seed").click()
        settle(page)
        page.wait_for_function(
            "src => document.querySelector('[data-testid=\"stImage\"] img').getAttribute('src') !== src",
            arg=src)
        no_exception(page)
        shot(page, "4-generate")

        page.goto(f"{url}/compare")
        page.get_by_text("Comparing needs at least two runs").wait_for()
        shot(page, "5-compare")

        page.goto(f"{url}/runs?run=1")
        page.get_by_role("button", name="Stop").click()
        sync_api.expect(page.get_by_role("button", name="Resume")).to_be_enabled(timeout=60_000)
        page.locator('[data-testid="stCaptionContainer"]:has-text("stopped")').first.wait_for()
        shot(page, "6-stopped")


def test_a_deep_link_on_a_fresh_server_opens_the_page_inside_the_app(server, chromium):
    # Before any session has called st.navigation, Streamlit runs pages/runs.py alone (legacy pages/ folder): no
    # sidebar, no owner box, no worker. ui.bootstrap() draws app.py's frame there and calls st.navigation, after
    # which the server routes every page through app.py: the URLs stay /runs, /train, ...
    url, home = server
    from gan_core.runs.store import Store
    store = Store(home=home)
    run_id = store.submit({"epochs": 1, "train_subset": 512, "batch_size": 64, "eval_samples": 0}, name="linked")
    with own_contexts(chromium) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/runs?run={run_id}")
        page.get_by_text(f"#{run_id} linked").first.wait_for(timeout=60_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "7-deep-link.png"))
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Train" in nav and "Compare" in nav and "app" not in nav.split()  # app.py's titles, not file names
        assert page.get_by_role("textbox", name="Your name").count() == 1
        assert page.url == f"{url}/runs?run={run_id}"
        links = page.locator('[data-testid="stSidebarNav"] a')
        paths = [links.nth(i).get_attribute("href").removeprefix(url) for i in range(links.count())]
        assert paths == ["/", "/train", "/runs", "/samples", "/generate", "/compare", "/sweeps", "/playground"], paths
        page.get_by_role("link", name="Samples").click()  # the next page now runs through app.py
        page.wait_for_url(f"{url}/samples?run={run_id}")
        page.get_by_role("heading", name="Samples").wait_for(timeout=60_000)
        assert page.get_by_role("textbox", name="Your name").count() == 1
    # the app started its worker, which trains the linked run
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and store.get(run_id).status not in ("done", "failed"):
        time.sleep(0.5)
    assert store.get(run_id).status == "done", store.get(run_id)
    store.dispose()


HOSTILE_NAME = ("![t](http://evil.example/x.png) [link](http://evil.example/) "
                "<img src=http://evil.example/y.png> :red[red]")
# Issue 27: character references the markdown renderer decoded before auto-linking them, and bare URLs and e-mail
# addresses that GFM links by itself.
ENTITIES = "http&colon;//evil.example/e1 www&period;evil.example/e2 x&commat;evil.example"
BARE = "https://evil.example/b1 www.evil.example/b2 y@evil.example"


def main_text(page) -> str:
    """stMain's text and its inputs' values, without plain()'s invisible word joiners."""
    return page.evaluate("() => { const m = document.querySelector('[data-testid=stMain]'); return m.innerText + "
                         "[...m.querySelectorAll('input')].map(i => i.value).join(' ') }").replace("\u2060", "")


def no_hostile_link(page) -> None:
    """No link anywhere on the page (sidebar and toasts included) that hostile text made: none to evil.example, no
    mailto:, none whose text names evil.example (a heading's own #anchor link has no text)."""
    links = page.locator("a[href*='evil.example'], a[href*='evil%2Eexample' i], a[href^='mailto:' i], "
                         "a:has-text('evil.example')")
    assert links.count() == 0, [links.nth(k).evaluate("e => e.parentElement.outerHTML") for k in range(links.count())]


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_hostile_run_text_is_literal_on_every_page_and_fetches_nothing(server, chromium):
    url, home = server
    import numpy as np

    from gan_core.config import TrainConfig
    from gan_core.runs.store import Store
    from gan_core.runs.sweep import SweepSpec, parse_param, plan
    from gan_core.sampling import png_bytes
    store = Store(home=home)
    ids = []

    def finish(run_id: int, i: int) -> None:
        store.claim("e2e", cap=10)
        rel = f"run-{run_id:06d}/samples/epoch-0001.png"
        (home / rel).parent.mkdir(parents=True)
        (home / rel).write_bytes(png_bytes(np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8)))
        store.add_sample(run_id, 1, 8, rel)
        store.finish(run_id, "done")

    for i in range(2):
        run_id = store.submit({"epochs": 1, "train_subset": 512, "batch_size": 64},
                              name=f"{HOSTILE_NAME} {ENTITIES} {i}", owner=ENTITIES, tags="x.png, evil-example",
                              description=f"{HOSTILE_NAME} {BARE}")
        finish(run_id, i)
        ids.append(run_id)
    base = TrainConfig(epochs=1, train_subset=512, batch_size=64)
    spec = SweepSpec(params=(parse_param("lr_g=1e-4"),))
    sweep_id = store.submit_sweep(f"{ENTITIES} {BARE}", spec.to_dict(), base,
                                  [(r.point, r.config) for r in plan(base, spec)], spec.points(),
                                  owner="z@evil.example https://evil.example/o")
    swept = store.sweep_runs(sweep_id)[0].id
    finish(swept, 2)
    store.dispose()
    requested: list[str] = []
    with own_contexts(chromium) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.on("request", lambda r: requested.append(r.url))
        for path, ready, shown in ((f"runs?run={ids[0]}", "fixed-noise samples after epoch 1", ENTITIES),
                                   (f"runs?run={swept}", "fixed-noise samples after epoch 1", BARE),
                                   (f"samples?run={ids[0]}", "the only grid so far", ENTITIES),
                                   (f"generate?run={ids[0]}", "has no checkpoint yet", ENTITIES),
                                   ("compare", "Sample grids", ENTITIES),
                                   (f"sweeps?sweep={sweep_id}", "Leaderboard", BARE),
                                   ("", "Start here", None)):
            page.goto(f"{url}/{path}")
            page.get_by_text(ready).first.wait_for(timeout=60_000)
            settle(page)
            no_exception(page)
            text = main_text(page)
            if shown == ENTITIES:  # the two runs whose names are also markdown
                assert "![t](http://evil.example/x.png)" in text, text[:2000]  # shown as typed, not rendered
                assert ":red[red]" in text
            if shown:
                assert all(part in text for part in shown.split()), (shown, text[:3000])  # entities as typed
            if path.startswith("runs"):  # the title and the owner caption, where the links were made
                title = page.locator("[data-testid=stMain] h3").first.inner_text().replace("\u2060", "")
                assert shown in title, title
                caption = page.locator("[data-testid=stCaptionContainer]:has-text('owner')").first
                owner = caption.inner_text().replace("\u2060", "")
                assert (ENTITIES if path == f"runs?run={ids[0]}" else "z@evil.example https://evil.example/o"
                        ) in owner, owner
            no_hostile_link(page)
            assert page.locator("img[src*='evil.example']").count() == 0
            shot(page, f"8-hostile-{path.split('?')[0] or 'home'}")
        # Train after Clone: the notice names the cloned run
        page.goto(f"{url}/runs?run={ids[0]}")
        page.get_by_text("fixed-noise samples after epoch 1").first.wait_for(timeout=60_000)
        page.locator("[data-testid=stMain]").get_by_role("button", name="Clone").click()
        page.get_by_text("Filled from run").first.wait_for(timeout=60_000)
        settle(page)
        no_exception(page)
        notice = page.locator("[data-testid=stAlert]:has-text('Filled from run')").first.inner_text()
        assert ENTITIES in notice.replace("\u2060", ""), notice
        no_hostile_link(page)
        shot(page, "8-hostile-train-clone")
    assert not [u for u in requested if "evil.example" in u], requested


@pytest.mark.parametrize("server", [{"GAN_DEMO_MODE": "1", "GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_on_the_demo_runs_belong_to_the_browser_not_to_the_typed_name(server, chromium):
    url, home = server
    with own_contexts(chromium) as browser:
        alice = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = alice.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{url}/train")  # Home is the default page
        page.get_by_text("Train a GAN").wait_for()
        for field, value in (("Training images (0 = all)", "512"), ("Batch size (images)", "64"), ("Epochs", "1")):
            fill(page, field, value)
        # Typed as the first thing on a fresh page, the name is lost (issue 15, "remembered name"): type it last.
        fill(page, "Your name (a label)", "alice")
        page.get_by_text("Queued as alice").wait_for()
        page.get_by_role("button", name="Start").click()
        page.wait_for_url(re.compile(r".*/runs\?run=1"))
        sync_api.expect(stop_button(page)).to_be_enabled()
        cookie = {c["name"]: c["value"] for c in alice.cookies()}.get("gan_studio_visitor", "")
        assert cookie.count(".") == 2  # itsdangerous: payload.timestamp.signature, issued by the server

        mallory = browser.new_context(viewport={"width": 1400, "height": 1000})  # no cookies: a stranger
        other = mallory.new_page()
        other.set_default_timeout(30_000)
        other.goto(f"{url}/train")
        other.get_by_text("Train a GAN").wait_for()
        fill(other, "Epochs", "2")
        fill(other, "Your name (a label)", "alice")  # the owner name shown in the runs table
        other.get_by_text("Queued as alice").wait_for()
        other.goto(f"{url}/runs?run=1")
        other.get_by_text("owner alice").first.wait_for()
        sync_api.expect(stop_button(other)).to_be_disabled(timeout=30_000)  # expect waits 5 s by default
        shot(other, "9-demo-someone-elses-run")

        again = alice.new_page()  # a new tab of alice's browser: the same visitor
        again.goto(f"{url}/runs?run=1")
        sync_api.expect(stop_button(again)).to_be_enabled(timeout=30_000)
        settle(again)
        from gan_core.runs.store import Store
        store = Store(home=home)
        assert store.get(1).owner == "alice"
        assert store.get(1).owner_key.startswith("anon:")  # owned by the visitor token, not the name
        stop_button(again).click()
        settle(again)
        deadline = time.monotonic() + 30
        while store.get(1) is not None and time.monotonic() < deadline:
            time.sleep(0.3)
        assert store.get(1) is None  # stopped before it trained: the demo removes it (issue 27)
        store.dispose()
        no_exception(again)


@pytest.mark.parametrize("server", [{"GAN_DEMO_MODE": "1", "GAN_NO_AUTOWORKER": "1", "GAN_TRUSTED_PROXY_HOPS": "1",
                                     "GAN_DEMO_MAX_QUEUED_PER_ADDRESS": "1"}], indirect=True)
def test_on_the_demo_a_new_cookie_from_the_same_address_meets_the_address_cap(server, chromium):
    """Behind a trusted proxy (X-Forwarded-For), the address caps key on the client address whatever cookie the
    browser sends: a second browser from the same address is refused, one from another address is not."""
    url, home = server
    with own_contexts(chromium) as browser:
        def start_from(address: str):
            context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                          extra_http_headers={"X-Forwarded-For": address})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{url}/train")
            page.get_by_text("Train a GAN").wait_for()
            for field, value in (("Training images (0 = all)", "512"), ("Batch size (images)", "64"),
                                 ("Epochs", "1")):
                fill(page, field, value)
            page.get_by_role("button", name="Start").click()
            settle(page)
            return page

        start_from("203.0.113.9").wait_for_url(re.compile(r".*/runs\?run=1"))
        second = start_from("203.0.113.9")  # a fresh context: a new visitor cookie, the same address
        second.get_by_text("Nothing was queued: demo limit: 1 run is queued or training from your network "
                           "address").wait_for()
        start_from("198.51.100.7").wait_for_url(re.compile(r".*/runs\?run=2"))
        from gan_core.runs.store import Store
        store = Store(home=home)
        runs = {r.id: (r.address, r.subnet) for r in store.list_runs()}
        store.dispose()
        assert runs == {1: ("203.0.113.9", "203.0.113.0/24"), 2: ("198.51.100.7", "198.51.100.0/24")}
        no_exception(second)


@pytest.mark.parametrize("server", [{"GAN_DEMO_MODE": "1", "GAN_NO_AUTOWORKER": "1", "GAN_TRUSTED_PROXY_HOPS": "1",
                                     "GAN_UPLOADS_PER_HOUR_PER_ADDRESS": "1"}], indirect=True)
def test_on_the_demo_new_cookies_from_one_address_share_its_upload_limit(server, tmp_path, chromium):
    """Issue 27: the upload limits were per cookie, and a fresh browser context is a fresh cookie. Behind a trusted
    proxy (one hop), the client's address is the last X-Forwarded-For entry."""
    import torch

    from gan_core.checkpoint import save_generator
    from gan_core.config import TrainConfig
    from gan_core.models import build_generator

    url, home = server
    cfg = TrainConfig(g_widths=(32,), d_widths=(32,), latent_dim=8)
    files = []
    for seed in range(3):
        torch.manual_seed(seed)
        files.append(tmp_path / f"g{seed}.safetensors")
        save_generator(files[-1], cfg, build_generator(cfg), 1, 10)

    def upload(browser, address: str, path) -> object:
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      extra_http_headers={"X-Forwarded-For": f"198.18.0.1, {address}"})
        page = context.new_page()  # the first entry is what a client typed: never trusted
        page.set_default_timeout(30_000)
        page.goto(f"{url}/generate")
        page.get_by_text("an uploaded file").click()
        settle(page)
        page.locator('input[type="file"]').set_input_files(str(path))
        settle(page)
        return page

    with own_contexts(chromium) as browser:
        first = upload(browser, "203.0.113.7", files[0])
        first.get_by_text("Latent interpolation").wait_for()  # accepted: the page draws from it
        no_exception(first)
        second = upload(browser, "203.0.113.7", files[1])  # a new cookie, the same address
        second.get_by_text("GAN_UPLOADS_PER_HOUR_PER_ADDRESS").first.wait_for()
        no_exception(second)
        shot(second, "9-demo-upload-limit-per-address")
        third = upload(browser, "198.51.100.9", files[2])  # another address: its own count
        third.get_by_text("Latent interpolation").wait_for()
        no_exception(third)
    stored = [p for p in (home / "uploads").rglob("*.safetensors")]
    assert sorted(p.read_bytes() for p in stored) == sorted(f.read_bytes() for f in (files[0], files[2]))
