"""The default transport: one .eml file per recipient under outbox/<slug>/; mails nobody."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from composer.delivery.transports.base import Channel, Envelope, PermanentFailure, Transport

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def outbox_name(key: str) -> str:
    """A file name for an address: readable, and distinct even after unsafe characters go."""
    safe = _UNSAFE.sub("_", key)[:120]
    if safe != key:
        safe += "-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return safe + ".eml"


class OutboxChannel(Channel):
    """Writes each message atomically, so a crash never leaves half a file."""

    def build_payload(self, batch: Sequence[Envelope]) -> list[tuple[Path, bytes]]:
        folder = self.transport.folder  # type: ignore[attr-defined]
        try:
            return [
                (
                    folder / outbox_name(e.key),
                    self.template.personalize(e.email, e.name, e.unsubscribe_url, token=e.token),
                )
                for e in batch
            ]
        except ValueError as exc:
            raise PermanentFailure(str(exc)) from None

    def post(self, payload: object) -> list[str]:
        written = []
        for path, data in payload:  # type: ignore[attr-defined]
            handle, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            written.append(str(path))
        return written

    def parse_response(self, response: object, batch: Sequence[Envelope]) -> list[str | None]:
        return list(response)  # type: ignore[call-overload]


class OutboxTransport(Transport):
    """Messages as files, for looking at before anything leaves the machine."""

    name = "outbox"

    @property
    def folder(self) -> Path:
        """outbox/<slug>/, created on first use."""
        folder = self.settings.outbox_dir / self.issue
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def concurrency(self) -> int:
        return 1

    def open_channel(self) -> Channel:
        return OutboxChannel(self)

    def describe(self) -> str:
        return f"outbox (files in {self.settings.outbox_dir / self.issue}/; nothing is mailed)"
