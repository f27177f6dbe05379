"""Wait for the work that task backends run off the request path."""

from django.tasks import task_backends


def wait_for_tasks(timeout=10):
    """Return once every task queued so far has run, on each backend that runs them later."""
    for backend in task_backends.all():
        join = getattr(backend, "join", None)
        if join is not None:
            assert join(timeout), f"The tasks of {backend.alias!r} still run after {timeout} s."
