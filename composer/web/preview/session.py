"""The state of a preview: the latest build of one issue (or its problems), rebuilt on demand."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from composer.audience import list_names
from composer.build import BuiltIssue, build_issue
from composer.errors import ComposeError
from composer.issue import merge
from composer.modes import Mode
from composer.project import NEWSLETTER_FILE, THEME_DIR, Project, display_path, load_project
from composer.render.checks import Check
from composer.web.preview.viewas import VariantBuilds, build_variants, variant_checks

logger = logging.getLogger("composer.web.preview")


@dataclass(frozen=True)
class Snapshot:
    """One build attempt: the built issue and its checks, or the problems that stopped it."""

    version: int
    issue_path: Path
    project: Project | None = None
    built: BuiltIssue | None = None
    checks: tuple[Check, ...] = ()
    problems: tuple[str, ...] = ()
    seconds: float = 0.0
    finished: dt.datetime = field(default_factory=dt.datetime.now)
    variants: VariantBuilds | None = None  # every variant, for "view as" and their checks

    @property
    def ok(self) -> bool:
        return self.built is not None

    @functools.cached_property
    def message_eml(self) -> bytes:
        """The sample MIME message, made on first request (the page itself never needs it)."""
        from composer.delivery.message import sample_message

        assert self.project is not None and self.built is not None
        return sample_message(self.built, self.project.newsletter)

    def state(self) -> dict[str, object]:
        """What the preview page shows, as JSON-ready data."""
        data: dict[str, object] = {
            "version": self.version,
            "ok": self.ok,
            "file": display_path(self.issue_path),
            "finished": self.finished.strftime("%H:%M:%S"),
            "seconds": round(self.seconds, 2),
            "problems": list(self.problems),
        }
        if self.built is not None:
            built, issue = self.built, self.built.issue
            data.update(
                date=issue.date.isoformat(),
                from_name=built.newsletter.from_.name,
                from_email=built.newsletter.from_.email,
                mode=built.mode,
                checks=[vars(c) for c in self.checks],
                subject=merge.fill(issue.subject, built.defaults),
                preheader=merge.fill(issue.preheader or "", built.defaults),
                variants=self.variants.describe() if self.variants else [],
                lists=list_names(self.project) if self.project else [],
            )
        return data


class PreviewSession:
    """Builds one issue through build_issue() and tells waiting pages about each new build."""

    def __init__(self, root: Path, issue_path: Path, mode: Mode = "auto") -> None:
        self.root = root.resolve()
        self.issue_path = issue_path
        self.mode = mode
        self._lock = threading.Lock()
        self._wakers: set[Callable[[], object]] = set()  # pages waiting for the next build
        self._closed = False
        self.current = Snapshot(0, issue_path, problems=("not built yet",))

    def watched(self) -> Iterator[Path]:
        """The files and folders whose change means a rebuild: issue, newsletter.yaml, theme."""
        yield self.issue_path
        yield self.root / NEWSLETTER_FILE
        yield self.root / THEME_DIR  # the project's theme overrides

    def rebuild(self) -> Snapshot:
        """Build the issue again (reloading newsletter.yaml) and publish the result."""
        start = time.perf_counter()
        version = self.current.version + 1
        try:
            project = load_project(self.root)  # newsletter.yaml may have changed too
            built = build_issue(project, self.issue_path, self.mode)
            found = build_variants(project, self.issue_path, built, self.mode)
            snapshot = Snapshot(
                version,
                self.issue_path,
                project,
                built,
                (*built.checks, *variant_checks(found)),
                seconds=time.perf_counter() - start,
                variants=found,
            )
        except ComposeError as exc:
            problems = tuple(str(p) for p in exc.problems)
            snapshot = Snapshot(
                version, self.issue_path, problems=problems, seconds=time.perf_counter() - start
            )
        except Exception as exc:  # a bug must not stop the preview: show it, keep serving
            logger.exception("building %s failed", self.issue_path)
            problem = (
                f"internal error while building: {type(exc).__name__}: {exc} "
                f"(a bug in composer; `compose --traceback build {display_path(self.issue_path)}` "
                "shows where)"
            )
            snapshot = Snapshot(
                version, self.issue_path, problems=(problem,), seconds=time.perf_counter() - start
            )
        with self._lock:
            self.current = snapshot
            wakers = list(self._wakers)
        for wake in wakers:
            wake()
        return snapshot

    async def wait_newer(self, version: int, timeout: float) -> Snapshot | None:
        """The current snapshot once it is newer than `version`; None on timeout or close.

        It waits on the event loop, not in a worker thread: an open page costs no thread, and
        the watcher thread that publishes a build wakes the loop through call_soon_threadsafe.
        """
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has already stopped
                loop.call_soon_threadsafe(woken.set)

        with self._lock:
            if self._closed or self.current.version > version:
                return self._newer(version)
            self._wakers.add(wake)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await woken.wait()
        finally:
            with self._lock:
                self._wakers.discard(wake)
        return self._newer(version)

    def _newer(self, version: int) -> Snapshot | None:
        current = self.current
        return None if self._closed or current.version <= version else current

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Release every page waiting for a build, so their connections end."""
        with self._lock:
            self._closed = True
            wakers = list(self._wakers)
        for wake in wakers:
            wake()
