"""The Train form in real Chromium (issue 15, "the form must not lie"): what the browser shows is what is checked
and queued. An out-of-range number is named in the Check panel and Start is disabled until it is fixed; switching
the architecture removes the fields that no longer apply; a bad tag is refused before Start, not after it.
"""
from __future__ import annotations

import re

import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS, browser_api, fill, no_exception, settle, shot

sync_api = browser_api()  # skips this module without Chromium (fails on CI)


def check_panel(page):
    """The Check panel's error, if any (scoped to the page body: Streamlit's header has widgets of its own)."""
    return page.locator('[data-testid="stMain"] [data-testid="stAlert"]').filter(has_text="Fix this before starting")


def start_button(page):
    return page.locator('[data-testid="stMain"]').get_by_role("button", name="Start", exact=True)


def select(page, label: str, option: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True)).click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_the_form_checks_what_the_browser_shows(server):
    url, home = server
    expect = sync_api.expect
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            page.goto(f"{url}/train")
            page.get_by_text("Train a GAN").wait_for()
            fill(page, "Training images (0 = all)", "512")
            fill(page, "Batch size (images)", "64")
            fill(page, "Your name", "formtester")
            page.get_by_text("Queued as formtester").wait_for()
            expect(start_button(page)).to_be_enabled()

            # An out-of-range number: the box keeps what was typed, the panel names the field and why, no Start.
            fill(page, "Epochs", "0")
            expect(check_panel(page)).to_contain_text("Epochs (epochs): 0 is out of range; allowed 1 to 10000")
            assert page.get_by_label("Epochs", exact=True).input_value() == "0"
            expect(page.get_by_text(re.compile(r"^Valid:"))).to_have_count(0)
            expect(start_button(page)).to_be_disabled()
            no_exception(page)
            shot(page, "10-form-invalid-epochs", height=1400)
            fill(page, "Epochs", "2")
            expect(check_panel(page)).to_have_count(0)
            page.get_by_text("Valid: dense on mnist, 2 epochs").wait_for()
            expect(start_button(page)).to_be_enabled()

            # Only the fields that apply: the dense widths go when the architecture becomes DCGAN.
            page.get_by_text("Model", exact=True).click()
            expect(page.get_by_label("Generator layer widths (units)", exact=True)).to_be_visible()
            expect(page.get_by_label("DCGAN width multiplier (×)", exact=True)).to_have_count(0)
            select(page, "Architecture", "dcgan")
            expect(page.get_by_label("DCGAN width multiplier (×)", exact=True)).to_be_visible()
            expect(page.get_by_label("Generator layer widths (units)", exact=True)).to_have_count(0)
            expect(page.get_by_label("Discriminator layer widths (units)", exact=True)).to_have_count(0)
            page.get_by_text("Valid: dcgan on mnist, 2 epochs").wait_for()
            shot(page, "11-form-dcgan-fields", height=1400)

            # A bad tag is refused live, beside the field, not by a "Nothing was queued" after Start.
            fill(page, "Tags", "first, bad tag!")
            expect(check_panel(page)).to_contain_text("Tags: 'bad tag!' is not a tag")
            expect(start_button(page)).to_be_disabled()
            no_exception(page)
            shot(page, "12-form-bad-tag", height=1400)
            fill(page, "Tags", "first, dcgan")
            expect(start_button(page)).to_be_enabled()

            start_button(page).click()  # and what is queued is what the form showed
            page.wait_for_url(re.compile(r".*/runs\?run=1"))
        finally:
            browser.close()
    from gan_core.store import Store
    store = Store(home=home)
    run = store.get(1)
    store.dispose()
    assert (run.config.arch, run.config.epochs, run.config.batch_size, run.config.train_subset, run.tags) == (
        "dcgan", 2, 64, 512, ("first", "dcgan"))
