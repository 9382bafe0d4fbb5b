"""Publishing through the review, in a real browser: a journey that gives codes from a pool that
does not exist is held back with the reason; the marketer creates the pool and stocks it from a
CSV file on the Coupon pools page, reviews again, and publishes. Screenshots go to
$JOURNEYFLOW_ARTIFACTS (default: the test's tmp dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import sign_in

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")

JOURNEY = """journey "Lens trial"
  trigger event "signup"
  quiet hours 21:00-09:00

  @trial issue coupon "LENS_TRIAL" as trial
  @hello send sms "Try lenses free with code {{ trial.code }}"
"""


def test_a_missing_pool_blocks_the_publish_until_it_is_stocked_from_a_csv(page: sync_api.Page, tmp_path: Path,
                                                                           artifacts: Path) -> None:
    expect = sync_api.expect
    sign_in(page)
    page.get_by_label("New journey").fill("Lens trial")
    page.get_by_role("button", name="Create").click()
    page.locator("#dsl-text").fill(JOURNEY)
    expect(page.locator('.node[data-step-id="hello"]')).to_be_visible()
    editor = page.url

    page.locator("#publish").click()
    review = page.locator("#publish-review")
    expect(review.locator(".review-problem")).to_have_count(1)
    expect(review.locator(".review-problem")).to_contain_text("The coupon pool “LENS_TRIAL” does not exist")
    expect(review).to_contain_text("installation's zone, UTC")  # quiet hours without a journey zone: a warning
    expect(review.locator("button#confirm-publish")).to_be_disabled()
    page.screenshot(path=artifacts / "publish-01-review-blocked.png", full_page=True)

    page.get_by_role("link", name="Coupon pools").click()
    page.get_by_label("New pool").fill("LENS_TRIAL")
    page.get_by_role("button", name="Create").click()
    codes = tmp_path / "lens_trial.csv"
    codes.write_text("code,expires_at\nLT-001,2026-12-31T23:59:59+08:00\nLT-002\nLT-003\nLT-003\n")
    page.get_by_label("CSV file of codes for LENS_TRIAL").set_input_files(codes)
    page.locator("#pool-LENS_TRIAL").get_by_role("button", name="Upload").click()
    expect(page.locator("#pool-result")).to_have_text(
        "Added 3 codes to LENS_TRIAL; 1 already in the pool (or twice in the file) was skipped.")
    expect(page.locator("#pool-LENS_TRIAL td.num").first).to_have_text("3")
    page.screenshot(path=artifacts / "publish-02-pool-stocked.png", full_page=True)

    page.goto(editor)
    page.locator("#publish").click()
    expect(review.locator(".review-problem")).to_have_count(0)
    expect(review).to_contain_text("LENS_TRIAL: 3 free codes")
    page.screenshot(path=artifacts / "publish-03-review-ready.png", full_page=True)
    review.locator("button#confirm-publish").click()
    expect(page.locator("#status .badge")).to_have_text("live")
    expect(page.locator("#toast")).to_contain_text("Published")
    expect(page.locator("#publish-review")).to_have_count(0)  # the review closes with the publish
