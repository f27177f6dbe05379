"""
Start and stop a private Redis Cluster on free loopback ports: primaries, and replicas if asked.

Each node is a RedisServer (redis_server.py) started with
``--cluster-enabled yes`` in a directory of its own, where it also keeps its
``nodes-<port>.conf``; ``redis-cli --cluster create`` then shares the 16384
slots among the primaries and gives each ``replicas`` replicas. Without
replicas, a stopped primary is not failed over: its slots stay uncovered, and
after ``--cluster-node-timeout`` (1 s here) the others mark the cluster down,
which is what a test of an outage wants. With a replica per primary (what
production should run, with a node timeout of seconds), a SIGKILLed primary's
replica takes its slots over after the node timeout and an election.

The helpers for growing and resharding (add_primary(), reshard(),
rebalance()) run ``redis-cli --cluster`` as an operator would.

``python -m sessiondemo.testing.cluster`` (``make cluster``) runs one in the
foreground for trying the site on it by hand, and stops it on Ctrl-C.
"""

import argparse
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

from .redis_server import RedisServer, free_port

NODE_TIMEOUT_MS = 1000
# A replica's first full sync at once, not after Redis 7's default 5 s wait
# for more replicas to share a diskless transfer.
QUICK_SYNC = ["--repl-diskless-sync-delay", "0"]


def cluster_cli():
    """Return the path of redis-cli, which creates the cluster, or None."""
    return shutil.which("redis-cli")


class RedisClusterServers:
    """
    ``size`` primaries with ``replicas`` replicas each, cluster-enabled
    redis-server processes on 127.0.0.1 joined into one cluster by start(),
    with each node's files under ``directory/node-<i>``.
    """

    def __init__(self, directory, *, size=3, replicas=0, node_timeout_ms=NODE_TIMEOUT_MS, tls=None):
        self.directory = Path(directory)
        self.replicas = replicas
        # TLSFiles: every node speaks only TLS, to clients and to each other (bus, replication).
        self.tls = tls
        self.node_timeout_ms = node_timeout_ms
        self.cli = cluster_cli()
        if self.cli is None:
            raise RuntimeError(
                "redis-cli is not on PATH. Install Redis (Debian/Ubuntu: apt-get install "
                "redis-tools redis-server; macOS: brew install redis)."
            )
        self.nodes = [self._new_node(i) for i in range(size * (1 + replicas))]

    def _new_node(self, index):
        node_dir = self.directory / f"node-{index}"
        node = RedisServer(node_dir, tls=self.tls)
        # A free bus port of its own (Redis 7's cluster-port), not port + 10000,
        # which may be taken or past 65535.
        node.args = [
            "--cluster-enabled", "yes",
            "--cluster-port", str(free_port()),
            "--cluster-config-file", str(node_dir / f"nodes-{node.port}.conf"),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            *QUICK_SYNC,
        ]  # fmt: skip
        if self.tls:
            node.args += ["--tls-cluster", "yes", "--tls-replication", "yes"]
        return node

    @property
    def addresses(self):
        """``host:port`` of every node, as redis-cli --cluster takes them."""
        return [address(node) for node in self.nodes]

    @property
    def location(self):
        """A django-redis LOCATION naming every node: the cluster client's startup nodes."""
        scheme = "rediss" if self.tls else "redis"
        return ",".join(f"{scheme}://{address}" for address in self.addresses)

    @property
    def running(self):
        """The nodes whose process runs."""
        return [node for node in self.nodes if node.process is not None]

    def start(self, timeout=20.0):
        """Start the nodes, create the cluster and wait until every node reports it ok."""
        try:
            for node in self.nodes:
                node.start()
            self._cli(
                "create", *self.addresses, "--cluster-replicas", str(self.replicas),
                "--cluster-yes", timeout=timeout,
            )  # fmt: skip
            self.wait_until_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _cli(self, *args, timeout=60.0):
        """Run ``redis-cli --cluster <args>``; return its output, or raise with it."""
        tls = ["--tls", "--cacert", str(self.tls.ca)] if self.tls else []
        done = subprocess.run(
            [self.cli, *tls, "--cluster", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster {args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
        return done.stdout

    # -- What the cluster reports ------------------------------------------------------

    def cluster_state(self, node):
        """Return ``node``'s cluster_state ("ok", "fail"), or None if it does not answer."""
        try:
            with node.client(socket_timeout=1) as client:
                return client.cluster("info").get("cluster_state")
        except redis.exceptions.ConnectionError:
            return None

    def _settled(self, node, size):
        try:
            with node.client(socket_timeout=1) as client:
                info = client.cluster("info")
                if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != size:
                    return False
                replication = client.info("replication")
        except redis.exceptions.ConnectionError:
            return False
        # A replica counts once its first sync is done: before, it could not take over.
        return replication["role"] == "master" or (
            replication.get("master_link_status") == "up" and not replication.get("master_sync_in_progress")
        )

    def wait_until_ok(self, timeout=20.0):
        """Wait until every running node reports ``cluster_state:ok``, knows every node and has synced."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self._settled(node, len(self.nodes)) for node in self.running):
                return
            if time.monotonic() > deadline:
                states = {node.port: self.cluster_state(node) for node in self.running}
                raise TimeoutError(f"the cluster was not ok within {timeout} s: {states}")
            time.sleep(0.05)

    def wait_until_down(self, timeout=10.0):
        """Wait until every running node reports ``cluster_state:fail`` (a primary is gone)."""
        deadline = time.monotonic() + timeout
        while not all(self.cluster_state(node) == "fail" for node in self.running):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not report fail within {timeout} s")
            time.sleep(0.05)

    def node_ids(self):
        """Return {port: node id} as a running node's CLUSTER NODES names them."""
        nodes = self._ask_a_node(lambda client: client.cluster("nodes"), decode_responses=True)
        return {int(name.rsplit(":", 1)[1].split("@")[0]): entry["node_id"] for name, entry in nodes.items()}

    def _layout(self):
        """Return [(first slot, last slot, port of its primary)] as a running node's CLUSTER SLOTS has it."""
        layout = self._ask_a_node(lambda client: client.cluster("slots"))
        return [(first, last, int(primary[1])) for first, last, primary, *_ in layout]

    def _ask_a_node(self, question, **kwargs):
        """Return what ``question(client)`` answers on the first running node that answers."""
        for node in self.running:
            try:
                with node.client(socket_timeout=1, **kwargs) as client:
                    return question(client)
            except redis.exceptions.ConnectionError:
                continue
        raise RuntimeError("no node of the cluster answers")

    def primaries(self):
        """Return the running nodes that serve slots, as the cluster's layout names them."""
        owners = {port for _first, _last, port in self._layout()}
        return [node for node in self.running if node.port in owners]

    def replica_of(self, primary):
        """Return the running node that replicates ``primary`` (a RedisServer), or None."""
        for node in self.running:
            if node is primary:
                continue
            try:
                with node.client(socket_timeout=1) as client:
                    info = client.info("replication")
            except redis.exceptions.ConnectionError:
                continue
            if info["role"] == "slave" and int(info["master_port"]) == primary.port:
                return node
        return None

    def is_primary(self, node):
        """Return whether ``node`` answers that it is a primary (ROLE)."""
        try:
            with node.client(socket_timeout=1) as client:
                return client.execute_command("ROLE")[0] in (b"master", "master")
        except redis.exceptions.ConnectionError:
            return False

    def client(self, **kwargs):
        """Return a RedisCluster client of these nodes, separate from the site's."""
        startup = [ClusterNode("127.0.0.1", node.port) for node in self.running]
        if self.tls:
            kwargs = {"ssl": True, "ssl_ca_certs": str(self.tls.ca), **kwargs}
        return RedisCluster(startup_nodes=startup, **kwargs)

    def slot_owner(self, slot):
        """Return the node (a RedisServer) that serves ``slot``, as a running node sees it."""
        for first, last, port in self._layout():
            if first <= slot <= last:
                return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"no node serves slot {slot}")

    def slots_of(self, node):
        """Return the slot ranges [(first, last)] that ``node`` serves, as a running node sees it."""
        return [(first, last) for first, last, port in self._layout() if port == node.port]

    def node_of(self, key):
        """Return the node (a RedisServer) whose slots hold ``key``."""
        return self.slot_owner(self.keyslot(key))

    def flush(self):
        """Empty every running primary (its replicas follow)."""
        for node in self.running:
            if self.is_primary(node):
                with node.client(socket_timeout=1) as client:
                    client.flushall()

    # -- Growing and resharding, as an operator would ----------------------------------

    def add_primary(self, timeout=20.0):
        """Start a new node, add it to the cluster as a primary with no slots, and return it."""
        node = self._new_node(len(self.nodes))
        self.nodes.append(node)
        node.start()
        self._cli("add-node", address(node), address(self.running[0]), timeout=timeout)
        self.wait_until_ok(timeout)
        return node

    def reshard(self, source, target, slots, timeout=120.0):
        """Move ``slots`` slots from the primary ``source`` to the primary ``target`` (MIGRATE, key by key)."""
        ids = self.node_ids()
        return self._cli(
            "reshard", address(source),
            "--cluster-from", ids[source.port], "--cluster-to", ids[target.port],
            "--cluster-slots", str(slots), "--cluster-yes", timeout=timeout,
        )  # fmt: skip

    def rebalance(self, weights=None, timeout=120.0):
        """
        Share the slots among the primaries, giving empty ones their share.

        ``weights`` ({node: weight}, 1 for the others) as redis-cli's
        --cluster-weight: a primary of weight 0.5 gets half the slots of one of 1.
        """
        ids = self.node_ids()
        weighed = [f"{ids[node.port]}={weight}" for node, weight in (weights or {}).items()]
        return self._cli(
            "rebalance", address(self.running[0]), "--cluster-use-empty-masters",
            *(["--cluster-weight", *weighed] if weighed else []), timeout=timeout,
        )  # fmt: skip

    # One slot's migration by hand, in the steps redis-cli --cluster takes, for tests
    # that hold a slot half-way.

    def keyslot(self, key):
        """Return the slot of ``key``."""
        return self._ask_a_node(lambda client: client.cluster("keyslot", key))

    def begin_migration(self, slot, source, target):
        """Mark ``slot`` importing on ``target`` and migrating on ``source``: keys not yet moved stay on ``source``."""
        ids = self.node_ids()
        with target.client(socket_timeout=1) as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
        with source.client(socket_timeout=1) as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])

    def migrate_keys(self, slot, source, target):
        """Move every key of ``slot`` from ``source`` to ``target`` (MIGRATE)."""
        with source.client(socket_timeout=5) as client:
            while keys := client.cluster("getkeysinslot", slot, 100):
                client.execute_command(
                    "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys
                )

    def finish_migration(self, slot, target):
        """Give ``slot`` to ``target``, telling it first, then every other primary (as redis-cli does)."""
        node_id = self.node_ids()[target.port]
        for node in [target, *(n for n in self.primaries() if n is not target)]:
            with node.client(socket_timeout=1) as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", node_id)

    def abandon_migration(self, slot, *nodes):
        """Clear the migrating and importing marks of ``slot`` on ``nodes`` (redis-cli --cluster fix's way out)."""
        for node in nodes:
            with node.client(socket_timeout=1) as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")

    def errors(self, node, error):
        """Return how many ``error`` replies (``"TRYAGAIN"``, ``"ASK"``, ``"MOVED"``) ``node`` has sent since it started."""
        with node.client(socket_timeout=1) as client:
            stats = client.info("errorstats")
        return int(stats.get(f"errorstat_{error}", {}).get("count", 0))

    def stop(self):
        """Stop every node the hard way (SIGKILL), as a crash would."""
        for node in self.nodes:
            node.stop()


def address(node):
    """Return ``host:port`` of ``node``, as redis-cli --cluster takes it."""
    return f"127.0.0.1:{node.port}"


def main(argv=None):
    """Run a cluster in the foreground until Ctrl-C, printing the settings that point the site at it."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--primaries", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=1, help="replicas per primary (default 1)")
    parser.add_argument("--dir", help="where the nodes keep their files (default: a temporary directory, removed at the end)")
    options = parser.parse_args(argv)
    temporary = None if options.dir else tempfile.TemporaryDirectory(prefix="sessiondemo-cluster-")
    directory = options.dir or temporary.name
    servers = RedisClusterServers(directory, size=options.primaries, replicas=options.replicas)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    try:
        servers.start()
        ports = [node.port for node in servers.primaries()]
        print(
            f"Redis Cluster: {options.primaries} primaries (ports {', '.join(map(str, ports))}), "
            f"{options.replicas} replica(s) each, node timeout {servers.node_timeout_ms} ms; "
            f"files in {directory}.\n"
            "Point the site at it, in another shell:\n\n"
            f"  export REDIS_CLUSTER=true REDIS_URL={servers.location}\n"
            "  export DJANGO_DEBUG=true\n"
            "  .venv/bin/python manage.py migrate && .venv/bin/python manage.py demo_account\n"
            "  .venv/bin/python manage.py runserver localhost:8000\n\n"
            "Fail a primary over: kill -9 <pid> (ps -o pid,args -C redis-server); its replica takes\n"
            "over in about 3 s. Ctrl-C here stops every node.",
            flush=True,
        )
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        servers.stop()
        if temporary is not None:
            temporary.cleanup()
        print("Stopped the cluster.")


if __name__ == "__main__":
    main()
