"""/api/docs in headless Chromium: a developer signs in with the Authorize button and tries a call that needs
the bearer token, which Swagger UI sends because the spec says so."""

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium not installed: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed: pip install -e '.[test]'"
)
expect = sync_api.expect


def test_a_call_tried_from_the_docs_carries_the_token(server, auth, world):
    token = auth("resident_a1")["Authorization"].removeprefix("Bearer ")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(server + "/api/docs")
            page.locator("button.authorize").first.click()
            page.locator(".auth-container input").fill(token)
            page.locator(".auth-btn-wrapper button.authorize").click()
            page.locator(".auth-btn-wrapper button.btn-done").click()
            me = page.locator(".opblock-get", has=page.locator("[data-path='/api/v1/me']")).first
            me.locator(".opblock-summary").click()
            me.locator("button.try-out__btn").click()
            me.locator("button.execute").click()
            answer = me.locator(".live-responses-table tbody .response-col_status").first
            expect(answer).to_have_text("200", timeout=10_000)
            expect(me.locator(".live-responses-table .microlight").first).to_contain_text(
                world.users["resident_a1"].public_id
            )
        finally:
            browser.close()
