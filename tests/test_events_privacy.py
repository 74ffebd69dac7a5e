"""A reader's event records are in their export and gone after `compose subscribers forget`."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from doubles.delivery_project import make_project, run

from composer.events.apply import apply_events
from composer.events.store import Event, EventStore
from composer.project import load_project


def test_export_includes_and_forget_erases_event_records(tmp_path: Path) -> None:
    root = make_project(tmp_path, [("ana@example.org", "Ana"), ("ben@example.org", "Ben")])
    project = load_project(root)
    now = time.time()
    with EventStore.for_state_dir(project.state_dir()) as store:
        apply_events(project, store, [
            Event("e-1", "x", "ana@example.org", "delivered", now, list="main"),
            Event("e-2", "x", "ana@example.org", "soft_bounce", now, "4.2.2 full", list="main"),
            Event("e-3", "x", "ben@example.org", "delivered", now, list="main"),
        ])  # fmt: skip
    exported = json.loads(run(root, "subscribers", "export", "Ana@example.org").stdout)
    kinds = sorted(e["kind"] for e in exported["deliveries"]["events.sqlite:events"])
    assert kinds == ["delivered", "soft_bounce"]
    assert exported["deliveries"]["events.sqlite:soft_streaks"][0]["email"] == "ana@example.org"

    forgot = run(root, "subscribers", "forget", "ana@example.org")
    assert forgot.code == 0, forgot.stderr
    with sqlite3.connect(root / ".compose" / "events.sqlite") as db:
        left = db.execute("SELECT email FROM events UNION SELECT email FROM soft_streaks")
        assert [row[0] for row in left] == ["ben@example.org"]
