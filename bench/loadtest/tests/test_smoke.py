"""
A short load test end to end: gunicorn with our engine, two users, a few seconds (about 20 s).

Not part of `make test` (pytest.ini's testpaths leave bench/ out, and the suite's
requirements have no locust); run it with `.venv/bin/python -m pytest bench/loadtest`
after `make loadtest` has installed requirements-loadtest.txt.
"""

import importlib.util
import json

import pytest

from bench.loadtest import run

# Not imported here: importing locust patches this process for gevent.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="locust is not installed (make loadtest installs it)"
)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """Run the load test once; return its one level's figures, its goals and the docs folder."""
    docs = tmp_path_factory.mktemp("docs")
    argv = ["--only", "gunicorn-ours", "--levels", "2", "--warm-up", "1", "--seconds", "3"]
    results, goals = run.main([*argv, "--output", str(docs / "loadtest.md"), "--workdir", str(docs / "work")])
    ((config, (level,)),) = results.items()
    assert config.key == "gunicorn-ours"
    return level, goals, docs


def test_it_measures_and_writes_the_report_its_charts_and_figures(short_run):
    level, _, docs = short_run
    assert level["users"] == 2
    assert level["requests"] > 0
    assert level["redis_cpu_seconds"] > 0
    assert level["server_cpu_seconds"] > 0
    assert "| gunicorn | ours | 2 |" in (docs / "loadtest.md").read_text()
    for chart in ("throughput", "latency", "redis"):
        assert (docs / "bench" / f"loadtest-{chart}.svg").exists()
    figures = json.loads((docs / "bench" / "loadtest-last.json").read_text())
    assert figures["results"]["gunicorn-ours"][0]["users"] == 2


def test_every_request_gets_the_answer_the_flow_expects(short_run):
    level, goals, _ = short_run
    assert (level["errors"], level["server_errors"]) == (0, 0), level["error_messages"]
    assert level["iterations"] > 0
    assert goals[0].holds
