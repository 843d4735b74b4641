"""Issue 27 in real Chromium: an idle Runs tab with a queued run (no worker) costs the server little, and the runs
table is paged on the server (Newer / Older / Last reach every run)."""
from __future__ import annotations

import re

import pytest
from browser import browser_api, no_exception, own_contexts, settle, shot
from conftest import many_runs

pytestmark = pytest.mark.browser
sync_api = browser_api()  # skips this module without Chromium (fails on CI)


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_an_idle_runs_tab_receives_little_and_the_pager_reaches_the_oldest_run(server, chromium):
    from gan_core.runs.store import Store

    url, home = server
    store = Store(home=home)
    ids = many_runs(store, 121)  # the newest queued, no worker to take it: nothing will change
    store.dispose()
    received = [0]

    def on_socket(ws) -> None:
        ws.on("framereceived", lambda payload: received.__setitem__(0, received[0] + len(payload)))

    with own_contexts(chromium) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.on("websocket", on_socket)
        page.goto(f"{url}/runs")
        page.locator('[data-testid="stDataFrame"]').first.wait_for()
        settle(page)
        page.wait_for_timeout(1000)
        load = received[0]
        received[0] = 0
        # Idle: a queued run that no worker trains redrew the table and the live view every 2 s (five times
        # the table alone in 10 s); now the page only polls a small change token, and nothing changes
        page.wait_for_timeout(10_000)
        print(f"load {load:,} bytes, then {received[0]:,} in 10 s idle")
        assert received[0] < load / 4, f"an idle tab received {received[0]:,} bytes in 10 s; its load {load:,}"
        page.get_by_text("121 runs; showing 1–50.").wait_for()
        page.get_by_role("button", name="Last").click()
        page.get_by_text("121 runs; showing 101–121.").wait_for()
        page.get_by_text("Page 3 of 3").wait_for()
        assert re.search(r"[?&]page=3\b", page.url)
        page.get_by_role("button", name="Newer").click()
        page.get_by_text("121 runs; showing 51–100.").wait_for()
        assert re.search(r"[?&]page=2\b", page.url)
        settle(page)
        no_exception(page)
        shot(page, "runs-paged", height=1400)
        page.goto(f"{url}/runs?page=3&run={ids[0]}")  # a link to the last page and its oldest run
        page.get_by_text(f"#{ids[0]} flood 1").first.wait_for()
        page.get_by_text("121 runs; showing 101–121.").wait_for()
        no_exception(page)
