"""Issue 15 in real Chromium: the Home page (a live grid, both ways in lead where they say), the theme following the
browser's light/dark preference, and Generate (bigger grids drawn bigger, a pretrained fallback for a run without a
checkpoint). Screenshots go to test-artifacts/."""
from __future__ import annotations

import re

import pytest
from browser import browser_api, no_exception, own_contexts, settle, shot

pytestmark = pytest.mark.browser
sync_api = browser_api()  # skips this module without Chromium (fails on CI)

ORANGE = "rgb(249, 115, 22)"  # .streamlit/config.toml's primaryColor, in both themes


def _luminance(rgb: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _background(page) -> str:
    return page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=\"stApp\"]')).backgroundColor")


def _image_width(page, index: int = 0) -> float:
    img = page.locator('[data-testid="stImage"] img').nth(index)
    img.wait_for()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    return img.bounding_box()["width"]


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_home_theme_and_generate_in_chromium(server, chromium):
    url, home = server
    with own_contexts(chromium) as browser:
        for scheme in ("light", "dark"):  # the theme follows the browser's preference
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme=scheme)
            page.set_default_timeout(30_000)
            page.goto(url)
            page.get_by_text("GAN Studio trains generative adversarial networks").wait_for()
            assert _image_width(page) >= 500  # the live grid from a shipped generator
            settle(page)
            bg = _luminance(_background(page))
            assert (bg > 200) if scheme == "light" else (bg < 60), (scheme, _background(page))
            button = page.get_by_role("button", name="Generate digits now")
            assert button.evaluate("el => getComputedStyle(el).backgroundColor") == ORANGE
            no_exception(page)
            shot(page, f"home-{scheme}", height=1000)
            if scheme == "light":
                page.close()

        # "Generate digits now" opens Generate on a pretrained generator
        page.get_by_role("button", name="Generate digits now").click()
        page.wait_for_url(re.compile(r".*/generate"))
        page.get_by_text("Latent interpolation").wait_for()
        assert page.get_by_role("radio", name="a pretrained generator").is_checked()
        width8 = _image_width(page)
        # Grid size 16 (the slider's End key): drawn bigger than 8×8, never smaller
        src = page.locator('[data-testid="stImage"] img').first.get_attribute("src")
        page.get_by_role("slider", name="Grid size").focus()
        page.keyboard.press("End")
        settle(page)
        page.wait_for_function(
            "src => document.querySelector('[data-testid=\"stImage\"] img').getAttribute('src') !== src", arg=src)
        page.get_by_text("seed 0 · 16×16").wait_for()
        width16 = _image_width(page)
        assert width16 > width8 >= 700, (width8, width16)
        no_exception(page)
        shot(page, "generate-16x16", height=1800)

        # "Train your first GAN" opens Train on the quick-start preset
        page.goto(url)
        page.get_by_role("button", name="Train your first GAN").click()
        page.wait_for_url(re.compile(r".*/train"))
        page.get_by_text("Train a GAN").wait_for()
        # the Check panel validates what the form holds: quick-start as it is (the form's first render on a cold
        # server took ~30 s on a busy machine, so a long wait)
        page.get_by_text("Valid: dense on mnist, 2 epochs, 1,500 steps of 64 images").wait_for(timeout=90_000)
        no_exception(page)

        # a run without a checkpoint: Generate falls back to a pretrained generator and says why
        from gan_core.config import TrainConfig
        from gan_core.runs.store import Store
        store = Store(home=home)
        run_id = store.submit(TrainConfig(epochs=2), name="fresh", owner="e2e")  # no worker: stays queued
        store.dispose()
        page.goto(f"{url}/generate?run={run_id}")
        page.get_by_text(f"Run #{run_id} (fresh) has no checkpoint yet").wait_for()
        assert page.get_by_role("radio", name="a pretrained generator").is_checked()
        assert _image_width(page) >= 700
        no_exception(page)
        shot(page, "generate-fallback", height=1400)
