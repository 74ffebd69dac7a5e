"""Rendered HTML kept on disk by the hash of what it was made from.

MJML rendering and CSS inlining are pure functions of their input text, and the slow part of a
build: premailer's import alone takes about 0.3 s. `compose send` right after `compose build`
(or a preview) renders exactly what was rendered then, so it reads it back instead, and the
first message leaves that much sooner. The key covers the whole input and the versions of the
code that renders it, so an edit, a new theme or an upgrade simply misses.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import os
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

from composer.atomic import write_bytes_atomically

_RENDERING_CODE = Path(__file__).with_name("html.py")
# The newest entries up to this many bytes stay; the oldest go first. An entry is ~25 KB: a
# build makes three, a send with variants two a variant (48 variants: 2.4 MB). A budget of 64
# entries made such a send miss its whole cache every time.
KEEP_BYTES = 16 * 2**20
_current: contextvars.ContextVar[RenderCache | None] = contextvars.ContextVar(
    "render_cache", default=None
)


class RenderCache:
    """A folder of rendered outputs, one file each, named by the hash of the inputs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get_or_make(self, kind: str, inputs: tuple[str, ...], make: Callable[[], str]) -> str:
        """The output of `make` for these inputs: read back when made before, else made now.

        A cache that cannot be read or written is no cache: rendering goes on without it.
        """
        path = self.folder / f"{kind}-{_digest(kind, inputs)}.html"
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = path.read_text(encoding="utf-8")
            os.utime(path)  # recently used: pruned last
            return text
        made = make()
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            # Not fsynced: a cache entry lost in a power cut is simply made again.
            write_bytes_atomically(path, made.encode("utf-8", "surrogatepass"), durable=False)
            self._prune()
        return made

    def _prune(self) -> None:
        kept = 0
        for entry in sorted(self._entries(), reverse=True):
            _, size, path = entry
            kept += size
            if kept > KEEP_BYTES:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _entries(self) -> Iterator[tuple[float, int, Path]]:
        """(last used, size, path) of each entry."""
        for path in self.folder.glob("*.html"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                yield stat.st_mtime, stat.st_size, path


@contextlib.contextmanager
def using(folder: Path) -> Iterator[None]:
    """Renders inside this block keep and reuse their output in `folder`."""
    token = _current.set(RenderCache(folder))
    try:
        yield
    finally:
        _current.reset(token)


def cached(kind: str, inputs: tuple[str, ...], make: Callable[[], str]) -> str:
    """`make()`, through the cache of the enclosing `using` block when there is one."""
    cache = _current.get()
    return make() if cache is None else cache.get_or_make(kind, inputs, make)


def _digest(kind: str, inputs: tuple[str, ...]) -> str:
    digest = hashlib.sha256(kind.encode() + b"\0" + _versions().encode())
    for text in inputs:
        digest.update(b"\0" + text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


@functools.cache
def _versions() -> str:
    """The code an output depends on: MRML, premailer, cssutils, and composer's own rendering
    code (its source, so that an edit in a working copy is a miss even without a new version)."""
    found = [hashlib.sha256(_RENDERING_CODE.read_bytes()).hexdigest()[:16]]
    for name in ("mjml-python", "premailer", "cssutils"):
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name}=?")
    return ",".join(found)
