"""Playwright driving Debian's Chromium against pytest-django's live server.

The browser tests fail, never skip, when Chromium or Playwright is missing:
install Chromium with `python3 scripts/browser.py` (it calls `ensure_chromium()`)
and Playwright with the dev requirements. Playwright's own browser downloads
are not used. Screenshots of every step go to artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-gpu", "--headless=new"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: the browser tests need it. Install it with "
                    "`python3 scripts/browser.py` (or `apt-get install -y chromium`).", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: `.venv/bin/pip install -r requirements-dev.txt`.", pytrace=False)
    # Playwright's sync API keeps an event loop running in this thread; the ORM
    # calls that set up test data would otherwise be refused as "async".
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    except Exception as exc:
        playwright.stop()
        pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
    yield browser
    browser.close()
    playwright.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def site(live_server, settings):
    """The live server over plain HTTP (no redirect to https, cookies without the Secure flag).

    The live server is shared by the session and was built before this test's
    settings: SecurityMiddleware read SECURE_SSL_REDIRECT when it was created,
    so the server's middleware is loaded again with the plain-HTTP settings.
    """
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    handler = live_server.thread.httpd.get_app()
    while handler is not None:  # the static and media handlers are WSGIHandlers wrapping Django's
        handler.load_middleware()
        handler = getattr(handler, "application", None)
    return live_server


class Screens:
    """Saves numbered full-page screenshots of one test: <test>-<viewport>-<nn>-<step>.png."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{prefix}-[0-9][0-9]-*.png"):
            old.unlink()

    def __call__(self, page, step: str) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.prefix}-{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_page(browser, request):
    """`open_page(viewport="desktop", javascript=True, expected=())` -> (page, screens); fails the test on any
    JS error or anything the Content-Security-Policy blocks, but console errors matching an `expected`
    regular expression (an answer the test provokes, such as a 429)."""
    contexts, errors = [], []

    def _open(viewport: str = "desktop", *, javascript: bool = True, expected: tuple[str, ...] = ()):
        context = browser.new_context(viewport=VIEWPORTS[viewport], java_script_enabled=javascript,
                                      locale="en-GB", timezone_id="Europe/Berlin")
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        # Anything the Content-Security-Policy blocks is an error too (Chromium also logs most of it).
        page.add_init_script("document.addEventListener('securitypolicyviolation', (e) => console.error("
                             "'CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + "
                             "' at ' + e.sourceFile + ':' + e.lineNumber));")
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" and not any(re.search(e, msg.text) for e in expected) else None)
        name = re.sub(r"[^a-z0-9]+", "-", request.node.originalname.removeprefix("test_").lower()).strip("-")
        return page, Screens(f"{name}-{viewport}")

    yield _open
    for context in contexts:
        context.close()
    assert not errors, "errors in the browser:\n  " + "\n  ".join(errors)
