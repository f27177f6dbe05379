"""Start and stop private redis-server processes on free loopback ports."""

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import redis


# What the README recommends for a session Redis: never evict a session, and
# keep a session hash (values up to a 512-byte User-Agent) in the compact
# listpack encoding, about half the memory of a hashtable.
RECOMMENDED_CONFIG = ["--maxmemory-policy", "noeviction"]


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TLSFiles(NamedTuple):
    """PEM files for a TLS redis-server: its certificate chain, its key, the CA clients trust."""

    cert: Path
    key: Path
    ca: Path


class RedisServer:
    """
    A redis-server of our own, on 127.0.0.1 and a free port, with its files in ``directory``.

    ``username``/``password`` are what this helper's own clients (the start-up
    probe, client()) log in with: pass them when ``args`` lock the server
    down (``--requirepass``, ``--aclfile``). With ``tls`` the server listens
    for TLS only, on ``port``, and does not ask clients for certificates.
    """

    def __init__(self, directory, *, port=None, args=(), username=None, password=None, tls=None):
        self.directory = Path(directory)
        self.port = port or free_port()
        self.args = list(args)
        self.username = username
        self.password = password
        self.tls = tls
        self.process = None
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError(
                "redis-server is not on PATH. Install it (Debian/Ubuntu: apt-get "
                "install redis-server; macOS: brew install redis)."
            )

    @property
    def url(self):
        """The server's URL, without credentials: ``redis://`` or, with TLS, ``rediss://``."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    @property
    def log_path(self):
        return self.directory / "redis.log"

    def client(self, **kwargs):
        """Return a client of this server, separate from the site's pool; ``kwargs`` override."""
        options = {"host": "127.0.0.1", "port": self.port}
        if self.username is not None:
            options["username"] = self.username
        if self.password is not None:
            options["password"] = self.password
        if self.tls:
            options.update(ssl=True, ssl_ca_certs=str(self.tls.ca), ssl_cert_reqs="required")
        options.update(kwargs)
        return redis.Redis(**options)

    def _listen_args(self):
        if not self.tls:
            return ["--port", str(self.port)]
        return [
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.tls.cert),
            "--tls-key-file", str(self.tls.key),
            "--tls-ca-cert-file", str(self.tls.ca),
            "--tls-auth-clients", "no",
        ]  # fmt: skip

    def start(self, timeout=10.0):
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary,
            *self._listen_args(),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(self.log_path),
            *RECOMMENDED_CONFIG,
            *self.args,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        probe = self.client(socket_timeout=1)
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited with {self.process.returncode}: "
                        f"{self.process.stderr.read().decode(errors='replace')}{self._log_tail()}"
                    )
                try:
                    if probe.ping():
                        return self
                except redis.exceptions.AuthenticationError as e:
                    self.stop()
                    raise RuntimeError(
                        f"redis-server on port {self.port} refused this helper's credentials: {e}"
                    ) from e
                except redis.exceptions.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"redis-server did not answer on port {self.port} in {timeout} s"
                        f"{self._log_tail()}"
                    )
                time.sleep(0.02)
        finally:
            probe.close()

    def _log_tail(self, lines=5):
        with contextlib.suppress(OSError):
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
            return "\nredis.log: " + "\n".join(tail) if tail else ""
        return ""

    def stop(self):
        """Stop the server the hard way (no save on exit), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._forget_process()

    def shutdown(self, timeout=10.0):
        """Stop the server as an operator would: SIGTERM, so it flushes its AOF and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=timeout)
        self._forget_process()

    def _forget_process(self):
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None


@contextlib.contextmanager
def silent_redis():
    """Yield the URL of a socket that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
