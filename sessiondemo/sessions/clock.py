"""
Redis's clock, as this process last read it: what a write needs to stamp times without a script.

The engine judges every time by Redis's clock, so that app servers whose
clocks disagree cannot stretch a timeout. Reads learn it for free (GETEX and
PEXPIRETIME give Redis's time, reads.py); this module keeps a recent reading
on each client, with the moment it was taken by time.monotonic(), which no
one can set and which runs at the rate of real time, so that a new session's
times are Redis's to within the round trip the reading took. Past
FRESH_SECONDS, or before any reading, it asks Redis (TIME, a round trip).
"""

import time

# How long a reading stands for Redis's clock: a monotonic clock runs at the
# rate NTP keeps it to (within 500 ppm, typically a few), so it drifts by at
# most 0.3 s in that time, typically milliseconds, against timeouts of hours.
FRESH_SECONDS = 600
# A reading is taken again at most this often (reads happen far more often).
RETAKE_SECONDS = 1
# A reading that took longer than this round trip says too little.
MAX_ROUND_TRIP_SECONDS = 0.05
# Where a client keeps its reading: (Redis's time in ms, time.monotonic() then).
ATTRIBUTE = "_sessiondemo_clock"


def observe(client, redis_ms, sent_at, received_at):
    """Note that Redis's clock read ``redis_ms`` (whole ms) between monotonic ``sent_at`` and ``received_at``."""
    if received_at - sent_at > MAX_ROUND_TRIP_SECONDS:
        return
    reading = getattr(client, ATTRIBUTE, None)
    if reading is None or not 0 <= received_at - reading[1] <= RETAKE_SECONDS:
        # Redis's milliseconds are whole: the reading stood anywhere in that one.
        setattr(client, ATTRIBUTE, (redis_ms + 0.5, (sent_at + received_at) / 2))


def forget(client):
    """Drop ``client``'s reading, so that the next stamp asks Redis."""
    if hasattr(client, ATTRIBUTE):
        delattr(client, ATTRIBUTE)


def now_ms(client):
    """Return Redis's time in epoch ms, from the last fresh reading or from TIME."""
    reading = _fresh_reading(client)
    if reading is None:
        sent_at = time.monotonic()
        reading = _take(client, client.time(), sent_at)
    return _reckon(reading)


async def anow_ms(client):
    """Return Redis's time in epoch ms as now_ms() does, for an asyncio client."""
    reading = _fresh_reading(client)
    if reading is None:
        sent_at = time.monotonic()
        reading = _take(client, await client.time(), sent_at)
    return _reckon(reading)


def _fresh_reading(client):
    reading = getattr(client, ATTRIBUTE, None)
    if reading is not None and 0 <= time.monotonic() - reading[1] <= FRESH_SECONDS:
        return reading
    return None


def _take(client, reply, sent_at):
    """Keep on ``client`` the reading of TIME's ``reply``, asked at ``sent_at``; return it."""
    received_at = time.monotonic()
    seconds, micros = reply
    reading = (int(seconds) * 1000 + int(micros) / 1000, (sent_at + received_at) / 2)
    setattr(client, ATTRIBUTE, reading)
    return reading


def _reckon(reading):
    redis_ms, taken_at = reading
    return int(redis_ms + (time.monotonic() - taken_at) * 1000)
