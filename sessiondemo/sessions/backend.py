"""
The Redis session engine: ``SESSION_ENGINE = "sessiondemo.sessions.backend"``.

Each session is one Redis hash under ``<prefix>s:<digest>``, where the digest
is a keyed hash of the session id. Every top-level session key is one field
(``d:<key>``) holding its value in SESSION_SERIALIZER's JSON, beside metadata
fields (``m:created``, ``m:seen``, ``m:idle``, ``m:uid``, ``m:ip``, ``m:ua``).

A load is one script that also slides the idle TTL, refreshes "last active"
and enforces the absolute age. A save writes only the fields that differ from
what was loaded, so concurrent requests that change different keys of one
session do not overwrite each other, and it checks and writes in one script,
so a session deleted meanwhile is never resurrected.
"""

import json
import logging
import string
import time

from asgiref.sync import sync_to_async
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.signing import JSONSerializer
from django.utils.crypto import get_random_string

from . import conf, events, index, scripts
from .connection import get_client, store_errors
from .exceptions import SessionTooLarge
from .keys import (
    AGENT_FIELD,
    CREATED_FIELD,
    DATA_PREFIX,
    IDLE_FIELD,
    IP_FIELD,
    ISSUED_FIELD,
    PREVIOUS_FIELD,
    RETIRED_FIELD,
    SEEN_FIELD,
    USER_FIELD,
    is_valid_session_id,
    session_digest,
    session_handle,
    session_redis_key,
)
from .users import UserSessionsMixin

VALID_KEY_CHARS = string.ascii_lowercase + string.digits

security_logger = logging.getLogger("django.security.SuspiciousSession")


class SessionStore(UserSessionsMixin, SessionBase):
    """Keep each session in one Redis hash; see the module docstring."""

    def __init__(self, session_key=None):
        super().__init__(session_key)
        # The serialized value of each key as last read from or written to
        # Redis; None when unknown, which makes the next save a full rewrite.
        self._stored = None
        self._stored_user_id = None
        self._created = None
        self._issued = None
        self._client_fields = {}
        self._client = {}
        self._is_retired = False
        self._previous_digest = None
        self._pending_create = False
        # (key, owner, grace) of the id that cycle_key() or renew() left;
        # it ends with the next save, in the same round trip.
        self._retired = None
        # Called when a well-formed id turns out to be unknown; may raise.
        self.on_unknown_id = None
        # Redis calls that ride along with the next write (run_with_next_write()).
        self._pending_calls = []

    def _validate_session_key(self, key):
        # Stricter than Django's "8 characters or more": anything but the
        # format this engine issues is an anonymous visitor, at no Redis cost.
        return is_valid_session_id(key)

    def clear(self):
        super().clear()
        # Make the next save a replace, so no key written meanwhile survives.
        self._stored = None

    def _get_new_session_key(self):
        # No exists() check (a round trip): a save with must_create=True
        # refuses a taken key atomically, and create() then draws again.
        return get_random_string(32, VALID_KEY_CHARS)

    async def _aget_new_session_key(self):
        return self._get_new_session_key()

    @property
    def user_agent(self):
        """Return the User-Agent recorded when this session logged in, if any."""
        return self._client.get(AGENT_FIELD)

    @property
    def handle(self):
        """Return an opaque id of this session that is safe to show and log."""
        if self.session_key is None:
            return None
        return session_handle(session_digest(self.session_key))

    def record_client(self, *, ip, user_agent):
        """Store who is using this session (IP address, User-Agent) with its next save."""
        self._client_fields = {IP_FIELD: ip, AGENT_FIELD: user_agent}
        self._client = dict(self._client_fields)
        self.modified = True

    def run_with_next_write(self, calls):
        """
        Send ``calls`` (scripts.Eval or scripts.Command) with this session's next write.

        They go in the same round trip as the save or delete, after it; their
        results are not returned. run_pending_calls() sends them on their own
        if the request ends without a write.
        """
        self._pending_calls.extend(calls)

    def run_pending_calls(self):
        """Send the calls still waiting for a write, in one round trip."""
        calls, self._pending_calls = self._pending_calls, []
        if calls:
            with store_errors():
                scripts.execute(get_client(), calls)

    def load(self):
        if self.session_key is None:
            return {}
        digest = session_digest(self.session_key)
        args = [f"{time.time():.3f}", conf.seen_interval(), self._absolute_age()]
        with store_errors():
            reply = scripts.execute(
                get_client(), [scripts.Eval(scripts.LOAD, [session_redis_key(digest)], args)]
            )[0]
        fields = dict(zip(reply[::2], reply[1::2]))
        if b"m:ended" in fields:
            self._end_expired(digest, fields[USER_FIELD.encode()].decode())
            fields = {}
        session = self._decode(fields) if fields else None
        if session is None:
            # Strict mode: an id the store does not hold is never adopted.
            self._session_key = None
            self._stored = None
            self._stored_user_id = None
            self._created = None
            if not fields and self.on_unknown_id is not None:
                self.on_unknown_id()
            return {}
        return session

    def _end_expired(self, digest, user_id):
        """Finish ending a session that its absolute age ended during a load."""
        if user_id:
            with store_errors():
                scripts.execute(get_client(), [index.remove_call(user_id, [digest])])
        events.log_event(
            events.ENDED,
            reason=events.ENDED_EXPIRED,
            user_id=user_id or None,
            session=session_handle(digest),
        )

    def _decode(self, fields):
        """Return the session dict held in a hash's ``fields``, or None if corrupt."""
        data_prefix = DATA_PREFIX.encode()
        stored = {
            field[len(data_prefix) :].decode(): raw
            for field, raw in fields.items()
            if field.startswith(data_prefix)
        }
        try:
            session = dict(zip(stored, self._loads_all(list(stored.values()))))
            created = float(fields.get(CREATED_FIELD.encode(), 0))
            issued = float(fields.get(ISSUED_FIELD.encode(), 0))
        except (ValueError, UnicodeDecodeError):
            security_logger.warning("Session data corrupted")
            return None
        user_id = fields.get(USER_FIELD.encode())
        # Who uses the session travels with it to a new id (cycle_key, renew).
        self._client = {
            name: fields[name.encode()].decode(errors="replace")
            for name in (IP_FIELD, AGENT_FIELD)
            if name.encode() in fields
        }
        self._stored = stored
        self._stored_user_id = user_id.decode() if user_id else None
        self._is_retired = RETIRED_FIELD.encode() in fields
        previous = fields.get(PREVIOUS_FIELD.encode())
        self._previous_digest = previous.decode() if previous else None
        self._created = created or None
        self._issued = issued or self._created
        return session

    def _loads_all(self, values):
        """Return ``values`` deserialized, in one parse when they are Django's JSON."""
        if self.serializer is JSONSerializer:
            # Each value is a JSON document: together, the items of one array.
            decoded = json.loads(b"[" + b",".join(values) + b"]")
            if len(decoded) != len(values):
                raise ValueError("A session field holds more than one JSON value.")
            return decoded
        serializer = self.serializer()
        return [serializer.loads(value) for value in values]

    def exists(self, session_key):
        if not is_valid_session_id(session_key):
            return False
        if self._retired is not None and session_key == self._retired[0]:
            return False
        with store_errors():
            return bool(get_client().exists(session_redis_key(session_digest(session_key))))

    def create(self):
        self._pending_create = False
        for _ in range(10):
            self._session_key = self._get_new_session_key()
            try:
                self._write("create")
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError(
            "Unable to create a new session key. It is likely that the session "
            "store is misbehaving."
        )

    def save(self, must_create=False):
        if not (must_create or self._pending_create):
            # Load first, so that a key the store no longer holds is replaced.
            self._get_session()
        if self.session_key is None:
            return self.create()
        if self._pending_create:
            try:
                return self._write("create")
            except CreateError:
                return self.create()
        if must_create:
            return self._write("create")
        self._write("replace" if self._stored is None else "update")

    def _write(self, mode):
        """Write the session in ``mode`` (create, update or replace) in one round trip."""
        session = self._get_session(no_load=mode == "create")
        dumps = self.serializer().dumps
        encoded = {key: dumps(value) for key, value in session.items()}
        size = sum(len(key.encode()) + len(value) for key, value in encoded.items())
        if size > conf.max_bytes():
            raise SessionTooLarge(
                f"The session would hold {size} bytes, more than SESSION_REDIS_MAX_BYTES "
                f"({conf.max_bytes()}); nothing was saved."
            )
        if mode == "update":
            changed = {k: v for k, v in encoded.items() if self._stored.get(k) != v}
            removed = [DATA_PREFIX + k for k in self._stored if k not in encoded]
        else:
            changed, removed = encoded, []

        retired, self._retired = self._retired, None
        now = time.time()
        created = self._created or now
        expiry_age = max(self.get_expiry_age(), 0)
        # An expiry in seconds slides with every request; a date does not.
        sliding = not isinstance(session.get("_session_expiry"), str)
        absolute_end = created + self._absolute_age()
        ttl_ms = int(max(min(now + expiry_age, absolute_end) - now, 0) * 1000)
        fields = {DATA_PREFIX + key: value for key, value in changed.items()}
        fields[SEEN_FIELD] = f"{now:.3f}"
        fields[IDLE_FIELD] = str(expiry_age * 1000 if sliding else 0)
        fields.update(self._client if mode == "create" else self._client_fields)
        if mode == "create":
            fields[CREATED_FIELD] = f"{created:.3f}"
            if created != now:
                fields[ISSUED_FIELD] = f"{now:.3f}"
            if retired is not None and retired[2]:
                # Renewed: the old id lives out its grace; a logout ends it too.
                fields[PREVIOUS_FIELD] = session_digest(retired[0])
        user_id = session.get(SESSION_KEY)
        user_id = str(user_id) if user_id is not None else None
        if user_id is not None:
            fields[USER_FIELD] = user_id
        else:
            removed.append(USER_FIELD)

        digest = session_digest(self.session_key)
        field_args = [item for pair in fields.items() for item in pair]
        calls = [
            scripts.Eval(
                scripts.SAVE,
                [session_redis_key(digest)],
                [mode, ttl_ms, len(fields), *field_args, *removed],
            )
        ]
        # The index score (login + absolute age, or the fixed expiry) only
        # changes with the owner or the expiry, so most saves leave it alone.
        index_current = (
            mode == "update"
            and user_id == self._stored_user_id
            and "_session_expiry" not in changed
            and DATA_PREFIX + "_session_expiry" not in removed
        )
        indexed = user_id is not None and ttl_ms > 0 and not index_current
        if indexed:
            score_ms = int((absolute_end if sliding else now + ttl_ms / 1000) * 1000)
            limit = conf.max_sessions_per_user()
            calls.append(
                index.add_call(
                    user_id, digest, score_ms=score_ms, now_ms=int(now * 1000), limit=limit
                )
            )
        calls += self._retire_calls(retired)
        pending, self._pending_calls = self._pending_calls, []
        calls += pending

        with store_errors():
            client = get_client()
            results = scripts.execute(client, calls)
            outcome = results[0][0]
            previous_owner = results[0][1].decode() if outcome == 1 and results[0][1] else None
            follow_up = []
            if outcome != 1 and indexed:
                # Nothing was written, so take back the index entry queued with it.
                follow_up.append(index.remove_call(user_id, [digest]))
            if outcome == 1:
                stale_owners = {previous_owner, self._stored_user_id} - {None, user_id}
                follow_up += [index.remove_call(owner, [digest]) for owner in stale_owners]
            follow_up += self._unindex_calls(retired, results[2 if indexed else 1 :])
            if follow_up:
                scripts.execute(client, follow_up)
            if indexed and outcome == 1 and results[1]:
                self._end_evicted(client, user_id, digest, limit)
        if outcome == 0:
            raise CreateError
        if outcome == -1:
            raise UpdateError
        if mode == "create" and user_id is not None and (retired is None or retired[1] is None):
            events.log_event(events.CREATED, user_id=user_id, session=session_handle(digest))
        self._stored = encoded
        self._stored_user_id = user_id
        self._created = created
        self._issued = now if mode == "create" else self._issued
        self._client_fields = {}
        self._pending_create = False

    @staticmethod
    def _retire_calls(retired, script=scripts.DELETE_MOVED):
        """Return the calls that end a retired id: at once, or after its grace period."""
        if retired is None:
            return []
        key, owner, grace = retired
        digest = session_digest(key)
        redis_key = session_redis_key(digest)
        if grace:
            calls = [scripts.Eval(scripts.RETIRE, [redis_key], [grace * 1000])]
        else:
            calls = [scripts.Eval(script, [redis_key], [])]
        if owner is not None:
            calls.append(index.remove_call(owner, [digest]))
        return calls

    @staticmethod
    def _unindex_calls(retired, results):
        """Return the index removal a retired id still needs when its owner was not known."""
        if retired is None or not results or not results[0]:
            return []
        key, owner, _ = retired
        found_owner = results[0].decode()
        if found_owner == owner:
            return []
        return [index.remove_call(found_owner, [session_digest(key)])]

    @staticmethod
    def _end_evicted(client, user_id, digest, limit):
        """End the oldest live sessions of a user that a login pushed past ``limit``."""
        for evicted in index.evict_oldest(client, user_id, limit=limit, keep=digest):
            events.log_event(
                events.ENDED,
                reason=events.ENDED_BY_SESSION_CAP,
                user_id=user_id,
                session=session_handle(evicted),
            )

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        if not is_valid_session_id(session_key):
            return
        known_user_id = self._stored_user_id if session_key == self.session_key else None
        retired, self._retired = self._retired, None
        digest = session_digest(session_key)
        calls = [scripts.Eval(scripts.DELETE, [session_redis_key(digest)], [])]
        if known_user_id is not None:
            calls.append(index.remove_call(known_user_id, [digest]))
        calls += self._retire_calls(retired and (retired[0], retired[1], 0), scripts.DELETE)
        if session_key == self.session_key and self._previous_digest:
            # A renewed session's old id, still in its grace, ends with it.
            calls.append(scripts.Command(("DEL", session_redis_key(self._previous_digest))))
        pending, self._pending_calls = self._pending_calls, []
        calls += pending
        with store_errors():
            client = get_client()
            results = scripts.execute(client, calls)
            owner = results[0].decode() if results[0] else None
            follow_up = []
            if owner is not None and owner != known_user_id:
                follow_up.append(index.remove_call(owner, [digest]))
            follow_up += self._unindex_calls(retired, results[2 if known_user_id else 1 :])
            if follow_up:
                scripts.execute(client, follow_up)
        if session_key == self.session_key:
            self._stored = None
            self._stored_user_id = None

    def cycle_key(self):
        """
        Move the session to a new id, keeping its data.

        The new id is created, and the old one deleted, by the next save, in
        one round trip; meanwhile exists() already denies the old id. That
        keeps a login within three Redis round trips.
        """
        self._move_to_new_key(grace=0)

    async def acycle_key(self):
        return await sync_to_async(self.cycle_key)()

    def cycle_key_unless_new(self):
        """Give the session a new id unless it already got one in this request."""
        if self.session_key is not None and not self._pending_create:
            self.cycle_key()

    def renewal_due(self):
        """Return True if this loaded session's id is older than SESSION_REDIS_RENEW_AFTER."""
        after = conf.renew_after()
        issued = self._issued
        if not after or issued is None or self._pending_create or self.session_key is None:
            return False
        # A retired id only lives out its grace; renewing it again would extend it.
        return not self._is_retired and time.time() - issued >= after

    def renew(self):
        """Move the session to a new id; the old one keeps working for a short grace period."""
        self._move_to_new_key(grace=conf.renewal_grace(), keep_created=True)

    def _move_to_new_key(self, *, grace, keep_created=False):
        data = self._session
        old_key, old_user_id = self.session_key, self._stored_user_id
        if self._retired is not None:
            # Moved twice before a save: the first old id ends now.
            self.delete(self._retired[0])
        self._session_key = self._get_new_session_key()
        self._session_cache = data
        self._stored = None
        self._stored_user_id = None
        if not keep_created:
            self._created = None
        self._issued = None
        self._pending_create = True
        self.modified = True
        if old_key:
            self._retired = (old_key, old_user_id, grace)
            if old_user_id is not None:
                events.log_event(
                    events.ROTATED,
                    reason="renewal" if grace else None,
                    user_id=old_user_id,
                    session=session_handle(session_digest(old_key)),
                    new_session=self.handle,
                )

    @staticmethod
    def _absolute_age():
        # Lua reads the limit as a number; "no limit" is a very large one.
        return conf.absolute_age() or 10**10
