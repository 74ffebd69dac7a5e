"""What the checks look at: the masthead, the transport that will send, and a DNS look-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from composer.doctor.dns import DnsLookup
from composer.issue.model import DkimSettings, Newsletter


@dataclass(frozen=True)
class Setup:
    """The newsletter as the doctor sees it; the environment overrides the file, as in a send."""

    newsletter: Newsletter
    lookup: DnsLookup
    env: Mapping[str, str]

    @property
    def from_domain(self) -> str:
        return self.newsletter.from_.email.rpartition("@")[2].lower().rstrip(".")

    @property
    def kind(self) -> str:
        return self.newsletter.transport.kind

    @property
    def smtp_host(self) -> str | None:
        return self.env.get("COMPOSE_SMTP_HOST") or self.newsletter.transport.host

    @property
    def dkim(self) -> DkimSettings | None:
        return self.newsletter.transport.dkim
