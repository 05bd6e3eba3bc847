"""The dashboard in a real browser (headless Chromium) against the real stack with the offline
model: a build started from the form and followed live to its pull request, through dropped
connections, each event shown once; a plan approved; a budget extended; feedback; cancel; the
API's refusals in its own words; every page at a phone's width and a desktop's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from cofounder.db.migrate import upgrade
from cofounder.settings import Settings
from tests.conftest import ServerThread
from tests.dashboard_browser import (
    ARTIFACTS,
    BUILD_SECONDS,
    DESKTOP,
    PHONE,
    DroppingProxy,
    Stack,
    api,
    launch,
    phase,
    require_chromium,
    screenshots,
    shown,
    start_from_form,
    streamed,
)
from worker import running_worker

pytestmark = pytest.mark.slow

# Layout shifts not caused by the user, summed (Chrome's CLS): what streaming may cause at most.
SHIFT_ALLOWED = 0.02
COUNT_SHIFTS = """
window.__shift = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__shift += entry.value;
}).observe({ type: "layout-shift", buffered: true });
"""


@pytest_asyncio.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, offline_model: str, env: WorkflowEnvironment
) -> AsyncIterator[Stack]:
    """One worker and one API server (in a thread, behind the proxy) for the module's builds."""
    require_chromium()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("dashboard") / "data",
        anthropic_api_key=None,
        anthropic_base_url=offline_model,
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        temporal_address=env.client.service_client.config.target_host,
        review_settle_seconds=0,
        default_tier="unlimited",
        _env_file=None,  # type: ignore[call-arg]
    )
    await asyncio.to_thread(upgrade, settings.resolved_database_url)
    async with running_worker(env.client, settings):
        with ServerThread(create_app(settings)) as server:
            async with DroppingProxy(server.port) as proxy:
                yield Stack(url=proxy.url, direct=server.url, proxy=proxy)
            # A build in review streams nothing for a while: its followers are not waited for.
            server.server.force_exit = True


@pytest_asyncio.fixture(scope="module")
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        launched = await launch(playwright)
        yield launched
        await launched.close()
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None and ARTIFACTS.is_dir():
        with capture.global_and_fixture_disabled():  # shown, even though the output is captured
            reporter.write_line(f"\ndashboard screenshots: {ARTIFACTS}")


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page at desktop size; a script error on it fails the test."""
    context = await browser.new_context(viewport=DESKTOP)
    await context.add_init_script(COUNT_SHIFTS)
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert errors == []


async def test_a_build_started_from_the_form_is_followed_live_through_dropped_connections(
    page: Page, stack: Stack
) -> None:
    build_id = await start_from_form(page, stack, "a slug library")
    stream = page.locator("#stream-state")
    # The connection drops twice mid-build; the browser comes back with Last-Event-ID.
    for _ in range(2):
        await page.wait_for_function("window.buildStream.lastId() > 0")
        await expect(stream).to_have_text("live")
        before = await page.evaluate("window.buildStream.lastId()")
        assert stack.proxy.drop() >= 1
        await expect(stream).to_have_text("reconnecting")
        await expect(stream).to_have_text("live", timeout=10_000)
        await page.wait_for_function(
            f"window.buildStream.lastId() > {before} || document.getElementById('phase')"
            ".textContent === 'in_review'"
        )
    await phase(page, "in_review")
    await expect(page.locator("#diff")).to_contain_text("diff --git", timeout=10_000)
    await expect(page.locator("#attention")).to_contain_text("pull request is open")

    events = await streamed(stack, build_id)
    await page.wait_for_function(f"window.buildStream.lastId() >= {max(events)}")
    on_page = await shown(page)
    assert sorted(on_page) == sorted(events.items())  # every event, once, as what it is
    assert {"phase", "pull_request"} <= set(events.values())
    if "output" in events.values():  # the test runs' output, as it came
        await expect(page.locator("#test-log")).to_contain_text("passed")
    resumed = [h for h in stack.proxy.heads if b"/events" in h and b"last-event-id" in h.lower()]
    assert resumed, "the browser never resumed the stream"
    assert await page.evaluate("window.__shift") <= SHIFT_ALLOWED

    # A stream opened anew asks for what follows the last event shown; nothing is shown twice.
    last = await page.evaluate("window.buildStream.lastId()")
    await page.evaluate("window.buildStream.restart()")
    await expect(stream).to_have_text("live")
    await asyncio.sleep(1.5)
    assert sorted(await shown(page)) == sorted(events.items())
    reopened = [h for h in stack.proxy.heads if b"/events" in h][-1]
    assert f"after={last}".encode() in reopened
    await screenshots(page, "build-in-review")


async def test_feedback_is_answered_and_cancel_ends_the_build(page: Page, stack: Stack) -> None:
    build_id = await start_from_form(page, stack, "a slug library, for feedback")
    await phase(page, "in_review")
    await page.get_by_label("What should change on the pull request?").fill(
        "Also accept underscores as separators."
    )
    await page.get_by_role("button", name="Send feedback").click()
    await expect(page.locator("#feedback-form .notice.ok")).to_contain_text("Feedback sent")
    await expect(page.locator("#overview")).to_contain_text("pushed", timeout=BUILD_SECONDS * 1000)
    await phase(page, "in_review")

    await page.get_by_role("button", name="Cancel the build").click()
    await expect(page.locator("#cancel-form .notice.ok")).to_contain_text("Cancelling")
    await phase(page, "cancelled", 60)
    await expect(page.locator("#stream-state")).to_have_text("ended")
    # Cancelling again is refused, in the words of the JSON API.
    refused = await api(stack, "POST", f"/api/builds/{build_id}/cancel")
    assert refused.status_code == 409
    await page.get_by_role("button", name="Cancel the build").click()
    await expect(page.locator("#cancel-form .notice.error")).to_have_text(refused.json()["detail"])
    await screenshots(page, "build-cancelled")


async def test_a_plan_awaiting_approval_is_approved(page: Page, stack: Stack) -> None:
    build_id = await start_from_form(page, stack, "a slug library, planned first", approval=True)
    await phase(page, "awaiting_approval", 60)
    await expect(page.locator("#attention")).to_contain_text("waits for your approval")
    plan = page.locator("#plan")
    await expect(plan.get_by_role("button", name="Approve the plan")).to_be_visible()
    assert await plan.locator(".plan-steps li").count() >= 1
    await screenshots(page, "build-awaiting-approval")
    await plan.get_by_role("button", name="Approve the plan").click()
    await expect(page.locator("#approve-form .notice.ok")).to_contain_text("Plan approved")
    await expect(page.locator("#phase")).not_to_have_text("awaiting_approval")
    await expect(plan.get_by_role("button", name="Approve the plan")).to_have_count(0)
    await expect(page.locator("#activity")).to_contain_text("coding")
    await api(stack, "POST", f"/api/builds/{build_id}/cancel")  # done with it: free the worker


async def test_a_build_waiting_on_budget_is_extended(page: Page, stack: Stack) -> None:
    # Enough for the architect's call, not for the reviewer's after the coding spent some.
    build_id = await start_from_form(page, stack, "a slug library on a budget", budget="0.22")
    await phase(page, "awaiting_budget")
    await expect(page.locator("#attention")).to_contain_text("budget ran out")
    form = page.locator("#budget-form")
    await screenshots(page, "build-awaiting-budget")

    # Over the API's limit for one extension: refused in its own words, nothing changes.
    too_much = await api(stack, "POST", f"/api/builds/{build_id}/budget", json={"add_usd": 20000})
    assert too_much.status_code == 422
    await form.get_by_label("Add to the budget (US$)").fill("20000")
    await form.get_by_role("button", name="Extend the budget").click()
    error = page.locator("#budget-form .notice.error")
    await expect(error).to_contain_text(too_much.json()["detail"][0]["msg"])
    await expect(page.locator("#phase")).to_have_text("awaiting_budget")

    await page.locator("#budget-form").get_by_label("Add to the budget (US$)").fill("5")
    await page.locator("#budget-form").get_by_role("button", name="Extend the budget").click()
    await expect(page.locator("#budget-form .notice.ok")).to_contain_text("Budget raised to $5.22")
    await expect(page.locator("#phase")).not_to_have_text("awaiting_budget", timeout=30_000)
    await api(stack, "POST", f"/api/builds/{build_id}/cancel")


async def test_the_pages_work_at_a_phones_width_and_by_keyboard(page: Page, stack: Stack) -> None:
    # A project of its own, with a build cancelled and one that goes on.
    for _ in range(2):
        made = await api(stack, "POST", "/api/builds", json={"project": "pages", "goal": "slugs"})
        assert made.status_code == 202, made.text
    await api(stack, "POST", f"/api/builds/{made.json()['id']}/cancel")
    cancelled = {"project": "pages", "status": "cancelled"}
    for _ in range(100):  # until its row says so: the list shows the rows
        if (await api(stack, "GET", "/api/builds", params=cancelled)).json()["builds"]:
            break
        await asyncio.sleep(0.1)
    await page.set_viewport_size(PHONE)
    await page.goto(f"{stack.url}/app")
    await expect(page.get_by_role("link", name="pages", exact=True)).to_be_visible()
    await screenshots(page, "projects")
    # Keyboard: the first Tab reaches the skip link, with a visible focus ring.
    await page.keyboard.press("Tab")
    focused = await page.evaluate(
        "[document.activeElement.textContent,"
        " getComputedStyle(document.activeElement).outlineStyle]"
    )
    assert focused == ["Skip to content", "solid"]
    await page.get_by_role("link", name="pages", exact=True).click()
    await expect(page.locator(".build-row")).to_have_count(2)
    await page.get_by_label("Status").select_option("cancelled")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator(".build-row .status").first).to_have_text("cancelled")
    statuses = await page.locator(".build-row .status").all_text_contents()
    assert set(statuses) == {"cancelled"}
    await screenshots(page, "project-builds")
    await page.goto(f"{stack.url}/app/new")
    await screenshots(page, "new-build")

    # A bad value comes back in the API's words, the form kept.
    await page.get_by_label("Project").fill("Not A Slug")
    await page.get_by_label("Goal").fill("slugs")
    await page.get_by_role("button", name="Start the build").click()
    await expect(page.locator("#new-build .notice.error")).to_contain_text(
        "project must be 1-63 characters of lowercase letters"
    )
    await expect(page.get_by_label("Project")).to_have_value("Not A Slug")
    await screenshots(page, "new-build-refused")
    await page.goto(f"{stack.url}/app/builds/0000000000000000")
    await expect(page.locator(".notice.error")).to_have_text("build 0000000000000000 not found")
    await screenshots(page, "not-found")
    for phone_page in ("/app", "/app/new", "/app/projects/pages"):
        await page.set_viewport_size(PHONE)
        await page.goto(f"{stack.url}{phone_page}")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], phone_page  # nothing wider than the phone
