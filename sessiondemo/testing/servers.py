"""Run the site under its production servers (deploy/), as scripts/serve runs them, for tests."""

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "scripts" / "serve"
# What scripts/serve execs for each --server, before --bind and --workers.
COMMANDS = {
    "wsgi": [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
    "asgi": [sys.executable, "deploy/uvicorn_server.py"],
}
# The environment's settings that a server must not inherit from the test run.
OWN_PREFIXES = ("DJANGO_", "REDIS_", "DATABASE_", "SESSION_", "EMAIL_", "WEB_CONCURRENCY")


def deployment_environ(*, secret_key, redis_url, database_url, static_root):
    """Return an environment for a server of the site (or scripts/serve): these settings, none of the test run's."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    environ.update(
        DJANGO_SETTINGS_MODULE="sessiondemo.settings.base",
        DJANGO_SECRET_KEY=secret_key,
        REDIS_URL=redis_url,
        DATABASE_URL=database_url,
        DJANGO_STATIC_ROOT=str(static_root),
    )
    return environ


class SiteServer:
    """
    One server of the site on 127.0.0.1:``port``, its output (stdout and stderr) in ``log_path``.

    ``interface`` is "wsgi" (gunicorn) or "asgi" (uvicorn), as scripts/serve's --server.

    ``through_serve`` starts it with scripts/serve (set-up included);
    otherwise with what scripts/serve execs, in the environment it would set:
    without DJANGO_SITE_URL, this machine over plain HTTP.
    """

    def __init__(self, interface, *, port, environ, log_path, workers, through_serve=False):
        self.interface = interface
        bind = ["--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
        if through_serve:
            self.command = [str(SERVE), "--server", interface, *bind]
            self.environ = environ
        else:
            self.command = [*COMMANDS[interface], *bind]
            self.environ = {**environ, "DJANGO_DEBUG": "false"}
            if "DJANGO_SITE_URL" not in environ:
                self.environ.update(DJANGO_SITE_URL=f"http://127.0.0.1:{port}", DJANGO_SECURE_SSL_REDIRECT="false")
        self.port = port
        self.log_path = Path(log_path)
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=90.0):
        """Start the server and return once /healthz answers 200."""
        with open(self.log_path, "wb") as log:
            # A process group of its own, for kill() to reach its workers too.
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command} exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.command} did not answer in {timeout} s:\n{self.log()}")
            time.sleep(0.05)
        return self

    def _answers(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text, timeout=30.0):
        """Wait until ``text`` appears in the server's output."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} never appeared in the server's output:\n{self.log()}")
            time.sleep(0.02)

    def kill(self):
        """Stop the server and its workers at once, if it still runs."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
