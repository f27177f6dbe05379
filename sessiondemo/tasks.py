"""
A django.tasks backend that runs tasks on a background thread of the web process.

Enough to take slow work (sending mail) off the request path, and no more: tasks
live in memory, so those still queued when the process stops are lost, and
results cannot be fetched. One daemon thread per backend and process runs them in
order; at most OPTIONS["MAX_QUEUED"] wait, and a task past that is dropped and
logged. A task that raises is logged and the worker goes on.
"""

import logging
import os
import queue
import threading

from django.db import connections
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import TaskResult, TaskResultStatus
from django.utils.crypto import get_random_string

logger = logging.getLogger("sessiondemo.tasks")

_workers = {}
_workers_lock = threading.Lock()
# A forked child has none of its parent's threads, so none of its workers.
os.register_at_fork(after_in_child=_workers.clear)


class Worker:
    """A daemon thread that runs queued task results one after another."""

    def __init__(self, name, max_queued):
        self._queue = queue.Queue(maxsize=max_queued)
        threading.Thread(target=self._work, name=name, daemon=True).start()

    def submit(self, result):
        """Queue ``result`` to run; return False if the queue is full."""
        try:
            self._queue.put_nowait(result)
        except queue.Full:
            return False
        return True

    def join(self, timeout=None):
        """Wait until everything queued before this call has run; return False on timeout."""
        marker = threading.Event()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.wait(timeout)

    def _work(self):
        while True:
            item = self._queue.get()
            if isinstance(item, threading.Event):
                item.set()
            else:
                self._run(item)

    @staticmethod
    def _run(result):
        try:
            result.task.call(*result.args, **result.kwargs)
        except Exception:
            # The traceback, not the arguments: those may hold secrets (a reset link).
            logger.exception("Task %s (id %s) failed.", result.task.module_path, result.id)
        finally:
            # This thread is no request: nothing else closes its database connections.
            connections.close_all()


class ThreadBackend(BaseTaskBackend):
    """Run tasks on a background thread: off the request path, in order, not durable."""

    def __init__(self, alias, params):
        super().__init__(alias, params)
        self.max_queued = int(self.options.get("MAX_QUEUED", 1000))

    @property
    def worker(self):
        # Django makes a backend per thread; the worker is one per alias and process.
        with _workers_lock:
            if self.alias not in _workers:
                _workers[self.alias] = Worker(f"tasks-{self.alias}", self.max_queued)
            return _workers[self.alias]

    def enqueue(self, task, args, kwargs):
        self.validate_task(task)
        result = TaskResult(
            task=task,
            id=get_random_string(32),
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        if not self.worker.submit(result):
            logger.error(
                "Task %s (id %s) dropped: %d tasks are already queued.",
                task.module_path,
                result.id,
                self.max_queued,
            )
            object.__setattr__(result, "status", TaskResultStatus.FAILED)
        return result

    def join(self, timeout=None):
        """Wait until every task queued so far has run; return False on timeout."""
        return self.worker.join(timeout)
