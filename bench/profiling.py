"""
Where our engine spends a load and an update: pyinstrument's samples, as a tree and by function.

The tree gives each call's cumulative time per operation (averaged over the
operations profiled) and its share of the operation; a chain of calls that
each pass nearly all their time on to one callee is one line. The table
gives the functions whose own lines took the most time, the socket wait
for Redis's reply among them. The profiler slows the code down, code that
makes many small calls the most; the report says by how much.
"""

import dataclasses
from pathlib import Path
from time import perf_counter

from pyinstrument import Profiler

from . import workload

INTERVAL = 0.001  # seconds between samples: a shorter one triples the run time
SHOWN = 0.03  # the least share of the operation a line of the tree needs
PASSED_ON = 0.9  # the share of its time a call passes to its callee to be folded into it
OWN_ROWS = 8
ROOT = str(Path(__file__).resolve().parent.parent) + "/"


@dataclasses.dataclass
class Node:
    """One call path's samples, merged over the operations."""

    function: str
    path: str
    line: int
    time: float = 0.0
    own: float = 0.0
    children: dict = dataclasses.field(default_factory=dict)

    @property
    def label(self):
        """Return the function with its module's name: ``backend.load``, ``json.loads``."""
        if not self.path:
            return self.function
        path = Path(self.path)
        module = path.parent.name if path.stem == "__init__" else path.stem
        return f"{module}.{self.function}"


@dataclasses.dataclass
class Profile:
    """One operation's profile: how many ran, their mean time with and without the profiler."""

    operation: str
    count: int
    plain_us: float
    profiled_us: float
    tree: list  # text lines
    own: list  # (label, where, µs per operation, share)


def profile_engine(store, count):
    """Profile ``count`` loads and as many updates of ours (on sessions made first, unprofiled)."""
    keys = [workload.create(store, user_id) for user_id in range(1, count + 1)]
    items = [(store, key, user_id) for user_id, key in enumerate(keys, 1)]
    found = [profile("load", workload.load, items), profile("update", workload.update, items)]
    for key in keys:
        workload.delete(store, key)
    return found


def profile(operation, function, items):
    """Time ``function(*item)`` over ``items``, then profile it over them; return the Profile."""
    started = perf_counter()
    for item in items:
        function(*item)
    plain = perf_counter() - started
    profiler = Profiler(interval=INTERVAL)
    profiler.start()
    for item in items:
        function(*item)
    session = profiler.stop()
    name = function.__name__
    roots = [f for f in frames(session.root_frame()) if f.function == name and in_workload(f)]
    tree = Node(function.__name__, "", 0)
    for root in roots:
        merge(tree, root)
    per_op = 1e6 / len(items)
    return Profile(
        operation,
        len(items),
        plain * per_op,
        tree.time * per_op,
        render_tree(tree, per_op),
        own_times(tree, per_op),
    )


def frames(frame):
    """Yield ``frame`` and every frame below it."""
    yield frame
    for child in frame.children:
        yield from frames(child)


def in_workload(frame):
    return (frame.file_path or "").endswith("bench/workload.py")


def merge(node, frame):
    """Add ``frame``'s samples, and its callees', to ``node``."""
    node.time += frame.time
    node.own += frame.total_self_time
    for child in frame.children:
        if child.is_synthetic:
            continue  # its time is the frame's own, counted above
        key = (child.function, child.file_path or "", child.line_no or 0)
        merge(node.children.setdefault(key, Node(*key)), child)


def render_tree(root, per_op):
    """Return the tree's lines: share, µs per operation, the call (chain)."""
    lines = []

    def visit(node, depth):
        chain = [node]
        while True:
            shown = significant(chain[-1], root.time)
            if len(shown) != 1 or shown[0].time < PASSED_ON * chain[-1].time:
                break
            chain.append(shown[0])
        names = [n.label for n in chain]
        if len(names) > 3:
            names = [names[0], f"… {len(names) - 2} calls …", names[-1]]
        share = node.time / root.time
        call = "  " * depth + " → ".join(names)
        lines.append(f"{share:4.0%} {node.time * per_op:6.0f} µs  {call}")
        for child in significant(chain[-1], root.time):
            visit(child, depth + 1)

    visit(root, 0)
    return lines


def significant(node, total):
    """Return ``node``'s callees that took at least SHOWN of ``total``, the longest first."""
    found = [child for child in node.children.values() if child.time >= SHOWN * total]
    return sorted(found, key=lambda child: -child.time)


def own_times(root, per_op):
    """Return the OWN_ROWS functions with the most time in their own lines, over all call paths."""
    totals = {}

    def visit(node):
        key = (node.label, where(node))
        totals[key] = totals.get(key, 0.0) + node.own
        for child in node.children.values():
            visit(child)

    visit(root)
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:OWN_ROWS]
    return [(name, place, own * per_op, own / root.time) for (name, place), own in ranked]


def where(node):
    """Return a function's file and line, relative to site-packages, the stdlib or the project."""
    path = node.path
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/lib/python3" in path:
        path = path.split("/lib/", 1)[1]
    elif path.startswith(ROOT):
        path = path[len(ROOT) :]
    return f"{path}:{node.line}" if path else "(profiled code's caller)"
