"""The session workflow in a real Chromium, as a user and an attacker see it."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect, sync_playwright

from accounts.models import User
from sessiondemo.sessions.keys import key_prefix
from sessiondemo.testing.browser import launch_chromium
from sessiondemo.testing.web import stored

pytestmark = pytest.mark.browser

COOKIE = settings.SESSION_COOKIE_NAME
SHOTS = Path("/tmp/browser-shots")
BAD_LOGIN = (
    "Please enter a correct username and password. "
    "Note that both fields may be case-sensitive."
)


@pytest.fixture(scope="module")
def browser():
    """Launch one headless Chromium for the whole module."""
    # Playwright's sync API keeps an asyncio loop running on this thread, so
    # Django would take the (synchronous) ORM calls of the tests and of the
    # database fixtures for calls from async code and refuse them.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def site(live_server):
    """Return the live server's URL with host localhost, where __Host- cookies work."""
    return live_server.url.replace("127.0.0.1", "localhost")


@pytest.fixture
def new_context(browser, site):
    """Return a factory of fresh browser contexts (empty cookie jars), closed after the test."""
    contexts = []

    def new_context():
        contexts.append(browser.new_context(base_url=site))
        return contexts[-1]

    yield new_context
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context):
    return new_context()


@pytest.fixture
def page(context):
    return context.new_page()


def session_cookie(context):
    """Return the session cookie in the context's jar, or None."""
    return next((c for c in context.cookies() if c["name"] == COOKIE), None)


def session_keys(redis):
    return redis.keys(f"{key_prefix()}s:*")


def replay(context, session_id):
    """Put a copy of the session cookie in ``context``'s jar and open /profile/ with it."""
    # Given an http:// "url", Chromium drops "secure" and then refuses the
    # __Host- name; a host-only domain with path "/" keeps both.
    cookie = {"name": COOKIE, "value": session_id, "domain": "localhost", "path": "/"}
    context.add_cookies([{**cookie, "secure": True, "httpOnly": True}])
    assert session_cookie(context)["value"] == session_id
    page = context.new_page()
    page.goto("/profile/")
    return page


def log_in(page, username, password):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))


def screenshot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / name, full_page=True)


def test_sign_up_log_in_edit_profile_and_log_out(context, page, site, redis, password):
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_label("Password confirmation").fill(password)
    page.get_by_role("button", name="Sign up").click()

    expect(page).to_have_url(f"{site}/accounts/login/")
    expect(page.locator(".messages")).to_contain_text("Your account is ready")
    assert session_cookie(context) is None
    assert session_keys(redis) == []

    log_in(page, "alice", password)

    expect(page).to_have_url(f"{site}/profile/")
    expect(page.get_by_role("heading", level=1)).to_have_text("alice")
    expect(page.get_by_role("navigation")).to_contain_text("Signed in as alice")
    cookie = session_cookie(context)
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["expires"] == -1
    assert cookie["domain"] == "localhost"
    assert not any(c["domain"].startswith(".") for c in context.cookies())
    assert cookie["value"] not in page.evaluate("document.cookie")
    assert COOKIE not in page.evaluate("document.cookie")
    assert len(session_keys(redis)) == 1
    assert stored(redis, cookie["value"]).user_id == str(User.objects.get(username="alice").pk)

    page.get_by_role("link", name="Edit profile").click()
    page.get_by_label("Display name").fill("Alice Liddell")
    page.get_by_label("Bio").fill("Down the rabbit hole.")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(f"{site}/profile/")
    expect(page.locator(".messages")).to_contain_text("Your profile is saved.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alice Liddell")
    expect(page.locator("dl")).to_contain_text("Down the rabbit hole.")
    screenshot(page, "profile.png")

    log_out(page)

    assert session_cookie(context) is None
    assert session_keys(redis) == []
    page.goto("/profile/")
    expect(page).to_have_url(f"{site}/accounts/login/?next=/profile/")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_a_copied_cookie_is_worthless_after_logout(new_context, page, site, user, password, redis):
    log_in(page, user.username, password)
    expect(page).to_have_url(f"{site}/profile/")
    stolen = session_cookie(page.context)["value"]

    # While the session lives the copy works, so the replay below is a real one.
    attacker = replay(new_context(), stolen)
    expect(attacker).to_have_url(f"{site}/profile/")
    expect(attacker.get_by_role("heading", level=1)).to_have_text(user.username)

    log_out(page)

    attacker = replay(new_context(), stolen)
    expect(attacker).to_have_url(f"{site}/accounts/login/?next=/profile/")
    expect(attacker.locator("body")).not_to_contain_text(user.username)
    assert session_keys(redis) == []


def test_a_wrong_password_says_so_and_stores_no_session(context, page, site, user, redis):
    log_in(page, user.username, "not the password")

    expect(page).to_have_url(f"{site}/accounts/login/")
    expect(page.get_by_role("alert")).to_have_text(BAD_LOGIN)
    expect(page.get_by_label("Username")).to_have_value(user.username)
    screenshot(page, "login-error.png")
    assert session_cookie(context) is None
    # No session and no index; only the login throttle's expiring counters.
    assert [k for k in redis.keys(f"{key_prefix()}*") if not k.startswith(f"{key_prefix()}t:".encode())] == []


def test_signing_out_another_browser_from_your_sessions(new_context, site, user, password, redis):
    laptop = new_context().new_page()
    phone_context = new_context()
    phone = phone_context.new_page()
    log_in(laptop, user.username, password)
    log_in(phone, user.username, password)
    expect(phone).to_have_url(f"{site}/profile/")

    laptop.get_by_role("link", name="Sessions").click()
    rows = laptop.locator("table.sessions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="This session")).to_have_count(1)
    screenshot(laptop, "sessions.png")
    rows.filter(has_not_text="This session").get_by_role("button", name="Sign out").click()

    expect(laptop.get_by_text("That session is signed out.")).to_be_visible()
    expect(rows).to_have_count(1)
    assert len(session_keys(redis)) == 1
    # The phone still holds its cookie, and it is worth nothing now.
    assert session_cookie(phone_context) is not None
    phone.goto("/profile/")
    expect(phone).to_have_url(f"{site}/accounts/login/?next=/profile/")
