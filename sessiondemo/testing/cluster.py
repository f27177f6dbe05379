"""
Start and stop a private Redis Cluster: three primaries, no replicas, on free loopback ports.

Each primary is a RedisServer (redis_server.py) started with
``--cluster-enabled yes`` in a directory of its own, where it also keeps its
``nodes-<port>.conf``; ``redis-cli --cluster create`` then shares the 16384
slots among them. With no replicas, a stopped primary is not failed over: its
slots stay uncovered, and after ``--cluster-node-timeout`` (1 s here) the
others mark the cluster down. That is what a test of an outage wants, not
what production should run (a replica per primary, a node timeout of
seconds).
"""

import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

from .redis_server import RedisServer, free_port

NODE_TIMEOUT_MS = 1000


def cluster_cli():
    """Return the path of redis-cli, which creates the cluster, or None."""
    return shutil.which("redis-cli")


class RedisClusterServers:
    """
    ``size`` cluster-enabled redis-server processes on 127.0.0.1, joined into one
    cluster by start(), with each node's files under ``directory/node-<i>``.
    """

    def __init__(self, directory, *, size=3):
        self.directory = Path(directory)
        self.cli = cluster_cli()
        if self.cli is None:
            raise RuntimeError(
                "redis-cli is not on PATH. Install Redis (Debian/Ubuntu: apt-get install "
                "redis-tools redis-server; macOS: brew install redis)."
            )
        self.nodes = []
        for i in range(size):
            node_dir = self.directory / f"node-{i}"
            node = RedisServer(node_dir)
            # A free bus port of its own (Redis 7's cluster-port), not port + 10000,
            # which may be taken or past 65535.
            node.args = [
                "--cluster-enabled", "yes",
                "--cluster-port", str(free_port()),
                "--cluster-config-file", str(node_dir / f"nodes-{node.port}.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            ]  # fmt: skip
            self.nodes.append(node)

    @property
    def addresses(self):
        """``host:port`` of every node, as redis-cli --cluster takes them."""
        return [f"127.0.0.1:{node.port}" for node in self.nodes]

    @property
    def location(self):
        """A django-redis LOCATION naming every node: the cluster client's startup nodes."""
        return ",".join(f"redis://{address}" for address in self.addresses)

    def start(self, timeout=20.0):
        """Start the nodes, create the cluster and wait until every node reports it ok."""
        try:
            for node in self.nodes:
                node.start()
            create = subprocess.run(
                [self.cli, "--cluster", "create", *self.addresses,
                 "--cluster-replicas", "0", "--cluster-yes"],
                check=False,
                capture_output=True,
                text=True,
                timeout=timeout,
            )  # fmt: skip
            if create.returncode != 0:
                raise RuntimeError(
                    f"redis-cli --cluster create failed ({create.returncode}):\n"
                    f"{create.stdout}{create.stderr}"
                )
            self.wait_until_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def cluster_state(self, node):
        """Return ``node``'s cluster_state ("ok", "fail"), or None if it does not answer."""
        try:
            with node.client(socket_timeout=1) as client:
                return client.cluster("info").get("cluster_state")
        except redis.exceptions.ConnectionError:
            return None

    def wait_until_ok(self, timeout=20.0):
        """Wait until every running node reports ``cluster_state:ok`` and knows every node."""
        deadline = time.monotonic() + timeout
        running = [node for node in self.nodes if node.process is not None]
        while True:
            if all(self._settled(node, len(self.nodes)) for node in running):
                return
            if time.monotonic() > deadline:
                states = {node.port: self.cluster_state(node) for node in running}
                raise TimeoutError(f"the cluster was not ok within {timeout} s: {states}")
            time.sleep(0.05)

    def _settled(self, node, size):
        try:
            with node.client(socket_timeout=1) as client:
                info = client.cluster("info")
        except redis.exceptions.ConnectionError:
            return False
        return info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == size

    def wait_until_down(self, timeout=10.0):
        """Wait until every running node reports ``cluster_state:fail`` (a primary is gone)."""
        deadline = time.monotonic() + timeout
        running = [node for node in self.nodes if node.process is not None]
        while not all(self.cluster_state(node) == "fail" for node in running):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not report fail within {timeout} s")
            time.sleep(0.05)

    def client(self, **kwargs):
        """Return a RedisCluster client of these nodes, separate from the site's."""
        startup = [ClusterNode("127.0.0.1", node.port) for node in self.nodes]
        return RedisCluster(startup_nodes=startup, **kwargs)

    def node_of(self, key):
        """Return the node (a RedisServer) whose slots hold ``key``."""
        with self.nodes[0].client(socket_timeout=1) as client:
            slot = client.cluster("keyslot", key)
            for start, end, primary, *_ in client.cluster("slots"):
                if start <= slot <= end:
                    return next(n for n in self.nodes if n.port == int(primary[1]))
        raise LookupError(f"no node serves the slot of {key!r}")

    def flush(self):
        """Empty every running node."""
        for node in self.nodes:
            if node.process is not None:
                with node.client(socket_timeout=1) as client:
                    client.flushall()

    def stop(self):
        """Stop every node the hard way (SIGKILL), as a crash would."""
        for node in self.nodes:
            node.stop()
