"""`compose preview`: build one issue, serve it on 127.0.0.1, rebuild it on every edit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from composer.modes import Mode
from composer.web.preview.server import PreviewServer, bind, open_browser
from composer.web.preview.session import PreviewSession, Snapshot
from composer.web.preview.watcher import POLL_SECONDS, FileWatcher

__all__ = ["Preview", "Snapshot", "open_browser", "open_preview"]


@dataclass
class Preview:
    """A running preview: the session holding the latest build, its server and its watcher."""

    session: PreviewSession
    server: PreviewServer
    watcher: FileWatcher

    @property
    def url(self) -> str:
        return self.server.url

    def serve_forever(self) -> None:
        """Answer requests in this thread until close() or Ctrl-C (which then raises as usual)."""
        self.server.serve_forever()

    def start(self) -> Self:
        """Answer requests from a background thread."""
        self.server.serve_in_thread()
        return self

    def close(self) -> None:
        """Stop watching and serving; open pages see the server go."""
        self.watcher.stop()
        self.server.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_preview(
    root: Path,
    issue_path: Path,
    port: int = 0,
    *,
    mode: Mode = "auto",
    exact_port: bool = True,
    on_build: Callable[[Snapshot], object] | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> Preview:
    """Build the issue once and bind the server; call start() or serve_forever() to answer."""
    session = PreviewSession(root, issue_path, mode)
    report = on_build or (lambda snapshot: None)

    def rebuild() -> None:
        report(session.rebuild())

    # Stamp the files before the first build, so an edit made during it is not missed.
    watcher = FileWatcher(session.watched, rebuild, poll_seconds)
    rebuild()
    server = bind(session, port, exact_port)
    watcher.start()
    return Preview(session, server, watcher)
