"""The load test's charts, as SVG files: throughput, latency and Redis CPU against concurrent users."""

import matplotlib

matplotlib.use("Agg")  # headless: files only, no display

import matplotlib.pyplot as plt  # noqa: E402

from bench.charts import STYLE, log_axis  # noqa: E402

SERVERS = ("gunicorn", "uvicorn")


def write_all(directory, results, args):
    """Write every chart into ``directory``; return their file names, by subject."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    with plt.rc_context(STYLE):
        for name, draw in (("throughput", throughput), ("latency", latency), ("redis", redis_cpu)):
            figure = draw(measured(results), args.levels)
            if figure is None:
                continue
            filename = f"loadtest-{name}.svg"
            figure.savefig(directory / filename, format="svg", metadata={"Date": None})
            plt.close(figure)
            written[name] = filename
    return written


def measured(results):
    """Return each configuration's levels that were measured, leaving out failed ones."""
    found = {config: [lv for lv in levels if "users" in lv] for config, levels in results.items()}
    return {config: levels for config, levels in found.items() if levels}


def style(config):
    """Give each engine one colour and marker in every chart, whatever the server."""
    palette = plt.get_cmap("tab10").colors
    if config.engine == "cache":
        return {"color": palette[1], "marker": "s"}
    if config.native_async:
        return {"color": palette[0], "marker": "o"}
    return {"color": palette[2], "marker": "^", "linestyle": "dashed"}


def panels(levels, title):
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
    for axis, server in zip(axes, SERVERS, strict=True):
        axis.set_xscale("log", base=2)
        axis.set_xticks(levels, [str(n) for n in levels])
        axis.minorticks_off()
        axis.set_xlabel("concurrent users")
        axis.set_title(f"{server} ({'WSGI' if server == 'gunicorn' else 'ASGI'})")
        axis.grid(True, alpha=0.3)
    figure.suptitle(title)
    return figure, dict(zip(SERVERS, axes, strict=True))


def throughput(results, levels):
    if not results:
        return None
    figure, axes = panels(levels, "Requests per second (higher is better)")
    for config, found in results.items():
        xs = [lv["users"] for lv in found]
        axes[config.server].plot(
            xs, [lv["requests_per_second"] for lv in found], label=config.engine_label, **style(config)
        )
    axes["gunicorn"].set_ylabel("requests/s")
    axes["gunicorn"].set_ylim(bottom=0)
    for axis in axes.values():
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    return figure


def latency(results, levels):
    if not results:
        return None
    figure, axes = panels(levels, "Latency: p50 (solid) and p99 (dotted), log scale")
    for config, found in results.items():
        xs = [lv["users"] for lv in found]
        look = style(config) | {"linestyle": "solid"}
        axes[config.server].plot(xs, [lv["p50_ms"] for lv in found], label=config.engine_label, **look)
        axes[config.server].plot(xs, [lv["p99_ms"] for lv in found], **(look | {"linestyle": "dotted"}))
    log_axis(axes["gunicorn"].yaxis)  # shared: both panels
    axes["gunicorn"].set_ylabel("ms")
    for axis in axes.values():
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    return figure


def redis_cpu(results, levels):
    found = {c: lvs for c, lvs in results.items() if any(lv.get("redis_cpu_seconds") for lv in lvs)}
    if not found:
        return None
    figure, axis = plt.subplots(figsize=(10, 4), layout="constrained")
    width = 0.8 / len(found)
    for i, (config, lvs) in enumerate(found.items()):
        by_users = {lv["users"]: lv for lv in lvs}
        xs, ys = [], []
        for x, users in enumerate(levels):
            lv = by_users.get(users)
            if lv and lv["requests"]:
                xs.append(x - 0.4 + width * (i + 0.5))
                ys.append(1e6 * lv["redis_cpu_seconds"] / lv["requests"])
        look = style(config)
        hatch = "//" if config.server == "uvicorn" else None
        axis.bar(xs, ys, width, color=look["color"], hatch=hatch, edgecolor="white", label=config.label)
    axis.set_xticks(range(len(levels)), [f"{n} user{'' if n == 1 else 's'}" for n in levels])
    axis.set_ylabel("Redis CPU µs per request")
    axis.grid(True, axis="y", alpha=0.3)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=3, fontsize=8, frameon=False)
    axis.set_title("Redis CPU time per request (INFO cpu: used_cpu_sys + used_cpu_user)")
    return figure
