"""The Playground in real Chromium: Play animates the plane (the generated points move and the step count grows
while nobody touches the page), Pause stops it, in the light and dark colour schemes and at 800 px. Screenshots go to
test-artifacts/ (and $GAN_SHOTS_DIR when set) for people to look at."""
from __future__ import annotations

import os
import shutil

import pytest
from browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, browser_api, no_exception, settle, shot

pytestmark = pytest.mark.browser
sync_api = browser_api()  # skips this module without Chromium (fails on CI)

GENERATED = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = (gd.data || []).find(d => d.name === 'generated');
    if (t) return JSON.stringify(Array.from(t.x).slice(0, 50));
  }
  return null;
}"""


def _step(page) -> int:
    label = page.locator('[data-testid="stMetric"]').filter(has_text="Step").first
    return int(label.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_play_animates_the_plane_in_both_schemes_and_at_800_px(server):
    url, _ = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for scheme, width in (("light", 1400), ("dark", 1400), ("dark", 800)):
                page = browser.new_page(viewport={"width": width, "height": 1100}, color_scheme=scheme)
                page.set_default_timeout(60_000)
                page.goto(url + "/playground?data=ring&g_width=16&d_width=16&batch=64")
                page.get_by_text("Real and generated points over D(x)").first.wait_for()
                settle(page)
                before, steps = page.evaluate(GENERATED), _step(page)
                assert before and steps == 0
                page.get_by_text("Play", exact=True).click()  # the Play toggle
                page.wait_for_function(f"() => ({GENERATED})() !== {before!r}", timeout=60_000)
                page.wait_for_timeout(2000)  # a few more ticks: the plane keeps moving by itself
                moved = page.evaluate(GENERATED)
                assert moved != before and _step(page) > 0
                no_exception(page)
                overflow = page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                                         " return m.scrollWidth - m.clientWidth; }")
                assert overflow <= 1, f"the page scrolls sideways by {overflow} px at {width} px"
                page.get_by_text("Play", exact=True).click()  # off: paused
                settle(page)
                page.wait_for_timeout(1500)  # a tick already under way when Pause was pressed may still land
                paused = _step(page)
                page.wait_for_timeout(1500)
                assert _step(page) == paused
                shot(page, f"playground-{scheme}-{width}", height=2200)  # paused: every view drawn, none fading
                page.close()
        finally:
            browser.close()
    _copy_shots()


def _copy_shots() -> None:
    if os.environ.get("GAN_SHOTS_DIR"):
        os.makedirs(os.environ["GAN_SHOTS_DIR"], exist_ok=True)
        for png in ARTIFACTS.glob("playground-*.png"):
            shutil.copy(png, os.environ["GAN_SHOTS_DIR"])


PIXEL = """([x, y]) => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (!String(gd.layout && gd.layout.title && gd.layout.title.text).includes('Click to place')) continue;
    const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    return [r.left + xa._offset + xa.l2p(x), r.top + ya._offset + ya.l2p(y)];
  }
  return null;
}"""
PLACED = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = (gd.data || []).find(d => d.name === 'your points');
    if (t) return Array.from(t.x).map((x, i) => [x, t.y[i]]);
  }
  return null;
}"""


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_clicking_the_plot_places_points_where_clicked_and_the_link_keeps_them(server):
    url, _ = server
    spots = [(0.5, 0.5), (-1.0, 1.2), (1.5, -1.5), (0.0, 0.0)]  # each click once: none may be lost
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.set_default_timeout(60_000)
            page.goto(url + "/playground?data=clicks&g_width=8&d_width=8&batch=32")
            page.wait_for_function(f"() => ({PIXEL})([0, 0]) !== null")
            settle(page)
            for i, (x, y) in enumerate(spots, start=1):
                page.mouse.click(*page.evaluate(PIXEL, [x, y]))
                page.wait_for_function(f"() => (({PLACED})() || []).length === {i}")
                settle(page)
            placed = page.evaluate(PLACED)
            # Each lands on the catching grid's point nearest the click: within half its 0.095 spacing each way.
            assert all(abs(px - x) <= 0.06 and abs(py - y) <= 0.06 for (px, py), (x, y) in zip(placed, spots)), placed
            assert page.get_by_text(f"{len(spots)} points placed.").count() == 1
            link = page.url.split("points=", 1)[1].split("&")[0].replace("%2C", ",").replace("%3B", ";")
            assert [tuple(map(float, pair.split(","))) for pair in link.split(";")] == [tuple(p) for p in placed]
            no_exception(page)
            shot(page, "playground-clicks-light-1400", height=1400)
            _copy_shots()
            again = browser.new_page(viewport={"width": 1400, "height": 1400})  # the link, in a new session
            again.goto(page.url)
            again.wait_for_function(f"() => (({PLACED})() || []).length === {len(spots)}", timeout=60_000)
            assert again.evaluate(PLACED) == placed
        finally:
            browser.close()
