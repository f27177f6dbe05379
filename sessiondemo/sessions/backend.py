"""
The Redis session engine: ``SESSION_ENGINE = "sessiondemo.sessions.backend"``.

Each session is one Redis hash under ``<prefix>s:<digest>``, where the digest
is a keyed hash of the session id. Every top-level session key is one field
(``d:<key>``) holding its value in SESSION_SERIALIZER's JSON, beside metadata
fields (``m:created``, ``m:seen``, ``m:uid``). A save writes only the fields
that differ from what was loaded, so concurrent requests that change different
keys of one session do not overwrite each other, and it checks and writes in
one Lua script, so a session deleted meanwhile is never resurrected.
"""

import logging
import string
import time

from asgiref.sync import sync_to_async
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.utils.crypto import get_random_string

from . import index, scripts
from .connection import get_client, store_errors
from .keys import is_valid_session_id, session_digest, session_handle, session_redis_key

DATA_PREFIX = "d:"
CREATED_FIELD = "m:created"
SEEN_FIELD = "m:seen"
USER_FIELD = "m:uid"
VALID_KEY_CHARS = string.ascii_lowercase + string.digits

security_logger = logging.getLogger("django.security.SuspiciousSession")


class SessionStore(SessionBase):
    """Keep each session in one Redis hash; see the module docstring."""

    def __init__(self, session_key=None):
        super().__init__(session_key)
        # The serialized value of each key as last read from or written to
        # Redis; None when unknown, which makes the next save a full rewrite.
        self._stored = None
        self._stored_user_id = None
        self._pending_create = False

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
    def handle(self):
        """Return an opaque id of this session that is safe to show and log."""
        if self.session_key is None:
            return None
        return session_handle(session_digest(self.session_key))

    def load(self):
        if self.session_key is None:
            return {}
        digest = session_digest(self.session_key)
        with store_errors():
            fields = get_client().hgetall(session_redis_key(digest))
        session = self._decode(fields) if fields else None
        if session is None:
            # Strict mode: an id the store does not hold is never adopted.
            self._session_key = None
            self._stored = None
            self._stored_user_id = None
            return {}
        return session

    def _decode(self, fields):
        """Return the session dict held in a hash's ``fields``, or None if corrupt."""
        serializer = self.serializer()
        session, stored = {}, {}
        try:
            for field, raw in fields.items():
                name = field.decode()
                if name.startswith(DATA_PREFIX):
                    key = name[len(DATA_PREFIX) :]
                    session[key] = serializer.loads(raw)
                    stored[key] = raw
        except (ValueError, UnicodeDecodeError):
            security_logger.warning("Session data corrupted")
            return None
        user_id = fields.get(USER_FIELD.encode())
        self._stored = stored
        self._stored_user_id = user_id.decode() if user_id else None
        return session

    def exists(self, session_key):
        if not is_valid_session_id(session_key):
            return False
        with store_errors():
            return bool(get_client().exists(session_redis_key(session_digest(session_key))))

    def create(self):
        for _ in range(10):
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError(
            "Unable to create a new session key. It is likely that the session "
            "store is misbehaving."
        )

    def save(self, must_create=False):
        if not must_create:
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
            mode = "create"
        elif self._stored is None:
            mode = "replace"
        else:
            mode = "update"
        self._write(mode)

    def _write(self, mode):
        """Write the session in ``mode`` (create, update or replace) in one round trip."""
        session = self._get_session(no_load=mode == "create")
        dumps = self.serializer().dumps
        encoded = {key: dumps(value) for key, value in session.items()}
        if mode == "update":
            changed = {k: v for k, v in encoded.items() if self._stored.get(k) != v}
            removed = [DATA_PREFIX + k for k in self._stored if k not in encoded]
        else:
            changed, removed = encoded, []

        now = time.time()
        fields = {DATA_PREFIX + key: value for key, value in changed.items()}
        fields[SEEN_FIELD] = f"{now:.3f}"
        if mode == "create":
            fields[CREATED_FIELD] = f"{now:.3f}"
        user_id = session.get(SESSION_KEY)
        user_id = str(user_id) if user_id is not None else None
        if user_id != self._stored_user_id or mode != "update":
            if user_id is None:
                removed.append(USER_FIELD)
            else:
                fields[USER_FIELD] = user_id

        ttl_ms = max(self.get_expiry_age(), 0) * 1000
        digest = session_digest(self.session_key)
        field_args = [item for pair in fields.items() for item in pair]
        key = session_redis_key(digest)
        # A replace may drop an owner this instance never read (a clear()
        # before any load), so it asks Redis for it in the same round trip.
        owner_query = [scripts.Command(("HGET", key, USER_FIELD))] if mode == "replace" else []
        calls = [
            *owner_query,
            scripts.Eval(scripts.SAVE, [key], [mode, ttl_ms, len(fields), *field_args, *removed]),
        ]
        indexed = user_id is not None and ttl_ms > 0
        if indexed:
            now_ms = int(now * 1000)
            calls.append(index.add_call(user_id, digest, expires_ms=now_ms + ttl_ms, now_ms=now_ms))
        if self._stored_user_id is not None and self._stored_user_id != user_id:
            calls.append(index.remove_call(self._stored_user_id, [digest]))

        with store_errors():
            client = get_client()
            results = scripts.execute(client, calls)
            outcome = results[len(owner_query)]
            previous_owner = results[0].decode() if owner_query and results[0] else None
            if outcome != 1 and indexed:
                # Nothing was written, so take back the index entry queued with it.
                scripts.execute(client, [index.remove_call(user_id, [digest])])
            if outcome == 1 and previous_owner not in (None, user_id, self._stored_user_id):
                scripts.execute(client, [index.remove_call(previous_owner, [digest])])
        if outcome == 0:
            raise CreateError
        if outcome == -1:
            raise UpdateError
        self._stored = encoded
        self._stored_user_id = user_id
        self._pending_create = False

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        if not is_valid_session_id(session_key):
            return
        known_user_id = self._stored_user_id if session_key == self.session_key else None
        self._delete(session_key, known_user_id)
        if session_key == self.session_key:
            self._stored = None
            self._stored_user_id = None

    def _delete(self, session_key, known_user_id):
        """Delete a session and its index entry, in one round trip when the owner is known."""
        digest = session_digest(session_key)
        calls = [scripts.Eval(scripts.DELETE, [session_redis_key(digest)], [])]
        if known_user_id is not None:
            calls.append(index.remove_call(known_user_id, [digest]))
        with store_errors():
            client = get_client()
            owner = scripts.execute(client, calls)[0]
            owner = owner.decode() if owner else None
            if owner is not None and owner != known_user_id:
                scripts.execute(client, [index.remove_call(owner, [digest])])

    def cycle_key(self):
        """
        Move the session to a new key, keeping its data.

        The old key is deleted at once; the new one is created by the next
        save, which the caller (login, password change) always makes. That
        keeps a login within three Redis round trips.
        """
        data = self._session
        old_key = self.session_key
        old_user_id = self._stored_user_id
        self._session_key = self._get_new_session_key()
        self._session_cache = data
        self._stored = None
        self._stored_user_id = None
        self._pending_create = True
        self.modified = True
        if old_key:
            self._delete(old_key, old_user_id)

    async def acycle_key(self):
        return await sync_to_async(self.cycle_key)()

    @classmethod
    def end_user_sessions(cls, user_id, *, keep=None):
        """End every session of ``user_id`` except the one keyed ``keep``; return how many."""
        keep_digest = session_digest(keep) if keep else None
        with store_errors():
            return index.end_sessions(get_client(), user_id, keep_digest=keep_digest)

    @classmethod
    def clear_expired(cls):
        """Prune per-user index entries of sessions that have expired; Redis expires the rest."""
        with store_errors():
            return index.prune_all(get_client())
