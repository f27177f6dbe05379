"""The servers under test: which there are, and starting and stopping one with scripts/serve."""

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SERVE = ROOT / "scripts" / "serve"


@dataclasses.dataclass(frozen=True)
class Config:
    """One server and session engine under test."""

    server: str  # "gunicorn" (WSGI) or "uvicorn" (ASGI)
    engine: str  # "ours" or "cache" (bench/loadtest/settings.py)
    native_async: bool = True  # ours on uvicorn: redis.asyncio (True) or sync_to_async (False)

    @property
    def key(self):
        """A short name for file names and --only: gunicorn-ours, uvicorn-ours-native, ..."""
        if self.engine == "ours" and self.server == "uvicorn":
            return f"uvicorn-ours-{'native' if self.native_async else 'sync_to_async'}"
        return f"{self.server}-{self.engine}"

    @property
    def engine_label(self):
        if self.engine == "cache":
            return "cache + django-redis"
        if self.server == "uvicorn":
            return "ours, native async" if self.native_async else "ours, sync_to_async"
        return "ours"

    @property
    def label(self):
        return f"{self.server} · {self.engine_label}"

    @property
    def interface(self):
        return "wsgi" if self.server == "gunicorn" else "asgi"

    def environment(self):
        """What the server's settings read (bench/loadtest/settings.py)."""
        return {
            "LOADTEST_ENGINE": self.engine,
            "SESSION_REDIS_NATIVE_ASYNC": "true" if self.native_async else "false",
        }


CONFIGS = [
    Config("gunicorn", "ours"),
    Config("gunicorn", "cache"),
    Config("uvicorn", "ours", native_async=True),
    Config("uvicorn", "ours", native_async=False),
    Config("uvicorn", "cache"),
]


class ServerFailed(RuntimeError):
    """Occurs when a server does not start, or dies under load."""


class Server:
    """One running scripts/serve, in its own process group, its output in ``log_path``."""

    def __init__(self, config, *, port, workers, environ, log_path):
        self.config = config
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = Path(log_path)
        command = [str(SERVE), "--server", config.interface, "--bind", f"127.0.0.1:{port}"]
        command += ["--workers", str(workers)]
        self.command = command
        self.environ = {**environ, **config.environment()}
        self.process = None

    def start(self, timeout=90.0):
        """Start the server and return once /readyz answers 200 (its Redis and database answer)."""
        if not SERVE.exists():
            raise ServerFailed(f"{SERVE.relative_to(ROOT)} is missing: it starts the servers.")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.environ,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ServerFailed(f"{self.config.label} exited with {self.process.returncode}{self.log_tail()}")
            if self.answers("/readyz"):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise ServerFailed(f"{self.config.label} was not ready in {timeout:.0f} s{self.log_tail()}")
            time.sleep(0.1)

    def answers(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=15.0):
        """Stop the server as an operator would (SIGTERM to its process group), then the hard way."""
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers that outlived their master (SIGKILL reaches the whole group).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def log_tail(self, lines=15):
        with contextlib.suppress(OSError):
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
            if tail:
                return f"; the end of {self.log_path}:\n" + "\n".join(tail)
        return ""
