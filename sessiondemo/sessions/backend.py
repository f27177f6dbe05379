"""
The Redis session engine: ``SESSION_ENGINE = "sessiondemo.sessions.backend"``.

Each session is one Redis string under ``<prefix>s:{<tag>}<digest>``, named by
a keyed hash of the session id (keys.session_name()): a small header (its
times, version, owner and client) and its data in SESSION_SERIALIZER's JSON,
compressed, the whole bound to the session's name by a keyed tag (codec.py).

A read is one GETEX, which slides the idle timeout, and the key's expiry time,
which gives Redis's clock for the absolute timeout: one round trip, no script
(reads.py). A save writes the whole session only if nobody wrote it since this
request read it (a compare-and-set script); if someone did, it puts this
request's changes on top of what is there and tries again, so concurrent
requests that change different keys of one session do not overwrite each
other, and a session deleted meanwhile is never resurrected. Moving a session
to a new id (cycle_key(), renewal) is one script on both keys, which share a
Redis Cluster slot: see moves.py.
"""

import datetime
import json
import logging
import secrets
import types

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from . import codec, conf, events, index, protocol, scripts
from .exceptions import SessionStoreUnavailable, SessionTooLarge
from .keys import (
    VALID_KEY_CHARS,  # noqa: F401 (the alphabet of ids, for callers)
    is_valid_session_id,
    is_well_formed,
    moved_record_key,
    new_session_id,
    open_successor,
    session_handle,
    session_name,
    session_redis_key,
    valid_session_name,
)
from .moves import SessionMovesMixin
from .users import UserSessionsMixin

security_logger = logging.getLogger("django.security.SuspiciousSession")

# A request that reaches a session through ids replaced meanwhile follows at most this many.
MAX_HOPS = 2
# How often a write is tried again when another write got there first.
MAX_ATTEMPTS = 10


class SessionStore(UserSessionsMixin, SessionMovesMixin, SessionBase):
    """Keep each session in one Redis string; see the module docstring."""

    def __init__(self, session_key=None):
        # SessionBase.__init__() without its import_string() on every request.
        self._session_key = session_key
        self.accessed = False
        self.modified = False
        self.serializer = conf.serializer()

    # Per-request state, as class defaults: an instance is made for every
    # request, and most never set most of these.
    # The session as last read from or written to Redis (codec.Value); None
    # when unknown, which makes the next save replace it whole.
    _loaded = None
    _stored_user_id = None
    _now_ms = None
    _previous_name = None
    _client = types.MappingProxyType({})
    _client_changed = False
    _move = None
    # True once this request gave the session a new id (create or move).
    _key_changed = False
    # Called when a well-formed id turns out to be one this server never issued; may raise.
    on_unknown_id = None
    # Redis calls that ride along with the next write (run_with_next_write()).
    _pending_calls = ()
    # The call that pins the TTL back to the absolute timeout after a read
    # slid it past; any write of the session does that itself.
    _expiry_fix = None
    # Set by the middleware once it has saved the session for the response:
    # the save that Django's process_response() then asks for is done.
    saved_ahead = False

    def clear(self):
        super().clear()
        # Make the next save a replace, so no key written meanwhile survives.
        self._loaded = None

    def _get_new_session_key(self):
        # No exists() check (a round trip): a save that creates refuses a
        # taken key atomically, and create() then draws again.
        return new_session_id()

    async def _aget_new_session_key(self):
        return self._get_new_session_key()

    @property
    def user_agent(self):
        """Return the User-Agent recorded when this session logged in, if any."""
        return self._client.get("user_agent")

    @property
    def handle(self):
        """Return an opaque id of this session that is safe to show and log."""
        if not is_valid_session_id(self.session_key):
            return None
        return session_handle(session_name(self.session_key))

    def record_client(self, *, ip, user_agent):
        """Store who is using this session (IP address, User-Agent) with its next save."""
        self._client = {"ip": ip, "user_agent": user_agent}
        self._client_changed = True
        self.modified = True

    def run_with_next_write(self, calls):
        """
        Send ``calls`` (scripts.Eval or scripts.Command) with this session's next write.

        They go in the same round trip as the save or delete, after it; their
        results are not returned. run_pending_calls() sends them on their own
        if the request ends without a write.
        """
        self._pending_calls = [*self._pending_calls, *calls]

    def run_pending_calls(self):
        """Send the calls still waiting for a write, in one round trip."""
        protocol.run(self._run_pending_calls())

    async def arun_pending_calls(self):
        """Send the calls still waiting for a write, on the asyncio client."""
        await protocol.arun(self._run_pending_calls())

    def _run_pending_calls(self):
        expiry_fix = self._expiry_fix
        calls = self._take_pending_calls() + ([expiry_fix] if expiry_fix is not None else [])
        if calls:
            yield calls

    def _take_pending_calls(self):
        # Called by each write, which sets the TTL itself.
        self._expiry_fix = None
        calls, self._pending_calls = list(self._pending_calls), ()
        return calls

    # -- Reading ------------------------------------------------------------------

    # Each operation on Redis is a generator of the session protocol
    # (protocol.py), run by a sync method and by its async twin.

    def load(self):
        return protocol.run(self._load())

    async def aload(self):
        return await protocol.arun(self._load())

    def _load(self):
        key = self.session_key
        if key is None:
            return {}
        name = valid_session_name(key)
        if name is None:
            # Not an id this server issued: an anonymous visitor, at no Redis cost.
            self._forget_key()
            if is_well_formed(key) and self.on_unknown_id is not None:
                # The hook is an operation too (it may count the id in Redis).
                yield from self.on_unknown_id()
            return {}
        value = None
        for _ in range(MAX_HOPS + 1):
            found = yield from self._fetch(key, name)
            if not isinstance(found, codec.Stub):
                value = found
                break
            # The session was renewed a moment ago: a request in flight with
            # the old id follows it to the new one.
            stub, key = found, open_successor(key, found.sealed)
            if key is None:
                break
            # Reading the stub slid its TTL: put it back to the end of its grace period.
            self.run_with_next_write([scripts.Command(("PEXPIREAT", session_redis_key(name), stub.until_ms))])
            self._session_key, name = key, session_name(key)
            # So that the response gives the browser the new id.
            self.modified = True
        session = self._adopt(value) if value is not None else None
        if session is None:
            # Ended, expired, refused or never stored: never adopted (strict mode).
            self._forget_key()
            return {}
        return session

    def _session_data(self, no_load=False):
        """Return the session's data as _get_session() does, loading it by the protocol."""
        self.accessed = True
        try:
            return self._session_cache
        except AttributeError:
            if self.session_key is None or no_load:
                self._session_cache = {}
            else:
                self._session_cache = yield from self._load()
        return self._session_cache

    def _fetch(self, key, name=None):
        """Return what ``key`` holds (codec.Value or codec.Stub), or None if nothing usable."""
        name = name or session_name(key)
        redis_key = session_redis_key(name)
        idle_ms = conf.idle_age_ms()
        raw, now_ms = yield protocol.Read(redis_key, idle_ms)
        if raw is None:
            return None
        if raw[:1] == codec.STUB:
            stub = codec.decode_stub(raw)
            return stub if now_ms < stub.until_ms else None
        try:
            value = codec.decode(name, raw)
        except (ValueError, IndexError, LookupError):
            security_logger.warning(
                "Session refused: its stored value fails its integrity check (corrupted, or "
                "copied or edited in Redis); deleted. session=%s",
                session_handle(name),
            )
            yield [scripts.Command(("DEL", redis_key))]
            return None
        ends_ms = min(value.deadline_ms, value.created_ms + conf.absolute_age_ms())
        if not value.idle_ms:
            # A fixed expiry, which GETEX does not know of: judged here.
            ends_ms = min(ends_ms, _fixed_end_ms(self._loads(value.data)))
        if ends_ms <= now_ms:
            yield from self._end_expired(name, value.user_id)
            return None
        if value.idle_ms != idle_ms:
            yield [_ttl_correction(redis_key, value, now_ms, ends_ms)]
        if value.idle_ms and now_ms + value.idle_ms > ends_ms:
            # In its last idle period GETEX slid it past its absolute timeout:
            # back to the timeout, with the request's write (or after it).
            self._expiry_fix = scripts.Command(("PEXPIREAT", redis_key, ends_ms))
        value.name, value.now_ms = name, now_ms
        return value

    def _adopt(self, value):
        """Take ``value`` as this request's session; return its data, or None if it does not parse."""
        try:
            session = self._loads(value.data)
        except ValueError:
            security_logger.warning("Session data corrupted")
            return None
        self._loaded = value
        self._stored_user_id = value.user_id or None
        self._now_ms = value.now_ms
        self._previous_name = value.previous or None
        self._client = {"ip": value.ip, "user_agent": value.user_agent} if value.ip or value.user_agent else {}
        self._client_changed = False
        return session

    def _forget_key(self):
        self._session_key = None
        self._loaded = None
        self._stored_user_id = None

    def _end_expired(self, name, user_id):
        """End a session that its absolute timeout has ended."""
        calls = [scripts.Command(("DEL", session_redis_key(name)))]
        if user_id:
            calls.append(index.remove_call(user_id, [name]))
        yield calls
        events.log_event(
            events.ENDED,
            reason=events.ENDED_EXPIRED,
            user_id=user_id or None,
            session=session_handle(name),
        )

    def _loads(self, data):
        return self.serializer().loads(data)

    def exists(self, session_key):
        return protocol.run(self._exists(session_key))

    async def aexists(self, session_key):
        return await protocol.arun(self._exists(session_key))

    def _exists(self, session_key):
        if not is_valid_session_id(session_key):
            return False
        if self._move is not None and session_key == self._move.old_key:
            return False
        [found] = yield [scripts.Command(("EXISTS", session_redis_key(session_name(session_key))))]
        return bool(found)

    # -- Writing ------------------------------------------------------------------

    def create(self):
        protocol.run(self._create())

    async def acreate(self):
        await protocol.arun(self._create())

    def _create(self):
        for _ in range(10):
            self._session_key = self._get_new_session_key()
            try:
                yield from self._save_create()
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
        if self.saved_ahead:
            self.saved_ahead = False
            return
        protocol.run(self._save(must_create))

    async def asave(self, must_create=False):
        await protocol.arun(self._save(must_create))

    def _save(self, must_create=False):
        if self._move is not None:
            return (yield from self._save_move())
        if not must_create:
            # Load first, so that a key the store no longer holds is replaced.
            yield from self._session_data()
        if not is_valid_session_id(self.session_key):
            return (yield from self._create())
        if must_create:
            return (yield from self._save_create())
        yield from self._save_update()

    def _value(self, session, *, previous=""):
        """Return codec.Value for ``session`` as it would be written now (times aside)."""
        data = self.serializer().dumps(session)
        if len(data) > conf.max_bytes():
            raise SessionTooLarge(
                f"The session would hold {len(data)} bytes, more than SESSION_REDIS_MAX_BYTES "
                f"({conf.max_bytes()}); nothing was saved."
            )
        return codec.Value(
            data=data,
            user_id=_user_id(session) or "",
            ip=self._client.get("ip", ""),
            user_agent=self._client.get("user_agent", ""),
            previous=previous,
            # Drawn, not counted: a replace need not know the version it replaces.
            version=secrets.randbits(32),
            idle_ms=_idle_ms(session, self.get_expiry_age()),
        )

    def _ttl_ms(self):
        return max(self.get_expiry_age(), 0) * 1000

    def _run_write(self, write, *, filed_under=None, name=None, written=lambda reply: reply[0] == 1):
        """
        Run the call ``write`` and return its reply; ``written(reply)`` says whether it wrote.

        With ``filed_under`` (a user id), the session ``name`` is filed in that
        user's index in the same round trip, with the calls waiting for a
        write; an entry whose session was not written goes again at once. A
        session past the per-user cap ends the user's oldest. Such a write (a
        login, an id change) waits, in its round trip, for SESSION_REDIS_MIN_REPLICAS
        replicas to acknowledge it; if fewer do in time, the session is
        deleted and the request answers 503: a login the replicas may not
        hold is no login.
        """
        calls = [write]
        if filed_under is not None:
            calls += index.add_calls(filed_under, name, (yield protocol.NOW))
        calls += self._take_pending_calls()
        replicas = conf.min_replicas() if filed_under is not None else 0
        if replicas:
            calls.append(scripts.Command(("WAIT", replicas, conf.replica_timeout_ms())))
        results = yield calls
        reply = results[0]
        if filed_under is None:
            return reply
        if replicas and written(reply) and results[-1] < replicas:
            yield [scripts.Command(("DEL", session_redis_key(name)))]
            raise SessionStoreUnavailable(
                f"The session reached {results[-1]} of the {replicas} replica(s) "
                f"SESSION_REDIS_MIN_REPLICAS asks for within {conf.replica_timeout_ms()} ms; deleted."
            )
        if not written(reply):
            # Nothing was written under this name (and a retry draws another).
            yield [index.remove_call(filed_under, [name])]
        else:
            limit = conf.max_sessions_per_user()
            if limit and index.entries_filed(results[1:]) > limit:
                yield from self._end_evicted(filed_under, name, limit)
        return reply

    def _save_create(self):
        """Write the session under its new id in one round trip, no script; raise CreateError if taken."""
        session = self._get_session(no_load=True)
        value = self._value(session)
        name = session_name(self.session_key)
        # Redis's clock stamps the session: its login, absolute deadline and issue.
        now_ms = yield protocol.NOW
        limit_ms = conf.absolute_age_ms()
        value.created_ms, value.deadline_ms, value.issued_ms = now_ms, now_ms + limit_ms, now_ms
        head, tail = codec.encode(name, value)
        ttl_ms = max(min(self._ttl_ms(), limit_ms), 1)
        write = scripts.Command(("SET", session_redis_key(name), head + codec.encode_times(value) + tail, "NX", "PX", ttl_ms))
        user_id = value.user_id or None
        if (yield from self._run_write(write, filed_under=user_id, name=name, written=_set)) is None:
            raise CreateError
        if user_id is not None:
            events.log_event(events.CREATED, user_id=user_id, session=session_handle(name))
        # A later save in this request takes the times from Redis (SAVE_KEEPING_TIMES).
        value.created_ms = value.deadline_ms = value.issued_ms = 0
        self._loaded = None
        self._written(value)

    def _save_update(self):
        """Write the session if it changed, merging with whatever was written meanwhile."""
        session = yield from self._session_data()
        loaded = self._loaded
        value = self._value(session, previous=self._previous_name or "")
        if loaded is not None and value.data == loaded.data and not self._client_changed:
            return  # nothing to write: the read already slid the idle timeout
        changes = None
        for _ in range(MAX_ATTEMPTS):
            name = session_name(self.session_key)
            write = self._write_call(name, value, loaded)
            # The index changes only with the owner.
            refile = value.user_id and value.user_id != (self._stored_user_id or "")
            reply = yield from self._run_write(write, filed_under=value.user_id if refile else None, name=name)
            if reply[0] == 1:
                # Its owner before: what Redis held, or (at the version loaded) the one loaded.
                previous_owner = reply[1].decode() if len(reply) > 1 else loaded.user_id
                yield from self._unfile_stale_owners(name, previous_owner or None, value.user_id or None)
                self._written(value)
                return
            if reply[0] == -2:
                # Renewed since this request read it: the change belongs to the new id.
                stub = codec.decode_stub(reply[1])
                successor = open_successor(self.session_key, stub.sealed) if stub else None
                if successor is None:
                    break
                self._session_key = successor
                self.modified = True
                current = yield from self._fetch(successor)
                if not isinstance(current, codec.Value):
                    break
            elif reply[0] == -3:
                try:
                    current = codec.decode(name, reply[1])
                except (ValueError, IndexError, LookupError):
                    break
                current.now_ms = loaded.now_ms
            else:
                break
            # Written meanwhile: this request's changes go on top of what is there.
            if changes is None:
                changes = self._changes(session)
            session = self._merged(current, changes)
            loaded = current
            value = self._value(session, previous=self._previous_name or "")
        self._forget_key()
        raise UpdateError

    def _write_call(self, name, value, loaded):
        """Return the script call that writes ``value`` over ``loaded`` (None: whatever is there)."""
        key = session_redis_key(name)
        ttl_ms = value.idle_ms or self._ttl_ms()
        if loaded is None or not (loaded.created_ms and loaded.now_ms):
            # Cleared, or created or moved in this request: Redis knows the times.
            version = _version_bytes(loaded.version) if loaded is not None else ""
            head, tail = codec.encode(name, value)
            args = [version, head, tail, ttl_ms, conf.absolute_age_ms()]
            return scripts.Eval(scripts.SAVE_KEEPING_TIMES, [key], args)
        # Read in this request: under one key a session's times never change,
        # so the value goes whole, its TTL capped by the Redis time of the read.
        value.created_ms, value.deadline_ms, value.issued_ms = loaded.created_ms, loaded.deadline_ms, loaded.issued_ms
        ends_ms = min(loaded.deadline_ms, loaded.created_ms + conf.absolute_age_ms())
        head, tail = codec.encode(name, value)
        whole = head + codec.encode_times(value) + tail
        ttl_ms = max(min(ttl_ms, ends_ms - loaded.now_ms), 1)
        return scripts.Eval(scripts.SAVE, [key], [_version_bytes(loaded.version), whole, ttl_ms])

    def _changes(self, session):
        """Return what this request changed in ``session``: (changed keys and values, removed keys)."""
        if self._loaded is None:
            return dict(session), None  # cleared: the session is what this request made it
        original = self._loads(self._loaded.data)
        changed = {k: v for k, v in session.items() if k not in original or not _same(v, original[k])}
        removed = [k for k in original if k not in session]
        return changed, removed

    def _merged(self, current, changes):
        """Return the data of ``current`` with this request's ``changes`` on top."""
        changed, removed = changes
        if removed is None:
            merged = dict(changed)
        else:
            merged = self._loads(current.data)
            for key in removed:
                merged.pop(key, None)
            merged.update(changed)
        self._session_cache = merged
        self._loaded = current
        self._stored_user_id = current.user_id or None
        return merged

    def _unfile_stale_owners(self, name, previous_owner, user_id):
        stale = {previous_owner, self._stored_user_id} - {None, user_id}
        if stale:
            # The session is no longer theirs: their index may drop it now.
            yield [index.remove_call(owner, [name]) for owner in stale]

    def _written(self, value):
        previous = self._loaded
        if previous is not None and not self._key_changed:
            # The script kept the session's times: so does this copy.
            value.created_ms, value.deadline_ms = previous.created_ms, previous.deadline_ms
            value.issued_ms, value.now_ms = previous.issued_ms, previous.now_ms
        self._loaded = value
        self._stored_user_id = value.user_id or None
        self._client_changed = False

    @staticmethod
    def _end_evicted(user_id, name, limit):
        """End the oldest live sessions of a user that a login pushed past ``limit``."""
        for evicted in (yield from index.evict_oldest(user_id, limit=limit, keep=name)):
            events.log_event(
                events.ENDED,
                reason=events.ENDED_BY_SESSION_CAP,
                user_id=user_id,
                session=session_handle(evicted),
            )

    def delete(self, session_key=None):
        protocol.run(self._delete(session_key))

    async def adelete(self, session_key=None):
        await protocol.arun(self._delete(session_key))

    def _delete(self, session_key):
        own = session_key is None or session_key == self.session_key
        if session_key is None:
            session_key = self.session_key
        name = valid_session_name(session_key)
        if name is None:
            return
        # The ids that lead to this session die with it (all on one slot).
        keys = [session_redis_key(name)]
        if own and self._previous_name:
            keys.append(session_redis_key(self._previous_name))
        if own and self._move is not None:
            keys.append(session_redis_key(session_name(self._move.old_key)))
            self._move = None
        # What the key held says whether another request moved the session to
        # a new id since this one loaded it (it ends there too).
        calls = [scripts.Command(("GETDEL", keys[0]))]
        if len(keys) > 1:
            calls.append(scripts.Command(("DEL", *keys[1:])))
        owner = self._stored_user_id if own else None
        # The index entry stays until a reader of the index, or
        # clearsessions, finds the session gone (index module docstring):
        # a logout is one plain command, and on a cluster, where the two
        # live on different nodes, a failed delete never leaves a live
        # session that no "end sessions" path can find.
        current = (yield calls + self._take_pending_calls())[0]
        if current is None:
            # Gone already: ended, or moved without a grace period, which leaves a record.
            [recorded] = yield [scripts.Command(("GET", moved_record_key(name)))]
            moved = recorded.decode() if recorded else None
        else:
            stub = codec.decode_stub(current)
            moved = stub.moved_to if stub else None
        if moved:
            yield from index.end_moved(owner or "", [moved])
        if own:
            self._loaded = None
            self._stored_user_id = None
            self._previous_name = None


def _ttl_correction(redis_key, value, now_ms, ends_ms):
    """Return the command that gives a session with an expiry of its own the TTL that GETEX replaced."""
    if value.idle_ms:
        return scripts.Command(("PEXPIRE", redis_key, min(value.idle_ms, ends_ms - now_ms)))
    return scripts.Command(("PEXPIREAT", redis_key, ends_ms))


def _idle_ms(session, expiry_age):
    """Return how far each read slides the session's TTL: 0 for an expiry at a fixed date."""
    # An expiry in seconds slides with every request; a date does not.
    if isinstance(session.get("_session_expiry"), str):
        return 0
    return max(expiry_age, 0) * 1000


def _fixed_end_ms(session):
    """Return when a session with no idle time ends: its expiry date, or now if it has expired."""
    expiry = session.get("_session_expiry")
    if not isinstance(expiry, str):
        return 0  # an expiry of 0 seconds or fewer
    return int(datetime.datetime.fromisoformat(expiry).timestamp() * 1000)


def _set(reply):
    """Return True if SET wrote (its NX condition held)."""
    return reply is not None


def _version_bytes(version):
    return version.to_bytes(4, "big")


def _user_id(session):
    user_id = session.get(SESSION_KEY)
    return str(user_id) if user_id is not None else None


def _same(a, b):
    """Return True if the JSON values ``a`` and ``b`` serialize alike (True is not 1)."""
    if type(a) is not type(b) or a != b:
        return False
    if isinstance(a, dict | list | tuple):
        # Equal containers may still hold True where the other holds 1.
        return json.dumps(a) == json.dumps(b)
    return True
