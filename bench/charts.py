"""The report's charts, as SVG files: latency, Redis time, memory per session, clearsessions."""

import matplotlib

matplotlib.use("Agg")  # headless: files only, no display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

from .measure import OPERATIONS  # noqa: E402

# Text stays text, and ids do not change from run to run, so the files diff well.
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "sessiondemo-bench", "font.size": 9}
WEB_OPERATIONS = {"read": "GET, reads the session", "write": "GET, writes the session",
                  "login": "login form POST"}  # fmt: skip
OPERATION_NAMES = {"create": "create", "load": "load", "update": "update", "delete": "logout"}


def label(engine):
    return engine.label.strip("*")


def colours(results):
    """Give each engine one colour in every chart."""
    palette = plt.get_cmap("tab10").colors
    return {r.engine: palette[i % len(palette)] for i, r in enumerate(results)}


def write_all(directory, results, prune_runs):
    """Write every chart into ``directory``; return their file names, by subject."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    with plt.rc_context(STYLE):
        for name, draw in (
            ("latency", latency),
            ("redis-time", redis_time),
            ("memory", memory),
            ("clearsessions", clearsessions),
        ):
            figure = draw(results, prune_runs)
            if figure is None:
                continue
            filename = f"{name}.svg"
            figure.savefig(directory / filename, format="svg", metadata={"Date": None})
            plt.close(figure)
            written[name] = filename
    return written


def log_axis(axis):
    """Make ``axis`` logarithmic, with ticks at 1, 2 and 5 of each decade, labelled plainly."""
    axis.axes.set_xscale("log") if axis.axis_name == "x" else axis.axes.set_yscale("log")
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def latency(results, prune_runs):
    """One panel per operation: the share of operations (y) done within a latency (x, log)."""
    colour = colours(results)
    panels = [(op, OPERATION_NAMES[op], "speed") for op in OPERATIONS]
    panels += [(op, name, "web") for op, name in WEB_OPERATIONS.items()]
    figure, axes = plt.subplots(2, 4, figsize=(12, 6), sharey=True, layout="constrained")
    for axis, (op, title, kind) in zip(axes.flat, panels):
        for r in results:
            timing = (getattr(r, kind) or {}).get(op)
            if timing is None or not timing.quantiles_ms:
                continue
            count = len(timing.quantiles_ms)
            shares = [(i + 1) / (count + 1) for i in range(count)]
            axis.plot(timing.quantiles_ms, shares, color=colour[r.engine], label=label(r.engine))
        log_axis(axis.xaxis)
        axis.set_title(title if kind == "speed" else f"{title} (end to end)")
        axis.set_xlabel("latency (ms)")
        axis.grid(True, which="both", alpha=0.3)
    for axis in axes[:, 0]:
        axis.set_ylabel("share of operations")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[-1].axis("off")
    axes.flat[-1].legend(handles, labels, loc="center", frameon=False)
    figure.suptitle("Latency distribution (CDF), engine API and through the site")
    return figure


def redis_time(results, prune_runs):
    """Redis's execution time per operation and Redis engine, on a log scale; our targets marked."""
    colour = colours(results)
    found = [r for r in results if r.speed and r.engine.uses_redis]
    columns = [(op, OPERATION_NAMES[op], "speed") for op in OPERATIONS]
    columns += [(op, name, "web") for op, name in WEB_OPERATIONS.items()]
    figure, axis = plt.subplots(figsize=(12, 4.5), layout="constrained")
    width = 0.8 / len(found)
    for i, r in enumerate(found):
        xs, ys = [], []
        for x, (op, _, kind) in enumerate(columns):
            timing = (getattr(r, kind) or {}).get(op)
            if timing is not None and timing.cost.redis_usec > 0:
                xs.append(x - 0.4 + width * (i + 0.5))
                ys.append(timing.cost.redis_usec)
        axis.bar(xs, ys, width, color=colour[r.engine], label=label(r.engine))
    targets = {"load": 5, "update": 20, "login": 40}
    for x, (op, _, _) in enumerate(columns):
        if op in targets:
            axis.hlines(targets[op], x - 0.45, x + 0.45, colors="black", linestyles="dashed")
    axis.plot([], [], color="black", linestyle="dashed", label="issue 8's target for ours")
    axis.set_xticks(range(len(columns)), [name for _, name, _ in columns])
    log_axis(axis.yaxis)
    axis.set_ylabel("Redis µs per operation (INFO commandstats)")
    axis.grid(True, axis="y", which="both", alpha=0.3)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncols=5, fontsize=8, frameon=False)
    axis.set_title("Redis execution time per operation (the commands clients sent)")
    return figure


def memory(results, prune_runs):
    """Redis's used_memory per logged-in session, on Redis's default and the README's config."""
    found = [r for r in results if r.memory and r.memory.redis_used_memory]
    if not found:
        return None
    figure, axis = plt.subplots(figsize=(8, 3.5), layout="constrained")
    configurations = (("memory_default", "Redis's default configuration"),
                      ("memory", "the README's configuration"))  # fmt: skip
    for i, (attribute, name) in enumerate(configurations):
        ys, values = [], []
        for y, r in enumerate(found):
            if getattr(r, attribute) is not None:
                ys.append(y + 0.2 * (1 - 2 * i))
                values.append(getattr(r, attribute).redis_used_memory)
        bars = axis.barh(ys, values, 0.4, label=name)
        axis.bar_label(bars, fmt="{:,.0f} B", padding=3, fontsize=8)
    axis.set_yticks(range(len(found)), [label(r.engine) for r in found])
    axis.invert_yaxis()
    axis.set_xlabel("bytes per logged-in session (used_memory Δ)")
    axis.margins(x=0.15)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2, fontsize=8, frameon=False)
    axis.set_title("Memory per session")
    return figure


def clearsessions(results, prune_runs):
    """clearsessions' wall time against index entries, in an empty database and beside others."""
    figure, axis = plt.subplots(figsize=(7, 4), layout="constrained")
    backgrounds = sorted({run.unrelated for run in prune_runs})
    largest = 0
    for unrelated in backgrounds:
        points = sorted((run.entries, run.seconds) for run in prune_runs
                        if run.label == "half stale" and run.unrelated == unrelated)  # fmt: skip
        name = f"beside {unrelated:,} unrelated keys" if unrelated else "empty database"
        axis.plot(*zip(*points), marker="o", label=name)
        largest = max(largest, points[-1][0])
    axis.plot([0, largest], [0, 5 * largest / 1e6], color="black", linestyle="dashed",
              label="target: 5 s per million entries")  # fmt: skip
    axis.set_xlabel("index entries (half of them stale)")
    axis.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    axis.set_ylabel("seconds")
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title("clearsessions (ours): wall time against index size")
    return figure
