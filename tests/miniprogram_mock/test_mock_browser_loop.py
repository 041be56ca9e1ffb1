"""The clickable mini-program mock in headless Chromium, on the real demo stack (`sandan demo`): a resident
orders with a photo, the secretary accepts and dispatches to a recommended organization, its admin takes and
assigns, the volunteer resolves with a proof photo, the resident confirms and rates. Every screen signs in as
the mini-program does and is saved as a screenshot (test artifacts; SANDAN_DOCS_SCREENSHOTS=1 also refreshes
the README's screenshots under docs/)."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import requests

from miniprogram_mock.phone import Phone

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs"
PHONE = {"width": 390, "height": 780}

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium not installed: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed: pip install -e '.[test]'"
)
expect = sync_api.expect


SLA_CASES = """async () => {
  const { sla } = await import("/demo/ui.js");
  const now = Date.parse("2026-11-25T10:00:00+08:00");
  const order = (due_at, warn_at, extra) => ({ due_at, warn_at, is_overdue: false, ...extra });
  return [
    sla(order("2026-11-30T10:00:00+08:00", "2026-11-29T10:00:00+08:00"), now).level,
    sla(order("2026-11-25T20:00:00+08:00", "2026-11-25T10:00:00+08:00"), now).level,
    sla(order("2026-11-25T09:59:00+08:00", "2026-11-24T10:00:00+08:00"), now).level,
    sla(order("2026-11-30T10:00:00+08:00", "2026-11-29T10:00:00+08:00", { is_overdue: true }), now).level,
    sla(order("2026-11-25T10:05:00+08:00", "2026-11-25T09:59:00+08:00"), now).level,
    sla(order(null, null), now).level,
  ];
}"""


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real (decodable) PNG of one colour, so the thumbnails render."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo(tmp_path):
    """`sandan demo` as the README runs it, on free ports and a fresh instance directory."""
    port, wechat_port = _free_port(), _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "WECHAT_API_BASE_URL")
    }
    env["SANDAN_INSTANCE_DIR"] = str(tmp_path)
    log = open(tmp_path / "demo.log", "w+")  # noqa: SIM115 - read back on failure
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "demo", "--port", str(port), "--wechat-port", str(wechat_port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, "demo exited early:\n" + (tmp_path / "demo.log").read_text()
            try:
                if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "demo not ready in 90 s"
            time.sleep(0.2)
        assert f"小程序演示（可点击）: {base}/demo/" in (tmp_path / "demo.log").read_text()
        yield base, f"http://127.0.0.1:{wechat_port}/"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


class Phones:
    """One browser context per person: each is its own phone with its own sign-in."""

    def __init__(self, browser, base: str, shots: Path):
        self.browser, self.base, self.shots = browser, base, shots
        self.errors: list[str] = []
        self.saved: dict[str, Path] = {}

    def sign_in(self, mode: str, openid: str, timezone_id: str = "Asia/Shanghai"):
        context = self.browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id=timezone_id)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{openid}: {exc}"))
        page.goto(self.base + "/demo/")
        page.get_by_test_id(f"person-{mode}").select_option(openid)
        page.get_by_test_id(f"signin-{mode}").click()
        return page

    def shot(self, page, name: str, scroll_to: str | None = None) -> None:
        page.wait_for_load_state("networkidle")
        if scroll_to:
            page.locator(scroll_to).evaluate("el => el.scrollIntoView({block: 'end'})")
        path = self.shots / f"mock-{name}.png"
        page.locator("#phone").screenshot(path=str(path), style="#toast { display: none !important; }")
        self.saved[name] = path


def _images_loaded(page, selector: str, count: int) -> None:
    images = page.locator(selector)
    expect(images).to_have_count(count)
    page.wait_for_function(
        "([sel, n]) => [...document.querySelectorAll(sel)].filter(i => i.complete && i.naturalWidth > 0)"
        ".length === n",
        arg=[selector, count],
    )


def fill_order_form(page, *, contact_phone: str) -> None:
    """A resident's order for weekly companionship, filled in on 我要点单 (not yet submitted)."""
    page.get_by_test_id("new-order").click()
    page.get_by_test_id("category").select_option("companionship")
    page.locator("select[data-question=frequency]").select_option("weekly")
    page.get_by_test_id("description").fill("独居老人，希望每周有人上门陪聊")
    page.get_by_test_id("address").fill("阳光社区3号楼2单元501")
    page.get_by_test_id("contact-name").fill("王秀英")
    page.get_by_test_id("contact-phone").fill(contact_phone)


def test_three_order_loop_through_the_clickable_mock(demo, browser, artifacts_dir):
    from backend.demo import ORGANIZATIONS

    demo, wechat_url = demo
    phones = Phones(browser, demo, artifacts_dir)

    # 居民: the picker, then an order with a photo.
    resident = phones.sign_in("resident", "demo-resident-1")
    expect(resident.get_by_test_id("my-orders")).to_contain_text("还没有工单")
    expect(resident.locator("#nav-who")).not_to_be_empty()
    fill_order_form(resident, contact_phone="13812348000")
    resident.get_by_test_id("photos").set_input_files(
        {"name": "door.png", "mimeType": "image/png", "buffer": _png(96, 96, (230, 160, 60))}
    )
    _images_loaded(resident, "[data-testid=photos-preview] img", 1)
    phones.shot(resident, "resident-order-form")
    resident.get_by_test_id("submit-order").click()
    detail = resident.get_by_test_id("order-detail")
    expect(detail).to_have_attribute("data-state", "submitted")
    expect(detail.get_by_test_id("timeline")).to_contain_text("您提交了服务需求")
    _images_loaded(resident, "[data-testid=order-photos] img", 1)
    order_id = resident.url.rsplit("/", 1)[-1]

    # Another resident of the community orders from a scripted phone, so the board holds two orders.
    with Phone(demo, wechat_url, openid="demo-resident-2") as neighbour:
        neighbour.login()
        neighbours_order = neighbour.post(
            "/orders",
            json={
                "category": "home_repair",
                "answers": {"item": ["tap"]},
                "description": "厨房水龙头一直滴水",
                "address": "阳光社区5号楼1单元302",
                "contact_name": "李桂兰",
                "contact_phone": "13800000002",
            },
        )

    # 社区书记: the board (counts, filters), accept, a recommendation with reasons, dispatch.
    secretary = phones.sign_in("secretary", "demo-secretary-1")
    board_item = secretary.locator(f"[data-testid=board] a[data-order-id='{order_id}']")
    expect(board_item).to_contain_text("陪伴关怀")
    expect(board_item).to_contain_text("已点单")
    expect(board_item.locator("[data-sla]")).to_have_text("无时限")  # the clock starts on acceptance
    expect(secretary.locator("[data-count=submitted] b")).to_have_text("2")
    secretary.get_by_test_id("filter-kind").select_option("urgent")
    expect(secretary.get_by_test_id("board")).to_contain_text("没有符合条件的工单")
    secretary.get_by_test_id("filter-kind").select_option("targeted")
    expect(secretary.locator("[data-testid=board] a.list-item")).to_have_count(1)
    secretary.get_by_test_id("filter-kind").select_option("")
    expect(secretary.locator("[data-testid=board] a.list-item")).to_have_count(2)
    # A resident on the phone reads out their order's number.
    secretary.get_by_test_id("filter-number").fill(neighbours_order["number"])
    secretary.get_by_test_id("filter-number").press("Enter")
    expect(secretary.locator("[data-testid=board] a.list-item")).to_have_count(1)
    expect(secretary.locator("[data-testid=board] a.list-item")).to_contain_text("水电维修")
    secretary.get_by_test_id("filter-number").fill("")
    secretary.get_by_test_id("filter-number").press("Enter")
    expect(secretary.locator("[data-testid=board] a.list-item")).to_have_count(2)
    board_item.click()
    secretary.get_by_test_id("do-accept").click()
    expect(secretary.get_by_test_id("order-detail")).to_have_attribute("data-state", "accepted")
    best = secretary.locator("[data-testid=recommendations] .candidate").first
    expect(best.locator(".reasons li").first).to_be_visible()
    organization_name = best.locator(".candidate-name").inner_text()
    phones.shot(secretary, "secretary-recommendations")
    best.get_by_test_id("do-dispatch").click()
    dispatched = secretary.get_by_test_id("order-detail")
    expect(dispatched).to_have_attribute("data-state", "dispatched")
    expect(dispatched).to_contain_text(f"已派给：{organization_name}")
    expect(dispatched.get_by_test_id("timeline")).to_contain_text("社区已安排服务组织")
    secretary.locator("#nav-back").click()
    on_board = secretary.locator(f"a[data-order-id='{order_id}']")
    expect(on_board).to_contain_text("待签收")
    expect(on_board).to_have_class("list-item sla-green")  # just dispatched: a working day to take it
    expect(on_board.locator("[data-sla=green]")).to_contain_text("剩余")
    phones.shot(secretary, "secretary-board")
    # Yellow and red cannot be waited for here: the page's colour rule, checked on made-up orders.
    levels = secretary.evaluate(SLA_CASES)
    assert levels == ["green", "yellow", "red", "red", "yellow", "none"], levels

    # 社会组织负责人: jobs to take, take (the address appears), assign a volunteer.
    org = [name for name, _, _ in ORGANIZATIONS].index(organization_name) + 1
    admin = phones.sign_in("organization", f"demo-org-admin-{org}")
    to_take = admin.locator(f"[data-testid=to-take] a[data-order-id='{order_id}']")
    expect(to_take).to_contain_text("待签收")
    phones.shot(admin, "organization-board")
    to_take.click()
    expect(admin.get_by_test_id("order-detail")).to_contain_text("接单后可见")
    expect(admin.get_by_test_id("address")).not_to_contain_text("501")
    admin.get_by_test_id("do-take").click()
    expect(admin.get_by_test_id("order-detail")).to_have_attribute("data-state", "taken")
    expect(admin.get_by_test_id("address")).to_contain_text("501")
    admin.get_by_test_id("volunteers").get_by_label(f"志愿者{org}-1").check()
    admin.get_by_test_id("do-assign").click()
    expect(admin.get_by_test_id("timeline")).to_contain_text("服务组织安排了志愿者")
    expect(admin.get_by_test_id("order-card")).to_contain_text(f"志愿者{org}-1")

    # 志愿者: my task, start, report back with a proof photo.
    volunteer = phones.sign_in("organization", f"demo-volunteer-{org}-1")
    volunteer.locator(f"[data-testid=to-do] a[data-order-id='{order_id}']").click()
    volunteer.get_by_test_id("do-start").click()
    expect(volunteer.get_by_test_id("order-detail")).to_have_attribute("data-state", "in_progress")
    volunteer.get_by_test_id("resolve-note").fill("已上门陪伴两小时，约好下周再来")
    volunteer.get_by_test_id("proof").set_input_files(
        {"name": "visit.png", "mimeType": "image/png", "buffer": _png(96, 96, (60, 150, 90))}
    )
    _images_loaded(volunteer, "[data-testid=proof-preview] img", 1)
    volunteer.get_by_test_id("do-resolve").click()
    expect(volunteer.get_by_test_id("order-detail")).to_have_attribute("data-state", "resolved")
    _images_loaded(volunteer, "[data-testid=proof-photos] img", 1)
    phones.shot(volunteer, "volunteer-resolved")

    # 居民 again: my orders shows it resolved; the proof; confirm and rate; the timeline in plain words.
    resident.goto(demo + "/demo/#/resident")
    mine = resident.locator(f"[data-testid=my-orders] a[data-order-id='{order_id}']")
    expect(mine).to_contain_text("已回单")
    mine.click()
    expect(resident.get_by_test_id("result")).to_contain_text("已上门陪伴两小时")
    _images_loaded(resident, "[data-testid=proof-photos] img", 1)
    resident.get_by_test_id("rate-form").get_by_label("准时").check()
    resident.get_by_test_id("rating-comment").fill("谢谢志愿者")
    resident.get_by_test_id("do-confirm").click()
    closed = resident.get_by_test_id("order-detail")
    expect(closed).to_have_attribute("data-state", "closed")
    expect(closed.get_by_test_id("rating")).to_contain_text("很满意（准时） 谢谢志愿者")
    steps = closed.locator("[data-testid=timeline] li")
    expect(steps).to_have_count(8)
    assert [steps.nth(i).get_attribute("data-action") for i in range(8)] == [
        "place",
        "accept",
        "dispatch",
        "take",
        "assign",
        "start",
        "resolve",
        "confirm",
    ]
    expect(steps.nth(7)).to_contain_text("您确认办结并作了评价：很满意")
    phones.shot(resident, "resident-order", scroll_to="[data-testid=timeline]")

    # The other tabs: the secretary's 督办 list, and the errand screens (test_mock_errand_loop.py).
    secretary.locator("[data-tab='#/secretary/supervisions']").click()
    expect(secretary.get_by_test_id("supervisions")).to_be_visible()
    resident.locator("[data-tab='#/errands']").click()
    expect(resident.get_by_test_id("my-errands")).to_contain_text("还没有代办事项")

    assert phones.errors == []
    if os.environ.get("SANDAN_DOCS_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        for name in ("resident-order", "secretary-board", "organization-board"):
            shutil.copyfile(phones.saved[name], DOCS / f"mock-{name}.png")


def test_times_read_in_beijing_time_whatever_the_browsers_zone(demo, browser, artifacts_dir):
    # A phone abroad, a headless browser on a UTC server: fmtTime used the browser's own zone, and an order
    # placed at 03:11 on 12-02 showed as "12月1日 19:11" beside the inbox's "2026年12月02日 03:11".
    resident = Phones(browser, demo[0], artifacts_dir).sign_in("resident", "demo-resident-1", "UTC")
    expect(resident.locator("#nav-who")).not_to_be_empty()
    shown = resident.evaluate(
        """async () => {
          const { fmtTime } = await import("/demo/ui.js");
          const times = ["2026-12-02T03:11:00+08:00", "2026-12-01T19:11:00Z", "2026-03-09T23:59:00+08:00"];
          return times.map(fmtTime);
        }"""
    )
    assert shown == ["12月2日 03:11", "12月2日 03:11", "3月9日 23:59"]


def test_an_error_toast_shows_the_messages_not_the_apis_keys(demo, browser, artifacts_dir):
    # Residents read "contact_phone: 请输入 11 位手机号", and after a 409
    # 'allowed_actions: approve_extension；deny_extension；cancel，state: "taken"'.
    phones = Phones(browser, demo[0], artifacts_dir)
    resident = phones.sign_in("resident", "demo-resident-1")
    fill_order_form(resident, contact_phone="1381234")
    resident.get_by_test_id("submit-order").click()
    toast = resident.locator("#toast")
    expect(toast).to_contain_text("联系电话：")
    assert "contact_phone" not in toast.text_content()
    shown = resident.evaluate(
        """async () => {
          const { showError } = await import("/demo/ui.js");
          const { ApiError } = await import("/demo/api.js");
          const toast = (status, body) => {
            showError(new ApiError(status, body));
            return document.getElementById("toast").textContent;
          };
          return [
            toast(422, { code: "validation_failed", message: "提交的内容有误", details: {
              contact_phone: ["请输入 11 位手机号"], "items.0.quantity": ["不能为空"],
              items: { 1: { drug_name: ["不能为空"] } }, _schema: ["请至少填写一项"], cash: ["必填"] } }),
            toast(409, { code: "illegal_action", message: "工单当前为“已签收”，不能取消", details: {
              state: "taken", state_label: "已签收", allowed_actions: ["approve_extension", "cancel"] } }),
            toast(422, { code: "validation_failed", message: "处方药须凭已有处方代购", details: {
              "items.0.prescription_present": ["处方药须凭已有处方代购"] } }),
          ];
        }"""
    )
    assert shown == [
        "提交的内容有误（联系电话：请输入 11 位手机号；药品清单：不能为空；请至少填写一项；必填）",
        "工单当前为“已签收”，不能取消",
        "处方药须凭已有处方代购（药品清单：处方药须凭已有处方代购）",
    ]
    assert phones.errors == []


def test_calls_that_find_the_access_token_expired_together_refresh_it_once(demo, browser, artifacts_dir):
    # "我的" reads /me and the inbox at once; each found the token expired and refreshed with the same refresh
    # token, and the API took the second for a stolen copy: the session ended, the person was signed out.
    phones = Phones(browser, demo[0], artifacts_dir)
    resident = phones.sign_in("resident", "demo-resident-1")
    expect(resident.locator("#nav-who")).not_to_be_empty()
    expired = {"code": "token_expired", "message": "登录已过期，请刷新或重新登录", "details": None}
    for path in ("**/api/v1/me", "**/api/v1/notifications?*"):
        resident.route(path, lambda route: route.fulfill(status=401, json=expired), times=1)
    presented = []
    resident.on(
        "request",
        lambda r: (
            presented.append(json.loads(r.post_data)["refresh_token"])
            if r.url.endswith("/auth/refresh")
            else None
        ),
    )
    resident.locator("[data-tab='#/me']").click()
    expect(resident.get_by_test_id("switch-person")).to_be_visible()
    assert presented and len(set(presented)) == len(presented), presented  # no token twice
    # Still signed in: the next screen reads with the refreshed pair.
    resident.locator("[data-tab='#/resident']").click()
    expect(resident.get_by_test_id("my-orders")).to_be_visible()
    assert resident.evaluate("() => sessionStorage.getItem('sandan.demo.session')") is not None
    assert phones.errors == []
