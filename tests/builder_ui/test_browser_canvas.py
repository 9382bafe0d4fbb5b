"""The canvas on a laptop and on a phone, in a real browser (Playwright, Debian's Chromium).

The A/B journey of the examples has a three-arm split, wider than a 1280 px laptop's canvas at
100%: the canvas must open fitted to its width, scrolled to the Start card, with all three arms
in view; Fit, −, +, 100% and the remembered zoom must work; and on a 390 px phone the list, the
editor (read-only) and the report must fit the screen without the header running over them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import sign_in

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")
expect = sync_api.expect

EXAMPLE = Path(__file__).parents[2] / "examples" / "journeys" / "ab_message_test.journey"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ARMS = ("A · 45%", "B · 45%", "Control · 10%")


def open_example(page: sync_api.Page) -> str:
    """Create a journey, type the example's text into the DSL panel, and open it afresh."""
    sign_in(page)
    page.get_by_label("New journey").fill("First-order offer")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".journey-name")).to_be_visible()
    url = page.url
    page.locator("#dsl-text").fill(EXAMPLE.read_text(encoding="utf-8"))
    expect(page.locator('.node[data-step-id="coupon_sms"]')).to_be_visible()
    expect(page.locator("#problems")).to_contain_text("No problems")
    page.goto(url)
    expect(page.locator(".canvas-tools")).to_be_visible()
    return url


def box(page: sync_api.Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not drawn"
    return dict(found)


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (inner["x"] >= outer["x"] - 0.5 and inner["y"] >= outer["y"] - 0.5
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5)


def arms_in_view(page: sync_api.Page) -> list[str]:
    canvas = box(page, ".canvas-wrap")
    titles = page.locator(".step[data-step-id='offer_test'] > .branches > .branch > .branch-title")
    return [titles.nth(i).locator(".arm-title").inner_text() for i in range(titles.count())
            if inside(dict(titles.nth(i).bounding_box() or {"x": -1e9, "y": 0, "width": 0, "height": 0}), canvas)]


def zoom_level(page: sync_api.Page) -> float:
    return float(page.locator("#canvas").evaluate("c => c.style.getPropertyValue('--canvas-zoom')"))


def no_horizontal_scroll(page: sync_api.Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def below(page: sync_api.Page, upper: str, lower: str) -> bool:
    """`upper` ends where `lower` begins or above it: the two do not overlap."""
    top, bottom = box(page, upper), box(page, lower)
    return top["y"] + top["height"] <= bottom["y"] + 0.5


def test_a_wide_split_opens_fitted_on_a_laptop_and_the_zoom_is_remembered(page: sync_api.Page,
                                                                        artifacts: Path) -> None:
    page.set_viewport_size(LAPTOP)
    url = open_example(page)
    assert arms_in_view(page) == list(ARMS)  # fitted on opening: no stored zoom yet
    assert zoom_level(page) < 1
    assert inside(box(page, ".start-node"), box(page, ".canvas-wrap"))  # scrolled to the Start card
    assert below(page, "header.top", ".canvas-wrap")
    page.screenshot(path=artifacts / "canvas-laptop-fitted.png")

    page.get_by_role("button", name="Actual size").click()
    assert zoom_level(page) == 1
    assert len(arms_in_view(page)) < len(ARMS)  # at 100% the split is wider than the canvas
    page.get_by_role("button", name="Fit the journey to the width").click()
    assert arms_in_view(page) == list(ARMS)
    fitted = zoom_level(page)

    page.get_by_role("button", name="Zoom out").click()
    assert zoom_level(page) == pytest.approx(fitted - 0.1, abs=0.011)
    expect(page.locator("#canvas-zoom-level")).to_have_text(f"{round((fitted - 0.1) * 100)}%")
    page.goto(url)
    expect(page.locator(".canvas-tools")).to_be_visible()
    assert zoom_level(page) == pytest.approx(fitted - 0.1, abs=0.011)  # remembered for this journey


def test_dragging_empty_canvas_pans_it(page: sync_api.Page) -> None:
    page.set_viewport_size(LAPTOP)
    open_example(page)
    page.get_by_role("button", name="Actual size").click()
    wrap = page.locator(".canvas-wrap")
    before = wrap.evaluate("w => w.scrollLeft")
    # An empty spot: a point of the canvas whose element is no step, "+" or button.
    spot = page.evaluate("""() => {
      const w = document.querySelector('.canvas-wrap').getBoundingClientRect();
      for (let y = w.top + 80; y < w.bottom - 10; y += 20)
        for (let x = w.left + 10; x < w.right - 10; x += 20) {
          const e = document.elementFromPoint(x, y);
          if (e && e.closest('.canvas-wrap') && !e.closest('button, .node, .slot, .branch-title, .canvas-tools'))
            return [x, y];
        }
      return null;
    }""")
    assert spot is not None
    page.mouse.move(spot[0], spot[1])
    page.mouse.down()
    assert before > 100  # opened centred on the Start card: room to pan both ways
    page.mouse.move(spot[0] + 100, spot[1], steps=5)  # the canvas follows the pointer
    page.mouse.up()
    assert wrap.evaluate("w => w.scrollLeft") == pytest.approx(before - 100, abs=2)


def test_on_a_phone_the_list_the_canvas_and_the_report_fit_the_screen(page: sync_api.Page,
                                                                    artifacts: Path) -> None:
    page.set_viewport_size(PHONE)
    url = open_example(page)
    assert no_horizontal_scroll(page)
    assert below(page, "header.top", ".canvas-wrap")
    assert below(page, ".canvas-wrap", ".side")  # the side panel comes after the canvas
    expect(page.locator(".palette")).to_be_hidden()
    expect(page.locator(".slot .plus").first).to_be_hidden()
    assert inside(box(page, ".start-node"), box(page, ".canvas-wrap"))
    assert arms_in_view(page) == list(ARMS)
    page.screenshot(path=artifacts / "canvas-phone.png", full_page=True)

    page.goto("/builder/")
    expect(page.locator('tr[data-slug] a').first).to_be_visible()
    assert no_horizontal_scroll(page)
    assert below(page, "header.top", "main.list")
    page.screenshot(path=artifacts / "list-phone.png", full_page=True)

    page.goto(url + "/report")
    expect(page.locator("#total-entered")).to_be_visible()
    assert no_horizontal_scroll(page)
    assert below(page, "header.top", "main.report")
    page.screenshot(path=artifacts / "report-phone.png", full_page=True)
