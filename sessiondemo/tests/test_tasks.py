"""The background-thread task backend: off the caller's thread, in order, bounded, failures logged."""

import logging
import threading

import pytest
from django.tasks import task, task_backends
from django.tasks.base import TaskResultStatus

from sessiondemo.testing.tasks import wait_for_tasks

ran = []
started, release = threading.Event(), threading.Event()


@task
def record(value):
    ran.append((value, threading.current_thread().name))


@task
def fail():
    raise ValueError("the task broke")


@task
def hold():
    started.set()
    release.wait(10)


@pytest.fixture(autouse=True)
def fresh():
    ran.clear()
    started.clear()
    release.clear()
    yield
    release.set()


def test_tasks_run_in_order_on_a_thread_that_is_not_the_callers():
    for n in range(5):
        record.enqueue(n)
    wait_for_tasks()

    assert [value for value, _ in ran] == [0, 1, 2, 3, 4]
    assert {thread for _, thread in ran} == {"tasks-default"}
    assert threading.current_thread().name != "tasks-default"


def test_enqueue_returns_before_the_task_has_run():
    hold.enqueue()
    result = record.enqueue("after")
    assert started.wait(10)

    assert ran == []  # the worker is held inside the first task
    assert result.status == TaskResultStatus.READY
    release.set()
    wait_for_tasks()
    assert [value for value, _ in ran] == ["after"]


def test_a_failing_task_is_logged_and_the_next_one_still_runs(caplog):
    with caplog.at_level(logging.ERROR, logger="sessiondemo.tasks"):
        fail.enqueue()
        record.enqueue("next")
        wait_for_tasks()

    (failure,) = [r for r in caplog.records if r.name == "sessiondemo.tasks"]
    assert failure.levelno == logging.ERROR
    assert "sessiondemo.tests.test_tasks.fail" in failure.getMessage()
    assert "the task broke" in failure.exc_text
    assert [value for value, _ in ran] == ["next"]


def test_past_max_queued_a_task_is_dropped_and_logged(settings, caplog):
    settings.TASKS = {
        **settings.TASKS,
        "small": {"BACKEND": "sessiondemo.tasks.ThreadBackend", "OPTIONS": {"MAX_QUEUED": 1}},
    }
    hold.using(backend="small").enqueue()
    assert started.wait(10)  # running, so no longer queued

    queued = record.using(backend="small").enqueue("queued")
    with caplog.at_level(logging.ERROR, logger="sessiondemo.tasks"):
        dropped = record.using(backend="small").enqueue("dropped")

    assert queued.status == TaskResultStatus.READY
    assert dropped.status == TaskResultStatus.FAILED
    assert "dropped: 1 tasks are already queued" in caplog.text
    release.set()
    assert task_backends["small"].join(10)
    assert [value for value, _ in ran] == ["queued"]
