"""
Start and stop a private Redis Sentinel on a free loopback port, and watch its failovers.

A sentinel monitors one primary under a service name (``mymaster``) with a
quorum of 1 (or ``quorum``) and short timeouts, so that a killed primary is
failed over in a few seconds. Production runs three or more sentinels with a
quorum of 2 and ``down-after-milliseconds`` of seconds; so can a test:
several SentinelServer of one primary find each other through it
(wait_for_sentinels()).
"""

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import redis

from .redis_server import free_port

SERVICE = "mymaster"


def sentinel_command():
    """
    Return the command that starts a sentinel, before its config file, or None.

    ``redis-sentinel <conf>`` where that binary exists, else ``redis-server
    <conf> --sentinel`` (the same program in sentinel mode).
    """
    if binary := shutil.which("redis-sentinel"):
        return [binary]
    if binary := shutil.which("redis-server"):
        return [binary, "--sentinel"]
    return None


class SentinelServer:
    """
    A redis sentinel of our own on 127.0.0.1 and a free port, monitoring
    ``primary_port`` as ``service``, with its config and log in ``directory``.

    A sentinel rewrites its config file (what it learns of replicas and
    failovers), so the file lives in ``directory``, never in the project.
    """

    def __init__(
        self,
        directory,
        primary_port,
        *,
        service=SERVICE,
        port=None,
        down_after_ms=300,
        failover_timeout_ms=5000,
        quorum=1,
        password=None,
        tls=None,
    ):
        self.directory = Path(directory)
        self.primary_port = primary_port
        self.service = service
        self.port = port or free_port()
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.quorum = quorum
        # What clients must give the sentinel itself (requirepass), if anything.
        self.password = password
        # TLSFiles of a primary and replicas that speak only TLS: the sentinel talks TLS to them.
        self.tls = tls
        self.process = None
        self.command = sentinel_command()
        if self.command is None:
            raise RuntimeError(
                "Neither redis-sentinel nor redis-server is on PATH. Install Redis "
                "(Debian/Ubuntu: apt-get install redis-server redis-sentinel; macOS: "
                "brew install redis)."
            )

    @property
    def address(self):
        """The (host, port) pair django-redis's SENTINELS option takes."""
        return ("127.0.0.1", self.port)

    @property
    def config_path(self):
        return self.directory / "sentinel.conf"

    @property
    def log_path(self):
        return self.directory / "sentinel.log"

    def client(self, **kwargs):
        """Return a client of this sentinel (it speaks the Redis protocol)."""
        return redis.Redis(host="127.0.0.1", port=self.port, **{"password": self.password, **kwargs})

    def _config(self):
        service = self.service
        return "\n".join(
            [
                f"port {self.port}",
                "bind 127.0.0.1",
                "daemonize no",
                f"dir {self.directory}",
                f"logfile {self.log_path}",
                f"sentinel monitor {service} 127.0.0.1 {self.primary_port} {self.quorum}",
                f"sentinel down-after-milliseconds {service} {self.down_after_ms}",
                f"sentinel failover-timeout {service} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {service} 1",
                *([f"requirepass {self.password}"] if self.password else []),
                *(
                    [
                        "tls-replication yes",
                        f"tls-cert-file {self.tls.cert}",
                        f"tls-key-file {self.tls.key}",
                        f"tls-ca-cert-file {self.tls.ca}",
                    ]
                    if self.tls
                    else []
                ),
                "",
            ]
        )

    def start(self, timeout=10.0):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config())
        binary, *mode = self.command
        self.process = subprocess.Popen(
            [binary, str(self.config_path), *mode],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        probe = self.client(socket_timeout=1)
        try:
            self._poll(
                lambda: self._ping(probe),
                timeout,
                f"the sentinel did not answer on port {self.port}",
            )
        except BaseException:
            self.stop()
            raise
        finally:
            probe.close()
        return self

    def _ping(self, probe):
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the sentinel exited with {self.process.returncode}: "
                f"{self.process.stderr.read().decode(errors='replace')}{self._log_tail()}"
            )
        try:
            return probe.ping()
        except redis.exceptions.ConnectionError:
            return False

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def _log_tail(self, lines=15):
        with contextlib.suppress(OSError):
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
            return "\nsentinel.log:\n" + "\n".join(tail) if tail else ""
        return ""

    def _poll(self, probe, timeout, failure):
        """Call ``probe`` until it returns something truthy; return that, or fail at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"{failure} within {timeout} s{self._log_tail()}")
            time.sleep(0.05)

    # What the sentinel reports.

    def primary_address(self):
        """Return the (host, port) the sentinel names as the primary, or None."""
        with self.client(socket_timeout=1) as client:
            reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        if not reply:
            return None
        host, port = reply
        return (host.decode() if isinstance(host, bytes) else host, int(port))

    def primary_flags(self):
        """Return the sentinel's flags for the primary: {"master"} when it is up and linked."""
        with self.client(socket_timeout=1, decode_responses=True) as client:
            reply = client.execute_command("SENTINEL", "MASTER", self.service)
        return _flags(_as_dict(reply))

    def replicas(self):
        """Return the sentinel's view of the replicas: a dict per replica (ip, port, flags, ...)."""
        with self.client(socket_timeout=1, decode_responses=True) as client:
            reply = client.execute_command("SENTINEL", "REPLICAS", self.service)
        return [_as_dict(replica) for replica in reply]

    def serves(self, port):
        """
        Return True if the sentinel names 127.0.0.1:``port`` as the primary and holds it up.

        Naming is not enough: right after a failover the sentinel names the
        new primary before it has a link to it, and with a
        ``down-after-milliseconds`` below its one-second reconnect period it
        may then flag it down (s_down, o_down) for a moment. redis-py refuses
        a primary flagged so (MasterNotFoundError), so clients can count on
        the new primary only once its flags are just "master".
        """
        return self.primary_address() == ("127.0.0.1", port) and self.primary_flags() == {"master"}

    def wait_for_replicas(self, ports, timeout=15.0):
        """Wait until the sentinel knows each replica in ``ports`` and holds it up and linked."""

        def ready():
            found = {int(r["port"]): r for r in self.replicas()}
            return all(
                port in found
                and _flags(found[port]) == {"slave"}
                and str(found[port].get("master-link-status", "")).lower() == "ok"
                for port in ports
            )

        self._poll(ready, timeout, f"the sentinel did not see replicas {list(ports)} up")

    def other_sentinels(self):
        """Return how many other sentinels of the service this one knows."""
        with self.client(socket_timeout=1, decode_responses=True) as client:
            reply = client.execute_command("SENTINEL", "MASTER", self.service)
        return int(_as_dict(reply).get("num-other-sentinels", 0))

    def wait_for_sentinels(self, count, timeout=15.0):
        """Wait until this sentinel knows ``count`` other sentinels (they announce themselves every 2 s)."""
        self._poll(
            lambda: self.other_sentinels() >= count,
            timeout,
            f"the sentinel did not learn of {count} other sentinel(s)",
        )

    def wait_for_primary(self, port, timeout=15.0):
        """Wait until the sentinel serves 127.0.0.1:``port`` as the primary (see serves())."""
        self._poll(
            lambda: self.serves(port),
            timeout,
            f"the sentinel did not serve port {port} as the primary",
        )

    def wait_for_failover(self, old_port, timeout=15.0):
        """Wait until the sentinel serves a primary other than ``old_port``; return its (host, port)."""

        def moved():
            address = self.primary_address()
            if address is None or address[1] == old_port:
                return None
            return address if self.serves(address[1]) else None

        return self._poll(moved, timeout, f"the sentinel did not fail over from port {old_port}")


def _as_dict(reply):
    """Return a sentinel's description of an instance as a dict, whichever way redis-py parsed it."""
    return reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))


def _flags(replica):
    flags = replica.get("flags", "")
    if isinstance(flags, str):
        flags = flags.split(",")
    return {flag for flag in flags if flag}


def wait_until_replicated(server, timeout=10.0):
    """Wait until ``server`` (a RedisServer started as a replica) has finished its first sync."""
    deadline = time.monotonic() + timeout
    with server.client(socket_timeout=1) as client:
        while True:
            info = client.info("replication")
            if info.get("master_link_status") == "up" and not info.get("master_sync_in_progress"):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica on port {server.port} did not sync in {timeout} s")
            time.sleep(0.05)
