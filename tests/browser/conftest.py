"""The sandbox's page (GET /) in headless Chromium, driven by Playwright.

The browser is Debian's Chromium (`make browser` installs it when `chromium` is not on the
PATH), launched by its path: Playwright's own browser download is never used. Each xdist
worker launches its own, once per test module, beside that module's sandbox
(`sandbox_server` in tests/conftest.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from sandbox.server import SandboxServer

#: How long a Playwright wait (expect, click, fill) may take before the test fails.
WAIT_MS = 15_000
#: The time zone the page's browser runs in: not UTC, so a page that read a
#: datetimepicker's instant in UTC instead of the browser's zone would be caught.
BROWSER_TZ = "Asia/Ho_Chi_Minh"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the sandbox's page in headless Chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("no chromium on the PATH: `make browser` installs Debian's")
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class ConfirmDialogs:
    """Answers the page's confirm dialogs (Slack's confirm object on a button) as a person
    who means the click: accepted, unless a test queues other `answers` (False: Cancel).
    Keeps each dialog's message."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.answers: list[bool] = []

    def __call__(self, dialog: Dialog) -> None:
        self.messages.append(dialog.message)
        if self.answers.pop(0) if self.answers else True:
            dialog.accept()
        else:
            dialog.dismiss()


@pytest.fixture
def confirm_dialogs() -> ConfirmDialogs:
    return ConfirmDialogs()


@pytest.fixture
def page(
    chromium: Browser, sandbox_server: SandboxServer, confirm_dialogs: ConfirmDialogs
) -> Iterator[Page]:
    """The sandbox's page, loaded, with its list of people to act as filled in; its confirm
    dialogs answered by `confirm_dialogs`."""
    context = chromium.new_context(timezone_id=BROWSER_TZ, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.on("dialog", confirm_dialogs)
    page.goto(sandbox_server.url)
    page.locator("#user option").first.wait_for(state="attached")
    try:
        yield page
    finally:
        context.close()
