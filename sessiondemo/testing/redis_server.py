"""Start and stop private redis-server processes on free loopback ports."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of our own, on 127.0.0.1 and a free port, with its files in ``directory``."""

    def __init__(self, directory, *, port=None, args=()):
        self.directory = Path(directory)
        self.port = port or free_port()
        self.args = list(args)
        self.process = None
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError(
                "redis-server is not on PATH. Install it (Debian/Ubuntu: apt-get "
                "install redis-server; macOS: brew install redis)."
            )

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs):
        """Return a plain client of this server, separate from the site's pool."""
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def start(self, timeout=10.0):
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(self.directory / "redis.log"),
            *self.args,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        probe = self.client(socket_timeout=1)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}: "
                    f"{self.process.stderr.read().decode(errors='replace')}"
                )
            try:
                if probe.ping():
                    probe.close()
                    return self
            except redis.exceptions.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout} s")
            time.sleep(0.02)

    def stop(self):
        """Stop the server the hard way (no save on exit), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
