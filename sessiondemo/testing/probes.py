"""A redis-py connection that records each round trip it makes to the server."""

import contextlib
import threading

import redis.asyncio.connection
from redis.connection import Connection


class RoundTrips:
    """The round trips made while recording; each is the list of command names sent."""

    _lock = threading.Lock()
    _active = []

    def __init__(self):
        self._trips = []

    def __len__(self):
        return len(self._trips)

    @property
    def trips(self):
        # A packet the caller packed itself is read for its names only when asked:
        # the benchmark counts round trips on every request.
        return [_names_in(trip) if isinstance(trip, bytes) else trip for trip in self._trips]

    @property
    def commands(self):
        return [name for trip in self.trips for name in trip]

    @classmethod
    def record(cls, names):
        """Record one round trip: its command names, or the packet that holds them."""
        with cls._lock:
            for log in cls._active:
                log._trips.append(names)

    @classmethod
    @contextlib.contextmanager
    def recording(cls):
        """Record every round trip made by any CountingConnection meanwhile."""
        log = cls()
        with cls._lock:
            cls._active.append(log)
        try:
            yield log
        finally:
            with cls._lock:
                cls._active.remove(log)


class AsyncCountingConnection(redis.asyncio.connection.Connection):
    """CountingConnection for redis.asyncio: what the engine's asyncio client gets in its place."""

    _handshake = False
    _pending_names = None
    # Those connected and not yet disconnected, in every loop.
    open = set()

    async def connect(self):
        await super().connect()
        AsyncCountingConnection.open.add(self)

    async def disconnect(self, *args, **kwargs):
        AsyncCountingConnection.open.discard(self)
        return await super().disconnect(*args, **kwargs)

    async def on_connect_check_health(self, check_health=True):
        self._handshake = True
        try:
            return await super().on_connect_check_health(check_health=check_health)
        finally:
            self._handshake = False

    def pack_commands(self, commands):
        commands = list(commands)
        self._pending_names = [_name(args) for args in commands]
        return super().pack_commands(commands)

    async def send_command(self, *args, **kwargs):
        self._pending_names = [_name(args)]
        return await super().send_command(*args, **kwargs)

    async def send_packed_command(self, command, check_health=True):
        _record(self, command)
        return await super().send_packed_command(command, check_health=check_health)


class CountingConnection(Connection):
    """A real TCP connection that reports each request it sends, less the handshake."""

    # The engine's asyncio client connects with this instead (connection.py).
    asyncio_class = AsyncCountingConnection

    _handshake = False
    _pending_names = None

    def on_connect_check_health(self, check_health=True):
        self._handshake = True
        try:
            return super().on_connect_check_health(check_health=check_health)
        finally:
            self._handshake = False

    def pack_commands(self, commands):
        commands = list(commands)
        self._pending_names = [_name(args) for args in commands]
        return super().pack_commands(commands)

    def send_command(self, *args, **kwargs):
        self._pending_names = [_name(args)]
        return super().send_command(*args, **kwargs)

    def send_packed_command(self, command, check_health=True):
        _record(self, command)
        return super().send_packed_command(command, check_health=check_health)


def _record(connection, command):
    """Record the round trip that ``connection`` is sending ``command`` in, unless it is its handshake."""
    names, connection._pending_names = connection._pending_names, None
    if names is None:
        # Packed by the caller itself: the names are in the protocol.
        names = command if isinstance(command, bytes) else b"".join(command)
    if not connection._handshake:
        RoundTrips.record(names)


def _names_in(packet):
    """Return the command names in ``packet``, commands in Redis's protocol (arrays of bulk strings)."""
    names, at = [], 0
    while at < len(packet) and packet[at : at + 1] == b"*":
        end = packet.index(b"\r\n", at)
        count = int(packet[at + 1 : end])
        at = end + 2
        for i in range(count):
            end = packet.index(b"\r\n", at)
            length = int(packet[at + 1 : end])
            if i == 0:
                names.append(packet[end + 2 : end + 2 + length].decode().upper())
            at = end + 2 + length + 2
    return names


def _name(args):
    name = args[0]
    if isinstance(name, bytes):
        name = name.decode()
    return str(name).split(" ")[0].upper()
