"""Notice edits by polling modification times: works on every filesystem, editor and mount."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

logger = logging.getLogger("composer.web.preview")

# What a file looks like from outside: changes to any of these mean it was written.
Stamp = tuple[int, int, int]  # (mtime_ns, size, inode)
# Polling rather than inotify/FSEvents (watchdog): it sees saves on every filesystem, network or
# container mount and editor (atomic renames included), and save-to-page reload measured ~0.36 s.
POLL_SECONDS = 0.25
SETTLE_SECONDS = 0.05  # an editor's save (truncate, write, rename) is over within this
MAX_SETTLE_ROUNDS = 20  # a file written non-stop still gets rebuilt after about a second


def _ignored(name: str) -> bool:
    """Editor droppings (swap, backup, lock files) are not part of the theme."""
    return name.startswith((".", "#")) or name.endswith(("~", ".swp", ".swx", ".tmp"))


def _stamp(path: str) -> Stamp | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def snapshot(paths: Iterable[Path]) -> dict[str, Stamp | None]:
    """The stamp of each file, and of every file below each folder (a missing path: None)."""
    stamps: dict[str, Stamp | None] = {}
    for path in paths:
        top = str(path)
        if not os.path.isdir(top):
            stamps[top] = _stamp(top)
            continue
        for folder, subfolders, files in os.walk(top):
            subfolders[:] = sorted(d for d in subfolders if not _ignored(d))
            for name in files:
                if not _ignored(name):
                    full = os.path.join(folder, name)
                    stamps[full] = _stamp(full)
    return stamps


class FileWatcher:
    """A thread that calls `on_change` once after the watched files change and settle."""

    def __init__(
        self,
        paths: Callable[[], Iterable[Path]],
        on_change: Callable[[], object],
        interval: float = POLL_SECONDS,
    ) -> None:
        self._paths = paths  # asked on every poll: the theme folder may appear or go
        self._on_change = on_change
        self._interval = interval
        self._stop = threading.Event()
        self._seen = snapshot(paths())
        self._thread = threading.Thread(target=self._run, name="preview-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except Exception:  # keep watching whatever one rebuild did
                logger.exception("watching for changes failed")

    def poll(self) -> bool:
        """Check once; on a change wait until the files settle, then call on_change."""
        now = snapshot(self._paths())
        if now == self._seen:
            return False
        for _ in range(MAX_SETTLE_ROUNDS):
            time.sleep(SETTLE_SECONDS)
            settled = snapshot(self._paths())
            if settled == now:
                break
            now = settled
        # Remember the files as they were before the build: an edit made during it is seen next time.
        self._seen = now
        self._on_change()
        return True
