"""Issue 15 in real Chromium: the sidebar name is kept (typed as the very first action, and remembered by a new
tab), and the Runs live view shows what a user must see: the place in the queue, FD and IS as two charts with their
real-data floors, legends clear of Plotly's toolbar, and Stop / Resume at full width at 800 px with a long name.
Screenshots go to test-artifacts/live-*.png."""
from __future__ import annotations

import time

import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS, browser_api, no_exception, settle, shot, stop_button

sync_api = browser_api()  # skips this module without Chromium (fails on CI)

LONG = "a-very-long-run-name-" * 7  # 147 characters, few places to wrap


def _edit_tags_and_keep_the_name(page, tags: str) -> None:
    """Edit another field (Tags); the sidebar name must survive the rerun."""
    box = page.get_by_role("textbox", name="Tags")
    box.fill(tags)
    box.press("Enter")
    settle(page)
    page.get_by_text("Queued as ada").first.wait_for()
    assert _name_box(page).input_value() == "ada"


def _name_box(page):
    return page.get_by_role("textbox", name="Your name")


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_name_memory_and_the_live_view_as_a_user_sees_them(server):
    url, home = server
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        try:
            # 1. A fresh page: typing the name is the very first thing done
            page.goto(f"{url}/train")
            _name_box(page).wait_for()
            settle(page)
            assert _name_box(page).input_value() == "anonymous"
            assert "gan_studio_name" not in {c["name"] for c in ctx.cookies()}  # the default is not remembered
            _name_box(page).fill("ada")
            _name_box(page).press("Enter")
            settle(page)
            page.wait_for_timeout(500)
            assert _name_box(page).input_value() == "ada"
            _edit_tags_and_keep_the_name(page, "first")
            # 2. A new tab of this browser (a new session, as after a server restart) starts with the remembered
            # name, and keeps it when another field is edited first
            other = ctx.new_page()
            other.goto(f"{url}/train")
            _name_box(other).wait_for()
            settle(other)
            assert _name_box(other).input_value() == "ada"
            _edit_tags_and_keep_the_name(other, "second")
            shot(other, "live-0-name-remembered", height=1000)
            other.close()

            # 3. Two queued runs (no worker here), the second scored for two epochs
            from gan_core.config import TrainConfig
            from gan_core.store import Store
            store = Store(home=home)
            store.submit(TrainConfig(epochs=2), name="first in line", owner="ada", owner_key="name:ada")
            run_id = store.submit(TrainConfig(epochs=3), name=LONG, owner="ada", owner_key="name:ada")
            for epoch, (fd, inception) in enumerate([(180.0, 3.1), (42.0, 7.4)], start=1):
                store.add_quality(run_id, epoch, 900 * epoch, dict(
                    n=500, fd=fd, inception_score=inception, confidence=0.9, class_shares=[0.1] * 10,
                    diversity=20.0, seconds=0.5))
            store.dispose()
            started = time.monotonic()
            page.goto(f"{url}/runs?run={run_id}")
            page.wait_for_function("() => document.body.innerText.includes('2nd in queue')", timeout=60_000)
            print(f"Runs showed the queue position {time.monotonic() - started:.1f} s after the click")
            page.get_by_text("real data", exact=False).first.wait_for()  # the floor lines' labels, in the SVG
            for axis, title in (("Fréchet distance", "FD (lower is better)"), ("Inception Score", "IS (higher is better)")):
                page.locator(".js-plotly-plot", has_text=title).filter(has_text=axis).first.wait_for()  # one each
            # Plotly draws a legend after the plot itself: wait for every chart's legend and toolbar (a rerun under
            # load showed the charts a moment without them)
            page.wait_for_function("""() => { const ps = [...document.querySelectorAll('.js-plotly-plot')];
                return ps.length >= 2 && ps.every(p => p.querySelector('.legend') && p.querySelector('.modebar')); }""")
            legends = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(p => {
                const l = p.querySelector('.legend'), m = p.querySelector('.modebar');
                if (!l || !m) return false;
                const a = l.getBoundingClientRect(), b = m.getBoundingClientRect();
                return a.bottom <= b.top || a.top >= b.bottom || a.right <= b.left || a.left >= b.right; })""")
            assert legends and all(legends), legends  # no legend under the toolbar
            no_exception(page)
            shot(page, "live-1-queued-quality")
            # 4. At 800 px wide, with a 147-character name, Stop and Resume keep their labels
            page.set_viewport_size({"width": 800, "height": 1000})
            page.wait_for_timeout(1000)
            for button in (stop_button(page), page.locator('[data-testid="stMain"]').get_by_role(
                    "button", name="Resume")):
                fits = button.evaluate("b => { const p = b.querySelector('p') || b;"
                                       " return p.scrollWidth <= p.clientWidth + 1; }")
                assert fits, "a button label is cut short"
            width = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollWidth")
            assert width <= 800, f"the page scrolls sideways ({width} px)"
            shot(page, "live-2-800px", height=1400)
        finally:
            browser.close()
