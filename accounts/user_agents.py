"""Readable names for User-Agent strings: "Firefox on Linux"."""

import re

# Order matters: Edge and Opera say "Chrome", Chrome says "Safari".
BROWSERS = [
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera\b")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\bFirefox/|\bFxiOS/")),
    ("Chromium", re.compile(r"\bChromium/")),
    ("Chrome", re.compile(r"\bChrome/|\bCriOS/|\bHeadlessChrome/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
    ("curl", re.compile(r"^curl/")),
]
SYSTEMS = [
    ("iOS", re.compile(r"\biPhone\b|\biPad\b|\biPod\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b|\bX11\b")),
]


def describe(user_agent):
    """Return "<browser> on <system>" for ``user_agent``, as far as it can tell."""
    user_agent = user_agent or ""
    browser = next((name for name, pattern in BROWSERS if pattern.search(user_agent)), None)
    system = next((name for name, pattern in SYSTEMS if pattern.search(user_agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"Unknown browser on {system}" if system else "Unknown browser")
