"""The browser tests' own set-up: no Chromium is a failure, not a skip."""

from pathlib import Path

import pytest

from tests.browser.conftest import require_chromium

pytestmark = pytest.mark.browser


def test_a_missing_chromium_fails_the_browser_tests_instead_of_skipping_them(tmp_path: Path):
    with pytest.raises(pytest.fail.Exception, match="install Debian's chromium"):
        require_chromium(tmp_path / "no-chromium")
    require_chromium()  # the real one is here
