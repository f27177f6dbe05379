"""
The engine's Redis work, written once and run over either client: one protocol, two transports.

An operation is a generator that yields what it needs from Redis and is sent
the answer, so that the same code serves a WSGI request on redis-py's client
and an asyncio one on redis.asyncio's, with no thread in between:

- a list of calls (scripts.Eval, scripts.Command): their results, in one
  round trip (scripts.execute());
- Read(key, idle_ms): the key's value and Redis's time, sliding its TTL
  (reads.read()), or (None, None);
- NOW: Redis's time in epoch ms (clock.now_ms());
- Batches(batches): each list of calls' results, the lists sent one after
  another on one connection, each before the replies to the one before are
  read (scripts.execute_batches(); clearsessions's long walks).

run() drives an operation with the process's client, arun() with the client
of the running event loop (or with the process's client in a thread, as
Django's engines do: with SESSION_REDIS_NATIVE_ASYNC = False, and for an
async view served by WSGI). A failure that means the store cannot answer is
thrown into the operation as SessionStoreUnavailable, where the operation
raises it (or handles it); so is any other error of a call.
"""

import asyncio
import time
from typing import NamedTuple

from asgiref.sync import AsyncToSync, sync_to_async

from . import clock, conf, reads, scripts
from .connection import get_async_client, get_client, store_errors


class Read(NamedTuple):
    """Read ``key`` and slide its TTL to ``idle_ms`` (reads.read())."""

    key: str
    idle_ms: int


class Batches(NamedTuple):
    """Run each list of calls in ``batches``, pipelined (scripts.execute_batches())."""

    batches: list


# Ask for Redis's time (clock.now_ms()).
NOW = object()


def run(operation):
    """Run the generator ``operation`` on the sync client; return what it returns."""
    client = None
    try:
        request = operation.send(None)
        while True:
            try:
                with store_errors():
                    if client is None:
                        client = get_client()
                    result = _perform(client, request)
            except Exception as error:
                request = operation.throw(error)
            else:
                request = operation.send(result)
    except StopIteration as stop:
        return stop.value


async def arun(operation):
    """Run the generator ``operation`` on the asyncio client of the running loop; return what it returns."""
    if not conf.native_async() or _made_for_one_call(asyncio.get_running_loop()):
        # What Django's engines do: the sync path in a thread. Kept to measure
        # the native path against (SESSION_REDIS_NATIVE_ASYNC = False), and
        # for an async view under WSGI, whose loop lives for one call while
        # the request's thread waits: that thread runs it on the process's
        # connections, where a client of the loop's own would connect anew.
        return await sync_to_async(run)(operation)
    client = None
    try:
        request = operation.send(None)
        while True:
            try:
                with store_errors():
                    if client is None:
                        client = get_async_client()
                    result = await _aperform(client, request)
            except Exception as error:
                request = operation.throw(error)
            else:
                request = operation.send(result)
    except StopIteration as stop:
        return stop.value


def _made_for_one_call(loop):
    """Return True if async_to_sync() made ``loop`` to run one call for a sync thread."""
    # The test asgiref's sync_to_async() itself makes to find that thread.
    return loop in AsyncToSync.loop_thread_executors


def _perform(client, request):
    if type(request) is list:
        return scripts.execute(client, request)
    if type(request) is Read:
        sent_at = time.monotonic()
        raw, now_ms = reads.read(client, request.key, request.idle_ms)
        if raw is not None:
            clock.observe(client, now_ms, sent_at, time.monotonic())
        return raw, now_ms
    if request is NOW:
        return clock.now_ms(client)
    if type(request) is Batches:
        return list(scripts.execute_batches(client, request.batches))
    raise TypeError(f"Not a request of the session protocol: {request!r}")


async def _aperform(client, request):
    if type(request) is list:
        return await scripts.aexecute(client, request)
    if type(request) is Read:
        sent_at = time.monotonic()
        raw, now_ms = await reads.aread(client, request.key, request.idle_ms)
        if raw is not None:
            clock.observe(client, now_ms, sent_at, time.monotonic())
        return raw, now_ms
    if request is NOW:
        return await clock.anow_ms(client)
    if type(request) is Batches:
        return [await scripts.aexecute(client, calls) for calls in request.batches]
    raise TypeError(f"Not a request of the session protocol: {request!r}")
