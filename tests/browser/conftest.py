"""A real Chromium (Debian's /usr/bin/chromium) driven by Playwright against pytest-django's
live server, with a real Celery worker where a test needs scoring.

Never `playwright install`: the browser is the system's. A missing chromium fails the
tests (deploy/system-deps.sh installs it), it never skips them. Screenshots of the pages
go to test-artifacts/screenshots/ (git-ignored) for a person to look at; CI keeps that
folder as an output.

axe-core (the accessibility checker) comes from the npm registry at test setup, into
var/axe-core/ (git-ignored), never committed: `axe_source` installs it when missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.worker_process import worker_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
AXE_PACKAGE = "axe-core@4"
AXE_DIR = REPO / "var" / "axe-core"
AXE_SCRIPT = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"


def require_chromium(path: Path = CHROMIUM) -> None:
    """Fail (never skip) without the system's browser: a green run means pages were driven."""
    if not path.exists():
        pytest.fail(
            f"{path} is missing: install Debian's chromium (deploy/system-deps.sh does it)."
        )


@pytest.fixture
def browser(monkeypatch):
    """A fresh headless Chromium per test (about half a second to start)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread while it is open, and Django
    # then refuses the test's own (synchronous) queries as made "from an async context".
    # Only for the test's duration: the loop stops with the browser.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server):
    """`new_page(width=1280)` opens a page in a fresh browser context (its own cookies).

    Uncaught JavaScript errors fail the test.
    """
    contexts = []
    errors: list[str] = []

    def make(width: int = 1280, height: int = 900):
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": height},
            accept_downloads=True,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def worker(tmp_path):
    log = tmp_path / "worker.log"
    with worker_process(log) as proc:
        yield proc, log


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/account/")


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, installed from the npm registry on first use (about 1 s)."""
    if not AXE_SCRIPT.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is missing: install Debian's npm (deploy/system-deps.sh does it).")
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(AXE_DIR), "--no-audit", "--no-fund", AXE_PACKAGE],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0 or not AXE_SCRIPT.exists():
            pytest.fail(f"npm could not install {AXE_PACKAGE}: {done.stderr[-2000:]}")
    return AXE_SCRIPT.read_text()


# Serious and critical findings of the WCAG 2 A/AA rules and axe's best practices.
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
}"""


def axe_findings(page, source: str) -> list[dict]:
    """axe's serious and critical findings on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated through the DevTools protocol: no script tag, no network.
        page.evaluate(source)
    return page.evaluate(AXE_RUN)
