"""The Train form in real Chromium (issue 15, "the form must not lie"): what the browser shows is what is checked
and queued. An out-of-range number is named in the Check panel and Start is disabled until it is fixed; switching
the architecture removes the fields that no longer apply; a bad tag is refused before Start, not after it.
"""
from __future__ import annotations

import re

import pytest
from browser import ARTIFACTS, browser_api, fill, no_exception, own_contexts, settle, shot

from gan_core.config import TrainConfig

pytestmark = pytest.mark.browser
sync_api = browser_api()  # skips this module without Chromium (fails on CI)


def check_panel(page):
    """The Check panel's error, if any (scoped to the page body: Streamlit's header has widgets of its own)."""
    return page.locator('[data-testid="stMain"] [data-testid="stAlert"]').filter(has_text="Fix this before starting")


def start_button(page):
    return page.locator('[data-testid="stMain"]').get_by_role("button", name="Start", exact=True)


def select(page, label: str, option: str) -> None:
    # The picker's own box: the middle of the whole widget is the edge between its label and its box when the label
    # fits one line, and a click on the label only focuses the box, without opening it. Scrolled to first: a
    # scroll still settling when the list opens closes it again (seen: open, then closed 80 ms later, no rerun).
    box = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True)).get_by_role(
        "combobox")
    box.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_the_form_checks_what_the_browser_shows(server, chromium):
    url, home = server
    expect = sync_api.expect
    with own_contexts(chromium) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
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
    from gan_core.runs.store import Store
    store = Store(home=home)
    run = store.get(1)
    store.dispose()
    assert (run.config.arch, run.config.epochs, run.config.batch_size, run.config.train_subset, run.tags) == (
        "dcgan", 2, 64, 512, ("first", "dcgan"))


# What a narrow window must not do (issue 26): break a label inside a word ("Archit/ectur/e"), cut a button's label
# ("Ra…", "Downl…") or hide a picker's or a box's value. Read from the laid-out page: a word whose characters sit on
# two lines has client rects at two heights; a clipped text is wider (scrollWidth) than the box showing it.
LAYOUT_FAULTS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const broken = [];
  for (const label of main.querySelectorAll('[data-testid="stWidgetLabel"]')) {
    if (!visible(label)) continue;
    const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) broken.push(m[0]);
      }
    }
  }
  const clipped = (el) => el.scrollWidth > el.clientWidth + 1;
  const cut = [];
  for (const b of main.querySelectorAll('button')) {
    if (!visible(b) || !b.innerText.trim()) continue;
    if ([b, ...b.querySelectorAll('*')].some(clipped)) cut.push(b.innerText.trim());
  }
  const hidden = [];
  for (const i of main.querySelectorAll('[data-testid="stSelectbox"] input, [data-testid="stNumberInput"] input')) {
    if (visible(i) && clipped(i)) hidden.push(i.value);  // a picker shows its value in an input too
  }
  return {broken, cut, hidden};
}"""


@pytest.mark.parametrize("server", [{"GAN_NO_AUTOWORKER": "1"}], indirect=True)
def test_at_800_px_no_label_breaks_inside_a_word_and_no_button_or_value_is_cut(server, chromium):
    from gan_core.runs.store import Store
    from gan_core.runs.sweep import SweepSpec, parse_param, plan

    url, home = server
    store = Store(home=home)  # a sweep for the Sweeps page's Clone button (its runs need not train for its layout)
    base = TrainConfig(epochs=1)
    spec = SweepSpec(params=(parse_param("lr_g=1e-4,2e-4"),), mode="grid", seeds=1, prune="none")
    store.submit_sweep("narrow", spec.to_dict(), base, [(r.point, r.config) for r in plan(base, spec)],
                       spec.points(), owner="ada")
    store.dispose()
    with own_contexts(chromium) as browser:
        page = browser.new_page(viewport={"width": 800, "height": 1000})
        page.set_default_timeout(60_000)
        faults = {}
        for path, ready in (("/train", "Valid:"), ("/generate", "Download PNG"), ("/sweeps", "Open run #1")):
            page.goto(url + path)
            page.get_by_text(ready).first.wait_for()
            settle(page)
            no_exception(page)
            faults[path] = page.evaluate(LAYOUT_FAULTS)
            shot(page, f"13-narrow-800{path.replace('/', '-')}", height=1600)
            if path == "/train":  # the Check panel stays in view while the form scrolls under it
                panel = page.get_by_text("Check", exact=True)
                page.get_by_text("Advanced", exact=True).scroll_into_view_if_needed()
                page.locator('[data-testid="stExpander"]').last.scroll_into_view_if_needed()
                page.wait_for_timeout(300)
                page.screenshot(path=str(ARTIFACTS / "13-narrow-800-train-scrolled.png"))
                box = panel.bounding_box()
                assert box is not None and 0 <= box["y"] < 1000, box
                assert page.get_by_role("button", name="Start", exact=True).bounding_box()["y"] < 1000
        assert faults == {path: {"broken": [], "cut": [], "hidden": []} for path in faults}, faults
