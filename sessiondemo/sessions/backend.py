"""
The Redis session engine: ``SESSION_ENGINE = "sessiondemo.sessions.backend"``.

Each session is one Redis hash under ``<prefix>s:{<tag>}<digest>``, named by a
keyed hash of the session id (keys.session_name()). Every top-level session
key is one field (``d:<key>``) holding its value in SESSION_SERIALIZER's JSON,
prefixed with a tag that binds it to the session's name, beside metadata
fields (``m:created``, ``m:deadline``, ``m:seen``, ``m:idle``, ``m:uid``, ...).

A load is one script that also slides the idle TTL, refreshes "last active"
and enforces the absolute timeout, by Redis's clock. A save writes only the
fields that differ from what was loaded, so concurrent requests that change
different keys of one session do not overwrite each other, and it checks and
writes in one script, so a session deleted meanwhile is never resurrected.
Moving a session to a new id (cycle_key(), renewal) is one script on both
keys, which share a Redis Cluster slot: it happens only if the old id is still
live and unchanged since it was loaded, so an ended session stays ended and
no write is lost across the move.
"""

import hmac
import json
import logging

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.signing import JSONSerializer

from . import conf, events, index, scripts
from .connection import get_client, is_cluster, store_errors
from .exceptions import SessionTooLarge
from .keys import (
    AGENT_FIELD,
    DATA_PREFIX,
    FIELD_MAC_BYTES,
    IDLE_FIELD,
    IP_FIELD,
    ISSUED_FIELD,
    MOVED_FIELD,
    NEXT_FIELD,
    PREVIOUS_FIELD,
    USER_FIELD,
    VALID_KEY_CHARS,  # noqa: F401 (the alphabet of ids, for callers)
    VERSION_FIELD,
    field_mac,
    is_valid_session_id,
    is_well_formed,
    moved_record_key,
    new_session_id,
    open_successor,
    session_handle,
    session_name,
    session_redis_key,
)
from .moves import SessionMovesMixin
from .users import UserSessionsMixin

security_logger = logging.getLogger("django.security.SuspiciousSession")

# A request that reaches a session through ids replaced meanwhile follows at most this many.
MAX_HOPS = 2


class SessionStore(UserSessionsMixin, SessionMovesMixin, SessionBase):
    """Keep each session in one Redis hash; see the module docstring."""

    def __init__(self, session_key=None):
        super().__init__(session_key)
        # The serialized value of each key as last read from or written to
        # Redis; None when unknown, which makes the next save a full rewrite.
        self._stored = None
        self._stored_user_id = None
        # The write count (m:ver) the data in _stored goes with; None when unknown.
        self._version = None
        self._issued_ms = None
        self._now_ms = None
        self._previous_name = None
        self._client_fields = {}
        self._client = {}
        self._move = None
        # True once this request gave the session a new id (create or move).
        self._key_changed = False
        # Called when a well-formed id turns out to be one this server never issued; may raise.
        self.on_unknown_id = None
        # Redis calls that ride along with the next write (run_with_next_write()).
        self._pending_calls = []

    def clear(self):
        super().clear()
        # Make the next save a replace, so no key written meanwhile survives.
        self._stored = None

    def _get_new_session_key(self):
        # No exists() check (a round trip): a save that creates refuses a
        # taken key atomically, and create() then draws again.
        return new_session_id()

    async def _aget_new_session_key(self):
        return self._get_new_session_key()

    @property
    def user_agent(self):
        """Return the User-Agent recorded when this session logged in, if any."""
        return self._client.get(AGENT_FIELD)

    @property
    def handle(self):
        """Return an opaque id of this session that is safe to show and log."""
        if not is_valid_session_id(self.session_key):
            return None
        return session_handle(session_name(self.session_key))

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
        calls = self._take_pending_calls()
        if calls:
            with store_errors():
                scripts.execute(get_client(), calls)

    def _take_pending_calls(self):
        calls, self._pending_calls = self._pending_calls, []
        return calls

    # -- Reading ------------------------------------------------------------------

    def load(self):
        key = self.session_key
        if key is None:
            return {}
        if not is_valid_session_id(key):
            # Not an id this server issued: an anonymous visitor, at no Redis cost.
            self._forget_key()
            if is_well_formed(key) and self.on_unknown_id is not None:
                self.on_unknown_id()
            return {}
        for _ in range(MAX_HOPS + 1):
            fields = self._fetch(key)
            if MOVED_FIELD.encode() not in fields:
                break
            # The session moved to a new id a moment ago. After a renewal, a
            # request in flight with the old id follows it; after a privilege
            # change (no m:next) the old id is over.
            sealed = fields.get(NEXT_FIELD.encode())
            key = open_successor(key, sealed) if sealed else None
            if key is None:
                break
            self._session_key = key
            # So that the response gives the browser the new id.
            self.modified = True
        else:
            fields = {}
        session = self._decode(key, fields) if key is not None and fields else None
        if session is None:
            if fields and key is not None:
                # Corrupt, or forged in Redis: of no use to anyone, and never to be read again.
                with store_errors():
                    get_client().delete(session_redis_key(session_name(key)))
            # Ended, expired, refused or never stored: never adopted (strict mode).
            self._forget_key()
            return {}
        return session

    def _fetch(self, key):
        """Return the fields of ``key``'s hash, by LOAD; {} if it is gone or has just ended."""
        name = session_name(key)
        args = [conf.seen_interval() * 1000, conf.absolute_age_ms()]
        with store_errors():
            reply = scripts.execute(
                get_client(), [scripts.Eval(scripts.LOAD, [session_redis_key(name)], args)]
            )[0]
        fields = dict(zip(reply[::2], reply[1::2]))
        if b"m:ended" in fields:
            self._end_expired(name, fields[USER_FIELD.encode()].decode())
            return {}
        return fields

    def _forget_key(self):
        self._session_key = None
        self._stored = None
        self._stored_user_id = None
        self._version = None

    def _end_expired(self, name, user_id):
        """Finish ending a session that its absolute timeout ended during a load."""
        if user_id:
            with store_errors():
                scripts.execute(get_client(), [index.remove_call(user_id, [name])])
        events.log_event(
            events.ENDED,
            reason=events.ENDED_EXPIRED,
            user_id=user_id or None,
            session=session_handle(name),
        )

    def _decode(self, key, fields):
        """Return the session dict held in a hash's ``fields``, or None if it is corrupt or forged."""
        name = session_name(key)
        data_prefix = DATA_PREFIX.encode()
        stored = {}
        for field, raw in fields.items():
            if not field.startswith(data_prefix):
                continue
            tag, value = raw[:FIELD_MAC_BYTES], raw[FIELD_MAC_BYTES:]
            if not hmac.compare_digest(tag, field_mac(name, field.decode(errors="replace"), value)):
                # Copied from another session's hash, or edited in Redis.
                security_logger.warning(
                    "Session data corrupted: a field fails its integrity check; refused. session=%s",
                    session_handle(name),
                )
                return None
            stored[field[len(data_prefix) :].decode()] = value
        try:
            session = dict(zip(stored, self._loads_all(list(stored.values()))))
            meta = {
                field: int(fields[field.encode()])
                for field in (ISSUED_FIELD, "m:now")
                if field.encode() in fields
            }
        except (ValueError, UnicodeDecodeError):
            security_logger.warning("Session data corrupted")
            return None
        user_id = fields.get(USER_FIELD.encode())
        previous = fields.get(PREVIOUS_FIELD.encode())
        version = fields.get(VERSION_FIELD.encode())
        # Who uses the session travels with it to a new id.
        self._client = {
            name: fields[name.encode()].decode(errors="replace")
            for name in (IP_FIELD, AGENT_FIELD)
            if name.encode() in fields
        }
        self._stored = stored
        self._stored_user_id = user_id.decode() if user_id else None
        self._version = version.decode() if version else None
        self._previous_name = previous.decode() if previous else None
        self._issued_ms = meta.get(ISSUED_FIELD)
        self._now_ms = meta.get("m:now")
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
        if self._move is not None and session_key == self._move.old_key:
            return False
        with store_errors():
            return bool(get_client().exists(session_redis_key(session_name(session_key))))

    # -- Writing ------------------------------------------------------------------

    def create(self):
        for _ in range(10):
            self._session_key = self._get_new_session_key()
            try:
                self._save_create()
            except CreateError:
                continue
            self.modified = True
            self._key_changed = True
            return
        raise RuntimeError(
            "Unable to create a new session key. It is likely that the session "
            "store is misbehaving."
        )

    def save(self, must_create=False):
        if self._move is not None:
            return self._save_move()
        if not must_create:
            # Load first, so that a key the store no longer holds is replaced.
            self._get_session()
        if not is_valid_session_id(self.session_key):
            return self.create()
        if must_create:
            return self._save_create()
        self._save_update("replace" if self._stored is None else "update")

    def _encoded(self, session):
        """Return ``session``'s values serialized, refusing a session past the size cap."""
        dumps = self.serializer().dumps
        encoded = {key: dumps(value) for key, value in session.items()}
        size = sum(len(key.encode()) + len(value) for key, value in encoded.items())
        if size > conf.max_bytes():
            raise SessionTooLarge(
                f"The session would hold {size} bytes, more than SESSION_REDIS_MAX_BYTES "
                f"({conf.max_bytes()}); nothing was saved."
            )
        return encoded

    def _data_fields(self, name, values):
        """Return hash fields for ``values`` (key -> serialized value), each bound to ``name``."""
        fields = {}
        for key, value in values.items():
            field = DATA_PREFIX + key
            fields[field] = field_mac(name, field, value) + value
        return fields

    def _hash_fields(self, name, values, session, client):
        """
        Return what a write of ``session`` sets, its owner and its TTL in ms.

        The fields: ``values`` (key -> serialized value) bound to ``name``, the
        idle time reads slide the TTL by (0: a fixed expiry), ``client`` (IP,
        User-Agent) and the owner.
        """
        ttl_ms = max(self.get_expiry_age(), 0) * 1000
        # An expiry in seconds slides with every request; a date does not.
        sliding = not isinstance(session.get("_session_expiry"), str)
        fields = self._data_fields(name, values)
        fields[IDLE_FIELD] = str(ttl_ms if sliding else 0)
        fields.update(client)
        user_id = _user_id(session)
        if user_id is not None:
            fields[USER_FIELD] = user_id
        return fields, user_id, ttl_ms

    def _run_write(self, write, *, filed_under=None, name=None):
        """
        Run the script call ``write`` and return its reply, whose first item is 1 on success.

        With ``filed_under`` (a user id), the session ``name`` is filed in that
        user's index in the same round trip, with the calls waiting for a
        write. An entry whose session was not written goes again at once; a
        session past the per-user cap ends the user's oldest.
        """
        calls = [write]
        limit = conf.max_sessions_per_user()
        if filed_under is not None:
            calls.append(index.add_call(filed_under, name, limit=limit))
        calls += self._take_pending_calls()
        with store_errors():
            client = get_client()
            results = scripts.execute(client, calls)
            if filed_under is not None:
                if results[0][0] != 1:
                    # Nothing was written under this name (and a retry draws another).
                    scripts.execute(client, [index.remove_call(filed_under, [name])])
                elif results[1]:
                    self._end_evicted(client, filed_under, name, limit)
        return results[0]

    def _save_create(self):
        """Write the session under its new id in one round trip; raise CreateError if taken."""
        session = self._get_session(no_load=True)
        encoded = self._encoded(session)
        name = session_name(self.session_key)
        fields, user_id, ttl_ms = self._hash_fields(name, encoded, session, self._client)
        pairs = [item for pair in fields.items() for item in pair]
        write = scripts.Eval(
            scripts.SAVE,
            [session_redis_key(name)],
            ["create", ttl_ms, conf.absolute_age_ms(), len(fields), *pairs],
        )
        if self._run_write(write, filed_under=user_id, name=name)[0] != 1:
            raise CreateError
        if user_id is not None:
            events.log_event(events.CREATED, user_id=user_id, session=session_handle(name))
        self._written(encoded, user_id, version="1")

    def _save_update(self, mode, hops=MAX_HOPS):
        """Write what changed since the load (``mode`` "update") or everything ("replace")."""
        session = self._get_session()
        encoded = self._encoded(session)
        if mode == "update":
            changed = {k: v for k, v in encoded.items() if self._stored.get(k) != v}
            removed = [DATA_PREFIX + k for k in self._stored if k not in encoded]
        else:
            changed, removed = encoded, []
        name = session_name(self.session_key)
        fields, user_id, ttl_ms = self._hash_fields(name, changed, session, self._client_fields)
        if user_id is None:
            removed.append(USER_FIELD)
        pairs = [item for pair in fields.items() for item in pair]
        write = scripts.Eval(
            scripts.SAVE,
            [session_redis_key(name)],
            [mode, ttl_ms, conf.absolute_age_ms(), len(fields), *pairs, *removed],
        )
        # The index changes only with the owner.
        refile = user_id is not None and user_id != self._stored_user_id
        reply = self._run_write(write, filed_under=user_id if refile else None, name=name)
        if reply[0] == 1:
            stale = {reply[1].decode() or None, self._stored_user_id} - {None, user_id}
            if stale:
                # The session is no longer theirs: their index may drop it now.
                with store_errors():
                    scripts.execute(get_client(), [index.remove_call(o, [name]) for o in stale])
        elif reply[0] == -2 and hops > 0:
            successor = open_successor(self.session_key, reply[1])
            if successor is not None:
                # Renewed since this request loaded it: the change belongs to the new id.
                self._session_key = successor
                self.modified = True
                return self._save_update(mode, hops - 1)
        if reply[0] != 1:
            raise UpdateError
        loaded_version = int(self._version) if self._version else None
        # Only when no other write came in between does _stored describe that version.
        in_step = loaded_version is not None and reply[2] == loaded_version + 1
        self._written(encoded, user_id, version=str(reply[2]) if in_step else None)

    def _written(self, encoded, user_id, *, version):
        self._stored = encoded
        self._stored_user_id = user_id
        self._version = version
        self._client_fields = {}

    @staticmethod
    def _end_evicted(client, user_id, name, limit):
        """End the oldest live sessions of a user that a login pushed past ``limit``."""
        for evicted in index.evict_oldest(client, user_id, limit=limit, keep=name):
            events.log_event(
                events.ENDED,
                reason=events.ENDED_BY_SESSION_CAP,
                user_id=user_id,
                session=session_handle(evicted),
            )

    def delete(self, session_key=None):
        own = session_key is None or session_key == self.session_key
        if session_key is None:
            session_key = self.session_key
        if not is_valid_session_id(session_key):
            return
        # The ids that lead to this session die with it (all on one slot).
        keys = [session_redis_key(session_name(session_key))]
        if own and self._previous_name:
            keys.append(session_redis_key(self._previous_name))
        if own and self._move is not None:
            keys.append(session_redis_key(session_name(self._move.old_key)))
            self._move = None
        # Read before the delete: where the session went, if another request
        # moved it to a new id since this one loaded it (it ends there too).
        name = session_name(session_key)
        calls = [
            scripts.Command(("HGET", keys[0], MOVED_FIELD)),
            scripts.Command(("HGET", moved_record_key(name), MOVED_FIELD)),
            scripts.Command(("DEL", *keys)),
        ]
        with store_errors():
            client = get_client()
            owner = self._stored_user_id if own else None
            if owner is not None and not is_cluster(client):
                # One connection runs a pipeline in order: the entry goes only
                # once the session is gone. On a cluster the two go to different
                # nodes, so the entry waits for a reader to see the session gone
                # (index module docstring), lest a failed delete leave a live
                # session that no "end sessions" path can find.
                calls.append(index.remove_call(owner, [name]))
            in_grace, recorded = scripts.execute(client, calls + self._take_pending_calls())[:2]
            moved = in_grace or recorded
            if moved:
                index.end_moved(client, owner or "", [moved.decode()])
        if own:
            self._stored = None
            self._stored_user_id = None
            self._version = None
            self._previous_name = None


def _user_id(session):
    user_id = session.get(SESSION_KEY)
    return str(user_id) if user_id is not None else None
