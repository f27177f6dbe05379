"""
Attacks on the session store itself, as an attacker (or an unlucky user) would try them.

Issue 7: ended sessions coming back through a move to a new id (cycle_key,
renewal), families of ids that ending misses, updates lost across a move, an
absolute timeout that restarts or follows the app server's clock, index
entries that hide live sessions, stale cookies taken for guesses, and a hash
copied or edited by someone who can write to Redis.

Races are forced, not hoped for: the other request runs inside the first
one (from the moment its page renders, or its password is saved), on the
real site and the real Redis.
"""

import contextlib
import logging
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save
from django.test import Client
from django.test.signals import template_rendered

from accounts.models import User
from accounts.tests.factories import UserFactory
from sessiondemo.sessions import codec, index, protocol
from sessiondemo.sessions.backend import SessionStore
from sessiondemo.testing.web import (
    file_in_index,
    index_entries,
    NEW_PASSWORD,
    admin_browser,
    browser,
    change_password,
    handle_of,
    is_logged_in,
    issued_session_id,
    log_in,
    make_renewal_due,
    redis_key,
    redis_ms,
    session_name,
    set_times,
    stored,
    write_session_value,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("sessiondemo.tests.urls")]

COOKIE = settings.SESSION_COOKIE_NAME
RENEW_AFTER = 600


def same_browser(client):
    """Return another client (another tab) holding ``client``'s session cookie."""
    tab = Client(HTTP_USER_AGENT=client.defaults.get("HTTP_USER_AGENT", ""))
    tab.cookies[COOKIE] = client.cookies[COOKIE].value
    return tab


def holding(session_id):
    """Return a client that presents ``session_id``."""
    client = Client()
    client.cookies[COOKIE] = session_id
    return client


@contextlib.contextmanager
def when_rendering(template_name, action):
    """
    Run ``action()`` once, in the middle of the first request that renders ``template_name``.

    A sync view's page: ``action()``, another request, runs sync code, which
    an async view's render (on its event loop) cannot host.
    """
    done = []

    def hook(sender, template, **kwargs):
        if template.name == template_name and not done:
            done.append(True)
            action()

    template_rendered.connect(hook, dispatch_uid="attack-hook")
    try:
        yield done
    finally:
        template_rendered.disconnect(dispatch_uid="attack-hook")


@contextlib.contextmanager
def when_logged(event, action):
    """Run ``action()`` once, when the first session event ``event`` is logged (mid-request)."""
    done = []

    class Hook(logging.Handler):
        def emit(self, record):
            if getattr(record, "event", None) == event and not done:
                done.append(True)
                action()

    logger = logging.getLogger("sessiondemo.sessions.events")
    hook = Hook()
    logger.addHandler(hook)
    try:
        yield done
    finally:
        logger.removeHandler(hook)


@contextlib.contextmanager
def when_password_saved(action):
    """Run ``action()`` once, in the middle of the request that saves a user's new password."""
    done = []

    def hook(sender, instance, update_fields=None, **kwargs):
        if not done:
            done.append(True)
            action()

    post_save.connect(hook, sender=User, dispatch_uid="attack-hook")
    try:
        yield done
    finally:
        post_save.disconnect(sender=User, dispatch_uid="attack-hook")


def live_session_keys(redis):
    """Return the keys that hold sessions, not ids in a grace period."""
    return [key for key in redis.scan_iter("sd:s:*") if redis.get(key)[:1] == codec.SESSION]


def sessions_of_browser(redis, client):
    """Return the keys of the live sessions that ``client``'s browser logged in."""
    agent = client.defaults["HTTP_USER_AGENT"]
    return [
        key
        for key in live_session_keys(redis)
        if codec.decode(_name_of(key), redis.get(key)).user_agent == agent
    ]


def _name_of(key):
    tag_and_digest = key.decode().removeprefix("sd:s:")
    return tag_and_digest[1:5] + tag_and_digest[6:]


# Ways to end a user's session from elsewhere, while one of its requests is in
# flight. Each gets ready (another device logs in, say) and returns the act.


def end_by_logout(user, client, password):
    tab = same_browser(client)
    return lambda: tab.post("/accounts/logout/", secure=True)


def end_by_sign_out_from_another_device(user, client, password):
    other = browser()
    log_in(other, user, password)
    handle = handle_of(client.cookies[COOKIE].value)
    return lambda: other.post(f"/accounts/sessions/{handle}/end/", {"password": password}, secure=True)


def end_by_sign_out_all_others(user, client, password):
    other = browser()
    log_in(other, user, password)
    return lambda: other.post("/accounts/sessions/others/end/", {"password": password}, secure=True)


def end_by_endsessions(user, client, password):
    return lambda: call_command("endsessions", "--user", user.username, stdout=None)


def end_by_the_admin(user, client, password):
    admin = admin_browser(password)
    return lambda: admin.post(f"/admin/accounts/user/{user.pk}/end-sessions/", secure=True)


ENDERS = [
    end_by_logout,
    end_by_sign_out_from_another_device,
    end_by_sign_out_all_others,
    end_by_endsessions,
    end_by_the_admin,
]


# -- 5. An ended session never comes back under a new id ----------------------------------


@pytest.mark.parametrize("end", ENDERS)
def test_a_renewal_racing_an_ending_does_not_bring_the_session_back(end, user, password, redis, settings):
    client = browser()
    session_id = log_in(client, user, password)
    make_renewal_due(redis, settings, session_id, after=RENEW_AFTER)

    with when_rendering("profiles/profile_form.html", end(user, client, password)) as done:
        response = client.get("/profile/edit/", secure=True)

    assert done
    # The request loses its session, like any request of a session ended under it.
    assert response.status_code == 400
    assert sessions_of_browser(redis, client) == []
    assert not is_logged_in(client)
    assert not is_logged_in(holding(session_id))


# Other devices are signed out by the password change itself, the moment it is saved.
@pytest.mark.parametrize("end", [end_by_logout, end_by_endsessions, end_by_the_admin])
def test_a_password_change_racing_an_ending_does_not_bring_the_session_back(end, user, password, redis):
    client = browser()
    session_id = log_in(client, user, password)

    with when_password_saved(end(user, client, password)) as done:
        response = change_password(client, password, NEW_PASSWORD)

    assert done
    assert response.status_code == 400
    assert sessions_of_browser(redis, client) == []
    assert not is_logged_in(client)
    assert not is_logged_in(holding(session_id))


@pytest.mark.parametrize("end", ENDERS)
def test_a_re_authentication_racing_an_ending_does_not_bring_the_session_back(end, user, password, redis, settings):
    settings.ACCOUNTS_REAUTHENTICATE_AFTER = 0
    here, there = browser(), browser()
    here_id = log_in(here, user, password)
    there_id = log_in(there, user, password)

    # "here" proves its password, ends "there" and is about to move to a new id.
    with when_logged("ended", end(user, here, password)) as done:
        response = here.post(f"/accounts/sessions/{handle_of(there_id)}/end/", {"password": password}, secure=True)

    assert done
    assert response.status_code == 400
    assert sessions_of_browser(redis, here) == []
    assert not is_logged_in(here)
    assert not is_logged_in(holding(here_id))


# -- 6. Ending a session ends every id of its family ----------------------------------------


def renewed(user, password, redis, settings):
    """Log in, renew the id; return the client (now holding the new id), the old id and the new."""
    client = browser()
    old = log_in(client, user, password)
    make_renewal_due(redis, settings, old, after=RENEW_AFTER)
    response = client.get("/profile/", secure=True)
    new = response.cookies[COOKIE].value
    assert new != old
    assert is_logged_in(holding(old))  # in its grace period
    return client, old, new


@pytest.mark.parametrize("end", [end_by_sign_out_all_others, end_by_endsessions, end_by_the_admin])
def test_ending_a_renewed_session_ends_its_old_id_in_the_grace_period_too(end, user, password, redis, settings):
    client, old, new = renewed(user, password, redis, settings)

    end(user, client, password)()

    assert not is_logged_in(holding(old))
    assert not is_logged_in(holding(new))


def test_a_renewed_session_is_listed_once(user, password, redis, settings):
    client, old, new = renewed(user, password, redis, settings)

    [info] = SessionStore.user_sessions(user.pk)

    assert info.handle == handle_of(new)


def test_a_logout_through_the_old_id_ends_the_new_one(user, password, redis, settings):
    client, old, new = renewed(user, password, redis, settings)

    assert holding(old).post("/accounts/logout/", secure=True).status_code == 302

    assert not is_logged_in(holding(new))
    assert not is_logged_in(client)
    assert live_session_keys(redis) == []


def test_a_request_in_flight_with_the_old_id_is_given_the_new_one(user, password, redis, settings):
    client, old, new = renewed(user, password, redis, settings)

    response = holding(old).get("/profile/", secure=True)

    assert response.status_code == 200
    assert response.cookies[COOKIE].value == new


def test_two_requests_renewing_at_once_leave_one_session(user, password, redis, settings):
    client = browser()
    session_id = log_in(client, user, password)
    make_renewal_due(redis, settings, session_id, after=RENEW_AFTER)
    other_tab = same_browser(client)
    responses = []

    with when_rendering(
        "profiles/profile_form.html", lambda: responses.append(other_tab.get("/profile/edit/", secure=True))
    ):
        responses.append(client.get("/profile/edit/", secure=True))

    inner, outer = responses
    assert inner.status_code == outer.status_code == 200
    # Both tabs end up with the same new id: one session, not two.
    assert inner.cookies[COOKIE].value == outer.cookies[COOKIE].value != session_id
    assert len(live_session_keys(redis)) == 1
    assert len(SessionStore.user_sessions(user.pk)) == 1


def renew_in_another_tab(client, user, password, redis, settings):
    """Renew the session ``client`` holds, from another tab; return the new id."""
    make_renewal_due(redis, settings, client.cookies[COOKIE].value, after=RENEW_AFTER)
    return same_browser(client).get("/profile/", secure=True).cookies[COOKIE].value


def log_in_again_in_another_tab(client, user, password, redis, settings):
    """Log in again (a new id, no grace) from another tab of ``client``'s browser; return the new id."""
    return log_in(same_browser(client), user, password)


MOVERS = [renew_in_another_tab, log_in_again_in_another_tab]


@pytest.mark.parametrize("move", MOVERS)
def test_an_ending_that_read_the_index_before_a_move_ends_the_session_where_it_went(
    move, user, password, redis, settings
):
    client = browser()
    log_in(client, user, password)
    names = protocol.run(index.user_names(user.pk))  # "Sign out everywhere" has read the index...

    new = move(client, user, password, redis, settings)  # ...when another tab moves the session

    protocol.run(index.end_sessions(user.pk, names))
    assert not is_logged_in(holding(new))
    assert live_session_keys(redis) == []


@pytest.mark.parametrize("move", MOVERS)
def test_a_logout_racing_a_move_ends_the_session_where_it_went(move, user, password, redis, settings):
    client = browser()
    session_id = log_in(client, user, password)
    moved_to = []

    def hook(sender, **kwargs):
        if not moved_to:
            moved_to.append(move(client, user, password, redis, settings))

    user_logged_out.connect(hook, dispatch_uid="attack-hook")
    try:
        assert client.post("/accounts/logout/", secure=True).status_code == 302
    finally:
        user_logged_out.disconnect(dispatch_uid="attack-hook")

    [new] = moved_to
    assert new != session_id
    assert not is_logged_in(holding(new))
    assert live_session_keys(redis) == []


# -- 7. No update is lost across a move -------------------------------------------------------


def test_a_write_through_the_old_id_in_its_grace_period_lands_in_the_session(user, password, redis, settings):
    client, old, new = renewed(user, password, redis, settings)

    assert holding(old).get("/test/remember/late/", secure=True).status_code == 200

    assert SessionStore(new).get("remembered") == "late"


def test_a_write_just_before_a_renewal_is_carried_to_the_new_id(user, password, redis, settings):
    client = browser()
    session_id = log_in(client, user, password)
    make_renewal_due(redis, settings, session_id, after=RENEW_AFTER)
    other_tab = same_browser(client)
    # The other tab's write lands while this request (which will renew) is under way.
    settings.SESSION_REDIS_RENEW_AFTER = 0

    def write():
        settings.SESSION_REDIS_RENEW_AFTER = 0
        assert other_tab.get("/test/remember/blue/", secure=True).status_code == 200
        settings.SESSION_REDIS_RENEW_AFTER = RENEW_AFTER

    settings.SESSION_REDIS_RENEW_AFTER = RENEW_AFTER
    with when_rendering("profiles/profile_form.html", write):
        response = client.get("/profile/edit/", secure=True)

    new = response.cookies[COOKIE].value
    assert new != session_id
    assert SessionStore(new).get("remembered") == "blue"


def test_a_write_just_before_a_password_change_is_carried_to_the_new_id(user, password, redis):
    client = browser()
    log_in(client, user, password)
    other_tab = same_browser(client)

    with when_password_saved(lambda: other_tab.get("/test/remember/green/", secure=True)):
        response = change_password(client, password, NEW_PASSWORD)

    assert response.status_code == 302
    assert SessionStore(response.cookies[COOKIE].value).get("remembered") == "green"


# -- 8. The absolute timeout runs from the first login, by Redis's clock --------------------------


def login_time(redis, session_id):
    return stored(redis, session_id).created_ms


def test_a_password_change_keeps_the_login_time_of_the_session(user, password, redis):
    client = browser()
    session_id = log_in(client, user, password)
    logged_in_at = login_time(redis, session_id)

    new = change_password(client, password, NEW_PASSWORD).cookies[COOKIE].value

    assert new != session_id
    assert login_time(redis, new) == logged_in_at


def test_re_authentication_keeps_the_login_time_of_the_session(user, password, redis, settings):
    settings.ACCOUNTS_REAUTHENTICATE_AFTER = 0
    here, there = browser(), browser()
    here_id = log_in(here, user, password)
    there_id = log_in(there, user, password)
    logged_in_at = login_time(redis, here_id)

    response = here.post(f"/accounts/sessions/{handle_of(there_id)}/end/", {"password": password}, secure=True)

    new = response.cookies[COOKIE].value
    assert new != here_id
    assert login_time(redis, new) == logged_in_at


def test_an_app_server_whose_clock_is_behind_cannot_stretch_the_absolute_timeout(user, password, redis, monkeypatch):
    client = browser()
    session_id = log_in(client, user, password)
    # The session began ABS + 1 s ago, by Redis's clock; its idle TTL is fresh.
    over = redis_ms(redis) - (settings.SESSION_REDIS_ABSOLUTE_AGE + 1) * 1000
    set_times(redis, session_id, created=over)
    # This app server's clock runs an hour late.
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 3600)

    assert not is_logged_in(client)
    assert redis.exists(redis_key(session_id)) == 0


def test_a_login_is_timed_by_redis_not_by_the_app_servers_clock(user, password, redis, monkeypatch):
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
    before = redis_ms(redis)

    session_id = log_in(browser(), user, password)

    # Redis's clock, as the engine last read it: to within that reading's round trip.
    assert before - 2 <= int(login_time(redis, session_id)) <= redis_ms(redis) + 2


# -- 11. An index entry that arrives before its session is never pruned -----------------------------


def test_an_entry_filed_before_its_session_exists_survives_readers_and_pruning(user, password, redis):
    """On Redis Cluster a login's index entry and its session travel to two nodes separately."""
    in_flight = issued_session_id()
    name = session_name(in_flight)
    file_in_index(redis, user.pk, {name: redis_ms(redis)})

    # Readers and cron run between the two writes.
    assert SessionStore.user_sessions(user.pk) == []
    SessionStore.clear_expired()
    assert SessionStore.end_user_sessions(user.pk, keep=[in_flight]) == 0

    # The session arrives.
    session = SessionStore(in_flight)
    session._session_cache = {"_auth_user_id": str(user.pk)}
    session.save(must_create=True)

    assert name in index_entries(redis, user.pk)
    assert [info.name for info in SessionStore.user_sessions(user.pk)] == [name]
    assert SessionStore.end_user_sessions(user.pk) == 1
    assert redis.exists(redis_key(in_flight)) == 0


# -- 12. Changing the absolute timeout never hides a live session ----------------------------------


@pytest.mark.parametrize("before, after", [(3600, 12 * 3600), (12 * 3600, 3600)])
def test_changing_the_absolute_timeout_never_hides_a_live_session(before, after, user, password, redis, settings):
    settings.SESSION_REDIS_ABSOLUTE_AGE = before
    client = browser()
    session_id = log_in(client, user, password)
    settings.SESSION_REDIS_ABSOLUTE_AGE = after
    # Two hours pass: move the session's times and its index entry back.
    shift = 2 * 3600 * 1000
    session = stored(redis, session_id)
    set_times(
        redis,
        session_id,
        created=session.created_ms - shift,
        deadline=session.deadline_ms - shift,
        issued=session.issued_ms - shift,
    )
    name = session_name(session_id)
    file_in_index(redis, user.pk, {name: index_entries(redis, user.pk)[name] - shift})

    SessionStore.clear_expired()
    live = is_logged_in(client)
    listed = [info.handle for info in SessionStore.user_sessions(user.pk)]

    # It ends with the shorter of the two limits; until then it is listed and can be ended.
    assert live is (2 * 3600 < min(before, after))
    assert listed == ([handle_of(session_id)] if live else [])


# -- 17. A stale cookie is not a guess -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["idle timeout", "endsessions", "password change"])
def test_sixty_people_behind_one_nat_returning_with_ended_sessions_are_not_taken_for_guessers(
    how, password, redis, settings, caplog
):
    settings.SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE = 10
    users = [UserFactory(password=password) for _ in range(20)]
    ids = [log_in(browser(ip="192.0.2.1"), u, password) for u in users]
    if how == "idle timeout":
        for session_id in ids:
            redis.delete(redis_key(session_id))
    elif how == "endsessions":
        call_command("endsessions", "--all", stdout=None)
    else:
        for u, session_id in zip(users, ids):
            change_password(holding(session_id), password, NEW_PASSWORD)
            u.refresh_from_db()
        call_command("endsessions", "--all", stdout=None)

    with caplog.at_level(logging.WARNING, logger="django.security"):
        responses = [holding(i).get("/profile/", secure=True, REMOTE_ADDR="192.0.2.1") for i in ids * 3]

    assert {r.status_code for r in responses} == {302}
    # The stale cookie is deleted, not answered with 429.
    assert all(r.cookies[COOKIE]["max-age"] == 0 for r in responses)
    assert not [r for r in caplog.records if "nknown session ids" in r.getMessage()]


def test_ids_the_server_never_issued_are_still_counted_and_refused(redis, settings, round_trips):
    settings.SESSION_REDIS_UNKNOWN_IDS_PER_MINUTE = 10
    # Ids of the right shape whose check characters are wrong: an issued id with its last one changed.
    issued = [issued_session_id() for _ in range(15)]
    guesses = [i[:-1] + ("a" if i[-1] != "a" else "b") for i in issued]

    with round_trips() as log:
        statuses = [holding(g).get("/profile/", secure=True, REMOTE_ADDR="203.0.113.9").status_code for g in guesses]

    assert statuses.count(429) >= 5
    # A guess is told from an issued id without a lookup: only the counter is touched.
    assert set(log.commands) == {"EVALSHA"}
    assert len(log) == len(guesses)


# -- 22. A hash copied or edited in Redis is refused ---------------------------------------------------


def test_a_redis_writer_who_copies_an_admins_session_onto_their_own_is_not_admin(password, redis):
    admin = User.objects.create_superuser("root", "root@example.com", password)
    mallory = UserFactory(password=password)
    admin_id = log_in(browser(), admin, password)
    mallory_client = browser()
    log_in(mallory_client, mallory, password)
    # Mallory finds her own session's key through her index, and the admin's through theirs.
    [mine] = list(index_entries(redis, mallory.pk))
    [theirs] = list(index_entries(redis, admin.pk))
    my_key = "sd:s:{" + mine[:4] + "}" + mine[4:]
    their_key = "sd:s:{" + theirs[:4] + "}" + theirs[4:]
    assert their_key == redis_key(admin_id)
    redis.copy(their_key, my_key, replace=True)

    response = mallory_client.get("/admin/", secure=True)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not is_logged_in(mallory_client)
    assert is_logged_in(holding(admin_id))


def test_a_redis_writer_who_edits_a_value_of_their_session_loses_the_session(user, password, redis, settings):
    settings.ACCOUNTS_REAUTHENTICATE_AFTER = 600
    client = browser()
    session_id = log_in(client, user, password)
    # The value the site trusts to skip asking for the password again, set by hand.
    raw = redis.get(redis_key(session_id))
    edited = raw.replace(b'"_accounts_authenticated_at":', b'"_accounts_authenticated_at":9')
    if edited == raw:  # compressed: append a key instead, as a hand would
        edited = raw + b"!"
    redis.set(redis_key(session_id), edited, keepttl=True)

    assert not is_logged_in(client)


def test_values_the_site_writes_are_accepted(user, password, redis):
    client = browser()
    session_id = log_in(client, user, password)
    write_session_value(redis, session_id, "note", "written as the site would")

    assert is_logged_in(client)
    assert SessionStore(session_id).get("note") == "written as the site would"


def test_an_entry_planted_in_someone_elses_index_neither_lists_nor_ends_the_session(user, password, redis):
    # The index is bookkeeping: an entry in another user's index is not their session.
    client = browser()
    session_id = log_in(client, user, password)
    admin = User.objects.create_superuser("root", "root@example.com", password)
    file_in_index(redis, admin.pk, {session_name(session_id): redis_ms(redis) - index.NEW_ENTRY_MARGIN_MS - 1})

    assert SessionStore.user_sessions(admin.pk) == []
    assert SessionStore.end_user_sessions(admin.pk) == 0
    assert is_logged_in(client)
