"""Write a file so that a crash or a reader never sees it half-written: temp file, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Self


class AtomicFile:
    """A file written beside its target and moved into place only when all went well.

    `mode` sets the new file's permissions (default: the old file's, else 0644). With
    `exclusive`, the file is only created, never replaced: when another writer got there first,
    theirs stays and `created` is False. `durable=False` skips the fsyncs: still never half a
    file, but a power cut may lose it (for files that are cheap to lose).
    """

    def __init__(
        self,
        path: Path,
        *,
        mode: int | None = None,
        exclusive: bool = False,
        durable: bool = True,
    ) -> None:
        self.path = path
        self.mode = mode
        self.exclusive = exclusive
        self.durable = durable
        self.created = False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._temp = Path(temp)
        self._out = os.fdopen(fd, "wb")
        self._keep = True

    def write(self, text: str) -> None:
        """Add `text` to the new file, as UTF-8, line ends untouched."""
        self._out.write(text.encode("utf-8"))

    def write_bytes(self, data: bytes) -> None:
        """Add `data` to the new file."""
        self._out.write(data)

    def discard(self) -> None:
        """Leave the target as it was."""
        self._keep = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        commit = kind is None and self._keep
        try:
            if commit:
                self._out.flush()
                if self.durable:
                    os.fsync(self._out.fileno())
            self._out.close()
            if commit:
                self._commit()
        finally:
            self._out.close()
            self._temp.unlink(missing_ok=True)

    def _commit(self) -> None:
        mode = self.mode
        if mode is None:
            mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
        os.chmod(self._temp, mode)
        if self.exclusive:
            try:
                os.link(self._temp, self.path)  # fails if the target exists: the first one wins
            except FileExistsError:
                return
        else:
            os.replace(self._temp, self.path)
        self.created = True
        if self.durable:
            _fsync_folder(self.path.parent)


def write_atomically(path: Path, chunks: Iterable[str]) -> None:
    """Write `chunks` to a temp file beside `path`, fsync it, then rename it over `path`."""
    with AtomicFile(path) as out:
        for chunk in chunks:
            out.write(chunk)


def write_bytes_atomically(
    path: Path,
    data: bytes,
    *,
    mode: int | None = None,
    exclusive: bool = False,
    durable: bool = True,
) -> bool:
    """Write `data` to `path` atomically; with `exclusive`, only if `path` does not exist yet.

    Returns whether this call put the file in place (always True unless `exclusive`).
    """
    with AtomicFile(path, mode=mode, exclusive=exclusive, durable=durable) as out:
        out.write_bytes(data)
    return out.created


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
