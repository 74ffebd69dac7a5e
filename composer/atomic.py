"""Write a file so that a crash or a reader never sees it half-written: temp file, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Self


class AtomicFile:
    """A text file written beside its target and renamed over it only when all went well."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._temp = Path(temp)
        self._out = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self._keep = True

    def write(self, text: str) -> None:
        """Add `text` to the new file."""
        self._out.write(text)

    def discard(self) -> None:
        """Leave the target as it was."""
        self._keep = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        commit = kind is None and self._keep
        renamed = False
        try:
            if commit:
                self._out.flush()
                os.fsync(self._out.fileno())
            self._out.close()
            if commit:
                mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
                os.chmod(self._temp, mode)
                os.replace(self._temp, self.path)
                renamed = True
                _fsync_folder(self.path.parent)
        finally:
            if not renamed:
                self._out.close()
                self._temp.unlink(missing_ok=True)


def write_atomically(path: Path, chunks: Iterable[str]) -> None:
    """Write `chunks` to a temp file beside `path`, fsync it, then rename it over `path`."""
    with AtomicFile(path) as out:
        for chunk in chunks:
            out.write(chunk)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
