"""Find and launch the system Chromium for the browser tests."""

import os
import shutil

import pytest

# Without the background-networking flags Chromium keeps dialling Google's
# services, and on a closed network those refused connections get in the way.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# The names scripts/ensure-chromium accepts, in the same order.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path():
    """Return the path of the system Chromium, or None if it is not installed."""
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def require_chromium():
    """Return Chromium's path; skip the test without it, or fail it when CI=true."""
    path = chromium_path()
    if path is None:
        reason = "Chromium is not installed (Debian/Ubuntu: apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true, so the browser tests must run", pytrace=False)
        pytest.skip(reason)
    return path


def launch_chromium(playwright):
    """Launch the system Chromium, headless, through Playwright."""
    return playwright.chromium.launch(
        executable_path=require_chromium(), headless=True, args=CHROMIUM_ARGS
    )
