"""One red proxy errand (红色代办) through the clickable mock in headless Chromium, on the real demo stack:
the resident books a 低保申请 on a free slot of the community's service point; the secretary accepts it and
assigns the community's proxy agent; the agent collects the materials against a hand-over slip, lodges
them with a receipt number, records an approved result and hands it back; the resident completes, rates
and reads the timeline in plain words. The agent reads a medicine purchase's drug list, masked, then whole
through the logged reveal. Every screen is saved as a screenshot (test artifacts)."""

from pathlib import Path

import pytest

# Checked here too: the module this one borrows from skips itself as a whole, and importing from a skipped
# module fails instead of skipping.
if not Path("/usr/bin/chromium").exists():
    pytest.skip("Chromium not installed: apt-get install chromium", allow_module_level=True)

from tests.miniprogram_mock.test_mock_browser_loop import Phones, browser, demo, sync_api  # noqa: F401

expect = sync_api.expect


def test_errand_from_booking_to_completed_through_the_clickable_mock(demo, browser, artifacts_dir):  # noqa: F811
    from backend.demo import SURNAMES

    demo, _ = demo
    phones = Phones(browser, demo, artifacts_dir)
    agent_name = f"{SURNAMES[6]}代办"  # demo-agent-1, 阳光社区's proxy agent

    # 居民: 红色代办 tab, book a 低保申请 on the service point's first free slot.
    resident = phones.sign_in("resident", "demo-resident-1")
    resident.locator("[data-tab='#/errands']").click()
    expect(resident.get_by_test_id("my-errands")).to_contain_text("还没有代办事项")
    resident.get_by_test_id("new-errand").click()
    resident.get_by_test_id("errand-type").select_option("subsistence_allowance")
    expect(resident.get_by_test_id("errand-type-about")).to_contain_text("低保申请书")
    point = resident.get_by_test_id("service-point")
    expect(point).to_be_enabled()
    expect(point.locator("option")).to_have_count(2)  # only the points serving the resident's community
    point.select_option(label="阳光社区党群服务中心代办窗口")
    slot = resident.get_by_test_id("slot")
    expect(slot).to_be_enabled()
    slot.select_option(index=1)
    resident.get_by_test_id("errand-description").fill("独居老人，行动不便")
    phones.shot(resident, "resident-errand-form")
    resident.get_by_test_id("submit-errand").click()
    detail = resident.get_by_test_id("errand-detail")
    expect(detail).to_have_attribute("data-state", "appointed")
    expect(detail.get_by_test_id("timeline")).to_contain_text("您预约了代办事项")
    expect(detail.get_by_test_id("errand-agent")).to_have_text("待社区指派")
    errand_id = resident.url.rsplit("/", 1)[-1]

    # 社区书记: the errand list, accept with the materials seen, assign the community's agent.
    secretary = phones.sign_in("secretary", "demo-secretary-1")
    secretary.locator("[data-tab='#/errands']").click()
    waiting = secretary.locator(f"[data-testid=errands-to-accept] a[data-errand-id='{errand_id}']")
    expect(waiting).to_contain_text("低保申请")
    expect(secretary.get_by_test_id("errands-open")).not_to_contain_text("没有在办的代办")  # demo history
    phones.shot(secretary, "secretary-errands")
    waiting.click()
    form = secretary.get_by_test_id("accept-form")
    form.get_by_test_id("accept-agent").select_option(label=agent_name)
    form.get_by_label("低保申请书").check()
    form.get_by_test_id("do-accept").click()
    expect(secretary.get_by_test_id("errand-detail")).to_have_attribute("data-state", "accepted")
    expect(secretary.get_by_test_id("errand-agent")).to_have_text(agent_name)

    # 代办员: the queue by deadline, then one form per step.
    agent = phones.sign_in("agent", "demo-agent-1")
    queued = agent.locator(f"[data-testid=agent-queue] a[data-errand-id='{errand_id}']")
    expect(queued).to_contain_text("已受理")
    phones.shot(agent, "agent-queue")
    queued.click()
    collect = agent.get_by_test_id("collect-form")
    expect(collect.get_by_label("低保申请书")).to_be_checked()
    collect.get_by_test_id("handover-number").fill("JJ-0001")
    collect.get_by_test_id("handover-signed").check()
    phones.shot(agent, "agent-collect")
    collect.get_by_test_id("do-collect").click()
    page = agent.get_by_test_id("errand-detail")
    expect(page).to_have_attribute("data-state", "materials_collected")
    expect(page.get_by_test_id("materials").locator("li.done")).to_have_count(5)
    agent.get_by_test_id("lodge-receipt").fill("SJ-2026-0042")
    agent.get_by_test_id("do-lodge").click()
    expect(page).to_have_attribute("data-state", "lodged")
    expect(page.get_by_test_id("receipt-number")).to_have_text("SJ-2026-0042")
    agent.get_by_test_id("result-note").fill("审核通过，公示无异议")
    agent.get_by_test_id("result-amount").fill("860")
    agent.get_by_test_id("do-record_result").click()
    expect(page).to_have_attribute("data-state", "result")
    expect(page.get_by_test_id("outcome")).to_contain_text("已批准")
    agent.get_by_test_id("return-note").fill("结果通知书已当面交还")
    agent.get_by_test_id("do-return_to_resident").click()
    expect(page).to_have_attribute("data-state", "returned_to_resident")
    phones.shot(agent, "agent-returned")

    # 代办员: the demo's medicine purchase, its cash collected. The drug names are masked on the screen as
    # in every answer; the agent reads the whole list through the logged reveal, with a reason.
    agent.goto(demo + "/demo/#/errands")
    agent.locator("[data-testid=agent-queue] a", has_text="代购药品").first.click()
    drugs = agent.get_by_test_id("drug-list-card")
    expect(drugs.get_by_test_id("drug-list")).to_have_text("硝****** × 2盒")
    drugs.get_by_test_id("do-reveal-items").click()
    expect(drugs.get_by_test_id("drug-list")).to_have_attribute("data-revealed", "true")
    expect(drugs.get_by_test_id("drug-list")).to_have_text("硝苯地平缓释片 × 2盒")
    phones.shot(agent, "agent-drug-list")

    # 居民 again: complete, rate, and the whole timeline in plain words.
    resident.goto(demo + "/demo/#/errands")
    mine = resident.locator(f"[data-testid=my-errands] a[data-errand-id='{errand_id}']")
    expect(mine).to_contain_text("已送还")
    mine.click()
    resident.get_by_test_id("do-complete").click()
    done = resident.get_by_test_id("errand-detail")
    expect(done).to_have_attribute("data-state", "completed")
    resident.get_by_test_id("errand-rating-comment").fill("代办员很耐心")
    resident.get_by_test_id("do-rate").click()
    expect(done.get_by_test_id("errand-rating")).to_contain_text("很满意 代办员很耐心")
    steps = done.locator("[data-testid=timeline] li")
    expect(steps).to_have_count(8)
    assert [steps.nth(i).get_attribute("data-action") for i in range(8)] == [
        "create",
        "accept",
        "collect",
        "lodge",
        "record_result",
        "return_to_resident",
        "complete",
        "rate",
    ]
    expect(steps.nth(5)).to_contain_text("代办员已把结果和原件送还给您")
    expect(done.get_by_test_id("errand-result")).to_contain_text("860.00 元/月")
    phones.shot(resident, "resident-errand", scroll_to="[data-testid=timeline]")

    assert phones.errors == []
