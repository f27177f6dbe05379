"""The previous run's goal figures, in a small JSON file beside the report: "before and after"."""

import json
from pathlib import Path


def load(path):
    """Return the run recorded at ``path`` ({"commit", "date", "goals": {key: value}}), or None."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def save(path, facts, goals):
    """Record this run's goal figures at ``path``."""
    record = {
        "commit": facts["engine (sessiondemo/sessions) at commit"],
        "date": facts["date"],
        "goals": {goal.key: goal.value for goal in goals},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
