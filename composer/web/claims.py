"""Confirmation links used once: a set of their fingerprints, appended to under a lock.

`.compose/confirmed` holds one hex fingerprint (SHA-256 of the token, truncated) per line: a
fingerprint names no one. A second POST of a confirmation link finds its fingerprint and changes
nothing. Claims that threads make at once share one locked append (`GroupRegistry`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from composer.audience.groupcommit import GroupRegistry

CLAIMS_FILE = "confirmed"
LOCK_FILE = "confirmed.lock"


def fingerprint(token: str) -> str:
    """The fingerprint kept of a used token."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()[:32]


class ClaimLedger:
    """The fingerprints of used tokens in one file, read incrementally as it grows."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / CLAIMS_FILE
        self._lock_path = state_dir / LOCK_FILE
        self._seen: set[str] = set()
        self._offset = 0
        self._mutex = threading.Lock()
        self._groups: GroupRegistry[str, bool] = GroupRegistry()

    def claim(self, token: str) -> bool:
        """True the first time `token` is claimed (by any thread or process), False after."""
        return self._groups.submit(self.path, [fingerprint(token)], self._write)[0]

    def _write(self, batch: list[str]) -> list[bool]:
        from filelock import FileLock

        with FileLock(str(self._lock_path), timeout=60), self._mutex:
            self._catch_up()
            fresh: list[str] = []
            results = []
            for digest in batch:
                new = digest not in self._seen
                if new:
                    self._seen.add(digest)
                    fresh.append(digest)
                results.append(new)
            if fresh:
                data = "".join(f"{d}\n" for d in fresh).encode("ascii")
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                    self._offset = os.fstat(fd).st_size
                finally:
                    os.close(fd)
        return results

    def _catch_up(self) -> None:
        """Read what other processes appended since the last look."""
        if not self.path.exists():
            self._seen.clear()
            self._offset = 0
            return
        with self.path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size < self._offset:  # replaced: read it all
                self._seen.clear()
                self._offset = 0
            handle.seek(self._offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._seen.update(complete.decode("ascii", "replace").split())
        self._offset += len(complete)
