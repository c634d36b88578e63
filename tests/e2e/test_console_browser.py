"""The admin console in a real browser: headless Chromium from the distribution's packages (`make browser`),
driven by Selenium through the distribution's chromedriver; no browser is downloaded.

An admin asks the bot core for `/ragbot-admin console`, opens the link, signs in, approves a correction,
rolls back a LoRA adapter and queues a source's sync. Screenshots go to $RAGBOT_TEST_OUTPUT (default
build/test-output)/console; with RAGBOT_CONSOLE_DOCS_SCREENSHOTS=1 the review queue and the adapters chart are
also copied to docs/img/.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr

from bot.types import Actor, Location
from rag_engine.feedback import pending_corrections
from rag_engine.source_admin import add_source
from rag_engine.store import Store
from rag_engine.training import registry
from tests.support.console import SECRET, console_app, console_settings, seed
from tests.support.security import core_for

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("RAGBOT_TEST_OUTPUT") or ROOT / "build" / "test-output") / "console"
DOCS_IMG = ROOT / "docs" / "img"


def _browser() -> tuple[str, str]:
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        reason = (f"no Chromium for the console's browser tests (chromium: {chromium or 'missing'}, chromedriver: "
                  f"{driver or 'missing'}); `make browser` installs Debian's chromium and chromium-driver")
        print(reason)
        pytest.skip(reason)
    return chromium, driver


@pytest.fixture()
def browser():
    chromium, driver_path = _browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to fetch a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture()
def served(db, scratch_dir, tmp_path):
    """The console over the seeded database, served by uvicorn on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = console_settings(scratch_dir, console_url=url)
    seeded = seed(db, settings, tmp_path / "adapters")
    server = uvicorn.Server(uvicorn.Config(console_app(db, settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    yield url, seeded
    server.should_exit = True
    thread.join(10)


def _shot(driver, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    assert driver.save_screenshot(str(path)), name
    return path


def _wait(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "the page never got there"
        time.sleep(0.1)


async def test_sign_in_by_link_approve_a_correction_and_roll_back(browser, served, engine, db, tmp_path):
    from selenium.webdriver.common.by import By

    url, seeded = served
    core = core_for(engine, tmp_path, console_secret=SecretStr(SECRET), console_url=url, slack_team_ids=["T1"])
    result = await core.admin(Actor("slack", "UADMIN", "Ada"), Location("slack", "T1", "C1"), "console")
    assert result.ok, result.message
    (link,) = result.detail_lines

    # sign in by link: the page asks first (a preview must not spend the link), then opens the session
    browser.get(link)
    _shot(browser, "01-sign-in")
    browser.find_element(By.ID, "sign-in").click()
    _wait(lambda: browser.current_url.endswith("/interactions"))
    assert "slack:UADMIN" in browser.find_element(By.TAG_NAME, "header").text
    assert "When are production deploys?" in browser.page_source
    _shot(browser, "02-interactions")
    browser.get(f"{url}/interactions/{seeded.fallback}")
    assert "grounding: 3 of 4 sentences unsupported" in browser.find_element(By.ID, "fallback").text
    _shot(browser, "03-interaction")

    # the review queue: approve the pending correction
    browser.get(f"{url}/corrections")
    assert "after the staging check" in browser.find_element(By.ID, f"correction-{seeded.correction}").text
    queue = _shot(browser, "04-review-queue")
    browser.find_element(By.ID, f"approve-{seeded.correction}").click()
    notice = _wait(lambda: browser.find_elements(By.ID, "notice"))[0].text
    assert f"Approved correction {seeded.correction}" in notice
    assert browser.find_element(By.ID, "queue-empty")
    assert pending_corrections(db)[1] == 0
    _shot(browser, "05-review-queue-approved")

    # LoRA adapters: the chart renders, then roll back v2 -> v1
    v1, v2 = seeded.versions
    browser.get(f"{url}/adapters")
    chart = browser.find_element(By.ID, "adapters-chart")
    _wait(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", chart))
    assert browser.find_element(By.ID, "active-version").text == v2
    adapters = _shot(browser, "06-adapters")
    browser.find_element(By.ID, "rollback").click()
    _wait(lambda: browser.find_elements(By.ID, "notice"))
    assert f"Rolled back LoRA adapter {v2}" in browser.find_element(By.ID, "notice").text
    assert browser.find_element(By.ID, "active-version").text == v1
    assert registry.active(db).version == v1
    _shot(browser, "07-adapters-rolled-back")

    # sources: a failing one is shown backing off; "Sync now" queues a sync and opens its job
    store = Store(db)
    add_source(store, "handbook", "git", {"repo": str(tmp_path / "handbook")}, "docs", every_s=3600)
    failing = add_source(store, "wiki", "git", {"repo": str(tmp_path / "wiki")}, "docs", every_s=1800)
    store.sources.record_failure(failing.id, "git clone failed: repository not found", backoff_base_s=600,
                                 backoff_max_s=3600)
    browser.find_element(By.LINK_TEXT, "Sources").click()
    _wait(lambda: browser.current_url.endswith("/sources"))
    assert "backing off" in browser.find_element(By.ID, "source-wiki").text
    _shot(browser, "08-sources")
    browser.find_element(By.ID, "sync-handbook").click()
    _wait(lambda: "/jobs/" in browser.current_url)
    assert browser.find_element(By.ID, "job-status").text == "queued"
    assert "Queued a sync of handbook" in browser.find_element(By.ID, "notice").text
    _shot(browser, "09-source-sync-job")

    actions = [(a.actor, a.action, a.ok) for a in reversed(Store(db).audit.recent(20))]
    assert actions == [("slack:UADMIN", "console", True), ("slack:UADMIN", "console sign-in", True),
                       ("slack:UADMIN", "feedback", True), ("slack:UADMIN", "rollback", True),
                       ("slack:UADMIN", "sources", True)]
    if os.environ.get("RAGBOT_CONSOLE_DOCS_SCREENSHOTS") == "1":
        shutil.copyfile(queue, DOCS_IMG / "console-review-queue.png")
        shutil.copyfile(adapters, DOCS_IMG / "console-adapters.png")
