"""/accounts/sessions/: list this account's sessions and sign them out, as a user and an attacker see it."""

import re
import time
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.test import Client
from django.urls import Resolver404, resolve

from accounts.services import AUTHENTICATED_AT_KEY
from accounts.tests.factories import UserFactory
from sessiondemo.sessions import index
from sessiondemo.sessions.keys import session_name
from sessiondemo.testing.web import (
    file_in_index,
    index_entries,
    CHROME_WINDOWS,
    FIREFOX_LINUX,
    NEW_PASSWORD,
    browser,
    change_password,
    file_long_ago,
    handle_of,
    indexed,
    is_logged_in,
    log_in,
    redis_key,
    redis_ms,
    remove_session_value,
    session_exists,
    set_times,
    stored,
    stored_data,
    write_session_value,
)

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
LIST = "/accounts/sessions/"
END_OTHERS = "/accounts/sessions/others/end/"

SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
HANDLE_RE = re.compile(r"/accounts/sessions/([0-9a-f]{16})/end/")
JUST_NOW = re.compile(r">(now|\d+\xa0seconds? ago)</time>")


def end_url(session_id_or_handle):
    handle = session_id_or_handle
    if len(handle) == 32:
        handle = handle_of(handle)
    return f"/accounts/sessions/{handle}/end/"


def rows(page):
    """Return the HTML of each row of the sessions table."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [row for row in body.split("<tr")[1:]]


def age_authentication(redis, session_id, seconds):
    """Make the session's last password check ``seconds`` old."""
    write_session_value(redis, session_id, AUTHENTICATED_AT_KEY, int(time.time()) - seconds)


@pytest.fixture
def devices(user, password):
    """The user signed in on a Linux laptop (the one we drive), a Windows PC and an iPhone."""
    laptop = browser(FIREFOX_LINUX, "203.0.113.10")
    pc = browser(CHROME_WINDOWS, "198.51.100.7")
    phone = browser(SAFARI_IOS, "192.0.2.44")
    ids = {name: log_in(c, user, password) for name, c in [("laptop", laptop), ("pc", pc), ("phone", phone)]}
    return {"laptop": laptop, "pc": pc, "phone": phone}, ids


# The list


def test_the_list_shows_each_session_with_browser_ip_and_times(devices, user, redis):
    clients, ids = devices

    response = clients["laptop"].get(LIST, secure=True)

    assert response.status_code == 200
    table = rows(response.text)
    assert len(table) == 3
    this = [row for row in table if "This session" in row]
    assert len(this) == 1
    assert "Firefox on Linux" in this[0] and "203.0.113.10" in this[0]
    assert table[0] == this[0]  # this session comes first
    by_device = {
        "Chrome on Windows": "198.51.100.7",
        "Safari on iOS": "192.0.2.44",
    }
    for device, ip in by_device.items():
        [row] = [row for row in table if device in row]
        assert ip in row
        assert "This session" not in row
        assert ">Sign out</button>" in row
        # Signed in at and last active, as <time> elements.
        assert row.count("<time datetime=") == 2
        assert JUST_NOW.search(row)
    # The current session has no "Sign out" button of its own.
    assert ">Sign out</button>" not in this[0]
    assert "Sign out all other sessions" in response.text


def test_rows_are_addressed_by_opaque_handles_never_by_session_id_or_redis_key(devices, redis):
    clients, ids = devices

    page = clients["laptop"].get(LIST, secure=True).text

    handles = set(HANDLE_RE.findall(page))
    assert handles == {handle_of(ids["pc"]), handle_of(ids["phone"])}
    for session_id in ids.values():
        assert session_id not in page
        assert session_name(session_id) not in page
        assert redis_key(session_id) not in page


def test_the_list_shows_only_this_accounts_sessions(devices, password):
    clients, ids = devices
    other = UserFactory(password=password)
    other_id = log_in(browser("curl/8.5.0", "192.0.2.99"), other, password)

    page = clients["laptop"].get(LIST, secure=True).text

    assert "curl" not in page and "192.0.2.99" not in page
    assert handle_of(other_id) not in page
    assert len(rows(page)) == 3


def test_a_single_session_has_no_sign_out_all_others_button(user, password):
    laptop = browser()
    log_in(laptop, user, password)

    response = laptop.get(LIST, secure=True)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]  # never kept by a cache
    assert len(rows(response.text)) == 1
    assert "This session" in response.text
    assert "Sign out all other sessions" not in response.text
    assert not HANDLE_RE.search(response.text)


def test_the_list_needs_a_login(client):
    response = client.get(LIST, secure=True)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={LIST}"


def test_the_list_is_linked_from_the_navigation(user, password):
    laptop = browser()
    log_in(laptop, user, password)

    assert f'href="{LIST}"' in laptop.get("/profile/", secure=True).text


def test_the_list_drops_and_prunes_sessions_that_ended_behind_its_back(devices, user, redis):
    clients, ids = devices
    redis.delete(redis_key(ids["pc"]))  # as if it had expired
    file_long_ago(redis, user)  # readers drop entries only once sure (sessiondemo/sessions/index.py)

    response = clients["laptop"].get(LIST, secure=True)

    assert response.status_code == 200
    assert "Chrome on Windows" not in response.text
    assert len(rows(response.text)) == 2
    assert session_name(ids["pc"]) not in indexed(redis, user)
    assert indexed(redis, user) == {session_name(ids["laptop"]), session_name(ids["phone"])}


def test_an_index_entry_past_the_horizon_is_neither_listed_nor_kept(devices, user, redis, settings):
    clients, ids = devices
    horizon_ms = settings.SESSION_REDIS_ABSOLUTE_AGE * 1000 + index.NEW_ENTRY_MARGIN_MS
    file_in_index(redis, user.pk, {session_name(ids["phone"]): redis_ms(redis) - horizon_ms - 1})

    page = clients["laptop"].get(LIST, secure=True).text

    assert "Safari on iOS" not in page
    assert session_name(ids["phone"]) not in indexed(redis, user)


def idle_for(redis, session_id, seconds):
    """Make the session look unused for ``seconds``: its sliding TTL has run down that far."""
    redis.pexpire(redis_key(session_id), (settings.SESSION_COOKIE_AGE - seconds) * 1000)


def test_last_active_reads_as_natural_time(devices, redis):
    clients, ids = devices
    idle_for(redis, ids["pc"], 20 * 60 + 5)
    five_hours_ago = redis_ms(redis) - 5 * 3600 * 1000
    set_times(redis, ids["phone"], created=five_hours_ago)

    page = clients["laptop"].get(LIST, secure=True).text

    [pc_row] = [row for row in rows(page) if "Chrome on Windows" in row]
    assert "20\xa0minutes ago" in pc_row
    [phone_row] = [row for row in rows(page) if "Safari on iOS" in row]
    signed_in = datetime.fromtimestamp(five_hours_ago / 1000, UTC)
    assert signed_in.strftime("%-d %b %Y, %H:%M") in phone_row
    # Most recently active first, after this session.
    assert "Chrome on Windows" in rows(page)[-1]


# Signing one session out


def test_signing_out_another_session_ends_it_at_once(devices, user, redis):
    clients, ids = devices

    response = clients["laptop"].post(end_url(ids["pc"]), secure=True)

    assert response.status_code == 302
    assert response["Location"] == LIST
    assert not session_exists(redis, ids["pc"])
    assert session_name(ids["pc"]) not in indexed(redis, user)
    page = clients["laptop"].get(LIST, secure=True).text
    assert "That session is signed out." in page
    assert "Chrome on Windows" not in page
    assert not is_logged_in(clients["pc"])
    assert is_logged_in(clients["laptop"])
    assert is_logged_in(clients["phone"])


def test_a_signed_out_browser_cannot_come_back_with_its_old_cookie(devices, user, password, redis):
    clients, ids = devices
    clients["laptop"].post(end_url(ids["pc"]), secure=True)

    replay = browser(CHROME_WINDOWS, "198.51.100.7")
    replay.cookies[COOKIE] = ids["pc"]
    assert not is_logged_in(replay)
    assert not session_exists(redis, ids["pc"])  # never adopted


def test_signing_out_all_other_sessions(devices, user, redis):
    clients, ids = devices

    response = clients["laptop"].post(END_OTHERS, secure=True)

    assert response.status_code == 302
    assert response["Location"] == LIST
    assert indexed(redis, user) == {session_name(ids["laptop"])}
    assert not session_exists(redis, ids["pc"])
    assert not session_exists(redis, ids["phone"])
    page = clients["laptop"].get(LIST, secure=True).text
    assert "Signed out of 2 other sessions." in page
    assert len(rows(page)) == 1
    assert not is_logged_in(clients["pc"])
    assert not is_logged_in(clients["phone"])
    assert is_logged_in(clients["laptop"])


def test_signing_out_all_others_counts_in_the_singular(user, password, redis):
    laptop, pc = browser(), browser(CHROME_WINDOWS, "198.51.100.7")
    log_in(laptop, user, password)
    log_in(pc, user, password)

    laptop.post(END_OTHERS, secure=True)

    assert "Signed out of 1 other session." in laptop.get(LIST, secure=True).text
    assert not is_logged_in(pc)


def test_signing_out_all_others_leaves_other_accounts_alone(devices, password, redis):
    clients, ids = devices
    other = UserFactory(password=password)
    other_client = browser(CHROME_WINDOWS, "192.0.2.99")
    other_id = log_in(other_client, other, password)

    clients["laptop"].post(END_OTHERS, secure=True)

    assert session_exists(redis, other_id)
    assert is_logged_in(other_client)


def test_ending_sessions_needs_a_login(devices, redis):
    clients, ids = devices
    anonymous = Client()

    for url in (end_url(ids["pc"]), END_OTHERS):
        response = anonymous.post(url, secure=True)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    assert all(session_exists(redis, session_id) for session_id in ids.values())


def test_ending_sessions_is_post_only(devices, redis):
    clients, ids = devices

    assert clients["laptop"].get(end_url(ids["pc"]), secure=True).status_code == 405
    assert clients["laptop"].get(END_OTHERS, secure=True).status_code == 405
    assert all(session_exists(redis, session_id) for session_id in ids.values())


# Handles that are not this account's sessions


def test_another_users_real_handle_is_a_404_and_ends_nothing(devices, password, redis):
    clients, ids = devices
    other = UserFactory(password=password)
    victim = browser(CHROME_WINDOWS, "192.0.2.99")
    victim_id = log_in(victim, other, password)

    response = clients["laptop"].post(end_url(victim_id), secure=True)

    assert response.status_code == 404
    assert session_exists(redis, victim_id)
    assert is_logged_in(victim)


def test_a_made_up_handle_is_a_404(devices, redis):
    clients, ids = devices

    response = clients["laptop"].post(end_url("0123456789abcdef"), secure=True)

    assert response.status_code == 404
    assert all(session_exists(redis, session_id) for session_id in ids.values())


def test_this_sessions_own_handle_is_a_404_and_keeps_it(devices, redis):
    clients, ids = devices

    response = clients["laptop"].post(end_url(ids["laptop"]), secure=True)

    assert response.status_code == 404
    assert session_exists(redis, ids["laptop"])
    assert is_logged_in(clients["laptop"])


def test_a_handle_of_an_ended_session_is_a_404(devices, redis):
    clients, ids = devices
    assert clients["laptop"].post(end_url(ids["pc"]), secure=True).status_code == 302

    assert clients["laptop"].post(end_url(ids["pc"]), secure=True).status_code == 404


@pytest.mark.parametrize(
    "handle",
    [
        "0123456789ABCDEF",  # upper case
        "0123456789abcde",  # too short
        "0123456789abcdef0",  # too long
        "0123456789abcdeg",  # not hex
        "others0000000000",
    ],
)
def test_a_malformed_handle_is_a_404_at_the_url_level(devices, redis, handle):
    clients, ids = devices
    url = f"/accounts/sessions/{handle}/end/"

    response = clients["laptop"].post(url, secure=True)

    assert response.status_code == 404
    with pytest.raises(Resolver404):
        resolve(url)
    assert all(session_exists(redis, session_id) for session_id in ids.values())


def test_a_session_id_or_its_redis_digest_is_no_handle(devices, redis):
    clients, ids = devices

    for value in (ids["pc"], session_name(ids["pc"])):
        response = clients["laptop"].post(f"/accounts/sessions/{value}/end/", secure=True)
        assert response.status_code == 404
    assert session_exists(redis, ids["pc"])


# CSRF


def csrf_token(page):
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_ending_sessions_without_a_csrf_token_is_refused(user, password, redis, caplog):
    # A same-origin Referer, as a browser sends over HTTPS: only the token is missing.
    laptop = browser(enforce_csrf_checks=True, HTTP_REFERER="https://testserver/accounts/sessions/")
    token = csrf_token(laptop.get("/accounts/login/", secure=True).text)
    response = laptop.post(
        "/accounts/login/",
        {"username": user.username, "password": password, "csrfmiddlewaretoken": token},
        secure=True,
    )
    assert response.status_code == 302
    pc = browser(CHROME_WINDOWS, "198.51.100.7")
    pc_id = log_in(pc, user, password)

    assert laptop.post(end_url(pc_id), secure=True).status_code == 403
    assert laptop.post(END_OTHERS, secure=True).status_code == 403
    reasons = [r.getMessage() for r in caplog.records if r.name == "django.security.csrf"]
    assert len(reasons) == 2 and all("CSRF token missing" in reason for reason in reasons)
    assert session_exists(redis, pc_id)
    assert is_logged_in(pc)

    # The same request with the page's token goes through.
    token = csrf_token(laptop.get(LIST, secure=True).text)
    response = laptop.post(end_url(pc_id), {"csrfmiddlewaretoken": token}, secure=True)
    assert response.status_code == 302
    assert not session_exists(redis, pc_id)


# Asking for the password again


def test_a_fresh_login_ends_sessions_without_the_password(devices, redis):
    clients, ids = devices

    page = clients["laptop"].get(LIST, secure=True).text
    assert 'type="password"' not in page

    assert clients["laptop"].post(end_url(ids["pc"]), secure=True).status_code == 302
    assert not session_exists(redis, ids["pc"])


def test_a_stale_login_must_give_the_password_to_end_a_session(devices, user, password, redis):
    clients, ids = devices
    laptop = clients["laptop"]
    age_authentication(redis, ids["laptop"], settings.ACCOUNTS_REAUTHENTICATE_AFTER + 1)

    page = laptop.get(LIST, secure=True).text
    assert "asks for it again" in page
    assert 'type="password" name="password"' in page

    response = laptop.post(end_url(ids["pc"]), secure=True)
    assert response.status_code == 403
    assert "Enter your password to confirm." in response.text
    assert len(rows(response.text)) == 3  # the list, with the error
    assert session_exists(redis, ids["pc"])

    response = laptop.post(end_url(ids["pc"]), {"password": "not my password"}, secure=True)
    assert response.status_code == 403
    assert "That is not your password." in response.text
    assert "not my password" not in response.text
    assert session_exists(redis, ids["pc"])
    assert is_logged_in(clients["pc"])

    before = int(time.time())
    response = laptop.post(end_url(ids["pc"]), {"password": password}, secure=True)
    assert response.status_code == 302
    assert not session_exists(redis, ids["pc"])
    assert not is_logged_in(clients["pc"])
    # Re-authenticating moves this session to a new id, as any privilege change does.
    laptop_id = response.cookies[COOKIE].value
    assert laptop_id != ids["laptop"] and not session_exists(redis, ids["laptop"])
    # The check is refreshed: the next action needs no password.
    assert stored_data(redis, laptop_id)[AUTHENTICATED_AT_KEY] >= before
    assert 'type="password"' not in laptop.get(LIST, secure=True).text
    assert laptop.post(END_OTHERS, secure=True).status_code == 302
    assert not session_exists(redis, ids["phone"])


def test_a_stale_login_must_give_the_password_to_end_all_others(devices, password, redis):
    clients, ids = devices
    laptop = clients["laptop"]
    age_authentication(redis, ids["laptop"], 3600)

    response = laptop.post(END_OTHERS, {"password": "wrong"}, secure=True)
    assert response.status_code == 403
    assert "That is not your password." in response.text
    assert session_exists(redis, ids["pc"]) and session_exists(redis, ids["phone"])

    response = laptop.post(END_OTHERS, {"password": password}, secure=True)
    assert response.status_code == 302
    assert not session_exists(redis, ids["pc"]) and not session_exists(redis, ids["phone"])
    assert is_logged_in(laptop)


def test_the_password_is_asked_for_only_past_the_limit(devices, redis, settings):
    clients, ids = devices
    settings.ACCOUNTS_REAUTHENTICATE_AFTER = 300

    age_authentication(redis, ids["laptop"], 280)
    assert clients["laptop"].post(end_url(ids["pc"]), secure=True).status_code == 302

    age_authentication(redis, ids["laptop"], 320)
    assert clients["laptop"].post(end_url(ids["phone"]), secure=True).status_code == 403
    assert session_exists(redis, ids["phone"])


def test_a_session_with_no_recorded_login_time_must_give_the_password(devices, redis):
    clients, ids = devices
    remove_session_value(redis, ids["laptop"], AUTHENTICATED_AT_KEY)

    assert clients["laptop"].post(end_url(ids["pc"]), secure=True).status_code == 403
    assert session_exists(redis, ids["pc"])


def test_the_password_is_checked_before_the_handle(devices, redis):
    """A stale session learns nothing about handles without the password."""
    clients, ids = devices
    age_authentication(redis, ids["laptop"], 3600)

    assert clients["laptop"].post(end_url("0123456789abcdef"), secure=True).status_code == 403
    assert clients["laptop"].post(end_url(ids["pc"]), secure=True).status_code == 403


# Metadata


def test_login_records_ip_and_user_agent(user, password, redis):
    before = redis_ms(redis)
    session_id = log_in(browser(CHROME_WINDOWS, "198.51.100.7"), user, password)

    session = stored(redis, session_id)
    assert session.ip == "198.51.100.7"
    assert session.user_agent == CHROME_WINDOWS
    assert before <= session.created_ms == session.issued_ms <= redis_ms(redis)


def test_a_huge_user_agent_is_cut_before_it_is_stored(user, password, redis):
    session_id = log_in(browser(FIREFOX_LINUX + " x" * 2000, "203.0.113.10"), user, password)

    agent = stored(redis, session_id).user_agent
    assert len(agent) == 512
    assert agent.startswith(FIREFOX_LINUX)


def test_no_user_agent_reads_as_unknown_browser(user, password):
    laptop = Client(REMOTE_ADDR="203.0.113.10")
    log_in(laptop, user, password)

    assert "Unknown browser" in rows(laptop.get(LIST, secure=True).text)[0]


def test_password_change_keeps_this_sessions_browser_and_ip(user, password, redis):
    laptop = browser(FIREFOX_LINUX, "203.0.113.10")
    log_in(laptop, user, password)

    response = change_password(laptop, password, NEW_PASSWORD)
    assert response.status_code == 302
    new_id = response.cookies[COOKIE].value

    session = stored(redis, new_id)
    assert session.ip == "203.0.113.10"
    assert session.user_agent == FIREFOX_LINUX
    [row] = rows(laptop.get(LIST, secure=True).text)
    assert "Firefox on Linux" in row and "203.0.113.10" in row


def test_last_active_follows_every_read_at_no_extra_round_trip(user, password, redis, round_trips):
    laptop, phone = browser(FIREFOX_LINUX), browser(CHROME_WINDOWS)
    session_id = log_in(laptop, user, password)
    log_in(phone, user, password)
    idle_for(redis, session_id, 10 * 60)
    [row] = [r for r in rows(phone.get(LIST, secure=True).text) if "Firefox on Linux" in r]
    assert "10\xa0minutes ago" in row

    with round_trips() as log:
        assert laptop.get("/profile/", secure=True).status_code == 200

    # The read slid the TTL back: that is the last activity, with no write.
    assert log.commands == ["GETEX", "PEXPIRETIME"]
    [row] = [r for r in rows(phone.get(LIST, secure=True).text) if "Firefox on Linux" in r]
    assert "now" in row


# The per-user cap


def test_a_login_past_the_cap_ends_the_oldest_session(user, password, redis, settings):
    settings.SESSION_REDIS_MAX_PER_USER = 3
    clients = [browser(FIREFOX_LINUX, f"203.0.113.{n}") for n in range(1, 5)]
    ids = [log_in(c, user, password) for c in clients]

    assert len(index_entries(redis, user.pk)) == 3
    assert not session_exists(redis, ids[0])
    assert not is_logged_in(clients[0])
    assert [is_logged_in(c) for c in clients[1:]] == [True, True, True]
    assert indexed(redis, user) == {session_name(i) for i in ids[1:]}
    page = clients[3].get(LIST, secure=True).text
    assert len(rows(page)) == 3
    assert "203.0.113.1<" not in page


def test_the_cap_is_per_user(user, password, redis, settings):
    settings.SESSION_REDIS_MAX_PER_USER = 2
    other = UserFactory(password=password)
    mine = [browser() for _ in range(2)]
    for c in mine:
        log_in(c, user, password)
    theirs = [browser() for _ in range(2)]
    for c in theirs:
        log_in(c, other, password)

    assert [is_logged_in(c) for c in mine + theirs] == [True] * 4


def test_the_cap_counts_only_live_sessions(user, password, redis, settings):
    settings.SESSION_REDIS_MAX_PER_USER = 3
    clients = [browser(FIREFOX_LINUX, f"203.0.113.{n}") for n in range(1, 5)]
    first, second, third = (log_in(c, user, password) for c in clients[:3])
    redis.delete(redis_key(third))  # idle-expired: Redis dropped the hash, the index entry stays

    log_in(clients[3], user, password)

    # Three live sessions (first, second, fourth): not past the cap of three.
    assert is_logged_in(clients[0])
    assert is_logged_in(clients[1])


def test_entries_that_logouts_leave_behind_never_push_a_live_session_out(user, password, redis, settings):
    settings.SESSION_REDIS_MAX_PER_USER = 3
    laptop, phone = browser(FIREFOX_LINUX, "203.0.113.1"), browser(FIREFOX_LINUX, "203.0.113.2")
    log_in(laptop, user, password)
    # Logins and logouts in a row: each logout leaves its entry for a reader to drop.
    for n in range(6):
        visitor = browser(FIREFOX_LINUX, f"203.0.113.{10 + n}")
        log_in(visitor, user, password)
        assert visitor.post("/accounts/logout/", secure=True).status_code == 302
    assert len(index_entries(redis, user.pk)) > 3

    log_in(phone, user, password)

    assert is_logged_in(laptop)
    assert is_logged_in(phone)
    assert len(rows(phone.get(LIST, secure=True).text)) == 2


# Round trips


@pytest.mark.parametrize("count", [1, 15])
def test_the_list_costs_at_most_two_round_trips_however_many_sessions(user, password, round_trips, count):
    clients = [browser(FIREFOX_LINUX, f"203.0.113.{n}") for n in range(count)]
    for c in clients:
        log_in(c, user, password)

    with round_trips() as log:
        response = clients[0].get(LIST, secure=True)

    assert response.status_code == 200
    assert len(rows(response.text)) == count
    assert log.trips[0] == ["GETEX", "PEXPIRETIME"]  # the session's own read
    assert len(log) <= 1 + 2
