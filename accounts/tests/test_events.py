"""Session lifecycle events: one log record per created, rotated, ended and pruned session, never its id."""

import logging
import re

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import UserFactory
from sessiondemo.testing import web
from sessiondemo.testing.tasks import wait_for_tasks
from sessiondemo.testing.web import (
    NEW_PASSWORD,
    change_password,
    file_long_ago,
    handle_of,
    log_in,
    redis_key,
    redis_ms,
    set_times,
)

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
EVENTS = "sessiondemo.sessions.events"
HANDLE = re.compile(r"[0-9a-f]{16}")


@pytest.fixture
def session_ids():
    """Every session id any client of the test was given in a cookie."""
    return set()


@pytest.fixture
def browser(session_ids):
    """Make test clients, each on a device of its own, that note every session id they are given."""

    class RecordingClient(Client):
        def request(self, **request):
            response = super().request(**request)
            morsel = response.cookies.get(COOKIE)
            if morsel is not None and morsel.value:
                session_ids.add(morsel.value)
            return response

    def make(ip=None, **kwargs):
        return web.browser(ip=ip, client_class=RecordingClient, **kwargs)

    return make


@pytest.fixture
def log(caplog):
    """Capture every log record of every logger, at DEBUG."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def events(log, **match):
    """Return the event records, those with every attribute in ``match`` if given."""
    return [
        r
        for r in log.records
        if r.name == EVENTS and all(str(getattr(r, k, None)) == str(v) for k, v in match.items())
    ]


def ended(log, reason):
    """Return {(user id, session handle)} of the 'ended' records with ``reason``."""
    return {(str(r.user_id), r.session) for r in events(log, event="ended", reason=reason)}


def assert_well_formed(record, level=logging.INFO):
    """A record names its user and a session handle, in its message and as attributes."""
    assert record.levelno == level
    assert record.user_id not in (None, "", "*")
    assert HANDLE.fullmatch(str(record.session)), record.getMessage()
    message = record.getMessage()
    assert f"event={record.event} " in message
    assert f" user={record.user_id} " in message
    assert f" session={record.session}" in message
    if record.reason is not None:
        assert f" reason={record.reason} " in message


def assert_no_session_id_leaked(log, session_ids):
    assert session_ids
    for record in log.records:
        texts = [record.getMessage()]
        texts += [str(value) for value in vars(record).values()]
        texts += [repr(value) for value in vars(record).values()]
        for session_id in session_ids:
            assert not any(session_id in text for text in texts), (record.name, record.getMessage())


# One record per event, with its reason


def test_login_logs_created(log, browser, user, password):
    session_id = log_in(browser(), user, password)

    [record] = events(log, event="created")
    assert_well_formed(record)
    assert str(record.user_id) == str(user.pk)
    assert record.session == handle_of(session_id)
    assert record.getMessage() == f"event=created user={user.pk} session={handle_of(session_id)}"


def test_logout_logs_ended_by_logout(log, browser, user, password):
    client = browser()
    session_id = log_in(client, user, password)

    assert client.post("/accounts/logout/", secure=True).status_code == 302

    assert ended(log, "logout") == {(str(user.pk), handle_of(session_id))}
    [record] = events(log, event="ended")
    assert_well_formed(record)
    assert record.getMessage() == (
        f"event=ended reason=logout user={user.pk} session={handle_of(session_id)}"
    )


def test_password_change_logs_rotated_and_ends_the_others(log, browser, user, password):
    here, there = browser(), browser("198.51.100.7")
    old_id = log_in(here, user, password)
    there_id = log_in(there, user, password)

    response = change_password(here, password, NEW_PASSWORD)
    new_id = response.cookies[COOKIE].value

    [rotated] = events(log, event="rotated")
    assert_well_formed(rotated)
    assert rotated.session == handle_of(old_id)
    assert rotated.new_session == handle_of(new_id)
    assert f"new_session={handle_of(new_id)}" in rotated.getMessage()
    assert (str(user.pk), handle_of(there_id)) in ended(log, "password-change")
    assert (str(user.pk), handle_of(new_id)) not in ended(log, "password-change")
    for record in events(log, event="ended"):
        assert_well_formed(record)


def test_password_change_logs_ended_only_for_the_other_sessions(log, browser, user, password):
    here, there = browser(), browser("198.51.100.7")
    log_in(here, user, password)
    there_id = log_in(there, user, password)

    change_password(here, password, NEW_PASSWORD)

    assert ended(log, "password-change") == {(str(user.pk), handle_of(there_id))}


def test_signing_out_a_session_logs_ended_by_user(log, browser, user, password):
    here, there, third = browser(), browser("198.51.100.7"), browser("192.0.2.44")
    log_in(here, user, password)
    there_id = log_in(there, user, password)
    third_id = log_in(third, user, password)

    here.post(f"/accounts/sessions/{handle_of(there_id)}/end/", secure=True)
    assert ended(log, "user") == {(str(user.pk), handle_of(there_id))}

    here.post("/accounts/sessions/others/end/", secure=True)
    assert ended(log, "user") == {(str(user.pk), handle_of(there_id)), (str(user.pk), handle_of(third_id))}
    for record in events(log, event="ended"):
        assert_well_formed(record)


def test_a_refused_sign_out_logs_nothing(log, browser, user, password):
    here = browser()
    log_in(here, user, password)

    assert here.post("/accounts/sessions/0123456789abcdef/end/", secure=True).status_code == 404
    assert events(log, event="ended") == []


def test_the_admin_logs_ended_by_admin(log, browser, user, password):
    ids = [log_in(browser(), user, password), log_in(browser(), user, password)]
    root = User.objects.create_superuser("root", "root@example.com", password)
    admin = browser("192.0.2.1")
    log_in(admin, root, password)

    admin.post(reverse("admin:accounts_user_end_sessions", args=[user.pk]), secure=True)

    assert ended(log, "admin") == {(str(user.pk), handle_of(i)) for i in ids}
    for record in events(log, event="ended"):
        assert_well_formed(record)


def test_the_admin_bulk_action_logs_ended_by_admin(log, browser, user, password):
    session_id = log_in(browser(), user, password)
    root = User.objects.create_superuser("root", "root@example.com", password)
    admin = browser("192.0.2.1")
    log_in(admin, root, password)

    admin.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "end_all_sessions", "_selected_action": [user.pk]},
        secure=True,
    )

    assert ended(log, "admin") == {(str(user.pk), handle_of(session_id))}


def test_a_password_reset_logs_ended_by_password_reset(log, browser, user, password):
    ids = [log_in(browser(), user, password), log_in(browser(), user, password)]
    anonymous = browser()
    anonymous.post("/accounts/password_reset/", {"email": user.email}, secure=True)
    wait_for_tasks()
    link = re.search(r"https://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = anonymous.get(link, secure=True)["Location"]

    anonymous.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, secure=True)

    assert ended(log, "password-reset") == {(str(user.pk), handle_of(i)) for i in ids}
    for record in events(log, event="ended"):
        assert_well_formed(record)


def test_deactivation_logs_ended_by_account_deactivated(log, browser, user, password):
    session_id = log_in(browser(), user, password)

    user.is_active = False
    user.save()

    assert ended(log, "account-deactivated") == {(str(user.pk), handle_of(session_id))}


def test_deletion_logs_ended_by_account_deleted(log, browser, user, password):
    session_id = log_in(browser(), user, password)
    user_pk = user.pk

    user.delete()

    assert ended(log, "account-deleted") == {(str(user_pk), handle_of(session_id))}


def test_the_cap_logs_ended_by_session_cap(log, browser, user, password, settings):
    settings.SESSION_REDIS_MAX_PER_USER = 2
    ids = [log_in(browser(), user, password) for _ in range(3)]

    assert ended(log, "session-cap") == {(str(user.pk), handle_of(ids[0]))}
    [record] = events(log, event="ended")
    assert_well_formed(record)


def test_endsessions_logs_ended_by_command(log, browser, user, password):
    ids = [log_in(browser(), user, password), log_in(browser(), user, password)]

    call_command("endsessions", "--user", user.username, stdout=None)

    assert ended(log, "command") == {(str(user.pk), handle_of(i)) for i in ids}
    for record in events(log, event="ended"):
        assert_well_formed(record)


def test_the_absolute_age_logs_ended_by_expiry(log, browser, user, password, redis):
    client = browser()
    session_id = log_in(client, user, password)
    long_ago = redis_ms(redis) - (settings.SESSION_REDIS_ABSOLUTE_AGE + 60) * 1000
    set_times(redis, session_id, created=long_ago)

    assert client.get("/profile/", secure=True).status_code == 302

    assert ended(log, "expired") == {(str(user.pk), handle_of(session_id))}


def test_clearsessions_logs_pruned(log, browser, user, password, redis):
    session_id = log_in(browser(), user, password)
    redis.delete(redis_key(session_id))
    file_long_ago(redis, user)

    call_command("clearsessions", verbosity=0)

    [record] = events(log, event="pruned")
    assert str(record.user_id) == str(user.pk)
    assert record.session == handle_of(session_id)
    assert f"event=pruned reason=expired user={user.pk} " in record.getMessage()
    call_command("clearsessions", verbosity=0)
    assert len(events(log, event="pruned")) == 1  # nothing left to prune, nothing logged


def test_every_pruned_record_names_a_session_handle(log, browser, user, password, redis):
    session_id = log_in(browser(), user, password)
    redis.delete(redis_key(session_id))
    file_long_ago(redis, user)

    call_command("clearsessions", verbosity=0)

    [record] = events(log, event="pruned")
    # At DEBUG: one per session that expired unseen, which clearsessions may find by the million.
    assert_well_formed(record, level=logging.DEBUG)
    assert record.session == handle_of(session_id)


def test_endsessions_all_logs_each_ended_session(log, browser, user, password):
    other = UserFactory(password=password)
    ids = [log_in(browser(), user, password), log_in(browser(), other, password)]

    call_command("endsessions", "--all", stdout=None)

    assert ended(log, "command") == {
        (str(user.pk), handle_of(ids[0])),
        (str(other.pk), handle_of(ids[1])),
    }
    for record in events(log, event="ended"):
        assert_well_formed(record)


# Never the session id


def test_no_record_of_any_logger_carries_a_session_id(
    log, browser, session_ids, user, password, redis, settings
):
    """Drive every flow that logs an event, then search every record for every session id."""
    settings.SESSION_REDIS_MAX_PER_USER = 3
    here, there = browser(), browser("198.51.100.7")
    log_in(here, user, password)
    there_id = log_in(there, user, password)
    here.get("/accounts/sessions/", secure=True)
    here.post(f"/accounts/sessions/{handle_of(there_id)}/end/", secure=True)  # user
    log_in(there, user, password)
    here.post("/accounts/sessions/others/end/", secure=True)  # user
    log_in(there, user, password)
    response = change_password(here, password, NEW_PASSWORD)  # rotated, password-change
    assert response.status_code == 302
    there.get("/profile/", secure=True)  # a request with an ended session's cookie
    here.post("/accounts/logout/", secure=True)  # logout
    for _ in range(4):
        log_in(browser(), user, NEW_PASSWORD)  # session-cap

    root = User.objects.create_superuser("root", "root@example.com", password)
    admin = browser("192.0.2.1")
    log_in(admin, root, password)
    log_in(browser(), user, NEW_PASSWORD)
    admin.post(reverse("admin:accounts_user_end_sessions", args=[user.pk]), secure=True)  # admin
    log_in(browser(), user, NEW_PASSWORD)
    admin.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "end_all_sessions", "_selected_action": [user.pk]},
        secure=True,
    )  # admin (bulk)

    log_in(browser(), user, NEW_PASSWORD)
    anonymous = browser()
    anonymous.post("/accounts/password_reset/", {"email": user.email}, secure=True)
    wait_for_tasks()
    link = re.search(r"https://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = anonymous.get(link, secure=True)["Location"]
    anonymous.post(form_url, {"new_password1": password, "new_password2": password}, secure=True)

    expiring = log_in(browser(), user, password)
    log_in(browser(), user, password)
    redis.delete(redis_key(expiring))
    file_long_ago(redis, user)
    call_command("clearsessions", verbosity=0)  # pruned
    call_command("endsessions", "--user", user.username, stdout=None)  # command

    other = UserFactory(password=password)
    log_in(browser(), other, password)
    other.is_active = False
    other.save()  # account-deactivated
    third = UserFactory(password=password)
    log_in(browser(), third, password)
    third.delete()  # account-deleted
    log_in(browser(), user, password)
    call_command("endsessions", "--all", stdout=None)

    seen = {r.event if r.event != "ended" else r.reason for r in events(log)}
    assert seen >= {
        "created", "rotated", "pruned", "logout", "user", "admin", "password-change",
        "password-reset", "account-deactivated", "account-deleted", "session-cap", "command",
    }
    assert len(session_ids) > 15
    assert_no_session_id_leaked(log, session_ids)
